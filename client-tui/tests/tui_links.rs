//! The real TUI in tmux against a real server: a remote symlink to a directory elsewhere in the
//! served root (`../remote_dir`) is entered with Enter, like any directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use common::TestServer;
use tmux::Desk;

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

    let desk = Desk::new();
    let tmux = desk.ferry(&[&server.url("ltest")], (120, 30));
    tmux.wait_for("the remote listing", |s| {
        s.contains("dir_link") && s.contains("zz-last.txt") && s.contains("connected")
    });
    tmux.keys(&["Tab"]);
    // Down to the link, however the pane sorts it: counted from one screen and sent at once,
    // then waited for, so a slow redraw cannot make the test step past it.
    let screen = tmux.wait_for("the cursor in the remote pane", |s| {
        s.lines()
            .filter_map(right_pane)
            .any(|right| right.contains('›'))
    });
    let rights: Vec<&str> = screen.lines().filter_map(right_pane).collect();
    let cursor = rights.iter().position(|r| r.contains('›'));
    let link = rights.iter().position(|r| r.contains("dir_link"));
    let (Some(cursor), Some(link)) = (cursor, link) else {
        panic!("no cursor or no dir_link in the remote pane:\n{screen}");
    };
    assert!(
        link >= cursor,
        "the cursor starts below dir_link:\n{screen}"
    );
    tmux.keys(&vec!["Down"; link - cursor]);
    tmux.wait_for("the cursor on dir_link", |s| {
        s.lines()
            .filter_map(right_pane)
            .any(|right| right.contains('›') && right.contains("dir_link"))
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the link's target listed", |s| {
        s.contains("inside-the-target.txt") && !s.contains("zz-last.txt")
    });
    tmux.keys(&["F10"]);
}
