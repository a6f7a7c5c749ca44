//! Small uploads without `overwrite` that arrive whole are not checked against their name up
//! front: the no-replace rename refuses a taken one at the end. The answers must be those of
//! the check they replace, and nothing of a refused upload may remain.

mod common;

use std::os::unix::fs::symlink;

use common::{Server, code, digest, snapshot};
use serde_json::json;

/// One burst onto a file, a directory, a symlink and a free name, without `overwrite`: the
/// taken ones are refused with the usual codes and left as they were, no partial stays behind,
/// and the free one is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_onto_taken_names_is_refused_and_changes_nothing() {
    let server = Server::start().await;
    std::fs::write(server.path("file"), b"old").unwrap();
    std::fs::create_dir(server.path("dir")).unwrap();
    std::fs::write(server.path("dir/inside"), b"in").unwrap();
    symlink("file", server.path("link")).unwrap();
    let before = snapshot(&server.root);
    let mut client = server.client().await;
    let uploads = [
        ("file", Some("already_exists")),
        ("dir", Some("is_a_directory")),
        ("link", Some("already_exists")),
        ("free", None),
    ];
    let mut burst = Vec::new();
    for (path, _) in uploads {
        let header = json!({"op": "put", "path": path, "size": 3});
        burst.extend_from_slice(format!("{header}\n").as_bytes());
        burst.extend_from_slice(b"new");
    }
    client.send(&burst).await;
    for (path, refused) in uploads {
        let reply = client.read_reply().await;
        match refused {
            Some(want) => assert_eq!(code(&reply), want, "{path}: {reply}"),
            None => assert_eq!(
                reply["digest"].as_str(),
                Some(digest(b"new").as_str()),
                "{path}"
            ),
        }
    }
    let mut after = snapshot(&server.root);
    after.retain(|(name, _)| name != "free");
    assert_eq!(after, before);
    assert_eq!(std::fs::read(server.path("free")).unwrap(), b"new");
}
