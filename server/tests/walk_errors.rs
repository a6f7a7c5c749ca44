//! `walk` names what it could not go into or read, with why: a directory the server may not
//! read (the real binary run as an unprivileged user, since root reads everything), one below
//! the depth cap, an entry gone between `readdir` and `lstat`; so that a copy of the tree can
//! say what it left out instead of only counting it. Its path limit counts raw bytes.
// Helpers outside `#[test]` functions panic on purpose too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Client, Server};
use ferry_testkit::data::{chmod, shm_dir};
use ferry_testkit::nobody::NobodyServer;
use serde_json::Value;

fn by_name<'a>(entries: &'a [Value], name: &str) -> &'a Value {
    entries
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {entries:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_directory_is_listed_with_its_error() {
    let root = shm_dir();
    chmod(root.path(), 0o755);
    std::fs::create_dir_all(root.path().join("a/private")).unwrap();
    std::fs::create_dir_all(root.path().join("a/open")).unwrap();
    std::fs::write(root.path().join("a/private/secret.txt"), b"x").unwrap();
    std::fs::write(root.path().join("a/open/f.txt"), b"y").unwrap();
    chmod(&root.path().join("a"), 0o755);
    chmod(&root.path().join("a/open"), 0o755);
    chmod(&root.path().join("a/open/f.txt"), 0o644);
    // Owned by root: the server, as nobody, may see it but not read it.
    chmod(&root.path().join("a/private"), 0o700);
    let server = NobodyServer::start(root.path());
    let mut client = Client::connect(server.addr).await;
    client.hello().await;
    let (entries, skipped, _) = client.list_all("walk", "a").await.unwrap();
    let private = by_name(&entries, "private");
    assert_eq!(private["kind"], "dir");
    assert_eq!(private["error"]["code"], "forbidden", "{private}");
    assert!(
        private["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ermission denied"),
        "{private}"
    );
    // The readable rest is walked as before, without an error.
    assert!(by_name(&entries, "open").get("error").is_none());
    by_name(&entries, "open/f.txt");
    // Still counted, for clients that do not read `error`.
    assert_eq!(skipped, 1);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_below_the_depth_cap_is_named_with_too_large() {
    let server = Server::start_on_shm(|_| {}).await;
    let deep = vec!["d"; 131].join("/");
    std::fs::create_dir_all(server.path(&deep)).unwrap();
    let mut client = server.client().await;
    let (entries, _, _) = client.list_all("walk", "").await.unwrap();
    let with_error: Vec<&Value> = entries
        .iter()
        .filter(|e| e.get("error").is_some())
        .collect();
    assert_eq!(with_error.len(), 1, "{with_error:?}");
    assert_eq!(with_error[0]["name"].as_str().unwrap().len(), 129 * 2 - 1);
    assert_eq!(with_error[0]["error"]["code"], "too_large");
}

/// The path limit is on raw bytes: a deep tree of names that each take four bytes on the wire
/// per raw byte is walked whole while its raw paths fit, and each name can be asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_path_of_escaped_names_is_walked_while_its_raw_bytes_fit() {
    use std::os::unix::ffi::OsStrExt;
    let server = Server::start_on_shm(|_| {}).await;
    // 30 levels of 60 bytes 0xff: 1,830 raw bytes, over 7,000 once escaped.
    let name = std::ffi::OsStr::from_bytes(&[0xff; 60]).to_owned();
    let mut deep = server.path("");
    for _ in 0..30 {
        deep.push(&name);
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("bottom.txt"), b"found").unwrap();
    let wire_name = "\\xff".repeat(60);
    let bottom = format!("{}/bottom.txt", vec![wire_name.as_str(); 30].join("/"));
    assert!(bottom.len() > 4096 && bottom.len() < 4 * 4096);
    let mut client = server.client().await;
    let (entries, skipped, _) = client.list_all("walk", "").await.unwrap();
    assert_eq!(skipped, 0, "{entries:?}");
    assert_eq!(entries.len(), 31);
    let found = by_name(&entries, &bottom);
    assert_eq!(found["kind"], "file");
    assert!(found.get("error").is_none(), "{found}");
    // The name as sent is a path the server takes back.
    let (_, data, trailer) = client.get(&bottom, 0).await.unwrap();
    assert_eq!(data, b"found");
    assert_eq!(trailer["ok"], true);
    // From a walked directory below the root, too.
    let (entries, skipped, _) = client.list_all("walk", &wire_name).await.unwrap();
    assert_eq!((entries.len(), skipped), (30, 0));
}

/// Files removed while the walk reads their directory: a name `readdir` gave whose `lstat`
/// then finds nothing is named with `not_found`, never dropped; files that stay are listed
/// without an error. The removal races the walk (there is no way to stop the server between
/// `readdir` and `lstat` from outside), so the walk is tried until the race is hit once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_vanishes_under_the_walk_is_named_not_found() {
    let server = Server::start_on_shm(|_| {}).await;
    let dir = server.path("d");
    let mut client = server.client().await;
    let mut named = 0;
    for attempt in 0..40 {
        if named > 0 {
            break;
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        for i in 0..4000 {
            std::fs::write(dir.join(format!("f{i:05}")), b"").unwrap();
        }
        // Odd files stay; even ones go, in the opposite order to the one they were made in.
        let remover = {
            let dir = dir.clone();
            std::thread::spawn(move || {
                for i in (0..4000).step_by(2).rev() {
                    let _ = std::fs::remove_file(dir.join(format!("f{i:05}")));
                }
            })
        };
        let (entries, skipped, _) = client.list_all("walk", "d").await.unwrap();
        remover.join().unwrap();
        let mut with_error = 0;
        for entry in &entries {
            let name = entry["name"].as_str().unwrap();
            let n: usize = name[1..].parse().unwrap();
            if let Some(error) = entry.get("error") {
                assert_eq!(n % 2, 0, "a file that stayed is named with {error}");
                assert_eq!(error["code"], "not_found", "{entry}");
                assert_eq!(entry["kind"], "file", "{entry}");
                with_error += 1;
            }
        }
        for i in (1..4000).step_by(2) {
            let name = format!("f{i:05}");
            let e = by_name(&entries, &name);
            assert!(e.get("error").is_none(), "attempt {attempt}: {e}");
        }
        assert_eq!(
            skipped, with_error,
            "each named entry is counted in skipped"
        );
        named += with_error;
    }
    assert!(named > 0, "the race was never hit in 40 walks");
}
