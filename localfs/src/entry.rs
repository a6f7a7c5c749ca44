//! What an entry is on the wire, from its metadata: the one rule for the server's listings and
//! the client's local pane. The server reads its root through cap-std, whose metadata types
//! are its own, so the rule is written over two small views that both std's types and (with
//! the `cap-std` feature) cap-std's provide.

use ferry_protocol::{Entry, Kind};

/// The questions [`kind_of`] asks a file type.
pub trait FileTypeView {
    fn is_symlink(&self) -> bool;
    fn is_dir(&self) -> bool;
    fn is_file(&self) -> bool;
}

/// The facts [`entry`] takes from a file's metadata.
pub trait MetadataView {
    type FileType: FileTypeView;
    fn file_type(&self) -> Self::FileType;
    /// The length in bytes (`st_size`).
    fn size(&self) -> u64;
    /// Seconds since the epoch (`st_mtime`), negative before it.
    fn mtime(&self) -> i64;
    /// `st_mode`, file type bits included.
    fn mode(&self) -> u32;
    /// `st_uid`.
    fn uid(&self) -> u32;
    /// `st_gid`.
    fn gid(&self) -> u32;
}

/// Who owns the file of `meta`, names looked up ([`crate::owner`]).
pub fn owner_of<M: MetadataView>(meta: &M) -> ferry_protocol::Owner {
    crate::owner(meta.uid(), meta.gid())
}

/// What an entry is on the wire: a symlink as itself, never as what it points to.
pub fn kind_of(file_type: impl FileTypeView) -> Kind {
    if file_type.is_symlink() {
        Kind::Symlink
    } else if file_type.is_dir() {
        Kind::Dir
    } else if file_type.is_file() {
        Kind::File
    } else {
        Kind::Other
    }
}

/// The wire entry named `name` (already in wire form) from its `lstat` metadata. `target`
/// fetches what a symlink leads to, and is asked only for symlinks: its kind is `link`, or none
/// when the link leads nowhere (or nowhere the caller lets it). The `owner` ([`owner_of`]) and
/// a link's `target` text are the caller's to fill in: a listing shows them, a walk for a
/// transfer has no use for them, and what may be shown of a target depends on who asks.
pub fn entry<M: MetadataView>(name: String, meta: &M, target: impl FnOnce() -> Option<M>) -> Entry {
    let kind = kind_of(meta.file_type());
    let link = if kind == Kind::Symlink {
        target().map(|target| kind_of(target.file_type()))
    } else {
        None
    };
    Entry {
        name,
        kind,
        size: meta.size(),
        mtime: meta.mtime(),
        mode: meta.mode() & 0o7777,
        link,
        error: None,
        owner: None,
        target: None,
    }
}

impl FileTypeView for std::fs::FileType {
    fn is_symlink(&self) -> bool {
        std::fs::FileType::is_symlink(self)
    }
    fn is_dir(&self) -> bool {
        std::fs::FileType::is_dir(self)
    }
    fn is_file(&self) -> bool {
        std::fs::FileType::is_file(self)
    }
}

impl MetadataView for std::fs::Metadata {
    type FileType = std::fs::FileType;
    fn file_type(&self) -> Self::FileType {
        std::fs::Metadata::file_type(self)
    }
    fn size(&self) -> u64 {
        std::fs::Metadata::len(self)
    }
    fn mtime(&self) -> i64 {
        std::os::unix::fs::MetadataExt::mtime(self)
    }
    fn mode(&self) -> u32 {
        std::os::unix::fs::MetadataExt::mode(self)
    }
    fn uid(&self) -> u32 {
        std::os::unix::fs::MetadataExt::uid(self)
    }
    fn gid(&self) -> u32 {
        std::os::unix::fs::MetadataExt::gid(self)
    }
}

#[cfg(feature = "cap-std")]
impl FileTypeView for cap_std::fs::FileType {
    fn is_symlink(&self) -> bool {
        cap_std::fs::FileType::is_symlink(self)
    }
    fn is_dir(&self) -> bool {
        cap_std::fs::FileType::is_dir(self)
    }
    fn is_file(&self) -> bool {
        cap_std::fs::FileType::is_file(self)
    }
}

#[cfg(feature = "cap-std")]
impl MetadataView for cap_std::fs::Metadata {
    type FileType = cap_std::fs::FileType;
    fn file_type(&self) -> Self::FileType {
        cap_std::fs::Metadata::file_type(self)
    }
    fn size(&self) -> u64 {
        cap_std::fs::Metadata::len(self)
    }
    fn mtime(&self) -> i64 {
        cap_std::fs::MetadataExt::mtime(self)
    }
    fn mode(&self) -> u32 {
        cap_std::fs::MetadataExt::mode(self)
    }
    fn uid(&self) -> u32 {
        cap_std::fs::MetadataExt::uid(self)
    }
    fn gid(&self) -> u32 {
        cap_std::fs::MetadataExt::gid(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn entries_say_what_they_are_and_where_links_lead() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"hello").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o4640)).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::os::unix::fs::symlink("d", dir.path().join("to-d")).unwrap();
        std::os::unix::fs::symlink("gone", dir.path().join("dangling")).unwrap();
        let lstat = |name: &str| std::fs::symlink_metadata(dir.path().join(name)).unwrap();
        let stat = |name: &str| std::fs::metadata(dir.path().join(name)).ok();

        let f = entry("f".into(), &lstat("f"), || unreachable!("not a link"));
        assert_eq!(
            (f.kind, f.size, f.mode, f.link),
            (Kind::File, 5, 0o4640, None)
        );
        assert_eq!(f.mtime, std::os::unix::fs::MetadataExt::mtime(&lstat("f")));
        assert_eq!(entry("d".into(), &lstat("d"), || None).kind, Kind::Dir);
        let link = entry("to-d".into(), &lstat("to-d"), || stat("to-d"));
        assert_eq!((link.kind, link.link), (Kind::Symlink, Some(Kind::Dir)));
        let dangling = entry("dangling".into(), &lstat("dangling"), || stat("dangling"));
        assert_eq!((dangling.kind, dangling.link), (Kind::Symlink, None));
    }

    #[test]
    fn anything_but_files_dirs_and_links_is_other() {
        let null = std::fs::symlink_metadata("/dev/null").unwrap();
        assert_eq!(kind_of(null.file_type()), Kind::Other);
    }
}
