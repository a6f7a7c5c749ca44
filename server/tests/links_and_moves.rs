//! What a new user met: symlinks that climb out of their own directory but stay inside the
//! root, a directory moved into itself, and OS error text with its number.

mod common;

use std::os::unix::fs::symlink;

use common::{Server, code, named};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_to_a_sibling_directory_says_where_it_leads_in_list_walk_and_stat() {
    let server = Server::start().await;
    std::fs::create_dir_all(server.path("remote_dir/inner")).unwrap();
    std::fs::write(server.path("remote_dir/r.txt"), b"r").unwrap();
    std::fs::create_dir_all(server.path("ltest/sub")).unwrap();
    std::fs::write(server.path("top.txt"), b"t").unwrap();
    // Up and over, still inside the root.
    symlink("../remote_dir", server.path("ltest/dir_link")).unwrap();
    symlink("../top.txt", server.path("ltest/file_link")).unwrap();
    symlink("sub", server.path("ltest/sublink")).unwrap();
    // Further up, from deeper down.
    symlink("../../remote_dir", server.path("ltest/sub/deep_link")).unwrap();
    // Out of the root, and nowhere at all: no `link`.
    symlink(&server.outside, server.path("ltest/escape")).unwrap();
    symlink("../../../../..", server.path("ltest/climb")).unwrap();
    symlink("../nothing", server.path("ltest/dangling")).unwrap();
    let mut client = server.client().await;

    let (entries, _, _) = client.list_all("list", "ltest").await.unwrap();
    assert_eq!(named(&entries, "dir_link")["link"], "dir");
    assert_eq!(named(&entries, "file_link")["link"], "file");
    assert_eq!(named(&entries, "sublink")["link"], "dir");
    for hidden in ["escape", "climb", "dangling"] {
        let entry = named(&entries, hidden);
        assert_eq!(entry["kind"], "symlink");
        assert!(entry.get("link").is_none(), "{entry}");
    }

    let (walked, _, _) = client.list_all("walk", "ltest").await.unwrap();
    assert_eq!(named(&walked, "dir_link")["link"], "dir");
    assert_eq!(named(&walked, "sub/deep_link")["link"], "dir");
    assert!(named(&walked, "escape").get("link").is_none());
    // A walk from the root resolves the same links by their longer names.
    let (from_root, _, _) = client.list_all("walk", "").await.unwrap();
    assert_eq!(named(&from_root, "ltest/sub/deep_link")["link"], "dir");

    // What `link` promises holds: the link can be entered, and `stat` agrees.
    let stat = client
        .request(json!({"op": "stat", "path": "ltest/dir_link"}))
        .await;
    assert_eq!(stat["entry"]["link"], "dir", "{stat}");
    let (inside, _, _) = client.list_all("list", "ltest/dir_link").await.unwrap();
    let mut names: Vec<&str> = inside.iter().filter_map(|e| e["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["inner", "r.txt"]);
    let (inside, _, _) = client
        .list_all("list", "ltest/sub/deep_link")
        .await
        .unwrap();
    assert_eq!(inside.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_cannot_move_into_itself() {
    let server = Server::start().await;
    std::fs::create_dir_all(server.path("tree/sub")).unwrap();
    std::fs::write(server.path("tree/sub/f.txt"), b"f").unwrap();
    symlink("tree", server.path("alias")).unwrap();
    let mut client = server.client().await;
    let rename = |from: &str, to: &str| json!({"op": "rename", "path": from, "to": to});

    for (from, to) in [
        ("tree", "tree/sub/x"),
        ("tree", "tree/x"),
        ("tree/sub", "tree/sub/deeper/still"),
        // Through a link the names do not show it; the kernel does.
        ("tree", "alias/sub/x"),
    ] {
        let reply = client.request(rename(from, to)).await;
        assert_eq!(code(&reply), "bad_request", "{from} -> {to}: {reply}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert_eq!(
            message,
            format!("{from}: cannot move a directory into itself ({to} is inside it)")
        );
    }
    assert_eq!(std::fs::read(server.path("tree/sub/f.txt")).unwrap(), b"f");

    // A sibling whose name merely starts the same is no descendant; a file under a file is
    // a missing directory, not a move into itself.
    let reply = client.request(rename("tree", "tree2")).await;
    assert_eq!(reply["ok"], true, "{reply}");
    std::fs::write(server.path("a.txt"), b"a").unwrap();
    let reply = client.request(rename("a.txt", "a.txt/b")).await;
    assert_eq!(code(&reply), "not_a_directory", "{reply}");
    assert!(server.path("tree2/sub/f.txt").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_messages_carry_the_os_words_without_their_number() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let reply = client
        .request(json!({"op": "stat", "path": "missing"}))
        .await;
    assert_eq!(code(&reply), "not_found");
    assert_eq!(
        reply["error"]["message"],
        "missing: No such file or directory"
    );
    std::fs::create_dir(server.path("full")).unwrap();
    std::fs::write(server.path("full/x"), b"x").unwrap();
    let reply = client
        .request(json!({"op": "remove", "path": "full", "recursive": false}))
        .await;
    assert_eq!(code(&reply), "not_empty");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(!message.contains("os error"), "{message}");
}
