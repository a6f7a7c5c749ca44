//! `ferry sync`: make one side hold what the other holds, moving only what differs.
//!
//! A sync lists both sides whole (the remote one in one request), compares them into a plan a
//! person can read first, and carries it out around one ordinary transfer job, so what it
//! sends is verified, atomic and resumable like any copy.
//!
//! # Modules, from the top down
//! - `plan`: listing, comparing, settling by digest, and the guard rails: a [`Plan`].
//! - `run`: what happens around the plan's transfer job: directories before it, attributes
//!   and deletions after it.
//! - `compare`: two listed sides into [`Action`]s, with no IO.
//! - `tree`: one side listed: a local walk, or a remote `walk`/`digests`.
//! - `filter`: `--exclude`/`--include` rules in rsync's order.

mod compare;
mod filter;
mod plan;
mod run;
mod tree;

pub use compare::{Action, Compare, SkipReason, Why};
pub use filter::{Filter, PatternError, RuleKind};
pub use plan::{Plan, SyncError, SyncOptions, Totals, action_line, one_remote_side, plan, plan_on};
pub use run::{Finished, Outcome, finish, make_dirs, transfer_job};
pub use tree::Side;
