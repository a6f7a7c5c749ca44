//! What a `get` or `put` did, entry by entry, for people and for scripts: each entry that was
//! not copied is named with why on stderr, `--json` prints one object per file result and per
//! entry left out and a final summary, and the exit status says whether everything asked for
//! arrived (0), a file or source failed (1), entries of a tree could not be read or held (23),
//! or entries only vanished on the way (24), as rsync's 23 and 24.

use std::io::Write;

use serde_json::json;

use crate::engine::{JobSummary, LeftOutReason};

/// Partial transfer: entries of a tree were not copied because of errors.
pub const EXIT_PARTIAL: u8 = 23;
/// Partial transfer: entries vanished between the listing and their copy, nothing else failed.
pub const EXIT_VANISHED: u8 = 24;

/// Entries a job left out, by kind of reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeftOutCounts {
    /// Symlinks and special files, left out by design.
    pub by_design: u64,
    /// Unreadable directories, names the destination cannot hold.
    pub errors: u64,
    pub vanished: u64,
}

impl LeftOutCounts {
    pub fn add(&mut self, reason: LeftOutReason) {
        match reason {
            // Kept by `--update`'s own rule: counted with the skipped files, and never an error.
            LeftOutReason::UpToDate => {}
            _ if reason.by_design() => self.by_design += 1,
            LeftOutReason::Vanished => self.vanished += 1,
            _ => self.errors += 1,
        }
    }

    /// The exit status these left-out entries call for when no file failed: `--strict` makes
    /// links and special files an error too.
    pub fn exit_code(&self, strict: bool) -> u8 {
        if self.errors > 0 || (strict && self.by_design > 0) {
            EXIT_PARTIAL
        } else if self.vanished > 0 {
            EXIT_VANISHED
        } else {
            0
        }
    }

    /// The closing line for people: what was not copied, by reason, and how to have links
    /// fail the command; `None` when nothing was left out.
    pub fn closing_line(&self, strict: bool) -> Option<String> {
        let mut parts = Vec::new();
        let plural = crate::format::counted;
        if self.errors > 0 {
            parts.push(plural(
                self.errors,
                "entry that could not be read or held",
                "entries that could not be read or held",
            ));
        }
        if self.vanished > 0 {
            parts.push(plural(
                self.vanished,
                "entry that vanished",
                "entries that vanished",
            ));
        }
        if self.by_design > 0 {
            let mut links = plural(
                self.by_design,
                "symlink or special file",
                "symlinks or special files",
            );
            if !strict {
                links.push_str(" (by design; --strict makes them an error)");
            }
            parts.push(links);
        }
        (!parts.is_empty()).then(|| format!("not copied: {} (each named above)", parts.join(", ")))
    }
}

/// One line of `--json` output, written at once so a reader sees each result as it happens.
pub(super) fn print_json(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    // A reader that went away is not worth failing the transfer for.
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// A file that arrived and was verified.
pub fn json_done(path: &str, bytes: u64, digest: &str) {
    print_json(
        &json!({"type": "file", "path": path, "status": "done", "bytes": bytes, "digest": digest}),
    );
}

/// A file or source that failed; `error` is the `code: path: message` line.
pub fn json_failed(path: &str, error: &str) {
    let code = error.split(':').next().unwrap_or("failed");
    print_json(
        &json!({"type": "file", "path": path, "status": "failed", "code": code, "error": error}),
    );
}

/// An entry of a tree that was not copied.
pub fn json_left_out(path: &str, reason: LeftOutReason, message: &str) {
    print_json(
        &json!({"type": "left_out", "path": path, "reason": reason.as_str(), "message": message}),
    );
}

/// The last line: the totals and the exit status the command ends with.
pub fn json_summary(summary: Option<&JobSummary>, failed: u64, left_out: LeftOutCounts, exit: u8) {
    let (files, bytes, skipped, secs) = summary.map_or((0, 0, 0, 0.0), |s| {
        (s.files, s.bytes, s.skipped, s.elapsed.as_secs_f64())
    });
    print_json(&json!({
        "type": "summary",
        "files": files,
        "bytes": bytes,
        "failed": failed,
        "skipped": skipped,
        "left_out": {
            "errors": left_out.errors,
            "vanished": left_out.vanished,
            "symlinks_or_special": left_out.by_design,
        },
        "seconds": secs,
        "exit": exit,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_outrank_vanished_and_links_count_only_when_strict() {
        let mut counts = LeftOutCounts::default();
        assert_eq!(counts.exit_code(true), 0);
        assert_eq!(counts.closing_line(false), None);
        counts.add(LeftOutReason::Symlink);
        assert_eq!(counts.exit_code(false), 0);
        assert_eq!(counts.exit_code(true), EXIT_PARTIAL);
        assert_eq!(
            counts.closing_line(false).unwrap(),
            "not copied: 1 symlink or special file (by design; --strict makes them an error) \
             (each named above)"
        );
        counts.add(LeftOutReason::Vanished);
        assert_eq!(counts.exit_code(false), EXIT_VANISHED);
        counts.add(LeftOutReason::Unreadable);
        counts.add(LeftOutReason::Name);
        assert_eq!(counts.exit_code(false), EXIT_PARTIAL);
        assert!(
            counts
                .closing_line(true)
                .unwrap()
                .starts_with("not copied: 2 entries that could not be read or held, 1 entry that vanished, 1 symlink or special file (each")
        );
    }
}
