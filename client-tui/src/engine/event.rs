//! What the engine tells its owner: [`TransferEvent`]s, with a job's progress, its summary and
//! why an entry was left out.

use std::time::Duration;

use ferry_protocol::Digest;
use tokio::sync::oneshot;

use super::spec::{ConflictAnswer, FileFacts, JobId};

/// A snapshot of one job's progress; throttled to about 20 per second per job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobProgress {
    pub job: JobId,
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// The file being moved now (the last one started when several are in flight).
    pub current: Option<String>,
    /// Bytes per second, smoothed.
    pub speed: f64,
    pub eta: Option<Duration>,
    /// The tree is still being walked: the totals are not known yet (both 0), while
    /// the done counters already count what arrived.
    pub scanning: bool,
}

/// How a finished job went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSummary {
    /// Files now in place and verified (skipped ones not included).
    pub files: u64,
    /// Payload bytes that crossed the wire: a resumed file counts only what was still missing.
    pub bytes: u64,
    pub skipped: u64,
    /// Files that failed (each also reported by [`TransferEvent::FileFailed`]).
    pub failed: u64,
    pub elapsed: Duration,
}

/// Why an entry of a tree was not copied. Symlinks and special files are left out by design;
/// the others are errors a user must hear about by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftOutReason {
    Symlink,
    /// A socket, fifo or device.
    Special,
    /// A name the other side cannot hold (not UTF-8, or against the path rules).
    Name,
    /// A directory that could not be read (permission denied, too deep, an IO error).
    Unreadable,
    /// It was there when the tree was listed and gone when it was read.
    Vanished,
    /// A per-file conflict policy kept the destination (it is newer, or the same size).
    UpToDate,
}

impl LeftOutReason {
    /// A stable snake_case word for scripts (`--json`) and the one-line messages.
    pub fn as_str(self) -> &'static str {
        match self {
            LeftOutReason::Symlink => "symlink",
            LeftOutReason::Special => "special_file",
            LeftOutReason::Name => "bad_name",
            LeftOutReason::Unreadable => "unreadable",
            LeftOutReason::Vanished => "vanished",
            LeftOutReason::UpToDate => "up_to_date",
        }
    }

    /// Left out on purpose (a link, a special file, a destination the policy kept), not because
    /// something went wrong.
    pub fn by_design(self) -> bool {
        matches!(
            self,
            LeftOutReason::Symlink | LeftOutReason::Special | LeftOutReason::UpToDate
        )
    }
}

/// What the engine tells its owner, over the channel returned by [`Engine::new`](super::Engine::new).
#[derive(Debug)]
pub enum TransferEvent {
    /// The job's size is known (after the scan): progress bars can be drawn to scale. Files
    /// move while the tree is still being walked, so file events and progress marked
    /// `scanning` (counts without totals) may come before it.
    Planned {
        job: JobId,
        files: u64,
        bytes: u64,
    },
    Progress(JobProgress),
    /// The destination of `path` exists and the policy is `Ask`.
    Conflict {
        job: JobId,
        /// The destination that exists (remote wire path or local path, shown to the user).
        path: String,
        reply: oneshot::Sender<ConflictAnswer>,
        /// Why the question is asked again: the last answer could not be carried out (a resume
        /// of a destination that is not a part of the source).
        reason: Option<String>,
        /// The source's size and time, and the destination's (`None`: not a regular file).
        source: FileFacts,
        dest: Option<FileFacts>,
    },
    /// One file arrived and its digest matched.
    FileDone {
        job: JobId,
        path: String,
        bytes: u64,
        digest: Digest,
    },
    FileFailed {
        job: JobId,
        path: String,
        error: String,
    },
    /// An entry of a tree that was not copied: its source path and why (it is also counted
    /// in [`JobSummary::skipped`]).
    LeftOut {
        job: JobId,
        path: String,
        reason: LeftOutReason,
        /// The detail, e.g. `forbidden: Permission denied`.
        message: String,
    },
    /// The job ended; `Err` only when it could not run at all or was cancelled.
    Finished {
        job: JobId,
        outcome: Result<JobSummary, String>,
    },
}
