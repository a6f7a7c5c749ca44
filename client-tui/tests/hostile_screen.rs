//! A hostile server's text never reaches the terminal raw: names, the server's name and error
//! messages full of escape sequences (clear the screen, set the window title, colour, bidi
//! overrides) are shown escaped by `ferry ls` and by the TUI, and `ferry ls --json` still gives
//! a script the exact names.
//!
//! The server is written here with the protocol crate, since a real `ferry-server` never sends
//! such names. tmux is required for the TUI half and fails loudly without it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::Command;

use ferry_protocol::{
    Entry, ErrorCode, Frame, FrameDecoder, HelloReply, Kind, ListBatch, Request, StatReply,
    decode_request, encode_err, encode_ok,
};
use futures_util::StreamExt;
use tmux::require_tmux;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;

#[path = "common/tmux.rs"]
mod tmux;

/// Names that would clear the screen, retitle the window, recolour the rest, ring the bell,
/// or read backwards, if printed as they are.
const NAMES: &[&str] = &[
    "clear\u{1b}[2J\u{1b}[Hhome",
    "title\u{1b}]0;pwned\u{7}.txt",
    "red\u{1b}[31mcolour",
    "csi\u{9b}7mreverse",
    "invoice\u{202e}fdp.exe",
    "plain.txt",
];
/// What the server calls itself, and says when it refuses: both shown by the TUI.
const SERVER_NAME: &str = "evil\u{1b}]0;pwned-by-hello\u{7}\u{1b}[2J";
const REFUSAL: &str = "nope\u{1b}]0;pwned-by-error\u{7}\u{1b}[2J\u{1b}[41m";

fn entry(name: &str) -> Entry {
    Entry {
        name: name.into(),
        kind: Kind::File,
        size: 4,
        mtime: 1_700_000_000,
        mode: 0o644,
        link: None,
        error: None,
        owner: None,
        target: None,
    }
}

/// Answers hello, stat and list; refuses everything else with [`REFUSAL`]. Runs until the
/// returned runtime is dropped.
fn hostile_server() -> (tokio::runtime::Runtime, SocketAddr) {
    ferry_testkit::wire::fake_server(|stream| async move {
        let (read, mut write) = stream.into_split();
        let mut frames = FramedRead::new(read, FrameDecoder::new());
        while let Some(Ok(Frame::Header(line))) = frames.next().await {
            let out = match decode_request(&line) {
                Ok(Request::Hello { .. }) => encode_ok(&HelloReply {
                    version: ferry_protocol::VERSION,
                    server: SERVER_NAME.into(),
                    read_only: false,
                    identity: None,
                    home: None,
                })
                .unwrap(),
                Ok(Request::Stat { path, .. }) => {
                    let mut dir = entry(&path);
                    dir.kind = Kind::Dir;
                    encode_ok(&StatReply {
                        entry: dir,
                        id: None,
                    })
                    .unwrap()
                }
                Ok(Request::List { .. }) => encode_ok(&ListBatch {
                    entries: NAMES.iter().map(|name| entry(name)).collect(),
                    more: false,
                    skipped: 0,
                })
                .unwrap(),
                // Nothing else carries a payload in these tests, so the stream stays
                // in step without skipping one.
                _ => encode_err(ErrorCode::Forbidden, REFUSAL),
            };
            if write.write_all(&out).await.is_err() {
                return;
            }
        }
    })
}

/// Bytes that make a terminal do something rather than show something.
fn assert_inert(what: &str, text: &str) {
    for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'] {
        assert!(
            !text.contains(bad),
            "{what} holds a raw {:?}:\n{text:?}",
            bad
        );
    }
}

#[test]
fn ls_escapes_hostile_names_and_json_keeps_them_exact() {
    let (_server, addr) = hostile_server();
    let url = format!("ferry://{addr}/");

    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["ls", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_inert("ferry ls", &stdout);
    for shown in [
        "clear\\x1b[2J\\x1b[Hhome",
        "title\\x1b]0;pwned\\x07.txt",
        "red\\x1b[31mcolour",
        "csi\\u{9b}7mreverse",
        "invoice\\u{202e}fdp.exe",
        "plain.txt",
    ] {
        assert!(stdout.contains(shown), "{shown} missing from:\n{stdout}");
    }

    // Scripts get the names exactly, JSON-escaped, one object per line.
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["ls", "--json", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_inert("ferry ls --json", &stdout);
    let mut names: Vec<String> = stdout
        .lines()
        .map(|line| serde_json::from_str::<Entry>(line).unwrap().name)
        .collect();
    names.sort();
    let mut expected: Vec<String> = NAMES.iter().map(|name| (*name).to_owned()).collect();
    expected.sort();
    assert_eq!(names, expected);
}

#[test]
fn cli_errors_from_a_hostile_server_are_escaped() {
    let (_server, addr) = hostile_server();
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["mkdir", &format!("ferry://{addr}/new")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_inert("the error line", &stderr);
    assert!(
        stderr.starts_with("ferry: forbidden: ") && stderr.contains("nope\\x1b]0;pwned-by-error"),
        "{stderr}"
    );
}

#[test]
fn the_tui_shows_hostile_text_escaped_and_keeps_its_screen() {
    require_tmux();
    let (_server, addr) = hostile_server();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let local = tmp.path().join("local");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(local.join("mine.txt"), b"mine").unwrap();

    let tmux = tmux::start_ferry(
        tmp.path().join("tmux.sock"),
        &local,
        &[("HOME", &home)],
        &[&format!("ferry://{addr}/")],
        (160, 30),
    );
    let title_before = tmux.run(&["display", "-p", "-t", "t", "#{pane_title}"]);

    let screen = tmux.wait_for("the hostile listing", |s| {
        s.contains("plain.txt") && s.contains("mine.txt") && s.contains("connected")
    });
    for shown in [
        "clear\\x1b[2J\\x1b[Hhome",
        "title\\x1b]0;pwned\\x07.txt",
        "red\\x1b[31mcolour",
        "invoice\\u{202e}fdp.exe",
    ] {
        assert!(screen.contains(shown), "{shown} missing from:\n{screen}");
    }
    assert_inert("the screen", &screen);

    // The server's refusal, full of escapes, reaches the banner escaped: make a directory.
    tmux.keys(&["Tab"]);
    tmux.keys(&["F7"]);
    tmux.wait_for("the mkdir prompt", |s| {
        s.to_lowercase().contains("directory")
    });
    tmux.keys(&["-l", "newdir"]);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the refusal", |s| s.contains("pwned-by-error"));
    assert!(screen.contains("nope\\x1b]0;pwned-by-error"), "{screen}");
    assert_inert("the screen", &screen);

    // Nothing was cleared or retitled behind our back: both panes are still drawn and the
    // window title is what it was.
    assert!(
        screen.contains("mine.txt") && screen.contains("plain.txt"),
        "{screen}"
    );
    let title_after = tmux.run(&["display", "-p", "-t", "t", "#{pane_title}"]);
    let title_after = String::from_utf8_lossy(&title_after.stdout);
    assert!(
        !title_after.contains("pwned"),
        "title changed to {title_after}"
    );
    assert_eq!(
        String::from_utf8_lossy(&title_before.stdout),
        title_after,
        "the window title changed"
    );

    tmux.keys(&["F10"]);
    tmux.wait_for("ferry to exit", |s| s.contains("EXIT=0"));
}
