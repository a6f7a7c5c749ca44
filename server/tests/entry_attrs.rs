//! The attribute fields of an entry (PROTOCOL.md, "Entries"): who owns it, by id and by name,
//! and a symlink's text, sent only while that text stays inside the root.

mod common;

use std::os::unix::fs::{lchown, symlink};

use common::{Server, named};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_stat_say_who_owns_an_entry_and_walk_does_not() {
    let server = Server::start().await;
    std::fs::create_dir(server.path("d")).unwrap();
    std::fs::write(server.path("d/nobodys"), b"n").unwrap();
    lchown(server.path("d/nobodys"), Some(65534), Some(65534)).unwrap();
    std::fs::write(server.path("d/unnamed"), b"u").unwrap();
    // Ids no user database names: the numbers alone.
    lchown(
        server.path("d/unnamed"),
        Some(3_999_999_001),
        Some(3_999_999_002),
    )
    .unwrap();
    std::fs::write(server.path("d/roots"), b"r").unwrap();
    let mut client = server.client().await;

    let (entries, _, _) = client.list_all("list", "d").await.unwrap();
    let nobody = &named(&entries, "nobodys")["owner"];
    assert_eq!(
        (nobody["uid"].as_u64(), nobody["gid"].as_u64()),
        (Some(65534), Some(65534))
    );
    assert_eq!(nobody["user"], "nobody", "{nobody}");
    assert!(nobody["group"].is_string(), "{nobody}");
    let unnamed = &named(&entries, "unnamed")["owner"];
    assert_eq!(unnamed["uid"].as_u64(), Some(3_999_999_001));
    assert_eq!(unnamed["gid"].as_u64(), Some(3_999_999_002));
    assert!(
        unnamed.get("user").is_none() && unnamed.get("group").is_none(),
        "{unnamed}"
    );
    assert_eq!(named(&entries, "roots")["owner"]["user"], "root");

    // A walk is read by transfers and searches, not shown: it leaves owners out, which would
    // make its entries half as long again.
    let (walked, _, _) = client.list_all("walk", "").await.unwrap();
    assert!(named(&walked, "d/nobodys").get("owner").is_none());
    let stat = client
        .request(json!({"op": "stat", "path": "d/nobodys"}))
        .await;
    assert_eq!(
        stat["entry"]["owner"]["uid"].as_u64(),
        Some(65534),
        "{stat}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_links_text_is_sent_only_while_it_stays_inside_the_root() {
    let server = Server::start().await;
    std::fs::create_dir_all(server.path("a/b")).unwrap();
    std::fs::create_dir(server.path("elsewhere")).unwrap();
    symlink("b", server.path("a/down")).unwrap();
    symlink("../elsewhere", server.path("a/over")).unwrap();
    symlink("../../elsewhere", server.path("a/b/deep_over")).unwrap();
    symlink("../gone", server.path("a/dangling")).unwrap();
    // Out of the root by text: absolute (even into the root itself), or climbing past the top.
    symlink(server.path("elsewhere"), server.path("a/absolute")).unwrap();
    symlink("../../etc", server.path("a/climb")).unwrap();
    symlink("b/../../../x", server.path("a/down_and_out")).unwrap();
    symlink("odd\nname", server.path("a/odd")).unwrap();
    let mut client = server.client().await;

    let (entries, _, _) = client.list_all("list", "a").await.unwrap();
    assert_eq!(named(&entries, "down")["target"], "b");
    assert_eq!(named(&entries, "over")["target"], "../elsewhere");
    assert_eq!(named(&entries, "over")["link"], "dir");
    // Leading nowhere is no secret: the text is inside the root.
    assert_eq!(named(&entries, "dangling")["target"], "../gone");
    assert_eq!(named(&entries, "odd")["target"], "odd\\nname");
    for hidden in ["absolute", "climb", "down_and_out"] {
        let entry = named(&entries, hidden);
        assert_eq!(entry["kind"], "symlink");
        assert!(entry.get("target").is_none(), "{entry}");
    }
    // Files and directories have none.
    assert!(named(&entries, "b").get("target").is_none());

    // A walk judges each link from its own directory, whatever directory was walked.
    let (walked, _, _) = client.list_all("walk", "a").await.unwrap();
    assert_eq!(named(&walked, "b/deep_over")["target"], "../../elsewhere");
    assert!(named(&walked, "climb").get("target").is_none());
    let stat = client
        .request(json!({"op": "stat", "path": "a/b/deep_over"}))
        .await;
    assert_eq!(stat["entry"]["target"], "../../elsewhere", "{stat}");
    let stat = client
        .request(json!({"op": "stat", "path": "a/absolute"}))
        .await;
    assert!(stat["entry"].get("target").is_none(), "{stat}");
}
