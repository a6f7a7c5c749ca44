//! `digests`: a tree's entries with the digest of every regular file in one streamed answer,
//! checked against BLAKE3 of the real files; every entry accounted for (a link described, not
//! followed; an unreadable file named with `forbidden` by the real binary run as `nobody`);
//! the listed form with its bound; paths that escape; a client that hangs up stops the hashing.
// Helpers outside `#[test]` functions panic on purpose too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use common::{Client, Server, code, digest, pattern};
use ferry_testkit::data::{chmod, shm_dir};
use ferry_testkit::nobody::NobodyServer;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// Every batch of a `digests` answer: the entries by name and the final `skipped`.
async fn digests(
    client: &mut Client,
    request: Value,
) -> Result<(BTreeMap<String, Value>, u64), Value> {
    client.send_json(&request).await;
    let mut entries = BTreeMap::new();
    loop {
        let batch = client.read_reply().await;
        if batch["ok"] != true {
            return Err(batch);
        }
        for entry in batch["entries"].as_array().unwrap() {
            let name = entry["name"].as_str().unwrap().to_owned();
            assert!(
                entries.insert(name, entry.clone()).is_none(),
                "{entry} twice"
            );
        }
        if batch["more"] == false {
            return Ok((entries, batch["skipped"].as_u64().unwrap_or(0)));
        }
        assert_eq!(batch["more"], true, "{batch}");
    }
}

/// A tree with nested directories, an empty file, a 5 MiB file, a symlink and names that need
/// the escape; returns each file's wire name and bytes.
fn build_tree(root: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let odd = std::ffi::OsStr::from_bytes(b"two\nlines \xff");
    std::fs::create_dir_all(root.join("t/a/b/c")).unwrap();
    std::fs::create_dir_all(root.join("t").join(odd)).unwrap();
    let files = vec![
        ("empty".to_owned(), Vec::new()),
        ("big.bin".to_owned(), pattern(5 * 1024 * 1024, 7)),
        ("a/b/c/deep.txt".to_owned(), b"deep".to_vec()),
        ("a/one".to_owned(), pattern(4096, 1)),
        (
            "two\\nlines \\xff/back\\\\slash".to_owned(),
            b"odd".to_vec(),
        ),
    ];
    for (wire, bytes) in &files {
        let raw = ferry_protocol::path::components(wire)
            .unwrap()
            .iter()
            .map(|c| ferry_protocol::path::name_bytes(c).unwrap().into_owned())
            .collect::<Vec<_>>()
            .join(&b'/');
        std::fs::write(
            root.join("t").join(std::ffi::OsStr::from_bytes(&raw)),
            bytes,
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("big.bin", root.join("t/link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("t/a/out")).unwrap();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_comes_back_in_one_request_with_the_digest_of_every_file() {
    let server = Server::start_on_shm(|_| {}).await;
    let files = build_tree(&server.root);
    let mut client = server.client().await;
    let (entries, skipped) = digests(&mut client, json!({"op": "digests", "path": "t"}))
        .await
        .unwrap();
    assert_eq!(skipped, 0);
    for (wire, bytes) in &files {
        let entry = &entries[wire];
        assert_eq!(entry["kind"], "file", "{entry}");
        assert_eq!(entry["size"], bytes.len(), "{entry}");
        assert_eq!(entry["digest"], digest(bytes), "{wire}");
        assert!(entry.get("error").is_none(), "{entry}");
    }
    // Links are described, never followed, and have no digest; so do directories.
    assert_eq!(entries["link"]["kind"], "symlink");
    assert_eq!(entries["link"]["link"], "file");
    assert!(entries["link"].get("digest").is_none());
    assert_eq!(entries["a/out"]["kind"], "symlink");
    assert!(entries["a/out"].get("link").is_none(), "leads outside");
    assert!(entries["a/out"].get("digest").is_none());
    for dir in ["a", "a/b", "a/b/c", "two\\nlines \\xff"] {
        assert_eq!(entries[dir]["kind"], "dir", "{dir}");
        assert!(entries[dir].get("digest").is_none());
    }
    // The same names a walk gives: nothing left out, nothing added.
    let (walked, _, _) = client.list_all("walk", "t").await.unwrap();
    assert_eq!(
        common::names(&walked),
        entries.keys().cloned().collect::<Vec<_>>()
    );
    // Each name can be sent back as a path, and the connection goes on.
    let (_, data, _) = client
        .get("t/two\\nlines \\xff/back\\\\slash", 0)
        .await
        .unwrap();
    assert_eq!(data, b"odd");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_paths_are_answered_in_order_each_with_its_digest_or_error() {
    let server = Server::start_on_shm(|_| {}).await;
    let files = build_tree(&server.root);
    let mut client = server.client().await;
    let paths = [
        "a/one",
        "missing",
        "../outside/secret.txt",
        "a",
        "link",
        "two\\nlines \\xff/back\\\\slash",
        "",
    ];
    client
        .send_json(&json!({"op": "digests", "path": "t", "paths": paths}))
        .await;
    let batch = client.read_reply().await;
    assert_eq!(batch["more"], false, "{batch}");
    let entries = batch["entries"].as_array().unwrap();
    let got: Vec<(&str, Option<&str>)> = entries
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["error"]["code"].as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a/one", None),
            ("missing", Some("not_found")),
            ("../outside/secret.txt", Some("bad_path")),
            ("a", Some("is_a_directory")),
            ("link", None),
            ("two\\nlines \\xff/back\\\\slash", None),
            ("", Some("bad_path")),
        ]
    );
    assert_eq!(batch["skipped"], 4);
    assert_eq!(entries[0]["digest"], digest(&files[3].1));
    assert_eq!(entries[5]["digest"], digest(b"odd"));
    assert_eq!(entries[4]["kind"], "symlink");
    assert!(entries[4].get("digest").is_none(), "a link is not followed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_an_error_and_the_connection_goes_on() {
    let server = Server::start_on_shm(|_| {}).await;
    build_tree(&server.root);
    let outside_before = server.outside_snapshot();
    let mut client = server.client().await;
    for (request, wanted) in [
        (json!({"op": "digests", "path": "../outside"}), "bad_path"),
        (json!({"op": "digests", "path": "/etc"}), "bad_path"),
        (json!({"op": "digests", "path": "t/a/out"}), "forbidden"),
        (
            json!({"op": "digests", "path": "t/big.bin"}),
            "not_a_directory",
        ),
        (json!({"op": "digests", "path": "nope"}), "not_found"),
        (
            json!({"op": "digests", "path": "t", "paths": vec!["a"; 4097]}),
            "too_large",
        ),
        (
            json!({"op": "digests", "path": "t", "paths": "a/one"}),
            "bad_request",
        ),
    ] {
        let reply = client.request(request.clone()).await;
        assert_eq!(code(&reply), wanted, "{request}: {reply}");
    }
    // The bound itself is allowed: each path answered, as often as it was named.
    client
        .send_json(&json!({"op": "digests", "path": "t", "paths": vec!["a/one"; 4096]}))
        .await;
    let mut answered = 0;
    loop {
        let batch = client.read_reply().await;
        for entry in batch["entries"].as_array().unwrap() {
            assert_eq!(entry["name"], "a/one", "{entry}");
            assert!(entry["digest"].is_string(), "{entry}");
            answered += 1;
        }
        if batch["more"] == false {
            break;
        }
    }
    assert_eq!(answered, 4096);
    assert_eq!(server.outside_snapshot(), outside_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_server_answers_digests() {
    let server = Server::start_on_shm(|config| config.read_only = true).await;
    std::fs::write(server.path("f"), b"read only").unwrap();
    let mut client = server.client().await;
    let (entries, _) = digests(&mut client, json!({"op": "digests", "path": ""}))
        .await
        .unwrap();
    assert_eq!(entries["f"]["digest"], digest(b"read only"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_the_server_may_not_read_is_named_with_forbidden() {
    let root = shm_dir();
    chmod(root.path(), 0o755);
    std::fs::create_dir(root.path().join("d")).unwrap();
    chmod(&root.path().join("d"), 0o755);
    std::fs::write(root.path().join("d/secret"), b"root only").unwrap();
    std::fs::write(root.path().join("d/open"), b"anyone").unwrap();
    chmod(&root.path().join("d/secret"), 0o600);
    chmod(&root.path().join("d/open"), 0o644);
    let server = NobodyServer::start(root.path());
    let mut client = Client::connect(server.addr).await;
    client.hello().await;
    let (entries, skipped) = digests(&mut client, json!({"op": "digests", "path": "d"}))
        .await
        .unwrap();
    assert_eq!(entries["open"]["digest"], digest(b"anyone"));
    let secret = &entries["secret"];
    assert_eq!(secret["kind"], "file", "{secret}");
    assert_eq!(secret["error"]["code"], "forbidden", "{secret}");
    assert!(secret.get("digest").is_none(), "{secret}");
    assert_eq!(skipped, 1, "counted for clients that do not read `error`");
    let reply = client
        .request(json!({"op": "digests", "path": "d", "paths": ["secret", "open"]}))
        .await;
    assert_eq!(reply["entries"][0]["error"]["code"], "forbidden", "{reply}");
    assert_eq!(reply["entries"][1]["digest"], digest(b"anyone"), "{reply}");
}

/// A big tree's answer goes out in bounded batches as it is made: the first batch arrives
/// long before the whole tree could have been hashed, and the rest arrive in many lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_tree_is_streamed_in_bounded_batches() {
    let server = Server::start_on_shm(|_| {}).await;
    for d in 0..10 {
        let dir = server.path(&format!("tree/d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..1000 {
            std::fs::write(dir.join(format!("file-{f:05}")), f.to_string()).unwrap();
        }
    }
    let mut client = server.client().await;
    client
        .send_json(&json!({"op": "digests", "path": "tree"}))
        .await;
    let mut files = 0;
    let mut batches = 0;
    loop {
        let line = client.read_line().await.unwrap();
        assert!(
            line.len() < 64 * 1024,
            "a batch stays under the header limit"
        );
        let batch: Value = serde_json::from_slice(&line).unwrap();
        batches += 1;
        for entry in batch["entries"].as_array().unwrap() {
            if entry["kind"] == "file" {
                let name = entry["name"].as_str().unwrap();
                let f: u32 = name.rsplit('-').next().unwrap().parse().unwrap();
                assert_eq!(entry["digest"], digest(f.to_string().as_bytes()), "{name}");
                files += 1;
            }
        }
        if batch["more"] == false {
            break;
        }
    }
    assert_eq!(files, 10_000);
    assert!(batches > 10, "{batches} batches");
}

/// CPU time of the process `pid`, from `/proc/PID/stat` (utime and stime, in USER_HZ, which
/// Linux fixes at 100 a second).
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15; the first after `)` is field 3.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// The `ferry-server` binary on `root`, so its CPU time is its own; killed on drop.
struct Binary(std::process::Child, std::net::SocketAddr);

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashing_stops_when_the_client_hangs_up() {
    use ferry_testkit::bin;
    let base = shm_dir();
    let root = base.path().join("root");
    std::fs::create_dir_all(root.join("big")).unwrap();
    let files: Vec<_> = (0..4).map(|i| root.join(format!("big/{i}.bin"))).collect();
    for file in &files {
        // Sparse: no memory, and hashing still reads 1 GiB of zeros each.
        std::fs::File::create(file)
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
    }
    let (child, mut log) = bin::spawn_logging(
        std::process::Command::new(bin::ferry_server())
            .args(["--root", root.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .env_remove("FERRY_TOKEN"),
    );
    let addr = bin::wait_serving(&mut log).parse().unwrap();
    bin::drain(log);
    let server = Binary(child, addr);
    let pid = server.0.id();
    // Files changed within the last two seconds are never answered from the digest cache:
    // touched (chmod moves ctime), every request below hashes them for real.
    let touch = || {
        for file in &files {
            chmod(file, 0o644);
        }
    };
    touch();
    let mut probe = Client::connect(server.1).await;
    probe.hello().await;
    let before = cpu(pid);
    let (entries, _) = digests(&mut probe, json!({"op": "digests", "path": "big"}))
        .await
        .unwrap();
    assert!(entries["0.bin"]["digest"].is_string());
    let one = cpu(pid) - before;
    drop(probe);

    let mut client = Client::connect(server.1).await;
    client.hello().await;
    touch();
    let mut burst = Vec::new();
    for _ in 0..10 {
        burst.extend(br#"{"op":"digests","path":"big"}"#);
        burst.push(b'\n');
    }
    let start = cpu(pid);
    client.writer.write_all(&burst).await.unwrap();
    // Gone for good: a reset, not a half-close (after which a client may still read answers).
    #[allow(deprecated)]
    client
        .writer
        .as_ref()
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(client);
    // Settled: CPU stops moving for a second.
    let mut last = cpu(pid);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = cpu(pid);
        if now - last < Duration::from_millis(30) || Instant::now() > deadline {
            break;
        }
        last = now;
    }
    let spent = cpu(pid) - start;
    eprintln!("one digests of 4 GiB: {one:?}; after the hang-up: {spent:?}");
    // Ten would cost ten times one; the one under way stops at its next MiB.
    assert!(
        spent < one / 2,
        "the server hashed {spent:?} for a client that was gone"
    );
    let mut other = Client::connect(server.1).await;
    other.hello().await;
    let stat = other.request(json!({"op": "stat", "path": ""})).await;
    assert_eq!(stat["ok"], true, "{stat}");
}

/// What the digest cache saves, measured: `digests` of 30,000 small files and of a 1 GiB file,
/// twice each (the first hashes and fills the cache, the second is answered from it), against
/// `walk` of the same tree (the `lstat` per entry the cache's key needs: the floor of a cached
/// repeat). Run with `cargo test -p ferry-server --release --test digests -- --ignored
/// --nocapture what_a_digest_cache_could_save`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn what_a_digest_cache_could_save() {
    let server = Server::start_on_shm(|_| {}).await;
    for d in 0..30 {
        let dir = server.path(&format!("small/d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..1000 {
            std::fs::write(dir.join(format!("f{f}")), pattern(4096, f)).unwrap();
        }
    }
    std::fs::create_dir(server.path("large")).unwrap();
    std::fs::write(server.path("large/1g.bin"), pattern(1 << 30, 3)).unwrap();
    // Settled, so the first round fills the cache (it caches only files whose ctime is two
    // seconds older than their hashing) and the second is answered from it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut client = server.client().await;
    for tree in ["small", "large"] {
        for round in 1..=2 {
            let start = Instant::now();
            let (entries, _) = digests(&mut client, json!({"op": "digests", "path": tree}))
                .await
                .unwrap();
            let hashed = start.elapsed();
            let start = Instant::now();
            let (walked, _, _) = client.list_all("walk", tree).await.unwrap();
            let walk = start.elapsed();
            assert_eq!(entries.len(), walked.len());
            eprintln!(
                "{tree} round {round}: {} entries, digests {hashed:?}, walk {walk:?}",
                entries.len()
            );
        }
    }
}

/// The cache never answers for another version of a file: a rewrite of the same size whose
/// mtime is put back exactly as it was (as a tool restoring times does) still moves the ctime,
/// and the next answer has the new bytes' digest; so does a rewrite in the same instant as the
/// hashing, which is never cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_that_keeps_size_and_mtime_is_never_answered_from_the_cache() {
    let server = Server::start_on_shm(|_| {}).await;
    std::fs::create_dir(server.path("d")).unwrap();
    let (old, new) = (pattern(4096, 1), pattern(4096, 2));
    std::fs::write(server.path("d/settled"), &old).unwrap();
    std::fs::write(server.path("d/fresh"), &old).unwrap();
    let mtime = std::fs::metadata(server.path("d/settled"))
        .unwrap()
        .modified()
        .unwrap();
    // Past the two seconds after which a file's digest may be cached.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    std::fs::write(server.path("d/fresh"), &old).unwrap();
    let mut client = server.client().await;
    for round in 0..2 {
        let (entries, _) = digests(&mut client, json!({"op": "digests", "path": "d"}))
            .await
            .unwrap();
        assert_eq!(entries["settled"]["digest"], digest(&old), "round {round}");
        assert_eq!(entries["fresh"]["digest"], digest(&old), "round {round}");
    }
    for name in ["settled", "fresh"] {
        let path = server.path(&format!("d/{name}"));
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::io::Write::write_all(&mut &file, &new).unwrap();
        file.set_modified(mtime).unwrap();
        drop(file);
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    }
    let (entries, _) = digests(&mut client, json!({"op": "digests", "path": "d"}))
        .await
        .unwrap();
    assert_eq!(entries["settled"]["digest"], digest(&new));
    assert_eq!(entries["fresh"]["digest"], digest(&new));
    let reply = client
        .request(json!({"op": "digests", "path": "d", "paths": ["settled"]}))
        .await;
    assert_eq!(reply["entries"][0]["digest"], digest(&new), "{reply}");
}
