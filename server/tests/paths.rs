//! Client paths can never reach outside the served root, whatever they spell or whatever
//! symlinks are arranged (or swapped in) under it.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;

use common::{Server, code, names};
use serde_json::{Value, json};

/// Every request kind that takes a path, naming `path`.
fn requests_naming(path: &str) -> Vec<Value> {
    vec![
        json!({"op": "stat", "path": path}),
        json!({"op": "list", "path": path}),
        json!({"op": "walk", "path": path}),
        json!({"op": "summary", "path": path}),
        json!({"op": "get", "path": path}),
        json!({"op": "partial", "path": path}),
        json!({"op": "mkdir", "path": path}),
        json!({"op": "mkdir", "path": path, "parents": false}),
        json!({"op": "rename", "path": path, "to": "moved"}),
        json!({"op": "rename", "path": "victim", "to": path, "overwrite": true}),
        json!({"op": "remove", "path": path, "recursive": true}),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lexically_bad_paths_are_bad_path_for_every_op() {
    let server = Server::start().await;
    std::fs::write(server.path("victim"), b"v").unwrap();
    let outside_before = server.outside_snapshot();
    let mut client = server.client().await;
    let long_name = "n".repeat(256);
    let long_path = vec!["abcdefgh"; 600].join("/");
    let bad = [
        "..",
        "../outside",
        "../outside/secret.txt",
        "a/../../outside",
        "./victim",
        "/etc/passwd",
        "/",
        "a\\..\\..\\outside",
        "victim\u{0}",
        "a\u{1b}[31m",
        "line\nbreak",
        "a//b",
        "trailing/",
        long_name.as_str(),
        long_path.as_str(),
    ];
    for path in bad {
        for request in requests_naming(path) {
            let reply = client.request(request.clone()).await;
            assert_eq!(code(&reply), "bad_path", "{request}");
        }
        let reply = client
            .put(path, b"payload", json!({"overwrite": true}))
            .await;
        assert_eq!(code(&reply), "bad_path", "put {path:?}");
    }
    assert_eq!(std::fs::read(server.path("victim")).unwrap(), b"v");
    assert_eq!(server.outside_snapshot(), outside_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_through_a_symlink_to_outside_are_forbidden_for_every_op() {
    let server = Server::start().await;
    symlink(&server.outside, server.path("escape")).unwrap();
    std::fs::write(server.path("victim"), b"v").unwrap();
    let outside_before = server.outside_snapshot();
    let mut client = server.client().await;
    for path in ["escape/secret.txt", "escape/new", "escape/new/deeper"] {
        for request in requests_naming(path) {
            let reply = client.request(request.clone()).await;
            assert_eq!(code(&reply), "forbidden", "{request}");
        }
        let reply = client.put(path, b"pwned", json!({"overwrite": true})).await;
        assert_eq!(code(&reply), "forbidden", "put {path}");
    }
    assert_eq!(std::fs::read(server.path("victim")).unwrap(), b"v");
    assert_eq!(server.outside_snapshot(), outside_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_leading_outside_is_described_but_never_followed() {
    let server = Server::start().await;
    symlink(&server.outside, server.path("escape")).unwrap();
    symlink(server.outside.join("secret.txt"), server.path("abs-file")).unwrap();
    symlink("../outside/secret.txt", server.path("rel-file")).unwrap();
    let outside_before = server.outside_snapshot();
    let mut client = server.client().await;
    for link in ["escape", "abs-file", "rel-file"] {
        // The link itself is an entry of the root: a symlink leading nowhere inside it.
        let stat = client.request(json!({"op": "stat", "path": link})).await;
        assert_eq!(stat["entry"]["kind"], "symlink", "{stat}");
        assert!(stat["entry"].get("link").is_none(), "{stat}");
        let summary = client.request(json!({"op": "summary", "path": link})).await;
        assert_eq!(
            summary,
            json!({"ok": true, "files": 0, "dirs": 0, "bytes": 0, "skipped": 1})
        );
        // Reading through it is refused.
        for op in ["list", "walk"] {
            let err = client.list_all(op, link).await.unwrap_err();
            assert_eq!(code(&err), "forbidden", "{op} {link}");
        }
        assert_eq!(
            code(&client.get(link, 0).await.unwrap_err()),
            "forbidden",
            "{link}"
        );
        let mkdir = client.request(json!({"op": "mkdir", "path": link})).await;
        assert_eq!(code(&mkdir), "already_exists", "{link}");
        // Writing over it is refused: neither the link nor the target is replaced.
        let put = client
            .put(link, b"replaced", json!({"overwrite": true}))
            .await;
        assert_eq!(code(&put), "forbidden", "{put}");
        assert!(
            std::fs::symlink_metadata(server.path(link))
                .unwrap()
                .is_symlink()
        );
    }
    assert_eq!(server.outside_snapshot(), outside_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walks_and_summaries_do_not_follow_links_out() {
    let server = Server::start().await;
    symlink(&server.outside, server.path("escape")).unwrap();
    std::fs::create_dir(server.path("d")).unwrap();
    std::fs::write(server.path("d/f"), b"12345").unwrap();
    let mut client = server.client().await;
    let (entries, _, _) = client.list_all("walk", "").await.unwrap();
    assert_eq!(names(&entries), ["d", "d/f", "escape"]);
    let summary = client.request(json!({"op": "summary", "path": ""})).await;
    assert_eq!(
        summary,
        json!({"ok": true, "files": 1, "dirs": 1, "bytes": 5, "skipped": 1})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_symlink_is_refused() {
    let server = Server::start().await;
    std::fs::create_dir(server.path("d")).unwrap();
    std::fs::write(server.path("d/secret.txt"), b"inside").unwrap();
    let outside_before = server.outside_snapshot();
    let mut client = server.client().await;
    let (_, data, _) = client.get("d/secret.txt", 0).await.unwrap();
    assert_eq!(data, b"inside");

    // Between two requests, the directory becomes a link to the outside.
    std::fs::remove_dir_all(server.path("d")).unwrap();
    symlink(&server.outside, server.path("d")).unwrap();

    assert_eq!(
        code(&client.get("d/secret.txt", 0).await.unwrap_err()),
        "forbidden"
    );
    let put = client.put("d/new.txt", b"data", json!({})).await;
    assert_eq!(code(&put), "forbidden");
    let remove = client
        .request(json!({"op": "remove", "path": "d/secret.txt"}))
        .await;
    assert_eq!(code(&remove), "forbidden");
    let list = client.list_all("list", "d").await.unwrap_err();
    assert_eq!(code(&list), "forbidden");
    assert_eq!(server.outside_snapshot(), outside_before);

    // Removing the link removes only the link.
    let remove = client
        .request(json!({"op": "remove", "path": "d", "recursive": true}))
        .await;
    assert_eq!(remove["ok"], true, "{remove}");
    assert!(!server.path("d").exists());
    assert_eq!(server.outside_snapshot(), outside_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_inside_the_root_are_described_and_usable() {
    let server = Server::start().await;
    std::fs::create_dir(server.path("real")).unwrap();
    std::fs::write(server.path("real/f.txt"), b"inner").unwrap();
    symlink("real", server.path("alias")).unwrap();
    symlink("real/f.txt", server.path("file-link")).unwrap();
    symlink("missing", server.path("dangling")).unwrap();
    let mut client = server.client().await;
    let (entries, _, _) = client.list_all("list", "").await.unwrap();
    let by_name = |name: &str| entries.iter().find(|e| e["name"] == name).unwrap().clone();
    assert_eq!(by_name("alias")["link"], "dir");
    assert_eq!(by_name("file-link")["link"], "file");
    assert!(by_name("dangling").get("link").is_none());
    let (inner, _, _) = client.list_all("list", "alias").await.unwrap();
    assert_eq!(names(&inner), ["f.txt"]);
    assert_eq!(client.get("file-link", 0).await.unwrap().1, b"inner");
    // Removing a link leaves its target.
    let reply = client
        .request(json!({"op": "remove", "path": "file-link"}))
        .await;
    assert_eq!(reply["ok"], true);
    assert_eq!(std::fs::read(server.path("real/f.txt")).unwrap(), b"inner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_files_are_hidden_and_cannot_be_named() {
    let server = Server::start().await;
    std::fs::write(server.path(".ferry-part.x.txt"), b"half").unwrap();
    std::fs::write(server.path("visible"), b"v").unwrap();
    let mut client = server.client().await;
    let (entries, skipped, _) = client.list_all("list", "").await.unwrap();
    assert_eq!(names(&entries), ["visible"]);
    assert_eq!(skipped, 0);
    let (entries, _, _) = client.list_all("walk", "").await.unwrap();
    assert_eq!(names(&entries), ["visible"]);
    for request in requests_naming(".ferry-part.x.txt") {
        let reply = client.request(request.clone()).await;
        assert_eq!(code(&reply), "forbidden", "{request}");
    }
    let reply = client.put(".ferry-part.y", b"data", json!({})).await;
    assert_eq!(code(&reply), "forbidden");
    assert_eq!(
        std::fs::read(server.path(".ferry-part.x.txt")).unwrap(),
        b"half"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_are_not_plain_on_disk_are_listed_escaped() {
    let server = Server::start().await;
    let bad_names: [&[u8]; 3] = [b"not-utf8-\xff", b"new\nline", b"back\\slash"];
    for name in bad_names {
        let path = server.root.join(std::ffi::OsStr::from_bytes(name));
        std::fs::write(path, b"x").unwrap();
    }
    std::fs::write(server.path("fine.txt"), b"x").unwrap();
    let mut client = server.client().await;
    let (entries, skipped, _) = client.list_all("list", "").await.unwrap();
    assert_eq!(
        names(&entries),
        ["back\\\\slash", "fine.txt", "new\\nline", "not-utf8-\\xff"]
    );
    assert_eq!(skipped, 0);
    let summary = client.request(json!({"op": "summary", "path": ""})).await;
    assert_eq!(summary["files"], 4);
    assert_eq!(summary["skipped"], 0);
}
