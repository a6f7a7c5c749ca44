//! The same-machine identity, over a real socket: `hello` gives a salted host token that a
//! client on this machine can recompute from its boot id and nobody else can; `stat` with
//! `identity` gives a salted token of the file a path leads to (links followed), equal for
//! two names of one file and only when asked. Raw device and inode numbers never appear.

mod common;

use std::os::unix::fs::MetadataExt;

use common::Server;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_and_stat_say_which_machine_and_which_file_without_raw_numbers() {
    let server = Server::start().await;
    std::fs::write(server.path("a.txt"), b"one").unwrap();
    std::fs::write(server.path("b.txt"), b"two").unwrap();
    std::os::unix::fs::symlink("a.txt", server.path("link")).unwrap();
    std::fs::hard_link(server.path("a.txt"), server.path("hard")).unwrap();
    let mut client = common::Client::connect(server.addr).await;
    let hello = client.hello().await;
    let salt = hello["identity"]["salt"].as_str().unwrap().to_owned();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(
        hello["identity"]["host"].as_str().unwrap(),
        ferry_protocol::host_token(&salt, &boot)
    );
    assert!(!hello.to_string().contains(boot.trim()), "{hello}");

    let id = |reply: &serde_json::Value| reply["id"].as_str().map(str::to_owned);
    let plain = client.request(json!({"op": "stat", "path": "a.txt"})).await;
    assert_eq!(id(&plain), None, "only when asked: {plain}");
    let mut tokens = Vec::new();
    for path in ["a.txt", "link", "hard", "b.txt", ""] {
        let reply = client
            .request(json!({"op": "stat", "path": path, "identity": true}))
            .await;
        tokens.push(id(&reply).unwrap());
    }
    assert_eq!(tokens[0], tokens[1], "a link is its target");
    assert_eq!(tokens[0], tokens[2], "a hard link is the same file");
    assert_ne!(tokens[0], tokens[3]);
    let meta = std::fs::metadata(server.path("a.txt")).unwrap();
    assert_eq!(
        tokens[0],
        ferry_protocol::file_token(&salt, &boot, meta.dev(), meta.ino())
    );
    let root = std::fs::metadata(server.path("")).unwrap();
    assert_eq!(
        tokens[4],
        ferry_protocol::file_token(&salt, &boot, root.dev(), root.ino())
    );
    assert!(!tokens[0].contains(&meta.ino().to_string()));
}
