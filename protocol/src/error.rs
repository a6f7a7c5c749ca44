//! The stable error codes a response can carry. Clients and scripts match on the code; the
//! message beside it is for people and may change between versions.

use serde::{Deserialize, Serialize};

/// A stable, snake_case error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request was not valid JSON, named no known op, or had wrong or missing fields.
    BadRequest,
    /// A header line was longer than [`crate::MAX_HEADER_LEN`]; the connection closes after it.
    HeaderTooLong,
    /// `hello` named a protocol version this server does not speak.
    UnsupportedVersion,
    /// No valid credentials were presented, or they were wrong.
    Unauthorized,
    /// The path is valid but the operation is not allowed on it (read-only server, a symlink
    /// that leads outside the root, a permission the server itself lacks).
    Forbidden,
    /// The path breaks the path rules (see [`crate::path`]).
    BadPath,
    NotFound,
    AlreadyExists,
    NotADirectory,
    IsADirectory,
    /// A directory removal without `recursive` found the directory not empty.
    NotEmpty,
    /// A size or count over a limit of the server.
    TooLarge,
    NoSpace,
    /// Too many connections, or another client is writing the same path.
    Busy,
    /// A resume offset that does not match what the server holds.
    OffsetMismatch,
    /// The bytes received do not have the digest the client announced.
    ChecksumMismatch,
    /// The file changed while it was being sent; the bytes received are not one version of it.
    FileChanged,
    /// The peer was too slow or silent for too long.
    Timeout,
    /// The source and the destination are the same file (or a directory would go into
    /// itself): nothing was written or removed.
    SameFile,
    /// The server hit an unexpected IO error.
    Io,
    /// A code this version does not know, from a newer peer.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code, for tests and tools that must cover them all.
    pub const ALL: [ErrorCode; 21] = [
        Self::BadRequest,
        Self::HeaderTooLong,
        Self::UnsupportedVersion,
        Self::Unauthorized,
        Self::Forbidden,
        Self::BadPath,
        Self::NotFound,
        Self::AlreadyExists,
        Self::NotADirectory,
        Self::IsADirectory,
        Self::NotEmpty,
        Self::TooLarge,
        Self::NoSpace,
        Self::Busy,
        Self::OffsetMismatch,
        Self::ChecksumMismatch,
        Self::FileChanged,
        Self::Timeout,
        Self::SameFile,
        Self::Io,
        Self::Unknown,
    ];

    /// The code as written on the wire, for messages and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::HeaderTooLong => "header_too_long",
            Self::UnsupportedVersion => "unsupported_version",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::BadPath => "bad_path",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::NotADirectory => "not_a_directory",
            Self::IsADirectory => "is_a_directory",
            Self::NotEmpty => "not_empty",
            Self::TooLarge => "too_large",
            Self::NoSpace => "no_space",
            Self::Busy => "busy",
            Self::OffsetMismatch => "offset_mismatch",
            Self::ChecksumMismatch => "checksum_mismatch",
            Self::FileChanged => "file_changed",
            Self::Timeout => "timeout",
            Self::SameFile => "same_file",
            Self::Io => "io",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `"error"` object of a failed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_matches_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn unknown_codes_from_newer_peers_decode() {
        let code: ErrorCode = serde_json::from_str("\"quota_exceeded\"").unwrap();
        assert_eq!(code, ErrorCode::Unknown);
    }
}
