//! What the banner says about transfers: a file's failure, and a job's end (done, partly
//! done, failed or cancelled), with the keys that lead on. Pure text from a [`JobRow`], so the
//! app only shows it.

use super::jobs::{JobRow, JobState};
use super::keymap::{Action, Keymap};
use super::pane::Side;
use super::screen::{Banner, BannerKind};
use crate::format;

/// What a job's end means for the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub banner: Option<Banner>,
    /// Every item arrived verified: each gets its tick.
    pub all_verified: bool,
    /// The job's own error, which may say the connection broke.
    pub failure: Option<String>,
}

/// The banner and the marks of a job that just ended.
pub fn ending(job: &JobRow, keymap: &Keymap) -> Ending {
    let info = |text: String| {
        Some(Banner {
            kind: BannerKind::Info,
            text,
        })
    };
    let error = |text: String| {
        Some(Banner {
            kind: BannerKind::Error,
            text,
        })
    };
    let mut all_verified = false;
    let mut failure = None;
    let number = job.number;
    let banner = match &job.state {
        JobState::Done(_) if job.skipped_only() => info(format!(
            "#{} {}: nothing {}, skipped",
            number,
            job.info.label,
            if job.info.is_move { "moved" } else { "copied" },
        )),
        JobState::Done(summary) if summary.failed == 0 && job.left_out_errors > 0 => {
            // Everything readable arrived, but not everything asked for: said as
            // an error, naming the first entry and where the rest are listed.
            let first = job
                .left_out
                .iter()
                .find(|(_, reason, _)| !reason.by_design())
                .map(|(path, reason, message)| {
                    format!(
                        "{}: {} ({})",
                        reason.as_str(),
                        failure_text(path, message),
                        format::escape_name(path)
                    )
                })
                .unwrap_or_default();
            error(format!(
                "#{} {} verified, {} not copied, first: {first}; {} on the \
                 transfer list lists them",
                number,
                format::counted(summary.files, "file", "files"),
                format::count(job.left_out_errors),
                keymap.hint(Action::Enter),
            ))
        }
        JobState::Done(summary) if summary.failed == 0 => {
            all_verified = true;
            let skipped = if summary.skipped > 0 {
                format!(", {} skipped", format::count(summary.skipped))
            } else {
                String::new()
            };
            // `summary.bytes` is what crossed the wire: after a resume it is less than
            // the files' size, so it is reported as sent (or received), not as
            // verified.
            info(format!(
                "#{} {}: {} verified, {} {}{skipped}",
                number,
                if job.info.is_move { "moved" } else { "copied" },
                format::counted(summary.files, "file", "files"),
                format::size(summary.bytes),
                match job.info.dest {
                    Side::Remote => "sent",
                    Side::Local => "received",
                }
            ))
        }
        JobState::Done(summary) => {
            // The error first, so a short banner still shows what went wrong.
            let first = job
                .failures
                .first()
                .map(|(path, error)| {
                    format!(
                        "{} ({})",
                        failure_text(path, error),
                        format::escape_name(path)
                    )
                })
                .unwrap_or_else(|| "failed".into());
            let mut text = if summary.failed > 1 {
                format!(
                    "#{} {} files failed, first: {first}; {} on the transfer list \
                     lists them",
                    number,
                    summary.failed,
                    keymap.hint(Action::Enter)
                )
            } else {
                format!("#{} {first}", number)
            };
            if job.kept_partial() {
                let action = if job.info.is_move {
                    Action::Move
                } else {
                    Action::Copy
                };
                text.push_str(&format!(
                    "; partial kept, {} again resumes",
                    keymap.hint(action)
                ));
            }
            error(text)
        }
        JobState::Failed(message) if message == "cancelled" => {
            let mut text = format!("#{} {}: cancelled", number, job.info.label);
            if job.files_verified > 0 {
                text.push_str(&format!(
                    ", {} arrived",
                    format::counted(job.files_verified, "file", "files")
                ));
            }
            Some(Banner {
                kind: BannerKind::Cancelled,
                text,
            })
        }
        JobState::Failed(message) => {
            failure = Some(message.clone());
            error(format!("#{} {} failed: {message}", number, job.info.label))
        }
        _ => None,
    };
    Ending {
        banner,
        all_verified,
        failure,
    }
}

/// A file's error without its path: the engine's errors read `code: path: message`, and the
/// banner names the path once, after the error.
pub fn failure_text(path: &str, error: &str) -> String {
    let unnamed = |text: &str| -> Option<String> {
        [path, path.trim_start_matches('/')]
            .iter()
            .filter(|p| !p.is_empty())
            .find_map(|p| text.strip_prefix(p)?.strip_prefix(": ").map(str::to_owned))
    };
    if let Some(message) = unnamed(error) {
        return message;
    }
    if let Some((code, rest)) = error.split_once(": ")
        && let Some(message) = unnamed(rest)
    {
        return format!("{code}: {message}");
    }
    error.to_owned()
}
