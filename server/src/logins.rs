//! Budgets for login attempts. A client address that fails logins pays for each failure in
//! time: past a small burst, its attempts are spaced one interval apart until its failures are
//! paid off, and all such addresses together share a server-wide budget (and one password
//! hash at a time, see [`crate::users`]), so guessing is slow from one address and from many,
//! and guesses cannot keep the cores busy hashing. An address with nothing to pay off is not
//! held up at all, so a right login from elsewhere stays fast during a flood.
//!
//! Each budget is a "generic cell rate": the time at which it is paid off, pushed one
//! interval later by each charge; an attempt may run once that time is at most a burst of
//! intervals away.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::Config;

/// Failures an address may make at once before its attempts are spaced out.
const ADDRESS_BURST: u32 = 5;
/// Attempts that addresses with failures may make at once, all together, before theirs are
/// spaced out.
const SERVER_BURST: u32 = 10;
/// Addresses with failures to pay off that are remembered; past this many, an unknown address
/// is treated as one that has failed (the server-wide budget applies), so a flood from very
/// many addresses costs bounded memory and gains nothing.
const MAX_TRACKED: usize = 65_536;

/// The login budgets of one server.
#[derive(Debug)]
pub(crate) struct Logins {
    /// When each address's failures are paid off; only addresses still paying are kept.
    addresses: Mutex<HashMap<IpAddr, Instant>>,
    /// When the failures of all such addresses together are paid off.
    server: Mutex<Instant>,
    address_interval: Duration,
    server_interval: Duration,
}

/// One login attempt's place in the budgets: taken before the credentials are checked, settled
/// after. One dropped unsettled (its connection closed while it waited) gives its charge back.
#[derive(Debug)]
pub(crate) struct Attempt<'a> {
    logins: &'a Logins,
    ip: IpAddr,
    /// When the credentials may be checked.
    pub start: Instant,
    /// Whether the address had failures to pay off: the attempt was charged up front, and its
    /// password hash waits for the one reserved for such attempts.
    pub suspect: bool,
    /// Whether the address's own budget was charged up front (not when it could not be
    /// remembered).
    charged_address: bool,
    settled: bool,
}

impl Logins {
    pub fn new(config: &Config) -> Self {
        Self {
            addresses: Mutex::default(),
            server: Mutex::new(Instant::now()),
            address_interval: config.address_login_interval,
            server_interval: config.server_login_interval,
        }
    }

    /// Books an attempt from `ip` arriving `now`.
    pub fn book(&self, ip: IpAddr, now: Instant) -> Attempt<'_> {
        let mut attempt = Attempt {
            logins: self,
            ip,
            start: now,
            suspect: false,
            charged_address: false,
            settled: false,
        };
        let mut addresses = self
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let owed = addresses.get(&ip).copied().filter(|&paid| paid > now);
        let untracked = owed.is_none() && addresses.len() >= MAX_TRACKED && {
            addresses.retain(|_, paid| *paid > now);
            addresses.len() >= MAX_TRACKED
        };
        if let Some(paid) = owed {
            attempt.start = ready(paid, self.address_interval, ADDRESS_BURST).max(now);
            addresses.insert(ip, later(paid, self.address_interval));
            attempt.charged_address = true;
        } else if !untracked {
            return attempt;
        }
        drop(addresses);
        attempt.suspect = true;
        let mut server = self.server.lock().unwrap_or_else(PoisonError::into_inner);
        let paid = (*server).max(now);
        attempt.start = attempt
            .start
            .max(ready(paid, self.server_interval, SERVER_BURST));
        *server = later(paid, self.server_interval);
        attempt
    }

    /// Charges a failure of an attempt that was not charged up front.
    fn charge(&self, ip: IpAddr, now: Instant) {
        let mut addresses = self
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if addresses.len() >= MAX_TRACKED && !addresses.contains_key(&ip) {
            addresses.retain(|_, paid| *paid > now);
        }
        if addresses.len() < MAX_TRACKED || addresses.contains_key(&ip) {
            let paid = addresses.get(&ip).copied().unwrap_or(now).max(now);
            addresses.insert(ip, later(paid, self.address_interval));
        }
        drop(addresses);
        let mut server = self.server.lock().unwrap_or_else(PoisonError::into_inner);
        *server = later((*server).max(now), self.server_interval);
    }

    /// Gives back what an attempt was charged up front.
    fn refund(&self, ip: IpAddr, address: bool) {
        if address {
            let mut addresses = self
                .addresses
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(paid) = addresses.get_mut(&ip) {
                *paid = paid.checked_sub(self.address_interval).unwrap_or(*paid);
            }
        }
        let mut server = self.server.lock().unwrap_or_else(PoisonError::into_inner);
        *server = server.checked_sub(self.server_interval).unwrap_or(*server);
    }
}

impl Attempt<'_> {
    /// Records the attempt's outcome: a failure is paid for, a success costs nothing.
    pub fn settle(self, succeeded: bool) {
        self.settle_at(succeeded, Instant::now());
    }

    fn settle_at(mut self, succeeded: bool, now: Instant) {
        self.settled = true;
        match (succeeded, self.suspect) {
            (true, true) => self.logins.refund(self.ip, self.charged_address),
            (false, false) => self.logins.charge(self.ip, now),
            // Charged up front, or never charged: nothing changes.
            (false, true) | (true, false) => {}
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled && self.suspect {
            self.logins.refund(self.ip, self.charged_address);
        }
    }
}

/// When a budget paid off at `paid` lets an attempt run: `burst` intervals before.
fn ready(paid: Instant, interval: Duration, burst: u32) -> Instant {
    let window = interval.saturating_mul(burst.saturating_sub(1));
    paid.checked_sub(window).unwrap_or(paid)
}

/// `at + interval`, saturating: a configured interval of years must not overflow the clock.
fn later(at: Instant, interval: Duration) -> Instant {
    at.checked_add(interval)
        .unwrap_or_else(|| at + Duration::from_secs(100 * 365 * 24 * 3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logins() -> Logins {
        let mut config = Config::new("/");
        config.address_login_interval = Duration::from_secs(2);
        config.server_login_interval = Duration::from_millis(250);
        Logins::new(&config)
    }

    #[test]
    fn a_clean_address_is_never_held_up_and_a_failing_one_is_spaced_out() {
        let logins = logins();
        let now = Instant::now();
        let guesser: IpAddr = [127, 0, 0, 2].into();
        let user: IpAddr = [127, 0, 0, 3].into();
        for _ in 0..ADDRESS_BURST {
            let attempt = logins.book(guesser, now);
            assert_eq!(attempt.start, now);
            attempt.settle_at(false, now);
        }
        // The burst is spent: the next attempts wait one interval more each.
        let next = logins.book(guesser, now);
        assert!(next.suspect);
        assert_eq!(next.start, now + Duration::from_secs(2));
        let after = logins.book(guesser, now);
        assert_eq!(after.start, now + Duration::from_secs(4));
        // An address without failures goes straight in, whatever the others owe.
        let clean = logins.book(user, now);
        assert!(!clean.suspect);
        assert_eq!(clean.start, now);
        clean.settle_at(true, now);
        // A waiting attempt given up gives its place back.
        drop(after);
        drop(next);
        let again = logins.book(guesser, now);
        assert_eq!(again.start, now + Duration::from_secs(2));
    }

    #[test]
    fn many_failing_addresses_share_one_server_budget() {
        let logins = logins();
        let now = Instant::now();
        let mut waiting = Vec::new();
        for last in 2..30u8 {
            let ip: IpAddr = [127, 0, 0, last].into();
            logins.book(ip, now).settle_at(false, now);
            waiting.push(logins.book(ip, now));
        }
        // 28 failures, then 28 attempts waiting: each address is within its own burst, but
        // together they are 250 ms apart beyond the server's burst.
        assert!(waiting.iter().all(|attempt| attempt.suspect));
        let last = waiting.iter().map(|attempt| attempt.start).max().unwrap();
        assert!(
            last >= now + Duration::from_millis(250) * 40,
            "{:?}",
            last - now
        );
    }
}
