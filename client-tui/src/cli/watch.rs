//! One engine job run and watched to its end: the sources refused before it, its events as a
//! progress bar (when a person is looking) or `--json` lines, connection failures gathered into
//! one line, the closing summary and the exit status. Ctrl-C cancels the job.

use indicatif::{ProgressBar, ProgressStyle};

use super::error::CliError;
use super::options::TransferOptions;
use super::outcome::{self, LeftOutCounts};
use crate::engine::{
    ConflictAnswer, ConflictPolicy, Endpoint, Engine, EngineError, EngineOptions, Events,
    Groundwork, JobId, JobSpec, JobSummary, TransferEvent,
};

/// Sources refused before the job (missing, a link, a directory without -r): each printed
/// at once, and counted into the command's failures.
#[derive(Debug, Default)]
pub(super) struct Refused {
    pub(super) count: u64,
    pub(super) json: bool,
}

impl Refused {
    pub(super) fn report(&mut self, error: &CliError) {
        self.count += 1;
        eprintln!("ferry: {}", error.shown());
        if self.json {
            outcome::json_failed(&refused_path(error), &error.to_string());
        }
    }

    /// No source was left to copy: the failure, with its summary for `--json`.
    pub(super) fn nothing_to_copy(self, options: TransferOptions) -> Result<JobSummary, CliError> {
        let failed = self.count;
        let error = self.into_error();
        if options.json {
            outcome::json_summary(None, failed, LeftOutCounts::default(), error.exit_code());
        }
        Err(error)
    }

    /// The failure when no source was left to copy.
    fn into_error(self) -> CliError {
        CliError::Reported { failed: self.count }
    }

    /// The job's outcome with the refused sources counted in: any makes the command fail.
    fn add_to(self, outcome: Result<JobSummary, CliError>) -> Result<JobSummary, CliError> {
        match outcome {
            Ok(_) if self.count > 0 => Err(self.into_error()),
            Err(CliError::Reported { failed }) => Err(CliError::Reported {
                failed: failed + self.count,
            }),
            Err(CliError::Partial { .. }) if self.count > 0 => Err(self.into_error()),
            other => other,
        }
    }
}

/// The path a refused source is named by in `--json`: taken from the error itself (a name may
/// hold `: ` too), local paths by the one escape, so a script gets the exact bytes back.
fn refused_path(error: &CliError) -> String {
    match error {
        CliError::Usage { path, .. } => path.clone(),
        CliError::Engine(EngineError::Local { path, .. }) => crate::format::local_path(path),
        CliError::Engine(EngineError::Remote { path, .. }) => path.clone(),
        other => {
            let line = other.to_string();
            line.split(": ").nth(1).unwrap_or_default().to_owned()
        }
    }
}

/// Submits one job and follows its events to the end; Ctrl-C cancels it. `single_file`: the
/// job is one file, which a plain re-run resumes. The job goes on with the command's session
/// and what it learned there (`groundwork`).
pub(super) async fn run_job(
    endpoint: &Endpoint,
    spec: JobSpec,
    options: TransferOptions,
    single_file: bool,
    refused: Refused,
    groundwork: Groundwork,
) -> Result<JobSummary, CliError> {
    let (engine, mut events_rx) = Engine::with_options(
        endpoint.clone(),
        EngineOptions {
            workers: options.jobs,
            allow_unsafe_names: options.allow_unsafe_names,
            limit_rate: options.limit_rate,
            streams: options.streams,
            streams_from: options.streams_from,
            ..EngineOptions::default()
        },
    );
    let job = engine.submit_with(spec, Some(groundwork));
    let bar = options.progress.then(new_bar);
    let mut report = Report {
        json: options.json,
        strict: options.strict,
        ..Report::default()
    };
    let outcome = tokio::select! {
        outcome = follow(job, &mut events_rx, bar.as_ref(), &mut report) => outcome,
        _ = tokio::signal::ctrl_c() => {
            engine.cancel(job);
            report.interrupted = true;
            follow(job, &mut events_rx, bar.as_ref(), &mut report).await
        }
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
        // People get one closing line; scripts (no terminal, no bar) get silence.
        if let Ok(summary) = &outcome {
            eprintln!("{}", summary_line(summary));
        }
    }
    for line in report.closing_lines(options.policy, single_file) {
        eprintln!("ferry: {line}");
    }
    let refused_count = refused.count;
    let outcome = refused.add_to(outcome);
    if options.json {
        let exit = outcome.as_ref().err().map_or(0, CliError::exit_code);
        outcome::json_summary(
            report.summary.as_ref(),
            report.failed + refused_count,
            report.left_out,
            exit,
        );
    }
    outcome
}

/// Files that failed because the connection did, gathered so that a server that went away
/// is reported once for the job instead of once per file (and per worker).
#[derive(Debug, Default)]
struct Report {
    /// Distinct connection failures, in the order seen.
    lost: Vec<String>,
    /// The files they left unfinished.
    unfinished: Vec<String>,
    /// Entries the job left out: symlinks, special files, names that cannot be transferred,
    /// and with `--skip-existing` the existing destinations.
    skipped: u64,
    /// The entries of a tree left out, each also named on its own line.
    left_out: LeftOutCounts,
    /// Files that failed.
    failed: u64,
    /// How the job ended, when it ran to its end.
    summary: Option<JobSummary>,
    json: bool,
    strict: bool,
    /// Ctrl+C cancelled the job: the closing lines say how to finish it.
    interrupted: bool,
    /// Files that arrived verified.
    arrived: u64,
    /// Files `--resume` left alone because their destination is not a part of the source.
    mismatched: u64,
}

/// Unfinished files named in the closing line; the rest are counted.
const NAMED_UNFINISHED: usize = 3;

impl Report {
    /// Takes a failed file's error line; `false` when it is for the caller to print now.
    fn file_failed(&mut self, path: &str, error: &str) -> bool {
        let code = error.split(':').next().unwrap_or_default();
        if code == crate::engine::RESUME_MISMATCH {
            self.mismatched += 1;
        }
        if !matches!(code, "connection" | "protocol" | "ssh_failed") {
            return false;
        }
        if !self.lost.iter().any(|seen| seen == error) {
            self.lost.push(error.to_owned());
        }
        self.unfinished.push(path.to_owned());
        true
    }

    /// What is left to say once the job is over: the lost connection with the files it left
    /// unfinished and how to finish them, and what was skipped.
    fn closing_lines(&self, policy: ConflictPolicy, single_file: bool) -> Vec<String> {
        let mut lines = Vec::new();
        if self.interrupted && self.lost.is_empty() {
            lines.push(format!(
                "interrupted: {} arrived; what arrived is kept: re-run the same \
                 command{} to finish",
                crate::format::counted(self.arrived, "file", "files"),
                resume_hint(policy, single_file)
            ));
        }
        if let Some((last, earlier)) = self.lost.split_last() {
            lines.extend(
                earlier
                    .iter()
                    .map(|e| crate::format::escape_text(e).into_owned()),
            );
            let n = self.unfinished.len();
            let mut named = self
                .unfinished
                .iter()
                .take(NAMED_UNFINISHED)
                .map(|p| if p.is_empty() { "/" } else { p })
                .collect::<Vec<_>>()
                .join(", ");
            if n > NAMED_UNFINISHED {
                named.push_str(&format!(
                    " and {} more",
                    crate::format::count((n - NAMED_UNFINISHED) as u64)
                ));
            }
            let files = crate::format::counted(n as u64, "file", "files");
            lines.push(
                crate::format::escape_text(&format!("{last}; {files} not finished: {named}"))
                    .into_owned(),
            );
            let how = resume_hint(policy, single_file);
            lines.push(format!(
                "what arrived is kept: re-run the same command{how} to finish"
            ));
        }
        if self.mismatched > 0 {
            lines.push(
                "a destination that is not a part of its source cannot be resumed: choose \
                 --overwrite to replace it or --rename to keep both"
                    .to_owned(),
            );
        }
        lines.extend(self.left_out.closing_line(self.strict));
        let named = self.left_out.by_design + self.left_out.errors + self.left_out.vanished;
        let existing = self.skipped.saturating_sub(named);
        if existing > 0 && policy == ConflictPolicy::Skip {
            lines.push(format!(
                "skipped {} (--skip-existing)",
                crate::format::counted(
                    existing,
                    "existing destination file",
                    "existing destination files"
                )
            ));
        }
        lines
    }
}

/// How to re-run a cut-off job so it finishes: a hidden partial is resumed under every
/// policy, so one file needs no flag; of several, the finished ones would fail as existing (or
/// be renamed, or be sent again) without --resume.
fn resume_hint(policy: ConflictPolicy, single_file: bool) -> &'static str {
    match policy {
        _ if single_file => "",
        // A finished file is kept by these as it is by a skip.
        ConflictPolicy::Resume
        | ConflictPolicy::Skip
        | ConflictPolicy::OverwriteIfNewer
        | ConflictPolicy::OverwriteIfSizeDiffers => "",
        ConflictPolicy::Overwrite => " with --resume in place of --overwrite",
        ConflictPolicy::Rename => " with --resume in place of --rename",
        ConflictPolicy::Fail | ConflictPolicy::Ask => " with --resume",
    }
}

/// `3 files, 1.00 GiB in 1.5 s (682.67 MiB/s), 1 skipped`.
pub fn summary_line(summary: &JobSummary) -> String {
    let secs = summary.elapsed.as_secs_f64();
    let mut line = format!(
        "{}, {} in {secs:.1} s",
        crate::format::counted(summary.files, "file", "files"),
        humansize::format_size(summary.bytes, humansize::BINARY),
    );
    if secs > 0.0 {
        let rate = (summary.bytes as f64 / secs) as u64;
        line.push_str(&format!(
            " ({}/s)",
            humansize::format_size(rate, humansize::BINARY)
        ));
    }
    if summary.skipped > 0 {
        line.push_str(&format!(
            ", {} skipped",
            crate::format::count(summary.skipped)
        ));
    }
    line
}

/// A spinner until the job's size is known: a bar drawn before then would have no scale.
fn new_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{spinner} {wide_msg}") {
        bar.set_style(style);
    }
    bar.set_message("scanning…");
    bar.enable_steady_tick(SPINNER_TICK);
    bar
}

/// How often the scanning spinner turns even when nothing arrives: it says the tool is alive.
const SPINNER_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// Turns the scanning spinner into the bar, once the size is known.
fn show_bar(bar: &ProgressBar, bytes: u64) {
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{bar:30}] {binary_bytes}/{binary_total_bytes} {wide_msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_length(bytes);
}

/// The bar's words: the engine's speed and time left (which count neither a resumed prefix
/// nor time spent on a question, unlike a rate read off the bar's position), the files, and
/// the file whose bytes are moving.
fn progress_line(progress: &crate::engine::JobProgress) -> String {
    let speed = format!("{}/s", crate::format::size(progress.speed as u64));
    let eta = progress
        .eta
        .map_or_else(|| "-".to_owned(), crate::format::eta);
    format!(
        "{speed} eta {eta} {}/{} {}",
        progress.files_done,
        progress.files_total,
        progress
            .current
            .as_deref()
            .map(crate::format::escape_name)
            .unwrap_or_default()
    )
}

/// The spinner's line while the tree is still walked: what already arrived.
fn scanning_line(files: u64, bytes: u64) -> String {
    if files == 0 && bytes == 0 {
        return "scanning…".to_string();
    }
    format!(
        "scanning… {}, {} done",
        crate::format::counted(files, "file", "files"),
        crate::format::size(bytes)
    )
}

async fn follow(
    job: JobId,
    events_rx: &mut Events,
    bar: Option<&ProgressBar>,
    report: &mut Report,
) -> Result<JobSummary, CliError> {
    let mut planned = false;
    while let Some(event) = events_rx.recv().await {
        match event {
            TransferEvent::Planned { bytes, .. } => {
                planned = true;
                if let Some(bar) = bar {
                    show_bar(bar, bytes);
                }
            }
            // One polled just before the plan may still arrive after it: the bar already has
            // its scale, and the next event brings the counts.
            TransferEvent::Progress(progress) if progress.scanning && planned => {}
            TransferEvent::Progress(progress) if progress.scanning => {
                if let Some(bar) = bar {
                    let mut line = scanning_line(progress.files_done, progress.bytes_done);
                    if let Some(current) = &progress.current {
                        line.push(' ');
                        line.push_str(&crate::format::escape_name(current));
                    }
                    bar.set_message(line);
                }
            }
            TransferEvent::Progress(progress) => {
                if let Some(bar) = bar {
                    bar.set_position(progress.bytes_done);
                    bar.set_message(progress_line(&progress));
                }
            }
            // The CLI never asks; a policy is always set by the flags.
            TransferEvent::Conflict { reply, .. } => {
                let _ = reply.send(ConflictAnswer {
                    choice: ConflictPolicy::Fail,
                    apply_to_all: true,
                });
            }
            TransferEvent::FileDone {
                path,
                bytes,
                digest,
                ..
            } => {
                report.arrived += 1;
                if report.json {
                    outcome::json_done(&path, bytes, &digest.to_string());
                }
            }
            TransferEvent::LeftOut {
                path,
                reason,
                message,
                ..
            } => {
                report.left_out.add(reason);
                if report.json {
                    outcome::json_left_out(&path, reason, &message);
                }
                // Names may be a hostile server's.
                let line = format!(
                    "ferry: {}: {}: {}",
                    reason.as_str(),
                    crate::format::escape_text(&path),
                    crate::format::escape_text(&message)
                );
                match bar {
                    Some(bar) => bar.suspend(|| eprintln!("{line}")),
                    None => eprintln!("{line}"),
                }
            }
            TransferEvent::FileFailed { path, error, .. } => {
                report.failed += 1;
                if report.json {
                    outcome::json_failed(&path, &error);
                }
                if report.file_failed(&path, &error) {
                    continue;
                }
                let line = format!("ferry: {}", crate::format::escape_text(&error));
                match bar {
                    Some(bar) => bar.suspend(|| eprintln!("{line}")),
                    None => eprintln!("{line}"),
                }
            }
            TransferEvent::Finished { job: done, outcome } if done == job => {
                if let Ok(summary) = &outcome {
                    report.skipped = summary.skipped;
                    report.summary = Some(summary.clone());
                }
                let partial = report.left_out.exit_code(report.strict);
                return match outcome {
                    Ok(summary) if summary.failed > 0 => Err(CliError::Reported {
                        failed: summary.failed,
                    }),
                    Ok(_) if partial != 0 => Err(CliError::Partial {
                        count: report.left_out.errors
                            + report.left_out.vanished
                            + report.left_out.by_design,
                        status: partial,
                    }),
                    Ok(summary) => Ok(summary),
                    Err(message) => Err(CliError::Job(message)),
                };
            }
            TransferEvent::Finished { .. } => {}
        }
    }
    Err(CliError::Job("the engine stopped without finishing".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scanning_line_counts_what_arrived() {
        assert_eq!(
            scanning_line(2140, 8 * 1024 * 1024 + 400 * 1024),
            "scanning… 2,140 files, 8.4 MiB done"
        );
        assert_eq!(scanning_line(1, 10), "scanning… 1 file, 10 B done");
        assert_eq!(scanning_line(0, 0), "scanning…");
    }

    #[test]
    fn the_bar_line_names_the_moving_file_with_the_engines_speed() {
        let progress = crate::engine::JobProgress {
            job: JobId(1),
            files_done: 3,
            files_total: 10,
            bytes_done: 1000,
            bytes_total: 5000,
            current: Some("photos/b\u{1b}.jpg".into()),
            speed: 2.0 * 1024.0 * 1024.0,
            eta: Some(std::time::Duration::from_secs(90)),
            scanning: false,
        };
        let line = progress_line(&progress);
        assert!(line.starts_with("2 MiB/s eta 1:30 3/10 photos/b"), "{line}");
        assert!(!line.contains('\u{1b}'), "{line}");
        let waiting = crate::engine::JobProgress {
            eta: None,
            current: None,
            ..progress
        };
        assert!(progress_line(&waiting).contains("eta - 3/10"));
    }

    #[test]
    fn the_closing_line_says_what_moved_and_how_fast() {
        let summary = JobSummary {
            files: 3,
            bytes: 3 * 1024 * 1024,
            skipped: 2,
            failed: 0,
            elapsed: std::time::Duration::from_secs(2),
        };
        assert_eq!(
            summary_line(&summary),
            "3 files, 3 MiB in 2.0 s (1.50 MiB/s), 2 skipped"
        );
    }

    #[test]
    fn a_lost_server_is_one_line_and_the_hint_fits_the_flags() {
        let lost = "connection: h:7070: the server closed the connection";
        let mut report = Report::default();
        for i in 0..5 {
            assert!(report.file_failed(&format!("med/f{i}.bin"), lost));
        }
        assert!(!report.file_failed("a.txt", "already_exists: a.txt: exists"));
        let lines = report.closing_lines(ConflictPolicy::Fail, false);
        assert_eq!(
            lines,
            [
                format!(
                    "{lost}; 5 files not finished: med/f0.bin, med/f1.bin, med/f2.bin and 2 more"
                ),
                "what arrived is kept: re-run the same command with --resume to finish".to_owned(),
            ]
        );
        let hint = |policy, single| report.closing_lines(policy, single)[1].clone();
        assert!(hint(ConflictPolicy::Fail, true).ends_with("the same command to finish"));
        assert!(hint(ConflictPolicy::Resume, false).ends_with("the same command to finish"));
        assert!(
            hint(ConflictPolicy::Overwrite, false).contains("--resume in place of --overwrite")
        );
        assert!(hint(ConflictPolicy::Rename, false).contains("--resume in place of --rename"));

        let mut mismatched = Report::default();
        assert!(!mismatched.file_failed("a", "resume_mismatch: a: cannot resume: ..."));
        assert_eq!(
            mismatched.closing_lines(ConflictPolicy::Resume, true),
            [
                "a destination that is not a part of its source cannot be resumed: choose \
              --overwrite to replace it or --rename to keep both"
            ]
        );

        let mut skipped = Report {
            skipped: 3,
            ..Report::default()
        };
        skipped.left_out.add(crate::engine::LeftOutReason::Symlink);
        assert_eq!(
            skipped.closing_lines(ConflictPolicy::Skip, false),
            [
                "not copied: 1 symlink or special file (by design; --strict makes them an \
                 error) (each named above)",
                "skipped 2 existing destination files (--skip-existing)"
            ]
        );
        assert!(
            Report::default()
                .closing_lines(ConflictPolicy::Fail, true)
                .is_empty()
        );
    }
}
