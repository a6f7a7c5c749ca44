//! The accept loop: one task per connection, caps on how many run at once in all, from one
//! client address and before logging in, the login deadline, and a graceful stop when the
//! shutdown future resolves.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferry_protocol::{ErrorCode, encode_err};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::Config;
use crate::connection::linger;
use crate::error::ServerError;
use crate::handler;
use crate::slots::Slots;
use crate::state::ServerState;

/// How long to back off after a failed `accept` (out of file descriptors, say), so the loop
/// does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a client turned away is given to read its `busy` line.
const TURN_AWAY_TIME: Duration = Duration::from_secs(2);
/// Refusals being written at once; past this, a client over the limit is closed without a
/// word, so a flood of connections cannot pile up tasks and sockets.
const MAX_TURNING_AWAY: usize = 64;

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
    // Secure by default, for embedders too: no credentials means this machine only.
    let unprotected = config.token.is_none() && config.users.is_none();
    if unprotected
        && let Ok(addr) = listener.local_addr()
        && !addr.ip().is_loopback()
    {
        return Err(ServerError::Unprotected { addr });
    }
    let slots = Arc::new(Slots::new(&config));
    let turning_away = Arc::new(Semaphore::new(MAX_TURNING_AWAY));
    let server = Arc::new(ServerState::open(config)?);
    let cancel = server.shutdown.clone();
    let tracker = TaskTracker::new();
    tracker.spawn(crate::sweep::run(Arc::clone(&server)));
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, root = %server.config.root.display(), read_only = server.config.read_only, tls = server.config.tls.is_some(), "serving");
        if let Some(users) = &server.config.users {
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
                let deadline = slot.login_deadline();
                let serving = handler::serve(stream, Arc::clone(&server), close, slot);
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
                if let Ok(permit) = Arc::clone(&turning_away).try_acquire_owned() {
                    let tls = server.config.tls.clone();
                    tracker.spawn(async move {
                        turn_away(stream, tls, why).await;
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
async fn turn_away(stream: TcpStream, tls: Option<Arc<rustls::ServerConfig>>, why: &str) {
    let line = encode_err(ErrorCode::Busy, why);
    let Some(tls) = tls else {
        let (mut reader, mut writer) = stream.into_split();
        let sent = async {
            writer.write_all(&line).await?;
            writer.shutdown().await
        };
        if let Ok(Ok(())) = tokio::time::timeout(TURN_AWAY_TIME, sent).await {
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
    if let Ok(Ok(mut stream)) = tokio::time::timeout(TURN_AWAY_TIME, sent).await {
        linger(&mut stream).await;
    }
}
