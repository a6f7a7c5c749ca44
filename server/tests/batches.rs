//! Requests that arrive together are answered together (pipelined `get`s from one blocking
//! thread, small `put`s that arrived whole in one blocking call), and each answer is still
//! exactly what the request would get alone, in request order.

mod common;

use common::{code, digest, pattern};
use serde_json::json;

/// One burst: small uploads (one refused, one with a wrong digest, one trailer-less), a `stat`
/// and a large upload among them, then `get`s of everything (one missing); every reply in
/// order, and nothing but the good files under their final names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_puts_and_gets_is_answered_in_order() {
    let server = common::Server::start().await;
    std::fs::write(server.path("taken"), b"old").unwrap();
    let mut client = server.client().await;
    let files: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| (format!("f{i}"), pattern(i * 997 % 5000, i as u64)))
        .collect();
    let big = pattern(3 * 1024 * 1024 + 5, 99);

    let mut burst = Vec::new();
    let put =
        |burst: &mut Vec<u8>, header: serde_json::Value, bytes: &[u8], trailer: Option<&str>| {
            burst.extend_from_slice(format!("{header}\n").as_bytes());
            burst.extend_from_slice(bytes);
            if let Some(digest) = trailer {
                burst.extend_from_slice(format!("{}\n", json!({ "digest": digest })).as_bytes());
            }
        };
    for (i, (name, bytes)) in files.iter().enumerate() {
        let size = bytes.len();
        match i {
            7 => put(
                &mut burst,
                json!({"op": "put", "path": "taken", "size": size}),
                bytes,
                None,
            ),
            11 => put(
                &mut burst,
                json!({"op": "put", "path": name, "size": size, "trailer": true}),
                bytes,
                Some(&digest(b"something else")),
            ),
            20 => put(
                &mut burst,
                json!({"op": "put", "path": "big", "size": big.len()}),
                &big,
                None,
            ),
            25 => burst.extend_from_slice(b"{\"op\":\"stat\",\"path\":\"taken\"}\n"),
            _ => put(
                &mut burst,
                json!({"op": "put", "path": name, "size": size, "trailer": i % 2 == 0}),
                bytes,
                (i % 2 == 0).then(|| digest(bytes)).as_deref(),
            ),
        }
    }
    for (i, (name, _)) in files.iter().enumerate() {
        let path = if i == 30 { "missing" } else { name };
        burst.extend_from_slice(format!("{}\n", json!({"op": "get", "path": path})).as_bytes());
    }
    // The answers (a few KiB each) fit in the socket buffers while the burst is written.
    client.send(&burst).await;

    for (i, (_, bytes)) in files.iter().enumerate() {
        let reply = client.read_reply().await;
        match i {
            7 => assert_eq!(code(&reply), "already_exists", "{reply}"),
            11 => assert_eq!(code(&reply), "checksum_mismatch", "{reply}"),
            20 => assert_eq!(reply["file_size"], big.len(), "{reply}"),
            25 => assert_eq!(reply["entry"]["size"], 3, "{reply}"),
            _ => assert_eq!(
                reply["digest"].as_str(),
                Some(digest(bytes).as_str()),
                "{reply}"
            ),
        }
    }
    for (i, (_, bytes)) in files.iter().enumerate() {
        let reply = client.read_reply().await;
        if matches!(i, 7 | 11 | 20 | 25 | 30) {
            assert_eq!(reply["ok"], false, "{i}: {reply}");
            continue;
        }
        let size = reply["size"].as_u64().unwrap() as usize;
        assert_eq!(client.read_bytes(size).await, *bytes, "{i}");
        let trailer = client.read_reply().await;
        assert_eq!(trailer["digest"].as_str(), Some(digest(bytes).as_str()));
    }

    assert_eq!(std::fs::read(server.path("taken")).unwrap(), b"old");
    assert_eq!(std::fs::read(server.path("big")).unwrap(), big);
    assert!(!server.path("f11").exists());
    assert!(!server.path("f25").exists());
    assert_eq!(std::fs::read(server.path("f3")).unwrap(), files[3].1);
}
