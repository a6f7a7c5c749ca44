//! The error a single request ends with: a stable code for the client and a message naming the
//! path. It is answered and the connection carries on; only [`crate::connection::ConnError`]
//! ends a connection. And [`ServerError`], why the server could not run at all.

use std::io;
use std::path::PathBuf;

use ferry_protocol::ErrorCode;

/// A failed request, as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub(crate) struct OpError {
    pub code: ErrorCode,
    pub message: String,
}

impl OpError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Maps a filesystem error on `path` to its wire code. cap-std reports a path that leads
    /// outside the root as `PermissionDenied`, so escapes come out as `forbidden`.
    pub fn io(err: &io::Error, path: &str) -> Self {
        let code = code_of(err);
        let shown = if path.is_empty() { "/" } else { path };
        Self::new(code, format!("{shown}: {}", io_text(err)))
    }

    /// The error line to send for it.
    pub fn encode(&self) -> Vec<u8> {
        ferry_protocol::encode_err(self.code, &self.message)
    }
}

/// An IO error's words for people: the OS's text without Rust's ` (os error N)` suffix, a
/// number that only repeats what the code already says.
pub(crate) fn io_text(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(at) if err.raw_os_error().is_some() && text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}

/// The wire code for an IO error.
pub(crate) fn code_of(err: &io::Error) -> ErrorCode {
    match err.kind() {
        io::ErrorKind::NotFound => ErrorCode::NotFound,
        io::ErrorKind::AlreadyExists => ErrorCode::AlreadyExists,
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => ErrorCode::Forbidden,
        io::ErrorKind::NotADirectory => ErrorCode::NotADirectory,
        io::ErrorKind::IsADirectory => ErrorCode::IsADirectory,
        io::ErrorKind::DirectoryNotEmpty => ErrorCode::NotEmpty,
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => ErrorCode::NoSpace,
        io::ErrorKind::InvalidFilename => ErrorCode::BadPath,
        io::ErrorKind::FileTooLarge => ErrorCode::TooLarge,
        _ => match err.raw_os_error() {
            // A symlink loop, or a no-follow open that met a symlink.
            Some(raw) if raw == rustix::io::Errno::LOOP.raw_os_error() => ErrorCode::Forbidden,
            // A name this filesystem cannot hold (not UTF-8 on one that insists on it).
            Some(raw) if raw == rustix::io::Errno::ILSEQ.raw_os_error() => ErrorCode::BadPath,
            _ => ErrorCode::Io,
        },
    }
}

/// Why the server could not run at all, or why the one session of `--stdio` ended badly. Errors
/// of a listener's connections never end up here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The root does not exist, is not a directory, or cannot be read.
    #[error("cannot open the root directory {path}: {source}")]
    OpenRoot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No token and no users file, yet the address is reachable from other machines.
    #[error(
        "refusing to serve {addr} without credentials: anyone who can reach it could use it; \
         pass --token or --users, or listen on a loopback address such as 127.0.0.1"
    )]
    Unprotected { addr: std::net::SocketAddr },
    /// The users file's accounts could not be prepared.
    #[error("users file: {0}")]
    Users(String),
    /// A setting that has no meaning for one session over stdin and stdout, which ssh has
    /// already authenticated (a token, a users file, TLS).
    #[error(
        "{0} cannot be used with --stdio: ssh already authenticated the user and encrypts the session"
    )]
    NotForStdio(&'static str),
    /// The one session of `--stdio` ended for another reason than the client closing it
    /// between requests.
    #[error("the session ended: {0}")]
    Session(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_documented_kinds() {
        let cases = [
            (io::ErrorKind::NotFound, ErrorCode::NotFound),
            (io::ErrorKind::AlreadyExists, ErrorCode::AlreadyExists),
            (io::ErrorKind::PermissionDenied, ErrorCode::Forbidden),
            (io::ErrorKind::NotADirectory, ErrorCode::NotADirectory),
            (io::ErrorKind::IsADirectory, ErrorCode::IsADirectory),
            (io::ErrorKind::DirectoryNotEmpty, ErrorCode::NotEmpty),
            (io::ErrorKind::StorageFull, ErrorCode::NoSpace),
            (io::ErrorKind::BrokenPipe, ErrorCode::Io),
        ];
        for (kind, code) in cases {
            assert_eq!(code_of(&io::Error::from(kind)), code, "{kind:?}");
        }
        let symlink_loop = io::Error::from_raw_os_error(rustix::io::Errno::LOOP.raw_os_error());
        assert_eq!(code_of(&symlink_loop), ErrorCode::Forbidden);
        let too_long = io::Error::from_raw_os_error(rustix::io::Errno::NAMETOOLONG.raw_os_error());
        assert_eq!(code_of(&too_long), ErrorCode::BadPath);
        let unholdable = io::Error::from_raw_os_error(rustix::io::Errno::ILSEQ.raw_os_error());
        assert_eq!(code_of(&unholdable), ErrorCode::BadPath);
    }

    #[test]
    fn messages_name_the_path() {
        let err = OpError::io(&io::Error::from(io::ErrorKind::NotFound), "a/b.txt");
        assert!(err.message.contains("a/b.txt"), "{}", err.message);
        let root = OpError::io(&io::Error::from(io::ErrorKind::NotFound), "");
        assert!(root.message.starts_with("/:"), "{}", root.message);
    }

    #[test]
    fn messages_leave_out_the_os_error_number() {
        let enoent = io::Error::from_raw_os_error(rustix::io::Errno::NOENT.raw_os_error());
        let err = OpError::io(&enoent, "missing");
        assert_eq!(err.message, "missing: No such file or directory");
        // Text that merely looks like the suffix is not an OS error's, and stays.
        let other = io::Error::other("odd (os error 5)");
        assert_eq!(io_text(&other), "odd (os error 5)");
    }
}
