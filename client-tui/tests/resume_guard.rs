//! `--resume` continues only a destination whose bytes are a verified prefix of the source;
//! any other destination is left exactly as it was and the file fails as `resume_mismatch`,
//! with a hint to choose `--overwrite`. Both directions, the real binary, a real server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::{TestServer, bytes, ferry, ferry_running, interrupt, p, text};

fn mismatch(out: &Output) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("resume_mismatch"), "{stderr}");
    assert!(stderr.contains("--overwrite"), "{stderr}");
}

/// With `held` in `dest` (mode 0640), `get --resume` of the server's `src.bin` onto it is
/// refused as a mismatch and leaves `dest` as it was.
fn resume_onto_is_refused(server: &TestServer, dest: &std::path::Path, held: &[u8], size: usize) {
    std::fs::write(dest, held).unwrap();
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o640)).unwrap();
    mismatch(&ferry(&[
        "get",
        "--resume",
        &server.url("src.bin"),
        p(dest),
    ]));
    assert_eq!(std::fs::read(dest).unwrap(), held, "{size}");
}

#[test]
fn a_download_resumes_only_a_true_prefix() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    for size in [300_000usize, 3_000_000] {
        let source = bytes(size, 1);
        std::fs::write(server.path("src.bin"), &source).unwrap();
        let dest = local.path().join("dest.bin");

        // Larger than the source: not a part of it.
        let mut larger = source.clone();
        larger.extend_from_slice(b"the user's own tail");
        resume_onto_is_refused(&server, &dest, &larger, size);

        // Shorter, but other bytes: continued, it would be no version of either file.
        let mut other = bytes(size / 2, 9);
        other[0] ^= 1;
        resume_onto_is_refused(&server, &dest, &other, size);
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "{size}");
        let names: Vec<_> = std::fs::read_dir(local.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["dest.bin"], "nothing hidden beside it");

        // A true prefix is continued.
        std::fs::write(&dest, &source[..size / 3]).unwrap();
        let out = ferry(&["get", "--resume", &server.url("src.bin"), p(&dest)]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(std::fs::read(&dest).unwrap(), source, "{size}");
    }
}

#[test]
fn a_stale_partial_beside_the_destination_does_not_replace_it() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let source = bytes(3_000_000, 5);
    std::fs::write(server.path("src.bin"), &source).unwrap();
    let dest = local.path().join("dest.bin");
    // The user's own file, not a part of the source, and our partial of an earlier attempt,
    // which is.
    let mine = bytes(100_000, 6);
    std::fs::write(&dest, &mine).unwrap();
    std::fs::write(
        local.path().join(".ferry-part.dest.bin"),
        &source[..1_000_000],
    )
    .unwrap();
    let out = ferry(&["get", "--resume", &server.url("src.bin"), p(&dest)]);
    mismatch(&out);
    assert_eq!(std::fs::read(&dest).unwrap(), mine);
}

#[test]
fn an_interrupted_resume_puts_the_destination_back() {
    let server = TestServer::start();
    let source = bytes(16 * 1024 * 1024, 7);
    std::fs::write(server.path("src.bin"), &source).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = runtime.block_on(common::Proxy::start(
        server.addr,
        Some(std::time::Duration::from_millis(10)),
    ));
    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("dest.bin");
    // Not a part of the source, but only the digest at the end could tell.
    let mine = bytes(1_000_000, 8);
    std::fs::write(&dest, &mine).unwrap();
    let child = ferry_running(&["get", "--resume", &proxy.url("src.bin"), p(&dest)]);
    let partial = local.path().join(".ferry-part.dest.bin");
    let start = std::time::Instant::now();
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < 2_000_000 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "never resumed"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Ctrl-C.
    let out = interrupt(child);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&dest).unwrap(), mine, "{}", text(&out.stderr));
    let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
    assert_ne!(mode, 0o600, "its own mode back");
    assert!(!partial.exists());
}

#[test]
fn an_upload_resumes_only_a_true_prefix() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    for size in [300_000usize, 3_000_000] {
        let source = bytes(size, 2);
        let src = local.path().join("src.bin");
        std::fs::write(&src, &source).unwrap();
        let dest = server.path("dest.bin");

        let mut larger = source.clone();
        larger.extend_from_slice(b"the server's own tail");
        std::fs::write(&dest, &larger).unwrap();
        mismatch(&ferry(&[
            "put",
            "--resume",
            p(&src),
            &server.url("dest.bin"),
        ]));
        assert_eq!(std::fs::read(&dest).unwrap(), larger, "{size}");

        let other = bytes(size / 2, 9);
        std::fs::write(&dest, &other).unwrap();
        mismatch(&ferry(&[
            "put",
            "--resume",
            p(&src),
            &server.url("dest.bin"),
        ]));
        assert_eq!(std::fs::read(&dest).unwrap(), other, "{size}");

        std::fs::write(&dest, &source[..size / 3]).unwrap();
        let out = ferry(&["put", "--resume", p(&src), &server.url("dest.bin")]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(std::fs::read(&dest).unwrap(), source, "{size}");
    }
}

#[path = "common/tmux.rs"]
mod tmux;

#[test]
fn the_tui_asks_again_when_resume_cannot_be_done() {
    let desk = tmux::Desk::new();
    let (root, local) = (desk.dir("served"), &desk.local);
    std::fs::write(root.join("r.bin"), bytes(1_000, 1)).unwrap();
    let mine = bytes(5_000, 2);
    std::fs::write(local.join("r.bin"), &mine).unwrap();
    let (_server, port) = common::start_server(&root, 0);
    let tmux = desk.ferry(&[&format!("ferry://127.0.0.1:{port}/")], (120, 40));
    tmux.wait_for("both panes", |s| {
        s.matches("r.bin").count() == 2 && s.contains("connected")
    });
    tmux.keys(&["Tab"]);
    tmux.keys(&["End"]);
    tmux.keys(&["F5", "Enter"]);
    tmux.wait_for("the conflict question", |s| s.contains("File exists"));
    tmux.keys(&["r"]);
    let screen = tmux.wait_for("the question again, with why", |s| {
        s.contains("File exists") && s.contains("cannot resume")
    });
    assert!(screen.contains("resume_mismatch"), "{screen}");
    tmux.keys(&["s"]);
    tmux.wait_for("the job skipped", |s| s.contains("1 skipped in"));
    assert_eq!(std::fs::read(local.join("r.bin")).unwrap(), mine);
    tmux.keys(&["q"]);
}
