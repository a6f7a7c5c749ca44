//! The bodies of ferry's fuzz targets; each target in `fuzz_targets/` is one call into here.
//!
//! - [`frames`]: the frame decoder and the header decoders on arbitrary bytes, in arbitrary
//!   read sizes: the same frames whatever the chunking, nothing lost, no panic.
//! - [`paths`]: the path rules and the name escape (any bytes have one wire form that names
//!   them exactly), and the server's resolution beneath a root that holds symlinks
//!   to the outside: a path is refused or lands inside the root.
//! - [`session`]: arbitrary bytes after a `hello` to a real server on loopback: it never panics
//!   or hangs, and nothing outside its root changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::BytesMut;
use ferry_protocol::path::{self, MAX_NAME_LEN, MAX_PATH_LEN};
use ferry_protocol::{
    Done, Frame, FrameDecoder, FrameError, GetReply, HelloReply, ListBatch, PartialReply, PutReply,
    PutTrailer, StatReply, SummaryReply, decode_reply, decode_request, encode_request,
};

/// What a stream splits into: payload chunks merged, and how it ended.
#[derive(Debug, PartialEq, Eq)]
struct Split {
    frames: Vec<Frame>,
    end: Result<(), FrameError>,
}

/// Feeds `input` to a decoder in pieces whose sizes come from `seed`, announcing each header's
/// payload the way the server does (a bad header's readable `"size"` is skipped too).
fn split(input: &[u8], seed: u8, max_header: usize) -> Split {
    let mut decoder = FrameDecoder::with_max_header(max_header);
    let mut buf = BytesMut::new();
    let mut frames: Vec<Frame> = Vec::new();
    let mut state = u32::from(seed) | 1;
    let mut rest = input;
    let mut end = Ok(());
    'feed: loop {
        let eof = rest.is_empty();
        if !eof {
            // A small xorshift: read sizes from 1 to 64 bytes, or everything when seed is 0.
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let step = if seed == 0 {
                rest.len()
            } else {
                (state % 64 + 1) as usize
            };
            let (piece, tail) = rest.split_at(step.min(rest.len()));
            buf.extend_from_slice(piece);
            rest = tail;
        }
        loop {
            let next = if eof {
                decoder.decode_eof(&mut buf)
            } else {
                decoder.decode(&mut buf)
            };
            match next {
                Ok(Some(frame)) => push(&mut frames, &mut decoder, frame),
                Ok(None) if eof => break 'feed,
                Ok(None) => break,
                Err(err) => {
                    end = Err(err);
                    break 'feed;
                }
            }
        }
    }
    Split { frames, end }
}

fn push(frames: &mut Vec<Frame>, decoder: &mut FrameDecoder, frame: Frame) {
    match frame {
        Frame::Header(line) => {
            assert!(!line.contains(&b'\n'), "a header holds no newline");
            decoder.expect_payload(headers(&line));
            frames.push(Frame::Header(line));
        }
        Frame::Payload(chunk) => {
            assert!(!chunk.is_empty(), "payload chunks are never empty");
            if let Some(Frame::Payload(prev)) = frames.last_mut() {
                let mut joined = BytesMut::from(&prev[..]);
                joined.extend_from_slice(&chunk);
                *prev = joined.freeze();
            } else {
                frames.push(Frame::Payload(chunk));
            }
        }
    }
}

/// Runs every header decoder on `line`; returns the payload size the server would expect.
fn headers(line: &[u8]) -> u64 {
    let _ = decode_reply::<HelloReply>(line);
    let _ = decode_reply::<StatReply>(line);
    let _ = decode_reply::<ListBatch>(line);
    let _ = decode_reply::<SummaryReply>(line);
    let _ = decode_reply::<GetReply>(line);
    let _ = decode_reply::<PutReply>(line);
    let _ = decode_reply::<PartialReply>(line);
    let _ = decode_reply::<Done>(line);
    let _ = serde_json::from_slice::<PutTrailer>(line);
    match decode_request(line) {
        Ok(request) => {
            // Whatever decodes re-encodes to one line that decodes to the same request.
            if let Ok(encoded) = encode_request(&request) {
                let again = decode_request(&encoded[..encoded.len() - 1]);
                assert_eq!(again.as_ref(), Ok(&request), "round trip of {request:?}");
            }
            request.payload_size()
        }
        Err(err) => err.payload,
    }
}

/// Fuzz body: the frame decoder and the header decoders. The first byte picks the read sizes
/// and the header cap; the rest is the stream.
pub fn frames(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let max_header = if seed & 0x80 == 0 {
        usize::from(seed & 0x3f) + 1
    } else {
        ferry_protocol::MAX_HEADER_LEN
    };
    let whole = split(stream, 0, max_header);
    let chunked = split(stream, seed | 1, max_header);
    assert_eq!(whole, chunked, "chunking changed the frames");
    if whole.end.is_ok() {
        // Nothing lost or invented: the frames are the stream.
        let mut rebuilt = Vec::new();
        for frame in &whole.frames {
            match frame {
                Frame::Header(line) => {
                    rebuilt.extend_from_slice(line);
                    rebuilt.push(b'\n');
                }
                Frame::Payload(bytes) => rebuilt.extend_from_slice(bytes),
            }
        }
        assert_eq!(rebuilt, stream);
    }
}

/// A scratch tree: `base/root` (served) beside `base/outside` (never to change).
struct Tree {
    _base: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    outside: PathBuf,
}

impl Tree {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ferry-fuzz-")
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret.txt"), b"do not touch").unwrap();
        let tree = Self {
            _base: dir,
            base,
            root,
            outside,
        };
        tree.reset();
        tree
    }

    /// Puts the root back to its starting contents: a directory, a file, links inside it and
    /// links (relative and absolute) to the outside.
    fn reset(&self) {
        for entry in std::fs::read_dir(&self.root).unwrap() {
            let path = entry.unwrap().path();
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&path).unwrap(),
                Ok(_) => std::fs::remove_file(&path).unwrap(),
                Err(_) => {}
            }
        }
        std::fs::create_dir(self.root.join("d")).unwrap();
        std::fs::write(self.root.join("d/f.txt"), b"inside").unwrap();
        std::os::unix::fs::symlink("d", self.root.join("link")).unwrap();
        std::os::unix::fs::symlink("../outside", self.root.join("escape")).unwrap();
        std::os::unix::fs::symlink(&self.outside, self.root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../outside/secret.txt", self.root.join("secret")).unwrap();
    }

    /// Whether the root still holds exactly what [`Self::reset`] put there (names only: no
    /// request can write without creating or renaming something).
    fn root_untouched(&self) -> bool {
        let mut names: Vec<_> = std::fs::read_dir(&self.root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        let inside: Vec<_> = std::fs::read_dir(self.root.join("d"))
            .map(|entries| entries.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        names == ["abs", "d", "escape", "link", "secret"]
            && inside == ["f.txt"]
            && std::fs::read(self.root.join("d/f.txt")).ok().as_deref() == Some(&b"inside"[..])
    }

    /// Panics if anything beside the root changed.
    fn check_outside(&self) {
        let names = |dir: &Path| {
            let mut names: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(&self.base), ["outside", "root"], "beside the root");
        assert_eq!(names(&self.outside), ["secret.txt"], "outside the root");
        assert_eq!(
            std::fs::read(self.outside.join("secret.txt")).unwrap(),
            b"do not touch"
        );
    }
}

/// Fuzz body: the path rules, then the server's resolver on the same string. The first byte
/// picks whether a directory or a file is created.
pub fn paths(data: &[u8]) {
    static TREE: OnceLock<(Tree, ferry_server::fuzzing::Resolver)> = OnceLock::new();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // Any bytes have one wire form, and it names them exactly.
    let escaped = path::encode(rest);
    assert!(!escaped.chars().any(char::is_control));
    assert_eq!(path::decode(&escaped).unwrap(), rest);
    let wire = String::from_utf8_lossy(rest);
    if let Ok(components) = path::components(&wire) {
        assert!(!wire.starts_with('/'));
        if !wire.is_empty() {
            assert_eq!(components.join("/"), wire);
        }
        let mut raw_len = 0;
        for name in &components {
            assert!(!name.contains('/') && !name.chars().any(char::is_control));
            let raw = path::name_bytes(name).unwrap();
            assert!(!raw.is_empty() && raw.len() <= MAX_NAME_LEN);
            assert!(*raw != *b"." && *raw != *b"..");
            assert!(!raw.contains(&b'/') && !raw.contains(&0));
            assert_eq!(path::encode(&raw), *name, "one wire form per name");
            raw_len += raw.len() + 1;
        }
        assert!(raw_len <= MAX_PATH_LEN + 1);
    }
    let (tree, resolver) = TREE.get_or_init(|| {
        let tree = Tree::new();
        let resolver = ferry_server::fuzzing::Resolver::open(&tree.root).unwrap();
        (tree, resolver)
    });
    let _ = resolver.stat(&wire);
    if resolver.create(&wire, mode & 1 == 1).is_ok() {
        assert!(path::check(&wire).is_ok(), "{wire:?} was created");
        // A host path longer than PATH_MAX cannot be canonicalized (the server, working
        // relative to its root handle, has no such limit); the outside is checked regardless.
        let raw = path::decode(&wire).unwrap();
        match tree.root.join(std::ffi::OsStr::from_bytes(&raw)).canonicalize() {
            Ok(landed) => assert!(landed.starts_with(&tree.root), "{wire:?} at {landed:?}"),
            Err(err) => assert_eq!(err.raw_os_error(), Some(36), "{wire:?}: {err}"),
        }
        tree.check_outside();
        tree.reset();
    }
    tree.check_outside();
}

/// A real server on loopback over a [`Tree`], for the whole process.
struct Served {
    tree: Tree,
    runtime: tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
}

/// The secret of the token-protected server: an input that does not hold it must get nothing
/// but errors.
const FUZZ_TOKEN: &[u8] = b"fuzz-secret-7c1d";

impl Served {
    fn start(token: bool) -> Served {
        let tree = Tree::new();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = ferry_server::Config::new(&tree.root);
        config.header_timeout = Duration::from_secs(2);
        config.idle_timeout = Duration::from_secs(5);
        config.max_connections = 1024;
        config.max_per_address = 1024;
        // Every input comes from one address, and most fail the login on the guarded server:
        // the login budgets and the cap on connections not logged in would otherwise make the
        // fuzzer wait seconds per input (their own tests cover them). The budgets' code still
        // runs for every hello.
        config.max_unauthenticated = 1024;
        config.address_login_interval = Duration::from_micros(1);
        config.server_login_interval = Duration::from_micros(1);
        config.login_timeout = Duration::from_secs(5);
        if token {
            config.token = Some(String::from_utf8_lossy(FUZZ_TOKEN).into_owned());
            config.auth_delay = Duration::from_millis(1);
        }
        runtime.spawn(ferry_server::run(listener, config, std::future::pending()));
        Served {
            tree,
            runtime,
            addr,
        }
    }

    /// Sends `prelude` then `data`, half-closes, and returns everything the server said before
    /// it closed; fails if that takes too long.
    fn exchange(&self, prelude: &[u8], data: &[u8]) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.tree.reset();
        let finished = self.runtime.block_on(async {
            let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
            let (mut reader, mut writer) = stream.into_split();
            let send = async {
                let _ = writer.write_all(prelude).await;
                let _ = writer.write_all(data).await;
                let _ = writer.shutdown().await;
            };
            let receive = async {
                let mut replies = Vec::new();
                let _ = reader.read_to_end(&mut replies).await;
                replies
            };
            tokio::time::timeout(Duration::from_secs(20), async {
                tokio::join!(send, receive).1
            })
            .await
        });
        finished.expect("the server answered and closed in time")
    }
}

/// Fuzz body: the input as raw bytes to a real server, which must answer and close within a
/// few seconds while nothing outside its root changes. An even first byte picks an open server
/// and sends `hello` first; an odd one a token-protected server, where the input must get past
/// the gate itself, and an input without the token must get nothing but errors.
pub fn session(data: &[u8]) {
    static OPEN: OnceLock<Served> = OnceLock::new();
    static GUARDED: OnceLock<Served> = OnceLock::new();
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    if pick & 1 == 0 {
        let served = OPEN.get_or_init(|| Served::start(false));
        let replies = served.exchange(b"{\"op\":\"hello\",\"version\":1}\n", data);
        assert!(
            replies.starts_with(b"{\"ok\":true,\"version\":1"),
            "hello answered first"
        );
        served.tree.check_outside();
        return;
    }
    let served = GUARDED.get_or_init(|| Served::start(true));
    let replies = served.exchange(b"", data);
    if !data
        .windows(FUZZ_TOKEN.len())
        .any(|window| window == FUZZ_TOKEN)
    {
        for line in replies.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
            assert!(
                line.starts_with(b"{\"ok\":false,"),
                "without the token the server answered {:?}",
                String::from_utf8_lossy(line)
            );
        }
        assert!(served.tree.root_untouched(), "changed without the token");
    }
    served.tree.check_outside();
}
