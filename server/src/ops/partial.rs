//! `partial`: how much of an interrupted upload the server holds, and the digest of it, so a
//! client can check the bytes are its own before it resumes.

use std::io;

use cap_std::fs::{OpenOptions, OpenOptionsExt};
use ferry_protocol::{Digest, ErrorCode, PartialReply};

use tokio_util::sync::CancellationToken;

use super::Access;
use super::{Meter, UNITS_PER_MIB, ok_line};
use crate::error::OpError;
use crate::root::RemotePath;
use ferry_localfs::hash_prefix_until;

/// Hashing the partial is expensive work like a resumed `get`'s: it stops when `stop` says the
/// client has gone, and what it hashed is added to `meter`.
pub(super) fn partial(
    access: &Access,
    wire: &str,
    stop: &CancellationToken,
    meter: &Meter,
) -> Result<Vec<u8>, OpError> {
    let path = RemotePath::parse(wire)?;
    let none = PartialReply {
        length: 0,
        digest: None,
    };
    // No directory, no partial: a client may ask before it has created the parent.
    let (dir, _) = match access.root.open_parent(&path) {
        Ok(found) => found,
        Err(err) if err.code == ErrorCode::NotFound => return ok_line(&none),
        Err(err) => return Err(err),
    };
    // Only the caller's own: another's partial is none of its business, not even its length.
    let partial = path.partial(&access.owner).raw;
    match dir.symlink_metadata(&partial) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return ok_line(&none),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return ok_line(&none),
        Err(err) => return Err(OpError::io(&err, wire)),
    }
    let mut options = OpenOptions::new();
    options.read(true);
    options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    let mut file = dir
        .open_with(&partial, &options)
        .map_err(|err| OpError::io(&err, wire))?
        .into_std();
    let mut hasher = blake3::Hasher::new();
    let length = hash_prefix_until(&mut file, u64::MAX, &mut hasher, || stop.is_cancelled())
        .map_err(|err| OpError::io(&err, wire))?;
    meter.add(length.div_ceil(1024 * 1024) * UNITS_PER_MIB);
    if stop.is_cancelled() {
        return Err(OpError::new(
            ErrorCode::Io,
            format!("{wire}: the client has gone"),
        ));
    }
    if length == 0 {
        return ok_line(&none);
    }
    ok_line(&PartialReply {
        length,
        digest: Some(Digest::from(hasher.finalize())),
    })
}
