//! The real `ferry` in tmux (and its CLI) for the smaller frictions a new user met (issue 15):
//! times in the user's own zone, a status bar that keeps F10 quit and its markers whole and
//! says when a link is TLS, F9's list and prompts, and a file dropped onto a folder row.
//!
//! tmux is required: without it these tests fail loudly rather than passing without testing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use std::path::Path;

use common::TestServer;
use tmux::{Desk, status_line};

/// 2023-11-14 22:13 UTC, which is 07:13 the next morning in Tokyo.
const MTIME: u64 = 1_700_000_000;

#[test]
fn times_show_in_the_zone_of_tz_in_the_tui_and_in_ferry_ls() {
    let desk = Desk::new();
    let server = TestServer::start();
    common::write_at(&desk.local.join("here.txt"), b"local", MTIME);
    common::write_at(&server.path("there.txt"), b"remote", MTIME);
    let tmux = tmux::start_ferry(
        desk.tmp.path().join("tmux.sock"),
        &desk.local,
        &[("HOME", &desk.home), ("TZ", Path::new("Asia/Tokyo"))],
        &[&server.url("")],
        (120, 30),
    );
    let screen = tmux.wait_for("both files listed", |s| {
        s.contains("here.txt") && s.contains("there.txt")
    });
    for name in ["here.txt", "there.txt"] {
        let row = screen.lines().find(|l| l.contains(name)).unwrap();
        let cell = row.split('│').find(|c| c.contains(name)).unwrap();
        assert!(
            cell.contains("2023-11-15 07:13"),
            "{name} not in Tokyo time:\n{screen}"
        );
    }
    tmux.keys(&["F10"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["ls", &server.url("")])
        .env("TZ", "America/New_York")
        .env_remove("FERRY_TOKEN")
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("2023-11-14 17:13  there.txt"),
        "not in New York time: {listing}"
    );
}

#[test]
fn the_status_bar_keeps_f10_quit_and_its_markers_whole_and_says_tls() {
    let desk = Desk::new();
    let (tls, fingerprint) = common::tls_identity();
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), |config| {
        config.tls = Some(tls);
        config.read_only = true;
    });
    let url = format!("ferrys://127.0.0.1:{}/", server.addr.port());
    let tmux = desk.ferry(
        &["--fingerprint", &fingerprint.to_string(), &url],
        (100, 24),
    );
    let screen = tmux.wait_for("the read-only TLS server connected", |s| {
        status_line(s).contains("connected")
    });
    let status = status_line(&screen);
    assert!(status.contains("[tls]"), "no TLS marker: {status}");
    assert!(
        status.contains("[read-only]"),
        "the marker is cut: {status}"
    );
    assert!(status.contains("F1 help"), "{status}");
    assert!(status.contains("F10 quit"), "{status}");

    tmux.run(&["resize-window", "-t", "t", "-x", "80", "-y", "24"]);
    let screen = tmux.wait_for("the 80-column status bar", |s| {
        s.lines().all(|line| line.chars().count() <= 80) && status_line(s).contains("F1 help")
    });
    let status = status_line(&screen);
    assert!(
        status.contains("F10 quit"),
        "F10 quit dropped at 80 columns: {status}"
    );
    assert!(status.contains("[read-only]"), "{status}");
    assert!(status.contains("[tls]"), "{status}");
    // Quit still works from the bar a user reads.
    tmux.keys(&["F10"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
}

/// The 1-based screen row (as SGR mouse reports count) of the first line showing `name`.
fn sgr_row(screen: &str, name: &str) -> usize {
    screen
        .lines()
        .position(|line| line.contains(name))
        .unwrap_or_else(|| panic!("{name} not on screen:\n{screen}"))
        + 1
}

/// Presses the left button at (`x`, `from`), drags and releases at (`to_x`, `to`).
fn drag(tmux: &tmux::Tmux, (x, from): (usize, usize), (to_x, to): (usize, usize)) {
    tmux.keys(&["-l", &format!("\x1b[<0;{x};{from}M")]);
    tmux.keys(&["-l", &format!("\x1b[<32;{to_x};{to}M")]);
    tmux.keys(&["-l", &format!("\x1b[<0;{to_x};{to}m")]);
}

#[test]
fn a_file_dropped_on_a_folder_row_goes_into_it_and_elsewhere_into_the_pane() {
    let desk = Desk::new();
    let server = TestServer::start();
    std::fs::create_dir(server.path("inbox")).unwrap();
    std::fs::write(server.path("other.txt"), b"there").unwrap();
    std::fs::write(desk.local.join("a-into.txt"), b"into the folder").unwrap();
    std::fs::write(desk.local.join("b-beside.txt"), b"beside it").unwrap();
    let tmux = desk.ferry(&[&server.url("")], (120, 30));
    let screen = tmux.wait_for("both panes listed", |s| {
        s.contains("b-beside.txt") && s.contains("other.txt") && s.contains("connected")
    });
    // Local pane on the left (column 10), the server's on the right (column 80).
    drag(
        &tmux,
        (10, sgr_row(&screen, "a-into.txt")),
        (80, sgr_row(&screen, "inbox/")),
    );
    tmux::wait_for_file(&server.path("inbox/a-into.txt"), b"into the folder", &tmux);
    assert!(!server.path("a-into.txt").exists());

    let screen = tmux.wait_for("the panes after the first drop", |s| {
        s.contains("b-beside.txt") && s.contains("other.txt")
    });
    // Onto a file's row: the pane's own directory, as before.
    drag(
        &tmux,
        (10, sgr_row(&screen, "b-beside.txt")),
        (80, sgr_row(&screen, "other.txt")),
    );
    tmux::wait_for_file(&server.path("b-beside.txt"), b"beside it", &tmux);
    assert!(!server.path("inbox/b-beside.txt").exists());
    tmux.keys(&["F10"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
}

#[test]
fn f9_masks_the_token_takes_a_bare_host_port_and_offers_the_bundled_server_back() {
    let desk = Desk::new();
    let served = desk.dir("served");
    std::fs::write(served.join("bundled-file.txt"), b"home").unwrap();
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), |config| {
        config.token = Some("s3cret-token".into());
    });
    std::fs::write(server.path("elsewhere.txt"), b"away").unwrap();
    let tmux = desk.ferry(&["--serve", served.to_str().unwrap()], (120, 30));
    tmux.wait_for("the bundled server", |s| {
        s.contains("bundled-file.txt") && s.contains("connected")
    });

    tmux.keys(&["F9"]);
    let screen = tmux.wait_for("the connect list", |s| s.contains("New address"));
    assert!(
        !screen.contains("back to the bundled server"),
        "the bundled server is offered while shown:\n{screen}"
    );
    tmux.keys(&["End", "Enter"]);
    tmux.wait_for("the address prompt", |s| s.contains("Address: ferry://"));
    // A bare HOST:PORT over the cleared pre-fill, then the token.
    tmux.keys(&["C-u"]);
    let typed = format!("127.0.0.1:{} s3cret-token", server.addr.port());
    tmux.keys(&["-l", &typed]);
    let screen = tmux.wait_for("the typed address", |s| {
        s.contains(&format!("127.0.0.1:{} ", server.addr.port()))
    });
    assert!(
        !screen.contains("s3cret"),
        "the token shows in clear:\n{screen}"
    );
    assert!(screen.contains("••••••••••••"), "{screen}");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the other server", |s| {
        s.contains("elsewhere.txt") && status_line(s).contains("connected")
    });
    assert!(!screen.contains("Bad address"), "{screen}");

    tmux.keys(&["F9"]);
    tmux.wait_for("the bundled server offered", |s| {
        s.contains("back to the bundled server")
    });
    tmux.keys(&["Home", "Enter"]);
    let screen = tmux.wait_for("back on the bundled server", |s| {
        s.contains("bundled-file.txt") && status_line(s).contains("connected")
    });
    assert!(status_line(&screen).contains("bundled server"), "{screen}");
    assert!(!screen.contains("elsewhere.txt"), "{screen}");
    tmux.keys(&["F10"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
}

#[test]
fn a_changed_certificate_names_its_known_hosts_line_and_y_replaces_only_that_line() {
    let desk = Desk::new();
    // The certificate trusted before, and the one the server presents since it was regenerated.
    let (_, old) = common::tls_identity();
    let (tls, new) = common::tls_identity();
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), |config| {
        config.tls = Some(tls);
    });
    std::fs::write(server.path("after-rotation.txt"), b"hello").unwrap();
    let addr = format!("127.0.0.1:{}", server.addr.port());
    let other = ferry::engine::known_hosts::Fingerprint([7; 32]);
    let known_hosts = desk.home.join(".local/share/ferry/known_hosts");
    std::fs::create_dir_all(known_hosts.parent().unwrap()).unwrap();
    let before = format!("# my servers\nnas:7070 {other}\n{addr} {old}\nbox:7071 {other}\n");
    std::fs::write(&known_hosts, &before).unwrap();

    let tmux = desk.ferry(&[&format!("ferrys://{addr}/")], (120, 40));
    let screen = tmux.wait_for("the changed-certificate dialog", |s| {
        s.contains("Server certificate changed")
    });
    let first_half = |fp: &ferry::engine::known_hosts::Fingerprint| {
        fp.to_string()["SHA256:".len()..][..47].to_owned()
    };
    assert!(screen.contains("known_hosts, line 3"), "{screen}");
    assert!(
        screen.contains(&first_half(&old)),
        "the old fingerprint:\n{screen}"
    );
    assert!(
        screen.contains(&first_half(&new)),
        "the new fingerprint:\n{screen}"
    );
    assert!(!screen.contains("pinned"), "{screen}");

    // Only y replaces (that Enter does not is the app tests').
    tmux.keys(&["y"]);
    tmux.wait_for("the server listed", |s| {
        s.contains("after-rotation.txt") && status_line(s).contains("connected")
    });
    assert_eq!(
        std::fs::read_to_string(&known_hosts).unwrap(),
        before.replace(&format!("{addr} {old}"), &format!("{addr} {new}")),
        "only the server's own line changes"
    );
    tmux.keys(&["F10"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
}

#[test]
fn the_filter_shows_names_holding_what_was_typed_first() {
    let desk = Desk::new();
    // In name order the scattered matches would come first.
    for name in [
        "a1b9c9d9.txt",
        "b1x9y9z9.txt",
        "photos-1999.tar",
        "zz-1999.txt",
        "other.txt",
    ] {
        std::fs::write(desk.local.join(name), name).unwrap();
    }
    let served = desk.dir("served");
    let tmux = desk.ferry(&["--serve", served.to_str().unwrap()], (120, 30));
    tmux.wait_for("the local pane", |s| {
        s.contains("other.txt") && status_line(s).contains("connected")
    });
    tmux.keys(&["/"]);
    tmux.keys(&["-l", "1999"]);
    let screen = tmux.wait_for("the filtered pane", |s| {
        s.contains("/1999") && !s.contains("other.txt")
    });
    let row = |name: &str| {
        screen
            .lines()
            .position(|line| line.contains(name))
            .unwrap_or_else(|| panic!("{name} not shown:\n{screen}"))
    };
    for exact in ["photos-1999.tar", "zz-1999.txt"] {
        for scattered in ["a1b9c9d9.txt", "b1x9y9z9.txt"] {
            assert!(
                row(exact) < row(scattered),
                "{exact} below {scattered}:\n{screen}"
            );
        }
    }
    tmux.keys(&["Escape"]);
    tmux.wait_for("the filter cleared", |s| s.contains("other.txt"));
    tmux.keys(&["F10"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
}
