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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ferry_protocol::{
    Digest, ErrorBody, ErrorCode, GetReply, GetTrailer, Kind, Put, PutReply, PutTrailer, Request,
    path,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::connection::{ConnReader, ConnWriter, Connection};
use super::local::{self, CHUNK};
use super::progress::{EMIT_INTERVAL, ProgressState};
use super::session::Session;
use super::{
    ConflictAnswer, ConflictPolicy, Endpoint, EngineError, JobId, JobSpec, JobSummary,
    TransferEvent,
};

/// How an engine spreads its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Connections (and files in flight) per job.
    pub workers: usize,
    /// Requests one connection may have in flight before it waits for replies.
    pub window: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            workers: 4,
            window: 64,
        }
    }
}

/// Files at least this big ask the server about a partial upload before they are sent; smaller
/// ones are simply sent again, which is cheaper than the round trip.
const RESUME_MIN: u64 = 1024 * 1024;
/// How many times one worker opens a new connection after the previous one broke.
const MAX_RECONNECTS: usize = 2;
/// How many rounds of workers a job runs while files keep coming back to the queue.
const MAX_ROUNDS: usize = 3;
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
    events_tx: mpsc::UnboundedSender<TransferEvent>,
    next_id: AtomicU64,
    jobs: Mutex<HashMap<JobId, CancellationToken>>,
}

/// Locks a mutex, shrugging off poisoning: every critical section here leaves its data valid.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Engine {
    /// Starts an engine for one server; must be called inside a tokio runtime.
    pub fn new(endpoint: Endpoint) -> (Engine, mpsc::UnboundedReceiver<TransferEvent>) {
        Self::with_options(endpoint, EngineOptions::default())
    }

    /// Like [`new`](Self::new), with a chosen parallelism.
    pub fn with_options(
        endpoint: Endpoint,
        options: EngineOptions,
    ) -> (Engine, mpsc::UnboundedReceiver<TransferEvent>) {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let options = EngineOptions {
            workers: options.workers.max(1),
            window: options.window.max(1),
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
            events_rx,
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

/// Sends throttled progress until the job ends (the job aborts this task).
async fn report_progress(job: Arc<Job>) {
    let mut tick = tokio::time::interval(EMIT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let snapshot = lock(&job.progress).poll(Instant::now());
        if let Some(progress) = snapshot {
            job.send(TransferEvent::Progress(progress));
        }
    }
}

/// One file to move: where it comes from, where it goes.
#[derive(Debug, Clone)]
struct Task {
    local: PathBuf,
    remote: String,
    size: u64,
    mtime: i64,
    /// Start from zero: a resume of this file was already found wrong.
    fresh: bool,
    /// Bytes counted into the progress for the current attempt, taken back if it restarts.
    counted: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    files: u64,
    skipped: u64,
    failed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Upload,
    Download,
}

/// The shared state of one running job.
#[derive(Debug)]
struct Job {
    id: JobId,
    endpoint: Endpoint,
    options: EngineOptions,
    events_tx: mpsc::UnboundedSender<TransferEvent>,
    policy: ConflictPolicy,
    remove_source: bool,
    /// The answer given with "apply to all".
    sticky: Mutex<Option<ConflictPolicy>>,
    /// One question at a time, so two workers never ask at once.
    asking: tokio::sync::Mutex<()>,
    progress: Mutex<ProgressState>,
    queue: Mutex<VecDeque<Task>>,
    counters: Mutex<Counters>,
    /// Remote paths that exist (uploads), with kind and size; names taken by `Rename` join them.
    remote_existing: Mutex<HashMap<String, (Kind, u64)>>,
    /// Remote sources whose copy is verified, to remove at the end of a move.
    verified_sources: Mutex<Vec<String>>,
}

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
        }
    }

    fn send(&self, event: TransferEvent) {
        // The owner may have stopped listening; the transfer itself still completes.
        let _ = self.events_tx.send(event);
    }

    fn pop(&self) -> Option<Task> {
        lock(&self.queue).pop_front()
    }

    fn queue_is_empty(&self) -> bool {
        lock(&self.queue).is_empty()
    }

    /// Puts a task back for another attempt; `fresh` forgets any partial.
    fn requeue(&self, mut task: Task, fresh: bool) {
        lock(&self.progress).take_back(task.counted);
        task.counted = 0;
        task.fresh |= fresh;
        lock(&self.queue).push_front(task);
    }

    fn done(&self, task: &Task, digest: Digest) {
        lock(&self.counters).files += 1;
        lock(&self.progress).file_finished();
        self.send(TransferEvent::FileDone {
            job: self.id,
            path: task.remote.clone(),
            bytes: task.size,
            digest,
        });
    }

    fn failed(&self, task: &Task, error: &EngineError) {
        self.failed_path(&task.remote, error);
        lock(&self.progress).file_finished();
    }

    /// A failure not tied to a queued file (a source that cannot be read, a directory).
    fn failed_path(&self, path: &str, error: &EngineError) {
        lock(&self.counters).failed += 1;
        self.send(TransferEvent::FileFailed {
            job: self.id,
            path: path.to_owned(),
            error: error.to_string(),
        });
    }

    fn skipped(&self, task: &Task) {
        lock(&self.counters).skipped += 1;
        let mut progress = lock(&self.progress);
        progress.add_present(task.size.saturating_sub(task.counted));
        progress.file_finished();
    }

    /// The policy for one existing destination, asking the owner when told to.
    async fn resolve(&self, shown: &str) -> ConflictPolicy {
        if self.policy != ConflictPolicy::Ask {
            return self.policy;
        }
        let _turn = self.asking.lock().await;
        if let Some(choice) = *lock(&self.sticky) {
            return choice;
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        self.send(TransferEvent::Conflict {
            job: self.id,
            path: shown.to_owned(),
            reply: reply_tx,
        });
        match reply_rx.await {
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

fn exists_error(path: &str) -> EngineError {
    EngineError::Remote {
        code: ErrorCode::AlreadyExists,
        message:
            "the destination exists (choose --overwrite, --skip-existing, --resume or --rename)"
                .into(),
        path: path.to_owned(),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Protocol(format!("a local task failed: {e}")))
}

/// Plans, runs the workers, then finishes a move.
async fn run(job: Arc<Job>, spec: JobSpec) -> Result<(), EngineError> {
    let mut session = retry_busy(|| Session::connect(&job.endpoint)).await?;
    let (direction, cleanup) = match spec {
        JobSpec::Upload { items, .. } => (
            Direction::Upload,
            plan_upload(&job, &mut session, items).await?,
        ),
        JobSpec::Download { items, .. } => (
            Direction::Download,
            plan_download(&job, &mut session, items).await?,
        ),
    };
    let (files, bytes) = {
        let queue = lock(&job.queue);
        (queue.len() as u64, queue.iter().map(|t| t.size).sum())
    };
    // The workers open their own connections; holding this one would only take a slot
    // from them on a server near its connection limit.
    drop(session);
    lock(&job.progress).set_totals(files, bytes);
    job.send(TransferEvent::Planned {
        job: job.id,
        files,
        bytes,
    });

    let mut last_error = None;
    for _round in 0..MAX_ROUNDS {
        let pending = lock(&job.queue).len();
        if pending == 0 {
            break;
        }
        let mut workers = JoinSet::new();
        for _ in 0..job.options.workers.min(pending) {
            workers.spawn(worker(Arc::clone(&job), direction));
        }
        while let Some(result) = workers.join_next().await {
            if let Ok(Err(e)) = result {
                last_error = Some(e);
            }
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
        finish_move(&job, &mut session, direction, cleanup).await?;
    }
    Ok(())
}

/// Directories that a move empties, deepest first, to remove once their files are gone.
type Cleanup = Vec<String>;

async fn plan_upload(
    job: &Job,
    session: &mut Session,
    items: Vec<(PathBuf, String)>,
) -> Result<Cleanup, EngineError> {
    let mut mkdirs = Vec::new();
    let mut cleanup = Vec::new();
    let mut skipped = 0;
    for (local_root, remote_root) in items {
        let walked = {
            let root = local_root.clone();
            blocking(move || local::walk(&root)).await?
        };
        let tree = match walked {
            Ok(tree) => tree,
            Err(e) => {
                job.failed_path(
                    &local_root.display().to_string(),
                    &EngineError::local(&local_root, e),
                );
                continue;
            }
        };
        skipped += tree.skipped;
        let existing = session.try_stat(&remote_root).await?;
        if tree.root_is_dir {
            match existing {
                None => mkdirs.push(remote_root.clone()),
                Some(entry) if entry.kind == Kind::Dir => {
                    let below = session.walk(&remote_root).await?;
                    let mut known = lock(&job.remote_existing);
                    for entry in below {
                        known.insert(
                            path::join(&remote_root, &entry.name),
                            (entry.kind, entry.size),
                        );
                    }
                }
                Some(_) => {
                    job.failed_path(
                        &remote_root,
                        &EngineError::Remote {
                            code: ErrorCode::NotADirectory,
                            message: "a directory cannot replace a file".into(),
                            path: remote_root.clone(),
                        },
                    );
                    continue;
                }
            }
            {
                let known = lock(&job.remote_existing);
                for dir in &tree.dirs {
                    let remote = path::join(&remote_root, dir);
                    if !matches!(known.get(&remote), Some((Kind::Dir, _))) {
                        mkdirs.push(remote);
                    }
                }
            }
            let mut local_dirs: Vec<String> = tree
                .dirs
                .iter()
                .rev()
                .map(|d| local_root.join(d).display().to_string())
                .collect();
            local_dirs.push(local_root.display().to_string());
            cleanup.extend(local_dirs);
        } else if let Some(entry) = existing {
            lock(&job.remote_existing).insert(remote_root.clone(), (entry.kind, entry.size));
        }
        let mut queue = lock(&job.queue);
        for file in tree.files {
            let remote = if file.rel.is_empty() {
                remote_root.clone()
            } else {
                path::join(&remote_root, &file.rel)
            };
            queue.push_back(Task {
                remote,
                local: file.path,
                size: file.size,
                mtime: file.mtime,
                fresh: false,
                counted: 0,
            });
        }
    }
    lock(&job.counters).skipped += skipped;
    for (dir, outcome) in mkdirs.iter().zip(session.mkdir_many(&mkdirs).await?) {
        match outcome {
            Ok(()) => {}
            Err(e) if e.remote_code() == Some(ErrorCode::AlreadyExists) => {}
            Err(e) => job.failed_path(dir, &e),
        }
    }
    Ok(cleanup)
}

/// A remote name from a listing, as local path components; `None` if it could lead anywhere
/// but below the chosen directory.
fn safe_components(name: &str) -> Option<Vec<&str>> {
    let parts = path::components(name).ok()?;
    if parts.is_empty() || parts.iter().any(|p| path::is_partial_name(p)) {
        return None;
    }
    Some(parts)
}

async fn plan_download(
    job: &Job,
    session: &mut Session,
    items: Vec<(String, PathBuf)>,
) -> Result<Cleanup, EngineError> {
    let mut local_dirs: Vec<PathBuf> = Vec::new();
    let mut cleanup = Vec::new();
    let mut skipped = 0;
    let mut tasks = Vec::new();
    for (remote_root, local_root) in items {
        let entry = match session.stat(&remote_root).await {
            Ok(entry) => entry,
            Err(e @ EngineError::Remote { .. }) => {
                job.failed_path(&remote_root, &e);
                continue;
            }
            Err(e) => return Err(e),
        };
        match entry.kind {
            Kind::File => tasks.push(Task {
                local: local_root,
                remote: remote_root,
                size: entry.size,
                mtime: entry.mtime,
                fresh: false,
                counted: 0,
            }),
            Kind::Dir => {
                let below = match session.walk(&remote_root).await {
                    Ok(below) => below,
                    Err(e @ EngineError::Remote { .. }) => {
                        job.failed_path(&remote_root, &e);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                local_dirs.push(local_root.clone());
                let mut remote_dirs = vec![remote_root.clone()];
                for entry in below {
                    let Some(parts) = safe_components(&entry.name) else {
                        skipped += 1;
                        continue;
                    };
                    let local: PathBuf = parts.iter().fold(local_root.clone(), |p, c| p.join(c));
                    let remote = path::join(&remote_root, &entry.name);
                    match entry.kind {
                        Kind::Dir => {
                            local_dirs.push(local);
                            remote_dirs.push(remote);
                        }
                        Kind::File => tasks.push(Task {
                            local,
                            remote,
                            size: entry.size,
                            mtime: entry.mtime,
                            fresh: false,
                            counted: 0,
                        }),
                        Kind::Symlink | Kind::Other => skipped += 1,
                    }
                }
                // Children before parents, for removing a moved tree.
                cleanup.extend(remote_dirs.into_iter().rev());
            }
            Kind::Symlink | Kind::Other => skipped += 1,
        }
    }
    lock(&job.counters).skipped += skipped;
    let created = blocking(move || {
        let mut failures = Vec::new();
        for dir in local_dirs {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                failures.push((dir, e));
            }
        }
        failures
    })
    .await?;
    for (dir, e) in created {
        job.failed_path(&dir.display().to_string(), &EngineError::local(&dir, e));
    }
    lock(&job.queue).extend(tasks);
    Ok(cleanup)
}

/// Removes what a move has copied: files as soon as verified (done by the workers for local
/// sources, here for remote ones), then the directories they emptied. A directory that still
/// holds something (a skipped link, a failed file) stays.
async fn finish_move(
    job: &Job,
    session: &mut Session,
    direction: Direction,
    cleanup: Cleanup,
) -> Result<(), EngineError> {
    match direction {
        Direction::Upload => {
            blocking(move || {
                for dir in cleanup {
                    let _ = std::fs::remove_dir(dir);
                }
            })
            .await?;
        }
        Direction::Download => {
            let files = std::mem::take(&mut *lock(&job.verified_sources));
            for (path, outcome) in files.iter().zip(session.remove_many(&files, false).await?) {
                if let Err(e) = outcome {
                    job.failed_path(path, &e);
                }
            }
            session.remove_many(&cleanup, false).await?;
        }
    }
    Ok(())
}

/// Takes files from the queue until it is empty, reconnecting when a connection breaks.
async fn worker(job: Arc<Job>, direction: Direction) -> Result<(), EngineError> {
    let mut failures = 0;
    loop {
        if job.queue_is_empty() {
            return Ok(());
        }
        let outcome = match retry_busy(|| Connection::open(&job.endpoint)).await {
            Ok(conn) => pipeline(&job, conn, direction).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => return Ok(()),
            Err(e @ EngineError::Remote { .. }) => return Err(e),
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
struct Pending {
    task: Task,
    kind: PendingKind,
}

#[derive(Debug)]
enum PendingKind {
    Get {
        offset: u64,
        hasher: Box<blake3::Hasher>,
        partial: PathBuf,
    },
    Put {
        offset: u64,
        digest: Digest,
        /// Why the bytes sent are not the file's (it shrank, or a read failed).
        broken: Option<String>,
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
    let outcome = {
        let write = write_side(job, &mut writer, pending_tx, &mut writing, direction);
        let read = read_side(job, &mut reader, &mut pending_rx, &mut reading);
        tokio::try_join!(write, read).map(drop)
    };
    if outcome.is_err() {
        for task in writing.into_iter().chain(reading) {
            job.requeue(task, false);
        }
        while let Ok(pending) = pending_rx.try_recv() {
            job.requeue(pending.task, false);
        }
    }
    outcome
}

async fn write_side(
    job: &Arc<Job>,
    writer: &mut ConnWriter,
    pending_tx: mpsc::Sender<Pending>,
    slot: &mut Option<Task>,
    direction: Direction,
) -> Result<(), EngineError> {
    let mut control: Option<Session> = None;
    let mut unflushed = 0;
    while let Some(task) = job.pop() {
        lock(&job.progress).start_file(&task.remote);
        let task = slot.insert(task);
        let kind = match direction {
            Direction::Upload => send_put(job, writer, task, &mut control).await?,
            Direction::Download => send_get(job, writer, task).await?,
        };
        let Some(kind) = kind else {
            *slot = None;
            continue;
        };
        let Some(task) = slot.take() else {
            continue;
        };
        unflushed += 1;
        if pending_tx.capacity() == 0 || unflushed >= FLUSH_EVERY || job.queue_is_empty() {
            writer.flush().await?;
            unflushed = 0;
        }
        if pending_tx.send(Pending { task, kind }).await.is_err() {
            return Ok(());
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
    while let Some(Pending { task, kind }) = pending_rx.recv().await {
        let task = slot.insert(task);
        match kind {
            PendingKind::Get {
                offset,
                hasher,
                partial,
            } => finish_get(job, reader, task, offset, *hasher, partial).await?,
            PendingKind::Put {
                offset,
                digest,
                broken,
            } => finish_put(job, reader, task, offset, digest, broken).await?,
        }
        *slot = None;
    }
    Ok(())
}

/// Decides what to do with one upload and sends it; `None` when it was settled without a
/// request (skipped, failed, already there).
async fn send_put(
    job: &Arc<Job>,
    writer: &mut ConnWriter,
    task: &mut Task,
    control: &mut Option<Session>,
) -> Result<Option<PendingKind>, EngineError> {
    let mut overwrite = false;
    let existing = lock(&job.remote_existing).get(&task.remote).copied();
    if let Some((kind, remote_size)) = existing {
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
        match job.resolve(&task.remote).await {
            ConflictPolicy::Skip => {
                job.skipped(task);
                return Ok(None);
            }
            ConflictPolicy::Fail | ConflictPolicy::Ask => {
                job.failed(task, &exists_error(&task.remote));
                return Ok(None);
            }
            ConflictPolicy::Overwrite => overwrite = true,
            ConflictPolicy::Rename => {
                let (parent, name) = path::split_last(&task.remote).unwrap_or(("", ""));
                let mut known = lock(&job.remote_existing);
                let free = local::free_name(name, |c| known.contains_key(&path::join(parent, c)));
                task.remote = path::join(parent, &free);
                known.insert(task.remote.clone(), (Kind::File, task.size));
            }
            ConflictPolicy::Resume => {
                if remote_size == task.size {
                    let session = control_session(job, control).await?;
                    let theirs = session.digest(&task.remote, task.size).await?;
                    let path = task.local.clone();
                    let size = task.size;
                    let ours = blocking(move || local::hash_prefix(&path, size)).await?;
                    if let Ok(Some(hasher)) = ours
                        && Digest::from(hasher.finalize()) == theirs
                    {
                        lock(&job.progress).add_present(task.size);
                        job.done(task, theirs);
                        return Ok(None);
                    }
                }
                overwrite = true;
            }
        }
    }

    let mut offset = 0;
    let mut hasher = blake3::Hasher::new();
    if task.size >= RESUME_MIN && !task.fresh {
        writer.flush().await?;
        let session = control_session(job, control).await?;
        let partial = session.partial(&task.remote).await?;
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
    writer
        .send(&Request::Put(Put {
            path: task.remote.clone(),
            size,
            offset,
            overwrite,
            digest: None,
            trailer: true,
            mtime: Some(task.mtime),
        }))
        .await?;
    let broken = send_file(job, writer, task, offset, &mut hasher).await?;
    let digest = if broken.is_some() {
        // Bytes were made up to keep the stream in step; a digest they cannot have makes the
        // server refuse them.
        Digest::from(blake3::hash(b"ferry: this upload is broken"))
    } else {
        Digest::from(hasher.finalize())
    };
    writer.send_header(&PutTrailer { digest }).await?;
    Ok(Some(PendingKind::Put {
        offset,
        digest,
        broken,
    }))
}

/// Streams `task.size - offset` bytes of the local file, hashing them. Exactly that many bytes
/// are always written (zeros if the file shrank or could not be read), so the connection stays
/// in step; the reason is returned instead.
async fn send_file(
    job: &Job,
    writer: &mut ConnWriter,
    task: &mut Task,
    offset: u64,
    hasher: &mut blake3::Hasher,
) -> Result<Option<String>, EngineError> {
    let mut left = task.size - offset;
    let mut broken = None;
    if left <= CHUNK as u64 {
        // Small files: one blocking read instead of open, seek and read round trips.
        let path = task.local.clone();
        let want = usize::try_from(left).unwrap_or(CHUNK);
        let read = blocking(move || -> std::io::Result<Vec<u8>> {
            use std::io::{Read, Seek, SeekFrom};
            let mut file = std::fs::File::open(&path)?;
            file.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::with_capacity(want);
            file.take(want as u64).read_to_end(&mut buf)?;
            Ok(buf)
        })
        .await?;
        match read {
            Ok(buf) if buf.len() == want => {
                hasher.update(&buf);
                writer.write(&buf).await?;
                count_moved(job, task, buf.len() as u64);
                return Ok(None);
            }
            Ok(_) => broken = Some("the file shrank while it was being sent".to_owned()),
            Err(e) => broken = Some(e.to_string()),
        }
    } else {
        match open_at(&task.local, offset).await {
            Ok(mut file) => {
                let mut buf = vec![0u8; CHUNK];
                while left > 0 {
                    let want = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
                    match file.read(&mut buf[..want]).await {
                        Ok(0) => {
                            broken = Some("the file shrank while it was being sent".to_owned());
                            break;
                        }
                        Ok(n) => {
                            hasher.update(&buf[..n]);
                            writer.write(&buf[..n]).await?;
                            left -= n as u64;
                            count_moved(job, task, n as u64);
                        }
                        Err(e) => {
                            broken = Some(e.to_string());
                            break;
                        }
                    }
                }
            }
            Err(e) => broken = Some(e.to_string()),
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

fn count_moved(job: &Job, task: &mut Task, bytes: u64) {
    lock(&job.progress).add_moved(bytes);
    task.counted += bytes;
}

async fn open_at(path: &std::path::Path, offset: u64) -> std::io::Result<tokio::fs::File> {
    let mut file = tokio::fs::File::open(path).await?;
    if offset > 0 {
        file.seek(std::io::SeekFrom::Start(offset)).await?;
    }
    Ok(file)
}

/// The worker's connection for questions that need an answer before a file is sent, opened
/// only when one comes up.
async fn control_session<'a>(
    job: &Job,
    control: &'a mut Option<Session>,
) -> Result<&'a mut Session, EngineError> {
    if control.is_none() {
        *control = Some(Session::connect(&job.endpoint).await?);
    }
    control
        .as_mut()
        .ok_or_else(|| EngineError::Protocol("no control session".into()))
}

async fn finish_put(
    job: &Arc<Job>,
    reader: &mut ConnReader,
    task: &mut Task,
    offset: u64,
    digest: Digest,
    broken: Option<String>,
) -> Result<(), EngineError> {
    let reply: Result<PutReply, ErrorBody> = reader.header().await?;
    if let Some(reason) = broken {
        job.failed(
            task,
            &EngineError::local(&task.local, std::io::Error::other(reason)),
        );
        return Ok(());
    }
    match reply {
        Ok(reply) if reply.digest == digest && reply.file_size == task.size => {
            job.done(task, digest);
            if job.remove_source {
                let path = task.local.clone();
                if let Err(e) = blocking(move || std::fs::remove_file(&path)).await? {
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
        Err(body) => job.failed(task, &EngineError::remote(&task.remote, body)),
    }
    Ok(())
}

/// Decides what to do with one download and sends its `get`; `None` when it was settled
/// without a request.
async fn send_get(
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
        if !meta.is_file() || meta.len() == 0 || meta.len() > size {
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
async fn open_partial(partial: &std::path::Path, offset: u64) -> std::io::Result<tokio::fs::File> {
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

async fn finish_get(
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
        count_moved(job, task, chunk.len() as u64);
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
