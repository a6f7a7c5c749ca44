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

use common::{Proxy, TestServer, bytes, ok, p};
use ferry_testkit::data::{chmod, mode_of, umask as server_umask};

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

/// A directory as the destination the CLI copies into (a trailing `/`).
fn dir_dest(dir: &Path) -> String {
    format!("{}/", dir.display())
}

fn write_with_mode(path: &Path, data: &[u8], mode: u32) {
    std::fs::write(path, data).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
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
        let dest = dir_dest(&dl);
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
    let dest = dir_dest(dl);
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
        &["get", &proxy.url("big.bin"), &dir_dest(local.path())],
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
    let desk = tmux::Desk::on_shm();
    let local = &desk.local;
    // Up: a readable local key replaces the server's private one.
    write_with_mode(&local.join("key.pem"), b"new key\n", 0o644);
    write_with_mode(&server.path("key.pem"), b"old key\n", 0o600);
    // Down: the server's readable copy replaces the user's private one.
    write_with_mode(&local.join("secret.txt"), b"old secret\n", 0o600);
    write_with_mode(&server.path("secret.txt"), b"new secret\n", 0o644);

    let tmux = desk.ferry(&[&server.url("")], (120, 40));
    tmux.wait_for("both listings", |s| {
        s.contains("key.pem") && s.contains("secret.txt") && s.contains("connected")
    });
    // The local pane has focus; key.pem sorts first, below `..`.
    tmux.keys(&["Home", "Down", "F5", "Enter"]);
    tmux.wait_for("the conflict question", |s| s.contains("File exists"));
    tmux.keys(&["o"]);
    wait_for_bytes(&server.path("key.pem"), b"new key\n", &tmux);
    tmux.wait_for("the upload verified", |s| s.contains("#1 ✓"));
    assert_eq!(mode_of(&server.path("key.pem")), 0o600);

    tmux.keys(&["Tab", "Home", "Down", "F5", "Enter"]);
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

/// Gives every directory under `root` owner `rwx` again, so a temp dir holding a copy of a
/// read-only directory can be removed.
fn unlock(root: &Path) {
    for entry in std::fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            chmod(&entry.path(), 0o755);
            unlock(&entry.path());
        }
    }
}

#[test]
fn a_private_directory_stays_private_both_ways() {
    // QA's case: a 0644 file is protected only by its 0700 directory.
    let server = TestServer::start_shm();
    let mask = server_umask();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let ptree = local.path().join("ptree");
    std::fs::create_dir_all(ptree.join("priv/deeper")).unwrap();
    write_with_mode(&ptree.join("priv/secret"), b"s\n", 0o644);
    write_with_mode(&ptree.join("priv/deeper/key"), b"k\n", 0o644);
    chmod(&ptree.join("priv/deeper"), 0o750);
    chmod(&ptree.join("priv"), 0o700);
    chmod(&ptree, 0o751);

    ok(ferry("022", &["put", "-r", p(&ptree), &server.url("")]));
    assert_eq!(mode_of(&server.path("ptree")), 0o751 & !mask);
    assert_eq!(mode_of(&server.path("ptree/priv")), 0o700);
    assert_eq!(mode_of(&server.path("ptree/priv/deeper")), 0o750 & !mask);
    assert_eq!(mode_of(&server.path("ptree/priv/secret")), 0o644 & !mask);
    assert_eq!(
        std::fs::read(server.path("ptree/priv/secret")).unwrap(),
        b"s\n"
    );

    for umask in ["022", "077"] {
        let mask: u32 = u32::from_str_radix(umask, 8).unwrap();
        let g1 = local.path().join(format!("g1-{umask}"));
        std::fs::create_dir(&g1).unwrap();
        let dest = dir_dest(&g1);
        ok(ferry(umask, &["get", "-r", &server.url("ptree"), &dest]));
        let copy = g1.join("ptree");
        assert_eq!(
            mode_of(&copy),
            0o751 & !mask & !server_umask(),
            "umask {umask}"
        );
        assert_eq!(mode_of(&copy.join("priv")), 0o700, "umask {umask}");
        assert_eq!(
            mode_of(&copy.join("priv/deeper")),
            0o750 & !mask & !server_umask(),
            "umask {umask}"
        );
        assert_eq!(std::fs::read(copy.join("priv/secret")).unwrap(), b"s\n");
        assert_eq!(std::fs::read(copy.join("priv/deeper/key")).unwrap(), b"k\n");
    }

    // An existing directory keeps the mode its owner gave it, both ways.
    chmod(&server.path("ptree/priv"), 0o711);
    ok(ferry(
        "022",
        &["put", "-r", "--overwrite", p(&ptree), &server.url("")],
    ));
    assert_eq!(mode_of(&server.path("ptree/priv")), 0o711);
    let copy = local.path().join("g1-022/ptree");
    chmod(&copy.join("priv"), 0o770);
    ok(ferry(
        "022",
        &[
            "get",
            "-r",
            "--overwrite",
            &server.url("ptree"),
            &dir_dest(&local.path().join("g1-022")),
        ],
    ));
    assert_eq!(mode_of(&copy.join("priv")), 0o770);
}

#[test]
fn a_read_only_directory_is_copied_writable_by_its_owner_with_its_files() {
    let server = TestServer::start_shm();
    let mask = server_umask();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let ro = local.path().join("ro");
    std::fs::create_dir_all(ro.join("inner")).unwrap();
    write_with_mode(&ro.join("a.txt"), b"a\n", 0o444);
    write_with_mode(&ro.join("inner/b.txt"), b"b\n", 0o644);
    // Owner bits are added back, group and other ones never.
    chmod(&ro.join("inner"), 0o550);
    chmod(&ro, 0o555);

    ok(ferry("022", &["put", "-r", p(&ro), &server.url("")]));
    assert_eq!(mode_of(&server.path("ro")), 0o755 & !mask);
    assert_eq!(mode_of(&server.path("ro/inner")), 0o750 & !mask);
    assert_eq!(std::fs::read(server.path("ro/a.txt")).unwrap(), b"a\n");
    assert_eq!(
        std::fs::read(server.path("ro/inner/b.txt")).unwrap(),
        b"b\n"
    );

    // The server's own read-only tree comes down the same way.
    chmod(&server.path("ro/inner"), 0o550);
    chmod(&server.path("ro"), 0o555);
    let dl = local.path().join("dl");
    std::fs::create_dir(&dl).unwrap();
    ok(ferry(
        "002",
        &["get", "-r", &server.url("ro"), &dir_dest(&dl)],
    ));
    assert_eq!(mode_of(&dl.join("ro")), 0o755);
    assert_eq!(mode_of(&dl.join("ro/inner")), 0o750);
    assert_eq!(std::fs::read(dl.join("ro/a.txt")).unwrap(), b"a\n");
    assert_eq!(std::fs::read(dl.join("ro/inner/b.txt")).unwrap(), b"b\n");

    unlock(local.path());
    chmod(&ro, 0o755);
    unlock(&server.path(""));
    chmod(&server.path("ro"), 0o755);
}

#[test]
fn sticky_and_setgid_directories_lose_their_special_bits() {
    let server = TestServer::start_shm();
    let mask = server_umask();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let src = local.path().join("special");
    std::fs::create_dir_all(src.join("tmp")).unwrap();
    std::fs::create_dir_all(src.join("team")).unwrap();
    std::fs::write(src.join("tmp/x"), b"x").unwrap();
    std::fs::write(src.join("team/y"), b"y").unwrap();
    chmod(&src.join("tmp"), 0o1777);
    chmod(&src.join("team"), 0o2750);
    assert_eq!(mode_of(&src.join("tmp")), 0o1777);

    ok(ferry("022", &["put", "-r", p(&src), &server.url("")]));
    assert_eq!(mode_of(&server.path("special/tmp")), 0o777 & !mask);
    assert_eq!(mode_of(&server.path("special/team")), 0o750 & !mask);
    assert_eq!(std::fs::read(server.path("special/team/y")).unwrap(), b"y");

    chmod(&server.path("special/tmp"), 0o1777);
    chmod(&server.path("special/team"), 0o2750);
    let dl = local.path().join("dl");
    std::fs::create_dir(&dl).unwrap();
    ok(ferry(
        "002",
        &["get", "-r", &server.url("special"), &dir_dest(&dl)],
    ));
    assert_eq!(mode_of(&dl.join("special/tmp")), 0o775);
    assert_eq!(mode_of(&dl.join("special/team")), 0o750);
    assert_eq!(std::fs::read(dl.join("special/tmp/x")).unwrap(), b"x");
}

#[test]
fn the_tuis_tree_copies_keep_private_directories_private_both_ways() {
    let server = TestServer::start_shm();
    let mask = server_umask();
    let desk = tmux::Desk::on_shm();
    let local = &desk.local;
    // Up: QA's tree, a readable file in a private directory.
    std::fs::create_dir_all(local.join("ptree/priv")).unwrap();
    write_with_mode(&local.join("ptree/priv/secret"), b"up\n", 0o644);
    chmod(&local.join("ptree/priv"), 0o700);
    chmod(&local.join("ptree"), 0o750);
    // Down: the same shape on the server; sorts before the uploaded tree.
    std::fs::create_dir_all(server.path("aaa/priv")).unwrap();
    write_with_mode(&server.path("aaa/priv/secret"), b"down\n", 0o644);
    chmod(&server.path("aaa/priv"), 0o700);
    chmod(&server.path("aaa"), 0o750);

    let tmux = desk.ferry(&[&server.url("")], (120, 40));
    tmux.wait_for("both listings", |s| {
        s.contains("ptree") && s.contains("aaa") && s.contains("connected")
    });
    tmux.keys(&["Home", "Down", "F5", "Enter"]);
    wait_for_bytes(&server.path("ptree/priv/secret"), b"up\n", &tmux);
    tmux.wait_for("the upload verified", |s| s.contains("#1 ✓"));
    assert_eq!(mode_of(&server.path("ptree/priv")), 0o700);
    assert_eq!(mode_of(&server.path("ptree")), 0o750 & !mask);

    tmux.keys(&["Tab", "Home", "F5", "Enter"]);
    wait_for_bytes(&local.join("aaa/priv/secret"), b"down\n", &tmux);
    tmux.wait_for("the download verified", |s| s.contains("#2 ✓"));
    assert_eq!(mode_of(&local.join("aaa/priv")), 0o700);
    assert_eq!(mode_of(&local.join("aaa")), 0o750 & !mask);

    tmux.keys(&["q"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
}
