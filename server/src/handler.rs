//! One client's request loop: each header read from the connection in order, decoded and handed
//! to the ops, until the client leaves, errs or the server shuts down; then the last word on
//! the wire (why the connection ends) and a gentle close.
//!
//! Pipelining is decided here. Requests that have already arrived whole behind the current one
//! are gathered ([`next_waiting`], the one place that looks ahead in the buffer) so that a run of
//! `get`s, or of small `put`s whose bytes are all in, is answered by one blocking call.

use std::sync::Arc;

use ferry_protocol::{ErrorCode, Request, decode_request, encode_err};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::connection::{ConnError, Connection, Transport};
use crate::ops::{self, Login};
use crate::rate::TwoWayLimit;
use crate::slots::Slot;
use crate::state::ServerState;

/// At most this many waiting `get`s are answered by one blocking thread.
const GET_BATCH: usize = 64;
/// At most this many small uploads that had all arrived are written by one blocking call.
const PUT_BATCH: usize = 64;

/// Serves one client until it leaves, errs or the server shuts down. The slot is held for the
/// connection's whole life (in its login), which is what bounds the number of connections.
pub(crate) async fn serve(
    stream: TcpStream,
    server: Arc<ServerState>,
    cancel: CancellationToken,
    slot: Slot,
) {
    let config = &server.config;
    crate::descriptors::init(config.max_connections);
    let Some(transport) =
        Transport::accept(stream, config.tls.as_ref(), config.header_timeout, &cancel).await
    else {
        return;
    };
    let _ = serve_transport(transport, server, cancel, slot).await;
}

/// Serves one client over a byte stream that is already open (an accepted socket after its
/// handshake, or stdin and stdout); `Err` says why the session ended if the client did not end
/// it cleanly between requests.
pub(crate) async fn serve_transport(
    transport: Transport,
    server: Arc<ServerState>,
    cancel: CancellationToken,
    slot: Slot,
) -> Result<(), String> {
    let mut conn = Connection::new(transport, &server.config, cancel);
    let own = TwoWayLimit::new(server.config.limit_rate.unwrap_or(0));
    let (recv, send) = TwoWayLimit::obeyed(&[&own, &server.rate_total]);
    conn.limit(recv, send);
    info!("connection open");
    let mut login = Login::new(slot);
    let ended = answer_requests(&mut conn, &server, &mut login).await;
    let outcome = match &ended {
        Ok(()) => Ok(()),
        Err(ConnError::Cancelled) if login.closed_line().is_some() => {
            Err("closed before a successful hello, at the login timeout".to_owned())
        }
        Err(err) => Err(err.to_string()),
    };
    close(conn, &server, &login, ended).await;
    drop(login);
    outcome
}

/// Answers requests in order until the client closes cleanly between them (`Ok`) or the
/// connection must end (why, as the error).
async fn answer_requests(
    conn: &mut Connection,
    server: &Arc<ServerState>,
    login: &mut Login,
) -> Result<(), ConnError> {
    while let Some(line) = conn.read_request().await? {
        let request = match decode_request(&line) {
            Ok(request) => request,
            Err(err) => {
                conn.write(&encode_err(ErrorCode::BadRequest, &err.message))
                    .await?;
                conn.expect_payload(err.payload);
                conn.skip_payload().await?;
                if err.trailer {
                    conn.read_header().await?;
                }
                continue;
            }
        };
        match request {
            // Gets already waiting behind this one are answered together.
            Request::Get {
                path,
                offset,
                length,
            } if login.access().is_some() => {
                let mut gets = vec![(path, offset, length)];
                while gets.len() < GET_BATCH {
                    let Some(get) = next_waiting(conn, |request, _| match request {
                        Request::Get {
                            path,
                            offset,
                            length,
                        } => Some((path, offset, length)),
                        _ => None,
                    }) else {
                        break;
                    };
                    gets.push(get);
                }
                ops::get_batch(conn, login, gets).await?;
            }
            // So are small uploads whose bytes have all arrived, this one and those right
            // behind it.
            Request::Put(put) if login.access().is_some() && ops::arrived_whole(conn, &put) => {
                debug!(op = "put", "request");
                let mut puts = vec![ops::read_arrived(conn, put).await?];
                while puts.len() < PUT_BATCH {
                    let Some(next) = next_waiting(conn, |request, conn| match request {
                        Request::Put(next) if ops::arrived_whole(conn, &next) => Some(next),
                        _ => None,
                    }) else {
                        break;
                    };
                    puts.push(ops::read_arrived(conn, next).await?);
                }
                ops::put_arrived(conn, login, puts).await?;
            }
            request => ops::handle(conn, server, login, request).await?,
        }
    }
    Ok(())
}

/// The next request, if it has already arrived whole and `fits` takes it (as what it returns);
/// otherwise the header is given back, for the loop to read it as usual. Never waits.
fn next_waiting<T>(
    conn: &mut Connection,
    fits: impl FnOnce(Request, &Connection) -> Option<T>,
) -> Option<T> {
    let line = conn.buffered_request()?;
    let taken = decode_request(&line)
        .ok()
        .and_then(|request| fits(request, conn));
    if taken.is_none() {
        conn.unread(line);
    }
    taken
}

/// The connection's last word, by why it ended, and its close.
async fn close(
    conn: Connection,
    server: &ServerState,
    login: &Login,
    ended: Result<(), ConnError>,
) {
    match ended {
        Ok(()) => {
            info!("connection closed");
            conn.finish().await;
        }
        Err(ConnError::HeaderTooLong) => {
            warn!("header line over the limit; closing");
            let line = encode_err(
                ErrorCode::HeaderTooLong,
                &format!(
                    "header line longer than {} bytes",
                    server.config.header_limit()
                ),
            );
            conn.close_with(&line).await;
        }
        Err(ConnError::Timeout(what)) => {
            debug!("timed out waiting for {what}");
            let line = encode_err(ErrorCode::Timeout, &format!("timed out waiting for {what}"));
            conn.close_with(&line).await;
        }
        Err(ConnError::Refused) => {
            warn!("too many failed hellos; closing");
            // The refusal is already queued.
            conn.close_with(&[]).await;
        }
        Err(ConnError::Idle) => {
            debug!("idle; closing");
            conn.finish().await;
        }
        Err(ConnError::Cancelled) => match login.closed_line() {
            // Closed by the listener before a login: one line saying why, no lingering.
            Some(line) => {
                debug!("closed before a login");
                let mut conn = conn;
                let _ = conn.write(&line).await;
                conn.finish().await;
            }
            None => debug!("closed for shutdown"),
        },
        Err(err @ (ConnError::Truncated | ConnError::Io(_))) => {
            debug!(%err, "connection lost");
        }
        Err(err @ ConnError::Protocol(_)) => warn!(%err, "closing"),
    }
}
