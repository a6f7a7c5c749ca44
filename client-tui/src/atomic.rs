//! Replacing small files the user keeps (known hosts, the config, the recent list) so that a
//! crash or a full disk leaves the old file or the new one, never half of each.

use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to a new hidden file beside `path`, syncs it, and renames it over `path`.
/// The new file is private (0600) unless `like` names a file whose permissions it takes.
pub(crate) fn write(path: &Path, bytes: &[u8], like: Option<&Path>) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

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
