//! The parent directory handle a run of small uploads into one directory shares, so the run
//! costs one confined open instead of one per file.

use std::sync::Arc;

use cap_std::fs::Dir;

/// The parent directory handle last opened by [`Root::open_parent_cached`].
///
/// It must live no longer than one run of requests that arrived back to back on one
/// connection, with nothing of that connection's in between: a handle follows its directory,
/// so once the run is over a rename, or a symlink swapped in for the directory, must be seen by
/// resolving the path again from the root. Within the run the handle still lies beneath the
/// root, exactly as the handle of a single upload does between its open and its rename.
#[derive(Debug, Default)]
pub(crate) struct ParentCache {
    pub(super) last: Option<(String, Arc<Dir>)>,
    /// Free bytes of `last`'s filesystem, measured once in this run, less what the run has
    /// claimed since: asking the filesystem again for every small upload cost a syscall per
    /// file. What other connections finish meanwhile is missed for the length of one run,
    /// which the reserve absorbs (and a write that still finds the disk full is `no_space`).
    pub(super) free: Option<u64>,
}

impl ParentCache {
    /// The free bytes recorded for the cached directory's filesystem.
    pub fn free(&self) -> Option<u64> {
        self.free
    }

    /// Records the free bytes left once an upload into the cached directory is claimed.
    pub fn set_free(&mut self, bytes: u64) {
        self.free = Some(bytes);
    }
}
