//! Planning a job before any file moves: walking the sources (locally, or with one `walk`
//! request per remote directory), creating the destination directories, learning which remote
//! destinations exist; and, for a move, removing what was copied once it is verified.
//!
//! Remote names are hostile input: each must pass the protocol's path rules before it becomes a
//! local path, so a server can never make the client write outside the chosen directory.
//!
//! Just over 600 lines, not split: the upload and download plans share the walk's rules
//! (left-out entries, directories made before their files, move cleanup) written once here.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use ferry_protocol::{Entry, ErrorCode, Kind, path};

use super::error::EngineError;
use super::event::{LeftOutReason, TransferEvent};
use super::job::{Job, Task, blocking, lock};
use super::local;
use super::session::Session;
use super::spec::FileFacts;

/// Directories that a move empties, deepest first, to remove once their files are gone: local
/// ones as paths (a name that is not UTF-8 must reach its own directory again), remote ones as
/// wire names.
#[derive(Debug, Default)]
pub(super) struct EmptiedDirs {
    local: Vec<PathBuf>,
    remote: Vec<String>,
}

/// Plans an upload while it already runs: the local walk reads one directory at a time on
/// the blocking pool, and each directory's files go to the workers (already connected) as soon
/// as it is read, its subdirectories being made on the server before their own files come.
pub(super) async fn plan_upload(
    job: &Job,
    session: &mut Session,
    items: Vec<(PathBuf, String)>,
    stats: &HashMap<String, Option<Entry>>,
) -> Result<EmptiedDirs, EngineError> {
    let mut cleanup = EmptiedDirs::default();
    for (local_root, remote_root) in items {
        let (steps_tx, mut steps) = tokio::sync::mpsc::channel::<local::LocalTree>(WALK_AHEAD);
        let walker = {
            let root = local_root.clone();
            tokio::task::spawn_blocking(move || {
                local::walk_each(&root, |step| steps_tx.blocking_send(step).is_ok())
            })
        };
        let mut first = true;
        // The item failed as a whole (reported once): the rest of its walk is not read.
        let mut refused = false;
        // A new remote root, made in the first round of `mkdir`s with its subdirectories
        // instead of in a round trip of its own; its files wait for that round.
        let mut new_root = None;
        let mut dirs = Vec::new();
        let mut root_is_dir = false;
        while let Some(step) = steps.recv().await {
            if std::mem::take(&mut first) {
                root_is_dir = step.root_is_dir;
                // The server refusing this item (a name it cannot hold, a directory it may
                // not read) fails this item alone: the others of the selection go on.
                let known = stats.get(&remote_root).cloned();
                let root = Root {
                    remote: &remote_root,
                    is_dir: root_is_dir,
                    mode: step.root_mode,
                };
                refused = match prepare_root(job, session, &root, known).await {
                    Ok(RootReady::Ready) => false,
                    Ok(RootReady::Refused) => true,
                    Ok(RootReady::Make) => {
                        new_root = Some((remote_root.clone(), root.mode));
                        false
                    }
                    Err(e @ EngineError::Remote { .. }) => {
                        job.failed_path(&remote_root, &e);
                        true
                    }
                    Err(e) => return Err(e),
                };
                if refused {
                    // Dropping the receiver stops the walk at its next directory.
                    break;
                }
            }
            // The directories the walk has read already go together: their subdirectories are
            // made in one pipelined round, not one round per directory.
            let mut ready = vec![step];
            while ready.len() < WALK_AHEAD
                && let Ok(next) = steps.try_recv()
            {
                ready.push(next);
            }
            // Files of the directories this round makes wait for it.
            let mut held = Vec::new();
            let mut mkdirs: Vec<(String, Option<u32>)> = Vec::new();
            for (index, step) in ready.into_iter().enumerate() {
                for (path, reason, message) in step.left_out {
                    left_out(job, crate::format::local_path(&path), reason, message);
                }
                let tasks = step
                    .files
                    .into_iter()
                    .map(|file| {
                        let remote = if file.rel.is_empty() {
                            remote_root.clone()
                        } else {
                            path::join(&remote_root, &file.rel)
                        };
                        let mut task = Task::new(file.path, remote, file.size, file.mtime);
                        task.source_id = Some(file.id);
                        task
                    })
                    .collect::<Vec<_>>();
                if index == 0 && new_root.is_none() {
                    // This directory exists on the server by now: its files can go.
                    job.feed(tasks);
                } else {
                    held.extend(tasks);
                }
                // Its subdirectories are made before the walk hands over their files; the walk
                // names a parent before its children, so parents are made first.
                let known = lock(&job.remote_existing);
                mkdirs.extend(
                    step.dirs
                        .iter()
                        .map(|dir| (path::join(&remote_root, &dir.rel), Some(dir.mode)))
                        .filter(|(remote, _)| !matches!(known.get(remote), Some(Kind::Dir))),
                );
                dirs.extend(step.dirs.into_iter().map(|dir| dir.rel));
            }
            if let Some(root) = new_root.take() {
                mkdirs.insert(0, root);
                let mut outcomes = session.mkdir_many(&mkdirs).await?.into_iter();
                // Refused, the root fails the item once; the directories below it fail with
                // it, unreported.
                if let Some(Err(e)) = outcomes.next()
                    && e.remote_code() != Some(ErrorCode::AlreadyExists)
                {
                    job.failed_path(&remote_root, &e);
                    refused = true;
                    break;
                }
                report_mkdirs(job, &mkdirs[1..], outcomes);
            } else {
                make_remote_dirs(job, session, &mkdirs).await?;
            }
            job.feed(held);
        }
        // A walk still sending (the item was refused) sees the channel closed and stops.
        drop(steps);
        match walker.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => job.failed_path(
                &crate::format::local_path(&local_root),
                &EngineError::local(&local_root, e),
            ),
            Err(e) => return Err(EngineError::Protocol(format!("a local task failed: {e}"))),
        }
        if root_is_dir && !refused {
            // Children before parents, for removing a moved tree.
            // `rel` is a wire name: the directory on disk is its decoded bytes.
            cleanup.local.extend(dirs.iter().rev().filter_map(|d| {
                let parts = safe_components(d)?;
                Some(
                    parts
                        .iter()
                        .fold(local_root.clone(), |at, part| at.join(part)),
                )
            }));
            cleanup.local.push(local_root.clone());
        }
    }
    Ok(cleanup)
}

/// Keeps an existing remote file's size and time for a conflict about it.
fn remember_facts(job: &Job, remote: &str, entry: &Entry) {
    if entry.kind == Kind::File {
        lock(&job.remote_facts).insert(
            remote.to_owned(),
            FileFacts {
                size: entry.size,
                mtime: entry.mtime,
            },
        );
    }
}

/// An upload item's destination, and what its local source is.
struct Root<'a> {
    remote: &'a str,
    is_dir: bool,
    mode: Option<u32>,
}

/// Directories a walk may read ahead of the planner.
const WALK_AHEAD: usize = 16;

/// What an upload's destination needs before its files go.
enum RootReady {
    Ready,
    /// The item failed (reported).
    Refused,
    /// A directory to make, with the first round of its subdirectories.
    Make,
}

/// Gets the destination of an upload ready once its source is known to be a directory (or
/// not): a missing directory is to be made, an existing one tells which files already exist
/// there, a file in the way of a directory fails the item.
async fn prepare_root(
    job: &Job,
    session: &mut Session,
    root: &Root<'_>,
    known: Option<Option<Entry>>,
) -> Result<RootReady, EngineError> {
    let (remote_root, root_is_dir) = (root.remote, root.is_dir);
    let existing = match known {
        Some(known) => known,
        None => session.try_stat(remote_root).await?,
    };
    if !root_is_dir {
        if let Some(entry) = existing {
            lock(&job.remote_existing).insert(remote_root.to_owned(), entry.kind);
            remember_facts(job, remote_root, &entry);
        }
        return Ok(RootReady::Ready);
    }
    match existing {
        None => Ok(RootReady::Make),
        Some(entry) if entry.kind == Kind::Dir => {
            let below = session.walk(remote_root).await?;
            let mut known = lock(&job.remote_existing);
            for entry in below {
                let remote = path::join(remote_root, &entry.name);
                remember_facts(job, &remote, &entry);
                known.insert(remote, entry.kind);
            }
            Ok(RootReady::Ready)
        }
        Some(_) => {
            job.failed_path(
                remote_root,
                &EngineError::Remote {
                    code: ErrorCode::NotADirectory,
                    message: "a directory cannot replace a file".into(),
                    path: remote_root.to_owned(),
                },
            );
            Ok(RootReady::Refused)
        }
    }
}

/// Makes remote directories (parents first) in one pipelined round, each with the mode of the
/// local directory it copies (the server adds owner `rwx` and drops the special bits); one
/// that exists already is fine and keeps its own mode. Returns how many failed (each reported).
async fn make_remote_dirs(
    job: &Job,
    session: &mut Session,
    dirs: &[(String, Option<u32>)],
) -> Result<usize, EngineError> {
    if dirs.is_empty() {
        return Ok(0);
    }
    let outcomes = session.mkdir_many(dirs).await?;
    Ok(report_mkdirs(job, dirs, outcomes))
}

/// Reports each of `dirs` whose `mkdir` failed (one that exists already is fine); returns how
/// many failed.
fn report_mkdirs(
    job: &Job,
    dirs: &[(String, Option<u32>)],
    outcomes: impl IntoIterator<Item = Result<(), EngineError>>,
) -> usize {
    let mut failed = 0;
    for ((dir, _), outcome) in dirs.iter().zip(outcomes) {
        match outcome {
            Ok(()) => {}
            Err(e) if e.remote_code() == Some(ErrorCode::AlreadyExists) => {}
            Err(e) => {
                job.failed_path(dir, &e);
                failed += 1;
            }
        }
    }
    failed
}

/// A remote name from a listing, as the raw bytes of local path components; `None` if it
/// could lead anywhere but below the chosen directory.
pub(super) fn safe_components(name: &str) -> Option<Vec<std::ffi::OsString>> {
    let parts = path::components(name).ok()?;
    if parts.is_empty() || parts.iter().any(|p| path::is_partial_name(p)) {
        return None;
    }
    parts
        .iter()
        .map(|part| path::name_bytes(part).ok())
        .map(|raw| Some(std::os::unix::ffi::OsStringExt::from_vec(raw?.into_owned())))
        .collect()
}

/// A download's local name from the server, `name`, that would spoof other programs (see
/// [`crate::format::is_unsafe_name`]): the file at `remote` fails on its own unless the user
/// allowed such names, and the rest of the download goes on.
fn refuse_unsafe(job: &Job, name: &str, remote: &str) -> bool {
    if job.options.allow_unsafe_names || !crate::format::is_unsafe_name(name) {
        return false;
    }
    job.failed_path(
        remote,
        &EngineError::UnsafeName {
            path: remote.to_owned(),
        },
    );
    true
}

/// Plans a download while it already runs: the walk arrives in batches, and each batch's
/// directories are made and its files handed to the workers (already connected) before the
/// next batch is read, so a big tree starts moving at once instead of after a full walk.
pub(super) async fn plan_download(
    job: &Job,
    session: &mut Session,
    items: Vec<(String, PathBuf)>,
    stats: &HashMap<String, Option<Entry>>,
) -> Result<EmptiedDirs, EngineError> {
    // Directories this plan made, hence empty: a file going into one needs no look at the
    // disk before its `get`.
    let mut made = HashSet::new();
    let mut cleanup = EmptiedDirs::default();
    for (remote_root, local_root) in items {
        let known = stats.get(&remote_root).cloned().flatten();
        let entry = match known {
            Some(entry) => Ok(entry),
            None => session.stat(&remote_root).await,
        };
        let entry = match entry {
            Ok(entry) => entry,
            Err(e @ EngineError::Remote { .. }) => {
                job.failed_path(&remote_root, &e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let named = local_root
            .file_name()
            .map(crate::names::wire_name)
            .unwrap_or_default();
        if refuse_unsafe(job, &named, &remote_root) {
            continue;
        }
        match entry.kind {
            Kind::File => job.feed(vec![Task::new(
                local_root,
                remote_root,
                entry.size,
                entry.mtime,
            )]),
            Kind::Dir => {
                let mut stream = match session.walk_stream(&remote_root).await {
                    Ok(stream) => stream,
                    Err(e @ EngineError::Remote { .. }) => {
                        job.failed_path(&remote_root, &e);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let mut remote_dirs = vec![remote_root.clone()];
                let mut root_made = None;
                // Directories the walk named with an error, which its `skipped` counts too.
                let mut unread = 0u64;
                loop {
                    let batch = match stream.next_batch().await {
                        Ok(Some(batch)) => batch,
                        Ok(None) => break,
                        Err(e @ EngineError::Remote { .. }) => {
                            // What was planned so far still goes; the rest of the tree fails.
                            job.failed_path(&remote_root, &e);
                            break;
                        }
                        Err(e) => return Err(e),
                    };
                    if root_made.is_none() {
                        // The destination itself first: if it cannot be a directory (a file is
                        // in the way), the item fails once instead of once per file below it.
                        let root = local_root.clone();
                        let mode = entry.mode;
                        match blocking(move || make_dir(&root, mode)).await? {
                            Ok(true) => {
                                made.insert(local_root.clone());
                                root_made = Some(true);
                            }
                            Ok(false) => root_made = Some(true),
                            Err(e) => {
                                job.failed_path(
                                    &crate::format::local_path(&local_root),
                                    &EngineError::local(&local_root, e),
                                );
                                root_made = Some(false);
                            }
                        }
                    }
                    if root_made == Some(false) {
                        // Read to the end, so the connection stays in step for the next item.
                        continue;
                    }
                    let mut local_dirs = Vec::new();
                    let mut tasks = Vec::new();
                    for entry in batch {
                        let remote = path::join(&remote_root, &entry.name);
                        let Some(parts) = safe_components(&entry.name) else {
                            left_out(
                                job,
                                remote,
                                LeftOutReason::Name,
                                "the name cannot be a local file name here",
                            );
                            continue;
                        };
                        let remote = path::join(&remote_root, &entry.name);
                        if refuse_unsafe(job, &entry.name, &remote) {
                            continue;
                        }
                        let local: PathBuf =
                            parts.iter().fold(local_root.clone(), |p, c| p.join(c));
                        if let Some(error) = &entry.error
                            && (entry.kind != Kind::Dir || error.code == ErrorCode::NotFound)
                        {
                            // Gone between the server's `readdir` and `lstat`, or not to be
                            // described: named, and nothing is made for it.
                            unread += 1;
                            left_out(job, remote, reason_of(error.code), error);
                            continue;
                        }
                        match entry.kind {
                            Kind::Dir => {
                                if let Some(error) = &entry.error {
                                    // The server lists it but could not go into it (or read
                                    // all of it): it is made so the tree keeps its shape, and
                                    // named.
                                    unread += 1;
                                    left_out(job, remote.clone(), LeftOutReason::Unreadable, error);
                                }
                                local_dirs.push((local, entry.mode));
                                remote_dirs.push(remote);
                            }
                            Kind::File => {
                                tasks.push(Task::new(local, remote, entry.size, entry.mtime));
                            }
                            kind @ (Kind::Symlink | Kind::Other) => {
                                left_out_by_design(job, remote, kind)
                            }
                        }
                    }
                    made = make_dirs(job, made, local_dirs).await?;
                    for task in &mut tasks {
                        task.vacant = task.local.parent().is_some_and(|dir| made.contains(dir));
                    }
                    job.feed(tasks);
                }
                // The server counts the directories it named with an error too.
                let unnamed = stream.skipped().saturating_sub(unread);
                if unnamed > 0 {
                    left_out(
                        job,
                        remote_root.clone(),
                        LeftOutReason::Name,
                        format!(
                            "{} below it with names the server cannot send",
                            crate::format::counted(unnamed, "entry", "entries")
                        ),
                    );
                    lock(&job.counters).skipped += unnamed - 1;
                }
                // Children before parents, for removing a moved tree.
                cleanup.remote.extend(remote_dirs.into_iter().rev());
            }
            kind @ (Kind::Symlink | Kind::Other) => left_out_by_design(job, remote_root, kind),
        }
    }
    Ok(cleanup)
}

/// Why a walk entry the server named with `code` is not copied.
fn reason_of(code: ErrorCode) -> LeftOutReason {
    if code == ErrorCode::NotFound {
        LeftOutReason::Vanished
    } else {
        LeftOutReason::Unreadable
    }
}

/// A file the plan saw that was gone when it was to be read (`path` being its source): named
/// as vanished, not failed, and counted as skipped.
pub(super) fn vanished(job: &Job, task: &Task, path: String, message: impl std::fmt::Display) {
    job.skipped(task);
    job.send_file_event(TransferEvent::LeftOut {
        job: job.id,
        path,
        reason: LeftOutReason::Vanished,
        message: message.to_string(),
    });
}

/// Names an entry the job does not copy, with why, and counts it as skipped.
pub(super) fn left_out(
    job: &Job,
    path: String,
    reason: LeftOutReason,
    message: impl std::fmt::Display,
) {
    lock(&job.counters).skipped += 1;
    job.send_file_event(TransferEvent::LeftOut {
        job: job.id,
        path,
        reason,
        message: message.to_string(),
    });
}

/// Names a link or a special file (`kind`), which a copy leaves out by design.
fn left_out_by_design(job: &Job, path: String, kind: Kind) {
    let (reason, what) = match kind {
        Kind::Symlink => (LeftOutReason::Symlink, "a symlink"),
        _ => (LeftOutReason::Special, "a special file"),
    };
    left_out(
        job,
        path,
        reason,
        format!("{what}: only files and directories are copied"),
    );
}

/// Makes a batch's directories in walk order (parents before children, so each is made by its
/// own call and the new, empty ones are known), adding those to `made`.
async fn make_dirs(
    job: &Job,
    mut made: HashSet<PathBuf>,
    dirs: Vec<(PathBuf, u32)>,
) -> Result<HashSet<PathBuf>, EngineError> {
    if dirs.is_empty() {
        return Ok(made);
    }
    let (made, failures) = blocking(move || {
        let mut failures = Vec::new();
        for (dir, mode) in dirs {
            match make_dir(&dir, mode) {
                Ok(true) => {
                    made.insert(dir);
                }
                Ok(false) => {}
                Err(e) => failures.push((dir, e)),
            }
        }
        (made, failures)
    })
    .await?;
    for (dir, e) in failures {
        job.failed_path(
            &crate::format::local_path(&dir),
            &EngineError::local(&dir, e),
        );
    }
    Ok(made)
}

/// Makes a directory (and its missing parents); `true` when this call made it, so it is empty.
/// A directory it makes gets the remote directory's `mode` as [`local::new_dir_mode`] says
/// (the parents made on the way, the default); an existing one keeps its own.
fn make_dir(dir: &Path, mode: u32) -> std::io::Result<bool> {
    let mut builder = std::fs::DirBuilder::new();
    builder.mode(local::new_dir_mode(mode));
    match builder.create(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // A file in the way is an error, as with `create_dir_all`.
            std::fs::create_dir_all(dir).map(|()| false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent)?;
            }
            match builder.create(dir) {
                Ok(()) => Ok(true),
                // Made by someone else meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::fs::create_dir_all(dir).map(|()| false)
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Removes the local directories an upload move emptied (its files went as soon as they were
/// verified, removed by the workers). A directory that still holds something (a skipped link,
/// a failed file) stays.
pub(super) async fn finish_upload_move(cleanup: EmptiedDirs) -> Result<(), EngineError> {
    blocking(move || {
        for dir in cleanup.local {
            let _ = std::fs::remove_dir(dir);
        }
    })
    .await
}

/// Removes what a download move has copied: the remote files verified, then the directories
/// they emptied.
pub(super) async fn finish_download_move(
    job: &Job,
    session: &mut Session,
    cleanup: EmptiedDirs,
) -> Result<(), EngineError> {
    // Each only while it is still the copy (`file_changed` otherwise, and it stays).
    let files = std::mem::take(&mut *lock(&job.verified_sources));
    for (file, outcome) in files.iter().zip(session.remove_copied(&files).await?) {
        if let Err(e) = outcome {
            job.failed_path(&file.path, &e);
        }
    }
    // Never recursive: a directory still holding a kept file (or anything the job did
    // not copy) refuses, and stays.
    session.remove_many(&cleanup.remote, false).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_names_become_local_paths() {
        assert_eq!(
            safe_components("a/b c/ü.txt"),
            Some(vec!["a".into(), "b c".into(), "ü.txt".into()])
        );
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(
            safe_components("new\\nline/\\xff"),
            Some(vec![
                std::ffi::OsStr::from_bytes(b"new\nline").to_owned(),
                std::ffi::OsStr::from_bytes(b"\xff").to_owned()
            ])
        );
        for hostile in [
            "",
            "..",
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "a\\..\\b",
            "a\0b",
            "a\nb",
            "\\x2e\\x2e/x",
            "a\\x2fb",
            "a\\x00b",
            "x/.ferry-part.y",
        ] {
            assert_eq!(safe_components(hostile), None, "{hostile:?}");
        }
    }
}
