//! How an upload takes its final name: the partial is created exclusively (whatever held its
//! name is replaced, never written through), and an upload that may not overwrite never
//! replaces a file that appeared while its bytes were arriving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::symlink;

use common::{Server, code, digest, pattern};
use ferry_protocol::path::{is_partial_name, partial_name};
use serde_json::json;

/// Names in the root that are hidden partials.
fn partials(server: &Server) -> Vec<String> {
    std::fs::read_dir(&server.root)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| is_partial_name(name))
        .collect()
}

#[tokio::test]
async fn a_file_created_while_an_upload_streams_is_kept_and_the_upload_refused() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let data = pattern(3 * 1024 * 1024, 7);
    client
        .send_json(&json!({"op": "put", "path": "late.bin", "size": data.len()}))
        .await;
    client.send(&data[..1024 * 1024]).await;
    // The partial exists once the server has started writing; then someone else takes the name.
    let partial = server.path(&partial_name("late.bin"));
    for _ in 0..300 {
        if partial.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(partial.exists(), "the upload is under way");
    std::fs::write(server.path("late.bin"), b"someone else's").unwrap();
    client.send(&data[1024 * 1024..]).await;
    let reply = client.read_reply().await;
    assert_eq!(code(&reply), "already_exists", "{reply}");
    assert_eq!(
        std::fs::read(server.path("late.bin")).unwrap(),
        b"someone else's"
    );
    assert!(partials(&server).is_empty(), "{:?}", partials(&server));

    // The same upload allowed to overwrite replaces it, and the connection is still in step.
    let reply = client
        .put("late.bin", &data, json!({"overwrite": true}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["digest"], digest(&data));
    assert_eq!(std::fs::read(server.path("late.bin")).unwrap(), data);
}

#[tokio::test]
async fn whatever_holds_the_partial_name_is_replaced_never_written_through() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let outside = server.outside.join("secret.txt");
    // Small uploads (written from the buffer in one call) and large ones (streamed) alike.
    for (name, size) in [("small.bin", 4096), ("large.bin", 2 * 1024 * 1024)] {
        let data = pattern(size, size as u64);
        let planted = server.path(&partial_name(name));
        symlink(&outside, &planted).unwrap();
        let reply = client.put(name, &data, json!({})).await;
        assert_eq!(reply["ok"], true, "{name}: {reply}");
        assert_eq!(std::fs::read(server.path(name)).unwrap(), data, "{name}");
        assert_eq!(std::fs::read(&outside).unwrap(), b"do not touch", "{name}");

        // A stale partial of someone's earlier try, bigger than the new file: not a byte of
        // it survives a fresh upload.
        std::fs::write(&planted, pattern(size * 2, 1)).unwrap();
        let again = pattern(size, 99);
        let reply = client.put(name, &again, json!({"overwrite": true})).await;
        assert_eq!(reply["ok"], true, "{name}: {reply}");
        assert_eq!(std::fs::read(server.path(name)).unwrap(), again, "{name}");
    }
    assert!(partials(&server).is_empty(), "{:?}", partials(&server));
}
