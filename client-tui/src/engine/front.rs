//! [`Engine`] and [`Events`]: what the owner (the CLI, the TUI) holds. `submit` starts a job
//! on the scheduler and reports its end; `cancel` stops it; the events come back in bursts.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ferry_server::rate::TwoWayLimit;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::endpoint::Endpoint;
use super::error::EngineError;
use super::event::{JobSummary, TransferEvent};
use super::job::{Job, lock};
use super::progress::EMIT_INTERVAL;
use super::rate::SharedRate;
use super::spec::{EngineOptions, Groundwork, JobId, JobSpec};
use super::{relay, scheduler};

/// Runs transfer jobs in the background; cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    state: Arc<EngineState>,
}

/// What every clone of an [`Engine`] shares: the server, the options, the events channel and
/// the running jobs' cancellation tokens.
#[derive(Debug)]
struct EngineState {
    endpoint: Endpoint,
    options: EngineOptions,
    events_tx: mpsc::UnboundedSender<Vec<TransferEvent>>,
    next_id: AtomicU64,
    /// Each running job's cancellation token and own rate limit.
    jobs: Mutex<HashMap<JobId, (CancellationToken, Arc<TwoWayLimit>)>>,
    /// The limit all jobs share (with other engines too, when the owner says so).
    rate: SharedRate,
}

impl Engine {
    /// Starts an engine for one server; must be called inside a tokio runtime.
    pub fn new(endpoint: Endpoint) -> (Engine, Events) {
        Self::with_options(endpoint, EngineOptions::default())
    }

    /// Like [`new`](Self::new), with a chosen parallelism.
    pub fn with_options(endpoint: Endpoint, options: EngineOptions) -> (Engine, Events) {
        Self::with_shared_rate(endpoint, options, None)
    }

    /// Like [`with_options`](Self::with_options); with `rate`, the jobs obey that limit, shared
    /// with whoever else holds it, instead of `options.limit_rate`.
    pub fn with_shared_rate(
        endpoint: Endpoint,
        options: EngineOptions,
        rate: Option<SharedRate>,
    ) -> (Engine, Events) {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let options = EngineOptions {
            workers: options.workers.max(1),
            window: options.window.max(1),
            ..options
        };
        let state = EngineState {
            endpoint,
            options,
            events_tx,
            next_id: AtomicU64::new(1),
            jobs: Mutex::new(HashMap::new()),
            rate: rate.unwrap_or_else(|| SharedRate::new(options.limit_rate)),
        };
        (
            Engine {
                state: Arc::new(state),
            },
            Events {
                rx: events_rx,
                ready: VecDeque::new(),
            },
        )
    }

    /// The server this engine talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.state.endpoint
    }

    /// Queues a job; it starts at once (several jobs run side by side).
    pub fn submit(&self, spec: JobSpec) -> JobId {
        self.submit_with(spec, None)
    }

    /// Like [`submit`](Self::submit), going on from what the owner already asked on its own
    /// session (see [`Groundwork`]).
    pub fn submit_with(&self, spec: JobSpec, groundwork: Option<Groundwork>) -> JobId {
        let id = JobId(self.state.next_id.fetch_add(1, Ordering::Relaxed));
        let cancel = CancellationToken::new();
        let rate = Arc::new(TwoWayLimit::new(0));
        lock(&self.state.jobs).insert(id, (cancel.clone(), Arc::clone(&rate)));
        let state = Arc::clone(&self.state);
        tokio::spawn(async move {
            let started = Instant::now();
            let mut job = Job::new(id, &state.endpoint, state.options, &state.events_tx, &spec);
            job.rates = [rate, Arc::clone(&state.rate.0)];
            let job = Arc::new(job);
            let reporter = AbortOnDropHandle::new(tokio::spawn(report_progress(Arc::clone(&job))));
            let outcome = tokio::select! {
                biased;
                () = cancel.cancelled() => Err(EngineError::Cancelled),
                outcome = run(Arc::clone(&job), spec, groundwork) => outcome,
            };
            job.restore_aside().await;
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
            lock(&state.jobs).remove(&id);
            job.send(TransferEvent::Finished {
                job: id,
                outcome: outcome.map_err(|e| e.to_string()),
            });
        });
        id
    }

    /// Cancels a job: its partial files stay hidden, nothing appears under a final name.
    pub fn cancel(&self, job: JobId) {
        if let Some((token, _)) = lock(&self.state.jobs).get(&job) {
            token.cancel();
        }
    }

    /// Changes one job's own limit (0 lifts it), on top of the shared one; running jobs
    /// follow within 100 ms. A job that has ended is left alone.
    pub fn set_job_rate_limit(&self, job: JobId, bytes_per_second: u64) {
        if let Some((_, rate)) = lock(&self.state.jobs).get(&job) {
            rate.set_rate(bytes_per_second);
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

/// A job to its end: a relay between servers on its own, transfers to and from this machine
/// on the scheduler.
async fn run(
    job: Arc<Job>,
    spec: JobSpec,
    groundwork: Option<Groundwork>,
) -> Result<(), EngineError> {
    match spec {
        JobSpec::Relay {
            from, to, items, ..
        } => relay::run(job, *from, *to, items).await,
        spec => scheduler::run(job, spec, groundwork).await,
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
