//! The transfer queue that survives a restart, in the real `ferry` in tmux against a real
//! server behind a slow counting proxy: a download caught mid-way, ferry killed with SIGKILL
//! (not a clean quit), started again: the job is offered (or, with `resume_jobs = "always"`,
//! resumed at once) and completes from its partial, verified, with only the missing bytes sent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Proxy;
use tmux::{Desk, Tmux, WAIT, ferry_pid, require_tmux};

mod common;
#[path = "common/tmux.rs"]
mod tmux;

const SIZE: usize = 32 * 1024 * 1024;

/// ferry in `desk` on the server behind `proxy`.
fn ferry(desk: &Desk, proxy: &Proxy) -> Tmux {
    ferry_on(desk, proxy, "tmux.sock")
}

/// [`ferry`] on the tmux socket `socket`: a restart takes a new one, since the killed run's
/// tmux server may still be going away.
fn ferry_on(desk: &Desk, proxy: &Proxy, socket: &str) -> Tmux {
    tmux::start_ferry(
        desk.tmp.path().join(socket),
        &desk.local,
        &[("HOME", &desk.home)],
        &[&proxy.url("")],
        (120, 40),
    )
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
    served: PathBuf,
    /// An upload (else a download).
    upload: bool,
    data: Vec<u8>,
    _server: tokio::runtime::Runtime,
    _proxy_rt: tokio::runtime::Runtime,
    proxy: Proxy,
    partial: u64,
}

impl Killed {
    /// Where the file goes: the local directory, or the served one for an upload.
    fn dest_dir(&self) -> &Path {
        if self.upload {
            &self.served
        } else {
            &self.desk.local
        }
    }

    /// The bytes the proxy has carried the way the file goes.
    fn carried(&self) -> u64 {
        let (up, down) = self.proxy.total();
        if self.upload { up } else { down }
    }
}

fn download_and_kill(config: Option<&str>) -> Killed {
    transfer_and_kill(config, false)
}

/// [`download_and_kill`], or with `upload` the same file uploaded from the local pane.
fn transfer_and_kill(config: Option<&str>, upload: bool) -> Killed {
    let data = ferry_testkit::data::pattern(SIZE, 17);
    let big: &[(&str, &[u8])] = &[("big.bin", &data)];
    let marker: &[(&str, &[u8])] = &[("served.txt", b"s")];
    let (served_files, local_files) = if upload { (marker, big) } else { (big, marker) };
    let Setup {
        desk,
        served,
        _server: server,
        _proxy_rt: proxy_rt,
        proxy,
        tmux,
    } = setup_both(
        served_files,
        local_files,
        Some(Duration::from_millis(5)),
        config.unwrap_or(""),
    );
    if !upload {
        tmux.keys(&["Tab"]);
    }
    download_here(&tmux, "big.bin");
    let dest = if upload {
        served.clone()
    } else {
        desk.local.clone()
    };
    let start = Instant::now();
    let partial = loop {
        match partial_size(&dest) {
            Some(n) if n >= SIZE as u64 / 4 => break n,
            _ => {}
        }
        assert!(
            start.elapsed() < WAIT,
            "the transfer never got a quarter in:\n{}",
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
    let partial = partial_size(&dest).unwrap_or(partial);
    assert!(
        partial < SIZE as u64,
        "the transfer finished before the kill"
    );
    assert!(!dest.join("big.bin").exists());
    let queue = std::fs::read_to_string(desk.home.join(".local/state/ferry/jobs.json")).unwrap();
    assert!(queue.contains("big.bin"), "{queue}");
    Killed {
        desk,
        served,
        upload,
        data,
        _server: server,
        _proxy_rt: proxy_rt,
        proxy,
        partial,
    }
}

/// Waits for the downloaded file to be whole and checks only the missing bytes came again.
fn completes_from_the_partial(killed: &Killed, tmux: &Tmux, before: u64) {
    let file: PathBuf = killed.dest_dir().join("big.bin");
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
    let sent = killed.carried() - before;
    let missing = SIZE as u64 - killed.partial;
    eprintln!(
        "partial at the kill: {} of {SIZE} bytes; sent again: {sent} for {missing} missing",
        killed.partial
    );
    // The resumed job moved what was missing (plus framing and a listing), not the whole. A
    // download continues its partial's bytes exactly; an upload from what the server vouches
    // for of its partial, which may stop short of the bytes written when the client vanished
    // (seen: 7 to 9 of 9 to 10 MiB), so only a restart from zero is ruled out there: more than
    // 1 MiB must not come again.
    let limit = if killed.upload {
        SIZE as u64 - 1024 * 1024
    } else {
        missing + 1024 * 1024
    };
    assert!(
        sent < limit,
        "{sent} bytes came again for {missing} missing: restarted, not resumed"
    );
    assert!(sent >= missing / 2, "{sent} bytes for {missing} missing");
    // A finished job leaves the queue file.
    let queue =
        std::fs::read_to_string(killed.desk.home.join(".local/state/ferry/jobs.json")).unwrap();
    assert!(!queue.contains("big.bin"), "{queue}");
}

/// A download killed mid-way, and ferry started again on it up to the question at start;
/// with the proxy's count of bytes down before the restart.
fn killed_and_started_again() -> (Killed, Tmux, u64) {
    let killed = download_and_kill(None);
    let before = killed.carried();
    let tmux = ferry_on(&killed.desk, &killed.proxy, "again.sock");
    tmux.wait_for("the resume question", |s| {
        s.contains("Resume transfers") && s.contains("big.bin")
    });
    (killed, tmux, before)
}

#[test]
fn a_killed_download_is_offered_at_the_next_start_and_resumes_from_its_partial() {
    let (killed, tmux, before) = killed_and_started_again();
    tmux.keys(&["y"]);
    completes_from_the_partial(&killed, &tmux, before);
}

#[test]
fn resume_jobs_always_resumes_without_asking() {
    let killed = download_and_kill(Some("resume_jobs = \"always\"\n"));
    let before = killed.carried();
    let tmux = ferry_on(&killed.desk, &killed.proxy, "again.sock");
    completes_from_the_partial(&killed, &tmux, before);
    assert!(!tmux.screen().contains("Resume transfers"));
}

/// A served directory with `files`, a server behind a proxy slowed by `delay`, and ferry on
/// it with `config`.
struct Setup {
    desk: Desk,
    served: PathBuf,
    _server: tokio::runtime::Runtime,
    _proxy_rt: tokio::runtime::Runtime,
    proxy: Proxy,
    tmux: Tmux,
}

fn setup(files: &[(&str, &[u8])], delay: Option<Duration>, config: &str) -> Setup {
    setup_both(files, &[], delay, config)
}

/// [`setup`] with `local` files in the local pane too.
fn setup_both(
    files: &[(&str, &[u8])],
    local: &[(&str, &[u8])],
    delay: Option<Duration>,
    config: &str,
) -> Setup {
    require_tmux();
    let desk = Desk::on_shm();
    let served = desk.dir("served");
    for (name, bytes) in files {
        std::fs::write(served.join(name), bytes).unwrap();
    }
    for (name, bytes) in local {
        std::fs::write(desk.local.join(name), bytes).unwrap();
    }
    let dir = desk.home.join(".config/ferry");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let (server, port) = common::start_server(&served, 0);
    let proxy_rt = tokio::runtime::Runtime::new().unwrap();
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let proxy = proxy_rt.block_on(Proxy::start(target, delay));
    let tmux = ferry(&desk, &proxy);
    let last = files.last().unwrap().0;
    tmux.wait_for("the listing", |s| {
        s.contains(last) && s.contains("connected")
    });
    Setup {
        desk,
        served,
        _server: server,
        _proxy_rt: proxy_rt,
        proxy,
        tmux,
    }
}

/// F5 on the entry under the cursor, started from its dialog.
fn download_here(tmux: &Tmux, name: &str) {
    tmux.keys(&["F5"]);
    let title = format!("Copy {name}");
    tmux.wait_for("the copy dialog", |s| s.contains(&title));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the copy dialog closed", |s| !s.contains(&title));
}

fn wait_until(what: &str, tmux: &Tmux, check: impl Fn() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < WAIT * 2,
            "timed out waiting for {what}:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn pause_stops_a_running_download_keeping_its_partial_and_resume_continues_it() {
    let data = ferry_testkit::data::pattern(SIZE, 5);
    let s = setup(&[("big.bin", &data)], Some(Duration::from_millis(5)), "");
    s.tmux.keys(&["Tab"]);
    download_here(&s.tmux, "big.bin");
    wait_until("a quarter in", &s.tmux, || {
        partial_size(&s.desk.local).is_some_and(|n| n >= SIZE as u64 / 4)
    });
    s.tmux.keys(&["t", "C-p"]);
    s.tmux
        .wait_for("the job paused", |sc| sc.contains("paused"));
    // Stopped: the partial stays and stops growing.
    let paused_at = partial_size(&s.desk.local).expect("the partial is kept");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(partial_size(&s.desk.local), Some(paused_at));
    assert!(paused_at < SIZE as u64);
    let before = s.proxy.total().1;
    s.tmux.keys(&["C-p"]);
    let file = s.desk.local.join("big.bin");
    wait_until("the resumed download", &s.tmux, || {
        std::fs::metadata(&file).is_ok_and(|m| m.len() == SIZE as u64)
    });
    assert!(std::fs::read(&file).unwrap() == data, "bytes differ");
    s.tmux
        .wait_for("the job verified", |sc| sc.contains("big.bin ✓"));
    let sent = s.proxy.total().1 - before;
    let missing = SIZE as u64 - paused_at;
    eprintln!("paused at {paused_at}; sent after resume: {sent} for {missing} missing");
    assert!(
        sent < missing + 1024 * 1024,
        "{sent} bytes came again for {missing} missing: restarted, not resumed"
    );
}

/// When a local file was put in place (its inode change time, in nanoseconds).
fn placed_at(path: &Path) -> (i64, i64) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).unwrap();
    (meta.ctime(), meta.ctime_nsec())
}

#[test]
fn with_max_jobs_1_queued_jobs_wait_and_start_in_the_order_moved_to() {
    let big = ferry_testkit::data::pattern(8 * 1024 * 1024, 3);
    let s = setup(
        &[
            ("a.txt", b"first queued\n"),
            ("b.txt", b"second queued\n"),
            ("big.bin", &big),
        ],
        Some(Duration::from_millis(5)),
        "max_jobs = 1\n",
    );
    // Remote pane: a.txt, b.txt, big.bin. big.bin runs; a then b wait.
    s.tmux.keys(&["Tab", "End"]);
    download_here(&s.tmux, "big.bin");
    s.tmux.keys(&["Home"]);
    download_here(&s.tmux, "a.txt");
    s.tmux.keys(&["Down"]);
    download_here(&s.tmux, "b.txt");
    s.tmux
        .wait_for("two queued jobs", |sc| sc.matches("queued").count() >= 2);
    assert!(!s.desk.local.join("a.txt").exists());
    // In the transfer list: b (the last row) moves up above a.
    s.tmux.keys(&["t", "End", "S-Up"]);
    let a = s.desk.local.join("a.txt");
    let b = s.desk.local.join("b.txt");
    wait_until("both queued files", &s.tmux, || a.exists() && b.exists());
    assert_eq!(std::fs::read(&a).unwrap(), b"first queued\n");
    assert_eq!(std::fs::read(&b).unwrap(), b"second queued\n");
    assert!(
        placed_at(&b) < placed_at(&a),
        "b was moved first in the queue, so it starts (and, alone, ends) first"
    );
    assert!(std::fs::read(s.desk.local.join("big.bin")).unwrap() == big);
}

#[test]
fn alt_r_retries_a_failed_download_once_the_cause_is_gone() {
    let s = setup(&[("gone.txt", b"back again\n")], None, "");
    // The file goes from the server after it was listed: the download fails.
    std::fs::rename(s.served.join("gone.txt"), s.served.join(".aside")).unwrap();
    s.tmux.keys(&["Tab"]);
    download_here(&s.tmux, "gone.txt");
    s.tmux.wait_for("the failed job", |sc| sc.contains("#1 ✗"));
    assert!(!s.desk.local.join("gone.txt").exists());
    std::fs::rename(s.served.join(".aside"), s.served.join("gone.txt")).unwrap();
    s.tmux.keys(&["t", "M-r"]);
    let file = s.desk.local.join("gone.txt");
    wait_until("the retried download", &s.tmux, || {
        std::fs::read(&file).is_ok_and(|b| b == b"back again\n")
    });
    s.tmux
        .wait_for("the retry verified", |sc| sc.contains("gone.txt (retry)"));
}

#[test]
fn esc_leaves_the_saved_jobs_paused_in_the_list_and_ctrl_p_picks_one_to_resume() {
    let (killed, tmux, before) = killed_and_started_again();
    tmux.keys(&["Escape"]);
    tmux.wait_for("the job paused in the list", |s| {
        !s.contains("Resume transfers") && s.contains("paused") && s.contains("big.bin")
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !killed.desk.local.join("big.bin").exists(),
        "a paused job waits"
    );
    tmux.keys(&["t", "C-p"]);
    completes_from_the_partial(&killed, &tmux, before);
}

#[test]
fn a_killed_upload_resumes_from_the_server_partial_at_the_next_start() {
    let killed = transfer_and_kill(Some("resume_jobs = \"always\"\n"), true);
    let before = killed.carried();
    let tmux = ferry_on(&killed.desk, &killed.proxy, "again.sock");
    completes_from_the_partial(&killed, &tmux, before);
}
