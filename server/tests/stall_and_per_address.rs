//! Two limits against one client hogging the server: a transfer that stops making progress is
//! closed after the stall timeout (while a slow one that keeps moving is not), and one client
//! address cannot hold more than its share of connections.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Client, STEP, Server, code, digest, pattern};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

const STALL: Duration = Duration::from_millis(600);

#[tokio::test]
async fn a_slow_but_steady_upload_outlives_the_stall_timeout() {
    let server = Server::start_with(|c| c.stall_timeout = STALL).await;
    let mut client = server.client().await;
    let data = pattern(24 * 1024, 3);
    client
        .send_json(&json!({"op": "put", "path": "slow.bin", "size": data.len()}))
        .await;
    // 24 pieces, 150 ms apart: 3.6 s in all, six times the stall timeout, never a stall.
    let started = Instant::now();
    for piece in data.chunks(1024) {
        client.send(piece).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let reply = client.read_reply().await;
    assert!(started.elapsed() > STALL * 4, "the upload really was slow");
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["digest"], digest(&data));
    assert_eq!(std::fs::read(server.path("slow.bin")).unwrap(), data);
}

#[tokio::test]
async fn an_upload_that_stops_is_closed_after_the_stall_timeout() {
    let server = Server::start_with(|c| c.stall_timeout = STALL).await;
    let mut client = server.client().await;
    client
        .send_json(&json!({"op": "put", "path": "stuck.bin", "size": 1_000_000}))
        .await;
    client.send(&pattern(10_000, 1)).await;
    let started = Instant::now();
    let reply = client.read_reply().await;
    let waited = started.elapsed();
    assert_eq!(code(&reply), "timeout", "{reply}");
    assert!(
        waited >= STALL - Duration::from_millis(100) && waited < STALL * 5,
        "closed after {waited:?}, stall timeout {STALL:?}"
    );
    assert!(client.closed().await);
    assert!(
        !server.path("stuck.bin").exists(),
        "no partial under the final name"
    );
}

#[tokio::test]
async fn a_download_nobody_reads_is_closed_after_the_stall_timeout() {
    let server = Server::start_with(|c| c.stall_timeout = STALL).await;
    let size = 48 * 1024 * 1024;
    std::fs::write(server.path("big.bin"), pattern(size, 9)).unwrap();
    let mut client = server.client().await;
    client
        .send_json(&json!({"op": "get", "path": "big.bin", "offset": 0}))
        .await;
    // Not reading: the socket buffers fill and the server's writes stop moving.
    tokio::time::sleep(STALL * 3).await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(STEP, client.reader.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the server closed the stalled download");
    assert!(
        rest.len() < size,
        "only what was buffered arrived: {}",
        rest.len()
    );
}

/// A connection from `local` (any address of 127/8) to `server`.
async fn connect_from(local: &str, server: SocketAddr) -> Client {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let stream: TcpStream = socket.connect(server).await.unwrap();
    let (read, writer) = stream.into_split();
    Client {
        reader: tokio::io::BufReader::new(read),
        writer,
    }
}

#[tokio::test]
async fn one_address_gets_busy_past_its_share_while_another_is_served() {
    let server = Server::start().await;
    let mut held = Vec::new();
    for _ in 0..32 {
        let mut client = connect_from("127.0.0.1", server.addr).await;
        client.hello().await;
        held.push(client);
    }
    let mut extra = connect_from("127.0.0.1", server.addr).await;
    let reply = extra.read_reply().await;
    assert_eq!(code(&reply), "busy", "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("address"),
        "{reply}"
    );
    assert!(extra.closed().await);

    let mut other = connect_from("127.0.0.2", server.addr).await;
    other.hello().await;
    let stat = other.request(json!({"op": "stat", "path": ""})).await;
    assert_eq!(stat["ok"], true, "{stat}");

    // A slot given back is free again.
    drop(held.pop());
    let deadline = Instant::now() + STEP;
    loop {
        let mut again = connect_from("127.0.0.1", server.addr).await;
        let reply = again.request(json!({"op": "hello", "version": 1})).await;
        if reply["ok"] == true {
            break;
        }
        assert_eq!(code(&reply), "busy");
        assert!(Instant::now() < deadline, "the freed slot never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_per_address_limit_is_configurable() {
    let server = Server::start_with(|c| c.max_per_address = 2).await;
    let mut a = server.client().await;
    let _b = server.client().await;
    let mut c = Client::connect(server.addr).await;
    assert_eq!(code(&c.read_reply().await), "busy");
    let stat = a.request(json!({"op": "stat", "path": ""})).await;
    assert_eq!(
        stat["ok"], true,
        "the held connections are unharmed: {stat}"
    );
}
