//! The small interface through which the scheduler drives a job's two directions: plan the
//! items, send each file's request, finish each reply, end a move. The scheduler knows nothing
//! of how an upload or a download does any of it, and `upload`, `download` and `plan` know
//! nothing of the scheduler.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use ferry_protocol::Entry;

use super::error::EngineError;
use super::job::{Job, Sent, Task, lock};
use super::plan::{self, EmptiedDirs};
use super::session::Session;
use super::spec::JobSpec;
use super::transport::{FrameReader, FrameWriter};
use super::{download, upload};

/// Which way a job's files go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    Upload,
    Download,
}

impl Direction {
    pub(super) fn of(spec: &JobSpec) -> Direction {
        match spec {
            JobSpec::Upload { .. } => Direction::Upload,
            // A relay never reaches the scheduler (`front` runs it in `relay`).
            JobSpec::Download { .. } | JobSpec::Relay { .. } => Direction::Download,
        }
    }

    /// Removes what a move has copied once the workers are done.
    pub(super) async fn finish_move(
        self,
        job: &Job,
        session: &mut Session,
        cleanup: EmptiedDirs,
    ) -> Result<(), EngineError> {
        match self {
            Direction::Upload => plan::finish_upload_move(cleanup).await,
            Direction::Download => plan::finish_download_move(job, session, cleanup).await,
        }
    }
}

/// Plans a job's items while its workers already take files (`stats`: what the owner already
/// knows of remote paths); what a move must clean up.
pub(super) async fn plan(
    job: &Job,
    session: &mut Session,
    spec: JobSpec,
    stats: &HashMap<String, Option<Entry>>,
) -> Result<EmptiedDirs, EngineError> {
    match spec {
        JobSpec::Upload { items, .. } => plan::plan_upload(job, session, items, stats).await,
        JobSpec::Download { items, .. } => plan::plan_download(job, session, items, stats).await,
        JobSpec::Relay { .. } => Err(EngineError::Protocol(
            "a relay is not planned by the scheduler".into(),
        )),
    }
}

/// One connection's request side: the files it takes next and how their requests go out.
#[derive(Debug)]
pub(super) struct Outgoing {
    direction: Direction,
    /// The connection for questions that need an answer before a file is sent, opened only
    /// when one comes up.
    control: Option<Session>,
    /// An upload's small files read ahead, not sent yet.
    ahead: VecDeque<upload::ReadAhead>,
    /// The bytes of the file [`take`](Self::take) gave last, when they were read ahead.
    taken: Option<std::io::Result<upload::SmallFile>>,
}

impl Outgoing {
    pub(super) fn new(direction: Direction) -> Self {
        Self {
            direction,
            control: None,
            ahead: VecDeque::new(),
            taken: None,
        }
    }

    /// The next file to send, `None` while the queue is empty.
    pub(super) async fn take(&mut self, job: &Job) -> Result<Option<Task>, EngineError> {
        if self.ahead.is_empty() && self.direction == Direction::Upload {
            upload::read_ahead(job, &mut self.ahead).await?;
        }
        Ok(match self.ahead.pop_front() {
            Some(read) => {
                self.taken = Some(read.bytes);
                Some(read.task)
            }
            None => {
                self.taken = None;
                job.pop()
            }
        })
    }

    /// Decides what to do with the file just taken and buffers its request; `None` when it
    /// was settled without one (skipped, failed, already there).
    pub(super) async fn send(
        &mut self,
        job: &Arc<Job>,
        writer: &mut FrameWriter,
        task: &mut Task,
    ) -> Result<Option<Sent>, EngineError> {
        match self.direction {
            Direction::Upload => {
                // An upload's bytes leave here; a download's file is named by the read side
                // when its reply comes, since with a deep pipeline the last request is files
                // ahead.
                lock(&job.progress).start_file(&task.remote);
                let bytes = self.taken.take();
                upload::send_put(job, writer, task, &mut self.control, bytes).await
            }
            Direction::Download => download::send_get(job, writer, task, &mut self.control).await,
        }
    }

    /// Files read ahead and not sent yet wait here.
    pub(super) fn has_read_ahead(&self) -> bool {
        !self.ahead.is_empty()
    }

    /// Puts the files read ahead but not sent back in the queue, in their order.
    pub(super) fn give_back(self, job: &Job) {
        for read in self.ahead.into_iter().rev() {
            job.requeue(read.task, false);
        }
    }
}

/// One connection's reply side: what it keeps between replies (a download's disk stage).
#[derive(Debug, Default)]
pub(super) struct Incoming {
    disk: download::DiskStage,
}

impl Incoming {
    /// Takes the reply to `kind`'s request and finishes its file.
    pub(super) async fn finish(
        &mut self,
        job: &Arc<Job>,
        reader: &mut FrameReader,
        task: &mut Task,
        kind: Sent,
    ) -> Result<(), EngineError> {
        match kind {
            Sent::Get {
                offset,
                hasher,
                partial,
            } => {
                lock(&job.progress).start_file(&task.remote);
                download::finish_get(job, reader, &mut self.disk, task, offset, *hasher, partial)
                    .await
            }
            Sent::Put {
                offset,
                digest,
                broken,
            } => upload::finish_put(job, reader, task, offset, digest, broken).await,
        }
    }

    /// Waits until the files already verified are written.
    pub(super) async fn close(&mut self) -> Result<(), EngineError> {
        self.disk.finish().await
    }
}
