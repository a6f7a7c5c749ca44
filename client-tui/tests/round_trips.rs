//! How many round trips `ferry get -r`, `put -r` and `ls` of a small tree wait for, measured
//! through a proxy that delays every read by a fixed time in each direction: the wall time
//! through the slow proxy minus the wall time through the same proxy with no delay, divided by
//! the round trip time, counts the exchanges that happen one after another. Process start-up,
//! disk and CPU are in both runs and cancel out.
//!
//! The proxy accepts at once, so it charges nothing for the TCP handshake: a real link adds
//! one more round trip per connection opened one after another.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Proxy, TestServer, ferry, ok, p};

/// Delay per direction: a 200 ms round trip, so that a loaded 2-core machine's noise (tens
/// of milliseconds per run at worst) stays well under one round trip.
const ONE_WAY: Duration = Duration::from_millis(100);

/// 20 files in 3 directories.
fn small_tree(root: &Path) {
    for (dir, files) in [("", 8), ("x", 6), ("x/y", 6)] {
        let at = root.join(dir);
        std::fs::create_dir_all(&at).unwrap();
        for i in 0..files {
            std::fs::write(at.join(format!("f{i}.txt")), format!("file {dir} {i}\n")).unwrap();
        }
    }
}

/// Wall time of `ferry args(url_of)` through `proxy`, asserting it succeeds.
fn timed(args: &[String]) -> Duration {
    let started = Instant::now();
    ok(ferry(args));
    started.elapsed()
}

/// Round trips of each command: (get -r, put -r, ls), as (slow - fast) / RTT.
fn measure() -> (f64, f64, f64) {
    let server = TestServer::start();
    small_tree(&server.path("tree"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fast = runtime.block_on(Proxy::start(server.addr, None));
    let slow = runtime.block_on(Proxy::start(server.addr, Some(ONE_WAY)));
    let local = tempfile::tempdir().unwrap();
    small_tree(&local.path().join("src"));
    let rtt = (ONE_WAY * 2).as_secs_f64();
    let mut run = 0;
    let mut trips = |args: &dyn Fn(&Proxy, usize) -> Vec<String>| {
        // The fast run first also warms the page cache and the binary.
        run += 1;
        let quick = timed(&args(&fast, run));
        run += 1;
        let long = timed(&args(&slow, run));
        (long.as_secs_f64() - quick.as_secs_f64()) / rtt
    };
    let dest = local.path().to_owned();
    let get = trips(&|proxy, n| {
        vec![
            "get".into(),
            "-r".into(),
            proxy.url("tree"),
            p(&dest.join(format!("got{n}"))).into(),
        ]
    });
    let src = local.path().join("src");
    let put = trips(&|proxy, n| {
        vec![
            "put".into(),
            "-r".into(),
            p(&src).into(),
            proxy.url(&format!("up{n}")),
        ]
    });
    let ls = trips(&|proxy, _| vec!["ls".into(), proxy.url("tree")]);
    // Runs 1 and 2 were the gets, 3 and 4 the puts: each copied the whole tree.
    for n in [1, 2] {
        let got = common::tree(&local.path().join(format!("got{n}")));
        assert_eq!(got, common::tree(&server.path("tree")));
    }
    for n in [3, 4] {
        let up = common::tree(&server.path(&format!("up{n}")));
        assert_eq!(up, common::tree(&local.path().join("src")));
    }
    (get, put, ls)
}

#[test]
fn a_small_tree_costs_few_round_trips() {
    let (get, put, ls) = measure();
    eprintln!("round trips: get -r {get:.2}, put -r {put:.2}, ls {ls:.2}");
}
