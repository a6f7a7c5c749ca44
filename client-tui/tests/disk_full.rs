//! A download onto a full disk, for real: the `ferry` binary runs on a private tiny tmpfs in
//! its own user and mount namespaces (`unshare -Urm`, as `server/tests/no_space.rs` does for
//! the server), against a real server on loopback. A download that cannot fit is refused
//! before its first byte; one that meets a full disk half-way stops reading at once and says
//! where the bytes that arrived are kept and how many there are.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proxy, TestServer, bytes, text};

const MIB: usize = 1024 * 1024;

/// `ferry ARGS... DEST` inside a fresh namespace whose `mount` (a temporary directory) is a
/// tmpfs of `size`; `DEST` is relative to it.
fn ferry_on_tmpfs(size: &str, mount: &Path, args: &[&str], dest: &str) -> Child {
    let script = r#"mount -t tmpfs -o "size=$1" tmpfs "$2" && cd "$2" && shift 2 && exec "$@""#;
    Command::new("unshare")
        .args(["-Urm", "sh", "-c", script, "sh", size])
        .arg(mount)
        .arg(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .arg(dest)
        .env_remove("FERRY_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run unshare (util-linux): {err}"))
}

/// The tmpfs as the process in the namespace sees it, reached through its `/proc` root.
fn inside(child: &Child, mount: &Path) -> PathBuf {
    PathBuf::from(format!("/proc/{}/root", child.id())).join(mount.strip_prefix("/").unwrap())
}

#[test]
fn a_download_bigger_than_the_free_space_is_refused_before_its_first_byte() {
    let server = TestServer::start();
    std::fs::write(server.path("big.bin"), bytes(20 * MIB, 1)).unwrap();
    std::fs::create_dir(server.path("tree")).unwrap();
    for i in 0..3 {
        std::fs::write(server.path(&format!("tree/{i}.bin")), bytes(2 * MIB, i)).unwrap();
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = runtime.block_on(Proxy::start(server.addr, None));
    let mount = tempfile::tempdir().unwrap();
    let mount = mount.path().canonicalize().unwrap();

    let child = ferry_on_tmpfs("4m", &mount, &["get", &proxy.url("big.bin")], "big.bin");
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no_space"), "{stderr}");
    assert!(
        stderr.contains("20 MiB") && stderr.contains("free"),
        "{stderr}"
    );
    assert!(
        proxy.total().1 < MIB as u64,
        "{:?} came down",
        proxy.total()
    );

    // A tree: its sum (6 MiB), though every file alone would fit.
    let child = ferry_on_tmpfs("4m", &mount, &["get", "-r", &proxy.url("tree")], "tree");
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no_space") && stderr.contains("6 MiB"),
        "{stderr}"
    );
}

#[test]
fn a_disk_that_fills_half_way_stops_the_download_and_names_the_partial() {
    let server = TestServer::start();
    let size = 12 * MIB;
    std::fs::write(server.path("big.bin"), bytes(size, 2)).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // About 6 MiB/s: slow enough to fill the disk under the download's feet.
    let proxy = runtime.block_on(Proxy::start(server.addr, Some(Duration::from_millis(10))));
    let mount = tempfile::tempdir().unwrap();
    let mount = mount.path().canonicalize().unwrap();

    let child = ferry_on_tmpfs("16m", &mount, &["get", &proxy.url("big.bin")], "big.bin");
    let root = inside(&child, &mount);
    let partial = root.join(".ferry-part.big.bin");
    let start = Instant::now();
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < 2 * MIB as u64 {
        assert!(start.elapsed() < Duration::from_secs(60), "no partial grew");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Someone else takes the rest of the disk.
    let _ = std::fs::write(root.join("filler"), vec![1u8; 12 * MIB]);
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no_space"), "{stderr}");
    assert!(stderr.contains(".ferry-part.big.bin"), "{stderr}");
    assert!(stderr.contains("MiB that arrived are kept"), "{stderr}");
    let down = proxy.total().1;
    assert!(
        down < (size - 3 * MIB) as u64,
        "{down} bytes came down: it read on after the disk was full"
    );
}
