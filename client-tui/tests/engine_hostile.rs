//! The engine against a hostile server written here with the protocol crate: names that try to
//! climb out of the chosen directory, and a digest that does not match the bytes. The client
//! must never write outside the destination and never keep bytes it cannot verify.
// Helpers outside `#[test]` functions panic on purpose too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::run_job;
use ferry::engine::{ConflictAnswer, ConflictPolicy, EngineOptions, JobSpec};
use ferry_protocol::{
    Digest, Entry, Frame, FrameDecoder, GetReply, GetTrailer, HelloReply, Kind, ListBatch, Request,
    StatReply, SummaryReply, decode_request, encode_ok,
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;

const GOOD: &[u8] = b"good";

fn file(name: &str) -> Entry {
    Entry {
        name: name.into(),
        kind: Kind::File,
        size: GOOD.len() as u64,
        mtime: 1_700_000_000,
        mode: 0o644,
        link: None,
        error: None,
        owner: None,
        target: None,
    }
}

/// Serves a tree named `tree` whose listing holds escapes; records every path asked for.
async fn hostile_server(requested: Arc<Mutex<Vec<String>>>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let requested = requested.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut frames = FramedRead::new(read, FrameDecoder::new());
                while let Some(Ok(Frame::Header(line))) = frames.next().await {
                    let request = decode_request(&line).unwrap();
                    let mut out = Vec::new();
                    match request {
                        Request::Hello { .. } => out.extend(
                            encode_ok(&HelloReply {
                                version: 1,
                                server: "hostile".into(),
                                read_only: false,
                                identity: None,
                                home: None,
                            })
                            .unwrap(),
                        ),
                        Request::Stat { path, .. } => {
                            let mut entry = file(&path);
                            if path == "tree" {
                                entry.kind = Kind::Dir;
                            }
                            out.extend(encode_ok(&StatReply { entry, id: None }).unwrap());
                        }
                        // The free-space check before a download asks for the totals.
                        Request::Summary { .. } => out.extend(
                            encode_ok(&SummaryReply {
                                files: 10,
                                dirs: 1,
                                bytes: 10 * GOOD.len() as u64,
                                skipped: 0,
                            })
                            .unwrap(),
                        ),
                        Request::Walk { .. } => {
                            let mut sub = file("sub");
                            sub.kind = Kind::Dir;
                            let entries = vec![
                                file("../escape.txt"),
                                file("/tmp/absolute.txt"),
                                file("ok/../../up.txt"),
                                file("back\\slash.txt"),
                                file(".ferry-part.sneaky"),
                                file("nl\nname"),
                                sub,
                                file("sub/fine.txt"),
                                file("ok.txt"),
                                file("liar.txt"),
                            ];
                            out.extend(
                                encode_ok(&ListBatch {
                                    entries,
                                    more: false,
                                    skipped: 0,
                                })
                                .unwrap(),
                            );
                        }
                        Request::Get { path, offset, .. } => {
                            requested.lock().unwrap().push(path.clone());
                            let body = &GOOD[offset as usize..];
                            out.extend(
                                encode_ok(&GetReply {
                                    size: body.len() as u64,
                                    file_size: GOOD.len() as u64,
                                    offset,
                                    mtime: 1_700_000_000,
                                    mode: 0o644,
                                })
                                .unwrap(),
                            );
                            out.extend_from_slice(body);
                            let digest = if path.ends_with("liar.txt") {
                                Digest::of(b"something else")
                            } else {
                                Digest::of(GOOD)
                            };
                            out.extend(encode_ok(&GetTrailer { digest }).unwrap());
                        }
                        other => panic!("unexpected request {other:?}"),
                    }
                    if write.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_from_the_server_never_lead_outside_the_destination() {
    let requested = Arc::new(Mutex::new(Vec::new()));
    let addr = hostile_server(requested.clone()).await;
    let top = tempfile::tempdir().unwrap();
    let dest = top.path().join("a/b/dest");
    std::fs::create_dir_all(top.path().join("a/b")).unwrap();

    let log = run_job(
        common::endpoint_at(addr, None),
        EngineOptions::default(),
        JobSpec::Download {
            items: vec![("tree".into(), dest.clone())],
            policy: ConflictPolicy::Fail,
            remove_source: false,
        },
        |_: &str| -> ConflictAnswer { panic!("no conflict expected") },
    )
    .await;
    let summary = log.summary();
    assert_eq!(summary.skipped, 6, "{log:?}");
    assert_eq!(summary.files, 2, "{log:?}");
    assert_eq!(summary.failed, 1, "{log:?}");

    // Exactly the good names arrived, inside the destination.
    assert_eq!(std::fs::read(dest.join("ok.txt")).unwrap(), GOOD);
    assert_eq!(std::fs::read(dest.join("sub/fine.txt")).unwrap(), GOOD);
    let all = common::tree(top.path());
    let files: Vec<&String> = all.keys().filter(|k| !k.ends_with('/')).collect();
    assert_eq!(
        files,
        ["a/b/dest/ok.txt", "a/b/dest/sub/fine.txt"],
        "{all:?}"
    );
    assert!(!std::path::Path::new("/tmp/absolute.txt").exists());

    // The escapes were never even asked for.
    let mut asked = requested.lock().unwrap().clone();
    asked.sort();
    assert_eq!(asked, ["tree/liar.txt", "tree/ok.txt", "tree/sub/fine.txt"]);

    // Bytes whose digest does not match are refused and not kept, not even as a partial.
    let (path, error) = &log.failed[0];
    assert_eq!(path, "tree/liar.txt");
    assert!(
        error.starts_with("checksum_mismatch: tree/liar.txt"),
        "{error}"
    );
    assert!(!dest.join("liar.txt").exists());
    assert!(!dest.join(".ferry-part.liar.txt").exists());
}
