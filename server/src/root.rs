//! Every path decision of the server. A client path is checked lexically first (`bad_path`),
//! then resolved beneath an open [`cap_std::fs::Dir`] on the served root, never by joining
//! strings onto a host path: cap-std refuses `..`, absolute paths and symlinks that lead
//! outside, however they are arranged and whatever is swapped in between two calls.
//!
//! Wire paths are escaped (`ferry_protocol::path::encode`); this is the one place where they
//! become the raw bytes the filesystem knows, and where names read from disk become wire names.
//! Containment (`RemotePath::is_inside`, `Root::lies_within`), the keys trees are swept under
//! and the names of hidden partial files are decided here too.
//!
//! Split in two small submodules so this file stays readable: `limits` (the configured path
//! and name limits) and `parent_cache` (the parent handle a batch of uploads shares).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::fs::{
    Dir, DirBuilder, DirBuilderExt, File, Metadata, MetadataExt, OpenOptions, OpenOptionsExt,
};
use ferry_protocol::path::{self, is_partial_name};
use ferry_protocol::{Entry, ErrorCode};

use crate::error::OpError;
use crate::uploads::Owner;

mod limits;
mod parent_cache;

pub(crate) use limits::PathLimits;
pub(crate) use parent_cache::ParentCache;

/// A client path that passed the lexical rules; `wire` is how it is named in messages, `rel`
/// the unescaped bytes the filesystem is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemotePath {
    pub wire: String,
    rel: PathBuf,
}

impl RemotePath {
    /// Checks a wire path: `bad_path` for anything the protocol's rules refuse, `forbidden` for
    /// a name that is one of ferry's hidden partial files.
    pub fn parse(wire: &str) -> Result<Self, OpError> {
        let components = path::components(wire)
            .map_err(|err| OpError::new(ErrorCode::BadPath, format!("{wire:?}: {err}")))?;
        if components.iter().any(|name| is_partial_name(name)) {
            return Err(OpError::new(
                ErrorCode::Forbidden,
                format!(
                    "{wire}: names starting with {} are reserved",
                    path::PARTIAL_PREFIX
                ),
            ));
        }
        let mut rel = PathBuf::new();
        for name in &components {
            let raw = path::name_bytes(name)
                .map_err(|err| OpError::new(ErrorCode::BadPath, format!("{wire:?}: {err}")))?;
            rel.push(OsStr::from_bytes(&raw));
        }
        Ok(Self {
            wire: wire.to_owned(),
            rel,
        })
    }

    pub fn is_root(&self) -> bool {
        self.wire.is_empty()
    }

    /// The last name in wire form; "" for the root.
    pub fn name(&self) -> &str {
        path::split_last(&self.wire).map_or("", |(_, name)| name)
    }

    /// The last name as the filesystem knows it; empty for the root.
    pub fn raw_name(&self) -> &OsStr {
        self.rel.file_name().unwrap_or_default()
    }

    /// The relative path for cap-std calls on the root handle; "." for the root itself.
    fn rel(&self) -> &Path {
        if self.is_root() {
            Path::new(".")
        } else {
            &self.rel
        }
    }

    /// Whether this path lies strictly inside the directory `dir` names (by name: a symlink on
    /// the way is not seen).
    pub fn is_inside(&self, dir: &RemotePath) -> bool {
        is_below(&self.wire, &dir.wire)
    }

    /// The hidden partial file beside this path's target that `owner`'s uploads write.
    pub fn partial(&self, owner: &Owner) -> PartialFile {
        let wire = owner.partial_name(self.name());
        let raw = partial_name(&wire);
        PartialFile { wire, raw }
    }

    /// The parent directory and the last name as the filesystem knows it; `None` for the root.
    pub fn split(&self) -> Option<(RemotePath, &OsStr)> {
        let (parent, _) = path::split_last(&self.wire)?;
        let rel = self.rel.parent().map(Path::to_path_buf).unwrap_or_default();
        Some((
            RemotePath {
                wire: parent.to_owned(),
                rel,
            },
            self.raw_name(),
        ))
    }
}

/// A target's hidden partial file, in the target's directory: the wire name uploads claim it
/// by, and the name on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartialFile {
    pub wire: String,
    pub raw: OsString,
}

/// The served directory, held open for the life of the server.
#[derive(Debug)]
pub(crate) struct Root {
    dir: Dir,
    limits: PathLimits,
    /// The root's canonical path: which tree it is, whatever path it was opened by.
    key: Arc<str>,
}

impl Root {
    /// Opens `path` as a root with the protocol's path limits; see [`Self::with_limits`].
    pub fn open(path: &Path) -> io::Result<Self> {
        let dir = Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        Ok(Self {
            dir,
            limits: PathLimits::default(),
            key: tree_key(path),
        })
    }

    /// The key the tree is swept under and named by in logs: its canonical path.
    pub fn key(&self) -> &Arc<str> {
        &self.key
    }

    /// Whether this root's tree is `outer`'s or lies inside it, so that sweeping `outer`
    /// covers it.
    pub fn lies_within(&self, outer: &Root) -> bool {
        self.key == outer.key || is_below(&self.key, &outer.key)
    }

    /// The same root, refusing paths over `limits` with `bad_path` in every call that takes
    /// a path, so no operation can skip the check.
    #[must_use]
    pub fn with_limits(self, limits: PathLimits) -> Self {
        Self { limits, ..self }
    }

    /// Another handle on the root directory itself, for work that walks all of it.
    pub fn clone_dir(&self) -> io::Result<Dir> {
        self.dir.try_clone()
    }

    /// `lstat`: a final symlink is described, not followed.
    pub fn symlink_metadata(&self, path: &RemotePath) -> Result<Metadata, OpError> {
        self.limits.check(path)?;
        if path.is_root() {
            return self
                .dir
                .dir_metadata()
                .map_err(|e| OpError::io(&e, &path.wire));
        }
        self.dir
            .symlink_metadata(path.rel())
            .map_err(|e| OpError::io(&e, &path.wire))
    }

    /// `stat`, following symlinks only while they stay inside the root.
    pub fn metadata(&self, path: &RemotePath) -> Result<Metadata, OpError> {
        self.limits.check(path)?;
        self.dir
            .metadata(path.rel())
            .map_err(|e| OpError::io(&e, &path.wire))
    }

    /// Where an overwriting upload onto `path` writes: `None` when `path` is not a symlink,
    /// else the regular file inside the root it leads to, as `cp` writes through a destination
    /// link. A link that leads outside the root (or is absolute), nowhere, or to another link
    /// is `forbidden`, one to a directory `is_a_directory`: never replaced by the upload.
    pub fn write_through(&self, path: &RemotePath) -> Result<Option<RemotePath>, OpError> {
        let Some((parent, _)) = path.split() else {
            return Ok(None);
        };
        match self.symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {}
            Ok(_) => return Ok(None),
            Err(err) if err.code == ErrorCode::NotFound => return Ok(None),
            Err(err) => return Err(err),
        }
        let forbidden = |why: &str| {
            OpError::new(
                ErrorCode::Forbidden,
                format!("{}: a symlink {why}; it is left as it is", path.wire),
            )
        };
        let (dir, name) = self.open_parent(path)?;
        // One name in an open directory: no component is resolved outside cap-std.
        let text = rustix::fs::readlinkat(&dir, name, Vec::new())
            .map_err(|err| OpError::io(&io::Error::from(err), &path.wire))?;
        let text = text.as_bytes();
        if text.starts_with(b"/") {
            return Err(forbidden("with an absolute target"));
        }
        let mut parts: Vec<String> = path::components(&parent.wire)
            .map_err(|err| OpError::new(ErrorCode::BadPath, err.to_string()))?
            .into_iter()
            .map(str::to_owned)
            .collect();
        for part in text.split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    if parts.pop().is_none() {
                        return Err(forbidden("leading outside the root"));
                    }
                }
                raw => parts.push(path::encode(raw).into_owned()),
            }
        }
        let wire = parts
            .iter()
            .fold(String::new(), |wire, part| path::join(&wire, part));
        let target =
            RemotePath::parse(&wire).map_err(|_| forbidden("to a name that cannot be written"))?;
        let seen = match self.symlink_metadata(&target) {
            Ok(meta) => meta,
            Err(err) if err.code == ErrorCode::NotFound => {
                return Err(forbidden("leading nowhere"));
            }
            Err(err) => return Err(err),
        };
        if seen.is_dir() {
            return Err(OpError::new(
                ErrorCode::IsADirectory,
                format!("{}: a symlink to a directory", path.wire),
            ));
        }
        if !seen.is_file() {
            return Err(forbidden("leading to another link or a special file"));
        }
        // The name worked out by hand must be the file the link leads to (a `..` after a
        // linked directory goes elsewhere): the kernel's answer, confined to the root.
        let followed = self
            .metadata(path)
            .map_err(|_| forbidden("leading outside the root"))?;
        if (followed.dev(), followed.ino()) != (seen.dev(), seen.ino()) {
            return Err(forbidden("whose target cannot be told for sure"));
        }
        Ok(Some(target))
    }

    /// Opens a directory; `not_a_directory` when the path is something else.
    pub fn open_dir(&self, path: &RemotePath) -> Result<Dir, OpError> {
        self.limits.check(path)?;
        if path.is_root() {
            return self.dir.try_clone().map_err(|e| OpError::io(&e, ""));
        }
        self.dir.open_dir(path.rel()).map_err(|e| {
            // Opening a file as a directory says ENOTDIR, which is exactly the answer wanted.
            OpError::io(&e, &path.wire)
        })
    }

    /// Opens the parent of `path` for a change inside it, with the last name. The parent must
    /// exist (`not_found`) and be a directory (`not_a_directory`); the root has no parent.
    pub fn open_parent<'p>(&self, path: &'p RemotePath) -> Result<(Dir, &'p OsStr), OpError> {
        self.limits.check(path)?;
        let (parent, name) = path.split().ok_or_else(|| {
            OpError::new(ErrorCode::Forbidden, "the root itself cannot be changed")
        })?;
        let dir = self.open_dir(&parent).map_err(|err| match err.code {
            ErrorCode::NotFound => OpError::new(
                ErrorCode::NotFound,
                format!("{}: parent directory does not exist", path.wire),
            ),
            ErrorCode::NotADirectory => OpError::new(
                ErrorCode::NotADirectory,
                format!("{}: parent is not a directory", path.wire),
            ),
            _ => err,
        })?;
        Ok((dir, name))
    }

    /// [`Self::open_parent`] and the `lstat` of the last name in it: what is there, for a change
    /// to it (a final symlink is described, not followed).
    pub fn open_entry<'p>(
        &self,
        path: &'p RemotePath,
    ) -> Result<(Dir, &'p OsStr, Metadata), OpError> {
        let (dir, name) = self.open_parent(path)?;
        let meta = dir
            .symlink_metadata(name)
            .map_err(|err| OpError::io(&err, &path.wire))?;
        Ok((dir, name, meta))
    }

    /// [`Self::open_parent`], reusing the handle in `parents` when the last path opened through
    /// it had the same parent: a batch of small uploads into one directory then costs one
    /// confined open instead of one per file. Every path is still checked against the limits.
    pub fn open_parent_cached<'p>(
        &self,
        path: &'p RemotePath,
        parents: &mut ParentCache,
    ) -> Result<(Arc<Dir>, &'p OsStr), OpError> {
        self.limits.check(path)?;
        let Some((parent, name)) = path.split() else {
            return self
                .open_parent(path)
                .map(|(dir, name)| (Arc::new(dir), name));
        };
        if let Some((wire, dir)) = &parents.last
            && *wire == parent.wire
        {
            return Ok((Arc::clone(dir), name));
        }
        parents.last = None;
        parents.free = None;
        let (dir, name) = self.open_parent(path)?;
        let dir = Arc::new(dir);
        parents.last = Some((parent.wire, Arc::clone(&dir)));
        Ok((dir, name))
    }

    /// `mkdir -p` beneath the root. With `mode`, the last directory, if this call makes it,
    /// gets those bits (the kernel takes the umask off); the parents made on the way, like
    /// `mkdir -p -m`, get the default, and an existing directory keeps its own.
    pub fn create_dir_all(&self, path: &RemotePath, mode: Option<u32>) -> Result<(), OpError> {
        self.limits.check(path)?;
        let io_error = |e: io::Error| OpError::io(&e, &path.wire);
        let Some(mode) = mode else {
            return self.dir.create_dir_all(path.rel()).map_err(io_error);
        };
        if let Some(parent) = path.rel().parent() {
            self.dir.create_dir_all(parent).map_err(io_error)?;
        }
        let mut builder = DirBuilder::new();
        builder.mode(mode);
        match self.dir.create_dir_with(path.rel(), &builder) {
            Ok(()) => Ok(()),
            // A file in the way is still an error, as with `create_dir_all`.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && self.dir.is_dir(path.rel()) => {
                Ok(())
            }
            Err(e) => Err(io_error(e)),
        }
    }

    /// Sets the modification time and/or the permission bits of the file or directory at
    /// `path`, never through a symlink (`ferry_localfs::set_attrs_nofollow`, on the parent's
    /// handle). A symlink is `forbidden`, as is a special file or the root. Answers the entry's
    /// `lstat` afterwards.
    pub fn set_attrs(
        &self,
        path: &RemotePath,
        mtime: Option<i64>,
        mode: Option<u32>,
    ) -> Result<Metadata, OpError> {
        use ferry_localfs::AttrsError;
        let (dir, name) = self.open_parent(path)?;
        ferry_localfs::set_attrs_nofollow(&dir, name, mtime, mode).map_err(|err| match err {
            AttrsError::Symlink => OpError::new(
                ErrorCode::Forbidden,
                format!("{}: a symlink; attrs never follows one", path.wire),
            ),
            AttrsError::Special => OpError::new(
                ErrorCode::Forbidden,
                format!("{}: not a regular file or directory", path.wire),
            ),
            AttrsError::Io(err) => OpError::io(&err, &path.wire),
        })?;
        dir.symlink_metadata(name)
            .map_err(|err| OpError::io(&err, &path.wire))
    }

    /// Opens a regular file for reading. Non-blocking so that a fifo swapped in can never hang
    /// a worker thread; a directory gives `is_a_directory`, anything else `forbidden`.
    pub fn open_file(&self, path: &RemotePath) -> Result<(File, Metadata), OpError> {
        self.limits.check(path)?;
        let mut options = OpenOptions::new();
        options.read(true);
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
        let file = self
            .dir
            .open_with(path.rel(), &options)
            .map_err(|e| OpError::io(&e, &path.wire))?;
        let meta = file.metadata().map_err(|e| OpError::io(&e, &path.wire))?;
        check_regular(&meta, &path.wire)?;
        Ok((file, meta))
    }
}

/// The key under which a root's tree is swept: its canonical path, `/` trimmed so that `/` +
/// `srv/a` and `/srv` + `a` name the same tree. Falls back to the path as given when it cannot
/// be canonicalised (the root was opened, so that is a race at worst).
fn tree_key(root: &Path) -> Arc<str> {
    let canonical = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    Arc::from(canonical.to_string_lossy().trim_end_matches('/'))
}

/// Whether the `/`-separated path `inner` lies strictly below `outer`, name by name (`a/bc` is
/// not below `a/b`). The one containment test, for wire paths and root keys alike.
fn is_below(inner: &str, outer: &str) -> bool {
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// `is_a_directory` for a directory, `forbidden` for anything but a regular file.
pub(crate) fn check_regular(meta: &Metadata, wire: &str) -> Result<(), OpError> {
    if meta.is_dir() {
        return Err(OpError::new(
            ErrorCode::IsADirectory,
            format!("{wire}: is a directory"),
        ));
    }
    if !meta.is_file() {
        return Err(OpError::new(
            ErrorCode::Forbidden,
            format!("{wire}: not a regular file"),
        ));
    }
    Ok(())
}

/// Builds the wire entry for `name` in `dir` from its `lstat` metadata; for a symlink, `link`
/// says what it points to when the target resolves inside the root. `wire_name` is the name
/// sent, relative to the wire path `base` (the listed or walked directory).
///
/// A target beside the link resolves on `dir` in one lookup. One that climbs out of `dir`
/// (`../other`) is refused there, as cap-std confines every lookup to the handle it starts
/// from, so the link's whole wire path is resolved again beneath the root: the same
/// resolution `stat` and `list` of that path use, which is what makes `link` a promise that
/// the entry can be entered.
pub(crate) fn entry(
    root: &Root,
    dir: &Dir,
    name: &OsStr,
    base: &str,
    wire_name: String,
    meta: &Metadata,
) -> Entry {
    let full = meta
        .file_type()
        .is_symlink()
        .then(|| path::join(base, &wire_name));
    let mut entry = ferry_localfs::entry(wire_name, meta, || {
        dir.metadata(name).ok().or_else(|| {
            let full = RemotePath::parse(full.as_deref()?).ok()?;
            root.metadata(&full).ok()
        })
    });
    if let Some(full) = &full {
        entry.target = shown_target(dir, name, full);
    }
    entry
}

impl Root {
    /// The text of the symlink at `path` as an entry shows it ([`shown_target`]); `None` for
    /// anything else, or a target that leads out of the root.
    pub fn link_target(&self, path: &RemotePath) -> Option<String> {
        let (dir, name) = self.open_parent(path).ok()?;
        shown_target(&dir, name, &path.wire)
    }
}

/// The text of the symlink `name` in `dir`, whose wire path is `full`, in the name escape,
/// when it stays inside the root read as text from where the link is; `None` otherwise. An
/// absolute target or one that climbs above the root would tell a client where the root sits
/// and what lies around it (SECURITY.md), so its text is not sent; its `link` kind still is
/// when it resolves inside the root.
fn shown_target(dir: &Dir, name: &OsStr, full: &str) -> Option<String> {
    let text = dir.read_link_contents(name).ok()?;
    let bytes = text.as_os_str().as_bytes();
    target_stays_inside(full, bytes).then(|| path::encode(bytes).into_owned())
}

/// Whether the link text `target` of the link at wire path `link`, read name by name from the
/// link's directory, never leaves the root: relative, and no `..` climbing past the top. Only
/// the text is judged (links inside the path are not followed): it is the text that is shown.
fn target_stays_inside(link: &str, target: &[u8]) -> bool {
    if target.is_empty() || target.starts_with(b"/") {
        return false;
    }
    // The link's own directory is this many names below the root.
    let mut depth = link.split('/').filter(|part| !part.is_empty()).count() as i64 - 1;
    for part in target.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

/// A directory entry's name in wire form, escaped so that every name a POSIX filesystem holds
/// can be listed and addressed. Hidden partial files give `Err(true)` (left out, not counted);
/// `Err(false)` (counted as skipped) is left for a name no path may hold, such as one longer
/// than the protocol's limit on a filesystem that allows it.
pub(crate) fn addressable(name: &OsStr) -> Result<String, bool> {
    if path::is_partial_bytes(name.as_bytes()) {
        return Err(true);
    }
    let wire = path::encode(name.as_bytes());
    if path::check_name(&wire).is_err() {
        return Err(false);
    }
    Ok(wire.into_owned())
}

/// A name read from disk in its wire form, escaped so that any name a POSIX filesystem holds
/// can be named on the wire.
pub(crate) fn wire_name(raw: &OsStr) -> String {
    path::encode(raw.as_bytes()).into_owned()
}

/// The name on disk of a hidden partial, whose name is built in wire form from its target's
/// (`uploads::Owner::partial_name`): the escape undone, so an odd target name gives an odd
/// partial name, byte for byte.
pub(crate) fn partial_name(wire: &str) -> OsString {
    ferry_localfs::os_name(wire)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_parent_and_name() {
        let path = RemotePath::parse("a/b/c.txt").unwrap();
        assert_eq!(path.name(), "c.txt");
        let (parent, name) = path.split().unwrap();
        assert_eq!((parent.wire.as_str(), name), ("a/b", OsStr::new("c.txt")));
        assert_eq!(parent.rel(), Path::new("a/b"));
        let top = RemotePath::parse("top").unwrap();
        let (parent, name) = top.split().unwrap();
        assert!(parent.is_root());
        assert_eq!(parent.rel(), Path::new("."));
        assert_eq!(name, "top");
        let odd = RemotePath::parse("in\\nbox/\\xff\\\\").unwrap();
        assert_eq!(odd.rel(), Path::new(OsStr::from_bytes(b"in\nbox/\xff\\")));
        assert_eq!(odd.name(), "\\xff\\\\");
        assert_eq!(odd.raw_name(), OsStr::from_bytes(b"\xff\\"));
        let root = RemotePath::parse("").unwrap();
        assert!(root.split().is_none());
        assert_eq!(root.name(), "");
    }

    #[test]
    fn refusals_carry_the_right_codes() {
        assert_eq!(
            RemotePath::parse("../x").unwrap_err().code,
            ErrorCode::BadPath
        );
        assert_eq!(
            RemotePath::parse("/x").unwrap_err().code,
            ErrorCode::BadPath
        );
        assert_eq!(
            RemotePath::parse("a/.ferry-part.b/c").unwrap_err().code,
            ErrorCode::Forbidden
        );
    }

    #[test]
    fn a_lowered_limit_refuses_longer_paths_and_names() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir(base.path().join("abcd")).unwrap();
        let root = Root::open(base.path())
            .unwrap()
            .with_limits(PathLimits { path: 10, name: 4 });
        let ok = RemotePath::parse("abcd").unwrap();
        assert!(root.open_dir(&ok).is_ok());
        for (wire, what) in [("abcde", "name"), ("abcd/abcd/a", "path")] {
            let path = RemotePath::parse(wire).unwrap();
            let err = root.open_dir(&path).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadPath, "{wire}");
            assert!(err.message.contains(what), "{}", err.message);
            for code in [
                root.open_parent(&path).map(drop),
                root.create_dir_all(&path, None),
                root.create_dir_all(&path, Some(0o700)),
                root.symlink_metadata(&path).map(drop),
            ]
            .map(|result| result.unwrap_err().code)
            {
                assert_eq!(code, ErrorCode::BadPath, "{wire}");
            }
        }
    }

    #[test]
    fn every_listed_name_is_addressable() {
        assert_eq!(addressable(OsStr::new("ok.txt")), Ok("ok.txt".into()));
        assert_eq!(addressable(OsStr::new(".ferry-part.x")), Err(true));
        assert_eq!(addressable(OsStr::new("a\\b")), Ok("a\\\\b".into()));
        assert_eq!(
            addressable(OsStr::from_bytes(b"\xff\n")),
            Ok("\\xff\\n".into())
        );
        let long = OsStr::from_bytes(&[b'x'; 256]);
        assert_eq!(addressable(long), Err(false));
    }
}
