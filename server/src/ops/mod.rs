//! One file per operation. Each answers exactly one request: its reply line(s), or one error
//! line, and for `put` the payload and trailer it consumed, so framing always holds.
//!
//! Filesystem work is synchronous (cap-std) and runs on the blocking pool; the streaming
//! operations (`list`, `walk`, `get`) produce their lines on a blocking thread into a small
//! bounded channel that the connection drains, so memory stays flat and the async threads never
//! wait on a disk.
//!
//! Expensive requests (`summary`, `walk`, a `get` whose offset makes the server hash a prefix)
//! never run for a client that has gone: the answers before one are flushed first, so a
//! vanished peer is found by the failed write, and while one runs the socket is watched, so a
//! reset stops the work at its next directory entry or MiB hashed. Each connection also has a
//! budget of work units for them ([`crate::Config::work_burst`], refilled at
//! [`crate::Config::work_rate`]): one that has spent it waits before its next expensive
//! request starts.

mod get;
mod hello;
mod list;
mod mkdir;
mod partial;
mod partials;
mod put;
mod remove;
mod rename;
mod stat;
mod summary;
mod walk;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_protocol::{ErrorCode, Request, encode_ok};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connection::{ConnError, Connection, pool};
use crate::error::OpError;
use crate::listener::Shared;
use crate::root::Root;
use crate::uploads::{FileKey, Owner, UploadGuard};

pub(crate) use hello::Session;

/// What one authenticated session may reach: the root it is confined to, whether it may
/// write, and whose partial uploads it sees. A user of a users file gets their own; token and
/// open sessions get the server's.
#[derive(Debug)]
pub(crate) struct Scope {
    /// Server-wide state: the configuration, the uploads in progress, the shutdown signal.
    pub shared: Arc<Shared>,
    pub root: Arc<Root>,
    pub read_only: bool,
    /// Who owns the partials this session writes: only they can see, resume or discard them.
    pub owner: Owner,
}

impl Scope {
    pub fn new(shared: Arc<Shared>, root: Arc<Root>, owner: Owner, read_only: bool) -> Self {
        Self {
            shared,
            root,
            read_only,
            owner,
        }
    }

    /// Claims the target `name` in `dir` for writing into this session's partial of it;
    /// `None` when another connection (of any user, by any path that reaches the same
    /// directory) is writing it. Keyed on the directory's device and inode, not the request's
    /// spelling.
    pub fn claim_upload(
        &self,
        dir: &cap_std::fs::Dir,
        name: &str,
    ) -> std::io::Result<Option<UploadGuard>> {
        let target = FileKey::in_dir(dir, name)?;
        let partial = self.owner.partial_name(name);
        Ok(self.shared.uploads.claim(target, partial, &self.owner))
    }
}

/// The key under which a root's tree is swept: its canonical path, `/` trimmed so that `/` +
/// `srv/a` and `/srv` + `a` name the same tree. Falls back to the path as given when it cannot
/// be canonicalised (the root was opened, so that is a race at worst).
pub(crate) fn root_key(root: &std::path::Path) -> Arc<str> {
    let canonical = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    Arc::from(canonical.to_string_lossy().trim_end_matches('/'))
}

/// Whether the connection goes on after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Close,
}

/// Answers one request.
pub(crate) async fn handle(
    conn: &mut Connection,
    shared: &Arc<Shared>,
    session: &mut Session,
    request: Request,
) -> Result<Flow, ConnError> {
    tracing::debug!(op = request.op(), "request");
    let request = match request {
        Request::Hello {
            version,
            token,
            user,
            password,
        } => {
            let credentials = hello::Credentials {
                token,
                user,
                password,
            };
            return hello::handle(conn, shared, session, version, credentials).await;
        }
        request => request,
    };
    let Some(scope) = session.scope() else {
        let err = if shared.token_hash.is_some() || shared.accounts.is_some() {
            OpError::new(ErrorCode::Unauthorized, "send hello with credentials first")
        } else {
            OpError::new(ErrorCode::BadRequest, "send hello first")
        };
        refuse(conn, &request, &err).await?;
        return Ok(session.refused_before_login());
    };
    let scope = Arc::clone(scope);
    let reply = match request {
        Request::Hello { .. } => Err(OpError::new(ErrorCode::BadRequest, "hello was answered")),
        Request::Stat { path, identity } => {
            blocking(&scope, move |scope| stat::stat(scope, &path, identity)).await
        }
        Request::List { path } => {
            stream(conn, &scope, Meter::default(), move |scope, pipe| {
                list::list(scope, &path, pipe)
            })
            .await?;
            return Ok(Flow::Continue);
        }
        Request::Walk { path } => {
            conn.flush().await?;
            conn.work_turn().await?;
            let meter = Meter::default();
            stream(conn, &scope, meter.clone(), move |scope, pipe| {
                walk::walk(scope, &path, pipe)
            })
            .await?;
            conn.charge(meter.take());
            return Ok(Flow::Continue);
        }
        Request::Summary { path } => {
            conn.flush().await?;
            conn.work_turn().await?;
            let meter = Meter::default();
            let spent = meter.clone();
            let reply = watched(conn, &scope, move |scope, stop| {
                summary::summary(scope, &path, stop, &spent)
            })
            .await?;
            conn.charge(meter.take());
            reply
        }
        Request::Get { path, offset } => {
            get_batch(conn, session, vec![(path, offset)]).await?;
            return Ok(Flow::Continue);
        }
        Request::Put(put) => {
            put::put(conn, &scope, put).await?;
            return Ok(Flow::Continue);
        }
        Request::Partial { path } => {
            // Hashes what the partial holds, up to the largest upload: expensive work.
            conn.flush().await?;
            conn.work_turn().await?;
            let meter = Meter::default();
            let spent = meter.clone();
            let reply = watched(conn, &scope, move |scope, stop| {
                partial::partial(scope, &path, stop, &spent)
            })
            .await?;
            conn.charge(meter.take());
            reply
        }
        Request::Partials { path } => {
            blocking(&scope, move |scope| partials::partials(scope, &path)).await
        }
        Request::Discard { path } => {
            blocking(&scope, move |scope| partials::discard(scope, &path)).await
        }
        Request::Mkdir {
            path,
            parents,
            mode,
        } => {
            blocking(&scope, move |scope| {
                mkdir::mkdir(scope, &path, parents, mode)
            })
            .await
        }
        Request::Rename {
            path,
            to,
            overwrite,
        } => {
            blocking(&scope, move |scope| {
                rename::rename(scope, &path, &to, overwrite)
            })
            .await
        }
        Request::Remove {
            path,
            recursive,
            if_size,
            if_mtime,
            if_digest,
        } => {
            let expect = remove::Expect {
                size: if_size,
                mtime: if_mtime,
                digest: if_digest,
            };
            if expect.digest.is_some() {
                // Checking a digest hashes the whole file: like a `summary`, only for a peer
                // that still takes its answers, within the connection's budget.
                conn.flush().await?;
                conn.work_turn().await?;
                let meter = Meter::default();
                let spent = meter.clone();
                let reply = watched(conn, &scope, move |scope, stop| {
                    remove::remove(scope, &path, recursive, &expect, stop, &spent)
                })
                .await?;
                conn.charge(meter.take());
                reply
            } else {
                blocking(&scope, move |scope| {
                    let idle = CancellationToken::new();
                    remove::remove(scope, &path, recursive, &expect, &idle, &Meter::default())
                })
                .await
            }
        }
    };
    let line = reply.unwrap_or_else(|err| {
        tracing::debug!(code = %err.code, message = %err.message, "request failed");
        err.encode()
    });
    conn.write(&line).await?;
    Ok(Flow::Continue)
}

/// Answers `get`s that were all waiting in the connection's buffer from one blocking thread,
/// so a client fetching a pipelined tree of small files is not answered one thread hop each.
/// The caller has checked that the session said `hello`.
pub(crate) async fn get_batch(
    conn: &mut Connection,
    session: &Session,
    gets: Vec<(String, u64)>,
) -> Result<(), ConnError> {
    tracing::debug!(count = gets.len(), "get batch");
    let Some(scope) = session.scope() else {
        return Err(ConnError::Protocol("get batch before hello"));
    };
    let hashing = gets.iter().any(|(_, offset)| *offset > 0);
    if hashing {
        // Hashing prefixes is expensive: only for a peer that still takes its answers, and
        // within the connection's budget.
        conn.flush().await?;
        conn.work_turn().await?;
    }
    let meter = Meter::default();
    stream(conn, scope, meter.clone(), move |scope, pipe| {
        get::get_many(scope, &gets, pipe)
    })
    .await?;
    conn.charge(meter.take());
    Ok(())
}

/// Work units one MiB of a prefix hashed costs, against one per directory entry walked: about
/// what each costs in CPU time.
pub(crate) const UNITS_PER_MIB: u64 = 128;

/// The work an expensive request has done so far, in units (one per directory entry walked,
/// [`UNITS_PER_MIB`] per MiB hashed), counted on the worker thread and charged to the
/// connection's budget once the request is answered.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meter(Arc<AtomicU64>);

impl Meter {
    pub fn add(&self, units: u64) {
        self.0.fetch_add(units, Ordering::Relaxed);
    }

    fn take(&self) -> u64 {
        self.0.swap(0, Ordering::Relaxed)
    }
}

/// Answers `err` and consumes what the request still has on the wire (a `put`'s payload and
/// trailer), so the next request is read from where the client put it.
pub(crate) async fn refuse(
    conn: &mut Connection,
    request: &Request,
    err: &OpError,
) -> Result<(), ConnError> {
    conn.write(&err.encode()).await?;
    if let Request::Put(put) = request {
        conn.expect_payload(put.size);
        conn.skip_payload().await?;
        if put.trailer {
            conn.read_header().await?;
        }
    }
    Ok(())
}

/// Runs filesystem work on the blocking pool.
async fn blocking<F>(scope: &Arc<Scope>, work: F) -> Result<Vec<u8>, OpError>
where
    F: FnOnce(&Scope) -> Result<Vec<u8>, OpError> + Send + 'static,
{
    let scope = Arc::clone(scope);
    tokio::task::spawn_blocking(move || work(&scope))
        .await
        .unwrap_or_else(|err| Err(internal(&err)))
}

/// Runs expensive filesystem work on the blocking pool while watching the socket: if the peer
/// turns out to be gone meanwhile, `stop` is cancelled (the work ends at its next check) and
/// the connection ends. The caller flushes the answers before it first.
async fn watched<F>(
    conn: &mut Connection,
    scope: &Arc<Scope>,
    work: F,
) -> Result<Result<Vec<u8>, OpError>, ConnError>
where
    F: FnOnce(&Scope, &CancellationToken) -> Result<Vec<u8>, OpError> + Send + 'static,
{
    let stop = scope.shared.shutdown.child_token();
    let _stop_on_return = stop.clone().drop_guard();
    let scope = Arc::clone(scope);
    let task = tokio::task::spawn_blocking(move || work(&scope, &stop));
    tokio::select! {
        done = task => Ok(done.unwrap_or_else(|err| Err(internal(&err)))),
        gone = conn.peer_gone() => Err(gone),
    }
}

/// Lines or chunks in flight between a producing thread and the socket. Small, because the
/// producer is much faster than any network: this is what keeps memory flat.
const STREAM_DEPTH: usize = 4;
/// Written pieces at least this big come back to the producer to be filled again.
const RECYCLE_MIN: usize = 64 * 1024;

/// The producing end of a stream: pieces go to the socket in order, and written buffers come
/// back to be filled again, so a long download reuses a handful of buffers.
#[derive(Debug)]
pub(crate) struct Pipe {
    tx: mpsc::Sender<Vec<u8>>,
    recycled: mpsc::Receiver<Vec<u8>>,
    stop: CancellationToken,
    meter: Meter,
}

impl Pipe {
    /// Queues a piece for the socket; `false` once the connection has gone.
    pub fn send(&self, piece: Vec<u8>) -> bool {
        self.tx.blocking_send(piece).is_ok()
    }

    /// Whether the answer has nowhere to go any more (the client left, or the server is
    /// shutting down): long work checks it and stops.
    pub fn stopped(&self) -> bool {
        self.stop.is_cancelled() || self.tx.is_closed()
    }

    /// A token cancelled once [`Self::stopped`] would say so.
    pub fn stop(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Where the producer counts the work it does.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// A buffer of `len` bytes (contents unspecified), reused when one came back.
    pub fn buffer(&mut self, len: usize) -> Vec<u8> {
        let mut buf = self.recycled.try_recv().unwrap_or_else(|_| pool::take(len));
        buf.resize(len, 0);
        buf
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        while let Ok(buf) = self.recycled.try_recv() {
            pool::give(buf);
        }
    }
}

/// Runs a producer on the blocking pool and writes whatever it sends, in order, until it is
/// done. If the peer goes away (a failed write, or a reset seen while the producer works)
/// the pipe's stop token is cancelled and the channel closes, and the producer stops at its
/// next check or send.
async fn stream<F>(
    conn: &mut Connection,
    scope: &Arc<Scope>,
    meter: Meter,
    produce: F,
) -> Result<(), ConnError>
where
    F: FnOnce(&Scope, &mut Pipe) + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(STREAM_DEPTH);
    let (recycle_tx, recycled) = mpsc::channel(STREAM_DEPTH + 1);
    let stop = scope.shared.shutdown.child_token();
    let _stop_on_return = stop.clone().drop_guard();
    let scope = Arc::clone(scope);
    let producer = tokio::task::spawn_blocking(move || {
        let mut pipe = Pipe {
            tx,
            recycled,
            stop,
            meter,
        };
        produce(&scope, &mut pipe);
    });
    loop {
        let piece = tokio::select! {
            piece = rx.recv() => piece,
            gone = conn.peer_gone() => return Err(gone),
        };
        let Some(piece) = piece else {
            break;
        };
        conn.write(&piece).await?;
        if rx.is_empty() {
            // The producer is working on the next piece (hashing, walking): what it sent so
            // far goes out now, which also finds a peer that has gone.
            conn.flush().await?;
        }
        // Only chunk-sized buffers go round: recycling the small ones (header lines, the tail
        // of a batch of tiny files) would make the producer grow them again, and that churn of
        // big allocations is what let memory grow with the length of a batch.
        if piece.capacity() >= RECYCLE_MIN
            && let Err(
                mpsc::error::TrySendError::Full(piece) | mpsc::error::TrySendError::Closed(piece),
            ) = recycle_tx.try_send(piece)
        {
            pool::give(piece);
        }
    }
    // A producer that died half-way leaves the peer's framing unknowable: close.
    producer.await.map_err(|err| {
        internal(&err);
        ConnError::Protocol("internal error while streaming")
    })
}

/// Encodes a reply, turning the (practically impossible) encoding failure into an `io` error.
pub(crate) fn ok_line<T: Serialize>(reply: &T) -> Result<Vec<u8>, OpError> {
    encode_ok(reply).map_err(|err| OpError::new(ErrorCode::Io, format!("encoding reply: {err}")))
}

fn internal(err: &dyn std::fmt::Display) -> OpError {
    tracing::error!(%err, "worker failed");
    OpError::new(ErrorCode::Io, "internal error")
}

/// `forbidden` for a read-only session: a read-only server, or a read-only user.
pub(crate) fn check_writable(scope: &Scope, path: &str) -> Result<(), OpError> {
    if scope.read_only {
        return Err(OpError::new(
            ErrorCode::Forbidden,
            format!("{path}: read-only access"),
        ));
    }
    Ok(())
}
