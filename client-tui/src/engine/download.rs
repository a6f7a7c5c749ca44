//! One download on a worker's connection: the conflict policy and the local partial's prefix
//! hash, then the `get` from that offset; later, its payload streamed into the hidden partial,
//! verified against the trailer's whole-file digest and renamed into place.

use std::path::PathBuf;
use std::sync::Arc;

use ferry_protocol::{Digest, ErrorBody, ErrorCode, GetReply, GetTrailer, Request};
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::connection::{ConnReader, ConnWriter};
use super::job::{Job, PendingKind, Task, blocking, lock};
use super::local::{self, CHUNK};
use super::{ConflictPolicy, EngineError};

/// Decides what to do with one download and sends its `get`; `None` when it was settled
/// without a request.
pub(super) async fn send_get(
    job: &Arc<Job>,
    writer: &mut ConnWriter,
    task: &mut Task,
) -> Result<Option<PendingKind>, EngineError> {
    let dest = task.local.clone();
    let existing = blocking(move || std::fs::symlink_metadata(&dest).ok()).await?;
    let mut resume_final = false;
    if let Some(meta) = existing {
        if meta.is_dir() {
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
        match job.resolve(&task.local.display().to_string()).await {
            ConflictPolicy::Skip => {
                job.skipped(task);
                return Ok(None);
            }
            ConflictPolicy::Fail | ConflictPolicy::Ask => {
                job.failed(
                    task,
                    &EngineError::local(
                        &task.local,
                        std::io::Error::from(std::io::ErrorKind::AlreadyExists),
                    ),
                );
                return Ok(None);
            }
            // The rename into place replaces it.
            ConflictPolicy::Overwrite => {}
            ConflictPolicy::Rename => {
                let dest = task.local.clone();
                task.local = blocking(move || local::free_local_path(&dest)).await?;
            }
            ConflictPolicy::Resume => resume_final = !task.fresh,
        }
    }

    let partial = local::partial_path(&task.local);
    let dest = task.local.clone();
    let probe = partial.clone();
    let size = task.size;
    let fresh = task.fresh;
    // A finished file to resume becomes the partial, unless a partial is already there.
    let prefix = blocking(move || -> std::io::Result<Option<(u64, blake3::Hasher)>> {
        if resume_final && std::fs::symlink_metadata(&probe).is_err() {
            std::fs::rename(&dest, &probe)?;
        }
        if fresh {
            return Ok(None);
        }
        let Ok(meta) = std::fs::symlink_metadata(&probe) else {
            return Ok(None);
        };
        if !meta.is_file() {
            // Never write through a link (or into anything else) that took the partial's name.
            std::fs::remove_file(&probe)?;
            return Ok(None);
        }
        if meta.len() == 0 || meta.len() > size {
            return Ok(None);
        }
        Ok(local::hash_prefix(&probe, meta.len())?.map(|h| (meta.len(), h)))
    })
    .await?;
    let (offset, hasher) = match prefix {
        Ok(Some((offset, hasher))) => (offset, hasher),
        Ok(None) => (0, blake3::Hasher::new()),
        Err(e) => {
            job.failed(task, &EngineError::local(&partial, e));
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

/// Opens the partial for writing from `offset`: truncated to it, so bytes past the verified
/// prefix never survive.
pub(super) async fn open_partial(
    partial: &std::path::Path,
    offset: u64,
) -> std::io::Result<tokio::fs::File> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(offset == 0)
        .open(partial)
        .await?;
    if offset > 0 {
        file.set_len(offset).await?;
        file.seek(std::io::SeekFrom::Start(offset)).await?;
    }
    Ok(file)
}

pub(super) async fn finish_get(
    job: &Arc<Job>,
    reader: &mut ConnReader,
    task: &mut Task,
    offset: u64,
    mut hasher: blake3::Hasher,
    partial: PathBuf,
) -> Result<(), EngineError> {
    let reply: GetReply = match reader.header().await? {
        Ok(reply) => reply,
        Err(body) if offset > 0 && body.code != ErrorCode::NotFound => {
            job.requeue(task.clone(), true);
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
    // The file may have changed since the walk; what is reported is what arrived.
    task.size = reply.file_size;
    reader.expect_payload(reply.size);
    let mut local_error = None;
    let mut file = match open_partial(&partial, offset).await {
        Ok(file) => Some(BufWriter::with_capacity(CHUNK, file)),
        Err(e) => {
            local_error = Some(e);
            None
        }
    };
    while let Some(chunk) = reader.payload_chunk().await? {
        hasher.update(&chunk);
        job.moved(task, chunk.len() as u64);
        if let Some(out) = file.as_mut()
            && let Err(e) = out.write_all(&chunk).await
        {
            local_error = Some(e);
            file = None;
        }
    }
    let trailer: Result<GetTrailer, ErrorBody> = reader.header().await?;
    let mut file = match file {
        Some(mut out) => match out.flush().await {
            Ok(()) => Some(out.into_inner()),
            Err(e) => {
                local_error = Some(e);
                None
            }
        },
        None => None,
    };
    if let Some(e) = local_error {
        job.failed(task, &EngineError::local(&partial, e));
        return Ok(());
    }
    let discard = |partial: PathBuf| blocking(move || std::fs::remove_file(partial));
    let expected = match trailer {
        Ok(trailer) => trailer.digest,
        Err(body) => {
            // The bytes are not one version of the file: nothing of them is worth resuming.
            drop(file.take());
            let _ = discard(partial).await?;
            job.failed(task, &EngineError::remote(&task.remote, body));
            return Ok(());
        }
    };
    let digest = Digest::from(hasher.finalize());
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
    let std_file = match file.take() {
        Some(file) => Some(file.into_std().await),
        None => None,
    };
    let dest = task.local.clone();
    let mtime = reply.mtime;
    let placed = blocking(move || -> std::io::Result<()> {
        if let Some(file) = std_file {
            // A missing mtime is cosmetic; the bytes are what must be right.
            let _ = file.set_modified(local::system_time(mtime));
        }
        std::fs::rename(&partial, &dest)
    })
    .await?;
    match placed {
        Ok(()) => {
            job.done(task, digest);
            if job.remove_source {
                lock(&job.verified_sources).push(task.remote.clone());
            }
        }
        Err(e) => job.failed(task, &EngineError::local(&task.local, e)),
    }
    Ok(())
}
