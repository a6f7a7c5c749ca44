//! The accept loop: one task per connection, a cap on how many run at once in all and from
//! one client address, and a graceful stop when the shutdown future resolves.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
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

/// Connections open per client IP address, so one address cannot take every slot.
#[derive(Debug, Default)]
struct AddressCounts(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`AddressCounts`], given back when dropped.
#[derive(Debug)]
pub(crate) struct AddressSlot {
    counts: Arc<AddressCounts>,
    ip: IpAddr,
}

impl AddressCounts {
    /// A slot for `ip`, unless it already holds `max`.
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            counts: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
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
    let limit = Arc::new(Semaphore::new(config.max_connections));
    let per_address = Arc::new(AddressCounts::default());
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let shared = Arc::new(Shared {
        token_hash: config
            .token
            .as_ref()
            .map(|token| *blake3::hash(token.as_bytes()).as_bytes()),
        root_key: crate::ops::root_key(&config.root),
        accounts,
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
        let slots = Arc::clone(&limit).try_acquire_owned().map_err(|_| {
            warn!(%peer, max = shared.config.max_connections, "too many connections; refusing");
            "too many connections; try again later"
        });
        let slots = slots.and_then(|permit| {
            match per_address.take(peer.ip(), shared.config.max_per_address) {
                Some(slot) => Ok((permit, slot)),
                None => {
                    warn!(%peer, max = shared.config.max_per_address, "too many connections from one address; refusing");
                    Err("too many connections from your address; try again later")
                }
            }
        });
        match slots {
            Ok(permit) => {
                let serving =
                    connection::serve(stream, Arc::clone(&shared), cancel.child_token(), permit);
                // Every log line of the connection carries its peer.
                tracker.spawn(serving.instrument(info_span!("conn", %peer)));
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
