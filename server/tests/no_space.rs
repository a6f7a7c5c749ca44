//! A full filesystem gives `no_space`, removes the partial and keeps the connection framed.
//! It needs a tiny filesystem to fill, so it mounts a 1 MiB tmpfs: run it as root with
//! `cargo test -p ferry-server --test no_space -- --ignored`.

mod common;

use std::process::Command;

use common::{Client, code, pattern};
use serde_json::json;

/// Unmounts the tiny filesystem however the test ends; lazily, since a server that is still
/// running when a failed assertion unwinds keeps it busy.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root to mount a 1 MiB tmpfs"]
async fn a_full_disk_is_no_space_and_leaves_nothing_behind() {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("tiny");
    std::fs::create_dir(&root).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount failed: run as root");
    let _mount = Mount(root.clone());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = ferry_server::Config::new(&root);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ferry_server::run(listener, config, async {
        let _ = stop_rx.await;
    }));
    let mut client = Client::connect(addr).await;
    client.hello().await;

    let data = pattern(4 * 1024 * 1024, 11);
    let reply = client.put("big.bin", &data, json!({})).await;
    assert_eq!(code(&reply), "no_space", "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("big.bin")
    );
    let left: Vec<_> = std::fs::read_dir(&root).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    // Framing held: the whole payload was consumed, and a small file still fits.
    let reply = client.put("small.txt", b"fits", json!({})).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(std::fs::read(root.join("small.txt")).unwrap(), b"fits");

    // The server lets go of the root before it is unmounted.
    drop(client);
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
}
