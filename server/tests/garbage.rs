//! Thousands of hostile or random requests: the server never panics, never touches anything
//! outside its root, and keeps serving. In its own binary so its panic hook sees only this test.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Client, Server};
use serde_json::json;
use tokio::io::AsyncWriteExt;

/// A small deterministic generator, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn random_path(rng: &mut Rng) -> String {
    let parts = [
        "",
        "a",
        "b",
        "..",
        ".",
        "/",
        "\\",
        "\u{0}",
        "\n",
        "ü",
        "d",
        "link",
        "escape",
        "f.txt",
        ".ferry-part.f.txt",
        "//",
        "x y",
    ];
    (0..rng.below(5))
        .map(|_| rng.pick(&parts))
        .collect::<Vec<_>>()
        .join("/")
}

fn random_request(rng: &mut Rng) -> Vec<u8> {
    let path = random_path(rng);
    let to = random_path(rng);
    let number = match rng.below(4) {
        0 => 0,
        1 => rng.below(100),
        2 => u64::MAX - rng.below(3),
        _ => rng.next(),
    };
    let value = match rng.below(14) {
        0 => json!({"op": "hello", "version": rng.below(3)}),
        1 => json!({"op": "stat", "path": path}),
        2 => json!({"op": "list", "path": path}),
        3 => json!({"op": "walk", "path": path}),
        4 => json!({"op": "summary", "path": path}),
        5 => json!({"op": "get", "path": path, "offset": number}),
        6 => json!({"op": "partial", "path": path}),
        7 => json!({"op": "mkdir", "path": path, "parents": rng.below(2) == 0}),
        8 => json!({"op": "rename", "path": path, "to": to, "overwrite": rng.below(2) == 0}),
        9 => json!({"op": "remove", "path": path, "recursive": rng.below(2) == 0}),
        10 => {
            let size = rng.below(64);
            let mut line = serde_json::to_vec(&json!({
                "op": "put", "path": path, "size": size, "offset": rng.below(3).wrapping_mul(number),
                "overwrite": rng.below(2) == 0, "trailer": rng.below(3) == 0,
                "mtime": number as i64,
            }))
            .unwrap_or_default();
            line.push(b'\n');
            line.extend((0..size).map(|_| rng.next() as u8));
            return line;
        }
        11 => json!({"op": rng.pick(&["", "nope", "PUT"]), "size": rng.below(32)}),
        12 => json!([path, number]),
        _ => {
            let mut junk: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
            junk.push(b'\n');
            return junk;
        }
    };
    let mut line = serde_json::to_vec(&value).unwrap_or_default();
    line.push(b'\n');
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_hostile_requests_never_break_the_server() {
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&panics);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));

    let server = Server::start().await;
    std::os::unix::fs::symlink(&server.outside, server.path("escape")).unwrap();
    std::fs::create_dir(server.path("d")).unwrap();
    std::fs::write(server.path("f.txt"), b"file").unwrap();
    std::os::unix::fs::symlink("d", server.path("link")).unwrap();
    let outside_before = server.outside_snapshot();

    let mut rng = Rng(0x5eed_f00d);
    let mut answered = 0;
    for _ in 0..40 {
        let mut client = Client::connect(server.addr).await;
        let mut burst = b"{\"op\":\"hello\",\"version\":1}\n".to_vec();
        for _ in 0..rng.below(80) {
            burst.extend(random_request(&mut rng));
        }
        client.send(&burst).await;
        // Half the clients wait for the server to finish, half vanish mid-stream.
        if rng.below(2) == 0 {
            let _ = client.writer.shutdown().await;
            while let Some(line) = client.read_line().await {
                let reply: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
                if reply.get("ok").is_some() {
                    answered += 1;
                }
            }
        }
    }
    // The requests were really read and answered, not dropped at the door.
    assert!(answered > 300, "only {answered} replies");

    let mut client = server.client().await;
    let stat = client.request(json!({"op": "stat", "path": ""})).await;
    assert_eq!(stat["ok"], true, "{stat}");
    assert_eq!(server.outside_snapshot(), outside_before);
    assert_eq!(panics.load(Ordering::SeqCst), 0, "the server panicked");
}
