//! One upload on a worker's connection: the conflict policy and the resume check (asked on a
//! side connection, since the main one is busy with pipelined requests), then the `put` with
//! its payload hashed while it is sent and the digest in a trailer; later, its reply.
//!
//! The file is opened (a small one read whole) before its `put` is sent, so the request can
//! carry the permission bits of the very file whose bytes follow.

use std::collections::VecDeque;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use ferry_protocol::{
    Digest, ErrorBody, ErrorCode, Kind, Put, PutReply, PutTrailer, Request, path,
};

use super::job::{Job, PendingKind, Task, blocking, lock};
use super::local::{self, CHUNK};
use super::same_file;
use super::session::Session;
use super::transport::{FrameReader, FrameWriter};
use super::{ConflictPolicy, Destination, EngineError};

/// Files at least this big ask the server about a partial upload before they are sent; smaller
/// ones are simply sent again, which is cheaper than the round trip.
const RESUME_MIN: u64 = 1024 * 1024;
/// Tries of a file whose path another upload holds, and the wait before the first one (each
/// next wait is longer).
const BUSY_ATTEMPTS: u32 = 5;
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Decides what to do with one upload and sends it; `None` when it was settled without a
/// request (skipped, failed, already there).
pub(super) async fn send_put(
    job: &Arc<Job>,
    writer: &mut FrameWriter,
    task: &mut Task,
    control: &mut Option<Session>,
    read_ahead: Option<std::io::Result<SmallFile>>,
) -> Result<Option<PendingKind>, EngineError> {
    let mut overwrite = job.policy == ConflictPolicy::Overwrite;
    let existing = lock(&job.remote_existing).get(&task.remote).copied();
    if let Some(kind) = existing {
        if kind == Kind::Dir {
            job.failed(
                task,
                &EngineError::Remote {
                    code: ErrorCode::IsADirectory,
                    message: "a directory is in the way".into(),
                    path: task.remote.clone(),
                },
            );
            return Ok(None);
        }
        writer.flush().await?;
        // Before anything is asked or sent: a server on this machine may show our own file.
        if let Some(salt) = job.machine.get() {
            let session = job.control_session(control).await?;
            if same_file::same_file(session, salt, &task.local, &task.remote).await? {
                let source = crate::format::local_path(&task.local);
                job.failed(
                    task,
                    &same_file::refusal(&source, &source, &task.remote, false),
                );
                return Ok(None);
            }
        }
        // The file we are sending again may be the one there: a connection can break after the
        // server placed it but before its reply came back.
        if task.interrupted
            && let Some(digest) = same_remote_file(job, task, control).await?
        {
            lock(&job.progress).add_present(task.size);
            job.done(task, digest);
            return Ok(None);
        }
        let mut reason = None;
        loop {
            match job.resolve(&task.remote, reason.take()).await {
                ConflictPolicy::Skip => {
                    job.skipped(task);
                    return Ok(None);
                }
                ConflictPolicy::Fail | ConflictPolicy::Ask => {
                    job.failed(
                        task,
                        &EngineError::exists(Destination::Remote(&task.remote)),
                    );
                    return Ok(None);
                }
                ConflictPolicy::Overwrite => overwrite = true,
                ConflictPolicy::Rename => {
                    let (parent, name) = path::split_last(&task.remote).unwrap_or(("", ""));
                    let mut known = lock(&job.remote_existing);
                    let free =
                        local::free_name(name, |c| known.contains_key(&path::join(parent, c)));
                    task.remote = path::join(parent, &free);
                    known.insert(task.remote.clone(), Kind::File);
                }
                ConflictPolicy::Resume => {
                    if let Some(digest) = same_remote_file(job, task, control).await? {
                        lock(&job.progress).add_present(task.size);
                        job.done(task, digest);
                        return Ok(None);
                    }
                    // A finished remote file cannot be appended to: a true start of ours is
                    // replaced by the whole, which loses nothing; anything else stays.
                    if let Some(why) = not_a_prefix(job, task, control).await? {
                        let refusal = EngineError::resume_mismatch(&task.remote, &why);
                        if job.asks_again() {
                            reason = Some(refusal.to_string());
                            continue;
                        }
                        job.failed(task, &refusal);
                        return Ok(None);
                    }
                    overwrite = true;
                }
            }
            break;
        }
    }

    let mut offset = 0;
    let mut hasher = blake3::Hasher::new();
    if task.size >= RESUME_MIN && !task.fresh {
        writer.flush().await?;
        let session = job.control_session(control).await?;
        // A refusal here (read-only server, missing directory) is this file's, not the
        // connection's.
        let partial = match session.partial(&task.remote).await {
            Ok(partial) => partial,
            Err(e @ EngineError::Remote { .. }) => {
                job.failed(task, &e);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if let (true, Some(theirs)) = (
            partial.length > 0 && partial.length <= task.size,
            partial.digest,
        ) {
            let path = task.local.clone();
            let length = partial.length;
            if let Ok(Some(prefix)) = blocking(move || local::hash_prefix(&path, length)).await?
                && Digest::from(prefix.finalize()) == theirs
            {
                offset = length;
                hasher = prefix;
            }
        }
    }
    lock(&job.progress).add_present(offset);
    task.counted += offset;

    let size = task.size - offset;
    let source = open_source(task, offset, read_ahead.filter(|_| offset == 0)).await?;
    writer
        .send(&Request::Put(Put {
            path: task.remote.clone(),
            size,
            offset,
            overwrite,
            digest: None,
            trailer: true,
            mtime: Some(task.mtime),
            mode: source.mode(),
        }))
        .await?;
    let broken = send_file(job, writer, task, offset, &mut hasher, source).await?;
    let digest = if broken.is_some() {
        // Bytes were made up to keep the stream in step; a digest they cannot have makes the
        // server refuse them.
        Digest::from(blake3::hash(b"ferry: this upload is broken"))
    } else {
        Digest::from(hasher.finalize())
    };
    writer.send_header(&PutTrailer { digest }).await?;
    Ok(Some(PendingKind::Put {
        offset,
        digest,
        broken,
    }))
}

/// What an upload sends, got ready before its `put` so the request can say the file's mode.
pub(super) enum Source {
    /// A file of at most [`CHUNK`] bytes from the offset, read whole (or why it could not be).
    Whole(std::io::Result<SmallFile>),
    /// A larger file, open to be streamed, with its permission bits.
    Open(std::io::Result<(std::fs::File, u32)>),
}

impl Source {
    /// The permission bits to send; none when the file could not be read (the upload is broken
    /// then anyway).
    fn mode(&self) -> Option<u32> {
        match self {
            Source::Whole(Ok(file)) => Some(file.mode),
            Source::Open(Ok((_, mode))) => Some(*mode),
            Source::Whole(Err(_)) | Source::Open(Err(_)) => None,
        }
    }
}

/// A small file's bytes and the permission bits of the file they were read from.
#[derive(Debug)]
pub(super) struct SmallFile {
    pub(super) bytes: Vec<u8>,
    pub(super) mode: u32,
}

/// The permission bits to send for a file: setuid, setgid and sticky stay behind.
fn mode_bits(meta: &std::fs::Metadata) -> u32 {
    meta.permissions().mode() & 0o777
}

/// Reads a small file (one blocking call instead of open, seek and read round trips, or none
/// at all when it was read ahead with other files) or opens a large one.
async fn open_source(
    task: &Task,
    offset: u64,
    read_ahead: Option<std::io::Result<SmallFile>>,
) -> Result<Source, EngineError> {
    let left = task.size - offset;
    let path = task.local.clone();
    if left > CHUNK as u64 {
        let opened = blocking(move || -> std::io::Result<(std::fs::File, u32)> {
            let file = std::fs::File::open(&path)?;
            let mode = mode_bits(&file.metadata()?);
            Ok((file, mode))
        })
        .await?;
        return Ok(Source::Open(opened));
    }
    if let Some(read) = read_ahead {
        return Ok(Source::Whole(read));
    }
    let want = usize::try_from(left).unwrap_or(CHUNK);
    let (size, mtime) = (task.size, task.mtime);
    let read = blocking(move || -> std::io::Result<SmallFile> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(&path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::with_capacity(want);
        (&mut file).take(want as u64).read_to_end(&mut bytes)?;
        if bytes.len() != want {
            return Err(changed());
        }
        let meta = unchanged(&file, size, Some(mtime))?;
        Ok(SmallFile {
            bytes,
            mode: mode_bits(&meta),
        })
    })
    .await?;
    Ok(Source::Whole(read))
}

/// Streams `task.size - offset` bytes of the local file, hashing them. Exactly that many bytes
/// are always written (zeros if the file shrank or could not be read), so the connection stays
/// in step; the reason is returned instead. A file whose size or mtime after the last byte is
/// not what the plan saw is broken too: what was sent is no version of it that ever existed.
pub(super) async fn send_file(
    job: &Job,
    writer: &mut FrameWriter,
    task: &mut Task,
    offset: u64,
    hasher: &mut blake3::Hasher,
    source: Source,
) -> Result<Option<std::io::Error>, EngineError> {
    let mut left = task.size - offset;
    let broken;
    match source {
        Source::Whole(read) => {
            let want = usize::try_from(left).unwrap_or(CHUNK);
            match read {
                Ok(file) if file.bytes.len() == want => {
                    hasher.update(&file.bytes);
                    writer.write(&file.bytes).await?;
                    job.moved(task, file.bytes.len() as u64);
                    return Ok(None);
                }
                Ok(_) => broken = Some(changed()),
                Err(e) => broken = Some(e),
            }
        }
        Source::Open(opened) => {
            broken = stream_file(job, writer, task, offset, hasher, opened, &mut left).await?;
        }
    }
    let zeros = vec![0u8; CHUNK.min(usize::try_from(left).unwrap_or(CHUNK))];
    while left > 0 {
        let n = usize::try_from(left).map_or(zeros.len(), |l| l.min(zeros.len()));
        writer.write(&zeros[..n]).await?;
        left -= n as u64;
    }
    Ok(broken)
}

/// Sends a large file from `offset`, counting down `left`; why it broke off, if it did.
async fn stream_file(
    job: &Job,
    writer: &mut FrameWriter,
    task: &mut Task,
    offset: u64,
    hasher: &mut blake3::Hasher,
    opened: std::io::Result<(std::fs::File, u32)>,
    left: &mut u64,
) -> Result<Option<std::io::Error>, EngineError> {
    // A blocking thread reads and hashes a few recycled buffers ahead, so the disk, the hash
    // and the socket work side by side and each byte is copied once on its way.
    let (full_tx, mut full_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(READ_AHEAD);
    let (empty_tx, empty_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(READ_AHEAD + 2);
    let file = opened.map(|(file, _)| file);
    let mut stream_hasher = std::mem::take(hasher);
    let total = *left;
    let (size, mtime) = (task.size, task.mtime);
    let reading = tokio::task::spawn_blocking(move || {
        let span = (offset, total);
        let seen = (size, mtime);
        let broken = read_stream(file, span, seen, &mut stream_hasher, &full_tx, empty_rx);
        (stream_hasher, broken)
    });
    while let Some(buf) = full_rx.recv().await {
        writer.write(&buf).await?;
        *left -= buf.len() as u64;
        job.moved(task, buf.len() as u64);
        let _ = empty_tx.try_send(buf);
    }
    let (stream_hasher, broken) = reading
        .await
        .map_err(|e| EngineError::Protocol(format!("a local task failed: {e}")))?;
    *hasher = stream_hasher;
    Ok(broken)
}

/// Files up to this size are read ahead, several in one trip to the blocking pool.
pub(super) const READ_AHEAD_MAX_SIZE: u64 = 64 * 1024;
/// How many small files are read ahead at once (at most 1 MiB per connection).
pub(super) const READ_AHEAD_FILES: usize = 16;

/// Reads whole small files, one result per path, in one blocking call. At most `size` bytes
/// are read, as for a file read alone; a file that shrank reads short, which the sender treats
/// as a file that changed, and one that grew is an error.
pub(super) fn read_small_files(
    files: &[(std::path::PathBuf, u64)],
) -> Vec<std::io::Result<SmallFile>> {
    use std::io::Read;
    files
        .iter()
        .map(|(path, size)| {
            let mut file = std::fs::File::open(path)?;
            let mut bytes = Vec::with_capacity(usize::try_from(*size).unwrap_or(0));
            (&mut file).take(*size).read_to_end(&mut bytes)?;
            if bytes.len() as u64 != *size {
                return Err(changed());
            }
            let meta = unchanged(&file, *size, None)?;
            Ok(SmallFile {
                bytes,
                mode: mode_bits(&meta),
            })
        })
        .collect()
}

/// Why an upload that changed while it was sent is refused: reported as `file_changed`.
fn changed() -> std::io::Error {
    std::io::Error::other(local::Changed)
}

/// The open file's metadata, or an error when its size (or, when given, its mtime in seconds)
/// is no longer what the plan saw: a file still being written sends a prefix no one ever
/// saved. One `fstat`, after the last byte was read.
fn unchanged(
    file: &std::fs::File,
    size: u64,
    mtime: Option<i64>,
) -> std::io::Result<std::fs::Metadata> {
    let meta = file.metadata()?;
    if meta.len() != size || mtime.is_some_and(|m| local::mtime_secs(&meta) != m) {
        return Err(changed());
    }
    Ok(meta)
}

/// Buffers of a large upload read ahead of the socket.
const READ_AHEAD: usize = 3;

/// Reads `total` bytes of the open `file` from `offset` into recycled buffers of [`CHUNK`] bytes,
/// hashing each before it is handed on; the reason when the file could not give them all, or
/// no longer has the size and mtime `seen` by the plan once they were read.
fn read_stream(
    file: std::io::Result<std::fs::File>,
    (offset, total): (u64, u64),
    (file_size, mtime): (u64, i64),
    hasher: &mut blake3::Hasher,
    full_tx: &tokio::sync::mpsc::Sender<Vec<u8>>,
    mut empty_rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
) -> Option<std::io::Error> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match file {
        Ok(file) => file,
        Err(e) => return Some(e),
    };
    if offset > 0
        && let Err(e) = file.seek(SeekFrom::Start(offset))
    {
        return Some(e);
    }
    let size = usize::try_from(total).map_or(CHUNK, |t| t.min(CHUNK));
    let mut allocated = 0;
    let mut left = total;
    while left > 0 {
        let mut buf = match empty_rx.try_recv() {
            Ok(buf) => buf,
            Err(_) if allocated < READ_AHEAD + 2 => {
                allocated += 1;
                Vec::with_capacity(size)
            }
            // The socket side is gone when this fails: nothing more is wanted.
            Err(_) => empty_rx.blocking_recv()?,
        };
        buf.clear();
        let want = usize::try_from(left).map_or(size, |l| l.min(size));
        match (&mut file).take(want as u64).read_to_end(&mut buf) {
            Ok(0) => return Some(changed()),
            Ok(n) => {
                hasher.update(&buf);
                left -= n as u64;
            }
            Err(e) => return Some(e),
        }
        if full_tx.blocking_send(buf).is_err() {
            return None;
        }
    }
    unchanged(&file, file_size, Some(mtime)).err()
}

/// The remote file's digest when it has our file's size and bytes.
async fn same_remote_file(
    job: &Job,
    task: &Task,
    control: &mut Option<Session>,
) -> Result<Option<Digest>, EngineError> {
    let session = job.control_session(control).await?;
    let entry = match session.stat(&task.remote).await {
        Ok(entry) => entry,
        Err(EngineError::Remote { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    if entry.kind != Kind::File || entry.size != task.size {
        return Ok(None);
    }
    let theirs = match session.digest(&task.remote, task.size).await {
        Ok(digest) => digest,
        Err(EngineError::Remote { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let path = task.local.clone();
    let size = task.size;
    let ours = blocking(move || local::hash_prefix(&path, size)).await?;
    Ok(match ours {
        Ok(Some(hasher)) if Digest::from(hasher.finalize()) == theirs => Some(theirs),
        _ => None,
    })
}

/// Why the remote file is not the start of our file (`None` when it is): not a regular file,
/// longer, or other bytes (its digest against the digest of as many of our first bytes).
async fn not_a_prefix(
    job: &Job,
    task: &Task,
    control: &mut Option<Session>,
) -> Result<Option<String>, EngineError> {
    let session = job.control_session(control).await?;
    let entry = match session.stat(&task.remote).await {
        Ok(entry) => entry,
        // Gone meanwhile: nothing to lose.
        Err(e) if e.remote_code() == Some(ErrorCode::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    if entry.kind != Kind::File {
        return Ok(Some("the destination is not a regular file".into()));
    }
    if entry.size > task.size {
        return Ok(Some(format!(
            "the destination ({} bytes) is larger than the source ({} bytes)",
            entry.size, task.size
        )));
    }
    let theirs = session.digest(&task.remote, entry.size).await?;
    let (path, size) = (task.local.clone(), entry.size);
    let ours = blocking(move || local::hash_prefix(&path, size)).await?;
    Ok(match ours {
        Ok(Some(hasher)) if Digest::from(hasher.finalize()) == theirs => None,
        Ok(_) | Err(_) => Some("its bytes differ from the start of the source".into()),
    })
}

/// A small file taken from the queue together with others and read in the same trip to the
/// blocking pool.
#[derive(Debug)]
pub(super) struct ReadAhead {
    pub(super) task: Task,
    pub(super) bytes: std::io::Result<SmallFile>,
}

/// Takes up to [`READ_AHEAD_FILES`] small files from the front of the queue and reads
/// them in one blocking call: a tree of tiny files then costs one thread hop per batch instead
/// of one per file on the path that feeds the socket.
pub(super) async fn read_ahead(
    job: &Job,
    ahead: &mut VecDeque<ReadAhead>,
) -> Result<(), EngineError> {
    let tasks = {
        let mut queue = lock(&job.queue);
        let mut tasks = Vec::new();
        while tasks.len() < READ_AHEAD_FILES
            && queue
                .front()
                .is_some_and(|t| t.size <= READ_AHEAD_MAX_SIZE && !t.interrupted)
        {
            if let Some(task) = queue.pop_front() {
                tasks.push(task);
            }
        }
        tasks
    };
    if tasks.len() < 2 {
        // One file gains nothing; it goes back to be sent the usual way.
        if let Some(task) = tasks.into_iter().next() {
            lock(&job.queue).push_front(task);
        }
        return Ok(());
    }
    let files = tasks
        .iter()
        .map(|t| (t.local.clone(), t.size))
        .collect::<Vec<_>>();
    let read = blocking(move || read_small_files(&files)).await;
    let read = match read {
        Ok(read) => read,
        Err(e) => {
            for task in tasks.into_iter().rev() {
                lock(&job.queue).push_front(task);
            }
            return Err(e);
        }
    };
    ahead.extend(
        tasks
            .into_iter()
            .zip(read)
            .map(|(task, bytes)| ReadAhead { task, bytes }),
    );
    Ok(())
}

pub(super) async fn finish_put(
    job: &Arc<Job>,
    reader: &mut FrameReader,
    task: &mut Task,
    offset: u64,
    digest: Digest,
    broken: Option<std::io::Error>,
) -> Result<(), EngineError> {
    let reply: Result<PutReply, ErrorBody> = reader.header().await?;
    if let Some(error) = broken {
        if error.kind() == std::io::ErrorKind::NotFound {
            // The walk saw it: it went away since.
            let shown = task.local.display().to_string();
            super::plan::vanished(job, task, shown, format!("not_found: {error}"));
        } else {
            job.failed(task, &EngineError::local(&task.local, error));
        }
        return Ok(());
    }
    match reply {
        Ok(reply) if reply.digest == digest && reply.file_size == task.size => {
            job.done(task, digest);
            if job.remove_source {
                // Only the version that was sent: a file written to since (its size or mtime
                // differ) or put in its place (another inode) holds bytes the server never
                // got, and stays. Looked at right before the unlink; what is left is the moment
                // between the two calls.
                let (path, size, mtime) = (task.local.clone(), task.size, task.mtime);
                let id = task.source_id;
                let removed = blocking(move || {
                    use std::os::unix::fs::MetadataExt;
                    let meta = std::fs::symlink_metadata(&path)?;
                    if !meta.is_file()
                        || meta.len() != size
                        || local::mtime_secs(&meta) != mtime
                        || id.is_some_and(|id| id != (meta.dev(), meta.ino()))
                    {
                        // Reported as `file_changed`; the file is kept.
                        return Err(changed());
                    }
                    std::fs::remove_file(&path)
                })
                .await?;
                if let Err(e) = removed {
                    job.failed_path(&task.remote, &EngineError::local(&task.local, e));
                }
            }
        }
        Ok(_) => job.failed(
            task,
            &EngineError::Checksum {
                path: task.remote.clone(),
            },
        ),
        Err(body)
            if offset > 0
                && matches!(
                    body.code,
                    ErrorCode::OffsetMismatch | ErrorCode::ChecksumMismatch
                ) =>
        {
            job.requeue(task.clone(), true);
        }
        // The file appeared after the plan: now the policy decides, as for any existing file.
        Err(body) if body.code == ErrorCode::AlreadyExists && task.busy < BUSY_ATTEMPTS => {
            task.busy += 1;
            lock(&job.remote_existing).insert(task.remote.clone(), Kind::File);
            job.requeue(task.clone(), false);
        }
        // Another upload of the same path (often our own, just cancelled, still draining on
        // the server) holds it: wait a little and try again, resuming what it left.
        Err(body) if body.code == ErrorCode::Busy && task.busy < BUSY_ATTEMPTS => {
            task.busy += 1;
            tokio::time::sleep(BUSY_WAIT * task.busy).await;
            job.requeue(task.clone(), false);
        }
        Err(body) => job.failed(task, &EngineError::remote(&task.remote, body)),
    }
    Ok(())
}
