//! The transfer engine: the only part of the client that touches the network.
//!
//! API CONTRACT (stub): the TUI and the CLI are written against these signatures. The engine
//! work replaces the `todo!()` bodies and may add to this API, but not change what is here
//! without telling the TUI side.

use std::path::PathBuf;
use std::time::Duration;

use ferry_protocol::{Digest, Entry, ErrorCode, SummaryReply};
use tokio::sync::{mpsc, oneshot};

/// Where a server is and how to prove we may use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub token: Option<String>,
}

/// Everything that can go wrong in the engine, each with a stable code for the CLI's output.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The server answered with an error.
    #[error("{code}: {message} ({path})")]
    Remote {
        code: ErrorCode,
        message: String,
        path: String,
    },
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Local {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Could not reach the server, or the connection broke.
    #[error("connection to {addr}: {message}")]
    Connection { addr: String, message: String },
    /// The server broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The bytes received do not match the digest.
    #[error("checksum_mismatch: {path}")]
    Checksum { path: String },
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl EngineError {
    /// A stable snake_case code, as printed by the CLI (`not_found`, `connection`, ...).
    pub fn code(&self) -> &str {
        todo!()
    }
}

/// One connection to the server, used for browsing and small operations.
#[derive(Debug)]
pub struct Session {}

impl Session {
    /// Connects and says `hello`.
    pub async fn connect(_endpoint: &Endpoint) -> Result<Session, EngineError> {
        todo!()
    }
    /// Whether the server said it is read-only.
    pub fn read_only(&self) -> bool {
        todo!()
    }
    pub async fn stat(&mut self, _path: &str) -> Result<Entry, EngineError> {
        todo!()
    }
    /// A whole directory listing, in the server's order (callers sort).
    pub async fn list(&mut self, _path: &str) -> Result<Vec<Entry>, EngineError> {
        todo!()
    }
    pub async fn mkdir(&mut self, _path: &str) -> Result<(), EngineError> {
        todo!()
    }
    pub async fn rename(&mut self, _from: &str, _to: &str) -> Result<(), EngineError> {
        todo!()
    }
    pub async fn remove(&mut self, _path: &str, _recursive: bool) -> Result<(), EngineError> {
        todo!()
    }
    pub async fn summary(&mut self, _path: &str) -> Result<SummaryReply, EngineError> {
        todo!()
    }
}

/// Identifies a job for its whole life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

/// What to do when the destination already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictPolicy {
    Overwrite,
    Skip,
    /// Continue from the existing destination's length if its bytes match ours; else overwrite.
    Resume,
    /// Keep both: the new one gets a free name (`a (1).txt`).
    Rename,
    /// Fail the file with `already_exists`.
    Fail,
    /// Send [`TransferEvent::Conflict`] and wait for the answer.
    Ask,
}

/// The answer to a [`TransferEvent::Conflict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConflictAnswer {
    /// `Ask` is not a valid answer; `Fail` cancels that file.
    pub choice: ConflictPolicy,
    /// Use the same choice for every later conflict in this job.
    pub apply_to_all: bool,
}

/// A transfer to run in the background. Directories are copied recursively.
#[derive(Debug, Clone)]
pub enum JobSpec {
    /// Each local source is written to exactly the remote path beside it.
    Upload {
        items: Vec<(PathBuf, String)>,
        policy: ConflictPolicy,
        /// A move: delete each source once its copy is verified.
        remove_source: bool,
    },
    /// Each remote source is written to exactly the local path beside it.
    Download {
        items: Vec<(String, PathBuf)>,
        policy: ConflictPolicy,
        remove_source: bool,
    },
}

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
}

/// How a finished job went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSummary {
    pub files: u64,
    pub bytes: u64,
    pub skipped: u64,
    /// Files that failed (each also reported by [`TransferEvent::FileFailed`]).
    pub failed: u64,
    pub elapsed: Duration,
}

/// What the engine tells its owner, over the channel returned by [`Engine::new`].
#[derive(Debug)]
pub enum TransferEvent {
    /// The job's size is known (after the scan): progress bars can be drawn to scale.
    Planned { job: JobId, files: u64, bytes: u64 },
    Progress(JobProgress),
    /// The destination of `path` exists and the policy is `Ask`.
    Conflict {
        job: JobId,
        /// The destination that exists (remote wire path or local path, shown to the user).
        path: String,
        reply: oneshot::Sender<ConflictAnswer>,
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
    /// The job ended; `Err` only when it could not run at all or was cancelled.
    Finished {
        job: JobId,
        outcome: Result<JobSummary, String>,
    },
}

/// Runs transfer jobs in the background; cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {}

impl Engine {
    /// Starts an engine for one server; must be called inside a tokio runtime.
    pub fn new(_endpoint: Endpoint) -> (Engine, mpsc::UnboundedReceiver<TransferEvent>) {
        todo!()
    }
    /// Queues a job; it starts at once (several jobs run side by side).
    pub fn submit(&self, _spec: JobSpec) -> JobId {
        todo!()
    }
    /// Cancels a job: its partial files stay hidden, nothing appears under a final name.
    pub fn cancel(&self, _job: JobId) {
        todo!()
    }
}
