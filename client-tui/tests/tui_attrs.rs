//! The real TUI in tmux against a real server: the attribute columns (Alt+A) on both sides,
//! the permissions dialog (Ctrl+X c) changing modes on disk, a read-only server's refusal of it,
//! Enter through a local symlink to a directory, and a click on a directory of the title path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::Path;
use std::time::{Duration, Instant};

use common::TestServer;
use tmux::{Desk, Tmux, WAIT, cursor_left, cursor_right, left_pane, right_pane};

/// A file of `mode`, owned by nobody (uid and gid 65534).
fn nobodys_file(path: &Path, mode: u32) {
    std::fs::write(path, b"attrs").unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    lchown(path, Some(65534), Some(65534)).unwrap();
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// Waits until `path` has `mode` on disk.
fn wait_for_mode(tmux: &Tmux, path: &Path, mode: u32) {
    let start = Instant::now();
    while mode_of(path) != mode {
        assert!(
            start.elapsed() < WAIT,
            "{} is {:o}, not {mode:o}; the screen:\n{}",
            path.display(),
            mode_of(path),
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn alt_a_shows_mode_owner_and_link_targets_on_both_sides() {
    tmux::require_tmux();
    let server = TestServer::start();
    std::fs::create_dir(server.path("d")).unwrap();
    nobodys_file(&server.path("d/r-file.txt"), 0o644);
    symlink("r-file.txt", server.path("d/r-link")).unwrap();
    let desk = Desk::new();
    nobodys_file(&desk.local.join("l-file.txt"), 0o640);
    symlink("l-file.txt", desk.local.join("l-link")).unwrap();

    let tmux = desk.ferry(&[&server.url("d")], (170, 30));
    tmux.wait_for("both listings", |s| {
        s.contains("l-file.txt") && s.contains("r-file.txt") && s.contains("connected")
    });
    // Hidden until asked for.
    assert!(!tmux.screen().contains("rw-r--r--"));
    tmux.keys(&["M-a"]);
    tmux.wait_for("the local pane's attributes", |s| {
        s.lines()
            .map(left_pane)
            .any(|l| l.contains("l-file.txt") && l.contains("-rw-r-----") && l.contains("nobody"))
            && s.lines()
                .map(left_pane)
                .any(|l| l.contains("l-link@ -> l-file.txt") && l.contains("lrwxrwxrwx"))
    });
    // Each pane has its own: the remote one shows none yet.
    assert!(
        !tmux
            .screen()
            .lines()
            .filter_map(right_pane)
            .any(|r| r.contains("rw-r--r--")),
    );
    tmux.keys(&["Tab", "M-a"]);
    tmux.wait_for("the remote pane's attributes", |s| {
        s.lines()
            .filter_map(right_pane)
            .any(|r| r.contains("r-file.txt") && r.contains("-rw-r--r--") && r.contains("nobody"))
            && s.lines()
                .filter_map(right_pane)
                .any(|r| r.contains("r-link@ -> r-file.txt"))
    });
    tmux.keys(&["F10"]);
}

#[test]
fn the_permissions_dialog_changes_modes_on_disk_on_both_sides() {
    tmux::require_tmux();
    let server = TestServer::start();
    std::fs::create_dir(server.path("d")).unwrap();
    nobodys_file(&server.path("d/remote.txt"), 0o644);
    let desk = Desk::new();
    nobodys_file(&desk.local.join("local.txt"), 0o644);

    let tmux = desk.ferry(&[&server.url("d")], (150, 30));
    tmux.wait_for("both listings", |s| {
        s.contains("local.txt") && s.contains("remote.txt") && s.contains("connected")
    });
    // The cursor is on the only entry; mc's Ctrl+X c opens the dialog on its bits.
    tmux.keys(&["C-x", "c"]);
    tmux.wait_for("the dialog on local.txt", |s| {
        s.contains("Permissions: local.txt") && s.contains("-rw-r--r--  0644")
    });
    // The mode in octal, then one bit by hand.
    tmux.keys(&["6", "0", "0", "Down", "Down", "Space"]);
    tmux.wait_for("the new bits", |s| s.contains("-rwx------  0700"));
    tmux.keys(&["Enter"]);
    wait_for_mode(&tmux, &desk.local.join("local.txt"), 0o700);

    tmux.keys(&["Tab"]);
    tmux.wait_for("the cursor in the remote pane", |s| {
        cursor_right(s, "remote.txt")
    });
    tmux.keys(&["M-m"]);
    tmux.wait_for("the dialog on remote.txt", |s| {
        s.contains("Permissions: remote.txt")
    });
    tmux.keys(&["6", "4", "0", "Enter"]);
    wait_for_mode(&tmux, &server.path("d/remote.txt"), 0o640);
    // The pane shows the new bits once it lists again.
    tmux.keys(&["M-a"]);
    tmux.wait_for("the remote pane's new mode", |s| {
        s.lines()
            .filter_map(right_pane)
            .any(|r| r.contains("remote.txt") && r.contains("-rw-r-----"))
    });
    tmux.keys(&["F10"]);
}

#[test]
fn a_read_only_server_refuses_the_change_in_its_own_words() {
    tmux::require_tmux();
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), |c| c.read_only = true);
    std::fs::create_dir(server.path("d")).unwrap();
    nobodys_file(&server.path("d/kept.txt"), 0o644);
    let desk = Desk::new();
    let tmux = desk.ferry(&[&server.url("d")], (150, 30));
    tmux.wait_for("the remote listing", |s| {
        s.contains("kept.txt") && s.contains("connected")
    });
    tmux.keys(&["Tab"]);
    tmux.wait_for("the cursor in the remote pane", |s| {
        cursor_right(s, "kept.txt")
    });
    tmux.keys(&["C-x", "c"]);
    tmux.wait_for("the dialog", |s| s.contains("Permissions: kept.txt"));
    tmux.keys(&["6", "0", "0", "Enter"]);
    tmux.wait_for("the server's refusal", |s| {
        s.contains("forbidden") && s.contains("read-only access")
    });
    assert_eq!(mode_of(&server.path("d/kept.txt")), 0o644);
    tmux.keys(&["F10"]);
}

#[test]
fn enter_follows_a_local_link_to_a_directory_and_backspace_returns() {
    tmux::require_tmux();
    let server = TestServer::start();
    let desk = Desk::new();
    std::fs::create_dir(desk.local.join("real")).unwrap();
    std::fs::write(desk.local.join("real/inside-the-target.txt"), b"x").unwrap();
    symlink("real", desk.local.join("zlink")).unwrap();
    std::fs::write(desk.local.join("zz-last.txt"), b"z").unwrap();
    let tmux = desk.ferry(&[&server.url("")], (150, 30));
    tmux.wait_for("the local listing, the link shown as a directory", |s| {
        s.lines()
            .map(left_pane)
            .any(|l| l.contains("zlink@/") && l.contains("<DIR>"))
            && s.contains("zz-last.txt")
    });
    // real/ is first (under ..), the link second: directories come before files.
    tmux.keys(&["Down"]);
    tmux.wait_for("the cursor on the link", |s| cursor_left(s, "zlink"));
    tmux.keys(&["Enter"]);
    // Listed under the link's own path, as a shell's `cd` shows it.
    tmux.wait_for("the target's content under the link's path", |s| {
        s.contains("inside-the-target.txt") && !s.contains("zz-last.txt") && s.contains("/zlink")
    });
    tmux.keys(&["BSpace"]);
    tmux.wait_for("back where the link is, on it", |s| {
        s.contains("zz-last.txt") && cursor_left(s, "zlink")
    });
    tmux.keys(&["F10"]);
}

#[test]
fn a_click_on_a_directory_of_the_title_path_goes_there() {
    tmux::require_tmux();
    let server = TestServer::start();
    let desk = Desk::new();
    std::fs::create_dir_all(desk.local.join("alpha/beta/gamma")).unwrap();
    std::fs::write(desk.local.join("alpha/beta/gamma/deepest.txt"), b"x").unwrap();
    std::fs::write(desk.local.join("alpha/top-level.txt"), b"x").unwrap();
    let tmux = desk.ferry(&[&server.url("")], (150, 30));
    tmux.wait_for("the local listing", |s| s.contains("alpha/"));
    // Into alpha, beta, gamma: each time the cursor is on the first entry, the directory.
    for name in ["beta/", "gamma/", "deepest.txt"] {
        tmux.keys(&["Enter"]);
        tmux.wait_for(name, |s| s.contains(name));
    }
    let screen = tmux.wait_for("the title at gamma", |s| {
        s.lines()
            .next()
            .is_some_and(|l| l.contains("/alpha/beta/gamma"))
    });
    let title = screen.lines().next().unwrap();
    // The column of `alpha` in the title (the path is ASCII: one column per byte), 1-based.
    let column = title.find("alpha/beta").unwrap() + 1 + 2;
    tmux.keys(&["-l", &format!("\x1b[<0;{column};1M\x1b[<0;{column};1m")]);
    tmux.wait_for("alpha listed, the cursor on beta", |s| {
        s.contains("top-level.txt")
            && !s.contains("deepest.txt")
            && cursor_left(s, "beta/")
            && s.lines().next().is_some_and(|l| !l.contains("/beta"))
    });
    tmux.keys(&["F10"]);
}
