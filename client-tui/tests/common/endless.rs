//! A fake server that answers `hello` and `stat`, then streams `list` and `walk` batches
//! forever: what a hostile or broken server can do, to show that the client's memory stays
//! bounded and that it says so when it stops gathering.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Entries per batch, and batches written so far are counted by name only.
const PER_BATCH: usize = 500;

/// Starts the fake server on its own runtime (kept alive by the returned handle).
pub fn start() -> (tokio::runtime::Runtime, SocketAddr) {
    ferry_testkit::wire::fake_server(serve)
}

async fn serve(socket: tokio::net::TcpStream) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let request: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let reply = match request["op"].as_str().unwrap_or_default() {
            "hello" => {
                r#"{"ok":true,"version":1,"server":"endless 0.0","read_only":true}"#.to_owned()
            }
            "stat" => {
                r#"{"ok":true,"entry":{"name":"","kind":"dir","size":0,"mtime":0,"mode":493}}"#
                    .to_owned()
            }
            "list" | "walk" => {
                let mut n: u64 = 0;
                loop {
                    let mut batch = String::from(r#"{"ok":true,"entries":["#);
                    for i in 0..PER_BATCH {
                        if i > 0 {
                            batch.push(',');
                        }
                        n += 1;
                        batch.push_str(&format!(
                            r#"{{"name":"file-{n:012}.txt","kind":"file","size":1,"mtime":0,"mode":420}}"#
                        ));
                    }
                    batch.push_str("],\"more\":true}\n");
                    if write.write_all(batch.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
            _ => r#"{"ok":false,"error":{"code":"bad_request","message":"not here"}}"#.to_owned(),
        };
        if write
            .write_all(format!("{reply}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}
