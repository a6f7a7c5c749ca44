//! The vocabulary between the synchronous [`App`](super::app::App) and the event loop: the
//! [`Effect`]s the app asks for (everything that touches the disk, the network or the engine)
//! and the [`Msg`]s that bring their outcome back. Kept apart from the state so the event loop,
//! the browsing session's task and the app share it without importing each other.

use std::path::PathBuf;

use ferry_protocol::{Entry, PartialEntry};
use tokio::sync::oneshot;

use crate::engine::find::FindEvent;
use crate::engine::known_hosts::Fingerprint;
use crate::engine::{ConflictAnswer, Endpoint, JobSpec, TransferEvent};

use super::config::Recent;
use super::jobs::{JobInfo, JobKey};
pub use super::pane::ListError;
use super::pane::{Location, Side};
use super::rate::RateTarget;
pub use super::viewer::edit::{FileEffect, FileNews};

/// Work for the event loop: everything that touches the disk, the network or the engine.
#[derive(Debug)]
pub enum Effect {
    /// Hand the terminal back to the shell and stop (Ctrl+Z); the loop does it, since it
    /// holds the terminal.
    Suspend,
    List {
        side: Side,
        serial: u64,
        dir: Location,
    },
    Mkdir {
        side: Side,
        path: Location,
    },
    Rename {
        side: Side,
        from: Location,
        to: Location,
    },
    Remove {
        side: Side,
        paths: Vec<Location>,
    },
    /// Set the permission bits of these entries (on the server: its `attrs` request).
    Chmod {
        side: Side,
        paths: Vec<Location>,
        mode: u32,
    },
    /// Start find file: search `dir` for `pattern`, reporting as search `serial`; a search
    /// still running stops.
    Find {
        side: Side,
        dir: Location,
        pattern: String,
        serial: u64,
    },
    /// Stop the running search, if any.
    StopFind,
    /// Browse the local network for servers (F9's list), or stop browsing; starting twice
    /// keeps the one browse.
    Discover(bool),
    /// Compute the sync dialog's plan, reporting it as request `serial`; a plan still being
    /// computed stops.
    SyncPlan {
        serial: u64,
        src: crate::engine::sync::Side,
        dst: crate::engine::sync::Side,
        options: crate::engine::sync::SyncOptions,
    },
    /// Stop computing the sync dialog's plan, if it still is.
    StopSyncPlan,
    /// Carry out a sync's plan as one job.
    SubmitSync {
        plan: Box<crate::engine::sync::Plan>,
        info: JobInfo,
    },
    Submit {
        spec: JobSpec,
        info: JobInfo,
    },
    Cancel(JobKey),
    /// Set a rate limit (0 lifts it).
    SetRateLimit {
        target: RateTarget,
        bytes_per_second: u64,
    },
    /// The answer to ssh's question `id` (`None`: declined).
    AnswerSsh {
        id: u64,
        answer: Option<String>,
    },
    Answer {
        reply: oneshot::Sender<ConflictAnswer>,
        answer: ConflictAnswer,
    },
    /// Replace the server connection (and its engine) with a new one.
    Connect {
        conn: u64,
        endpoint: Endpoint,
    },
    /// Open a connection for one pane, beside the main one (which keeps its browsing task),
    /// and close the browsing of `replaces`, the pane's previous one.
    ConnectPane {
        conn: u64,
        endpoint: Endpoint,
        replaces: Option<u64>,
    },
    /// The user trusts this certificate of connection `conn`'s server at `addr`: record it in
    /// known-hosts and reconnect with it pinned.
    TrustCertificate {
        conn: u64,
        addr: String,
        fingerprint: Fingerprint,
    },
    SaveRecent(Vec<Recent>),
    /// Write the transfer queue file (`queue::save`).
    SaveQueue {
        path: std::path::PathBuf,
        jobs: Vec<super::queue::SavedJob>,
    },
    /// Check the current connection now (a job's connection broke), reporting a loss.
    Probe,
    /// List the caller's partial uploads in a remote directory.
    ListPartials {
        dir: String,
    },
    /// Delete the caller's partial uploads of these remote files; with `dir`, list that
    /// directory's partials again afterwards (for the dialog).
    DiscardPartials {
        dir: Option<String>,
        paths: Vec<String>,
    },
    /// F3, F4, Enter on a file, Ctrl+O: reads for the viewer, programs, fetches and uploads.
    File(FileEffect),
    /// Writes `fingerprint` into the bookmark `name` of the config file at `path` (over the
    /// `replacing` one, a rotated certificate's).
    PinBookmark {
        path: PathBuf,
        name: String,
        fingerprint: String,
        replacing: Option<crate::engine::known_hosts::Fingerprint>,
    },
}

/// A connection's news, from the engine's browsing worker.
pub use crate::engine::browse::LinkEvent as ConnEvent;

/// What the event loop reports back.
#[derive(Debug)]
pub enum Msg {
    Listed {
        side: Side,
        serial: u64,
        dir: Location,
        result: Result<Vec<Entry>, ListError>,
    },
    /// A mkdir, rename or remove finished; `select` is the name to put the cursor on.
    OpDone {
        side: Side,
        result: Result<Option<String>, String>,
    },
    Connection {
        conn: u64,
        event: ConnEvent,
    },
    Transfer {
        conn: u64,
        event: TransferEvent,
    },
    /// A job the event loop submitted for [`Effect::Submit`].
    Submitted {
        key: JobKey,
        info: JobInfo,
    },
    /// A server found on (or gone from) the local network while F9 browses.
    Discovered(crate::engine::discover::DiscoverEvent),
    /// How many entries the sync dialog's plan `serial` has listed so far.
    SyncSeen {
        serial: u64,
        seen: u64,
    },
    /// The sync dialog's plan `serial`, or why there is none.
    SyncPlanned {
        serial: u64,
        result: Result<Box<crate::engine::sync::Plan>, String>,
    },
    /// News of find file's search `serial`.
    Found {
        serial: u64,
        event: FindEvent,
    },
    /// Partial uploads of a remote directory (with whether the server had more), after a
    /// [`Effect::ListPartials`] or a [`Effect::DiscardPartials`]; `note` says what a deletion
    /// did.
    Partials {
        dir: Option<String>,
        result: Result<(Vec<PartialEntry>, bool), String>,
        note: Option<String>,
    },
    /// What became of a [`Effect::File`].
    File(FileNews),
    /// ssh asks something (a password, a passphrase, a new host key) through ferry.
    SshPrompt(crate::engine::ssh::SshPrompt),
}
