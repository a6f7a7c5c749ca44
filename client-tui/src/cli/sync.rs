//! `ferry sync SRC DST`: one local directory and one remote one, either way round. The plan
//! (`engine::sync`) is printed with `--dry-run`, one line per action and the totals (or one
//! JSON object per line); otherwise it is carried out: directories, then the files to send as
//! one engine job watched like a `get` or `put` (`watch::run_job`), then the attributes fixed
//! and, only once every transfer is verified, the deletions. Every entry not handled is named
//! with why, and the exit status says so (1 failed, 23 entries not synced, 24 only vanished).

use std::time::Duration;

use serde_json::json;

use super::error::{CliError, usage};
use super::options::TransferOptions;
use super::outcome::{EXIT_PARTIAL, EXIT_VANISHED, print_json};
use super::watch::{Refused, run_job};
use crate::engine::sync::{self, Action, Plan, Side, SyncError, SyncOptions, Totals, action_line};
use crate::engine::{ConflictPolicy, Endpoint, Groundwork, Session};

/// How `ferry sync` runs, besides what the plan compares.
#[derive(Debug, Clone, Copy)]
pub struct SyncRun {
    pub dry_run: bool,
    pub json: bool,
    /// Connections the transfer uses.
    pub jobs: usize,
    /// `--watch`: after the first sync, sync again whenever the source changes (a local one's
    /// events, debounced; a remote one polled at this interval, which is also the wait before
    /// a failed sync is tried again).
    pub watch: Option<Duration>,
}

/// How long a local source must be quiet after a change before `--watch` syncs it: an editor
/// saving, a build writing many files, arrive as one sync.
const SETTLE: Duration = Duration::from_millis(300);

/// Syncs `src` to `dst` (exactly one of them on the server of `endpoint`); with `--watch`,
/// again and again until interrupted.
pub async fn sync(
    endpoint: &Endpoint,
    src: Side,
    dst: Side,
    options: &SyncOptions,
    run: SyncRun,
) -> Result<(), CliError> {
    sync::one_remote_side(&src, &dst).map_err(refusal)?;
    let Some(interval) = run.watch else {
        return sync_once(endpoint, src, dst, options, run).await;
    };
    let mut changes = match &src {
        Side::Local(root) => Some(LocalChanges::start(root)?),
        Side::Remote(_) => None,
    };
    loop {
        let failed = match sync_once(endpoint, src.clone(), dst.clone(), options, run).await {
            Ok(()) => false,
            Err(CliError::Job(message)) if message == "cancelled" => {
                return Err(CliError::Job(message));
            }
            Err(e) => {
                if !e.already_reported() {
                    eprintln!("ferry: {}", e.shown());
                }
                eprintln!(
                    "ferry: watching: the sync did not finish; trying again in {:.1} s or at \
                     the next change",
                    interval.as_secs_f64()
                );
                true
            }
        };
        tokio::select! {
            () = next_change(changes.as_mut(), interval, failed) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Waits for a reason to sync again: for a local source, a change followed by [`SETTLE`] of
/// quiet (or, after a failed sync, the interval); for a remote one, the interval.
async fn next_change(changes: Option<&mut LocalChanges>, interval: Duration, failed: bool) {
    let Some(changes) = changes else {
        tokio::time::sleep(interval).await;
        return;
    };
    tokio::select! {
        changed = changes.rx.recv() => {
            if changed.is_none() {
                // The watcher is gone: fall back to the interval.
                tokio::time::sleep(interval).await;
                return;
            }
            while let Ok(Some(())) = tokio::time::timeout(SETTLE, changes.rx.recv()).await {}
        }
        () = tokio::time::sleep(interval), if failed => {}
    }
}

/// A local source watched through inotify (the `notify` crate), recursively. Events only say
/// that something changed: at most one waits, so a storm of them costs no memory.
struct LocalChanges {
    rx: tokio::sync::mpsc::Receiver<()>,
    _watcher: notify::RecommendedWatcher,
}

impl LocalChanges {
    fn start(root: &std::path::Path) -> Result<Self, CliError> {
        use notify::Watcher;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // Reads (ours among them) change nothing.
                if event.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
                    let _ = tx.try_send(());
                }
            })
            .map_err(|e| watch_error(root, &e))?;
        watcher
            .watch(root, notify::RecursiveMode::Recursive)
            .map_err(|e| watch_error(root, &e))?;
        Ok(Self {
            rx,
            _watcher: watcher,
        })
    }
}

fn watch_error(root: &std::path::Path, error: &notify::Error) -> CliError {
    usage(
        "io",
        crate::format::local_path(root),
        format!("cannot watch it for changes: {error}"),
    )
}

/// One sync, from the listing to the last deletion.
async fn sync_once(
    endpoint: &Endpoint,
    src: Side,
    dst: Side,
    options: &SyncOptions,
    run: SyncRun,
) -> Result<(), CliError> {
    let mut session = Session::connect(endpoint).await?;
    let plan = sync::plan(&mut session, src, dst, options)
        .await
        .map_err(refusal)?;
    let totals = plan.totals();
    if run.dry_run || run.json {
        for action in &plan.actions {
            if run.json {
                print_json(&action_json(action));
            } else {
                println!("{}", action_line(action));
            }
        }
        if run.json {
            print_json(&totals_json(&totals));
        } else {
            println!("{}", totals_line(&totals));
        }
    } else {
        // Entries left out are named even when the plan is not shown.
        for action in &plan.actions {
            if let Action::Skip {
                rel,
                reason,
                message,
            } = action
                && *reason != sync::SkipReason::Excluded
            {
                eprintln!(
                    "ferry: {}: {}: {}",
                    reason.as_str(),
                    crate::format::escape_name(rel),
                    crate::format::escape_text(message)
                );
            }
        }
    }
    if run.dry_run {
        return skipped_status(&totals);
    }
    execute(endpoint, session, &plan, &totals, run).await
}

fn refusal(e: SyncError) -> CliError {
    match e {
        SyncError::Engine(e) => CliError::Engine(e),
        SyncError::Refused {
            code,
            path,
            message,
        } => usage(code, path, message),
    }
}

/// Carries out the plan.
async fn execute(
    endpoint: &Endpoint,
    mut session: Session,
    plan: &Plan,
    totals: &Totals,
    run: SyncRun,
) -> Result<(), CliError> {
    let mut failed = 0u64;
    let made = sync::make_dirs(&mut session, plan).await?;
    failed += report(&made, run.json);
    let (job_ok, job_error) = match sync::transfer_job(plan) {
        None => (true, None),
        Some((spec, stats)) => {
            let mut options = TransferOptions::new(false, ConflictPolicy::Overwrite, run.jobs);
            options.json = run.json;
            let refused = Refused {
                json: run.json,
                ..Refused::default()
            };
            let groundwork = Groundwork { session, stats };
            // `single_file`: a re-run of the same sync finishes the job, no flag needed.
            let outcome = run_job(endpoint, spec, options, true, refused, groundwork).await;
            let ended = match outcome {
                Ok(_) => (true, None),
                // Only entries left out (a source file vanished): everything sent is
                // verified, so the deletions may go on.
                Err(CliError::Partial { status, .. }) => (true, Some(status)),
                // Cancelled, or the job could not run: nothing more is done.
                Err(e @ CliError::Job(_)) => return Err(e),
                Err(e) => (false, Some(e.exit_code())),
            };
            // The job took the session; the steps after it get a new one.
            session = Session::connect(endpoint).await?;
            ended
        }
    };
    let finished = sync::finish(&mut session, plan, job_ok && failed == 0).await?;
    failed += report(&finished.outcomes, run.json);
    if finished.deletes_held > 0 {
        eprintln!(
            "ferry: not deleted: {} entr{} of the destination, because not every transfer \
             was verified; re-run the sync to finish",
            finished.deletes_held,
            if finished.deletes_held == 1 {
                "y"
            } else {
                "ies"
            }
        );
    }
    let job_failed = !job_ok;
    let status = if failed > 0 || job_failed {
        1
    } else {
        let skipped = skipped_status(totals).err().map_or(0, |e| e.exit_code());
        skipped.max(job_error.unwrap_or(0))
    };
    if run.json {
        print_json(&json!({
            "type": "sync",
            "failed": failed,
            "transfers_ok": job_ok,
            "deletes_held": finished.deletes_held,
            "exit": status,
        }));
    }
    match status {
        0 => Ok(()),
        1 if failed > 0 => Err(CliError::Reported { failed }),
        1 => Err(CliError::Reported { failed: 0 }),
        status => Err(CliError::Partial {
            count: totals.skip_errors,
            status,
        }),
    }
}

/// Prints the failed outcomes (and with `--json` every one); how many failed.
fn report(outcomes: &[sync::Outcome], json: bool) -> u64 {
    let mut failed = 0;
    for outcome in outcomes {
        if let Err(e) = &outcome.result {
            failed += 1;
            eprintln!("ferry: {}", crate::format::escape_text(&e.to_string()));
        }
        if json {
            print_json(&json!({
                "type": "step",
                "action": outcome.word,
                "path": outcome.rel,
                "status": if outcome.result.is_ok() { "done" } else { "failed" },
                "error": outcome.result.as_ref().err().map(ToString::to_string),
            }));
        }
    }
    failed
}

/// The exit status the plan's skipped entries call for: 23 for entries that could not be
/// read, named or placed, 24 when they only vanished, none for excluded entries, links and
/// special files.
fn skipped_status(totals: &Totals) -> Result<(), CliError> {
    let status = if totals.skip_errors > totals.skip_vanished {
        EXIT_PARTIAL
    } else if totals.skip_errors > 0 {
        EXIT_VANISHED
    } else {
        return Ok(());
    };
    Err(CliError::Partial {
        count: totals.skip_errors,
        status,
    })
}

/// The closing line of a plan.
fn totals_line(t: &Totals) -> String {
    format!(
        "plan: {} to create, {} to update, {} mtime(s) to fix, {} mode(s) to fix, {} to \
         delete, {} director{} to make, {} skipped; {} file(s) to send, {}",
        t.create,
        t.update,
        t.fix_time,
        t.fix_mode,
        t.delete,
        t.mkdir,
        if t.mkdir == 1 { "y" } else { "ies" },
        t.skip,
        t.files,
        crate::format::size(t.bytes)
    )
}

fn action_json(action: &Action) -> serde_json::Value {
    let mut value = json!({
        "type": "action",
        "action": action.word(),
        "path": action.rel(),
    });
    let extra = match action {
        Action::Mkdir { mode, .. } => json!({"mode": mode}),
        Action::Create {
            size, mtime, mode, ..
        } => json!({"size": size, "mtime": mtime, "mode": mode}),
        Action::Update {
            size,
            mtime,
            mode,
            why,
            ..
        } => json!({"size": size, "mtime": mtime, "mode": mode, "why": why.as_str()}),
        Action::FixTime { mtime, .. } => json!({"mtime": mtime}),
        Action::FixMode { mode, kind, .. } => json!({"mode": mode, "kind": kind}),
        Action::Delete { kind, .. } => json!({"kind": kind}),
        Action::Skip {
            reason, message, ..
        } => json!({"reason": reason.as_str(), "message": message}),
    };
    if let (Some(into), serde_json::Value::Object(extra)) = (value.as_object_mut(), extra) {
        into.extend(extra);
    }
    value
}

fn totals_json(t: &Totals) -> serde_json::Value {
    json!({
        "type": "plan",
        "mkdir": t.mkdir,
        "create": t.create,
        "update": t.update,
        "fix_time": t.fix_time,
        "fix_mode": t.fix_mode,
        "delete": t.delete,
        "skip": t.skip,
        "files": t.files,
        "bytes": t.bytes,
    })
}
