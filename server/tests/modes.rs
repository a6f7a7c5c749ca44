//! Permission bits of uploads, over raw sockets: a new file gets the mode the client sent
//! (permission bits only, less the server's umask), a replaced file keeps its own mode whatever
//! is sent, a client that sends none gets what `open` would give, and the partial is private
//! while the bytes arrive. Each case goes through the small path (one batch of pipelined puts),
//! the streaming path (over 256 KiB) and a resume.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Client, Server, code, digest, pattern};
use ferry_testkit::data::{chmod, mode_of, umask};
use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;

/// Sends every put of `puts` in one write, so the server meets them as one batch, then reads
/// one reply each.
async fn put_batch(client: &mut Client, puts: &[(&str, Vec<u8>, Value)]) -> Vec<Value> {
    let mut wire = Vec::new();
    for (path, data, extra) in puts {
        let mut header = json!({"op": "put", "path": path, "size": data.len()});
        common::merge(&mut header, extra.clone());
        wire.extend(serde_json::to_vec(&header).unwrap());
        wire.push(b'\n');
        wire.extend(data);
    }
    client.send(&wire).await;
    let mut replies = Vec::new();
    for _ in puts {
        replies.push(client.read_reply().await);
    }
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_file_gets_the_mode_sent_less_the_umask() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let mask = umask();
    let small = pattern(100, 1);
    let replies = put_batch(
        &mut client,
        &[
            ("run.sh", small.clone(), json!({"mode": 0o755})),
            ("secret.txt", small.clone(), json!({"mode": 0o600})),
            ("odd", small.clone(), json!({"mode": 0o640})),
        ],
    )
    .await;
    for reply in &replies {
        assert_eq!(reply["ok"], true, "{reply}");
    }
    assert_eq!(mode_of(&server.path("run.sh")), 0o755 & !mask);
    assert_eq!(mode_of(&server.path("secret.txt")), 0o600 & !mask);
    assert_eq!(mode_of(&server.path("odd")), 0o640 & !mask);

    // The streaming path gives the same.
    let big = pattern(2 * MIB, 2);
    let reply = client.put("big.sh", &big, json!({"mode": 0o750})).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(mode_of(&server.path("big.sh")), 0o750 & !mask);
    assert_eq!(std::fs::read(server.path("big.sh")).unwrap(), big);

    // What the server reports is what is on disk.
    let (head, _, _) = client.get("run.sh", 0).await.unwrap();
    assert_eq!(head["mode"], 0o755 & !mask);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_mode_a_new_file_gets_what_open_would_give() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let mask = umask();
    let replies = put_batch(&mut client, &[("plain.txt", pattern(10, 3), json!({}))]).await;
    assert_eq!(replies[0]["ok"], true, "{}", replies[0]);
    assert_eq!(mode_of(&server.path("plain.txt")), 0o666 & !mask);
    let reply = client.put("plain.bin", &pattern(MIB, 4), json!({})).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(mode_of(&server.path("plain.bin")), 0o666 & !mask);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setuid_setgid_and_sticky_bits_are_never_set() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let mask = umask();
    let replies = put_batch(
        &mut client,
        &[
            ("suid", pattern(10, 5), json!({"mode": 0o4755})),
            ("all", pattern(10, 6), json!({"mode": 0o7777})),
            // Bits beyond the mode word are not a way around it either.
            ("high", pattern(10, 7), json!({"mode": 0xffff_ffffu32})),
        ],
    )
    .await;
    for reply in &replies {
        assert_eq!(reply["ok"], true, "{reply}");
    }
    assert_eq!(mode_of(&server.path("suid")), 0o755 & !mask);
    assert_eq!(mode_of(&server.path("all")), 0o777 & !mask);
    assert_eq!(mode_of(&server.path("high")), 0o777 & !mask);
    let reply = client
        .put("suid.bin", &pattern(MIB, 8), json!({"mode": 0o6755}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(mode_of(&server.path("suid.bin")), 0o755 & !mask);

    // A mode that is not a 32-bit number is a malformed request, and the payload is skipped.
    let reply = client
        .put("neg", &pattern(10, 9), json!({"mode": -1}))
        .await;
    assert_eq!(code(&reply), "bad_request");
    assert!(!server.path("neg").exists());
    let reply = client.request(json!({"op": "stat", "path": ""})).await;
    assert_eq!(reply["ok"], true, "the connection stays in step: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwrite_keeps_the_old_files_mode_whatever_is_sent() {
    let server = Server::start().await;
    let mut client = server.client().await;
    for name in ["secret.txt", "secret.bin", "script.sh", "bare"] {
        std::fs::write(server.path(name), b"old").unwrap();
    }
    chmod(&server.path("secret.txt"), 0o600);
    chmod(&server.path("secret.bin"), 0o600);
    chmod(&server.path("script.sh"), 0o700);
    // A mode the umask would have cut is kept as it is: the file is the owner's choice.
    chmod(&server.path("bare"), 0o666);
    // A setuid file loses the bit with its old bytes, as it would when written in place.
    std::fs::write(server.path("tool"), b"old").unwrap();
    chmod(&server.path("tool"), 0o4755);

    let new = pattern(50, 10);
    let replies = put_batch(
        &mut client,
        &[
            (
                "secret.txt",
                new.clone(),
                json!({"overwrite": true, "mode": 0o644}),
            ),
            (
                "script.sh",
                new.clone(),
                json!({"overwrite": true, "mode": 0o644}),
            ),
            ("bare", new.clone(), json!({"overwrite": true})),
            (
                "tool",
                new.clone(),
                json!({"overwrite": true, "mode": 0o4755}),
            ),
        ],
    )
    .await;
    for reply in &replies {
        assert_eq!(reply["ok"], true, "{reply}");
    }
    assert_eq!(std::fs::read(server.path("secret.txt")).unwrap(), new);
    assert_eq!(mode_of(&server.path("secret.txt")), 0o600);
    assert_eq!(mode_of(&server.path("script.sh")), 0o700);
    assert_eq!(mode_of(&server.path("bare")), 0o666);
    assert_eq!(mode_of(&server.path("tool")), 0o755);

    let big = pattern(3 * MIB, 11);
    let reply = client
        .put(
            "secret.bin",
            &big,
            json!({"overwrite": true, "mode": 0o777}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(std::fs::read(server.path("secret.bin")).unwrap(), big);
    assert_eq!(mode_of(&server.path("secret.bin")), 0o600);

    // Without overwrite nothing changes, mode included.
    let reply = client
        .put("secret.txt", &pattern(5, 12), json!({"mode": 0o644}))
        .await;
    assert_eq!(code(&reply), "already_exists");
    assert_eq!(mode_of(&server.path("secret.txt")), 0o600);
    assert_eq!(std::fs::read(server.path("secret.txt")).unwrap(), new);
}

/// Starts an upload of `data` that stops half-way and stays open, and waits until the
/// server has written that half into the partial.
async fn half_sent(server: &Server, path: &str, data: &[u8], extra: Value) -> Client {
    let mut client = server.client().await;
    let mut header = json!({"op": "put", "path": path, "size": data.len()});
    common::merge(&mut header, extra);
    client.send_json(&header).await;
    client.send(&data[..data.len() / 2]).await;
    let mut probe = server.client().await;
    for _ in 0..400 {
        let reply = probe.request(json!({"op": "partial", "path": path})).await;
        if reply["length"] == (data.len() / 2) as u64 {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the first half of {path} never reached the partial");
}

fn partial_of(server: &Server, name: &str) -> std::path::PathBuf {
    server.path(&format!(".ferry-part.{name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partial_is_private_while_the_bytes_arrive_and_a_resume_ends_with_the_right_mode() {
    let server = Server::start().await;
    let mask = umask();
    let data = pattern(4 * MIB, 13);

    // A new world-readable file: private until it is whole.
    let writer = half_sent(&server, "pub.bin", &data, json!({"mode": 0o644})).await;
    assert_eq!(mode_of(&partial_of(&server, "pub.bin")), 0o600);
    assert!(!server.path("pub.bin").exists());
    drop(writer);
    let mut client = server.client().await;
    let half = data.len() / 2;
    let reply = client
        .put(
            "pub.bin",
            &data[half..],
            json!({"offset": half, "digest": digest(&data), "mode": 0o644}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(std::fs::read(server.path("pub.bin")).unwrap(), data);
    assert_eq!(mode_of(&server.path("pub.bin")), 0o644 & !mask);

    // A resumed overwrite keeps the old file's mode; a partial left readable (by an older
    // server) is made private again before the rest is written.
    std::fs::write(server.path("key"), b"old key").unwrap();
    chmod(&server.path("key"), 0o600);
    let writer = half_sent(
        &server,
        "key",
        &data,
        json!({"overwrite": true, "mode": 0o644}),
    )
    .await;
    drop(writer);
    chmod(&partial_of(&server, "key"), 0o644);
    let mut writer = server.client().await;
    let quarter = data.len() / 4;
    writer
        .send_json(
            &json!({"op": "put", "path": "key", "size": data.len() - quarter,
            "offset": quarter, "overwrite": true, "mode": 0o644, "digest": digest(&data)}),
        )
        .await;
    writer.send(&data[quarter..data.len() / 2]).await;
    // The rest is held back until the partial has been seen private.
    for _ in 0..400 {
        if mode_of(&partial_of(&server, "key")) == 0o600 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(mode_of(&partial_of(&server, "key")), 0o600);
    assert_eq!(mode_of(&server.path("key")), 0o600);
    writer.send(&data[data.len() / 2..]).await;
    let reply = writer.read_reply().await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(std::fs::read(server.path("key")).unwrap(), data);
    assert_eq!(mode_of(&server.path("key")), 0o600);
    assert!(!partial_of(&server, "key").exists());
}

/// `mkdir` of `path` asking for `mode` (and `parents`), which must succeed.
async fn mkdir_with_mode(client: &mut Client, path: &str, mode: u32, parents: bool) {
    let reply = client
        .request(json!({"op": "mkdir", "path": path, "mode": mode, "parents": parents}))
        .await;
    assert_eq!(reply["ok"], true, "{path}: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_directory_gets_the_mode_sent_plus_owner_rwx_less_the_umask() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let mask = umask();
    for (path, mode, parents) in [
        ("private", 0o700, true),
        ("shared", 0o755, false),
        ("readonly", 0o555, true),
        ("group", 0o750, false),
    ] {
        mkdir_with_mode(&mut client, path, mode, parents).await;
        assert_eq!(
            mode_of(&server.path(path)),
            (mode | 0o700) & !mask,
            "{path}"
        );
    }
    // Only the last directory gets the mode: the parents made on the way get the default,
    // as with `mkdir -p -m`.
    let reply = client
        .request(json!({"op": "mkdir", "path": "a/b/c", "mode": 0o700}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(mode_of(&server.path("a/b/c")), 0o700 & !mask);
    assert_eq!(mode_of(&server.path("a")), 0o777 & !mask);
    assert_eq!(mode_of(&server.path("a/b")), 0o777 & !mask);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_mode_a_new_directory_gets_what_mkdir_would_give() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let mask = umask();
    let reply = client.request(json!({"op": "mkdir", "path": "x/y"})).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(mode_of(&server.path("x")), 0o777 & !mask);
    assert_eq!(mode_of(&server.path("x/y")), 0o777 & !mask);
    let reply = client
        .request(json!({"op": "mkdir", "path": "z", "parents": false}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(mode_of(&server.path("z")), 0o777 & !mask);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_never_gets_setuid_setgid_or_sticky_and_an_existing_one_keeps_its_mode() {
    let server = Server::start().await;
    // The kernel would pass a setgid bit down from the root itself; this test is about what
    // the client asks for.
    assert_eq!(mode_of(&server.path("")) & 0o7000, 0);
    let mut client = server.client().await;
    let mask = umask();
    for (path, mode, parents) in [
        ("tmp", 0o1777, true),
        ("team", 0o2775, false),
        ("suid", 0o4755, true),
    ] {
        mkdir_with_mode(&mut client, path, mode, parents).await;
        assert_eq!(
            mode_of(&server.path(path)),
            (mode & 0o777) & !mask,
            "{path}"
        );
    }

    // An existing directory is left as its owner set it, whatever is sent.
    std::fs::create_dir(server.path("kept")).unwrap();
    chmod(&server.path("kept"), 0o711);
    let reply = client
        .request(json!({"op": "mkdir", "path": "kept", "mode": 0o777}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(mode_of(&server.path("kept")), 0o711);
    let reply = client
        .request(json!({"op": "mkdir", "path": "kept", "mode": 0o777, "parents": false}))
        .await;
    assert_eq!(code(&reply), "already_exists", "{reply}");
    assert_eq!(mode_of(&server.path("kept")), 0o711);

    // A file in the way is still refused.
    std::fs::write(server.path("file"), b"x").unwrap();
    let reply = client
        .request(json!({"op": "mkdir", "path": "file", "mode": 0o700}))
        .await;
    assert_eq!(reply["ok"], false, "{reply}");
    assert!(server.path("file").is_file());
}
