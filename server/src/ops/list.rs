//! `list`: a directory's entries, read lazily and sent in batches under the header cap, so a
//! directory of a million names costs one batch of memory.

use ferry_protocol::EntryBatcher;

use super::Access;
use super::Pipe;
use crate::error::OpError;
use crate::root::{RemotePath, addressable, entry};

pub(super) fn list(access: &Access, path: &str, pipe: &mut Pipe) {
    if let Err(err) = send_batches(access, path, pipe) {
        // Before the first batch this is the whole answer; after some batches it ends the
        // stream in place of the last one, which a client reads the same way.
        pipe.send(err.encode());
    }
}

fn send_batches(access: &Access, wire: &str, pipe: &mut Pipe) -> Result<(), OpError> {
    let path = RemotePath::parse(wire)?;
    let dir = access.root.open_dir(&path)?;
    let entries = dir.entries().map_err(|e| OpError::io(&e, wire))?;
    let mut batcher = EntryBatcher::new();
    let mut skipped = 0u64;
    for item in entries {
        let item = item.map_err(|e| OpError::io(&e, wire))?;
        let name = item.file_name();
        let text = match addressable(&name) {
            Ok(text) => text,
            Err(hidden) => {
                skipped += u64::from(!hidden);
                continue;
            }
        };
        // Gone since the directory was read: it is simply not there any more.
        let Ok(meta) = item.metadata() else {
            continue;
        };
        let mut entry = entry(&access.root, &dir, &name, wire, text, &meta);
        // A listing is what a person looks at: who owns each entry (a walk leaves it out).
        entry.owner = Some(ferry_localfs::owner_of(&meta));
        let full = batcher
            .push(&entry)
            .map_err(|e| OpError::new(ferry_protocol::ErrorCode::Io, e.to_string()))?;
        if let Some(line) = full
            && !pipe.send(line)
        {
            return Ok(());
        }
    }
    pipe.send(batcher.finish(skipped));
    Ok(())
}
