//! Ranged `get` (with `length`): exactly the range, the range's digest in the trailer, the
//! end of the file clipping it, and plain `get`s beside it unchanged.

// Test helpers outside #[test] functions: a failed step should panic loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, code, digest, pattern};
use serde_json::{Value, json};

/// A ranged `get`: reply header, payload, trailer.
async fn get_range(
    client: &mut common::Client,
    path: &str,
    offset: u64,
    length: u64,
) -> (Value, Vec<u8>, Value) {
    let reply = client
        .request(json!({"op": "get", "path": path, "offset": offset, "length": length}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let data = client
        .read_bytes(reply["size"].as_u64().unwrap() as usize)
        .await;
    let trailer = client.read_reply().await;
    (reply, data, trailer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ranged_get_answers_exactly_the_range_with_its_digest() {
    let server = Server::start().await;
    let bytes = pattern(3 * 1024 * 1024 + 17, 7);
    std::fs::write(server.path("big.bin"), &bytes).unwrap();
    let mut client = server.client().await;

    let (reply, data, trailer) = get_range(&mut client, "big.bin", 1_000_000, 65_536).await;
    assert_eq!(reply["size"], 65_536);
    assert_eq!(reply["offset"], 1_000_000);
    assert_eq!(reply["file_size"], bytes.len() as u64);
    assert_eq!(data, &bytes[1_000_000..1_065_536]);
    assert_eq!(
        trailer["digest"],
        digest(&data),
        "the range's digest, not the file's"
    );

    // Past the end the range is clipped; at the end it is empty.
    let tail = bytes.len() as u64 - 10;
    let (reply, data, trailer) = get_range(&mut client, "big.bin", tail, 1 << 20).await;
    assert_eq!(reply["size"], 10);
    assert_eq!(data, &bytes[bytes.len() - 10..]);
    assert_eq!(trailer["digest"], digest(&data));
    let (reply, data, trailer) = get_range(&mut client, "big.bin", bytes.len() as u64, 4096).await;
    assert_eq!(reply["size"], 0);
    assert!(data.is_empty());
    assert_eq!(trailer["digest"], digest(b""));

    // An offset past the end is refused as for any get.
    let past = client
        .request(json!({"op": "get", "path": "big.bin", "offset": bytes.len() + 1, "length": 1}))
        .await;
    assert_eq!(code(&past), "offset_mismatch");

    // A plain get on the same connection still gets the whole file's digest.
    let (reply, data, trailer) = client.get("big.bin", 1_000_000).await.unwrap();
    assert_eq!(reply["size"], (bytes.len() - 1_000_000) as u64);
    assert_eq!(data, &bytes[1_000_000..]);
    assert_eq!(trailer["digest"], digest(&bytes));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_ranged_and_plain_gets_are_answered_in_order() {
    let server = Server::start().await;
    let a = pattern(200_000, 1);
    let b = pattern(5_000, 2);
    std::fs::write(server.path("a"), &a).unwrap();
    std::fs::write(server.path("b"), &b).unwrap();
    let mut client = server.client().await;
    // All three in one write, so the server answers them as one batch.
    let mut burst = Vec::new();
    for request in [
        json!({"op": "get", "path": "a", "offset": 100, "length": 50}),
        json!({"op": "get", "path": "b", "offset": 10}),
        json!({"op": "get", "path": "a", "length": 7}),
    ] {
        burst.extend_from_slice(request.to_string().as_bytes());
        burst.push(b'\n');
    }
    client.send(&burst).await;
    let mut answers = Vec::new();
    for _ in 0..3 {
        let reply = client.read_reply().await;
        assert_eq!(reply["ok"], true, "{reply}");
        let data = client
            .read_bytes(reply["size"].as_u64().unwrap() as usize)
            .await;
        let trailer = client.read_reply().await;
        answers.push((data, trailer));
    }
    assert_eq!(answers[0].0, &a[100..150]);
    assert_eq!(answers[0].1["digest"], digest(&a[100..150]));
    assert_eq!(answers[1].0, &b[10..]);
    assert_eq!(answers[1].1["digest"], digest(&b));
    assert_eq!(answers[2].0, &a[..7]);
    assert_eq!(answers[2].1["digest"], digest(&a[..7]));
}
