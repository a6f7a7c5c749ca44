//! One job's run, and the pipeline that keeps each worker's connection full.
//!
//! A job first plans: it walks its sources (locally, or remotely with `walk`), creates the
//! destination directories and learns which destinations already exist. Then a few workers,
//! each on its own connection, take files from one shared queue. A worker's writer half
//! prepares a file (conflict policy, resume check) and sends its request, payload included,
//! without waiting; its reader half takes the replies in order and finishes each file (verify,
//! rename into place, report). So a tree of tiny files costs one round trip per window of
//! requests, not one per file. A file whose resume turns out wrong is queued again from
//! scratch; a broken connection puts its files in flight back in the queue for a new one.
//!
//! How a file is planned, sent and finished is the direction's business: the scheduler reaches
//! it only through [`direction`](super::direction).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use ferry_protocol::{Entry, ErrorCode, Kind, Request};
use ferry_server::rate::TwoWayLimit;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::direction::{self, Direction, Incoming, Outgoing};
use super::error::EngineError;
use super::event::TransferEvent;
use super::job::{Job, STOPPED_EARLY, Sent, Task, blocking, lock};
use super::session::Session;
use super::spec::{ConflictPolicy, Groundwork, JobSpec};
use super::transport::{FrameReader, FrameStream, FrameWriter};
use super::{same_file, space};

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
/// A file settled without a request on the connection (fetched in ranges over connections of
/// its own) that took this long leaves the connection idle long enough to near the server's
/// idle timeout (300 s by default): once its replies are read, the worker takes a new one.
const RENEW_AFTER: Duration = Duration::from_secs(60);

/// Plans, runs the workers, then finishes a move.
pub(super) async fn run(
    job: Arc<Job>,
    spec: JobSpec,
    groundwork: Option<Groundwork>,
) -> Result<(), EngineError> {
    let direction = Direction::of(&spec);
    // The workers take files as the walk delivers them (an upload's once the remote directory
    // they go into exists); once it ends, idle workers end with an empty queue.
    let mut first_round = JoinSet::new();
    let start_workers = |first_round: &mut JoinSet<_>| {
        job.set_planning(true);
        for _ in 0..job.options.workers {
            first_round.spawn(worker(Arc::clone(&job), direction));
        }
    };
    let (mut session, stats, spec) = match groundwork {
        // The owner's session has logged in already: the workers connect at once, beside the
        // screening, so they are ready by the time the first files are known.
        Some(Groundwork { mut session, stats }) => {
            start_workers(&mut first_round);
            let screened = match ask_ahead(&mut session, &spec, &stats).await {
                Ok(()) => screen_same_files(&job, &mut session, spec).await,
                Err(e) => Err(e),
            };
            match screened {
                Ok(spec) => (session, stats, spec),
                Err(e) => {
                    job.set_planning(false);
                    return Err(e);
                }
            }
        }
        // Otherwise the job's own session logs in and screens first: a burst of jobs opening
        // all their connections at once would crowd the server's door.
        None => {
            let mut session = retry_busy(|| Session::connect(&job.endpoint)).await?;
            let spec = screen_same_files(&job, &mut session, spec).await?;
            start_workers(&mut first_round);
            (session, Default::default(), spec)
        }
    };
    let planned = direction::plan(&job, &mut session, spec, &stats).await;
    job.set_planning(false);
    let cleanup = planned?;
    let (files, bytes) = job.planned_totals();
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
        addr: job.endpoint.address(),
        message: "no connection left to send the file on".into(),
    });
    while let Some(task) = job.pop() {
        job.failed(&task, &error);
    }

    if job.remove_source {
        let mut session = retry_busy(|| Session::connect(&job.endpoint)).await?;
        direction.finish_move(&job, &mut session, cleanup).await?;
    }
    Ok(())
}

/// Sends at once what a download's screening and the start of its plan will ask one after
/// another: each item's `summary` (free space), each item's identity `stat` when the server
/// shares this machine (same file), and the `walk` of the first item when it is known to be a
/// directory. Should the screening leave an item out, the session finds itself out of step at
/// the first question it did not foresee and starts over on a new connection.
async fn ask_ahead(
    session: &mut Session,
    spec: &JobSpec,
    stats: &HashMap<String, Option<Entry>>,
) -> Result<(), EngineError> {
    let JobSpec::Download { items, .. } = spec else {
        return Ok(());
    };
    let mut requests = items
        .iter()
        .map(|(remote, _)| Request::Summary {
            path: remote.clone(),
        })
        .collect::<Vec<_>>();
    if session.shared_machine().is_some() {
        requests.extend(items.iter().map(|(remote, _)| Request::Stat {
            path: remote.clone(),
            identity: true,
        }));
    }
    if let Some((first, _)) = items.first()
        && matches!(stats.get(first), Some(Some(entry)) if entry.kind == Kind::Dir)
    {
        requests.push(Request::Walk {
            path: first.clone(),
        });
    }
    session.send_ahead(requests).await
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
            let refusals = same_file::check_uploads(session, &salt, &items).await?;
            for ((local, remote), refusal) in items.into_iter().zip(refusals) {
                match refusal {
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
        // Between servers: nothing on this machine's disk to be the same file.
        relay @ JobSpec::Relay { .. } => relay,
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
        // `hello` goes out with the first requests and its answer is read before theirs: the
        // job has logged in already, so waiting for it would only cost a round trip. A `busy`
        // server answers it so, and the connection is tried again after a while, its
        // requests back in the queue.
        let outcome = retry_busy(|| async {
            let mut conn = FrameStream::open_unanswered(&job.endpoint).await?;
            let [own, all] = &job.rates;
            let (recv, send) = TwoWayLimit::obeyed(&[own, all]);
            conn.limit(recv, send);
            pipeline(&job, conn, direction).await
        })
        .await;
        match outcome {
            Ok(Renew(true)) => {}
            Ok(Renew(false)) => return Ok(()),
            Err(e @ EngineError::Remote { .. }) => return Err(e),
            // Dropped on purpose to stop a large download the disk could not take.
            Err(EngineError::Connection { message, .. }) if message == STOPPED_EARLY => {}
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

/// Whether a pipeline ended to go on over a new connection (its own sat idle too long).
#[derive(Debug, Clone, Copy)]
struct Renew(bool);

/// A request sent whose replies are still to come.
#[derive(Debug)]
struct InFlight {
    task: Task,
    kind: Sent,
}

/// Runs one connection's writer and reader side by side. On a broken connection, the files
/// in flight go back to the queue.
async fn pipeline(
    job: &Arc<Job>,
    conn: FrameStream,
    direction: Direction,
) -> Result<Renew, EngineError> {
    let FrameStream {
        mut reader,
        mut writer,
        ..
    } = conn;
    let (in_flight_tx, mut in_flight_rx) = mpsc::channel::<InFlight>(job.options.window);
    let mut writing: Option<Task> = None;
    let mut reading: Option<Task> = None;
    let mut outgoing = Outgoing::new(direction);
    let outcome = {
        let write = write_side(job, &mut writer, in_flight_tx, &mut writing, &mut outgoing);
        let read = async {
            reader.hello(&job.endpoint).await?;
            read_side(job, &mut reader, &mut in_flight_rx, &mut reading).await
        };
        tokio::try_join!(write, read).map(|(renew, ())| renew)
    };
    if outcome.is_err() {
        let mut interrupted = writing.into_iter().chain(reading).collect::<Vec<_>>();
        // Files read ahead but not sent yet were not in flight: they simply go back.
        outgoing.give_back(job);
        while let Ok(pending) = in_flight_rx.try_recv() {
            interrupted.push(pending.task);
        }
        for mut task in interrupted {
            task.interrupted = true;
            job.requeue(task, false);
        }
    }
    outcome
}

/// Takes files from the queue, decides each one's request and sends it without waiting for
/// its reply, flushing in batches.
async fn write_side(
    job: &Arc<Job>,
    writer: &mut FrameWriter,
    in_flight_tx: mpsc::Sender<InFlight>,
    slot: &mut Option<Task>,
    outgoing: &mut Outgoing,
) -> Result<Renew, EngineError> {
    let mut unflushed = 0;
    loop {
        let task = match outgoing.take(job).await? {
            Some(task) => task,
            None if !job.drained() => {
                // The plan is still walking: what was asked goes out, then wait for more.
                writer.flush().await?;
                unflushed = 0;
                job.wait_for_tasks().await;
                continue;
            }
            None => break,
        };
        let task = slot.insert(task);
        let asked = std::time::Instant::now();
        let Some(kind) = outgoing.send(job, writer, task).await? else {
            *slot = None;
            if asked.elapsed() >= RENEW_AFTER {
                writer.flush().await?;
                return Ok(Renew(true));
            }
            continue;
        };
        unflushed += 1;
        // Flushed before a full window is waited on, or the reader would wait for replies to
        // requests still in our buffer. The task stays in the slot until it is handed over, so a
        // failure here puts it back in the queue.
        let full = in_flight_tx.capacity() == 0;
        if full || unflushed >= FLUSH_EVERY || (job.queue_is_empty() && !outgoing.has_read_ahead())
        {
            writer.flush().await?;
            unflushed = 0;
        }
        let Some(task) = slot.take() else {
            continue;
        };
        if let Err(mpsc::error::SendError(pending)) =
            in_flight_tx.send(InFlight { task, kind }).await
        {
            job.requeue(pending.task, false);
            return Ok(Renew(false));
        }
        if full {
            // The window was full: wait until a good part of it is free again, so the next
            // requests leave (and reach the server) together instead of one per reply.
            let room = FLUSH_EVERY.min(job.options.window);
            if let Ok(permits) = in_flight_tx.reserve_many(room).await {
                drop(permits);
            }
        }
    }
    writer.flush().await?;
    Ok(Renew(false))
}

/// Takes the replies in the order the requests went and finishes each file.
async fn read_side(
    job: &Arc<Job>,
    reader: &mut FrameReader,
    in_flight_rx: &mut mpsc::Receiver<InFlight>,
    slot: &mut Option<Task>,
) -> Result<(), EngineError> {
    let mut incoming = Incoming::default();
    let read = async {
        while let Some(InFlight { task, kind }) = in_flight_rx.recv().await {
            let task = slot.insert(task);
            incoming.finish(job, reader, task, kind).await?;
            *slot = None;
        }
        Ok(())
    };
    let read: Result<(), EngineError> = read.await;
    // Files already verified are written even when the connection broke after them.
    incoming.close().await?;
    read
}
