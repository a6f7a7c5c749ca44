//! This server's own, lowered path and name limits, checked by every [`super::Root`] call
//! that takes a path.

use ferry_protocol::ErrorCode;
use ferry_protocol::path;

use super::RemotePath;
use crate::error::OpError;

/// This server's own path and name limits, in bytes: at most the protocol's, which
/// [`RemotePath::parse`] has already enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathLimits {
    pub path: usize,
    pub name: usize,
}

impl Default for PathLimits {
    fn default() -> Self {
        Self {
            path: path::MAX_PATH_LEN,
            name: path::MAX_NAME_LEN,
        }
    }
}

impl PathLimits {
    /// The configured limits (`Config::max_path_len`, `Config::max_name_len`), never above
    /// the protocol's nor below one byte.
    pub fn new(max_path_len: usize, max_name_len: usize) -> Self {
        Self {
            path: max_path_len.clamp(1, path::MAX_PATH_LEN),
            name: max_name_len.clamp(1, path::MAX_NAME_LEN),
        }
    }

    /// `bad_path` for a path over these limits.
    pub(super) fn check(&self, path: &RemotePath) -> Result<(), OpError> {
        if *self == Self::default() {
            return Ok(());
        }
        if path.rel.as_os_str().len() > self.path {
            return Err(OpError::new(
                ErrorCode::BadPath,
                format!(
                    "{}: path is longer than this server's limit of {} bytes",
                    path.wire, self.path
                ),
            ));
        }
        if path.rel.iter().any(|name| name.len() > self.name) {
            return Err(OpError::new(
                ErrorCode::BadPath,
                format!(
                    "{}: a name is longer than this server's limit of {} bytes",
                    path.wire, self.name
                ),
            ));
        }
        Ok(())
    }
}
