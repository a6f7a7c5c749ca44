//! The transfer list as the UI sees it: one [`JobRow`] per submitted copy or move, updated from
//! engine events, the [`TransferList`] that holds them with its selection and its queue
//! (`max_jobs` at once, pause, reorder, retry), and the pure progress math the panel draws
//! from.
//!
//! Over 600 lines because of its unit tests (the code is about 660): the rows, the list and
//! its queue change together, and splitting the queue off would pass the rows' insides
//! between two modules.

use std::collections::HashMap;
use std::time::Duration;

use crate::engine::{JobId, JobProgress, JobSpec, JobSummary, LeftOutReason};

use super::keymap::Action;
use super::pane::{Location, Side};

/// A job across reconnects: the engine connection it runs on and the engine's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey {
    pub conn: u64,
    pub id: JobId,
}

/// What a rate limit applies to (the prompt for it is `rate`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateTarget {
    /// Every transfer together, on any server.
    All,
    /// One job, on top of the limit for all.
    Job(JobKey),
}
/// The `conn` of a job not (or no longer) given to an engine: waiting its turn or paused.
/// Real connections count from 1.
pub const NOT_STARTED: u64 = 0;

/// Where a job is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for its turn: `max_jobs` jobs run at once.
    Queued,
    /// Stopped by the user, its partials kept; resuming queues it again.
    Paused,
    /// Submitted; the engine is sizing the tree, and files of a download may already arrive.
    Scanning,
    Running,
    Done(JobSummary),
    Failed(String),
}

/// What the UI knows about a job when it submits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// The side the bytes go to.
    pub dest: Side,
    pub src_dir: Location,
    pub dest_dir: Location,
    /// `(source, destination)` keys of each top-level item, as [`Location::key`] gives them.
    pub items: Vec<(String, String)>,
    pub is_move: bool,
    /// A short description: the item's name, or `3 items`.
    pub label: String,
}

/// One job in the transfer panel.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub key: JobKey,
    /// The number the user sees (`#3`): unique for the session, while engine ids restart with
    /// each connection.
    pub number: u64,
    pub info: JobInfo,
    pub state: JobState,
    /// The engine's last word on how far the job is.
    pub progress: JobProgress,
    /// `(path, error)` of each file that failed (the first [`MAX_DETAILS`]).
    pub failures: Vec<(String, String)>,
    /// Entries of a tree that were not copied, with why (the first [`MAX_DETAILS`]).
    pub left_out: Vec<(String, LeftOutReason, String)>,
    /// Entries left out because of an error (not links or special files), all counted.
    pub left_out_errors: u64,
    /// Failures and left-out entries beyond what the details keep.
    pub details_dropped: u64,
    /// The size of each file that arrived verified: what a job with failures or skips shows
    /// as done, since bytes sent for a refused file did not land.
    pub bytes_verified: u64,
    /// Files that arrived verified: what a cancelled or failed job says it left behind.
    pub files_verified: u64,
    /// Files that failed because the connection broke: their bytes so far stay in a hidden
    /// partial, and copying them again resumes from there.
    pub partials_kept: u64,
    /// The job's own rate limit in bytes per second; 0 for none.
    pub rate_limit: u64,
}

impl JobRow {
    pub fn new(key: JobKey, number: u64, info: JobInfo) -> JobRow {
        JobRow {
            key,
            number,
            info,
            state: JobState::Scanning,
            progress: JobProgress {
                job: key.id,
                files_done: 0,
                files_total: 0,
                bytes_done: 0,
                bytes_total: 0,
                current: None,
                speed: 0.0,
                eta: None,
                scanning: true,
            },
            failures: Vec::new(),
            left_out: Vec::new(),
            left_out_errors: 0,
            details_dropped: 0,
            bytes_verified: 0,
            files_verified: 0,
            partials_kept: 0,
            rate_limit: 0,
        }
    }

    /// Whether the job still runs (and so blocks a quiet quit).
    pub fn is_active(&self) -> bool {
        matches!(self.state, JobState::Scanning | JobState::Running)
    }

    pub fn planned(&mut self, files: u64, bytes: u64) {
        self.progress.files_total = files;
        self.progress.bytes_total = bytes;
        self.progress.scanning = false;
        if self.state == JobState::Scanning {
            self.state = JobState::Running;
        }
    }

    pub fn progressed(&mut self, p: &JobProgress) {
        if p.scanning {
            // One polled just before the plan can come after it; the totals it lacks are
            // already here, and the next event brings the counts.
            if self.state == JobState::Scanning {
                self.progress.clone_from(p);
            }
            return;
        }
        self.progress.clone_from(p);
        if self.state == JobState::Scanning {
            self.state = JobState::Running;
        }
    }

    pub fn finished(&mut self, outcome: Result<JobSummary, String>) {
        match outcome {
            Ok(summary) => {
                let p = &mut self.progress;
                p.bytes_done = p.bytes_done.max(summary.bytes);
                p.bytes_total = p.bytes_total.max(p.bytes_done);
                p.files_done = summary.files;
                p.speed = 0.0;
                p.eta = None;
                self.state = JobState::Done(summary);
            }
            Err(message) => {
                self.progress.speed = 0.0;
                self.progress.eta = None;
                self.state = JobState::Failed(message);
            }
        }
    }

    /// Whether the job ended having moved nothing because every file was skipped.
    pub fn skipped_only(&self) -> bool {
        matches!(&self.state, JobState::Done(s) if s.files == 0 && s.failed == 0 && s.skipped > 0)
    }

    /// Whether the job ended with everything it was asked to move in place.
    fn complete(&self) -> bool {
        matches!(&self.state, JobState::Done(s) if s.failed == 0) && !self.skipped_only()
    }

    /// The bytes the panel counts as done: once the job ended short of complete, only what
    /// arrived verified, unless a broken connection left partials that a new copy resumes:
    /// their bytes are not lost, so the row keeps showing them.
    pub fn bytes_done(&self) -> u64 {
        match &self.state {
            JobState::Done(_) if !self.complete() && !self.kept_partial() => self.bytes_verified,
            _ => self.progress.bytes_done,
        }
    }

    /// Whether the job ended with bytes of a broken-off file waiting in a partial.
    pub fn kept_partial(&self) -> bool {
        self.partials_kept > 0 && self.progress.bytes_done > self.bytes_verified
    }

    /// Records a file's failure; `error` starts with its code, as the engine prints errors.
    pub fn file_failed(&mut self, path: &str, error: &str) {
        if is_connection_error(error) {
            self.partials_kept += 1;
        }
        if self.failures.len() + self.left_out.len() < MAX_DETAILS {
            self.failures.push((path.to_owned(), error.to_owned()));
        } else {
            self.details_dropped += 1;
        }
    }

    /// Records an entry of a tree that was not copied.
    pub fn left_out(&mut self, path: &str, reason: LeftOutReason, message: &str) {
        if !reason.by_design() {
            self.left_out_errors += 1;
        }
        if self.failures.len() + self.left_out.len() < MAX_DETAILS {
            self.left_out
                .push((path.to_owned(), reason, message.to_owned()));
        } else {
            self.details_dropped += 1;
        }
    }

    /// Progress as a fraction in `0.0..=1.0`.
    pub fn ratio(&self) -> f64 {
        if self.complete() {
            return 1.0;
        }
        ratio(self.bytes_done(), self.progress.bytes_total)
    }
}

impl JobRow {
    /// The rows of the job's details view: each failed file and each entry not copied, with
    /// why, names escaped (they may be a hostile server's), failures first.
    pub fn details(&self) -> Vec<String> {
        let mut rows = Vec::with_capacity(self.failures.len() + self.left_out.len() + 1);
        for (path, error) in &self.failures {
            rows.push(format!(
                "failed      {}  {}",
                crate::format::escape_name(path),
                crate::format::escape_text(error)
            ));
        }
        for (path, reason, message) in &self.left_out {
            rows.push(format!(
                "{:<11} {}  {}",
                reason.as_str(),
                crate::format::escape_name(path),
                crate::format::escape_text(message)
            ));
        }
        if self.details_dropped > 0 {
            rows.push(format!(
                "… and {} more not listed (the view keeps the first {MAX_DETAILS})",
                self.details_dropped
            ));
        }
        rows
    }
}

/// The transfer panel's list: the session's jobs in the order they were submitted, and the
/// one selected.
#[derive(Debug, Default)]
pub struct TransferList {
    pub jobs: Vec<JobRow>,
    /// The job the panel scrolls to and `x` cancels. While the list lacks focus it follows
    /// the newest running job (else the newest), so what the panel shows is what `x` acts on;
    /// while the list has focus it stays where the user put it.
    pub selected: usize,
    /// The number the last submitted job got: numbers stay unique across connections.
    last_number: u64,
    /// What each job not yet done runs (by number): to start it, start it again after a
    /// pause, or retry its failed entries.
    /// With the server (`host:port`) the job is for: a queued job starts only while the
    /// session is connected there, never on a server switched to meanwhile.
    specs: HashMap<u64, (String, JobSpec)>,
}

impl TransferList {
    /// A job the engine took: it gets the next number the user knows it by.
    pub fn submitted(&mut self, key: JobKey, info: JobInfo) {
        self.last_number += 1;
        self.jobs.push(JobRow::new(key, self.last_number, info));
    }

    /// A job waiting its turn: a row in the list now, started by [`next_to_start`].
    ///
    /// [`next_to_start`]: TransferList::next_to_start
    pub fn enqueue(&mut self, server: String, spec: JobSpec, info: JobInfo) -> u64 {
        self.last_number += 1;
        let number = self.last_number;
        let key = JobKey {
            conn: NOT_STARTED,
            id: JobId(number),
        };
        let mut row = JobRow::new(key, number, info);
        row.state = JobState::Queued;
        self.jobs.push(row);
        self.specs.insert(number, (server, spec));
        number
    }

    /// The queued jobs to start now so that at most `max_jobs` run, first in list order;
    /// each is marked scanning at once, so it is not picked twice.
    pub fn next_to_start(&mut self, max_jobs: usize, server: &str) -> Vec<(u64, JobSpec, JobInfo)> {
        let running = self.jobs.iter().filter(|j| j.is_active()).count();
        let mut free = max_jobs.max(1).saturating_sub(running);
        let mut start = Vec::new();
        for job in &mut self.jobs {
            if free == 0 {
                break;
            }
            if job.state != JobState::Queued {
                continue;
            }
            let Some((_, spec)) = self.specs.get(&job.number).filter(|(s, _)| s == server) else {
                continue;
            };
            job.state = JobState::Scanning;
            start.push((job.number, spec.clone(), job.info.clone()));
            free -= 1;
        }
        start
    }

    /// The first job handed to the event loop to start and not yet taken by an engine: the
    /// one the next [`Msg::Submitted`](super::message::Msg::Submitted) is about, since jobs
    /// are submitted in order.
    pub fn first_starting(&self) -> Option<u64> {
        self.jobs
            .iter()
            .find(|j| j.key.conn == NOT_STARTED && j.state == JobState::Scanning)
            .map(|j| j.number)
    }

    /// Puts a job that waits (queued or paused) in `state` (queued or paused).
    pub fn set_waiting(&mut self, number: u64, state: JobState) {
        if let Some(job) = self.jobs.iter_mut().find(|j| j.number == number)
            && matches!(job.state, JobState::Queued | JobState::Paused)
        {
            job.state = state;
        }
    }

    /// The engine took job `number` as `key`.
    pub fn started(&mut self, number: u64, key: JobKey) -> bool {
        match self.jobs.iter_mut().find(|j| j.number == number) {
            Some(job) => {
                job.key = key;
                true
            }
            None => false,
        }
    }

    /// The spec job `number` runs.
    pub fn spec(&self, number: u64) -> Option<&JobSpec> {
        self.specs.get(&number).map(|(_, spec)| spec)
    }

    /// Pauses the selected running job: the caller cancels its engine job (the engine keeps
    /// its partials); the row stays, `paused`. Its old key, to cancel.
    pub fn pause_selected(&mut self) -> Option<JobKey> {
        let job = self.jobs.get_mut(self.selected)?;
        if !job.is_active() || job.key.conn == NOT_STARTED {
            return None;
        }
        let key = job.key;
        job.state = JobState::Paused;
        job.progress.speed = 0.0;
        job.progress.eta = None;
        job.key = JobKey {
            conn: NOT_STARTED,
            id: JobId(job.number),
        };
        Some(key)
    }

    /// Queues a paused job again where it stands in the list; it continues from its
    /// partials when its turn comes.
    pub fn resume_selected(&mut self) -> bool {
        match self.jobs.get_mut(self.selected) {
            Some(job) if job.state == JobState::Paused => {
                job.state = JobState::Queued;
                true
            }
            _ => false,
        }
    }

    /// Moves the selected queued job one place up (`up`) or down among the queued jobs, so
    /// it starts sooner or later.
    pub fn move_selected(&mut self, up: bool) -> bool {
        let waiting = |j: &JobRow| matches!(j.state, JobState::Queued | JobState::Paused);
        let Some(job) = self.jobs.get(self.selected) else {
            return false;
        };
        if !waiting(job) {
            return false;
        }
        let other = if up {
            self.jobs[..self.selected].iter().rposition(waiting)
        } else {
            self.jobs[self.selected + 1..]
                .iter()
                .position(waiting)
                .map(|i| i + self.selected + 1)
        };
        match other {
            Some(other) => {
                self.jobs.swap(self.selected, other);
                self.selected = other;
                true
            }
            None => false,
        }
    }

    /// Drops a queued or paused job that will not run (cancelled before it ran again).
    pub fn drop_waiting(&mut self, number: u64) {
        self.specs.remove(&number);
        if let Some(job) = self.jobs.iter_mut().find(|j| j.number == number) {
            job.finished(Err("cancelled".into()));
        }
    }

    /// The spec that retries the selected job's failed entries: those the details list
    /// (each mapped from its source to its destination through the item it belongs to), or
    /// the whole job when some failures went uncounted in the details; it then resumes
    /// what is partial and keeps what is already whole. `None` unless the job ended failed.
    pub fn retry_selected(&self) -> Option<(String, JobSpec, JobInfo)> {
        let job = self.selected_job()?;
        let failed = match &job.state {
            JobState::Failed(message) => message != "cancelled",
            JobState::Done(summary) => summary.failed > 0,
            _ => false,
        };
        if !failed {
            return None;
        }
        let (server, spec) = self.specs.get(&job.number)?;
        let mut info = job.info.clone();
        info.label = format!("{} (retry)", job.info.label);
        let whole = job.failures.is_empty() || job.details_dropped > 0;
        let narrowed = retry_spec(spec, &job.failures, whole);
        let empty = match &narrowed {
            JobSpec::Upload { items, .. } => items.is_empty(),
            JobSpec::Download { items, .. } => items.is_empty(),
            JobSpec::Relay { items, .. } => items.is_empty(),
        };
        // A failure named otherwise (a local source that could not be read): all again.
        let spec = if empty {
            retry_spec(spec, &job.failures, true)
        } else {
            narrowed
        };
        Some((server.clone(), spec, info))
    }

    pub fn get_mut(&mut self, key: JobKey) -> Option<&mut JobRow> {
        self.jobs.iter_mut().find(|j| j.key == key)
    }

    /// The number the user knows job `key` by.
    pub fn number(&self, key: JobKey) -> u64 {
        job_number(&self.jobs, key)
    }

    /// The jobs that still run.
    pub fn running(&self) -> impl Iterator<Item = &JobRow> {
        self.jobs.iter().filter(|j| j.is_active())
    }

    pub fn selected_job(&self) -> Option<&JobRow> {
        self.jobs.get(self.selected)
    }

    /// Moves the selection to the newest running job, else the newest job, unless the user is
    /// choosing in the `focused` list: the panel then shows what `x` would cancel.
    pub fn follow(&mut self, focused: bool) {
        if focused {
            self.selected = self.selected.min(self.jobs.len().saturating_sub(1));
            return;
        }
        self.selected = self
            .jobs
            .iter()
            .rposition(JobRow::is_active)
            .unwrap_or(self.jobs.len().saturating_sub(1));
    }

    /// Moves the selection by a key of the focused list; `false` if the action is no move.
    pub fn select(&mut self, action: Action) -> bool {
        match action {
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => {
                self.selected = (self.selected + 1).min(self.jobs.len().saturating_sub(1));
            }
            Action::Top => self.selected = 0,
            Action::Bottom => self.selected = self.jobs.len().saturating_sub(1),
            _ => return false,
        }
        true
    }

    /// Drops the jobs that ended, keeping the selected one selected if it still runs.
    pub fn clear_finished(&mut self) {
        let kept = self.selected_job().map(|j| j.key);
        self.jobs
            .retain(|j| j.is_active() || matches!(j.state, JobState::Queued | JobState::Paused));
        let numbers: Vec<u64> = self.jobs.iter().map(|j| j.number).collect();
        self.specs.retain(|n, _| numbers.contains(n));
        self.selected = kept
            .and_then(|key| self.jobs.iter().position(|j| j.key == key))
            .unwrap_or(0);
    }

    /// The job `x` cancels: in the `focused` list the selected one if it runs; from the panes
    /// the selected job if it runs, else the newest running one.
    pub fn to_cancel(&self, focused: bool) -> Option<&JobRow> {
        let selected = self.selected_job().filter(|j| j.is_active());
        match (focused, selected) {
            (true, selected) => selected,
            (_, Some(job)) => Some(job),
            (_, None) => self.jobs.iter().rev().find(|j| j.is_active()),
        }
    }

    /// A file of job `key` arrived verified: the side it went to and the location keys it
    /// landed at. The engine names a file by its wire path: the destination of an upload, the
    /// source of a download, which maps to its local destination.
    pub fn arrived(
        &mut self,
        key: JobKey,
        path: String,
        bytes: u64,
    ) -> Option<(Side, Vec<String>)> {
        let job = self.get_mut(key)?;
        job.bytes_verified += bytes;
        job.files_verified += 1;
        let dest = job.info.dest;
        let keys: Vec<String> = match dest {
            Side::Remote => vec![path],
            Side::Local => job
                .info
                .items
                .iter()
                .filter_map(|(src, dst)| {
                    if *src == path {
                        Some(dst.clone())
                    } else {
                        let rest = path.strip_prefix(src.as_str())?.strip_prefix('/')?;
                        Some(format!("{dst}/{rest}"))
                    }
                })
                .collect(),
        };
        Some((dest, keys))
    }
}

/// Where the `failures` lie in an item the engine names `named`: `""` for the item itself,
/// else the rest of the path below it; the whole item (`""`) when `whole`.
fn failed_within<'a>(failures: &'a [(String, String)], named: &str, whole: bool) -> Vec<&'a str> {
    if whole {
        return vec![""];
    }
    failures
        .iter()
        .filter_map(|(path, _)| {
            if path == named {
                return Some("");
            }
            path.strip_prefix(named)?.strip_prefix('/')
        })
        .collect()
}

/// `spec` narrowed to the `failures` (named by their remote paths, as the engine reports
/// them; a relay's by their destinations), unless `whole`; either way with the resume policy,
/// so a partial is continued and a finished file is not sent again.
fn retry_spec(spec: &JobSpec, failures: &[(String, String)], whole: bool) -> JobSpec {
    use crate::engine::ConflictPolicy;
    // Each `(local, remote)` item, or the failed entries under it, as `(local, remote)`.
    let narrow = |local: &std::path::Path, remote: &str| -> Vec<(std::path::PathBuf, String)> {
        failed_within(failures, remote, whole)
            .into_iter()
            .map(|rest| match rest {
                "" => (local.to_path_buf(), remote.to_owned()),
                rest => (
                    local.join(crate::names::os_name(rest)),
                    format!("{remote}/{rest}"),
                ),
            })
            .collect()
    };
    match spec {
        JobSpec::Upload {
            items,
            remove_source,
            ..
        } => JobSpec::Upload {
            items: items.iter().flat_map(|(l, r)| narrow(l, r)).collect(),
            policy: ConflictPolicy::Resume,
            remove_source: *remove_source,
        },
        JobSpec::Download {
            items,
            remove_source,
            ..
        } => JobSpec::Download {
            items: items
                .iter()
                .flat_map(|(r, l)| narrow(l, r))
                .map(|(l, r)| (r, l))
                .collect(),
            policy: ConflictPolicy::Resume,
            remove_source: *remove_source,
        },
        JobSpec::Relay {
            from,
            to,
            items,
            remove_source,
            ..
        } => JobSpec::Relay {
            from: from.clone(),
            to: to.clone(),
            items: items
                .iter()
                .flat_map(|(source, dest)| {
                    failed_within(failures, dest, whole)
                        .into_iter()
                        .map(move |rest| match rest {
                            "" => (source.clone(), dest.clone()),
                            rest => (format!("{source}/{rest}"), format!("{dest}/{rest}")),
                        })
                })
                .collect(),
            policy: ConflictPolicy::Resume,
            remove_source: *remove_source,
        },
    }
}

/// Failed and left-out entries a job keeps for its details view: a tree of millions of
/// unreadable entries must not fill memory; the rest are counted.
pub const MAX_DETAILS: usize = 10_000;

/// The number the user knows job `key` by (the engine's id once the job has left the list).
pub fn job_number(jobs: &[JobRow], key: JobKey) -> u64 {
    jobs.iter()
        .find(|j| j.key == key)
        .map_or(key.id.0, |j| j.number)
}

/// Whether an engine error (printed code first) is the connection breaking, which leaves a
/// file's bytes in a partial and says the server may be gone.
pub fn is_connection_error(error: &str) -> bool {
    error.starts_with("connection: ")
}

/// `done / total` clamped to `0.0..=1.0`; an empty total counts as nothing done yet.
pub fn ratio(done: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (done as f64 / total as f64).clamp(0.0, 1.0)
    }
}

/// Whole percent, rounded down so 100 % means really finished.
pub fn percent(ratio: f64) -> u8 {
    (ratio.clamp(0.0, 1.0) * 100.0).floor() as u8
}

/// A text bar `width` cells wide, with eighth-cell resolution at the edge.
pub fn bar(ratio: f64, width: usize) -> String {
    const PARTIAL: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (ratio.clamp(0.0, 1.0) * width as f64 * 8.0).round() as usize;
    let (full, part) = (eighths / 8, eighths % 8);
    let mut out = "█".repeat(full.min(width));
    if full < width {
        out.push(if part == 0 { '░' } else { PARTIAL[part] });
        out.push_str(&"░".repeat(width - full - 1));
    }
    out
}

/// The totals over the jobs still running: bytes done, bytes total, speed, time left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overall {
    pub running: usize,
    /// Some running job is still sizing its tree: the total is not known, so no bar or time
    /// left is drawn, only what is done.
    pub scanning: bool,
    pub files_done: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub speed: f64,
    pub eta: Option<Duration>,
}

pub fn overall(jobs: &[JobRow]) -> Overall {
    let active = jobs.iter().filter(|j| j.is_active());
    let mut o = Overall {
        running: 0,
        scanning: false,
        files_done: 0,
        bytes_done: 0,
        bytes_total: 0,
        speed: 0.0,
        eta: None,
    };
    for job in active.map(|j| &j.progress) {
        o.running += 1;
        o.scanning |= job.scanning;
        o.files_done += job.files_done;
        o.bytes_done += job.bytes_done;
        o.bytes_total += job.bytes_total.max(job.bytes_done);
        o.speed += job.speed;
    }
    let left = o.bytes_total - o.bytes_done;
    if o.speed > 0.0 && o.running > 0 && !o.scanning {
        o.eta = Some(Duration::from_secs_f64(left as f64 / o.speed));
    }
    o
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn job(id: u64, done: u64, total: u64, speed: f64) -> JobRow {
        let mut job = JobRow::new(
            JobKey {
                conn: 1,
                id: JobId(id),
            },
            id,
            JobInfo {
                dest: Side::Remote,
                src_dir: Location::Local("/l".into()),
                dest_dir: Location::Remote(String::new()),
                items: vec![],
                is_move: false,
                label: "x".into(),
            },
        );
        job.progressed(&progress(JobId(id), done, total, speed));
        job
    }

    /// One file of a job, `done` of `total` bytes at `speed`, with no estimate yet.
    pub(crate) fn progress(job: JobId, done: u64, total: u64, speed: f64) -> JobProgress {
        JobProgress {
            job,
            files_done: 0,
            files_total: 1,
            bytes_done: done,
            bytes_total: total,
            current: None,
            speed,
            eta: None,
            scanning: false,
        }
    }

    #[test]
    fn ratio_and_percent() {
        assert_eq!(ratio(0, 0), 0.0);
        assert_eq!(percent(ratio(42, 100)), 42);
        assert_eq!(percent(ratio(999, 1000)), 99);
        assert_eq!(percent(ratio(2000, 1000)), 100);
        let mut j = job(1, 0, 0, 0.0);
        j.finished(Ok(JobSummary {
            files: 0,
            bytes: 0,
            skipped: 0,
            failed: 0,
            elapsed: Duration::ZERO,
        }));
        assert_eq!(j.ratio(), 1.0);
    }

    #[test]
    fn bars() {
        assert_eq!(bar(0.0, 4), "░░░░");
        assert_eq!(bar(1.0, 4), "████");
        assert_eq!(bar(0.5, 4), "██░░");
        assert_eq!(bar(0.42, 10), "████▎░░░░░");
        assert_eq!(bar(0.42, 10).chars().count(), 10);
    }

    #[test]
    fn overall_sums_running_jobs() {
        let mut finished = job(3, 10, 10, 0.0);
        finished.finished(Err("cancelled".into()));
        let jobs = vec![job(1, 100, 400, 50.0), job(2, 200, 400, 50.0), finished];
        let o = overall(&jobs);
        assert_eq!((o.running, o.bytes_done, o.bytes_total), (2, 300, 800));
        assert_eq!(o.speed, 100.0);
        assert_eq!(o.eta, Some(Duration::from_secs(5)));
    }

    #[test]
    fn a_scanning_job_counts_what_arrived_and_leaves_overall_without_a_scale() {
        let mut scanning = job(1, 0, 0, 0.0);
        scanning.state = JobState::Scanning;
        scanning.progress.scanning = true;
        scanning.progressed(&JobProgress {
            job: JobId(1),
            files_done: 2140,
            files_total: 0,
            bytes_done: 8 * 1024,
            bytes_total: 0,
            current: Some("a".into()),
            speed: 100.0,
            eta: None,
            scanning: true,
        });
        assert_eq!(
            scanning.state,
            JobState::Scanning,
            "no scale yet: still scanning"
        );
        assert_eq!(scanning.progress.files_done, 2140);
        let o = overall(&[scanning.clone(), job(2, 100, 400, 50.0)]);
        assert!(o.scanning);
        assert_eq!((o.files_done, o.bytes_done), (2140, 8 * 1024 + 100));
        assert_eq!(o.eta, None, "no time left without a total");

        scanning.planned(3000, 16 * 1024);
        assert_eq!(scanning.state, JobState::Running);
        // A scanning event polled before the plan and delivered after it changes nothing.
        let mut late = scanning.progress.clone();
        late.scanning = true;
        late.bytes_total = 0;
        scanning.progressed(&late);
        assert_eq!(scanning.progress.bytes_total, 16 * 1024);
    }

    fn download(name: &str) -> (JobSpec, JobInfo) {
        let spec = JobSpec::Download {
            items: vec![(
                format!("d/{name}"),
                std::path::PathBuf::from(format!("/l/{name}")),
            )],
            policy: crate::engine::ConflictPolicy::Ask,
            remove_source: false,
        };
        let info = JobInfo {
            dest: Side::Local,
            src_dir: Location::Remote("d".into()),
            dest_dir: Location::Local("/l".into()),
            items: vec![(format!("d/{name}"), format!("/l/{name}"))],
            is_move: false,
            label: name.into(),
        };
        (spec, info)
    }

    fn labels(list: &TransferList) -> Vec<(String, JobState)> {
        list.jobs
            .iter()
            .map(|j| (j.info.label.clone(), j.state.clone()))
            .collect()
    }

    #[test]
    fn at_most_max_jobs_run_and_the_rest_start_in_list_order_as_moved() {
        let mut list = TransferList::default();
        for name in ["a", "b", "c", "d"] {
            let (spec, info) = download(name);
            list.enqueue("s".into(), spec, info);
        }
        let started: Vec<u64> = list
            .next_to_start(2, "s")
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(started, [1, 2]);
        assert!(list.next_to_start(2, "s").is_empty(), "two already run");
        // The engine takes them in order.
        assert_eq!(list.first_starting(), Some(1));
        list.started(
            1,
            JobKey {
                conn: 1,
                id: JobId(10),
            },
        );
        list.started(
            2,
            JobKey {
                conn: 1,
                id: JobId(11),
            },
        );
        // d moves up before c.
        list.selected = 3;
        assert!(list.move_selected(true));
        assert_eq!(list.selected, 2);
        assert!(
            !list.move_selected(true),
            "nothing queued above: running jobs do not move"
        );
        // a ends: the next queued in list order (d) starts.
        list.get_mut(JobKey {
            conn: 1,
            id: JobId(10),
        })
        .unwrap()
        .finished(Err("cancelled".into()));
        let next: Vec<String> = list
            .next_to_start(2, "s")
            .into_iter()
            .map(|s| s.2.label)
            .collect();
        assert_eq!(next, ["d"]);
    }

    #[test]
    fn a_queued_job_starts_only_on_the_server_it_was_made_for() {
        let mut list = TransferList::default();
        let (spec, info) = download("a");
        list.enqueue("host-a:7070".into(), spec, info);
        assert!(list.next_to_start(2, "host-b:7070").is_empty());
        assert_eq!(list.next_to_start(2, "host-a:7070").len(), 1);
    }

    #[test]
    fn pause_keeps_the_row_and_resume_queues_it_again() {
        let mut list = TransferList::default();
        let (spec, info) = download("a");
        list.enqueue("s".into(), spec, info);
        list.next_to_start(1, "s");
        let key = JobKey {
            conn: 1,
            id: JobId(5),
        };
        list.started(1, key);
        list.selected = 0;
        assert_eq!(list.pause_selected(), Some(key));
        assert_eq!(labels(&list), [("a".to_string(), JobState::Paused)]);
        // The engine's end of the cancelled job no longer reaches the row.
        assert!(list.get_mut(key).is_none());
        assert!(list.next_to_start(1, "s").is_empty(), "a paused job waits");
        assert!(list.resume_selected());
        let again = list.next_to_start(1, "s");
        assert_eq!(again.len(), 1);
        assert!(matches!(&again[0].1, JobSpec::Download { items, .. } if items[0].0 == "d/a"));
    }

    #[test]
    fn retry_takes_only_the_failed_entries_with_the_resume_policy() {
        let mut list = TransferList::default();
        let spec = JobSpec::Download {
            items: vec![("d/tree".into(), std::path::PathBuf::from("/l/tree"))],
            policy: crate::engine::ConflictPolicy::Ask,
            remove_source: false,
        };
        let (_, info) = download("tree");
        list.enqueue("s".into(), spec, info);
        list.next_to_start(1, "s");
        let key = JobKey {
            conn: 1,
            id: JobId(1),
        };
        list.started(1, key);
        let job = list.get_mut(key).unwrap();
        job.file_failed("d/tree/x/1.bin", "forbidden: no");
        job.finished(Ok(JobSummary {
            files: 3,
            bytes: 3,
            skipped: 0,
            failed: 1,
            elapsed: Duration::ZERO,
        }));
        list.selected = 0;
        let (server, spec, info) = list.retry_selected().unwrap();
        assert_eq!(server, "s");
        assert_eq!(info.label, "tree (retry)");
        assert!(
            matches!(&spec, JobSpec::Download { items, policy: crate::engine::ConflictPolicy::Resume, .. }
                if *items == vec![("d/tree/x/1.bin".to_string(), std::path::PathBuf::from("/l/tree/x/1.bin"))]),
            "{spec:?}"
        );
    }

    /// A relay names its failures by destination: a retry asks again for exactly those, each
    /// from the source path beside it, and for a whole item only when it failed itself.
    #[test]
    fn a_relay_is_retried_by_its_failed_destinations() {
        let spec = JobSpec::Relay {
            from: Box::default(),
            to: Box::default(),
            items: vec![
                ("a/tree".into(), "b/tree".into()),
                ("a/one.txt".into(), "b/one.txt".into()),
                ("a/fine".into(), "b/fine".into()),
            ],
            policy: crate::engine::ConflictPolicy::Overwrite,
            remove_source: false,
        };
        let failures = vec![
            ("b/tree/x/1.bin".to_string(), "io".to_string()),
            ("b/one.txt".to_string(), "io".to_string()),
            ("b/treehouse".to_string(), "io".to_string()),
        ];
        let JobSpec::Relay { items, policy, .. } = retry_spec(&spec, &failures, false) else {
            panic!("not a relay");
        };
        assert_eq!(
            items,
            [
                ("a/tree/x/1.bin".to_string(), "b/tree/x/1.bin".to_string()),
                ("a/one.txt".to_string(), "b/one.txt".to_string()),
            ]
        );
        assert_eq!(policy, crate::engine::ConflictPolicy::Resume);
        let JobSpec::Relay { items, .. } = retry_spec(&spec, &failures, true) else {
            panic!("not a relay");
        };
        assert_eq!(items.len(), 3);
    }
}
