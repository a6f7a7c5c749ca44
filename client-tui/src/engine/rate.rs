//! Rate limits as the engine's owners see them: [`SharedRate`], one limit several engines
//! share (the TUI's limit for all transfers, whichever server they run on), and
//! [`parse_rate`], how a limit is written (`10M`, `500K`, `1MiB`). The bucket itself is the
//! server crate's (`ferry_server::rate`), so both programs pace bytes by one rule.

use std::sync::Arc;

use ferry_server::rate::TwoWayLimit;

/// A limit on what jobs receive, and on what they send, shared by every engine given it;
/// cheap to clone. Changes reach running jobs within 100 ms.
#[derive(Debug, Clone)]
pub struct SharedRate(pub(super) Arc<TwoWayLimit>);

impl SharedRate {
    /// `bytes_per_second` each way; 0 for no limit.
    pub fn new(bytes_per_second: u64) -> Self {
        Self(Arc::new(TwoWayLimit::new(bytes_per_second)))
    }

    /// Bytes per second each way; 0 for no limit.
    pub fn get(&self) -> u64 {
        self.0.rate()
    }

    /// Changes the limit (0 lifts it).
    pub fn set(&self, bytes_per_second: u64) {
        self.0.set_rate(bytes_per_second);
    }
}

/// A rate as the user writes it: a size per second with an optional unit and an optional
/// `/s`, as `parse-size` reads sizes (10M is 10,000,000 bytes a second, 10MiB 10,485,760);
/// 0 for no limit.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let size = text.strip_suffix("/s").unwrap_or(text);
    parse_size::parse_size(size).map_err(|e| format!("{e} (try 10M, 500K or 1MiB)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_sizes_per_second() {
        assert_eq!(parse_rate("10M"), Ok(10_000_000));
        assert_eq!(parse_rate("4MiB/s"), Ok(4 * 1024 * 1024));
        assert_eq!(parse_rate(" 0 "), Ok(0));
        assert!(parse_rate("fast").is_err());
    }
}
