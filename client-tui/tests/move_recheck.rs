//! A move removes a source only while it is still the file that was copied: a remote source
//! changed on the server after its verified download and before the job's end stays, named
//! with `file_changed`, and so does the directory holding it. The real binary, a real server
//! behind a slow link that holds the job open on a second, large file. And `put --overwrite`
//! onto a remote symlink writes through it instead of replacing it; a download never replaces a
//! file that took its name while it ran.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use common::{Proxy, TestServer, bytes, ferry, ferry_running, p, text};

/// Waits until `path` holds exactly `want`, failing after a generous deadline.
fn wait_for(path: &Path, want: &[u8]) {
    let start = Instant::now();
    while std::fs::read(path).ok().as_deref() != Some(want) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{} never arrived",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_remote_source_changed_after_its_download_is_kept_by_the_move() {
    let server = TestServer::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = runtime.block_on(Proxy::start(server.addr, Some(Duration::from_millis(40))));
    std::fs::create_dir_all(server.path("t")).unwrap();
    std::fs::write(server.path("t/grows.log"), bytes(1_000, 1)).unwrap();
    std::fs::write(server.path("t/same.txt"), bytes(1_000, 2)).unwrap();
    // A second item, planned after the first: it holds the job open once `t` has arrived.
    std::fs::write(server.path("big.bin"), bytes(16 * 1024 * 1024, 3)).unwrap();
    let local = tempfile::tempdir().unwrap();
    let back = local.path().join("back");
    std::fs::create_dir(&back).unwrap();
    let dest = back.join("t");
    let child = ferry_running(&[
        "get",
        "-r",
        "--move",
        &proxy.url("t"),
        &proxy.url("big.bin"),
        p(&back),
    ]);
    wait_for(&dest.join("grows.log"), &bytes(1_000, 1));
    wait_for(&dest.join("same.txt"), &bytes(1_000, 2));
    // Both small files arrived whole while the large one still crawls over the slow link
    // (about ten seconds for its 256 reads of 64 KiB).
    assert!(
        !back.join("big.bin").exists(),
        "the large file must still be on its way"
    );
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(server.path("t/grows.log"))
        .unwrap()
        .write_all(b"a line written after the copy\n")
        .unwrap();
    // Same length, same mtime: only the bytes tell.
    let stamp: SystemTime = std::fs::metadata(server.path("t/same.txt"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::write(server.path("t/same.txt"), bytes(1_000, 9)).unwrap();
    std::fs::File::options()
        .write(true)
        .open(server.path("t/same.txt"))
        .unwrap()
        .set_modified(stamp)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("file_changed"), "{stderr}");
    assert!(stderr.contains("grows.log"), "{stderr}");
    assert!(stderr.contains("same.txt"), "{stderr}");
    let mut grown = bytes(1_000, 1);
    grown.extend_from_slice(b"a line written after the copy\n");
    assert_eq!(std::fs::read(server.path("t/grows.log")).unwrap(), grown);
    assert_eq!(
        std::fs::read(server.path("t/same.txt")).unwrap(),
        bytes(1_000, 9)
    );
    // The file that did not change is gone from the server and whole here; the directory
    // still holds the kept files, so it stays.
    assert_eq!(
        std::fs::read(dest.join("grows.log")).unwrap(),
        bytes(1_000, 1)
    );
    assert!(!server.path("big.bin").exists());
    assert_eq!(
        std::fs::read(back.join("big.bin")).unwrap(),
        bytes(16 * 1024 * 1024, 3)
    );
    assert!(server.path("t").is_dir());
}

#[test]
fn an_unchanged_move_still_removes_every_source() {
    let server = TestServer::start();
    std::fs::create_dir_all(server.path("t/sub")).unwrap();
    std::fs::write(server.path("t/a.txt"), bytes(1_000, 1)).unwrap();
    std::fs::write(server.path("t/sub/b.bin"), bytes(300_000, 2)).unwrap();
    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("back");
    let out = ferry(&["get", "-r", "--move", &server.url("t"), p(&dest)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!server.path("t").exists());
    assert_eq!(
        std::fs::read(dest.join("sub/b.bin")).unwrap(),
        bytes(300_000, 2)
    );
}

#[test]
fn put_overwrite_onto_a_remote_link_writes_its_target_and_keeps_the_link() {
    let server = TestServer::start();
    std::fs::create_dir_all(server.path("data")).unwrap();
    std::fs::write(server.path("data/notes.txt"), b"old").unwrap();
    std::os::unix::fs::symlink("data/notes.txt", server.path("notes")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", server.path("away")).unwrap();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("notes");
    std::fs::write(&src, bytes(70_000, 7)).unwrap();
    let out = ferry(&["put", "--overwrite", p(&src), &server.url("notes")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_link(server.path("notes")).unwrap(),
        Path::new("data/notes.txt")
    );
    assert_eq!(
        std::fs::read(server.path("data/notes.txt")).unwrap(),
        bytes(70_000, 7)
    );

    let out = ferry(&["put", "--overwrite", p(&src), &server.url("away")]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("forbidden"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_link(server.path("away")).unwrap(),
        Path::new("/etc/hostname")
    );
}

#[test]
fn an_upload_move_keeps_a_file_put_in_the_sources_place_with_its_size_and_mtime() {
    let server = TestServer::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = runtime.block_on(Proxy::start(server.addr, Some(Duration::from_millis(5))));
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("report.bin");
    let size = 8 * 1024 * 1024;
    std::fs::write(&src, bytes(size, 5)).unwrap();
    let stamp = std::fs::metadata(&src).unwrap().modified().unwrap();
    // Another file of the same length and mtime, to take the source's name mid-way.
    let other = local.path().join("other.bin");
    std::fs::write(&other, bytes(size, 6)).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&other)
        .unwrap()
        .set_modified(stamp)
        .unwrap();
    let child = ferry_running(&["put", "--move", p(&src), &proxy.url("report.bin")]);
    let start = Instant::now();
    while proxy.total().0 < (size / 2) as u64 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the upload never got going"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // The upload reads its open file to the end; the name now leads to another one.
    std::fs::rename(&other, &src).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("file_changed"), "{stderr}");
    assert_eq!(std::fs::read(&src).unwrap(), bytes(size, 6));
    assert_eq!(
        std::fs::read(server.path("report.bin")).unwrap(),
        bytes(size, 5)
    );
}

#[test]
fn a_download_never_replaces_a_file_that_took_its_name_meanwhile() {
    let server = TestServer::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = runtime.block_on(Proxy::start(server.addr, Some(Duration::from_millis(20))));
    let size = 8 * 1024 * 1024;
    std::fs::write(server.path("big.bin"), bytes(size, 8)).unwrap();
    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("big.bin");
    let child = ferry_running(&["get", &proxy.url("big.bin"), p(&dest)]);
    let start = Instant::now();
    while proxy.total().1 < 1024 * 1024 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the download never got going"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // The user saves a file under that name while the download runs.
    std::fs::write(&dest, b"the user's own file").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("already_exists"), "{stderr}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"the user's own file");
}
