//! [`EngineError`]: everything that can go wrong in the engine, each with a stable code, and the
//! wording rules its messages share (no OS error numbers, one line whatever a server sent).

use std::path::PathBuf;

use ferry_protocol::{ErrorBody, ErrorCode};

use super::known_hosts;

/// Everything that can go wrong in the engine, each with a stable code for the CLI's output.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The server answered with an error.
    #[error("{code}: {}: {}", crate::format::escape_name(if path.is_empty() { "/" } else { path }), crate::format::escape_text(message))]
    Remote {
        code: ErrorCode,
        message: String,
        path: String,
    },
    /// A local file operation failed.
    #[error("{}: {}: {}", local_code(source), crate::format::local_path(path), without_os_error(&source.to_string()))]
    Local {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Could not reach the server, or the connection broke.
    #[error("connection: {addr}: {}", crate::format::escape_text(message))]
    Connection { addr: String, message: String },
    /// ssh could not reach the remote `ferry-server` (host unknown, authentication refused,
    /// the command missing, the remote end killed): `message` is ssh's own words, on one line.
    #[error("ssh_failed: {addr}: {}", crate::format::escape_text(message))]
    Ssh { addr: String, message: String },
    /// The server broke the protocol.
    #[error("protocol: {}", crate::format::escape_text(.0))]
    Protocol(String),
    /// The bytes received do not match the digest.
    #[error(
        "checksum_mismatch: {}: the bytes received do not have the sender's digest",
        crate::format::escape_name(path)
    )]
    Checksum { path: String },
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// A download refused a name that holds characters reordering or hiding text: other
    /// programs would show it as the spoof it may be.
    #[error(
        "unsafe_name: {}: the name holds bidirectional or invisible characters (allow them with --allow-unsafe-names)",
        crate::format::escape_name(path)
    )]
    UnsafeName { path: String },
    /// The engine itself refused an item to keep a file from being lost (a resume of a
    /// destination that is not a part of its source); `code` is stable, as the server's are.
    #[error(
        "{code}: {}: {}",
        crate::format::escape_name(path),
        crate::format::escape_text(message)
    )]
    Refused {
        code: &'static str,
        path: String,
        message: String,
    },
    /// The server's certificate is not trusted, TLS failed, or credentials would have gone out
    /// in clear text; `code` is one of [`tls::code`](super::tls::code).
    #[error(
        "{code}: {}: {}",
        crate::format::escape_name(addr),
        crate::format::escape_text(message)
    )]
    Trust {
        code: &'static str,
        addr: String,
        /// The fingerprint the server presented, when it got that far.
        presented: Option<known_hosts::Fingerprint>,
        message: String,
    },
}

impl EngineError {
    /// A stable snake_case code, as printed by the CLI (`not_found`, `connection`, ...).
    pub fn code(&self) -> &str {
        match self {
            EngineError::Remote { code, .. } => code.as_str(),
            EngineError::Local { source, .. } => local_code(source),
            EngineError::Connection { .. } => "connection",
            EngineError::Ssh { .. } => "ssh_failed",
            EngineError::Protocol(_) => "protocol",
            EngineError::Checksum { .. } => "checksum_mismatch",
            EngineError::Cancelled => "cancelled",
            EngineError::UnsafeName { .. } => "unsafe_name",
            EngineError::Refused { code, .. } => code,
            EngineError::Trust { code, .. } => code,
        }
    }

    /// The server's error `body` about `path`.
    pub fn remote(path: &str, body: ErrorBody) -> EngineError {
        // Servers often start their message with the path too; once is enough on one line.
        let message = match body.message.strip_prefix(path) {
            Some(rest) if !path.is_empty() && rest.starts_with(": ") => &rest[2..],
            _ => body.message.as_str(),
        };
        // Escaped where it enters: whatever later shows it, a server's words stay on one line.
        let message = crate::format::escape_text(without_os_error(message)).into_owned();
        EngineError::Remote {
            code: body.code,
            message,
            path: path.to_owned(),
        }
    }

    /// A local IO error about `path`.
    pub fn local(path: impl Into<PathBuf>, source: std::io::Error) -> EngineError {
        EngineError::Local {
            path: path.into(),
            source,
        }
    }

    /// A destination that `Resume` cannot continue, since its bytes are not the start of the
    /// source's: `why` says how it differs. It is left as it was.
    pub(crate) fn resume_mismatch(path: &str, why: &str) -> EngineError {
        EngineError::Refused {
            code: RESUME_MISMATCH,
            path: path.to_owned(),
            message: format!(
                "cannot resume: {why}, so it is not a part of the source; it was left as it was \
                 (overwrite replaces it, rename keeps both)"
            ),
        }
    }

    /// A destination that exists under the `Fail` policy: the same advice in both directions,
    /// since a re-run after an interruption meets the files it already finished.
    pub(crate) fn exists(dest: Destination<'_>) -> EngineError {
        const ADVICE: &str =
            "the destination exists (choose --overwrite, --skip-existing, --resume or --rename)";
        match dest {
            Destination::Local(path) => EngineError::local(
                path,
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, ADVICE),
            ),
            Destination::Remote(path) => EngineError::Remote {
                code: ErrorCode::AlreadyExists,
                message: ADVICE.into(),
                path: path.to_owned(),
            },
        }
    }

    /// The protocol error code behind this error, when the server sent one.
    pub fn remote_code(&self) -> Option<ErrorCode> {
        match self {
            EngineError::Remote { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Where a file a job writes goes: a download's local path, an upload's remote one.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Destination<'a> {
    Local(&'a std::path::Path),
    Remote(&'a str),
}

/// An error text without Rust's ` (os error N)` suffix: the code in front already says what the
/// number would, and people read the words. Older servers send the suffix too.
pub(crate) fn without_os_error(text: &str) -> &str {
    let Some(open) = text.rfind(" (os error ") else {
        return text;
    };
    let number = &text[open + " (os error ".len()..];
    match number.strip_suffix(')') {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            &text[..open]
        }
        _ => text,
    }
}

/// A local source that changed while it was being read for an upload: what was read is no
/// version of the file that ever existed. Carried inside an [`std::io::Error`] so it reports with
/// the same `file_changed` code as a download whose source changed on the server.
#[derive(Debug)]
pub(crate) struct Changed;

impl std::fmt::Display for Changed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the file changed while it was being sent")
    }
}

impl std::error::Error for Changed {}

/// Whether `error` is a [`Changed`].
pub(crate) fn is_changed(error: &std::io::Error) -> bool {
    error.get_ref().is_some_and(|inner| inner.is::<Changed>())
}

/// Local IO errors get the same vocabulary as the server's, so scripts match one set of codes.
pub(crate) fn local_code(error: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    if is_changed(error) {
        return "file_changed";
    }
    match error.kind() {
        ErrorKind::NotFound => "not_found",
        ErrorKind::AlreadyExists => "already_exists",
        ErrorKind::PermissionDenied => "forbidden",
        ErrorKind::NotADirectory => "not_a_directory",
        ErrorKind::IsADirectory => "is_a_directory",
        ErrorKind::DirectoryNotEmpty => "not_empty",
        ErrorKind::StorageFull => "no_space",
        // A name this filesystem cannot hold: too long, or bytes it refuses (`EILSEQ`).
        ErrorKind::InvalidFilename => "bad_path",
        _ if error.raw_os_error() == Some(rustix::io::Errno::ILSEQ.raw_os_error()) => "bad_path",
        _ => "io",
    }
}

/// The code of a resume refused because the destination is not a part of the source.
pub const RESUME_MISMATCH: &str = "resume_mismatch";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tls;

    #[test]
    fn every_error_prints_its_code_first() {
        let cases = [
            (
                EngineError::remote("docs/a.txt", ErrorBody::new(ErrorCode::NotFound, "gone")),
                "not_found",
                "not_found: docs/a.txt: gone",
            ),
            (
                EngineError::local(
                    "/tmp/x",
                    std::io::Error::from(std::io::ErrorKind::AlreadyExists),
                ),
                "already_exists",
                "already_exists: /tmp/x: entity already exists",
            ),
            (
                EngineError::local("/tmp/y", std::io::Error::other("disk on fire")),
                "io",
                "io: /tmp/y: disk on fire",
            ),
            (
                EngineError::Connection {
                    addr: "h:7070".into(),
                    message: "refused".into(),
                },
                "connection",
                "connection: h:7070: refused",
            ),
            (
                EngineError::local("/tmp/z", std::io::Error::other(Changed)),
                "file_changed",
                "file_changed: /tmp/z: the file changed while it was being sent",
            ),
            (EngineError::Cancelled, "cancelled", "cancelled"),
        ];
        for (error, code, line) in cases {
            assert_eq!(error.code(), code);
            assert_eq!(error.to_string(), line);
        }
        let root = EngineError::remote("", ErrorBody::new(ErrorCode::Forbidden, "the root stays"));
        assert_eq!(root.to_string(), "forbidden: /: the root stays");
        let doubled = EngineError::remote("a/b", ErrorBody::new(ErrorCode::Busy, "a/b: in use"));
        assert_eq!(doubled.to_string(), "busy: a/b: in use");
        let enoent = std::io::Error::from_raw_os_error(2);
        assert_eq!(
            EngineError::local("/tmp/z", enoent).to_string(),
            "not_found: /tmp/z: No such file or directory"
        );
        let older = EngineError::remote(
            "m",
            ErrorBody::new(
                ErrorCode::NotFound,
                "m: No such file or directory (os error 2)",
            ),
        );
        assert_eq!(older.to_string(), "not_found: m: No such file or directory");
        assert_eq!(without_os_error("odd (os error x)"), "odd (os error x)");
        let checksum = EngineError::Checksum { path: "a".into() };
        assert_eq!(checksum.code(), "checksum_mismatch");
        assert!(checksum.to_string().starts_with("checksum_mismatch: a: "));
    }

    #[test]
    fn a_local_name_the_filesystem_cannot_hold_is_bad_path_and_shown_escaped() {
        use std::os::unix::ffi::OsStrExt;
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(b"/mnt/usb/new\nline\xff"));
        for raw in [rustix::io::Errno::ILSEQ, rustix::io::Errno::NAMETOOLONG] {
            let error =
                EngineError::local(path, std::io::Error::from_raw_os_error(raw.raw_os_error()));
            assert_eq!(error.code(), "bad_path");
            let shown = error.to_string();
            assert!(shown.contains("/mnt/usb/new\\nline\\xff"), "{shown}");
            assert!(!shown.contains('\n'), "{shown}");
        }
    }

    #[test]
    fn every_error_is_one_line_whatever_its_parts_hold() {
        let forged = "x\nferry: 0 files failed, all digests verified\u{1b}[2J\u{202e}";
        let errors = [
            EngineError::Refused {
                code: RESUME_MISMATCH,
                path: forged.into(),
                message: forged.into(),
            },
            EngineError::Checksum {
                path: forged.into(),
            },
            EngineError::Connection {
                addr: "nas:7070".into(),
                message: forged.into(),
            },
            EngineError::Protocol(forged.into()),
            EngineError::Trust {
                code: tls::code::TLS,
                addr: "nas:7070".into(),
                presented: None,
                message: forged.into(),
            },
            // Made by ferry around a path, not through `remote`.
            EngineError::Remote {
                code: ErrorCode::SameFile,
                message: forged.into(),
                path: forged.into(),
            },
        ];
        for error in errors {
            let shown = error.to_string();
            assert!(!shown.chars().any(crate::format::needs_escape), "{shown:?}");
            assert!(shown.contains("x\\nferry: 0 files failed"), "{shown:?}");
        }
    }
}
