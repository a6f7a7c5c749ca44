//! `stat`: one entry's `lstat` metadata, with the kind a symlink leads to inside the root.

use ferry_protocol::StatReply;

use super::Scope;
use super::ok_line;
use crate::error::OpError;
use crate::root::{RemotePath, entry_with};

pub(super) fn stat(scope: &Scope, path: &str) -> Result<Vec<u8>, OpError> {
    let path = RemotePath::parse(path)?;
    let meta = scope.root.symlink_metadata(&path)?;
    let entry = entry_with(path.name().to_owned(), &meta, || {
        scope.root.metadata(&path).ok()
    });
    ok_line(&StatReply { entry })
}
