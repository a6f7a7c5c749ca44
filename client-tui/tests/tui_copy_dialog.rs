//! F5/F6 ask where, in the real `ferry` in tmux against a real server: the destination is
//! edited (Tab completes directory names on either side), a directory that does not exist is
//! made, Escape copies nothing, and the conflict question shows both sides' size and time and
//! offers "if newer", which keeps a newer destination.
//!
//! tmux is required: without it this test fails loudly rather than passing without testing.

// Test helpers outside #[test] functions: a failed setup step should panic loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use common::write_at;
use tmux::{Desk, Tmux, require_tmux, start_ferry, wait_for_file};

mod common;
#[path = "common/tmux.rs"]
mod tmux;

/// 2023-11-14 22:13:20 UTC.
const T: u64 = 1_700_000_000;

/// ferry on the server at `port` in `desk`, with times shown in UTC.
fn ferry(desk: &Desk, port: u16) -> Tmux {
    start_ferry(
        desk.tmp.path().join("tmux.sock"),
        &desk.local,
        &[("HOME", &desk.home), ("TZ", Path::new("UTC"))],
        &[&format!("ferry://127.0.0.1:{port}/")],
        (120, 40),
    )
}

#[test]
fn the_destination_is_edited_completed_and_made_and_escape_copies_nothing() {
    require_tmux();
    let desk = Desk::new();
    let (served, local) = (desk.dir("served"), &desk.local);
    std::fs::write(local.join("report.txt"), b"quarterly").unwrap();
    for dir in ["archive", "archive-old", "backup"] {
        std::fs::create_dir(served.join(dir)).unwrap();
    }
    std::fs::write(served.join("data.csv"), b"1,2,3").unwrap();
    std::fs::create_dir_all(local.join("inbox/deep")).unwrap();

    let (_server, port) = common::start_server(&served, 0);
    let tmux = ferry(&desk, port);
    tmux.wait_for("both listings", |s| {
        s.contains("report.txt") && s.contains("archive-old/") && s.contains("connected")
    });
    // The local pane's cursor: `..`, inbox/, report.txt.
    tmux.keys(&["End"]);

    // Tab with two candidates fills in what they share and names them; Escape cancels.
    tmux.keys(&["F5"]);
    let screen = tmux.wait_for("the copy dialog", |s| s.contains("Copy report.txt"));
    assert!(screen.contains("1 file: 9 B"), "{screen}");
    assert!(screen.contains("if it exists: < ask >"), "{screen}");
    tmux.keys(&["-l", "ar"]);
    tmux.keys(&["Tab"]);
    let screen = tmux.wait_for("the candidates", |s| s.contains("archive  archive-old"));
    assert!(screen.contains("/archive "), "{screen}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("the dialog closed", |s| !s.contains("Copy report.txt"));
    // A copy would show its row in a transfer list within a moment; give it one.
    std::thread::sleep(Duration::from_millis(500));
    let screen = tmux.screen();
    assert!(!screen.contains("Transfers"), "{screen}");
    assert!(!served.join("report.txt").exists());
    assert!(!served.join("archive/report.txt").exists());

    // One candidate is completed with its slash; a directory typed after it is made.
    tmux.keys(&["F5"]);
    tmux.wait_for("the copy dialog", |s| s.contains("Copy report.txt"));
    tmux.keys(&["-l", "ba"]);
    tmux.keys(&["Tab"]);
    tmux.wait_for("the completion", |s| s.contains("/backup/ "));
    tmux.keys(&["-l", "2024"]);
    tmux.keys(&["Enter"]);
    wait_for_file(&served.join("backup/2024/report.txt"), b"quarterly", &tmux);
    tmux.wait_for("the upload verified", |s| s.contains("#1 ✓"));
    assert!(!served.join("report.txt").exists());

    // The other way: a relative local path, completed from a directory the local pane does
    // not show (listed for the completion).
    tmux.keys(&["Tab", "End"]);
    tmux.keys(&["F5"]);
    tmux.wait_for("the download dialog", |s| s.contains("Copy data.csv"));
    tmux.keys(&["C-u"]);
    tmux.keys(&["-l", "inbox/de"]);
    tmux.keys(&["Tab"]);
    tmux.wait_for("the local completion", |s| s.contains("inbox/deep/ "));
    tmux.keys(&["Enter"]);
    wait_for_file(&local.join("inbox/deep/data.csv"), b"1,2,3", &tmux);
    tmux.wait_for("the download verified", |s| s.contains("#2 ✓"));
}

#[test]
fn the_conflict_question_shows_both_sides_and_if_newer_keeps_the_newer_destination() {
    require_tmux();
    let desk = Desk::new();
    let (served, local) = (desk.dir("served"), &desk.local);
    write_at(&local.join("a.txt"), b"old local", T);
    write_at(&served.join("a.txt"), b"newer on the server", T + 3600);
    write_at(&local.join("b.txt"), b"newer local copy", T + 3600);
    write_at(&served.join("b.txt"), b"old", T);

    let (_server, port) = common::start_server(&served, 0);
    let tmux = ferry(&desk, port);
    tmux.wait_for("both listings", |s| {
        s.contains("a.txt") && s.contains("b.txt") && s.contains("connected")
    });
    tmux.keys(&["C-a"]);
    tmux.wait_for("both marked", |s| s.contains("2 marked"));
    tmux.keys(&["F5"]);
    tmux.wait_for("the copy dialog", |s| s.contains("Copy 2 items"));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the conflict question", |s| {
        s.contains("File exists") && s.contains("destination ")
    });
    let row = |what: &str| {
        screen
            .lines()
            .find(|l| l.contains(&format!("{what} ")) && l.contains("2023-11-1"))
            .unwrap_or_else(|| panic!("no {what} row:\n{screen}"))
            .to_owned()
    };
    let (source, dest) = (row("source"), row("destination"));
    // Whichever file the workers reached first is asked about.
    if source.contains(" 9 B") {
        assert!(
            source.contains("9 B") && source.contains("2023-11-14 22:13"),
            "{screen}"
        );
        assert!(
            dest.contains("19 B") && dest.contains("2023-11-14 23:13") && dest.contains("(newer)"),
            "{screen}"
        );
    } else {
        assert!(
            source.contains("16 B")
                && source.contains("2023-11-14 23:13")
                && source.contains("(newer)"),
            "{screen}"
        );
        assert!(
            dest.contains("3 B") && dest.contains("2023-11-14 22:13"),
            "{screen}"
        );
    }
    assert!(screen.contains("If newer (u)"), "{screen}");
    assert!(screen.contains("If size differs (d)"), "{screen}");
    // For all, then "if newer": each file is decided by its own times.
    tmux.keys(&["a"]);
    tmux.wait_for("apply to all", |s| s.contains("[x] apply to all"));
    tmux.keys(&["u"]);
    wait_for_file(&served.join("b.txt"), b"newer local copy", &tmux);
    tmux.wait_for("the job ended", |s| s.contains("1 skipped"));
    assert_eq!(
        std::fs::read(served.join("a.txt")).unwrap(),
        b"newer on the server"
    );
    // The kept file is accounted for in the job's details.
    tmux.keys(&["t", "Enter"]);
    tmux.wait_for("the details", |s| {
        s.contains("skipped: destination is newer")
    });
}
