//! Find file in the real TUI in tmux: a pattern searched below the pane's directory on the
//! local disk and on a real server, the matches listed while the walk goes on, and Enter
//! landing on the match in its directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use std::path::Path;
use std::time::Instant;

use common::TestServer;
use tmux::{Desk, cursor_left, cursor_right};

/// The count in `searching… N found` or `done: N found`, if the screen shows one.
fn found_count(screen: &str, state: &str) -> Option<u64> {
    let rest = &screen[screen.find(state)? + state.len()..];
    let number: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    number.parse().ok()
}

/// `dirs` directories of `files` empty files each, and one `needle-N.dat` in each directory.
fn haystack(root: &Path, dirs: usize, files: usize) {
    for d in 0..dirs {
        let dir = root.join(format!("dir{d:04}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..files {
            std::fs::File::create(dir.join(format!("hay{f:05}.dat"))).unwrap();
        }
        std::fs::File::create(dir.join(format!("needle-{d:04}.dat"))).unwrap();
    }
}

#[test]
fn find_in_the_local_pane_jumps_to_the_match() {
    tmux::require_tmux();
    let server = TestServer::start();
    let desk = Desk::new();
    std::fs::create_dir_all(desk.local.join("deep/er/still")).unwrap();
    std::fs::write(desk.local.join("deep/er/still/Needle.TXT"), b"n").unwrap();
    std::fs::write(desk.local.join("deep/er/still/aaa-first.txt"), b"a").unwrap();
    std::fs::write(desk.local.join("deep/hay.txt"), b"h").unwrap();
    std::fs::write(desk.local.join("top.txt"), b"t").unwrap();
    let tmux = desk.ferry(&[&server.url("")], (150, 30));
    tmux.wait_for("the local listing", |s| s.contains("top.txt"));
    tmux.keys(&["M-?"]);
    tmux.wait_for("the pattern prompt", |s| s.contains("Name (glob"));
    // Case is ignored: the pattern is lower-case, the name is not.
    tmux.keys(&["-l", "needle.*"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the one match, the search done", |s| {
        s.contains("deep/er/still/Needle.TXT") && found_count(s, "done:") == Some(1)
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("its directory, the cursor on it", |s| {
        s.lines()
            .next()
            .is_some_and(|l| l.contains("/deep/er/still"))
            && s.contains("aaa-first.txt")
            && cursor_left(s, "Needle.TXT")
    });
    tmux.keys(&["F10"]);
}

#[test]
fn find_on_the_server_shows_matches_while_the_walk_goes_on() {
    tmux::require_tmux();
    let server = TestServer::start_shm();
    let made = Instant::now();
    haystack(&server.path("big"), 300, 400);
    eprintln!("120,300 entries made in {:?}", made.elapsed());
    let desk = Desk::new();
    let tmux = desk.ferry(&[&server.url("big")], (150, 30));
    tmux.wait_for("the remote listing", |s| {
        s.contains("dir0000/") && s.contains("connected")
    });
    tmux.keys(&["Tab"]);
    tmux.wait_for("the cursor in the remote pane", |s| {
        cursor_right(s, "dir0000")
    });
    tmux.keys(&["M-f"]);
    tmux.wait_for("the pattern prompt", |s| s.contains("Name (glob"));
    tmux.keys(&["-l", "needle-*"]);
    let started = Instant::now();
    tmux.keys(&["Enter"]);
    // Matches on screen while the walk still runs: streamed, not gathered first.
    let early = tmux.wait_for("a match while searching", |s| {
        s.contains("needle-") && found_count(s, "searching…").is_some_and(|n| n > 0)
    });
    let first = found_count(&early, "searching…").unwrap();
    let seen_after = started.elapsed();
    let done = tmux.wait_for("the search done", |s| found_count(s, "done:").is_some());
    eprintln!(
        "first matches ({first}) on screen after {seen_after:?}, all after {:?}",
        started.elapsed()
    );
    assert_eq!(found_count(&done, "done:"), Some(300), "{done}");
    assert!(first < 300, "{early}");
    // The server walks in its own order: Enter lands on whichever match the cursor is on.
    let line = done
        .lines()
        .find(|l| l.contains("› dir"))
        .expect("the cursor's match");
    let start = line.find("dir").unwrap();
    let dir = &line[start..start + 7];
    let name = &line[start + 8..start + 8 + "needle-0000.dat".len()];
    assert_eq!(name, format!("needle-{}.dat", &dir[3..]), "{line}");
    tmux.keys(&["Enter"]);
    tmux.wait_for("its directory, the cursor on it", |s| {
        s.lines()
            .next()
            .is_some_and(|l| l.contains(&format!("/big/{dir}")))
            && cursor_right(s, name)
    });
    tmux.keys(&["F10"]);
}

#[test]
fn escape_closes_the_results_and_leaves_the_pane_as_it_was() {
    tmux::require_tmux();
    let server = TestServer::start();
    let desk = Desk::new();
    haystack(&desk.local, 3, 3);
    let tmux = desk.ferry(&[&server.url("")], (150, 30));
    tmux.wait_for("the local listing", |s| s.contains("dir0000/"));
    tmux.keys(&["M-?"]);
    tmux.wait_for("the pattern prompt", |s| s.contains("Name (glob"));
    tmux.keys(&["-l", "hay00000*"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the matches", |s| found_count(s, "done:") == Some(3));
    tmux.keys(&["Escape"]);
    tmux.wait_for("the panes again, nothing moved", |s| {
        !s.contains("Find in") && cursor_left(s, "dir0000")
    });
    tmux.keys(&["F10"]);
}
