//! Issue #11, over real sockets: a tree of any depth never crashes the server nor leaks its
//! descriptors, clients that stall a walk never starve another client of descriptors, and
//! expensive work stops once the client that asked for it has hung up.

// Helpers run inside tests: a failed step should stop the test with its error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Client, Server, code};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// Builds a chain of `depth` directories under `root` (`top/d/d/...`), one handle at a time
/// as a writer of the tree could over many renames, so no host path limit applies; the
/// deepest one holds `bottom.txt`.
fn chain(root: &Path, top: &str, depth: usize) {
    use cap_std::fs::Dir;
    let mut dir = Dir::open_ambient_dir(root, cap_std::ambient_authority()).unwrap();
    dir.create_dir(top).unwrap();
    dir = dir.open_dir(top).unwrap();
    for _ in 1..depth {
        dir.create_dir("d").unwrap();
        dir = dir.open_dir("d").unwrap();
    }
    dir.write("bottom.txt", b"deep").unwrap();
}

/// `d/d/.../d` with `levels` names.
fn ds(levels: usize) -> String {
    vec!["d"; levels].join("/")
}

/// A walk's batches until the last one or an error; the error reply when there is one.
async fn walk(client: &mut Client, path: &str) -> Result<(usize, u64), Value> {
    client
        .list_all("walk", path)
        .await
        .map(|(entries, skipped, _)| (entries.len(), skipped))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_deeper_than_any_walk_never_crashes_the_server_and_is_removed_whole() {
    const DEPTH: usize = 16_000;
    let mut server = Server::start_on_shm(|config| {
        // A sweep every second, over the deep tree too.
        config.partial_expiry = Some(Duration::from_secs(4));
    })
    .await;
    chain(&server.root, "deep", DEPTH);
    std::fs::write(server.path("x.txt"), b"x").unwrap();
    let mut client = server.client().await;

    // The attacker's step: a short chain, then the deep one renamed to its bottom.
    let short = format!("b/{}", ds(100));
    let made = client
        .request(json!({"op": "mkdir", "path": short, "parents": true}))
        .await;
    assert_eq!(made["ok"], true, "{made}");
    let moved = client
        .request(json!({"op": "rename", "path": "deep", "to": format!("{short}/deep")}))
        .await;
    assert_eq!(moved["ok"], true, "{moved}");
    // A move into the depths, as deep as a path may name.
    let into = format!("{short}/deep/{}/x.txt", ds(1500));
    let moved = client
        .request(json!({"op": "rename", "path": "x.txt", "to": into}))
        .await;
    assert_eq!(moved["ok"], true, "{moved}");

    for path in ["", "b"] {
        let (entries, skipped) = walk(&mut client, path).await.unwrap();
        assert!(entries > 128 && skipped >= 1, "{path}: {entries} {skipped}");
        let summary = client.request(json!({"op": "summary", "path": path})).await;
        assert_eq!(summary["ok"], true, "{summary}");
        assert!(summary["dirs"].as_u64().unwrap() > 128, "{summary}");
    }
    // Sweeps run meanwhile; give one more a chance on the whole tree.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let removed = client
        .request(json!({"op": "remove", "path": "b", "recursive": true}))
        .await;
    assert_eq!(removed["ok"], true, "{removed}");
    assert!(
        !server.path("b").exists(),
        "the deep tree is gone, all of it"
    );

    let mut other = server.client().await;
    let stat = other.request(json!({"op": "stat", "path": ""})).await;
    assert_eq!(stat["ok"], true, "{stat}");
    let listed = other.list_all("list", "").await.unwrap();
    assert!(listed.0.is_empty(), "{:?}", listed.0);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recursive_remove_takes_wide_deep_trees_whatever_names_they_hold() {
    let server = Server::start_on_shm(|_| {}).await;
    // Branches at many depths, files beside them, and the names a remove moves deep
    // directories to already taken, by a file and by directories full and empty.
    let top = server.path("tree");
    let mut at = top.clone();
    for level in 0..60 {
        std::fs::create_dir_all(at.join(format!("side{level}/a/b"))).unwrap();
        std::fs::write(at.join(format!("side{level}/a/b/f")), b"f").unwrap();
        std::fs::write(at.join(format!("file{level}")), b"x").unwrap();
        at.push("d");
    }
    std::fs::create_dir_all(&at).unwrap();
    std::fs::write(top.join(".ferry-removing.1"), b"taken").unwrap();
    std::fs::create_dir_all(top.join(".ferry-removing.2/full")).unwrap();
    std::fs::create_dir_all(top.join(".ferry-removing.3")).unwrap();
    std::os::unix::fs::symlink(&server.outside, top.join("d/d/out")).unwrap();
    let before = server.outside_snapshot();

    let mut client = server.client().await;
    let removed = client
        .request(json!({"op": "remove", "path": "tree", "recursive": true}))
        .await;
    assert_eq!(removed["ok"], true, "{removed}");
    assert!(!top.exists());
    assert_eq!(
        server.outside_snapshot(),
        before,
        "nothing outside the root is touched"
    );
}

/// The real binary, run by `prlimit` when `nofile` is given; stderr lines arrive on the
/// channel. Killed when dropped.
struct Binary {
    child: Child,
    addr: std::net::SocketAddr,
    log: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Binary {
    fn start(root: &Path, nofile: Option<u64>, extra: &[&str]) -> Self {
        let exe = env!("CARGO_BIN_EXE_ferry-server");
        let mut command = match nofile {
            Some(limit) => {
                let mut command = Command::new("prlimit");
                command
                    .arg(format!("--nofile={limit}:{limit}"))
                    .arg("--")
                    .arg(exe);
                command
            }
            None => Command::new(exe),
        };
        let mut child = command
            .arg("--root")
            .arg(root)
            .args(["--listen", "127.0.0.1:0", "--partial-expiry", "never"])
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut binary = Self {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            log,
            seen: Vec::new(),
        };
        let serving = binary.find(|line| line.contains("serving") && line.contains("addr="));
        binary.addr = serving
            .split_whitespace()
            .find_map(|word| word.strip_prefix("addr="))
            .unwrap()
            .parse()
            .unwrap();
        binary
    }

    /// The first log line that `matches`, logged before or after this call.
    fn find(&mut self, matches: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.seen.iter().find(|line| matches(line)) {
            return line.clone();
        }
        let deadline = Instant::now() + common::STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.log.recv_timeout(left).expect("the log line in time");
            self.seen.push(line.clone());
            if matches(&line) {
                return line;
            }
        }
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).map_or(0, Iterator::count)
    }

    /// User plus system CPU time the process has used so far.
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // /proc counts in USER_HZ, which Linux fixes at 100 per second.
        Duration::from_millis(ticks * 10)
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `value` has not changed for `quiet`, failing after 60 s; returns the value.
async fn settled<T: PartialEq + Copy + std::fmt::Debug>(
    what: &str,
    quiet: Duration,
    value: impl Fn() -> T,
) -> T {
    let start = Instant::now();
    let mut last = value();
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = value();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return now;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} never settled: {last:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_walkers_never_starve_another_client_of_descriptors() {
    const LIMIT: u64 = 1024;
    const WALKERS: usize = 12;
    let base = tempfile::tempdir_in("/dev/shm").unwrap();
    let root = base.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("wanted.txt"), b"the file someone else needs").unwrap();
    // 127 levels of long names (deep enough to pin one descriptor pair per level) and, at
    // the bottom, megabytes of entries so a walker that is never read stalls down there.
    let name = "n".repeat(20);
    let mut deep = root.join("tree");
    for _ in 0..127 {
        deep.push(&name);
    }
    std::fs::create_dir_all(&deep).unwrap();
    for i in 0..6000 {
        std::fs::write(deep.join(format!("{i:05}{}", "f".repeat(200))), b"").unwrap();
    }
    let mut server = Binary::start(&root, Some(LIMIT), &["--max-connections", "32"]);

    let mut walkers = Vec::new();
    for _ in 0..WALKERS {
        let mut walker = Client::connect(server.addr).await;
        walker.hello().await;
        walker
            .send_json(&json!({"op": "walk", "path": "tree"}))
            .await;
        walkers.push(walker);
    }
    let pinned = settled("open descriptors", Duration::from_secs(2), || {
        server.open_files()
    })
    .await;
    assert!(pinned > 2 * 128, "the walkers hold descriptors: {pinned}");
    assert!(server.alive());

    let mut other = Client::connect(server.addr).await;
    other.hello().await;
    let (_, data, trailer) = other.get("wanted.txt", 0).await.unwrap();
    assert_eq!(data, b"the file someone else needs");
    assert_eq!(trailer["ok"], true, "{trailer}");
    // A walk that cannot have its descriptors now is told to come back, never `io`.
    match walk(&mut other, "tree").await {
        Ok((entries, skipped)) => assert_eq!(
            (entries, skipped),
            (127 + 6000, 0),
            "with {pinned} descriptors open"
        ),
        Err(err) => assert_eq!(code(&err), "busy", "{err}"),
    }
    let listed = other.list_all("list", "").await.unwrap();
    assert_eq!(listed.0.len(), 2);
    drop(walkers);
    // Once the walkers are gone, a walk has room again.
    let start = Instant::now();
    loop {
        match walk(&mut other, "tree").await {
            Ok((entries, skipped)) => {
                assert_eq!((entries, skipped), (127 + 6000, 0));
                break;
            }
            Err(err) => assert_eq!(code(&err), "busy", "{err}"),
        }
        assert!(start.elapsed() < Duration::from_secs(60), "walks stay busy");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(server.alive());
    let budget = server.find(|line| line.contains("open file limit"));
    assert!(budget.contains(&format!("limit={LIMIT}")), "{budget}");
}

/// Sends `lines` after a hello whose answer is read, then closes the socket without reading
/// anything more, as a client that gave up would.
async fn pipeline_and_hang_up(addr: std::net::SocketAddr, lines: &[Value]) {
    let mut client = Client::connect(addr).await;
    client.hello().await;
    let mut burst = Vec::new();
    for line in lines {
        burst.extend(serde_json::to_vec(line).unwrap());
        burst.push(b'\n');
    }
    client.writer.write_all(&burst).await.unwrap();
    drop(client);
}

/// CPU the server still burns once `hang_up` has run: what it used from the hang-up until it
/// went quiet must stay under `bound`.
async fn cpu_after(
    server: &Binary,
    bound: Duration,
    hang_up: impl std::future::Future<Output = ()>,
) {
    let before = server.cpu();
    hang_up.await;
    let quiet = settled("CPU time", Duration::from_secs(2), || server.cpu()).await;
    let spent = quiet - before;
    eprintln!("CPU from the hang-up until quiet: {spent:?} (bound {bound:?})");
    assert!(
        spent < bound,
        "the server worked {spent:?} for a client that was gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_summaries_stop_when_their_client_hangs_up() {
    let base = tempfile::tempdir_in("/dev/shm").unwrap();
    let root = base.path().join("root");
    for d in 0..40 {
        let dir = root.join(format!("dir{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..500 {
            std::fs::write(dir.join(format!("f{f}")), b"").unwrap();
        }
    }
    let mut server = Binary::start(&root, None, &[]);
    // What one summary costs, measured, so the bound means something on any machine.
    let mut probe = Client::connect(server.addr).await;
    probe.hello().await;
    let before = server.cpu();
    for _ in 0..20 {
        let summary = probe.request(json!({"op": "summary", "path": ""})).await;
        assert_eq!(summary["files"], 20_000, "{summary}");
    }
    let twenty = server.cpu() - before;
    drop(probe);

    let lines = vec![json!({"op": "summary", "path": ""}); 1000];
    // 1,000 cost 50 times what twenty did; a few must be all.
    cpu_after(
        &server,
        (twenty / 4).max(Duration::from_millis(500)),
        pipeline_and_hang_up(server.addr, &lines),
    )
    .await;
    assert!(server.alive());
    let mut other = Client::connect(server.addr).await;
    other.hello().await;
    let stat = other.request(json!({"op": "stat", "path": ""})).await;
    assert_eq!(stat["ok"], true, "{stat}");
}

/// The size of `big.bin` in [`root_with_big_bin`].
const BIG_SIZE: u64 = 2 * 1024 * 1024 * 1024;

/// A root on tmpfs holding `big.bin`, a sparse file of [`BIG_SIZE`]: it costs no memory, and
/// hashing it still reads 2 GiB of zeros.
fn root_with_big_bin() -> (tempfile::TempDir, std::path::PathBuf) {
    let base = tempfile::tempdir_in("/dev/shm").unwrap();
    let root = base.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::File::create(root.join("big.bin"))
        .unwrap()
        .set_len(BIG_SIZE)
        .unwrap();
    (base, root)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gets_at_the_end_of_a_big_file_stop_hashing_when_their_client_hangs_up() {
    let (_base, root) = root_with_big_bin();
    let server = Binary::start(&root, None, &[]);
    let mut probe = Client::connect(server.addr).await;
    probe.hello().await;
    let before = server.cpu();
    let (reply, _, trailer) = probe.get("big.bin", BIG_SIZE).await.unwrap();
    assert_eq!(
        (reply["size"].as_u64(), trailer["ok"].as_bool()),
        (Some(0), Some(true))
    );
    let one = server.cpu() - before;
    drop(probe);

    let lines = vec![json!({"op": "get", "path": "big.bin", "offset": BIG_SIZE}); 10];
    // Ten cost ten times one; the one under way when the client left may finish, and a
    // little of the next.
    cpu_after(&server, one * 2, pipeline_and_hang_up(server.addr, &lines)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_checks_stop_hashing_when_their_client_hangs_up() {
    // The siblings of a resumed get: a remove that must check a digest (a move's source), a
    // partial's length and digest, and a resumed put all hash a whole file.
    let (_base, root) = root_with_big_bin();
    // An open server's partial of big2.bin: the shared owner's name.
    std::fs::File::create(root.join(".ferry-part.big2.bin"))
        .unwrap()
        .set_len(BIG_SIZE)
        .unwrap();
    let server = Binary::start(&root, None, &[]);
    let wrong = format!("blake3:{}", "0".repeat(64));
    let remove = json!({"op": "remove", "path": "big.bin", "if_digest": wrong});
    let partial = json!({"op": "partial", "path": "big2.bin"});

    let mut probe = Client::connect(server.addr).await;
    probe.hello().await;
    let before = server.cpu();
    let reply = probe.request(remove.clone()).await;
    assert_eq!(code(&reply), "file_changed", "{reply}");
    let one = server.cpu() - before;
    let reply = probe.request(partial.clone()).await;
    assert_eq!(reply["length"], BIG_SIZE, "{reply}");
    drop(probe);
    assert!(root.join("big.bin").exists(), "a changed source is kept");

    cpu_after(
        &server,
        one * 2,
        pipeline_and_hang_up(server.addr, &vec![remove; 10]),
    )
    .await;
    cpu_after(
        &server,
        one * 2,
        pipeline_and_hang_up(server.addr, &vec![partial; 10]),
    )
    .await;
    // A resume hashes the partial up to its offset first.
    let resume = json!({"op": "put", "path": "big2.bin", "offset": BIG_SIZE, "size": 0});
    cpu_after(
        &server,
        one * 2,
        pipeline_and_hang_up(server.addr, &vec![resume; 10]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_spends_its_work_budget_then_waits_and_others_do_not() {
    // About 10,000 units a summary: three fit in the burst, then two a second.
    let server = Server::start_on_shm(|config| {
        config.work_burst = 30_000;
        config.work_rate = 20_000;
    })
    .await;
    for d in 0..10 {
        let dir = server.path(&format!("dir{d}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..999 {
            std::fs::write(dir.join(format!("f{f}")), b"").unwrap();
        }
    }
    let mut greedy = server.client().await;
    let start = Instant::now();
    for _ in 0..12 {
        let summary = greedy.request(json!({"op": "summary", "path": ""})).await;
        assert_eq!(summary["files"], 9990, "{summary}");
    }
    let greedy_took = start.elapsed();
    // 120,000 units, 30,000 at once and the rest at 20,000 a second: at least 4 s of waiting
    // before the last one may start.
    assert!(
        greedy_took >= Duration::from_millis(3800),
        "{greedy_took:?}"
    );

    // Its budget is spent; another connection's is whole: a summary and a walk, 20,000
    // units, go at once (shared, they would wait a second at least).
    let mut other = server.client().await;
    let start = Instant::now();
    let summary = other.request(json!({"op": "summary", "path": ""})).await;
    assert_eq!(summary["files"], 9990, "{summary}");
    let (entries, _) = walk(&mut other, "").await.unwrap();
    assert_eq!(entries, 10_000);
    let other_took = start.elapsed();
    assert!(
        other_took < greedy_took / 4,
        "{other_took:?} against {greedy_took:?}"
    );
}
