//! The state one job's parts share: the queue of files and the plan still feeding it, the
//! counters and progress, the events on their way to the owner, the conflict questions, and the
//! destinations a resume moved aside. The scheduler, the plan and both directions use it; it
//! uses none of them.

use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use ferry_protocol::{Digest, Kind};
use ferry_server::rate::TwoWayLimit;
use tokio::sync::{mpsc, oneshot};

use super::endpoint::Endpoint;
use super::error::EngineError;
use super::event::{LeftOutReason, TransferEvent};
use super::local;
use super::progress::ProgressState;
use super::session::{CopiedSource, Session};
use super::spec::{ConflictAnswer, ConflictPolicy, EngineOptions, FileFacts, JobId, JobSpec};

/// Locks a mutex, shrugging off poisoning: every critical section here leaves its data valid.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One file to move: where it comes from, where it goes.
#[derive(Debug, Clone)]
pub(super) struct Task {
    pub(super) local: PathBuf,
    pub(super) remote: String,
    pub(super) size: u64,
    pub(super) mtime: i64,
    /// Start from zero: a resume of this file was already found wrong.
    pub(super) fresh: bool,
    /// Bytes counted into the progress for the current attempt, taken back if it restarts.
    pub(super) counted: u64,
    /// Times the server said another client was writing the same path.
    pub(super) busy: u32,
    /// A connection broke while this file was in flight: it may have arrived even so.
    pub(super) interrupted: bool,
    /// The planner created this download's directory itself, so neither the destination nor a
    /// partial of it existed: the file needs no look at the disk before its `get` (which would
    /// cost a trip to the blocking pool per file).
    pub(super) vacant: bool,
    /// The permission bits of the local file this download replaces (overwrite, or a resume
    /// that continues it), which the new file keeps. Kept across retries: once the old file
    /// was moved aside to be continued, it can no longer be asked.
    pub(super) keep_mode: Option<u32>,
    /// A destination chosen to be resumed and moved aside to be continued: its length and
    /// mtime, to put it back exactly as it was if its bytes turn out not to be the source's.
    pub(super) resumed: Option<(u64, i64)>,
    /// The destination is a stream (a FIFO, a device, stdout): written as the bytes arrive,
    /// so an attempt that wrote anything cannot be made again.
    pub(super) stream: bool,
    /// Already reported as failed while its connection had to be dropped (a download the disk
    /// could not hold): not to be tried again.
    pub(super) settled: bool,
    /// A local source's device and inode as the walk saw them: an upload move removes the
    /// source only while its name still leads to that file.
    pub(super) source_id: Option<(u64, u64)>,
    /// The user chose to replace the destination (overwrite, resume): only then does the
    /// download's rename into place replace what holds the name.
    pub(super) replaces: bool,
}

impl Task {
    /// A file not yet tried: no attempt counted, no resume refused, no disk look skipped.
    pub(super) fn new(local: PathBuf, remote: String, size: u64, mtime: i64) -> Self {
        Self {
            local,
            remote,
            size,
            mtime,
            fresh: false,
            counted: 0,
            busy: 0,
            interrupted: false,
            vacant: false,
            keep_mode: None,
            resumed: None,
            stream: false,
            settled: false,
            source_id: None,
            replaces: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counters {
    pub(super) files: u64,
    pub(super) skipped: u64,
    pub(super) failed: u64,
}

/// The shared state of one running job.
#[derive(Debug)]
pub(super) struct Job {
    pub(super) id: JobId,
    pub(super) endpoint: Endpoint,
    pub(super) options: EngineOptions,
    pub(super) events_tx: mpsc::UnboundedSender<Vec<TransferEvent>>,
    pub(super) policy: ConflictPolicy,
    pub(super) remove_source: bool,
    /// The answer given with "apply to all".
    pub(super) sticky: Mutex<Option<ConflictPolicy>>,
    /// One question at a time, so two workers never ask at once.
    pub(super) asking: tokio::sync::Mutex<()>,
    pub(super) progress: Mutex<ProgressState>,
    pub(super) queue: Mutex<VecDeque<Task>>,
    pub(super) counters: Mutex<Counters>,
    /// Remote paths that exist (uploads) and their kind; names taken by `Rename` join them.
    pub(super) remote_existing: Mutex<HashMap<String, Kind>>,
    /// The size and time of the remote files among them, which a conflict shows and the
    /// per-file policies compare.
    pub(super) remote_facts: Mutex<HashMap<String, FileFacts>>,
    /// Remote sources whose copy is verified, to remove at the end of a move if unchanged.
    pub(super) verified_sources: Mutex<Vec<CopiedSource>>,
    /// Per-file events not yet handed to the owner. Sent one by one, a tree of tiny files woke
    /// the owner's task (and often a parked thread) once per file, which cost more CPU than
    /// writing the files; gathered, they go out in bursts with the progress ticks.
    file_events: Mutex<Vec<TransferEvent>>,
    /// The plan is still adding files: workers that find the queue empty wait instead of
    /// ending. A download is planned while its first files already move.
    planning: AtomicBool,
    /// Rung when files are added or the plan ends.
    fed: tokio::sync::Notify,
    /// Files and bytes the plan has added so far: the job's totals once it ends.
    planned: Mutex<(u64, u64)>,
    /// The salt of the server's machine identity, when the server runs on this machine: then
    /// every existing destination is checked against its source before it is touched.
    pub(super) machine: std::sync::OnceLock<String>,
    /// Destinations moved aside to be resumed, by their partial's path, until they are
    /// replaced by the verified file or put back.
    pub(super) aside: Mutex<HashMap<PathBuf, MovedAside>>,
    /// Disk writers of large downloads still running (they outlive a cancelled job briefly).
    pub(super) writers: Arc<std::sync::atomic::AtomicUsize>,
    /// The rate limits its worker connections obey: the job's own and the engine's.
    pub(super) rates: [Arc<TwoWayLimit>; 2],
}

/// Per-file events gathered before a burst is handed over even between ticks.
const FILE_EVENT_BURST: usize = 512;

impl Job {
    pub(super) fn new(
        id: JobId,
        endpoint: &Endpoint,
        options: EngineOptions,
        events_tx: &mpsc::UnboundedSender<Vec<TransferEvent>>,
        spec: &JobSpec,
    ) -> Job {
        let (policy, remove_source) = match spec {
            JobSpec::Upload {
                policy,
                remove_source,
                ..
            }
            | JobSpec::Download {
                policy,
                remove_source,
                ..
            }
            | JobSpec::Relay {
                policy,
                remove_source,
                ..
            } => (*policy, *remove_source),
        };
        Job {
            id,
            endpoint: endpoint.clone(),
            options,
            events_tx: events_tx.clone(),
            policy,
            remove_source,
            sticky: Mutex::new(None),
            asking: tokio::sync::Mutex::new(()),
            progress: Mutex::new(ProgressState::new(id)),
            queue: Mutex::new(VecDeque::new()),
            counters: Mutex::new(Counters::default()),
            remote_existing: Mutex::new(HashMap::new()),
            remote_facts: Mutex::new(HashMap::new()),
            verified_sources: Mutex::new(Vec::new()),
            file_events: Mutex::new(Vec::new()),
            planning: AtomicBool::new(false),
            fed: tokio::sync::Notify::new(),
            planned: Mutex::new((0, 0)),
            machine: std::sync::OnceLock::new(),
            aside: Mutex::new(HashMap::new()),
            writers: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            rates: [(); 2].map(|()| Arc::new(TwoWayLimit::new(0))),
        }
    }

    /// Sends an event after the per-file events gathered so far, so the owner sees every
    /// event in the order it happened.
    pub(super) fn send(&self, event: TransferEvent) {
        let mut burst = std::mem::take(&mut *lock(&self.file_events));
        burst.push(event);
        // The owner may have stopped listening; the transfer itself still completes.
        let _ = self.events_tx.send(burst);
    }

    /// Gathers a per-file event; it reaches the owner with the next tick, the next other
    /// event, or once a burst is full, whichever comes first.
    pub(super) fn send_file_event(&self, event: TransferEvent) {
        let full = {
            let mut pending = lock(&self.file_events);
            pending.push(event);
            pending.len() >= FILE_EVENT_BURST
        };
        if full {
            self.flush_file_events();
        }
    }

    /// Hands the gathered per-file events over, in order.
    pub(super) fn flush_file_events(&self) {
        let burst = std::mem::take(&mut *lock(&self.file_events));
        if !burst.is_empty() {
            let _ = self.events_tx.send(burst);
        }
    }

    /// Adds planned files to the queue and wakes the workers waiting for them.
    pub(super) fn feed(&self, tasks: Vec<Task>) {
        if tasks.is_empty() {
            return;
        }
        {
            let mut planned = lock(&self.planned);
            planned.0 += tasks.len() as u64;
            planned.1 += tasks.iter().map(|t| t.size).sum::<u64>();
        }
        lock(&self.queue).extend(tasks);
        self.fed.notify_waiters();
    }

    /// Files and bytes the plan has added so far.
    pub(super) fn planned_totals(&self) -> (u64, u64) {
        *lock(&self.planned)
    }

    /// Starts or ends the time in which the plan may still add files.
    pub(super) fn set_planning(&self, planning: bool) {
        self.planning.store(planning, Ordering::SeqCst);
        self.fed.notify_waiters();
    }

    /// No file left to take, and none still to come.
    pub(super) fn drained(&self) -> bool {
        self.queue_is_empty() && !self.planning.load(Ordering::SeqCst)
    }

    /// Waits until the queue has a file or the plan has ended.
    pub(super) async fn wait_for_tasks(&self) {
        let notified = self.fed.notified();
        tokio::pin!(notified);
        // Registered before the check, so a file added in between still wakes us.
        notified.as_mut().enable();
        if !self.queue_is_empty() || !self.planning.load(Ordering::SeqCst) {
            return;
        }
        notified.await;
    }

    pub(super) fn pop(&self) -> Option<Task> {
        lock(&self.queue).pop_front()
    }

    pub(super) fn queue_is_empty(&self) -> bool {
        lock(&self.queue).is_empty()
    }

    /// Puts a task back for another attempt; `fresh` forgets any partial.
    pub(super) fn requeue(&self, mut task: Task, fresh: bool) {
        if task.settled {
            return;
        }
        if task.stream && task.counted > 0 {
            // Its first bytes are already in the stream: sent again, the reader would get
            // them twice.
            let error = EngineError::Connection {
                addr: self.endpoint.address(),
                message: format!(
                    "the transfer broke after {} bytes went into the stream, which cannot be \
                     sent again",
                    task.counted
                ),
            };
            self.failed(&task, &error);
            return;
        }
        lock(&self.progress).take_back(task.counted);
        task.counted = 0;
        task.fresh |= fresh;
        // A failed attempt may have left a partial behind.
        task.vacant = false;
        lock(&self.queue).push_front(task);
    }

    pub(super) fn done(&self, task: &Task, digest: Digest) {
        lock(&self.counters).files += 1;
        lock(&self.progress).file_finished();
        self.send_file_event(TransferEvent::FileDone {
            job: self.id,
            path: task.remote.clone(),
            bytes: task.size,
            digest,
        });
    }

    pub(super) fn failed(&self, task: &Task, error: &EngineError) {
        self.failed_path(&task.remote, error);
        lock(&self.progress).file_finished();
    }

    /// A failure not tied to a queued file (a source that cannot be read, a directory).
    pub(super) fn failed_path(&self, path: &str, error: &EngineError) {
        lock(&self.counters).failed += 1;
        self.send_file_event(TransferEvent::FileFailed {
            job: self.id,
            path: path.to_owned(),
            error: error.to_string(),
        });
    }

    pub(super) fn skipped(&self, task: &Task) {
        lock(&self.counters).skipped += 1;
        let mut progress = lock(&self.progress);
        progress.add_present(task.size.saturating_sub(task.counted));
        progress.file_finished();
    }

    /// A destination a per-file policy kept (`why`: it is newer, or the same size): skipped,
    /// and named as left out so every entry of the job is accounted for.
    pub(super) fn kept(&self, task: &Task, shown: &str, why: &str) {
        self.skipped(task);
        self.send_file_event(TransferEvent::LeftOut {
            job: self.id,
            path: shown.to_owned(),
            reason: LeftOutReason::UpToDate,
            message: why.to_owned(),
        });
    }

    /// Records a verified download's source for a move's removal at the job's end.
    pub(super) fn copied(&self, task: &Task, digest: Digest) {
        if self.remove_source {
            lock(&self.verified_sources).push(CopiedSource {
                path: task.remote.clone(),
                size: task.size,
                mtime: task.mtime,
                digest,
            });
        }
    }

    /// Bytes of `task` that crossed the wire.
    pub(super) fn moved(&self, task: &mut Task, bytes: u64) {
        lock(&self.progress).add_moved(bytes);
        task.counted += bytes;
    }

    /// Whether an answer that cannot be carried out may be asked about again: the owner is
    /// asked (not a fixed policy) and did not answer once for all.
    pub(super) fn asks_again(&self) -> bool {
        self.policy == ConflictPolicy::Ask && lock(&self.sticky).is_none()
    }

    /// The policy for one existing destination, asking the owner when told to; `reason` says
    /// why the same question comes again; `source` and `dest` are shown with it.
    pub(super) async fn resolve(
        &self,
        shown: &str,
        reason: Option<String>,
        source: FileFacts,
        dest: Option<FileFacts>,
    ) -> ConflictPolicy {
        if self.policy != ConflictPolicy::Ask {
            return self.policy;
        }
        let _turn = self.asking.lock().await;
        if let Some(choice) = *lock(&self.sticky) {
            return choice;
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        // Time spent reading the question is not transfer time.
        lock(&self.progress).pause(Instant::now());
        self.send(TransferEvent::Conflict {
            job: self.id,
            path: shown.to_owned(),
            reply: reply_tx,
            reason,
            source,
            dest,
        });
        let answer = reply_rx.await;
        lock(&self.progress).unpause(Instant::now());
        match answer {
            Ok(ConflictAnswer {
                choice,
                apply_to_all,
            }) if choice != ConflictPolicy::Ask => {
                if apply_to_all {
                    *lock(&self.sticky) = Some(choice);
                }
                choice
            }
            _ => ConflictPolicy::Fail,
        }
    }

    /// The worker's connection for questions that need an answer before a file is sent, opened
    /// only when one comes up.
    pub(super) async fn control_session<'a>(
        &self,
        control: &'a mut Option<Session>,
    ) -> Result<&'a mut Session, EngineError> {
        if control.is_none() {
            *control = Some(Session::connect(&self.endpoint).await?);
        }
        control
            .as_mut()
            .ok_or_else(|| EngineError::Protocol("no control session".into()))
    }

    /// Once a job has ended (finished, failed or cancelled): every destination still moved aside
    /// to be resumed goes back under its name as it was, so a cancelled or broken resume never
    /// leaves the user's file hidden (and a later run can never take it for our own partial and
    /// discard it). Waits first for the job's disk writers to stop touching the partials.
    pub(super) async fn restore_aside(&self) {
        let left: Vec<(PathBuf, MovedAside)> = lock(&self.aside).drain().collect();
        if left.is_empty() {
            return;
        }
        let deadline = std::time::Instant::now() + WRITERS_GONE;
        while self.writers.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let _ = tokio::task::spawn_blocking(move || {
            for (partial, aside) in left {
                if let Err(e) = aside.restore(&partial) {
                    tracing::warn!(
                        partial = %crate::format::local_path(&partial),
                        "could not put a resumed destination back: {e}"
                    );
                }
            }
        })
        .await;
    }
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Protocol(format!("a local task failed: {e}")))
}

/// What a file's request carried, kept until its reply comes to finish the file with.
#[derive(Debug)]
pub(super) enum Sent {
    Get {
        offset: u64,
        hasher: Box<blake3::Hasher>,
        partial: PathBuf,
    },
    Put {
        offset: u64,
        digest: Digest,
        /// Why the bytes sent are not the file's (it changed, or a read failed).
        broken: Option<std::io::Error>,
    },
}

/// A destination chosen to be resumed, moved aside as its partial to be continued: what it
/// was, so it can be put back exactly.
#[derive(Debug, Clone)]
pub(super) struct MovedAside {
    pub(super) dest: PathBuf,
    pub(super) len: u64,
    pub(super) mtime: i64,
    pub(super) mode: Option<u32>,
}

impl MovedAside {
    /// Cuts `partial` back to the destination's own length, gives it back its mode and mtime
    /// and renames it to its name, never over a file that took the name meanwhile.
    pub(super) fn restore(&self, partial: &std::path::Path) -> std::io::Result<()> {
        let file = std::fs::OpenOptions::new().write(true).open(partial)?;
        file.set_len(self.len)?;
        if let Some(mode) = self.mode {
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        let _ = file.set_modified(local::system_time(self.mtime));
        drop(file);
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            partial,
            rustix::fs::CWD,
            &self.dest,
            rustix::fs::RenameFlags::NOREPLACE,
        )?;
        Ok(())
    }
}

/// How long a finished job waits for its disk writers before putting destinations back.
const WRITERS_GONE: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a connection was dropped on purpose after a local write failed: not a sign of a broken
/// server, so the worker opens a new one without counting it as a failure.
pub(super) const STOPPED_EARLY: &str = "dropped to stop a download the disk could not take";
