//! A raw protocol client: it writes bytes and reads replies exactly as a peer outside the
//! project would (JSON lines and byte payloads, nothing else), and the small readings of a
//! reply that the tests repeat.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// How long any single read in a test may take before the test fails instead of hanging.
pub const STEP: Duration = Duration::from_secs(30);

/// A raw protocol client: JSON lines and byte payloads, nothing else. Over TCP by default;
/// [`Client::over`] speaks over any pair of streams (a child's stdout and stdin).
#[derive(Debug)]
pub struct Client<R = OwnedReadHalf, W = OwnedWriteHalf> {
    pub reader: BufReader<R>,
    pub writer: W,
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
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Client<R, W> {
    /// A client reading replies from `reader` and writing requests to `writer`.
    pub fn over(reader: R, writer: W) -> Self {
        Self {
            reader: BufReader::with_capacity(256 * 1024, reader),
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

/// A fake server on 127.0.0.1 in a runtime of its own, which hands each connection to `serve`:
/// what a hostile or broken server can do. It runs until the returned runtime is dropped.
pub fn fake_server<F, Serve>(serve: F) -> (tokio::runtime::Runtime, SocketAddr)
where
    F: Fn(TcpStream) -> Serve + Send + 'static,
    Serve: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    (runtime, addr)
}
