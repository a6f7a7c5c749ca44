//! `partials` and `discard`: a session's own hidden partial uploads, seen and removed by name.
//! A cancelled upload leaves its partial for a resume; these let its owner find it again and
//! free the space without waiting for the sweeper. Only the caller's partials are listed or
//! removed (the owner is part of a partial's name, see [`crate::uploads`]), and one that an
//! upload is writing right now is `busy`.

use std::io;

use cap_std::fs::{OpenOptions, OpenOptionsExt};
use ferry_protocol::{Done, ErrorCode, MAX_PARTIALS_LISTED, PartialEntry, PartialsReply};

use super::put::TARGET_XATTR;
use super::{Access, check_writable, ok_line};
use crate::error::OpError;
use crate::root::{RemotePath, wire_name};
use crate::uploads::{FileKey, Target};

/// Directory entries one `partials` looks at: a huge directory costs a bounded amount of work.
const MAX_SCANNED: u64 = 1_000_000;

pub(super) fn partials(access: &Access, wire: &str) -> Result<Vec<u8>, OpError> {
    let path = RemotePath::parse(wire)?;
    let dir = access.root.open_dir(&path)?;
    let mut reply = PartialsReply {
        partials: Vec::new(),
        more: false,
        unnamed: 0,
    };
    let entries = dir.entries().map_err(|err| OpError::io(&err, wire))?;
    for (scanned, item) in entries.enumerate() {
        if scanned as u64 >= MAX_SCANNED {
            reply.more = true;
            break;
        }
        let Ok(item) = item else { continue };
        // Any name, in its wire form: a partial of an odd target name has an odd name too.
        let raw = item.file_name();
        let file = wire_name(&raw);
        let Some(target) = access.owner.target_of(&file) else {
            continue;
        };
        // Only regular files: anything else under a partial's name was planted, not uploaded.
        let Ok(meta) = item.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let name = match target {
            Target::Name(name) => Some(name),
            Target::Hashed => read_target(&dir, &raw),
        };
        let Some(name) = name else {
            reply.unnamed += 1;
            continue;
        };
        if reply.partials.len() == MAX_PARTIALS_LISTED {
            reply.more = true;
            break;
        }
        // A partial is written now: one dated before the epoch is a clock gone wrong, shown at 0.
        let mtime = meta.modified().map_or(0, |time| {
            ferry_localfs::secs_since_epoch(time.into_std()).max(0)
        });
        reply.partials.push(PartialEntry {
            name,
            size: meta.len(),
            mtime,
        });
    }
    ok_line(&reply)
}

/// The target name kept on a digest-named partial, when the filesystem kept it and it still
/// hashes to the partial's name (anything else was not written by this server).
fn read_target(dir: &cap_std::fs::Dir, file: &std::ffi::OsStr) -> Option<String> {
    let mut options = OpenOptions::new();
    options.read(true);
    options
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOFOLLOW).bits() as i32);
    let opened = dir.open_with(file, &options).ok()?.into_std();
    let mut buf = [0u8; 256];
    let len = rustix::fs::fgetxattr(&opened, TARGET_XATTR, &mut buf).ok()?;
    let name = std::str::from_utf8(buf.get(..len)?).ok()?;
    ferry_protocol::path::check_name(name).ok()?;
    Some(name.to_owned())
}

pub(super) fn discard(access: &Access, wire: &str) -> Result<Vec<u8>, OpError> {
    check_writable(access, wire)?;
    let path = RemotePath::parse(wire)?;
    let (dir, _) = access.root.open_parent(&path)?;
    let partial = path.partial(&access.owner);
    let none = || OpError::new(ErrorCode::NotFound, format!("{wire}: no partial upload"));
    match dir.symlink_metadata(&partial.raw) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(none()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(none()),
        Err(err) => return Err(OpError::io(&err, wire)),
    }
    let key = FileKey::in_dir(&dir, &partial.wire).map_err(|err| OpError::io(&err, wire))?;
    let removed = access
        .server
        .uploads
        .remove_idle_partial(&key, || dir.remove_file(&partial.raw))
        .ok_or_else(|| {
            OpError::new(
                ErrorCode::Busy,
                format!("{wire}: an upload is writing this partial"),
            )
        })?;
    match removed {
        Ok(()) => ok_line(&Done {}),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Err(none()),
        Err(err) => Err(OpError::io(&err, wire)),
    }
}
