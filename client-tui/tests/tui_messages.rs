//! The real TUI in tmux: local errors read like remote ones (code first, no `(os error N)`),
//! and a delete question that wraps keeps its key hint inside the box.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use common::TestServer;
use tmux::Desk;

#[test]
fn local_errors_carry_a_code_and_a_wrapped_delete_question_keeps_its_keys() {
    let server = TestServer::start();
    let desk = Desk::new();
    let local = &desk.local;
    std::fs::create_dir_all(local.join("alpha")).unwrap();
    std::fs::create_dir_all(local.join("beta")).unwrap();
    let tmux = desk.ferry(&[&server.url("")], (100, 24));
    tmux.wait_for("both panes", |s| {
        s.contains("alpha/") && s.contains("beta/") && s.contains("connected")
    });

    // F7 with a name that exists.
    tmux.keys(&["F7"]);
    tmux.wait_for("the mkdir prompt", |s| s.contains("Enter: ok"));
    tmux.keys(&["-l", "alpha"]);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the mkdir error", |s| s.contains("File exists"));
    assert!(screen.contains("✗ already_exists: "), "{screen}");
    assert!(!screen.contains("os error"), "{screen}");
    tmux.keys(&["Escape"]);
    // An Escape read together with the next key is Alt+that key: wait until it was taken.
    tmux.wait_for("the banner to go", |s| !s.contains("File exists"));

    // Ctrl+G to a path that is not there.
    tmux.keys(&["C-g"]);
    tmux.wait_for("the go-to prompt", |s| s.contains("Enter: ok"));
    let missing = desk.tmp.path().join("missing");
    tmux.keys(&["-l", &missing.display().to_string()]);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the listing error", |s| s.contains("Cannot list"));
    assert!(screen.contains("not_found: "), "{screen}");
    assert!(!screen.contains("os error"), "{screen}");
    tmux.keys(&["Escape"]);

    // Two marked directories: the question takes two rows and the keys still show.
    // Home is `..`, one row above the first entry.
    tmux.keys(&["Home", "Down"]);
    tmux.keys(&["Space"]);
    tmux.keys(&["Space"]);
    tmux.wait_for("two marked", |s| s.contains("2 marked"));
    tmux.keys(&["F8"]);
    let screen = tmux.wait_for("the delete question", |s| s.contains("everything in them?"));
    assert!(screen.contains("y / Enter: yes"), "{screen}");
    tmux.keys(&["n"]);
    assert!(local.join("alpha").is_dir() && local.join("beta").is_dir());
}
