//! The engine's exchanges for the viewer and editor ([`ferry::engine::view`]) against a real
//! server: a ranged read, a verified fetch, an upload that refuses to replace a file changed
//! since its fetch, and keep-both; and against a lying server: a window whose bytes do not have
//! the announced digest, or that is longer than asked, is refused, never shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, endpoint_at};
use ferry::engine::Session;
use ferry::engine::view::{Replace, Uploaded};
use ferry_protocol::{
    Digest, Frame, FrameDecoder, GetReply, GetTrailer, HelloReply, Request, decode_request,
    encode_ok,
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_a_fetch_and_uploads_back_against_a_real_server() {
    let server = TestServer::start();
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(server.path("big.bin"), &bytes).unwrap();
    std::fs::write(server.path("doc.txt"), b"version one\n").unwrap();
    let mut session = Session::connect(&server.endpoint()).await.unwrap();

    let range = session
        .read_range("big.bin", 2_000_000, 65_536)
        .await
        .unwrap();
    assert_eq!(range.bytes, &bytes[2_000_000..2_065_536]);
    assert_eq!(range.file_size, bytes.len() as u64);

    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("doc.txt");
    std::fs::write(&copy, b"").unwrap();
    let fetched = session.fetch_to("doc.txt", &copy).await.unwrap();
    assert_eq!(std::fs::read(&copy).unwrap(), b"version one\n");
    assert_eq!(fetched.digest, Digest::of(b"version one\n"));

    // Unchanged on the server: the edit replaces it, verified.
    std::fs::write(&copy, b"version two\n").unwrap();
    let done = session
        .upload_from(&copy, "doc.txt", Replace::IfUnchanged(fetched.clone()))
        .await
        .unwrap();
    assert!(
        matches!(done, Uploaded::Done { ref path, .. } if path == "doc.txt"),
        "{done:?}"
    );
    assert_eq!(
        std::fs::read(server.path("doc.txt")).unwrap(),
        b"version two\n"
    );

    // Changed on the server since the fetch: nothing is sent.
    std::fs::write(&copy, b"version three\n").unwrap();
    let refused = session
        .upload_from(&copy, "doc.txt", Replace::IfUnchanged(fetched))
        .await
        .unwrap();
    assert!(
        matches!(refused, Uploaded::Changed { now: Some(_) }),
        "{refused:?}"
    );
    assert_eq!(
        std::fs::read(server.path("doc.txt")).unwrap(),
        b"version two\n"
    );

    // Keep both: under a free name beside it.
    let kept = session
        .upload_from(&copy, "doc.txt", Replace::KeepBoth)
        .await
        .unwrap();
    assert!(
        matches!(kept, Uploaded::Done { ref path, .. } if path == "doc (1).txt"),
        "{kept:?}"
    );
    assert_eq!(
        std::fs::read(server.path("doc (1).txt")).unwrap(),
        b"version three\n"
    );
    assert_eq!(
        std::fs::read(server.path("doc.txt")).unwrap(),
        b"version two\n"
    );
    // The session is still in step.
    assert_eq!(session.stat("doc.txt").await.unwrap().size, 12);
}

/// A server that answers every ranged `get` with `sent` bytes and the digest of `claimed`.
async fn lying_server(sent: &'static [u8], claimed: &'static [u8]) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut frames = FramedRead::new(read, FrameDecoder::new());
                while let Some(Ok(Frame::Header(line))) = frames.next().await {
                    let mut out = Vec::new();
                    match decode_request(&line).unwrap() {
                        Request::Hello { .. } => out.extend(
                            encode_ok(&HelloReply {
                                version: 1,
                                server: "liar".into(),
                                read_only: false,
                                identity: None,
                                home: None,
                            })
                            .unwrap(),
                        ),
                        Request::Get { offset, .. } => {
                            out.extend(
                                encode_ok(&GetReply {
                                    size: sent.len() as u64,
                                    file_size: 1 << 30,
                                    offset,
                                    mtime: 1_700_000_000,
                                    mode: 0o644,
                                })
                                .unwrap(),
                            );
                            out.extend_from_slice(sent);
                            out.extend(
                                encode_ok(&GetTrailer {
                                    digest: Digest::of(claimed),
                                })
                                .unwrap(),
                            );
                        }
                        _ => return,
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
async fn a_window_that_is_not_what_the_server_hashed_or_longer_than_asked_is_refused() {
    let addr = lying_server(b"evil bytes", b"good bytes").await;
    let mut session = Session::connect(&endpoint_at(addr, None)).await.unwrap();
    let error = session.read_range("f", 0, 4096).await.unwrap_err();
    assert_eq!(error.code(), "checksum_mismatch", "{error}");

    let addr = lying_server(b"more than asked", b"more than asked").await;
    let mut session = Session::connect(&endpoint_at(addr, None)).await.unwrap();
    let error = session.read_range("f", 0, 4).await.unwrap_err();
    assert_eq!(error.code(), "protocol", "{error}");
}
