//! Shared helpers for the server's integration tests: a real server on `127.0.0.1:0` over a
//! temporary root; the raw client that writes bytes and reads replies exactly as a peer
//! outside the project would comes from `ferry_testkit::wire`.
// Test helpers: a failed setup step should stop the test with its error, which is what
// `unwrap` does.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use ferry_server::Config;
pub use ferry_testkit::data::{digest, pattern};
pub use ferry_testkit::wire::{Client, STEP, code, merge, names};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running in-process on a fresh temporary root.
pub struct Server {
    pub addr: SocketAddr,
    /// The served root (inside `_base`), canonical.
    pub root: PathBuf,
    /// A sibling of the root, outside it, for escape tests.
    pub outside: PathBuf,
    _base: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ferry_server::ServerError>>>,
}

impl Server {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), adjust).await
    }

    /// On tmpfs, for trees of many files.
    pub async fn start_on_shm(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_in(tempfile::tempdir_in("/dev/shm").unwrap(), adjust).await
    }

    async fn start_in(base: tempfile::TempDir, adjust: impl FnOnce(&mut Config)) -> Self {
        let base_path = base.path().canonicalize().unwrap();
        let root = base_path.join("root");
        let outside = base_path.join("outside");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret.txt"), b"do not touch").unwrap();
        let mut config = Config::new(&root);
        adjust(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(ferry_server::run(listener, config, async {
            let _ = rx.await;
        }));
        Self {
            addr,
            root,
            outside,
            _base: base,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// A client that has said hello (without a token).
    pub async fn client(&self) -> Client {
        let mut client = Client::connect(self.addr).await;
        client.hello().await;
        client
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Whether `run` is still serving (it has neither returned nor panicked).
    pub fn running(&self) -> bool {
        self.task.as_ref().is_some_and(|task| !task.is_finished())
    }

    /// Asks the server to stop and waits until `run` returns.
    pub async fn stop(&mut self) -> Result<(), ferry_server::ServerError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().unwrap();
        tokio::time::timeout(STEP, task)
            .await
            .expect("server stops")
            .unwrap()
    }

    /// The outside directory's files and their contents, to prove escapes changed nothing.
    pub fn outside_snapshot(&self) -> Vec<(String, Vec<u8>)> {
        snapshot(&self.outside)
    }
}

/// Writes `accounts` (name, password, root, read-only) into the users file `file` through the
/// server's own functions, and loads it.
pub fn users_file(
    file: &Path,
    accounts: &[(&str, &str, &Path, bool)],
) -> ferry_server::users::Users {
    for &(name, password, root, read_only) in accounts {
        let hash = ferry_server::users::hash_password(password).unwrap();
        ferry_server::users::upsert(file, name, &hash, root, read_only).unwrap();
    }
    ferry_server::users::Users::load(file).unwrap()
}

/// Every file under `dir` with its bytes, sorted.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let ty = entry.file_type().unwrap();
            if ty.is_dir() {
                stack.push(path);
                out.push((format!("{rel}/"), Vec::new()));
            } else if ty.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push((format!("{rel}@"), target.display().to_string().into_bytes()));
            } else {
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The `ferry-server` binary on a private tmpfs of `size`, mounted in its own user and mount
/// namespaces (`unshare -Urm`), so no root and no host mount is needed and nothing is left
/// mounted if the test dies; killed (and so unmounted) when dropped. The test sees the
/// server's files through `/proc/PID/root` and talks to it on loopback.
pub struct TmpfsServer {
    child: Child,
    pub addr: SocketAddr,
    /// The mount point as the server sees it, reached from outside through its `/proc` root.
    pub root: PathBuf,
    _mount_point: tempfile::TempDir,
}

impl TmpfsServer {
    /// `mount_more` runs in the namespace after the root is mounted (`$1` the size, `$2` the
    /// root), for more filesystems below it; `flags` go to the server.
    pub fn start(size: &str, mount_more: &str, flags: &[&str]) -> Self {
        let mount_point = tempfile::tempdir().unwrap();
        let dir = mount_point.path().canonicalize().unwrap();
        let script = format!(
            r#"mount -t tmpfs -o "size=$1" tmpfs "$2" && {mount_more} shift 2 && exec "$@""#
        );
        let spawned = Command::new("unshare")
            .args(["-Urm", "sh", "-c", &script, "sh", size])
            .arg(&dir)
            .arg(env!("CARGO_BIN_EXE_ferry-server"))
            .arg("--root")
            .arg(&dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(flags)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = spawned.unwrap_or_else(|err| {
            panic!("cannot run unshare (util-linux) to give the server a private tmpfs: {err}")
        });
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        let addr = loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap() == 0 {
                panic!(
                    "the server never served on a private tmpfs. This test needs `unshare -Urm` \
                     to work: root, or unprivileged user namespaces \
                     (sysctl kernel.unprivileged_userns_clone=1). Its output:\n{seen}"
                );
            }
            seen.push_str(&line);
            if let Some(addr) = ferry_testkit::bin::serving_addr(&line) {
                break addr.parse().unwrap();
            }
        };
        ferry_testkit::bin::drain(stderr);
        let root = PathBuf::from(format!("/proc/{}/root", child.id()))
            .join(dir.strip_prefix("/").unwrap());
        Self {
            child,
            addr,
            root,
            _mount_point: mount_point,
        }
    }

    pub async fn client(&self) -> Client {
        let mut client = Client::connect(self.addr).await;
        client.hello().await;
        client
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Names in the root, hidden partials included.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.root)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// Bytes free to an unprivileged writer on the filesystem holding `rel`.
    pub fn free(&self, rel: &str) -> u64 {
        let stats = rustix::fs::statvfs(self.root.join(rel)).unwrap();
        stats.f_bavail * stats.f_frsize
    }
}

impl Drop for TmpfsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The entry named `name` in a listing or walk.
pub fn named<'a>(entries: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    entries
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {entries:?}"))
}
