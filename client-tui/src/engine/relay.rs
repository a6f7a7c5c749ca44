//! A copy from one server to another, or between two places of one server: the job behind
//! F5/F6 between two remote panes and `ferry copy`. The sources are walked on the source
//! server, the directories made on the destination in pipelined batches, then the files go:
//!
//! - **One server**: one `copy` request per file, pipelined in batches on each worker's
//!   connection; the server copies and verifies, no byte crosses to this process.
//! - **Two servers**: each file's `get` on the source streams into a `put` on the destination
//!   one chunk at a time (a bounded buffer in memory, never the disk); the source's trailer
//!   digest becomes the `put`'s trailer, so the destination renames the file into place only
//!   when it holds exactly the source's bytes.
//!
//! Every planned file ends as done, skipped or failed; symlinks and special files are reported
//! as left out. A move removes each source only while it is still the file that was copied
//! (length, mtime, digest), then the source directories it emptied.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use ferry_protocol::Request;
use ferry_protocol::path::{join, split_last};
use ferry_protocol::{Digest, ErrorCode, GetReply, GetTrailer, Kind, Put, PutReply, PutTrailer};
use tokio::task::JoinSet;

use super::endpoint::Endpoint;
use super::error::EngineError;
use super::event::{LeftOutReason, TransferEvent};
use super::job::{Job, lock};
use super::local::free_name;
use super::session::{CopiedSource, Session};
use super::spec::{ConflictPolicy, FileFacts};

/// Files one worker sends as one pipelined batch of `copy` requests.
const COPY_BATCH: usize = 16;
/// Bytes past which a batch takes no more files: progress moves as batches are answered, so
/// big files go a few at a time.
const COPY_BATCH_BYTES: u64 = 64 * 1024 * 1024;

/// One file to copy.
#[derive(Debug, Clone)]
struct Pair {
    from: String,
    to: String,
    size: u64,
    mtime: i64,
}

/// What the plan found: directories to make (with their modes), files to copy, and the
/// source directories a move may remove at the end (deepest last).
#[derive(Debug, Default)]
struct Plan {
    dirs: Vec<(String, Option<u32>)>,
    files: Vec<Pair>,
    source_dirs: Vec<String>,
}

/// Runs a [`JobSpec::Relay`](super::JobSpec::Relay) to its end.
pub(super) async fn run(
    job: Arc<Job>,
    from: Endpoint,
    to: Endpoint,
    items: Vec<(String, String)>,
) -> Result<(), EngineError> {
    let same = from == to;
    let mut source = Session::connect(&from).await?;
    let plan = plan(&job, &mut source, &items, same).await?;
    let mut dest = if same {
        None
    } else {
        Some(Session::connect(&to).await?)
    };
    let (files, bytes) = (
        plan.files.len() as u64,
        plan.files.iter().map(|p| p.size).sum::<u64>(),
    );
    job.send(TransferEvent::Planned {
        job: job.id,
        files,
        bytes,
    });
    lock(&job.progress).set_totals(files, bytes);
    if !plan.dirs.is_empty() {
        let session = dest.as_mut().unwrap_or(&mut source);
        let made = session.mkdir_many(&plan.dirs).await?;
        for ((dir, _), outcome) in plan.dirs.iter().zip(made) {
            if let Err(err) = outcome {
                job.failed_path(dir, &err);
            }
        }
    }
    drop(dest);

    let queue = Arc::new(Mutex::new(VecDeque::from(plan.files)));
    let copied = Arc::new(Mutex::new(Vec::new()));
    let mut workers = JoinSet::new();
    let count = job.options.workers.min(lock(&queue).len()).max(1);
    for _ in 0..count {
        let worker = Worker {
            job: Arc::clone(&job),
            queue: Arc::clone(&queue),
            copied: Arc::clone(&copied),
            from: from.clone(),
            to: to.clone(),
        };
        workers.spawn(async move { worker.run(same).await });
    }
    let mut last_error = None;
    while let Some(done) = workers.join_next().await {
        if let Ok(Err(err)) = done {
            last_error = Some(err);
        }
    }
    // Files no worker could take (every connection gone) are failed by name.
    let left: Vec<Pair> = lock(&queue).drain(..).collect();
    if !left.is_empty() {
        let err = last_error.unwrap_or_else(|| EngineError::Connection {
            addr: to.address(),
            message: "no connection left to copy the file on".into(),
        });
        for pair in &left {
            fail(&job, pair, &err);
        }
    }
    if job.remove_source {
        let sources = std::mem::take(&mut *lock(&copied));
        finish_move(&job, &mut source, &sources, &plan.source_dirs).await?;
    }
    Ok(())
}

/// Walks each item on the source server: what to make and what to copy.
async fn plan(
    job: &Job,
    source: &mut Session,
    items: &[(String, String)],
    same: bool,
) -> Result<Plan, EngineError> {
    let mut plan = Plan::default();
    for (from, to) in items {
        let entry = match source.stat(from).await {
            Ok(entry) => entry,
            Err(err) => {
                job.failed_path(from, &err);
                continue;
            }
        };
        match entry.kind {
            Kind::File => plan.files.push(Pair {
                from: from.clone(),
                to: to.clone(),
                size: entry.size,
                mtime: entry.mtime,
            }),
            Kind::Dir
                if same
                    && (from.is_empty() || to == from || to.starts_with(&format!("{from}/"))) =>
            {
                job.failed_path(
                    from,
                    &EngineError::Refused {
                        code: "bad_request",
                        message: format!("cannot copy a directory into itself ({to} is inside it)"),
                        path: from.clone(),
                    },
                );
            }
            Kind::Dir => {
                plan.dirs.push((to.clone(), Some(entry.mode)));
                plan.source_dirs.push(from.clone());
                let walked = match source.walk(from).await {
                    Ok(walked) => walked,
                    Err(err) => {
                        job.failed_path(from, &err);
                        continue;
                    }
                };
                for entry in walked {
                    let (src, dst) = (join(from, &entry.name), join(to, &entry.name));
                    if let Some(error) = &entry.error {
                        left_out(job, &src, LeftOutReason::Unreadable, &error.message);
                        continue;
                    }
                    match entry.kind {
                        Kind::Dir => {
                            plan.dirs.push((dst, Some(entry.mode)));
                            plan.source_dirs.push(src);
                        }
                        Kind::File => plan.files.push(Pair {
                            from: src,
                            to: dst,
                            size: entry.size,
                            mtime: entry.mtime,
                        }),
                        Kind::Symlink => left_out(job, &src, LeftOutReason::Symlink, "a symlink"),
                        Kind::Other => {
                            left_out(job, &src, LeftOutReason::Special, "a special file");
                        }
                    }
                }
            }
            Kind::Symlink => left_out(job, from, LeftOutReason::Symlink, "a symlink"),
            Kind::Other => left_out(job, from, LeftOutReason::Special, "a special file"),
        }
    }
    Ok(plan)
}

fn left_out(job: &Job, path: &str, reason: LeftOutReason, message: &str) {
    lock(&job.counters).skipped += 1;
    job.send_file_event(TransferEvent::LeftOut {
        job: job.id,
        path: path.to_owned(),
        reason,
        message: message.to_owned(),
    });
}

fn fail(job: &Job, pair: &Pair, err: &EngineError) {
    job.failed_path(&pair.to, err);
    lock(&job.progress).file_finished();
}

/// One connection (two across servers) taking files from the shared queue.
struct Worker {
    job: Arc<Job>,
    queue: Arc<Mutex<VecDeque<Pair>>>,
    copied: Arc<Mutex<Vec<CopiedSource>>>,
    from: Endpoint,
    to: Endpoint,
}

impl Worker {
    async fn run(self, same: bool) -> Result<(), EngineError> {
        let mut source = Session::connect(&self.from).await?;
        let mut dest = if same {
            None
        } else {
            Some(Session::connect(&self.to).await?)
        };
        loop {
            let batch: Vec<Pair> = {
                let mut queue = lock(&self.queue);
                let mut n = 0;
                let mut bytes = 0;
                // At least one file; on one server more, up to the batch's count and bytes.
                while let Some(next) = queue.get(n)
                    && (n == 0 || (same && n < COPY_BATCH && bytes < COPY_BATCH_BYTES))
                {
                    bytes += next.size;
                    n += 1;
                }
                queue.drain(..n).collect()
            };
            if batch.is_empty() {
                return Ok(());
            }
            match dest.as_mut() {
                None => self.copy_batch(&mut source, batch).await?,
                Some(dest) => {
                    let mut batch = VecDeque::from(batch);
                    while let Some(pair) = batch.pop_front() {
                        if let Err(err) = self.relay_one(&mut source, dest, pair.clone()).await {
                            // This connection is done for: its files go back for another.
                            let mut queue = lock(&self.queue);
                            queue.push_back(pair);
                            queue.extend(batch);
                            return Err(err);
                        }
                    }
                }
            }
        }
    }

    /// `copy` requests for a batch, pipelined; each taken name settled by the policy.
    async fn copy_batch(&self, session: &mut Session, batch: Vec<Pair>) -> Result<(), EngineError> {
        let overwrite = self.job.policy == ConflictPolicy::Overwrite;
        let pairs: Vec<(String, String)> = batch
            .iter()
            .map(|p| (p.from.clone(), p.to.clone()))
            .collect();
        if let Some(last) = batch.last() {
            lock(&self.job.progress).start_file(&last.to);
        }
        let outcomes = match session.copy_many(&pairs, overwrite).await {
            Ok(outcomes) => outcomes,
            Err(err) => {
                // The connection broke: the batch goes back for another worker or the end.
                lock(&self.queue).extend(batch);
                return Err(err);
            }
        };
        let mut settled = batch.into_iter().zip(outcomes);
        while let Some((pair, outcome)) = settled.next() {
            match outcome {
                Ok(reply) => self.done(&pair, reply.digest, false),
                Err(err) if err.remote_code() == Some(ErrorCode::AlreadyExists) => {
                    if let Err(err) = self.conflict(session, None, pair.clone()).await {
                        // The connection broke while settling it: it and the rest of the
                        // batch still unsettled go back, nothing is lost.
                        let mut queue = lock(&self.queue);
                        queue.push_back(pair);
                        for (rest, outcome) in settled {
                            match outcome {
                                Ok(reply) => self.done(&rest, reply.digest, false),
                                Err(_) => queue.push_back(rest),
                            }
                        }
                        return Err(err);
                    }
                }
                Err(err) => fail(&self.job, &pair, &err),
            }
        }
        Ok(())
    }

    /// One file streamed from the source server into the destination server. `Err` only
    /// when a connection broke before the file was settled (the caller puts it back).
    async fn relay_one(
        &self,
        source: &mut Session,
        dest: &mut Session,
        pair: Pair,
    ) -> Result<(), EngineError> {
        if self.job.policy != ConflictPolicy::Overwrite {
            match dest.try_stat(&pair.to).await {
                Ok(Some(_)) => return self.conflict(source, Some(dest), pair).await,
                Ok(None) => {}
                Err(err @ (EngineError::Connection { .. } | EngineError::Protocol(_))) => {
                    return Err(err);
                }
                Err(err) => {
                    fail(&self.job, &pair, &err);
                    return Ok(());
                }
            }
        }
        let overwrite = self.job.policy == ConflictPolicy::Overwrite;
        self.relay_checked(source, dest, pair, overwrite).await
    }

    async fn relay_checked(
        &self,
        source: &mut Session,
        dest: &mut Session,
        pair: Pair,
        overwrite: bool,
    ) -> Result<(), EngineError> {
        lock(&self.job.progress).start_file(&pair.to);
        let mut counted = 0;
        let relayed = relay_file(&self.job, source, dest, &pair, overwrite, &mut counted).await;
        if relayed.is_err() {
            // What this attempt counted did not arrive.
            lock(&self.job.progress).take_back(counted);
        }
        match relayed {
            Ok(digest) => {
                self.done(&pair, digest, true);
                Ok(())
            }
            Err(err @ (EngineError::Connection { .. } | EngineError::Protocol(_))) => Err(err),
            Err(err) => {
                fail(&self.job, &pair, &err);
                Ok(())
            }
        }
    }

    /// The destination of `pair` exists: the job's policy (or the owner's answer) decides.
    /// `dest` is `None` on one server, where `source` serves both sides.
    async fn conflict(
        &self,
        source: &mut Session,
        mut dest: Option<&mut Session>,
        pair: Pair,
    ) -> Result<(), EngineError> {
        let facts = FileFacts {
            size: pair.size,
            mtime: pair.mtime,
        };
        // What the destination holds, for the question and the per-file rules.
        let there = match dest {
            Some(ref mut d) => d.try_stat(&pair.to).await,
            None => source.try_stat(&pair.to).await,
        };
        let there = match there {
            Ok(Some(entry)) if entry.kind == Kind::File => Some(FileFacts {
                size: entry.size,
                mtime: entry.mtime,
            }),
            _ => None,
        };
        let choice = match self.job.resolve(&pair.to, None, facts, there).await {
            rule @ (ConflictPolicy::OverwriteIfNewer | ConflictPolicy::OverwriteIfSizeDiffers) => {
                match rule.keeps(facts, there) {
                    Some(why) => {
                        self.skipped(&pair);
                        self.job.send_file_event(TransferEvent::LeftOut {
                            job: self.job.id,
                            path: pair.to.clone(),
                            reason: LeftOutReason::UpToDate,
                            message: why.to_owned(),
                        });
                        return Ok(());
                    }
                    None => ConflictPolicy::Overwrite,
                }
            }
            choice => choice,
        };
        let (pair, overwrite) = match choice {
            ConflictPolicy::Skip => {
                self.skipped(&pair);
                return Ok(());
            }
            ConflictPolicy::Fail
            | ConflictPolicy::Ask
            | ConflictPolicy::OverwriteIfNewer
            | ConflictPolicy::OverwriteIfSizeDiffers => {
                let err = EngineError::Remote {
                    code: ErrorCode::AlreadyExists,
                    message: "already exists".into(),
                    path: pair.to.clone(),
                };
                fail(&self.job, &pair, &err);
                return Ok(());
            }
            ConflictPolicy::Overwrite => (pair, true),
            ConflictPolicy::Resume => {
                // A finished file cannot be continued: one that has the source's bytes is
                // kept as it is, any other replaced by the whole.
                let theirs = source.digest(&pair.from, pair.size).await;
                let ours = match dest {
                    Some(ref mut d) => d.digest(&pair.to, pair.size).await,
                    None => source.digest(&pair.to, pair.size).await,
                };
                if matches!((&theirs, &ours), (Ok(a), Ok(b)) if a == b) {
                    self.skipped(&pair);
                    return Ok(());
                }
                (pair, true)
            }
            ConflictPolicy::Rename => {
                let (parent, name) = split_last(&pair.to).unwrap_or(("", pair.to.as_str()));
                let listed = match dest {
                    Some(ref mut d) => d.list(parent).await,
                    None => source.list(parent).await,
                };
                let taken: Vec<String> = match listed {
                    Ok(entries) => entries.into_iter().map(|e| e.name).collect(),
                    Err(err) => {
                        fail(&self.job, &pair, &err);
                        return Ok(());
                    }
                };
                let free = free_name(name, |candidate| taken.iter().any(|t| t == candidate));
                let to = join(parent, &free);
                (Pair { to, ..pair }, false)
            }
        };
        match dest {
            Some(d) => self.relay_checked(source, d, pair, overwrite).await,
            None => {
                let outcome = source
                    .copy_many(&[(pair.from.clone(), pair.to.clone())], overwrite)
                    .await?;
                match outcome.into_iter().next() {
                    Some(Ok(reply)) => self.done(&pair, reply.digest, false),
                    Some(Err(err)) => fail(&self.job, &pair, &err),
                    None => fail(
                        &self.job,
                        &pair,
                        &EngineError::Protocol("no answer to a copy".into()),
                    ),
                }
                Ok(())
            }
        }
    }

    /// A verified file in place; `streamed` when its bytes were counted as they went.
    fn done(&self, pair: &Pair, digest: Digest, streamed: bool) {
        lock(&self.job.counters).files += 1;
        {
            let mut progress = lock(&self.job.progress);
            if !streamed {
                progress.add_moved(pair.size);
            }
            progress.file_finished();
        }
        if self.job.remove_source {
            lock(&self.copied).push(CopiedSource {
                path: pair.from.clone(),
                size: pair.size,
                mtime: pair.mtime,
                digest,
            });
        }
        self.job.send_file_event(TransferEvent::FileDone {
            job: self.job.id,
            path: pair.to.clone(),
            bytes: pair.size,
            digest,
        });
    }

    fn skipped(&self, pair: &Pair) {
        lock(&self.job.counters).skipped += 1;
        let mut progress = lock(&self.job.progress);
        progress.add_present(pair.size);
        progress.file_finished();
    }
}

/// Streams one file from `source`'s `get` into `dest`'s `put`, chunk by chunk, and answers
/// the digest both servers agree on. The `put` carries the source's mtime and mode and ends
/// with the source's digest as its trailer: a source that changed while it was read (its
/// trailer an error) gets a trailer that cannot match, so the destination discards what it
/// received instead of placing it.
async fn relay_file(
    job: &Job,
    source: &mut Session,
    dest: &mut Session,
    pair: &Pair,
    overwrite: bool,
    counted: &mut u64,
) -> Result<Digest, EngineError> {
    let src = source.frames().await?;
    src.writer
        .send(&Request::Get {
            path: pair.from.clone(),
            offset: 0,
            length: None,
        })
        .await?;
    src.writer.flush().await?;
    let reply = match src.reader.header::<GetReply>().await? {
        Ok(reply) => reply,
        Err(body) => {
            source.settle();
            return Err(EngineError::remote(&pair.from, body));
        }
    };
    src.reader.expect_payload(reply.size);
    let dst = dest.frames().await?;
    dst.writer
        .send(&Request::Put(Put {
            path: pair.to.clone(),
            size: reply.size,
            offset: 0,
            overwrite,
            digest: None,
            trailer: true,
            mtime: Some(reply.mtime),
            mode: Some(reply.mode & 0o777),
        }))
        .await?;
    while let Some(chunk) = src.reader.payload_chunk().await? {
        dst.writer.write(&chunk).await?;
        let n = chunk.len() as u64;
        *counted += n;
        lock(&job.progress).add_moved(n);
    }
    if *counted != pair.size {
        lock(&job.progress).resize_file(pair.size, *counted);
    }
    let trailer = src.reader.header::<GetTrailer>().await?;
    source.settle();
    let (digest, changed) = match trailer {
        Ok(trailer) => (trailer.digest, None),
        Err(body) => (
            Digest::of(b"ferry relay: the source changed while it was read"),
            Some(EngineError::remote(&pair.from, body)),
        ),
    };
    dst.writer.send_header(&PutTrailer { digest }).await?;
    dst.writer.flush().await?;
    let placed = dst.reader.header::<PutReply>().await?;
    dest.settle();
    if let Some(changed) = changed {
        return Err(changed);
    }
    let placed = placed.map_err(|body| EngineError::remote(&pair.to, body))?;
    if placed.digest != digest {
        return Err(EngineError::Checksum {
            path: pair.to.clone(),
        });
    }
    Ok(digest)
}

/// A move's end: each copied source removed while it is still the file copied, then the
/// source directories, deepest first, that this left empty (one still holding a file that
/// failed or changed stays, and says nothing).
async fn finish_move(
    job: &Job,
    source: &mut Session,
    copied: &[CopiedSource],
    dirs: &[String],
) -> Result<(), EngineError> {
    let removed = source.remove_copied(copied).await?;
    for (copy, outcome) in copied.iter().zip(removed) {
        if let Err(err) = outcome {
            job.failed_path(&copy.path, &err);
        }
    }
    let deepest_first: Vec<String> = dirs.iter().rev().cloned().collect();
    source.remove_many(&deepest_first, false).await?;
    Ok(())
}
