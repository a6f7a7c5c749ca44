//! The transport: one TCP or TLS stream, or the pipes of an ssh child running
//! `ferry-server --stdio` (`ssh`), speaking the frame protocol (connecting, the TLS handshake
//! `tls` decides trust for, and `hello`), then typed headers and raw payload chunks in both
//! directions.
//!
//! The stream splits into a [`FrameReader`] and a [`FrameWriter`] so that a worker can keep
//! many requests in flight: the writer buffers requests and payloads while the reader, running
//! concurrently, takes the responses in order. Nothing here holds more than one read buffer and
//! one write buffer, whatever the file sizes.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use ferry_protocol::codec::CodecError;
use ferry_protocol::{
    ErrorBody, Frame, FrameDecoder, HelloReply, Request, Token, VERSION, decode_reply,
    encode_header, encode_request,
};
use ferry_server::rate::{Limits, Throttled};
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncWriteExt, BufWriter, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::FramedRead;
use tokio_util::either::Either;

use super::endpoint::Endpoint;
use super::error::EngineError;
use super::known_hosts::KnownHosts;
use super::ssh;
use super::tls;

/// Socket buffers on both sides; large enough that a 1 MiB chunk costs a handful of syscalls.
pub(crate) const IO_BUFFER: usize = 256 * 1024;
/// How long to wait for the server to accept a connection.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a reply may keep us waiting once it is due. Generous, since the server may first
/// hash a long prefix (a resumed `get`), but finite, so a vanished peer cannot hang a job.
const REPLY_TIMEOUT: Duration = Duration::from_secs(300);

/// The response side of a connection.
#[derive(Debug)]
pub(crate) struct FrameReader {
    framed: FramedRead<Throttled<Reader>, FrameDecoder>,
    addr: String,
    /// `hello`'s answer when it was read already (an ssh worker's), for [`Self::hello`].
    answered: Option<HelloReply>,
}

/// The request side of a connection.
#[derive(Debug)]
pub(crate) struct FrameWriter {
    writer: BufWriter<Throttled<Writer>>,
    addr: String,
}

/// A stream to the server that has said `hello`, in its two halves.
#[derive(Debug)]
pub(crate) struct FrameStream {
    pub(crate) reader: FrameReader,
    pub(crate) writer: FrameWriter,
    pub(crate) hello: HelloReply,
    /// How long the TCP handshake took: the link's round trip, which the kernel answers
    /// whatever the server is busy with.
    round_trip: Duration,
}

fn broken(addr: &str, message: impl std::fmt::Display) -> EngineError {
    EngineError::Connection {
        addr: addr.to_owned(),
        message: super::error::without_os_error(&message.to_string()).to_owned(),
    }
}

/// Addresses that have answered a plain `hello` in this process. A TLS server closes a plain
/// client without a word, but so does a tunnel or proxy whose server has gone; once an
/// address has spoken plain ferry, a later hang-up there is the second kind, and a TLS hint
/// would send the user the wrong way.
static SPOKE_PLAIN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn spoke_plain(addr: &str) -> bool {
    SPOKE_PLAIN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .contains(addr)
}

fn record_plain(addr: &str) {
    let mut spoken = SPOKE_PLAIN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !spoken.contains(addr) {
        spoken.insert(addr.to_owned());
    }
}

/// A plain hello that met garbage or a hang-up from an address that never spoke plain ferry
/// here. A TLS server answers a plain client exactly so, but so does a tunnel to nothing:
/// the hint offers TLS as one possible cause, not as the fix.
fn hint_tls(error: EngineError) -> EngineError {
    const HINT: &str = "(the server may speak TLS: then use a ferrys:// location)";
    match error {
        EngineError::Protocol(message) => EngineError::Protocol(format!("{message} {HINT}")),
        EngineError::Connection { addr, message } => EngineError::Connection {
            addr,
            message: format!("{message} {HINT}"),
        },
        other => other,
    }
}

/// The receiving half of a connection: plain TCP or TLS, or ssh's stdout.
pub(crate) type Reader = Either<Either<OwnedReadHalf, ReadHalf<tls::TlsStream>>, ssh::SshReader>;

/// The sending half of a connection: plain TCP or TLS, or ssh's stdin.
pub(crate) type Writer = Either<Either<OwnedWriteHalf, WriteHalf<tls::TlsStream>>, ssh::SshWriter>;

/// Splits a plain stream into halves that own their side without a lock.
pub(crate) fn split_plain(stream: TcpStream) -> (Reader, Writer) {
    let (reader, writer) = stream.into_split();
    (
        Either::Left(Either::Left(reader)),
        Either::Left(Either::Left(writer)),
    )
}

/// Splits a TLS stream; its halves share the session behind tokio's split lock.
pub(crate) fn split_tls(stream: tls::TlsStream) -> (Reader, Writer) {
    let (reader, writer) = tokio::io::split(stream);
    (
        Either::Left(Either::Right(reader)),
        Either::Left(Either::Right(writer)),
    )
}

/// The halves of a connection over ssh; the child lives as long as either.
fn split_ssh(reader: ssh::SshReader, writer: ssh::SshWriter) -> (Reader, Writer) {
    (Either::Right(reader), Either::Right(writer))
}

/// Shakes hands with the server of a TLS `endpoint` and reports how its certificate is
/// trusted, without saying `hello`, so nothing secret is sent. With `accept_new` a new
/// certificate is recorded in `known_hosts`; the CLI and the TUI call this first to tell the
/// user, or ask them, about a certificate seen for the first time.
pub async fn check_trust(
    endpoint: &Endpoint,
    known_hosts: Option<&KnownHosts>,
) -> Result<tls::Trusted, EngineError> {
    let addr = endpoint.address();
    let connecting = async {
        let stream = TcpStream::connect(&addr)
            .await
            .map_err(|e| EngineError::Connection {
                addr: addr.clone(),
                message: e.to_string(),
            })?;
        let (mut stream, trusted) = tls::connect(stream, endpoint, &addr, known_hosts).await?;
        // A polite close; the server only logs the connection's end.
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
        Ok(trusted)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| EngineError::Connection {
            addr: addr.clone(),
            message: "timed out connecting".into(),
        })?
}

impl FrameStream {
    /// Connects, sets `TCP_NODELAY` (small pipelined requests must not wait for Nagle), makes
    /// sure the server is trusted when the endpoint is TLS, and exchanges `hello`.
    pub(crate) async fn open(endpoint: &Endpoint) -> Result<FrameStream, EngineError> {
        let known_hosts = KnownHosts::default_location();
        Self::open_with(endpoint, known_hosts.as_ref()).await
    }

    /// [`Self::open`] with the known-hosts file to consult (and to record a first use in).
    pub(crate) async fn open_with(
        endpoint: &Endpoint,
        known_hosts: Option<&KnownHosts>,
    ) -> Result<FrameStream, EngineError> {
        Self::open_then(endpoint, known_hosts, &[]).await
    }

    /// [`Self::open_with`], sending `first` right behind `hello`, before its answer: the
    /// server takes requests in order and answers them only once `hello` has succeeded
    /// (PROTOCOL.md, "hello"), so a first question costs no round trip of its own. This reads
    /// `hello`'s answer; the answers to `first` are the caller's to read, in order. After a
    /// refused `hello` the connection is dropped, answers unread.
    pub(crate) async fn open_then(
        endpoint: &Endpoint,
        known_hosts: Option<&KnownHosts>,
        first: &[Request],
    ) -> Result<FrameStream, EngineError> {
        if let Some(target) = &endpoint.ssh {
            return Self::open_ssh(target, first).await;
        }
        let mut conn = Self::connect(endpoint, known_hosts).await?;
        let said = async {
            for request in first {
                conn.writer.send(request).await?;
            }
            conn.writer.flush().await?;
            conn.reader.hello(endpoint).await
        };
        conn.hello = said.await?;
        Ok(conn)
    }

    /// Connects and buffers `hello` without waiting for its answer (nor sending it: the
    /// caller's first requests go out with it, in one round trip), for a job's worker, whose
    /// job has logged in already. The answer comes first: [`FrameReader::hello`] reads it
    /// before the answers to the caller's requests. Over ssh the answer is waited for here,
    /// so that a child that fails is reported in ssh's own words; `hello` then hands it over.
    pub(crate) async fn open_unanswered(endpoint: &Endpoint) -> Result<FrameStream, EngineError> {
        let known_hosts = KnownHosts::default_location();
        if let Some(target) = &endpoint.ssh {
            let mut conn = Self::open_ssh(target, &[]).await?;
            conn.reader.answered = Some(conn.hello.clone());
            return Ok(conn);
        }
        Self::connect(endpoint, known_hosts.as_ref()).await
    }

    /// Connects (through TLS for a TLS endpoint) and buffers `hello`.
    async fn connect(
        endpoint: &Endpoint,
        known_hosts: Option<&KnownHosts>,
    ) -> Result<FrameStream, EngineError> {
        let addr = endpoint.address();
        // Before a byte leaves: a token bound for another machine must not travel in clear.
        tls::check_cleartext(endpoint, &addr)?;
        let (read, write, socket, round_trip) = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let started = std::time::Instant::now();
            let stream = TcpStream::connect(&addr)
                .await
                .map_err(|e| broken(&addr, e))?;
            let round_trip = started.elapsed();
            stream.set_nodelay(true).map_err(|e| broken(&addr, e))?;
            // A handle of our own on the socket, to size its receive buffer under a rate limit
            // (the TLS stream hides the socket once split).
            let socket = std::os::fd::AsFd::as_fd(&stream)
                .try_clone_to_owned()
                .map_err(|e| broken(&addr, e))?;
            let (read, write) = if endpoint.tls {
                let (stream, _trusted) = tls::connect(stream, endpoint, &addr, known_hosts).await?;
                split_tls(stream)
            } else {
                split_plain(stream)
            };
            Ok::<_, EngineError>((read, write, socket, round_trip))
        })
        .await
        .map_err(|_| broken(&addr, "timed out connecting"))??;
        let mut conn = FrameStream::new(read, write, addr, Some(socket), round_trip);
        let hello = Request::Hello {
            version: VERSION,
            token: endpoint.token.clone().map(Token),
            user: endpoint.user.clone(),
            password: endpoint.password.clone().map(Token),
        };
        conn.writer.send(&hello).await?;
        Ok(conn)
    }

    /// A connection over `read` and `write`; `socket` (a handle of its own on a TCP socket)
    /// lets a rate limit size the receive buffer, which an ssh child's pipe has none of.
    fn new(
        read: Reader,
        write: Writer,
        addr: String,
        socket: Option<std::os::fd::OwnedFd>,
        round_trip: Duration,
    ) -> FrameStream {
        let read = Throttled::new(read, Limits::default());
        let read = match socket {
            Some(socket) => read.with_socket(socket),
            None => read,
        };
        FrameStream {
            reader: FrameReader {
                framed: FramedRead::with_capacity(read, FrameDecoder::new(), IO_BUFFER),
                addr: addr.clone(),
                answered: None,
            },
            writer: FrameWriter {
                writer: BufWriter::with_capacity(
                    IO_BUFFER,
                    Throttled::new(write, Limits::default()),
                ),
                addr,
            },
            hello: HelloReply {
                version: VERSION,
                server: String::new(),
                read_only: false,
                identity: None,
                home: None,
            },
            round_trip,
        }
    }

    /// [`Self::open_then`] through ssh: starts the child (after the destination's master is
    /// up, or as the one making it) and says `hello` without credentials, ssh having
    /// authenticated the user. Any failure before the answer is reported in ssh's words.
    async fn open_ssh(
        target: &ssh::SshTarget,
        first: &[Request],
    ) -> Result<FrameStream, EngineError> {
        let (opening, dir) = ssh::Opening::wait(target).await?;
        let started = std::time::Instant::now();
        let (child, read, write) = ssh::spawn(target, &dir)?;
        let (read, write) = split_ssh(read, write);
        let mut conn = FrameStream::new(read, write, target.label(), None, Duration::ZERO);
        let hello = Request::Hello {
            version: VERSION,
            token: None,
            user: None,
            password: None,
        };
        let said = async {
            conn.writer.send(&hello).await?;
            for request in first {
                conn.writer.send(request).await?;
            }
            conn.writer.flush().await?;
            conn.reader.header::<HelloReply>().await
        };
        let answer = match said.await {
            Ok(answer) => answer,
            Err(cause) => return Err(child.failure(cause).await),
        };
        conn.hello = answer.map_err(|body| EngineError::remote(&target.label(), body))?;
        // The handshake's time is the nearest this knows of the link's round trip.
        conn.round_trip = started.elapsed();
        opening.opened();
        Ok(conn)
    }

    /// Obeys `recv` for the bytes it reads and `send` for those it writes from now on (a
    /// job's worker connections, under the job's and the engine's rate limits). The receive
    /// buffer holds the link's round trip at the rate, and the 20 ms a loopback link gets,
    /// so a limited reader keeps its pace over a long link too.
    pub(crate) fn limit(&mut self, recv: Limits, send: Limits) {
        let reader = self.reader.framed.get_mut();
        reader.set_limits(recv);
        reader.set_buffer_time(self.round_trip + ferry_server::rate::BUFFER_TIME);
        self.writer.writer.get_mut().set_limits(send);
    }

    /// [`Self::limit`] for one of `share` connections reading under the same limit at once
    /// (a download's streams): its receive buffer holds only its part of the rate's.
    pub(crate) fn limit_shared(&mut self, recv: Limits, send: Limits, share: usize) {
        self.limit(recv, send);
        let share = u64::try_from(share).unwrap_or(u64::MAX);
        self.reader.framed.get_mut().set_buffer_share(share);
    }

    /// Sends one request and waits for its single header reply.
    pub(crate) async fn request<T: DeserializeOwned>(
        &mut self,
        request: &Request,
    ) -> Result<Result<T, ErrorBody>, EngineError> {
        self.writer.send(request).await?;
        self.writer.flush().await?;
        self.reader.header().await
    }
}

impl FrameWriter {
    /// Buffers a request header; [`flush`](Self::flush) sends it.
    pub(crate) async fn send(&mut self, request: &Request) -> Result<(), EngineError> {
        let line = encode_request(request).map_err(|e| EngineError::Protocol(e.to_string()))?;
        self.write(&line).await
    }

    /// Buffers any header line (a trailer).
    pub(crate) async fn send_header<T: Serialize>(
        &mut self,
        header: &T,
    ) -> Result<(), EngineError> {
        let line = encode_header(header).map_err(|e| EngineError::Protocol(e.to_string()))?;
        self.write(&line).await
    }

    /// Buffers payload bytes.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), EngineError> {
        self.writer
            .write_all(bytes)
            .await
            .map_err(|e| broken(&self.addr, e))
    }

    pub(crate) async fn flush(&mut self) -> Result<(), EngineError> {
        self.writer.flush().await.map_err(|e| broken(&self.addr, e))
    }
}

impl FrameReader {
    /// Reads the answer to `hello`, the first thing a connection to `endpoint` hears.
    /// Refusals at the door (a token, a full server) name the server, there being no path.
    pub(crate) async fn hello(&mut self, endpoint: &Endpoint) -> Result<HelloReply, EngineError> {
        if let Some(answered) = self.answered.take() {
            return Ok(answered);
        }
        let addr = self.addr.clone();
        let hello = self
            .header::<HelloReply>()
            .await
            .map_err(|e| {
                if endpoint.tls || spoke_plain(&addr) {
                    e
                } else {
                    hint_tls(e)
                }
            })?
            .map_err(|body| EngineError::remote(&addr, body))?;
        if !endpoint.tls {
            record_plain(&addr);
        }
        Ok(hello)
    }

    /// The error for a server that stopped answering for [`REPLY_TIMEOUT`].
    fn silent(&self) -> EngineError {
        broken(
            &self.addr,
            format!("no answer for {} s", REPLY_TIMEOUT.as_secs()),
        )
    }

    async fn next(&mut self) -> Result<Frame, EngineError> {
        let next = tokio::time::timeout(REPLY_TIMEOUT, self.framed.next())
            .await
            .map_err(|_| self.silent())?;
        match next {
            Some(Ok(frame)) => Ok(frame),
            Some(Err(CodecError::Io(e))) => Err(broken(&self.addr, e)),
            Some(Err(CodecError::Frame(e))) => Err(EngineError::Protocol(e.to_string())),
            None => Err(broken(&self.addr, "the server closed the connection")),
        }
    }

    /// Whether the server has hung up (or said something unasked, which only a server about to
    /// hang up does), judged without waiting: a session left idle past the server's timeout
    /// finds out here instead of failing its next request.
    pub(crate) fn is_stale(&mut self) -> bool {
        use futures_util::FutureExt;
        self.framed.next().now_or_never().is_some()
    }

    /// Reads the next header as the reply `T`, or the error the server sent instead.
    pub(crate) async fn header<T: DeserializeOwned>(
        &mut self,
    ) -> Result<Result<T, ErrorBody>, EngineError> {
        match self.next().await? {
            Frame::Header(line) => {
                decode_reply::<T>(&line).map_err(|e| EngineError::Protocol(e.to_string()))
            }
            Frame::Payload(_) => Err(EngineError::Protocol(
                "payload bytes where a header was expected".into(),
            )),
        }
    }

    /// Whether bytes of the next reply have already arrived, so reading on is not likely to
    /// wait on the network.
    pub(crate) fn has_buffered(&self) -> bool {
        !self.framed.read_buffer().is_empty()
    }

    /// Announces that the header just read is followed by `size` payload bytes.
    pub(crate) fn expect_payload(&mut self, size: u64) {
        self.framed.decoder_mut().expect_payload(size);
    }

    /// Appends up to `room` bytes of a payload the caller accounts for itself (the decoder was
    /// told of none) to `out`, waiting only for the first of them: bytes already buffered
    /// first, then straight from the socket, so a large download is copied once, into buffers
    /// the caller recycles. 0 only when `room` is 0.
    pub(crate) async fn raw_payload_into(
        &mut self,
        out: &mut Vec<u8>,
        room: usize,
    ) -> Result<usize, EngineError> {
        use bytes::{Buf, BufMut};
        use tokio::io::AsyncReadExt;
        if room == 0 {
            return Ok(0);
        }
        let buffered = self.framed.read_buffer_mut();
        if !buffered.is_empty() {
            let n = room.min(buffered.len());
            out.extend_from_slice(&buffered[..n]);
            buffered.advance(n);
            return Ok(n);
        }
        let mut limited = (&mut *out).limit(room);
        let read =
            tokio::time::timeout(REPLY_TIMEOUT, self.framed.get_mut().read_buf(&mut limited))
                .await
                .map_err(|_| self.silent())?;
        match read {
            Ok(0) => Err(broken(&self.addr, "the server closed the connection")),
            Ok(n) => Ok(n),
            Err(e) => Err(broken(&self.addr, e)),
        }
    }

    /// The next chunk of the announced payload; `None` once it has all been read.
    pub(crate) async fn payload_chunk(&mut self) -> Result<Option<Bytes>, EngineError> {
        if self.framed.decoder().payload_remaining() == 0 {
            return Ok(None);
        }
        match self.next().await? {
            Frame::Payload(bytes) => Ok(Some(bytes)),
            Frame::Header(_) => Err(EngineError::Protocol(
                "a header where payload bytes were expected".into(),
            )),
        }
    }
}
