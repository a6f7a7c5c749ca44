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
//! No digest cache yet: measured (PROTOCOL.md, `digests`, with the numbers), one would pay, and
//! what its key cannot see (a same-size write within the timestamp granularity) is written
//! there with how a cache must handle it.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;

use cap_std::fs::{Dir, Metadata, MetadataExt, OpenOptions, OpenOptionsExt};
use ferry_protocol::path;
use ferry_protocol::{
    Digest, DigestEntry, Entry, EntryBatcher, ErrorBody, ErrorCode, Kind, MAX_DIGEST_PATHS,
};

use super::walk::Walker;
use super::{Access, Pipe, UNITS_PER_MIB};
use crate::error::{OpError, code_of, io_text};
use crate::root::{RemotePath, entry};

/// Bytes read at once while hashing: one buffer per request, reused for every file.
const CHUNK: usize = 1024 * 1024;

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
            hashing.describe(dir, &name, &mut found, pipe);
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
        hashing.describe(&dir, name, &mut found, pipe);
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
    /// handle hashed, or an `error` saying why not.
    fn describe(&mut self, dir: &Dir, name: &OsStr, found: &mut DigestEntry, pipe: &Pipe) {
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
        Ok(Some((before, Digest::from(hasher.finalize()))))
    }
}

/// The same inode, length, mtime and ctime: a write, truncate or `touch` moves one of them.
fn same_version(a: &Metadata, b: &Metadata) -> bool {
    (
        a.dev(),
        a.ino(),
        a.len(),
        a.mtime(),
        a.mtime_nsec(),
        a.ctime(),
        a.ctime_nsec(),
    ) == (
        b.dev(),
        b.ino(),
        b.len(),
        b.mtime(),
        b.mtime_nsec(),
        b.ctime(),
        b.ctime_nsec(),
    )
}
