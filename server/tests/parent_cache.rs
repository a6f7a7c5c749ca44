//! Small uploads that arrive together reuse their parent directory's handle, but only within
//! that one batch: a directory renamed, or replaced by a symlink, between two uploads is always
//! resolved again from the root, so no upload lands where its path no longer leads.

mod common;

use std::os::unix::fs::symlink;

use common::{Server, code, digest};
use serde_json::{Value, json};

/// Appends a small upload of `bytes` to `path` to a burst.
fn put(burst: &mut Vec<u8>, path: &str, bytes: &[u8]) {
    let header = json!({"op": "put", "path": path, "size": bytes.len(), "overwrite": true});
    burst.extend_from_slice(format!("{header}\n").as_bytes());
    burst.extend_from_slice(bytes);
}

/// Appends any other request to a burst.
fn request(burst: &mut Vec<u8>, value: &Value) {
    burst.extend_from_slice(format!("{value}\n").as_bytes());
}

/// A rename of the directory and a new one made under the old name, pipelined between uploads
/// into it: those before go into the renamed directory, those after into the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_renamed_between_pipelined_puts_is_resolved_again() {
    let server = Server::start().await;
    std::fs::create_dir(server.path("a")).unwrap();
    let mut client = server.client().await;
    let mut burst = Vec::new();
    put(&mut burst, "a/1", b"one");
    put(&mut burst, "a/2", b"two");
    request(&mut burst, &json!({"op": "rename", "path": "a", "to": "b"}));
    request(&mut burst, &json!({"op": "mkdir", "path": "a"}));
    put(&mut burst, "a/3", b"three");
    put(&mut burst, "a/4", b"four");
    client.send(&burst).await;

    for (i, want) in [b"one" as &[u8], b"two"].into_iter().enumerate() {
        let reply = client.read_reply().await;
        assert_eq!(reply["digest"].as_str(), Some(digest(want).as_str()), "{i}");
    }
    for _ in 0..2 {
        let reply = client.read_reply().await;
        assert_eq!(reply["ok"], true, "{reply}");
    }
    for want in [b"three" as &[u8], b"four"] {
        let reply = client.read_reply().await;
        assert_eq!(reply["digest"].as_str(), Some(digest(want).as_str()));
    }
    assert_eq!(common::snapshot(&server.path("b")).len(), 2);
    assert_eq!(std::fs::read(server.path("b/1")).unwrap(), b"one");
    assert_eq!(std::fs::read(server.path("b/2")).unwrap(), b"two");
    assert_eq!(common::snapshot(&server.path("a")).len(), 2);
    assert_eq!(std::fs::read(server.path("a/3")).unwrap(), b"three");
    assert_eq!(std::fs::read(server.path("a/4")).unwrap(), b"four");
}

/// The directory moved away and a symlink put in its place on the host between two uploads:
/// one leading outside refuses the next upload and writes nothing anywhere, one leading inside
/// is followed like any path, and the moved directory never receives another file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_symlink_between_puts_is_resolved_again() {
    let server = Server::start().await;
    std::fs::create_dir(server.path("a")).unwrap();
    std::fs::create_dir(server.path("inner")).unwrap();
    let outside_before = server.outside_snapshot();
    let mut client = server.client().await;
    // Every upload is sent in one piece, header and bytes, so it takes the batched path.
    let mut burst = Vec::new();
    put(&mut burst, "a/1", b"one");
    put(&mut burst, "a/2", b"two");
    client.send(&burst).await;
    for _ in 0..2 {
        let reply = client.read_reply().await;
        assert_eq!(reply["ok"], true, "{reply}");
    }

    std::fs::rename(server.path("a"), server.path("moved")).unwrap();
    symlink(&server.outside, server.path("a")).unwrap();
    let mut burst = Vec::new();
    put(&mut burst, "a/3", b"pwned");
    client.send(&burst).await;
    let reply = client.read_reply().await;
    assert_eq!(code(&reply), "forbidden", "{reply}");
    assert_eq!(server.outside_snapshot(), outside_before);

    std::fs::remove_file(server.path("a")).unwrap();
    symlink("inner", server.path("a")).unwrap();
    let mut burst = Vec::new();
    put(&mut burst, "a/4", b"four");
    put(&mut burst, "a/5", b"five");
    client.send(&burst).await;
    for _ in 0..2 {
        let reply = client.read_reply().await;
        assert_eq!(reply["ok"], true, "{reply}");
    }
    assert_eq!(std::fs::read(server.path("inner/4")).unwrap(), b"four");
    assert_eq!(std::fs::read(server.path("inner/5")).unwrap(), b"five");
    assert_eq!(
        common::snapshot(&server.path("moved"))
            .into_iter()
            .map(|(name, _)| name)
            .collect::<Vec<_>>(),
        ["1", "2"]
    );
    assert_eq!(server.outside_snapshot(), outside_before);
}

/// One burst whose uploads go back and forth between directories, with one into a directory
/// that does not exist and one whose parent is a file: each lands in its own directory or gets
/// its own error, and a failed parent is not remembered for the next upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_into_several_directories_puts_each_file_in_its_own() {
    let server = Server::start().await;
    for dir in ["a", "b"] {
        std::fs::create_dir(server.path(dir)).unwrap();
    }
    std::fs::write(server.path("file"), b"f").unwrap();
    let mut client = server.client().await;
    let uploads = [
        ("a/1", None),
        ("a/2", None),
        ("b/1", None),
        ("missing/1", Some("not_found")),
        ("a/3", None),
        ("file/1", Some("not_a_directory")),
        ("file/2", Some("not_a_directory")),
        ("b/2", None),
        ("1", None),
    ];
    let mut burst = Vec::new();
    for (path, _) in uploads {
        put(&mut burst, path, path.as_bytes());
    }
    client.send(&burst).await;
    for (path, refused) in uploads {
        let reply = client.read_reply().await;
        match refused {
            Some(want) => assert_eq!(code(&reply), want, "{path}: {reply}"),
            None => {
                assert_eq!(reply["ok"], true, "{path}: {reply}");
                assert_eq!(std::fs::read(server.path(path)).unwrap(), path.as_bytes());
            }
        }
    }
    assert!(!server.path("missing").exists());
    assert_eq!(std::fs::read(server.path("file")).unwrap(), b"f");
    assert_eq!(common::snapshot(&server.path("a")).len(), 3);
    assert_eq!(common::snapshot(&server.path("b")).len(), 2);
}
