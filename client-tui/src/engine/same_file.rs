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

/// Refuses an upload of `local` to `remote` that would land on its own source.
pub(super) async fn check_upload(
    session: &mut Session,
    salt: &str,
    local: &Path,
    remote: &str,
) -> Result<Option<EngineError>, EngineError> {
    let (owned_salt, source) = (salt.to_owned(), local.to_owned());
    let Some(ours) = blocking(move || local_token(&owned_salt, &source)).await? else {
        return Ok(None);
    };
    let shown_local = crate::format::local_path(local);
    // The destination and each of its parents up to the root, asked all at once.
    let mut chain = vec![remote.to_owned()];
    while let Some(target) = chain.last().filter(|t| !t.is_empty()) {
        let parent = path::split_last(target).map_or_else(String::new, |(p, _)| p.to_owned());
        chain.push(parent);
    }
    let tokens = session.identities(&chain).await?;
    Ok(chain
        .iter()
        .zip(tokens)
        .find(|(_, theirs)| theirs.as_ref() == Some(&ours))
        .map(|(target, _)| refusal(&shown_local, &shown_local, remote, target != remote)))
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
