//! `walk`: every entry below a directory, depth first, each directory before its contents,
//! names relative to the walked directory. Symlinks are listed, never followed. Memory is one
//! open directory iterator per level, with a cap on the depth.

use std::sync::Arc;

use cap_std::fs::{Dir, ReadDir};
use ferry_protocol::path::{MAX_PATH_LEN, join};
use ferry_protocol::{Entry, EntryBatcher, ErrorCode};
use tokio_util::sync::CancellationToken;

use super::Pipe;
use super::Scope;
use crate::error::OpError;
use crate::root::{RemotePath, Root, addressable, entry};

/// Levels a walk descends below its start. Deeper directories are listed but not entered (and
/// counted as skipped); the cap also bounds open file descriptors per walk.
pub(super) const MAX_DEPTH: usize = 128;

pub(super) fn walk(scope: &Scope, path: &str, pipe: &mut Pipe) {
    if let Err(err) = send_batches(scope, path, pipe) {
        pipe.send(err.encode());
    }
}

fn send_batches(scope: &Scope, wire: &str, pipe: &mut Pipe) -> Result<(), OpError> {
    let path = RemotePath::parse(wire)?;
    let mut walker = Walker::new(scope, scope.root.open_dir(&path)?, wire)?;
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
    pipe.send(batcher.finish(walker.skipped()));
    Ok(())
}

/// One directory being read: its handle (to resolve symlinks and open children) and where
/// its entries' names start.
#[derive(Debug)]
struct Level {
    dir: Dir,
    entries: ReadDir,
    prefix: String,
}

/// A lazy, depth-first walk of a tree.
#[derive(Debug)]
pub(super) struct Walker {
    stack: Vec<Level>,
    /// Bytes of path in front of a walked name on the wire, to keep names addressable.
    base_len: usize,
    skipped: u64,
    /// The session's root and the walked directory's wire path, to resolve symlinks that
    /// lead out of the directory holding them.
    root: Arc<Root>,
    base: String,
    /// A walk of a huge tree must not hold up the server's shutdown.
    shutdown: CancellationToken,
}

impl Walker {
    pub fn new(scope: &Scope, dir: Dir, wire: &str) -> Result<Self, OpError> {
        let entries = dir.entries().map_err(|e| OpError::io(&e, wire))?;
        Ok(Self {
            stack: vec![Level {
                dir,
                entries,
                prefix: String::new(),
            }],
            base_len: if wire.is_empty() { 0 } else { wire.len() + 1 },
            skipped: 0,
            root: Arc::clone(&scope.root),
            base: wire.to_owned(),
            shutdown: scope.shared.shutdown.clone(),
        })
    }

    /// Entries left out: unaddressable names, unreadable or too-deep directories.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The next entry; `None` when the whole tree has been seen.
    pub fn next_entry(&mut self) -> Option<Entry> {
        loop {
            if self.shutdown.is_cancelled() {
                return None;
            }
            let level = self.stack.last_mut()?;
            let item = match level.entries.next() {
                None => {
                    self.stack.pop();
                    continue;
                }
                Some(Err(_)) => {
                    // A directory that fails half-way is abandoned, not the whole walk.
                    self.skipped += 1;
                    self.stack.pop();
                    continue;
                }
                Some(Ok(item)) => item,
            };
            let name = item.file_name();
            let text = match addressable(&name) {
                Ok(text) => text,
                Err(hidden) => {
                    self.skipped += u64::from(!hidden);
                    continue;
                }
            };
            let rel = join(&level.prefix, &text);
            if self.base_len + rel.len() > MAX_PATH_LEN {
                self.skipped += 1;
                continue;
            }
            let Ok(meta) = item.metadata() else {
                continue;
            };
            let found = entry(&self.root, &level.dir, &name, &self.base, rel, &meta);
            if meta.is_dir() {
                if self.stack.len() > MAX_DEPTH {
                    self.skipped += 1;
                } else {
                    match item.open_dir().and_then(|dir| Ok((dir.entries()?, dir))) {
                        Ok((entries, dir)) => self.stack.push(Level {
                            dir,
                            entries,
                            prefix: found.name.clone(),
                        }),
                        Err(_) => self.skipped += 1,
                    }
                }
            }
            return Some(found);
        }
    }
}
