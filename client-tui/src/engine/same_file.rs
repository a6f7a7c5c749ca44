//! Refusing to copy or move anything onto itself. A server on this very machine (the bundled
//! one serves `$HOME`; a loopback one may serve any directory) can show a file under a remote
//! path that is also one of our local paths: an overwrite would read the file while replacing
//! it, and a move would then delete the only copy. The server's `hello` says which kernel it
//! runs on as a salted token; when it is ours, `stat` with `identity` gives each remote file's
//! token, which we compute for our own paths the same way and compare before any destination
//! is opened.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use ferry_protocol::{ErrorCode, path};

use super::error::EngineError;
use super::job::{Job, Task, blocking};
use super::session::{Session, boot_id};

/// The identity token of the local file `path` leads to (links followed), under `salt`.
pub(super) fn local_token(salt: &str, path: &Path) -> Option<String> {
    let boot = boot_id()?;
    let meta = std::fs::metadata(path).ok()?;
    Some(ferry_protocol::file_token(
        salt,
        boot,
        meta.dev(),
        meta.ino(),
    ))
}

/// The refusal of an item whose source and destination are one file or one tree.
pub(super) fn refusal(path: &str, source: &str, dest: &str, into: bool) -> EngineError {
    let message = if into {
        format!(
            "{dest} is inside {source} (the server shares this machine's files): a directory \
             cannot be copied into itself; nothing was copied or removed"
        )
    } else {
        format!(
            "{source} and {dest} are the same file (the server shares this machine's files); \
             nothing was copied or removed"
        )
    };
    EngineError::Remote {
        code: ErrorCode::SameFile,
        message,
        path: path.to_owned(),
    }
}

/// A local path and its existing ancestors (resolved, nearest first) with their tokens: the
/// path itself first when it exists.
fn local_chain(salt: &str, dest: &Path) -> Vec<(bool, String)> {
    let absolute = std::path::absolute(dest).unwrap_or_else(|_| dest.to_owned());
    let mut chain = Vec::new();
    if let Some(token) = local_token(salt, &absolute) {
        chain.push((true, token));
    }
    let mut ancestor = absolute.parent().map(Path::to_path_buf);
    // The nearest existing ancestor, resolved, so `..` and links above lead where the kernel
    // would go.
    while let Some(dir) = ancestor.take() {
        if let Ok(real) = std::fs::canonicalize(&dir) {
            ancestor = Some(real);
            break;
        }
        ancestor = dir.parent().map(Path::to_path_buf);
    }
    let mut next = ancestor;
    while let Some(dir) = next {
        if let Some(token) = local_token(salt, &dir) {
            chain.push((false, token));
        }
        next = dir.parent().map(Path::to_path_buf);
    }
    chain
}

/// The identity token of what `remote` leads to; `None` when the server gives none or refuses
/// the path (missing, a link out of the root, no permission): such a path cannot be one of our
/// files as far as the server lets anyone see, and the transfer meets the same refusal itself.
async fn remote_token(session: &mut Session, remote: &str) -> Result<Option<String>, EngineError> {
    match session.stat_identity(remote).await {
        Ok(found) => Ok(found.and_then(|(_, id)| id)),
        Err(EngineError::Remote { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Refuses a download of `remote` to `local` that would land on its own source: the same file,
/// or a directory below itself.
pub(super) async fn check_download(
    session: &mut Session,
    salt: &str,
    remote: &str,
    local: &Path,
) -> Result<Option<EngineError>, EngineError> {
    let Some(theirs) = remote_token(session, remote).await? else {
        return Ok(None);
    };
    let (salt, dest) = (salt.to_owned(), local.to_owned());
    let chain = blocking(move || local_chain(&salt, &dest)).await?;
    let shown_local = crate::format::local_path(local);
    Ok(chain
        .iter()
        .find(|(_, token)| *token == theirs)
        .map(|(itself, _)| refusal(remote, remote, &shown_local, !itself)))
}

/// Refuses each upload of `local` to `remote` (in `items`) that would land on its own source:
/// `Some(refusal)` for such an item, in order. The local tokens are read in one blocking call
/// and every destination with each of its parents up to the root is asked in one pipelined
/// round, however many items there are (a sync's job has one per file).
pub(super) async fn check_uploads(
    session: &mut Session,
    salt: &str,
    items: &[(std::path::PathBuf, String)],
) -> Result<Vec<Option<EngineError>>, EngineError> {
    let (owned_salt, sources) = (
        salt.to_owned(),
        items.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>(),
    );
    let ours: Vec<Option<String>> = blocking(move || {
        sources
            .iter()
            .map(|source| local_token(&owned_salt, source))
            .collect()
    })
    .await?;
    // Each destination's chain, the destination first; asked once per distinct path.
    let chains: Vec<Vec<String>> = items
        .iter()
        .map(|(_, remote)| {
            let mut chain = vec![remote.clone()];
            while let Some(target) = chain.last().filter(|t| !t.is_empty()) {
                let parent =
                    path::split_last(target).map_or_else(String::new, |(p, _)| p.to_owned());
                chain.push(parent);
            }
            chain
        })
        .collect();
    let mut asked: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (chain, token) in chains.iter().zip(&ours) {
        if token.is_some() {
            asked.extend(chain.iter().filter(|p| seen.insert(p.as_str())).cloned());
        }
    }
    let tokens: std::collections::HashMap<String, Option<String>> = if asked.is_empty() {
        Default::default()
    } else {
        let answers = session.identities(&asked).await?;
        asked.into_iter().zip(answers).collect()
    };
    Ok(items
        .iter()
        .zip(chains)
        .zip(ours)
        .map(|(((local, remote), chain), ours)| {
            let ours = ours?;
            let target = chain
                .iter()
                .find(|t| tokens.get(*t).and_then(Option::as_ref) == Some(&ours))?;
            let shown_local = crate::format::local_path(local);
            Some(refusal(
                &shown_local,
                &shown_local,
                remote,
                target != remote,
            ))
        })
        .collect())
}

/// Whether `task`'s destination is its own source, asked (on the worker's control
/// connection) only when the server shares this machine: such a file is refused before its
/// destination is opened.
pub(super) async fn onto_itself(
    job: &Job,
    control: &mut Option<Session>,
    task: &Task,
) -> Result<bool, EngineError> {
    let Some(salt) = job.machine.get() else {
        return Ok(false);
    };
    let session = job.control_session(control).await?;
    let Some(theirs) = remote_token(session, &task.remote).await? else {
        return Ok(false);
    };
    let (salt, path) = (salt.clone(), task.local.clone());
    Ok(blocking(move || local_token(&salt, &path)).await? == Some(theirs))
}
