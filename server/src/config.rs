//! How a server behaves: every limit, timeout and credential [`crate::run`] takes, with the
//! defaults of the `ferry-server` binary. Its own module so that the layers that read it do not
//! import the crate root.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::users;

/// How a server behaves; build one with [`Config::new`] and adjust the public fields (new
/// fields may be added, so it cannot be built literally).
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The directory served; clients can never reach outside it.
    pub root: PathBuf,
    /// The logged-in user's home as a wire path under `root`, sent in `hello` so a client can
    /// resolve paths written relative to it; only `--stdio` sets it (one user's session).
    pub home: Option<String>,
    /// Refuse every operation that would change the tree.
    pub read_only: bool,
    /// The shared secret a client's `hello` must carry, when set.
    pub token: Option<String>,
    /// Connections served at once; one more gets a `busy` error and is closed.
    pub max_connections: usize,
    /// A connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Once a header line has started, it must be complete within this long.
    pub header_timeout: Duration,
    /// The largest file a `put` may leave (`offset + size`); `None` for no limit. Over it is
    /// `too_large`, answered before a byte is written.
    pub max_upload_size: Option<u64>,
    /// Bytes of the root's filesystem that uploads must leave free, so a full share does not
    /// take the system down with it; a `put` that would eat into them gets `no_space` up front.
    pub free_space_reserve: u64,
    /// The longest request header, `\n` included: at least 1 KiB, at most the protocol's 64 KiB.
    pub max_header_len: usize,
    /// The longest request path in bytes; only lowers the protocol's 4,096.
    pub max_path_len: usize,
    /// The longest name in a request path, in bytes; only lowers the protocol's 255.
    pub max_name_len: usize,
    /// Hidden partial uploads untouched for this long are removed; `None` keeps them forever.
    /// Long, because a partial is what lets an interrupted upload resume.
    pub partial_expiry: Option<Duration>,
    /// Speak TLS with this configuration; `None` for plain TCP. The handshake runs inside each
    /// connection's task, bounded by the header timeout.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Connections served at once from one client IP address; one more gets `busy`.
    pub max_per_address: usize,
    /// While a payload is being read or written, no progress for this long closes the
    /// connection with `timeout`; a slow transfer that keeps moving is never cut.
    pub stall_timeout: Duration,
    /// Named accounts, each with its own root and access; with them, a `hello` must name a
    /// user and password (or carry the token, when one is set too).
    pub users: Option<Arc<users::Users>>,
    /// A failed `hello` is answered this long after it arrived (not after its check, so the
    /// answer's timing does not depend on the account or its hashing cost), to slow down
    /// guessing. Only that connection waits.
    pub auth_delay: Duration,
    /// A connection must log in (a successful `hello`) within this long of being accepted, or
    /// it is closed.
    pub login_timeout: Duration,
    /// Connections not logged in yet, at most; at this cap (or at `max_connections`, or
    /// `max_per_address`) a newcomer takes the place of the oldest of them, so connections that
    /// never log in cannot keep out one that will.
    pub max_unauthenticated: usize,
    /// Once a client address has failed a few logins (5 at once), it gets one attempt per this
    /// interval until its failures are paid off.
    pub address_login_interval: Duration,
    /// Across the whole server, addresses that have failed (see above) get one attempt per
    /// this interval between them (after a burst of 10), so many addresses guessing at once
    /// cannot keep the cores busy with password hashing.
    pub server_login_interval: Duration,
    /// Work units one connection may spend on expensive requests (`summary`, `walk`, a `get`
    /// whose offset makes the server hash a prefix) at once, before it must wait for
    /// [`Self::work_rate`]: a unit is one directory entry walked, 128 one MiB hashed.
    pub work_burst: u64,
    /// Work units per second a connection's budget for expensive requests refills by; a
    /// request that finds it spent waits until it is positive again.
    pub work_rate: u64,
    /// Bytes per second each connection may send, and may receive (each way on its own);
    /// `None` for no limit.
    pub limit_rate: Option<u64>,
    /// Bytes per second all connections together may move each way; `None` for no limit.
    pub limit_rate_total: Option<u64>,
}

impl Config {
    /// Defaults of the `ferry-server` binary for `root`: writable, no token, 256 connections,
    /// 300 s idle timeout, 30 s header timeout, no upload size limit, 64 MiB kept free, the
    /// protocol's header, path and name maxima, partials swept after 24 hours, plain TCP, 32
    /// connections per client address, 60 s stall timeout, no users file, failed `hello`s
    /// answered 1 s after they arrive, 10 s to log in, 64 connections not logged in, one login
    /// attempt per 2 s for an address that has failed 5 and one per 250 ms server-wide for all
    /// such addresses together, and a work budget of 10,000,000 units refilled by 200,000 a
    /// second.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            home: None,
            read_only: false,
            token: None,
            max_connections: 256,
            idle_timeout: Duration::from_secs(300),
            header_timeout: Duration::from_secs(30),
            max_upload_size: None,
            free_space_reserve: 64 * 1024 * 1024,
            max_header_len: ferry_protocol::MAX_HEADER_LEN,
            max_path_len: ferry_protocol::path::MAX_PATH_LEN,
            max_name_len: ferry_protocol::path::MAX_NAME_LEN,
            partial_expiry: Some(Duration::from_secs(24 * 3600)),
            tls: None,
            max_per_address: 32,
            stall_timeout: Duration::from_secs(60),
            users: None,
            auth_delay: Duration::from_secs(1),
            login_timeout: Duration::from_secs(10),
            max_unauthenticated: 64,
            address_login_interval: Duration::from_secs(2),
            server_login_interval: Duration::from_millis(250),
            work_burst: 10_000_000,
            work_rate: 200_000,
            limit_rate: None,
            limit_rate_total: None,
        }
    }
}

impl Config {
    /// The header cap in force: the configured one, never above the protocol's, and never so
    /// low that a `hello` with a token cannot fit.
    pub(crate) fn header_limit(&self) -> usize {
        self.max_header_len
            .clamp(1024, ferry_protocol::MAX_HEADER_LEN)
    }
}

impl fmt::Debug for Config {
    // Hand-written so the token never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("root", &self.root)
            .field("read_only", &self.read_only)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .field("header_timeout", &self.header_timeout)
            .field("max_upload_size", &self.max_upload_size)
            .field("free_space_reserve", &self.free_space_reserve)
            .field("max_header_len", &self.max_header_len)
            .field("max_path_len", &self.max_path_len)
            .field("max_name_len", &self.max_name_len)
            .field("partial_expiry", &self.partial_expiry)
            .field("tls", &self.tls.is_some())
            .field("max_per_address", &self.max_per_address)
            .field("stall_timeout", &self.stall_timeout)
            .field("users", &self.users.as_ref().map(|users| users.path()))
            .field("auth_delay", &self.auth_delay)
            .field("login_timeout", &self.login_timeout)
            .field("max_unauthenticated", &self.max_unauthenticated)
            .field("address_login_interval", &self.address_login_interval)
            .field("server_login_interval", &self.server_login_interval)
            .field("work_burst", &self.work_burst)
            .field("work_rate", &self.work_rate)
            .field("limit_rate", &self.limit_rate)
            .field("limit_rate_total", &self.limit_rate_total)
            .finish()
    }
}
