//! What the owner asks of the engine: a [`JobSpec`] with its [`ConflictPolicy`], the answer to a
//! conflict, and how an engine spreads its work ([`EngineOptions`]).

use std::collections::HashMap;
use std::path::PathBuf;

use ferry_protocol::Entry;

use super::endpoint::Endpoint;
use super::session::Session;

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
    /// Bytes per second all of this engine's jobs together may receive, and may send; 0 for
    /// no limit.
    pub limit_rate: u64,
    /// Connections one big file is fetched over at once, in ranges; 1 turns ranges off.
    pub streams: usize,
    /// The size from which a file goes in ranges.
    pub streams_from: u64,
}

/// Streams for one big file unless told otherwise: what a per-flow cap needs to be felt less,
/// and no more connections than a job's workers use anyway.
pub const DEFAULT_STREAMS: usize = 4;
/// Files from 64 MiB go in ranges: below that, the connections and the final hash cost more
/// than a capped flow loses.
pub const DEFAULT_STREAMS_FROM: u64 = 64 * 1024 * 1024;

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            workers: 4,
            window: 64,
            allow_unsafe_names: false,
            limit_rate: 0,
            streams: DEFAULT_STREAMS,
            streams_from: DEFAULT_STREAMS_FROM,
        }
    }
}

/// What the owner already asked on its own [`Session`] before submitting a job (the CLI's
/// look at its locations): the job goes on with that session and takes these answers instead
/// of connecting and asking again, which would cost round trips one after another before any
/// data moves.
#[derive(Debug)]
pub struct Groundwork {
    pub session: Session,
    /// `stat`s of remote paths as they were just now: `None` for a path that does not exist.
    /// The job asks about any other path itself.
    pub stats: HashMap<String, Option<Entry>>,
}

/// Identifies a job for its whole life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

/// What to do when the destination already exists. Serialized (snake case) in the TUI's
/// transfer queue file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    Overwrite,
    Skip,
    /// Continue the existing destination only when its bytes are the start of the source's;
    /// any other fails as `resume_mismatch` and is left as it was. Downloads continue the local
    /// file and the trailer digest checks the whole (a mismatch puts the file back exactly);
    /// uploads cannot append to a finished remote file, so an identical one is kept as done and
    /// a true prefix (digest of the remote file = digest of our first bytes) is replaced by the
    /// whole. A hidden partial is resumed under every policy.
    Resume,
    /// Keep both: the new one gets a free name (`a (1).txt`).
    Rename,
    /// Fail the file with `already_exists`.
    Fail,
    /// Send [`TransferEvent::Conflict`](super::TransferEvent::Conflict) and wait for the answer.
    Ask,
    /// Replace the destination only when the source is newer (mc's Update, `--update`); an
    /// older or equally old source leaves it, reported as left out (`up_to_date`).
    OverwriteIfNewer,
    /// Replace the destination only when its size differs from the source's.
    OverwriteIfSizeDiffers,
}

/// A file's size and modification time (seconds since the Unix epoch): what a conflict shows
/// of each side and what the per-file policies compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileFacts {
    pub size: u64,
    pub mtime: i64,
}

impl ConflictPolicy {
    /// For a policy decided per file: why the destination `dest` is kept rather than replaced
    /// by `source` (`None`: replace it). A destination whose facts are unknown (not a regular
    /// file) is replaced, as `Overwrite` would. Other policies keep nothing here.
    pub fn keeps(self, source: FileFacts, dest: Option<FileFacts>) -> Option<&'static str> {
        let dest = dest?;
        match self {
            ConflictPolicy::OverwriteIfNewer if dest.mtime > source.mtime => {
                Some("skipped: destination is newer")
            }
            ConflictPolicy::OverwriteIfNewer if dest.mtime == source.mtime => {
                Some("skipped: same modification time")
            }
            ConflictPolicy::OverwriteIfSizeDiffers if dest.size == source.size => {
                Some("skipped: same size")
            }
            _ => None,
        }
    }
}

/// The answer to a [`TransferEvent::Conflict`](super::TransferEvent::Conflict).
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
    /// Each source on the server `from` is copied to exactly the path beside it on `to`: by
    /// the server itself (`copy`, no bytes through this process) when both are the same
    /// server, else streamed from a `get` into a `put` through a bounded buffer in memory,
    /// never the disk, the destination's digest checked against the source's.
    Relay {
        /// Boxed: two endpoints would make every spec four times its size.
        from: Box<Endpoint>,
        to: Box<Endpoint>,
        items: Vec<(String, String)>,
        policy: ConflictPolicy,
        remove_source: bool,
    },
}
