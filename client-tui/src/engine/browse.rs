//! The browsing worker: the task that owns a [`Session`] for an interface that browses one
//! server (the TUI's right pane), so that no caller holds a socket. It takes
//! [`BrowseRequest`]s in order, connects lazily (so a reconnect is just the next request),
//! heartbeats an idle session, and reports replies and connection changes as [`BrowseEvent`]s
//! in the order they happen. Its caller never awaits the network.
//!
//! A `ferrys://` server whose certificate is not trusted is not retried in the background:
//! the caller asks the user (or shows the changed-certificate warning) and reconnects on an
//! answer.

use std::path::PathBuf;
use std::time::Duration;

use ferry_protocol::{Entry, ErrorCode, PartialEntry};
use tokio::sync::mpsc;

use super::endpoint::Endpoint;
use super::error::EngineError;
use super::known_hosts::{Fingerprint, KnownHosts};
use super::session::Session;
use super::tls::code;
use super::view::{FetchEnd, Range, Replace, UploadEnd};

/// How long connecting may take before the pane says the server is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The same over ssh, which may be asking the user for a password.
const SSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a deletion of a partial waits for the upload that writes it to stop (a cancelled
/// upload's connection may still be closing on the server).
const DISCARD_PATIENCE: Duration = Duration::from_secs(5);

/// How often an idle session is checked: notices a dead server without a key press, keeps the
/// server's idle timeout from closing the session, and retries after a loss.
const HEARTBEAT: Duration = Duration::from_secs(20);

/// Work for the browsing session. Each request but [`BrowseRequest::Probe`] gets one reply
/// event; a probe is answered with the connection's state (or not at all while an untrusted
/// certificate or refused login waits for the user).
#[derive(Debug, Clone)]
pub enum BrowseRequest {
    List {
        serial: u64,
        dir: String,
    },
    Mkdir(String),
    Rename {
        from: String,
        to: String,
    },
    Remove(Vec<String>),
    /// Sets the permission bits of these paths (the `attrs` request), stopping at the first
    /// refusal.
    Chmod {
        paths: Vec<String>,
        mode: u32,
    },
    /// The caller's partial uploads in a directory.
    Partials(String),
    /// Deletes the caller's partial uploads of these files; with `dir`, lists it again after.
    Discard {
        dir: Option<String>,
        paths: Vec<String>,
    },
    /// A job's connection broke: check this one now and say how it is.
    Probe,
    /// A window of a file for the viewer (a ranged `get`).
    Read {
        serial: u64,
        path: String,
        offset: u64,
        length: u64,
    },
    /// The whole file, verified, into the local file `dest` (for an editor).
    Fetch {
        path: String,
        dest: PathBuf,
    },
    /// The local file `src` up to `path`, verified, as `replace` allows.
    Upload {
        src: PathBuf,
        path: String,
        replace: Replace,
    },
}

/// What the worker reports, in the order it happens: changes of the connection, and the reply
/// to each request.
#[derive(Debug)]
pub enum BrowseEvent {
    /// The connection changed.
    Link(LinkEvent),
    /// The reply to [`BrowseRequest::List`].
    Listed {
        serial: u64,
        dir: String,
        result: Result<Vec<Entry>, ListFailure>,
    },
    /// The reply to a change ([`BrowseRequest::Mkdir`], `Rename`, `Remove`, or a `Probe` that
    /// got past the worker): on success, the name to select after it, if any.
    Done(Result<Option<String>, String>),
    /// The reply to [`BrowseRequest::Read`].
    Read {
        serial: u64,
        offset: u64,
        result: Result<Range, String>,
    },
    /// The reply to [`BrowseRequest::Fetch`].
    Fetched(FetchEnd),
    /// The reply to [`BrowseRequest::Upload`].
    Uploaded(UploadEnd),
    /// The reply to [`BrowseRequest::Partials`] or [`BrowseRequest::Discard`]: the partials and
    /// whether there are more than listed; `note` says what a deletion did.
    Partials {
        dir: Option<String>,
        result: Result<(Vec<PartialEntry>, bool), String>,
        note: Option<String>,
    },
}

/// A change of the browsing connection, as the owner shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// A session is open (again).
    Connected {
        read_only: bool,
        /// The server's name for itself.
        server: String,
        /// The logged-in user's home as a wire path, when the server said (over ssh).
        home: Option<String>,
    },
    /// The connection is gone; the next request or heartbeat tries again.
    Lost(String),
    /// The server refused the credentials; nothing retries until the caller asks again.
    Unauthorized(String),
    /// The TLS server at `addr` presented a certificate nothing vouches for; nothing was sent.
    UnknownCertificate {
        addr: String,
        fingerprint: Fingerprint,
    },
    /// The server's certificate is not the pinned or recorded one.
    CertificateRefused(Refusal),
}

/// A certificate that is not the one trusted before: both fingerprints and where the old one
/// is kept, so the user can be shown the line and offered to replace it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub addr: String,
    /// What the server presented this time.
    pub presented: Option<Fingerprint>,
    /// The fingerprint trusted before: the connection's pin, else known_hosts'.
    pub old: Option<Fingerprint>,
    /// Whether `old` is the connection's pin (a bookmark's, a recent entry's or
    /// `--fingerprint`) rather than known_hosts'.
    pub pinned: bool,
    /// The known-hosts file and its line (from 1) holding `old` for `addr`, when one does.
    pub recorded_at: Option<(PathBuf, usize)>,
    /// The engine's whole warning, for the log.
    pub message: String,
}

impl Refusal {
    /// What the refusal of `endpoint`'s certificate with `code` means, reading where
    /// known_hosts holds the server.
    fn new(
        endpoint: &Endpoint,
        code: &str,
        addr: String,
        presented: Option<Fingerprint>,
        message: String,
    ) -> Refusal {
        let recorded = KnownHosts::default_location().and_then(|hosts| {
            let found = hosts.find(&addr).ok().flatten()?;
            Some((hosts.path().to_path_buf(), found))
        });
        let pinned = code == code::FINGERPRINT_MISMATCH;
        let old = if pinned {
            endpoint.fingerprint
        } else {
            recorded.as_ref().map(|(_, (_, fp))| *fp)
        };
        Refusal {
            addr,
            presented,
            old,
            pinned,
            recorded_at: recorded
                .filter(|(_, (_, fp))| Some(*fp) == old)
                .map(|(path, (line, _))| (path, line)),
            message,
        }
    }
}

/// Why a listing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFailure {
    pub message: String,
    /// The directory is not there (`not_found`, or no longer a directory), as opposed to a
    /// failure that says nothing about it (a lost connection).
    pub gone: bool,
}

/// The session and how to say what happens to it.
struct Worker {
    endpoint: Endpoint,
    event_tx: mpsc::UnboundedSender<BrowseEvent>,
    session: Option<Session>,
    /// Whether the UI was last told the connection is lost, so it hears each change once.
    lost: bool,
    /// The server's certificate was not trusted: only the user's next request tries again.
    untrusted: bool,
}

impl Worker {
    fn tell(&self, event: BrowseEvent) {
        let _ = self.event_tx.send(event);
    }

    fn link(&self, event: LinkEvent) {
        self.tell(BrowseEvent::Link(event));
    }

    /// Opens a session if there is none; on failure the error says why.
    async fn ensure(&mut self) -> Result<&mut Session, String> {
        if self.session.is_none() {
            let opened =
                tokio::time::timeout(self.connect_timeout(), Session::connect(&self.endpoint))
                    .await;
            let session = match opened {
                Ok(Ok(session)) => session,
                Ok(Err(EngineError::Trust {
                    code,
                    addr,
                    presented,
                    message,
                })) if code != code::TLS && code != code::CLEARTEXT_CREDENTIALS => {
                    self.untrusted = true;
                    self.session = None;
                    let short = format!("{code}: {addr}: not trusted");
                    match presented {
                        Some(fingerprint) if code == code::UNKNOWN_CERTIFICATE => {
                            self.link(LinkEvent::UnknownCertificate { addr, fingerprint });
                        }
                        presented => self.link(LinkEvent::CertificateRefused(Refusal::new(
                            &self.endpoint,
                            code,
                            addr,
                            presented,
                            message.clone(),
                        ))),
                    }
                    return Err(short);
                }
                // A refused login is not retried by the heartbeat: the same password would be
                // refused again, each time after the server's delay.
                Ok(Err(error)) if error.code() == "unauthorized" => {
                    self.untrusted = true;
                    self.session = None;
                    let message = error.to_string();
                    self.link(LinkEvent::Unauthorized(message.clone()));
                    return Err(message);
                }
                Ok(Err(error)) => return Err(self.lose(error.to_string())),
                Err(_) => {
                    let error = format!(
                        "no answer from {} in {} s",
                        self.endpoint.address(),
                        self.connect_timeout().as_secs()
                    );
                    return Err(self.lose(error));
                }
            };
            self.link(LinkEvent::Connected {
                read_only: session.read_only(),
                server: session.server_name().to_string(),
                home: session.home().map(str::to_owned),
            });
            self.lost = false;
            self.untrusted = false;
            self.session = Some(session);
        }
        self.session
            .as_mut()
            .ok_or_else(|| "no session".to_string())
    }

    /// How long a connection may take: over ssh the user may be typing a password or a
    /// passphrase meanwhile.
    fn connect_timeout(&self) -> Duration {
        if self.endpoint.ssh.is_some() {
            SSH_CONNECT_TIMEOUT
        } else {
            CONNECT_TIMEOUT
        }
    }

    fn lose(&mut self, error: String) -> String {
        self.session = None;
        if !self.lost {
            self.lost = true;
            self.link(LinkEvent::Lost(error.clone()));
        }
        error
    }

    /// Checks the connection at once and always reports its state, so the UI's question
    /// gets an answer even when nothing changed.
    async fn probe(&mut self) {
        if self.untrusted {
            return;
        }
        let alive = match self.session.as_mut() {
            Some(session) => session.stat("").await.is_ok(),
            None => false,
        };
        if alive {
            if let Some(session) = &self.session {
                self.link(LinkEvent::Connected {
                    read_only: session.read_only(),
                    server: session.server_name().to_string(),
                    home: session.home().map(str::to_owned),
                });
            }
            return;
        }
        self.session = None;
        // The loss is news even if it was told before: the UI thought it connected.
        self.lost = false;
        if let Err(e) = self.ensure().await {
            tracing::info!("probe after a job's connection broke: {e}");
        }
    }

    /// A cheap request on an idle session; reconnects a lost one.
    async fn heartbeat(&mut self) {
        let Some(session) = self.session.as_mut() else {
            if self.lost && !self.untrusted {
                let _ = self.ensure().await;
            }
            return;
        };
        if let Err(error) = session.stat("").await {
            self.session = None;
            // One fresh attempt before telling the user: the server may just have closed an
            // idle session.
            if let Err(e) = self.ensure().await {
                tracing::info!("heartbeat: {error}; reconnect: {e}");
            }
        }
    }

    async fn handle(&mut self, request: BrowseRequest) {
        // A listing is safe to repeat, so a session that died while idle is retried once on a
        // fresh connection; changes are never repeated, since the first may have happened.
        let attempts = if matches!(request, BrowseRequest::List { .. }) {
            2
        } else {
            1
        };
        // The user asked, so the user hears the outcome even if it is the same loss again.
        if self.session.is_none() {
            self.lost = false;
        }
        for attempt in 1..=attempts {
            let reused = self.session.is_some();
            let session = match self.ensure().await {
                Ok(session) => session,
                Err(error) => {
                    self.tell(failed(request, error));
                    return;
                }
            };
            let (reply, error) = serve(session, request.clone()).await;
            if let Some(error) = error {
                let broken = matches!(
                    error,
                    EngineError::Connection { .. } | EngineError::Protocol(_)
                );
                if broken {
                    self.session = None;
                    if reused && attempt < attempts {
                        continue;
                    }
                    if matches!(error, EngineError::Connection { .. }) {
                        self.lose(error.to_string());
                    }
                }
            }
            self.tell(reply);
            return;
        }
    }
}

/// Serves requests until their sender is dropped (the caller moved on to another server),
/// reporting to `event_tx`; a closed `event_tx` does not stop it.
pub async fn run(
    endpoint: Endpoint,
    mut requests: mpsc::UnboundedReceiver<BrowseRequest>,
    event_tx: mpsc::UnboundedSender<BrowseEvent>,
) {
    let mut worker = Worker {
        endpoint,
        event_tx,
        session: None,
        lost: false,
        untrusted: false,
    };
    loop {
        match tokio::time::timeout(HEARTBEAT, requests.recv()).await {
            Ok(Some(BrowseRequest::Probe)) => worker.probe().await,
            Ok(Some(request)) => worker.handle(request).await,
            Ok(None) => return,
            Err(_) => worker.heartbeat().await,
        }
    }
}

/// The reply to a request that could not be served.
fn failed(request: BrowseRequest, error: String) -> BrowseEvent {
    match request {
        BrowseRequest::List { serial, dir } => BrowseEvent::Listed {
            serial,
            dir,
            result: Err(ListFailure {
                message: error,
                gone: false,
            }),
        },
        BrowseRequest::Partials(dir) => BrowseEvent::Partials {
            dir: Some(dir),
            result: Err(error),
            note: None,
        },
        BrowseRequest::Discard { dir, .. } => BrowseEvent::Partials {
            dir,
            result: Err(error),
            note: None,
        },
        BrowseRequest::Read { serial, offset, .. } => BrowseEvent::Read {
            serial,
            offset,
            result: Err(error),
        },
        BrowseRequest::Fetch { path, dest } => BrowseEvent::Fetched(FetchEnd {
            path,
            copy: dest,
            result: Err(error),
        }),
        BrowseRequest::Upload { src, path, .. } => BrowseEvent::Uploaded(UploadEnd {
            copy: src,
            path,
            result: Err(error),
        }),
        _ => BrowseEvent::Done(Err(error)),
    }
}

/// Lists the caller's partial uploads of `dir` as a [`BrowseEvent::Partials`].
async fn partials(
    session: &mut Session,
    dir: String,
    note: Option<String>,
) -> (BrowseEvent, Option<EngineError>) {
    let (result, error) = split(
        session
            .partials(&dir)
            .await
            .map(|reply| (reply.partials, reply.more || reply.unnamed > 0)),
    );
    (
        BrowseEvent::Partials {
            dir: Some(dir),
            result,
            note,
        },
        error,
    )
}

/// Deletes the partials of `paths`; a missing one is not an error (nothing was left), a busy
/// one is tried again for a moment. Returns what happened, for the user.
async fn discard(session: &mut Session, paths: &[String]) -> Result<String, EngineError> {
    let mut deleted = Vec::new();
    for path in paths {
        let started = tokio::time::Instant::now();
        loop {
            match session.discard(path).await {
                Ok(()) => {
                    deleted.push(path.as_str());
                    break;
                }
                Err(e) if e.remote_code() == Some(ErrorCode::NotFound) => break,
                Err(e)
                    if e.remote_code() == Some(ErrorCode::Busy)
                        && started.elapsed() < DISCARD_PATIENCE =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(match deleted.as_slice() {
        [] => "No partial upload to delete".to_string(),
        [one] => format!(
            "Deleted the partial upload of /{}",
            crate::format::escape_name(one)
        ),
        many => format!("Deleted {} partial uploads", many.len()),
    })
}

async fn serve(
    session: &mut Session,
    request: BrowseRequest,
) -> (BrowseEvent, Option<EngineError>) {
    match request {
        BrowseRequest::List { serial, dir } => {
            let result = session.list(&dir).await;
            let gone = result
                .as_ref()
                .err()
                .and_then(EngineError::remote_code)
                .is_some_and(|code| matches!(code, ErrorCode::NotFound | ErrorCode::NotADirectory));
            let (result, error) = split(result);
            let event = BrowseEvent::Listed {
                serial,
                dir,
                result: result.map_err(|message| ListFailure { message, gone }),
            };
            (event, error)
        }
        BrowseRequest::Mkdir(path) => {
            // Exactly one directory: `mkdir -p` would recreate a tree another client deleted
            // under this pane, and say nothing when the name is taken.
            let select = name_of(&path);
            op(session.create_dir(&path).await.map(|()| select))
        }
        BrowseRequest::Rename { from, to } => {
            let select = name_of(&to);
            op(session.rename(&from, &to).await.map(|()| select))
        }
        BrowseRequest::Partials(dir) => partials(session, dir, None).await,
        BrowseRequest::Discard { dir, paths } => {
            let done = discard(session, &paths).await;
            match (dir, done) {
                (Some(dir), Ok(note)) => partials(session, dir, Some(note)).await,
                (dir, Ok(note)) => (
                    BrowseEvent::Partials {
                        dir,
                        result: Ok((Vec::new(), false)),
                        note: Some(note),
                    },
                    None,
                ),
                (dir, Err(e)) => (
                    BrowseEvent::Partials {
                        dir,
                        result: Err(e.to_string()),
                        note: None,
                    },
                    Some(e),
                ),
            }
        }
        BrowseRequest::Read {
            serial,
            path,
            offset,
            length,
        } => {
            let (result, error) = split(session.read_range(&path, offset, length).await);
            let event = BrowseEvent::Read {
                serial,
                offset,
                result,
            };
            (event, error)
        }
        BrowseRequest::Fetch { path, dest } => {
            let (result, error) = split(session.fetch_to(&path, &dest).await);
            let end = FetchEnd {
                path,
                copy: dest,
                result,
            };
            (BrowseEvent::Fetched(end), error)
        }
        BrowseRequest::Upload { src, path, replace } => {
            let (result, error) = split(session.upload_from(&src, &path, replace).await);
            let end = UploadEnd {
                copy: src,
                path,
                result,
            };
            (BrowseEvent::Uploaded(end), error)
        }
        // The worker answers probes itself; one that got here only refreshes the caller's view.
        BrowseRequest::Probe => op(Ok(None)),
        BrowseRequest::Chmod { paths, mode } => {
            let mut result = Ok(None);
            for path in paths {
                if let Err(e) = session.set_attrs(&path, None, Some(mode)).await {
                    result = Err(e);
                    break;
                }
            }
            op(result)
        }
        BrowseRequest::Remove(paths) => {
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

fn op(result: Result<Option<String>, EngineError>) -> (BrowseEvent, Option<EngineError>) {
    let (result, error) = split(result);
    (BrowseEvent::Done(result), error)
}

fn split<T>(result: Result<T, EngineError>) -> (Result<T, String>, Option<EngineError>) {
    match result {
        Ok(v) => (Ok(v), None),
        Err(e) => (Err(e.to_string()), Some(e)),
    }
}
