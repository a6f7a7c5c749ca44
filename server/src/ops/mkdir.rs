//! `mkdir`: one directory, or with `parents` every missing one on the way (`mkdir -p`, where an
//! existing directory is success).

use std::io;

use ferry_protocol::{Done, ErrorCode};

use super::Scope;
use super::{check_writable, ok_line};
use crate::error::OpError;
use crate::root::RemotePath;

pub(super) fn mkdir(scope: &Scope, wire: &str, parents: bool) -> Result<Vec<u8>, OpError> {
    check_writable(scope, wire)?;
    let path = RemotePath::parse(wire)?;
    if path.is_root() {
        return if parents {
            ok_line(&Done {})
        } else {
            Err(OpError::new(ErrorCode::AlreadyExists, "/: already exists"))
        };
    }
    if parents {
        scope.root.create_dir_all(&path)?;
        return ok_line(&Done {});
    }
    let (dir, name) = scope.root.open_parent(&path)?;
    dir.create_dir(name).map_err(|err| match err.kind() {
        io::ErrorKind::AlreadyExists => {
            OpError::new(ErrorCode::AlreadyExists, format!("{wire}: already exists"))
        }
        _ => OpError::io(&err, wire),
    })?;
    ok_line(&Done {})
}
