//! The local side of transfers: walking sources, the hidden partial file that stands for a
//! download until it is verified, the permission bits files get, free names for the `Rename`
//! policy and prefix hashes for resuming. All of it is blocking `std::fs` code, run by callers
//! on the blocking pool.

use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_protocol::path;

use super::event::LeftOutReason;

pub(crate) use super::error::Changed;
#[cfg(test)]
use super::error::is_changed;

/// Read size for hashing and sending: big enough to keep syscalls rare, small enough that
/// memory stays flat whatever the file size.
pub(crate) const CHUNK: usize = 1024 * 1024;

/// One regular file found under a local source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalFile {
    /// Wire-style path relative to the walked root (`""` when the root is the file itself).
    pub rel: String,
    pub path: PathBuf,
    pub size: u64,
    pub mtime: i64,
    /// Device and inode: a move removes the source only while its name still leads here.
    pub id: (u64, u64),
    /// Permission bits, which a sync compares.
    pub mode: u32,
}

/// One directory found under a local source, with the permission bits its copy is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalDir {
    /// Wire-style path relative to the walked root.
    pub rel: String,
    pub mode: u32,
}

/// Everything under a local source that a transfer can carry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct LocalTree {
    /// Directories relative to the root, parents before children (the root itself excluded).
    pub dirs: Vec<LocalDir>,
    pub files: Vec<LocalFile>,
    /// Symlinks, special files, unreadable directories (and a name longer than the protocol
    /// allows, which no Linux filesystem holds): every other name crosses the wire in its escape.
    pub skipped: u64,
    /// The same entries by path, with why, so none goes unnamed.
    pub left_out: Vec<(PathBuf, LeftOutReason, String)>,
    /// Whether the root is a directory.
    pub root_is_dir: bool,
    /// The root directory's permission bits, on the first step of a directory's walk.
    pub root_mode: Option<u32>,
}

pub(crate) use ferry_localfs::mtime_secs;

/// The `SystemTime` of an epoch-seconds mtime. Every `i64` of seconds is one on Linux, so the
/// epoch stands in only where the platform has a narrower clock.
pub(crate) fn system_time(secs: i64) -> SystemTime {
    ferry_localfs::system_time(secs).unwrap_or(UNIX_EPOCH)
}

/// The mode of a download's partial while its bytes arrive: a half-written copy of a private
/// file must not be readable by others, whatever mode the finished file gets.
pub(crate) const PARTIAL_MODE: u32 = 0o600;

/// The bits a directory a transfer makes is created with (the kernel then takes the umask
/// off): the source directory's permission bits, so its group and others get no more than
/// they had, never setuid, setgid or sticky, and always owner `rwx`, since a copy of a
/// read-only directory must still take its own files.
pub(crate) fn new_dir_mode(source: u32) -> u32 {
    source & 0o777 | 0o700
}

/// The mode a new download gets, as `cp` gives it: the source's permission bits (never
/// setuid, setgid or sticky) less the user's umask.
pub(crate) fn new_file_mode(source: u32) -> u32 {
    source & 0o777 & !ferry_localfs::umask()
}

/// Walks a local source without following symlinks. A source that is itself a symlink or a
/// special file gives an empty tree with one skipped entry.
#[cfg(test)]
pub(crate) fn walk(root: &Path) -> io::Result<LocalTree> {
    let mut tree = LocalTree::default();
    walk_each(root, |step| {
        tree.dirs.extend(step.dirs);
        tree.files.extend(step.files);
        tree.skipped += step.skipped;
        tree.left_out.extend(step.left_out);
        tree.root_is_dir |= step.root_is_dir;
        tree.root_mode = tree.root_mode.or(step.root_mode);
        true
    })?;
    Ok(tree)
}

/// Walks like [`walk`], handing over each directory as soon as it is read: its files, and its
/// subdirectories (so parents always come before children). An upload sends the first files
/// while the rest of the tree is still being read. Stops when `step` returns `false`; a
/// directory that cannot be read ends the walk with its error, after what came before it.
pub(crate) fn walk_each(root: &Path, mut step: impl FnMut(LocalTree) -> bool) -> io::Result<()> {
    let meta = fs::symlink_metadata(root)?;
    if meta.is_file() {
        step(LocalTree {
            files: vec![LocalFile {
                rel: String::new(),
                path: root.to_owned(),
                size: meta.len(),
                mtime: mtime_secs(&meta),
                id: (meta.dev(), meta.ino()),
                mode: meta.permissions().mode() & 0o7777,
            }],
            ..LocalTree::default()
        });
        return Ok(());
    }
    if !meta.is_dir() {
        step(LocalTree {
            skipped: 1,
            left_out: vec![not_copied(root.to_owned(), &meta)],
            ..LocalTree::default()
        });
        return Ok(());
    }
    let mut stack = vec![(root.to_owned(), String::new())];
    let mut root_mode = Some(meta.permissions().mode() & 0o7777);
    while let Some((dir, rel)) = stack.pop() {
        let mut found = LocalTree {
            root_is_dir: true,
            root_mode: root_mode.take(),
            ..LocalTree::default()
        };
        let read = fs::read_dir(&dir).and_then(|entries| entries.collect::<Result<Vec<_>, _>>());
        let mut entries = match read {
            Ok(entries) => entries,
            // The source itself unreadable fails the item; a directory below it is named and
            // the walk goes on with the rest of the tree.
            Err(e) if rel.is_empty() => return Err(e),
            Err(e) => {
                found.skip(dir.clone(), unreadable(&e), io_message(&e));
                if !step(found) {
                    break;
                }
                continue;
            }
        };
        // Sorted so that transfers and their logs come out in a stable, readable order; pushed
        // in reverse so the stack pops them in order.
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for entry in entries {
            // Every name has a wire form; only one longer than the protocol allows has no path.
            let name = crate::names::wire_name(&entry.file_name());
            if path::is_partial_name(&name) {
                // Our own unfinished downloads.
                continue;
            }
            if let Err(e) = path::check_name(&name) {
                found.skip(entry.path(), LeftOutReason::Name, e);
                continue;
            }
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(e) => {
                    found.skip(entry.path(), unreadable(&e), io_message(&e));
                    continue;
                }
            };
            let child_rel = path::join(&rel, &name);
            if meta.is_dir() {
                found.dirs.push(LocalDir {
                    rel: child_rel.clone(),
                    mode: meta.permissions().mode() & 0o7777,
                });
                subdirs.push((entry.path(), child_rel));
            } else if meta.is_file() {
                found.files.push(LocalFile {
                    rel: child_rel,
                    path: entry.path(),
                    size: meta.len(),
                    mtime: mtime_secs(&meta),
                    id: (meta.dev(), meta.ino()),
                    mode: meta.permissions().mode() & 0o7777,
                });
            } else {
                let (path, reason, message) = not_copied(entry.path(), &meta);
                found.skip(path, reason, message);
            }
        }
        stack.extend(subdirs.into_iter().rev());
        if !step(found) {
            break;
        }
    }
    Ok(())
}

impl LocalTree {
    /// Counts and names an entry the walk leaves out.
    fn skip(&mut self, path: PathBuf, reason: LeftOutReason, message: impl std::fmt::Display) {
        self.skipped += 1;
        self.left_out.push((path, reason, message.to_string()));
    }
}

/// Why an entry that is neither a file nor a directory is left out.
fn not_copied(path: PathBuf, meta: &fs::Metadata) -> (PathBuf, LeftOutReason, String) {
    if meta.is_symlink() {
        let message = "a symlink: only files and directories are copied".to_owned();
        (path, LeftOutReason::Symlink, message)
    } else {
        let message = "a special file: only files and directories are copied".to_owned();
        (path, LeftOutReason::Special, message)
    }
}

/// An IO error as the engine words it: its code, then the OS's words.
fn io_message(error: &io::Error) -> String {
    format!(
        "{}: {}",
        super::error::local_code(error),
        super::error::without_os_error(&error.to_string())
    )
}

/// An entry that could not be read: gone since its directory was listed, or unreadable.
fn unreadable(error: &io::Error) -> LeftOutReason {
    if error.kind() == io::ErrorKind::NotFound {
        LeftOutReason::Vanished
    } else {
        LeftOutReason::Unreadable
    }
}

/// The hidden partial file beside `final_path`.
pub(crate) fn partial_path(final_path: &Path) -> PathBuf {
    let name = final_path.file_name().unwrap_or_default();
    final_path.with_file_name(std::ffi::OsString::from_vec(path::partial_name_bytes(
        name.as_bytes(),
    )))
}

/// `name` with ` (n)` before its extension, for the first `n` that `taken` says is free.
pub(crate) fn free_name(name: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(name) {
        return name.to_owned();
    }
    // A leading dot is part of the name, not an extension (".bashrc (1)").
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    (1u64..)
        .map(|n| format!("{stem} ({n}){ext}"))
        .find(|candidate| !taken(candidate))
        .unwrap_or_else(|| name.to_owned())
}

/// A local path with a free name in the same directory.
pub(crate) fn free_local_path(path: &Path) -> PathBuf {
    let name = crate::names::wire_name(path.file_name().unwrap_or_default());
    let free = free_name(&name, |candidate| {
        fs::symlink_metadata(path.with_file_name(crate::names::os_name(candidate))).is_ok()
    });
    path.with_file_name(crate::names::os_name(&free))
}

/// Hashes the first `len` bytes of a file; `None` when the file is shorter. The same prefix
/// hash as the server's, in one place.
pub(crate) use ferry_localfs::hash_file_prefix as hash_prefix;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_names_keep_the_extension() {
        let taken = |n: &str| ["a.txt", "a (1).txt", "dir", ".rc"].contains(&n);
        assert_eq!(free_name("b.txt", taken), "b.txt");
        assert_eq!(free_name("a.txt", taken), "a (2).txt");
        assert_eq!(free_name("dir", taken), "dir (1)");
        assert_eq!(free_name(".rc", taken), ".rc (1)");
    }

    #[test]
    fn partial_paths_sit_beside_the_final_file() {
        assert_eq!(
            partial_path(Path::new("/d/x/a b.txt")),
            PathBuf::from("/d/x/.ferry-part.a b.txt")
        );
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn walks_in_order_skipping_links_and_partials() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("src");
        fs::create_dir_all(root.join("b/c")).unwrap();
        fs::write(root.join("z.txt"), b"zz").unwrap();
        fs::write(root.join("b/one"), b"1").unwrap();
        fs::write(root.join("b/c/two"), b"22").unwrap();
        fs::set_permissions(root.join("b/c"), fs::Permissions::from_mode(0o2710)).unwrap();
        fs::write(root.join(".ferry-part.half"), b"h").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        std::os::unix::fs::symlink("b", root.join("dirlink")).unwrap();

        let tree = walk(&root).unwrap();
        assert!(tree.root_is_dir);
        let dirs: Vec<_> = tree.dirs.iter().map(|d| d.rel.as_str()).collect();
        assert_eq!(dirs, vec!["b", "b/c"]);
        let rels: Vec<_> = tree.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(rels, vec!["z.txt", "b/one", "b/c/two"]);
        assert_eq!(tree.files[0].size, 2);
        assert_eq!(tree.skipped, 2);

        assert_eq!(tree.root_mode, Some(mode_of(&root)));
        assert_eq!(tree.dirs[1].mode, 0o2710);
        assert_eq!(tree.dirs[0].mode, mode_of(&root.join("b")));
        assert_eq!(tree.dirs[1].mode, mode_of(&root.join("b/c")));

        let single = walk(&root.join("z.txt")).unwrap();
        assert!(!single.root_is_dir);
        assert_eq!(single.files.len(), 1);
        assert_eq!(single.files[0].rel, "");
        assert_eq!(walk(&root.join("link")).unwrap().skipped, 1);
    }

    #[test]
    fn a_directory_is_made_with_its_sources_bits_and_owner_rwx_only() {
        assert_eq!(new_dir_mode(0o700), 0o700);
        assert_eq!(new_dir_mode(0o555), 0o755);
        assert_eq!(new_dir_mode(0o1777), 0o777);
        assert_eq!(new_dir_mode(0o2750), 0o750);
        assert_eq!(new_dir_mode(0o4000), 0o700);
        assert_eq!(new_dir_mode(0o40_751), 0o751);
    }

    #[test]
    fn a_changed_source_is_told_apart_from_other_errors() {
        assert!(is_changed(&io::Error::other(Changed)));
        assert!(!is_changed(&io::Error::other("disk on fire")));
        assert!(!is_changed(&io::Error::from(io::ErrorKind::NotFound)));
    }
}
