//! The real TUI in tmux against a real server: a remote symlink to a directory elsewhere in the
//! served root (`../remote_dir`) is entered with Enter, like any directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use common::TestServer;
use tmux::Tmux;

/// The remote (right) pane's half of a screen line, when the line has one.
fn right_pane(line: &str) -> Option<&str> {
    line.split_once("││").map(|(_, right)| right)
}

#[test]
fn enter_on_a_link_to_a_sibling_directory_opens_it() {
    let server = TestServer::start();
    std::fs::create_dir_all(server.path("ltest/sub")).unwrap();
    std::fs::create_dir(server.path("remote_dir")).unwrap();
    std::fs::write(server.path("remote_dir/inside-the-target.txt"), b"x").unwrap();
    std::os::unix::fs::symlink("../remote_dir", server.path("ltest/dir_link")).unwrap();
    std::fs::write(server.path("ltest/zz-last.txt"), b"z").unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let (home, local) = (tmp.path().join("home"), tmp.path().join("local"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&local).unwrap();
    let tmux = Tmux::start_ferry(
        tmp.path().join("tmux.sock"),
        &local,
        &[("HOME", &home)],
        &[&server.url("ltest")],
        (120, 30),
    );
    tmux.wait_for("the remote listing", |s| {
        s.contains("dir_link") && s.contains("zz-last.txt") && s.contains("connected")
    });
    tmux.keys(&["Tab"]);
    // Down to the link, however the pane sorts it.
    let mut on_link = false;
    for _ in 0..10 {
        let screen = tmux.screen();
        if screen
            .lines()
            .filter_map(right_pane)
            .any(|right| right.contains('›') && right.contains("dir_link"))
        {
            on_link = true;
            break;
        }
        tmux.keys(&["Down"]);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(on_link, "never reached dir_link:\n{}", tmux.screen());
    tmux.keys(&["Enter"]);
    tmux.wait_for("the link's target listed", |s| {
        s.contains("inside-the-target.txt") && !s.contains("zz-last.txt")
    });
    tmux.keys(&["F10"]);
}
