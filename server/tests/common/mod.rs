//! Shared helpers for the server's integration tests: a real server on `127.0.0.1:0` over a
//! temporary root, and a raw client that writes bytes and reads replies exactly as a peer
//! outside the project would.
// Test helpers: a failed setup step should stop the test with its error, which is what
// `unwrap` does.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_server::Config;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any single read in a test may take before the test fails instead of hanging.
pub const STEP: Duration = Duration::from_secs(30);

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

/// The wire form of a BLAKE3 digest.
pub fn digest(bytes: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(bytes).to_hex())
}

/// Deterministic, non-repeating-looking bytes, so an offset mistake shows up as a mismatch.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A raw protocol client: JSON lines and byte payloads, nothing else.
pub struct Client {
    pub reader: BufReader<OwnedReadHalf>,
    pub writer: OwnedWriteHalf,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (read, writer) = stream.into_split();
        Self {
            reader: BufReader::with_capacity(256 * 1024, read),
            writer,
        }
    }

    /// A client whose connection comes from `ip` (any of 127/8 is loopback on Linux), so the
    /// server sees another client address.
    pub async fn connect_from(ip: std::net::Ipv4Addr, addr: SocketAddr) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(std::net::IpAddr::V4(ip), 0))
            .unwrap();
        let stream = socket.connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (read, writer) = stream.into_split();
        Self {
            reader: BufReader::new(read),
            writer,
        }
    }

    pub async fn hello(&mut self) -> Value {
        let reply = self.request(json!({"op": "hello", "version": 1})).await;
        assert_eq!(reply["ok"], true, "hello failed: {reply}");
        reply
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    pub async fn send_json(&mut self, value: &Value) {
        let mut line = serde_json::to_vec(value).unwrap();
        line.push(b'\n');
        self.send(&line).await;
    }

    /// One reply line as JSON; panics on EOF.
    pub async fn read_reply(&mut self) -> Value {
        let line = self.read_line().await.expect("a reply line, not EOF");
        serde_json::from_slice(&line).unwrap_or_else(|err| {
            panic!(
                "reply is not JSON ({err}): {:?}",
                String::from_utf8_lossy(&line)
            )
        })
    }

    /// One raw line without its `\n`; `None` at EOF.
    pub async fn read_line(&mut self) -> Option<Vec<u8>> {
        let mut line = Vec::new();
        let n = tokio::time::timeout(STEP, self.reader.read_until(b'\n', &mut line))
            .await
            .expect("reply in time")
            .ok()?;
        if n == 0 {
            return None;
        }
        assert_eq!(line.pop(), Some(b'\n'), "a reply line ends with a newline");
        Some(line)
    }

    /// True when the server has closed the connection (EOF or reset) with nothing more to say.
    pub async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match tokio::time::timeout(STEP, self.reader.read_to_end(&mut rest)).await {
            Ok(Ok(_)) => rest.is_empty(),
            Ok(Err(_)) => true,
            Err(_) => false,
        }
    }

    pub async fn request(&mut self, value: Value) -> Value {
        self.send_json(&value).await;
        self.read_reply().await
    }

    pub async fn read_bytes(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        tokio::time::timeout(STEP, self.reader.read_exact(&mut buf))
            .await
            .expect("payload in time")
            .unwrap();
        buf
    }

    /// `get`: the reply header, the payload and the trailer (ok or error).
    pub async fn get(&mut self, path: &str, offset: u64) -> Result<(Value, Vec<u8>, Value), Value> {
        let reply = self
            .request(json!({"op": "get", "path": path, "offset": offset}))
            .await;
        if reply["ok"] != true {
            return Err(reply);
        }
        let size = reply["size"].as_u64().unwrap() as usize;
        let data = self.read_bytes(size).await;
        let trailer = self.read_reply().await;
        Ok((reply, data, trailer))
    }

    /// `put` of `data` with extra request fields; returns the reply.
    pub async fn put(&mut self, path: &str, data: &[u8], extra: Value) -> Value {
        let mut header = json!({"op": "put", "path": path, "size": data.len()});
        merge(&mut header, extra);
        self.send_json(&header).await;
        self.send(data).await;
        self.read_reply().await
    }

    /// Every batch of a `list` or `walk`, until `more: false` or an error.
    pub async fn list_all(
        &mut self,
        op: &str,
        path: &str,
    ) -> Result<(Vec<Value>, u64, usize), Value> {
        self.send_json(&json!({"op": op, "path": path})).await;
        let mut entries = Vec::new();
        let mut batches = 0;
        loop {
            let batch = self.read_reply().await;
            if batch["ok"] != true {
                return Err(batch);
            }
            batches += 1;
            entries.extend(batch["entries"].as_array().unwrap().iter().cloned());
            if batch["more"] == false {
                let skipped = batch.get("skipped").and_then(Value::as_u64).unwrap_or(0);
                return Ok((entries, skipped, batches));
            }
            assert_eq!(batch["more"], true, "{batch}");
        }
    }
}

/// Adds `extra`'s fields to `header`.
pub fn merge(header: &mut Value, extra: Value) {
    if let (Some(header), Value::Object(extra)) = (header.as_object_mut(), extra) {
        header.extend(extra);
    }
}

/// The error code of a failed reply, or a panic naming the reply when it succeeded.
pub fn code(reply: &Value) -> &str {
    assert_eq!(reply["ok"], false, "expected an error, got {reply}");
    reply["error"]["code"].as_str().unwrap()
}

/// Names of the entries of a listing.
pub fn names(entries: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}
