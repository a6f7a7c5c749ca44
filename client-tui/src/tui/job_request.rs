//! A copy or move of a pane's entries into the other pane, said twice: in the engine's terms
//! (a [`JobSpec`] of source and destination pairs) and in the transfer list's (a [`JobInfo`]
//! with the directories and keys the list refreshes and ticks when the job ends).

use std::path::PathBuf;

use crate::engine::{ConflictPolicy, Endpoint, JobSpec};
use crate::format;

use super::jobs::JobInfo;
use super::pane::{Location, Pane};

/// The job that copies (or with `is_move`, moves) `names` from `src_pane` into `dest_dir` (a
/// directory on the other side: the other pane's, one typed in the copy dialog, or a folder a
/// drag was dropped on) with `policy` for destinations that exist; without `names`, the source
/// pane's selection. `None` when there is nothing to copy.
pub fn request_into(
    src_pane: &Pane,
    dest_dir: Location,
    is_move: bool,
    names: Option<Vec<String>>,
    policy: ConflictPolicy,
) -> Option<(JobSpec, JobInfo)> {
    let names = names.unwrap_or_else(|| {
        src_pane
            .selection()
            .iter()
            .map(|e| e.name.clone())
            .collect()
    });
    if names.is_empty() {
        return None;
    }
    let dest = src_pane.side.other();
    let src_dir = src_pane.dir.clone();
    let pairs: Vec<(Location, Location)> = names
        .iter()
        .map(|n| (src_dir.join(n), dest_dir.join(n)))
        .collect();
    // What each pane shows decides the job, not its side of the screen.
    let spec = match (&src_dir, &dest_dir) {
        (Location::Local(_), Location::Remote(_)) => JobSpec::Upload {
            items: pairs
                .iter()
                .filter_map(|(s, d)| Some((local(s)?, remote(d)?)))
                .collect(),
            policy,
            remove_source: is_move,
        },
        (Location::Remote(_), Location::Local(_)) => JobSpec::Download {
            items: pairs
                .iter()
                .filter_map(|(s, d)| Some((remote(s)?, local(d)?)))
                .collect(),
            policy,
            remove_source: is_move,
        },
        // Two directories on servers: one server copies itself, two stream through memory.
        // Their endpoints are the panes' connections', known where the job is submitted
        // ([`bind`]).
        (Location::Remote(_), Location::Remote(_)) => JobSpec::Relay {
            from: Box::default(),
            to: Box::default(),
            items: pairs
                .iter()
                .filter_map(|(s, d)| Some((remote(s)?, remote(d)?)))
                .collect(),
            policy: ConflictPolicy::Ask,
            remove_source: is_move,
        },
        (Location::Local(_), Location::Local(_)) => return None,
    };
    let label = match names.as_slice() {
        [one] => format::escape_name(one).into_owned(),
        many => format!("{} items", format::count(many.len() as u64)),
    };
    let info = JobInfo {
        dest,
        src_dir,
        dest_dir,
        items: pairs.iter().map(|(s, d)| (s.key(), d.key())).collect(),
        is_move,
        label,
    };
    Some((spec, info))
}

/// `spec` bound to the connections of its two panes: a copy between two servers' directories
/// (or two of one server) runs from `from` to `to`.
pub fn bind(spec: JobSpec, from: &Endpoint, to: &Endpoint) -> JobSpec {
    match spec {
        JobSpec::Relay {
            items,
            policy,
            remove_source,
            ..
        } => JobSpec::Relay {
            from: Box::new(from.clone()),
            to: Box::new(to.clone()),
            items,
            policy,
            remove_source,
        },
        spec => spec,
    }
}

/// The path of a local location; `None` for a remote one.
fn local(location: &Location) -> Option<PathBuf> {
    match location {
        Location::Local(path) => Some(path.clone()),
        Location::Remote(_) => None,
    }
}

/// The wire path of a remote location; `None` for a local one.
fn remote(location: &Location) -> Option<String> {
    match location {
        Location::Remote(path) => Some(path.clone()),
        Location::Local(_) => None,
    }
}
