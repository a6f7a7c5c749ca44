//! How many round trips `ferry get -r`, `put -r` and `ls` of a small tree wait for, measured
//! through a proxy that delays every read by a fixed time in each direction: the wall time
//! through the slow proxy minus the wall time through the same proxy with no delay, divided by
//! the round trip time, counts the exchanges that happen one after another. Process start-up,
//! disk and CPU are in both runs and cancel out.
//!
//! The proxy models a long link, not a slow one: every chunk is forwarded the fixed delay after
//! it arrived, whatever else is on the way (so pipelined answers share one delay), and a new
//! connection's first bytes wait one more round trip, as a TCP handshake would make them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{TestServer, ferry, ok, p};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Delay per direction: a 200 ms round trip, so that a loaded 2-core machine's noise (tens
/// of milliseconds per run at worst) stays well under one round trip.
const ONE_WAY: Duration = Duration::from_millis(100);

/// A TCP proxy to `target` that delays each direction by `one_way`.
struct LongLink {
    addr: SocketAddr,
}

impl LongLink {
    async fn start(target: SocketAddr, one_way: Duration) -> LongLink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                client.set_nodelay(true).unwrap();
                server.set_nodelay(true).unwrap();
                // The handshake's round trip: nothing reaches the server before it.
                let open = Instant::now() + one_way * 2;
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(carry(cr, sw, one_way, open));
                tokio::spawn(carry(sr, cw, one_way, Instant::now()));
            }
        });
        LongLink { addr }
    }

    fn url(&self, path: &str) -> String {
        format!("ferry://127.0.0.1:{}/{path}", self.addr.port())
    }
}

/// Forwards what `from` says to `to`, each chunk `one_way` after it arrived (and not before
/// `open`), chunks queued meanwhile so that a burst pays the delay once.
async fn carry(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    one_way: Duration,
    open: Instant,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reading = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            let due = (Instant::now() + one_way).max(open + one_way);
            if tx.send((due, buf[..n].to_vec())).is_err() {
                break;
            }
        }
    };
    let writing = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due.into()).await;
            if to.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reading, writing);
}

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

/// Wall time of `ferry args`, asserting it succeeds.
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
    let fast = runtime.block_on(LongLink::start(server.addr, Duration::ZERO));
    let slow = runtime.block_on(LongLink::start(server.addr, ONE_WAY));
    let local = tempfile::tempdir().unwrap();
    small_tree(&local.path().join("src"));
    let rtt = (ONE_WAY * 2).as_secs_f64();
    let mut run = 0;
    // Each command runs twice each way and the quickest run counts: a run slowed down by the
    // machine's load says nothing about the protocol.
    let mut trips = |args: &dyn Fn(&LongLink, usize) -> Vec<String>| {
        let mut best = |link: &LongLink| {
            (0..2)
                .map(|_| {
                    run += 1;
                    timed(&args(link, run))
                })
                .min()
                .unwrap()
        };
        // The fast runs first also warm the page cache and the binary.
        let quick = best(&fast);
        let long = best(&slow);
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
    // Runs 1 to 4 were the gets, 5 to 8 the puts: each copied the whole tree.
    for n in 1..=4 {
        let got = common::tree(&local.path().join(format!("got{n}")));
        assert_eq!(got, common::tree(&server.path("tree")));
    }
    for n in 5..=8 {
        let up = common::tree(&server.path(&format!("up{n}")));
        assert_eq!(up, common::tree(&local.path().join("src")));
    }
    (get, put, ls)
}

/// Before the round trips were cut (#17) this measured get -r 10.0, put -r 12.0 and ls 4.0;
/// now about 4.0, 5.0 and 2.0. What is left for a tree: the connection; `hello` with the
/// `stat`s; for a download the `summary`s (free space), the identity `stat`s (asked only of a
/// server on this same machine, as here) and the `walk`, sent together, while the workers
/// connect (their `hello` goes with their first requests); for an upload the identity
/// `stat`s, then the new root's `mkdir` with the first round of the other `mkdir`s; then the
/// transfers' own round. The bounds leave about half a round trip (100 ms) for a slow
/// machine: any step that goes back to waiting on its own answer costs a whole one and
/// crosses them.
#[test]
fn a_small_tree_costs_few_round_trips() {
    let (get, put, ls) = measure();
    eprintln!("round trips: get -r {get:.2}, put -r {put:.2}, ls {ls:.2}");
    // 5.0 while a worker waited for its `hello` before its first `get`s.
    assert!(
        get < 4.6,
        "get -r of a small tree took {get:.2} round trips"
    );
    // 6.0 while an upload's new root had a `mkdir` round of its own.
    assert!(
        put < 5.6,
        "put -r of a small tree took {put:.2} round trips"
    );
    // Connect, then `hello`, `stat` and `list` together.
    assert!(ls < 2.9, "ls took {ls:.2} round trips");
}

/// A download sends the first source's `walk` ahead with its screening; when the plan then
/// leaves that source out (here its unsafe name), the next source must still get its own
/// listing, not the first one's: the session notices it is out of step and starts over.
#[test]
fn a_source_left_out_after_its_walk_was_asked_leaves_the_next_intact() {
    let server = TestServer::start();
    small_tree(&server.path("spoof\u{202e}txt.exe"));
    small_tree(&server.path("fine"));
    let local = tempfile::tempdir().unwrap();
    let out = ferry(&[
        "get".to_owned(),
        "-r".to_owned(),
        server.url("spoof%E2%80%AEtxt.exe"),
        server.url("fine"),
        p(local.path()).to_owned(),
    ]);
    let stderr = common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unsafe_name"), "{stderr}");
    assert_eq!(
        common::tree(&local.path().join("fine")),
        common::tree(&server.path("fine"))
    );
    assert!(!local.path().join("spoof\u{202e}txt.exe").exists());
}

/// An upload's new root is made in one round with its subdirectories; when the server refuses
/// it, the item fails once, by the root's name, and the directories below it are not reported
/// one by one (their `mkdir`s went out in the same round and failed with it).
#[test]
fn a_refused_new_upload_root_fails_once() {
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), |config| {
        config.read_only = true;
    });
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("new_root");
    small_tree(&src);
    let out = ferry(&[
        "put".to_owned(),
        "-r".to_owned(),
        p(&src).to_owned(),
        server.url(""),
    ]);
    let stderr = common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("read-only"), "{stderr}");
    let failures: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("new_root"))
        .collect();
    assert_eq!(failures.len(), 1, "{stderr}");
    assert!(!failures[0].contains("/x"), "{stderr}");
    assert_eq!(std::fs::read_dir(server.root.path()).unwrap().count(), 0);
}
