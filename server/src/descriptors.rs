//! The process's budget of open file descriptors for work that holds many at once: a `walk`
//! or `summary` keeps three per directory level it is inside, a recursive `remove` and the
//! partial sweeper a bounded stack of them.
//!
//! The budget is the open file limit (`RLIMIT_NOFILE`, measured once, after `main` has raised
//! it) less a reserve for everything else: a fixed part for the listener, the runtime, logs,
//! users' roots and refusals in flight, and a part per connection the server may hold (its
//! socket and the few descriptors a simple request opens). A tree walk that cannot have its
//! next level's descriptors stops with `busy`, so however many walks stall, a `get`, `put` or
//! `list` always finds its descriptors, and no request ever fails with `io` for lack of them.
//! The limit is per process, so the budget is too: servers embedded in one process share it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferry_protocol::ErrorCode;

use crate::error::OpError;

/// Descriptors reserved whatever the configuration: listener, runtime, standard streams, log
/// files, users' roots, the 64 refusals that may be in flight, and some slack.
pub(crate) const BASE_RESERVE: usize = 128;
/// Descriptors reserved for each connection the server may hold: its socket and what one
/// simple request opens at most (a `get`'s file, a `put`'s partial and parent, a `list`'s
/// directory and its reader).
pub(crate) const PER_CONNECTION: usize = 6;
/// The budget when the limit is too low for the reserve: a share of it, with a warning.
const LOW_LIMIT_SHARE: usize = 4;
/// The connection count assumed when the budget is first asked for before a server started.
const DEFAULT_CONNECTIONS: usize = 256;

/// Descriptors that tree walks may hold open, process-wide.
#[derive(Debug)]
pub(crate) struct Descriptors {
    free: AtomicUsize,
}

/// Descriptors taken from the budget, given back when dropped.
#[derive(Debug)]
pub(crate) struct Held {
    count: usize,
}

static BUDGET: OnceLock<Descriptors> = OnceLock::new();

/// The budget, measured and logged on first use with the configured connection limit; the
/// server calls this as it starts.
pub(crate) fn init(max_connections: usize) -> &'static Descriptors {
    BUDGET.get_or_init(|| Descriptors::measure(max_connections))
}

/// The budget (measured with the default connection limit if no server started yet).
pub(crate) fn budget() -> &'static Descriptors {
    init(DEFAULT_CONNECTIONS)
}

impl Descriptors {
    fn measure(max_connections: usize) -> Self {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .map_or(usize::MAX, |limit| {
                usize::try_from(limit).unwrap_or(usize::MAX)
            });
        let reserve = max_connections
            .saturating_mul(PER_CONNECTION)
            .saturating_add(BASE_RESERVE);
        let free = match limit.checked_sub(reserve) {
            Some(free) if free >= limit / LOW_LIMIT_SHARE => free,
            _ => {
                tracing::warn!(
                    limit,
                    reserve,
                    "the open file limit is low for the connection limit: raise `ulimit -n` or \
                     lower --max-connections; tree walks get a quarter of it"
                );
                limit / LOW_LIMIT_SHARE
            }
        };
        tracing::info!(
            limit,
            reserve,
            walks = free,
            "open file limit: tree walks share {free} descriptors, the rest is reserved"
        );
        Self {
            free: AtomicUsize::new(free),
        }
    }

    /// `count` descriptors, or `busy` when the budget has not that many left.
    pub fn take(&'static self, count: usize) -> Result<Held, OpError> {
        self.free
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |free| {
                free.checked_sub(count)
            })
            .map(|_| Held { count })
            .map_err(|_| {
                OpError::new(
                    ErrorCode::Busy,
                    "the server has too many directories open; try again later",
                )
            })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(budget) = BUDGET.get() {
            budget.free.fetch_add(self.count, Ordering::AcqRel);
        }
    }
}
