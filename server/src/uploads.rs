//! The server-wide set of paths being written right now. A second writer of the same path gets
//! `busy` instead of interleaving its bytes into the same hidden partial file. Each writer also
//! holds a claim on the disk space its payload will take, so that uploads starting together
//! cannot each find the same free bytes and jointly eat into the free-space reserve; and the
//! partial-file sweeper asks here, under the same lock, whether a partial is in use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ferry_protocol::path::{join, partial_name, split_last};

/// Paths with an upload in progress, shared by every connection.
#[derive(Debug, Default, Clone)]
pub(crate) struct Uploads {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// Wire path of each upload in progress, and what it holds.
    active: HashMap<String, Claim>,
    /// The sum of every claim's `bytes`.
    claimed: u64,
}

#[derive(Debug)]
struct Claim {
    /// The hidden partial it writes, relative to the root.
    partial: String,
    /// Disk space promised to it: the part of its payload not yet written. What is written
    /// already shows in the filesystem's own count of free space.
    bytes: u64,
}

/// Held while a path is being written; dropping it frees the path and its disk claim.
#[derive(Debug)]
pub(crate) struct UploadGuard {
    state: Arc<Mutex<State>>,
    path: String,
}

/// Why [`UploadGuard::claim_space`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short {
    /// Bytes other uploads in flight have claimed.
    pub claimed: u64,
}

impl Uploads {
    /// Claims `path` (a checked wire path); `None` when another connection holds it.
    pub fn claim(&self, path: &str) -> Option<UploadGuard> {
        let mut state = lock(&self.state);
        if state.active.contains_key(path) {
            return None;
        }
        let partial = split_last(path)
            .map(|(parent, name)| join(parent, &partial_name(name)))
            .unwrap_or_default();
        state
            .active
            .insert(path.to_owned(), Claim { partial, bytes: 0 });
        Some(UploadGuard {
            state: Arc::clone(&self.state),
            path: path.to_owned(),
        })
    }

    /// Runs `remove` on the partial at `partial` (relative to the root) unless an upload is
    /// writing it. The lock is held across `remove`, so no upload can start on that partial
    /// between the check and the removal; `None` when it was in use.
    pub fn remove_idle_partial<T>(&self, partial: &str, remove: impl FnOnce() -> T) -> Option<T> {
        let state = lock(&self.state);
        if state.active.values().any(|claim| claim.partial == partial) {
            return None;
        }
        Some(remove())
    }
}

impl UploadGuard {
    /// Claims `bytes` of the `available` free bytes for this upload, keeping `reserve` free
    /// after every upload in flight has written what it claimed.
    pub fn claim_space(&self, bytes: u64, available: u64, reserve: u64) -> Result<(), Short> {
        let mut state = lock(&self.state);
        let mine = state.active.get(&self.path).map_or(0, |claim| claim.bytes);
        let claimed = state.claimed - mine;
        let free = available.saturating_sub(claimed);
        if bytes.saturating_add(reserve) > free {
            return Err(Short { claimed });
        }
        if let Some(claim) = state.active.get_mut(&self.path) {
            claim.bytes = bytes;
        }
        state.claimed = claimed + bytes;
        Ok(())
    }
}

impl UploadGuard {
    /// Counts `bytes` of this upload's payload as written, so its claim shrinks by as much.
    pub fn wrote(&self, bytes: u64) {
        let mut state = lock(&self.state);
        if let Some(claim) = state.active.get_mut(&self.path) {
            let done = bytes.min(claim.bytes);
            claim.bytes -= done;
            state.claimed -= done;
        }
    }
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        if let Some(claim) = state.active.remove(&self.path) {
            state.claimed -= claim.bytes;
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A poisoned lock only means another task panicked between two statements here; the
    // state is updated in one step each time, so it is still consistent.
    state.lock().unwrap_or_else(PoisonError::into_inner)
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

    #[test]
    fn space_claimed_by_one_upload_is_not_offered_to_another() {
        let uploads = Uploads::default();
        let first = uploads.claim("one").unwrap();
        let second = uploads.claim("two").unwrap();
        // 100 free, 10 kept back: 60 fits, then only 30 more.
        assert_eq!(first.claim_space(60, 100, 10), Ok(()));
        assert_eq!(second.claim_space(31, 100, 10), Err(Short { claimed: 60 }));
        assert_eq!(second.claim_space(30, 100, 10), Ok(()));
        // A claim replaces the holder's own earlier one instead of adding to it.
        assert_eq!(first.claim_space(60, 100, 10), Ok(()));
        drop(first);
        let third = uploads.claim("three").unwrap();
        assert_eq!(third.claim_space(60, 100, 10), Ok(()));
        assert_eq!(third.claim_space(61, 100, 10), Err(Short { claimed: 30 }));
        // Written bytes leave the claim: the filesystem's free count has them now.
        second.wrote(20);
        second.wrote(u64::MAX);
        assert_eq!(third.claim_space(61, 100, 10), Ok(()));
        drop((second, third));
        let fourth = uploads.claim("four").unwrap();
        assert_eq!(fourth.claim_space(90, 100, 10), Ok(()));
    }

    #[test]
    fn a_partial_being_written_is_not_removed() {
        let uploads = Uploads::default();
        let guard = uploads.claim("dir/file.bin").unwrap();
        let top = uploads.claim("top.bin").unwrap();
        assert_eq!(
            uploads.remove_idle_partial("dir/.ferry-part.file.bin", || ()),
            None
        );
        assert_eq!(
            uploads.remove_idle_partial(".ferry-part.top.bin", || ()),
            None
        );
        assert_eq!(
            uploads.remove_idle_partial("dir/.ferry-part.other", || ()),
            Some(())
        );
        drop((guard, top));
        assert_eq!(
            uploads.remove_idle_partial("dir/.ferry-part.file.bin", || ()),
            Some(())
        );
    }
}
