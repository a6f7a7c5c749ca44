//! The real `ferry` TUI in tmux against real servers, for what a new user found wrong with the
//! screen: the transfer list must show the newest jobs and number them uniquely across
//! servers, the key hints must survive a narrow terminal, and a remote directory another
//! client deleted must be neither shown as if it existed nor brought back by F7.
//!
//! tmux is required: without it these tests fail loudly rather than passing without testing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;
use tmux::{Desk, status_line};

use common::TestServer;

#[test]
fn the_transfer_list_shows_the_newest_jobs_numbered_across_servers_and_hints_fit_80_columns() {
    let desk = Desk::on_shm();
    let local = &desk.local;
    for i in 1..=15 {
        std::fs::write(local.join(format!("f{i:02}.txt")), format!("file {i}")).unwrap();
    }
    let first = TestServer::start();
    let second = TestServer::start();
    let tmux = desk.ferry(&[&first.url("")], (120, 40));
    tmux.wait_for("both panes listed", |s| {
        s.contains("f15.txt") && s.contains("connected")
    });

    // Fourteen one-file copies: F5, then Down to the next file.
    for i in 1..=14 {
        tmux.keys(&["F5", "Enter"]);
        let done = format!("#{i} ✓ f{i:02}.txt");
        tmux.wait_for(&done, |s| s.contains(&done));
        tmux.keys(&["Down"]);
    }
    let screen = tmux.screen();
    assert!(screen.contains("#14 ✓ f14.txt"), "{screen}");
    assert!(
        !screen.contains("#1 ✓ f01.txt"),
        "the panel still shows the oldest jobs:\n{screen}"
    );

    // Another server: its engine numbers from 1 again, the screen must not.
    tmux.keys(&["F9"]);
    tmux.wait_for("the connect list", |s| s.contains("New address"));
    tmux.keys(&["End", "Enter"]);
    tmux.wait_for("the address prompt", |s| s.contains("Address: ferry://"));
    tmux.keys(&["C-u"]);
    tmux.keys(&["-l", &second.url("")]);
    tmux.keys(&["Enter"]);
    let label = format!("127.0.0.1:{} connected", second.addr.port());
    tmux.wait_for("the second server", |s| s.contains(&label));
    tmux.keys(&["F5", "Enter"]);
    let screen = tmux.wait_for("job 15 on the second server", |s| {
        s.contains("#15 ✓ f15.txt") && s.contains("#15 copied")
    });
    assert!(!screen.contains("#1 ✓ f15.txt"), "{screen}");
    assert_eq!(
        std::fs::read(second.path("f15.txt")).unwrap(),
        b"file 15",
        "the copy went to the second server"
    );

    // 80 columns: the key hints shrink, F1 help stays.
    tmux.run(&["resize-window", "-t", "t", "-x", "80"]);
    let screen = tmux.wait_for("the 80-column status bar", |s| {
        s.lines().all(|line| line.chars().count() <= 80) && status_line(s).contains("F1 help")
    });
    let status = status_line(&screen);
    assert!(
        status.contains(&label[..label.len() - " connected".len()]),
        "{status}"
    );
    assert!(status.contains("F5 copy"), "{status}");
    tmux.keys(&["F1"]);
    tmux.wait_for("the help it points to", |s| {
        s.contains("any other key closes")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("the help closed", |s| !s.contains("any other key closes"));
    tmux.keys(&["F10"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
}

#[test]
fn f7_makes_one_directory_and_a_deleted_remote_tree_is_left_not_recreated() {
    let desk = Desk::on_shm();
    let server = TestServer::start();
    let deep = server.path("shared/t2000/d1");
    std::fs::create_dir_all(deep.join("existing")).unwrap();
    std::fs::write(deep.join("old.txt"), b"old").unwrap();
    std::fs::write(server.path("top.txt"), b"top").unwrap();
    let tmux = desk.ferry(&[&server.url("shared/t2000/d1")], (120, 40));
    tmux.wait_for("the remote directory listed", |s| {
        s.contains("old.txt") && s.contains("existing/") && s.contains("connected")
    });
    tmux.keys(&["Tab"]);

    // A name that is taken is an error, not a silent success.
    tmux.keys(&["F7"]);
    tmux.wait_for("the mkdir prompt", |s| s.contains("New directory"));
    tmux.keys(&["-l", "existing"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("already_exists", |s| s.contains("already_exists"));

    // A new name makes exactly that directory.
    tmux.keys(&["F7"]);
    tmux.wait_for("the mkdir prompt", |s| s.contains("New directory"));
    tmux.keys(&["-l", "fresh"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the new directory", |s| s.contains("fresh/"));
    assert!(deep.join("fresh").is_dir());

    // Another client removes the whole tree (ferry rm -r $U/shared does this on the server).
    std::fs::remove_dir_all(server.path("shared")).unwrap();

    // F7 in the stale view must not bring it back.
    tmux.keys(&["F7"]);
    tmux.wait_for("the mkdir prompt", |s| s.contains("New directory"));
    tmux.keys(&["-l", "newd"]);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the pane moved up to the root", |s| {
        s.contains("no longer exists") && s.contains("top.txt")
    });
    assert!(
        !server.path("shared").exists(),
        "the deleted tree came back"
    );
    assert!(screen.contains("not_found"), "{screen}");
    assert!(
        screen.contains("/shared/t2000/d1 no longer exists: showing /"),
        "{screen}"
    );
    assert!(!screen.contains("old.txt"), "{screen}");

    // A refresh of a directory deleted while shown does the same.
    std::fs::create_dir_all(server.path("again/sub")).unwrap();
    tmux.keys(&["C-r"]);
    tmux.wait_for("again/ listed", |s| s.contains("again/"));
    // Escape alone first: right before other keys the terminal would read it as Alt.
    tmux.keys(&["Escape"]);
    tmux.wait_for("the banner dismissed", |s| !s.contains("no longer exists"));
    tmux.keys(&["Home", "Enter"]);
    tmux.wait_for("inside again/", |s| s.contains("sub/"));
    std::fs::remove_dir_all(server.path("again")).unwrap();
    tmux.keys(&["C-r"]);
    let screen = tmux.wait_for("the move up after a refresh", |s| {
        s.contains("/again no longer exists: showing /")
    });
    assert!(screen.contains("top.txt"), "{screen}");
    assert!(!screen.contains("sub/"), "{screen}");
    tmux.keys(&["F10"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
}

#[test]
fn a_download_cut_off_by_a_dying_server_keeps_its_bytes_and_the_status_bar_says_disconnected() {
    let desk = tmux::Desk::on_shm();
    let (root, local) = (desk.dir("served"), &desk.local);
    let big = common::bytes(48 << 20, 5);
    std::fs::write(root.join("big.bin"), &big).unwrap();
    let (server, port) = common::start_server(&root, 0);
    // A slow link, so the download is caught in the middle.
    let link = tokio::runtime::Runtime::new().unwrap();
    let proxy = link.block_on(common::Proxy::start(
        ([127, 0, 0, 1], port).into(),
        Some(std::time::Duration::from_millis(15)),
    ));
    let tmux = desk.ferry(&[&proxy.url("")], (120, 40));
    tmux.wait_for("the remote listing", |s| {
        s.contains("big.bin") && s.contains("connected")
    });
    tmux.keys(&["Tab"]);
    tmux.keys(&["F5", "Enter"]);
    tmux.wait_for("some MiB down", |s| {
        s.lines()
            .any(|l| l.contains("#1 ↓ big.bin") && !l.contains(" 0 B /") && l.contains("MiB /"))
    });

    // The server dies mid-file.
    server.shutdown_background();
    let screen = tmux.wait_for("the failed job and the lost connection", |s| {
        s.contains("#1 ✗ big.bin") && s.contains("disconnected")
    });
    let row = screen
        .lines()
        .find(|l| l.contains("#1 ✗ big.bin"))
        .unwrap()
        .to_owned();
    assert!(row.contains("partial kept"), "{screen}");
    assert!(!row.contains(" 0 B / 48 MiB"), "{screen}");
    assert!(!row.contains("  0%"), "{screen}");
    let partial = local.join(".ferry-part.big.bin");
    let kept = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    assert!(kept > 0, "no partial at {}", partial.display());
    assert!(!local.join("big.bin").exists());

    // The server comes back: Ctrl+R reconnects and F5 again resumes from the partial.
    let (_server, _) = common::start_server(&root, port);
    let (_, down_before) = proxy.total();
    tmux.keys(&["C-r"]);
    tmux.wait_for("the reconnection", |s| s.contains("Reconnected"));
    tmux.keys(&["F5", "Enter"]);
    let start = std::time::Instant::now();
    while std::fs::read(local.join("big.bin")).ok().as_deref() != Some(&big[..]) {
        assert!(
            start.elapsed() < tmux::WAIT * 2,
            "the resumed download never completed; the screen:\n{}",
            tmux.screen()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (_, down_after) = proxy.total();
    assert!(
        down_after - down_before < big.len() as u64 - kept / 2,
        "the second copy did not resume: {} bytes down for {} left",
        down_after - down_before,
        big.len() as u64 - kept
    );
    tmux.wait_for("job 2 verified", |s| s.contains("#2 ✓ big.bin"));
    tmux.keys(&["F10"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
}
