//! The transfer engine: the only part of the client that touches the network.
//!
//! One engine serves both faces. A [`Session`] is one connection for browsing and small
//! operations, awaited by its caller. An [`Engine`] runs transfer jobs in the background: each job
//! plans its files, then several workers, each on its own connection with many requests in
//! flight, move and verify them, and the owner hears about it through [`TransferEvent`]s.
//!
//! # Modules
//! - `connection`: a socket speaking the frame protocol, split into reader and writer halves.
//! - `tls`: `ferrys://` trust decisions (pin, known-hosts, system roots, first use), the
//!   plain-or-TLS transport halves, and the refusal to send credentials in clear text.
//! - `known_hosts`: certificate fingerprints and the file that pins them on first use.
//! - `session`: [`Session`], request/response on one connection.
//! - `progress`: pure progress arithmetic (speed, ETA, throttling), no clock of its own.
//! - `local`: the local side: walking sources, hidden partial files, free names, prefix hashes.
//! - `job`: [`Engine`], the shared state of a job, its workers and their pipelined connections.
//! - `plan`: what a job will move (walks, directories, existing destinations) and move cleanup.
//! - `same_file`: refusing a copy onto itself when the server shares this machine.
//! - `space`: whether a download fits on its local filesystem before it starts.
//! - `upload`, `download`: one file each way: conflicts, resume, streaming, verification.
//! - `browse`: the browsing worker: requests in, events out, over a lazily opened [`Session`].
//! - `bundled`: the `ferry-server` run in-process on loopback when the TUI opens no server.

pub mod browse;
pub mod bundled;
mod connection;
mod download;
mod job;
pub mod known_hosts;
mod local;
mod plan;
pub mod progress;
mod same_file;
mod session;
mod space;
pub mod tls;
mod upload;

use std::path::PathBuf;
use std::time::Duration;

use ferry_protocol::{Digest, ErrorBody, ErrorCode};
use tokio::sync::oneshot;

pub use job::{Engine, EngineOptions, Events};
pub use session::{ListStream, MAX_LISTED, MAX_WALKED, Session};

/// Where a server is and how to prove we may use it. `Debug` shows whether secrets are set,
/// never what they are, so an endpoint can be logged.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub token: Option<String>,
    /// Speak TLS (a `ferrys://` location).
    pub tls: bool,
    /// The certificate fingerprint the user pinned; it alone decides trust when set.
    pub fingerprint: Option<known_hosts::Fingerprint>,
    /// Trust a certificate nothing vouches for on first use, and record it in known-hosts.
    pub accept_new: bool,
    /// Allow credentials in clear text to another machine (plain `ferry://`).
    pub insecure: bool,
    /// The account to log in as, on a server with a users file.
    pub user: Option<String>,
    /// The account's password: from `FERRY_PASSWORD`, a prompt or the connect dialog; never
    /// from a location, never stored.
    pub password: Option<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |secret: &Option<String>| secret.as_ref().map(|_| "<redacted>");
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("token", &redacted(&self.token))
            .field("tls", &self.tls)
            .field("fingerprint", &self.fingerprint)
            .field("accept_new", &self.accept_new)
            .field("insecure", &self.insecure)
            .field("user", &self.user)
            .field("password", &redacted(&self.password))
            .finish()
    }
}

impl Endpoint {
    /// `host:port` (an IPv6 host in brackets): how the server is named in messages and in
    /// known-hosts.
    pub fn address(&self) -> String {
        connection::address(self)
    }
}

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
    /// in clear text; `code` is one of [`tls::code`].
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

    /// The protocol error code behind this error, when the server sent one.
    pub fn remote_code(&self) -> Option<ErrorCode> {
        match self {
            EngineError::Remote { code, .. } => Some(*code),
            _ => None,
        }
    }
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

/// Local IO errors get the same vocabulary as the server's, so scripts match one set of codes.
fn local_code(error: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    if local::is_changed(error) {
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

/// Identifies a job for its whole life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

/// What to do when the destination already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictPolicy {
    Overwrite,
    Skip,
    /// Continue the existing destination only when its bytes are the start of the source's;
    /// any other fails as `resume_mismatch` and is left as it was. Downloads continue the local
    /// file and the trailer digest checks the whole (a mismatch puts the file back exactly);
    /// uploads cannot append to a finished remote file, so an identical one is kept as done and
    /// a true prefix (digest of the remote file = digest of our first bytes) is replaced by the
    /// whole. A hidden partial is resumed under every policy.
    Resume,
    /// Keep both: the new one gets a free name (`a (1).txt`).
    Rename,
    /// Fail the file with `already_exists`.
    Fail,
    /// Send [`TransferEvent::Conflict`] and wait for the answer.
    Ask,
}

/// The answer to a [`TransferEvent::Conflict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConflictAnswer {
    /// `Ask` is not a valid answer; `Fail` cancels that file.
    pub choice: ConflictPolicy,
    /// Use the same choice for every later conflict in this job.
    pub apply_to_all: bool,
}

/// A transfer to run in the background. Directories are copied recursively.
#[derive(Debug, Clone)]
pub enum JobSpec {
    /// Each local source is written to exactly the remote path beside it.
    Upload {
        items: Vec<(PathBuf, String)>,
        policy: ConflictPolicy,
        /// A move: delete each source once its copy is verified.
        remove_source: bool,
    },
    /// Each remote source is written to exactly the local path beside it.
    Download {
        items: Vec<(String, PathBuf)>,
        policy: ConflictPolicy,
        remove_source: bool,
    },
}

/// A snapshot of one job's progress; throttled to about 20 per second per job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobProgress {
    pub job: JobId,
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// The file being moved now (the last one started when several are in flight).
    pub current: Option<String>,
    /// Bytes per second, smoothed.
    pub speed: f64,
    pub eta: Option<Duration>,
    /// The tree is still being walked: the totals are not known yet (both 0), while
    /// the done counters already count what arrived.
    pub scanning: bool,
}

/// How a finished job went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSummary {
    /// Files now in place and verified (skipped ones not included).
    pub files: u64,
    /// Payload bytes that crossed the wire: a resumed file counts only what was still missing.
    pub bytes: u64,
    pub skipped: u64,
    /// Files that failed (each also reported by [`TransferEvent::FileFailed`]).
    pub failed: u64,
    pub elapsed: Duration,
}

/// Why an entry of a tree was not copied. Symlinks and special files are left out by design;
/// the others are errors a user must hear about by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftOutReason {
    Symlink,
    /// A socket, fifo or device.
    Special,
    /// A name the other side cannot hold (not UTF-8, or against the path rules).
    Name,
    /// A directory that could not be read (permission denied, too deep, an IO error).
    Unreadable,
    /// It was there when the tree was listed and gone when it was read.
    Vanished,
}

impl LeftOutReason {
    /// A stable snake_case word for scripts (`--json`) and the one-line messages.
    pub fn as_str(self) -> &'static str {
        match self {
            LeftOutReason::Symlink => "symlink",
            LeftOutReason::Special => "special_file",
            LeftOutReason::Name => "bad_name",
            LeftOutReason::Unreadable => "unreadable",
            LeftOutReason::Vanished => "vanished",
        }
    }

    /// Left out on purpose (a link or a special file), not because something went wrong.
    pub fn by_design(self) -> bool {
        matches!(self, LeftOutReason::Symlink | LeftOutReason::Special)
    }
}

/// What the engine tells its owner, over the channel returned by [`Engine::new`].
#[derive(Debug)]
pub enum TransferEvent {
    /// The job's size is known (after the scan): progress bars can be drawn to scale. Files
    /// move while the tree is still being walked, so file events and progress marked
    /// `scanning` (counts without totals) may come before it.
    Planned {
        job: JobId,
        files: u64,
        bytes: u64,
    },
    Progress(JobProgress),
    /// The destination of `path` exists and the policy is `Ask`.
    Conflict {
        job: JobId,
        /// The destination that exists (remote wire path or local path, shown to the user).
        path: String,
        reply: oneshot::Sender<ConflictAnswer>,
        /// Why the question is asked again: the last answer could not be carried out (a resume
        /// of a destination that is not a part of the source).
        reason: Option<String>,
    },
    /// One file arrived and its digest matched.
    FileDone {
        job: JobId,
        path: String,
        bytes: u64,
        digest: Digest,
    },
    FileFailed {
        job: JobId,
        path: String,
        error: String,
    },
    /// An entry of a tree that was not copied: its source path and why (it is also counted
    /// in [`JobSummary::skipped`]).
    LeftOut {
        job: JobId,
        path: String,
        reason: LeftOutReason,
        /// The detail, e.g. `forbidden: Permission denied`.
        message: String,
    },
    /// The job ended; `Err` only when it could not run at all or was cancelled.
    Finished {
        job: JobId,
        outcome: Result<JobSummary, String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

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
                EngineError::local("/tmp/z", std::io::Error::other(local::Changed)),
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
