//! Hidden partial uploads, which a cancelled or broken upload leaves on the server for a resume:
//! `ferry partials` lists and deletes them, and the TUI shows and deletes them, and asks what
//! to do with them when an upload is cancelled. The real binaries: the CLI against a server in
//! process, the TUI in tmux.
//!
//! tmux is required: without it the TUI tests fail loudly rather than passing without testing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;
use tmux::Desk;

use std::path::Path;
use std::process::Command;

use common::{TestServer, bytes, ferry, ok, text};

/// Partial files in `dir` of the server, as the disk holds them.
fn partials_on_disk(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with(".ferry-part."))
        .collect();
    names.sort();
    names
}

#[test]
fn ferry_partials_lists_and_deletes_what_a_broken_upload_left() {
    let server = TestServer::start();
    std::fs::create_dir(server.path("isos")).unwrap();
    // What a cancelled upload leaves: the partial beside its target, hidden from `ls`.
    std::fs::write(server.path("isos/.ferry-part.big.iso"), bytes(300_000, 1)).unwrap();
    std::fs::write(server.path("isos/kept.txt"), b"final").unwrap();

    let out = ok(ferry(&["ls", &server.url("isos")]));
    assert!(
        !text(&out.stdout).contains("big.iso"),
        "{}",
        text(&out.stdout)
    );

    let out = ok(ferry(&["partials", &server.url("isos")]));
    let listed = text(&out.stdout);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.contains("isos/big.iso"), "{listed}");
    assert!(listed.contains("293.0 KiB"), "{listed}");
    assert!(!listed.contains("kept.txt"), "{listed}");

    let out = ok(ferry(&["partials", "--rm", &server.url("isos/big.iso")]));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert_eq!(partials_on_disk(&server.path("isos")), Vec::<String>::new());
    assert_eq!(
        std::fs::read(server.path("isos/kept.txt")).unwrap(),
        b"final"
    );
    let out = ok(ferry(&["partials", &server.url("isos")]));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));

    // Nothing to delete: one line naming it, exit 1.
    let out = ferry(&["partials", "--rm", &server.url("isos/big.iso")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not_found"),
        "{}",
        text(&out.stderr)
    );
}

/// Sets or clears the immutable flag, which even root cannot write or rename over.
fn immutable(path: &Path, on: bool) {
    let status = Command::new("chattr")
        .arg(if on { "+i" } else { "-i" })
        .arg(path)
        .status()
        .expect("chattr (e2fsprogs) runs");
    assert!(status.success(), "chattr on {}", path.display());
}

#[test]
fn get_r_leaves_no_verified_partial_when_the_rename_fails() {
    let server = TestServer::start();
    std::fs::create_dir(server.path("d")).unwrap();
    std::fs::write(server.path("d/small.txt"), bytes(1000, 2)).unwrap();
    std::fs::write(server.path("d/big.bin"), bytes(3 * 1024 * 1024, 3)).unwrap();
    std::fs::write(server.path("d/fine.txt"), b"fine").unwrap();
    // On the disk under the workspace (ext4): tmpfs has no immutable flag.
    let local = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dest = local.path().join("d");
    std::fs::create_dir(&dest).unwrap();
    // Old files that cannot be replaced: the bytes arrive and verify, then the rename into
    // place fails.
    for name in ["small.txt", "big.bin"] {
        std::fs::write(dest.join(name), b"old").unwrap();
        immutable(&dest.join(name), true);
    }
    let out = ferry(&[
        "get",
        "-r",
        "--overwrite",
        &server.url("d"),
        local.path().to_str().unwrap(),
    ]);
    for name in ["small.txt", "big.bin"] {
        immutable(&dest.join(name), false);
    }
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("small.txt") && stderr.contains("big.bin"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(dest.join("fine.txt")).unwrap(), b"fine");
    assert_eq!(std::fs::read(dest.join("big.bin")).unwrap(), b"old");
    assert_eq!(partials_on_disk(&dest), Vec::<String>::new(), "{stderr}");
}

/// The screen's words in one line, box borders left out: a wrapped sentence reads whole.
fn flat(screen: &str) -> String {
    screen
        .replace(['│', '┌', '┐', '└', '┘', '─'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Polls a file-system condition with the same patience as the screen.
fn until(what: &str, check: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < tmux::WAIT, "timed out waiting: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn the_tui_lists_a_directorys_partials_and_deletes_one() {
    let desk = Desk::on_shm();
    let server = TestServer::start();
    std::fs::create_dir(server.path("isos")).unwrap();
    std::fs::write(server.path("isos/.ferry-part.big.iso"), bytes(300_000, 1)).unwrap();
    std::fs::write(server.path("isos/.ferry-part.other.iso"), bytes(2_000, 2)).unwrap();
    std::fs::write(server.path("isos/final.iso"), b"final").unwrap();
    let tmux = desk.ferry(&[&server.url("isos")], (120, 40));
    tmux.wait_for("the remote pane", |s| {
        s.contains("final.iso") && s.contains("connected")
    });
    let screen = tmux.screen();
    assert!(
        !screen.contains("big.iso"),
        "a partial shows as a file:\n{screen}"
    );

    tmux.keys(&["P"]);
    let screen = tmux.wait_for("the partials dialog", |s| {
        s.contains("Partial uploads in isos") && s.contains("big.iso")
    });
    assert!(
        screen.contains("293.0 KiB") && screen.contains("other.iso"),
        "{screen}"
    );
    assert!(screen.contains("s ago"), "{screen}");
    // The first (by name) is selected: delete it.
    tmux.keys(&["Delete"]);
    let screen = tmux.wait_for("the deletion", |s| {
        s.contains("Deleted the partial upload of /isos/big.iso")
    });
    assert!(
        !screen.contains("ago  big.iso") && screen.contains("ago  other.iso"),
        "{screen}"
    );
    assert!(!server.path("isos/.ferry-part.big.iso").exists());
    assert!(server.path("isos/.ferry-part.other.iso").exists());
    assert_eq!(
        std::fs::read(server.path("isos/final.iso")).unwrap(),
        b"final"
    );
    tmux.keys(&["Escape"]);
    tmux.wait_for("the dialog closed", |s| !s.contains("Partial uploads in"));

    // The help lists the key (further down than one screen: it scrolls).
    tmux.keys(&["F1"]);
    tmux.wait_for("the help", |s| s.contains("cursor up"));
    tmux.keys(&["Down"; 60]);
    tmux.wait_for("the key in the help", |s| {
        s.contains("remote partial uploads")
    });
}

#[test]
fn cancelling_an_upload_asks_whether_to_keep_its_partial() {
    let desk = Desk::on_shm();
    let local = &desk.local;
    std::fs::write(local.join("big.bin"), bytes(40 * 1024 * 1024, 3)).unwrap();
    let server = TestServer::start();
    // A slow link, so the upload is still running when it is cancelled.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = runtime.block_on(common::Proxy::start(
        server.addr,
        Some(std::time::Duration::from_millis(20)),
    ));
    let partial = server.path(".ferry-part.big.bin");
    let tmux = desk.ferry(&[&proxy.url("")], (120, 40));
    tmux.wait_for("both panes", |s| {
        s.contains("big.bin") && s.contains("connected")
    });

    // Cancel and delete the partial.
    tmux.keys(&["F5", "Enter"]);
    until("the upload is under way", || {
        std::fs::metadata(&partial).is_ok_and(|m| m.len() > 0)
    });
    tmux.keys(&["x"]);
    tmux.wait_for("the question", |s| {
        flat(s).contains("d: cancel and delete the partial upload")
    });
    tmux.keys(&["d"]);
    tmux.wait_for("the partial deleted", |s| {
        s.contains("Deleted the partial upload of /big.bin")
    });
    assert!(!partial.exists());
    assert!(!server.path("big.bin").exists());

    // Cancel and keep it: it stays, and the dialog shows it for a later resume.
    tmux.keys(&["F5", "Enter"]);
    until("the second upload is under way", || {
        std::fs::metadata(&partial).is_ok_and(|m| m.len() > 0)
    });
    tmux.keys(&["x"]);
    tmux.wait_for("the question", |s| {
        flat(s).contains("y: cancel and keep the partial upload on the server")
    });
    tmux.keys(&["y"]);
    tmux.wait_for("the job cancelled", |s| s.contains("cancelled"));
    tmux.keys(&["P"]);
    tmux.wait_for("the kept partial listed", |s| {
        s.contains("Partial uploads in /") && s.contains("big.bin") && s.contains("MiB")
    });
    assert!(partial.exists());
}
