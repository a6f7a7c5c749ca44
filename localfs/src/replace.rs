//! Replacing a small file whole (the server's users file; the client's config, known hosts and
//! recent list), so that a crash or a full disk leaves the old file or the new one, never half
//! of each.

use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to a new hidden file beside `path`, syncs it, renames it over `path` and
/// syncs the directory, so a crash cannot bring the old file back either. The new file is
/// private (0600) unless `like` names a file whose permissions it takes. A symlink at `path`
/// is replaced, not followed: callers that write through links resolve them first.
pub fn replace(path: &Path, bytes: &[u8], like: Option<&Path>) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // tempfile creates the file 0600, with a random name, and removes it if anything fails.
    let mut temp = tempfile::Builder::new()
        .prefix(".ferry-")
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    if let Some(meta) = like.and_then(|like| std::fs::metadata(like).ok()) {
        temp.as_file().set_permissions(meta.permissions())?;
    }
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|err| err.error)?;
    if let Ok(dir) = std::fs::File::open(dir) {
        // Best effort: the new file is in place either way.
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn replaces_whole_files_privately_or_like_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        super::replace(&path, b"one\n", None).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
        assert_eq!(mode(&path), 0o600);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        super::replace(&path, b"two\n", Some(&path)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two\n");
        assert_eq!(mode(&path), 0o640);
        super::replace(&path, b"three\n", None).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_replace_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, b"old\n").unwrap();
        // A directory where the file's name is: the rename fails after the write.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        assert!(super::replace(&blocked, b"new\n", None).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
