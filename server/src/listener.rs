//! The accept loop: one task per connection, caps on how many run at once in all, from one
//! client address and before logging in, the login deadline, and a graceful stop when the
//! shutdown future resolves.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use ferry_protocol::{ErrorCode, encode_err};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::connection::{self, linger};
use crate::root::{PathLimits, Root};
use crate::uploads::Uploads;
use crate::{Config, ServerError};

/// What every connection of one server shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    /// The served root of token and open sessions; users of a users file have their own.
    pub root: Arc<Root>,
    /// The served root's canonical path, which keys its uploads (see [`crate::ops::Scope`]).
    pub root_key: Arc<str>,
    pub uploads: Uploads,
    /// The configured token's BLAKE3 hash: comparing fixed-size hashes in constant time leaks
    /// neither the token's bytes nor its length.
    pub token_hash: Option<[u8; 32]>,
    /// The users file's accounts, their roots open, when one is configured.
    pub accounts: Option<crate::users::Accounts>,
    /// How many failed logins each client address, and all of them together, still owe.
    pub logins: crate::logins::Logins,
    /// Cancelled on shutdown; long blocking work (a walk of a huge tree) checks it and stops.
    pub shutdown: CancellationToken,
}

/// How long to back off after a failed `accept` (out of file descriptors, say), so the loop
/// does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a refused client is given to read its `busy` line.
const REFUSE_TIME: Duration = Duration::from_secs(2);
/// Refusals being written at once; past this, a client over the limit is closed without a
/// word, so a flood of connections cannot pile up tasks and sockets.
const MAX_REFUSING: usize = 64;

/// Who holds the connection slots: at most `max_total` connections, `max_per_address` from
/// one client address, and `max_unauthenticated` not logged in yet. When a cap is reached, a
/// connection not logged in is closed to make room (the oldest of the address with the most of
/// them; of the newcomer's own address, for the address cap), so connections that never log in
/// cannot keep out one that will; only logged-in connections ever make a newcomer `busy`.
#[derive(Debug)]
pub(crate) struct Slots {
    state: Mutex<SlotState>,
    max_total: usize,
    max_per_address: usize,
    max_unauthenticated: usize,
    login_timeout: Duration,
}

#[derive(Debug, Default)]
struct SlotState {
    /// Connections holding a slot; an evicted one stops counting at once, while it closes.
    total: usize,
    per_address: HashMap<IpAddr, usize>,
    /// Connections not logged in yet, oldest first (ids only grow), each with what closes it.
    waiting: BTreeMap<u64, Waiting>,
    next_id: u64,
}

#[derive(Debug)]
struct Waiting {
    ip: IpAddr,
    close: CancellationToken,
    /// Set to why it was closed, just before `close` is cancelled.
    why: Arc<OnceLock<Closed>>,
}

/// Why a connection not logged in was closed by the listener, not by a shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    /// To make room for a newcomer at a connection cap.
    ForRoom,
    /// It did not log in within the login timeout.
    LoginTimeout,
}

/// One connection's slot: not logged in until [`Slot::log_in`]; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<Slots>,
    id: u64,
    ip: IpAddr,
    logged_in: bool,
    close: CancellationToken,
    why: Arc<OnceLock<Closed>>,
}

impl Slots {
    fn new(config: &Config) -> Self {
        Self {
            state: Mutex::default(),
            max_total: config.max_connections,
            max_per_address: config.max_per_address,
            max_unauthenticated: config.max_unauthenticated.max(1),
            login_timeout: config.login_timeout,
        }
    }

    /// A slot for a new connection from `ip` that `close` closes, making room by closing a
    /// connection not logged in when a cap is reached; why not, when only logged-in
    /// connections hold the slots.
    fn admit(self: &Arc<Self>, ip: IpAddr, close: CancellationToken) -> Result<Slot, &'static str> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.per_address.get(&ip).copied().unwrap_or(0) >= self.max_per_address {
            let oldest = state
                .waiting
                .iter()
                .find(|(_, waiting)| waiting.ip == ip)
                .map(|(&id, _)| id);
            let Some(oldest) = oldest else {
                warn!(%ip, max = self.max_per_address, "too many connections from one address; refusing");
                return Err("too many connections from your address; try again later");
            };
            debug!(%ip, "address at its connection limit: closing its oldest connection not logged in");
            state.evict(oldest, Closed::ForRoom);
        }
        if state.total >= self.max_total || state.waiting.len() >= self.max_unauthenticated {
            let Some(victim) = state.most_waiting() else {
                warn!(%ip, max = self.max_total, "too many connections; refusing");
                return Err("too many connections; try again later");
            };
            debug!(%ip, "connection slots full: closing a connection not logged in");
            state.evict(victim, Closed::ForRoom);
        }
        let id = state.next_id;
        state.next_id += 1;
        state.total += 1;
        *state.per_address.entry(ip).or_insert(0) += 1;
        let why = Arc::new(OnceLock::new());
        state.waiting.insert(
            id,
            Waiting {
                ip,
                close: close.clone(),
                why: Arc::clone(&why),
            },
        );
        Ok(Slot {
            slots: Arc::clone(self),
            id,
            ip,
            logged_in: false,
            close,
            why,
        })
    }

    /// Closes connection `id` if it has not logged in yet; whether it had not.
    fn expire(&self, id: u64) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.waiting.contains_key(&id) {
            state.evict(id, Closed::LoginTimeout);
            return true;
        }
        false
    }
}

impl SlotState {
    /// The connection not logged in that gives way to a newcomer: the oldest of the address
    /// that has the most of them. So a client that opens one connection and logs in at once is
    /// not closed by a stream of others reconnecting from a few addresses; it would take as
    /// many addresses as there are places for connections not logged in.
    fn most_waiting(&self) -> Option<u64> {
        let mut by_address: HashMap<IpAddr, (usize, u64)> = HashMap::new();
        for (&id, waiting) in &self.waiting {
            // Ids ascend, so the first seen of an address is its oldest.
            by_address.entry(waiting.ip).or_insert((0, id)).0 += 1;
        }
        by_address
            .into_values()
            .max_by(|(count_a, id_a), (count_b, id_b)| count_a.cmp(count_b).then(id_b.cmp(id_a)))
            .map(|(_, id)| id)
    }

    /// Closes a connection not logged in and takes its place back at once.
    fn evict(&mut self, id: u64, why: Closed) {
        if let Some(waiting) = self.waiting.remove(&id) {
            let _ = waiting.why.set(why);
            waiting.close.cancel();
            self.release(waiting.ip);
        }
    }

    fn release(&mut self, ip: IpAddr) {
        self.total = self.total.saturating_sub(1);
        if let Some(count) = self.per_address.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.per_address.remove(&ip);
            }
        }
    }
}

impl Slot {
    /// The connection has logged in: it is no longer closed to make room or at the login
    /// deadline. False when it was closed already (the login came too late).
    pub fn log_in(&mut self) -> bool {
        if self.logged_in {
            return true;
        }
        let mut state = self
            .slots
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.logged_in = state.waiting.remove(&self.id).is_some();
        self.logged_in
    }

    /// The client's address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The line to send a connection the listener closed before it logged in: `busy` when it
    /// made room for another, `timeout` at the login deadline; `None` when it was not closed
    /// that way (a shutdown closes without a word).
    pub fn closed_line(&self) -> Option<Vec<u8>> {
        let timeout = self.slots.login_timeout;
        match self.why.get()? {
            Closed::ForRoom => Some(encode_err(
                ErrorCode::Busy,
                "closed to make room for a client that logs in: the server is full; log in \
                 at once or try again later",
            )),
            Closed::LoginTimeout => Some(encode_err(
                ErrorCode::Timeout,
                &format!("no login within {}", humantime::format_duration(timeout)),
            )),
        }
    }

    /// Resolves when the connection is being closed (evicted, past its login deadline, or
    /// the server shutting down), so long waits in a request can stop.
    pub async fn closing(&self) {
        self.close.cancelled().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self
            .slots
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // An evicted connection gave its place back already.
        if self.logged_in || state.waiting.remove(&self.id).is_some() {
            state.release(self.ip);
        }
    }
}

/// Closes connection `id` if it has not logged in within `timeout`, then never resolves (the
/// connection's own future decides when its task ends).
async fn login_deadline(slots: Arc<Slots>, id: u64, timeout: Duration) {
    tokio::time::sleep(timeout).await;
    if slots.expire(id) {
        debug!("no login within the login timeout; closing");
    }
    std::future::pending::<()>().await;
}

/// Serves `config.root` to every client of `listener` until `shutdown` resolves.
///
/// Connection errors are logged and never end the loop. On shutdown, accepting stops, every
/// connection is cancelled (an upload in flight keeps its hidden partial file, never a final
/// name) and `run` returns once all of them have ended. The only error is a root that cannot
/// be opened.
///
/// # Example
///
/// Embedding a private server, as the client does for local browsing:
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let port = listener.local_addr()?.port();
/// let mut config = ferry_server::Config::new("/srv/files");
/// config.token = Some("a random secret".into());
/// let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
/// let server = tokio::spawn(ferry_server::run(listener, config, async {
///     let _ = stop_rx.await;
/// }));
/// // ... clients connect to 127.0.0.1:{port} ...
/// let _ = stop_tx.send(());
/// server.await??;
/// # Ok(()) }
/// ```
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let root = Root::open(&config.root)
        .map(|root| root.with_limits(PathLimits::of(&config)))
        .map_err(|source| ServerError::OpenRoot {
            path: config.root.clone(),
            source,
        })?;
    // Secure by default, for embedders too: no credentials means this machine only.
    let unprotected = config.token.is_none() && config.users.is_none();
    if unprotected
        && let Ok(addr) = listener.local_addr()
        && !addr.ip().is_loopback()
    {
        return Err(ServerError::Unprotected { addr });
    }
    let accounts = config
        .users
        .as_deref()
        .map(|users| {
            crate::users::Accounts::open(users, |path| {
                Root::open(path).map(|root| root.with_limits(PathLimits::of(&config)))
            })
        })
        .transpose()?;
    let slots = Arc::new(Slots::new(&config));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let shared = Arc::new(Shared {
        token_hash: config
            .token
            .as_ref()
            .map(|token| *blake3::hash(token.as_bytes()).as_bytes()),
        root_key: crate::ops::root_key(&config.root),
        accounts,
        logins: crate::logins::Logins::new(&config),
        config,
        root: Arc::new(root),
        uploads: Uploads::default(),
        shutdown: CancellationToken::new(),
    });
    let cancel = shared.shutdown.clone();
    let tracker = TaskTracker::new();
    tracker.spawn(crate::sweep::run(Arc::clone(&shared)));
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, root = %shared.config.root.display(), read_only = shared.config.read_only, tls = shared.config.tls.is_some(), "serving");
        if let Some(users) = &shared.config.users {
            info!(users = %users.path().display(), accounts = users.names().count(), "users file loaded");
        }
        if unprotected {
            info!(%addr, "no credentials configured (--token or --users): serving on loopback only");
        }
    }
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                warn!(%err, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if let Err(err) = stream.set_nodelay(true) {
            debug!(%peer, %err, "cannot set TCP_NODELAY");
        }
        let close = cancel.child_token();
        match slots.admit(peer.ip(), close.clone()) {
            Ok(slot) => {
                let deadline =
                    login_deadline(Arc::clone(&slots), slot.id, shared.config.login_timeout);
                let serving = connection::serve(stream, Arc::clone(&shared), close, slot);
                let served = async move {
                    tokio::select! {
                        () = serving => {}
                        () = deadline => {}
                    }
                };
                // Every log line of the connection carries its peer.
                tracker.spawn(served.instrument(info_span!("conn", %peer)));
            }
            Err(why) => {
                if let Ok(permit) = Arc::clone(&refusing).try_acquire_owned() {
                    let tls = shared.config.tls.clone();
                    tracker.spawn(async move {
                        refuse(stream, tls, why).await;
                        drop(permit);
                    });
                }
            }
        }
    }
    info!("shutting down");
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Tells a client over a connection limit why it is turned away, then closes. Over TLS the
/// line is only readable after a handshake, which the refusal time also bounds.
async fn refuse(stream: TcpStream, tls: Option<Arc<rustls::ServerConfig>>, why: &str) {
    let line = encode_err(ErrorCode::Busy, why);
    let Some(tls) = tls else {
        let (mut reader, mut writer) = stream.into_split();
        let sent = async {
            writer.write_all(&line).await?;
            writer.shutdown().await
        };
        if let Ok(Ok(())) = tokio::time::timeout(REFUSE_TIME, sent).await {
            linger(&mut reader).await;
        }
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let sent = async {
        let mut stream = acceptor.accept(stream).await?;
        stream.write_all(&line).await?;
        stream.shutdown().await?;
        Ok::<_, std::io::Error>(stream)
    };
    if let Ok(Ok(mut stream)) = tokio::time::timeout(REFUSE_TIME, sent).await {
        linger(&mut stream).await;
    }
}
