//! A connection's budget for expensive requests (`summary`, `walk`, a `get` that hashes a
//! prefix): the arithmetic of a token bucket, kept by each connection and charged by the ops.

use std::time::Duration;

use tokio::time::Instant;

/// A connection's budget for expensive requests, in work units (see [`crate::ops::Meter`]): a
/// bucket of `burst` units refilled at `rate` a second. A request is charged what it did once
/// answered; the next one waits while the bucket is below zero, so a client can spend a burst
/// at once and then only the rate, however many requests it pipelines.
#[derive(Debug)]
pub(crate) struct WorkBudget {
    credit: f64,
    burst: f64,
    rate: f64,
    at: Instant,
}

impl WorkBudget {
    #[allow(clippy::cast_precision_loss)] // Units are counts far below 2^52.
    pub fn new(burst: u64, rate: u64) -> Self {
        Self {
            credit: burst as f64,
            burst: burst as f64,
            rate: (rate as f64).max(1.0),
            at: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let earned = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.credit = (self.credit + earned).min(self.burst);
        self.at = now;
    }

    /// How long until the bucket is no longer below zero.
    pub fn wait(&mut self) -> Duration {
        self.refill();
        if self.credit >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.credit / self.rate)
        }
    }

    #[allow(clippy::cast_precision_loss)] // Units are counts far below 2^52.
    pub fn charge(&mut self, units: u64) {
        self.refill();
        self.credit -= units as f64;
    }
}
