//! The real `ferry` binary in tmux against a real `ferry-server` in this process: upload with
//! F5, switch panes with Tab, download with F5, then check the bytes on disk and the screen.
//!
//! tmux is required: without it this test fails loudly rather than passing without testing.

// Test helpers outside #[test] functions: a failed setup step should panic loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use std::time::{Duration, Instant};

use tmux::{Desk, Tmux, WAIT, require_tmux};

mod common;
#[path = "common/tmux.rs"]
mod tmux;

fn wait_for_file(path: &Path, expected: &[u8], tmux: &Tmux) {
    let start = Instant::now();
    while std::fs::read(path).ok().as_deref() != Some(expected) {
        if start.elapsed() > WAIT {
            panic!(
                "{} never got the expected bytes; the screen:\n{}",
                path.display(),
                tmux.screen()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `ferry ferry://127.0.0.1:PORT/` in a 120x40 tmux session at `desk`.
fn start_ferry(desk: &Desk, port: u16) -> Tmux {
    desk.ferry(&[&format!("ferry://127.0.0.1:{port}/")], (120, 40))
}

#[test]
fn upload_and_download_in_tmux() {
    require_tmux();

    let desk = Desk::new();
    let (root, local, home) = (desk.dir("served"), &desk.local, &desk.home);
    let upload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let download: Vec<u8> = (0..200_000u32).map(|i| (i * 13 % 241) as u8).collect();
    std::fs::write(local.join("upload.bin"), &upload).unwrap();
    std::fs::write(root.join("download.bin"), &download).unwrap();

    let (_server, port) = common::start_server(&root, 0);

    let tmux = start_ferry(&desk, port);

    tmux.wait_for("both listings", |s| {
        s.contains("upload.bin") && s.contains("download.bin") && s.contains("connected")
    });

    // Upload: the local pane has focus and its only entry under the cursor.
    tmux.keys(&["F5", "Enter"]);
    wait_for_file(&root.join("upload.bin"), &upload, &tmux);
    let screen = tmux.wait_for("the upload verified", |s| {
        s.contains("upload.bin ✓") && s.contains("#1 ✓")
    });
    assert!(screen.contains("#1 ✓ upload.bin → /"), "{screen}");

    // Download: to the remote pane, where download.bin sorts first.
    tmux.keys(&["Tab"]);
    tmux.keys(&["Home"]);
    tmux.keys(&["F5", "Enter"]);
    wait_for_file(&local.join("download.bin"), &download, &tmux);
    let screen = tmux.wait_for("the download verified", |s| {
        s.contains("download.bin ✓") && s.contains("#2 ✓")
    });
    assert!(screen.contains("#2 ✓ download.bin → /"), "{screen}");
    assert!(
        screen.contains("127.0.0.1:") && screen.contains("connected"),
        "{screen}"
    );

    // Drag and drop with the mouse (SGR sequences, 1-based): press on the local pane's
    // entry after `..` and download.bin (screen row 4), drag, release over the remote pane.
    std::fs::write(local.join("dragged.txt"), b"dropped here").unwrap();
    tmux.keys(&["Tab"]);
    tmux.keys(&["C-r"]);
    tmux.wait_for("the new local file", |s| s.contains("dragged.txt"));
    tmux.keys(&["-l", "\x1b[<0;10;5M"]);
    tmux.keys(&["-l", "\x1b[<32;40;5M"]);
    tmux.keys(&["-l", "\x1b[<0;80;5m"]);
    wait_for_file(&root.join("dragged.txt"), b"dropped here", &tmux);
    tmux.wait_for("the drop verified", |s| s.contains("#3 ✓ dragged.txt"));

    tmux.keys(&["q"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
    let alternate = tmux.run(&["display", "-p", "-t", "t", "#{alternate_on}"]);
    assert_eq!(
        String::from_utf8_lossy(&alternate.stdout).trim(),
        "0",
        "terminal not restored"
    );
    // Logs went to the state directory, never the screen.
    let log = std::fs::read_to_string(home.join(".local/state/ferry/ferry.log")).unwrap();
    assert!(log.contains("ferry"), "{log}");
}

#[test]
fn a_lost_server_shows_a_banner_and_reconnects() {
    require_tmux();
    let desk = Desk::new();
    let root = desk.dir("served");
    std::fs::write(root.join("here.txt"), b"x").unwrap();
    let (server, port) = common::start_server(&root, 0);
    let tmux = start_ferry(&desk, port);
    tmux.wait_for("the listing", |s| {
        s.contains("here.txt") && s.contains("connected")
    });

    server.shutdown_background();
    tmux.keys(&["Tab", "C-r"]);
    let screen = tmux.wait_for("the lost-connection banner", |s| {
        s.contains("Disconnected from") && s.contains("disconnected")
    });
    assert!(screen.contains("press Ctrl+R to reconnect"), "{screen}");

    let (_server, _) = common::start_server(&root, port);
    std::fs::write(root.join("back.txt"), b"y").unwrap();
    tmux.keys(&["C-r"]);
    tmux.wait_for("the reconnection", |s| {
        s.contains("Reconnected") && s.contains("back.txt")
    });
    tmux.keys(&["F10"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
}
