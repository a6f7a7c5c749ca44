//! Destinations that are not plain files, as `cp` and `scp` treat them: a symlink is written
//! through (atomically, at its target), a FIFO or a link to a stream (the shape of
//! `/dev/stdout`) gets the bytes as a stream and stays what it is, anything else is refused;
//! `-` streams to stdout or from stdin. The real binary against a real server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{TestServer, bytes, ferry, p, text};

fn succeeded(out: &Output) {
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
}

#[test]
fn a_symlinked_destination_is_written_through_at_its_target() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    for size in [5_000usize, 3_000_000] {
        let data = bytes(size, 1);
        std::fs::write(server.path("a.txt"), &data).unwrap();
        let target = local.path().join("target.txt");
        std::fs::write(&target, b"old").unwrap();
        let link = local.path().join("link.txt");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("target.txt", &link).unwrap();

        // Without a choice, the target exists: refused, nothing changes.
        let out = ferry(&["get", &server.url("a.txt"), p(&link)]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("already_exists"));
        assert_eq!(std::fs::read(&target).unwrap(), b"old");

        succeeded(&ferry(&[
            "get",
            "--overwrite",
            &server.url("a.txt"),
            p(&link),
        ]));
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), data, "{size}");
        let mut names: Vec<_> = std::fs::read_dir(local.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["link.txt", "target.txt"], "no partial left");
    }
}

/// Reads a FIFO to its end on a thread while `run` writes to it.
fn read_fifo(fifo: &Path, run: impl FnOnce() -> Output) -> (Output, Vec<u8>) {
    let path = fifo.to_owned();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        std::fs::File::open(path)
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        got
    });
    let out = run();
    (out, reader.join().unwrap())
}

#[test]
fn a_fifo_gets_the_bytes_as_a_stream_and_stays_a_fifo() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let fifo = local.path().join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for (size, flag) in [(5_000usize, "--overwrite"), (3_000_000, "--resume")] {
        let data = bytes(size, 2);
        std::fs::write(server.path("a.bin"), &data).unwrap();
        let (out, got) = read_fifo(&fifo, || {
            ferry(&["get", flag, &server.url("a.bin"), p(&fifo)])
        });
        succeeded(&out);
        assert_eq!(got.len(), data.len());
        assert!(got == data, "{size}");
        let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(kind.is_fifo(), "{kind:?}");
    }
    // No flag needed: a stream replaces nothing.
    let (out, got) = read_fifo(&fifo, || ferry(&["get", &server.url("a.bin"), p(&fifo)]));
    succeeded(&out);
    assert_eq!(got.len(), 3_000_000);
}

#[test]
fn dash_and_a_link_to_stdout_stream_to_stdout() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    // The shape of /dev/stdout: a symlink to the process's own fd 1 (a pipe here).
    let stdout_link = local.path().join("stdout");
    std::os::unix::fs::symlink("/proc/self/fd/1", &stdout_link).unwrap();
    for size in [5_000usize, 3_000_000] {
        let data = bytes(size, 3);
        std::fs::write(server.path("a.bin"), &data).unwrap();
        let out = ferry(&["get", &server.url("a.bin"), "-"]);
        succeeded(&out);
        assert!(out.stdout == data, "{size}: {} bytes", out.stdout.len());
        let out = ferry(&["get", "--overwrite", &server.url("a.bin"), p(&stdout_link)]);
        succeeded(&out);
        assert!(out.stdout == data, "{size}: {} bytes", out.stdout.len());
        assert!(
            std::fs::symlink_metadata(&stdout_link)
                .unwrap()
                .is_symlink()
        );
    }
}

#[test]
fn dash_as_a_source_uploads_stdin() {
    let server = TestServer::start();
    for size in [0usize, 5_000, 3_000_000] {
        let data = bytes(size, 4);
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["put", "--overwrite", "-", &server.url("from-stdin.bin")])
            .env_remove("FERRY_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feed = data.clone();
        let writer = std::thread::spawn(move || stdin.write_all(&feed).unwrap());
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        succeeded(&out);
        assert!(
            std::fs::read(server.path("from-stdin.bin")).unwrap() == data,
            "{size}"
        );
    }
}

#[test]
fn a_socket_or_a_dangling_link_is_refused_and_kept() {
    let server = TestServer::start();
    std::fs::write(server.path("a.bin"), b"bytes").unwrap();
    let local = tempfile::tempdir().unwrap();
    let socket = local.path().join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let out = ferry(&["get", "--overwrite", &server.url("a.bin"), p(&socket)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("special_file"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        std::fs::symlink_metadata(&socket)
            .unwrap()
            .file_type()
            .is_socket()
    );

    // A link to a directory where a file goes: neither the link nor the directory is replaced.
    std::fs::create_dir(local.path().join("dir")).unwrap();
    std::fs::create_dir(server.path("t")).unwrap();
    std::fs::write(server.path("t/dirlink"), b"a file").unwrap();
    let tree_dest = local.path().join("t");
    std::fs::create_dir(&tree_dest).unwrap();
    std::os::unix::fs::symlink("../dir", tree_dest.join("dirlink")).unwrap();
    let out = ferry(&[
        "get",
        "-r",
        "--overwrite",
        &server.url("t"),
        p(local.path()),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is_a_directory"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        std::fs::symlink_metadata(tree_dest.join("dirlink"))
            .unwrap()
            .is_symlink()
    );

    let dangling = local.path().join("dangling");
    std::os::unix::fs::symlink("nowhere/at/all", &dangling).unwrap();
    let out = ferry(&["get", "--overwrite", &server.url("a.bin"), p(&dangling)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("special_file"),
        "{}",
        text(&out.stderr)
    );
    assert!(std::fs::symlink_metadata(&dangling).unwrap().is_symlink());
}
