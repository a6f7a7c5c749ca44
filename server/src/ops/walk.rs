//! `walk`: every entry below a directory, depth first, each directory before its contents,
//! names relative to the walked directory. Symlinks are listed, never followed. The walk is a
//! loop over an explicit stack, never recursion: memory is one open directory per level, with
//! a cap on the depth, so a tree of any depth costs bounded stack and at most
//! `3 * (MAX_DEPTH + 1)` descriptors, taken from the server's budget (`busy` when it is spent).
//! A directory it cannot go into is listed with an `error` saying why; so is one whose reading
//! fails part-way (named again after the entries read), and an entry whose metadata cannot be
//! read (`not_found` when it vanished between `readdir` and `lstat`).

use std::sync::Arc;

use std::os::unix::ffi::OsStrExt;

use cap_std::fs::{Dir, Metadata, ReadDir};
use ferry_protocol::path::{MAX_PATH_LEN, join};
use ferry_protocol::{Entry, EntryBatcher, ErrorBody, ErrorCode, Kind};
use tokio_util::sync::CancellationToken;

use super::Access;
use super::{Meter, Pipe};
use crate::descriptors::{self, Held};
use crate::error::{OpError, code_of, io_text};
use crate::root::{RemotePath, Root, addressable, entry};
use ferry_localfs::kind_of;

/// Levels a walk descends below its start. Deeper directories are listed but not entered (and
/// counted as skipped); the cap also bounds open file descriptors per walk.
pub(super) const MAX_DEPTH: usize = 128;
/// Descriptors one open level holds: the directory, and two for its reader (cap-std keeps one
/// to open entries by, rustix another to read from).
pub(crate) const PER_LEVEL: usize = 3;

pub(super) fn walk(access: &Access, path: &str, pipe: &mut Pipe) {
    if let Err(err) = send_batches(access, path, pipe) {
        pipe.send(err.encode());
    }
}

fn send_batches(access: &Access, wire: &str, pipe: &mut Pipe) -> Result<(), OpError> {
    let path = RemotePath::parse(wire)?;
    let mut walker = Walker::new(access, &path, pipe.stop(), pipe.meter().clone())?;
    let mut batcher = EntryBatcher::new();
    while let Some(entry) = walker.next_entry() {
        let full = batcher
            .push(&entry)
            .map_err(|e| OpError::new(ErrorCode::Io, e.to_string()))?;
        if let Some(line) = full
            && !pipe.send(line)
        {
            return Ok(());
        }
    }
    // Returning drops the walker, so its descriptors are free before the error is sent.
    walker.finish()?;
    pipe.send(batcher.finish(walker.skipped()));
    Ok(())
}

/// One directory being read: its handle (to resolve symlinks and open children) and where
/// its entries' names start, on the wire and in raw bytes.
#[derive(Debug)]
struct Level {
    dir: Dir,
    entries: ReadDir,
    prefix: String,
    /// Raw bytes of `prefix` (the path limit counts these, not the longer escaped form).
    raw_len: usize,
    /// The directory's own entry, to name it again if reading it fails part-way.
    entry: Option<Entry>,
    _held: Held,
}

/// A lazy, depth-first walk of a tree.
#[derive(Debug)]
pub(super) struct Walker {
    stack: Vec<Level>,
    /// Raw bytes of path in front of a walked name, to keep names addressable.
    base_len: usize,
    skipped: u64,
    /// The session's root and the walked directory's wire path, to resolve symlinks that
    /// lead out of the directory holding them.
    root: Arc<Root>,
    base: String,
    /// Cancelled when the walk's answer has nowhere to go (the client left) or the server
    /// shuts down: a walk of a huge tree must hold up neither.
    stop: CancellationToken,
    /// Why the walk ended early, when it did: `busy` for descriptors the budget had not.
    failed: Option<OpError>,
    /// One unit per directory entry read, for the connection's work budget.
    meter: Meter,
    /// The last entry was a directory named a second time (its reading failed part-way).
    again: bool,
    /// The `lstat` of the last entry given, when it had one: what `digests` keys its cache on.
    last: Option<Metadata>,
}

impl Walker {
    /// A walk of the directory `path`; stops early once `stop` is cancelled, and counts each
    /// entry it reads on `meter`.
    pub fn new(
        access: &Access,
        path: &RemotePath,
        stop: CancellationToken,
        meter: Meter,
    ) -> Result<Self, OpError> {
        let wire = path.wire.as_str();
        let held = descriptors::budget().take(PER_LEVEL)?;
        let dir = access.root.open_dir(path)?;
        let entries = dir.entries().map_err(|e| OpError::io(&e, wire))?;
        Ok(Self {
            stack: vec![Level {
                dir,
                entries,
                prefix: String::new(),
                raw_len: 0,
                entry: None,
                _held: held,
            }],
            base_len: if wire.is_empty() {
                0
            } else {
                ferry_protocol::path::decode(wire).map_or(wire.len(), |raw| raw.len()) + 1
            },
            skipped: 0,
            root: Arc::clone(&access.root),
            base: wire.to_owned(),
            stop,
            failed: None,
            meter,
            again: false,
            last: None,
        })
    }

    /// The error that ended the walk early, if one did (`busy`: out of descriptors).
    pub fn finish(&mut self) -> Result<(), OpError> {
        self.failed.take().map_or(Ok(()), Err)
    }

    /// Entries left out: unaddressable names, unreadable or too-deep directories.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Whether the entry [`Self::next_entry`] gave last was a directory seen before, named
    /// again because reading it failed part-way (so a count does not take it twice).
    pub fn named_again(&self) -> bool {
        self.again
    }

    /// The directory holding the entry [`Self::next_entry`] gave last, when that entry is not
    /// a directory (a directory's own level is the one opened for it): `digests` opens a file
    /// by its single name there.
    pub fn dir_of_last(&self) -> Option<&Dir> {
        self.stack.last().map(|level| &level.dir)
    }

    /// The `lstat` of the entry [`Self::next_entry`] gave last, when it could be read.
    pub fn meta_of_last(&self) -> Option<&Metadata> {
        self.last.as_ref()
    }

    /// The next entry; `None` when the whole tree has been seen.
    pub fn next_entry(&mut self) -> Option<Entry> {
        self.again = false;
        self.last = None;
        loop {
            if self.stop.is_cancelled() || self.failed.is_some() {
                return None;
            }
            let level = self.stack.last_mut()?;
            let item = match level.entries.next() {
                None => {
                    self.stack.pop();
                    continue;
                }
                Some(Err(e)) => {
                    // A directory that fails half-way is abandoned, not the whole walk, and
                    // named again with why: what it listed is not all it holds.
                    self.skipped += 1;
                    let Some(mut again) = self.stack.pop().and_then(|level| level.entry) else {
                        continue;
                    };
                    again.error = Some(ErrorBody::new(code_of(&e), io_text(&e)));
                    self.again = true;
                    return Some(again);
                }
                Some(Ok(item)) => item,
            };
            self.meter.add(1);
            let name = item.file_name();
            let text = match addressable(&name) {
                Ok(text) => text,
                Err(hidden) => {
                    self.skipped += u64::from(!hidden);
                    continue;
                }
            };
            let rel = join(&level.prefix, &text);
            let raw_len = if level.prefix.is_empty() {
                name.as_bytes().len()
            } else {
                level.raw_len + 1 + name.as_bytes().len()
            };
            if self.base_len + raw_len > MAX_PATH_LEN {
                self.skipped += 1;
                continue;
            }
            let meta = match item.metadata() {
                Ok(meta) => meta,
                Err(e) => {
                    // Gone since `readdir` (or not ours to see): named, not dropped.
                    self.skipped += 1;
                    let kind = item.file_type().map_or(Kind::Other, kind_of);
                    return Some(Entry {
                        name: rel,
                        kind,
                        size: 0,
                        mtime: 0,
                        mode: 0,
                        link: None,
                        error: Some(ErrorBody::new(code_of(&e), io_text(&e))),
                        owner: None,
                        target: None,
                    });
                }
            };
            let mut found = entry(&self.root, &level.dir, &name, &self.base, rel, &meta);
            if meta.is_dir() {
                // A directory not entered is named with why (and still counted, for clients
                // that do not read `error`), so a copy can say what it left out.
                if self.stack.len() > MAX_DEPTH {
                    self.skipped += 1;
                    found.error = Some(ErrorBody::new(
                        ErrorCode::TooLarge,
                        format!("more than {MAX_DEPTH} levels deep: not entered"),
                    ));
                } else {
                    let held = match descriptors::budget().take(PER_LEVEL) {
                        Ok(held) => held,
                        Err(busy) => {
                            // Out of budget: every level is let go at once.
                            self.stack.clear();
                            self.failed = Some(busy);
                            return None;
                        }
                    };
                    match item.open_dir().and_then(|dir| Ok((dir.entries()?, dir))) {
                        Ok((entries, dir)) => self.stack.push(Level {
                            dir,
                            entries,
                            prefix: found.name.clone(),
                            raw_len,
                            entry: Some(found.clone()),
                            _held: held,
                        }),
                        Err(e) => {
                            self.skipped += 1;
                            found.error = Some(ErrorBody::new(code_of(&e), io_text(&e)));
                        }
                    }
                }
            }
            self.last = Some(meta);
            return Some(found);
        }
    }
}
