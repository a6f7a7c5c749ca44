//! The byte stream splits into messages the same way whatever the client's write sizes, bad
//! requests leave the connection usable, and over-long headers end it.

mod common;

use std::time::Duration;

use common::{Client, Server, code};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_requests_in_one_write_get_two_replies_in_order() {
    let server = Server::start().await;
    std::fs::write(server.path("a"), b"aaa").unwrap();
    let mut client = Client::connect(server.addr).await;
    client
        .send(b"{\"op\":\"hello\",\"version\":1}\n{\"op\":\"stat\",\"path\":\"a\"}\n")
        .await;
    assert_eq!(client.read_reply().await["version"], 1);
    assert_eq!(client.read_reply().await["entry"]["size"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_pipelined_requests_are_answered_in_request_order() {
    let server = Server::start().await;
    for i in 0..300 {
        std::fs::write(server.path(&format!("f{i}")), vec![b'x'; i]).unwrap();
    }
    let mut client = server.client().await;
    let mut burst = Vec::new();
    for i in 0..300 {
        // Every tenth asks for something missing, so errors must keep their place too.
        let path = if i % 10 == 0 {
            format!("missing{i}")
        } else {
            format!("f{i}")
        };
        burst.extend_from_slice(format!("{{\"op\":\"stat\",\"path\":\"{path}\"}}\n").as_bytes());
    }
    client.send(&burst).await;
    for i in 0..300 {
        let reply = client.read_reply().await;
        if i % 10 == 0 {
            assert_eq!(code(&reply), "not_found");
            assert!(
                reply["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("missing{i}"))
            );
        } else {
            assert_eq!(reply["entry"]["name"], format!("f{i}"));
            assert_eq!(reply["entry"]["size"], i);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_dribbled_one_byte_per_write_is_understood() {
    let server = Server::start().await;
    let mut client = Client::connect(server.addr).await;
    let mut message = b"{\"op\":\"hello\",\"version\":1}\n".to_vec();
    message.extend_from_slice(b"{\"op\":\"put\",\"path\":\"slow.txt\",\"size\":4}\nslow");
    for byte in &message {
        client.send(std::slice::from_ref(byte)).await;
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    assert_eq!(client.read_reply().await["ok"], true);
    let reply = client.read_reply().await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(std::fs::read(server.path("slow.txt")).unwrap(), b"slow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_split_at_every_position_frames_the_same() {
    let server = Server::start().await;
    let mut client = server.client().await;
    // The payload holds newlines and something that looks like a request.
    let payload: &[u8] = b"x\n{\"op\":\"remove\",\"path\":\"keep\"}\n\xff\x00end";
    std::fs::write(server.path("keep"), b"keep").unwrap();
    for split in 0..=200usize {
        let name = format!("p{split}");
        let mut message = format!(
            "{{\"op\":\"put\",\"path\":\"{name}\",\"size\":{}}}\n",
            payload.len()
        )
        .into_bytes();
        message.extend_from_slice(payload);
        message.extend_from_slice(format!("{{\"op\":\"stat\",\"path\":\"{name}\"}}\n").as_bytes());
        if split > message.len() {
            break;
        }
        client.send(&message[..split]).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
        client.send(&message[split..]).await;
        let put = client.read_reply().await;
        assert_eq!(put["ok"], true, "split {split}: {put}");
        let stat = client.read_reply().await;
        assert_eq!(stat["entry"]["size"], payload.len(), "split {split}");
        assert_eq!(
            std::fs::read(server.path(&name)).unwrap(),
            payload,
            "split {split}"
        );
    }
    assert!(server.path("keep").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_request_is_answered_and_its_payload_skipped() {
    let server = Server::start().await;
    std::fs::write(server.path("keep"), b"keep").unwrap();
    let mut client = server.client().await;
    let fake = b"{\"op\":\"remove\",\"path\":\"keep\"}\n";
    let bad_lines: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        b"".to_vec(),
        b"[]".to_vec(),
        b"{\"op\":\"format_disk\"}".to_vec(),
        b"{\"op\":\"stat\"}".to_vec(),
        b"{\"op\":\"stat\",\"path\":\"keep\",\"extra\":1}".to_vec(),
        b"\xff\xfe{\"op\"".to_vec(),
    ];
    for line in bad_lines {
        client.send(&line).await;
        client.send(b"\n").await;
        assert_eq!(code(&client.read_reply().await), "bad_request", "{line:?}");
    }
    // An unknown op that announces a payload: the payload is skipped, not run.
    client
        .send(format!("{{\"op\":\"upload\",\"size\":{}}}\n", fake.len()).as_bytes())
        .await;
    client.send(fake).await;
    assert_eq!(code(&client.read_reply().await), "bad_request");
    // A put with a stray field, same thing.
    client
        .send(
            format!(
                "{{\"op\":\"put\",\"path\":\"x\",\"size\":{},\"bogus\":1}}\n",
                fake.len()
            )
            .as_bytes(),
        )
        .await;
    client.send(fake).await;
    assert_eq!(code(&client.read_reply().await), "bad_request");

    let stat = client.request(json!({"op": "stat", "path": "keep"})).await;
    assert_eq!(stat["ok"], true, "{stat}");
    assert!(!server.path("x").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_at_the_limit_is_read_and_one_over_is_refused_and_closed() {
    let server = Server::start().await;
    let mut client = server.client().await;
    // Exactly 64 KiB with its newline: read as a (bad) request, the connection goes on.
    let prefix = b"{\"op\":\"stat\",\"path\":\"a\",\"pad\":\"";
    let mut line = prefix.to_vec();
    line.resize(64 * 1024 - 3, b'p');
    line.extend_from_slice(b"\"}\n");
    assert_eq!(line.len(), 64 * 1024);
    client.send(&line).await;
    assert_eq!(code(&client.read_reply().await), "bad_request");
    assert_eq!(
        client.request(json!({"op": "stat", "path": ""})).await["ok"],
        true
    );

    // One byte more: header_too_long, then the server closes.
    let mut line = prefix.to_vec();
    line.resize(64 * 1024 + 1, b'p');
    client.send(&line).await;
    assert_eq!(code(&client.read_reply().await), "header_too_long");
    assert!(client.closed().await);

    // The listener is unaffected.
    let mut other = server.client().await;
    assert_eq!(
        other.request(json!({"op": "stat", "path": ""})).await["ok"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_that_stalls_half_way_times_out() {
    let server = Server::start_with(|config| {
        config.header_timeout = Duration::from_millis(300);
    })
    .await;
    let mut client = server.client().await;
    client.send(b"{\"op\":\"stat\",").await;
    let started = std::time::Instant::now();
    assert_eq!(code(&client.read_reply().await), "timeout");
    assert!(client.closed().await);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed() {
    let server = Server::start_with(|config| {
        config.idle_timeout = Duration::from_millis(300);
    })
    .await;
    let mut client = server.client().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Activity resets the clock.
    assert_eq!(
        client.request(json!({"op": "stat", "path": ""})).await["ok"],
        true
    );
    let started = std::time::Instant::now();
    assert!(client.closed().await);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}
