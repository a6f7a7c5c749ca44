//! The task that owns the browsing [`Session`] for the right pane. It takes requests in
//! order, connects lazily (so a reconnect is just the next request), and reports results and
//! connection changes as [`Msg`]s. The UI thread never awaits the network.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::engine::{Endpoint, EngineError, Session};

use super::app::{ConnEvent, Msg};
use super::pane::{Location, Side};

/// How long connecting may take before the pane says the server is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Work for the remote pane.
#[derive(Debug)]
pub enum RemoteRequest {
    List { serial: u64, dir: String },
    Mkdir(String),
    Rename { from: String, to: String },
    Remove(Vec<String>),
}

/// Serves requests until the sender is dropped (a new connection replaced this one).
pub async fn run(
    conn: u64,
    endpoint: Endpoint,
    mut requests: mpsc::UnboundedReceiver<RemoteRequest>,
    msg_tx: mpsc::UnboundedSender<Msg>,
) {
    let mut session: Option<Session> = None;
    while let Some(request) = requests.recv().await {
        if session.is_none() {
            match tokio::time::timeout(CONNECT_TIMEOUT, Session::connect(&endpoint)).await {
                Ok(Ok(s)) => {
                    let _ = msg_tx.send(Msg::Connection {
                        conn,
                        event: ConnEvent::Connected {
                            read_only: s.read_only(),
                            server: Some(s.server_name().to_string()),
                        },
                    });
                    session = Some(s);
                }
                Ok(Err(error)) => {
                    fail(conn, &msg_tx, request, error.to_string(), true);
                    continue;
                }
                Err(_) => {
                    let error = format!(
                        "no answer from {}:{} in {}s",
                        endpoint.host,
                        endpoint.port,
                        CONNECT_TIMEOUT.as_secs()
                    );
                    fail(conn, &msg_tx, request, error, true);
                    continue;
                }
            }
        }
        let Some(s) = session.as_mut() else { continue };
        let (reply, error) = serve(s, request).await;
        if let Some(error) = error {
            // A broken or confused session is dropped; the next request opens a fresh one.
            let lost = matches!(error, EngineError::Connection { .. });
            if lost || matches!(error, EngineError::Protocol(_)) {
                session = None;
            }
            if lost {
                let _ = msg_tx.send(Msg::Connection {
                    conn,
                    event: ConnEvent::Lost(error.to_string()),
                });
            }
        }
        if msg_tx.send(reply).is_err() {
            return;
        }
    }
}

/// Answers a request that could not be served because there is no connection.
fn fail(
    conn: u64,
    msg_tx: &mpsc::UnboundedSender<Msg>,
    request: RemoteRequest,
    error: String,
    lost: bool,
) {
    if lost {
        let _ = msg_tx.send(Msg::Connection {
            conn,
            event: ConnEvent::Lost(error.clone()),
        });
    }
    let reply = match request {
        RemoteRequest::List { serial, dir } => Msg::Listed {
            side: Side::Remote,
            serial,
            dir: Location::Remote(dir),
            result: Err(error),
        },
        _ => Msg::OpDone {
            side: Side::Remote,
            result: Err(error),
        },
    };
    let _ = msg_tx.send(reply);
}

async fn serve(session: &mut Session, request: RemoteRequest) -> (Msg, Option<EngineError>) {
    match request {
        RemoteRequest::List { serial, dir } => {
            let result = session.list(&dir).await;
            let (result, error) = split(result);
            let msg = Msg::Listed {
                side: Side::Remote,
                serial,
                dir: Location::Remote(dir),
                result,
            };
            (msg, error)
        }
        RemoteRequest::Mkdir(path) => {
            let select = name_of(&path);
            op(session.mkdir(&path).await.map(|()| select))
        }
        RemoteRequest::Rename { from, to } => {
            let select = name_of(&to);
            op(session.rename(&from, &to).await.map(|()| select))
        }
        RemoteRequest::Remove(paths) => {
            let mut result = Ok(None);
            for path in paths {
                if let Err(e) = session.remove(&path, true).await {
                    result = Err(e);
                    break;
                }
            }
            op(result)
        }
    }
}

fn name_of(path: &str) -> Option<String> {
    Some(path.rsplit('/').next().unwrap_or(path).to_string())
}

fn op(result: Result<Option<String>, EngineError>) -> (Msg, Option<EngineError>) {
    let (result, error) = split(result);
    (
        Msg::OpDone {
            side: Side::Remote,
            result,
        },
        error,
    )
}

fn split<T>(result: Result<T, EngineError>) -> (Result<T, String>, Option<EngineError>) {
    match result {
        Ok(v) => (Ok(v), None),
        Err(e) => (Err(e.to_string()), Some(e)),
    }
}
