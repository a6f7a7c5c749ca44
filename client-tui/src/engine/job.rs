//! [`Engine`] and the job runner.
//!
//! A job first plans: it walks its sources (locally, or remotely with `walk`), creates the
//! destination directories and learns which destinations already exist. Then a few workers,
//! each on its own connection, take files from one shared queue. A worker's writer half
//! prepares a file (conflict policy, resume check) and sends its request, payload included,
//! without waiting; its reader half takes the replies in order and finishes each file (verify,
//! rename into place, report). So a tree of tiny files costs one round trip per window of
//! requests, not one per file. A file whose resume turns out wrong is queued again from
//! scratch; a broken connection puts its files in flight back in the queue for a new one.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ferry_protocol::{Digest, ErrorCode, Kind};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::connection::{ConnReader, ConnWriter, Connection};
use super::progress::{EMIT_INTERVAL, ProgressState};
use super::session::Session;
use super::{
    ConflictAnswer, ConflictPolicy, Endpoint, EngineError, JobId, JobSpec, JobSummary,
    TransferEvent,
};
use super::{download, plan, same_file, space, upload};

/// How an engine spreads its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Connections (and files in flight) per job.
    pub workers: usize,
    /// Requests one connection may have in flight before it waits for replies.
    pub window: usize,
    /// Write names with bidirectional controls or zero-width marks to disk as the server sent
    /// them; by default a download refuses each such file (`unsafe_name`).
    pub allow_unsafe_names: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            workers: 4,
            window: 64,
            allow_unsafe_names: false,
        }
    }
}

/// How many times one worker opens a new connection after the previous one broke.
const MAX_RECONNECTS: usize = 2;
/// How many rounds of workers a job runs while files keep coming back to the queue.
const MAX_ROUNDS: usize = 8;
/// The first wait after a `busy` answer; doubled at each new try.
const BUSY_BACKOFF: Duration = Duration::from_millis(50);
/// Tries after `busy` before giving up (about 6 s of waiting in all).
const BUSY_RETRIES: usize = 7;
/// Requests buffered before the writer flushes them even though more are ready.
const FLUSH_EVERY: usize = 16;

/// Runs transfer jobs in the background; cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    endpoint: Endpoint,
    options: EngineOptions,
    events_tx: mpsc::UnboundedSender<Vec<TransferEvent>>,
    next_id: AtomicU64,
    jobs: Mutex<HashMap<JobId, CancellationToken>>,
}

/// Locks a mutex, shrugging off poisoning: every critical section here leaves its data valid.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Engine {
    /// Starts an engine for one server; must be called inside a tokio runtime.
    pub fn new(endpoint: Endpoint) -> (Engine, Events) {
        Self::with_options(endpoint, EngineOptions::default())
    }

    /// Like [`new`](Self::new), with a chosen parallelism.
    pub fn with_options(endpoint: Endpoint, options: EngineOptions) -> (Engine, Events) {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let options = EngineOptions {
            workers: options.workers.max(1),
            window: options.window.max(1),
            ..options
        };
        let inner = Inner {
            endpoint,
            options,
            events_tx,
            next_id: AtomicU64::new(1),
            jobs: Mutex::new(HashMap::new()),
        };
        (
            Engine {
                inner: Arc::new(inner),
            },
            Events {
                rx: events_rx,
                ready: VecDeque::new(),
            },
        )
    }

    /// The server this engine talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// Queues a job; it starts at once (several jobs run side by side).
    pub fn submit(&self, spec: JobSpec) -> JobId {
        let id = JobId(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        let cancel = CancellationToken::new();
        lock(&self.inner.jobs).insert(id, cancel.clone());
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let started = Instant::now();
            let job = Arc::new(Job::new(id, &inner, &spec));
            let reporter = AbortOnDropHandle::new(tokio::spawn(report_progress(Arc::clone(&job))));
            let outcome = tokio::select! {
                biased;
                () = cancel.cancelled() => Err(EngineError::Cancelled),
                outcome = run(Arc::clone(&job), spec) => outcome,
            };
            download::restore_aside(&job).await;
            drop(reporter);
            let outcome = outcome.map(|()| {
                let counters = *lock(&job.counters);
                JobSummary {
                    files: counters.files,
                    bytes: lock(&job.progress).bytes_moved(),
                    skipped: counters.skipped,
                    failed: counters.failed,
                    elapsed: started.elapsed(),
                }
            });
            if outcome.is_ok() {
                let last = lock(&job.progress).snapshot(Instant::now());
                job.send(TransferEvent::Progress(last));
            }
            lock(&inner.jobs).remove(&id);
            job.send(TransferEvent::Finished {
                job: id,
                outcome: outcome.map_err(|e| e.to_string()),
            });
        });
        id
    }

    /// Cancels a job: its partial files stay hidden, nothing appears under a final name.
    pub fn cancel(&self, job: JobId) {
        if let Some(token) = lock(&self.inner.jobs).get(&job) {
            token.cancel();
        }
    }
}

/// The engine's events, in order. They travel in bursts: a tree of tiny files finishes
/// thousands of files a second, and waking the owner once per file cost more CPU than
/// writing the files.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::UnboundedReceiver<Vec<TransferEvent>>,
    ready: VecDeque<TransferEvent>,
}

impl Events {
    /// The next event; `None` once the engine is gone and every event was taken. Cancel-safe.
    pub async fn recv(&mut self) -> Option<TransferEvent> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            let burst = self.rx.recv().await?;
            self.ready.extend(burst);
        }
    }

    /// An event that is already there, without waiting.
    pub fn try_recv(&mut self) -> Option<TransferEvent> {
        if self.ready.is_empty()
            && let Ok(burst) = self.rx.try_recv()
        {
            self.ready.extend(burst);
        }
        self.ready.pop_front()
    }
}

/// Sends throttled progress until the job ends (the job aborts this task).
async fn report_progress(job: Arc<Job>) {
    let mut tick = tokio::time::interval(EMIT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let snapshot = lock(&job.progress).poll(Instant::now());
        match snapshot {
            Some(progress) => job.send(TransferEvent::Progress(progress)),
            None => job.flush_file_events(),
        }
    }
}

/// A remote source a move has copied and verified: what it must still be when it is removed
/// at the job's end, so a file changed on the server meanwhile is kept.
#[derive(Debug, Clone)]
pub(super) struct Copied {
    pub(super) path: String,
    pub(super) size: u64,
    pub(super) mtime: i64,
    pub(super) digest: Digest,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    Upload,
    Download,
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
    /// Remote sources whose copy is verified, to remove at the end of a move if unchanged.
    pub(super) verified_sources: Mutex<Vec<Copied>>,
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
    pub(super) aside: Mutex<HashMap<PathBuf, download::Aside>>,
    /// Disk writers of large downloads still running (they outlive a cancelled job briefly).
    pub(super) writers: Arc<std::sync::atomic::AtomicUsize>,
}

/// Per-file events gathered before a burst is handed over even between ticks.
const FILE_EVENT_BURST: usize = 512;

impl Job {
    fn new(id: JobId, inner: &Inner, spec: &JobSpec) -> Job {
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
            } => (*policy, *remove_source),
        };
        Job {
            id,
            endpoint: inner.endpoint.clone(),
            options: inner.options,
            events_tx: inner.events_tx.clone(),
            policy,
            remove_source,
            sticky: Mutex::new(None),
            asking: tokio::sync::Mutex::new(()),
            progress: Mutex::new(ProgressState::new(id)),
            queue: Mutex::new(VecDeque::new()),
            counters: Mutex::new(Counters::default()),
            remote_existing: Mutex::new(HashMap::new()),
            verified_sources: Mutex::new(Vec::new()),
            file_events: Mutex::new(Vec::new()),
            planning: AtomicBool::new(false),
            fed: tokio::sync::Notify::new(),
            planned: Mutex::new((0, 0)),
            machine: std::sync::OnceLock::new(),
            aside: Mutex::new(HashMap::new()),
            writers: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
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

    /// Starts or ends the time in which the plan may still add files.
    fn set_planning(&self, planning: bool) {
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
                addr: super::connection::address(&self.endpoint),
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

    /// Bytes of `task` that crossed the wire.
    /// Records a verified download's source for a move's removal at the job's end.
    pub(super) fn copied(&self, task: &Task, digest: Digest) {
        if self.remove_source {
            lock(&self.verified_sources).push(Copied {
                path: task.remote.clone(),
                size: task.size,
                mtime: task.mtime,
                digest,
            });
        }
    }

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
    /// why the same question comes again.
    pub(super) async fn resolve(&self, shown: &str, reason: Option<String>) -> ConflictPolicy {
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
}

pub(super) fn exists_error(path: &str) -> EngineError {
    EngineError::Remote {
        code: ErrorCode::AlreadyExists,
        message:
            "the destination exists (choose --overwrite, --skip-existing, --resume or --rename)"
                .into(),
        path: path.to_owned(),
    }
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Protocol(format!("a local task failed: {e}")))
}

/// Plans, runs the workers, then finishes a move.
async fn run(job: Arc<Job>, spec: JobSpec) -> Result<(), EngineError> {
    let mut session = retry_busy(|| Session::connect(&job.endpoint)).await?;
    let spec = screen_same_files(&job, &mut session, spec).await?;
    let direction = match &spec {
        JobSpec::Upload { .. } => Direction::Upload,
        JobSpec::Download { .. } => Direction::Download,
    };
    // The workers start with the plan and take files as the walk delivers them (an upload's
    // once the remote directory they go into exists); once it ends, idle workers end with an
    // empty queue.
    job.set_planning(true);
    let mut first_round = JoinSet::new();
    for _ in 0..job.options.workers {
        first_round.spawn(worker(Arc::clone(&job), direction));
    }
    let planned = match spec {
        JobSpec::Upload { items, .. } => plan::plan_upload(&job, &mut session, items).await,
        JobSpec::Download { items, .. } => plan::plan_download(&job, &mut session, items).await,
    };
    job.set_planning(false);
    let cleanup = planned?;
    let (files, bytes) = *lock(&job.planned);
    // The workers open their own connections; holding this one would only take a slot
    // from them on a server near its connection limit.
    drop(session);
    // `Planned` goes out before the totals can show in a progress event (files of a download
    // may be done before it).
    job.send(TransferEvent::Planned {
        job: job.id,
        files,
        bytes,
    });
    lock(&job.progress).set_totals(files, bytes);

    let mut last_error = None;
    for round in 0..MAX_ROUNDS {
        let (pending, mut workers) = if round == 0 {
            // Everything planned counts as pending for the first round's workers.
            (
                usize::try_from(files).unwrap_or(usize::MAX),
                std::mem::take(&mut first_round),
            )
        } else {
            let pending = lock(&job.queue).len();
            if pending == 0 {
                break;
            }
            let mut workers = JoinSet::new();
            for _ in 0..job.options.workers.min(pending) {
                workers.spawn(worker(Arc::clone(&job), direction));
            }
            (pending, workers)
        };
        let moved = if round == 0 {
            0
        } else {
            lock(&job.progress).bytes_moved()
        };
        let mut failed = false;
        while let Some(result) = workers.join_next().await {
            if let Ok(Err(e)) = result {
                last_error = Some(e);
                failed = true;
            }
        }
        // A round whose workers all gave up without moving a byte or finishing a file met a
        // server that is gone (a tunnel to nowhere accepts and closes at once): more rounds
        // would only knock on its door dozens of times more.
        if failed && lock(&job.progress).bytes_moved() == moved && lock(&job.queue).len() >= pending
        {
            break;
        }
    }
    let error = last_error.unwrap_or_else(|| EngineError::Connection {
        addr: super::connection::address(&job.endpoint),
        message: "no connection left to send the file on".into(),
    });
    while let Some(task) = job.pop() {
        job.failed(&task, &error);
    }

    if job.remove_source {
        let mut session = retry_busy(|| Session::connect(&job.endpoint)).await?;
        plan::finish_move(&job, &mut session, direction, cleanup).await?;
    }
    Ok(())
}

/// Leaves out (and reports as `same_file`) every item whose destination is its own source or
/// lies inside it, when the server shares this machine's files; nothing of such an item is
/// opened, written or removed.
async fn screen_same_files(
    job: &Job,
    session: &mut Session,
    spec: JobSpec,
) -> Result<JobSpec, EngineError> {
    let spec = screen_space(job, session, spec).await?;
    let Some(salt) = session.shared_machine() else {
        return Ok(spec);
    };
    let salt = job.machine.get_or_init(|| salt).clone();
    Ok(match spec {
        JobSpec::Upload {
            items,
            policy,
            remove_source,
        } => {
            let mut kept = Vec::with_capacity(items.len());
            for (local, remote) in items {
                match same_file::check_upload(session, &salt, &local, &remote).await? {
                    Some(refusal) => job.failed_path(&crate::format::local_path(&local), &refusal),
                    None => kept.push((local, remote)),
                }
            }
            JobSpec::Upload {
                items: kept,
                policy,
                remove_source,
            }
        }
        JobSpec::Download {
            items,
            policy,
            remove_source,
        } => {
            let mut kept = Vec::with_capacity(items.len());
            for (remote, local) in items {
                match same_file::check_download(session, &salt, &remote, &local).await? {
                    Some(refusal) => job.failed_path(&remote, &refusal),
                    None => kept.push((remote, local)),
                }
            }
            JobSpec::Download {
                items: kept,
                policy,
                remove_source,
            }
        }
    })
}

/// Leaves out (and reports as `no_space`) the download items that cannot fit where they go:
/// the bytes each needs (the server's `summary`; a single file's hidden partial or, with
/// `Resume`, its destination counted as already there) summed per local filesystem, against
/// what that filesystem has free. Better a clear refusal before the first byte than a full
/// disk after hours of reading.
async fn screen_space(
    job: &Job,
    session: &mut Session,
    spec: JobSpec,
) -> Result<JobSpec, EngineError> {
    let JobSpec::Download {
        items,
        policy,
        remove_source,
    } = spec
    else {
        return Ok(spec);
    };
    let remotes: Vec<String> = items.iter().map(|(remote, _)| remote.clone()).collect();
    let needs: Vec<u64> = session
        .summary_many(&remotes)
        .await?
        .into_iter()
        // A refusal is reported by the plan, which meets it too.
        .map(|summary| summary.map_or(0, |s| s.bytes))
        .collect();
    let resume = policy == ConflictPolicy::Resume;
    let locals: Vec<PathBuf> = items.iter().map(|(_, local)| local.clone()).collect();
    let fits = blocking(move || space::check(&locals, &needs, resume)).await?;
    let mut kept = Vec::with_capacity(items.len());
    for ((remote, local), fit) in items.into_iter().zip(fits) {
        match fit {
            Ok(()) => kept.push((remote, local)),
            Err(why) => job.failed_path(
                &remote,
                &EngineError::local(
                    &local,
                    std::io::Error::new(std::io::ErrorKind::StorageFull, why),
                ),
            ),
        }
    }
    Ok(JobSpec::Download {
        items: kept,
        policy,
        remove_source,
    })
}

/// Takes files from the queue until it is empty, reconnecting when a connection breaks.
async fn worker(job: Arc<Job>, direction: Direction) -> Result<(), EngineError> {
    let mut failures = 0;
    loop {
        if job.drained() {
            return Ok(());
        }
        let outcome = match retry_busy(|| Connection::open(&job.endpoint)).await {
            Ok(conn) => pipeline(&job, conn, direction).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => return Ok(()),
            Err(e @ EngineError::Remote { .. }) => return Err(e),
            // Dropped on purpose to stop a large download the disk could not take.
            Err(EngineError::Connection { message, .. }) if message == download::STOPPED_EARLY => {}
            Err(e) => {
                failures += 1;
                if failures > MAX_RECONNECTS {
                    return Err(e);
                }
            }
        }
    }
}

/// Connects, waiting and trying again while the server says it is `busy` (at its connection
/// limit): a burst of clients should slow down, not fail.
async fn retry_busy<T, F, Fut>(connect: F) -> Result<T, EngineError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, EngineError>>,
{
    let mut delay = BUSY_BACKOFF;
    for _ in 0..BUSY_RETRIES {
        match connect().await {
            Err(e) if e.remote_code() == Some(ErrorCode::Busy) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other,
        }
    }
    connect().await
}

/// A request sent whose replies are still to come.
#[derive(Debug)]
pub(super) struct Pending {
    task: Task,
    kind: PendingKind,
}

#[derive(Debug)]
pub(super) enum PendingKind {
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

/// Runs one connection's writer and reader side by side. On a broken connection, the files
/// in flight go back to the queue.
async fn pipeline(
    job: &Arc<Job>,
    conn: Connection,
    direction: Direction,
) -> Result<(), EngineError> {
    let Connection {
        mut reader,
        mut writer,
        ..
    } = conn;
    let (pending_tx, mut pending_rx) = mpsc::channel::<Pending>(job.options.window);
    let mut writing: Option<Task> = None;
    let mut reading: Option<Task> = None;
    let mut ahead = VecDeque::new();
    let outcome = {
        let write = write_side(
            job,
            &mut writer,
            pending_tx,
            &mut writing,
            &mut ahead,
            direction,
        );
        let read = read_side(job, &mut reader, &mut pending_rx, &mut reading);
        tokio::try_join!(write, read).map(drop)
    };
    if outcome.is_err() {
        let mut interrupted = writing.into_iter().chain(reading).collect::<Vec<_>>();
        // Files read ahead but not sent yet were not in flight: they simply go back.
        for read in ahead.into_iter().rev() {
            job.requeue(read.task, false);
        }
        while let Ok(pending) = pending_rx.try_recv() {
            interrupted.push(pending.task);
        }
        for mut task in interrupted {
            task.interrupted = true;
            job.requeue(task, false);
        }
    }
    outcome
}

/// A small file taken from the queue together with others and read in the same trip to the
/// blocking pool.
#[derive(Debug)]
pub(super) struct ReadAhead {
    task: Task,
    bytes: std::io::Result<upload::SmallFile>,
}

/// Takes up to [`upload::READ_AHEAD_FILES`] small files from the front of the queue and reads
/// them in one blocking call: a tree of tiny files then costs one thread hop per batch instead
/// of one per file on the path that feeds the socket.
async fn read_ahead(job: &Job, ahead: &mut VecDeque<ReadAhead>) -> Result<(), EngineError> {
    let tasks = {
        let mut queue = lock(&job.queue);
        let mut tasks = Vec::new();
        while tasks.len() < upload::READ_AHEAD_FILES
            && queue
                .front()
                .is_some_and(|t| t.size <= upload::READ_AHEAD_MAX_SIZE && !t.interrupted)
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
    let read = blocking(move || upload::read_small_files(&files)).await;
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

async fn write_side(
    job: &Arc<Job>,
    writer: &mut ConnWriter,
    pending_tx: mpsc::Sender<Pending>,
    slot: &mut Option<Task>,
    ahead: &mut VecDeque<ReadAhead>,
    direction: Direction,
) -> Result<(), EngineError> {
    let mut control: Option<Session> = None;
    let mut unflushed = 0;
    loop {
        if ahead.is_empty() && direction == Direction::Upload {
            read_ahead(job, ahead).await?;
        }
        let (task, bytes) = match ahead.pop_front() {
            Some(read) => (read.task, Some(read.bytes)),
            None => match job.pop() {
                Some(task) => (task, None),
                None if !job.drained() => {
                    // The plan is still walking: what was asked goes out, then wait for more.
                    writer.flush().await?;
                    unflushed = 0;
                    job.wait_for_tasks().await;
                    continue;
                }
                None => break,
            },
        };
        if direction == Direction::Upload {
            // An upload's bytes leave here; a download's file is named by the read side when
            // its reply comes, since with a deep pipeline the last request is files ahead.
            lock(&job.progress).start_file(&task.remote);
        }
        let task = slot.insert(task);
        let kind = match direction {
            Direction::Upload => upload::send_put(job, writer, task, &mut control, bytes).await?,
            Direction::Download => download::send_get(job, writer, task, &mut control).await?,
        };
        let Some(kind) = kind else {
            *slot = None;
            continue;
        };
        unflushed += 1;
        // Flushed before a full window is waited on, or the reader would wait for replies to
        // requests still in our buffer. The task stays in the slot until it is handed over, so a
        // failure here puts it back in the queue.
        let full = pending_tx.capacity() == 0;
        if full || unflushed >= FLUSH_EVERY || (job.queue_is_empty() && ahead.is_empty()) {
            writer.flush().await?;
            unflushed = 0;
        }
        let Some(task) = slot.take() else {
            continue;
        };
        if let Err(mpsc::error::SendError(pending)) = pending_tx.send(Pending { task, kind }).await
        {
            job.requeue(pending.task, false);
            return Ok(());
        }
        if full {
            // The window was full: wait until a good part of it is free again, so the next
            // requests leave (and reach the server) together instead of one per reply.
            let room = FLUSH_EVERY.min(job.options.window);
            if let Ok(permits) = pending_tx.reserve_many(room).await {
                drop(permits);
            }
        }
    }
    writer.flush().await
}

async fn read_side(
    job: &Arc<Job>,
    reader: &mut ConnReader,
    pending_rx: &mut mpsc::Receiver<Pending>,
    slot: &mut Option<Task>,
) -> Result<(), EngineError> {
    let mut disk = download::DiskStage::default();
    let read = async {
        while let Some(Pending { task, kind }) = pending_rx.recv().await {
            let task = slot.insert(task);
            match kind {
                PendingKind::Get {
                    offset,
                    hasher,
                    partial,
                } => {
                    lock(&job.progress).start_file(&task.remote);
                    download::finish_get(job, reader, &mut disk, task, offset, *hasher, partial)
                        .await?;
                }
                PendingKind::Put {
                    offset,
                    digest,
                    broken,
                } => upload::finish_put(job, reader, task, offset, digest, broken).await?,
            }
            *slot = None;
        }
        Ok(())
    };
    let read: Result<(), EngineError> = read.await;
    // Files already verified are written even when the connection broke after them.
    disk.finish().await?;
    read
}
