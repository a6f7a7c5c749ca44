//! `stat`: one entry's `lstat` metadata, with the kind a symlink leads to inside the root; and,
//! when asked, the opaque identity of the file the path leads to, so that a client on the same
//! machine can refuse to copy a file onto itself (see PROTOCOL.md, "Same machine").

use std::sync::OnceLock;

use cap_std::fs::MetadataExt;
use ferry_protocol::{HostIdentity, StatReply, file_token, host_token};

use super::Access;
use super::ok_line;
use crate::error::OpError;
use crate::root::RemotePath;

pub(super) fn stat(access: &Access, path: &str, identity: bool) -> Result<Vec<u8>, OpError> {
    let path = RemotePath::parse(path)?;
    let meta = access.root.symlink_metadata(&path)?;
    let mut target = None;
    let mut entry = ferry_localfs::entry(path.name().to_owned(), &meta, || {
        let followed = access.root.metadata(&path).ok();
        target.clone_from(&followed);
        followed
    });
    entry.owner = Some(ferry_localfs::owner_of(&meta));
    if meta.file_type().is_symlink() {
        entry.target = access.root.link_target(&path);
    }
    let id = match (identity, machine()) {
        (true, Some(machine)) => {
            // The file a write through the path would reach: a link's target, not the link.
            let resolved = if path.is_root() || !meta.file_type().is_symlink() {
                Some(meta)
            } else {
                target.or_else(|| access.root.metadata(&path).ok())
            };
            resolved.map(|m| file_token(&machine.salt, &machine.boot_id, m.dev(), m.ino()))
        }
        _ => None,
    };
    ok_line(&StatReply { entry, id })
}

/// The running kernel's boot id and this process's random salt.
struct Machine {
    boot_id: String,
    salt: String,
}

/// Read once; `None` where the kernel does not say its boot id (then no identity is offered
/// and clients cannot tell a shared filesystem, as with older servers).
fn machine() -> Option<&'static Machine> {
    static MACHINE: OnceLock<Option<Machine>> = OnceLock::new();
    MACHINE
        .get_or_init(|| {
            let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
            let boot_id = boot_id.trim().to_owned();
            if boot_id.is_empty() {
                return None;
            }
            let mut salt = [0u8; 16];
            getrandom::fill(&mut salt).ok()?;
            let salt = ferry_protocol::digest::hex(&salt);
            Some(Machine { boot_id, salt })
        })
        .as_ref()
}

/// What `hello` says about this machine; `None` when the boot id is unknown.
pub(super) fn host_identity() -> Option<HostIdentity> {
    machine().map(|m| HostIdentity {
        salt: m.salt.clone(),
        host: host_token(&m.salt, &m.boot_id),
    })
}
