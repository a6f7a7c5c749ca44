//! An upload's reply side: the server's digest against ours, the move's removal of the
//! source, and the retries of a path another upload holds.

use std::sync::Arc;

use ferry_protocol::{Digest, ErrorBody, ErrorCode, Kind, PutReply};

use crate::engine::error::EngineError;
use crate::engine::job::{Job, Task, blocking, lock};
use crate::engine::local;
use crate::engine::transport::FrameReader;

use super::source::changed;

/// Tries of a file whose path another upload holds, and the wait before the first one (each
/// next wait is longer).
const BUSY_ATTEMPTS: u32 = 5;
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

pub(crate) async fn finish_put(
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
            crate::engine::plan::vanished(job, task, shown, format!("not_found: {error}"));
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
