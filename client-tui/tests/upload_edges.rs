//! Large uploads stream through a few read-ahead buffers, hashed as they are read: every size
//! around the buffer boundaries arrives byte for byte with the right digest, and a file that
//! shrinks while it is sent is refused by the server, never placed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Proxy, TestServer, bytes, digest, run_job};
use ferry::engine::{ConflictAnswer, ConflictPolicy, EngineOptions, JobSpec};

const MIB: usize = 1024 * 1024;

fn never(_: &str) -> ConflictAnswer {
    panic!("no conflict was expected")
}

fn upload(items: Vec<(PathBuf, String)>) -> JobSpec {
    JobSpec::Upload {
        items,
        policy: ConflictPolicy::Fail,
        remove_source: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_uploads_of_every_size_around_the_buffers_arrive_byte_for_byte() {
    let server = TestServer::start_shm();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    // Just over the streaming threshold, just over a few buffers, and many with a ragged end.
    let sizes = [MIB + 1, 4 * MIB + 3, 9 * MIB + 7];
    let mut items = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let path = local.path().join(format!("f{i}"));
        std::fs::write(&path, bytes(*size, 60 + i as u64)).unwrap();
        items.push((path, format!("f{i}")));
    }
    let log = run_job(
        server.endpoint(),
        EngineOptions::default(),
        upload(items),
        never,
    )
    .await;
    assert_eq!(log.summary().files, sizes.len() as u64, "{log:?}");
    for (i, size) in sizes.iter().enumerate() {
        let data = bytes(*size, 60 + i as u64);
        assert_eq!(std::fs::read(server.path(&format!("f{i}"))).unwrap(), data);
        let reported = log.done.iter().find(|(path, ..)| *path == format!("f{i}"));
        assert_eq!(reported.map(|(_, _, d)| *d), Some(digest(&data)), "f{i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_shrinks_while_it_is_sent_is_refused_and_never_placed() {
    let server = TestServer::start_shm();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let src = local.path().join("big");
    let data = bytes(48 * MIB, 70);
    std::fs::write(&src, &data).unwrap();
    // A slow link, so the file can be cut while most of it has still to go.
    let proxy = Proxy::start(server.addr, Some(Duration::from_millis(1))).await;
    let up = proxy.up.clone();
    let cut = {
        let src = src.clone();
        tokio::spawn(async move {
            while up.load(Ordering::Relaxed) < 2 * MIB as u64 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let file = std::fs::OpenOptions::new().write(true).open(&src).unwrap();
            file.set_len(MIB as u64).unwrap();
        })
    };
    let log = run_job(
        proxy.endpoint(),
        EngineOptions::default(),
        upload(vec![(src.clone(), "big".to_owned())]),
        never,
    )
    .await;
    cut.await.unwrap();
    assert_eq!(log.summary().failed, 1, "{log:?}");
    // The same stable code as a download whose source changes on the server.
    let (_, error) = &log.failed[0];
    assert!(error.starts_with("file_changed: "), "{error}");
    assert_eq!(log.summary().files, 0, "{log:?}");
    assert!(
        !server.path("big").exists(),
        "a torn file took the final name"
    );

    // The file as it is now goes up whole on a second try.
    let log = run_job(
        server.endpoint(),
        EngineOptions::default(),
        upload(vec![(src, "big".to_owned())]),
        never,
    )
    .await;
    assert_eq!(log.summary().files, 1, "{log:?}");
    assert_eq!(std::fs::read(server.path("big")).unwrap(), &data[..MIB]);
}
