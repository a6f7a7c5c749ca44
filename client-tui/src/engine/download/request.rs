//! A download's request side: the destination's kind, the conflict policy, the local partial's
//! prefix hash, then the `get` from that offset.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use ferry_protocol::Request;

use crate::engine::error::{Destination, EngineError};
use crate::engine::job::{Job, MovedAside, Sent, Task, blocking, lock};
use crate::engine::local;
use crate::engine::same_file;
use crate::engine::session::Session;
use crate::engine::spec::{ConflictPolicy, FileFacts};
use crate::engine::transport::FrameWriter;

/// Decides what to do with one download and sends its `get`; `None` when it was settled
/// without a request.
pub(crate) async fn send_get(
    job: &Arc<Job>,
    writer: &mut FrameWriter,
    task: &mut Task,
    control: &mut Option<Session>,
) -> Result<Option<Sent>, EngineError> {
    if !task.vacant && !task.stream {
        let dest = task.local.clone();
        match blocking(move || write_target(&dest)).await? {
            Ok(WriteTarget::Plain) => {}
            Ok(WriteTarget::Through(target)) => task.local = target,
            Ok(WriteTarget::Stream) => task.stream = true,
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
                length: None,
            })
            .await?;
        return Ok(Some(Sent::Get {
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
        if same_file::onto_itself(job, control, task).await? {
            let dest = crate::format::local_path(&task.local);
            job.failed(
                task,
                &same_file::refusal(&task.remote, &task.remote, &dest, false),
            );
            return Ok(None);
        }
        let shown = crate::format::local_path(&task.local);
        let source = FileFacts {
            size: task.size,
            mtime: task.mtime,
        };
        let dest = inspected
            .file
            .map(|(size, mtime)| FileFacts { size, mtime });
        let mut reason = None;
        loop {
            let choice = match job.resolve(&shown, reason.take(), source, dest).await {
                rule @ (ConflictPolicy::OverwriteIfNewer
                | ConflictPolicy::OverwriteIfSizeDiffers) => match rule.keeps(source, dest) {
                    Some(why) => {
                        job.kept(task, &shown, why);
                        return Ok(None);
                    }
                    None => ConflictPolicy::Overwrite,
                },
                choice => choice,
            };
            match choice {
                ConflictPolicy::Skip => {
                    job.skipped(task);
                    return Ok(None);
                }
                ConflictPolicy::Fail
                | ConflictPolicy::Ask
                | ConflictPolicy::OverwriteIfNewer
                | ConflictPolicy::OverwriteIfSizeDiffers => {
                    job.failed(task, &EngineError::exists(Destination::Local(&task.local)));
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
                                MovedAside {
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
    if super::ranges::wanted(job, task) {
        // Its own connections: this one's pipeline goes on once the file is settled.
        writer.flush().await?;
        super::ranges::fetch(job, task, partial, offset, control).await?;
        return Ok(None);
    }
    lock(&job.progress).add_present(offset);
    task.counted += offset;
    writer
        .send(&Request::Get {
            path: task.remote.clone(),
            offset,
            length: None,
        })
        .await?;
    Ok(Some(Sent::Get {
        offset,
        hasher: Box::new(hasher),
        partial,
    }))
}

/// What kind of destination a download meets, as `cp` and `scp` see it.
enum WriteTarget {
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
fn write_target(dest: &std::path::Path) -> Result<WriteTarget, EngineError> {
    use std::os::unix::fs::FileTypeExt;
    let refuse = |what: &str| EngineError::Refused {
        code: SPECIAL_FILE,
        path: crate::format::local_path(dest),
        message: format!("{what}: only a regular file, a directory or a stream can be written"),
    };
    let Ok(lmeta) = std::fs::symlink_metadata(dest) else {
        return Ok(WriteTarget::Plain);
    };
    let is_link = lmeta.file_type().is_symlink();
    let meta = if is_link {
        std::fs::metadata(dest).map_err(|_| refuse("a symlink that leads nowhere"))?
    } else {
        lmeta
    };
    let kind = meta.file_type();
    if kind.is_fifo() || kind.is_char_device() {
        Ok(WriteTarget::Stream)
    } else if kind.is_file() && is_link {
        let target = std::fs::canonicalize(dest).map_err(|e| EngineError::local(dest, e))?;
        Ok(WriteTarget::Through(target))
    } else if kind.is_dir() && is_link {
        // A file cannot replace what a link leads to, and the link is not ours to drop.
        Err(EngineError::local(
            dest,
            std::io::Error::from(std::io::ErrorKind::IsADirectory),
        ))
    } else if kind.is_file() || kind.is_dir() {
        Ok(WriteTarget::Plain)
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
            // A partial of pieces (sized whole at once) is no prefix: its record says what
            // it holds.
            if meta.len() == 0
                || meta.len() > size
                || std::fs::symlink_metadata(super::ranges::record_path(&probe)).is_ok()
            {
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
