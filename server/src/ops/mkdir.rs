//! `mkdir`: one directory, or with `parents` every missing one on the way (`mkdir -p`, where an
//! existing directory is success). A `mode` is the source directory's when a client copies a
//! tree: the new directory keeps it, so a private directory never arrives readable by others.

use std::io;

use cap_std::fs::{DirBuilder, DirBuilderExt};
use ferry_protocol::{Done, ErrorCode};

use super::Access;
use super::{check_writable, ok_line};
use crate::error::OpError;
use crate::root::RemotePath;

pub(super) fn mkdir(
    access: &Access,
    wire: &str,
    parents: bool,
    mode: Option<u32>,
) -> Result<Vec<u8>, OpError> {
    check_writable(access, wire)?;
    let path = RemotePath::parse(wire)?;
    if path.is_root() {
        return if parents {
            ok_line(&Done {})
        } else {
            Err(OpError::new(ErrorCode::AlreadyExists, "/: already exists"))
        };
    }
    let mode = mode.map(dir_mode);
    if parents {
        access.root.create_dir_all(&path, mode)?;
        return ok_line(&Done {});
    }
    let (dir, name) = access.root.open_parent(&path)?;
    let mut builder = DirBuilder::new();
    if let Some(mode) = mode {
        builder.mode(mode);
    }
    dir.create_dir_with(name, &builder)
        .map_err(|err| match err.kind() {
            io::ErrorKind::AlreadyExists => {
                OpError::new(ErrorCode::AlreadyExists, format!("{wire}: already exists"))
            }
            _ => OpError::io(&err, wire),
        })?;
    ok_line(&Done {})
}

/// The bits a new directory is made with (the kernel then takes the umask off): never setuid,
/// setgid or sticky, which a client has no business setting, and always owner `rwx`, since a
/// copy of a read-only directory must still take its own files.
fn dir_mode(requested: u32) -> u32 {
    requested & 0o777 | 0o700
}
