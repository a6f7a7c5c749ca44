//! The real TUI in tmux against real servers: Alt+L shows the server in the left pane (its
//! title says which server), and F5 between the two panes, both on the server, copies a tree
//! inside it; F9 in that pane connects it to a second server, and F5 copies a tree from one
//! server to the other (both checked on disk, byte for byte); two local panes refuse F5 with
//! the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use std::time::{Duration, Instant};

use common::{TestServer, bytes, tree};
use tmux::{Desk, WAIT, cursor_left, left_pane, right_pane};

#[test]
fn two_panes_on_one_server_and_f5_copies_a_tree_inside_it() {
    tmux::require_tmux();
    let server = TestServer::start();
    std::fs::create_dir_all(server.path("d/src/a")).unwrap();
    std::fs::create_dir_all(server.path("d/dest")).unwrap();
    std::fs::write(server.path("d/src/big.bin"), bytes(2 * 1024 * 1024, 5)).unwrap();
    std::fs::write(server.path("d/src/a/one.txt"), b"one").unwrap();
    let desk = Desk::new();
    std::fs::write(desk.local.join("local-only.txt"), b"here").unwrap();
    let label = format!("127.0.0.1:{}", server.addr.port());

    let tmux = desk.ferry(&[&server.url("d/dest")], (140, 30));
    tmux.wait_for("both listings", |s| {
        s.contains("local-only.txt") && s.contains("connected")
    });
    // The left pane shows the server, where the right pane is, and says so in its title.
    tmux.keys(&["M-l"]);
    tmux.wait_for("the server in the left pane", |s| {
        s.lines()
            .map(left_pane)
            .any(|l| l.contains(&label) && l.contains("/d/dest"))
            && !s.contains("local-only.txt")
    });
    tmux.keys(&["BSpace"]);
    tmux.wait_for("the left pane in /d", |s| {
        s.lines().map(left_pane).any(|l| l.contains("src/"))
    });
    tmux.wait_for("the cursor on dest", |s| cursor_left(s, "dest"));
    tmux.keys(&["Down"]);
    tmux.wait_for("the cursor on src", |s| cursor_left(s, "src"));
    tmux.keys(&["F5", "Enter"]);
    let start = Instant::now();
    // Each file appears under its name only once complete and verified.
    while !server.path("d/dest/src/big.bin").exists()
        || !server.path("d/dest/src/a/one.txt").exists()
    {
        assert!(
            start.elapsed() < WAIT,
            "the copy did not arrive; the screen:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    tmux.wait_for("the copy listed in the right pane", |s| {
        s.lines().filter_map(right_pane).any(|r| r.contains("src/"))
    });
    assert_eq!(
        tree(&server.path("d/src")),
        tree(&server.path("d/dest/src"))
    );
    // Back to the local directory it showed before.
    tmux.keys(&["M-l"]);
    tmux.wait_for("the local directory again", |s| {
        s.contains("local-only.txt")
    });
    tmux.keys(&["F10"]);
}

#[test]
fn two_local_panes_refuse_a_copy_and_say_why() {
    tmux::require_tmux();
    let server = TestServer::start();
    std::fs::write(server.path("remote.txt"), b"r").unwrap();
    let desk = Desk::new();
    std::fs::write(desk.local.join("mine.txt"), b"mine").unwrap();

    let tmux = desk.ferry(&[&server.url("")], (140, 30));
    tmux.wait_for("both listings", |s| {
        s.contains("mine.txt") && s.contains("remote.txt") && s.contains("connected")
    });
    // The right pane switched to a local directory: the left pane's.
    tmux.keys(&["Tab", "M-l"]);
    tmux.wait_for("two local panes", |s| {
        !s.contains("remote.txt")
            && s.lines()
                .filter_map(right_pane)
                .any(|r| r.contains("mine.txt"))
    });
    tmux.keys(&["Tab"]);
    tmux.keys(&["-l", "mi"]);
    tmux.wait_for("the cursor on mine.txt", |s| cursor_left(s, "mine.txt"));
    tmux.keys(&["F5"]);
    tmux.wait_for("the refusal", |s| {
        s.contains("Both panes show local directories")
    });
    tmux.keys(&["F10"]);
}

#[test]
fn two_panes_on_two_servers_and_f5_copies_a_tree_from_one_to_the_other() {
    tmux::require_tmux();
    let (a, b) = (TestServer::start(), TestServer::start());
    std::fs::create_dir_all(a.path("src/a")).unwrap();
    std::fs::write(a.path("src/big.bin"), bytes(2 * 1024 * 1024 + 3, 8)).unwrap();
    std::fs::write(a.path("src/a/one.txt"), b"one").unwrap();
    std::fs::write(b.path("b-marker.txt"), b"b").unwrap();
    let desk = Desk::new();
    std::fs::write(desk.local.join("local-only.txt"), b"here").unwrap();
    let (label_a, label_b) = (
        format!("127.0.0.1:{}", a.addr.port()),
        format!("127.0.0.1:{}", b.addr.port()),
    );

    let tmux = desk.ferry(&[&a.url("")], (150, 30));
    tmux.wait_for("both listings", |s| {
        s.contains("local-only.txt") && s.contains("src/") && s.contains("connected")
    });
    tmux.keys(&["M-l"]);
    tmux.wait_for("server A in the left pane", |s| {
        s.lines().map(left_pane).any(|l| l.contains("src/"))
    });
    // F9 in a pane that shows a server connects that pane.
    tmux.keys(&["F9"]);
    tmux.wait_for("the connect list", |s| s.contains("New address"));
    tmux.keys(&["Down", "Enter"]);
    tmux.wait_for("the address prompt", |s| s.contains("Address: ferry://"));
    tmux.keys(&["-l", &format!("127.0.0.1:{}/", b.addr.port())]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("server B in the left pane, A still in the right", |s| {
        // The titles, left then right, on the first line.
        let titles = s.lines().next().unwrap_or_default();
        let (Some(left), Some(right)) = (titles.find(&label_b), titles.find(&label_a)) else {
            return false;
        };
        left < right
            && s.lines().map(left_pane).any(|l| l.contains("b-marker.txt"))
            && s.lines().filter_map(right_pane).any(|r| r.contains("src/"))
    });
    // From A (right) to B (left).
    tmux.keys(&["Tab"]);
    tmux.wait_for("the cursor on src", |s| {
        s.lines()
            .filter_map(right_pane)
            .any(|r| r.contains('›') && r.contains("src/"))
    });
    tmux.keys(&["F5", "Enter"]);
    let start = Instant::now();
    while !b.path("src/big.bin").exists() || !b.path("src/a/one.txt").exists() {
        assert!(
            start.elapsed() < WAIT,
            "the copy did not arrive; the screen:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(tree(&a.path("src")), tree(&b.path("src")));
    tmux.wait_for("the copy listed in the left pane", |s| {
        s.lines().map(left_pane).any(|l| l.contains("src/"))
    });
    tmux.keys(&["F10"]);
}
