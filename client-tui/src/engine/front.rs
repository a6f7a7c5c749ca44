//! [`Engine`] and [`Events`]: what the owner (the CLI, the TUI) holds. `submit` starts a job
//! on the scheduler and reports its end; `cancel` stops it; the events come back in bursts.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
use super::session::Session;
use super::spec::{EngineOptions, Groundwork, JobId, JobSpec};
use super::sync::{self, Plan};
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
        let (id, cancel, rate) = self.register();
        let state = Arc::clone(&self.state);
        tokio::spawn(async move {
            let outcome = run_job(&state, id, rate, &cancel, spec, groundwork).await;
            finished(&state, id, outcome.map_err(|e| e.to_string()));
        });
        id
    }

    /// Carries out a sync's plan as one job (the TUI's sync dialog): the directories, the
    /// files to send as the usual transfer with its progress, then, once every transfer is
    /// verified, the attribute fixes and deletions, as `engine::sync::run` orders them. The
    /// job ends with its summary, or with what failed.
    pub fn submit_sync(&self, plan: Plan) -> JobId {
        let (id, cancel, rate) = self.register();
        let state = Arc::clone(&self.state);
        tokio::spawn(async move {
            let outcome = match run_sync(&state, id, rate, &cancel, plan).await {
                Ok((summary, failures)) => match failures.first() {
                    None => Ok(summary),
                    Some(first) if failures.len() == 1 => Err(first.clone()),
                    Some(first) => Err(format!("{first} (and {} more)", failures.len() - 1)),
                },
                Err(e) => Err(e.to_string()),
            };
            finished(&state, id, outcome);
        });
        id
    }

    /// A new job's id, with its cancellation token and own rate limit, known to
    /// [`cancel`](Self::cancel) and [`set_job_rate_limit`](Self::set_job_rate_limit).
    fn register(&self) -> (JobId, CancellationToken, Arc<TwoWayLimit>) {
        let id = JobId(self.state.next_id.fetch_add(1, Ordering::Relaxed));
        let cancel = CancellationToken::new();
        let rate = Arc::new(TwoWayLimit::new(0));
        lock(&self.state.jobs).insert(id, (cancel.clone(), Arc::clone(&rate)));
        (id, cancel, rate)
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

/// Runs one job to its end or its cancel, without the closing event (its owner sends that).
async fn run_job(
    state: &Arc<EngineState>,
    id: JobId,
    rate: Arc<TwoWayLimit>,
    cancel: &CancellationToken,
    spec: JobSpec,
    groundwork: Option<Groundwork>,
) -> Result<JobSummary, EngineError> {
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
    // The closing event is sent apart from the job: what it gathered goes first.
    job.flush_file_events();
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
    outcome
}

/// A sync's plan carried out (see [`Engine::submit_sync`]): its summary and the steps that
/// failed, in words.
async fn run_sync(
    state: &Arc<EngineState>,
    id: JobId,
    rate: Arc<TwoWayLimit>,
    cancel: &CancellationToken,
    plan: Plan,
) -> Result<(JobSummary, Vec<String>), EngineError> {
    let started = Instant::now();
    let mut session = until_cancelled(cancel, Session::connect(&state.endpoint)).await?;
    let made = until_cancelled(cancel, sync::make_dirs(&mut session, &plan)).await?;
    let mut failures: Vec<String> = failed_steps(&made);
    let mut summary = JobSummary {
        files: 0,
        bytes: 0,
        skipped: 0,
        failed: 0,
        elapsed: Duration::ZERO,
    };
    let transfers_ok = match sync::transfer_job(&plan) {
        None => true,
        Some((spec, stats)) => {
            let groundwork = Groundwork { session, stats };
            let ran = run_job(state, id, rate, cancel, spec, Some(groundwork)).await;
            if matches!(ran, Err(EngineError::Cancelled)) {
                return Err(EngineError::Cancelled);
            }
            session = until_cancelled(cancel, Session::connect(&state.endpoint)).await?;
            match ran {
                Ok(done) => {
                    let ok = done.failed == 0;
                    summary = done;
                    ok
                }
                Err(e) => {
                    failures.push(e.to_string());
                    false
                }
            }
        }
    };
    let all_ok = transfers_ok && failures.is_empty();
    let finished = until_cancelled(cancel, sync::finish(&mut session, &plan, all_ok)).await?;
    failures.extend(failed_steps(&finished.outcomes));
    if finished.deletes_held > 0 {
        failures.push(format!(
            "not deleted: {} entries of the destination, because not every transfer was \
             verified; sync again to finish",
            finished.deletes_held
        ));
    }
    summary.elapsed = started.elapsed();
    Ok((summary, failures))
}

/// `step`, unless the job is cancelled first.
async fn until_cancelled<T>(
    cancel: &CancellationToken,
    step: impl std::future::Future<Output = Result<T, EngineError>>,
) -> Result<T, EngineError> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(EngineError::Cancelled),
        done = step => done,
    }
}

/// The failed steps of a sync, in words.
fn failed_steps(outcomes: &[sync::Outcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(ToString::to_string))
        .collect()
}

/// Forgets a job and sends its closing event.
fn finished(state: &Arc<EngineState>, id: JobId, outcome: Result<JobSummary, String>) {
    lock(&state.jobs).remove(&id);
    let _ = state
        .events_tx
        .send(vec![TransferEvent::Finished { job: id, outcome }]);
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
