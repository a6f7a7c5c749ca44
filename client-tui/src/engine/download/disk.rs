//! A download's disk side: the writer thread of a large file, and the stage that writes small
//! verified files in batches and renames each into place.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ferry_protocol::Digest;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::engine::error::EngineError;
use crate::engine::job::{Job, Task, lock};
use crate::engine::local::{self, CHUNK};

/// Buffers of a large download queued for its writer thread.
pub(super) const STREAM_DEPTH: usize = 3;
/// Bytes per buffer of a large download: with [`STREAM_DEPTH`] (plus one being filled and one
/// being written) about 2.5 MiB per download, whatever the file size.
pub(super) const STREAM_BUFFER: usize = 512 * 1024;

/// What the writer of a large download leaves: the open partial (unless it failed) and the
/// first local error.
pub(super) struct Streamed {
    pub(super) file: Option<std::fs::File>,
    pub(super) error: Option<std::io::Error>,
}

/// Writes a large download's chunks into its partial from `offset`. Every chunk is taken off
/// the channel and handed back even after a write failed, so the socket reader never waits on
/// a dead writer.
pub(super) fn write_stream(
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
pub(super) struct Stamp {
    pub(super) mtime: i64,
    /// Permission bits.
    pub(super) mode: u32,
}

/// A verified small file waiting to be written under its final name.
#[derive(Debug)]
pub(super) struct Placement {
    pub(super) task: Task,
    pub(super) body: Vec<u8>,
    pub(super) partial: PathBuf,
    pub(super) stamp: Stamp,
    pub(super) digest: Digest,
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
pub(crate) struct DiskStage {
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
    pub(super) fn buffer(&self, len: usize) -> Vec<u8> {
        let mut buf = lock(&self.spare).pop().unwrap_or_default();
        buf.reserve(len);
        buf
    }

    /// Queues a verified file; with `more_coming` (the next reply has begun to arrive) it may
    /// wait for company before the thread is woken.
    pub(super) async fn place(
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
    pub(super) fn hand_over(&mut self) -> Result<(), EngineError> {
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
    pub(crate) async fn finish(&mut self) -> Result<(), EngineError> {
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
