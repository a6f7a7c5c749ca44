//! An upload's request side: the conflict policy and the resume check (asked on a side
//! connection, since the main one is busy with pipelined requests), then the `put` with its
//! payload.

use std::sync::Arc;

use ferry_protocol::{Digest, ErrorCode, Kind, Put, PutTrailer, Request, path};

use crate::engine::error::{Destination, EngineError};
use crate::engine::job::{Job, Sent, Task, blocking, lock};
use crate::engine::local;
use crate::engine::same_file;
use crate::engine::session::Session;
use crate::engine::spec::{ConflictPolicy, FileFacts};
use crate::engine::transport::FrameWriter;

use super::source::{SmallFile, open_source, send_file};

/// Files at least this big ask the server about a partial upload before they are sent; smaller
/// ones are simply sent again, which is cheaper than the round trip.
const RESUME_MIN: u64 = 1024 * 1024;

/// Decides what to do with one upload and sends it; `None` when it was settled without a
/// request (skipped, failed, already there).
pub(crate) async fn send_put(
    job: &Arc<Job>,
    writer: &mut FrameWriter,
    task: &mut Task,
    control: &mut Option<Session>,
    read_ahead: Option<std::io::Result<SmallFile>>,
) -> Result<Option<Sent>, EngineError> {
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
        if same_file::onto_itself(job, control, task).await? {
            let source = crate::format::local_path(&task.local);
            job.failed(
                task,
                &same_file::refusal(&source, &source, &task.remote, false),
            );
            return Ok(None);
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
        let source = FileFacts {
            size: task.size,
            mtime: task.mtime,
        };
        let dest = lock(&job.remote_facts).get(&task.remote).copied();
        let mut reason = None;
        loop {
            match job.resolve(&task.remote, reason.take(), source, dest).await {
                ConflictPolicy::Skip => {
                    job.skipped(task);
                    return Ok(None);
                }
                rule @ (ConflictPolicy::OverwriteIfNewer
                | ConflictPolicy::OverwriteIfSizeDiffers) => match rule.keeps(source, dest) {
                    Some(why) => {
                        let shown = task.remote.clone();
                        job.kept(task, &shown, why);
                        return Ok(None);
                    }
                    None => overwrite = true,
                },
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
    Ok(Some(Sent::Put {
        offset,
        digest,
        broken,
    }))
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
    Ok(local_prefix_is(task, task.size, theirs)
        .await?
        .then_some(theirs))
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
    Ok((!local_prefix_is(task, entry.size, theirs).await?)
        .then(|| "its bytes differ from the start of the source".into()))
}

/// Whether the first `size` bytes of our file have the digest `theirs` (a file that cannot be
/// read, or is shorter, has not).
async fn local_prefix_is(task: &Task, size: u64, theirs: Digest) -> Result<bool, EngineError> {
    let path = task.local.clone();
    let ours = blocking(move || local::hash_prefix(&path, size)).await?;
    Ok(matches!(ours, Ok(Some(hasher)) if Digest::from(hasher.finalize()) == theirs))
}
