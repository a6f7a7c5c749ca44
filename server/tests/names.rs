//! Every name a POSIX filesystem holds is listed, read, written, moved and removed over the
//! wire, in its escaped form (PROTOCOL.md, "Paths"): invalid UTF-8, control characters, a
//! backslash, a name of high bytes only. Files are made on disk with their raw bytes, and what
//! the server does to them is checked on disk byte for byte.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use common::{Server, code, names};
use serde_json::json;

/// Raw names and the wire names the server must give them.
const ODD: [(&[u8], &str); 6] = [
    (b"new\nline", "new\\nline"),
    (b"back\\slash", "back\\\\slash"),
    (b"ctl\x01", "ctl\\x01"),
    (b"bad-\xff.txt", "bad-\\xff.txt"),
    (b"\x80\x81\x82\x83", "\\x80\\x81\\x82\\x83"),
    (b"tab\tand\rcr", "tab\\tand\\rcr"),
];

fn raw(root: &Path, name: &[u8]) -> PathBuf {
    root.join(OsStr::from_bytes(name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_names_on_disk_are_listed_walked_and_read_exactly() {
    let server = Server::start().await;
    for (i, (name, _)) in ODD.iter().enumerate() {
        std::fs::write(raw(&server.root, name), format!("file {i}")).unwrap();
    }
    std::fs::write(server.path("fine.txt"), b"x").unwrap();
    let dir = raw(&server.root, b"dir\n\xfe");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(raw(&dir, b"in\x1bside"), b"deep").unwrap();

    let mut client = server.client().await;
    let (entries, skipped, _) = client.list_all("list", "").await.unwrap();
    let mut expected: Vec<String> = ODD.iter().map(|(_, wire)| (*wire).to_owned()).collect();
    expected.extend(["fine.txt".to_owned(), "dir\\n\\xfe".to_owned()]);
    expected.sort();
    assert_eq!(names(&entries), expected);
    assert_eq!(skipped, 0);

    let (walked, skipped, _) = client.list_all("walk", "").await.unwrap();
    assert!(
        names(&walked).contains(&"dir\\n\\xfe/in\\x1bside".to_owned()),
        "{walked:?}"
    );
    assert_eq!((walked.len(), skipped), (expected.len() + 1, 0));

    let summary = client.request(json!({"op": "summary", "path": ""})).await;
    assert_eq!(
        (summary["files"].clone(), summary["skipped"].clone()),
        (json!(8), json!(0))
    );

    for (i, (_, wire)) in ODD.iter().enumerate() {
        let (_, data, trailer) = client.get(wire, 0).await.unwrap();
        assert_eq!(data, format!("file {i}").as_bytes(), "{wire}");
        assert_eq!(trailer["ok"], true);
        let stat = client.request(json!({"op": "stat", "path": wire})).await;
        assert_eq!(stat["entry"]["name"], *wire);
    }
    let (_, data, _) = client.get("dir\\n\\xfe/in\\x1bside", 0).await.unwrap();
    assert_eq!(data, b"deep");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_names_are_written_moved_and_removed_with_their_raw_bytes() {
    let server = Server::start().await;
    let mut client = server.client().await;
    for (i, (name, wire)) in ODD.iter().enumerate() {
        let reply = client
            .put(wire, format!("up {i}").as_bytes(), json!({}))
            .await;
        assert_eq!(reply["ok"], true, "{wire}: {reply}");
        assert_eq!(
            std::fs::read(raw(&server.root, name)).unwrap(),
            format!("up {i}").as_bytes()
        );
    }
    let reply = client
        .request(json!({"op": "mkdir", "path": "d\\x7f/e\\xc0", "parents": true}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert!(raw(&server.root, b"d\x7f/e\xc0").is_dir());

    let reply = client
        .request(
            json!({"op": "rename", "path": "new\\nline", "to": "d\\x7f/e\\xc0/moved\\\\\\xff"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert!(!raw(&server.root, b"new\nline").exists());
    assert_eq!(
        std::fs::read(raw(&server.root, b"d\x7f/e\xc0/moved\\\xff")).unwrap(),
        b"up 0"
    );

    let reply = client
        .request(json!({"op": "remove", "path": "ctl\\x01"}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert!(!raw(&server.root, b"ctl\x01").exists());
    let reply = client
        .request(json!({"op": "remove", "path": "d\\x7f", "recursive": true}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert!(!raw(&server.root, b"d\x7f").exists());

    // An interrupted upload's partial is found again under the same escaped name.
    let reply = client
        .request(json!({"op": "partial", "path": "bad-\\xff.txt"}))
        .await;
    assert_eq!(reply["length"], 0, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escapes_that_are_not_canonical_or_name_forbidden_bytes_are_bad_path() {
    let server = Server::start().await;
    std::fs::write(server.path("A"), b"a").unwrap();
    let outside_before = server.outside_snapshot();
    let mut client = server.client().await;
    for wire in [
        "\\x41",              // "A" has one spelling
        "a\\x00b",            // NUL
        "a\\x2fb",            // a slash smuggled in a name
        "\\x2e\\x2e/outside", // ".."
        "\\x2e\\x2e\\x2foutside/secret.txt",
        "trailing\\",
        "\\q",
        "raw\u{1}control",
    ] {
        let reply = client.request(json!({"op": "stat", "path": wire})).await;
        assert_eq!(code(&reply), "bad_path", "{wire}");
        let reply = client.put(wire, b"x", json!({})).await;
        assert_eq!(code(&reply), "bad_path", "{wire}");
    }
    assert_eq!(server.outside_snapshot(), outside_before);
    // 255 raw bytes make a name, however long their escape.
    let long = "\\xff".repeat(255);
    let reply = client.put(&long, b"x", json!({})).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert!(raw(&server.root, &[0xff; 255]).is_file());
    let reply = client.put(&"\\xff".repeat(256), b"x", json!({})).await;
    assert_eq!(code(&reply), "bad_path");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_upload_of_an_odd_name_resumes_from_its_raw_partial() {
    let server = Server::start().await;
    let wire = "half\\n\\xff.bin";
    // Over the size the server reads whole before writing, so half of it reaches the disk.
    const HALF: usize = 1024 * 1024;
    let data: Vec<u8> = (0..2 * HALF as u32).map(|i| (i % 251) as u8).collect();
    let mut writer = server.client().await;
    writer
        .send_json(&json!({"op": "put", "path": wire, "size": data.len()}))
        .await;
    writer.send(&data[..HALF]).await;
    let partial = raw(&server.root, b".ferry-part.half\n\xff.bin");
    let start = std::time::Instant::now();
    while std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) < HALF as u64 {
        assert!(start.elapsed() < common::STEP, "the partial never filled");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(writer);

    let mut client = server.client().await;
    let held = client.request(json!({"op": "partial", "path": wire})).await;
    assert_eq!(held["length"], HALF, "{held}");
    // The partial is ferry's, under any name: never listed, never named.
    let (entries, _, _) = client.list_all("list", "").await.unwrap();
    assert!(names(&entries).is_empty(), "{entries:?}");
    let reply = client
        .put(wire, &data[HALF..], json!({"offset": HALF}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(
        std::fs::read(raw(&server.root, b"half\n\xff.bin")).unwrap(),
        data
    );
    assert!(!partial.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_partials_of_odd_names_are_swept_too() {
    let stale = std::sync::Mutex::new(PathBuf::new());
    let server = Server::start_with(|config| {
        let dir = raw(&config.root, b"odd\n\xfe");
        std::fs::create_dir(&dir).unwrap();
        let partial = raw(&dir, b".ferry-part.x\x01\xff");
        std::fs::write(&partial, b"abandoned").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&partial)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(7 * 86_400))
            .unwrap();
        *stale.lock().unwrap() = partial;
    })
    .await;
    let stale = stale.into_inner().unwrap();
    let start = std::time::Instant::now();
    while stale.exists() {
        assert!(
            start.elapsed() < common::STEP,
            "the stale partial was never swept"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(raw(&server.root, b"odd\n\xfe").is_dir());
}
