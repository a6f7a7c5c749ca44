//! Local file-system work for the left pane: listing and the small operations. Called from
//! `spawn_blocking` by the event loop, never on the UI thread, because a directory on a slow
//! disk or with 100,000 entries can take a while.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ferry_protocol::Entry;

use super::app::ListError;
use crate::engine::EngineError;

/// A directory's entries in the protocol's shape, so both panes share one model.
pub fn list(dir: &Path) -> Result<Vec<Entry>, ListError> {
    let read = fs::read_dir(dir).map_err(|e| ListError {
        gone: matches!(
            e.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
        ),
        message: describe(dir, e),
    })?;
    let mut entries = Vec::new();
    for item in read {
        let Ok(item) = item else { continue };
        // The wire form, as remote names come: one rule shows both panes, and no name is lost.
        let name = crate::names::wire_name(&item.file_name());
        let Ok(meta) = item.path().symlink_metadata() else {
            continue;
        };
        // The server's rule for its listings, so both panes show an entry alike; a link's
        // text is shown whatever it is: this machine is the user's own.
        let mut entry = ferry_localfs::entry(name, &meta, || fs::metadata(item.path()).ok());
        entry.owner = Some(ferry_localfs::owner_of(&meta));
        if meta.is_symlink() {
            entry.target = fs::read_link(item.path())
                .ok()
                .map(|target| crate::names::wire_name(target.as_os_str()));
        }
        entries.push(entry);
    }
    Ok(entries)
}

pub fn mkdir(path: &Path) -> Result<(), String> {
    fs::create_dir(path).map_err(|e| describe(path, e))
}

/// Renames within one directory, refusing to replace an existing entry: in the one rename
/// call, so an entry that appears under the new name meanwhile is never replaced either.
pub fn rename(from: &Path, to: &Path) -> Result<(), String> {
    crate::atomic::rename_no_replace(from, to).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            format!(
                "already_exists: {}: already exists",
                crate::format::local_path(to)
            )
        } else {
            describe(from, e)
        }
    })
}

/// Sets the permission bits of each path, stopping at the first failure. A symlink is refused
/// (`chmod` would change its target's bits), like the server's `attrs` does.
pub fn chmod(paths: &[PathBuf], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    for path in paths {
        let meta = path.symlink_metadata().map_err(|e| describe(path, e))?;
        if meta.is_symlink() {
            return Err(format!(
                "forbidden: {}: a symlink has no permissions of its own",
                crate::format::local_path(path)
            ));
        }
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| describe(path, e))?;
    }
    Ok(())
}

/// Removes files, links and whole directory trees.
pub fn remove(paths: &[PathBuf]) -> Result<(), String> {
    for path in paths {
        let meta = path.symlink_metadata().map_err(|e| describe(path, e))?;
        let result = if meta.is_dir() {
            fs::remove_dir_all(path)
        } else {
            fs::remove_file(path)
        };
        result.map_err(|e| describe(path, e))?;
    }
    Ok(())
}

/// The error as the remote pane words its own: code first, then the path and the words, with
/// no `(os error N)` that the code already says.
/// Up to `length` bytes of a local file from `offset`, for the viewer, with the file's length.
pub fn read_range(path: &Path, offset: u64, length: u64) -> Result<super::viewer::Chunk, String> {
    use std::io::{Read, Seek, SeekFrom};
    let read = || -> io::Result<super::viewer::Chunk> {
        let mut file = fs::File::open(path)?;
        let file_size = file.metadata()?.len();
        file.seek(SeekFrom::Start(offset.min(file_size)))?;
        let mut bytes = Vec::new();
        // The viewer asks for a block or a search chunk; the cap keeps a bad request bounded.
        let length = length.min(crate::engine::view::MAX_RANGE);
        file.take(length).read_to_end(&mut bytes)?;
        Ok(super::viewer::Chunk { bytes, file_size })
    };
    read().map_err(|e| describe(path, e))
}

fn describe(path: &Path, error: io::Error) -> String {
    EngineError::local(path, error).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::Kind;

    #[test]
    fn lists_and_changes_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), b"hello").unwrap();
        mkdir(&dir.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("sub", dir.path().join("link")).unwrap();
        let mut entries = list(dir.path()).unwrap();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let kinds: Vec<_> = entries
            .iter()
            .map(|e| (e.name.as_str(), e.kind, e.link))
            .collect();
        assert_eq!(
            kinds,
            [
                ("a.txt", Kind::File, None),
                ("link", Kind::Symlink, Some(Kind::Dir)),
                ("sub", Kind::Dir, None)
            ]
        );
        assert_eq!(entries[0].size, 5);
        assert!(rename(&dir.path().join("a.txt"), &dir.path().join("sub")).is_err());
        rename(&dir.path().join("a.txt"), &dir.path().join("b.txt")).unwrap();
        fs::write(dir.path().join("sub/x"), b"x").unwrap();
        remove(&[dir.path().join("sub"), dir.path().join("b.txt")]).unwrap();
        assert_eq!(list(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn errors_read_like_the_remote_ones() {
        let dir = tempfile::tempdir().unwrap();
        let taken = dir.path().join("taken");
        mkdir(&taken).unwrap();
        assert_eq!(
            mkdir(&taken).unwrap_err(),
            format!("already_exists: {}: File exists", taken.display())
        );
        let missing = dir.path().join("missing");
        let error = list(&missing).unwrap_err();
        assert!(error.gone);
        assert_eq!(
            error.message,
            format!(
                "not_found: {}: No such file or directory",
                missing.display()
            )
        );
        // The source is looked up first: a missing one is named as such.
        assert!(
            rename(&missing, &taken)
                .unwrap_err()
                .starts_with("not_found: "),
        );
        let other = dir.path().join("other");
        fs::write(&other, b"kept").unwrap();
        let file = dir.path().join("file");
        fs::write(&file, b"also kept").unwrap();
        assert_eq!(
            rename(&other, &file).unwrap_err(),
            format!("already_exists: {}: already exists", file.display())
        );
        assert_eq!(fs::read(&other).unwrap(), b"kept");
        assert_eq!(fs::read(&file).unwrap(), b"also kept");
        let gone = remove(std::slice::from_ref(&missing)).unwrap_err();
        assert!(!gone.contains("os error"), "{gone}");
        assert!(gone.starts_with("not_found: "), "{gone}");
    }
}
