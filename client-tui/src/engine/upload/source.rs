//! An upload's local side: reading the source file (small ones whole, several in one trip to
//! the blocking pool; large ones streamed ahead of the socket), hashing it, and refusing a file
//! that changed while it was sent.

use std::collections::VecDeque;
use std::os::unix::fs::PermissionsExt;

use crate::engine::error::EngineError;
use crate::engine::job::{Job, Task, blocking, lock};
use crate::engine::local::{self, CHUNK};
use crate::engine::transport::FrameWriter;

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
    pub(super) fn mode(&self) -> Option<u32> {
        match self {
            Source::Whole(Ok(file)) => Some(file.mode),
            Source::Open(Ok((_, mode))) => Some(*mode),
            Source::Whole(Err(_)) | Source::Open(Err(_)) => None,
        }
    }
}

/// A small file's bytes and the permission bits of the file they were read from.
#[derive(Debug)]
pub(crate) struct SmallFile {
    pub(super) bytes: Vec<u8>,
    pub(super) mode: u32,
}

/// The permission bits to send for a file: setuid, setgid and sticky stay behind.
fn mode_bits(meta: &std::fs::Metadata) -> u32 {
    meta.permissions().mode() & 0o777
}

/// Reads a small file (one blocking call instead of open, seek and read round trips, or none
/// at all when it was read ahead with other files) or opens a large one.
pub(super) async fn open_source(
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
pub(super) fn changed() -> std::io::Error {
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

/// A small file taken from the queue together with others and read in the same trip to the
/// blocking pool.
#[derive(Debug)]
pub(crate) struct ReadAhead {
    pub(crate) task: Task,
    pub(crate) bytes: std::io::Result<SmallFile>,
}

/// Takes up to [`READ_AHEAD_FILES`] small files from the front of the queue and reads
/// them in one blocking call: a tree of tiny files then costs one thread hop per batch instead
/// of one per file on the path that feeds the socket.
pub(crate) async fn read_ahead(
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
