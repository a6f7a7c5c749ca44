//! A download's reply side: its payload streamed into the hidden partial (or, small, verified
//! in memory first), checked against the trailer's whole-file digest and handed to the disk
//! stage to be renamed into place; a resume that turns out wrong puts the destination back.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_protocol::{Digest, ErrorBody, ErrorCode, GetReply, GetTrailer};

use crate::engine::error::EngineError;
use crate::engine::job::{Job, MovedAside, STOPPED_EARLY, Task, blocking, lock};
use crate::engine::local::{self, CHUNK};
use crate::engine::transport::FrameReader;

use super::disk::{
    DiskStage, Placement, STREAM_BUFFER, STREAM_DEPTH, Stamp, Streamed, write_stream,
};

pub(crate) async fn finish_get(
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
            crate::engine::plan::vanished(job, task, task.remote.clone(), body);
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
    // Small files gathered while this reply began to arrive must not wait for it: it may take
    // minutes, and they are verified already.
    disk.hand_over()?;
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
    let placed =
        blocking(move || place_verified(std_file.as_ref(), &partial, &dest, mtime, mode, replaces))
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

/// Dates the verified partial (`file`, when still open), gives it `mode` and renames it onto
/// `dest`.
pub(super) fn place_verified(
    file: Option<&std::fs::File>,
    partial: &std::path::Path,
    dest: &std::path::Path,
    mtime: i64,
    mode: u32,
    replaces: bool,
) -> std::io::Result<()> {
    if let Some(file) = file {
        // A missing mtime is cosmetic; the bytes are what must be right.
        let _ = file.set_modified(local::system_time(mtime));
        // A filesystem that refuses leaves the file private, never wider than asked.
        let _ = file.set_permissions(std::fs::Permissions::from_mode(mode));
    }
    // Only a destination the user chose to replace is replaced: a file that took the
    // name during the download stays (`already_exists`).
    let renamed = if replaces {
        std::fs::rename(partial, dest)
    } else {
        crate::atomic::rename_no_replace(partial, dest)
    };
    if renamed.is_err() {
        // Verified bytes that cannot be placed are no partial to resume: never leave them.
        let _ = std::fs::remove_file(partial);
    }
    renamed
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
                crate::engine::error::without_os_error(&error.to_string()),
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
    let aside = MovedAside {
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
