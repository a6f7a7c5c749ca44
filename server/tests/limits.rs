//! Stale partial uploads: what a client that never came back, or a server killed mid-upload,
//! leaves behind is swept once it has been untouched for the expiry, while a young partial (the
//! basis of a resume) and one being written stay.

// Helpers run inside tests: a failed step should stop the test with its error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{Client, Server, pattern, users_file};
use serde_json::json;

const MIB: usize = 1024 * 1024;

/// Sets a file's modification time `by` into the past, as if nothing had written it since.
fn age(path: &Path, by: Duration) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - by)
        .unwrap();
}

/// Waits until `check` holds, failing with `what` after 30 s.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < common::STEP, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |meta| meta.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_partials_are_swept_periodically_but_not_young_or_active_ones() {
    let server = Server::start_with(|config| {
        // Swept every 2.5 s: the young partial below stays young for the whole test.
        config.partial_expiry = Some(Duration::from_secs(10));
    })
    .await;
    std::fs::create_dir_all(server.path("deep/er")).unwrap();
    // A symlink to the outside, named like a partial and old, and an old partial out there.
    let victim = server.outside.join(".ferry-part.victim");
    std::fs::write(&victim, b"not ours").unwrap();
    age(&victim, Duration::from_secs(3600));
    std::os::unix::fs::symlink(&server.outside, server.path("escape")).unwrap();
    let outside_before = server.outside_snapshot();

    // An upload in progress whose partial has not been written for long.
    let mut writer = server.client().await;
    writer
        .send_json(&json!({"op": "put", "path": "deep/active.bin", "size": 2 * MIB}))
        .await;
    let data = pattern(2 * MIB, 9);
    writer.send(&data[..MIB]).await;
    let active = server.path("deep/.ferry-part.active.bin");
    until("the active partial holds the first half", || {
        len(&active) == MIB as u64
    })
    .await;
    age(&active, Duration::from_secs(3600));

    // Planted after the start-up sweep, so only a periodic one can remove it.
    let stale = server.path("deep/er/.ferry-part.stale.bin");
    std::fs::write(&stale, b"abandoned").unwrap();
    age(&stale, Duration::from_secs(3600));
    let young = server.path(".ferry-part.young.bin");
    std::fs::write(&young, b"resumable").unwrap();
    let final_old = server.path("deep/old-final.bin");
    std::fs::write(&final_old, b"kept").unwrap();
    age(&final_old, Duration::from_secs(3600));

    until("the stale partial is swept", || !stale.exists()).await;
    // Another full round leaves the rest alone.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert!(active.exists(), "the active upload's partial was swept");
    assert!(young.exists(), "a young partial was swept");
    assert_eq!(std::fs::read(&final_old).unwrap(), b"kept");
    assert_eq!(server.outside_snapshot(), outside_before);
    assert!(victim.exists());

    // The active upload completes as if nothing happened; a stat on another client works.
    let mut other = server.client().await;
    let stat = other.request(json!({"op": "stat", "path": ""})).await;
    assert_eq!(stat["ok"], true, "{stat}");
    writer.send(&data[MIB..]).await;
    let reply = writer.read_reply().await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(std::fs::read(server.path("deep/active.bin")).unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_expiry_keeps_partials_forever() {
    let server = Server::start_with(|config| config.partial_expiry = None).await;
    let partial = server.path(".ferry-part.kept.bin");
    std::fs::write(&partial, b"x").unwrap();
    age(&partial, Duration::from_secs(10 * 365 * 24 * 3600));
    // The server is up and has had the chance to sweep at start.
    let mut client = server.client().await;
    let held = client
        .request(json!({"op": "partial", "path": "kept.bin"}))
        .await;
    assert_eq!(held["length"], 1, "{held}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(partial.exists());
}

/// A running `ferry-server` process, killed with SIGKILL when dropped: no clean-up at all,
/// like a crash or a power cut, and no stray server if an assertion fails.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A server's log lines as they come, read on a thread so that waiting for one can time out.
struct Log {
    lines: std::sync::mpsc::Receiver<String>,
    /// Lines read while looking for an earlier one, still to be searched.
    seen: Vec<String>,
}

impl Log {
    fn new(stderr: ChildStderr) -> Log {
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Log {
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line, seen before or still to come, that `matches`; fails after 30 s or when
    /// the server exits first.
    fn find(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        if let Some(at) = self.seen.iter().position(|line| matches(line)) {
            return self.seen.remove(at);
        }
        let deadline = Instant::now() + common::STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if matches(&line) => return line,
                Ok(line) => self.seen.push(line),
                Err(err) => panic!("no log line for {what} ({err}); the log: {:#?}", self.seen),
            }
        }
    }
}

/// The real binary on `root`; returns it with its address once it logs "serving".
fn start_binary(root: &Path, extra: &[&str]) -> (Running, String, Log) {
    let child = Command::new(env!("CARGO_BIN_EXE_ferry-server"))
        .arg("--root")
        .arg(root)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let mut log = Log::new(child.0.stderr.take().unwrap());
    // The sweep at start may log before or after this line; `find` keeps what it passes over.
    let serving = log.find("serving", |line| {
        line.contains("serving") && line.contains("addr=")
    });
    let addr = serving
        .split_whitespace()
        .find_map(|word| word.strip_prefix("addr="))
        .unwrap()
        .to_owned();
    (child, addr, log)
}

fn kill(server: Running) {
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_upload_keeps_the_old_file_and_sweeps_the_partial_after_expiry() {
    let base = tempfile::tempdir().unwrap();
    let root: PathBuf = base.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("doc.bin"), b"old content").unwrap();
    let partial = root.join(".ferry-part.doc.bin");

    // Half an upload, then SIGKILL: no chance to clean up.
    let (server, addr, _log) = start_binary(&root, &[]);
    let mut client = Client::connect(addr.parse().unwrap()).await;
    client.hello().await;
    let data = pattern(2 * MIB, 4);
    client
        .send_json(&json!({"op": "put", "path": "doc.bin", "size": data.len(), "overwrite": true}))
        .await;
    client.send(&data[..MIB]).await;
    until("half the upload is on disk", || len(&partial) == MIB as u64).await;
    kill(server);
    assert_eq!(std::fs::read(root.join("doc.bin")).unwrap(), b"old content");
    assert_eq!(len(&partial), MIB as u64);

    // Restarted with the default expiry, the fresh partial stays: it is what a resume needs.
    let (server, addr, _log) = start_binary(&root, &[]);
    let mut client = Client::connect(addr.parse().unwrap()).await;
    client.hello().await;
    let held = client
        .request(json!({"op": "partial", "path": "doc.bin"}))
        .await;
    assert_eq!(held["length"], MIB, "{held}");
    kill(server);

    // A day later (as far as its mtime says), a restart with a 1 h expiry sweeps it at once.
    age(&partial, Duration::from_secs(25 * 3600));
    let (server, addr, mut log) = start_binary(&root, &["--partial-expiry", "1h"]);
    let swept = log.find("the sweep", |line| {
        line.contains("swept stale partial uploads")
    });
    assert!(swept.contains("removed=1"), "{swept}");
    assert!(!partial.exists());
    assert_eq!(std::fs::read(root.join("doc.bin")).unwrap(), b"old content");
    let mut client = Client::connect(addr.parse().unwrap()).await;
    client.hello().await;
    let held = client
        .request(json!({"op": "partial", "path": "doc.bin"}))
        .await;
    assert_eq!(held["length"], 0, "{held}");
    kill(server);
}

#[test]
fn the_binary_refuses_limits_it_cannot_honour() {
    let root = tempfile::tempdir().unwrap();
    for flags in [
        &["--max-header-len", "70000"][..],
        &["--max-name-len", "256"],
        &["--max-path-len", "0"],
        &["--max-upload-size", "ten gigs"],
        &["--reserve", "lots"],
        &["--partial-expiry", "0s"],
        &["--partial-expiry", "soon"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_ferry-server"))
            .arg("--root")
            .arg(root.path())
            .args(["--listen", "127.0.0.1:0"])
            .args(flags)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flags:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flags[0]), "{flags:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_roots_outside_the_server_root_are_swept_too() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().canonicalize().unwrap();
    let ann_root = dir.join("ann");
    std::fs::create_dir_all(ann_root.join("sub")).unwrap();
    let stale = ann_root.join("sub/.ferry-part.left.bin");
    std::fs::write(&stale, b"abandoned by ann").unwrap();
    age(&stale, Duration::from_secs(3600));
    let young = ann_root.join(".ferry-part.young.bin");
    std::fs::write(&young, b"resumable").unwrap();
    let users = users_file(&dir.join("users"), &[("ann", "pw", &ann_root, false)]);

    let server = Server::start_with(|config| {
        config.users = Some(std::sync::Arc::new(users));
        config.partial_expiry = Some(Duration::from_secs(10));
    })
    .await;
    // ann's root is not below the server's.
    assert!(!ann_root.starts_with(server.path("")));
    until("ann's stale partial is swept", || !stale.exists()).await;
    assert!(young.exists(), "a young partial was swept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_give_sizes_people_can_read_and_exact_bytes() {
    let server = Server::start_with(|config| config.max_upload_size = Some(MIB as u64)).await;
    let mut client = server.client().await;
    client
        .send_json(&json!({"op": "put", "path": "big.bin", "size": 2 * MIB}))
        .await;
    let reply = client.read_reply().await;
    assert_eq!(
        reply["error"]["message"],
        "big.bin: 2 MiB (2097152 bytes) is over this server's upload limit of 1 MiB (1048576 bytes)",
        "{reply}"
    );
}
