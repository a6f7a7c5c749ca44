//! Pure progress arithmetic for one job: counters, a smoothed speed, the ETA and the throttle
//! that keeps events to about 20 a second. It never reads a clock: callers pass `now`, which is
//! what makes it testable to the microsecond.

use std::time::{Duration, Instant};

use super::event::JobProgress;
use super::spec::JobId;

/// The shortest gap between two progress events of one job (20 a second).
pub const EMIT_INTERVAL: Duration = Duration::from_millis(50);
/// How quickly the speed follows changes: after this long, an old rate weighs about 37 %.
const SPEED_TIME_CONSTANT: Duration = Duration::from_secs(2);
/// Samples closer together than this are merged, so a burst of tiny files does not read as an
/// absurd instantaneous rate.
const MIN_SAMPLE: Duration = Duration::from_millis(20);

/// The running progress of one job.
#[derive(Debug, Clone)]
pub struct ProgressState {
    job: JobId,
    files_total: u64,
    bytes_total: u64,
    files_done: u64,
    /// Everything in place, moved or not (resumed prefixes and skipped files count).
    bytes_done: u64,
    /// Only bytes that crossed the wire: what the speed is made of.
    bytes_moved: u64,
    current: Option<String>,
    speed: Option<f64>,
    last_sample: Option<(Instant, u64)>,
    last_emit: Option<Instant>,
    dirty: bool,
    /// The totals are known. Files of a download move while it is still being planned: their
    /// events go out marked `scanning`, so nobody draws a bar to no scale.
    planned: bool,
    /// Bytes by which files changed size since the walk, not yet in `bytes_total`.
    size_drift: i128,
    /// A question waits for the user since then: the speed stands still rather than decay
    /// towards zero, and no ETA is given (a minute spent reading a dialog once read as
    /// `2.0 MiB/s ETA 11:30` for a job that ended seconds after the answer).
    paused_since: Option<Instant>,
    /// Questions open at once (one per job today; counted so that nesting stays right).
    pauses: u32,
}

impl ProgressState {
    /// An empty state; until [`set_totals`](Self::set_totals) its events are marked `scanning`.
    pub fn new(job: JobId) -> Self {
        Self {
            job,
            files_total: 0,
            bytes_total: 0,
            files_done: 0,
            bytes_done: 0,
            bytes_moved: 0,
            current: None,
            speed: None,
            last_sample: None,
            last_emit: None,
            // Nothing has happened yet: the first event waits for the first change.
            dirty: false,
            planned: false,
            size_drift: 0,
            paused_since: None,
            pauses: 0,
        }
    }

    /// A question to the user is open from `now`: time until [`unpause`](Self::unpause) does
    /// not count in the speed.
    pub fn pause(&mut self, now: Instant) {
        if self.pauses == 0 {
            self.update_speed(now);
            self.paused_since = Some(now);
            self.dirty = true;
        }
        self.pauses += 1;
    }

    /// The question was answered: the speed is measured again from `now`. Bytes other workers
    /// moved meanwhile count as done but not into the speed, so they cannot read as a spike.
    pub fn unpause(&mut self, now: Instant) {
        self.pauses = self.pauses.saturating_sub(1);
        if self.pauses == 0 && self.paused_since.take().is_some() {
            self.last_sample = Some((now, self.bytes_moved));
            self.dirty = true;
        }
    }

    /// The job's size, once planned.
    pub fn set_totals(&mut self, files: u64, bytes: u64) {
        self.files_total = files;
        self.bytes_total = bytes;
        self.planned = true;
        self.dirty = true;
        self.apply_drift();
    }

    /// Takes in a file whose size changed on the server between the walk and its reply, from
    /// the `planned` to the `actual` bytes, so bytes done never run past the total. Before the
    /// plan the change waits for [`set_totals`](Self::set_totals), whose walk counted the old
    /// size.
    pub fn resize_file(&mut self, planned: u64, actual: u64) {
        self.size_drift += i128::from(actual) - i128::from(planned);
        if self.planned {
            self.apply_drift();
        }
    }

    fn apply_drift(&mut self) {
        if self.size_drift == 0 {
            return;
        }
        let total = (i128::from(self.bytes_total) + self.size_drift).max(0);
        self.bytes_total = u64::try_from(total).unwrap_or(u64::MAX);
        self.size_drift = 0;
        self.dirty = true;
    }

    /// Names the file whose bytes have started to arrive.
    pub fn start_file(&mut self, name: &str) {
        self.current = Some(name.to_owned());
        self.dirty = true;
    }

    /// Bytes that crossed the wire.
    pub fn add_moved(&mut self, bytes: u64) {
        self.bytes_moved += bytes;
        self.bytes_done += bytes;
        self.dirty = true;
    }

    /// Bytes that count as done without moving (a verified resumed prefix, a skipped file).
    pub fn add_present(&mut self, bytes: u64) {
        self.bytes_done += bytes;
        self.dirty = true;
    }

    /// Takes back bytes counted for a file that has to start again.
    pub fn take_back(&mut self, bytes: u64) {
        self.bytes_done = self.bytes_done.saturating_sub(bytes);
        self.dirty = true;
    }

    /// One more file finished (done, skipped or failed: the bar must reach its end either way).
    pub fn file_finished(&mut self) {
        self.files_done += 1;
        self.dirty = true;
    }

    /// Bytes that crossed the wire so far, for the job's summary.
    pub fn bytes_moved(&self) -> u64 {
        self.bytes_moved
    }

    fn update_speed(&mut self, now: Instant) {
        if self.paused_since.is_some() {
            return;
        }
        let Some((then, moved_then)) = self.last_sample else {
            self.last_sample = Some((now, self.bytes_moved));
            return;
        };
        let dt = now.saturating_duration_since(then);
        if dt < MIN_SAMPLE {
            return;
        }
        let rate = (self.bytes_moved - moved_then) as f64 / dt.as_secs_f64();
        let alpha = 1.0 - (-dt.as_secs_f64() / SPEED_TIME_CONSTANT.as_secs_f64()).exp();
        self.speed = Some(match self.speed {
            None => rate,
            Some(old) => old + alpha * (rate - old),
        });
        self.last_sample = Some((now, self.bytes_moved));
    }

    /// The progress as of `now`.
    pub fn snapshot(&mut self, now: Instant) -> JobProgress {
        self.update_speed(now);
        let speed = self.speed.unwrap_or(0.0);
        let left = self.bytes_total.saturating_sub(self.bytes_done);
        let eta = if !self.planned || self.paused_since.is_some() {
            None
        } else if left == 0 {
            Some(Duration::ZERO)
        } else if speed >= 1.0 {
            Some(Duration::from_secs_f64(left as f64 / speed))
        } else {
            None
        };
        JobProgress {
            job: self.job,
            files_done: self.files_done,
            files_total: self.files_total,
            bytes_done: self.bytes_done,
            bytes_total: self.bytes_total,
            current: self.current.clone(),
            speed,
            eta,
            scanning: !self.planned,
        }
    }

    /// A snapshot if something changed and the last one is at least [`EMIT_INTERVAL`] old.
    pub fn poll(&mut self, now: Instant) -> Option<JobProgress> {
        let due = self
            .last_emit
            .is_none_or(|last| now.saturating_duration_since(last) >= EMIT_INTERVAL);
        if !self.dirty || !due {
            // Keep the speed fresh even when nothing is sent.
            self.update_speed(now);
            return None;
        }
        self.dirty = false;
        self.last_emit = Some(now);
        Some(self.snapshot(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn counts_files_and_bytes() {
        let t0 = Instant::now();
        let mut p = ProgressState::new(JobId(7));
        p.set_totals(3, 30);
        p.start_file("a");
        p.add_moved(10);
        p.file_finished();
        p.add_present(5);
        let s = p.snapshot(t0);
        assert_eq!(s.job, JobId(7));
        assert_eq!((s.files_done, s.files_total), (1, 3));
        assert_eq!((s.bytes_done, s.bytes_total), (15, 30));
        assert_eq!(s.current.as_deref(), Some("a"));
        assert_eq!(p.bytes_moved(), 10);
        p.take_back(100);
        assert_eq!(p.snapshot(t0).bytes_done, 0);
    }

    #[test]
    fn steady_rate_gives_that_speed_and_a_matching_eta() {
        let t0 = Instant::now();
        let mut p = ProgressState::new(JobId(1));
        p.set_totals(1, 100 * MIB);
        p.snapshot(t0);
        for i in 1..=40u64 {
            p.add_moved(MIB);
            p.snapshot(t0 + Duration::from_millis(100 * i));
        }
        let s = p.snapshot(t0 + Duration::from_millis(4000));
        let expected = 10.0 * MIB as f64;
        assert!((s.speed - expected).abs() / expected < 0.01, "{}", s.speed);
        let eta = s.eta.unwrap().as_secs_f64();
        assert!((eta - 6.0).abs() < 0.1, "{eta}");
    }

    #[test]
    fn speed_is_smoothed_not_jumpy() {
        let t0 = Instant::now();
        let mut p = ProgressState::new(JobId(1));
        p.set_totals(1, 1000 * MIB);
        p.snapshot(t0);
        p.add_moved(10 * MIB);
        let first = p.snapshot(t0 + Duration::from_secs(1)).speed;
        // A stall of a tenth of a second must not drop the speed to zero.
        let after_stall = p.snapshot(t0 + Duration::from_millis(1100)).speed;
        assert!(after_stall > first * 0.9, "{first} -> {after_stall}");
        assert!(after_stall < first);
    }

    #[test]
    fn no_speed_means_no_eta_and_nothing_left_means_zero() {
        let t0 = Instant::now();
        let mut p = ProgressState::new(JobId(1));
        p.set_totals(2, 10);
        assert_eq!(p.snapshot(t0).eta, None);
        p.add_present(10);
        assert_eq!(p.snapshot(t0).eta, Some(Duration::ZERO));
    }

    #[test]
    fn throttles_to_twenty_a_second_and_only_on_change() {
        let t0 = Instant::now();
        let mut p = ProgressState::new(JobId(1));
        assert!(p.poll(t0).is_none(), "nothing changed yet");
        p.set_totals(1, 1000);
        let mut emitted = 0;
        // Changes every millisecond for one second.
        for ms in 0..1000 {
            p.add_moved(1);
            if p.poll(t0 + Duration::from_millis(ms)).is_some() {
                emitted += 1;
            }
        }
        assert_eq!(emitted, 20);
        // Nothing changed: nothing is sent, however much time passes.
        let later = t0 + Duration::from_secs(5);
        assert!(p.poll(later).is_some(), "the last change is still unsent");
        assert!(p.poll(later + Duration::from_secs(1)).is_none());
    }

    #[test]
    fn reports_work_during_the_scan_marked_as_such() {
        let t0 = Instant::now();
        let mut p = ProgressState::new(JobId(1));
        p.start_file("a");
        p.add_moved(10);
        p.file_finished();
        let s = p
            .poll(t0)
            .expect("a finished file is worth an event before the plan");
        assert!(s.scanning);
        assert_eq!((s.files_done, s.bytes_done), (1, 10));
        assert_eq!(s.eta, None, "no time left can be told without a total");
        p.set_totals(3, 30);
        p.add_moved(5);
        let s = p.poll(t0 + EMIT_INTERVAL).expect("changed since");
        assert!(!s.scanning);
        assert_eq!((s.files_done, s.files_total), (1, 3));
        assert_eq!((s.bytes_done, s.bytes_total), (15, 30));
    }

    #[test]
    fn a_file_that_changed_size_moves_the_total() {
        let t0 = Instant::now();
        let mut p = ProgressState::new(JobId(1));
        p.resize_file(10, 20);
        p.set_totals(2, 40);
        assert_eq!(
            p.snapshot(t0).bytes_total,
            50,
            "a change during the scan counts too"
        );
        p.resize_file(10, 100);
        assert_eq!(p.snapshot(t0).bytes_total, 140);
        p.resize_file(30, 5);
        assert_eq!(p.snapshot(t0).bytes_total, 115);
        p.resize_file(500, 0);
        assert_eq!(p.snapshot(t0).bytes_total, 0, "never below zero");
    }

    #[test]
    fn a_question_and_a_resumed_prefix_do_not_bend_speed_or_eta() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = ProgressState::new(JobId(1));
        p.set_totals(2, 2048 * MIB);
        // 2 MiB/s for ten seconds.
        for tick in 0..=100 {
            p.add_moved(MIB / 5);
            p.snapshot(at(tick * 100));
        }
        let before = p.snapshot(at(10_000)).speed;
        assert!((before / MIB as f64 - 2.0).abs() < 0.1, "{before}");
        // A minute on a conflict question: no ETA while it waits, the speed holds.
        p.pause(at(10_000));
        let waiting = p.snapshot(at(70_000));
        assert_eq!(waiting.eta, None);
        assert!((waiting.speed - before).abs() < 1.0, "{}", waiting.speed);
        p.unpause(at(70_000));
        // The answer resumed 1,000 MiB already there: done, not moved.
        p.add_present(1000 * MIB);
        for tick in 1..=10 {
            p.add_moved(MIB / 5);
            p.snapshot(at(70_000 + tick * 100));
        }
        let after = p.snapshot(at(71_000));
        let speed = after.speed / MIB as f64;
        assert!((speed - 2.0).abs() < 0.2, "{speed} MiB/s after the answer");
        let left = after.bytes_total - after.bytes_done;
        let eta = after.eta.expect("an ETA once moving again");
        let expected = left as f64 / (2.0 * MIB as f64);
        assert!(
            (eta.as_secs_f64() - expected).abs() < expected * 0.1,
            "{eta:?} for {left} bytes left"
        );
    }
}
