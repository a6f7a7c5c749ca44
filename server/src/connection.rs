//! One client's framed transport: splitting its bytes into frames under the header cap and the
//! timeouts, and writing replies through one buffer that is flushed only when no further
//! pipelined request is waiting. What the frames mean is the handler's and the ops' business.
//!
//! A connection runs over plain TCP, TLS, or the process's own stdin and stdout
//! (`ferry-server --stdio`, one session over ssh). Plain TCP keeps its split halves and the
//! non-blocking `try_read_buf` top-ups, since it is the hot path of bulk transfers; TLS and
//! stdio go through the same buffers (tokio-util's `Either` carries them all).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use ferry_protocol::{Frame, FrameDecoder, FrameError};
use futures_util::FutureExt;
use rustix::event::{PollFd, PollFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::io::{ReadHalf, Stdin, Stdout, WriteHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::unix::pipe;
use tokio::time::Instant;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::config::Config;
use crate::rate::{Limits, PIECE};
use crate::work_budget::WorkBudget;

/// The read buffer's first size: a connection that only lists and fetches never needs more,
/// so a thousand idle or chatty clients cost little memory.
const INITIAL_READ_CAPACITY: usize = 16 * 1024;
/// How far the read buffer grows, doubling each time a read fills it: a fast stream of
/// pipelined uploads then costs few syscalls.
const READ_CAPACITY: usize = 512 * 1024;
/// Replies are gathered up to this size before they reach the socket; a bigger reply (a `get`
/// chunk) goes to the socket directly instead of being copied here first, so the buffer's pages
/// are never touched by bulk data and each connection stays small.
const WRITE_CAPACITY: usize = 64 * 1024;
/// After a fatal error reply, how long and how much input is read and dropped before closing,
/// so the peer's unread bytes do not turn the close into a reset that loses the reply.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 4 * 1024 * 1024;
/// How often a peer that has half-closed its side is asked again whether it is still there
/// while expensive work runs for it: after the end of its stream, reads no longer report a
/// reset, so the socket's pending error is polled instead.
const GONE_POLL: Duration = Duration::from_millis(100);

/// Why a connection ended early. Each is logged; none stops the listener.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("header line longer than the protocol allows")]
    HeaderTooLong,
    #[error("the peer closed the connection inside a message")]
    Truncated,
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("no request for the idle timeout")]
    Idle,
    #[error("too many failed hellos")]
    Refused,
    #[error("the server is shutting down")]
    Cancelled,
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
}

type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

/// The byte stream under a connection, once any TLS handshake is done.
#[derive(Debug)]
pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
    /// The process's stdin and stdout: one session whose peer (ssh) already authenticated the
    /// user. Nothing else may write to stdout while it is in use.
    Stdio(StdinStream, StdoutStream),
}

/// Stdin as a non-blocking pipe when it is one (as under ssh), read through the reactor;
/// otherwise tokio's stdin, which reads on a blocking thread and costs a copy and a thread
/// hop per read (half the upload speed of a pipe, measured).
type StdinStream = Either<pipe::Receiver, Stdin>;
/// Stdout likewise.
type StdoutStream = Either<pipe::Sender, Stdout>;

/// The receiving half of a [`Transport`]: plain TCP, or TLS or stdin.
type Reader = Either<OwnedReadHalf, Either<ReadHalf<TlsStream>, StdinStream>>;

/// The sending half of a [`Transport`]: plain TCP, or TLS or stdout.
type Writer = Either<OwnedWriteHalf, Either<WriteHalf<TlsStream>, StdoutStream>>;

impl Transport {
    /// The byte stream of an accepted socket: plain, or TLS once the server's side of the
    /// handshake is done within `within`. A client that speaks plain text, garbage or nothing
    /// to a TLS server gets `None` and a debug line: only this connection ends.
    pub async fn accept(
        stream: TcpStream,
        tls: Option<&Arc<rustls::ServerConfig>>,
        within: Duration,
        cancel: &CancellationToken,
    ) -> Option<Self> {
        let Some(tls) = tls else {
            return Some(Transport::Plain(stream));
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(tls));
        let accepted = tokio::select! {
            biased;
            () = cancel.cancelled() => return None,
            accepted = tokio::time::timeout(within, acceptor.accept(stream)) => accepted,
        };
        match accepted {
            Ok(Ok(stream)) => Some(Transport::Tls(Box::new(stream))),
            Ok(Err(err)) => {
                debug!(%err, "TLS handshake failed; closing");
                None
            }
            Err(_elapsed) => {
                debug!("TLS handshake timed out; closing");
                None
            }
        }
    }

    fn split(self) -> (Reader, Writer) {
        match self {
            Transport::Plain(stream) => {
                let (reader, writer) = stream.into_split();
                (Either::Left(reader), Either::Left(writer))
            }
            Transport::Tls(stream) => {
                let (reader, writer) = tokio::io::split(*stream);
                (
                    Either::Right(Either::Left(reader)),
                    Either::Right(Either::Left(writer)),
                )
            }
            Transport::Stdio(stdin, stdout) => (
                Either::Right(Either::Right(stdin)),
                Either::Right(Either::Right(stdout)),
            ),
        }
    }

    /// The process's own stdin and stdout as one session's byte stream: pipes go through the
    /// reactor (a copy of each descriptor, made non-blocking), anything else (a terminal, a
    /// file) through tokio's blocking stdio.
    pub fn stdio() -> Self {
        use std::os::fd::AsFd;
        let was_blocking = |fd: std::os::fd::BorrowedFd<'_>| {
            rustix::fs::fcntl_getfl(fd)
                .is_ok_and(|flags| !flags.contains(rustix::fs::OFlags::NONBLOCK))
        };
        let stdin_fd = std::io::stdin();
        let stdout_fd = std::io::stdout();
        STDIN_WAS_BLOCKING.store(was_blocking(stdin_fd.as_fd()), Ordering::Relaxed);
        STDOUT_WAS_BLOCKING.store(was_blocking(stdout_fd.as_fd()), Ordering::Relaxed);
        // Under ssh both are pipes to sshd: 1 MiB instead of the kernel's 64 KiB lets a large
        // transfer move in far fewer turns (measured in bench/ssh.py); a refusal keeps 64 KiB.
        for fd in [stdin_fd.as_fd(), stdout_fd.as_fd()] {
            let _ = rustix::pipe::fcntl_setpipe_size(fd, 1024 * 1024);
        }
        let stdin = stdin_fd
            .as_fd()
            .try_clone_to_owned()
            .and_then(pipe::Receiver::from_owned_fd)
            .map_or_else(|_| Either::Right(tokio::io::stdin()), Either::Left);
        let stdout = stdout_fd
            .as_fd()
            .try_clone_to_owned()
            .and_then(pipe::Sender::from_owned_fd)
            .map_or_else(|_| Either::Right(tokio::io::stdout()), Either::Left);
        debug!(
            stdin_pipe = matches!(stdin, Either::Left(_)),
            stdout_pipe = matches!(stdout, Either::Left(_)),
            "stdio transport"
        );
        Transport::Stdio(stdin, stdout)
    }
}

/// Whether stdin and stdout were blocking before [`Transport::stdio`] made their pipes
/// non-blocking; the flag belongs to the pipe, shared with whatever else holds it (a shell
/// running more commands on the same pipe), so it is given back by [`restore_stdio`].
static STDIN_WAS_BLOCKING: AtomicBool = AtomicBool::new(false);
static STDOUT_WAS_BLOCKING: AtomicBool = AtomicBool::new(false);

/// Makes stdin and stdout blocking again if they were before the session; call once the
/// session is over.
pub(crate) fn restore_stdio() {
    use std::os::fd::AsFd;
    let restore = |fd: std::os::fd::BorrowedFd<'_>, was_blocking: &AtomicBool| {
        if was_blocking.load(Ordering::Relaxed)
            && let Ok(flags) = rustix::fs::fcntl_getfl(fd)
        {
            let _ = rustix::fs::fcntl_setfl(fd, flags - rustix::fs::OFlags::NONBLOCK);
        }
    };
    restore(std::io::stdin().as_fd(), &STDIN_WAS_BLOCKING);
    restore(std::io::stdout().as_fd(), &STDOUT_WAS_BLOCKING);
}

/// Reads what is already waiting into `buf` without waiting; `Ok(0)` when nothing is (or at
/// the end of the stream).
fn read_waiting<B: bytes::BufMut>(reader: &mut Reader, buf: &mut B) -> io::Result<usize> {
    match reader {
        Either::Left(plain) => match plain.try_read_buf(buf) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(0),
            other => other,
        },
        // TLS and stdin have no readiness-based read; one poll that does not wait does the
        // same (a read it starts is kept by the stream and returned by the next one).
        Either::Right(other) => other.read_buf(buf).now_or_never().unwrap_or(Ok(0)),
    }
}

/// The framed byte stream of one client.
#[derive(Debug)]
pub(crate) struct Connection {
    reader: Reader,
    buf: BytesMut,
    /// The free room the next read asks for; grows while reads fill it.
    read_room: usize,
    decoder: FrameDecoder,
    writer: BufWriter<Writer>,
    /// When the first byte of a header that is not complete yet arrived.
    header_started: Option<Instant>,
    /// Bytes of the current request's payload still to come; they are never parsed.
    payload_left: u64,
    /// A header taken from the buffer by [`Self::buffered_request`] and given back.
    unread: Option<Bytes>,
    idle_timeout: Duration,
    header_timeout: Duration,
    /// How long a payload read or a write may make no progress at all.
    stall_timeout: Duration,
    cancel: CancellationToken,
    /// The peer has closed its side; it may still read answers.
    eof: bool,
    /// What this connection may still spend on expensive requests.
    work: WorkBudget,
    /// The rate limits the bytes this connection reads obey (`--limit-rate`,
    /// `--limit-rate-total`)...
    recv: Limits,
    /// ...and those it writes.
    send: Limits,
}

impl Connection {
    /// Frames `stream` under `config`'s header cap, timeouts and work budget; `cancel` ends
    /// every wait of the connection.
    pub fn new(stream: Transport, config: &Config, cancel: CancellationToken) -> Self {
        let (reader, writer) = stream.split();
        Self {
            reader,
            buf: BytesMut::with_capacity(INITIAL_READ_CAPACITY),
            read_room: INITIAL_READ_CAPACITY,
            decoder: FrameDecoder::with_max_header(config.header_limit()),
            writer: BufWriter::with_capacity(WRITE_CAPACITY, writer),
            header_started: None,
            payload_left: 0,
            unread: None,
            idle_timeout: config.idle_timeout,
            header_timeout: config.header_timeout,
            stall_timeout: config.stall_timeout,
            cancel,
            eof: false,
            work: WorkBudget::new(config.work_burst, config.work_rate),
            recv: Limits::default(),
            send: Limits::default(),
        }
    }

    /// Obeys `recv` for what it reads and `send` for what it writes from now on: every byte
    /// counts, headers too, which is a hair stricter than the payload alone.
    pub fn limit(&mut self, recv: Limits, send: Limits) {
        // Over TLS and stdio the kernel's buffer is left as it is.
        if let (Some(rate), Either::Left(plain)) = (recv.tightest(), &self.reader) {
            crate::rate::fit_receive_buffer(plain.as_ref(), Some(rate), crate::rate::BUFFER_TIME);
        }
        self.recv = recv;
        self.send = send;
    }

    /// Waits until `limits` let bytes move; ends early if the server shuts down.
    async fn rate_turn(&self, limits: &Limits) -> Result<(), ConnError> {
        if !limits.active() {
            return Ok(());
        }
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Err(ConnError::Cancelled),
            () = limits.ready() => Ok(()),
        }
    }

    /// Charges `units` of expensive work done to this connection's budget.
    pub fn charge(&mut self, units: u64) {
        self.work.charge(units);
    }

    /// Waits while this connection's budget for expensive work is spent; ends early with the
    /// connection if the peer goes or the server shuts down meanwhile.
    pub async fn work_turn(&mut self) -> Result<(), ConnError> {
        let wait = self.work.wait();
        if wait.is_zero() {
            return Ok(());
        }
        debug!(wait_ms = wait.as_millis(), "work budget spent; waiting");
        let cancel = self.cancel.clone();
        tokio::select! {
            () = tokio::time::sleep(wait) => Ok(()),
            () = cancel.cancelled() => Err(ConnError::Cancelled),
            gone = self.peer_gone() => Err(gone),
        }
    }

    /// Resolves only once the peer is gone (a reset or another read error), for expensive
    /// work to stop. Meanwhile what the peer sends is read into the buffer, at most
    /// [`READ_CAPACITY`] bytes of requests waiting, beyond which nothing more is read. The
    /// end of the peer's stream alone is not gone: a client may half-close and still read its
    /// answers. Cancel-safe: nothing read is ever lost.
    pub async fn peer_gone(&mut self) -> ConnError {
        loop {
            let room = READ_CAPACITY.saturating_sub(self.buf.len());
            if room == 0 {
                return std::future::pending().await;
            }
            if self.eof {
                tokio::time::sleep(GONE_POLL).await;
                // Once the stream has ended, reads say so forever, even after a reset: the
                // socket's pending error is what tells a peer that is gone from one that only
                // half-closed. (Over TLS it cannot be asked; the next write finds it.)
                if let Either::Left(plain) = &self.reader
                    && let Some(err) = plain.as_ref().take_error().ok().flatten()
                {
                    return ConnError::Io(err);
                }
                // Over stdio, a peer that is gone has closed our stdout too (ssh died).
                if self.stdout_closed() {
                    return ConnError::Io(io::ErrorKind::BrokenPipe.into());
                }
                continue;
            }
            if self.buf.capacity() - self.buf.len() < INITIAL_READ_CAPACITY {
                self.buf.reserve(INITIAL_READ_CAPACITY);
            }
            let mut limited = (&mut self.buf).limit(self.recv.piece(room));
            match self.reader.read_buf(&mut limited).await {
                Ok(0) => self.eof = true,
                // Cancel-safe, so charged but not waited for: the next read waits instead.
                Ok(n) => self.recv.charge(n),
                Err(err) => return ConnError::Io(err),
            }
        }
    }

    /// Whether stdout is a pipe whose reading end is closed: nobody will ever read an answer.
    /// Asked without waiting (a zero-timeout poll reports `POLLERR` on such a pipe), since a
    /// write of nothing to it succeeds.
    fn stdout_closed(&self) -> bool {
        let Either::Right(Either::Right(Either::Left(stdout))) = self.writer.get_ref() else {
            return false;
        };
        let mut fds = [PollFd::new(stdout, PollFlags::OUT)];
        let now = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        rustix::event::poll(&mut fds, Some(&now)).is_ok()
            && fds[0].revents().contains(PollFlags::ERR)
    }

    /// The next request header; `Ok(None)` when the peer closed cleanly between messages.
    ///
    /// Buffered replies are flushed just before the socket would be waited on, so a burst of
    /// pipelined requests is answered with one write instead of one per reply.
    pub async fn read_request(&mut self) -> Result<Option<Bytes>, ConnError> {
        // An op always consumes its payload; this only guards the framing if one did not.
        self.skip_payload().await?;
        if let Some(line) = self.unread.take() {
            return Ok(Some(line));
        }
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(Frame::Header(line))) => {
                    self.header_started = None;
                    return Ok(Some(line));
                }
                // Payloads are accounted here, never announced to the decoder.
                Ok(Some(Frame::Payload(_))) => {
                    return Err(ConnError::Protocol("payload without a header"));
                }
                Ok(None) => {}
                Err(FrameError::HeaderTooLong { .. }) => return Err(ConnError::HeaderTooLong),
                Err(FrameError::Truncated(_)) => return Err(ConnError::Truncated),
            }
            let (deadline, stalled) = if self.buf.is_empty() {
                (after(Instant::now(), self.idle_timeout), ConnError::Idle)
            } else {
                let start = *self.header_started.get_or_insert_with(Instant::now);
                (
                    after(start, self.header_timeout),
                    ConnError::Timeout("the rest of a header"),
                )
            };
            if self.fill(deadline, stalled).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ConnError::Truncated)
                };
            }
        }
    }

    /// The next request header if it has already arrived whole, without waiting or reading the
    /// socket; give it back with [`Self::unread`] if it is not to be answered now.
    pub fn buffered_request(&mut self) -> Option<Bytes> {
        if self.unread.is_some() || self.payload_left > 0 {
            return None;
        }
        // Only a complete line under the cap is taken; anything else is left for
        // `read_request`, which reports it properly.
        let end = self.buf.iter().position(|&b| b == b'\n')?;
        if end >= ferry_protocol::MAX_HEADER_LEN {
            return None;
        }
        match self.decoder.decode(&mut self.buf) {
            Ok(Some(Frame::Header(line))) => Some(line),
            _ => None,
        }
    }

    /// Gives back a header taken with [`Self::buffered_request`]; the next `read_request`
    /// returns it.
    pub fn unread(&mut self, line: Bytes) {
        self.unread = Some(line);
    }

    /// Reads a header line that must follow (a `put` trailer); the peer may not stop here.
    pub async fn read_header(&mut self) -> Result<Bytes, ConnError> {
        self.read_request().await?.ok_or(ConnError::Truncated)
    }

    /// Reads more of the stream into the buffer; 0 at the end of the stream.
    async fn fill(&mut self, deadline: Instant, stalled: ConnError) -> Result<usize, ConnError> {
        if !self.writer.buffer().is_empty() {
            self.flush().await?;
        }
        if self.buf.capacity() - self.buf.len() < self.read_room / 4 {
            self.buf.reserve(self.read_room);
        }
        let room = self.buf.capacity() - self.buf.len();
        self.rate_turn(&self.recv).await?;
        let mut limited = (&mut self.buf).limit(self.recv.piece(room));
        let read = tokio::select! {
            biased;
            () = self.cancel.cancelled() => return Err(ConnError::Cancelled),
            read = tokio::time::timeout_at(deadline, self.reader.read_buf(&mut limited)) => read,
        };
        let n = match read {
            Ok(n) => n?,
            Err(_elapsed) => return Err(stalled),
        };
        self.recv.charge(n);
        if n == room {
            self.read_room = (self.read_room * 2).min(READ_CAPACITY);
        }
        Ok(n)
    }

    /// Announces that the header just read is followed by `size` payload bytes.
    pub fn expect_payload(&mut self, size: u64) {
        self.payload_left = size;
    }

    /// Payload bytes announced and not read yet.
    pub fn payload_left(&self) -> u64 {
        self.payload_left
    }

    /// Whether the `size` bytes after the current header, and with `line_after` a whole header
    /// line after them, have already arrived, so reading them cannot wait on the peer.
    pub fn has_buffered(&self, size: u64, line_after: bool) -> bool {
        let Ok(size) = usize::try_from(size) else {
            return false;
        };
        match self.buf.get(size..) {
            Some(rest) => !line_after || rest.contains(&b'\n'),
            None => false,
        }
    }

    /// Appends payload bytes to `out`, at most up to its spare capacity, waiting only for the
    /// first of them; 0 once the payload is all read (or `out` is full).
    ///
    /// Bytes that came in with the header are taken from the buffer; the rest is read from the
    /// socket straight into `out`, so a large upload is copied once, in big pieces.
    pub async fn read_payload_into(&mut self, out: &mut Vec<u8>) -> Result<usize, ConnError> {
        let room = usize::try_from(self.payload_left)
            .map_or(usize::MAX, |left| left)
            .min(out.capacity() - out.len());
        if room == 0 {
            return Ok(0);
        }
        let n = if self.buf.is_empty() {
            if !self.writer.buffer().is_empty() {
                self.flush().await?;
            }
            self.rate_turn(&self.recv).await?;
            let room = self.recv.piece(room);
            let deadline = after(Instant::now(), self.stall_timeout);
            let mut limited = (&mut *out).limit(room);
            let read = tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Err(ConnError::Cancelled),
                read = tokio::time::timeout_at(deadline, self.reader.read_buf(&mut limited)) => read,
            };
            let mut n = match read {
                Ok(Ok(0)) => return Err(ConnError::Truncated),
                Ok(n) => n?,
                Err(_elapsed) => return Err(ConnError::Timeout("payload bytes")),
            };
            self.recv.charge(n);
            // Take whatever else is already waiting, without waiting for more: big pieces
            // when the peer is fast, no hold-up when it trickles.
            while n < room && !self.recv.active() {
                let mut limited = (&mut *out).limit(room - n);
                match read_waiting(&mut self.reader, &mut limited) {
                    Ok(0) | Err(_) => break,
                    Ok(more) => n += more,
                }
            }
            n
        } else {
            let n = room.min(self.buf.len());
            out.extend_from_slice(&self.buf[..n]);
            self.buf.advance(n);
            n
        };
        self.payload_left -= n as u64;
        Ok(n)
    }

    /// Reads and drops the rest of the announced payload.
    pub async fn skip_payload(&mut self) -> Result<(), ConnError> {
        while self.payload_left > 0 {
            if self.buf.is_empty() {
                let deadline = after(Instant::now(), self.stall_timeout);
                if self
                    .fill(deadline, ConnError::Timeout("payload bytes"))
                    .await?
                    == 0
                {
                    return Err(ConnError::Truncated);
                }
            }
            let n = usize::try_from(self.payload_left)
                .map_or(self.buf.len(), |left| left.min(self.buf.len()));
            self.buf.advance(n);
            self.payload_left -= n as u64;
        }
        Ok(())
    }

    /// Queues bytes for the peer. A peer that takes nothing for the stall timeout is dropped;
    /// one that reads slowly but steadily is not, however long the whole write takes.
    pub async fn write(&mut self, mut bytes: &[u8]) -> Result<(), ConnError> {
        if self.send.active() {
            return self.write_limited(bytes).await;
        }
        if self.writer.buffer().len() + bytes.len() <= WRITE_CAPACITY {
            // Fits in the buffer: no IO happens, so no timer or cancellation is needed.
            return Ok(self.writer.write_all(bytes).await?);
        }
        let stall = self.stall_timeout;
        while !bytes.is_empty() {
            let n = tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Err(ConnError::Cancelled),
                written = tokio::time::timeout(stall, self.writer.write(bytes)) => match written {
                    Ok(result) => result?,
                    Err(_elapsed) => return Err(ConnError::Timeout("the peer to read")),
                },
            };
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero).into());
            }
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// [`Self::write`] under a rate limit: piece by piece, each waiting for its turn.
    async fn write_limited(&mut self, mut bytes: &[u8]) -> Result<(), ConnError> {
        while !bytes.is_empty() {
            self.rate_turn(&self.send).await?;
            let piece = &bytes[..self.send.piece(bytes.len())];
            if self.writer.buffer().len() + piece.len() > WRITE_CAPACITY {
                self.flush().await?;
            }
            self.writer.write_all(piece).await?;
            self.send.charge(piece.len());
            bytes = &bytes[piece.len()..];
            // Out at once, so what leaves the socket follows the clock, not the buffer.
            if self.writer.buffer().len() >= PIECE {
                self.flush().await?;
            }
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<(), ConnError> {
        let stall = self.stall_timeout;
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Err(ConnError::Cancelled),
            flushed = tokio::time::timeout(stall, self.writer.flush()) => match flushed {
                Ok(result) => Ok(result?),
                Err(_elapsed) => Err(ConnError::Timeout("the peer to read")),
            },
        }
    }

    /// Sends a last error line and closes gently: our side is shut, and what the peer still
    /// sends is read and dropped for a moment so the line is not lost to a reset.
    pub async fn close_with(mut self, line: &[u8]) {
        let sent = async {
            self.writer.write_all(line).await?;
            self.writer.flush().await?;
            self.writer.shutdown().await
        };
        if tokio::time::timeout(LINGER_TIME, sent).await.is_err() {
            return;
        }
        linger(&mut self.reader).await;
    }

    /// Flushes what is left and closes our side.
    pub async fn finish(mut self) {
        let closing = async {
            self.writer.flush().await?;
            self.writer.shutdown().await
        };
        if let Ok(Err(err)) = tokio::time::timeout(LINGER_TIME, closing).await {
            debug!(%err, "closing");
        }
    }
}

/// `start + wait`, saturating: a configured timeout of years must not overflow the clock.
fn after(start: Instant, wait: Duration) -> Instant {
    start
        .checked_add(wait)
        .unwrap_or_else(|| start + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Reads and drops input for at most [`LINGER_TIME`] and [`LINGER_BYTES`].
pub(crate) async fn linger<R: tokio::io::AsyncRead + Unpin>(reader: &mut R) {
    let drain = async {
        let mut scratch = vec![0u8; 64 * 1024];
        let mut total = 0;
        while total < LINGER_BYTES {
            match reader.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}
