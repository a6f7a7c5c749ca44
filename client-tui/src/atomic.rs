//! Replacing small files the user keeps (known hosts, the config, the recent list) so that a
//! crash or a full disk leaves the old file or the new one, never half of each; and renaming
//! without ever replacing what holds the new name.

use std::io;
use std::path::Path;

/// Writes `bytes` to a new hidden file beside `path`, syncs it, and renames it over `path`
/// (`ferry_localfs::replace`, as the server writes its users file), making `path`'s directory
/// first. The new file is private (0600) unless `like` names a file whose permissions it
/// takes. A symlink at `path` (a config kept in a dotfiles repository) is written through at
/// its target and stays a link; a dangling one is refused rather than replaced.
pub(crate) fn write(path: &Path, bytes: &[u8], like: Option<&Path>) -> io::Result<()> {
    let through;
    let path = if path
        .symlink_metadata()
        .is_ok_and(|meta| meta.file_type().is_symlink())
    {
        through = std::fs::canonicalize(path)?;
        through.as_path()
    } else {
        path
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    ferry_localfs::replace(path, bytes, like)
}

/// Renames `from` to `to` unless `to` exists: `AlreadyExists` then, and both entries stay as
/// they were. One `renameat2(RENAME_NOREPLACE)`, so an entry that appears under `to` between a
/// look and the rename is never replaced. Where the filesystem refuses the flag (some FUSE and
/// network filesystems), a non-directory is hard-linked to `to` (which fails on an existing
/// name just as atomically) and then unlinked from `from`; only a directory there, or a
/// filesystem without hard links either, falls back to a look right before the rename.
pub(crate) fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(err) if err == Errno::INVAL || err == Errno::NOSYS || err == Errno::OPNOTSUPP => {}
        Err(err) => return Err(err.into()),
    }
    if !from.symlink_metadata()?.is_dir() {
        // `link` never follows a symlink at `from`: the link itself moves.
        match std::fs::hard_link(from, to) {
            Ok(()) => return std::fs::remove_file(from),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Err(err),
            Err(_) => {}
        }
    }
    if to.symlink_metadata().is_ok() {
        return Err(io::ErrorKind::AlreadyExists.into());
    }
    std::fs::rename(from, to)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_rename_never_replaces_what_holds_the_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"first").unwrap();
        std::fs::write(&b, b"second").unwrap();
        let err = super::rename_no_replace(&a, &b).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&a).unwrap(), b"first");
        assert_eq!(std::fs::read(&b).unwrap(), b"second");
        // Nor an empty directory, which plain rename(2) replaces with a directory.
        let (d, e) = (dir.path().join("d"), dir.path().join("e"));
        std::fs::create_dir(&d).unwrap();
        std::fs::create_dir(&e).unwrap();
        std::fs::write(d.join("inside"), b"x").unwrap();
        let err = super::rename_no_replace(&d, &e).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert!(d.join("inside").is_file());
        super::rename_no_replace(&a, &dir.path().join("c")).unwrap();
        assert_eq!(std::fs::read(dir.path().join("c")).unwrap(), b"first");
        assert!(!a.exists());
    }

    #[test]
    fn a_kept_file_behind_a_symlink_is_written_through_and_the_link_stays() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles/config.toml");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, b"old\n").unwrap();
        let link = dir.path().join("config.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        super::write(&link, b"new\n", Some(&link)).unwrap();
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&real).unwrap(), b"new\n");
        // A link to nowhere is not replaced by a file.
        let dangling = dir.path().join("known_hosts");
        std::os::unix::fs::symlink(dir.path().join("gone/known_hosts"), &dangling).unwrap();
        assert!(super::write(&dangling, b"x", None).is_err());
        assert!(
            dangling
                .symlink_metadata()
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn replaces_whole_files_privately_or_like_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/known_hosts");
        super::write(&path, b"one\n", None).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        super::write(&path, b"two\n", Some(&path)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        // Nothing but the file itself is left in the directory.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }
}
