//! Removes hidden partial uploads that nobody has written for longer than the expiry: what
//! clients that never came back, or a server killed mid-upload, left behind.
//!
//! A partial is what lets an interrupted upload resume, so only old ones go: a partial's age is
//! its modification time, which every write refreshes, and one being written right now is
//! never removed however old (asked of [`Uploads`] under its lock, so no upload can start on it
//! between the check and the removal). The sweep runs when the server starts, then every
//! quarter of the expiry (at least every second, at most every hour), on the blocking pool.
//! It walks the server's root and each user root that lies outside it, without following
//! symlinks, through cap-std so nothing outside a root is ever reached, at most [`MAX_DEPTH`]
//! levels deep and [`MAX_ENTRIES`] entries per sweep. The walk is a loop over an explicit
//! stack, never recursion, so a tree of any depth costs bounded stack; its three descriptors
//! per level come from the server's budget, and a level the budget cannot give is left for
//! the next round.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cap_std::fs::{Dir, ReadDir};
use ferry_protocol::path::{is_partial_name, join};
use tokio_util::sync::CancellationToken;

use crate::descriptors::{self, Held};
use crate::root::{Root, wire_name};
use crate::state::ServerState;
use crate::uploads::{FileKey, Uploads};

/// Levels below the root a sweep descends, like `walk`; it also bounds open descriptors.
const MAX_DEPTH: usize = 128;
/// Directory entries one sweep looks at before it stops until the next round, so a huge tree
/// costs a bounded amount of work per round.
const MAX_ENTRIES: u64 = 1_000_000;
const MIN_INTERVAL: Duration = Duration::from_secs(1);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Swept {
    /// Expired partials removed.
    pub removed: u64,
    /// Expired partials left alone because an upload is writing them.
    pub active: u64,
    /// Partials that failed to be examined or removed.
    pub failed: u64,
    /// Entries looked at.
    pub entries: u64,
    /// Whether the sweep stopped early (entry cap, shutdown) instead of seeing the whole tree.
    pub partial: bool,
}

/// Sweeps at start and then periodically until the server shuts down; does nothing when the
/// configuration keeps partials forever.
pub(crate) async fn run(server: Arc<ServerState>) {
    // The server starts here: the descriptor budget is measured and logged now, before any
    // request asks for it.
    descriptors::init(server.config.max_connections);
    let Some(expiry) = server.config.partial_expiry else {
        return;
    };
    let interval = (expiry / 4).clamp(MIN_INTERVAL, MAX_INTERVAL);
    let roots = distinct_roots(&server);
    loop {
        for root in &roots {
            sweep_one(&server, root, expiry).await;
        }
        tokio::select! {
            () = server.shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// The server's root and every user root that does not lie inside a root already listed:
/// each tree is swept once.
fn distinct_roots(server: &ServerState) -> Vec<Arc<Root>> {
    let mut roots: Vec<Arc<Root>> = Vec::new();
    let mut candidates = vec![Arc::clone(&server.root)];
    if let Some(accounts) = &server.accounts {
        candidates.extend(accounts.roots().map(Arc::clone));
    }
    // Outer trees first, so a nested one is recognised as covered.
    candidates.sort_by_key(|root| root.key().len());
    for root in candidates {
        if !roots.iter().any(|outer| root.lies_within(outer)) {
            roots.push(root);
        }
    }
    roots
}

/// One sweep of one tree, logged.
async fn sweep_one(server: &ServerState, root: &Root, expiry: Duration) {
    let key = root.key();
    let dir = match root.clone_dir() {
        Ok(dir) => dir,
        Err(err) => {
            tracing::warn!(root = %key, %err, "cannot open a root to sweep partial uploads");
            return;
        }
    };
    let uploads = server.uploads.clone();
    let shutdown = server.shutdown.clone();
    let started = Instant::now();
    let swept = tokio::task::spawn_blocking({
        let key = Arc::clone(key);
        move || sweep(dir, &key, &uploads, expiry, SystemTime::now(), &shutdown)
    })
    .await;
    let took_ms = started.elapsed().as_millis();
    match swept {
        Ok(swept) if swept.removed > 0 || swept.failed > 0 => tracing::info!(
            root = %key,
            removed = swept.removed,
            active = swept.active,
            failed = swept.failed,
            entries = swept.entries,
            incomplete = swept.partial,
            took_ms,
            "swept stale partial uploads"
        ),
        Ok(swept) => tracing::debug!(
            root = %key,
            entries = swept.entries,
            active = swept.active,
            incomplete = swept.partial,
            took_ms,
            "no stale partial uploads"
        ),
        Err(err) => tracing::warn!(root = %key, %err, "the partial-upload sweep failed"),
    }
}

/// One directory being read, and its path relative to the root as the wire writes it.
#[derive(Debug)]
struct Level {
    dir: Dir,
    entries: ReadDir,
    prefix: String,
    _held: Held,
}

/// Descriptors one open level holds: the directory, and two for its reader (cap-std keeps one
/// to open entries by, rustix another to read from).
pub(crate) const PER_LEVEL: usize = 3;

/// Removes every partial under `root` last modified more than `expiry` before `now` that no
/// upload is writing; `key` is the root's canonical path, under which uploads are claimed.
pub(crate) fn sweep(
    root: Dir,
    key: &str,
    uploads: &Uploads,
    expiry: Duration,
    now: SystemTime,
    shutdown: &CancellationToken,
) -> Swept {
    let mut swept = Swept::default();
    let Ok(held) = descriptors::budget().take(PER_LEVEL) else {
        swept.partial = true;
        return swept;
    };
    let Ok(entries) = root.entries() else {
        swept.failed += 1;
        return swept;
    };
    let mut stack = vec![Level {
        dir: root,
        entries,
        prefix: String::new(),
        _held: held,
    }];
    loop {
        let depth = stack.len();
        let Some(level) = stack.last_mut() else {
            break;
        };
        if shutdown.is_cancelled() || swept.entries >= MAX_ENTRIES {
            swept.partial = true;
            break;
        }
        let item = match level.entries.next() {
            None | Some(Err(_)) => {
                stack.pop();
                continue;
            }
            Some(Ok(item)) => item,
        };
        swept.entries += 1;
        // The wire name, as uploads claim their partials by it; `raw` is the name on disk.
        let raw = item.file_name();
        let name = wire_name(&raw);
        // The type as the directory lists it: a symlink is a symlink, never what it points to.
        let Ok(kind) = item.file_type() else {
            continue;
        };
        if kind.is_dir() && !is_partial_name(&name) {
            if depth > MAX_DEPTH {
                continue;
            }
            let Ok(held) = descriptors::budget().take(PER_LEVEL) else {
                swept.partial = true;
                continue;
            };
            if let Ok(dir) = item.open_dir()
                && let Ok(entries) = dir.entries()
            {
                let prefix = join(&level.prefix, &name);
                stack.push(Level {
                    dir,
                    entries,
                    prefix,
                    _held: held,
                });
            }
            continue;
        }
        if !kind.is_file() || !is_partial_name(&name) {
            continue;
        }
        let expired = item
            .metadata()
            .and_then(|meta| meta.modified())
            .map(|mtime| {
                let mtime = mtime.into_std();
                now.duration_since(mtime).unwrap_or_default() > expiry
            });
        match expired {
            Ok(false) => {}
            Ok(true) => {
                let rel = join(&level.prefix, &name);
                let dir = &level.dir;
                let Ok(claimed_as) = FileKey::in_dir(dir, &name) else {
                    swept.failed += 1;
                    continue;
                };
                match uploads.remove_idle_partial(&claimed_as, || dir.remove_file(&raw)) {
                    None => swept.active += 1,
                    Some(Ok(())) => {
                        tracing::debug!(root = %key, partial = %rel, "removed a stale partial upload");
                        swept.removed += 1;
                    }
                    Some(Err(err)) => {
                        tracing::warn!(partial = %rel, %err, "cannot remove a stale partial upload");
                        swept.failed += 1;
                    }
                }
            }
            Err(_) => swept.failed += 1,
        }
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs::{self, File};
    use std::os::unix::fs::symlink;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn age(path: &std::path::Path, by: Duration) {
        let when = SystemTime::now() - by;
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    fn open(path: &std::path::Path) -> Dir {
        Dir::open_ambient_dir(path, cap_std::ambient_authority()).unwrap()
    }

    fn run_sweep(root: &std::path::Path, uploads: &Uploads) -> Swept {
        sweep(
            open(root),
            "/r",
            uploads,
            DAY,
            SystemTime::now(),
            &CancellationToken::new(),
        )
    }

    #[test]
    fn old_idle_partials_go_young_and_active_ones_stay() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("root");
        fs::create_dir_all(root.join("a/b")).unwrap();
        let old = root.join("a/b/.ferry-part.old.bin");
        let young = root.join("a/.ferry-part.young.bin");
        let busy = root.join(".ferry-part.busy.bin");
        let plain = root.join("a/old-but-final.bin");
        for path in [&old, &young, &busy, &plain] {
            fs::write(path, b"bytes").unwrap();
        }
        age(&old, DAY * 2);
        age(&busy, DAY * 2);
        age(&plain, DAY * 2);
        age(&young, DAY / 2);
        let uploads = Uploads::default();
        let owner = crate::uploads::Owner::shared();
        let target = FileKey::in_dir(&open(&root), "busy.bin").unwrap();
        let partial = owner.partial_name("busy.bin");
        let _writing = uploads.claim(target, partial, &owner).unwrap();

        let swept = run_sweep(&root, &uploads);
        assert_eq!((swept.removed, swept.active, swept.failed), (1, 1, 0));
        assert!(!swept.partial);
        assert!(!old.exists());
        assert!(young.exists() && busy.exists() && plain.exists());
    }

    #[test]
    fn symlinks_are_never_followed_out_of_the_root() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("root");
        let outside = base.path().join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        let victim = outside.join(".ferry-part.victim");
        fs::write(&victim, b"not ours").unwrap();
        age(&victim, DAY * 2);
        symlink(&outside, root.join("escape")).unwrap();
        symlink(&victim, root.join(".ferry-part.link")).unwrap();

        let swept = run_sweep(&root, &Uploads::default());
        assert_eq!(swept.removed, 0);
        assert!(victim.exists());
        assert!(fs::symlink_metadata(root.join(".ferry-part.link")).is_ok());
    }

    #[test]
    fn a_cancelled_sweep_stops_early() {
        let base = tempfile::tempdir().unwrap();
        let partial = base.path().join(".ferry-part.x");
        fs::write(&partial, b"x").unwrap();
        age(&partial, DAY * 2);
        let cancelled = CancellationToken::new();
        cancelled.cancel();
        let swept = sweep(
            open(base.path()),
            "/r",
            &Uploads::default(),
            DAY,
            SystemTime::now(),
            &cancelled,
        );
        assert!(swept.partial);
        assert!(partial.exists());
    }
}
