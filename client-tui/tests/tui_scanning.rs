//! The real binary in tmux over a slow link while a download's tree is still walked: the CLI
//! shows a spinner counting what arrived, the TUI row counts it too, and cancelling says how
//! many files stayed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use std::time::Duration;

use common::{Proxy, TestServer};
use tmux::Desk;

/// Files in the test tree: their listings take many reads over the slow link, so the walk
/// lasts while the first files arrive.
const FILES: usize = 6000;

/// A server with a big tree behind a proxy slow enough that its walk takes seconds.
fn slow_tree() -> (TestServer, tokio::runtime::Runtime, Proxy) {
    let server = TestServer::start_shm();
    common::make_tree(&server.path("big"), FILES);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = runtime.block_on(Proxy::start(server.addr, Some(Duration::from_millis(100))));
    (server, runtime, proxy)
}

/// Whether a screen shows the scanning count with at least one file arrived.
fn counts_arrivals(screen: &str) -> bool {
    screen.lines().any(|line| {
        line.contains("scanning…") && line.contains(" files, ") && !line.contains("… 0 files")
    })
}

#[test]
fn the_cli_spins_with_a_count_while_the_tree_is_walked_then_draws_the_bar() {
    let (server, _runtime, proxy) = slow_tree();
    let tmp = tempfile::tempdir_in("/dev/shm").unwrap();
    let tmux = tmux::start_ferry(
        tmp.path().join("tmux.sock"),
        tmp.path(),
        &[("HOME", tmp.path())],
        &["get", "-r", &proxy.url("big"), "got"],
        (120, 10),
    );
    let screen = tmux.wait_for("the scanning spinner with a count", counts_arrivals);
    assert!(screen.contains("done"), "{screen}");
    assert!(!screen.contains("EXIT="), "{screen}");
    let screen = tmux.wait_for("the end", |s| s.contains("EXIT="));
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(screen.contains("6,000 files"), "{screen}");
    assert_eq!(
        common::tree(&tmp.path().join("got")),
        common::tree(&server.path("big"))
    );
}

#[test]
fn the_tui_counts_arrivals_while_scanning_and_a_cancel_says_how_many_stayed() {
    let (_server, _runtime, proxy) = slow_tree();
    let desk = Desk::on_shm();
    let tmux = desk.ferry(&[&proxy.url("")], (120, 30));
    tmux.wait_for("the remote listing", |s| {
        s.contains("big/") && s.contains("connected")
    });
    tmux.keys(&["Tab"]);
    tmux.keys(&["F5", "Enter"]);
    let screen = tmux.wait_for("the row counting arrivals while scanning", counts_arrivals);
    assert!(
        !screen.contains("0 B / 0 B"),
        "no bar to no scale:\n{screen}"
    );
    tmux.keys(&["t"]);
    tmux.keys(&["x"]);
    tmux.wait_for("the cancel question", |s| s.contains("Cancel transfer #1"));
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("the cancel banner", |s| s.contains("cancelled"));
    let banner = screen
        .lines()
        .find(|l| l.contains("⊘ #1 big: cancelled"))
        .unwrap_or_else(|| panic!("no cancel banner:\n{screen}"));
    assert!(
        banner.contains("files arrived") || banner.contains("1 file arrived"),
        "{banner}"
    );
    assert!(!banner.contains('✓'), "a cancel is no success: {banner}");
    assert!(
        screen.contains("files arrived") && screen.contains("⊘"),
        "the row says what stayed:\n{screen}"
    );
}
