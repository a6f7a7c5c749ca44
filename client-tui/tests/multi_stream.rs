//! One big file over several streams, with the real `ferry` binary and a real server behind a
//! proxy that caps each connection (as a per-flow shaper does): four streams move the file
//! about four times as fast as one, a download killed half-way fetches only the pieces its
//! record lacks, and a file changed on the server while its pieces arrive fails as
//! `file_changed` with nothing under the final name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Proxy, TestServer, bytes, ferry, ferry_running, p, text};

const MIB: usize = 1024 * 1024;
/// Each proxied connection's cap, each way.
const CAP: u64 = 4_000_000;

/// `ferry` run to its end on the blocking pool, so the proxy keeps running; with its time.
async fn timed(args: Vec<String>) -> (Output, Duration) {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let output = ferry(&args);
        (output, started.elapsed())
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn partial_of(dest: &Path) -> PathBuf {
    let name = dest.file_name().unwrap().to_str().unwrap();
    dest.with_file_name(format!(".ferry-part.{name}"))
}

fn record_of(dest: &Path) -> PathBuf {
    let partial = partial_of(dest);
    PathBuf::from(format!("{}.ranges", partial.display()))
}

/// The pieces a record marks done and their size: (done, all, piece bytes).
fn pieces_done(record: &Path) -> Option<(usize, usize, u64)> {
    let text = std::fs::read_to_string(record).ok()?;
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next()?.split_whitespace().collect();
    let piece = head.get(4)?.parse().ok()?;
    // A line per piece: its chaining value once done, `-` before.
    let marks: Vec<&str> = lines.collect();
    let done = marks.iter().filter(|line| **line != "-").count();
    Some((done, marks.len(), piece))
}

/// Waits until the record of `dest` marks at least `count` pieces done.
fn wait_for_pieces(dest: &Path, count: usize, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while pieces_done(&record_of(dest)).is_none_or(|(done, _, _)| done < count) {
        assert!(Instant::now() < deadline, "no {count} pieces arrived");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the download ended before it could be stopped"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `ferry get` of `url` into `dest` over four streams for files from 1 MiB, `extra` flags first.
fn get4(extra: &[&str], url: &str, dest: &Path) -> Vec<String> {
    let mut list = args(&["get"]);
    list.extend(args(extra));
    list.extend(args(&[
        "--streams",
        "4",
        "--streams-from",
        "1MiB",
        url,
        p(dest),
    ]));
    list
}

/// [`get4`] started, once its record marks `pieces` pieces done.
fn started(url: &str, dest: &Path, extra: &[&str], pieces: usize) -> std::process::Child {
    let mut child = ferry_running(&get4(extra, url, dest));
    wait_for_pieces(dest, pieces, &mut child);
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_streams_move_at_least_three_and_a_half_times_what_one_does_on_capped_flows() {
    let server = TestServer::start_shm();
    let data = bytes(48 * MIB, 17);
    std::fs::write(server.path("big.bin"), &data).unwrap();
    let proxy = Proxy::start_capped(server.addr, CAP).await;
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let one = local.path().join("one.bin");
    let four = local.path().join("four.bin");

    let (single, single_time) = timed(args(&[
        "get",
        "--json",
        "--streams",
        "1",
        &proxy.url("big.bin"),
        p(&one),
    ]))
    .await;
    assert!(single.status.success(), "{}", text(&single.stderr));
    let down_one = proxy.total().1;
    let (multi, multi_time) = timed(get4(&["--json"], &proxy.url("big.bin"), &four)).await;
    assert!(multi.status.success(), "{}", text(&multi.stderr));
    let down_four = proxy.total().1 - down_one;

    assert!(
        std::fs::read(&one).unwrap() == data,
        "one stream's copy differs"
    );
    assert!(
        std::fs::read(&four).unwrap() == data,
        "four streams' copy differs"
    );
    assert!(!partial_of(&four).exists() && !record_of(&four).exists());
    // One file, one entry in the report, however many streams carried it.
    let out = text(&multi.stdout);
    let files: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(r#""type":"file""#))
        .collect();
    assert_eq!(files.len(), 1, "{out}");
    assert!(files[0].contains(r#""status":"done""#), "{out}");
    // The pieces were fetched once each.
    assert!(
        down_four < data.len() as u64 + MIB as u64,
        "{down_four} bytes came down for a {} byte file",
        data.len()
    );
    let speedup = single_time.as_secs_f64() / multi_time.as_secs_f64();
    eprintln!(
        "48 MiB at {CAP} B/s per connection: one stream {single_time:?}, four {multi_time:?}: \
         {speedup:.2}x"
    );
    assert!(
        speedup >= 3.5,
        "four streams took {multi_time:?}, one {single_time:?}: only {speedup:.2}x"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_download_fetches_only_the_pieces_its_record_lacks() {
    let server = TestServer::start_shm();
    let data = bytes(32 * MIB, 17);
    std::fs::write(server.path("big.bin"), &data).unwrap();
    let capped = Proxy::start_capped(server.addr, CAP).await;
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let dest = local.path().join("big.bin");
    let url = capped.url("big.bin");
    let (done, all, piece) = {
        let dest = dest.clone();
        tokio::task::spawn_blocking(move || {
            let mut first = started(&url, &dest, &[], 8);
            first.kill().unwrap();
            first.wait().unwrap();
            pieces_done(&record_of(&dest)).unwrap()
        })
        .await
        .unwrap()
    };
    assert!(done >= 8 && done < all, "{done} of {all} pieces done");
    assert!(!dest.exists(), "a half-fetched file took the final name");

    // The same command again, through a proxy that counts what it carries.
    let counting = Proxy::start(server.addr, None).await;
    let (again, _) = timed(get4(&[], &counting.url("big.bin"), &dest)).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        std::fs::read(&dest).unwrap() == data,
        "the resumed copy differs"
    );
    assert!(!partial_of(&dest).exists() && !record_of(&dest).exists());
    let missing = data.len() as u64 - done as u64 * piece;
    let down = counting.total().1;
    assert!(
        down >= missing && down < missing + 64 * 1024,
        "{down} bytes came down where {missing} were missing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_while_its_pieces_arrive_fails_as_file_changed_and_takes_no_name() {
    let server = TestServer::start_shm();
    let data = bytes(32 * MIB, 17);
    let source = server.path("big.bin");
    std::fs::write(&source, &data).unwrap();
    let mtime = std::fs::metadata(&source).unwrap().modified().unwrap();
    let proxy = Proxy::start_capped(server.addr, CAP).await;
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let dest = local.path().join("big.bin");
    let url = proxy.url("big.bin");
    let output = {
        let dest = dest.clone();
        tokio::task::spawn_blocking(move || {
            let child = started(&url, &dest, &["--json"], 4);
            // Other bytes of the same length in the pieces still to come (the first ones have
            // arrived: a copy of the old version is what they and the rest would make), the
            // mtime put back: only the digest of the whole can tell.
            let tail = data.len() - 2 * MIB;
            let other: Vec<u8> = data[tail..].iter().map(|byte| byte ^ 0x5a).collect();
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&source)
                .unwrap();
            std::os::unix::fs::FileExt::write_all_at(&file, &other, tail as u64).unwrap();
            file.set_modified(mtime).unwrap();
            drop(file);
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    };
    let out = text(&output.stdout);
    assert!(!output.status.success(), "{out}");
    assert!(out.contains(r#""code":"file_changed""#), "{out}");
    assert!(!dest.exists(), "bytes of two versions took the final name");
    assert!(!partial_of(&dest).exists() && !record_of(&dest).exists());
}

#[test]
fn an_existing_destination_is_refused_or_replaced_as_the_flags_say() {
    let server = TestServer::start_shm();
    let data = bytes(6 * MIB, 5);
    std::fs::write(server.path("big.bin"), &data).unwrap();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let dest = local.path().join("big.bin");
    std::fs::write(&dest, b"mine").unwrap();

    let kept = ferry(&get4(&["--json"], &server.url("big.bin"), &dest));
    assert!(!kept.status.success());
    assert!(
        text(&kept.stdout).contains(r#""code":"already_exists""#),
        "{}",
        text(&kept.stdout)
    );
    assert_eq!(std::fs::read(&dest).unwrap(), b"mine");
    assert!(!partial_of(&dest).exists() && !record_of(&dest).exists());

    let replaced = ferry(&get4(&["--overwrite"], &server.url("big.bin"), &dest));
    assert!(replaced.status.success(), "{}", text(&replaced.stderr));
    assert!(
        std::fs::read(&dest).unwrap() == data,
        "the replacement differs"
    );
    assert!(!partial_of(&dest).exists() && !record_of(&dest).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_every_stream_and_keeps_the_pieces_for_a_rerun() {
    let server = TestServer::start_shm();
    let data = bytes(24 * MIB, 9);
    std::fs::write(server.path("big.bin"), &data).unwrap();
    let proxy = Proxy::start_capped(server.addr, CAP).await;
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let dest = local.path().join("big.bin");
    let url = proxy.url("big.bin");
    let (out, after) = {
        let dest = dest.clone();
        tokio::task::spawn_blocking(move || {
            let child = started(&url, &dest, &[], 4);
            let out = common::interrupt(child);
            // Stopped: nothing more arrives once it has exited.
            let after = pieces_done(&record_of(&dest)).unwrap();
            std::thread::sleep(Duration::from_millis(500));
            assert_eq!(pieces_done(&record_of(&dest)).unwrap(), after);
            (out, after)
        })
        .await
        .unwrap()
    };
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(after.0 >= 4 && after.0 < after.1, "{after:?}");
    assert!(!dest.exists());

    let again = ferry(&get4(&[], &server.url("big.bin"), &dest));
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        std::fs::read(&dest).unwrap() == data,
        "the resumed copy differs"
    );
    assert!(!partial_of(&dest).exists() && !record_of(&dest).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pieces_of_a_broken_connection_go_to_a_new_one() {
    let server = TestServer::start_shm();
    let data = bytes(24 * MIB, 3);
    std::fs::write(server.path("big.bin"), &data).unwrap();
    // Every connection is cut after 5 MiB: each stream needs a new one at least once.
    let proxy = Proxy::start_cutting(server.addr, 5 * MIB as u64).await;
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let dest = local.path().join("big.bin");
    let (out, _) = timed(get4(&["--json"], &proxy.url("big.bin"), &dest)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::read(&dest).unwrap() == data, "the copy differs");
    assert!(!partial_of(&dest).exists() && !record_of(&dest).exists());
    // At most the piece each cut broke off is fetched twice.
    let down = proxy.total().1;
    assert!(
        down > data.len() as u64 && down < 2 * data.len() as u64,
        "{down}"
    );
}
