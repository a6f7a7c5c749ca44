//! The server-wide set of paths being written right now. A second writer of the same path gets
//! `busy` instead of interleaving its bytes into the same hidden partial file.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

/// Paths with an upload in progress, shared by every connection.
#[derive(Debug, Default, Clone)]
pub(crate) struct Uploads {
    active: Arc<Mutex<HashSet<String>>>,
}

/// Held while a path is being written; dropping it frees the path.
#[derive(Debug)]
pub(crate) struct UploadGuard {
    active: Arc<Mutex<HashSet<String>>>,
    path: String,
}

impl Uploads {
    /// Claims `path`; `None` when another connection holds it.
    pub fn claim(&self, path: &str) -> Option<UploadGuard> {
        // A poisoned lock only means another task panicked between insert and remove; the set
        // itself is still consistent.
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        active.insert(path.to_owned()).then(|| UploadGuard {
            active: Arc::clone(&self.active),
            path: path.to_owned(),
        })
    }
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        active.remove(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_writer_per_path_until_released() {
        let uploads = Uploads::default();
        let first = uploads.claim("a/b").unwrap();
        assert!(uploads.claim("a/b").is_none());
        let other = uploads.claim("a/c");
        assert!(other.is_some());
        drop(first);
        assert!(uploads.claim("a/b").is_some());
    }
}
