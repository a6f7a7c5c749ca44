//! The uploads in progress and the partial files they write, shared by every connection.
//!
//! **Who writes what.** An upload is claimed under what the filesystem resolves its target to:
//! the parent directory's `(st_dev, st_ino)` and the final name, never the spelling of the
//! request. Two request paths that reach the same directory (an in-root symlink, two users'
//! overlapping roots) therefore meet the same claim, and the second writer gets `busy` instead
//! of interleaving its bytes into the other's partial. The partial-file sweeper and `discard`
//! ask here, under the same lock, whether a partial is in use.
//!
//! **Whose partial.** A partial belongs to the identity that started it, and that owner is part
//! of the partial's name on disk, so it survives a restart and costs no extra file or xattr:
//! `.ferry-part.<name>` for the server's shared identity (an open server, or the shared token),
//! `.ferry-part.u-<tag>.<name>` for an account, `<tag>` being 16 hex digits of a digest of the
//! account name. A name that is too long to carry the prefix, or that could be read as one of
//! these forms (64 hex digits, or `u-` + 16 hex digits + `.`), is replaced by its 64-hex digest;
//! the mapping from (owner, name) to partial is thus one-to-one, and no target can reach another
//! target's partial. A digest-named partial keeps its target's name in the `user.ferry.target`
//! extended attribute (best effort) so that `partials` can list it.
//!
//! **Disk space.** Each writer holds a claim on the space its payload will take, so uploads
//! starting together cannot each find the same free bytes and jointly eat into the reserve.
//! Claims are counted per filesystem (`st_dev`); one claimant (an account, or the shared
//! identity) holds at most half of the free space above the reserve; and a claim lapses while
//! its upload writes slower than [`MIN_RATE`] after a [`GRACE`] period, so a trickling upload
//! cannot keep space from others. An upload over its share or past its lapse still runs; it
//! just writes at its own risk (`no_space` if the disk really fills).
//!
//! **A writer going away.** A user who interrupts an upload and at once resumes it meets the
//! claim of the first run while the server is still taking in its last bytes (what the kernel
//! had buffered before the close or reset). So a second writer does not get `busy` at once: it
//! [`Wait`]s up to [`CLAIM_WAIT`], woken each time a claim is released, and only a writer
//! that is still there after that makes it `busy`. At most [`MAX_WAITING`] wait at once; past
//! that, `busy` comes at once. A waiting `put` holds no claim, no file and no thread:
//! only its connection.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use ferry_protocol::path::{MAX_NAME_LEN, PARTIAL_PREFIX};

/// Below this average rate (after [`GRACE`]) an upload's space claim stops counting.
pub(crate) const MIN_RATE: u64 = 64 * 1024;
/// How long a new upload's claim counts whatever its rate: connection set-up, a slow start.
pub(crate) const GRACE: Duration = Duration::from_secs(10);

/// How long a second writer waits for a claim held by a writer that may be going away.
pub(crate) const CLAIM_WAIT: Duration = Duration::from_secs(2);
/// Uploads that may wait for a claim at once, server-wide; past that `busy` comes at once.
pub(crate) const MAX_WAITING: usize = 64;
/// How often a waiting writer looks again even when no claim of this server was released:
/// the partial's `flock`, held by another server process, has no wake-up.
const WAIT_TICK: Duration = Duration::from_millis(100);

/// Marks an account-owned partial: `u-` + the owner tag + `.`.
const ACCOUNT_MARK: &str = "u-";
/// Hex digits of an owner tag.
const TAG_LEN: usize = 16;
/// Hex digits of a digest-named partial.
const DIGEST_HEX: usize = 64;

/// Who owns the partials a session writes, and whose share of the disk its uploads draw on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    /// `None` for the server's shared identity (open server, shared token).
    tag: Option<String>,
}

/// What a partial's name on disk says about its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// The target's own name.
    Name(String),
    /// A digest of the target's name (a long or reserved-looking name).
    Hashed,
}

impl Owner {
    /// The identity of every session of an open server or of the shared token: they hold the
    /// same secret (or none), so they are one owner.
    pub fn shared() -> Self {
        Self { tag: None }
    }

    /// An account of the users file.
    pub fn account(name: &str) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"ferry partial owner\0");
        hasher.update(name.as_bytes());
        let hex = hasher.finalize().to_hex();
        Self {
            tag: Some(hex[..TAG_LEN].to_owned()),
        }
    }

    /// The key disk claims are counted under.
    fn claimant(&self) -> &str {
        self.tag.as_deref().unwrap_or("")
    }

    fn prefix(&self) -> String {
        match &self.tag {
            None => PARTIAL_PREFIX.to_owned(),
            Some(tag) => format!("{PARTIAL_PREFIX}{ACCOUNT_MARK}{tag}."),
        }
    }

    /// This owner's partial for the target `name` (a checked wire name).
    pub fn partial_name(&self, name: &str) -> String {
        let prefix = self.prefix();
        // The limit is the filesystem's, on raw bytes, not on the escaped wire form.
        let raw_len = ferry_protocol::path::decode(name).map_or(name.len(), |raw| raw.len());
        if prefix.len() + raw_len <= MAX_NAME_LEN && !reserved_looking(name) {
            format!("{prefix}{name}")
        } else {
            format!("{prefix}{}", blake3::hash(name.as_bytes()).to_hex())
        }
    }

    /// Whether `partial` names a digest-named partial (its target's name is not in it).
    pub fn is_hashed(&self, partial: &str) -> bool {
        matches!(self.target_of(partial), Some(Target::Hashed))
    }

    /// The target of `file` when it is one of this owner's partials; `None` for any other name.
    pub fn target_of(&self, file: &str) -> Option<Target> {
        let rest = file.strip_prefix(PARTIAL_PREFIX)?;
        let rest = match (&self.tag, split_tag(rest)) {
            (None, None) => rest,
            (Some(mine), Some((tag, rest))) if mine == tag => rest,
            _ => return None,
        };
        if is_hex(rest, DIGEST_HEX) {
            return Some(Target::Hashed);
        }
        Some(Target::Name(rest.to_owned()))
    }
}

/// `u-<16 hex>.<rest>` split into the tag and the rest.
fn split_tag(rest: &str) -> Option<(&str, &str)> {
    let tagged = rest.strip_prefix(ACCOUNT_MARK)?;
    let tag = tagged.get(..TAG_LEN)?;
    let rest = tagged.get(TAG_LEN..)?.strip_prefix('.')?;
    is_hex(tag, TAG_LEN).then_some((tag, rest))
}

/// A name that, written after the prefix, would read as a digest or an account's mark.
fn reserved_looking(name: &str) -> bool {
    is_hex(name, DIGEST_HEX) || split_tag(name).is_some()
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A name in a directory as the filesystem resolves it: the directory's device and inode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub name: String,
}

impl FileKey {
    /// The key of `name` inside `dir`.
    pub fn in_dir(dir: &cap_std::fs::Dir, name: &str) -> std::io::Result<Self> {
        let stat = rustix::fs::fstat(dir)?;
        Ok(Self {
            dev: stat.st_dev,
            ino: stat.st_ino,
            name: name.to_owned(),
        })
    }
}

/// Uploads in progress, shared by every connection.
#[derive(Debug, Default, Clone)]
pub(crate) struct Uploads {
    state: Arc<Mutex<State>>,
    /// Woken each time a claim is released, for the writers that [`Wait`] for one.
    released: Arc<Notify>,
    /// Writers waiting for a claim right now.
    waiting: Arc<AtomicUsize>,
}

/// A writer's bounded wait for a held claim; see the module's "A writer going away".
#[derive(Debug)]
pub(crate) struct Wait {
    until: Instant,
    /// Counts this writer among the waiting while it lives; `None` when there was no room,
    /// and the wait is over at once.
    waiting: Option<Arc<AtomicUsize>>,
}

#[derive(Debug, Default)]
struct State {
    /// Each upload in progress by its target, and what it holds.
    active: HashMap<FileKey, Claim>,
}

#[derive(Debug)]
struct Claim {
    /// The partial it writes, in the same directory as the target.
    partial: String,
    /// Whose share the claim draws on.
    claimant: String,
    /// Disk space promised to it: the part of its payload not yet written, at most its share.
    /// What is written already shows in the filesystem's own count of free space.
    bytes: u64,
    /// When the upload started and how much it has written, for [`MIN_RATE`].
    started: Instant,
    written: u64,
}

impl Claim {
    /// Whether the claim still holds space at `now`: within [`GRACE`], or written at least
    /// [`MIN_RATE`] on average since.
    fn counts(&self, now: Instant) -> bool {
        let earned = GRACE + Duration::from_secs(self.written / MIN_RATE);
        now.duration_since(self.started) <= earned
    }
}

/// Held while a target is being written; dropping it frees the target and its disk claim.
#[derive(Debug)]
pub(crate) struct UploadGuard {
    state: Arc<Mutex<State>>,
    released: Arc<Notify>,
    key: FileKey,
}

/// Why [`UploadGuard::claim_space`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short {
    /// Bytes other uploads in flight on the same filesystem hold.
    pub claimed: u64,
}

impl Uploads {
    /// Claims `target` for writing into `partial` (its name in the same directory) on behalf of
    /// `owner`; `None` when another connection holds it.
    pub fn claim(&self, target: FileKey, partial: String, owner: &Owner) -> Option<UploadGuard> {
        let mut state = lock(&self.state);
        if state.active.contains_key(&target) {
            return None;
        }
        let claim = Claim {
            partial,
            claimant: owner.claimant().to_owned(),
            bytes: 0,
            started: Instant::now(),
            written: 0,
        };
        state.active.insert(target.clone(), claim);
        Some(UploadGuard {
            state: Arc::clone(&self.state),
            released: Arc::clone(&self.released),
            key: target,
        })
    }

    /// What wakes a [`Wait`]: arm its `notified()` (`enable`) before trying to claim, so that
    /// a release between the try and the wait is not missed.
    pub fn released(&self) -> Arc<Notify> {
        Arc::clone(&self.released)
    }

    /// Starts a writer's wait for a held claim: [`CLAIM_WAIT`] long, or over at once when
    /// [`MAX_WAITING`] writers wait already.
    pub fn wait(&self) -> Wait {
        let now = Instant::now();
        let room = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_WAITING).then_some(n + 1)
            })
            .is_ok();
        Wait {
            until: if room { now + CLAIM_WAIT } else { now },
            waiting: room.then(|| Arc::clone(&self.waiting)),
        }
    }

    /// Runs `remove` on the partial `partial` (its directory's device and inode, and its name)
    /// unless an upload is writing it. The lock is held across `remove`, so no upload can start
    /// on that partial between the check and the removal; `None` when it was in use.
    pub fn remove_idle_partial<T>(
        &self,
        partial: &FileKey,
        remove: impl FnOnce() -> T,
    ) -> Option<T> {
        let state = lock(&self.state);
        let busy = state.active.iter().any(|(target, claim)| {
            target.dev == partial.dev && target.ino == partial.ino && claim.partial == partial.name
        });
        if busy {
            return None;
        }
        Some(remove())
    }
}

impl UploadGuard {
    /// Claims `bytes` of the `available` free bytes of this upload's filesystem, keeping
    /// `reserve` free after every upload in flight there has written what it claimed. Only
    /// claims on the same filesystem (the target directory's `st_dev`) count; the claim kept is
    /// at most the claimant's share (half the free space above the reserve, less what the
    /// others hold), the rest written at the upload's own risk.
    pub fn claim_space(&self, bytes: u64, available: u64, reserve: u64) -> Result<(), Short> {
        let now = Instant::now();
        let mut state = lock(&self.state);
        let Some(me) = state.active.get(&self.key) else {
            return Ok(());
        };
        let claimant = me.claimant.clone();
        let (mut others, mut mine) = (0u64, 0u64);
        for (target, claim) in &state.active {
            if target == &self.key || target.dev != self.key.dev || !claim.counts(now) {
                continue;
            }
            if claim.claimant == claimant {
                mine += claim.bytes;
            } else {
                others += claim.bytes;
            }
        }
        let claimed = others + mine;
        let free = available.saturating_sub(claimed);
        if bytes.saturating_add(reserve) > free {
            return Err(Short { claimed });
        }
        let share = available.saturating_sub(reserve).saturating_sub(others) / 2;
        let kept = bytes.min(share.saturating_sub(mine));
        if let Some(claim) = state.active.get_mut(&self.key) {
            claim.bytes = kept;
        }
        Ok(())
    }

    /// Counts `bytes` of this upload's payload as written, so its claim shrinks by as much.
    pub fn wrote(&self, bytes: u64) {
        let mut state = lock(&self.state);
        if let Some(claim) = state.active.get_mut(&self.key) {
            claim.bytes -= bytes.min(claim.bytes);
            claim.written = claim.written.saturating_add(bytes);
        }
    }
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        lock(&self.state).active.remove(&self.key);
        self.released.notify_waiters();
    }
}

impl Wait {
    /// Whether the writer has waited long enough: the holder is still there, so `busy`.
    pub fn over(&self) -> bool {
        Instant::now() >= self.until
    }

    /// Sleeps until a claim is released (`released`, armed before the last try), a short tick
    /// passes, or the wait is over; then the writer tries again.
    pub async fn pause(&self, released: Pin<&mut Notified<'_>>) {
        let tick = (Instant::now() + WAIT_TICK).min(self.until);
        let _ = tokio::time::timeout_at(tick.into(), released).await;
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some(waiting) = &self.waiting {
            waiting.fetch_sub(1, Ordering::AcqRel);
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

    fn key(dev: u64, ino: u64, name: &str) -> FileKey {
        FileKey {
            dev,
            ino,
            name: name.to_owned(),
        }
    }

    fn claim(uploads: &Uploads, target: &FileKey, owner: &Owner) -> Option<UploadGuard> {
        let partial = owner.partial_name(&target.name);
        uploads.claim(target.clone(), partial, owner)
    }

    #[test]
    fn one_writer_per_target_until_released() {
        let uploads = Uploads::default();
        let shared = Owner::shared();
        let first = claim(&uploads, &key(1, 2, "b"), &shared).unwrap();
        assert!(claim(&uploads, &key(1, 2, "b"), &Owner::account("x")).is_none());
        assert!(claim(&uploads, &key(1, 3, "b"), &shared).is_some());
        drop(first);
        assert!(claim(&uploads, &key(1, 2, "b"), &shared).is_some());
    }

    #[test]
    fn only_so_many_writers_wait_for_a_claim() {
        let uploads = Uploads::default();
        let waits: Vec<Wait> = (0..MAX_WAITING).map(|_| uploads.wait()).collect();
        assert!(waits.iter().all(|wait| !wait.over()));
        assert!(uploads.wait().over(), "one too many waits at once");
        drop(waits);
        assert!(!uploads.wait().over());
    }

    #[test]
    fn space_claimed_by_one_upload_is_not_offered_to_another() {
        let uploads = Uploads::default();
        let (a, b) = (Owner::account("a"), Owner::account("b"));
        let first = claim(&uploads, &key(1, 1, "one"), &a).unwrap();
        let second = claim(&uploads, &key(1, 1, "two"), &b).unwrap();
        // 100 free, 10 kept back: a's share is 45, and b may only use what a left.
        assert_eq!(first.claim_space(40, 100, 10), Ok(()));
        assert_eq!(second.claim_space(51, 100, 10), Err(Short { claimed: 40 }));
        assert_eq!(second.claim_space(25, 100, 10), Ok(()));
        // Another filesystem does not see them.
        let elsewhere = claim(&uploads, &key(2, 1, "three"), &b).unwrap();
        assert_eq!(elsewhere.claim_space(90, 100, 10), Ok(()));
        // Written bytes leave the claim: the filesystem's free count has them now.
        first.wrote(20);
        first.wrote(u64::MAX);
        let third = claim(&uploads, &key(1, 1, "four"), &a).unwrap();
        assert_eq!(third.claim_space(65, 100, 10), Ok(()));
    }

    #[test]
    fn one_claimant_keeps_at_most_half_of_the_room() {
        let uploads = Uploads::default();
        let (a, b) = (Owner::account("a"), Owner::account("b"));
        let greedy = claim(&uploads, &key(1, 1, "big"), &a).unwrap();
        // It fits, so it runs; only half of the 90 above the reserve is held for it.
        assert_eq!(greedy.claim_space(90, 100, 10), Ok(()));
        let more = claim(&uploads, &key(1, 1, "more"), &a).unwrap();
        assert_eq!(more.claim_space(10, 100, 10), Ok(()));
        let other = claim(&uploads, &key(1, 1, "other"), &b).unwrap();
        assert_eq!(other.claim_space(45, 100, 10), Ok(()));
        assert_eq!(other.claim_space(46, 100, 10), Err(Short { claimed: 45 }));
    }

    #[test]
    fn a_partial_being_written_is_not_removed() {
        let uploads = Uploads::default();
        let shared = Owner::shared();
        let guard = claim(&uploads, &key(1, 2, "file.bin"), &shared).unwrap();
        let busy = key(1, 2, ".ferry-part.file.bin");
        assert_eq!(uploads.remove_idle_partial(&busy, || ()), None);
        let elsewhere = key(1, 3, ".ferry-part.file.bin");
        assert_eq!(uploads.remove_idle_partial(&elsewhere, || ()), Some(()));
        drop(guard);
        assert_eq!(uploads.remove_idle_partial(&busy, || ()), Some(()));
    }

    #[test]
    fn partial_names_are_one_to_one_per_owner_and_target() {
        let shared = Owner::shared();
        let alice = Owner::account("alice");
        let long = "x".repeat(250);
        let hex = blake3::hash(long.as_bytes()).to_hex().to_string();
        let names = [
            shared.partial_name("a.txt"),
            shared.partial_name(&long),
            shared.partial_name(&hex),
            alice.partial_name("a.txt"),
            alice.partial_name(&long),
            alice.partial_name(&hex),
            shared.partial_name(&alice.partial_name("a.txt")[PARTIAL_PREFIX.len()..]),
        ];
        for (i, one) in names.iter().enumerate() {
            assert!(one.len() <= MAX_NAME_LEN, "{one}");
            assert!(one.starts_with(PARTIAL_PREFIX));
            for other in &names[i + 1..] {
                assert_ne!(one, other);
            }
        }
        assert_eq!(names[0], ".ferry-part.a.txt");
        assert_eq!(
            shared.target_of(&names[0]),
            Some(Target::Name("a.txt".into()))
        );
        assert_eq!(alice.target_of(&names[0]), None);
        assert_eq!(shared.target_of(&names[3]), None);
        assert_eq!(
            alice.target_of(&names[3]),
            Some(Target::Name("a.txt".into()))
        );
        assert_eq!(alice.target_of(&names[4]), Some(Target::Hashed));
        assert!(shared.is_hashed(&names[2]));
        assert_eq!(Owner::account("bob").target_of(&names[3]), None);
    }
}
