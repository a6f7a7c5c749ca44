//! The real `ferry` binary: an upload interrupted half-way (Ctrl+C, or the process killed while
//! its link is still carrying bytes) and at once re-run with `--resume` finishes, whole, even
//! though the server is still taking in the first run's last bytes when the second arrives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Proxy, TestServer, bytes, p, text};

const MIB: usize = 1024 * 1024;

fn ferry(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env_remove("FERRY_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// How the first run is stopped.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// Ctrl+C: the client cancels and exits on its own.
    Interrupt,
    /// The process dies at once; the kernel closes its socket.
    Kill,
}

/// One round: `ferry put` through a slow link, stopped once some bytes are in the partial, then
/// at once `ferry put --resume` straight to the server. Returns the second run's output.
fn interrupt_then_resume(
    server: &TestServer,
    proxy: &Proxy,
    src: &Path,
    name: &str,
    stop: Stop,
) -> Output {
    let partial = server.path(&format!(".ferry-part.{name}"));
    let mut first = ferry(&["put", p(src), &proxy.url(name)]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&partial).map_or(0, |meta| meta.len()) < 4 * MIB as u64 {
        assert!(
            Instant::now() < deadline,
            "{name}: the upload never got going"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "{name}: the first run ended before it could be stopped"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    match stop {
        Stop::Interrupt => {
            let pid = rustix::process::Pid::from_child(&first);
            rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
        }
        Stop::Kill => first.kill().unwrap(),
    }
    let stopped = first.wait_with_output().unwrap();
    assert!(!stopped.status.success(), "{name}: the first run finished");
    assert!(
        !server.path(name).exists(),
        "{name}: the first run finished"
    );
    // At once, as a user pressing Up and Enter does.
    let started = Instant::now();
    let out = ferry(&["put", "--resume", p(src), &server.url(name)])
        .wait_with_output()
        .unwrap();
    // Shown with --nocapture: a resume told `busy` pays the engine's retry wait (500 ms+).
    eprintln!("{name} {stop:?}: resumed in {:?}", started.elapsed());
    out
}

fn rounds(stop: Stop) {
    let server = TestServer::start_shm();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let src = local.path().join("big.bin");
    let data = bytes(48 * MIB, 7);
    std::fs::write(&src, &data).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // About 30 MB/s: the first run is still sending when it is stopped, and the link still
    // holds some of its bytes when the second run starts.
    let proxy = runtime.block_on(Proxy::start(server.addr, Some(Duration::from_millis(2))));
    let mut failed = Vec::new();
    for round in 0..3 {
        let name = format!("big{round}.bin");
        let out = interrupt_then_resume(&server, &proxy, &src, &name, stop);
        if !out.status.success() {
            failed.push(format!("{name}: {}", text(&out.stderr)));
            continue;
        }
        assert!(
            std::fs::read(server.path(&name)).unwrap() == data,
            "{name}: the resumed file differs"
        );
        assert!(!server.path(&format!(".ferry-part.{name}")).exists());
    }
    assert!(failed.is_empty(), "{stop:?}: {failed:?}");
}

#[test]
fn an_upload_stopped_with_ctrl_c_and_resumed_at_once_finishes() {
    rounds(Stop::Interrupt);
}

#[test]
fn an_upload_killed_mid_way_and_resumed_at_once_finishes() {
    rounds(Stop::Kill);
}
