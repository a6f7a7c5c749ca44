//! One side of a sync listed whole, so the two can be compared without a request per file: a
//! local directory by the same walk a copy uses (`local::walk_each`: no link followed, partial
//! files left out, every entry that is not carried named with why), a remote one by one
//! `walk`, or one `digests` when contents are compared. Remote names are hostile input: one
//! that could not be a relative path below the root is named, never used.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_protocol::{Digest, DigestEntry, Entry, ErrorCode, Kind, path};

use crate::engine::error::EngineError;
use crate::engine::event::LeftOutReason;
use crate::engine::local;
use crate::engine::plan::safe_components;
use crate::engine::session::{MAX_WALKED, Session, StreamItem};

/// Where one side of a sync is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    Local(PathBuf),
    /// A wire path on the session's server.
    Remote(String),
}

impl Side {
    /// The path of `rel` on this side, for messages: a wire path, or a local path in the
    /// escape ferry prints.
    pub fn shown(&self, rel: &str) -> String {
        match self {
            Side::Remote(root) => remote_path(root, rel),
            Side::Local(root) => crate::format::local_path(&local_path(root, rel)),
        }
    }
}

/// The wire path of `rel` below the remote `root` (the root itself for `""`).
pub(crate) fn remote_path(root: &str, rel: &str) -> String {
    if rel.is_empty() {
        root.to_owned()
    } else {
        path::join(root, rel)
    }
}

/// The local path of the relative wire path `rel` below `root` (which a listing has checked).
pub(crate) fn local_path(root: &Path, rel: &str) -> PathBuf {
    safe_components(rel)
        .unwrap_or_default()
        .iter()
        .fold(root.to_owned(), |at, part| at.join(part))
}

/// Why an entry could not be read, or compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: LeftOutReason,
    pub message: String,
}

/// One entry of a side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    pub size: u64,
    pub mtime: i64,
    /// Permission bits.
    pub mode: u32,
    /// A remote file's digest, when the listing was a `digests`.
    pub digest: Option<Digest>,
    /// A directory that could not be read (nothing below it is known), or a file that could
    /// not be looked at.
    pub error: Option<Problem>,
}

/// A whole side: its root and every entry below it by relative wire path, parents first.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// What the root is; `None` when it does not exist.
    pub root: Option<Kind>,
    /// The root's permission bits.
    pub root_mode: u32,
    pub nodes: BTreeMap<String, Node>,
    /// Entries that have no usable name (shown path, why): never synced, never deleted.
    pub unnamed: Vec<(String, Problem)>,
    /// Entries a server left out without naming them.
    pub hidden: u64,
}

/// Lists a local directory (blocking: run it on the blocking pool). A root that is a symlink
/// is followed, the way a user names a directory; nothing below it is. `seen` counts the
/// entries listed so far, for a progress display.
pub(crate) fn list_local(root: &Path, seen: &AtomicU64) -> io::Result<Tree> {
    let mut tree = Tree::default();
    let meta = match std::fs::metadata(root) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(tree),
        Err(e) => return Err(e),
    };
    tree.root = Some(ferry_localfs::kind_of(meta.file_type()));
    tree.root_mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
    if !meta.is_dir() {
        return Ok(tree);
    }
    let resolved = std::fs::canonicalize(root)?;
    local::walk_each(&resolved, |step| {
        seen.fetch_add(
            (step.dirs.len() + step.files.len()) as u64,
            Ordering::Relaxed,
        );
        for dir in step.dirs {
            tree.nodes.insert(
                dir.rel,
                Node {
                    kind: Kind::Dir,
                    size: 0,
                    mtime: 0,
                    mode: dir.mode,
                    digest: None,
                    error: None,
                },
            );
        }
        for file in step.files {
            tree.nodes.insert(
                file.rel,
                Node {
                    kind: Kind::File,
                    size: file.size,
                    mtime: file.mtime,
                    mode: file.mode,
                    digest: None,
                    error: None,
                },
            );
        }
        for (at, reason, message) in step.left_out {
            let Some(rel) = relative(&resolved, &at) else {
                continue;
            };
            let problem = Problem { reason, message };
            if reason == LeftOutReason::Name {
                tree.unnamed.push((crate::format::local_path(&at), problem));
                continue;
            }
            let kind = match reason {
                LeftOutReason::Symlink => Kind::Symlink,
                _ => Kind::Other,
            };
            let node = tree.nodes.entry(rel).or_insert(Node {
                kind,
                size: 0,
                mtime: 0,
                mode: 0,
                digest: None,
                error: None,
            });
            if !reason.by_design() {
                node.error = Some(problem);
            }
        }
        true
    })?;
    Ok(tree)
}

/// `at` below `root` as a relative wire path.
fn relative(root: &Path, at: &Path) -> Option<String> {
    let rest = at.strip_prefix(root).ok()?;
    Some(rest.iter().fold(String::new(), |rel, part| {
        path::join(&rel, &crate::names::wire_name(part))
    }))
}

/// The BLAKE3 digest of a local file, as the server computes it; an error when the file is
/// not `size` bytes long any more (it changed since the listing).
pub(crate) fn hash_local(file: &Path, size: u64) -> io::Result<Digest> {
    use std::io::Read;
    if size <= SMALL {
        // One read, no 1 MiB buffer: a tree of small files is hashed at the speed of `open`.
        let bytes = std::fs::read(file)?;
        if bytes.len() as u64 != size {
            return Err(io::Error::other(local::Changed));
        }
        return Ok(Digest::from(blake3::hash(&bytes)));
    }
    let mut reader = std::fs::File::open(file)?;
    let mut hasher = blake3::Hasher::new();
    let read = ferry_localfs::hash_prefix(&mut reader, size, &mut hasher)?;
    let mut probe = [0u8; 1];
    if read != size || reader.read(&mut probe)? != 0 {
        return Err(io::Error::other(local::Changed));
    }
    Ok(Digest::from(hasher.finalize()))
}

/// Files up to this size are read whole to be hashed.
const SMALL: u64 = 256 * 1024;

/// Threads that hash local files at once.
const HASHERS: usize = 4;

/// The digests of local files (`rels` below `root`, each with the size it was listed with),
/// hashed on a few threads (blocking: run it on the blocking pool); `None` for one that could
/// not be read or changed since.
pub(crate) fn hash_many(root: &Path, files: &[(String, u64)]) -> Vec<Option<Digest>> {
    let hash = |(rel, size): &(String, u64)| hash_local(&local_path(root, rel), *size).ok();
    if files.len() < 64 {
        return files.iter().map(hash).collect();
    }
    let per = files.len().div_ceil(HASHERS);
    std::thread::scope(|scope| {
        let parts: Vec<_> = files
            .chunks(per)
            .map(|part| scope.spawn(move || part.iter().map(hash).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().unwrap_or_else(|_| vec![None; per]))
            .collect()
    })
}

/// Lists a remote directory in one request: a `walk`, or with `digests` a `digests` that gives
/// every regular file's digest too.
pub(crate) async fn list_remote(
    session: &mut Session,
    root: &str,
    digests: bool,
    seen: &AtomicU64,
) -> Result<Tree, EngineError> {
    let mut tree = Tree::default();
    let Some(entry) = session.try_stat(root).await? else {
        return Ok(tree);
    };
    tree.root = Some(if entry.link == Some(Kind::Dir) {
        Kind::Dir
    } else {
        entry.kind
    });
    tree.root_mode = entry.mode;
    if tree.root != Some(Kind::Dir) {
        return Ok(tree);
    }
    let mut named_errors = 0u64;
    let skipped = if digests {
        let stream = session.digests(root, None).await?;
        drain(stream, root, seen, |e: DigestEntry| {
            named_errors += u64::from(e.entry.error.is_some());
            add_remote(&mut tree, e.entry, e.digest)
        })
        .await?
    } else {
        let stream = session.walk_stream(root).await?;
        drain(stream, root, seen, |e: Entry| {
            named_errors += u64::from(e.error.is_some());
            add_remote(&mut tree, e, None)
        })
        .await?
    };
    tree.hidden = skipped.saturating_sub(named_errors);
    Ok(tree)
}

/// Reads a stream to its end, handing each entry to `each`; `too_large` past [`MAX_WALKED`]
/// entries, so a server that never ends a listing cannot fill memory; `seen` counts them.
/// Returns `skipped`.
async fn drain<E: StreamItem>(
    mut stream: crate::engine::session::ListStream<'_, E>,
    root: &str,
    seen: &AtomicU64,
    mut each: impl FnMut(E),
) -> Result<u64, EngineError> {
    let mut count = 0usize;
    while let Some(batch) = stream.next_batch().await? {
        count += batch.len();
        seen.fetch_add(batch.len() as u64, Ordering::Relaxed);
        if count > MAX_WALKED {
            return Err(EngineError::Remote {
                code: ErrorCode::TooLarge,
                message: format!(
                    "more than {} entries: a sync compares at most that many",
                    crate::format::count(MAX_WALKED as u64)
                ),
                path: root.to_owned(),
            });
        }
        batch.into_iter().for_each(&mut each);
    }
    Ok(stream.skipped())
}

fn add_remote(tree: &mut Tree, entry: Entry, digest: Option<Digest>) {
    if safe_components(&entry.name).is_none() {
        tree.unnamed.push((
            entry.name,
            Problem {
                reason: LeftOutReason::Name,
                message: "the server sent a name that is not a path below the directory".into(),
            },
        ));
        return;
    }
    let error = entry.error.map(|body| Problem {
        reason: if body.code == ErrorCode::NotFound {
            LeftOutReason::Vanished
        } else {
            LeftOutReason::Unreadable
        },
        message: format!("{}: {}", body.code, body.message),
    });
    tree.nodes.insert(
        entry.name,
        Node {
            kind: entry.kind,
            size: entry.size,
            mtime: entry.mtime,
            mode: entry.mode,
            digest,
            error,
        },
    );
}

/// The digests of some of a remote tree's files (`rels`, relative to `root`), with
/// `digests`' listed form: one request per [`ferry_protocol::MAX_DIGEST_PATHS`] names.
pub(crate) async fn remote_digests(
    session: &mut Session,
    root: &str,
    rels: &[String],
) -> Result<BTreeMap<String, Option<Digest>>, EngineError> {
    let mut found = BTreeMap::new();
    for chunk in rels.chunks(ferry_protocol::MAX_DIGEST_PATHS) {
        let stream = session.digests(root, Some(chunk.to_vec())).await?;
        let mut answers = Vec::with_capacity(chunk.len());
        let not_counted = AtomicU64::new(0);
        drain(stream, root, &not_counted, |e: DigestEntry| {
            answers.push(e.digest)
        })
        .await?;
        // Answered in the order asked; a short answer leaves the rest unknown.
        for (rel, digest) in chunk.iter().zip(answers) {
            found.insert(rel.clone(), digest);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn a_local_tree_names_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("src");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(root.join("d/f"), b"abc").unwrap();
        std::fs::write(root.join(std::ffi::OsStr::from_bytes(b"odd\n\xff")), b"x").unwrap();
        std::os::unix::fs::symlink("d", root.join("link")).unwrap();
        let tree = list_local(&root, &AtomicU64::new(0)).unwrap();
        assert_eq!(tree.root, Some(Kind::Dir));
        let names: Vec<_> = tree.nodes.keys().cloned().collect();
        assert_eq!(names, ["d", "d/f", "link", "odd\\n\\xff"]);
        assert_eq!(tree.nodes["d/f"].size, 3);
        assert_eq!(tree.nodes["link"].kind, Kind::Symlink);
        assert_eq!(tree.nodes["link"].error, None);
        assert_eq!(
            local_path(&root, "odd\\n\\xff"),
            root.join(std::ffi::OsStr::from_bytes(b"odd\n\xff"))
        );
        assert_eq!(
            list_local(&dir.path().join("none"), &AtomicU64::new(0))
                .unwrap()
                .root,
            None
        );
        let file = root.join("d/f");
        assert_eq!(
            hash_local(&file, 3).unwrap(),
            Digest::from(blake3::hash(b"abc"))
        );
        assert!(hash_local(&file, 2).is_err());
        assert!(hash_local(&file, 4).is_err());
    }
}
