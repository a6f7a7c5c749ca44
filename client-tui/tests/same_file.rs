//! A copy or a move onto itself, with the real `ferry` binary and a real server whose root
//! overlaps the local side (as the bundled server's `$HOME` does): every such item is refused
//! as `same_file`, naming both sides, and nothing is truncated, replaced or deleted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::process::Output;

use common::{TestServer, bytes, ferry, p, text, tree};

/// Asserts a failed run (exit 1) whose error says `same_file` and names both sides.
fn refused(out: &Output, source: &str, dest: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("same_file"), "{stderr}");
    assert!(
        stderr.contains(source) && stderr.contains(dest),
        "{source} and {dest} in {stderr}"
    );
}

#[test]
fn a_file_moved_onto_itself_either_way_is_refused_and_kept() {
    let server = TestServer::start();
    let data = bytes(300_000, 1);
    let file = server.path("a.txt");
    std::fs::write(&file, &data).unwrap();
    let ino = std::fs::metadata(&file).unwrap().ino();

    let out = ferry(&[
        "put",
        "--move",
        "--overwrite",
        p(&file),
        &server.url("a.txt"),
    ]);
    refused(&out, p(&file), "a.txt");
    assert_eq!(std::fs::read(&file).unwrap(), data);

    let out = ferry(&[
        "get",
        "--move",
        "--overwrite",
        &server.url("a.txt"),
        p(&file),
    ]);
    refused(&out, "a.txt", p(&file));
    assert_eq!(std::fs::read(&file).unwrap(), data);

    // Resume too would have hidden the file as a partial of itself.
    for flag in ["--resume", "--rename", "--skip-existing"] {
        let out = ferry(&["get", "--move", flag, &server.url("a.txt"), p(&file)]);
        refused(&out, "a.txt", p(&file));
        assert_eq!(std::fs::read(&file).unwrap(), data, "{flag}");
    }
    // The very same inode: not even replaced by an identical copy.
    assert_eq!(std::fs::metadata(&file).unwrap().ino(), ino);
    assert_eq!(
        tree(server.root.path()).keys().collect::<Vec<_>>(),
        ["a.txt"]
    );
}

#[test]
fn a_link_or_a_hard_link_to_the_source_is_the_same_file() {
    let server = TestServer::start();
    let data = bytes(5_000, 2);
    let file = server.path("a.txt");
    std::fs::write(&file, &data).unwrap();
    let local = tempfile::tempdir().unwrap();
    let link = local.path().join("link.txt");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let hard = local.path().join("hard.txt");
    std::fs::hard_link(&file, &hard).unwrap();

    let out = ferry(&[
        "get",
        "--move",
        "--overwrite",
        &server.url("a.txt"),
        p(&link),
    ]);
    refused(&out, "a.txt", p(&link));
    let out = ferry(&[
        "put",
        "--move",
        "--overwrite",
        p(&hard),
        &server.url("a.txt"),
    ]);
    refused(&out, p(&hard), "a.txt");

    assert_eq!(std::fs::read(&file).unwrap(), data);
    assert_eq!(std::fs::read(&hard).unwrap(), data);
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
}

#[test]
fn a_tree_moved_onto_itself_or_into_itself_is_refused_and_kept() {
    let server = TestServer::start();
    let dir = server.path("d");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("one.txt"), bytes(2_000, 3)).unwrap();
    std::fs::write(dir.join("sub/two.txt"), bytes(3_000, 4)).unwrap();
    let before = tree(server.root.path());

    let out = ferry(&[
        "put",
        "-r",
        "--move",
        "--overwrite",
        p(&dir),
        &server.url("d"),
    ]);
    refused(&out, p(&dir), "d");
    let out = ferry(&[
        "get",
        "-r",
        "--move",
        "--overwrite",
        &server.url("d"),
        p(&dir),
    ]);
    refused(&out, "d", p(&dir));
    // Into its own subtree, both ways.
    let inside = dir.join("sub/copy");
    let out = ferry(&["get", "-r", "--move", &server.url("d"), p(&inside)]);
    refused(&out, "d", p(&inside));
    let out = ferry(&["put", "-r", "--move", p(&dir), &server.url("d/sub/copy")]);
    refused(&out, p(&dir), "d/sub/copy");

    assert_eq!(tree(server.root.path()), before);
    assert!(!inside.exists());
}

#[test]
fn a_file_beside_itself_still_copies() {
    // The check refuses only what is truly the same: a copy under another name in the same
    // directory, on the same machine, goes through.
    let server = TestServer::start();
    let data = bytes(10_000, 5);
    std::fs::write(server.path("a.txt"), &data).unwrap();
    let out = ferry(&["get", &server.url("a.txt"), p(&server.path("b.txt"))]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = ferry(&[
        "put",
        "--move",
        p(&server.path("b.txt")),
        &server.url("c.txt"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(server.path("c.txt")).unwrap(), data);
    assert_eq!(std::fs::read(server.path("a.txt")).unwrap(), data);
    assert!(!server.path("b.txt").exists());
}

#[path = "common/tmux.rs"]
mod tmux;

/// Answers whatever the TUI asks on the way of a move with the answer that used to lose the
/// file ("overwrite"), until the transfer's line shows how it ended; the screen then.
fn move_and_overwrite(tmux: &tmux::Tmux, job: &str) -> String {
    tmux.keys(&["F6", "Enter"]);
    let start = std::time::Instant::now();
    loop {
        let screen = tmux.screen();
        if screen.contains("File exists") {
            tmux.keys(&["o"]);
            tmux.keys(&["Enter"]);
        } else if screen.contains(&format!("{job} ✗")) || screen.contains(&format!("{job} ✓")) {
            return screen;
        }
        assert!(
            start.elapsed() < tmux::WAIT,
            "timed out; the screen:\n{screen}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn f6_in_two_panes_on_the_same_directory_keeps_the_file_and_the_tree() {
    // A fresh start: the bundled server serves $HOME and the local pane starts there too.
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join("d/sub")).unwrap();
    let data = bytes(200_000, 6);
    std::fs::write(home.join("zz.txt"), &data).unwrap();
    std::fs::write(home.join("d/sub/in.txt"), bytes(1_000, 7)).unwrap();
    let before = tree(&home);

    let tmux = tmux::start_ferry(
        tmp.path().join("tmux.sock"),
        &home,
        &[("HOME", &home)],
        &[],
        (120, 40),
    );
    tmux.wait_for("both panes", |s| {
        s.matches("zz.txt").count() == 2 && s.contains("connected")
    });
    tmux.keys(&["End"]);
    let screen = move_and_overwrite(&tmux, "#1");
    assert!(screen.contains("same_file"), "{screen}");
    assert_eq!(std::fs::read(home.join("zz.txt")).unwrap(), data);

    tmux.keys(&["Up"]);
    let screen = move_and_overwrite(&tmux, "#2");
    assert!(screen.contains("#2 ✗"), "{screen}");
    // Logs of the run may have appeared under $HOME; what was there is all still there.
    let after = tree(&home);
    for (name, bytes) in &before {
        assert_eq!(
            after.get(name),
            Some(bytes),
            "{name} lost; the screen:\n{screen}"
        );
    }
    tmux.keys(&["q"]);
}
