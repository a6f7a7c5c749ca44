//! Find file: the entries below a directory whose name matches a glob, searched on the server
//! (its `walk`, streamed, on a connection of its own so that browsing goes on meanwhile) or on
//! the local disk (a walk the caller runs on the blocking pool), and reported in batches as
//! they are found: the first match is on screen while the walk goes on.
//!
//! The caller stops a search by dropping it: aborting the remote task closes its connection,
//! and the local walk checks its stop flag between directories.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ferry_protocol::path;
use globset::{GlobBuilder, GlobMatcher};

use super::endpoint::Endpoint;
use super::session::Session;

/// Matches a search keeps: past this many it stops and says so, so a pattern like `*` over a
/// huge tree cannot fill the client's memory.
pub const MAX_FOUND: usize = 10_000;
/// How long connecting may take before the search says the server is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a search reports, in order: batches of matches, then one end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindEvent {
    /// New matches (paths relative to the searched directory, `/`-separated, each name in the
    /// name escape) and how many entries have been looked at so far.
    Found { paths: Vec<String>, scanned: u64 },
    /// The search ended: `Ok(true)` when it stopped at [`MAX_FOUND`], or why it failed.
    Done(Result<bool, String>),
}

/// The matcher for what the user typed: a glob (`*`, `?`, `[a-z]`, `{a,b}`) matched against
/// each entry's name, ignoring case; text with no glob character matches names that contain
/// it, as a search box would.
pub fn matcher(pattern: &str) -> Result<GlobMatcher, String> {
    let glob = if pattern.contains(['*', '?', '[', '{']) {
        pattern.to_owned()
    } else {
        format!("*{pattern}*")
    };
    GlobBuilder::new(&glob)
        .case_insensitive(true)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("bad pattern `{pattern}`: {}", e.kind()))
}

/// Whether the last name of the relative path `rel` matches.
fn matches(matcher: &GlobMatcher, rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    matcher.is_match(name)
}

/// Searches the server's `dir` for `pattern`, calling `report` with each event until it
/// returns `false` (nobody listens any more) or the search ends.
pub async fn remote(
    endpoint: Endpoint,
    dir: String,
    pattern: String,
    mut report: impl FnMut(FindEvent) -> bool + Send,
) {
    let end = search_remote(&endpoint, &dir, &pattern, &mut report).await;
    report(FindEvent::Done(end));
}

async fn search_remote(
    endpoint: &Endpoint,
    dir: &str,
    pattern: &str,
    report: &mut (impl FnMut(FindEvent) -> bool + Send),
) -> Result<bool, String> {
    let matcher = matcher(pattern)?;
    let mut session = tokio::time::timeout(CONNECT_TIMEOUT, Session::connect(endpoint))
        .await
        .map_err(|_| {
            format!(
                "no answer from {} in {} s",
                endpoint.address(),
                CONNECT_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| e.to_string())?;
    let mut stream = session.walk_stream(dir).await.map_err(|e| e.to_string())?;
    let mut found = 0;
    let mut scanned = 0u64;
    while let Some(batch) = stream.next_batch().await.map_err(|e| e.to_string())? {
        scanned += batch.len() as u64;
        let paths: Vec<String> = batch
            .into_iter()
            .filter(|e| matches(&matcher, &e.name))
            .map(|e| e.name)
            .take(MAX_FOUND - found)
            .collect();
        found += paths.len();
        if !report(FindEvent::Found { paths, scanned }) {
            return Ok(false);
        }
        if found >= MAX_FOUND {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Searches the local directory `dir` for `pattern` (blocking: run it on the blocking pool),
/// without following symlinks, until `stop` is set or `report` returns `false`.
pub fn local(
    dir: &Path,
    pattern: &str,
    stop: &Arc<AtomicBool>,
    mut report: impl FnMut(FindEvent) -> bool,
) {
    let end = search_local(dir, pattern, stop, &mut report);
    report(FindEvent::Done(end));
}

fn search_local(
    dir: &Path,
    pattern: &str,
    stop: &Arc<AtomicBool>,
    report: &mut impl FnMut(FindEvent) -> bool,
) -> Result<bool, String> {
    use std::os::unix::ffi::OsStrExt;
    let matcher = matcher(pattern)?;
    let mut found = 0;
    let mut scanned = 0u64;
    let mut full = false;
    super::local::walk_each(dir, |step| {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        // Links and special files are not walked into, but they are found by name too.
        let others = step.left_out.iter().filter_map(|(path, _, _)| {
            let rel = path.strip_prefix(dir).ok()?;
            Some(path::encode(rel.as_os_str().as_bytes()).into_owned())
        });
        let names: Vec<String> = step
            .dirs
            .into_iter()
            .map(|d| d.rel)
            .chain(step.files.into_iter().map(|f| f.rel))
            .chain(others)
            .collect();
        scanned += names.len() as u64;
        let mut paths: Vec<String> = names
            .into_iter()
            .filter(|rel| !rel.is_empty() && matches(&matcher, rel))
            .take(MAX_FOUND - found)
            .collect();
        paths.sort();
        found += paths.len();
        full = found >= MAX_FOUND;
        report(FindEvent::Found { paths, scanned }) && !full
    })
    .map_err(|e| {
        format!(
            "{}: {}",
            crate::format::local_path(dir),
            super::error::without_os_error(&e.to_string())
        )
    })?;
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_contained_and_globs_match_whole_names() {
        let plain = matcher("Port").unwrap();
        assert!(matches(&plain, "a/b/report.txt"));
        assert!(!matches(&plain, "port/x.txt"));
        let glob = matcher("*.{rs,toml}").unwrap();
        assert!(matches(&glob, "src/main.rs") && matches(&glob, "Cargo.TOML"));
        assert!(!matches(&glob, "main.rs.bak"));
        assert!(matcher("[z-a").is_err());
    }

    #[test]
    fn a_local_search_finds_names_at_every_depth_and_links_too() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/needle.txt"), b"x").unwrap();
        std::fs::write(dir.path().join("needle.md"), b"x").unwrap();
        std::fs::write(dir.path().join("hay.txt"), b"x").unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("needle-link")).unwrap();
        let mut found = Vec::new();
        let mut end = None;
        local(
            dir.path(),
            "needle*",
            &Arc::new(AtomicBool::new(false)),
            |event| {
                match event {
                    FindEvent::Found { paths, .. } => found.extend(paths),
                    FindEvent::Done(result) => end = Some(result),
                }
                true
            },
        );
        found.sort();
        assert_eq!(found, ["a/b/needle.txt", "needle-link", "needle.md"]);
        assert_eq!(end, Some(Ok(false)));
    }

    #[test]
    fn a_stopped_local_search_reads_no_further() {
        let dir = tempfile::tempdir().unwrap();
        for d in 0..5 {
            std::fs::create_dir(dir.path().join(format!("d{d}"))).unwrap();
            std::fs::write(dir.path().join(format!("d{d}/x.txt")), b"x").unwrap();
        }
        // The listener goes away after the first batch: the walk ends there.
        let mut batches = 0;
        local(
            dir.path(),
            "*.txt",
            &Arc::new(AtomicBool::new(false)),
            |event| {
                if let FindEvent::Found { .. } = event {
                    batches += 1;
                }
                false
            },
        );
        assert_eq!(batches, 1);
        // Stopped before the first directory is reported: nothing is.
        let mut found = 0;
        local(
            dir.path(),
            "*.txt",
            &Arc::new(AtomicBool::new(true)),
            |event| {
                if let FindEvent::Found { paths, .. } = event {
                    found += paths.len();
                }
                true
            },
        );
        assert_eq!(found, 0);
    }
}
