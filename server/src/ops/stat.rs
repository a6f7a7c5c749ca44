//! `stat`: one entry's `lstat` metadata, with the kind a symlink leads to inside the root.

use ferry_protocol::StatReply;

use super::ok_line;
use crate::error::OpError;
use crate::listener::Shared;
use crate::root::{RemotePath, entry_with};

pub(super) fn stat(shared: &Shared, path: &str) -> Result<Vec<u8>, OpError> {
    let path = RemotePath::parse(path)?;
    let meta = shared.root.symlink_metadata(&path)?;
    let entry = entry_with(path.name().to_owned(), &meta, || {
        shared.root.metadata(&path).ok()
    });
    ok_line(&StatReply { entry })
}
