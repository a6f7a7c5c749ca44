//! The transfer queue that survives a restart, in the real `ferry` in tmux against a real
//! server behind a slow counting proxy: a download caught mid-way, ferry killed with SIGKILL
//! (not a clean quit), started again: the job is offered (or, with `resume_jobs = "always"`,
//! resumed at once) and completes from its partial, verified, with only the missing bytes sent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Proxy;
use tmux::{Desk, Tmux, WAIT, require_tmux};

mod common;
#[path = "common/tmux.rs"]
mod tmux;

const SIZE: usize = 32 * 1024 * 1024;

/// ferry in `desk` on the server behind `proxy`.
fn ferry(desk: &Desk, proxy: &Proxy) -> Tmux {
    tmux::start_ferry(
        desk.tmp.path().join("tmux.sock"),
        &desk.local,
        &[("HOME", &desk.home)],
        &[&proxy.url("")],
        (120, 40),
    )
}

/// The ferry process under the tmux pane's shell.
fn ferry_pid(tmux: &Tmux) -> u32 {
    let out = tmux.run(&["list-panes", "-t", "t", "-F", "#{pane_pid}"]);
    let shell: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
    children
        .split_whitespace()
        .map(|p| p.parse::<u32>().unwrap())
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "ferry")
        })
        .expect("ferry runs in the pane")
}

/// The size of the download's hidden partial in `dir`, if there is one.
fn partial_size(dir: &Path) -> Option<u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with(".ferry-part"))
        .and_then(|e| e.metadata().ok())
        .map(|m| m.len())
}

/// A served 32 MiB file, a slow proxy in front of the server, ferry downloading the file and
/// killed with SIGKILL once a quarter of it is in the partial. Returns what the rest of the
/// test needs, with the partial's size at the kill.
struct Killed {
    desk: Desk,
    data: Vec<u8>,
    _server: tokio::runtime::Runtime,
    _proxy_rt: tokio::runtime::Runtime,
    proxy: Proxy,
    partial: u64,
}

fn download_and_kill(config: Option<&str>) -> Killed {
    require_tmux();
    let desk = Desk::on_shm();
    let served = desk.dir("served");
    let data = ferry_testkit::data::pattern(SIZE, 17);
    std::fs::write(served.join("big.bin"), &data).unwrap();
    if let Some(config) = config {
        let dir = desk.home.join(".config/ferry");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), config).unwrap();
    }
    let (server, port) = common::start_server(&served, 0);
    let proxy_rt = tokio::runtime::Runtime::new().unwrap();
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let proxy = proxy_rt.block_on(Proxy::start(target, Some(Duration::from_millis(5))));
    let tmux = ferry(&desk, &proxy);
    tmux.wait_for("the listing", |s| {
        s.contains("big.bin") && s.contains("connected")
    });
    tmux.keys(&["Tab", "F5"]);
    tmux.wait_for("the copy dialog", |s| s.contains("Copy"));
    tmux.keys(&["Enter"]);
    let start = Instant::now();
    let partial = loop {
        match partial_size(&desk.local) {
            Some(n) if n >= SIZE as u64 / 4 => break n,
            _ => {}
        }
        assert!(
            start.elapsed() < WAIT,
            "the download never got a quarter in:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let pid = ferry_pid(&tmux);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    tmux.wait_for("ferry killed", |s| s.contains("EXIT=137"));
    drop(tmux);
    let partial = partial_size(&desk.local).unwrap_or(partial);
    assert!(
        partial < SIZE as u64,
        "the download finished before the kill"
    );
    assert!(!desk.local.join("big.bin").exists());
    let queue = std::fs::read_to_string(desk.home.join(".local/state/ferry/jobs.json")).unwrap();
    assert!(queue.contains("big.bin"), "{queue}");
    Killed {
        desk,
        data,
        _server: server,
        _proxy_rt: proxy_rt,
        proxy,
        partial,
    }
}

/// Waits for the downloaded file to be whole and checks only the missing bytes came again.
fn completes_from_the_partial(killed: &Killed, tmux: &Tmux, before: u64) {
    let file: PathBuf = killed.desk.local.join("big.bin");
    let start = Instant::now();
    while std::fs::metadata(&file).map(|m| m.len()).ok() != Some(SIZE as u64) {
        assert!(
            start.elapsed() < WAIT * 2,
            "the resumed download never completed:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(std::fs::read(&file).unwrap() == killed.data, "bytes differ");
    tmux.wait_for("the job verified", |s| s.contains("big.bin ✓"));
    let sent = killed.proxy.total().1 - before;
    let missing = SIZE as u64 - killed.partial;
    eprintln!(
        "partial at the kill: {} of {SIZE} bytes; sent again: {sent} for {missing} missing",
        killed.partial
    );
    // The resumed job moved what was missing (plus framing and a listing), not the whole.
    assert!(
        sent < missing + 1024 * 1024,
        "{sent} bytes came again for {missing} missing: restarted, not resumed"
    );
    assert!(sent >= missing / 2, "{sent} bytes for {missing} missing");
    // A finished job leaves the queue file.
    let queue =
        std::fs::read_to_string(killed.desk.home.join(".local/state/ferry/jobs.json")).unwrap();
    assert!(!queue.contains("big.bin"), "{queue}");
}

#[test]
fn a_killed_download_is_offered_at_the_next_start_and_resumes_from_its_partial() {
    let killed = download_and_kill(None);
    let before = killed.proxy.total().1;
    let tmux = ferry(&killed.desk, &killed.proxy);
    tmux.wait_for("the resume question", |s| {
        s.contains("Resume transfers") && s.contains("big.bin")
    });
    tmux.keys(&["y"]);
    completes_from_the_partial(&killed, &tmux, before);
}

#[test]
fn resume_jobs_always_resumes_without_asking() {
    let killed = download_and_kill(Some("resume_jobs = \"always\"\n"));
    let before = killed.proxy.total().1;
    let tmux = ferry(&killed.desk, &killed.proxy);
    completes_from_the_partial(&killed, &tmux, before);
    assert!(!tmux.screen().contains("Resume transfers"));
}
