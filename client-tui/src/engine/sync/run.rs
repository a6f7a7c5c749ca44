//! Carrying out a plan, around the one transfer job its owner runs: the directories before it
//! ([`make_dirs`]), the job's items and what it needs to know of each destination
//! ([`transfer_job`], so it asks nothing per file), and after it ([`finish`]) the mtimes and
//! modes fixed without sending bytes, the deletions (only once every transfer is verified,
//! deepest first, never recursive, a file only while it is as listed), and last the
//! directories' modes (a directory made read-only only once nothing more goes into it).
//! Every remote step is one pipelined round, not a round trip per entry.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use ferry_protocol::{Entry, ErrorCode, Kind, path};

use super::compare::{Action, carried_mode};
use super::plan::Plan;
use super::tree::{Side, local_path, remote_path};
use crate::engine::error::EngineError;
use crate::engine::job::blocking;
use crate::engine::local;
use crate::engine::session::Session;
use crate::engine::spec::{ConflictPolicy, JobSpec};

/// What became of one step after the transfer (or of a directory before it).
#[derive(Debug)]
pub struct Outcome {
    pub rel: String,
    /// The plan word it carries out (`mkdir`, `fix-time`, `fix-mode`, `delete`).
    pub word: &'static str,
    pub result: Result<(), EngineError>,
}

/// The directories the destination lacks whose whole source subtree goes as it is (nothing
/// in it skipped or excluded), outermost only: each goes as one directory item of the job,
/// which makes it and walks it itself, instead of one item per file (a first sync into an
/// empty destination is then one `put -r` or `get -r`).
fn whole_dirs(plan: &Plan) -> BTreeSet<String> {
    let mut new_dirs = BTreeSet::new();
    let mut held = HashSet::new();
    for action in &plan.actions {
        match action {
            Action::Mkdir { rel, .. } => {
                new_dirs.insert(rel.clone());
            }
            Action::Create { .. } => {}
            other => {
                held.insert(String::new());
                held.extend(parents(other.rel()).map(str::to_owned));
            }
        }
    }
    let whole: Vec<String> = new_dirs
        .into_iter()
        .filter(|rel| !held.contains(rel))
        .collect();
    let mut outermost = BTreeSet::new();
    for rel in whole {
        if !within_any(&outermost, &rel) {
            outermost.insert(rel);
        }
    }
    outermost
}

/// The parent directories of `rel` (not the root), outermost first.
fn parents(rel: &str) -> impl Iterator<Item = &str> {
    rel.match_indices('/').map(move |(at, _)| &rel[..at])
}

/// Whether `rel` is one of `dirs` or lies below one (the root `""` holds everything).
fn within_any(dirs: &BTreeSet<String>, rel: &str) -> bool {
    dirs.contains("") || dirs.contains(rel) || parents(rel).any(|p| dirs.contains(p))
}

/// Makes the directories the destination lacks, parents first, each with its source's mode
/// (the final bits are set by [`finish`]).
pub async fn make_dirs(session: &mut Session, plan: &Plan) -> Result<Vec<Outcome>, EngineError> {
    let whole = whole_dirs(plan);
    let dirs: Vec<(String, u32)> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Mkdir { rel, mode } if !within_any(&whole, rel) => Some((rel.clone(), *mode)),
            _ => None,
        })
        .collect();
    if dirs.is_empty() {
        return Ok(Vec::new());
    }
    let results: Vec<Result<(), EngineError>> = match &plan.dst {
        Side::Remote(root) => {
            let wanted: Vec<(String, Option<u32>)> = dirs
                .iter()
                .map(|(rel, mode)| (remote_path(root, rel), Some(*mode)))
                .collect();
            session
                .mkdir_many(&wanted)
                .await?
                .into_iter()
                .map(|r| match r {
                    Err(e) if e.remote_code() == Some(ErrorCode::AlreadyExists) => Ok(()),
                    other => other,
                })
                .collect()
        }
        Side::Local(root) => {
            let (root, wanted) = (root.clone(), dirs.clone());
            blocking(move || {
                wanted
                    .iter()
                    .map(|(rel, mode)| {
                        let at = local_path(&root, rel);
                        make_local_dir(&at, *mode).map_err(|e| EngineError::local(&at, e))
                    })
                    .collect()
            })
            .await?
        }
    };
    Ok(dirs
        .into_iter()
        .zip(results)
        .map(|((rel, _), result)| Outcome {
            rel,
            word: "mkdir",
            result,
        })
        .collect())
}

fn make_local_dir(at: &Path, mode: u32) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true).mode(local::new_dir_mode(mode));
    builder.create(at)
}

/// The one transfer job of a plan: every file to create or update as its own item (source,
/// destination), to overwrite (verified, atomic, resumable), and the destination's listing
/// of each as the job's groundwork, so it asks the server nothing per file. `None` when no
/// file is to be sent.
pub fn transfer_job(plan: &Plan) -> Option<(JobSpec, HashMap<String, Option<Entry>>)> {
    let mut stats = HashMap::new();
    let mut up = Vec::new();
    let mut down = Vec::new();
    let whole = whole_dirs(plan);
    for action in &plan.actions {
        if let Action::Mkdir { rel, mode } = action
            && whole.contains(rel)
        {
            match (&plan.src, &plan.dst) {
                (Side::Local(src), Side::Remote(dst)) => {
                    let remote = remote_path(dst, rel);
                    stats.insert(remote.clone(), None);
                    up.push((local_path(src, rel), remote));
                }
                (Side::Remote(src), Side::Local(dst)) => {
                    let remote = remote_path(src, rel);
                    let entry = Entry {
                        name: path::split_last(rel)
                            .map_or(rel.as_str(), |(_, n)| n)
                            .to_owned(),
                        kind: Kind::Dir,
                        size: 0,
                        mtime: 0,
                        mode: *mode,
                        link: None,
                        error: None,
                        owner: None,
                        target: None,
                    };
                    stats.insert(remote.clone(), Some(entry));
                    down.push((remote, local_path(dst, rel)));
                }
                _ => return None,
            }
            continue;
        }
        if within_any(&whole, action.rel()) {
            continue;
        }
        let (rel, size, mtime, mode, old) = match action {
            Action::Create {
                rel,
                size,
                mtime,
                mode,
            } => (rel, *size, *mtime, *mode, None),
            Action::Update {
                rel,
                size,
                mtime,
                mode,
                old,
                ..
            } => (rel, *size, *mtime, *mode, Some(*old)),
            _ => continue,
        };
        let entry = |(size, mtime, mode): (u64, i64, u32)| Entry {
            name: path::split_last(rel)
                .map_or(rel.as_str(), |(_, n)| n)
                .to_owned(),
            kind: Kind::File,
            size,
            mtime,
            mode,
            link: None,
            error: None,
            owner: None,
            target: None,
        };
        match (&plan.src, &plan.dst) {
            (Side::Local(src), Side::Remote(dst)) => {
                let remote = remote_path(dst, rel);
                stats.insert(remote.clone(), old.map(entry));
                up.push((local_path(src, rel), remote));
            }
            (Side::Remote(src), Side::Local(dst)) => {
                let remote = remote_path(src, rel);
                stats.insert(remote.clone(), Some(entry((size, mtime, mode))));
                down.push((remote, local_path(dst, rel)));
            }
            _ => return None,
        }
    }
    let policy = ConflictPolicy::Overwrite;
    if !up.is_empty() {
        Some((
            JobSpec::Upload {
                items: up,
                policy,
                remove_source: false,
            },
            stats,
        ))
    } else if !down.is_empty() {
        Some((
            JobSpec::Download {
                items: down,
                policy,
                remove_source: false,
            },
            stats,
        ))
    } else {
        None
    }
}

/// A change of attributes, on a path relative to the roots.
#[derive(Debug, Clone, Default)]
struct Change {
    mtime: Option<i64>,
    mode: Option<u32>,
    /// Not a step of the plan but part of a create or mkdir (the bits a new entry must end
    /// with): a `not_found` means the entry itself failed, which was reported then.
    implied: bool,
    word: &'static str,
}

/// What [`finish`] did.
#[derive(Debug, Default)]
pub struct Finished {
    pub outcomes: Vec<Outcome>,
    /// Deletions not done because a transfer failed (or the run was cut short).
    pub deletes_held: u64,
}

/// After the transfer job: file mtimes and modes, then the deletions (only when
/// `transfers_ok`), then directory modes, deepest first.
pub async fn finish(
    session: &mut Session,
    plan: &Plan,
    transfers_ok: bool,
) -> Result<Finished, EngineError> {
    let mut files: BTreeMap<String, Change> = BTreeMap::new();
    let mut dirs: BTreeMap<String, Change> = BTreeMap::new();
    let mut deletes = Vec::new();
    for action in &plan.actions {
        match action {
            // A new file gets the source's bits less the receiver's umask: set exactly when
            // they hold group or other write bits, which the usual umask (022) takes off.
            Action::Create { rel, mode, .. } if mode & 0o022 != 0 => {
                let change = files.entry(rel.clone()).or_default();
                change.mode = Some(carried_mode(Kind::File, *mode));
                change.implied = true;
                change.word = "create";
            }
            Action::Create { .. } => {}
            Action::Mkdir { rel, mode } => {
                let change = dirs.entry(rel.clone()).or_default();
                change.mode = Some(carried_mode(Kind::Dir, *mode));
                change.implied = true;
                change.word = "mkdir";
            }
            Action::FixTime { rel, mtime } => {
                let change = files.entry(rel.clone()).or_default();
                change.mtime = Some(*mtime);
                change.word = "fix-time";
            }
            Action::FixMode { rel, kind, mode } => {
                let set = if *kind == Kind::Dir {
                    &mut dirs
                } else {
                    &mut files
                };
                let change = set.entry(rel.clone()).or_default();
                change.mode = Some(*mode);
                if change.word.is_empty() {
                    change.word = "fix-mode";
                }
            }
            Action::Delete { rel, listed, .. } => deletes.push((rel.clone(), *listed)),
            Action::Update { .. } | Action::Skip { .. } => {}
        }
    }
    let mut finished = Finished::default();
    let files: Vec<(String, Change)> = files.into_iter().collect();
    finished
        .outcomes
        .extend(set_attrs(session, &plan.dst, files).await?);
    if transfers_ok {
        finished
            .outcomes
            .extend(delete(session, &plan.dst, deletes).await?);
    } else {
        finished.deletes_held = deletes.len() as u64;
    }
    let mut dirs: Vec<(String, Change)> = dirs.into_iter().collect();
    dirs.sort_by_key(|(rel, _)| std::cmp::Reverse(depth(rel)));
    finished
        .outcomes
        .extend(set_attrs(session, &plan.dst, dirs).await?);
    Ok(finished)
}

fn depth(rel: &str) -> usize {
    if rel.is_empty() {
        0
    } else {
        rel.matches('/').count() + 1
    }
}

/// Sets attributes on the destination in one pipelined round (or locally).
async fn set_attrs(
    session: &mut Session,
    dst: &Side,
    changes: Vec<(String, Change)>,
) -> Result<Vec<Outcome>, EngineError> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let results: Vec<Result<(), EngineError>> = match dst {
        Side::Remote(root) => {
            let wanted: Vec<_> = changes
                .iter()
                .map(|(rel, c)| (remote_path(root, rel), c.mtime, c.mode))
                .collect();
            session
                .set_attrs_many(&wanted)
                .await?
                .into_iter()
                .map(|r| r.map(drop))
                .collect()
        }
        Side::Local(root) => {
            let (root, wanted) = (root.clone(), changes.clone());
            blocking(move || {
                wanted
                    .iter()
                    .map(|(rel, c)| {
                        let at = local_path(&root, rel);
                        set_local_attrs(&at, c.mtime, c.mode)
                            .map_err(|e| EngineError::local(&at, e))
                    })
                    .collect()
            })
            .await?
        }
    };
    Ok(changes
        .into_iter()
        .zip(results)
        .filter(|((_, c), r)| !(c.implied && is_not_found(r)))
        .map(|((rel, c), result)| Outcome {
            rel,
            word: c.word,
            result,
        })
        .collect())
}

fn is_not_found(result: &Result<(), EngineError>) -> bool {
    match result {
        Err(EngineError::Remote { code, .. }) => *code == ErrorCode::NotFound,
        Err(EngineError::Local { source, .. }) => source.kind() == io::ErrorKind::NotFound,
        _ => false,
    }
}

/// Deletes in the plan's order (deepest first), never recursively.
async fn delete(
    session: &mut Session,
    dst: &Side,
    deletes: Vec<(String, Option<(u64, i64)>)>,
) -> Result<Vec<Outcome>, EngineError> {
    if deletes.is_empty() {
        return Ok(Vec::new());
    }
    let results: Vec<Result<(), EngineError>> = match dst {
        Side::Remote(root) => {
            let wanted: Vec<_> = deletes
                .iter()
                .map(|(rel, listed)| (remote_path(root, rel), *listed))
                .collect();
            session.remove_listed(&wanted).await?
        }
        Side::Local(root) => {
            let (root, wanted) = (root.clone(), deletes.clone());
            blocking(move || {
                wanted
                    .iter()
                    .map(|(rel, listed)| {
                        let at = local_path(&root, rel);
                        remove_local(&at, *listed).map_err(|e| EngineError::local(&at, e))
                    })
                    .collect()
            })
            .await?
        }
    };
    Ok(deletes
        .into_iter()
        .zip(results)
        .map(|((rel, _), result)| Outcome {
            rel,
            word: "delete",
            result,
        })
        .collect())
}

/// Removes a local entry the sync found only on the destination: a file only while it has
/// the listed length and mtime, a link itself (never what it leads to), a directory only
/// when empty.
fn remove_local(at: &Path, listed: Option<(u64, i64)>) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(at)?;
    if let Some((size, mtime)) = listed
        && (!meta.is_file() || meta.len() != size || local::mtime_secs(&meta) != mtime)
    {
        return Err(io::Error::other(local::Changed));
    }
    if meta.is_dir() {
        std::fs::remove_dir(at)
    } else {
        std::fs::remove_file(at)
    }
}

/// Sets a local file's or directory's mtime and mode, never through a symlink.
fn set_local_attrs(at: &Path, mtime: Option<i64>, mode: Option<u32>) -> io::Result<()> {
    use ferry_localfs::AttrsError;
    ferry_localfs::set_attrs_nofollow(rustix::fs::CWD, at, mtime, mode).map_err(|e| match e {
        AttrsError::Io(e) => e,
        AttrsError::Symlink | AttrsError::Special => io::Error::new(
            io::ErrorKind::PermissionDenied,
            "not a regular file or directory (a symlink is never followed)",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn local_attrs_and_removal_never_follow_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"abc").unwrap();
        set_local_attrs(&file, Some(1_000_000), Some(0o640)).unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(
            (meta.mtime(), meta.permissions().mode() & 0o777),
            (1_000_000, 0o640)
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(set_local_attrs(&link, Some(5), Some(0o777)).is_err());
        assert_eq!(std::fs::metadata(&file).unwrap().mtime(), 1_000_000);
        // A file changed since it was listed stays; the link goes, its target stays.
        assert!(remove_local(&file, Some((3, 999))).is_err());
        remove_local(&link, None).unwrap();
        assert!(file.exists());
        remove_local(&file, Some((3, 1_000_000))).unwrap();
        assert!(!file.exists());
    }
}
