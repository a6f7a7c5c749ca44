//! The scripting commands: `ferry ls|get|put|copy|mkdir|rm|mv|sync`. Each is a thin layer over the
//! engine that decides what the arguments mean (`cp`-like targets) and prints for scripts and
//! people; the clap definitions live in `main.rs`.
//!
//! Every failure becomes one line, `code: path: message`, with the same codes the protocol
//! uses, so scripts can match on them.
//!
//! # Modules
//! - `discover`: `discover`, the servers announced on the local network.
//! - `listing`: `ls`, as a sorted table or one JSON object per line.
//! - `transfer`: `get` and `put`: what the sources and the target mean.
//! - `copy`: `copy`, from one remote location to another (one server or two).
//! - `watch`: one job run to its end, with an indicatif bar on a terminal.
//! - `options`: what the transfer flags mean.
//! - `locations`: all locations on one server; home-relative ssh paths resolved; a wire
//!   path's last name.
//! - `error`: [`CliError`], one line per failure.
//! - `ops`: `mkdir`, `rm`, `mv`.
//! - `sync`: `sync`: the plan printed, or carried out around one transfer job.
//! - `outcome`: what a transfer left out, its `--json` lines and its exit status.
//! - `sftp`: the commands over SFTP when the remote has no `ferry-server`.

mod copy;
mod discover;
mod error;
mod listing;
mod locations;
mod ops;
mod options;
pub mod outcome;
pub mod sftp;
mod sync;
mod transfer;
mod watch;

pub use copy::copy;
pub use discover::discover;
pub use error::CliError;
pub use listing::{format_entry, ls};
pub use locations::resolve_homes;
pub use ops::{mkdir, mv, partials, rm};
pub use options::{TransferOptions, policy_from_flags};
pub use sync::{SyncRun, sync};
pub use transfer::{get, put};
pub use watch::summary_line;
