//! `attrs`: a file's or directory's mtime and mode set without its bytes moving, checked on the
//! real files; refused on a read-only server, on a symlink (never followed, its target
//! unchanged), on paths that escape, on bits past `0o1777`, and with `forbidden` for the real
//! binary run as `nobody` on a file root owns.
// Helpers outside `#[test]` functions panic on purpose too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::{Client, Server, code};
use ferry_testkit::data::{chmod, shm_dir};
use ferry_testkit::nobody::NobodyServer;
use serde_json::json;

fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn mtime_of(path: &std::path::Path) -> i64 {
    std::fs::symlink_metadata(path).unwrap().mtime()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sets_mtime_and_mode_of_a_file_and_a_directory_without_touching_the_bytes() {
    let server = Server::start().await;
    std::fs::create_dir(server.path("d")).unwrap();
    std::fs::write(server.path("d/f"), b"content").unwrap();
    chmod(&server.path("d/f"), 0o644);
    let inode = std::fs::metadata(server.path("d/f")).unwrap().ino();
    let mut client = server.client().await;

    let reply = client
        .request(json!({"op": "attrs", "path": "d/f", "mtime": 1_000_000_000, "mode": 0o600}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["entry"]["name"], "f");
    assert_eq!(reply["entry"]["mtime"], 1_000_000_000);
    assert_eq!(reply["entry"]["mode"], 0o600);
    assert_eq!(reply["entry"]["size"], 7);
    assert_eq!(mtime_of(&server.path("d/f")), 1_000_000_000);
    assert_eq!(mode_of(&server.path("d/f")), 0o600);
    assert_eq!(std::fs::read(server.path("d/f")).unwrap(), b"content");
    assert_eq!(std::fs::metadata(server.path("d/f")).unwrap().ino(), inode);

    // Only the mtime: the mode stays; only the mode, with sticky, on a directory.
    let reply = client
        .request(json!({"op": "attrs", "path": "d/f", "mtime": 1_500_000_000}))
        .await;
    assert_eq!(reply["entry"]["mode"], 0o600, "{reply}");
    assert_eq!(mtime_of(&server.path("d/f")), 1_500_000_000);
    let reply = client
        .request(json!({"op": "attrs", "path": "d", "mode": 0o1750}))
        .await;
    assert_eq!(reply["entry"]["kind"], "dir", "{reply}");
    assert_eq!(mode_of(&server.path("d")), 0o1750);
    assert_eq!(mtime_of(&server.path("d/f")), 1_500_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_to_set_setuid_and_unknown_bits_are_bad_requests() {
    let server = Server::start().await;
    std::fs::write(server.path("f"), b"x").unwrap();
    chmod(&server.path("f"), 0o644);
    let mut client = server.client().await;
    for request in [
        json!({"op": "attrs", "path": "f"}),
        json!({"op": "attrs", "path": "f", "mode": 0o4755}),
        json!({"op": "attrs", "path": "f", "mode": 0o2755}),
        json!({"op": "attrs", "path": "f", "mode": 0o10644}),
    ] {
        let reply = client.request(request.clone()).await;
        assert_eq!(code(&reply), "bad_request", "{request} -> {reply}");
    }
    assert_eq!(mode_of(&server.path("f")), 0o644);
    // The connection carries on.
    let reply = client
        .request(json!({"op": "attrs", "path": "f", "mode": 0o640}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_server_refuses_and_changes_nothing() {
    let server = Server::start_with(|config| config.read_only = true).await;
    std::fs::write(server.path("f"), b"x").unwrap();
    chmod(&server.path("f"), 0o644);
    let before = mtime_of(&server.path("f"));
    let mut client = server.client().await;
    let reply = client
        .request(json!({"op": "attrs", "path": "f", "mtime": 5, "mode": 0o600}))
        .await;
    assert_eq!(code(&reply), "forbidden", "{reply}");
    assert_eq!(mode_of(&server.path("f")), 0o644);
    assert_eq!(mtime_of(&server.path("f")), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_is_refused_and_its_target_left_alone() {
    let server = Server::start().await;
    std::fs::write(server.path("target"), b"x").unwrap();
    chmod(&server.path("target"), 0o644);
    let before = mtime_of(&server.path("target"));
    std::os::unix::fs::symlink("target", server.path("link")).unwrap();
    std::os::unix::fs::symlink(server.outside.join("secret.txt"), server.path("out")).unwrap();
    std::fs::create_dir(server.path("d")).unwrap();
    std::os::unix::fs::symlink("../d", server.path("d/up")).unwrap();
    let outside_mode = mode_of(&server.outside.join("secret.txt"));
    let mut client = server.client().await;
    for path in ["link", "out", "d/up"] {
        let reply = client
            .request(json!({"op": "attrs", "path": path, "mtime": 7, "mode": 0o777}))
            .await;
        assert_eq!(code(&reply), "forbidden", "{path}: {reply}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("symlink"),
            "{reply}"
        );
    }
    assert_eq!(mode_of(&server.path("target")), 0o644);
    assert_eq!(mtime_of(&server.path("target")), before);
    assert_eq!(mode_of(&server.outside.join("secret.txt")), outside_mode);
    assert_ne!(mode_of(&server.path("d")), 0o777);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_that_escape_or_do_not_exist_are_refused() {
    let server = Server::start().await;
    std::os::unix::fs::symlink(&server.outside, server.path("outdir")).unwrap();
    let outside_mode = mode_of(&server.outside.join("secret.txt"));
    let mut client = server.client().await;
    for (path, expected) in [
        ("../outside/secret.txt", "bad_path"),
        ("/etc/passwd", "bad_path"),
        ("outdir/secret.txt", "forbidden"),
        ("", "forbidden"),
        ("missing", "not_found"),
        ("missing/deeper", "not_found"),
        (".ferry-part.x", "forbidden"),
    ] {
        let reply = client
            .request(json!({"op": "attrs", "path": path, "mode": 0o777}))
            .await;
        assert_eq!(code(&reply), expected, "{path:?}: {reply}");
    }
    assert_eq!(mode_of(&server.outside.join("secret.txt")), outside_mode);
    assert_eq!(server.outside_snapshot().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_cannot_change_a_file_root_owns() {
    let root = shm_dir();
    chmod(root.path(), 0o777);
    std::fs::write(root.path().join("roots"), b"root's").unwrap();
    chmod(&root.path().join("roots"), 0o666);
    let before = mtime_of(&root.path().join("roots"));
    let server = NobodyServer::start(root.path());
    let mut client = Client::connect(server.addr).await;
    client.hello().await;
    let reply = client
        .request(json!({"op": "attrs", "path": "roots", "mode": 0o600}))
        .await;
    assert_eq!(code(&reply), "forbidden", "{reply}");
    let reply = client
        .request(json!({"op": "attrs", "path": "roots", "mtime": 12345}))
        .await;
    assert_eq!(code(&reply), "forbidden", "{reply}");
    assert_eq!(mode_of(&root.path().join("roots")), 0o666);
    assert_eq!(mtime_of(&root.path().join("roots")), before);
    // Its own file it may change.
    let reply = client
        .request(json!({"op": "put", "path": "mine", "size": 0}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let reply = client
        .request(json!({"op": "attrs", "path": "mine", "mode": 0o600, "mtime": 12345}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(mode_of(&root.path().join("mine")), 0o600);
    assert_eq!(mtime_of(&root.path().join("mine")), 12345);
}
