//! `remove`: a file or symlink (never what a link points to), an empty directory, or with
//! `recursive` a whole tree. The root itself is never removed.
//!
//! A tree can be of any depth (a writer renames a chain to the bottom of another, again and
//! again), so a recursive remove is a loop over an explicit stack of at most [`OPEN_LEVELS`]
//! open directories, never recursion: a directory found below that is moved up into the
//! directory being removed, under a fresh name, and removed from there in a later pass. Stack
//! and descriptors stay bounded whatever the depth, and the whole tree goes.
//!
//! A move's source is removed only while it is still the file that was copied: with `if_*`
//! preconditions the entry must be a regular file with that length, mtime and digest, looked
//! at through the open file and by `lstat` of the name right before the unlink. What is left
//! is the moment between that last `lstat` and the `unlink` (no call unlinks "only if still
//! this inode"), and a writer holding the file open who writes after the unlink: both would
//! need the change to land within microseconds of the check.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;

use cap_std::fs::OpenOptionsExt;
use cap_std::fs::{Dir, Metadata, MetadataExt, OpenOptions, ReadDir};
use ferry_protocol::path::is_partial_bytes;
use ferry_protocol::{Digest, Done, ErrorCode};

use super::Access;
use tokio_util::sync::CancellationToken;

use super::{Meter, UNITS_PER_MIB, check_writable, ok_line, same_version};
use crate::descriptors;
use crate::error::OpError;
use crate::root::{RemotePath, wire_name};
use crate::uploads::FileKey;
use ferry_localfs::hash_prefix_until;

/// Directories a recursive remove holds open at once (three descriptors each: the directory
/// and its reader's two).
pub(super) const OPEN_LEVELS: usize = 16;
/// Names tried for a directory moved up before giving up (a name may be taken by an entry of
/// the tree itself).
const MOVE_TRIES: u32 = 64;

/// What the file to remove must still be (a move's verified copy); all `None`: anything.
#[derive(Debug, Clone, Default)]
pub(super) struct Expect {
    pub size: Option<u64>,
    pub mtime: Option<i64>,
    pub digest: Option<Digest>,
}

impl Expect {
    fn is_set(&self) -> bool {
        self.size.is_some() || self.mtime.is_some() || self.digest.is_some()
    }
}

pub(super) fn remove(
    access: &Access,
    wire: &str,
    recursive: bool,
    expect: &Expect,
    stop: &CancellationToken,
    meter: &Meter,
) -> Result<Vec<u8>, OpError> {
    check_writable(access, wire)?;
    let path = RemotePath::parse(wire)?;
    if path.is_root() {
        return Err(OpError::new(
            ErrorCode::Forbidden,
            "the root itself cannot be removed",
        ));
    }
    let (dir, name, meta) = access.root.open_entry(&path)?;
    let removed = if expect.is_set() {
        still_as_copied(&dir, name, &meta, expect, wire, stop, meter)?;
        dir.remove_file(name)
    } else if !meta.is_dir() {
        dir.remove_file(name)
    } else if recursive {
        let held = descriptors::budget().take(3 * OPEN_LEVELS)?;
        let removed = remove_tree(&dir, name);
        drop(held);
        removed
    } else {
        match dir.remove_dir(name) {
            Err(err) if err.kind() == io::ErrorKind::DirectoryNotEmpty => {
                remove_if_only_partials(access, &dir, name).and_then(|()| dir.remove_dir(name))
            }
            other => other,
        }
    };
    removed.map_err(|err| OpError::io(&err, wire))?;
    ok_line(&Done {})
}

/// `Ok` when `name` (whose `lstat` is `seen`) is still the regular file `expect` describes,
/// checked on the open file and then on the name again; otherwise `file_changed`.
fn still_as_copied(
    dir: &Dir,
    name: &std::ffi::OsStr,
    seen: &Metadata,
    expect: &Expect,
    wire: &str,
    stop: &CancellationToken,
    meter: &Meter,
) -> Result<(), OpError> {
    let changed = |why: &str| {
        Err(OpError::new(
            ErrorCode::FileChanged,
            format!("{wire}: {why} since it was copied; it is kept"),
        ))
    };
    if !seen.is_file() {
        return changed("no longer a regular file");
    }
    if expect.size.is_some_and(|size| size != seen.len()) {
        return changed("its length changed");
    }
    if expect.mtime.is_some_and(|mtime| mtime != seen.mtime()) {
        return changed("its modification time changed");
    }
    let io = |err: io::Error| OpError::io(&err, wire);
    if let Some(digest) = expect.digest {
        let mut options = OpenOptions::new();
        options.read(true);
        // Never through a link swapped in since the lstat, never blocked by a FIFO.
        options.custom_flags(
            (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32,
        );
        let mut file = dir.open_with(name, &options).map_err(io)?;
        let before = file.metadata().map_err(io)?;
        if !same_version(&before, seen) {
            return changed("it was replaced");
        }
        let mut hasher = blake3::Hasher::new();
        // One byte past the length: a file that grew while it was read is told by its length.
        // Hashing is expensive work like a resumed `get`'s: it stops for a client that has
        // gone, and is charged to the connection's budget.
        let read = hash_prefix_until(&mut file, seen.len().saturating_add(1), &mut hasher, || {
            stop.is_cancelled()
        })
        .map_err(io)?;
        meter.add(read.div_ceil(1024 * 1024) * UNITS_PER_MIB);
        if stop.is_cancelled() {
            return Err(OpError::new(
                ErrorCode::Io,
                format!("{wire}: the client has gone"),
            ));
        }
        let after = file.metadata().map_err(io)?;
        if read != seen.len() || !same_version(&after, &before) {
            return changed("it was written to");
        }
        if Digest::from(hasher.finalize()) != digest {
            return changed("its bytes changed");
        }
    }
    // The name again, right before the unlink: still this inode, untouched.
    let now = dir.symlink_metadata(name).map_err(io)?;
    if !now.is_file() || !same_version(&now, seen) {
        return changed("it was written to or replaced");
    }
    Ok(())
}

/// A directory that holds nothing but abandoned partial uploads looks empty to every client,
/// so removing it must work: the partials go first. Anything else keeps `not_empty`, and so
/// does a partial an upload is writing right now (it is not abandoned: its bytes would be lost
/// from under it).
fn remove_if_only_partials(access: &Access, dir: &Dir, name: &std::ffi::OsStr) -> io::Result<()> {
    let inner = dir.open_dir(name)?;
    let mut partials = Vec::new();
    for item in inner.entries()? {
        let item = item?;
        let file_name = item.file_name();
        let is_partial = is_partial_bytes(file_name.as_bytes());
        if !is_partial || item.file_type()?.is_dir() {
            return Err(io::Error::from(io::ErrorKind::DirectoryNotEmpty));
        }
        partials.push(file_name);
    }
    for partial in partials {
        let wire = wire_name(&partial);
        let key = FileKey::in_dir(&inner, &wire)?;
        match access
            .server
            .uploads
            .remove_idle_partial(&key, || inner.remove_file(&partial))
        {
            Some(removed) => removed?,
            None => return Err(io::Error::from(io::ErrorKind::DirectoryNotEmpty)),
        }
    }
    Ok(())
}

/// One directory of the tree being removed, open, with its name in the level above.
#[derive(Debug)]
struct Level {
    dir: Dir,
    entries: ReadDir,
    name: OsString,
}

/// Opens `name` in `parent` as a directory only if it is the directory `lstat` saw there, so a
/// symlink swapped in meanwhile is never followed into another part of the tree.
fn open_level(parent: &Dir, name: OsString) -> io::Result<Option<Level>> {
    let seen = parent.symlink_metadata(&name)?;
    if !seen.is_dir() {
        return Ok(None);
    }
    let dir = parent.open_dir(&name)?;
    let opened = dir.dir_metadata()?;
    if (opened.dev(), opened.ino()) != (seen.dev(), seen.ino()) {
        return Ok(None);
    }
    let entries = dir.entries()?;
    Ok(Some(Level { dir, entries, name }))
}

/// Removes the directory `name` in `parent` and everything below it, holding at most
/// [`OPEN_LEVELS`] directories open.
fn remove_tree(parent: &Dir, name: &std::ffi::OsStr) -> io::Result<()> {
    let Some(top) = open_level(parent, OsString::from(name))? else {
        // No longer a directory: what is there now is removed as an entry.
        return parent.remove_file(name);
    };
    // The directory being removed stays open below the stack: moved-up directories go there.
    let mut stack: Vec<Level> = vec![top];
    let mut moved = 0u64;
    let mut moved_this_pass = false;
    loop {
        let depth = stack.len();
        let Some(level) = stack.last_mut() else {
            break;
        };
        let Some(item) = level.entries.next() else {
            if depth > 1 {
                let done = stack.pop().map(|level| level.name);
                if let (Some(done), Some(above)) = (done, stack.last()) {
                    above.dir.remove_dir(&done)?;
                }
                continue;
            }
            if moved_this_pass {
                // Directories were moved up while the top was read: read it again.
                moved_this_pass = false;
                level.entries = level.dir.entries()?;
                continue;
            }
            break;
        };
        let item = item?;
        if !item.file_type()?.is_dir() {
            item.remove_file()?;
            continue;
        }
        let child = item.file_name();
        if depth < OPEN_LEVELS {
            match open_level(&level.dir, child.clone())? {
                Some(below) => stack.push(below),
                None => level.dir.remove_file(&child)?,
            }
            continue;
        }
        // Too deep to open: move it up into the top, where a later pass finds it.
        let (top, rest) = stack.split_at(1);
        let from = &rest.last().unwrap_or(&top[0]).dir;
        move_up(from, &child, &top[0].dir, &mut moved)?;
        moved_this_pass = true;
    }
    drop(stack);
    parent.remove_dir(name)
}

/// Moves the directory `name` of `from` into `top` under a name not taken there.
fn move_up(from: &Dir, name: &OsString, top: &Dir, moved: &mut u64) -> io::Result<()> {
    let mut tries = 0;
    loop {
        *moved += 1;
        let fresh = format!(".ferry-removing.{moved}");
        match from.rename(name, top, &fresh) {
            // An empty directory of that name would have been replaced; a file or a full
            // directory refuses: take the next name.
            Err(err)
                if tries < MOVE_TRIES
                    && matches!(
                        err.kind(),
                        io::ErrorKind::DirectoryNotEmpty
                            | io::ErrorKind::AlreadyExists
                            | io::ErrorKind::NotADirectory
                    ) =>
            {
                tries += 1;
            }
            other => return other,
        }
    }
}
