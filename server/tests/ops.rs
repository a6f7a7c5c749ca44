//! The metadata and tree operations: stat, list, walk, summary, mkdir, rename, remove, and
//! the read-only mode.

mod common;

use std::collections::HashSet;
use std::os::unix::fs::symlink;

use common::{Server, code, names};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stat_describes_files_dirs_and_the_root() {
    let server = Server::start().await;
    std::fs::create_dir(server.path("d")).unwrap();
    std::fs::write(server.path("d/f.txt"), b"12345").unwrap();
    let mut client = server.client().await;
    let root = client.request(json!({"op": "stat", "path": ""})).await;
    assert_eq!(root["entry"]["name"], "");
    assert_eq!(root["entry"]["kind"], "dir");
    let file = client
        .request(json!({"op": "stat", "path": "d/f.txt"}))
        .await;
    assert_eq!(file["entry"]["name"], "f.txt");
    assert_eq!(file["entry"]["kind"], "file");
    assert_eq!(file["entry"]["size"], 5);
    assert!(file["entry"]["mtime"].as_i64().unwrap() > 1_600_000_000);
    let missing = client
        .request(json!({"op": "stat", "path": "d/nope"}))
        .await;
    assert_eq!(code(&missing), "not_found");
    let through_file = client
        .request(json!({"op": "stat", "path": "d/f.txt/x"}))
        .await;
    assert_eq!(code(&through_file), "not_a_directory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_entry_listing_arrives_in_batches_with_every_name_once() {
    let server = Server::start_on_shm(|_| {}).await;
    std::fs::create_dir(server.path("many")).unwrap();
    for i in 0..10_000 {
        std::fs::write(
            server.path(&format!("many/file-with-a-longish-name-{i:05}")),
            b"",
        )
        .unwrap();
    }
    let mut client = server.client().await;
    client
        .send_json(&json!({"op": "list", "path": "many"}))
        .await;
    let mut seen = HashSet::new();
    let mut batches = 0;
    loop {
        let line = client.read_line().await.unwrap();
        assert!(line.len() < 64 * 1024, "a batch over the header cap");
        let batch: serde_json::Value = serde_json::from_slice(&line).unwrap();
        batches += 1;
        for entry in batch["entries"].as_array().unwrap() {
            let name = entry["name"].as_str().unwrap().to_owned();
            assert!(seen.insert(name.clone()), "{name} listed twice");
            assert_eq!(entry["kind"], "file");
        }
        if batch["more"] == false {
            break;
        }
    }
    assert!(batches > 1, "only {batches} batch");
    assert_eq!(seen.len(), 10_000);
    for i in 0..10_000 {
        assert!(seen.contains(&format!("file-with-a-longish-name-{i:05}")));
    }
    // The connection is in step afterwards.
    assert_eq!(
        client.request(json!({"op": "stat", "path": "many"})).await["ok"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_refuses_files_and_missing_paths() {
    let server = Server::start().await;
    std::fs::write(server.path("f"), b"").unwrap();
    std::fs::create_dir(server.path("empty")).unwrap();
    let mut client = server.client().await;
    assert_eq!(
        code(&client.list_all("list", "f").await.unwrap_err()),
        "not_a_directory"
    );
    assert_eq!(
        code(&client.list_all("list", "nope").await.unwrap_err()),
        "not_found"
    );
    let (entries, skipped, batches) = client.list_all("list", "empty").await.unwrap();
    assert!(entries.is_empty());
    assert_eq!((skipped, batches), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walk_is_depth_first_relative_and_lists_links_without_following() {
    let server = Server::start().await;
    for dir in ["top/a/deep", "top/b"] {
        std::fs::create_dir_all(server.path(dir)).unwrap();
    }
    std::fs::write(server.path("top/a/deep/x.txt"), b"xx").unwrap();
    std::fs::write(server.path("top/b/y.txt"), b"yyy").unwrap();
    std::fs::write(server.path("top/b/.ferry-part.z"), b"half").unwrap();
    std::fs::write(server.path("top/root.txt"), b"r").unwrap();
    symlink("a", server.path("top/link-to-a")).unwrap();
    let mut client = server.client().await;
    let (entries, skipped, _) = client.list_all("walk", "top").await.unwrap();
    let order: Vec<String> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "a",
            "a/deep",
            "a/deep/x.txt",
            "b",
            "b/y.txt",
            "link-to-a",
            "root.txt"
        ]
    );
    // Each directory comes before everything inside it, and its contents come together.
    let at = |name: &str| order.iter().position(|n| n == name).unwrap();
    assert!(at("a") < at("a/deep") && at("a/deep") < at("a/deep/x.txt"));
    assert!(at("b") < at("b/y.txt"));
    let a_block: Vec<usize> = ["a", "a/deep", "a/deep/x.txt"]
        .iter()
        .map(|n| at(n))
        .collect();
    assert_eq!(a_block[2] - a_block[0], 2, "{order:?}");
    let link = entries.iter().find(|e| e["name"] == "link-to-a").unwrap();
    assert_eq!(link["kind"], "symlink");
    assert_eq!(link["link"], "dir");
    assert_eq!(skipped, 0);

    let summary = client
        .request(json!({"op": "summary", "path": "top"}))
        .await;
    assert_eq!(
        summary,
        json!({"ok": true, "files": 3, "dirs": 3, "bytes": 6, "skipped": 1})
    );
    let one = client
        .request(json!({"op": "summary", "path": "top/b/y.txt"}))
        .await;
    assert_eq!(
        one,
        json!({"ok": true, "files": 1, "dirs": 0, "bytes": 3, "skipped": 0})
    );
    assert_eq!(
        code(&client.list_all("walk", "top/root.txt").await.unwrap_err()),
        "not_a_directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mkdir_with_and_without_parents() {
    let server = Server::start().await;
    std::fs::write(server.path("file"), b"").unwrap();
    let mut client = server.client().await;
    let ok = json!({"ok": true});
    assert_eq!(
        client
            .request(json!({"op": "mkdir", "path": "a/b/c"}))
            .await,
        ok
    );
    assert!(server.path("a/b/c").is_dir());
    assert_eq!(
        client
            .request(json!({"op": "mkdir", "path": "a/b/c"}))
            .await,
        ok
    );
    assert_eq!(client.request(json!({"op": "mkdir", "path": ""})).await, ok);
    let strict = |path: &str| json!({"op": "mkdir", "path": path, "parents": false});
    assert_eq!(code(&client.request(strict("a/b")).await), "already_exists");
    assert_eq!(code(&client.request(strict("x/y")).await), "not_found");
    assert_eq!(client.request(strict("a/new")).await, ok);
    assert!(server.path("a/new").is_dir());
    assert_eq!(
        code(&client.request(json!({"op": "mkdir", "path": "file"})).await),
        "already_exists"
    );
    assert_eq!(
        code(
            &client
                .request(json!({"op": "mkdir", "path": "file/sub"}))
                .await
        ),
        "not_a_directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_moves_and_replaces_only_when_told() {
    let server = Server::start().await;
    std::fs::create_dir(server.path("d")).unwrap();
    std::fs::write(server.path("a"), b"a").unwrap();
    std::fs::write(server.path("b"), b"b").unwrap();
    let mut client = server.client().await;
    let rename = |from: &str, to: &str, overwrite: bool| json!({"op": "rename", "path": from, "to": to, "overwrite": overwrite});
    assert_eq!(
        code(&client.request(rename("a", "b", false)).await),
        "already_exists"
    );
    assert_eq!(std::fs::read(server.path("b")).unwrap(), b"b");
    assert_eq!(client.request(rename("a", "b", true)).await["ok"], true);
    assert_eq!(std::fs::read(server.path("b")).unwrap(), b"a");
    assert!(!server.path("a").exists());
    assert_eq!(
        client.request(rename("b", "d/moved", false)).await["ok"],
        true
    );
    assert_eq!(std::fs::read(server.path("d/moved")).unwrap(), b"a");
    assert_eq!(client.request(rename("d", "e", false)).await["ok"], true);
    assert!(server.path("e/moved").exists());
    assert_eq!(
        code(&client.request(rename("nope", "x", false)).await),
        "not_found"
    );
    assert_eq!(
        code(&client.request(rename("e", "no/such/dir", false)).await),
        "not_found"
    );
    assert_eq!(
        code(&client.request(rename("", "x", false)).await),
        "forbidden"
    );
    assert_eq!(
        code(&client.request(rename("e", "", true)).await),
        "forbidden"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_files_links_and_trees() {
    let server = Server::start().await;
    std::fs::create_dir_all(server.path("tree/sub")).unwrap();
    std::fs::write(server.path("tree/sub/f"), b"f").unwrap();
    std::fs::create_dir(server.path("empty")).unwrap();
    std::fs::write(server.path("target"), b"t").unwrap();
    symlink("target", server.path("link")).unwrap();
    symlink("tree", server.path("dir-link")).unwrap();
    let mut client = server.client().await;
    let remove =
        |path: &str, recursive: bool| json!({"op": "remove", "path": path, "recursive": recursive});
    assert_eq!(client.request(remove("link", false)).await["ok"], true);
    assert!(std::fs::symlink_metadata(server.path("link")).is_err());
    assert_eq!(std::fs::read(server.path("target")).unwrap(), b"t");
    assert_eq!(client.request(remove("dir-link", true)).await["ok"], true);
    assert!(
        server.path("tree/sub/f").exists(),
        "a link's target is never removed"
    );
    assert_eq!(
        code(&client.request(remove("tree", false)).await),
        "not_empty"
    );
    assert!(server.path("tree/sub/f").exists());
    assert_eq!(client.request(remove("empty", false)).await["ok"], true);
    assert_eq!(client.request(remove("tree", true)).await["ok"], true);
    assert!(!server.path("tree").exists());
    assert_eq!(client.request(remove("target", false)).await["ok"], true);
    assert_eq!(
        code(&client.request(remove("target", false)).await),
        "not_found"
    );
    assert_eq!(code(&client.request(remove("", true)).await), "forbidden");
    assert!(server.root.is_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_server_serves_reads_and_refuses_every_write() {
    let server = Server::start_with(|config| config.read_only = true).await;
    std::fs::create_dir(server.path("d")).unwrap();
    std::fs::write(server.path("d/f"), b"content").unwrap();
    let before = common::snapshot(&server.root);
    let mut client = common::Client::connect(server.addr).await;
    let hello = client.hello().await;
    assert_eq!(hello["read_only"], true);
    assert_eq!(client.get("d/f", 0).await.unwrap().1, b"content");
    assert_eq!(names(&client.list_all("list", "d").await.unwrap().0), ["f"]);
    for request in [
        json!({"op": "mkdir", "path": "new"}),
        json!({"op": "rename", "path": "d/f", "to": "g"}),
        json!({"op": "remove", "path": "d/f"}),
        json!({"op": "remove", "path": "d", "recursive": true}),
    ] {
        assert_eq!(
            code(&client.request(request.clone()).await),
            "forbidden",
            "{request}"
        );
    }
    // The refused payload is skipped: the next request is read where it should be.
    let reply = client
        .put(
            "d/f",
            b"{\"op\":\"remove\",\"path\":\"d/f\"}\n",
            json!({"overwrite": true}),
        )
        .await;
    assert_eq!(code(&reply), "forbidden");
    assert_eq!(
        client.request(json!({"op": "stat", "path": "d/f"})).await["ok"],
        true
    );
    assert_eq!(common::snapshot(&server.root), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_holding_only_abandoned_partials_can_be_removed() {
    let server = Server::start().await;
    std::fs::create_dir(server.path("looks-empty")).unwrap();
    std::fs::write(server.path("looks-empty/.ferry-part.a"), b"half").unwrap();
    std::fs::create_dir(server.path("full")).unwrap();
    std::fs::write(server.path("full/.ferry-part.a"), b"half").unwrap();
    std::fs::write(server.path("full/real"), b"r").unwrap();
    let mut client = server.client().await;
    let (entries, _, _) = client.list_all("list", "looks-empty").await.unwrap();
    assert!(entries.is_empty());
    let remove = |path: &str| json!({"op": "remove", "path": path});
    assert_eq!(client.request(remove("looks-empty")).await["ok"], true);
    assert!(!server.path("looks-empty").exists());
    assert_eq!(code(&client.request(remove("full")).await), "not_empty");
    assert!(server.path("full/.ferry-part.a").exists());
    assert!(server.path("full/real").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_files_are_listed_but_never_read() {
    let server = Server::start().await;
    let fifo = server.path("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut client = server.client().await;
    let (entries, _, _) = client.list_all("list", "").await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["kind"], "other");
    // Opening a fifo for reading would block forever; the server must answer at once.
    let started = std::time::Instant::now();
    assert_eq!(code(&client.get("pipe", 0).await.unwrap_err()), "forbidden");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let summary = client.request(json!({"op": "summary", "path": ""})).await;
    assert_eq!(
        summary,
        json!({"ok": true, "files": 0, "dirs": 0, "bytes": 0, "skipped": 1})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_very_deep_tree_is_walked_to_the_depth_cap_and_no_further() {
    let server = Server::start_on_shm(|_| {}).await;
    let depth = 140;
    let deep: Vec<&str> = vec!["d"; depth];
    std::fs::create_dir_all(server.path(&deep.join("/"))).unwrap();
    let mut client = server.client().await;
    let (entries, skipped, _) = client.list_all("walk", "").await.unwrap();
    // Directories down to the cap are listed; the one at the cap is not entered.
    assert_eq!(entries.len(), 129);
    assert_eq!(skipped, 1);
    let deepest = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap().len())
        .max()
        .unwrap();
    assert_eq!(deepest, 129 * 2 - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_tree_walks_in_batches_and_sums_up() {
    let server = Server::start_on_shm(|_| {}).await;
    let mut expected = HashSet::new();
    let mut bytes = 0u64;
    for d in 0..20 {
        let dir = format!("tree/dir-{d:02}");
        std::fs::create_dir_all(server.path(&format!("{dir}/inner"))).unwrap();
        expected.insert(format!("dir-{d:02}"));
        expected.insert(format!("dir-{d:02}/inner"));
        for f in 0..500 {
            let name = if f % 2 == 0 {
                format!("{dir}/file-{f:03}")
            } else {
                format!("{dir}/inner/file-{f:03}")
            };
            let len = (d * 500 + f) % 97;
            std::fs::write(server.path(&name), vec![b'x'; len]).unwrap();
            bytes += len as u64;
            expected.insert(name.strip_prefix("tree/").unwrap().to_owned());
        }
    }
    let mut client = server.client().await;
    let (entries, skipped, batches) = client.list_all("walk", "tree").await.unwrap();
    assert!(batches > 1, "{batches}");
    assert_eq!(skipped, 0);
    let mut seen = HashSet::new();
    for entry in &entries {
        let name = entry["name"].as_str().unwrap().to_owned();
        assert!(seen.insert(name.clone()), "{name} twice");
    }
    assert_eq!(seen, expected);
    let summary = client
        .request(json!({"op": "summary", "path": "tree"}))
        .await;
    assert_eq!(
        summary,
        json!({"ok": true, "files": 10_000, "dirs": 40, "bytes": bytes, "skipped": 0})
    );
}
