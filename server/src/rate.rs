//! Rate limits: a token bucket ([`RateLimit`]) that any number of streams share, a set of
//! them that one stream obeys at once ([`Limits`]: its connection's, its job's, the
//! server's or the client's total), and [`Throttled`], a reader or writer that obeys a set.
//!
//! Written here rather than taken from a crate: `governor` (the well-kept one) brings a dozen
//! crates for what is forty lines of arithmetic, and its cell-based limiter cannot change its
//! rate while streams wait on it, which the TUI's per-job limit needs. The client runs the
//! same code (it depends on this crate), so the rule is written once.
//!
//! How it holds a limit: a stream may move bytes only while the bucket is not in debt, moves at
//! most [`PIECE`] bytes at a time, and charges what it moved afterwards. The bucket refills at
//! the rate and holds at most a short burst (50 ms worth, at most 64 KiB), so over any window
//! the bytes moved stay under `rate × window + burst + one piece per stream`: a 1 MiB write
//! goes out as 64 pieces paced by the clock, never in one go.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The most one read or write of a limited stream moves at once: small enough that a few
/// streams sharing a bucket overshoot it by little, large enough to cost few syscalls.
pub const PIECE: usize = 16 * 1024;
/// The longest burst a bucket saves up, in time at its rate...
const BURST_TIME: f64 = 0.05;
/// ...and in bytes.
const MAX_BURST: f64 = 64.0 * 1024.0;
/// A limited socket's receive buffer holds this long at the tightest rate, at least (longer
/// on a link with a longer round trip, when the reader knows it)...
pub const BUFFER_TIME: Duration = Duration::from_millis(20);
/// ...and at most.
const MAX_BUFFER_TIME: Duration = Duration::from_secs(1);
/// ...but at least this much, so a slow limit still reads in whole pieces.
const MIN_BUFFER: usize = 2 * PIECE;
/// The receive buffer given back when a limit is lifted (the kernel no longer tunes one that
/// was set).
const RELEASED_BUFFER: usize = 4 * 1024 * 1024;
/// A waiting stream looks at its bucket again at least this often, so a limit raised (or
/// lifted) while it waits takes effect at once.
const MAX_WAIT: Duration = Duration::from_millis(100);

/// A token bucket shared by the streams it limits; its rate can change at any time.
#[derive(Debug)]
pub struct RateLimit {
    /// Bytes per second; 0 for no limit.
    rate: AtomicU64,
    bucket: Mutex<Bucket>,
}

/// The bucket's arithmetic, apart from the clock so that it can be checked with made-up times.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Bytes that may move now; negative while in debt.
    tokens: f64,
    last: Option<Instant>,
}

impl Bucket {
    fn refill(&mut self, rate: u64, now: Instant) {
        let elapsed = self.last.map_or(0.0, |last| {
            now.saturating_duration_since(last).as_secs_f64()
        });
        self.last = Some(now);
        if rate == 0 {
            self.tokens = 0.0;
            return;
        }
        let rate = rate as f64;
        let burst = (rate * BURST_TIME).min(MAX_BURST);
        self.tokens = (self.tokens + rate * elapsed).min(burst);
    }

    /// How long until the debt is paid off (zero when there is none).
    fn wait(&mut self, rate: u64, now: Instant) -> Duration {
        self.refill(rate, now);
        if rate == 0 || self.tokens >= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(-self.tokens / rate as f64)
    }

    fn charge(&mut self, rate: u64, bytes: usize, now: Instant) {
        self.refill(rate, now);
        if rate > 0 {
            self.tokens -= bytes as f64;
        }
    }
}

impl RateLimit {
    /// A bucket for `bytes_per_second`, starting empty (no burst before the first byte); 0 for
    /// none yet.
    pub fn new(bytes_per_second: u64) -> Arc<Self> {
        Arc::new(Self {
            rate: AtomicU64::new(bytes_per_second),
            bucket: Mutex::new(Bucket {
                tokens: 0.0,
                last: None,
            }),
        })
    }

    /// Bytes per second; 0 for no limit.
    pub fn rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    /// Changes the rate (0 lifts the limit); streams waiting on the bucket follow within
    /// 100 ms.
    pub fn set_rate(&self, bytes_per_second: u64) {
        self.rate.store(bytes_per_second, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.bucket.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait(&self, now: Instant) -> Duration {
        self.lock().wait(self.rate(), now)
    }

    fn charge(&self, bytes: usize, now: Instant) {
        self.lock().charge(self.rate(), bytes, now);
    }
}

/// The buckets one stream obeys at once (its own, its job's, everyone's); empty for none.
/// Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Limits(Vec<Arc<RateLimit>>);

impl Limits {
    /// Obeys each of `limits`.
    pub fn new(limits: impl IntoIterator<Item = Arc<RateLimit>>) -> Self {
        Self(limits.into_iter().collect())
    }

    /// Whether any bucket limits now; without one, streams take their fast path.
    pub fn active(&self) -> bool {
        self.0.iter().any(|limit| limit.rate() > 0)
    }

    /// The lowest rate in force; `None` when nothing limits.
    pub fn tightest(&self) -> Option<u64> {
        self.0
            .iter()
            .map(|limit| limit.rate())
            .filter(|&rate| rate > 0)
            .min()
    }

    /// How long to wait before moving more bytes, at most 100 ms (then ask again).
    pub fn delay(&self) -> Duration {
        let now = Instant::now();
        self.0
            .iter()
            .map(|limit| limit.wait(now))
            .max()
            .unwrap_or(Duration::ZERO)
            .min(MAX_WAIT)
    }

    /// Counts `bytes` moved against every bucket.
    pub fn charge(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let now = Instant::now();
        for limit in &self.0 {
            limit.charge(bytes, now);
        }
    }

    /// How much of `wanted` bytes to move in one go: all of them when nothing limits.
    pub fn piece(&self, wanted: usize) -> usize {
        if self.active() {
            wanted.min(PIECE)
        } else {
            wanted
        }
    }

    /// Waits until bytes may move.
    pub async fn ready(&self) {
        loop {
            let delay = self.delay();
            if delay.is_zero() {
                return;
            }
            tokio::time::sleep(delay).await;
        }
    }
}

/// Sizes the receive buffer of `socket`, read under a limit of `rate` bytes a second (`None`
/// for none any more), for `time` (at least [`BUFFER_TIME`], at most a second). A stream read
/// at a limited pace keeps in the kernel's buffer what its sender rushed ahead, and on a fast
/// link that buffer grows to megabytes, all of which would cross the link in one burst at the
/// start: the buffer is held to `time` at the rate, which keeps the pace over a link of up to
/// that round trip. Best effort: a socket that refuses keeps its buffer.
pub fn fit_receive_buffer(socket: impl std::os::fd::AsFd, rate: Option<u64>, time: Duration) {
    let time = time.clamp(BUFFER_TIME, MAX_BUFFER_TIME);
    let size = rate.map_or(RELEASED_BUFFER, |rate| {
        usize::try_from((rate as f64 * time.as_secs_f64()) as u64)
            .unwrap_or(RELEASED_BUFFER)
            .clamp(MIN_BUFFER, RELEASED_BUFFER)
    });
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size(socket, size);
}

/// One limit on both directions: a bucket for what its streams receive and one for what they
/// send, at the same rate.
#[derive(Debug)]
pub struct TwoWayLimit {
    pub recv: Arc<RateLimit>,
    pub send: Arc<RateLimit>,
}

impl TwoWayLimit {
    /// `bytes_per_second` each way; 0 for none yet.
    pub fn new(bytes_per_second: u64) -> Self {
        Self {
            recv: RateLimit::new(bytes_per_second),
            send: RateLimit::new(bytes_per_second),
        }
    }

    /// Bytes per second each way; 0 for no limit.
    pub fn rate(&self) -> u64 {
        self.recv.rate()
    }

    /// Changes both directions' rate (0 lifts the limit).
    pub fn set_rate(&self, bytes_per_second: u64) {
        self.recv.set_rate(bytes_per_second);
        self.send.set_rate(bytes_per_second);
    }

    /// What a stream under each of `limits` obeys: `(receiving, sending)`.
    pub fn obeyed(limits: &[&TwoWayLimit]) -> (Limits, Limits) {
        (
            Limits::new(limits.iter().map(|limit| Arc::clone(&limit.recv))),
            Limits::new(limits.iter().map(|limit| Arc::clone(&limit.send))),
        )
    }
}

/// A reader or writer that obeys [`Limits`]: each read or write waits while a bucket is in
/// debt, moves at most [`PIECE`] bytes, and is charged for what it moved.
#[derive(Debug)]
pub struct Throttled<T> {
    inner: T,
    limits: Limits,
    sleep: Option<Pin<Box<Sleep>>>,
    /// The socket under a reader, whose receive buffer follows the tightest rate.
    socket: Option<std::os::fd::OwnedFd>,
    /// The rate the buffer was last sized for; 0 while never.
    buffer_for: u64,
    /// How long the receive buffer holds at the rate.
    buffer_time: Duration,
    /// Connections sharing the limit at once (a download's streams): each holds only its
    /// share of the buffer, or together they would burst that many buffers at the start.
    share: u64,
}

impl<T> Throttled<T> {
    pub fn new(inner: T, limits: Limits) -> Self {
        Self {
            inner,
            limits,
            sleep: None,
            socket: None,
            buffer_for: 0,
            buffer_time: BUFFER_TIME,
            share: 1,
        }
    }

    /// A reader of `socket` (a handle of its own on the socket under `inner`): while a limit
    /// is in force, the receive buffer is sized for it ([`fit_receive_buffer`]).
    pub fn with_socket(mut self, socket: std::os::fd::OwnedFd) -> Self {
        self.socket = Some(socket);
        self
    }

    /// Holds the receive buffer to `time` at the rate (see [`fit_receive_buffer`]): the link's
    /// round trip and a little keep a limited reader at its pace however far the sender is.
    pub fn set_buffer_time(&mut self, time: Duration) {
        self.buffer_time = time;
        self.buffer_for = 0;
    }

    /// Sizes the receive buffer for `share` connections reading under the same limit at once
    /// (each gets its part of the rate's buffer).
    pub fn set_buffer_share(&mut self, share: u64) {
        self.share = share.max(1);
        self.buffer_for = 0;
    }

    /// Obeys `limits` from the next read or write on.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Ready once no bucket is in debt.
    fn poll_turn(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if let Some(sleep) = &mut self.sleep {
                ready!(sleep.as_mut().poll(cx));
                self.sleep = None;
            }
            let delay = self.limits.delay();
            if delay.is_zero() {
                return Poll::Ready(());
            }
            self.sleep = Some(Box::pin(tokio::time::sleep(delay)));
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Throttled<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(socket) = &this.socket {
            let tightest = this.limits.tightest();
            if tightest.unwrap_or(0) != this.buffer_for {
                let each = tightest.map(|rate| (rate / this.share).max(1));
                fit_receive_buffer(socket, each, this.buffer_time);
                this.buffer_for = tightest.unwrap_or(0);
            }
        }
        if !this.limits.active() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        ready!(this.poll_turn(cx));
        let room = buf.remaining().min(PIECE);
        let mut piece = ReadBuf::new(buf.initialize_unfilled_to(room));
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut piece))?;
        let n = piece.filled().len();
        buf.advance(n);
        this.limits.charge(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Throttled<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.limits.active() {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        ready!(this.poll_turn(cx));
        let piece = &buf[..buf.len().min(PIECE)];
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, piece))?;
        this.limits.charge(n);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes a stream moves in `seconds` of made-up time, moving a piece whenever the bucket
    /// lets it: the rate, within one burst and one piece.
    #[test]
    fn a_busy_stream_moves_the_rate() {
        let rate = 1_000_000;
        let mut bucket = Bucket {
            tokens: 0.0,
            last: None,
        };
        let start = Instant::now();
        let mut now = start;
        let mut moved = 0usize;
        while now < start + Duration::from_secs(2) {
            let wait = bucket.wait(rate, now);
            if wait.is_zero() {
                bucket.charge(rate, PIECE, now);
                moved += PIECE;
            } else {
                now += wait;
            }
        }
        let limit = 2 * rate as usize;
        assert!(moved <= limit + 2 * PIECE, "{moved} over {limit}");
        assert!(moved >= limit - PIECE, "{moved} under {limit}");
    }

    /// The receive buffer holds the given time at the rate (20 ms at least, 32 KiB at least);
    /// the kernel reports twice what was set, its bookkeeping included.
    #[test]
    fn a_receive_buffer_holds_its_time_at_the_rate() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let socket = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let size = |time| {
            fit_receive_buffer(&socket, Some(1_000_000), time);
            rustix::net::sockopt::socket_recv_buffer_size(&socket).unwrap() / 2
        };
        assert_eq!(size(Duration::ZERO), MIN_BUFFER);
        assert_eq!(size(Duration::from_millis(120)), 120_000);
    }

    #[test]
    fn an_idle_bucket_saves_only_a_short_burst() {
        let mut bucket = Bucket {
            tokens: 0.0,
            last: None,
        };
        let start = Instant::now();
        bucket.wait(100_000_000, start);
        bucket.wait(100_000_000, start + Duration::from_secs(60));
        assert_eq!(bucket.tokens, MAX_BURST);
        bucket.wait(10_000, start + Duration::from_secs(120));
        assert_eq!(bucket.tokens, 500.0);
    }
}
