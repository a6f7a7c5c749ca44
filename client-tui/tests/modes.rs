//! Permission bits survive a transfer both ways, as they do with `cp`, `scp` and `rsync`: the
//! real `ferry` binary against a real server on 127.0.0.1. A new file gets the source's
//! permission bits less the receiver's umask; a file that is replaced keeps its own mode, so
//! `--overwrite` never makes a private file readable by others; a partial is private while its
//! bytes arrive. The binary runs under an explicit umask (`sh -c 'umask ...; exec ferry'`); the
//! in-process server has this test process's umask, read here, never assumed. The TUI's own
//! overwrite is checked in tmux, as a user would meet it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Proxy, TestServer, bytes, ok};

const MIB: usize = 1024 * 1024;

/// The real binary under `umask`.
fn ferry(umask: &str, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env_remove("FERRY_TOKEN")
        .output()
        .unwrap()
}

/// This process's umask, which the in-process server shares.
fn server_umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn write_with_mode(path: &Path, data: &[u8], mode: u32) {
    std::fs::write(path, data).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn put_keeps_a_scripts_and_a_secrets_permission_bits() {
    let server = TestServer::start_shm();
    let mask = server_umask();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let dir = local.path();
    write_with_mode(&dir.join("run.sh"), b"#!/bin/sh\n", 0o755);
    write_with_mode(&dir.join("secret.txt"), b"s\n", 0o600);
    // Over 1 MiB: streamed, not read whole.
    let big = bytes(3 * MIB, 1);
    write_with_mode(&dir.join("big.bin"), &big, 0o700);
    ok(ferry(
        "022",
        &[
            "put",
            p(&dir.join("run.sh")),
            p(&dir.join("secret.txt")),
            p(&dir.join("big.bin")),
            &server.url(""),
        ],
    ));
    assert_eq!(mode_of(&server.path("run.sh")), 0o755 & !mask);
    assert_eq!(mode_of(&server.path("secret.txt")), 0o600 & !mask);
    assert_eq!(mode_of(&server.path("big.bin")), 0o700 & !mask);
    assert_eq!(std::fs::read(server.path("big.bin")).unwrap(), big);

    // A tree of small files goes up read ahead in batches, each with its own mode.
    let tree = dir.join("tree");
    std::fs::create_dir(&tree).unwrap();
    let modes = [0o755, 0o600, 0o644, 0o640, 0o700, 0o444];
    for (i, mode) in modes.iter().enumerate() {
        write_with_mode(
            &tree.join(format!("f{i}")),
            &bytes(100 + i, i as u64),
            *mode,
        );
    }
    ok(ferry("022", &["put", "-r", p(&tree), &server.url("")]));
    for (i, mode) in modes.iter().enumerate() {
        let name = format!("tree/f{i}");
        assert_eq!(mode_of(&server.path(&name)), mode & !mask, "{name}");
    }
}

#[test]
fn put_overwrite_keeps_the_servers_mode() {
    let server = TestServer::start_shm();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let dir = local.path();
    // QA's case: the copy on the server was made private or executable by its owner.
    write_with_mode(&dir.join("run.sh"), b"#!/bin/sh\necho new\n", 0o755);
    write_with_mode(&server.path("run.sh"), b"#!/bin/sh\n", 0o700);
    write_with_mode(&dir.join("secret.txt"), b"new secret\n", 0o644);
    write_with_mode(&server.path("secret.txt"), b"old secret\n", 0o600);
    let big = bytes(2 * MIB + 5, 2);
    write_with_mode(&dir.join("big.key"), &big, 0o644);
    write_with_mode(&server.path("big.key"), b"old", 0o600);
    ok(ferry(
        "022",
        &[
            "put",
            "--overwrite",
            p(&dir.join("run.sh")),
            p(&dir.join("secret.txt")),
            p(&dir.join("big.key")),
            &server.url(""),
        ],
    ));
    assert_eq!(
        std::fs::read(server.path("secret.txt")).unwrap(),
        b"new secret\n"
    );
    assert_eq!(std::fs::read(server.path("big.key")).unwrap(), big);
    assert_eq!(mode_of(&server.path("run.sh")), 0o700);
    assert_eq!(mode_of(&server.path("secret.txt")), 0o600);
    assert_eq!(mode_of(&server.path("big.key")), 0o600);
}

#[test]
fn get_gives_the_servers_mode_less_the_local_umask() {
    let server = TestServer::start_shm();
    write_with_mode(&server.path("run.sh"), b"#!/bin/sh\n", 0o755);
    write_with_mode(&server.path("secret.txt"), b"s\n", 0o600);
    let big = bytes(3 * MIB, 3);
    write_with_mode(&server.path("big.bin"), &big, 0o750);
    // Never setuid on this side, whatever the server's file has.
    write_with_mode(&server.path("tool"), b"\x7fELF", 0o4755);
    std::fs::create_dir(server.path("tree")).unwrap();
    let modes = [0o755, 0o600, 0o644, 0o640];
    for (i, mode) in modes.iter().enumerate() {
        write_with_mode(
            &server.path(&format!("tree/f{i}")),
            &bytes(50 + i, i as u64),
            *mode,
        );
    }
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    for (umask, mask) in [("022", 0o022), ("077", 0o077)] {
        let dl = local.path().join(umask);
        std::fs::create_dir(&dl).unwrap();
        let dest = format!("{}/", dl.display());
        ok(ferry(
            umask,
            &[
                "get",
                &server.url("run.sh"),
                &server.url("secret.txt"),
                &server.url("big.bin"),
                &server.url("tool"),
                &dest,
            ],
        ));
        assert_eq!(mode_of(&dl.join("run.sh")), 0o755 & !mask, "umask {umask}");
        assert_eq!(mode_of(&dl.join("secret.txt")), 0o600, "umask {umask}");
        assert_eq!(mode_of(&dl.join("big.bin")), 0o750 & !mask, "umask {umask}");
        assert_eq!(mode_of(&dl.join("tool")), 0o755 & !mask, "umask {umask}");
        assert_eq!(std::fs::read(dl.join("big.bin")).unwrap(), big);
        ok(ferry(umask, &["get", "-r", &server.url("tree"), &dest]));
        for (i, mode) in modes.iter().enumerate() {
            let path = dl.join(format!("tree/f{i}"));
            assert_eq!(
                mode_of(&path),
                mode & !mask,
                "{} umask {umask}",
                path.display()
            );
        }
    }
}

#[test]
fn get_overwrite_and_resume_keep_a_private_file_private() {
    let server = TestServer::start_shm();
    write_with_mode(&server.path("secret.txt"), b"new secret\n", 0o644);
    let big = bytes(3 * MIB, 4);
    write_with_mode(&server.path("big.key"), &big, 0o644);
    write_with_mode(&server.path("half.key"), &big, 0o644);
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let dl = local.path();
    write_with_mode(&dl.join("secret.txt"), b"old\n", 0o600);
    write_with_mode(&dl.join("big.key"), b"old", 0o600);
    // The first half of the file, from an earlier copy: --resume continues it.
    write_with_mode(&dl.join("half.key"), &big[..MIB + 17], 0o600);
    let dest = format!("{}/", dl.display());
    ok(ferry(
        "022",
        &[
            "get",
            "--overwrite",
            &server.url("secret.txt"),
            &server.url("big.key"),
            &dest,
        ],
    ));
    assert_eq!(
        std::fs::read(dl.join("secret.txt")).unwrap(),
        b"new secret\n"
    );
    assert_eq!(std::fs::read(dl.join("big.key")).unwrap(), big);
    assert_eq!(mode_of(&dl.join("secret.txt")), 0o600);
    assert_eq!(mode_of(&dl.join("big.key")), 0o600);

    ok(ferry(
        "022",
        &["get", "--resume", &server.url("half.key"), &dest],
    ));
    assert_eq!(std::fs::read(dl.join("half.key")).unwrap(), big);
    assert_eq!(mode_of(&dl.join("half.key")), 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(dl)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".ferry-part."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_download_is_private_until_it_is_whole() {
    let server = TestServer::start_shm();
    let big = bytes(16 * MIB, 5);
    write_with_mode(&server.path("big.bin"), &big, 0o644);
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // A slow link, so the partial can be looked at while most of the file has still to come.
    let proxy = runtime.block_on(Proxy::start(server.addr, Some(Duration::from_millis(1))));
    let down = proxy.down.clone();
    let partial = local.path().join(".ferry-part.big.bin");
    let done = local.path().join("big.bin");
    let watcher = std::thread::spawn(move || {
        let started = Instant::now();
        // The mode of the partial once it holds some of the bytes; `None` if the file was
        // whole before it could be seen.
        while !done.exists() && started.elapsed() < Duration::from_secs(60) {
            if down.load(Ordering::Relaxed) > 2 * MIB as u64
                && let Ok(meta) = std::fs::symlink_metadata(&partial)
                && meta.len() > 0
            {
                return Some(meta.permissions().mode() & 0o7777);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    });
    ok(ferry(
        "022",
        &[
            "get",
            &proxy.url("big.bin"),
            &format!("{}/", local.path().display()),
        ],
    ));
    assert_eq!(
        watcher.join().unwrap(),
        Some(0o600),
        "the partial's mode in flight"
    );
    assert_eq!(mode_of(&local.path().join("big.bin")), 0o644);
    assert_eq!(std::fs::read(local.path().join("big.bin")).unwrap(), big);
    drop(proxy);
    drop(runtime);
}

/// Polls until `path` holds `expected`, showing the screen if it never does.
fn wait_for_bytes(path: &Path, expected: &[u8], tmux: &tmux::Tmux) {
    let start = Instant::now();
    while std::fs::read(path).ok().as_deref() != Some(expected) {
        assert!(
            start.elapsed() < tmux::WAIT,
            "{} never got the expected bytes; the screen:\n{}",
            path.display(),
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_tuis_overwrite_keeps_private_files_private_both_ways() {
    let server = TestServer::start_shm();
    let tmp = tempfile::tempdir_in("/dev/shm").unwrap();
    let local = tmp.path().join("local");
    let home = tmp.path().join("home");
    std::fs::create_dir(&local).unwrap();
    std::fs::create_dir(&home).unwrap();
    // Up: a readable local key replaces the server's private one.
    write_with_mode(&local.join("key.pem"), b"new key\n", 0o644);
    write_with_mode(&server.path("key.pem"), b"old key\n", 0o600);
    // Down: the server's readable copy replaces the user's private one.
    write_with_mode(&local.join("secret.txt"), b"old secret\n", 0o600);
    write_with_mode(&server.path("secret.txt"), b"new secret\n", 0o644);

    let tmux = tmux::Tmux::start_ferry(
        tmp.path().join("tmux.sock"),
        &local,
        &[("HOME", &home)],
        &[&server.url("")],
        (120, 40),
    );
    tmux.wait_for("both listings", |s| {
        s.contains("key.pem") && s.contains("secret.txt") && s.contains("connected")
    });
    // The local pane has focus; key.pem sorts first.
    tmux.keys(&["Home", "F5"]);
    tmux.wait_for("the conflict question", |s| s.contains("File exists"));
    tmux.keys(&["o"]);
    wait_for_bytes(&server.path("key.pem"), b"new key\n", &tmux);
    tmux.wait_for("the upload verified", |s| s.contains("#1 ✓"));
    assert_eq!(mode_of(&server.path("key.pem")), 0o600);

    tmux.keys(&["Tab", "Home", "Down", "F5"]);
    tmux.wait_for("the second conflict question", |s| {
        s.contains("File exists") && s.contains("secret.txt")
    });
    tmux.keys(&["o"]);
    wait_for_bytes(&local.join("secret.txt"), b"new secret\n", &tmux);
    tmux.wait_for("the download verified", |s| s.contains("#2 ✓"));
    assert_eq!(mode_of(&local.join("secret.txt")), 0o600);

    tmux.keys(&["q"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
}
