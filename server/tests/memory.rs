//! A peer that sends megabytes without a newline is cut off after the header cap, and the
//! server's memory does not grow with what it sends. Alone in its own test binary, so the
//! process's resident size is this test's alone.

mod common;

use std::time::Duration;

use common::{Server, code};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(kib.is_some(), "VmRSS missing from /proc/self/status");
    kib.unwrap_or(0) * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabytes_without_a_newline_are_cut_off_with_flat_memory() {
    const TOTAL: usize = 256 * 1024 * 1024;
    let server = Server::start().await;
    let client = server.client().await;
    let before = resident_bytes();

    let common::Client { reader, mut writer } = client;
    let sender = tokio::spawn(async move {
        let chunk = vec![b'a'; 1024 * 1024];
        let mut sent = 0;
        while sent < TOTAL {
            match tokio::time::timeout(Duration::from_secs(10), writer.write_all(&chunk)).await {
                Ok(Ok(())) => sent += chunk.len(),
                Ok(Err(_)) | Err(_) => break,
            }
        }
        sent
    });
    // Read while the sender is still pushing: the reply must arrive, then the close.
    let mut reader = reader;
    let mut line = Vec::new();
    tokio::time::timeout(common::STEP, reader.read_until(b'\n', &mut line))
        .await
        .unwrap()
        .unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(code(&reply), "header_too_long");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(common::STEP, reader.read_to_end(&mut rest)).await;
    assert!(rest.is_empty(), "nothing after the error line");
    let sent = sender.await.unwrap();
    assert!(
        sent < TOTAL / 4,
        "the server kept reading: {sent} bytes accepted"
    );

    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < 32 * 1024 * 1024,
        "resident size grew by {grown} bytes"
    );
}
