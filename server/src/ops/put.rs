//! `put`: a file written atomically. Bytes go into the hidden partial file beside the target
//! and are renamed onto the final name only once every byte is in and the digest matches. A
//! client that vanishes half-way leaves the partial for a resume, never a final file.
//!
//! Everything that can be refused is checked before the payload is read; the payload (and its
//! trailer) is then still consumed, so the connection stays framed. One exception: a small
//! upload whose bytes all arrived with its header, without `overwrite`, meets a taken name only
//! at the no-replace rename (same answer, one `statx` per file less).
//!
//! A large payload flows through a pipeline of a few recycled 512 KiB buffers: the connection
//! reads the socket straight into one, a blocking thread writes it to the partial and hashes
//! it while it is still in that core's cache, and it goes back to be filled again. Memory stays
//! flat whatever the size, and the socket reads overlap the disk work. A small payload is read
//! whole and written in one blocking call.
//!
//! Permissions: the partial is created `0600`, so a half-written copy of a private file is
//! never readable by others, and gets its final mode by `fchmod` just before the rename: a new
//! file the client's `mode` (permission bits only, less the server's umask), a replaced file
//! its old mode, so an overwrite never widens who may read it.
//!
//! Longer than most files (about 840 lines) on purpose: the three ways an upload is taken in
//! (streamed, small, a batch of small ones that had arrived) share one set of checks, one
//! partial file and one finish, and split apart each would reach into the others' halves.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use bytes::Bytes;
use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt};
use ferry_localfs::{hash_prefix, system_time, umask};
use ferry_protocol::{Digest, ErrorCode, Put, PutReply, PutTrailer, Request};
use tokio::sync::mpsc;

use super::Access;
use super::{check_writable, ok_line, refuse_request};
use crate::buffer_pool;
use crate::connection::{ConnError, Connection};
use crate::error::{OpError, code_of};
use crate::root::{ParentCache, RemotePath};
use crate::uploads::{UploadGuard, Wait};

/// Payload buffers queued for the disk writer; the socket reader waits when it is full.
const WRITE_DEPTH: usize = 3;
/// Bytes per payload buffer: big, so the socket and the disk see few, large calls, yet small
/// enough that several uploads at once stay within the memory budget (about 2.5 MiB each).
const CHUNK: usize = 512 * 1024;

/// Uploads up to this size are read whole and then written in one blocking call: many small
/// files cost two thread hops each instead of three plus a writer thread.
const SMALL: usize = 256 * 1024;

/// An upload that passed its checks: the partial is open and positioned at the offset.
#[derive(Debug)]
struct Upload {
    /// ServerState with the next uploads of a batch into the same directory.
    dir: Arc<Dir>,
    name: OsString,
    partial: OsString,
    wire: String,
    file: std::fs::File,
    hasher: blake3::Hasher,
    /// The permission bits the file gets when it is placed.
    mode: u32,
    /// The partial does not have `mode` yet, so it needs an `fchmod` before the rename.
    chmod: bool,
    /// Frees the path for other writers only when the disk writer is done with the partial.
    guard: UploadGuard,
}

/// What the disk writer hands back.
#[derive(Debug)]
struct Written {
    upload: Upload,
    result: io::Result<()>,
}

pub(super) async fn put(
    conn: &mut Connection,
    access: &Arc<Access>,
    put: Put,
) -> Result<(), ConnError> {
    let prepared = prepare_waiting(conn, access, &put).await?;
    let upload = match prepared {
        Ok(upload) => upload,
        Err(err) => return refuse_request(conn, &Request::Put(put), &err).await,
    };
    if put.size <= SMALL as u64 {
        return put_small(conn, put, upload).await;
    }

    conn.expect_payload(put.size);
    let buffer_size = usize::try_from(put.size).map_or(CHUNK, |size| size.min(CHUNK));
    let (full_tx, full_rx) = mpsc::channel::<Vec<u8>>(WRITE_DEPTH);
    let (empty_tx, mut empty_rx) = mpsc::channel::<Vec<u8>>(WRITE_DEPTH + 1);
    let writer = tokio::task::spawn_blocking(move || write_payload(upload, full_rx, &empty_tx));
    let mut allocated = 0;
    // On an early return (peer gone, timeout, shutdown) the sender drops, the writer finishes
    // what it has, and the partial stays for a resume.
    while conn.payload_left() > 0 {
        // Buffers go round between here and the writer, so memory is bounded and reused.
        let mut buf = match empty_rx.try_recv() {
            Ok(buf) => buf,
            Err(_) if allocated <= WRITE_DEPTH => {
                allocated += 1;
                buffer_pool::take(buffer_size)
            }
            Err(_) => match empty_rx.recv().await {
                Some(buf) => buf,
                None => break,
            },
        };
        let read = conn.read_payload_into(&mut buf).await;
        // Whatever arrived is written even when the stream broke right after it, so a resume
        // can start from every byte the server received.
        if !buf.is_empty() && full_tx.send(buf).await.is_err() {
            break;
        }
        read?;
    }
    // If the writer failed, the rest of the payload is read and dropped.
    conn.skip_payload().await?;
    drop(full_tx);
    let trailer = if put.trailer {
        Some(conn.read_header().await?)
    } else {
        None
    };
    let written = writer
        .await
        .map_err(|_| ConnError::Protocol("internal error while writing"))?;
    while let Ok(buf) = empty_rx.try_recv() {
        buffer_pool::give(buf);
    }

    let finished = tokio::task::spawn_blocking(move || finish(&put, trailer, written))
        .await
        .unwrap_or_else(|err| Err(OpError::new(ErrorCode::Io, err.to_string())));
    let line = finished.unwrap_or_else(|err| err.encode());
    conn.write(&line).await
}

/// [`prepare`], waiting a bounded time (see [`crate::uploads::Wait`]) while the target is
/// held by another writer, which is most often the same user's interrupted run going away.
/// The answers before it are flushed first, so they are not kept back by the wait; the outer
/// error is the connection's.
async fn prepare_waiting(
    conn: &mut Connection,
    access: &Arc<Access>,
    put: &Put,
) -> Result<Result<Upload, OpError>, ConnError> {
    let mut wait: Option<Wait> = None;
    loop {
        let released = access.server.uploads.released();
        let notified = released.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let prepared = {
            let access = Arc::clone(access);
            let put = put.clone();
            tokio::task::spawn_blocking(move || {
                prepare(&access, &put, &mut ParentCache::default(), true)
            })
            .await
            .unwrap_or_else(|err| Err(OpError::new(ErrorCode::Io, err.to_string())))
        };
        match prepared {
            Err(err) if err.code == ErrorCode::Busy => {
                let wait = wait.get_or_insert_with(|| access.server.uploads.wait());
                if wait.over() {
                    return Ok(Err(err));
                }
                conn.flush().await?;
                wait.pause(notified).await;
            }
            other => return Ok(other),
        }
    }
}

/// A small upload that passed its checks before its bytes arrived: the payload (and trailer) is
/// read whole, then written, verified and renamed in one blocking call, with no writer thread
/// or channels.
async fn put_small(conn: &mut Connection, put: Put, mut upload: Upload) -> Result<(), ConnError> {
    conn.expect_payload(put.size);
    let mut payload = Vec::with_capacity(usize::try_from(put.size).unwrap_or(SMALL).min(SMALL));
    let mut cut = None;
    loop {
        match conn.read_payload_into(&mut payload).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) => {
                cut = Some(err);
                break;
            }
        }
    }
    let trailer = match cut {
        None if put.trailer => match conn.read_header().await {
            Ok(line) => Some(line),
            Err(err) => {
                cut = Some(err);
                None
            }
        },
        _ => None,
    };
    let broken = cut.is_some();
    let work = tokio::task::spawn_blocking(move || {
        let result = upload.file.write_all(&payload);
        if result.is_ok() {
            upload.hasher.update(&payload);
        }
        if broken {
            // Like the streaming path: what arrived stays in the partial for a resume.
            return Ok(Vec::new());
        }
        finish(&put, trailer, Written { upload, result })
    });
    let line = work
        .await
        .unwrap_or_else(|err| Err(OpError::new(ErrorCode::Io, err.to_string())))
        .unwrap_or_else(|err| err.encode());
    if let Some(err) = cut {
        return Err(err);
    }
    conn.write(&line).await
}

/// One small upload whose bytes had all arrived with its header: its request, payload and
/// trailer line, read off the buffer by [`read_arrived`].
#[derive(Debug)]
pub(crate) struct ArrivedPut {
    put: Put,
    payload: Vec<u8>,
    trailer: Option<Bytes>,
}

/// Whether `put` is a small upload whose bytes (and trailer) have all arrived already. Such a
/// one is checked after its bytes are read: the client sent them anyway, and it saves a trip
/// to the blocking pool per file.
pub(crate) fn arrived_whole(conn: &Connection, put: &Put) -> bool {
    put.size <= SMALL as u64 && conn.has_buffered(put.size, put.trailer)
}

/// Small uploads whose bytes had all arrived, gathered by the handler from the pipeline, are
/// checked, written, verified and renamed by one blocking call, one after the other: a tree of
/// tiny files costs one trip to the blocking pool per batch instead of one per file. Each is
/// answered exactly as if it came alone, in order. The client cannot tell the checks came after
/// the reads, since a refused payload is read and dropped anyway.
pub(super) async fn put_arrived(
    conn: &mut Connection,
    access: &Arc<Access>,
    batch: Vec<ArrivedPut>,
) -> Result<(), ConnError> {
    // An upload whose target is held stops the batch there (the ones after it may depend on
    // it) and waits, as a lone one would, before the batch goes on from it.
    let mut pending = VecDeque::from(batch);
    let mut wait: Option<Wait> = None;
    while !pending.is_empty() {
        let released = access.server.uploads.released();
        let notified = released.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let give_up = wait.as_ref().is_some_and(Wait::over);
        let batch_access = Arc::clone(access);
        let (lines, rest) =
            tokio::task::spawn_blocking(move || write_batch(&batch_access, pending, give_up))
                .await
                .map_err(|_| ConnError::Protocol("internal error while writing"))?;
        pending = rest;
        if !lines.is_empty() {
            wait = None;
        }
        for line in lines {
            conn.write(&line).await?;
        }
        if !pending.is_empty() {
            // The answers before the held upload are not kept back by its wait.
            conn.flush().await?;
            wait.get_or_insert_with(|| access.server.uploads.wait())
                .pause(notified)
                .await;
        }
    }
    Ok(())
}

/// Writes the small uploads of `pending` in order, up to the first whose target another
/// writer holds (unless `give_up`: then that first one is answered `busy`). Returns the
/// answers and the uploads not yet done.
fn write_batch(
    access: &Access,
    mut pending: VecDeque<ArrivedPut>,
    give_up: bool,
) -> (Vec<Vec<u8>>, VecDeque<ArrivedPut>) {
    // Only for this batch: the next request of this connection resolves from the root again.
    let mut parents = ParentCache::default();
    let mut lines = Vec::new();
    while let Some(arrived) = pending.pop_front() {
        let ArrivedPut {
            put,
            payload,
            trailer,
        } = &arrived;
        match write_small(access, put, payload, trailer.clone(), &mut parents) {
            Err(err) if err.code == ErrorCode::Busy && !(give_up && lines.is_empty()) => {
                pending.push_front(arrived);
                break;
            }
            result => lines.push(result.unwrap_or_else(|err| err.encode())),
        }
    }
    (lines, pending)
}

/// Takes one small upload's payload and trailer, which have already arrived (see
/// [`arrived_whole`]), off the buffer.
pub(crate) async fn read_arrived(conn: &mut Connection, put: Put) -> Result<ArrivedPut, ConnError> {
    conn.expect_payload(put.size);
    let mut payload = Vec::with_capacity(usize::try_from(put.size).unwrap_or(SMALL).min(SMALL));
    while conn.read_payload_into(&mut payload).await? > 0 {}
    let trailer = if put.trailer {
        Some(conn.read_header().await?)
    } else {
        None
    };
    Ok(ArrivedPut {
        put,
        payload,
        trailer,
    })
}

/// Checks, writes, verifies and renames one small upload that arrived whole.
fn write_small(
    access: &Access,
    put: &Put,
    payload: &[u8],
    trailer: Option<Bytes>,
    parents: &mut ParentCache,
) -> Result<Vec<u8>, OpError> {
    // Its bytes are here already, so a taken name can be left to the no-replace rename.
    let look = put.overwrite || put.offset > 0;
    let mut upload = prepare(access, put, parents, look)?;
    let result = upload.file.write_all(payload);
    if result.is_ok() {
        upload.hasher.update(payload);
    }
    finish(put, trailer, Written { upload, result })
}

/// Every check that can refuse the upload, then the partial opened at the offset.
/// Without `look`, a fresh upload that must not overwrite is not checked against what holds
/// its name: `renameat2(RENAME_NOREPLACE)` refuses it at the end, saving a `statx` per file.
fn prepare(
    access: &Access,
    put: &Put,
    parents: &mut ParentCache,
    look: bool,
) -> Result<Upload, OpError> {
    check_writable(access, &put.path)?;
    let path = RemotePath::parse(&put.path)?;
    if path.is_root() {
        return Err(OpError::new(ErrorCode::IsADirectory, "/: is a directory"));
    }
    let Some(file_size) = put.offset.checked_add(put.size) else {
        return Err(OpError::new(ErrorCode::TooLarge, "offset + size overflows"));
    };
    // The payload is exactly `size` bytes by framing, so the announced end is the end.
    if let Some(max) = access.server.config.max_upload_size
        && file_size > max
    {
        return Err(OpError::new(
            ErrorCode::TooLarge,
            format!(
                "{}: {} is over this server's upload limit of {}",
                path.wire,
                size(file_size),
                size(max)
            ),
        ));
    }
    if put.mtime.is_some_and(|secs| system_time(secs).is_none()) {
        return Err(OpError::new(
            ErrorCode::BadRequest,
            format!("{}: mtime is out of range", put.path),
        ));
    }
    // A destination symlink is written through at its target, as `cp` does; one that leads
    // anywhere else is refused, never replaced by the upload.
    let path = match put.overwrite {
        true => access.root.write_through(&path)?.unwrap_or(path),
        false => path,
    };
    let (dir, name) = access.root.open_parent_cached(&path, parents)?;
    let guard = access
        .claim_upload(&dir, path.name())
        .map_err(|err| OpError::io(&err, &path.wire))?
        .ok_or_else(|| {
            OpError::new(
                ErrorCode::Busy,
                format!("{}: another client is writing this file", path.wire),
            )
        })?;
    let held = if look {
        dir.symlink_metadata(name)
    } else {
        Err(io::ErrorKind::NotFound.into())
    };
    let mode = match held {
        Ok(meta) if meta.is_dir() => {
            return Err(OpError::new(
                ErrorCode::IsADirectory,
                format!("{}: is a directory", path.wire),
            ));
        }
        Ok(_) if !put.overwrite => {
            return Err(OpError::new(
                ErrorCode::AlreadyExists,
                format!("{}: already exists", path.wire),
            ));
        }
        // A link where `write_through` just saw a file (swapped in since): not replaced.
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(OpError::new(
                ErrorCode::Forbidden,
                format!("{}: became a symlink while the upload began", path.wire),
            ));
        }
        // Like the kernel when a file is written, setuid and setgid do not survive new bytes.
        Ok(meta) if meta.is_file() => meta.mode() & 0o777,
        // A replaced symlink (or fifo) has no mode of its own worth keeping.
        Ok(_) => new_file_mode(put.mode),
        Err(err) if err.kind() == io::ErrorKind::NotFound => new_file_mode(put.mode),
        Err(err) => return Err(OpError::io(&err, &path.wire)),
    };
    claim_space(access, &guard, &dir, put.size, &path.wire, parents)?;
    let partial = path.partial(&access.owner);
    let (file, hasher, chmod) = if put.offset == 0 {
        let file = create_partial(&dir, &partial.raw, &path.wire)?;
        lock_partial(&file, &path.wire)?;
        if access.owner.is_hashed(&partial.wire) {
            remember_target(&file, path.name());
        }
        // Created exclusively, so its mode is known without asking: skip the `fchmod` when it
        // is already the one wanted (a private file).
        let chmod = mode != PARTIAL_MODE & !umask();
        (file, blake3::Hasher::new(), chmod)
    } else {
        let (file, hasher) = resume_partial(&dir, &partial.raw, &path.wire, put.offset)?;
        (file, hasher, mode != PARTIAL_MODE)
    };
    Ok(Upload {
        name: name.to_owned(),
        dir,
        partial: partial.raw,
        wire: path.wire.clone(),
        file,
        hasher,
        mode,
        chmod,
        guard,
    })
}

/// The mode of a partial while its bytes arrive: nobody but the server's user can read them.
pub(super) const PARTIAL_MODE: u32 = 0o600;

/// The mode a new file gets: the client's permission bits (`0o666` when it sent none, as
/// `open` would give), never setuid, setgid or sticky, less the server's umask.
pub(super) fn new_file_mode(requested: Option<u32>) -> u32 {
    requested.map_or(0o666, |mode| mode & 0o777) & !umask()
}

/// `no_space` unless the filesystem holding `dir` has room for `bytes` more on top of what
/// other uploads in flight have still to write, with the configured reserve free after them all.
/// An overwritten file's old bytes are not counted as freed: they stay until the rename.
pub(super) fn claim_space(
    access: &Access,
    guard: &UploadGuard,
    dir: &Dir,
    bytes: u64,
    wire: &str,
    parents: &mut ParentCache,
) -> Result<(), OpError> {
    let available = match parents.free() {
        Some(free) => free,
        None => {
            let stats = rustix::fs::fstatvfs(dir).map_err(|err| OpError::io(&err.into(), wire))?;
            // What an unprivileged writer may use; the blocks kept for root are not ours.
            stats.f_bavail.saturating_mul(stats.f_frsize)
        }
    };
    let reserve = access.server.config.free_space_reserve;
    guard
        .claim_space(bytes, available, reserve)
        .map_err(|short| {
            OpError::new(
                ErrorCode::NoSpace,
                format!(
                    "{wire}: {} does not fit: {} free, {} still to be written by uploads in \
                     progress, {} kept free by this server",
                    size(bytes),
                    size(available),
                    size(short.claimed),
                    size(reserve)
                ),
            )
        })?;
    parents.set_free(available.saturating_sub(bytes));
    Ok(())
}

/// A size for people, exact for scripts: `2 MiB (2097152 bytes)`.
fn size(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    format!(
        "{} ({bytes} bytes)",
        humansize::format_size(bytes, humansize::BINARY)
    )
}

/// A fresh, empty partial. Whatever held the name before (an old partial, or a symlink someone
/// planted) is removed first, so the bytes can only land in a new regular file.
///
/// The exclusive create is tried first and the name cleared only when it is taken: a tree of
/// small uploads then costs one `openat` per file instead of a failing `unlinkat` as well.
pub(super) fn create_partial(
    dir: &Dir,
    partial: &OsStr,
    wire: &str,
) -> Result<std::fs::File, OpError> {
    let mut options = OpenOptions::new();
    // Readable too: a `copy` reads back what the kernel wrote to compare it.
    options
        .read(true)
        .write(true)
        .create_new(true)
        .mode(PARTIAL_MODE);
    match dir.open_with(partial, &options) {
        Ok(file) => return Ok(file.into_std()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(OpError::io(&err, wire)),
    }
    check_unlocked(dir, partial, wire)?;
    match dir.remove_file(partial) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(OpError::io(&err, wire)),
    }
    let file = dir
        .open_with(partial, &options)
        .map_err(|err| OpError::io(&err, wire))?;
    Ok(file.into_std())
}

/// `busy` when the partial that holds the name is being written by another server process
/// (it holds the partial's `flock`): a fresh upload must not pull the file from under it.
/// Anything that cannot be opened as a regular file is no upload's, and is cleared.
fn check_unlocked(dir: &Dir, partial: &OsStr, wire: &str) -> Result<(), OpError> {
    let mut options = OpenOptions::new();
    options.read(true);
    options
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOFOLLOW).bits() as i32);
    let Ok(held) = dir.open_with(partial, &options) else {
        return Ok(());
    };
    let held = held.into_std();
    if held.metadata().is_ok_and(|meta| meta.is_file()) {
        lock_partial(&held, wire)?;
    }
    Ok(())
}

/// The extended attribute that keeps a digest-named partial's target name, for `partials`.
pub(super) const TARGET_XATTR: &str = "user.ferry.target";

/// Records `name` on a digest-named partial so that `partials` can name it. Best effort: a
/// filesystem without user xattrs only loses the name in that listing.
pub(super) fn remember_target(file: &std::fs::File, name: &str) {
    let flags = rustix::fs::XattrFlags::empty();
    if let Err(err) = rustix::fs::fsetxattr(file, TARGET_XATTR, name.as_bytes(), flags) {
        tracing::debug!(%err, "cannot record a long name on its partial");
    }
}

/// Takes an exclusive `flock` on the open partial, held until it is closed: the in-process claim
/// keeps this server's other connections off the file, this keeps another server process
/// serving an overlapping tree from writing into the same partial (`busy`).
pub(super) fn lock_partial(file: &std::fs::File, wire: &str) -> Result<(), OpError> {
    match rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(()),
        Err(err) if err == rustix::io::Errno::WOULDBLOCK => Err(OpError::new(
            ErrorCode::Busy,
            format!("{wire}: another server process is writing this file"),
        )),
        // A filesystem without locks (some network ones) still has the in-process claim.
        Err(err) => {
            tracing::debug!(path = %wire, %err, "cannot lock a partial upload");
            Ok(())
        }
    }
}

/// The existing partial, cut back to `offset` bytes and hashed up to there.
fn resume_partial(
    dir: &Dir,
    partial: &OsStr,
    wire: &str,
    offset: u64,
) -> Result<(std::fs::File, blake3::Hasher), OpError> {
    let short = |held: u64| {
        OpError::new(
            ErrorCode::OffsetMismatch,
            format!("{wire}: cannot resume at {offset}, the partial upload holds {held} bytes"),
        )
    };
    match dir.symlink_metadata(partial) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(short(0)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(short(0)),
        Err(err) => return Err(OpError::io(&err, wire)),
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    let mut file = dir
        .open_with(partial, &options)
        .map_err(|err| OpError::io(&err, wire))?
        .into_std();
    lock_partial(&file, wire)?;
    // A partial left by an older server may be readable by others; the bytes to come are not.
    file.set_permissions(std::fs::Permissions::from_mode(PARTIAL_MODE))
        .map_err(|err| OpError::io(&err, wire))?;
    let held = file
        .metadata()
        .map_err(|err| OpError::io(&err, wire))?
        .len();
    if held < offset {
        return Err(short(held));
    }
    file.set_len(offset)
        .map_err(|err| OpError::io(&err, wire))?;
    let mut hasher = blake3::Hasher::new();
    let copied =
        hash_prefix(&mut file, offset, &mut hasher).map_err(|err| OpError::io(&err, wire))?;
    if copied != offset {
        return Err(short(copied));
    }
    file.seek(SeekFrom::Start(offset))
        .map_err(|err| OpError::io(&err, wire))?;
    Ok((file, hasher))
}

/// The disk side of an upload: writes buffers until the sender is dropped, hashes each right
/// after its write (its bytes are then in this core's cache) and hands it back empty. A thread
/// of its own for the hash cost more in hand-offs and cache misses than the overlap saved.
fn write_payload(
    mut upload: Upload,
    mut full_rx: mpsc::Receiver<Vec<u8>>,
    empty_tx: &mpsc::Sender<Vec<u8>>,
) -> Written {
    let mut result = Ok(());
    while let Some(mut buf) = full_rx.blocking_recv() {
        if let Err(err) = upload.file.write_all(&buf) {
            result = Err(err);
            break;
        }
        upload.guard.wrote(buf.len() as u64);
        upload.hasher.update(&buf);
        buf.clear();
        let _ = empty_tx.try_send(buf);
    }
    Written { upload, result }
}

/// Checks what arrived and, when all is well, moves it under its final name.
fn finish(put: &Put, trailer: Option<Bytes>, written: Written) -> Result<Vec<u8>, OpError> {
    let Written { upload, result } = written;
    let wire = upload.wire.clone();
    let discard = |upload: &Upload| {
        if let Err(err) = upload.dir.remove_file(&upload.partial) {
            tracing::warn!(path = %upload.wire, %err, "cannot remove a failed partial upload");
        }
    };
    if let Err(err) = result {
        discard(&upload);
        let code = code_of(&err);
        return Err(OpError::new(code, format!("{wire}: writing failed: {err}")));
    }
    let digest = Digest::from(upload.hasher.finalize());
    let mut expected = put.digest.into_iter().collect::<Vec<_>>();
    if let Some(line) = trailer {
        match serde_json::from_slice::<PutTrailer>(&line) {
            Ok(trailer) => expected.push(trailer.digest),
            Err(err) => {
                discard(&upload);
                return Err(OpError::new(
                    ErrorCode::BadRequest,
                    format!("{wire}: malformed put trailer: {err}"),
                ));
            }
        }
    }
    if expected.iter().any(|want| *want != digest) {
        discard(&upload);
        return Err(OpError::new(
            ErrorCode::ChecksumMismatch,
            format!("{wire}: the bytes received do not match the digest"),
        ));
    }
    // An unrepresentable mtime was refused in `prepare`.
    // i64::MIN seconds is representable, but cap-std panics reading it back (it negates the
    // seconds), so setting it would break every later listing of the directory: not set.
    let settable = put.mtime.filter(|&secs| secs != i64::MIN);
    if let Some(when) = settable.and_then(system_time) {
        // The bytes are verified; a filesystem that refuses the time should not lose them.
        if let Err(err) = upload.file.set_modified(when) {
            tracing::warn!(path = %wire, %err, "cannot set the modification time");
        }
    }
    if upload.chmod
        && let Err(err) = upload
            .file
            .set_permissions(std::fs::Permissions::from_mode(upload.mode))
    {
        // The file then stays private (0600), never wider than asked: keep the bytes.
        tracing::warn!(path = %wire, %err, "cannot set the permission bits");
    }
    // The digest above is of the bytes written through this handle. The claim keeps every
    // other ferry writer off this partial; the name must still lead to this very file, so the
    // bytes renamed into place are the bytes that were checked.
    if !still_ours(&upload) {
        // Whatever holds the name now is not this upload's to remove.
        return Err(OpError::new(
            ErrorCode::Busy,
            format!("{wire}: the partial upload was replaced while it was written"),
        ));
    }
    place(
        &upload.dir,
        &upload.partial,
        &upload.name,
        put.overwrite,
        &wire,
        "upload",
    )?;
    drop(upload.guard);
    ok_line(&PutReply {
        digest,
        file_size: put.offset + put.size,
    })
}

/// Renames a complete, verified partial onto `name` in `dir`, replacing what is there only
/// with `overwrite`; when it cannot, the partial is removed and the answer says why (`what`:
/// the upload or the copy that wrote it). A symlink swapped in for the target since the checks
/// is never replaced (what is left is the moment between this look and the rename).
pub(super) fn place(
    dir: &Dir,
    partial: &OsStr,
    name: &OsStr,
    overwrite: bool,
    wire: &str,
    what: &str,
) -> Result<(), OpError> {
    let discard = || {
        if let Err(err) = dir.remove_file(partial) {
            tracing::warn!(path = %wire, %err, "cannot remove a failed partial");
        }
    };
    if overwrite
        && dir
            .symlink_metadata(name)
            .is_ok_and(|meta| meta.file_type().is_symlink())
    {
        discard();
        return Err(OpError::new(
            ErrorCode::Forbidden,
            format!("{wire}: became a symlink while the {what} ran; it is left as it is"),
        ));
    }
    let placed = if overwrite {
        dir.rename(partial, dir, name)
    } else {
        rename_no_replace(dir, partial, name)
    };
    placed.map_err(|err| {
        discard();
        if err.kind() == io::ErrorKind::AlreadyExists {
            // Taken before (when not looked at first) or while the bytes were arriving.
            if dir.symlink_metadata(name).is_ok_and(|meta| meta.is_dir()) {
                return OpError::new(ErrorCode::IsADirectory, format!("{wire}: is a directory"));
            }
            OpError::new(ErrorCode::AlreadyExists, format!("{wire}: already exists"))
        } else {
            OpError::io(&err, wire)
        }
    })
}

/// Whether the partial's name still leads to the open file (same device and inode).
fn still_ours(upload: &Upload) -> bool {
    names_file(&upload.dir, &upload.partial, &upload.file)
}

/// Whether `name` in `dir` leads to the open `file` (same device and inode), not followed.
pub(super) fn names_file(dir: &Dir, name: &OsStr, file: &std::fs::File) -> bool {
    let (Ok(open), Ok(named)) = (
        rustix::fs::fstat(file),
        rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW),
    ) else {
        return false;
    };
    open.st_dev == named.st_dev && open.st_ino == named.st_ino
}

/// Renames `from` to `to` in `dir` unless `to` exists (`AlreadyExists` then). One atomic
/// `renameat2(RENAME_NOREPLACE)` where the filesystem has it, so a file created meanwhile is
/// never replaced and no `statx` per upload is needed; elsewhere a look before the rename.
fn rename_no_replace(dir: &Dir, from: &OsStr, to: &OsStr) -> io::Result<()> {
    use rustix::fs::{RenameFlags, renameat_with};
    match renameat_with(dir, from, dir, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(err)
            if err == rustix::io::Errno::INVAL
                || err == rustix::io::Errno::NOSYS
                || err == rustix::io::Errno::OPNOTSUPP =>
        {
            if dir.symlink_metadata(to).is_ok() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            dir.rename(from, dir, to)
        }
        Err(err) => Err(err.into()),
    }
}
