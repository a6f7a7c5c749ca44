//! The scripting commands over SFTP, when an ssh location's remote has no `ferry-server`:
//! `ls`, `get`, `put` (files and trees), `mkdir`, `rm`, `mv`, with the same meanings as over
//! the ferry protocol. A copy's summary says it was not verified by digest.

use std::io::Write;
use std::path::{Path, PathBuf};

use ferry_protocol::{Kind, path};
use futures_util::StreamExt;

use super::error::CliError;
use super::options::TransferOptions;
use super::outcome::print_json;
use crate::engine::sftp::{self, Sftp};
use crate::engine::{ConflictPolicy, EngineError};
use crate::url::RemoteUrl;

/// A command the SFTP fallback can run, its locations copied before the ferry attempt.
#[derive(Debug, Clone)]
pub enum Fallback {
    Ls {
        url: RemoteUrl,
        json: bool,
    },
    Get {
        urls: Vec<RemoteUrl>,
        local: PathBuf,
        options: TransferOptions,
    },
    Put {
        sources: Vec<PathBuf>,
        target: RemoteUrl,
        options: TransferOptions,
    },
    Mkdir {
        urls: Vec<RemoteUrl>,
    },
    Rm {
        urls: Vec<RemoteUrl>,
        recursive: bool,
    },
    Mv {
        url: RemoteUrl,
        to: String,
    },
}

impl Fallback {
    fn first(&self) -> Option<&RemoteUrl> {
        match self {
            Fallback::Ls { url, .. } | Fallback::Mv { url, .. } => Some(url),
            Fallback::Put { target, .. } => Some(target),
            Fallback::Get { urls, .. } | Fallback::Mkdir { urls } | Fallback::Rm { urls, .. } => {
                urls.first()
            }
        }
    }
}

/// The SFTP path of an ssh location: home-relative ones stay relative (the SFTP server starts
/// in the home), the others from `/`.
fn sftp_path(url: &RemoteUrl) -> Result<String, CliError> {
    let mut text = String::new();
    for name in path::components(&url.path).map_err(|e| bad_path(url, &e.to_string()))? {
        let raw = path::name_bytes(name).map_err(|e| bad_path(url, &e.to_string()))?;
        let name = std::str::from_utf8(&raw)
            .map_err(|_| bad_path(url, "SFTP names must be UTF-8 here"))?;
        text = sftp::join(&text, name);
    }
    let home = url.ssh.is_some_and(|via| via.home_relative);
    Ok(match (home, text.is_empty()) {
        (true, true) => ".".into(),
        (true, false) => text,
        (false, _) => format!("/{text}"),
    })
}

fn bad_path(url: &RemoteUrl, message: &str) -> CliError {
    CliError::Engine(EngineError::Remote {
        code: ferry_protocol::ErrorCode::BadPath,
        message: message.into(),
        path: url.to_string(),
    })
}

/// What a copy moved, for its summary, and how it treats an existing destination.
#[derive(Debug)]
struct Totals {
    files: u64,
    bytes: u64,
    policy: ConflictPolicy,
    json: bool,
    /// Files that failed: each is named as it fails, the tree copy goes on, and the command
    /// ends non-zero naming how many.
    failed: u64,
}

/// What to do with a destination that may exist: copy it, or leave it (`--skip-existing`).
/// Without `--overwrite` an existing file is never replaced; the policies that need a
/// digest or a second name (`--resume` of a finished file, `--rename`, `--update`) are refused.
fn settle(exists: bool, shown: &str, policy: ConflictPolicy) -> Result<bool, CliError> {
    if !exists {
        return Ok(true);
    }
    match policy {
        ConflictPolicy::Overwrite => Ok(true),
        ConflictPolicy::Skip => Ok(false),
        ConflictPolicy::Fail | ConflictPolicy::Ask => Err(EngineError::Refused {
            code: "already_exists",
            path: shown.into(),
            message: "exists: choose --overwrite or --skip-existing".into(),
        }
        .into()),
        _ => Err(EngineError::Refused {
            code: "unsupported",
            path: shown.into(),
            message: "exists, and over SFTP only --overwrite and --skip-existing apply".into(),
        }
        .into()),
    }
}

impl Totals {
    /// One file copied: counted, and with `--json` its line, marked not verified.
    fn done(&mut self, path: &str, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
        if self.json {
            print_json(&serde_json::json!({
                "type": "file", "path": path, "status": "done", "bytes": bytes,
                "verified": false, "transport": "sftp",
            }));
        }
    }

    /// One file copied, skipped by the policy, or failed: a failure is named (on stderr, and
    /// as a `--json` line) and counted, and the copy goes on with the next entry.
    fn settled(&mut self, path: &str, outcome: Result<Option<u64>, CliError>) {
        match outcome {
            Ok(Some(bytes)) => self.done(path, bytes),
            Ok(None) => {}
            Err(e) => {
                self.failed += 1;
                eprintln!("ferry: {e}");
                if self.json {
                    print_json(&serde_json::json!({
                        "type": "file", "path": path, "status": "failed",
                        "error": e.to_string(), "transport": "sftp",
                    }));
                }
            }
        }
    }

    /// An entry that is not copied by design (a symlink, a special file), named as the
    /// ferry protocol's copies name them.
    fn left_out(&self, path: &str, kind: Kind) {
        let why = if kind == Kind::Symlink {
            "a symlink: not followed"
        } else {
            "a special file: not copied"
        };
        eprintln!("ferry: left out: {path}: {why}");
        if self.json {
            print_json(&serde_json::json!({
                "type": "left_out", "path": path, "message": why, "transport": "sftp",
            }));
        }
    }
}

/// Runs `command` over SFTP; `verbose` says so on stderr first.
pub async fn run(command: Fallback, verbose: bool) -> Result<(), CliError> {
    let Some(first) = command.first() else {
        return Ok(());
    };
    let Some(target) = first.endpoint(None).ssh else {
        return Ok(());
    };
    if verbose {
        eprintln!(
            "ferry: no ferry-server on {}: falling back to SFTP (ssh -s {} sftp); copies are {}",
            target.label(),
            target.destination(),
            sftp::NOT_VERIFIED
        );
    }
    let session = Sftp::connect(&target).await?;
    let mut totals = Totals {
        files: 0,
        bytes: 0,
        policy: ConflictPolicy::Fail,
        json: false,
        failed: 0,
    };
    match command {
        Fallback::Ls { url, json } => return ls(&session, &url, json).await,
        Fallback::Mkdir { urls } => {
            for url in &urls {
                session.mkdir(&sftp_path(url)?, None).await?;
            }
            return Ok(());
        }
        Fallback::Rm { urls, recursive } => {
            for url in &urls {
                session.remove(&sftp_path(url)?, recursive).await?;
            }
            return Ok(());
        }
        Fallback::Mv { url, to } => {
            let from = sftp_path(&url)?;
            let to = if to.starts_with('/') {
                to
            } else {
                let parent = from.rsplit_once('/').map_or("", |(p, _)| p);
                sftp::join(parent, &to)
            };
            return session.rename(&from, &to).await.map_err(Into::into);
        }
        Fallback::Get {
            urls,
            local,
            options,
        } => {
            let recursive = options.recursive;
            totals.policy = options.policy;
            totals.json = options.json;
            let into = local.is_dir() || urls.len() > 1;
            for url in &urls {
                let from = sftp_path(url)?;
                let entry = session.stat(&from).await?;
                let name = super::locations::base_name(&url.path);
                let to = if into {
                    sftp::local_child(&local, if name.is_empty() { "root" } else { name })?
                } else {
                    local.clone()
                };
                let copied = copy_down(&session, &from, entry.kind, &to, recursive, 0, &mut totals);
                if let Err(e) = copied.await {
                    totals.settled(&from, Err(e));
                }
            }
        }
        Fallback::Put {
            sources,
            target,
            options,
        } => {
            let recursive = options.recursive;
            totals.policy = options.policy;
            totals.json = options.json;
            let to = sftp_path(&target)?;
            let into = options.dir_target
                || sources.len() > 1
                || session.stat(&to).await.is_ok_and(|e| e.kind == Kind::Dir);
            for source in &sources {
                let dest = if into {
                    let name = source
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    sftp::join(&to, &name)
                } else {
                    to.clone()
                };
                if let Err(e) = copy_up(&session, source, &dest, recursive, 0, &mut totals).await {
                    totals.settled(&dest, Err(e));
                }
            }
        }
    }
    if totals.json {
        print_json(&serde_json::json!({
            "type": "summary", "files": totals.files, "bytes": totals.bytes,
            "transport": "sftp", "verified": false, "reason": sftp::NOT_VERIFIED,
        }));
    }
    eprintln!(
        "ferry: {} ({}) over sftp, {}",
        crate::format::counted(totals.files, "file", "files"),
        humansize::format_size(totals.bytes, humansize::BINARY),
        sftp::NOT_VERIFIED
    );
    if totals.failed > 0 {
        return Err(CliError::Job(format!(
            "{} not copied (each named above)",
            crate::format::counted(totals.failed, "entry", "entries")
        )));
    }
    Ok(())
}

async fn ls(session: &Sftp, url: &RemoteUrl, json: bool) -> Result<(), CliError> {
    let at = sftp_path(url)?;
    let entry = session.stat(&at).await?;
    let (mut entries, refused) = if entry.kind == Kind::Dir {
        session.list(&at).await?
    } else {
        (vec![entry], Vec::new())
    };
    for e in &refused {
        eprintln!("ferry: {e}");
    }
    entries.sort_by(|a, b| {
        (b.kind == Kind::Dir)
            .cmp(&(a.kind == Kind::Dir))
            .then(a.name.cmp(&b.name))
    });
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for e in &entries {
        if json {
            let line = serde_json::to_string(e).map_err(|e| CliError::Job(e.to_string()))?;
            writeln!(out, "{line}").map_err(CliError::Output)?;
        } else {
            writeln!(out, "{}", super::format_entry(e)).map_err(CliError::Output)?;
        }
    }
    out.flush().map_err(CliError::Output)?;
    if refused.is_empty() {
        Ok(())
    } else {
        Err(CliError::Job(format!(
            "{} refused",
            crate::format::counted(refused.len() as u64, "name", "names")
        )))
    }
}

fn too_deep(at: &str) -> CliError {
    CliError::Engine(EngineError::Remote {
        code: ferry_protocol::ErrorCode::TooLarge,
        message: format!("deeper than {} levels", sftp::MAX_DEPTH),
        path: at.into(),
    })
}

fn needs_recursive(at: &str) -> CliError {
    CliError::Engine(EngineError::Remote {
        code: ferry_protocol::ErrorCode::IsADirectory,
        message: "a directory: copy it with -r".into(),
        path: at.into(),
    })
}

async fn copy_down(
    session: &Sftp,
    from: &str,
    kind: Kind,
    to: &Path,
    recursive: bool,
    depth: usize,
    totals: &mut Totals,
) -> Result<(), CliError> {
    if depth > sftp::MAX_DEPTH {
        return Err(too_deep(from));
    }
    match kind {
        Kind::File => {
            let got = get_one(session, from, to, totals.policy).await;
            totals.settled(from, got);
        }
        Kind::Dir if !recursive => return Err(needs_recursive(from)),
        Kind::Dir => {
            match std::fs::create_dir(to) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && to.is_dir() => {}
                Err(e) => return Err(EngineError::local(to.to_path_buf(), e).into()),
            }
            let (entries, refused) = session.list(from).await?;
            for e in &refused {
                eprintln!("ferry: {e}");
            }
            let mut files = Vec::new();
            let mut others = Vec::new();
            for entry in entries {
                let child = sftp::local_child(to, &entry.name)?;
                let remote = sftp::join(
                    from,
                    std::str::from_utf8(&path::name_bytes(&entry.name).unwrap_or_default())
                        .unwrap_or(&entry.name),
                );
                if entry.kind == Kind::File {
                    files.push((remote, child));
                } else {
                    others.push((remote, child, entry.kind));
                }
            }
            let policy = totals.policy;
            let results: Vec<_> =
                futures_util::stream::iter(files.into_iter().map(|(remote, child)| async move {
                    let got = get_one(session, &remote, &child, policy).await;
                    (remote, got)
                }))
                .buffered(sftp::FILES_AT_ONCE)
                .collect()
                .await;
            for (remote, got) in results {
                totals.settled(&remote, got);
            }
            for (remote, child, kind) in others {
                let copied = Box::pin(copy_down(
                    session,
                    &remote,
                    kind,
                    &child,
                    true,
                    depth + 1,
                    totals,
                ))
                .await;
                if let Err(e) = copied {
                    totals.settled(&remote, Err(e));
                }
            }
            if !refused.is_empty() {
                return Err(CliError::Job(format!(
                    "{} refused",
                    crate::format::counted(refused.len() as u64, "name", "names")
                )));
            }
        }
        // Symlinks and special files are not copied, as over the ferry protocol: named.
        Kind::Symlink | Kind::Other => totals.left_out(from, kind),
    }
    Ok(())
}

async fn copy_up(
    session: &Sftp,
    from: &Path,
    to: &str,
    recursive: bool,
    depth: usize,
    totals: &mut Totals,
) -> Result<(), CliError> {
    if depth > sftp::MAX_DEPTH {
        return Err(too_deep(to));
    }
    let meta =
        std::fs::symlink_metadata(from).map_err(|e| EngineError::local(from.to_path_buf(), e))?;
    if meta.is_file() {
        let put = put_one(session, from, to, totals.policy, false).await;
        totals.settled(to, put);
    } else if meta.is_dir() {
        if !recursive {
            return Err(needs_recursive(&from.to_string_lossy()));
        }
        // In a directory this command just made nothing can be in the way: no stat per file.
        let fresh = session.stat(to).await.map_or(true, |e| e.kind != Kind::Dir);
        if fresh {
            use std::os::unix::fs::PermissionsExt;
            session
                .mkdir(to, Some(meta.permissions().mode() & 0o777))
                .await?;
        }
        let mut children: Vec<PathBuf> = std::fs::read_dir(from)
            .map_err(|e| EngineError::local(from.to_path_buf(), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        children.sort();
        let (files, others): (Vec<_>, Vec<_>) = children
            .into_iter()
            .map(|child| {
                let name = child
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let remote = sftp::join(to, &name);
                (child, remote)
            })
            .partition(|(child, _)| std::fs::symlink_metadata(child).is_ok_and(|m| m.is_file()));
        let policy = totals.policy;
        let results: Vec<_> =
            futures_util::stream::iter(files.into_iter().map(|(child, remote)| async move {
                let put = put_one(session, &child, &remote, policy, fresh).await;
                (remote, put)
            }))
            .buffered(sftp::FILES_AT_ONCE)
            .collect()
            .await;
        for (remote, put) in results {
            totals.settled(&remote, put);
        }
        for (child, remote) in others {
            let copied = Box::pin(copy_up(session, &child, &remote, true, depth + 1, totals));
            if let Err(e) = copied.await {
                totals.settled(&remote, Err(e));
            }
        }
    } else {
        let kind = if meta.file_type().is_symlink() {
            Kind::Symlink
        } else {
            Kind::Other
        };
        totals.left_out(&crate::format::local_path(from), kind);
    }
    Ok(())
}

/// Downloads one file unless its destination exists and the policy keeps it; the bytes
/// received, or `None` when skipped.
async fn get_one(
    session: &Sftp,
    from: &str,
    to: &Path,
    policy: ConflictPolicy,
) -> Result<Option<u64>, CliError> {
    let exists = std::fs::symlink_metadata(to).is_ok();
    if !settle(exists, &crate::format::local_path(to), policy)? {
        return Ok(None);
    }
    Ok(Some(session.get_file(from, to, &mut |_| {}).await?))
}

/// Uploads one file unless its destination exists and the policy keeps it; `fresh` when its
/// directory was just made.
async fn put_one(
    session: &Sftp,
    from: &Path,
    to: &str,
    policy: ConflictPolicy,
    fresh: bool,
) -> Result<Option<u64>, CliError> {
    let exists = !fresh && session.stat(to).await.is_ok();
    if !settle(exists, to, policy)? {
        return Ok(None);
    }
    Ok(Some(session.put_file(from, to, &mut |_| {}).await?))
}
