//! A full disk, for real: the `ferry-server` binary runs on a private 2 MiB tmpfs, mounted in
//! its own user and mount namespaces (`unshare -Urm`), so no root and no host mount is needed
//! and nothing is left mounted if the test dies. The test sees the server's files through
//! `/proc/PID/root`, and shares its network namespace, so it talks to it on loopback.

// Helpers run inside tests: a failed step should stop the test with its error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{TmpfsServer, code, pattern};
use serde_json::json;

const KIB: usize = 1024;

/// Writes into `path` until the filesystem is full; returns how much fitted.
fn fill(path: &Path) -> usize {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a; 4 * KIB];
    let mut written = 0;
    while file.write_all(&chunk).is_ok() {
        written += chunk.len();
    }
    written
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < common::STEP, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_fills_mid_upload_is_no_space_and_the_same_upload_succeeds_later() {
    let server = TmpfsServer::start("2m", "", &["--reserve", "0"]);
    let mut client = server.client().await;
    let old = pattern(100 * KIB, 1);
    let reply = client.put("doc.bin", &old, json!({})).await;
    assert_eq!(reply["ok"], true, "{reply}");

    // The upload fits when it starts; then something else takes the rest of the disk.
    let new = pattern(1200 * KIB, 2);
    client
        .send_json(&json!({"op": "put", "path": "doc.bin", "size": new.len(), "overwrite": true}))
        .await;
    client.send(&new[..512 * KIB]).await;
    let partial = server.path(".ferry-part.doc.bin");
    until("the first half is written", || {
        std::fs::metadata(&partial).is_ok_and(|meta| meta.len() == 512 * KIB as u64)
    })
    .await;
    let filler = server.path("filler");
    assert!(fill(&filler) > 0, "the filler found no room at all");
    client.send(&new[512 * KIB..]).await;
    let reply = client.read_reply().await;
    assert_eq!(code(&reply), "no_space", "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("doc.bin"),
        "{reply}"
    );
    // The partial is gone, the old file untouched, and the connection still in step.
    assert_eq!(server.names(), ["doc.bin", "filler"]);
    assert_eq!(std::fs::read(server.path("doc.bin")).unwrap(), old);
    let mut other = server.client().await;
    let stat = other
        .request(json!({"op": "stat", "path": "doc.bin"}))
        .await;
    assert_eq!(stat["entry"]["size"], old.len(), "{stat}");
    let stat = client.request(json!({"op": "stat", "path": ""})).await;
    assert_eq!(stat["ok"], true, "{stat}");

    // Once space is back, the very same upload goes through on the same connection.
    std::fs::remove_file(&filler).unwrap();
    let reply = client
        .put("doc.bin", &new, json!({"overwrite": true}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(std::fs::read(server.path("doc.bin")).unwrap(), new);
    assert_eq!(server.names(), ["doc.bin"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_upload_into_a_full_disk_is_no_space_too() {
    let server = TmpfsServer::start("1m", "", &["--reserve", "0"]);
    let mut client = server.client().await;
    fill(&server.path("filler"));
    // Sent whole in one write: the batched path for small files.
    let reply = client
        .put("small.bin", &pattern(64 * KIB, 3), json!({}))
        .await;
    assert_eq!(code(&reply), "no_space", "{reply}");
    assert_eq!(server.names(), ["filler"]);
    std::fs::remove_file(server.path("filler")).unwrap();
    let reply = client
        .put("small.bin", &pattern(64 * KIB, 3), json!({}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reserve_and_uploads_in_flight_are_counted_before_a_payload_is_read() {
    // 2 MiB of disk, 1 MiB of it kept free.
    let server = TmpfsServer::start("2m", "", &["--reserve", "1MiB"]);
    let mut first = server.client().await;
    let mut second = server.client().await;

    // Too big for what the reserve leaves: refused before a payload byte is sent.
    second
        .send_json(&json!({"op": "put", "path": "big.bin", "size": 1100 * KIB}))
        .await;
    let reply = second.read_reply().await;
    assert_eq!(code(&reply), "no_space", "{reply}");
    second.send(&pattern(1100 * KIB, 4)).await;

    // 500 KiB in flight (within its share, half of the 1 MiB above the reserve), 256 KiB of it
    // written: 1792 KiB are free and 244 KiB still to come.
    let one = pattern(500 * KIB, 5);
    first
        .send_json(&json!({"op": "put", "path": "one.bin", "size": one.len()}))
        .await;
    first.send(&one[..256 * KIB]).await;
    let partial = server.path(".ferry-part.one.bin");
    until("the first upload is under way", || {
        std::fs::metadata(&partial).is_ok_and(|meta| meta.len() == 256 * KIB as u64)
    })
    .await;
    // The writer counts a chunk as written right after the write returns.
    tokio::time::sleep(Duration::from_millis(50)).await;
    // 600 KiB would fit in what is free now, but not once the first upload is done.
    second
        .send_json(&json!({"op": "put", "path": "two.bin", "size": 600 * KIB}))
        .await;
    let reply = second.read_reply().await;
    assert_eq!(code(&reply), "no_space", "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("({} bytes) still to be written", 244 * KIB)),
        "{reply}"
    );
    second.send(&pattern(600 * KIB, 6)).await;
    // 300 KiB fits beside it: what the first has written is not counted twice.
    let two = pattern(300 * KIB, 7);
    let reply = second.put("two.bin", &two, json!({})).await;
    assert_eq!(reply["ok"], true, "{reply}");

    first.send(&one[256 * KIB..]).await;
    let reply = first.read_reply().await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(server.names(), ["one.bin", "two.bin"]);
    assert_eq!(std::fs::read(server.path("two.bin")).unwrap(), two);
    assert_eq!(std::fs::read(server.path("one.bin")).unwrap(), one);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_small_uploads_counts_its_own_bytes_against_the_free_space() {
    // Six uploads of 200 KiB, sent back to back in one write so that the server takes them
    // as one batch, onto 1 MiB of disk: the space each one takes must be seen by the next.
    let server = TmpfsServer::start("1m", "", &["--reserve", "0"]);
    let mut client = server.client().await;
    let mut wire = Vec::new();
    let bodies: Vec<Vec<u8>> = (0..6).map(|i| pattern(200 * KIB, 10 + i)).collect();
    for (i, body) in bodies.iter().enumerate() {
        let header = json!({"op": "put", "path": format!("f{i}.bin"), "size": body.len()});
        wire.extend_from_slice(header.to_string().as_bytes());
        wire.push(b'\n');
        wire.extend_from_slice(body);
    }
    client.send(&wire).await;
    let mut stored = Vec::new();
    let mut refused = 0;
    for i in 0..bodies.len() {
        let reply = client.read_reply().await;
        if reply["ok"] == true {
            assert_eq!(
                refused, 0,
                "f{i} was stored after an earlier one was refused: {reply}"
            );
            stored.push(format!("f{i}.bin"));
        } else {
            assert_eq!(code(&reply), "no_space", "{reply}");
            refused += 1;
        }
    }
    assert!(stored.len() >= 3, "only {stored:?} fitted on 1 MiB");
    assert!(refused >= 1, "6 x 200 KiB cannot all fit on 1 MiB");
    // Every answer was true: what was stored is whole, and nothing else was left behind.
    assert_eq!(server.names(), stored);
    for (i, name) in stored.iter().enumerate() {
        assert_eq!(std::fs::read(server.path(name)).unwrap(), bodies[i]);
    }
    // The connection is still in step, and a file that fits in what is left is taken.
    let reply = client.put("after.bin", b"ok", json!({})).await;
    assert_eq!(reply["ok"], true, "{reply}");
}
