//! Compare the panes (mc's Ctrl+X d, and `=`) in the real `ferry` in tmux against a real
//! server: what is missing on the other side or newer is marked, the status line counts it,
//! same-named directories are not descended, and F5 then copies exactly the marked entries.
//!
//! tmux is required: without it this test fails loudly rather than passing without testing.

// Test helpers outside #[test] functions: a failed setup step should panic loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use common::write_at;
use tmux::{Desk, require_tmux, wait_for_file};

mod common;
#[path = "common/tmux.rs"]
mod tmux;

const T: u64 = 1_700_000_000;

#[test]
fn compare_marks_what_differs_and_f5_copies_exactly_that() {
    require_tmux();
    let desk = Desk::new();
    let (served, local) = (desk.dir("served"), &desk.local);
    write_at(&local.join("same.txt"), b"same", T);
    write_at(&served.join("same.txt"), b"same", T);
    write_at(&local.join("mine-newer.txt"), b"local, newer", T + 100);
    write_at(&served.join("mine-newer.txt"), b"server, older", T);
    write_at(&local.join("theirs-newer.txt"), b"local, older", T);
    write_at(&served.join("theirs-newer.txt"), b"server, newer", T + 100);
    write_at(&local.join("only-here.txt"), b"only local", T);
    write_at(&served.join("only-there.txt"), b"only server", T);
    write_at(&local.join("newdir/inner.txt"), b"inside", T);
    // Same-named directories are not descended: what differs inside stays unmarked.
    write_at(&local.join("both/local-inside.txt"), b"x", T);
    write_at(&served.join("both/server-inside.txt"), b"y", T);

    let (_server, port) = common::start_server(&served, 0);
    let tmux = desk.ferry(&[&format!("ferry://127.0.0.1:{port}/")], (120, 40));
    tmux.wait_for("both listings", |s| {
        s.contains("only-here.txt") && s.contains("only-there.txt") && s.contains("connected")
    });

    tmux.keys(&["C-x"]);
    tmux.keys(&["d"]);
    let screen = tmux.wait_for("the counts", |s| s.contains("Remote: "));
    assert!(
        screen.contains("Local: 3 marked: 2 missing there, 1 newer."),
        "{screen}"
    );
    assert!(
        screen.contains("Remote: 2 marked: 1 missing there, 1 newer"),
        "{screen}"
    );
    assert!(screen.contains("3 marked"), "{screen}");

    // F5 copies the marks; the dialog's policy is set to overwrite (one Down) for
    // mine-newer.txt, which exists there.
    tmux.keys(&["F5"]);
    tmux.wait_for("the copy dialog", |s| s.contains("Copy 3 items"));
    tmux.keys(&["Down"]);
    tmux.wait_for("the policy", |s| s.contains("< overwrite >"));
    tmux.keys(&["Enter"]);
    wait_for_file(&served.join("newdir/inner.txt"), b"inside", &tmux);
    wait_for_file(&served.join("only-here.txt"), b"only local", &tmux);
    wait_for_file(&served.join("mine-newer.txt"), b"local, newer", &tmux);
    tmux.wait_for("the upload verified", |s| s.contains("#1 ✓"));
    assert_eq!(
        std::fs::read(served.join("theirs-newer.txt")).unwrap(),
        b"server, newer"
    );
    assert_eq!(std::fs::read(served.join("same.txt")).unwrap(), b"same");
    assert!(!served.join("both/local-inside.txt").exists());

    // `=` compares again from the remote pane: only what the server has newer or alone.
    tmux.keys(&["Tab"]);
    tmux.keys(&["="]);
    let screen = tmux.wait_for("the second counts", |s| {
        s.contains("Local: nothing differs")
    });
    assert!(
        screen.contains("Remote: 2 marked: 1 missing there, 1 newer"),
        "{screen}"
    );
    tmux.keys(&["F5"]);
    tmux.wait_for("the copy dialog", |s| s.contains("Copy 2 items"));
    tmux.keys(&["Down", "Down"]);
    tmux.wait_for("the policy", |s| s.contains("< overwrite if newer >"));
    tmux.keys(&["Enter"]);
    wait_for_file(&local.join("only-there.txt"), b"only server", &tmux);
    wait_for_file(&local.join("theirs-newer.txt"), b"server, newer", &tmux);
    tmux.wait_for("the download verified", |s| s.contains("#2 ✓"));
    assert!(!local.join("both/server-inside.txt").exists());
    assert_eq!(std::fs::read(local.join("same.txt")).unwrap(), b"same");
}
