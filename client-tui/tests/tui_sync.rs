//! The sync dialog (Ctrl+X s) in the real `ferry` in tmux against a real server: the plan
//! of a prepared difference with its counts and `--dry-run` lines, the run making the
//! destination equal the source on disk (bytes and mtimes), delete off keeping an extra file
//! and delete on removing it, Escape at the plan changing nothing, remote to local, and the
//! empty source refused with delete on in the CLI's words.
//!
//! tmux is required: without it this test fails loudly rather than passing without testing.

// Test helpers outside #[test] functions: a failed setup step should panic loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::SystemTime;

use common::write_at;
use tmux::{Desk, require_tmux};

mod common;
#[path = "common/tmux.rs"]
mod tmux;

const T: u64 = 1_700_000_000;

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// Every file below `root` with its bytes and mtime.
fn files(root: &Path) -> Vec<(String, Vec<u8>, SystemTime)> {
    common::tree(root)
        .into_iter()
        .map(|(rel, bytes)| {
            let at = root.join(&rel);
            (rel, bytes, mtime(&at))
        })
        .collect()
}

#[test]
fn sync_plans_the_difference_runs_it_and_deletes_only_when_asked() {
    require_tmux();
    let desk = Desk::new();
    let (served, local) = (desk.dir("served"), &desk.local);
    write_at(&local.join("new.txt"), b"brand new", T);
    write_at(&local.join("changed.txt"), b"the new content", T + 100);
    write_at(&served.join("changed.txt"), b"old", T);
    write_at(&local.join("touched.txt"), b"same bytes", T + 200);
    write_at(&served.join("touched.txt"), b"same bytes", T);
    write_at(&local.join("same.txt"), b"same", T);
    write_at(&served.join("same.txt"), b"same", T);
    write_at(&served.join("extra.txt"), b"only on the destination", T);

    let (_server, port) = common::start_server(&served, 0);
    let tmux = desk.ferry(&[&format!("ferry://127.0.0.1:{port}/")], (120, 40));
    tmux.wait_for("both listings", |s| {
        s.contains("new.txt") && s.contains("extra.txt") && s.contains("connected")
    });

    tmux.keys(&["C-x"]);
    tmux.keys(&["s"]);
    tmux.wait_for("the sync dialog", |s| {
        s.contains("delete what the source lacks: < off >")
    });
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the plan", |s| s.contains("to create"));
    assert!(
        screen.contains(
            "1 to create, 1 to update, 1 to fix, 0 to delete, 0 skipped; 2 file(s) to send"
        ),
        "{screen}"
    );
    assert!(screen.contains("create   new.txt"), "{screen}");
    assert!(screen.contains("update   changed.txt"), "{screen}");
    assert!(screen.contains("fix-time touched.txt"), "{screen}");
    assert!(
        !screen.contains("extra.txt (") && !screen.contains("delete   extra.txt"),
        "{screen}"
    );

    // Escape at the plan changes nothing.
    tmux.keys(&["Escape"]);
    tmux.wait_for("the dialog closed", |s| !s.contains("to create"));
    assert_eq!(std::fs::read(served.join("changed.txt")).unwrap(), b"old");
    assert!(!served.join("new.txt").exists());
    assert_eq!(
        mtime(&served.join("touched.txt")),
        mtime(&served.join("same.txt"))
    );

    // Again, and Enter runs it: delete off keeps the extra file.
    tmux.keys(&["C-x"]);
    tmux.keys(&["s"]);
    tmux.wait_for("the sync dialog", |s| s.contains("< off >"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the plan", |s| s.contains("to create"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the sync verified", |s| s.contains("#1 ✓"));
    let mut expected = files(local);
    let mut synced = files(&served);
    synced.retain(|(rel, _, _)| rel != "extra.txt");
    expected.sort();
    synced.sort();
    assert_eq!(synced, expected);
    assert!(served.join("extra.txt").exists());

    // Delete on: the plan names the extra file, and the run removes it.
    tmux.keys(&["C-x"]);
    tmux.keys(&["s"]);
    tmux.wait_for("the sync dialog", |s| s.contains("< off >"));
    tmux.keys(&["Down", "Space"]);
    tmux.wait_for("delete on", |s| {
        s.contains("delete what the source lacks: < on >")
    });
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the plan", |s| s.contains("to create"));
    assert!(
        screen.contains("0 to create, 0 to update, 0 to fix, 1 to delete"),
        "{screen}"
    );
    assert!(screen.contains("delete   extra.txt"), "{screen}");
    tmux.keys(&["Enter"]);
    tmux.wait_for("the second sync verified", |s| s.contains("#2 ✓"));
    assert!(!served.join("extra.txt").exists());
    assert_eq!(files(&served), files(local));
    // The remote pane was listed again.
    tmux.wait_for("the pane refreshed", |s| !s.contains("extra.txt"));
}

#[test]
fn sync_from_the_remote_pane_into_the_local_one() {
    require_tmux();
    let desk = Desk::new();
    let (served, local) = (desk.dir("served"), &desk.local);
    write_at(&served.join("src/a.txt"), b"from the server", T);
    write_at(&served.join("src/sub/b.txt"), b"deeper", T + 5);
    write_at(&local.join("mine.txt"), b"local only", T);

    let (_server, port) = common::start_server(&served, 0);
    let tmux = desk.ferry(&[&format!("ferry://127.0.0.1:{port}/src/")], (120, 40));
    tmux.wait_for("both listings", |s| {
        s.contains("a.txt") && s.contains("mine.txt") && s.contains("connected")
    });
    tmux.keys(&["Tab"]);
    tmux.keys(&["C-x"]);
    tmux.keys(&["s"]);
    tmux.wait_for("the sync dialog", |s| s.contains("< off >"));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the plan", |s| s.contains("to create"));
    assert!(screen.contains("2 to create, 0 to update"), "{screen}");
    assert!(screen.contains("create   sub/b.txt"), "{screen}");
    tmux.keys(&["Enter"]);
    tmux.wait_for("the sync verified", |s| s.contains("#1 ✓"));
    assert_eq!(
        std::fs::read(local.join("a.txt")).unwrap(),
        b"from the server"
    );
    assert_eq!(std::fs::read(local.join("sub/b.txt")).unwrap(), b"deeper");
    assert_eq!(
        mtime(&local.join("a.txt")),
        mtime(&served.join("src/a.txt"))
    );
    assert_eq!(
        mtime(&local.join("sub/b.txt")),
        mtime(&served.join("src/sub/b.txt"))
    );
    // Delete was off.
    assert!(local.join("mine.txt").exists());
    // The local pane was listed again.
    tmux.wait_for("the local pane refreshed", |s| s.contains("sub"));
}

#[test]
fn an_empty_source_with_delete_on_is_refused_in_the_clis_words_and_nothing_changes() {
    require_tmux();
    let desk = Desk::new();
    let (served, local) = (desk.dir("served"), &desk.local);
    std::fs::create_dir_all(served.join("empty")).unwrap();
    write_at(&local.join("mine.txt"), b"local only", T);

    let (_server, port) = common::start_server(&served, 0);
    let tmux = desk.ferry(&[&format!("ferry://127.0.0.1:{port}/empty/")], (120, 40));
    tmux.wait_for("both listings", |s| {
        s.contains("mine.txt") && s.contains("connected")
    });
    tmux.keys(&["Tab"]);
    tmux.keys(&["C-x"]);
    tmux.keys(&["s"]);
    tmux.wait_for("the sync dialog", |s| s.contains("< off >"));
    tmux.keys(&["Down", "Space"]);
    tmux.wait_for("delete on", |s| s.contains("< on >"));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the refusal", |s| s.contains("empty_source"));
    assert!(screen.contains("the source is empty"), "{screen}");
    assert!(local.join("mine.txt").exists());
    // Enter and Escape at once: the plan is asked for and stopped (or refused again);
    // nothing is deleted either way.
    tmux.keys(&["Enter", "Escape"]);
    tmux.wait_for("the dialog closed", |s| !s.contains("< on >"));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        std::fs::read(local.join("mine.txt")).unwrap(),
        b"local only"
    );
}

#[test]
fn escape_while_the_plan_is_computed_stops_it_and_changes_nothing() {
    require_tmux();
    let desk = Desk::new();
    let served = desk.dir("served");
    // Enough entries on both sides that listing them takes a moment to watch.
    common::make_tree(&desk.local.join("big"), 30_000);
    common::make_tree(&served.join("big"), 30_000);
    write_at(&desk.local.join("big/new.txt"), b"would be sent", T);
    write_at(&served.join("big/extra.txt"), b"would be deleted", T);

    let (_server, port) = common::start_server(&served, 0);
    let tmux = desk.ferry(&[&format!("ferry://127.0.0.1:{port}/")], (120, 40));
    tmux.wait_for("both listings", |s| {
        s.contains("big") && s.contains("connected")
    });
    // Into the local `big`, and the remote `big`.
    tmux.keys(&["Down", "Enter"]);
    tmux.wait_for("the local big", |s| s.contains("new.txt"));
    tmux.keys(&["Tab", "Down", "Enter"]);
    tmux.wait_for("the remote big", |s| s.contains("extra.txt"));
    tmux.keys(&["Tab", "C-x"]);
    tmux.keys(&["s"]);
    tmux.wait_for("the sync dialog", |s| s.contains("< off >"));
    tmux.keys(&["Down", "Space"]);
    tmux.wait_for("delete on", |s| s.contains("< on >"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the plan being computed", |s| s.contains("entries seen"));
    tmux.keys(&["Escape"]);
    let screen = tmux.wait_for("the dialog closed", |s| !s.contains("< on >"));
    assert!(!screen.contains("to create"), "{screen}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!served.join("big/new.txt").exists());
    assert!(served.join("big/extra.txt").exists());
    assert!(!screen.contains("#1"), "no job was started: {screen}");
}
