//! A sync's plan: both sides listed (one request for the remote one), compared, the files in
//! question settled by digests (one more request for the remote side, none per file), and
//! the guard rails checked before anything is changed: a source that is missing or cannot be
//! read is refused, and with `--delete` so are an empty source, a source the server could not
//! name whole, and more deletions than `--max-delete`, unless forced.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use ferry_protocol::{Digest, Kind};

use super::compare::{self, Action, Compare, Pending};
use super::filter::Filter;
use super::tree::{self, Side, Tree};
use crate::engine::endpoint::Endpoint;
use crate::engine::error::EngineError;
use crate::engine::job::blocking;
use crate::engine::session::Session;

/// What a sync is asked to do.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub compare: Compare,
    /// Delete what the destination has and the source does not.
    pub delete: bool,
    /// Refuse the whole run when it would delete more than this many entries.
    pub max_delete: Option<u64>,
    /// Delete even when the source is empty or could not be listed whole.
    pub force: bool,
    pub filter: Filter,
}

/// Why a sync does not start. Nothing has been changed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Refused by a guard rail or by what the sides are.
    #[error("{code}: {path}: {message}")]
    Refused {
        code: &'static str,
        path: String,
        message: String,
    },
}

fn refused(code: &'static str, path: String, message: impl Into<String>) -> SyncError {
    SyncError::Refused {
        code,
        path,
        message: message.into(),
    }
}

/// A sync's actions, in the order they are shown; run in the order `run` gives them.
#[derive(Debug, Clone)]
pub struct Plan {
    pub src: Side,
    pub dst: Side,
    pub actions: Vec<Action>,
}

/// Counts of a plan, for its closing line and `--json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub mkdir: u64,
    pub create: u64,
    pub update: u64,
    pub fix_time: u64,
    pub fix_mode: u64,
    pub delete: u64,
    pub skip: u64,
    /// Of the skips, those that are errors (unreadable, vanished, names, clashes).
    pub skip_errors: u64,
    /// Of the error skips, those that only vanished.
    pub skip_vanished: u64,
    /// Files to send, and their bytes.
    pub files: u64,
    pub bytes: u64,
}

impl Plan {
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for action in &self.actions {
            match action {
                Action::Mkdir { .. } => t.mkdir += 1,
                Action::Create { size, .. } => {
                    t.create += 1;
                    t.files += 1;
                    t.bytes += size;
                }
                Action::Update { size, .. } => {
                    t.update += 1;
                    t.files += 1;
                    t.bytes += size;
                }
                Action::FixTime { .. } => t.fix_time += 1,
                Action::FixMode { .. } => t.fix_mode += 1,
                Action::Delete { .. } => t.delete += 1,
                Action::Skip { reason, .. } => {
                    t.skip += 1;
                    if !reason.by_design() {
                        t.skip_errors += 1;
                        if *reason == compare::SkipReason::Vanished {
                            t.skip_vanished += 1;
                        }
                    }
                }
            }
        }
        t
    }
}

/// Lists both sides, compares them and checks the guard rails. `session` is on the server of
/// the remote side (exactly one side is remote).
pub async fn plan(
    session: &mut Session,
    src: Side,
    dst: Side,
    options: &SyncOptions,
) -> Result<Plan, SyncError> {
    plan_counting(session, src, dst, options, &Arc::new(AtomicU64::new(0))).await
}

/// [`plan`], counting in `seen` the entries listed on both sides so far.
async fn plan_counting(
    session: &mut Session,
    src: Side,
    dst: Side,
    options: &SyncOptions,
    seen: &Arc<AtomicU64>,
) -> Result<Plan, SyncError> {
    let digests_in_listing = options.compare == Compare::Checksum;
    // The local side is walked while the server walks the remote one.
    let (src_tree, dst_tree) = match (&src, &dst) {
        (Side::Local(_), _) => {
            let (local, remote) = tokio::join!(
                list(None, &src, false, seen),
                list(Some(&mut *session), &dst, digests_in_listing, seen)
            );
            (local?, remote?)
        }
        _ => {
            let (remote, local) = tokio::join!(
                list(Some(&mut *session), &src, digests_in_listing, seen),
                list(None, &dst, false, seen)
            );
            (remote?, local?)
        }
    };
    match src_tree.root {
        None => {
            return Err(refused(
                "not_found",
                src.shown(""),
                "the source does not exist",
            ));
        }
        Some(Kind::Dir) => {}
        Some(_) => {
            return Err(refused(
                "not_a_directory",
                src.shown(""),
                "a sync copies a directory: name the directory that holds the file",
            ));
        }
    }
    if dst_tree.root.is_some_and(|kind| kind != Kind::Dir) {
        return Err(refused(
            "not_a_directory",
            dst.shown(""),
            "the destination exists and is not a directory",
        ));
    }
    if options.delete && !options.force {
        guard_source(&src, &src_tree, &dst_tree)?;
    }
    let compared = compare::compare(
        &src_tree,
        &dst_tree,
        options.compare,
        &options.filter,
        options.delete,
    );
    let mut actions = compared.actions;
    let settled = settle(session, &src, &dst, compared.pending).await?;
    let settled_len = settled.len();
    // Settled files go before the deletions, which stay last.
    let first_delete = actions
        .iter()
        .position(|a| matches!(a, Action::Delete { .. }))
        .unwrap_or(actions.len());
    actions.splice(first_delete..first_delete, settled);
    // Shown in path order (parents first; a file's update before its mode), deletions last.
    actions[..first_delete + settled_len].sort_by(|a, b| a.rel().cmp(b.rel()));
    let plan = Plan { src, dst, actions };
    if let Some(max) = options.max_delete {
        let deletes = plan.totals().delete;
        if deletes > max {
            return Err(refused(
                "max_delete",
                plan.dst.shown(""),
                format!(
                    "the sync would delete {deletes} entries, more than --max-delete {max}: \
                     nothing was changed (look at them with --dry-run)"
                ),
            ));
        }
    }
    Ok(plan)
}

/// Two local or two remote sides are refused: a sync goes between this machine and a server.
pub fn one_remote_side(src: &Side, dst: &Side) -> Result<(), SyncError> {
    match (src, dst) {
        (Side::Local(_), Side::Local(_)) | (Side::Remote(_), Side::Remote(_)) => Err(refused(
            "bad_request",
            src.shown(""),
            "one side must be a ferry:// location and the other a local directory",
        )),
        _ => Ok(()),
    }
}

/// [`plan`] on a session of its own, for an owner that holds none (the TUI): one side must be
/// on `endpoint`'s server and the other local, refused as the CLI refuses them otherwise.
/// `seen` counts the entries listed so far, for the owner's progress display.
pub async fn plan_on(
    endpoint: &Endpoint,
    src: Side,
    dst: Side,
    options: &SyncOptions,
    seen: Arc<AtomicU64>,
) -> Result<Plan, SyncError> {
    one_remote_side(&src, &dst)?;
    let mut session = Session::connect(endpoint).await?;
    plan_counting(&mut session, src, dst, options, &seen).await
}

/// One plan line for people: the action, the path, and what it is about (`--dry-run`'s
/// lines, and the TUI's sync dialog's).
pub fn action_line(action: &Action) -> String {
    let detail = match action {
        Action::Mkdir { .. } | Action::Delete { .. } => String::new(),
        Action::Create { size, .. } => format!(" ({})", crate::format::size(*size)),
        Action::Update { size, why, .. } => {
            format!(" ({}, {})", why.as_str(), crate::format::size(*size))
        }
        Action::FixTime { mtime, .. } => format!(" (to {})", crate::format::mtime(*mtime)),
        Action::FixMode { mode, .. } => format!(" (to {mode:04o})"),
        Action::Skip {
            reason, message, ..
        } => format!(" ({}: {})", reason.as_str(), message),
    };
    let rel = match action.rel() {
        "" => ".",
        rel => rel,
    };
    crate::format::escape_text(&format!(
        "{:<8} {}{detail}",
        action.word(),
        crate::format::escape_name(rel)
    ))
    .into_owned()
}

/// With `--delete`: a source that holds nothing, or that could not be listed whole, looks
/// exactly like a failed mount or a lost connection, and a sync from it would wipe the
/// destination: refused unless forced.
fn guard_source(src: &Side, src_tree: &Tree, dst_tree: &Tree) -> Result<(), SyncError> {
    if src_tree.nodes.is_empty() && src_tree.unnamed.is_empty() && !dst_tree.nodes.is_empty() {
        return Err(refused(
            "empty_source",
            src.shown(""),
            format!(
                "the source is empty, so --delete would delete all {} entries of the \
                 destination; an unmounted disk or a failed mount looks exactly like this. \
                 Add --force if that is what you want",
                dst_tree.nodes.len()
            ),
        ));
    }
    if src_tree.hidden > 0 {
        return Err(refused(
            "unreadable_source",
            src.shown(""),
            format!(
                "the server left out {} entries of the source without naming them, so \
                 --delete could delete their copies; add --force to delete anyway (their \
                 copies are deleted too)",
                src_tree.hidden
            ),
        ));
    }
    Ok(())
}

/// Lists one side; `session` is for the remote one.
async fn list(
    session: Option<&mut Session>,
    side: &Side,
    digests: bool,
    seen: &Arc<AtomicU64>,
) -> Result<Tree, SyncError> {
    match side {
        Side::Remote(root) => {
            let session = session.ok_or_else(|| {
                refused(
                    "bad_request",
                    root.clone(),
                    "a sync has exactly one remote side",
                )
            })?;
            Ok(tree::list_remote(session, root, digests, seen).await?)
        }
        Side::Local(root) => {
            let (at, seen) = (root.clone(), Arc::clone(seen));
            let listed = blocking(move || tree::list_local(&at, &seen)).await?;
            listed.map_err(|e| {
                refused(
                    crate::engine::error::local_code(&e),
                    crate::format::local_path(root),
                    format!(
                        "cannot be listed: {}",
                        crate::engine::error::without_os_error(&e.to_string())
                    ),
                )
            })
        }
    }
}

/// Decides the files in question: the remote side's digests from its listing (`--checksum`)
/// or one `digests` request for exactly these files, the local side's hashed here.
async fn settle(
    session: &mut Session,
    src: &Side,
    dst: &Side,
    pending: Vec<Pending>,
) -> Result<Vec<Action>, EngineError> {
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let (remote_root, local_root, remote_is_src) = match (src, dst) {
        (Side::Remote(r), Side::Local(l)) => (r.clone(), l.clone(), true),
        (Side::Local(l), Side::Remote(r)) => (r.clone(), l.clone(), false),
        _ => {
            return Err(EngineError::Protocol(
                "a sync has exactly one remote side".into(),
            ));
        }
    };
    let remote_node = |p: &Pending| {
        if remote_is_src {
            p.src.clone()
        } else {
            p.dst.clone()
        }
    };
    let missing: Vec<String> = pending
        .iter()
        .filter(|p| remote_node(p).digest.is_none())
        .map(|p| p.rel.clone())
        .collect();
    let fetched = if missing.is_empty() {
        BTreeMap::new()
    } else {
        tree::remote_digests(session, &remote_root, &missing).await?
    };
    let local_files: Vec<(String, u64)> = pending
        .iter()
        .map(|p| {
            let node = if remote_is_src { &p.dst } else { &p.src };
            (p.rel.clone(), node.size)
        })
        .collect();
    let local_digests: Vec<Option<Digest>> =
        blocking(move || tree::hash_many(&local_root, &local_files)).await?;
    let mut actions = Vec::new();
    for (p, local) in pending.into_iter().zip(local_digests) {
        let remote = remote_node(&p)
            .digest
            .or_else(|| fetched.get(&p.rel).copied().flatten());
        let (s, d) = if remote_is_src {
            (remote, local)
        } else {
            (local, remote)
        };
        actions.extend(compare::settle(p, s, d));
    }
    Ok(actions)
}
