//! `remove`: a file or symlink (never what a link points to), an empty directory, or with
//! `recursive` a whole tree. The root itself is never removed.

use std::io;
use std::os::unix::ffi::OsStrExt;

use cap_std::fs::Dir;
use ferry_protocol::path::is_partial_bytes;
use ferry_protocol::{Done, ErrorCode};

use super::Scope;
use super::{check_writable, ok_line};
use crate::error::OpError;
use crate::root::RemotePath;

pub(super) fn remove(scope: &Scope, wire: &str, recursive: bool) -> Result<Vec<u8>, OpError> {
    check_writable(scope, wire)?;
    let path = RemotePath::parse(wire)?;
    if path.is_root() {
        return Err(OpError::new(
            ErrorCode::Forbidden,
            "the root itself cannot be removed",
        ));
    }
    let (dir, name) = scope.root.open_parent(&path)?;
    let meta = dir
        .symlink_metadata(name)
        .map_err(|err| OpError::io(&err, wire))?;
    let removed = if !meta.is_dir() {
        dir.remove_file(name)
    } else if recursive {
        dir.remove_dir_all(name)
    } else {
        match dir.remove_dir(name) {
            Err(err) if err.kind() == io::ErrorKind::DirectoryNotEmpty => {
                remove_if_only_partials(&dir, name).and_then(|()| dir.remove_dir(name))
            }
            other => other,
        }
    };
    removed.map_err(|err| OpError::io(&err, wire))?;
    ok_line(&Done {})
}

/// A directory that holds nothing but abandoned partial uploads looks empty to every client,
/// so removing it must work: the partials go first. Anything else keeps `not_empty`.
fn remove_if_only_partials(dir: &Dir, name: &std::ffi::OsStr) -> io::Result<()> {
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
        inner.remove_file(partial)?;
    }
    Ok(())
}
