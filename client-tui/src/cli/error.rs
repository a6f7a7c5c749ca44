//! [`CliError`]: why a command failed, printed as one `code: path: message` line with the
//! protocol's codes, and the exit status it gives.

use crate::engine::EngineError;

/// Why a command failed; `Display` is the one line printed after `ferry: `.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The arguments make no sense together (a directory without `-r`, several sources into
    /// something that is not a directory, ...).
    #[error("{code}: {path}: {message}")]
    Usage {
        code: &'static str,
        path: String,
        message: String,
    },
    /// Files failed; each was already printed on its own line.
    #[error("{} failed", crate::format::counted(*.failed, "file", "files"))]
    Reported { failed: u64 },
    /// Every file went, but entries of a tree were not copied (each already named): exit
    /// `status`, [`outcome::EXIT_PARTIAL`](super::outcome::EXIT_PARTIAL) or [`outcome::EXIT_VANISHED`](super::outcome::EXIT_VANISHED).
    #[error("{} not copied", crate::format::counted(*.count, "entry", "entries"))]
    Partial { count: u64, status: u8 },
    /// The job could not run (connection lost, cancelled).
    #[error("{0}")]
    Job(String),
    /// Writing the output failed (a closed pipe, say).
    #[error("io: <stdout>: {}", crate::engine::without_os_error(&.0.to_string()))]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// The stable code at the start of the line.
    pub fn code(&self) -> &str {
        match self {
            CliError::Engine(e) => e.code(),
            CliError::Usage { code, .. } => code,
            CliError::Reported { .. } => "failed",
            CliError::Partial { .. } => "partial",
            CliError::Job(message) => message.split(':').next().unwrap_or("failed"),
            CliError::Output(_) => "io",
        }
    }

    /// The error as the terminal shows it, after `ferry: `. Errors may quote a hostile
    /// server's words, so they are one escaped line; only ferry's own warning about a changed
    /// certificate keeps its lines (each escaped), since it is meant to be loud.
    pub fn shown(&self) -> String {
        match self {
            CliError::Engine(EngineError::Trust {
                code: code @ crate::engine::tls::code::CERTIFICATE_CHANGED,
                addr,
                message,
                ..
            }) => {
                // Made of fingerprints, the address and a local path: split into its lines
                // before each is escaped, so it stays loud and nothing in it starts a line of
                // its own.
                let mut lines = vec![format!("{code}: {}: ", crate::format::escape_name(addr))];
                lines.extend(
                    message
                        .lines()
                        .skip_while(|line| line.is_empty())
                        .map(|line| crate::format::escape_text(line).into_owned()),
                );
                lines.join("\n")
            }
            _ => crate::format::escape_text(&self.to_string()).into_owned(),
        }
    }

    /// Whether nothing is left to print: the details were printed already, or the reader of
    /// stdout has gone (`ferry ls | head -1`), which is no failure worth a word.
    pub fn already_reported(&self) -> bool {
        matches!(self, CliError::Reported { .. } | CliError::Partial { .. })
            || self.is_closed_pipe()
    }

    /// The exit status: 130 after an interrupt, like a shell; 141 (128 + SIGPIPE) when stdout
    /// was closed, the status a shell shows for `ls` in the same place, so `set -o pipefail`
    /// treats both alike; 23 or 24 when only entries of a tree were not copied (as rsync);
    /// 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Job(message) if message == "cancelled" => 130,
            CliError::Partial { status, .. } => *status,
            _ if self.is_closed_pipe() => 141,
            _ => 1,
        }
    }

    fn is_closed_pipe(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

pub(crate) fn usage(
    code: &'static str,
    path: impl Into<String>,
    message: impl Into<String>,
) -> CliError {
    CliError::Usage {
        code,
        path: path.into(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_start_with_their_code() {
        let e = usage("is_a_directory", "docs", "use -r to copy a directory");
        assert_eq!(
            e.to_string(),
            "is_a_directory: docs: use -r to copy a directory"
        );
        assert_eq!(e.code(), "is_a_directory");
        let e = CliError::Engine(EngineError::Remote {
            code: ferry_protocol::ErrorCode::NotFound,
            message: "no such file".into(),
            path: "docs/a.txt".into(),
        });
        assert_eq!(e.to_string(), "not_found: docs/a.txt: no such file");
        assert_eq!(CliError::Job("cancelled".into()).exit_code(), 130);
        let pipe = CliError::Output(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(pipe.already_reported());
        assert_eq!(pipe.exit_code(), 141);
        let full = CliError::Output(std::io::Error::from_raw_os_error(28));
        assert!(!full.already_reported());
        assert_eq!(full.to_string(), "io: <stdout>: No space left on device");
    }
}
