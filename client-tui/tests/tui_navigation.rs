//! The real `ferry` TUI in tmux, driven by keys and SGR mouse sequences, for how a user moves
//! around (#15's "shell and navigation"): the `..` row, the clickable key bar, quick jump.
//!
//! tmux is required: without it these tests fail loudly rather than passing without testing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;
use tmux::Desk;

use common::TestServer;

/// Whether some line of `screen` holds the cursor pointer on `name`.
fn cursor_on(screen: &str, name: &str) -> bool {
    screen.contains(&format!("› {name}"))
}

#[test]
fn dotdot_goes_up_by_key_and_double_click_and_is_never_copied() {
    let desk = Desk::new();
    std::fs::create_dir(desk.local.join("sub")).unwrap();
    std::fs::write(desk.local.join("sub/inner.txt"), b"inner").unwrap();
    std::fs::write(desk.local.join("top.txt"), b"top").unwrap();
    let server = TestServer::start();
    std::fs::create_dir_all(server.path("deep/er")).unwrap();
    std::fs::write(server.path("deep/x.txt"), b"x").unwrap();
    let tmux = desk.ferry(&[&server.url("deep")], (120, 30));
    tmux.wait_for("both panes listed", |s| {
        s.contains("top.txt") && s.contains("x.txt") && s.contains("connected")
    });
    let screen = tmux.screen();
    // Both panes show `..` first (neither is at its root), the cursor on the first entry.
    let row = screen.lines().nth(2).unwrap();
    assert_eq!(row.matches("../").count(), 2, "{screen}");
    assert!(cursor_on(&screen, "sub/"), "{screen}");

    // Enter into sub, then Home and Enter on `..`: back, the cursor on sub.
    tmux.keys(&["Enter"]);
    tmux.wait_for("sub listed", |s| cursor_on(s, "inner.txt"));
    tmux.keys(&["Home"]);
    tmux.wait_for("the cursor on ..", |s| cursor_on(s, "../"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("back up, on sub", |s| {
        cursor_on(s, "sub/") && s.contains("top.txt")
    });

    // F5 on `..` copies nothing and says why.
    tmux.keys(&["Tab", "Home"]);
    tmux.wait_for("the remote cursor on ..", |s| cursor_on(s, "../"));
    tmux.keys(&["F5"]);
    tmux.wait_for("the refusal", |s| {
        s.contains("`..` is the parent directory")
    });
    assert!(!desk.local.join("deep").exists());
    assert!(!desk.local.join("..").join("deep").exists());

    // A double click on the remote `..` (screen row 2, SGR row 3) goes to the root, the
    // cursor on the directory left.
    for _ in 0..2 {
        tmux.keys(&["-l", "\x1b[<0;70;3M"]);
        tmux.keys(&["-l", "\x1b[<0;70;3m"]);
    }
    let screen = tmux.wait_for("the remote root", |s| cursor_on(s, "deep/"));
    assert!(!screen.contains("x.txt"), "{screen}");

    tmux.keys(&["F10"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
}

/// The 1-based terminal column where `label` starts on the status bar (the last line).
fn status_column(screen: &str, label: &str) -> usize {
    let status = screen.trim_end_matches('\n').lines().last().unwrap();
    let at = status.find(label).expect(label);
    status[..at].chars().count() + 1
}

#[test]
fn a_click_on_the_key_bar_is_the_key() {
    let desk = Desk::new();
    let server = TestServer::start();
    std::fs::write(server.path("here.txt"), b"here").unwrap();
    let (width, height) = (120, 30);
    let tmux = desk.ferry(&[&server.url("")], (width, height));
    tmux.wait_for("connected", |s| {
        s.contains("here.txt") && s.contains("connected")
    });
    tmux.keys(&["Tab"]);
    // F7 mkdir, clicked on its label: the prompt, as F7 would open.
    let screen = tmux.screen();
    let x = status_column(&screen, "F7 mkdir") + 4;
    let press = format!("\x1b[<0;{x};{height}M");
    let release = format!("\x1b[<0;{x};{height}m");
    tmux.keys(&["-l", &press]);
    tmux.keys(&["-l", &release]);
    tmux.wait_for("the mkdir prompt", |s| s.contains("New directory"));
    tmux.keys(&["-l", "clicked"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the new directory", |s| s.contains("clicked/"));
    assert!(server.path("clicked").is_dir());

    // F10 quit, clicked: ferry exits.
    let x = status_column(&tmux.screen(), "F10 quit");
    tmux.keys(&["-l", &format!("\x1b[<0;{x};{height}M")]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
}

#[test]
fn typing_the_start_of_a_name_jumps_to_it_and_bound_keys_stay_keys() {
    let desk = Desk::new();
    for name in [
        "alpha.txt",
        "quarterly.csv",
        "readme.md",
        "report.pdf",
        "zeta",
    ] {
        std::fs::write(desk.local.join(name), name).unwrap();
    }
    let server = TestServer::start();
    let tmux = desk.ferry(&[&server.url("")], (120, 30));
    tmux.wait_for("listed", |s| s.contains("zeta") && s.contains("connected"));
    // `t` (the transfer list's key) ends `report`: it is part of the name here.
    tmux.keys(&["-l", "REPORT"]);
    tmux.wait_for("the cursor on report.pdf", |s| {
        cursor_on(s, "report.pdf") && s.contains("»REPORT")
    });
    // The prefix leaves the footer after the pause; then `q` quits, as bound, rather than
    // jumping to quarterly.csv.
    tmux.wait_for("the prefix gone", |s| !s.contains("»REPORT"));
    tmux.keys(&["q"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
}

#[test]
fn ctrl_z_suspends_to_the_shell_and_fg_brings_it_back_intact() {
    tmux::require_tmux();
    let desk = Desk::new();
    std::fs::write(desk.local.join("kept.txt"), b"kept").unwrap();
    std::fs::write(desk.local.join("other.txt"), b"other").unwrap();
    let server = TestServer::start();
    // An interactive shell with job control, as a user has: ferry is started from it.
    let tmux = tmux::Tmux {
        socket: desk.tmp.path().join("tmux.sock"),
    };
    let out = tmux.run(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "120",
        "-y",
        "30",
        "env PS1='shell$ ' bash --norc --noprofile -i",
    ]);
    assert!(out.status.success(), "{out:?}");
    tmux.wait_for("the shell", |s| s.contains("shell$"));
    let line = format!(
        "cd '{}' && env -u XDG_CONFIG_HOME -u XDG_STATE_HOME -u XDG_DATA_HOME \
         -u FERRY_TOKEN -u FERRY_PASSWORD HOME='{}' '{}' '{}'",
        desk.local.display(),
        desk.home.display(),
        env!("CARGO_BIN_EXE_ferry"),
        server.url("")
    );
    tmux.keys(&["-l", &line]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("ferry", |s| {
        s.contains("other.txt") && s.contains("connected")
    });
    tmux.keys(&["Space"]);
    tmux.wait_for("kept.txt marked", |s| s.contains("1 marked"));

    tmux.keys(&["C-z"]);
    let screen = tmux.wait_for("the shell back", |s| s.contains("Stopped"));
    assert!(
        !screen.contains("1 marked"),
        "the TUI is still on screen:\n{screen}"
    );
    let alternate = tmux.run(&["display", "-p", "-t", "t", "#{alternate_on}"]);
    assert_eq!(String::from_utf8_lossy(&alternate.stdout).trim(), "0");
    // The shell works while ferry is stopped.
    tmux.keys(&["-l", "echo while-stopped"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the shell's answer", |s| s.contains("\nwhile-stopped"));

    tmux.keys(&["-l", "fg"]);
    tmux.keys(&["Enter"]);
    // Intact (the mark, the cursor) and drawn whole over what the shell printed.
    let screen = tmux.wait_for("ferry again", |s| {
        s.contains("1 marked") && s.contains("› other.txt")
    });
    assert!(!screen.contains("while-stopped"), "{screen}");
    tmux.keys(&["Up"]);
    tmux.wait_for("keys work", |s| s.contains("›*kept.txt"));
    tmux.keys(&["F10"]);
    tmux.wait_for("ferry ended", |s| {
        s.contains("shell$") && !s.contains("1 marked")
    });
}
