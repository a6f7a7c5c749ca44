//! Admission: the connection slots every connection holds for its whole life. At most
//! `max_connections` in all, `max_per_address` from one client address and
//! `max_unauthenticated` not logged in yet; at a cap, a connection not logged in gives way to
//! the newcomer. Its own module because both sides use it: the listener admits, and a
//! connection's login (`ops::hello`) marks its slot logged in and learns why it was closed.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use ferry_protocol::{ErrorCode, encode_err};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::Config;

/// Who holds the connection slots: at most `max_total` connections, `max_per_address` from
/// one client address, and `max_unauthenticated` not logged in yet. When a cap is reached, a
/// connection not logged in is closed to make room (the oldest of the address with the most of
/// them; of the newcomer's own address, for the address cap), so connections that never log in
/// cannot keep out one that will; only logged-in connections ever make a newcomer `busy`.
#[derive(Debug)]
pub(crate) struct Slots {
    state: Mutex<SlotState>,
    max_total: usize,
    max_per_address: usize,
    max_unauthenticated: usize,
    login_timeout: Duration,
}

#[derive(Debug, Default)]
struct SlotState {
    /// Connections holding a slot; an evicted one stops counting at once, while it closes.
    total: usize,
    per_address: HashMap<IpAddr, usize>,
    /// Connections not logged in yet, oldest first (ids only grow), each with what closes it.
    waiting: BTreeMap<u64, Waiting>,
    next_id: u64,
}

#[derive(Debug)]
struct Waiting {
    ip: IpAddr,
    close: CancellationToken,
    /// Set to why it was closed, just before `close` is cancelled.
    why: Arc<OnceLock<Closed>>,
}

/// Why a connection not logged in was closed by the listener, not by a shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    /// To make room for a newcomer at a connection cap.
    ForRoom,
    /// It did not log in within the login timeout.
    LoginTimeout,
}

/// One connection's slot: not logged in until [`Slot::log_in`]; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<Slots>,
    id: u64,
    ip: IpAddr,
    logged_in: bool,
    close: CancellationToken,
    why: Arc<OnceLock<Closed>>,
}

impl Slots {
    pub fn new(config: &Config) -> Self {
        Self {
            state: Mutex::default(),
            max_total: config.max_connections,
            max_per_address: config.max_per_address,
            max_unauthenticated: config.max_unauthenticated.max(1),
            login_timeout: config.login_timeout,
        }
    }

    /// A slot for a new connection from `ip` that `close` closes, making room by closing a
    /// connection not logged in when a cap is reached; why not, when only logged-in
    /// connections hold the slots.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        close: CancellationToken,
    ) -> Result<Slot, &'static str> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.per_address.get(&ip).copied().unwrap_or(0) >= self.max_per_address {
            let oldest = state
                .waiting
                .iter()
                .find(|(_, waiting)| waiting.ip == ip)
                .map(|(&id, _)| id);
            let Some(oldest) = oldest else {
                warn!(%ip, max = self.max_per_address, "too many connections from one address; refusing");
                return Err("too many connections from your address; try again later");
            };
            debug!(%ip, "address at its connection limit: closing its oldest connection not logged in");
            state.evict(oldest, Closed::ForRoom);
        }
        if state.total >= self.max_total || state.waiting.len() >= self.max_unauthenticated {
            let Some(victim) = state.most_waiting() else {
                warn!(%ip, max = self.max_total, "too many connections; refusing");
                return Err("too many connections; try again later");
            };
            debug!(%ip, "connection slots full: closing a connection not logged in");
            state.evict(victim, Closed::ForRoom);
        }
        let id = state.next_id;
        state.next_id += 1;
        state.total += 1;
        *state.per_address.entry(ip).or_insert(0) += 1;
        let why = Arc::new(OnceLock::new());
        state.waiting.insert(
            id,
            Waiting {
                ip,
                close: close.clone(),
                why: Arc::clone(&why),
            },
        );
        Ok(Slot {
            slots: Arc::clone(self),
            id,
            ip,
            logged_in: false,
            close,
            why,
        })
    }

    /// Closes connection `id` if it has not logged in yet; whether it had not.
    fn expire(&self, id: u64) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.waiting.contains_key(&id) {
            state.evict(id, Closed::LoginTimeout);
            return true;
        }
        false
    }
}

impl SlotState {
    /// The connection not logged in that gives way to a newcomer: the oldest of the address
    /// that has the most of them. So a client that opens one connection and logs in at once is
    /// not closed by a stream of others reconnecting from a few addresses; it would take as
    /// many addresses as there are places for connections not logged in.
    fn most_waiting(&self) -> Option<u64> {
        let mut by_address: HashMap<IpAddr, (usize, u64)> = HashMap::new();
        for (&id, waiting) in &self.waiting {
            // Ids ascend, so the first seen of an address is its oldest.
            by_address.entry(waiting.ip).or_insert((0, id)).0 += 1;
        }
        by_address
            .into_values()
            .max_by(|(count_a, id_a), (count_b, id_b)| count_a.cmp(count_b).then(id_b.cmp(id_a)))
            .map(|(_, id)| id)
    }

    /// Closes a connection not logged in and takes its place back at once.
    fn evict(&mut self, id: u64, why: Closed) {
        if let Some(waiting) = self.waiting.remove(&id) {
            let _ = waiting.why.set(why);
            waiting.close.cancel();
            self.release(waiting.ip);
        }
    }

    fn release(&mut self, ip: IpAddr) {
        self.total = self.total.saturating_sub(1);
        if let Some(count) = self.per_address.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.per_address.remove(&ip);
            }
        }
    }
}

impl Slot {
    /// The connection has logged in: it is no longer closed to make room or at the login
    /// deadline. False when it was closed already (the login came too late).
    pub fn log_in(&mut self) -> bool {
        if self.logged_in {
            return true;
        }
        let mut state = self
            .slots
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.logged_in = state.waiting.remove(&self.id).is_some();
        self.logged_in
    }

    /// Closes this connection if it has not logged in within the login timeout, then never
    /// resolves (the connection's own future decides when its task ends).
    pub fn login_deadline(&self) -> impl Future<Output = ()> + Send + 'static {
        let slots = Arc::clone(&self.slots);
        let id = self.id;
        async move {
            tokio::time::sleep(slots.login_timeout).await;
            if slots.expire(id) {
                debug!("no login within the login timeout; closing");
            }
            std::future::pending::<()>().await;
        }
    }

    /// The client's address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The line to send a connection the listener closed before it logged in: `busy` when it
    /// made room for another, `timeout` at the login deadline; `None` when it was not closed
    /// that way (a shutdown closes without a word).
    pub fn closed_line(&self) -> Option<Vec<u8>> {
        let timeout = self.slots.login_timeout;
        match self.why.get()? {
            Closed::ForRoom => Some(encode_err(
                ErrorCode::Busy,
                "closed to make room for a client that logs in: the server is full; log in \
                 at once or try again later",
            )),
            Closed::LoginTimeout => Some(encode_err(
                ErrorCode::Timeout,
                &format!("no login within {}", humantime::format_duration(timeout)),
            )),
        }
    }

    /// Resolves when the connection is being closed (evicted, past its login deadline, or
    /// the server shutting down), so long waits in a request can stop.
    pub async fn closing(&self) {
        self.close.cancelled().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self
            .slots
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // An evicted connection gave its place back already.
        if self.logged_in || state.waiting.remove(&self.id).is_some() {
            state.release(self.ip);
        }
    }
}
