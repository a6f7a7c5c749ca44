//! `attrs`: sets a file's or directory's modification time and/or permission bits without its
//! bytes moving, so a sync can fix a time or a mode that is all that differs, and a chmod is
//! one request. The change itself (never through a symlink) is `Root::set_attrs`.

use ferry_protocol::{ATTRS_MODE_BITS, AttrsReply, ErrorCode};

use super::{Access, check_writable, ok_line};
use crate::error::OpError;
use crate::root::RemotePath;

pub(super) fn attrs(
    access: &Access,
    wire: &str,
    mtime: Option<i64>,
    mode: Option<u32>,
) -> Result<Vec<u8>, OpError> {
    if mtime.is_none() && mode.is_none() {
        return Err(OpError::new(
            ErrorCode::BadRequest,
            "attrs needs an mtime, a mode or both",
        ));
    }
    if let Some(mode) = mode
        && mode & !ATTRS_MODE_BITS != 0
    {
        return Err(OpError::new(
            ErrorCode::BadRequest,
            format!("mode {mode:#o}: only the permission bits and sticky (0o1777) can be set"),
        ));
    }
    check_writable(access, wire)?;
    let path = RemotePath::parse(wire)?;
    let meta = access.root.set_attrs(&path, mtime, mode)?;
    // `set_attrs` refused a symlink, so the entry never needs a link's target.
    let entry = ferry_localfs::entry(path.name().to_owned(), &meta, || None);
    ok_line(&AttrsReply { entry })
}
