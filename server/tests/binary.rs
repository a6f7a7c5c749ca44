//! The real `ferry-server` binary: flags, the token from the environment, logs on stderr and
//! a clean exit on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

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
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry-server"))
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "server exited before serving"
        );
        if line.contains("serving") {
            break;
        }
    }
    assert!(
        !line.contains('\u{1b}'),
        "no colour codes when stderr is not a terminal: {line:?}"
    );
    let addr = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("addr="))
        .unwrap()
        .to_owned();
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
