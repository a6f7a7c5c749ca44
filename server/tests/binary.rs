//! The real `ferry-server` binary: flags, the token from the environment, logs on stderr and
//! a clean exit on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use ferry_testkit::bin;

/// Starts the binary and waits for its "serving" log line; returns the child and its address.
#[allow(clippy::unwrap_used)]
fn start(
    args: &[&str],
    envs: &[(&str, &str)],
) -> (
    std::process::Child,
    String,
    BufReader<std::process::ChildStderr>,
) {
    let (child, mut stderr) = bin::spawn_logging(
        Command::new(env!("CARGO_BIN_EXE_ferry-server"))
            .args(args)
            .envs(envs.iter().copied()),
    );
    let line = bin::wait_line(&mut stderr, |line| line.contains("serving"));
    assert!(
        !line.contains('\u{1b}'),
        "no colour codes when stderr is not a terminal: {line:?}"
    );
    let addr = bin::serving_addr(&line).unwrap().to_owned();
    (child, addr, stderr)
}

#[allow(clippy::unwrap_used)]
fn exchange(
    stream: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    line: &str,
) -> serde_json::Value {
    stream.write_all(line.as_bytes()).unwrap();
    stream.write_all(b"\n").unwrap();
    let mut reply = String::new();
    reader.read_line(&mut reply).unwrap();
    serde_json::from_str(&reply).unwrap()
}

#[test]
fn serves_with_a_token_from_the_environment_and_stops_on_sigterm() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("hello.txt"), b"hi").unwrap();
    let root_arg = root.path().to_str().unwrap();
    let (mut child, addr, mut stderr) = start(
        &["--root", root_arg, "--listen", "127.0.0.1:0", "--read-only"],
        &[("FERRY_TOKEN", "from-env")],
    );

    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let denied = exchange(&mut stream, &mut reader, r#"{"op":"hello","version":1}"#);
    assert_eq!(denied["error"]["code"], "unauthorized");
    let hello = exchange(
        &mut stream,
        &mut reader,
        r#"{"op":"hello","version":1,"token":"from-env"}"#,
    );
    assert_eq!(hello["ok"], true, "{hello}");
    assert_eq!(hello["read_only"], true);
    assert_eq!(
        hello["server"],
        format!("ferry-server {}", env!("CARGO_PKG_VERSION"))
    );
    let stat = exchange(
        &mut stream,
        &mut reader,
        r#"{"op":"stat","path":"hello.txt"}"#,
    );
    assert_eq!(stat["entry"]["size"], 2);
    let mkdir = exchange(&mut stream, &mut reader, r#"{"op":"mkdir","path":"new"}"#);
    assert_eq!(mkdir["error"]["code"], "forbidden");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("shutting down"), "{rest}");
    // The token never reaches the logs.
    assert!(!rest.contains("from-env"), "{rest}");
}

#[test]
fn a_missing_root_fails_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let output = Command::new(env!("CARGO_BIN_EXE_ferry-server"))
        .args([
            "--root",
            missing.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot open the root directory"),
        "{stderr}"
    );
}

#[test]
fn help_names_every_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry-server"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--root",
        "--listen",
        "--read-only",
        "--token",
        "FERRY_TOKEN",
        "--max-connections",
        "--idle-timeout",
        "127.0.0.1:7070",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

/// Runs the binary until it logs "serving" (then kills it) or exits; returns its exit status
/// (None when it was serving) and everything it logged. Every way out waits for the child,
/// except a panic, which fails the test anyway.
#[allow(clippy::unwrap_used, clippy::zombie_processes)]
fn run_until_serving(args: &[&str]) -> (Option<std::process::ExitStatus>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry-server"))
        .args(args)
        .env("RUST_LOG", "info")
        .env("RUST_BACKTRACE", "1")
        .env_remove("FERRY_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            return (Some(child.wait().unwrap()), log);
        }
        log.push_str(&line);
        if line.contains("serving") && line.contains("addr=") {
            child.kill().unwrap();
            child.wait().unwrap();
            return (None, log);
        }
    }
}

#[test]
fn the_limits_in_force_are_logged_and_an_impossible_reserve_is_warned_about() {
    let root = tempfile::tempdir().unwrap();
    let root_arg = root.path().to_str().unwrap();
    let (exited, log) = run_until_serving(&[
        "--root",
        root_arg,
        "--listen",
        "127.0.0.1:0",
        "--idle-timeout",
        "5min",
        "--stall-timeout",
        "45",
        "--max-upload-size",
        "1GiB",
        "--reserve",
        "1000PiB",
    ]);
    assert_eq!(exited, None, "{log}");
    let limits = log.lines().find(|line| line.contains("limits")).unwrap();
    for shown in [
        "max_upload_size=1 GiB",
        "reserve=1000 PiB",
        "idle_timeout=5m",
        "stall_timeout=45s",
        "partial_expiry=1day",
    ] {
        assert!(limits.contains(shown), "{shown} missing from {limits}");
    }
    assert!(
        log.contains("WARN") && log.contains("every upload will be refused with no_space"),
        "{log}"
    );
}

#[test]
fn impossible_flag_values_are_refused_with_a_reason() {
    let root = tempfile::tempdir().unwrap();
    let root_arg = root.path().to_str().unwrap();
    for (flag, value, reason) in [
        ("--idle-timeout", "0", "must be longer than zero"),
        ("--stall-timeout", "0s", "must be longer than zero"),
        ("--idle-timeout", "soon", "try 60, 30s, 5min or 1h"),
        ("--max-connections", "0", "must be at least 1"),
        ("--max-per-address", "0", "must be at least 1"),
    ] {
        let (exited, log) = run_until_serving(&["--root", root_arg, flag, value]);
        let exited = exited.unwrap_or_else(|| panic!("{flag} {value} was accepted: {log}"));
        assert!(!exited.success());
        assert!(log.contains(reason), "{flag} {value}: {log}");
    }
}

#[test]
fn a_start_error_is_one_line_with_each_cause_once_and_no_backtrace() {
    let (exited, log) = run_until_serving(&["--root", "/nonexistent/ferry-root"]);
    assert!(!exited.unwrap().success());
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| !line.contains(" INFO "))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].starts_with("ferry-server: cannot open the root directory /nonexistent"),
        "{log}"
    );
    assert_eq!(log.matches("No such file").count(), 1, "{log}");
    assert!(!log.contains("backtrace"), "{log}");
}

#[test]
fn hash_password_names_a_missing_directory_for_the_users_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("etc/ferry/users");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry-server"))
        .args(["hash-password", "--users"])
        .arg(&file)
        .args(["--user", "ann", "--root"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"pw\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not exist") && stderr.contains("etc/ferry"),
        "{stderr}"
    );
    assert!(!file.exists());
}
