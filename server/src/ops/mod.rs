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

mod attrs;
mod copy;
mod digests;
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

use crate::buffer_pool;
use crate::connection::{ConnError, Connection};
use crate::error::OpError;
use crate::root::Root;
use crate::state::ServerState;
use crate::uploads::{FileKey, Owner, UploadGuard};

pub(crate) use hello::Login;
pub(crate) use put::{ArrivedPut, arrived_whole, read_arrived};

/// What a login grants: the root it is confined to, whether it may write, and whose partial
/// uploads it sees. A user of a users file gets their own; token and open logins get the
/// server's.
#[derive(Debug)]
pub(crate) struct Access {
    /// Server-wide state: the configuration, the uploads in progress, the shutdown signal.
    pub server: Arc<ServerState>,
    pub root: Arc<Root>,
    pub read_only: bool,
    /// Who owns the partials this login writes: only they can see, resume or discard them.
    pub owner: Owner,
}

impl Access {
    pub fn new(server: Arc<ServerState>, root: Arc<Root>, owner: Owner, read_only: bool) -> Self {
        Self {
            server,
            root,
            read_only,
            owner,
        }
    }

    /// Claims the target `name` in `dir` for writing into this login's partial of it;
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
        Ok(self.server.uploads.claim(target, partial, &self.owner))
    }
}

/// Answers one request. A connection that must close (too many failed or early requests,
/// its refusal sent) ends with [`ConnError::Refused`].
pub(crate) async fn handle(
    conn: &mut Connection,
    server: &Arc<ServerState>,
    login: &mut Login,
    request: Request,
) -> Result<(), ConnError> {
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
            return hello::handle(conn, server, login, version, credentials).await;
        }
        request => request,
    };
    let Some(access) = login.access() else {
        let err = if server.token_hash.is_some() || server.accounts.is_some() {
            OpError::new(ErrorCode::Unauthorized, "send hello with credentials first")
        } else {
            OpError::new(ErrorCode::BadRequest, "send hello first")
        };
        refuse_request(conn, &request, &err).await?;
        return login.refused_before_login();
    };
    let access = Arc::clone(access);
    let reply = match request {
        Request::Hello { .. } => Err(OpError::new(ErrorCode::BadRequest, "hello was answered")),
        Request::Stat { path, identity } => {
            blocking(&access, move |access| stat::stat(access, &path, identity)).await
        }
        Request::List { path } => {
            stream(conn, &access, Meter::default(), move |access, pipe| {
                list::list(access, &path, pipe)
            })
            .await?;
            return Ok(());
        }
        Request::Walk { path } => {
            conn.flush().await?;
            conn.work_turn().await?;
            let meter = Meter::default();
            stream(conn, &access, meter.clone(), move |access, pipe| {
                walk::walk(access, &path, pipe)
            })
            .await?;
            conn.charge(meter.take());
            return Ok(());
        }
        Request::Digests { path, paths } => {
            // Expensive like a walk: only for a peer that still reads, within the budget.
            conn.flush().await?;
            conn.work_turn().await?;
            let meter = Meter::default();
            stream(conn, &access, meter.clone(), move |access, pipe| {
                digests::digests(access, &path, paths, pipe)
            })
            .await?;
            conn.charge(meter.take());
            return Ok(());
        }
        Request::Summary { path } => {
            expensive(conn, &access, move |access, stop, meter| {
                summary::summary(access, &path, stop, meter)
            })
            .await?
        }
        Request::Get {
            path,
            offset,
            length,
        } => {
            get_batch(conn, login, vec![(path, offset, length)]).await?;
            return Ok(());
        }
        Request::Put(put) => {
            put::put(conn, &access, put).await?;
            return Ok(());
        }
        Request::Partial { path } => {
            // Hashes what the partial holds, up to the largest upload: expensive work.
            expensive(conn, &access, move |access, stop, meter| {
                partial::partial(access, &path, stop, meter)
            })
            .await?
        }
        Request::Partials { path } => {
            blocking(&access, move |access| partials::partials(access, &path)).await
        }
        Request::Discard { path } => {
            blocking(&access, move |access| partials::discard(access, &path)).await
        }
        Request::Mkdir {
            path,
            parents,
            mode,
        } => {
            blocking(&access, move |access| {
                mkdir::mkdir(access, &path, parents, mode)
            })
            .await
        }
        Request::Rename {
            path,
            to,
            overwrite,
        } => {
            blocking(&access, move |access| {
                rename::rename(access, &path, &to, overwrite)
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
                expensive(conn, &access, move |access, stop, meter| {
                    remove::remove(access, &path, recursive, &expect, stop, meter)
                })
                .await?
            } else {
                blocking(&access, move |access| {
                    let idle = CancellationToken::new();
                    remove::remove(access, &path, recursive, &expect, &idle, &Meter::default())
                })
                .await
            }
        }
        Request::Copy {
            path,
            to,
            overwrite,
        } => {
            // Reads the whole file twice and hashes it: expensive, like a `summary`.
            expensive(conn, &access, move |access, stop, meter| {
                copy::copy(access, &path, &to, overwrite, stop, meter)
            })
            .await?
        }
        Request::Attrs { path, mtime, mode } => {
            blocking(&access, move |access| {
                attrs::attrs(access, &path, mtime, mode)
            })
            .await
        }
    };
    let line = reply.unwrap_or_else(|err| {
        tracing::debug!(code = %err.code, message = %err.message, "request failed");
        err.encode()
    });
    conn.write(&line).await
}

/// Answers `get`s that were all waiting in the connection's buffer from one blocking thread,
/// so a client fetching a pipelined tree of small files is not answered one thread hop each.
/// The caller has checked that the login said `hello`.
pub(crate) async fn get_batch(
    conn: &mut Connection,
    login: &Login,
    gets: Vec<(String, u64, Option<u64>)>,
) -> Result<(), ConnError> {
    tracing::debug!(count = gets.len(), "get batch");
    let Some(access) = login.access() else {
        return Err(ConnError::Protocol("get batch before hello"));
    };
    let hashing = gets
        .iter()
        .any(|(_, offset, length)| *offset > 0 && length.is_none());
    if hashing {
        // Hashing prefixes is expensive: only for a peer that still takes its answers, and
        // within the connection's budget.
        conn.flush().await?;
        conn.work_turn().await?;
    }
    let meter = Meter::default();
    stream(conn, access, meter.clone(), move |access, pipe| {
        get::get_many(access, &gets, pipe)
    })
    .await?;
    conn.charge(meter.take());
    Ok(())
}

/// Answers small uploads whose bytes had all arrived, in order (see `put::put_arrived`). The
/// caller has checked that the login said `hello`.
pub(crate) async fn put_arrived(
    conn: &mut Connection,
    login: &Login,
    puts: Vec<ArrivedPut>,
) -> Result<(), ConnError> {
    let Some(access) = login.access() else {
        return Err(ConnError::Protocol("put batch before hello"));
    };
    put::put_arrived(conn, access, puts).await
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
pub(crate) async fn refuse_request(
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
async fn blocking<F>(access: &Arc<Access>, work: F) -> Result<Vec<u8>, OpError>
where
    F: FnOnce(&Access) -> Result<Vec<u8>, OpError> + Send + 'static,
{
    let access = Arc::clone(access);
    tokio::task::spawn_blocking(move || work(&access))
        .await
        .unwrap_or_else(|err| Err(internal(&err)))
}

/// Runs expensive filesystem work on the blocking pool, only for a peer that still takes its
/// answers and within the connection's budget: the answers before it are flushed first (a
/// vanished peer is found by the failed write), it waits while the budget is spent, and what
/// it counted on its [`Meter`] is charged once it is done. The socket is watched meanwhile: if
/// the peer turns out to be gone, `stop` is cancelled (the work ends at its next check) and
/// the connection ends.
async fn expensive<F>(
    conn: &mut Connection,
    access: &Arc<Access>,
    work: F,
) -> Result<Result<Vec<u8>, OpError>, ConnError>
where
    F: FnOnce(&Access, &CancellationToken, &Meter) -> Result<Vec<u8>, OpError> + Send + 'static,
{
    conn.flush().await?;
    conn.work_turn().await?;
    let meter = Meter::default();
    let spent = meter.clone();
    let stop = access.server.shutdown.child_token();
    let _stop_on_return = stop.clone().drop_guard();
    let access = Arc::clone(access);
    let task = tokio::task::spawn_blocking(move || work(&access, &stop, &spent));
    let reply = tokio::select! {
        done = task => done.unwrap_or_else(|err| Err(internal(&err))),
        gone = conn.peer_gone() => return Err(gone),
    };
    conn.charge(meter.take());
    Ok(reply)
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
        let mut buf = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| buffer_pool::take(len));
        buf.resize(len, 0);
        buf
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        while let Ok(buf) = self.recycled.try_recv() {
            buffer_pool::give(buf);
        }
    }
}

/// Runs a producer on the blocking pool and writes whatever it sends, in order, until it is
/// done. If the peer goes away (a failed write, or a reset seen while the producer works)
/// the pipe's stop token is cancelled and the channel closes, and the producer stops at its
/// next check or send.
async fn stream<F>(
    conn: &mut Connection,
    access: &Arc<Access>,
    meter: Meter,
    produce: F,
) -> Result<(), ConnError>
where
    F: FnOnce(&Access, &mut Pipe) + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(STREAM_DEPTH);
    let (recycle_tx, recycled) = mpsc::channel(STREAM_DEPTH + 1);
    let stop = access.server.shutdown.child_token();
    let _stop_on_return = stop.clone().drop_guard();
    let access = Arc::clone(access);
    let producer = tokio::task::spawn_blocking(move || {
        let mut pipe = Pipe {
            tx,
            recycled,
            stop,
            meter,
        };
        produce(&access, &mut pipe);
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
            buffer_pool::give(piece);
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

/// `forbidden` for a read-only login: a read-only server, or a read-only user.
pub(crate) fn check_writable(access: &Access, path: &str) -> Result<(), OpError> {
    if access.read_only {
        return Err(OpError::new(
            ErrorCode::Forbidden,
            format!("{path}: read-only access"),
        ));
    }
    Ok(())
}

/// The same inode, with the same length, mtime and ctime: any write, truncate or `touch` moves
/// one of them, so a file that compares equal before and after a read was not changed by it
/// (a `remove` with `if_digest`, a `digests` answer).
pub(crate) fn same_version(a: &cap_std::fs::Metadata, b: &cap_std::fs::Metadata) -> bool {
    use cap_std::fs::MetadataExt;
    (
        a.dev(),
        a.ino(),
        a.len(),
        a.mtime(),
        a.mtime_nsec(),
        a.ctime(),
        a.ctime_nsec(),
    ) == (
        b.dev(),
        b.ino(),
        b.len(),
        b.mtime(),
        b.mtime_nsec(),
        b.ctime(),
        b.ctime_nsec(),
    )
}
