//! Moves keep every source that did not arrive whole: a tree whose move partly failed keeps
//! each entry that failed (and the directories holding them), a file written to after it was
//! sent is not deleted, and nothing is moved into a stream. The real binary, a real server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Proxy, TestServer, bytes, ferry, ferry_running, p, text, tree};

#[test]
fn a_tree_whose_move_partly_failed_keeps_what_did_not_arrive() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("t");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("ok.txt"), bytes(1_000, 1)).unwrap();
    std::fs::write(src.join("sub/blocked.txt"), bytes(1_000, 2)).unwrap();
    std::fs::write(src.join("sub/fine.txt"), bytes(1_000, 3)).unwrap();
    // On the server a directory stands where one file goes.
    std::fs::create_dir_all(server.path("t/sub/blocked.txt")).unwrap();
    // Into the root: the tree arrives as `t`, beside what is there.
    let out = ferry(&["put", "-r", "--move", p(&src), &server.url("")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let left: Vec<_> = tree(&src).into_keys().collect();
    assert_eq!(
        left,
        ["sub/", "sub/blocked.txt"],
        "only the failed file stays"
    );
    assert_eq!(
        std::fs::read(server.path("t/sub/fine.txt")).unwrap(),
        bytes(1_000, 3)
    );

    // The other way: a local directory in the way of one file.
    let dest = local.path().join("back");
    // `back` exists, so the tree arrives as `back/t`, as with cp.
    std::fs::create_dir_all(dest.join("t/sub/fine.txt")).unwrap();
    let out = ferry(&["get", "-r", "--move", &server.url("t"), p(&dest)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let kept: Vec<_> = tree(&server.path("t")).into_keys().collect();
    assert_eq!(kept, ["sub/", "sub/fine.txt"], "only the failed file stays");
}

#[test]
fn a_move_into_a_stream_is_refused_and_keeps_the_source() {
    let server = TestServer::start();
    std::fs::write(server.path("a.bin"), bytes(5_000, 4)).unwrap();
    let out = ferry(&["get", "--move", &server.url("a.bin"), "-"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("special_file"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    assert_eq!(
        std::fs::read(server.path("a.bin")).unwrap(),
        bytes(5_000, 4)
    );
}

#[test]
fn a_file_written_to_after_it_was_sent_is_not_deleted_by_the_move() {
    let server = TestServer::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // A slow link, so the file can change after it was read and before the server's answer.
    let proxy = runtime.block_on(Proxy::start(server.addr, Some(Duration::from_millis(5))));
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("grows.log");
    let size = 8 * 1024 * 1024;
    std::fs::write(&src, bytes(size, 5)).unwrap();
    let child = ferry_running(&["put", "--move", p(&src), &proxy.url("grows.log")]);
    let start = Instant::now();
    while proxy.total().0 < (size - 1024 * 1024) as u64 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the upload never got going"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // A logger appends a line once every byte of the file has been read.
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&src)
        .unwrap()
        .write_all(b"a new line nobody has sent\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("file_changed"),
        "{}",
        text(&out.stderr)
    );
    let kept = std::fs::read(&src).unwrap();
    assert!(kept.ends_with(b"a new line nobody has sent\n"));
}
