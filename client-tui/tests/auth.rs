//! The real `ferry` binary logging in as a user of a server's users file: the password from
//! `FERRY_PASSWORD`, the account's own root, and the one-line error of a refused login.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use std::process::{Command, Output, Stdio};

use common::{TestServer, text};

const PASSWORD: &str = "ann's passphrase";

/// A server whose users file holds `ann`, with a root of her own (not the server's root).
fn server_with_ann() -> (TestServer, tempfile::TempDir) {
    common::server_with_user("ann", PASSWORD, |_| {})
}

fn ferry(args: &[&str], password: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    command
        .args(args)
        .env_remove("FERRY_TOKEN")
        .env_remove("FERRY_PASSWORD")
        .stdin(Stdio::null());
    if let Some(password) = password {
        command.env("FERRY_PASSWORD", password);
    }
    command.output().unwrap()
}

fn ann_url(server: &TestServer, path: &str) -> String {
    format!("ferry://ann@127.0.0.1:{}/{path}", server.addr.port())
}

#[test]
fn ls_as_a_user_with_the_password_from_the_environment_sees_their_root() {
    let (server, ann) = server_with_ann();
    let out = ferry(&["ls", &ann_url(&server, "")], Some(PASSWORD));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(listing.contains("ann.txt"), "{listing}");
    assert!(!listing.contains("server-root.txt"), "{listing}");

    // A recursive upload opens several connections; each logs in with the same password.
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("up");
    std::fs::create_dir(&tree).unwrap();
    for i in 0..20 {
        std::fs::write(tree.join(format!("f{i}.txt")), format!("file {i}")).unwrap();
    }
    let out = ferry(
        &["put", "-r", tree.to_str().unwrap(), &ann_url(&server, "")],
        Some(PASSWORD),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(ann.path().join("ann/up/f7.txt")).unwrap(),
        b"file 7"
    );
    assert!(!server.path("up").exists());
}

#[test]
fn a_wrong_or_missing_password_is_one_unauthorized_line_and_status_1() {
    let (server, ann) = server_with_ann();
    for password in [Some("wrong"), None] {
        let out = ferry(&["ls", &ann_url(&server, "")], password);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("ferry: unauthorized: "), "{stderr}");
        assert!(!stderr.contains("wrong\""), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    // Nothing was written by a refused command.
    let out = ferry(&["mkdir", &ann_url(&server, "new")], Some("wrong"));
    assert_eq!(out.status.code(), Some(1));
    assert!(!ann.path().join("ann/new").exists());
}

#[test]
fn a_password_in_the_location_is_refused_before_connecting() {
    let out = ferry(&["ls", "ferry://ann:secret@127.0.0.1:1/"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("password in a location is refused"),
        "{stderr}"
    );
}

#[test]
fn the_tui_asks_again_after_a_wrong_password_and_never_shows_or_keeps_it() {
    tmux::require_tmux();
    let (server, _ann) = server_with_ann();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let tmux = tmux::start_ferry(
        tmp.path().join("tmux.sock"),
        tmp.path(),
        &[("HOME", &home)],
        &[&ann_url(&server, "")],
        (110, 30),
    );

    // Before the screen is taken over, the terminal asks without echo.
    tmux.wait_for("the terminal prompt", |s| {
        s.contains("Password for ann@127.0.0.1:")
    });
    tmux.keys(&["-l", "first-wrong-guess"]);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the refusal and a new prompt", |s| {
        s.contains("Login to 127.0.0.1")
            && s.contains(&format!(
                "Password for ann@127.0.0.1:{} ",
                server.addr.port()
            ))
    });
    assert!(screen.contains("wrong user name or password"), "{screen}");
    tmux.keys(&["-l", PASSWORD]);
    let screen = tmux.wait_for("the masked password", |s| {
        s.contains(&"•".repeat(PASSWORD.chars().count()))
    });
    assert!(!screen.contains("passphrase"), "{screen}");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("ann's root listed", |s| s.contains("ann.txt"));
    assert!(!screen.contains("server-root.txt"), "{screen}");
    assert!(
        !screen.contains("refused"),
        "the old refusal is cleared: {screen}"
    );
    tmux.keys(&["F10"]);
    tmux.keys(&["y"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
    let recent = std::fs::read_to_string(home.join(".local/state/ferry/recent.toml")).unwrap();
    assert!(recent.contains("ferry://ann@127.0.0.1:"), "{recent}");
    for secret in [PASSWORD, "first-wrong-guess"] {
        assert!(!recent.contains(secret), "{recent}");
        let log =
            std::fs::read_to_string(home.join(".local/state/ferry/ferry.log")).unwrap_or_default();
        assert!(!log.contains(secret), "{log}");
    }
}
