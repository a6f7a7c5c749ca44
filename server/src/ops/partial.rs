//! `partial`: how much of an interrupted upload the server holds, and the digest of it, so a
//! client can check the bytes are its own before it resumes.

use std::io;

use cap_std::fs::{OpenOptions, OpenOptionsExt};
use ferry_protocol::{Digest, ErrorCode, PartialReply};

use super::Scope;
use super::{hash_prefix, ok_line};
use crate::error::OpError;
use crate::root::{RemotePath, partial_name};

pub(super) fn partial(scope: &Scope, wire: &str) -> Result<Vec<u8>, OpError> {
    let path = RemotePath::parse(wire)?;
    let none = PartialReply {
        length: 0,
        digest: None,
    };
    // No directory, no partial: a client may ask before it has created the parent.
    let (dir, _) = match scope.root.open_parent(&path) {
        Ok(found) => found,
        Err(err) if err.code == ErrorCode::NotFound => return ok_line(&none),
        Err(err) => return Err(err),
    };
    // Only the caller's own: another's partial is none of its business, not even its length.
    let partial = partial_name(&scope.owner.partial_name(path.name()));
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
    let length =
        hash_prefix(&mut file, u64::MAX, &mut hasher).map_err(|err| OpError::io(&err, wire))?;
    if length == 0 {
        return ok_line(&none);
    }
    ok_line(&PartialReply {
        length,
        digest: Some(Digest::from(hasher.finalize())),
    })
}
