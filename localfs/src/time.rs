//! File times as the protocol carries them: whole seconds since the Unix epoch, negative
//! before it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, negative before it (whole seconds toward the epoch), saturating.
pub fn secs_since_epoch(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// A file's modification time in protocol seconds; `0` where the platform has none.
pub fn mtime_secs(meta: &std::fs::Metadata) -> i64 {
    meta.modified().map_or(0, secs_since_epoch)
}

/// The `SystemTime` of protocol seconds; `None` where the platform cannot represent it.
pub fn system_time(secs: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtimes_round_trip_through_seconds() {
        for secs in [0i64, 1, 1_700_000_000, -1, -86_400, i64::MAX] {
            let time = system_time(secs).unwrap();
            assert_eq!(secs_since_epoch(time), secs);
        }
    }

    #[test]
    fn fractions_are_dropped_toward_the_epoch() {
        let after = UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(secs_since_epoch(after), 1);
        let before = UNIX_EPOCH - Duration::from_millis(1_500);
        assert_eq!(secs_since_epoch(before), -1);
    }

    #[test]
    fn a_files_mtime_is_read_in_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = std::fs::File::create(&path).unwrap();
        file.set_modified(system_time(1_000_000_000).unwrap())
            .unwrap();
        assert_eq!(
            mtime_secs(&std::fs::metadata(&path).unwrap()),
            1_000_000_000
        );
    }
}
