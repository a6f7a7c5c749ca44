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
            // Root may also write into the blocks a filesystem reserves for it.
            let blocks = if rustix::process::geteuid().is_root() {
                stat.f_bfree
            } else {
                stat.f_bavail
            };
            let free = blocks.saturating_mul(stat.f_frsize);
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
                    crate::format::local_path(&dir),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_on_one_filesystem_add_up_and_streams_need_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let stat = rustix::fs::statvfs(dir.path()).unwrap();
        let blocks = if rustix::process::geteuid().is_root() {
            stat.f_bfree
        } else {
            stat.f_bavail
        };
        let free = blocks * stat.f_frsize;
        let (a, b) = (dir.path().join("a"), dir.path().join("sub/b"));
        // Each fits alone; together they do not, and the second is the one refused. Not
        // `free / 2 + 1`: other processes free space between the two reads (a build deleting
        // its files), and a few bytes more would make both fit.
        let half = free / 2 + free / 8;
        let fits = check(&[a.clone(), b.clone()], &[half, half], false);
        assert!(fits[0].is_ok());
        let why = fits[1].as_ref().unwrap_err();
        assert!(why.contains("not enough space"), "{why}");
        assert!(check(std::slice::from_ref(&a), &[1], false)[0].is_ok());

        // What a resume continues is already there; a hidden partial under every policy.
        std::fs::write(&a, vec![0u8; 4096]).unwrap();
        assert_eq!(present_bytes(&a, false), 0);
        assert_eq!(present_bytes(&a, true), 4096);
        std::fs::write(local::partial_path(&a), vec![0u8; 100]).unwrap();
        assert_eq!(present_bytes(&a, false), 100);
        assert_eq!(present_bytes(&a, true), 4096);

        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(check(&[fifo], &[u64::MAX], false)[0].is_ok());
    }
}
