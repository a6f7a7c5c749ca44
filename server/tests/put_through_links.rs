//! `put` with `overwrite` onto a symlink writes through it, as `cp` does: a link to a regular
//! file inside the root gets the new bytes at its target (the link stays a link); a link that
//! leads outside the root, nowhere, to another link or to a directory is refused and left as
//! it was. Real sockets, the real server, small and streamed payloads. Also `remove`'s
//! preconditions and `rename`'s no-replace, the other two ops that must never lose a file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::{Server, code, pattern};
use serde_json::json;

fn link_text(path: &Path) -> std::path::PathBuf {
    std::fs::read_link(path)
        .unwrap_or_else(|e| panic!("{} is no longer a link: {e}", path.display()))
}

/// Names in `dir` (partials included), sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwrite_onto_a_link_to_a_file_writes_the_target_and_keeps_the_link() {
    let server = Server::start().await;
    std::fs::create_dir_all(server.path("data")).unwrap();
    std::fs::create_dir_all(server.path("links")).unwrap();
    std::fs::write(server.path("data/real.txt"), b"old bytes").unwrap();
    symlink("../data/real.txt", server.path("links/small")).unwrap();
    std::fs::write(server.path("data/big.bin"), b"old").unwrap();
    symlink("../data/big.bin", server.path("links/big")).unwrap();
    let mut client = server.client().await;

    let small = pattern(10_000, 1);
    let reply = client
        .put("links/small", &small, json!({"overwrite": true}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    // A streamed payload, past the small-upload path.
    let big = pattern(3 * 1024 * 1024 + 17, 2);
    let reply = client
        .put("links/big", &big, json!({"overwrite": true}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");

    assert_eq!(
        link_text(&server.path("links/small")),
        Path::new("../data/real.txt")
    );
    assert_eq!(
        link_text(&server.path("links/big")),
        Path::new("../data/big.bin")
    );
    assert_eq!(std::fs::read(server.path("data/real.txt")).unwrap(), small);
    assert_eq!(std::fs::read(server.path("data/big.bin")).unwrap(), big);
    // No partial left beside the link or the target.
    assert_eq!(names_in(&server.path("links")), ["big", "small"]);
    assert_eq!(names_in(&server.path("data")), ["big.bin", "real.txt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwrite_onto_a_link_that_leads_nowhere_safe_is_refused_and_keeps_the_link() {
    let server = Server::start().await;
    std::fs::create_dir_all(server.path("d/sub")).unwrap();
    std::fs::write(server.path("d/file.txt"), b"kept").unwrap();
    let secret = server.outside.join("secret.txt");
    symlink(&secret, server.path("d/absolute")).unwrap();
    symlink("../../outside/secret.txt", server.path("d/climb")).unwrap();
    symlink("nothing", server.path("d/dangling")).unwrap();
    symlink("file.txt", server.path("d/hop")).unwrap();
    symlink("hop", server.path("d/chain")).unwrap();
    symlink("sub", server.path("d/to_dir")).unwrap();
    let mut client = server.client().await;
    let before = server.outside_snapshot();

    for (name, want) in [
        ("absolute", "forbidden"),
        ("climb", "forbidden"),
        ("dangling", "forbidden"),
        ("chain", "forbidden"),
        ("to_dir", "is_a_directory"),
    ] {
        let text = link_text(&server.path(&format!("d/{name}")));
        for size in [100, 2 * 1024 * 1024] {
            let reply = client
                .put(
                    &format!("d/{name}"),
                    &pattern(size, 3),
                    json!({"overwrite": true}),
                )
                .await;
            assert_eq!(code(&reply), want, "{name}: {reply}");
            assert_eq!(
                link_text(&server.path(&format!("d/{name}"))),
                text,
                "{name}"
            );
        }
    }
    assert_eq!(server.outside_snapshot(), before);
    assert_eq!(std::fs::read(server.path("d/file.txt")).unwrap(), b"kept");
    assert_eq!(
        names_in(&server.path("d")),
        [
            "absolute", "chain", "climb", "dangling", "file.txt", "hop", "sub", "to_dir"
        ]
    );
    assert!(names_in(&server.path("d/sub")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remove_with_preconditions_removes_only_the_file_as_it_was() {
    let server = Server::start().await;
    let bytes = pattern(5_000, 4);
    std::fs::write(server.path("a.bin"), &bytes).unwrap();
    let mut client = server.client().await;
    let stat = client.request(json!({"op": "stat", "path": "a.bin"})).await;
    let (size, mtime) = (
        stat["entry"]["size"].clone(),
        stat["entry"]["mtime"].clone(),
    );
    let digest = common::digest(&bytes);
    let other = common::digest(&pattern(5_000, 5));

    for (wrong, why) in [
        (json!({"if_size": 4_999}), "length"),
        (json!({"if_mtime": mtime.as_i64().unwrap() - 7}), "mtime"),
        (
            json!({"if_size": size, "if_mtime": mtime, "if_digest": other}),
            "bytes",
        ),
    ] {
        let mut request = json!({"op": "remove", "path": "a.bin"});
        common::merge(&mut request, wrong);
        let reply = client.request(request).await;
        assert_eq!(code(&reply), "file_changed", "{why}: {reply}");
        assert_eq!(std::fs::read(server.path("a.bin")).unwrap(), bytes, "{why}");
    }
    // A directory is never what a precondition describes.
    std::fs::create_dir(server.path("dir")).unwrap();
    let reply = client
        .request(json!({"op": "remove", "path": "dir", "if_size": 0}))
        .await;
    assert_eq!(code(&reply), "file_changed", "{reply}");
    assert!(server.path("dir").is_dir());

    let reply = client
        .request(json!({"op": "remove", "path": "a.bin", "if_size": size, "if_mtime": mtime, "if_digest": digest}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert!(!server.path("a.bin").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_without_overwrite_never_replaces_a_file_or_an_empty_directory() {
    let server = Server::start().await;
    std::fs::write(server.path("a"), b"first").unwrap();
    std::fs::write(server.path("b"), b"second").unwrap();
    std::fs::create_dir_all(server.path("full/x")).unwrap();
    std::fs::create_dir(server.path("empty")).unwrap();
    std::fs::create_dir(server.path("tree")).unwrap();
    let mut client = server.client().await;
    for (from, to) in [("a", "b"), ("tree", "empty"), ("full/x", "tree")] {
        let reply = client
            .request(json!({"op": "rename", "path": from, "to": to}))
            .await;
        assert_eq!(code(&reply), "already_exists", "{from} -> {to}: {reply}");
    }
    assert_eq!(std::fs::read(server.path("a")).unwrap(), b"first");
    assert_eq!(std::fs::read(server.path("b")).unwrap(), b"second");
    assert!(server.path("tree").is_dir() && server.path("empty").is_dir());
    // A directory into itself is still told as such.
    let reply = client
        .request(json!({"op": "rename", "path": "full", "to": "full/x/y"}))
        .await;
    assert_eq!(code(&reply), "bad_request", "{reply}");
    let reply = client
        .request(json!({"op": "rename", "path": "a", "to": "c"}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(std::fs::read(server.path("c")).unwrap(), b"first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_is_not_removed_from_under_an_upload_still_writing_into_it() {
    let server = Server::start().await;
    std::fs::create_dir(server.path("inbox")).unwrap();
    let mut writer = server.client().await;
    let size = 4 * 1024 * 1024;
    writer
        .send_json(&json!({"op": "put", "path": "inbox/big.bin", "size": size}))
        .await;
    writer.send(&pattern(size / 2, 6)).await;
    // The partial is there (and being written) once its first bytes are.
    let start = std::time::Instant::now();
    while names_in(&server.path("inbox")).is_empty() {
        assert!(start.elapsed() < common::STEP, "no partial appeared");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut other = server.client().await;
    let reply = other
        .request(json!({"op": "remove", "path": "inbox"}))
        .await;
    assert_eq!(code(&reply), "not_empty", "{reply}");
    assert!(server.path("inbox").is_dir());
    // The upload goes on to the end and lands.
    writer.send(&pattern(size - size / 2, 7)).await;
    let reply = writer.read_reply().await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(names_in(&server.path("inbox")), ["big.bin"]);
}
