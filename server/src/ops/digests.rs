//! `digests`: a tree's entries with the digest of every regular file, in one streamed answer,
//! so comparing two trees costs one request instead of one round trip per file.
//!
//! The tree form walks with `walk`'s [`Walker`] (same order, depth cap, descriptor budget and
//! errors) and hashes each regular file through the handle of the directory it was read from:
//! one `openat` of a single name, never following a symlink (`O_NOFOLLOW`) and never blocking
//! on a fifo swapped in (`O_NONBLOCK`). The listed form resolves each named path beneath the
//! root through [`Root::open_entry`] and does the same. A file is described by the `fstat` of
//! the handle it was hashed through, so its size, mtime and mode are those of the bytes the
//! digest covers; one whose length, mtime or ctime moved while it was read is named with
//! `file_changed` instead of a digest. Every entry a walk would list is in the answer; one
//! that could not be hashed carries an `error` and is counted in `skipped`.
//!
//! Hashing is expensive work: it is metered (one unit per entry, [`UNITS_PER_MIB`] per MiB
//! read, counted by bytes so a tree of small files is not charged a MiB each), and it stops at
//! the next MiB once the client has gone. Memory is one read buffer of [`CHUNK`] bytes and the
//! walk's own, whatever the size of the tree.
//!
//! Digests are cached, process-wide, keyed on the file's device, inode, size, mtime and ctime
//! (to the nanosecond): measured (PROTOCOL.md, `digests`), a repeat then costs about what the
//! walk beneath it costs. A write moves mtime and ctime, and ctime cannot be set from user
//! space; what the key cannot see is a write within the kernel's coarse timestamp tick of the
//! hashing, so a file whose ctime is not at least [`SETTLED`] older than the start of its
//! hashing is never cached. The cache holds at most [`CACHED`] digests (two generations of
//! half that: a full one is dropped whole, so the memory is bounded and the digests used since
//! stay).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cap_std::fs::{Dir, Metadata, MetadataExt, OpenOptions, OpenOptionsExt};
use ferry_protocol::path;
use ferry_protocol::{
    Digest, DigestEntry, Entry, EntryBatcher, ErrorBody, ErrorCode, Kind, MAX_DIGEST_PATHS,
};

use super::walk::Walker;
use super::{Access, Pipe, UNITS_PER_MIB, same_version};
use crate::error::{OpError, code_of, io_text};
use crate::root::{RemotePath, entry};

/// Bytes read at once while hashing: one buffer per request, reused for every file.
const CHUNK: usize = 1024 * 1024;

/// Digests the cache holds at most: about 100 bytes each with the map's overhead, so 13 MiB.
pub(crate) const CACHED: usize = 131_072;
/// How much older than the start of its hashing a file's ctime must be for its digest to be
/// cached: far above the kernel's timestamp tick (a few ms), so a write the key cannot tell
/// from the hashed version (same tick, same size) never lands in the cache.
pub(crate) const SETTLED: Duration = Duration::from_secs(2);

/// What a file's digest is cached under: which file, and which version of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Version {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Version {
    fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the version's ctime is at least [`SETTLED`] before `started`.
    fn settled_before(&self, started: SystemTime) -> bool {
        let Ok(started) = started.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let (secs, nanos) = self.ctime;
        let (Ok(secs), Ok(nanos)) = (u64::try_from(secs), u32::try_from(nanos)) else {
            return false;
        };
        Duration::new(secs, 0)
            .checked_add(Duration::from_nanos(u64::from(nanos)))
            .and_then(|ctime| ctime.checked_add(SETTLED))
            .is_some_and(|settled| settled <= started)
    }
}

/// Digests by version, in two generations: lookups look in both (and bring a digest found in
/// the old one into the new), inserts go to the new one, and a full new one becomes the old
/// one, the old one dropped. Bounded by `2 * half`, and what was used lately stays.
#[derive(Debug)]
struct DigestCache {
    young: HashMap<Version, Digest>,
    old: HashMap<Version, Digest>,
    half: usize,
}

impl DigestCache {
    fn new(capacity: usize) -> Self {
        Self {
            young: HashMap::new(),
            old: HashMap::new(),
            half: (capacity / 2).max(1),
        }
    }

    fn get(&mut self, version: &Version) -> Option<Digest> {
        if let Some(digest) = self.young.get(version) {
            return Some(*digest);
        }
        let digest = self.old.remove(version)?;
        self.insert(*version, digest);
        Some(digest)
    }

    fn insert(&mut self, version: Version, digest: Digest) {
        if self.young.len() >= self.half && !self.young.contains_key(&version) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(version, digest);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }
}

/// The server's digest cache, shared by every connection: a digest depends only on the file's
/// version, never on who asked (each login still reaches only what its root holds).
static CACHE: LazyLock<Mutex<DigestCache>> = LazyLock::new(|| Mutex::new(DigestCache::new(CACHED)));

fn cached(version: &Version) -> Option<Digest> {
    CACHE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(version)
}

fn remember(version: Version, digest: Digest) {
    CACHE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(version, digest);
}

pub(super) fn digests(access: &Access, path: &str, paths: Option<Vec<String>>, pipe: &mut Pipe) {
    let mut hashing = Hashing {
        buf: Vec::new(),
        hashed: 0,
        charged: 0,
    };
    let result = match paths {
        None => tree(access, path, &mut hashing, pipe),
        Some(paths) => listed(access, path, &paths, &mut hashing, pipe),
    };
    if let Err(err) = result {
        pipe.send(err.encode());
    }
}

/// The tree below `wire`, walked like `walk`, each regular file hashed.
fn tree(
    access: &Access,
    wire: &str,
    hashing: &mut Hashing,
    pipe: &mut Pipe,
) -> Result<(), OpError> {
    let path = RemotePath::parse(wire)?;
    let mut walker = Walker::new(access, &path, pipe.stop(), pipe.meter().clone())?;
    let mut batcher = EntryBatcher::new();
    let mut failed = 0u64;
    while let Some(found) = walker.next_entry() {
        let mut found = DigestEntry {
            entry: found,
            digest: None,
        };
        if found.entry.kind == Kind::File
            && found.entry.error.is_none()
            && let Some(dir) = walker.dir_of_last()
        {
            let name = last_raw_name(&found.entry.name);
            hashing.describe(dir, &name, walker.meta_of_last(), &mut found, pipe);
            if pipe.stopped() {
                return Ok(());
            }
            failed += u64::from(found.entry.error.is_some());
        }
        if !send(&mut batcher, &found, pipe)? {
            return Ok(());
        }
    }
    // Returning drops the walker, so its descriptors are free before the error is sent.
    walker.finish()?;
    pipe.send(batcher.finish(walker.skipped() + failed));
    Ok(())
}

/// The entries `paths` (relative to `wire`) name, in the order given.
fn listed(
    access: &Access,
    wire: &str,
    paths: &[String],
    hashing: &mut Hashing,
    pipe: &mut Pipe,
) -> Result<(), OpError> {
    if paths.len() > MAX_DIGEST_PATHS {
        return Err(OpError::new(
            ErrorCode::TooLarge,
            format!(
                "{} paths in one digests request; at most {MAX_DIGEST_PATHS}",
                paths.len()
            ),
        ));
    }
    // The base is checked once, so a bad one is an error for the request, not for each entry.
    RemotePath::parse(wire)?;
    let mut batcher = EntryBatcher::new();
    let mut failed = 0u64;
    for rel in paths {
        if pipe.stopped() {
            return Ok(());
        }
        pipe.meter().add(1);
        let found = one(access, wire, rel, hashing, pipe);
        if pipe.stopped() {
            return Ok(());
        }
        failed += u64::from(found.entry.error.is_some());
        if !send(&mut batcher, &found, pipe)? {
            return Ok(());
        }
    }
    pipe.send(batcher.finish(failed));
    Ok(())
}

/// One listed path: a regular file hashed, a symlink described (never followed), a directory
/// `is_a_directory`, anything else `forbidden`; a path that breaks the rules or leads nowhere
/// is named with its error like any other.
fn one(access: &Access, base: &str, rel: &str, hashing: &mut Hashing, pipe: &Pipe) -> DigestEntry {
    let failed = |err: OpError| DigestEntry {
        entry: Entry {
            name: rel.to_owned(),
            kind: Kind::Other,
            size: 0,
            mtime: 0,
            mode: 0,
            link: None,
            error: Some(ErrorBody::new(err.code, err.message)),
            owner: None,
            target: None,
        },
        digest: None,
    };
    if rel.is_empty() {
        return failed(OpError::new(
            ErrorCode::BadPath,
            "an empty path names the base directory, not a file in it",
        ));
    }
    let full = path::join(base, rel);
    let path = match RemotePath::parse(&full) {
        Ok(path) => path,
        Err(err) => return failed(err),
    };
    let (dir, name, meta) = match access.root.open_entry(&path) {
        Ok(found) => found,
        Err(err) => return failed(err),
    };
    let mut found = DigestEntry {
        entry: entry(&access.root, &dir, name, base, rel.to_owned(), &meta),
        digest: None,
    };
    if meta.is_dir() {
        found.entry.error = Some(ErrorBody::new(
            ErrorCode::IsADirectory,
            format!("{full}: is a directory"),
        ));
    } else if meta.is_file() {
        hashing.describe(&dir, name, Some(&meta), &mut found, pipe);
    } else if !meta.file_type().is_symlink() {
        found.entry.error = Some(ErrorBody::new(
            ErrorCode::Forbidden,
            format!("{full}: not a regular file"),
        ));
    }
    found
}

/// Adds an entry to the batch and sends the batch when it is full; `false` once the client
/// has gone.
fn send(batcher: &mut EntryBatcher, found: &DigestEntry, pipe: &Pipe) -> Result<bool, OpError> {
    let full = batcher
        .push(found)
        .map_err(|e| OpError::new(ErrorCode::Io, e.to_string()))?;
    Ok(full.is_none_or(|line| pipe.send(line)))
}

/// The last name of a wire path as the filesystem knows it.
fn last_raw_name(wire: &str) -> std::ffi::OsString {
    let name = path::split_last(wire).map_or(wire, |(_, name)| name);
    // Walked names come from the disk and were escaped by the server: they decode.
    let raw = path::name_bytes(name).map_or_else(|_| name.as_bytes().to_vec(), |raw| raw.to_vec());
    OsStr::from_bytes(&raw).to_owned()
}

/// The read buffer one request hashes with, and the bytes it has read and charged so far.
struct Hashing {
    buf: Vec<u8>,
    hashed: u64,
    charged: u64,
}

impl Hashing {
    /// Hashes the regular file `name` in `dir` into `found`: its digest and the `fstat` of the
    /// handle hashed, or an `error` saying why not. `seen` is its `lstat`: when the cache holds
    /// that version's digest, the file is not opened at all.
    fn describe(
        &mut self,
        dir: &Dir,
        name: &OsStr,
        seen: Option<&Metadata>,
        found: &mut DigestEntry,
        pipe: &Pipe,
    ) {
        if let Some(seen) = seen.filter(|seen| seen.is_file())
            && let Some(digest) = cached(&Version::of(seen))
        {
            found.entry.size = seen.len();
            found.entry.mtime = seen.mtime();
            found.entry.mode = seen.mode() & 0o7777;
            found.digest = Some(digest);
            return;
        }
        match self.hash(dir, name, pipe) {
            Ok(Some((meta, digest))) => {
                found.entry.size = meta.len();
                found.entry.mtime = meta.mtime();
                found.entry.mode = meta.mode() & 0o7777;
                found.digest = Some(digest);
            }
            // The client has gone: nothing more is sent.
            Ok(None) => {}
            Err(err) => found.entry.error = Some(err),
        }
        // The bytes by their MiB, charged as whole units accrue (the entry's own unit is the
        // walk's, or the listed path's).
        let units = self.hashed.saturating_mul(UNITS_PER_MIB) / CHUNK as u64;
        pipe.meter().add(units.saturating_sub(self.charged));
        self.charged = units.max(self.charged);
    }

    fn hash(
        &mut self,
        dir: &Dir,
        name: &OsStr,
        pipe: &Pipe,
    ) -> Result<Option<(Metadata, Digest)>, ErrorBody> {
        let io = |err: io::Error| ErrorBody::new(code_of(&err), io_text(&err));
        let changed = |how: &str| {
            ErrorBody::new(
                ErrorCode::FileChanged,
                format!("it changed while it was hashed ({how})"),
            )
        };
        let mut options = OpenOptions::new();
        options.read(true);
        options.custom_flags(
            (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32,
        );
        let started = SystemTime::now();
        let mut file = dir.open_with(name, &options).map_err(io)?;
        let before = file.metadata().map_err(io)?;
        if !before.is_file() {
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                "not a regular file any more",
            ));
        }
        if self.buf.is_empty() {
            self.buf = vec![0; CHUNK];
        }
        let mut hasher = blake3::Hasher::new();
        // One byte past the length: a file that grew while it was read is told by its length.
        let limit = before.len().saturating_add(1);
        let mut read = 0u64;
        while read < limit {
            if pipe.stopped() {
                return Ok(None);
            }
            let want = usize::try_from(limit - read).map_or(CHUNK, |left| left.min(CHUNK));
            let n = match file.read(&mut self.buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(io(err)),
            };
            hasher.update(&self.buf[..n]);
            read += n as u64;
            self.hashed = self.hashed.saturating_add(n as u64);
        }
        let after = file.metadata().map_err(io)?;
        if read != before.len() {
            return Err(changed("its length"));
        }
        if !same_version(&before, &after) {
            return Err(changed("its mtime or ctime"));
        }
        let digest = Digest::from(hasher.finalize());
        let version = Version::of(&before);
        if version.settled_before(started) {
            remember(version, digest);
        }
        Ok(Some((before, digest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(ino: u64, ctime: i64) -> Version {
        Version {
            dev: 1,
            ino,
            size: 3,
            mtime: (ctime, 0),
            ctime: (ctime, 0),
        }
    }

    #[test]
    fn the_cache_stays_within_its_bound_and_keeps_what_is_used() {
        let mut cache = DigestCache::new(4);
        let kept = version(0, 1);
        cache.insert(kept, Digest::of(b"kept"));
        for ino in 1..100 {
            cache.insert(version(ino, 1), Digest::of(&ino.to_le_bytes()));
            assert!(cache.len() <= 4, "{}", cache.len());
            // Used all along, so never dropped.
            assert_eq!(cache.get(&kept), Some(Digest::of(b"kept")));
        }
        assert_eq!(cache.get(&version(1, 1)), None, "long unused: dropped");
        assert_eq!(
            cache.get(&version(99, 1)),
            Some(Digest::of(&99u64.to_le_bytes()))
        );
        // Another version of a cached file is another key.
        assert_eq!(cache.get(&version(99, 2)), None);
    }

    #[test]
    fn only_a_file_settled_before_its_hashing_is_cached() {
        let started = UNIX_EPOCH + Duration::from_secs(1_000);
        assert!(version(1, 997).settled_before(started));
        assert!(version(1, 998).settled_before(started));
        assert!(!version(1, 999).settled_before(started));
        assert!(!version(1, 1_000).settled_before(started));
        assert!(
            !version(1, 2_000).settled_before(started),
            "a clock set back"
        );
        assert!(!version(1, -5).settled_before(started));
        let mut nanos = version(1, 998);
        nanos.ctime.1 = 1;
        assert!(!nanos.settled_before(started));
    }
}
