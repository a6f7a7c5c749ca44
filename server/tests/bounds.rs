//! What one connection can cost the server, measured against the real `ferry-server` binary:
//! N connections (1, 10, 100) each drive the worst request pattern for one resource over real
//! sockets, and the server's `/proc/PID` figures (resident memory, open descriptors, CPU time)
//! give the cost per connection as the slope between N and the baseline. Each figure is
//! checked against the bound SECURITY.md documents ("Per connection"), and the table printed.
//!
//! The measurement is ignored by default (about a minute, and hundreds of MiB of tmpfs); run
//! it with `cargo test -p ferry-server --release --test bounds -- --ignored --nocapture`
//! (`FERRY_BOUNDS_ONLY=Walk` for one pattern). The failed-login check at the end runs always.
// A failed setup step should stop the test with its error, which is what `unwrap` does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_testkit::bin;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KIB: f64 = 1024.0;
const MIB: f64 = 1024.0 * 1024.0;

/// Documented bounds (SECURITY.md, "Limits", "Per connection"), from the server's constants:
/// the read buffer (`READ_CAPACITY` 512 KiB) plus a header being read (64 KiB) plus the reply
/// buffer (`WRITE_CAPACITY` 64 KiB).
const FIXED: f64 = 640.0 * KIB;
/// A stalled download: `STREAM_DEPTH` + 2 pieces of 512 KiB, and the 1 MiB prefix buffer of a
/// `get` with an offset.
const GET: f64 = 6.0 * 512.0 * KIB + MIB;
/// An upload in flight: `WRITE_DEPTH` + 1 buffers of 512 KiB.
const PUT: f64 = 4.0 * 512.0 * KIB;
/// A stalled walk: 129 levels of two escaped path prefixes of at most 16 KiB and a directory
/// reader, plus the batch being built and `STREAM_DEPTH` + 2 batch lines of 64 KiB.
const WALK: f64 = 129.0 * (2.0 * 16.0 * KIB + 4.0 * KIB) + 7.0 * 64.0 * KIB;
/// Descriptors: the socket, plus a `get`'s file, a `put`'s partial and directory, or a walk's
/// 3 per level for 129 levels.
const FDS_GET: f64 = 2.0;
const FDS_PUT: f64 = 3.0;
const FDS_WALK: f64 = 1.0 + 3.0 * 129.0;
/// Blocking threads a connection keeps busy: one producer or disk writer (a little over one
/// in the slope, since the runtime keeps some idle pool threads for a while).
const THREADS: f64 = 1.1;
/// CPU per work unit, documented ceilings: a directory entry walked, 1/128 of a MiB hashed.
const CPU_PER_ENTRY: f64 = 10e-6;
const CPU_PER_HASH_UNIT: f64 = 20e-6;
/// Failed `hello`s before a connection is closed.
const FAILED_HELLOS: usize = 3;
/// Memory of one argon2id verification: 19,456 KiB of blocks.
const ARGON2_MEMORY: f64 = 19_456.0 * KIB;
/// CPU of one argon2id verification (19 MiB), documented ceiling.
const CPU_PER_LOGIN: f64 = 0.2;
/// The default work budget: burst and units per second.
const WORK_BURST: f64 = 10_000_000.0;
const WORK_RATE: f64 = 200_000.0;

/// Levels of the deep tree below `deep`: one more than a walk enters, so it holds the most.
const LEVELS: usize = 129;
/// Bytes of each level's name: control bytes, escaped to 4 characters each on the wire, as
/// long as the 4,096-byte path limit allows at this depth.
const LEVEL_NAME: usize = 26;
/// Files at the bottom of the deep tree, each a big entry: the answer is many MiB, so the
/// walk stalls with its whole stack open.
const BOTTOM_FILES: usize = 1500;
/// Entries of the wide directory the CPU pattern walks.
const WIDE: usize = 20_000;
/// The big file downloads and offsets read.
const BIG: usize = 64 * 1024 * 1024;
/// The offset of the stalled `get`s: a prefix of 2 MiB is hashed, touching the whole 1 MiB
/// prefix buffer.
const OFFSET: usize = 2 * 1024 * 1024;

/// The served tree: a big file, a deep tree, a wide directory; on tmpfs.
struct Tree {
    _base: tempfile::TempDir,
    root: PathBuf,
    /// A users file with one account, `ann`, for the login pattern.
    users: PathBuf,
}

/// Adds `ann` (password `right-password`, root `root`) to the users file `users` with the
/// binary's own `hash-password`.
fn add_ann(users: &Path, root: &Path) {
    let mut hash = Command::new(env!("CARGO_BIN_EXE_ferry-server"))
        .args(["hash-password", "--user", "ann", "--users"])
        .arg(users)
        .arg("--root")
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut hash.stdin.take().unwrap(), b"right-password\n").unwrap();
    assert!(hash.wait().unwrap().success(), "hash-password failed");
}

fn build_tree() -> Tree {
    let base = tempfile::tempdir_in("/dev/shm").unwrap();
    let root = base.path().canonicalize().unwrap().join("root");
    std::fs::create_dir(&root).unwrap();
    let mut big = vec![0u8; BIG];
    for (i, byte) in big.iter_mut().enumerate() {
        *byte = (i * 7 % 251) as u8;
    }
    std::fs::write(root.join("big"), &big).unwrap();
    // Each level's name is unique by its last byte, so no two levels look alike.
    let mut dir = root.join("deep");
    std::fs::create_dir(&dir).unwrap();
    for level in 0..LEVELS - 1 {
        let mut name = vec![1u8; LEVEL_NAME];
        name[LEVEL_NAME - 1] = b'a' + (level % 26) as u8;
        dir.push(std::ffi::OsStr::from_bytes(&name));
        std::fs::create_dir(&dir).unwrap();
    }
    for i in 0..BOTTOM_FILES {
        let mut name = vec![2u8; 16];
        name.extend_from_slice(format!("{i:05}").as_bytes());
        std::fs::write(dir.join(std::ffi::OsStr::from_bytes(&name)), b"").unwrap();
    }
    let wide = root.join("wide");
    std::fs::create_dir(&wide).unwrap();
    for i in 0..WIDE {
        std::fs::write(wide.join(format!("entry-{i:06}")), b"").unwrap();
    }
    let users = base.path().join("users");
    add_ann(&users, &root);
    Tree {
        _base: base,
        root,
        users,
    }
}

/// The binary, serving `root` with room for the test's connections from one address.
struct ServerProcess {
    child: Child,
    pid: u32,
    addr: String,
}

impl ServerProcess {
    /// With `users`, logins take a password, and failed ones are not rate-limited beyond one
    /// argon2 hash at a time: the pattern measures what an attempt costs, not the rates.
    fn start(root: &Path, users: Option<&Path>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferry-server"));
        if let Some(users) = users {
            command.arg("--users").arg(users).args([
                "--address-login-interval",
                "1ms",
                "--server-login-interval",
                "1ms",
            ]);
        }
        let (child, mut stderr) = bin::spawn_logging(
            command
                .arg("--root")
                .arg(root)
                .args(["--listen", "127.0.0.1:0", "--max-per-address", "256"])
                .args(["--stall-timeout", "10min", "--idle-timeout", "10min"])
                .args(["--partial-expiry", "never", "--max-unauthenticated", "256"]),
        );
        let addr = bin::wait_serving(&mut stderr);
        // Keep draining its log so it never blocks on a full pipe.
        bin::drain(stderr);
        let pid = child.id();
        Self { child, pid, addr }
    }

    fn status_kib(&self, key: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap()
    }

    fn rss(&self) -> f64 {
        self.status_kib("VmRSS:") * KIB
    }

    fn hwm(&self) -> f64 {
        self.status_kib("VmHWM:") * KIB
    }

    fn threads(&self) -> f64 {
        self.status_kib("Threads:")
    }

    fn fds(&self) -> f64 {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .unwrap()
            .count() as f64
    }

    /// User plus system CPU time, in seconds.
    fn cpu(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / 100.0
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .write_all(b"{\"op\":\"hello\",\"version\":1}\n")
        .await
        .unwrap();
    let mut reader = tokio::io::BufReader::new(&mut stream);
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    assert!(line.contains("\"ok\":true"), "hello: {line}");
    stream
}

/// The patterns, each the worst one connection can do to one resource.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pattern {
    /// Logged in, nothing asked.
    Idle,
    /// 600 KiB of pipelined `get`s at an offset of a 64 MiB file, no reply ever read.
    Get,
    /// A 64 MiB `put` whose first 16 MiB are sent, then nothing.
    Put,
    /// A walk of a tree 129 levels deep with long escaped names, no reply ever read.
    Walk,
    /// A walk of 20,000 entries, read to the end.
    CpuWalk,
    /// A `get` at an offset of 64 MiB: the whole prefix hashed (8,192 units), reply read.
    CpuHash,
    /// Three `hello`s with a wrong password (each one argon2 hash), then the close.
    Login,
}

/// Drives `pattern` on one connection; returns what keeps it open (the socket and any writer
/// still pushing).
async fn drive(addr: String, pattern: Pattern, index: usize) -> Option<Held> {
    if pattern == Pattern::Login {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let mut reader = tokio::io::BufReader::new(&mut stream);
        for _ in 0..FAILED_HELLOS {
            reader
                .get_mut()
                .write_all(
                    b"{\"op\":\"hello\",\"version\":1,\"user\":\"ann\",\"password\":\"wrong\"}\n",
                )
                .await
                .unwrap();
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            assert!(line.contains("unauthorized"), "wrong password: {line}");
        }
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut rest));
        assert!(
            closed.await.is_ok(),
            "closed after {FAILED_HELLOS} failed hellos"
        );
        return None;
    }
    let mut stream = connect(&addr).await;
    match pattern {
        Pattern::Idle => Some(Held::Socket(stream)),
        Pattern::Get => {
            let line = format!("{{\"op\":\"get\",\"path\":\"big\",\"offset\":{OFFSET}}}\n");
            let burst = line.repeat(600 * 1024 / line.len());
            let writer = tokio::spawn(async move {
                // Blocks once the server stops reading: it holds 512 KiB of requests at most.
                let _ = stream.write_all(burst.as_bytes()).await;
                std::future::pending::<()>().await;
            });
            Some(Held::Task(writer))
        }
        Pattern::Put => {
            let header = format!(
                "{{\"op\":\"put\",\"path\":\"up-{index}\",\"size\":{BIG},\"overwrite\":true}}\n"
            );
            stream.write_all(header.as_bytes()).await.unwrap();
            let chunk = vec![7u8; 1024 * 1024];
            for _ in 0..16 {
                stream.write_all(&chunk).await.unwrap();
            }
            Some(Held::Socket(stream))
        }
        Pattern::Walk => {
            stream
                .write_all(b"{\"op\":\"walk\",\"path\":\"deep\"}\n")
                .await
                .unwrap();
            Some(Held::Socket(stream))
        }
        Pattern::Login => None,
        Pattern::CpuWalk | Pattern::CpuHash => {
            let request = if pattern == Pattern::CpuWalk {
                "{\"op\":\"walk\",\"path\":\"wide\"}\n".to_owned()
            } else {
                format!("{{\"op\":\"get\",\"path\":\"big\",\"offset\":{BIG}}}\n")
            };
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut reader = tokio::io::BufReader::new(&mut stream);
            loop {
                let mut line = String::new();
                assert!(reader.read_line(&mut line).await.unwrap() > 0, "closed");
                assert!(line.contains("\"ok\":true"), "{pattern:?}: {line}");
                if pattern == Pattern::CpuHash {
                    // Size 0, then the trailer with the digest.
                    let mut trailer = String::new();
                    reader.read_line(&mut trailer).await.unwrap();
                    assert!(trailer.contains("digest"), "{trailer}");
                    break;
                }
                if line.contains("\"more\":false") {
                    break;
                }
            }
            let mut rest = [0u8; 1];
            let nothing = tokio::time::timeout(Duration::from_millis(1), stream.read(&mut rest));
            assert!(nothing.await.is_err(), "nothing after the answer");
            None
        }
    }
}

enum Held {
    Socket(#[allow(dead_code)] TcpStream),
    Task(tokio::task::JoinHandle<()>),
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Held::Task(task) = self {
            task.abort();
        }
    }
}

/// Waits until resident memory and descriptors stop moving (the server has done all it will
/// for the stalled connections), at most `patience`.
async fn settle(server: &ServerProcess, patience: Duration) {
    let start = Instant::now();
    let mut last = (server.rss(), server.fds());
    let mut steady = 0;
    while start.elapsed() < patience && steady < 5 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = (server.rss(), server.fds());
        steady = if now == last { steady + 1 } else { 0 };
        last = now;
    }
}

/// One run: a fresh server, `n` connections of `pattern`, the figures after it settles.
struct Run {
    rss: f64,
    hwm: f64,
    fds: f64,
    threads: f64,
    cpu: f64,
}

async fn run(tree: &Tree, pattern: Pattern, n: usize) -> (Run, Run) {
    let login = pattern == Pattern::Login;
    let server = ServerProcess::start(&tree.root, login.then_some(tree.users.as_path()));
    // Warm the runtime and the allocator with one connection of the same kind first, so the
    // baseline holds what any number of connections share.
    let warm = if login {
        // One failed login first, so the baseline holds the hasher's pages.
        drive(server.addr.clone(), Pattern::Login, usize::MAX).await
    } else {
        drive(server.addr.clone(), Pattern::Idle, usize::MAX).await
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = Run {
        rss: server.rss(),
        hwm: server.hwm(),
        fds: server.fds(),
        threads: server.threads(),
        cpu: server.cpu(),
    };
    let tasks: Vec<_> = (0..n)
        .map(|i| tokio::spawn(drive(server.addr.clone(), pattern, i)))
        .collect();
    let mut held = Vec::new();
    for task in tasks {
        held.push(task.await.unwrap());
    }
    settle(&server, Duration::from_secs(20)).await;
    let after = Run {
        rss: server.rss(),
        hwm: server.hwm(),
        fds: server.fds(),
        threads: server.threads(),
        cpu: server.cpu(),
    };
    drop(held);
    drop(warm);
    (before, after)
}

/// Least-squares slope of `y` over `n` through the measured points, with the baseline of each
/// run subtracted: the cost of one more connection.
fn slope(points: &[(f64, f64)]) -> f64 {
    let count = points.len() as f64;
    let mean_n = points.iter().map(|p| p.0).sum::<f64>() / count;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / count;
    let num: f64 = points.iter().map(|p| (p.0 - mean_n) * (p.1 - mean_y)).sum();
    let den: f64 = points.iter().map(|p| (p.0 - mean_n).powi(2)).sum();
    num / den
}

fn show(bytes: f64) -> String {
    if bytes >= MIB {
        format!("{:.2} MiB", bytes / MIB)
    } else {
        format!("{:.0} KiB", bytes / KIB)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measures the binary for about a minute; run with --ignored --nocapture"]
async fn per_connection_memory_descriptors_and_cpu_stay_under_the_documented_bounds() {
    let tree = build_tree();
    // Walks hold 387 descriptors each from a budget of 18,336 (a 20,000 limit): 40 fit.
    let plans: [(Pattern, &[usize]); 7] = [
        (Pattern::Idle, &[1, 10, 100]),
        (Pattern::Get, &[1, 10, 100]),
        (Pattern::Put, &[1, 10, 100]),
        (Pattern::Walk, &[1, 10, 40]),
        (Pattern::CpuWalk, &[1, 10, 100]),
        (Pattern::CpuHash, &[1, 10, 100]),
        (Pattern::Login, &[1, 20, 60]),
    ];
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    // `FERRY_BOUNDS_ONLY=Walk` (a pattern's name) measures that one alone.
    let only = std::env::var("FERRY_BOUNDS_ONLY").ok();
    for (pattern, counts) in plans {
        if only
            .as_ref()
            .is_some_and(|only| *only != format!("{pattern:?}"))
        {
            continue;
        }
        let mut memory = Vec::new();
        let mut peak = Vec::new();
        let mut fds = Vec::new();
        let mut threads = Vec::new();
        let mut cpu = Vec::new();
        for &n in counts {
            let (before, after) = run(&tree, pattern, n).await;
            let n = n as f64;
            memory.push((n, after.rss - before.rss));
            peak.push((n, after.hwm - before.hwm));
            fds.push((n, after.fds - before.fds));
            threads.push((n, after.threads - before.threads));
            cpu.push((n, after.cpu - before.cpu));
            println!(
                "{pattern:?} N={n}: rss +{} (hwm +{}), fds +{}, threads +{}, cpu +{:.2} s",
                show(after.rss - before.rss),
                show(after.hwm - before.hwm),
                after.fds - before.fds,
                after.threads - before.threads,
                after.cpu - before.cpu,
            );
        }
        let (mem, hwm, fd, thread, cpu) = (
            slope(&memory),
            slope(&peak),
            slope(&fds),
            slope(&threads),
            slope(&cpu),
        );
        let ns = counts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        // The pattern really held what it is meant to: a refused request would pass vacuously.
        let held = match pattern {
            Pattern::Idle => fd >= 0.9,
            Pattern::Get => mem >= 2.0 * MIB && fd >= 1.9,
            Pattern::Put => mem >= 1.5 * MIB && fd >= 2.9,
            Pattern::Walk => fd >= FDS_WALK - 0.5,
            Pattern::CpuWalk | Pattern::CpuHash | Pattern::Login => cpu > 0.0,
        };
        if !held {
            failures.push(format!(
                "{pattern:?} did not hold what it should: memory {mem}, descriptors {fd}, cpu {cpu}"
            ));
        }
        let mut check = |what: &str, measured: f64, bound: f64, shown: String| {
            rows.push(format!("| {pattern:?} | {what} | {shown} | N = {ns} |"));
            if measured > bound {
                failures.push(format!("{pattern:?} {what}: {measured} over {bound}"));
            }
        };
        // What a stalled connection holds: memory and descriptors, and a blocking thread for
        // all but an idle one.
        let holds = match pattern {
            Pattern::Idle => Some((FIXED, 1.0, false)),
            Pattern::Get => Some((FIXED + GET, FDS_GET, true)),
            Pattern::Put => Some((FIXED + PUT, FDS_PUT, true)),
            Pattern::Walk => Some((FIXED + WALK, FDS_WALK, true)),
            Pattern::CpuWalk | Pattern::CpuHash | Pattern::Login => None,
        };
        if let Some((memory, descriptors, busy_thread)) = holds {
            check(
                "memory",
                mem.max(hwm),
                memory,
                format!("{} (peak {})", show(mem), show(hwm)),
            );
            check("descriptors", fd, descriptors, format!("{fd:.2}"));
            if busy_thread {
                check("threads", thread, THREADS, format!("{thread:.2}"));
            }
        }
        match pattern {
            Pattern::Idle | Pattern::Get | Pattern::Put | Pattern::Walk => {}
            Pattern::CpuWalk => {
                let per_unit = cpu / WIDE as f64;
                check(
                    "CPU per entry walked",
                    per_unit,
                    CPU_PER_ENTRY,
                    format!("{:.2} µs", per_unit * 1e6),
                );
                println!(
                    "  a connection's burst ({WORK_BURST} units) costs about {:.1} s of CPU; \
                     then at most {:.2} s a second",
                    WORK_BURST * per_unit,
                    WORK_RATE * per_unit
                );
            }
            Pattern::Login => {
                let per_attempt = cpu / FAILED_HELLOS as f64;
                check(
                    "CPU per failed login",
                    per_attempt,
                    CPU_PER_LOGIN,
                    format!("{:.0} ms", per_attempt * 1e3),
                );
                // Hashes run one at a time for failing addresses: the peak does not grow
                // with the number of connections.
                check(
                    "memory peak",
                    hwm,
                    FIXED,
                    format!("{} (peak {})", show(mem), show(hwm)),
                );
            }
            Pattern::CpuHash => {
                let units = (BIG / (1024 * 1024) * 128) as f64;
                let per_unit = cpu / units;
                check(
                    "CPU per hash unit",
                    per_unit,
                    CPU_PER_HASH_UNIT,
                    format!(
                        "{:.2} µs ({:.2} ms per MiB)",
                        per_unit * 1e6,
                        per_unit * 128e3
                    ),
                );
                println!(
                    "  a connection's burst ({WORK_BURST} units) costs about {:.1} s of CPU; \
                     then at most {:.2} s a second",
                    WORK_BURST * per_unit,
                    WORK_RATE * per_unit
                );
            }
        }
    }
    println!("\n| pattern | resource | measured per connection | connections |");
    println!("|---|---|---|---|");
    for row in &rows {
        println!("{row}");
    }
    assert!(
        failures.is_empty(),
        "over the documented bounds: {failures:#?}"
    );
}

/// Failed logins cost argon2's 19 MiB per verification, and the server lets only a few run at
/// once (the number of cores, 2 to 8): its resident memory after many failed logins must stay
/// within that many hashes' memory, whichever threads ran them. It once grew by about 19 MiB
/// for every allocator arena a hash had run on (400 MiB on 2 cores, more on bigger machines)
/// and kept it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_hold_at_most_the_hashes_allowed_at_once() {
    let base = tempfile::tempdir_in("/dev/shm").unwrap();
    let root = base.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let users = base.path().join("users");
    add_ann(&users, &root);
    let server = ServerProcess::start(&root, Some(&users));
    let before = server.rss();
    let tasks: Vec<_> = (0..60)
        .map(|i| tokio::spawn(drive(server.addr.clone(), Pattern::Login, i)))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let grown = server.hwm() - before;
    let at_once = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
    let bound = at_once as f64 * ARGON2_MEMORY + 32.0 * MIB;
    println!(
        "180 failed logins: resident peak +{} (bound {} for {at_once} at once)",
        show(grown),
        show(bound)
    );
    assert!(
        grown <= bound,
        "failed logins grew the server by {} (bound {})",
        show(grown),
        show(bound)
    );
}
