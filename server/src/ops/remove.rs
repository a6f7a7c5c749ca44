//! `remove`: a file or symlink (never what a link points to), an empty directory, or with
//! `recursive` a whole tree. The root itself is never removed.

use ferry_protocol::{Done, ErrorCode};

use super::{check_writable, ok_line};
use crate::error::OpError;
use crate::listener::Shared;
use crate::root::RemotePath;

pub(super) fn remove(shared: &Shared, wire: &str, recursive: bool) -> Result<Vec<u8>, OpError> {
    check_writable(shared, wire)?;
    let path = RemotePath::parse(wire)?;
    if path.is_root() {
        return Err(OpError::new(
            ErrorCode::Forbidden,
            "the root itself cannot be removed",
        ));
    }
    let (dir, name) = shared.root.open_parent(&path)?;
    let meta = dir
        .symlink_metadata(name)
        .map_err(|err| OpError::io(&err, wire))?;
    let removed = if !meta.is_dir() {
        dir.remove_file(name)
    } else if recursive {
        dir.remove_dir_all(name)
    } else {
        dir.remove_dir(name)
    };
    removed.map_err(|err| OpError::io(&err, wire))?;
    ok_line(&Done {})
}
