//! The transfer engine: the only part of the client that touches the network.
//!
//! One engine serves both faces. A [`Session`] is one connection for browsing and small
//! operations, awaited by its caller. An [`Engine`] runs transfer jobs in the background: each job
//! plans its files, then several workers, each on its own connection with many requests in
//! flight, move and verify them, and the owner hears about it through [`TransferEvent`]s.
//!
//! # Modules, from the top down (each imports only what is below it)
//! - `front`: [`Engine`] and [`Events`], what the owner holds: submit, cancel, hear.
//! - `browse`: the browsing worker: requests in, events out, over a lazily opened [`Session`].
//! - `find`: find file: a name pattern searched below a directory on the server (its `walk`
//!   on a connection of its own) or on the local disk, matches reported as they are found.
//! - `discover`: servers announced on the local network (DNS-SD over multicast DNS), for
//!   `ferry discover` and F9; their fingerprints are hints the handshake must confirm.
//! - `bundled`: the `ferry-server` run in-process on loopback when the TUI opens no server.
//! - `sync/`: `ferry sync`'s plan (both sides listed and compared, the guard rails) and what
//!   runs around its one transfer job (directories, attributes, deletions).
//! - `scheduler`: one job's run: screening, the plan beside rounds of workers, each worker's
//!   pipelined connection, the move's end. It drives the directions only through `direction`.
//! - `direction`: the small interface to the two directions: plan, take and send a file's
//!   request (`Outgoing`), finish its reply (`Incoming`), end a move.
//! - `upload/`, `download/`: one file each way, each in three parts: `request` (conflict
//!   policy, resume check, the request), `reply` (verification, rename or removal), and the
//!   local side (`upload/source`: reading and read-ahead; `download/disk`: writing).
//! - `plan`: what a job will move (walks, directories, existing destinations) and move cleanup.
//! - `same_file`: refusing a copy onto itself when the server shares this machine.
//! - `space`: whether a download fits on its local filesystem before it starts.
//! - `job`: the state one job's parts share: its queue of files, counters, events, questions,
//!   and the destinations moved aside.
//! - `session`: [`Session`], request/response on one connection.
//! - `view`: [`Session`]'s verified exchanges for a viewer and an editor: a ranged read, a
//!   whole-file fetch to a local file, an upload back that first checks the remote version.
//! - `transport`: a plain, TLS or ssh stream speaking the frame protocol, split into reader
//!   and writer halves; it calls `tls` for the handshake and `ssh` to start the child.
//! - `ssh`: the ssh child that carries the protocol to a remote `ferry-server --stdio`, its
//!   shared master connection, its error words, and its questions sent to the TUI (askpass).
//! - `tls`: `ferrys://` trust decisions (pin, known-hosts, system roots, first use), the
//!   handshake, and the refusal to send credentials in clear text.
//! - `known_hosts`: certificate fingerprints and the file that pins them on first use.
//! - `rate`: [`SharedRate`], a rate limit several engines share, and how a rate is written;
//!   the token bucket under it is `ferry_server::rate`'s.
//! - `progress`: pure progress arithmetic (speed, ETA, throttling), no clock of its own.
//! - `local`: the local side: walking sources, hidden partial files, free names, prefix hashes.
//! - `endpoint`, `error`, `spec`, `event`: the words the engine and its owner share:
//!   [`Endpoint`], [`EngineError`], [`JobSpec`] and its policies, [`TransferEvent`]s.

pub mod browse;
pub mod bundled;
mod direction;
pub mod discover;
mod download;
mod endpoint;
mod error;
mod event;
pub mod find;
mod front;
mod job;
pub mod known_hosts;
mod local;
mod plan;
pub mod progress;
mod rate;
mod relay;
mod same_file;
mod scheduler;
mod session;
pub mod sftp;
mod space;
mod spec;
pub mod ssh;
pub mod sync;
pub mod tls;
mod transport;
mod upload;
pub mod view;

pub use endpoint::Endpoint;
pub(crate) use error::without_os_error;
pub use error::{EngineError, RESUME_MISMATCH};
pub use event::{JobProgress, JobSummary, LeftOutReason, TransferEvent};
pub use front::{Engine, Events};
pub use rate::{SharedRate, parse_rate};
pub use session::{ListStream, MAX_LISTED, MAX_WALKED, Session, StreamItem};
pub use spec::{
    ConflictAnswer, ConflictPolicy, DEFAULT_STREAMS, DEFAULT_STREAMS_FROM, EngineOptions,
    FileFacts, Groundwork, JobId, JobSpec,
};
pub use transport::check_trust;
