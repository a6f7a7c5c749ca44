//! Shared by the engine and CLI tests: a real `ferry-server` on 127.0.0.1:0 in its own thread
//! and runtime (so sync CLI tests and async engine tests use it alike), a byte-counting and
//! optionally slow TCP proxy, deterministic test data and tree comparison.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ferry::engine::{Endpoint, Engine, EngineOptions, JobSpec, JobSummary, TransferEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// Writes `bytes` to `path` (making its directory) dated `secs` seconds after the epoch.
pub fn write_at(path: &Path, bytes: &[u8], secs: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// A real server on `port` (0: any) serving `root`, until the returned runtime is dropped or
/// shut down, which closes every connection at once like a crashed server; the same `port`
/// again restarts it.
pub fn start_server(root: &Path, port: u16) -> (tokio::runtime::Runtime, u16) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = ferry_server::Config::new(root);
    runtime.spawn(async move {
        ferry_server::run(listener, config, std::future::pending())
            .await
            .unwrap();
    });
    (runtime, port)
}

/// A server serving a temporary directory until dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub root: tempfile::TempDir,
    pub token: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(tempfile::tempdir().unwrap(), |_| {})
    }

    /// A server whose root is on /dev/shm, for big trees and big files.
    pub fn start_shm() -> TestServer {
        Self::start_with(tempfile::tempdir_in("/dev/shm").unwrap(), |_| {})
    }

    pub fn start_with(
        root: tempfile::TempDir,
        adjust: impl FnOnce(&mut ferry_server::Config),
    ) -> TestServer {
        Self::start_on("127.0.0.1:0", root, adjust)
    }

    /// A server listening on `bind` (`[::1]:0` for IPv6).
    pub fn start_on(
        bind: &'static str,
        root: tempfile::TempDir,
        adjust: impl FnOnce(&mut ferry_server::Config),
    ) -> TestServer {
        let mut config = ferry_server::Config::new(root.path());
        adjust(&mut config);
        let token = config.token.clone();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                ferry_server::run(listener, config, async {
                    let _ = shutdown_rx.await;
                })
                .await
                .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        TestServer {
            addr,
            root,
            token,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        match self.addr {
            SocketAddr::V4(_) => format!("ferry://127.0.0.1:{}/{}", self.addr.port(), path),
            SocketAddr::V6(_) => format!("ferry://[::1]:{}/{}", self.addr.port(), path),
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        endpoint_at(self.addr, self.token.clone())
    }

    /// A path inside the served directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // The server waits for its connections; tests that leave some open must not hang.
        if let Some(thread) = self.thread.take() {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

pub fn endpoint_at(addr: SocketAddr, token: Option<String>) -> Endpoint {
    Endpoint {
        host: addr.ip().to_string(),
        port: addr.port(),
        token,
        ..Endpoint::default()
    }
}

/// Deterministic, incompressible-looking bytes, different for each seed.
pub use ferry_testkit::data::pattern as bytes;

pub fn digest(data: &[u8]) -> ferry_protocol::Digest {
    ferry_protocol::Digest::of(data)
}

/// Every regular file below `root`, relative path -> contents; directories as `path/` -> empty.
pub fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn visit(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                visit(root, &path, out);
            } else if kind.is_file() {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    visit(root, root, &mut out);
    out
}

/// Writes `count` small files of varied sizes in nested directories under `root`.
pub fn make_tree(root: &Path, count: usize) {
    for i in 0..count {
        let dir = root
            .join(format!("d{}", i % 10))
            .join(format!("e{}", i % 7));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{i}.bin")), bytes(i % 3000, i as u64)).unwrap();
    }
}

/// What a job said, collected until it finished.
#[derive(Debug, Default)]
pub struct JobLog {
    pub done: Vec<(String, u64, ferry_protocol::Digest)>,
    pub failed: Vec<(String, String)>,
    pub left_out: Vec<(String, ferry::engine::LeftOutReason, String)>,
    pub conflicts: Vec<String>,
    pub planned: Option<(u64, u64)>,
    pub progress_events: usize,
    /// The most files any progress event counted done before `Planned` (the tree was still
    /// walked).
    pub scanned_files_before_plan: u64,
    pub outcome: Option<Result<JobSummary, String>>,
}

impl JobLog {
    pub fn summary(&self) -> &JobSummary {
        match &self.outcome {
            Some(Ok(summary)) => summary,
            other => panic!(
                "the job did not succeed: {other:?}; failed: {:?}",
                self.failed
            ),
        }
    }
}

/// Runs one job on a fresh engine; conflicts are answered by `answer`.
pub async fn run_job(
    endpoint: Endpoint,
    options: EngineOptions,
    spec: JobSpec,
    answer: impl Fn(&str) -> ferry::engine::ConflictAnswer,
) -> JobLog {
    let (engine, events_rx) = Engine::with_options(endpoint, options);
    let job = engine.submit(spec);
    follow(job, events_rx, answer).await
}

pub async fn follow(
    job: ferry::engine::JobId,
    mut events_rx: ferry::engine::Events,
    answer: impl Fn(&str) -> ferry::engine::ConflictAnswer,
) -> JobLog {
    let mut log = JobLog::default();
    while let Some(event) = events_rx.recv().await {
        match event {
            TransferEvent::Planned { files, bytes, .. } => log.planned = Some((files, bytes)),
            TransferEvent::Progress(p) => {
                assert_eq!(p.job, job);
                if p.scanning {
                    // No scale yet, and none pretended: no totals, no time left.
                    assert_eq!((p.files_total, p.bytes_total, p.eta), (0, 0, None), "{p:?}");
                    if log.planned.is_none() {
                        log.scanned_files_before_plan =
                            log.scanned_files_before_plan.max(p.files_done);
                    }
                } else {
                    assert!(
                        log.planned.is_some(),
                        "progress with totals before the plan"
                    );
                    assert!(p.bytes_done <= p.bytes_total, "{p:?}");
                    assert!(p.files_done <= p.files_total, "{p:?}");
                }
                log.progress_events += 1;
            }
            TransferEvent::Conflict { path, reply, .. } => {
                let _ = reply.send(answer(&path));
                log.conflicts.push(path);
            }
            TransferEvent::FileDone {
                path,
                bytes,
                digest,
                ..
            } => log.done.push((path, bytes, digest)),
            TransferEvent::FileFailed { path, error, .. } => log.failed.push((path, error)),
            TransferEvent::LeftOut {
                path,
                reason,
                message,
                ..
            } => log.left_out.push((path, reason, message)),
            TransferEvent::Finished { job: id, outcome } => {
                assert_eq!(id, job);
                log.outcome = Some(outcome);
                return log;
            }
        }
    }
    panic!("the engine dropped its channel before Finished");
}

/// A TCP proxy in front of the server that counts the bytes each way and can add a delay to
/// every read it forwards, both ways: a slow link to catch a transfer in the middle, or a long
/// one to show what round trips cost.
pub struct Proxy {
    pub addr: SocketAddr,
    pub up: Arc<AtomicU64>,
    pub down: Arc<AtomicU64>,
}

impl Proxy {
    /// Starts on the current runtime; `delay` is slept before each read (up to 64 KiB) is
    /// forwarded.
    pub async fn start(target: SocketAddr, delay: Option<Duration>) -> Proxy {
        Self::start_with(target, delay, None, None).await
    }

    /// A proxy whose count is what crossed the "link": its sockets' send buffers are held
    /// small, so a byte counted has been taken by the receiving side's kernel, not just queued
    /// in the proxy's (where a fast link's autotuned buffer would hide megabytes). For the rate
    /// limit tests.
    pub async fn start_measuring(target: SocketAddr) -> Proxy {
        Self::start_with(target, None, None, Some(16 * 1024)).await
    }

    /// A flaky link: every connection is cut once `cut_after` bytes have gone through it in
    /// either direction.
    pub async fn start_cutting(target: SocketAddr, cut_after: u64) -> Proxy {
        Self::start_with(target, None, Some(cut_after), None).await
    }

    /// A link where each flow is capped: every proxied connection carries at most
    /// `bytes_per_second` each way (as a per-flow shaper does), whatever the others carry.
    pub async fn start_capped(target: SocketAddr, bytes_per_second: u64) -> Proxy {
        Self::start_full(target, None, None, Some(16 * 1024), Some(bytes_per_second)).await
    }

    async fn start_with(
        target: SocketAddr,
        delay: Option<Duration>,
        cut_after: Option<u64>,
        send_buffer: Option<usize>,
    ) -> Proxy {
        Self::start_full(target, delay, cut_after, send_buffer, None).await
    }

    async fn start_full(
        target: SocketAddr,
        delay: Option<Duration>,
        cut_after: Option<u64>,
        send_buffer: Option<usize>,
        cap: Option<u64>,
    ) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicU64::new(0));
        let down = Arc::new(AtomicU64::new(0));
        let (up2, down2) = (up.clone(), down.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                if let Some(size) = send_buffer {
                    for socket in [&client, &server] {
                        rustix::net::sockopt::set_socket_send_buffer_size(socket, size).unwrap();
                        socket.set_nodelay(true).unwrap();
                    }
                }
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let cut = Arc::new(tokio::sync::Notify::new());
                let budget = Arc::new(AtomicU64::new(cut_after.unwrap_or(u64::MAX)));
                let link = Link {
                    // Read no more than the send buffer takes at once.
                    piece: send_buffer.unwrap_or(64 * 1024),
                    delay,
                    cut: cut.clone(),
                    budget: budget.clone(),
                    cap,
                };
                tokio::spawn(relay(cr, sw, up2.clone(), link.clone()));
                tokio::spawn(relay(sr, cw, down2.clone(), link));
            }
        });
        Proxy { addr, up, down }
    }

    pub fn endpoint(&self) -> Endpoint {
        endpoint_at(self.addr, None)
    }

    pub fn url(&self, path: &str) -> String {
        match self.addr {
            SocketAddr::V4(_) => format!("ferry://127.0.0.1:{}/{}", self.addr.port(), path),
            SocketAddr::V6(_) => format!("ferry://[::1]:{}/{}", self.addr.port(), path),
        }
    }

    pub fn total(&self) -> (u64, u64) {
        (
            self.up.load(Ordering::Relaxed),
            self.down.load(Ordering::Relaxed),
        )
    }
}

/// What both directions of one proxied connection share.
#[derive(Clone)]
struct Link {
    /// The most one read takes.
    piece: usize,
    delay: Option<Duration>,
    /// Wakes the other direction when one gives up, so a cut closes the whole connection.
    cut: Arc<tokio::sync::Notify>,
    /// Bytes this connection may still carry.
    budget: Arc<AtomicU64>,
    /// Bytes a second each direction of this connection carries at most.
    cap: Option<u64>,
}

async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    counter: Arc<AtomicU64>,
    link: Link,
) {
    let mut buf = vec![0u8; link.piece];
    let started = tokio::time::Instant::now();
    let mut carried: u64 = 0;
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            () = link.cut.notified() => break,
        };
        let left = link.budget.load(Ordering::Relaxed);
        let n = n.min(usize::try_from(left).unwrap_or(usize::MAX));
        // Waiting before forwarding makes every exchange pay the delay, like a long link.
        if let Some(delay) = link.delay {
            tokio::time::sleep(delay).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        counter.fetch_add(n as u64, Ordering::Relaxed);
        carried += n as u64;
        if let Some(cap) = link.cap {
            // Never ahead of the cap since the connection opened.
            let due = Duration::from_secs_f64(carried as f64 / cap as f64);
            tokio::time::sleep_until(started + due).await;
        }
        if link.budget.fetch_sub(n as u64, Ordering::Relaxed) <= n as u64 {
            break;
        }
    }
    link.cut.notify_waiters();
    let _ = to.shutdown().await;
}

/// A fresh self-signed certificate for 127.0.0.1, loaded the way `ferry-server --tls-cert
/// --tls-key` loads one, with its fingerprint.
pub fn tls_identity() -> (
    Arc<rustls::ServerConfig>,
    ferry::engine::known_hosts::Fingerprint,
) {
    let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let fingerprint = ferry::engine::known_hosts::Fingerprint::of(pair.cert.der());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), pair.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), pair.signing_key.serialize_pem()).unwrap();
    let identity = ferry_server::tls::from_pem_files(
        &dir.path().join("cert.pem"),
        &dir.path().join("key.pem"),
    )
    .unwrap();
    (identity.config, fingerprint)
}

/// A server with a users file holding `user` with `password`, whose root is a directory of
/// its own (not the server's root) holding `USER.txt`; `adjust` changes the rest of the
/// configuration. Returns the server and the directory holding the user's root (`USER/`).
pub fn server_with_user(
    user: &str,
    password: &str,
    adjust: impl FnOnce(&mut ferry_server::Config),
) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(user);
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join(format!("{user}.txt")), format!("{user}'s file")).unwrap();
    let users = dir.path().join("users");
    let hash = ferry_server::users::hash_password(password).unwrap();
    ferry_server::users::upsert(&users, user, &hash, &root, false).unwrap();
    let loaded = ferry_server::users::Users::load(&users).unwrap();
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), |config| {
        config.users = Some(Arc::new(loaded));
        config.auth_delay = Duration::from_millis(50);
        adjust(config);
    });
    std::fs::write(server.path("server-root.txt"), format!("not {user}'s")).unwrap();
    (server, dir)
}

/// The real `ferry` with `args`, run to its end, without the developer's `FERRY_TOKEN`.
pub fn ferry<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env_remove("FERRY_TOKEN")
        .output()
        .unwrap()
}

/// The real `ferry` with `args` run as `nobody` (so permission denied is met: root reads
/// everything), with a fresh `HOME` it may write, without the developer's `FERRY_TOKEN`.
pub fn ferry_as_nobody(args: &[&str]) -> std::process::Output {
    use ferry_testkit::nobody::{AS_NOBODY, SETPRIV};
    let home = tempfile::tempdir().unwrap();
    ferry_testkit::data::chmod(home.path(), 0o777);
    std::process::Command::new(SETPRIV)
        .args(AS_NOBODY)
        .arg(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("HOME", home.path())
        .env_remove("FERRY_TOKEN")
        .output()
        .unwrap()
}

/// The real `ferry` with `args` started, its output piped, without the developer's
/// `FERRY_TOKEN`: for a test that acts while it runs.
pub fn ferry_running<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env_remove("FERRY_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Ctrl-C to a running `child` (SIGINT, as a terminal sends it), then all it said.
pub fn interrupt(child: std::process::Child) -> std::process::Output {
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    child.wait_with_output().unwrap()
}

/// A path as the text argument the CLI takes.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A program's output as text, for messages and assertions.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts success, with what the program said when it was not.
pub fn ok(output: std::process::Output) -> std::process::Output {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}
