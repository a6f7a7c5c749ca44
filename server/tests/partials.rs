//! Partial uploads as the filesystem sees them: one writer per file whatever path reaches it,
//! one owner per partial, `partials` and `discard` to find and free them, and disk-space claims
//! that one trickling upload cannot hold for everyone. Real sockets, real files; the disk-space
//! cases run the server binary on private tmpfs mounts (`unshare -Urm`, as in `no_space.rs`).

// Helpers run inside tests: a failed step should stop the test with its error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Client, Server, TmpfsServer, code, digest, pattern, users_file};
use serde_json::{Value, json};

const KIB: usize = 1024;

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < common::STEP, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The partial files in `dir`, with their contents.
fn partials_on_disk(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with(".ferry-part.")
        })
        .map(|entry| {
            (
                entry.file_name().into_string().unwrap(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect();
    found.sort();
    found
}

/// Starts a put of `data.len()` bytes and sends the first `sent` of them.
async fn start_put(client: &mut Client, path: &str, data: &[u8], sent: usize) {
    client
        .send_json(&json!({"op": "put", "path": path, "size": data.len()}))
        .await;
    client.send(&data[..sent]).await;
}

/// [`start_put`], then waits until the partial in `dir` holds the `sent` bytes.
async fn put_part_way(client: &mut Client, path: &str, data: &[u8], sent: usize, dir: &Path) {
    start_put(client, path, data, sent).await;
    until_a_partial_holds(dir, &data[..sent]).await;
}

/// Waits until some partial in `dir` holds exactly `bytes`.
async fn until_a_partial_holds(dir: &Path, bytes: &[u8]) {
    until("the partial holds the bytes sent", || {
        partials_on_disk(dir).iter().any(|(_, held)| held == bytes)
    })
    .await;
}

#[tokio::test]
async fn a_long_name_and_its_digest_as_a_name_never_share_a_partial() {
    let server = Server::start().await;
    let long = "L".repeat(250);
    let hex = blake3::hash(long.as_bytes()).to_hex().to_string();
    let victim_data = pattern(512 * KIB, 1);
    let other_data = pattern(512 * KIB, 2);

    let mut victim = server.client().await;
    put_part_way(&mut victim, &long, &victim_data, 256 * KIB, &server.root).await;
    let mut other = server.client().await;
    put_part_way(&mut other, &hex, &other_data, 100 * KIB, &server.root).await;

    victim.send(&victim_data[256 * KIB..]).await;
    let reply = victim.read_reply().await;
    other.send(&other_data[100 * KIB..]).await;
    let other_reply = other.read_reply().await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["digest"], digest(&victim_data), "{reply}");
    // What the victim was told is what its file holds.
    assert_eq!(std::fs::read(server.path(&long)).unwrap(), victim_data);
    assert_eq!(other_reply["ok"], true, "{other_reply}");
    assert_eq!(std::fs::read(server.path(&hex)).unwrap(), other_data);
    assert_eq!(partials_on_disk(&server.root), []);
}

#[tokio::test]
async fn a_symlinked_directory_reaches_the_same_upload_and_gets_busy() {
    let server = Server::start().await;
    std::fs::create_dir(server.path("d")).unwrap();
    symlink("d", server.path("s")).unwrap();
    let victim_data = pattern(512 * KIB, 3);
    let mut victim = server.client().await;
    put_part_way(
        &mut victim,
        "d/f.bin",
        &victim_data,
        256 * KIB,
        &server.path("d"),
    )
    .await;

    let mut other = server.client().await;
    let reply = other
        .put("s/f.bin", &pattern(300 * KIB, 4), json!({}))
        .await;
    assert_eq!(code(&reply), "busy", "{reply}");
    // Nor may it resume the victim's partial through the other spelling.
    let reply = other
        .put("s/f.bin", &[], json!({"offset": 256 * KIB}))
        .await;
    assert_eq!(code(&reply), "busy", "{reply}");

    victim.send(&victim_data[256 * KIB..]).await;
    let reply = victim.read_reply().await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(std::fs::read(server.path("d/f.bin")).unwrap(), victim_data);
}

#[tokio::test]
async fn two_server_processes_on_one_tree_never_mix_their_writers() {
    let first = Server::start().await;
    let root = first.root.clone();
    let second = Server::start_with(|config| config.root = root).await;
    let victim_data = pattern(512 * KIB, 11);
    let mut victim = first.client().await;
    put_part_way(&mut victim, "f.bin", &victim_data, 256 * KIB, &first.root).await;

    // The other server knows nothing of the first's claim; the partial's lock says it is taken.
    let mut other = second.client().await;
    let reply = other
        .put(
            "f.bin",
            &pattern(10 * KIB, 12),
            json!({"offset": 256 * KIB}),
        )
        .await;
    assert_eq!(code(&reply), "busy", "{reply}");
    // Nor may a fresh upload there pull the partial from under the first.
    let reply = other.put("f.bin", &pattern(300 * KIB, 13), json!({})).await;
    assert_eq!(code(&reply), "busy", "{reply}");

    victim.send(&victim_data[256 * KIB..]).await;
    let reply = victim.read_reply().await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(std::fs::read(first.path("f.bin")).unwrap(), victim_data);
    // Once it is done, the other server may write the file.
    let other_data = pattern(300 * KIB, 15);
    let reply = other
        .put("f.bin", &other_data, json!({"overwrite": true}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(std::fs::read(first.path("f.bin")).unwrap(), other_data);
}

const ANN: (&str, &str) = ("ann", "ann's long password");
const BOB: (&str, &str) = ("bob", "bob reads only");
const CARL: (&str, &str) = ("carl", "carl writes too");

/// Three accounts on one shared root: ann and carl may write, bob only read; a token too.
async fn shared_root_server() -> (Server, tempfile::TempDir) {
    let base = tempfile::tempdir().unwrap();
    let file = base.path().join("users");
    let root = base.path().join("shared");
    std::fs::create_dir(&root).unwrap();
    users_file(
        &file,
        &[
            (ANN.0, ANN.1, &root, false),
            (BOB.0, BOB.1, &root, true),
            (CARL.0, CARL.1, &root, false),
        ],
    );
    let server = serve_accounts(base.path()).await;
    (server, base)
}

/// A server over the users file and shared root that [`shared_root_server`] made in `base`.
async fn serve_accounts(base: &Path) -> Server {
    let root = base.join("shared");
    let users = ferry_server::users::Users::load(&base.join("users")).unwrap();
    Server::start_with(|config| {
        config.root = root.clone();
        config.users = Some(Arc::new(users));
        config.token = Some("tok".into());
        config.auth_delay = Duration::from_millis(10);
    })
    .await
}

async fn login(server: &Server, (user, password): (&str, &str)) -> Client {
    let mut client = Client::connect(server.addr).await;
    let reply = client
        .request(json!({"op": "hello", "version": 1, "user": user, "password": password}))
        .await;
    assert_eq!(reply["ok"], true, "{user}: {reply}");
    client
}

async fn with_token(server: &Server) -> Client {
    let mut client = Client::connect(server.addr).await;
    let reply = client
        .request(json!({"op": "hello", "version": 1, "token": "tok"}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    client
}

fn listed(reply: &Value) -> Vec<(String, u64)> {
    assert_eq!(reply["ok"], true, "{reply}");
    let mut found: Vec<_> = reply["partials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["size"].as_u64().unwrap(),
            )
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn a_partial_belongs_to_the_account_that_started_it() {
    let (server, base) = shared_root_server().await;
    let root = base.path().join("shared");
    let data = pattern(400 * KIB, 5);
    let half = 200 * KIB;
    {
        let mut ann = login(&server, ANN).await;
        put_part_way(&mut ann, "secret.bin", &data, half, &root).await;
    }
    // ann's connection is gone; her partial stays for her resume.
    until("the upload is released", || {
        !partials_on_disk(&root).is_empty()
    })
    .await;

    let mut bob = login(&server, BOB).await;
    let reply = bob
        .request(json!({"op": "partial", "path": "secret.bin"}))
        .await;
    assert_eq!(
        reply["length"], 0,
        "bob learns nothing of ann's partial: {reply}"
    );
    assert_eq!(
        listed(&bob.request(json!({"op": "partials", "path": ""})).await),
        []
    );

    let mut carl = login(&server, CARL).await;
    let reply = carl
        .request(json!({"op": "partial", "path": "secret.bin"}))
        .await;
    assert_eq!(reply["length"], 0, "{reply}");
    // Completing ann's partial as his own file is refused, and so is discarding it.
    let reply = carl.put("secret.bin", &[], json!({"offset": half})).await;
    assert_eq!(code(&reply), "offset_mismatch", "{reply}");
    let reply = carl
        .request(json!({"op": "discard", "path": "secret.bin"}))
        .await;
    assert_eq!(code(&reply), "not_found", "{reply}");
    let mut token = with_token(&server).await;
    let reply = token
        .request(json!({"op": "partial", "path": "secret.bin"}))
        .await;
    assert_eq!(reply["length"], 0, "{reply}");
    assert!(!root.join("secret.bin").exists());

    // ann, on a new connection, still sees it and finishes it.
    let mut ann = login(&server, ANN).await;
    let reply = ann
        .request(json!({"op": "partial", "path": "secret.bin"}))
        .await;
    assert_eq!(reply["length"], half, "{reply}");
    assert_eq!(reply["digest"], digest(&data[..half]), "{reply}");
    owner_lists_and_finishes(&mut ann, &root, "secret.bin", &data, half).await;
}

/// The partial's `owner` sees `name` among its partials with `half` bytes, and finishes it.
async fn owner_lists_and_finishes(
    owner: &mut Client,
    root: &Path,
    name: &str,
    data: &[u8],
    half: usize,
) {
    assert_eq!(
        listed(&owner.request(json!({"op": "partials", "path": ""})).await),
        [(name.to_owned(), half as u64)]
    );
    let reply = owner
        .put(name, &data[half..], json!({"offset": half}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(std::fs::read(root.join(name)).unwrap(), data);
}

#[tokio::test]
async fn a_partials_owner_is_kept_across_a_restart() {
    let (mut server, base) = shared_root_server().await;
    let root = base.path().join("shared");
    let data = pattern(300 * KIB, 14);
    let half = 100 * KIB;
    {
        let mut ann = login(&server, ANN).await;
        put_part_way(&mut ann, "kept.bin", &data, half, &root).await;
    }
    server.stop().await.unwrap();

    let server = serve_accounts(base.path()).await;
    let mut carl = login(&server, CARL).await;
    let reply = carl
        .request(json!({"op": "partial", "path": "kept.bin"}))
        .await;
    assert_eq!(reply["length"], 0, "{reply}");
    let mut ann = login(&server, ANN).await;
    owner_lists_and_finishes(&mut ann, &root, "kept.bin", &data, half).await;
}

#[tokio::test]
async fn partials_lists_the_callers_partials_and_discard_frees_them() {
    let server = Server::start().await;
    std::fs::create_dir(server.path("dir")).unwrap();
    let long = "n".repeat(240);
    let data = pattern(300 * KIB, 6);
    for (name, sent) in [
        ("dir/a.iso", 100 * KIB),
        (&*format!("dir/{long}"), 50 * KIB),
    ] {
        let mut client = server.client().await;
        put_part_way(&mut client, name, &data, sent, &server.path("dir")).await;
    }
    let mut client = server.client().await;
    let reply = client
        .request(json!({"op": "partials", "path": "dir"}))
        .await;
    let mut want = vec![
        ("a.iso".to_owned(), 100 * KIB as u64),
        (long.clone(), 50 * KIB as u64),
    ];
    want.sort();
    assert_eq!(listed(&reply), want, "{reply}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for partial in reply["partials"].as_array().unwrap() {
        let mtime = partial["mtime"].as_i64().unwrap();
        assert!((now - mtime).abs() < 120, "{partial}");
    }
    // The directory's listing still hides them; the root has none.
    let (entries, _, _) = client.list_all("list", "dir").await.unwrap();
    assert_eq!(entries.len(), 0);
    assert_eq!(
        listed(&client.request(json!({"op": "partials", "path": ""})).await),
        []
    );

    for name in ["dir/a.iso", &*format!("dir/{long}")] {
        let reply = client.request(json!({"op": "discard", "path": name})).await;
        assert_eq!(reply["ok"], true, "{name}: {reply}");
    }
    assert_eq!(partials_on_disk(&server.path("dir")), []);
    let reply = client
        .request(json!({"op": "discard", "path": "dir/a.iso"}))
        .await;
    assert_eq!(code(&reply), "not_found", "{reply}");
    let reply = client
        .request(json!({"op": "partials", "path": "nowhere"}))
        .await;
    assert_eq!(code(&reply), "not_found", "{reply}");
}

#[tokio::test]
async fn a_partial_being_written_cannot_be_discarded() {
    let server = Server::start().await;
    let data = pattern(400 * KIB, 7);
    let mut writer = server.client().await;
    put_part_way(&mut writer, "w.bin", &data, 100 * KIB, &server.root).await;
    let mut other = server.client().await;
    let reply = other
        .request(json!({"op": "discard", "path": "w.bin"}))
        .await;
    assert_eq!(code(&reply), "busy", "{reply}");
    writer.send(&data[100 * KIB..]).await;
    assert_eq!(writer.read_reply().await["ok"], true);
    assert_eq!(std::fs::read(server.path("w.bin")).unwrap(), data);
}

#[tokio::test]
async fn a_read_only_session_cannot_discard() {
    let server = Server::start_with(|config| config.read_only = true).await;
    let mut client = server.client().await;
    let reply = client.request(json!({"op": "discard", "path": "x"})).await;
    assert_eq!(code(&reply), "forbidden", "{reply}");
}

/// A `ferry-server` whose root is a private tmpfs of `size` with a second tmpfs mounted at
/// `other`.
fn two_disks(size: &str) -> TmpfsServer {
    TmpfsServer::start(
        size,
        r#"mkdir "$2/other" && mount -t tmpfs -o "size=$1" tmpfs "$2/other" &&"#,
        &["--reserve", "0"],
    )
}

/// An upload of `hog.bin` that announces `free` bytes (every free byte of the root's
/// filesystem) and sends one; given time to be claimed.
async fn claim_all(server: &TmpfsServer, free: u64) -> Client {
    let mut greedy = server.client().await;
    greedy
        .send_json(&json!({"op": "put", "path": "hog.bin", "size": free}))
        .await;
    greedy.send(b"x").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    greedy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_on_one_filesystem_leaves_another_alone_and_takes_half_at_most() {
    let server = two_disks("4m");
    let free = server.free("");
    assert!(server.free("other") > 3 * 1024 * 1024);
    // One upload announces every free byte of the root's filesystem, then sends one.
    let _greedy = claim_all(&server, free).await;

    let mut client = server.client().await;
    let reply = client
        .put("other/fine.bin", &pattern(1024 * KIB, 8), json!({}))
        .await;
    assert_eq!(
        reply["ok"], true,
        "another filesystem is not claimed: {reply}"
    );
    // On the same filesystem, what the greedy upload holds is at most half.
    let reply = client
        .put("fine.bin", &pattern(1024 * KIB, 9), json!({}))
        .await;
    assert_eq!(reply["ok"], true, "half of the room is left: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_upload_loses_its_claim() {
    let server = two_disks("4m");
    let free = server.free("");
    let mut greedy = claim_all(&server, free).await;
    // Three quarters of the disk do not fit beside the half the trickler holds...
    let want = pattern(usize::try_from(free).unwrap() * 3 / 4, 10);
    let mut client = server.client().await;
    let reply = client.put("big.bin", &want, json!({})).await;
    assert_eq!(code(&reply), "no_space", "{reply}");
    // ... until it has sent too little for too long, one byte a second.
    let start = Instant::now();
    loop {
        greedy.send(b"x").await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let reply = client.put("big.bin", &want, json!({})).await;
        if reply["ok"] == true {
            break;
        }
        assert_eq!(code(&reply), "no_space", "{reply}");
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "the trickler's claim never lapsed"
        );
    }
    assert!(
        start.elapsed() >= Duration::from_secs(5),
        "the claim lapsed too early"
    );
}
