//! One download on a worker's connection: the conflict policy and the local partial's prefix
//! hash, then the `get` from that offset; later, its payload streamed into the hidden partial,
//! verified against the trailer's whole-file digest and renamed into place.
//!
//! A streamed partial is `0600` while its bytes arrive and gets its final mode by `fchmod`
//! just before the rename: a new file the server's mode less the umask, a replaced file its
//! own. A small file, verified in memory before it touches the disk, is created `0600` and
//! given its final mode before its bytes are written.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ferry_protocol::{Digest, ErrorBody, ErrorCode, GetReply, GetTrailer, Request};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::job::{Aside, Job, PendingKind, STOPPED_EARLY, Task, blocking, lock};
use super::local::{self, CHUNK};
use super::same_file;
use super::session::Session;
use super::transport::{FrameReader, FrameWriter};
use super::{ConflictPolicy, EngineError};

/// Decides what to do with one download and sends its `get`; `None` when it was settled
/// without a request.
pub(super) async fn send_get(
    job: &Arc<Job>,
    writer: &mut FrameWriter,
    task: &mut Task,
    control: &mut Option<Session>,
) -> Result<Option<PendingKind>, EngineError> {
    if !task.vacant && !task.stream {
        let dest = task.local.clone();
        match blocking(move || special_destination(&dest)).await? {
            Ok(Special::Plain) => {}
            Ok(Special::Through(target)) => task.local = target,
            Ok(Special::Stream) => task.stream = true,
            Err(refusal) => {
                job.failed(task, &refusal);
                return Ok(None);
            }
        }
    }
    if task.stream && job.remove_source {
        // Nothing shows that the bytes were kept on the other side of a stream (a pipe's
        // reader may have failed): a move there would delete the only copy.
        job.failed(
            task,
            &EngineError::Refused {
                code: SPECIAL_FILE,
                path: crate::format::local_path(&task.local),
                message: "a move into a stream would delete the source with nothing to show \
                          the bytes were kept; copy it instead"
                    .into(),
            },
        );
        return Ok(None);
    }
    if task.stream {
        // Written as it arrives, never renamed over, truncated or chmodded; replacing nothing,
        // it needs no conflict choice.
        writer
            .send(&Request::Get {
                path: task.remote.clone(),
                offset: 0,
            })
            .await?;
        return Ok(Some(PendingKind::Get {
            offset: 0,
            hasher: Box::new(blake3::Hasher::new()),
            partial: task.local.clone(),
        }));
    }
    // A file in a directory the planner just made costs nothing here; otherwise the usual
    // case (no destination yet) costs one trip to the blocking pool.
    let mut inspected = if task.vacant {
        Inspected {
            existing: None,
            mode: None,
            file: None,
            moved_aside: false,
            partial: local::partial_path(&task.local),
            prefix: Ok(None),
        }
    } else {
        inspect(task, false).await?
    };
    if let Some(is_dir) = inspected.existing {
        if is_dir {
            job.failed(
                task,
                &EngineError::local(
                    &task.local,
                    std::io::Error::from(std::io::ErrorKind::IsADirectory),
                ),
            );
            return Ok(None);
        }
        writer.flush().await?;
        // Before the question, and before anything is moved aside or opened.
        if let Some(salt) = job.machine.get() {
            let session = job.control_session(control).await?;
            if same_file::same_file(session, salt, &task.local, &task.remote).await? {
                let dest = crate::format::local_path(&task.local);
                job.failed(
                    task,
                    &same_file::refusal(&task.remote, &task.remote, &dest, false),
                );
                return Ok(None);
            }
        }
        let shown = crate::format::local_path(&task.local);
        let mut reason = None;
        loop {
            match job.resolve(&shown, reason.take()).await {
                ConflictPolicy::Skip => {
                    job.skipped(task);
                    return Ok(None);
                }
                ConflictPolicy::Fail | ConflictPolicy::Ask => {
                    job.failed(task, &local::exists_error(&task.local));
                    return Ok(None);
                }
                // The rename into place replaces it.
                ConflictPolicy::Overwrite => {
                    task.keep_mode = inspected.mode.or(task.keep_mode);
                    task.replaces = true;
                }
                ConflictPolicy::Rename => {
                    let dest = task.local.clone();
                    task.local = blocking(move || local::free_local_path(&dest)).await?;
                    inspected = inspect(task, false).await?;
                }
                ConflictPolicy::Resume => {
                    // Only a regular file no longer than the source can be its start; the rest
                    // of the check is the trailer's whole-file digest, and a mismatch puts it
                    // back.
                    let why = match inspected.file {
                        None => Some("the destination is not a regular file".to_owned()),
                        Some((len, _)) if len > task.size => Some(format!(
                            "the destination ({len} bytes) is larger than the source ({} bytes)",
                            task.size
                        )),
                        Some(_) => None,
                    };
                    if let Some(why) = why {
                        let refusal = EngineError::resume_mismatch(&shown, &why);
                        if job.asks_again() {
                            reason = Some(refusal.to_string());
                            continue;
                        }
                        job.failed(task, &refusal);
                        return Ok(None);
                    }
                    // Looked at before it may be moved aside to be continued.
                    task.keep_mode = inspected.mode.or(task.keep_mode);
                    task.replaces = true;
                    let before = inspected.file;
                    inspected = inspect(task, !task.fresh).await?;
                    if inspected.moved_aside {
                        task.resumed = before;
                        if let Some((len, mtime)) = before {
                            lock(&job.aside).insert(
                                inspected.partial.clone(),
                                Aside {
                                    dest: task.local.clone(),
                                    len,
                                    mtime,
                                    mode: task.keep_mode,
                                },
                            );
                        }
                    }
                }
            }
            break;
        }
    }
    let partial = inspected.partial;
    let (offset, hasher) = match inspected.prefix {
        Ok(Some((offset, hasher))) => (offset, hasher),
        Ok(None) => (0, blake3::Hasher::new()),
        // Named after the file the user asked for: the partial is ours to hide.
        Err(e) => {
            job.failed(task, &EngineError::local(&task.local, e));
            return Ok(None);
        }
    };
    lock(&job.progress).add_present(offset);
    task.counted += offset;
    writer
        .send(&Request::Get {
            path: task.remote.clone(),
            offset,
        })
        .await?;
    Ok(Some(PendingKind::Get {
        offset,
        hasher: Box::new(hasher),
        partial,
    }))
}

/// What kind of destination a download meets, as `cp` and `scp` see it.
enum Special {
    /// Nothing, a regular file or a directory: the usual hidden partial and rename.
    Plain,
    /// A symlink to a regular file: the file is written at the link's target (partial beside
    /// the target, renamed onto it), so the link stays a link.
    Through(PathBuf),
    /// A FIFO or a character device, or a link to one (`/dev/stdout`): the bytes are written
    /// into it as they arrive.
    Stream,
}

/// The code of a destination that is neither a file, a directory nor a stream.
const SPECIAL_FILE: &str = "special_file";

/// Looks at what `dest` is, following symlinks (a chain of them) to what a write would reach.
fn special_destination(dest: &std::path::Path) -> Result<Special, EngineError> {
    use std::os::unix::fs::FileTypeExt;
    let refuse = |what: &str| EngineError::Refused {
        code: SPECIAL_FILE,
        path: crate::format::local_path(dest),
        message: format!("{what}: only a regular file, a directory or a stream can be written"),
    };
    let Ok(lmeta) = std::fs::symlink_metadata(dest) else {
        return Ok(Special::Plain);
    };
    let is_link = lmeta.file_type().is_symlink();
    let meta = if is_link {
        std::fs::metadata(dest).map_err(|_| refuse("a symlink that leads nowhere"))?
    } else {
        lmeta
    };
    let kind = meta.file_type();
    if kind.is_fifo() || kind.is_char_device() {
        Ok(Special::Stream)
    } else if kind.is_file() && is_link {
        let target = std::fs::canonicalize(dest).map_err(|e| EngineError::local(dest, e))?;
        Ok(Special::Through(target))
    } else if kind.is_dir() && is_link {
        // A file cannot replace what a link leads to, and the link is not ours to drop.
        Err(EngineError::local(
            dest,
            std::io::Error::from(std::io::ErrorKind::IsADirectory),
        ))
    } else if kind.is_file() || kind.is_dir() {
        Ok(Special::Plain)
    } else if kind.is_socket() {
        Err(refuse("a socket"))
    } else if kind.is_block_device() {
        Err(refuse("a block device"))
    } else {
        Err(refuse("a special file"))
    }
}

/// What is on disk where a download goes.
struct Inspected {
    /// The destination exists; `true` when it is a directory.
    existing: Option<bool>,
    /// The destination's permission bits, when it is a regular file (a symlink's are not its
    /// target's, and the rename replaces the link, not the target).
    mode: Option<u32>,
    /// The destination's length and mtime, when it is a regular file.
    file: Option<(u64, i64)>,
    /// This look moved the destination aside to be continued as the partial.
    moved_aside: bool,
    partial: PathBuf,
    /// A verified-looking prefix to resume from: its length and hash.
    prefix: std::io::Result<Option<(u64, blake3::Hasher)>>,
}

/// Looks at the destination and its hidden partial. With `resume_final`, an existing
/// destination becomes the partial (unless a partial is already there), to be continued.
async fn inspect(task: &Task, resume_final: bool) -> Result<Inspected, EngineError> {
    let dest = task.local.clone();
    let partial = local::partial_path(&dest);
    let probe = partial.clone();
    let size = task.size;
    let fresh = task.fresh;
    let (existing, mode, file, moved_aside, prefix) = blocking(move || {
        let meta = std::fs::symlink_metadata(&dest).ok();
        let existing = meta.as_ref().map(std::fs::Metadata::is_dir);
        let meta = meta.filter(std::fs::Metadata::is_file);
        let mode = meta.as_ref().map(|m| m.permissions().mode() & 0o777);
        let file = meta.map(|m| (m.len(), local::mtime_secs(&m)));
        let mut moved_aside = false;
        let prefix = (|| -> std::io::Result<Option<(u64, blake3::Hasher)>> {
            if resume_final && std::fs::symlink_metadata(&dest).is_ok() {
                // The user chose to continue the destination: a hidden partial of an earlier
                // attempt (our own bytes, fetched again at worst) makes way for it, or it
                // would be continued instead and replace a destination nobody checked.
                if std::fs::symlink_metadata(&probe).is_ok() {
                    std::fs::remove_file(&probe)?;
                }
                std::fs::rename(&dest, &probe)?;
                moved_aside = true;
            }
            if fresh {
                return Ok(None);
            }
            let Ok(meta) = std::fs::symlink_metadata(&probe) else {
                return Ok(None);
            };
            if !meta.is_file() {
                // Never write through a link (or into anything else) that took the partial's
                // name.
                std::fs::remove_file(&probe)?;
                return Ok(None);
            }
            if meta.len() == 0 || meta.len() > size {
                return Ok(None);
            }
            Ok(local::hash_prefix(&probe, meta.len())?.map(|h| (meta.len(), h)))
        })();
        (existing, mode, file, moved_aside, prefix)
    })
    .await?;
    Ok(Inspected {
        existing,
        mode,
        file,
        moved_aside,
        partial,
        prefix,
    })
}

pub(super) async fn finish_get(
    job: &Arc<Job>,
    reader: &mut FrameReader,
    disk: &mut DiskStage,
    task: &mut Task,
    offset: u64,
    hasher: blake3::Hasher,
    partial: PathBuf,
) -> Result<(), EngineError> {
    let reply: GetReply = match reader.header().await? {
        Ok(reply) => reply,
        Err(body) if task.resumed.is_some() => {
            // The user's own file, continued: back under its name before anything else.
            let error = if body.code == ErrorCode::OffsetMismatch {
                let shown = crate::format::local_path(&task.local);
                EngineError::resume_mismatch(&shown, "the source is shorter than the destination")
            } else {
                EngineError::remote(&task.remote, body)
            };
            return put_back(job, task, partial, error).await;
        }
        Err(body) if offset > 0 && body.code != ErrorCode::NotFound => {
            job.requeue(task.clone(), true);
            return Ok(());
        }
        // The plan saw it: it went away on the server since.
        Err(body) if body.code == ErrorCode::NotFound => {
            super::plan::vanished(job, task, task.remote.clone(), body);
            return Ok(());
        }
        Err(body) => {
            job.failed(task, &EngineError::remote(&task.remote, body));
            return Ok(());
        }
    };
    if reply.offset != offset {
        return Err(EngineError::Protocol(format!(
            "asked for {} from byte {offset}, got byte {}",
            task.remote, reply.offset
        )));
    }
    // The file may have changed since the walk; what is reported is what arrived, and the
    // job's total follows so the bytes done never run past it.
    lock(&job.progress).resize_file(task.size, reply.file_size);
    task.size = reply.file_size;
    // What a move's removal will ask the source still to be.
    task.mtime = reply.mtime;
    let mode = task
        .keep_mode
        .unwrap_or_else(|| local::new_file_mode(reply.mode));
    if offset == 0 && reply.size <= CHUNK as u64 && !task.stream {
        reader.expect_payload(reply.size);
        let stamp = Stamp {
            mtime: reply.mtime,
            mode,
        };
        return finish_small_get(job, reader, disk, task, hasher, partial, stamp).await;
    }
    // The socket is read straight into a few recycled buffers and each piece is hashed right
    // after its read, while it is still in this core's cache; a blocking thread writes the
    // buffers, overlapping the next reads. Hashing on a thread of its own cost more in
    // hand-offs and cache misses than the overlap saved.
    let mut hasher = hasher;
    let (chunk_tx, chunk_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(STREAM_DEPTH);
    let (empty_tx, mut empty_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(STREAM_DEPTH + 2);
    let stream_partial = partial.clone();
    let into_stream = task.stream;
    // Raised by the writer at its first error (a full disk): reading the rest of the file
    // would only fill the socket for nothing.
    let stopped = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&stopped);
    let guard = WriterGuard::new(&job.writers);
    let writing = tokio::task::spawn_blocking(move || {
        let _guard = guard;
        write_stream(
            &stream_partial,
            offset,
            into_stream,
            chunk_rx,
            &empty_tx,
            &stop,
        )
    });
    let buffer_size = usize::try_from(reply.size).map_or(STREAM_BUFFER, |s| s.min(STREAM_BUFFER));
    let mut left = reply.size;
    let mut allocated = 0;
    let broken = loop {
        // A small rest is read and dropped, so the connection stays in step for the files
        // behind it; a large one is not worth reading.
        if left == 0 || (left > STOP_EARLY_MIN && stopped.load(Ordering::Relaxed)) {
            break None;
        }
        let mut buf = match empty_rx.try_recv() {
            Ok(buf) => buf,
            Err(_) if allocated < STREAM_DEPTH + 2 => {
                allocated += 1;
                Vec::with_capacity(buffer_size)
            }
            Err(_) => match empty_rx.recv().await {
                Some(buf) => buf,
                None => Vec::with_capacity(buffer_size),
            },
        };
        // Filled before it is handed over, so the writer sees few, large pieces.
        let mut cut = None;
        while left > 0 && buf.len() < buf.capacity() {
            let room = usize::try_from(left)
                .map_or(usize::MAX, |l| l)
                .min(buf.capacity() - buf.len());
            let start = buf.len();
            match reader.raw_payload_into(&mut buf, room).await {
                Ok(n) => {
                    hasher.update(&buf[start..]);
                    left -= n as u64;
                    job.moved(task, n as u64);
                }
                Err(e) => {
                    cut = Some(e);
                    break;
                }
            }
        }
        // The writer drains every buffer, even after a local error, so this only fails if the
        // thread died; the bytes must still be read to keep the connection in step.
        if !buf.is_empty() {
            let _ = chunk_tx.send(buf).await;
        }
        if let Some(e) = cut {
            break Some(e);
        }
    };
    drop(chunk_tx);
    // Every byte that arrived is written before anything else, even when the stream broke:
    // the next connection resumes after them.
    let Streamed {
        file,
        error: local_error,
    } = writing
        .await
        .map_err(|e| EngineError::Protocol(format!("a local task failed: {e}")))?;
    if let Some(e) = broken {
        return Err(e);
    }
    let mut file = file;
    if left > 0 {
        // The writer stopped early: the rest of the payload is still on the wire, so this
        // connection is given up (its other files are sent again on a new one) once the file
        // is reported; it is not tried again.
        drop(file.take());
        let error = local_error.unwrap_or_else(|| std::io::Error::other("the writer stopped"));
        let error = stopped_error(task, &partial, error).await?;
        if task.resumed.is_some() {
            put_back(job, task, partial, error).await?;
        } else {
            job.failed(task, &error);
        }
        task.settled = true;
        return Err(EngineError::Connection {
            addr: job.endpoint.address(),
            message: STOPPED_EARLY.into(),
        });
    }
    let trailer: Result<GetTrailer, ErrorBody> = reader.header().await?;
    if let Some(e) = local_error {
        drop(file.take());
        let error = stopped_error(task, &partial, e).await?;
        if task.resumed.is_some() {
            return put_back(job, task, partial, error).await;
        }
        job.failed(task, &error);
        return Ok(());
    }
    if task.stream {
        // What went into the stream cannot be taken back: the reader is told by the error.
        drop(file.take());
        match trailer {
            Ok(trailer) if Digest::from(hasher.finalize()) == trailer.digest => {
                job.done(task, trailer.digest);
                job.copied(task, trailer.digest);
            }
            Ok(_) => job.failed(
                task,
                &EngineError::Checksum {
                    path: task.remote.clone(),
                },
            ),
            Err(body) => job.failed(task, &EngineError::remote(&task.remote, body)),
        }
        return Ok(());
    }
    let discard = |partial: PathBuf| blocking(move || std::fs::remove_file(partial));
    let expected = match trailer {
        Ok(trailer) => trailer.digest,
        Err(body) if task.resumed.is_some() => {
            drop(file.take());
            return put_back(job, task, partial, EngineError::remote(&task.remote, body)).await;
        }
        Err(body) => {
            // The bytes are not one version of the file: nothing of them is worth resuming.
            drop(file.take());
            let _ = discard(partial).await?;
            job.failed(task, &EngineError::remote(&task.remote, body));
            return Ok(());
        }
    };
    let digest = Digest::from(hasher.finalize());
    if digest != expected && task.resumed.is_some() {
        drop(file.take());
        let shown = crate::format::local_path(&task.local);
        let error =
            EngineError::resume_mismatch(&shown, "its bytes differ from the start of the source");
        return put_back(job, task, partial, error).await;
    }
    if digest != expected {
        drop(file.take());
        let _ = discard(partial).await?;
        if offset > 0 {
            job.requeue(task.clone(), true);
        } else {
            job.failed(
                task,
                &EngineError::Checksum {
                    path: task.remote.clone(),
                },
            );
        }
        return Ok(());
    }
    let std_file = file.take();
    let dest = task.local.clone();
    let mtime = reply.mtime;
    let replaces = task.replaces;
    let placed = blocking(move || -> std::io::Result<()> {
        if let Some(file) = std_file {
            // A missing mtime is cosmetic; the bytes are what must be right.
            let _ = file.set_modified(local::system_time(mtime));
            // A filesystem that refuses leaves the file private, never wider than asked.
            let _ = file.set_permissions(std::fs::Permissions::from_mode(mode));
        }
        // Only a destination the user chose to replace is replaced: a file that took the
        // name during the download stays (`already_exists`).
        let renamed = if replaces {
            std::fs::rename(&partial, &dest)
        } else {
            crate::atomic::rename_no_replace(&partial, &dest)
        };
        if renamed.is_err() {
            // Verified bytes that cannot be placed are no partial to resume: never leave them.
            let _ = std::fs::remove_file(&partial);
        }
        renamed
    })
    .await?;
    if placed.is_ok() {
        lock(&job.aside).remove(&local::partial_path(&task.local));
    }
    match placed {
        Ok(()) => {
            job.done(task, digest);
            job.copied(task, digest);
        }
        Err(e) => job.failed(task, &EngineError::local(&task.local, e)),
    }
    Ok(())
}

/// Counts a running disk writer of a job while it lives.
struct WriterGuard(Arc<std::sync::atomic::AtomicUsize>);

impl WriterGuard {
    fn new(count: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(count))
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The error of a download whose local write failed, saying where the bytes that arrived are
/// kept and how many there are (a re-run resumes them), so no hidden file goes unmentioned.
async fn stopped_error(
    task: &Task,
    partial: &std::path::Path,
    error: std::io::Error,
) -> Result<EngineError, EngineError> {
    if task.stream || task.resumed.is_some() {
        // A stream keeps nothing; a resumed destination is put back by the caller.
        return Ok(EngineError::local(&task.local, error));
    }
    let probe = partial.to_owned();
    let kept = blocking(move || std::fs::symlink_metadata(probe).map(|m| m.len())).await?;
    let error = match kept {
        Ok(len) if len > 0 => std::io::Error::new(
            error.kind(),
            format!(
                "{}; the {} that arrived are kept in {} (the same command resumes them once \
                 there is room; remove it to give the space back)",
                super::without_os_error(&error.to_string()),
                crate::format::size(len),
                crate::format::local_path(partial)
            ),
        ),
        _ => error,
    };
    Ok(EngineError::local(&task.local, error))
}

/// Puts a destination that was moved aside to be resumed back under its own name, exactly as
/// it was (cut to its own length, its own mode and mtime), then fails the file with `error`.
/// Never over a file that took the name meanwhile: then it stays hidden and the error says so.
async fn put_back(
    job: &Arc<Job>,
    task: &mut Task,
    partial: PathBuf,
    error: EngineError,
) -> Result<(), EngineError> {
    let Some((len, mtime)) = task.resumed else {
        job.failed(task, &error);
        return Ok(());
    };
    lock(&job.aside).remove(&partial);
    let aside = Aside {
        dest: task.local.clone(),
        len,
        mtime,
        mode: task.keep_mode,
    };
    let hidden = partial.clone();
    let restored = blocking(move || aside.restore(&partial)).await?;
    match restored {
        Ok(()) => job.failed(task, &error),
        Err(e) => job.failed(
            task,
            &EngineError::local(
                &hidden,
                std::io::Error::new(
                    e.kind(),
                    format!("{error}; the destination could not be put back and is kept here: {e}"),
                ),
            ),
        ),
    }
    Ok(())
}

/// A whole file of at most [`CHUNK`] bytes: held in memory until its digest is checked, then
/// handed to the connection's [`DiskStage`] to be written, dated and renamed into place while
/// the next file arrives. Bytes that fail the check never touch the disk.
async fn finish_small_get(
    job: &Arc<Job>,
    reader: &mut FrameReader,
    disk: &mut DiskStage,
    task: &mut Task,
    mut hasher: blake3::Hasher,
    partial: PathBuf,
    stamp: Stamp,
) -> Result<(), EngineError> {
    let mut body = disk.buffer(usize::try_from(task.size).unwrap_or(CHUNK).min(CHUNK));
    while let Some(chunk) = reader.payload_chunk().await? {
        hasher.update(&chunk);
        job.moved(task, chunk.len() as u64);
        body.extend_from_slice(&chunk);
    }
    let trailer: Result<GetTrailer, ErrorBody> = reader.header().await?;
    let expected = match trailer {
        Ok(trailer) => trailer.digest,
        Err(body) => {
            job.failed(task, &EngineError::remote(&task.remote, body));
            return Ok(());
        }
    };
    let digest = Digest::from(hasher.finalize());
    if digest != expected {
        job.failed(
            task,
            &EngineError::Checksum {
                path: task.remote.clone(),
            },
        );
        return Ok(());
    }
    disk.place(
        job,
        Placement {
            task: task.clone(),
            body,
            partial,
            stamp,
            digest,
        },
        reader.has_buffered(),
    )
    .await
}

/// The rest of a download whose local write failed that is still read (and dropped) to keep
/// the connection in step; past it, the connection is dropped instead.
const STOP_EARLY_MIN: u64 = 4 * 1024 * 1024;

/// Buffers of a large download queued for its writer thread.
const STREAM_DEPTH: usize = 3;
/// Bytes per buffer of a large download: with [`STREAM_DEPTH`] (plus one being filled and one
/// being written) about 2.5 MiB per download, whatever the file size.
const STREAM_BUFFER: usize = 512 * 1024;

/// What the writer of a large download leaves: the open partial (unless it failed) and the
/// first local error.
struct Streamed {
    file: Option<std::fs::File>,
    error: Option<std::io::Error>,
}

/// Writes a large download's chunks into its partial from `offset`. Every chunk is taken off
/// the channel and handed back even after a write failed, so the socket reader never waits on
/// a dead writer.
fn write_stream(
    partial: &std::path::Path,
    offset: u64,
    into_stream: bool,
    mut chunk_rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    empty_tx: &tokio::sync::mpsc::Sender<Vec<u8>>,
    stop: &AtomicBool,
) -> Streamed {
    use std::io::{Seek, Write};
    let opened = (|| -> std::io::Result<std::fs::File> {
        if into_stream {
            // A FIFO or a device: opened as it is, nothing created, cut or chmodded.
            return std::fs::OpenOptions::new().write(true).open(partial);
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(offset == 0)
            .mode(local::PARTIAL_MODE)
            .open(partial)?;
        // A partial that was there already (an older client's, or a file continued by a
        // resume) is made private before any new byte goes in.
        file.set_permissions(std::fs::Permissions::from_mode(local::PARTIAL_MODE))?;
        if offset > 0 {
            // Cut to the verified prefix, so bytes past it never survive.
            file.set_len(offset)?;
            file.seek(std::io::SeekFrom::Start(offset))?;
        }
        Ok(file)
    })();
    let (mut file, mut error) = match opened {
        Ok(file) => (Some(file), None),
        Err(e) => {
            stop.store(true, Ordering::Relaxed);
            (None, Some(e))
        }
    };
    while let Some(mut chunk) = chunk_rx.blocking_recv() {
        if let Some(out) = file.as_mut()
            && let Err(e) = out.write_all(&chunk)
        {
            stop.store(true, Ordering::Relaxed);
            error = Some(e);
            file = None;
        }
        chunk.clear();
        let _ = empty_tx.try_send(chunk);
    }
    Streamed { file, error }
}

/// Bytes of verified small files queued for one connection's disk stage: enough to keep the
/// disk busy while the socket delivers the next files, small enough to keep memory flat.
const DISK_BUDGET: usize = 2 * CHUNK;

/// What a downloaded file is given before it takes its name.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    mtime: i64,
    /// Permission bits.
    mode: u32,
}

/// A verified small file waiting to be written under its final name.
#[derive(Debug)]
struct Placement {
    task: Task,
    body: Vec<u8>,
    partial: PathBuf,
    stamp: Stamp,
    digest: Digest,
}

/// One blocking thread per connection that writes verified small files and renames them into
/// place, reporting each itself. The socket reader hands a file over and goes on to the next
/// one instead of waiting for the disk, and a tree of tiny files costs one thread wake-up per
/// burst instead of a round trip to the blocking pool per file: files whose successors have
/// already arrived are handed over together, once the reader is about to wait for the network
/// (woken per file, the thread cost more in sleeping and waking than in writing).
///
/// [`finish`](Self::finish) waits for every queued file; a stage dropped without it (the job
/// was cancelled) writes nothing more, so no file appears after the job has ended.
#[derive(Debug, Default)]
pub(super) struct DiskStage {
    running: Option<RunningStage>,
    /// Verified files not yet handed to the thread.
    batch: Vec<(Placement, OwnedSemaphorePermit)>,
    /// Written bodies, back for the next files: freed by the thread and allocated by the
    /// reader, they made the two contend for the allocator's lock once per file.
    spare: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// Bodies kept for reuse, and the largest one kept: together at most 4 MiB.
const SPARE_BODIES: usize = 64;
const SPARE_MAX: usize = 64 * 1024;

/// Files gathered at most before they are handed over even though more are arriving.
const BATCH_FILES: usize = 64;

type Batch = Vec<(Placement, OwnedSemaphorePermit)>;

#[derive(Debug)]
struct RunningStage {
    tx: tokio::sync::mpsc::UnboundedSender<Batch>,
    budget: Arc<Semaphore>,
    thread: tokio::task::JoinHandle<()>,
    abandoned: Arc<AtomicBool>,
}

impl DiskStage {
    /// An empty buffer for a body of `len` bytes, reused when one came back.
    fn buffer(&self, len: usize) -> Vec<u8> {
        let mut buf = lock(&self.spare).pop().unwrap_or_default();
        buf.reserve(len);
        buf
    }

    /// Queues a verified file; with `more_coming` (the next reply has begun to arrive) it may
    /// wait for company before the thread is woken.
    async fn place(
        &mut self,
        job: &Arc<Job>,
        placement: Placement,
        more_coming: bool,
    ) -> Result<(), EngineError> {
        let budget = Arc::clone(
            &match &mut self.running {
                Some(running) => running,
                None => self
                    .running
                    .insert(RunningStage::start(job, Arc::clone(&self.spare))),
            }
            .budget,
        );
        let cost = u32::try_from(placement.body.len().clamp(1, DISK_BUDGET)).unwrap_or(u32::MAX);
        let permit = match Arc::clone(&budget).try_acquire_many_owned(cost) {
            Ok(permit) => permit,
            Err(_) => {
                // The budget is held by what is gathered or being written: hand the gathered
                // files over before waiting, or the wait would never end.
                self.hand_over()?;
                budget
                    .acquire_many_owned(cost)
                    .await
                    .map_err(|_| EngineError::Protocol("the disk stage stopped".into()))?
            }
        };
        self.batch.push((placement, permit));
        if !more_coming || self.batch.len() >= BATCH_FILES {
            self.hand_over()?;
        }
        Ok(())
    }

    /// Wakes the thread for the files gathered so far.
    fn hand_over(&mut self) -> Result<(), EngineError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        match &self.running {
            Some(running) => running
                .tx
                .send(batch)
                .map_err(|_| EngineError::Protocol("the disk stage stopped".into())),
            None => Err(EngineError::Protocol("the disk stage stopped".into())),
        }
    }

    /// Waits until every handed-over file is written and reported.
    pub(super) async fn finish(&mut self) -> Result<(), EngineError> {
        self.hand_over()?;
        if let Some(running) = self.running.take() {
            let RunningStage { tx, thread, .. } = running;
            drop(tx);
            thread
                .await
                .map_err(|e| EngineError::Protocol(format!("a local task failed: {e}")))?;
        }
        Ok(())
    }
}

impl Drop for DiskStage {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            running.abandoned.store(true, Ordering::Relaxed);
        }
    }
}

impl RunningStage {
    fn start(job: &Arc<Job>, spare: Arc<Mutex<Vec<Vec<u8>>>>) -> RunningStage {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Batch>();
        let abandoned = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&abandoned);
        let job = Arc::clone(job);
        let thread = tokio::task::spawn_blocking(move || {
            let mut dir = OpenDir::default();
            while let Some(batch) = rx.blocking_recv() {
                for (placement, permit) in batch {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let mut body = write_placement(&job, &mut dir, placement);
                    drop(permit);
                    if body.capacity() <= SPARE_MAX {
                        body.clear();
                        let mut spare = lock(&spare);
                        if spare.len() < SPARE_BODIES {
                            spare.push(body);
                        }
                    }
                }
            }
        });
        RunningStage {
            tx,
            budget: Arc::new(Semaphore::new(DISK_BUDGET)),
            thread,
            abandoned,
        }
    }
}

/// The directory the last small file went into, kept open: a tree arrives directory by
/// directory, so its files are created and renamed relative to this handle instead of
/// walking the whole path from the working directory twice per file.
#[derive(Debug, Default)]
struct OpenDir {
    path: PathBuf,
    handle: Option<std::fs::File>,
}

impl OpenDir {
    fn get(&mut self, path: &std::path::Path) -> std::io::Result<&std::fs::File> {
        if self.handle.is_none() || self.path != path {
            self.handle = None;
            let dir = if path.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                path
            };
            let handle = rustix::fs::open(
                dir,
                rustix::fs::OFlags::RDONLY
                    | rustix::fs::OFlags::DIRECTORY
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )?;
            path.clone_into(&mut self.path);
            self.handle = Some(std::fs::File::from(handle));
        }
        self.handle
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no directory handle"))
    }
}

/// Writes one file into place and reports it; gives back its body.
fn write_placement(job: &Job, dir: &mut OpenDir, placement: Placement) -> Vec<u8> {
    let Placement {
        task,
        body,
        partial,
        stamp,
        digest,
    } = placement;
    let placed = (|| -> std::io::Result<()> {
        use rustix::fs::{Mode, OFlags};
        use std::io::Write;
        let (Some(parent), Some(partial_name), Some(name)) = (
            task.local.parent(),
            partial.file_name(),
            task.local.file_name(),
        ) else {
            return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
        };
        let dir = dir.get(parent)?;
        let mut file = std::fs::File::from(rustix::fs::openat(
            dir,
            partial_name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(local::PARTIAL_MODE),
        )?);
        // Before the bytes, not after: a partial that was there already (an older client's)
        // keeps its old mode through O_TRUNC, and the verified bytes must never sit in a file
        // more readable than the finished one. A filesystem that refuses leaves the new file
        // private, never wider than asked.
        let _ = rustix::fs::fchmod(&file, Mode::from_raw_mode(stamp.mode));
        file.write_all(&body)?;
        // A missing mtime is cosmetic; the bytes are what must be right.
        let _ = file.set_modified(local::system_time(stamp.mtime));
        drop(file);
        if task.replaces {
            rustix::fs::renameat(dir, partial_name, dir, name)?;
        } else {
            match rustix::fs::renameat_with(
                dir,
                partial_name,
                dir,
                name,
                rustix::fs::RenameFlags::NOREPLACE,
            ) {
                Err(e)
                    if e == rustix::io::Errno::INVAL
                        || e == rustix::io::Errno::NOSYS
                        || e == rustix::io::Errno::OPNOTSUPP =>
                {
                    crate::atomic::rename_no_replace(&partial, &task.local)?;
                }
                other => other?,
            }
        }
        Ok(())
    })();
    if placed.is_ok() {
        lock(&job.aside).remove(&partial);
    }
    match placed {
        Ok(()) => {
            job.done(&task, digest);
            job.copied(&task, digest);
        }
        Err(e) => {
            // A small file is cheaper to fetch again than to keep half of (and a full disk
            // wants its space back): no hidden partial stays behind.
            if let (Some(parent), Some(partial_name)) = (task.local.parent(), partial.file_name())
                && let Ok(handle) = dir.get(parent)
            {
                let _ = rustix::fs::unlinkat(handle, partial_name, rustix::fs::AtFlags::empty());
            }
            job.failed(&task, &EngineError::local(&task.local, e));
        }
    }
    body
}
