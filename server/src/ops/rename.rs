//! `rename`: moves an entry within the root; the root itself never moves and nothing is
//! replaced unless the client said `overwrite`.

use std::io;

use ferry_protocol::{Done, ErrorCode};

use super::Access;
use super::{check_writable, ok_line};
use crate::error::OpError;
use crate::root::RemotePath;

pub(super) fn rename(
    access: &Access,
    from: &str,
    to: &str,
    overwrite: bool,
) -> Result<Vec<u8>, OpError> {
    check_writable(access, from)?;
    let from_path = RemotePath::parse(from)?;
    let to_path = RemotePath::parse(to)?;
    if from_path.is_root() || to_path.is_root() {
        return Err(OpError::new(
            ErrorCode::Forbidden,
            "the root itself cannot be renamed or replaced",
        ));
    }
    let (from_dir, from_name, source) = access.root.open_entry(&from_path)?;
    if source.is_dir() && to_path.is_inside(&from_path) {
        return Err(into_itself(from, to));
    }
    let (to_dir, to_name) = access.root.open_parent(&to_path)?;
    if !overwrite {
        match to_dir.symlink_metadata(to_name) {
            Ok(_) => {
                return Err(OpError::new(
                    ErrorCode::AlreadyExists,
                    format!("{to}: already exists"),
                ));
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(OpError::io(&err, to)),
        }
    }
    // Without `overwrite`, the look above only words the common answer: the rename itself
    // refuses a name taken meanwhile (`renameat2(RENAME_NOREPLACE)`). A filesystem without the
    // flag says EINVAL, as the kernel does for a directory moved into itself; both go on to
    // the plain rename, which tells them apart (a look right before it is all such a
    // filesystem allows).
    let atomic = if overwrite {
        Err(rustix::io::Errno::INVAL)
    } else {
        rustix::fs::renameat_with(
            &from_dir,
            from_name,
            &to_dir,
            to_name,
            rustix::fs::RenameFlags::NOREPLACE,
        )
    };
    let renamed = match atomic {
        Ok(()) => Ok(()),
        Err(err)
            if err == rustix::io::Errno::INVAL
                || err == rustix::io::Errno::NOSYS
                || err == rustix::io::Errno::OPNOTSUPP =>
        {
            from_dir.rename(from_name, &to_dir, to_name)
        }
        Err(err) => Err(io::Error::from(err)),
    };
    renamed.map_err(|err| {
        // The kernel's EINVAL here means the target lies inside the source: reached
        // through a symlink, which the look at the names above cannot see.
        if err.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) {
            into_itself(from, to)
        } else {
            OpError::io(&err, &format!("{from} -> {to}"))
        }
    })?;
    ok_line(&Done {})
}

/// The refusal of a move whose target is inside the directory moved: it would cut the
/// directory off from the tree.
fn into_itself(from: &str, to: &str) -> OpError {
    OpError::new(
        ErrorCode::BadRequest,
        format!("{from}: cannot move a directory into itself ({to} is inside it)"),
    )
}
