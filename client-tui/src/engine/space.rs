//! Whether downloads fit where they go, checked before the first byte moves: the bytes each
//! item needs, summed per local filesystem, against what that filesystem has free for us.
//! Streams (a FIFO, a terminal, stdout) hold nothing and are not counted.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::local;

/// For each `(local, needed bytes)`, whether it fits together with the items before it on the
/// same filesystem; the reason when it does not. `resume`: an existing destination file is
/// continued, so its bytes count as already there. A single file's hidden partial counts as
/// there under every policy, as it is resumed under every policy.
pub(super) fn check(locals: &[PathBuf], needs: &[u64], resume: bool) -> Vec<Result<(), String>> {
    let mut used: Vec<(u64, u64)> = Vec::new();
    locals
        .iter()
        .zip(needs)
        .map(|(dest, &need)| {
            let Some((dev, dir)) = filesystem_of(dest) else {
                return Ok(());
            };
            if is_stream(dest) {
                return Ok(());
            }
            let present = present_bytes(dest, resume).min(need);
            let need = need - present;
            let Ok(stat) = rustix::fs::statvfs(&dir) else {
                return Ok(());
            };
            let free = stat.f_bavail.saturating_mul(stat.f_frsize);
            let slot = match used.iter().position(|(d, _)| *d == dev) {
                Some(i) => i,
                None => {
                    used.push((dev, 0));
                    used.len() - 1
                }
            };
            let total = used[slot].1.saturating_add(need);
            if total > free {
                return Err(format!(
                    "not enough space: this needs {} and {} has {} free; nothing was written",
                    crate::format::size(need),
                    dir.display(),
                    crate::format::size(free)
                ));
            }
            used[slot].1 = total;
            Ok(())
        })
        .collect()
}

/// The device and the nearest existing directory of a destination.
fn filesystem_of(dest: &Path) -> Option<(u64, PathBuf)> {
    let absolute = std::path::absolute(dest).ok()?;
    absolute.ancestors().find_map(|path| {
        std::fs::metadata(path)
            .ok()
            .filter(std::fs::Metadata::is_dir)
            .map(|meta| (meta.dev(), path.to_owned()))
    })
}

/// A FIFO or a device, or a link to one: written as a stream.
fn is_stream(dest: &Path) -> bool {
    std::fs::metadata(dest).is_ok_and(|m| {
        let kind = m.file_type();
        kind.is_fifo() || kind.is_char_device()
    })
}

/// Bytes of a single file's download already on this disk: its hidden partial, or with
/// `resume` the destination itself.
fn present_bytes(dest: &Path, resume: bool) -> u64 {
    let len = |path: &Path| {
        std::fs::symlink_metadata(path)
            .ok()
            .filter(std::fs::Metadata::is_file)
            .map_or(0, |m| m.len())
    };
    let partial = len(&local::partial_path(dest));
    if resume {
        partial.max(len(dest))
    } else {
        partial
    }
}
