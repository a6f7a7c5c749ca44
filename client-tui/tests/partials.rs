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

use std::path::Path;
use std::process::{Command, Output};

use common::{TestServer, bytes, ok, text};

fn ferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env_remove("FERRY_TOKEN")
        .output()
        .unwrap()
}

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
