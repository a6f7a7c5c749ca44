//! Budgets for login attempts. A client address that fails logins pays for each failure in
//! time: past a small burst, its attempts are spaced one interval apart until its failures are
//! paid off, and all such addresses together share a server-wide budget (and one password
//! hash at a time, see [`crate::users`]), so guessing is slow from one address and from many,
//! and guesses cannot keep the cores busy hashing. An address with nothing to pay off (and
//! fewer than a burst of attempts being checked) is not held up at all, so a right login from
//! elsewhere stays fast during a flood. An attempt from such an address past that burst waits
//! for one of them to be settled, then is booked again: many clients behind one address
//! logging in at once with the right credentials go in as fast as they are checked, while
//! guesses past the burst find their address owing by then.
//!
//! Each budget is a "generic cell rate": the time at which it is paid off, pushed one
//! interval later by each charge; an attempt may run once that time is at most a burst of
//! intervals away.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::Config;

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
    /// The addresses with failures to pay off or attempts being checked.
    addresses: Mutex<HashMap<IpAddr, Record>>,
    /// When the failures of all failing addresses together are paid off.
    server: Mutex<Instant>,
    /// Told whenever an attempt being checked is settled, so an attempt waiting for its
    /// address's burst to have room books again.
    room: Notify,
    address_interval: Duration,
    server_interval: Duration,
}

/// What one client address owes.
#[derive(Debug, Clone, Copy)]
struct Record {
    /// When its failures are paid off.
    paid: Instant,
    /// Its attempts being checked that were not charged up front: at most [`ADDRESS_BURST`],
    /// so the first round of guesses on many connections is not free either.
    checking: u32,
}

/// One login attempt's place in the budgets: taken before the credentials are checked, settled
/// after. One dropped unsettled (its connection closed while it waited) gives its charge back.
#[derive(Debug)]
pub(crate) struct Attempt<'a> {
    logins: &'a Logins,
    ip: IpAddr,
    /// When the credentials may be checked.
    pub start: Instant,
    /// Whether the address owed failures (or had a burst of attempts being checked already):
    /// the attempt was charged up front, and its password hash waits for the one reserved for
    /// such attempts.
    pub suspect: bool,
    /// Whether the address's own budget was charged up front (not when it could not be
    /// remembered).
    charged_address: bool,
    /// Whether it counts among its address's attempts being checked (not charged up front).
    checking: bool,
    settled: bool,
}

impl Logins {
    pub fn new(config: &Config) -> Self {
        Self {
            addresses: Mutex::default(),
            server: Mutex::new(Instant::now()),
            room: Notify::new(),
            address_interval: config.address_login_interval,
            server_interval: config.server_login_interval,
        }
    }

    /// Books an attempt from `ip` arriving `now`: `None` when the address owes nothing but has
    /// a burst of attempts being checked already; then wait for [`Self::room`] and try again.
    /// Charging that attempt up front instead, as a guess, would space a crowd of right logins
    /// from one address an interval apart, past the login deadline.
    pub fn try_book(&self, ip: IpAddr, now: Instant) -> Option<Attempt<'_>> {
        self.book_or_wait(ip, now, true)
    }

    /// Resolves (once enabled, see [`Notify::notified`]) when an attempt being checked was
    /// settled: room for one that [`Self::try_book`] turned away.
    pub fn room(&self) -> &Notify {
        &self.room
    }

    fn book_or_wait(&self, ip: IpAddr, now: Instant, wait: bool) -> Option<Attempt<'_>> {
        let mut attempt = Attempt {
            logins: self,
            ip,
            start: now,
            suspect: false,
            charged_address: false,
            checking: false,
            settled: false,
        };
        let mut addresses = self
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !addresses.contains_key(&ip) && addresses.len() >= MAX_TRACKED {
            addresses.retain(|_, record| record.paid > now || record.checking > 0);
        }
        let room = addresses.len() < MAX_TRACKED;
        match addresses.get_mut(&ip) {
            Some(record) if wait && record.paid <= now && record.checking >= ADDRESS_BURST => {
                return None;
            }
            Some(record) if record.paid > now || record.checking >= ADDRESS_BURST => {
                let paid = record.paid.max(now);
                attempt.start = ready(paid, self.address_interval, ADDRESS_BURST).max(now);
                record.paid = later(paid, self.address_interval);
                attempt.charged_address = true;
            }
            Some(record) => {
                record.checking += 1;
                attempt.checking = true;
                return Some(attempt);
            }
            None if room => {
                addresses.insert(
                    ip,
                    Record {
                        paid: now,
                        checking: 1,
                    },
                );
                attempt.checking = true;
                return Some(attempt);
            }
            // Too many addresses to remember: the server-wide budget alone applies.
            None => {}
        }
        drop(addresses);
        attempt.suspect = true;
        let mut server = self.server.lock().unwrap_or_else(PoisonError::into_inner);
        let paid = (*server).max(now);
        attempt.start = attempt
            .start
            .max(ready(paid, self.server_interval, SERVER_BURST));
        *server = later(paid, self.server_interval);
        Some(attempt)
    }

    /// Ends an attempt that was checked without being charged up front; a failure is charged
    /// now, to its address and to the server.
    fn release(&self, ip: IpAddr, failed: bool, now: Instant) {
        let mut addresses = self
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(record) = addresses.get_mut(&ip) {
            record.checking = record.checking.saturating_sub(1);
            if failed {
                record.paid = later(record.paid.max(now), self.address_interval);
            }
            if record.paid <= now && record.checking == 0 {
                addresses.remove(&ip);
            }
        }
        drop(addresses);
        self.room.notify_waiters();
        if failed {
            let mut server = self.server.lock().unwrap_or_else(PoisonError::into_inner);
            *server = later((*server).max(now), self.server_interval);
        }
    }

    /// Gives back what an attempt was charged up front.
    fn refund(&self, ip: IpAddr, address: bool) {
        if address {
            let mut addresses = self
                .addresses
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(record) = addresses.get_mut(&ip) {
                record.paid = record
                    .paid
                    .checked_sub(self.address_interval)
                    .unwrap_or(record.paid);
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
        if self.checking {
            self.logins.release(self.ip, !succeeded, now);
        } else if succeeded {
            self.logins.refund(self.ip, self.charged_address);
        }
        // A failure charged up front is paid already.
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        if self.checking {
            self.logins.release(self.ip, false, Instant::now());
        } else {
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

    impl Logins {
        /// Books as the server did before attempts waited for room: past the burst, charged.
        fn book(&self, ip: IpAddr, now: Instant) -> Attempt<'_> {
            self.book_or_wait(ip, now, false).expect("booked")
        }
    }

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
        // A burst of attempts being checked at once from a clean address: the ones past it
        // are charged up front.
        let crowd: IpAddr = [127, 0, 0, 4].into();
        let checking: Vec<_> = (0..ADDRESS_BURST)
            .map(|_| logins.book(crowd, now))
            .collect();
        assert!(checking.iter().all(|attempt| !attempt.suspect));
        assert!(logins.book(crowd, now).suspect);
        drop(checking);
        // A waiting attempt given up gives its place back.
        drop(after);
        drop(next);
        let again = logins.book(guesser, now);
        assert_eq!(again.start, now + Duration::from_secs(2));
    }

    #[test]
    fn past_the_burst_a_clean_address_waits_for_room_instead_of_being_charged() {
        let logins = logins();
        let now = Instant::now();
        let crowd: IpAddr = [127, 0, 0, 4].into();
        let mut checking: Vec<_> = (0..ADDRESS_BURST)
            .map(|_| logins.try_book(crowd, now).expect("room"))
            .collect();
        assert!(logins.try_book(crowd, now).is_none());
        // A right login settled: room for the next, which is not held up.
        checking.pop().expect("one").settle_at(true, now);
        let next = logins.try_book(crowd, now).expect("room again");
        assert!(!next.suspect);
        assert_eq!(next.start, now);
        // Failures settled: the address owes, and its next attempt is charged and spaced.
        next.settle_at(false, now);
        for attempt in checking {
            attempt.settle_at(false, now);
        }
        let owed = logins.try_book(crowd, now).expect("booked, charged");
        assert!(owed.suspect);
        assert_eq!(owed.start, now + Duration::from_secs(2));
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
