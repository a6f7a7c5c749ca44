//! The real `ferry` binary tells the truth about what it did not copy: an unreadable directory
//! inside `get -r` or `put -r` is named with its reason (on stderr and in `--json`), the exit
//! status says the copy is partial (23), links are left out by design unless `--strict`, and
//! one item of several that the server refuses fails alone.
//!
//! Permission denied needs a process that is not root: the server (for `get`) or the client
//! (for `put`) runs as `nobody` through setpriv.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/endless.rs"]
mod endless;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{TestServer, ferry, ferry_as_nobody, ferry_running, interrupt, p, text};
use ferry_testkit::data::chmod;
use ferry_testkit::nobody::NobodyServer;
use serde_json::Value;

/// A tree nobody can walk except `private`, which only root may read.
fn tree_with_private(root: &Path) {
    chmod(root, 0o755);
    for dir in ["a", "a/open", "a/private", "a/z_after"] {
        std::fs::create_dir(root.join(dir)).unwrap();
        chmod(&root.join(dir), 0o755);
    }
    for (file, body) in [
        ("a/open/f.txt", "open"),
        ("a/private/secret.txt", "secret"),
        ("a/z_after/g.txt", "after"),
    ] {
        std::fs::write(root.join(file), body).unwrap();
        chmod(&root.join(file), 0o644);
    }
    chmod(&root.join("a/private"), 0o700);
}

fn json_lines(out: &Output) -> Vec<Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn left_out<'a>(lines: &'a [Value], path: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["type"] == "left_out" && l["path"] == path)
        .unwrap_or_else(|| panic!("{path} not named in {lines:?}"))
}

#[test]
fn get_r_names_an_unreadable_directory_and_exits_23() {
    let served = tempfile::tempdir_in("/dev/shm").unwrap();
    tree_with_private(served.path());
    std::os::unix::fs::symlink("open/f.txt", served.path().join("a/link")).unwrap();
    let server = NobodyServer::start(served.path());
    let dest = tempfile::tempdir().unwrap();
    let out = ferry(&[
        "get",
        "-r",
        "--json",
        &server.url("a"),
        dest.path().to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(23), "{stderr}");
    assert!(
        stderr.contains("ferry: unreadable: a/private: forbidden: Permission denied"),
        "{stderr}"
    );
    assert!(stderr.contains("ferry: symlink: a/link: "), "{stderr}");
    assert!(
        !stderr.contains("names that cannot be transferred"),
        "{stderr}"
    );
    let lines = json_lines(&out);
    let private = left_out(&lines, "a/private");
    assert_eq!(private["reason"], "unreadable");
    assert!(
        private["message"]
            .as_str()
            .unwrap()
            .starts_with("forbidden")
    );
    assert_eq!(left_out(&lines, "a/link")["reason"], "symlink");
    let done: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "file" && l["status"] == "done")
        .map(|l| l["path"].as_str().unwrap())
        .collect();
    assert_eq!(done.len(), 2, "{lines:?}");
    assert!(done.contains(&"a/open/f.txt") && done.contains(&"a/z_after/g.txt"));
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["exit"], 23);
    assert_eq!(summary["files"], 2);
    assert_eq!(summary["left_out"]["errors"], 1);
    assert_eq!(summary["left_out"]["symlinks_or_special"], 1);
    // What could be read arrived.
    assert_eq!(
        std::fs::read(dest.path().join("a/z_after/g.txt")).unwrap(),
        b"after"
    );

    // Links alone are left out by design: status 0, unless --strict.
    let readable = ["get", "-r", &server.url("a/open")];
    std::os::unix::fs::symlink("f.txt", served.path().join("a/open/l")).unwrap();
    let again = tempfile::tempdir().unwrap();
    let d = again.path().to_str().unwrap();
    let out = ferry(&[readable[0], readable[1], readable[2], d]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("ferry: symlink: a/open/l: "));
    let out = ferry(&[
        readable[0],
        readable[1],
        "--strict",
        "--overwrite",
        readable[2],
        d,
    ]);
    assert_eq!(out.status.code(), Some(23), "{}", text(&out.stderr));
}

#[test]
fn put_r_names_an_unreadable_directory_and_goes_on_past_it() {
    let server = TestServer::start_shm();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    tree_with_private(local.path());
    let out = ferry_as_nobody(&[
        "put",
        "-r",
        "--json",
        p(&local.path().join("a")),
        &server.url(""),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(23), "{stderr}");
    let private: PathBuf = local.path().join("a/private");
    assert!(
        stderr.contains(&format!(
            "ferry: unreadable: {}: forbidden: Permission denied",
            private.display()
        )),
        "{stderr}"
    );
    let lines = json_lines(&out);
    assert_eq!(
        left_out(&lines, private.to_str().unwrap())["reason"],
        "unreadable"
    );
    assert_eq!(lines.last().unwrap()["exit"], 23);
    // The directories after the unreadable one were still read and sent.
    assert_eq!(
        std::fs::read(server.path("a/z_after/g.txt")).unwrap(),
        b"after"
    );
    assert_eq!(std::fs::read(server.path("a/open/f.txt")).unwrap(), b"open");
}

#[test]
fn one_item_the_server_refuses_fails_alone() {
    let served = tempfile::tempdir_in("/dev/shm").unwrap();
    chmod(served.path(), 0o755);
    std::fs::create_dir(served.path().join("dest")).unwrap();
    chmod(&served.path().join("dest"), 0o777);
    // An existing directory the server may not read: a copy into it cannot learn what is there.
    std::fs::create_dir(served.path().join("dest/locked")).unwrap();
    chmod(&served.path().join("dest/locked"), 0o700);
    let server = NobodyServer::start(served.path());
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("one.txt"), b"1").unwrap();
    std::fs::create_dir(local.path().join("locked")).unwrap();
    std::fs::write(local.path().join("locked/inner.txt"), b"i").unwrap();
    std::fs::write(local.path().join("two.txt"), b"2").unwrap();
    let out = ferry(&[
        "put",
        "-r",
        local.path().join("one.txt").to_str().unwrap(),
        local.path().join("locked").to_str().unwrap(),
        local.path().join("two.txt").to_str().unwrap(),
        &server.url("dest/"),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ferry: forbidden: dest/locked: "),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(served.path().join("dest/one.txt")).unwrap(),
        b"1"
    );
    assert_eq!(
        std::fs::read(served.path().join("dest/two.txt")).unwrap(),
        b"2"
    );
}

/// The resident memory of a process, from `/proc`.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn ls_of_a_listing_that_never_ends_prints_as_it_goes_in_bounded_memory() {
    let (_runtime, addr) = endless::start();
    let mut child = ferry_running(&["ls", &format!("ferry://{addr}/big")]);
    let pid = child.id();
    let printed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = {
        let printed = std::sync::Arc::clone(&printed);
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                if line.is_err() {
                    return;
                }
                printed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    // Far past the sorting cap; the old code printed nothing and grew without end.
    let want = 600_000;
    let bound_kib = 150 * 1024;
    let start = std::time::Instant::now();
    let mut peak = 0;
    while printed.load(std::sync::atomic::Ordering::Relaxed) < want {
        let rss = rss_kib(pid).unwrap_or(0);
        peak = peak.max(rss);
        if rss > bound_kib || start.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            panic!(
                "{} lines printed in {:?}, resident memory {rss} KiB (bound {bound_kib} KiB)",
                printed.load(std::sync::atomic::Ordering::Relaxed),
                start.elapsed()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let rss = rss_kib(pid).unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    reader.join().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("ferry: more than 100,000 entries: the rest follow unsorted"),
        "{stderr}"
    );
    eprintln!("ls printed {want} lines, resident memory {rss} KiB (peak {peak} KiB)");
    assert!(rss < bound_kib);
}

#[test]
fn ctrl_c_says_how_to_finish() {
    let server = TestServer::start_shm();
    for i in 0..4 {
        std::fs::create_dir_all(server.path("tree")).unwrap();
        std::fs::write(
            server.path(&format!("tree/f{i}.bin")),
            common::bytes(4 * 1024 * 1024, i),
        )
        .unwrap();
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // A slow link, so the copy is caught in the middle.
    let proxy = runtime.block_on(common::Proxy::start(
        server.addr,
        Some(std::time::Duration::from_millis(5)),
    ));
    let into = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "get",
            "-r",
            &proxy.url("tree"),
            into.path().to_str().unwrap(),
        ])
        .env_remove("FERRY_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while proxy.down.load(std::sync::atomic::Ordering::Relaxed) < 1024 * 1024 {
        assert!(start.elapsed().as_secs() < 60, "the copy never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = interrupt(child);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("ferry: interrupted: "), "{stderr}");
    assert!(
        stderr.contains("what arrived is kept: re-run the same command with --resume to finish"),
        "{stderr}"
    );
}

/// How many files each test below sends, and how big: big enough (over the read-ahead size,
/// and more than the socket buffers of four connections hold)
/// that a slow link keeps most of them waiting.
const RACED_FILES: usize = 40;
const RACED_SIZE: usize = 1024 * 1024;

fn raced_tree(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..RACED_FILES {
        std::fs::write(
            dir.join(format!("f{i:02}")),
            common::bytes(RACED_SIZE, i as u64),
        )
        .unwrap();
    }
}

/// Runs `ferry <args>` with `--json` and, as soon as the first file is reported done (the walk
/// of a one-directory tree is over by then), `remove` takes the source files away; the exit
/// status, the JSON lines and stderr.
fn run_removing_after_first_file(
    args: &[String],
    remove: impl FnOnce(),
) -> (Option<i32>, Vec<Value>, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env_remove("FERRY_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    let mut remove = Some(remove);
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if line["status"] == "done"
            && let Some(remove) = remove.take()
        {
            remove();
        }
        lines.push(line);
    }
    let status = child.wait().unwrap();
    assert!(remove.is_none(), "no file was done: {lines:?}");
    (status.code(), lines, stderr.join().unwrap())
}

/// Every file either arrived whole at `dest` or is named as vanished (`shown` gives the path
/// it is named by); some did vanish; nothing failed.
fn each_arrived_or_vanished(
    lines: &[Value],
    stderr: &str,
    dest: &Path,
    shown: impl Fn(&str) -> String,
) {
    assert!(
        !lines.iter().any(|l| l["status"] == "failed"),
        "{lines:?}\n{stderr}"
    );
    let mut vanished = 0;
    for i in 0..RACED_FILES {
        let name = format!("f{i:02}");
        match std::fs::read(dest.join(&name)) {
            Ok(body) => assert_eq!(body, common::bytes(RACED_SIZE, i as u64), "{name}"),
            Err(_) => {
                let named = left_out(lines, &shown(&name));
                assert_eq!(named["reason"], "vanished", "{named}");
                assert!(
                    named["message"].as_str().unwrap().starts_with("not_found"),
                    "{named}"
                );
                assert!(
                    stderr.contains(&format!("ferry: vanished: {}: not_found", shown(&name))),
                    "{stderr}"
                );
                vanished += 1;
            }
        }
    }
    assert!(vanished > 0, "the slow link let every file through");
    let summary = lines.last().unwrap();
    assert_eq!(summary["left_out"]["vanished"], vanished, "{summary}");
    assert_eq!(summary["exit"], 24, "{summary}");
}

/// A file the walk listed and that is removed on the server before its `get` is not a failure
/// (`not_found`, exit 1) but a vanished entry: named on stderr and in `--json`, exit 24.
#[test]
fn get_r_of_files_removed_after_the_walk_names_them_vanished_and_exits_24() {
    let server = TestServer::start_shm();
    raced_tree(&server.path("t"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = runtime.block_on(common::Proxy::start(
        server.addr,
        Some(std::time::Duration::from_millis(20)),
    ));
    let dest = tempfile::tempdir_in("/dev/shm").unwrap();
    let served = server.path("t");
    let args = [
        "get".to_owned(),
        "-r".to_owned(),
        "--json".to_owned(),
        proxy.url("t"),
        dest.path().display().to_string(),
    ];
    let (code, lines, stderr) = run_removing_after_first_file(&args, || {
        for i in 0..RACED_FILES {
            let _ = std::fs::remove_file(served.join(format!("f{i:02}")));
        }
    });
    assert_eq!(code, Some(24), "{stderr}");
    each_arrived_or_vanished(&lines, &stderr, &dest.path().join("t"), |name| {
        format!("t/{name}")
    });
}

/// The same for `put -r`: a local file removed after the walk, before it is read, vanished.
#[test]
fn put_r_of_files_removed_after_the_walk_names_them_vanished_and_exits_24() {
    let server = TestServer::start_shm();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let source = local.path().join("t");
    raced_tree(&source);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = runtime.block_on(common::Proxy::start(
        server.addr,
        Some(std::time::Duration::from_millis(20)),
    ));
    let args = [
        "put".to_owned(),
        "-r".to_owned(),
        "--json".to_owned(),
        source.display().to_string(),
        proxy.url(""),
    ];
    let (code, lines, stderr) = run_removing_after_first_file(&args, || {
        for i in 0..RACED_FILES {
            let _ = std::fs::remove_file(source.join(format!("f{i:02}")));
        }
    });
    assert_eq!(code, Some(24), "{stderr}");
    each_arrived_or_vanished(&lines, &stderr, &server.path("t"), |name| {
        source.join(name).display().to_string()
    });
}

/// Directories removed on the server while `get -r` walks them: one the walk listed and then
/// could not enter or describe is named as vanished (exit 24), not as unreadable (23) nor as
/// a failure (1); the ones that stay all arrive. The removal races the walk, so the copy is
/// tried until the race is hit.
#[test]
fn get_r_while_directories_vanish_under_the_walk_exits_24_never_23() {
    let server = TestServer::start_shm();
    let tree = server.path("t");
    let mut hits = 0;
    for attempt in 0..30 {
        if hits > 0 {
            break;
        }
        let _ = std::fs::remove_dir_all(&tree);
        for i in 0..3000 {
            std::fs::create_dir_all(tree.join(format!("d{i:04}"))).unwrap();
        }
        let dest = tempfile::tempdir_in("/dev/shm").unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["get", "-r", "--json", &server.url("t")])
            .arg(dest.path())
            .env_remove("FERRY_TOKEN")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Even directories go, last made first, spread over the time the walk takes.
        for i in (0..3000).step_by(2).rev() {
            let _ = std::fs::remove_dir(tree.join(format!("d{i:04}")));
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        let lines = json_lines(&out);
        assert!(
            matches!(out.status.code(), Some(0 | 24)),
            "attempt {attempt}: {:?}\n{stderr}",
            out.status
        );
        for line in &lines {
            assert_ne!(line["status"], "failed", "{line}");
            if line["type"] == "left_out" {
                assert_eq!(line["reason"], "vanished", "{line}");
                let n: usize = line["path"].as_str().unwrap()[3..].parse().unwrap();
                assert_eq!(n % 2, 0, "{line}");
                hits += 1;
            }
        }
        for i in (1..3000).step_by(2) {
            assert!(dest.path().join(format!("t/d{i:04}")).is_dir(), "d{i:04}");
        }
    }
    assert!(hits > 0, "the race was never hit in 30 copies");
}
