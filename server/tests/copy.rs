//! `copy`: a file copied inside the root by the server, checked on the real files: the bytes,
//! the digest answered, the source's mtime and mode kept, no partial left, and (through a
//! counting proxy) no payload on the connection. Refused onto itself (also through a hard
//! link), onto a taken name without `overwrite`, from or onto a directory, on a read-only
//! server and outside the root; a destination symlink is written through at its target.
// Helpers outside `#[test]` functions panic on purpose too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use common::{Client, Server, code};
use ferry_testkit::data::{chmod, digest, mode_of, pattern, umask};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes that went through a proxy, each way.
#[derive(Default)]
struct Counted {
    up: AtomicU64,
    down: AtomicU64,
}

/// A TCP proxy in front of `server` for one connection, counting what crosses it each way.
async fn counting_proxy(server: SocketAddr) -> (SocketAddr, Arc<Counted>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counted = Arc::new(Counted::default());
    let counts = Arc::clone(&counted);
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let upstream = TcpStream::connect(server).await.unwrap();
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = upstream.into_split();
        let up = Arc::clone(&counts);
        tokio::spawn(async move {
            let mut buf = vec![0; 64 * 1024];
            while let Ok(n) = client_read.read(&mut buf).await {
                if n == 0 || server_write.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                up.up.fetch_add(n as u64, Ordering::SeqCst);
            }
        });
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n) = server_read.read(&mut buf).await {
            if n == 0 || client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
            counts.down.fetch_add(n as u64, Ordering::SeqCst);
        }
    });
    (addr, counted)
}

fn no_partials(dir: &std::path::Path) {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|name| !name.starts_with(".ferry")),
        "a partial was left: {names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_a_file_keeping_mtime_and_mode_with_no_payload_on_the_connection() {
    let server = Server::start().await;
    let data = pattern(9 * 1024 * 1024 + 123, 7);
    std::fs::create_dir(server.path("a")).unwrap();
    std::fs::create_dir(server.path("b")).unwrap();
    std::fs::write(server.path("a/big.bin"), &data).unwrap();
    chmod(&server.path("a/big.bin"), 0o640);
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    std::fs::File::options()
        .write(true)
        .open(server.path("a/big.bin"))
        .unwrap()
        .set_modified(when)
        .unwrap();

    let (proxy, counted) = counting_proxy(server.addr).await;
    let mut client = Client::connect(proxy).await;
    client.hello().await;
    let before = counted.up.load(Ordering::SeqCst) + counted.down.load(Ordering::SeqCst);
    let reply = client
        .request(json!({"op": "copy", "path": "a/big.bin", "to": "b/copy.bin"}))
        .await;
    let after = counted.up.load(Ordering::SeqCst) + counted.down.load(Ordering::SeqCst);
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["digest"], digest(&data));
    assert_eq!(reply["file_size"], data.len());
    // One request line and one reply line: nowhere near the file's 9 MiB.
    assert!(after - before < 1024, "{} bytes crossed", after - before);

    assert_eq!(std::fs::read(server.path("b/copy.bin")).unwrap(), data);
    let copied = std::fs::metadata(server.path("b/copy.bin")).unwrap();
    assert_eq!(copied.mtime(), 1_600_000_000);
    assert_eq!(mode_of(&server.path("b/copy.bin")), 0o640 & !umask());
    assert_ne!(
        copied.ino(),
        std::fs::metadata(server.path("a/big.bin")).unwrap().ino()
    );
    assert_eq!(std::fs::read(server.path("a/big.bin")).unwrap(), data);
    no_partials(&server.path("b"));

    // An empty file is a file too.
    std::fs::write(server.path("a/empty"), b"").unwrap();
    let reply = client
        .request(json!({"op": "copy", "path": "a/empty", "to": "b/empty"}))
        .await;
    assert_eq!(reply["digest"], digest(b""), "{reply}");
    assert_eq!(std::fs::read(server.path("b/empty")).unwrap(), b"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_name_needs_overwrite_which_keeps_the_replaced_files_mode() {
    let server = Server::start().await;
    std::fs::write(server.path("src"), b"new bytes").unwrap();
    chmod(&server.path("src"), 0o644);
    std::fs::write(server.path("dst"), b"old").unwrap();
    chmod(&server.path("dst"), 0o600);
    let mut client = server.client().await;

    let reply = client
        .request(json!({"op": "copy", "path": "src", "to": "dst"}))
        .await;
    assert_eq!(code(&reply), "already_exists", "{reply}");
    assert_eq!(std::fs::read(server.path("dst")).unwrap(), b"old");

    let reply = client
        .request(json!({"op": "copy", "path": "src", "to": "dst", "overwrite": true}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(std::fs::read(server.path("dst")).unwrap(), b"new bytes");
    assert_eq!(mode_of(&server.path("dst")), 0o600);
    no_partials(&server.root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_itself_directories_escapes_and_a_missing_source() {
    let server = Server::start().await;
    std::fs::create_dir(server.path("d")).unwrap();
    std::fs::write(server.path("f"), b"mine").unwrap();
    std::fs::hard_link(server.path("f"), server.path("hard")).unwrap();
    let mut client = server.client().await;
    for (request, want) in [
        (
            json!({"op": "copy", "path": "f", "to": "f", "overwrite": true}),
            "bad_request",
        ),
        (
            json!({"op": "copy", "path": "f", "to": "hard", "overwrite": true}),
            "bad_request",
        ),
        (
            json!({"op": "copy", "path": "d", "to": "e"}),
            "is_a_directory",
        ),
        (
            json!({"op": "copy", "path": "f", "to": "d", "overwrite": true}),
            "is_a_directory",
        ),
        (
            json!({"op": "copy", "path": "f", "to": ""}),
            "is_a_directory",
        ),
        (
            json!({"op": "copy", "path": "f", "to": "../outside/x"}),
            "bad_path",
        ),
        (
            json!({"op": "copy", "path": "../outside/secret.txt", "to": "x"}),
            "bad_path",
        ),
        (
            json!({"op": "copy", "path": "nope", "to": "x"}),
            "not_found",
        ),
        (
            json!({"op": "copy", "path": "f", "to": "nodir/x"}),
            "not_found",
        ),
    ] {
        let reply = client.request(request.clone()).await;
        assert_eq!(code(&reply), want, "{request} -> {reply}");
    }
    assert_eq!(std::fs::read(server.path("f")).unwrap(), b"mine");
    assert_eq!(std::fs::read(server.path("hard")).unwrap(), b"mine");
    assert!(!server.path("x").exists() && !server.path("e").exists());
    assert_eq!(server.outside_snapshot().len(), 1);
    no_partials(&server.root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_symlink_is_written_through_and_one_leading_out_is_refused() {
    let server = Server::start().await;
    std::fs::write(server.path("src"), b"fresh").unwrap();
    std::fs::write(server.path("target"), b"stale").unwrap();
    std::os::unix::fs::symlink("target", server.path("link")).unwrap();
    std::os::unix::fs::symlink("../outside/secret.txt", server.path("out")).unwrap();
    let mut client = server.client().await;

    let reply = client
        .request(json!({"op": "copy", "path": "src", "to": "link", "overwrite": true}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(std::fs::read(server.path("target")).unwrap(), b"fresh");
    assert!(
        std::fs::symlink_metadata(server.path("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    let reply = client
        .request(json!({"op": "copy", "path": "src", "to": "out", "overwrite": true}))
        .await;
    assert_eq!(code(&reply), "forbidden", "{reply}");
    assert_eq!(
        std::fs::read(server.outside.join("secret.txt")).unwrap(),
        b"do not touch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_server_refuses_and_writes_nothing() {
    let server = Server::start_with(|config| config.read_only = true).await;
    std::fs::write(server.path("f"), b"x").unwrap();
    let mut client = server.client().await;
    let reply = client
        .request(json!({"op": "copy", "path": "f", "to": "g"}))
        .await;
    assert_eq!(code(&reply), "forbidden", "{reply}");
    assert!(!server.path("g").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_cut_short_by_a_reset_leaves_no_final_name_and_no_partial() {
    let server = Server::start_on_shm(|_| {}).await;
    {
        use std::io::Write;
        let chunk = pattern(1024 * 1024, 9);
        let mut file = std::fs::File::create(server.path("big")).unwrap();
        for _ in 0..768 {
            file.write_all(&chunk).unwrap();
        }
    }
    let mut client = server.client().await;
    client
        .send_json(&json!({"op": "copy", "path": "big", "to": "copy"}))
        .await;
    // The partial appears once the copy has started: then the client goes.
    let started = Instant::now();
    let partial = || {
        std::fs::read_dir(&server.root).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".ferry")
        })
    };
    while !partial() {
        assert!(started.elapsed() < common::STEP, "the copy never started");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // A reset, as from a client that died: a copy is stopped by that, not by a close alone
    // (a client may half-close and still read the answer, and then the copy completes).
    #[allow(deprecated)]
    client
        .reader
        .get_ref()
        .as_ref()
        .set_linger(Some(std::time::Duration::ZERO))
        .unwrap();
    drop(client);
    let gone = Instant::now();
    while partial() {
        assert!(gone.elapsed() < common::STEP, "the partial stayed");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        !server.path("copy").exists(),
        "a copy whose client left was placed"
    );
    // The server stopped early: a whole copy of 768 MiB takes longer than that here.
    println!("stopped {:?} after the client left", gone.elapsed());
}

/// The 1 GiB measure for the report: `cargo test -p ferry-server --test copy -- --ignored
/// --nocapture`. Not run by default: it writes 3 GiB to the disk the tests run on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes 3 GiB; run by hand to compare with cp"]
async fn a_gibibyte_copy_against_cp() {
    let server = Server::start().await;
    let chunk = pattern(1024 * 1024, 3);
    {
        use std::io::Write;
        let mut file = std::fs::File::create(server.path("big")).unwrap();
        for _ in 0..1024 {
            file.write_all(&chunk).unwrap();
        }
        file.sync_all().unwrap();
    }
    let mut client = server.client().await;
    // Alternated, twice each, so neither gains from going second (a warmer cache, a quieter
    // disk); each copy is removed before the next.
    for round in 0..2 {
        let started = Instant::now();
        let reply = client
            .request(json!({"op": "copy", "path": "big", "to": "by-ferry"}))
            .await;
        let ferry = started.elapsed();
        assert_eq!(reply["ok"], true, "{reply}");
        assert_eq!(reply["file_size"], 1u64 << 30);
        std::fs::remove_file(server.path("by-ferry")).unwrap();
        let started = Instant::now();
        let status = std::process::Command::new("cp")
            .arg(server.path("big"))
            .arg(server.path("by-cp"))
            .status()
            .unwrap();
        assert!(status.success());
        let cp = started.elapsed();
        std::fs::remove_file(server.path("by-cp")).unwrap();
        println!("1 GiB, round {round}: ferry copy {ferry:?}, cp {cp:?}");
    }
}
