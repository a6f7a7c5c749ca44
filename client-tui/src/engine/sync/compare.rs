//! Comparing two listed sides into actions, with no IO: what to make, send, fix, delete or
//! leave out (with why). A file whose size matches but whose content is still in question
//! (`--checksum`, or the quick check's mtime differing) becomes a [`Pending`] that the digests
//! of both sides settle: the same bytes are never sent again, only their mtime fixed.

use std::collections::{BTreeMap, HashSet};

use ferry_protocol::{Digest, Kind};

use super::filter::Filter;
use super::tree::{Node, Tree};

/// How two files are told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// rsync's quick check: size and mtime (seconds). Same size, other mtime: the digests
    /// decide between sending the file and fixing its mtime.
    Quick,
    /// Digests of every file of the same size on both sides.
    Checksum,
    /// Size only: same size is the same file (nor is the mtime fixed).
    SizeOnly,
}

/// Why an entry is left out of a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// An `--exclude` (with everything below it).
    Excluded,
    Symlink,
    Special,
    Unreadable,
    Vanished,
    /// A name that cannot be a path on the other side.
    Name,
    /// A directory on one side where the other has something else, or a link where a file
    /// would go: left as it is, never written through.
    Clash,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Excluded => "excluded",
            SkipReason::Symlink => "symlink",
            SkipReason::Special => "special_file",
            SkipReason::Unreadable => "unreadable",
            SkipReason::Vanished => "vanished",
            SkipReason::Name => "bad_name",
            SkipReason::Clash => "type_clash",
        }
    }

    /// Left out on purpose: no error in the exit status.
    pub fn by_design(self) -> bool {
        matches!(
            self,
            SkipReason::Excluded | SkipReason::Symlink | SkipReason::Special
        )
    }

    fn of(reason: crate::engine::event::LeftOutReason) -> Self {
        use crate::engine::event::LeftOutReason as L;
        match reason {
            L::Symlink => SkipReason::Symlink,
            L::Special => SkipReason::Special,
            L::Name => SkipReason::Name,
            L::Unreadable => SkipReason::Unreadable,
            L::Vanished => SkipReason::Vanished,
            // Only a transfer's conflict rule gives this, never a walk; should one arrive it
            // counts as an error rather than pass unseen.
            L::UpToDate => SkipReason::Unreadable,
        }
    }
}

/// Why a file is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    Size,
    /// Same size, other content (found by digest).
    Content,
    /// The destination could not be hashed: the bytes are sent rather than trusted.
    Unverified,
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Size => "size differs",
            Why::Content => "content differs",
            Why::Unverified => "destination could not be hashed",
        }
    }
}

/// One step of a sync, on a path relative to both roots (wire form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A directory the destination lacks (`rel` empty: the root itself).
    Mkdir { rel: String, mode: u32 },
    Create {
        rel: String,
        size: u64,
        mtime: i64,
        mode: u32,
    },
    Update {
        rel: String,
        size: u64,
        mtime: i64,
        mode: u32,
        /// The destination as listed.
        old: (u64, i64, u32),
        why: Why,
    },
    /// Same content, other mtime: the mtime is set, the bytes stay.
    FixTime { rel: String, mtime: i64 },
    /// Other permission bits (`0o777`, and sticky on a directory).
    FixMode { rel: String, kind: Kind, mode: u32 },
    /// On the destination only (with `--delete`); a file with its listed size and mtime, so
    /// one changed since is kept.
    Delete {
        rel: String,
        kind: Kind,
        listed: Option<(u64, i64)>,
    },
    Skip {
        rel: String,
        reason: SkipReason,
        message: String,
    },
}

impl Action {
    pub fn rel(&self) -> &str {
        match self {
            Action::Mkdir { rel, .. }
            | Action::Create { rel, .. }
            | Action::Update { rel, .. }
            | Action::FixTime { rel, .. }
            | Action::FixMode { rel, .. }
            | Action::Delete { rel, .. }
            | Action::Skip { rel, .. } => rel,
        }
    }

    /// The word a plan line starts with.
    pub fn word(&self) -> &'static str {
        match self {
            Action::Mkdir { .. } => "mkdir",
            Action::Create { .. } => "create",
            Action::Update { .. } => "update",
            Action::FixTime { .. } => "fix-time",
            Action::FixMode { .. } => "fix-mode",
            Action::Delete { .. } => "delete",
            Action::Skip { .. } => "skip",
        }
    }
}

/// A file of the same size on both sides whose content the digests decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub rel: String,
    pub src: Node,
    pub dst: Node,
}

/// What comparing gives before digests: actions, and files still in question.
#[derive(Debug, Clone, Default)]
pub struct Compared {
    pub actions: Vec<Action>,
    pub pending: Vec<Pending>,
}

/// The permission bits a sync carries: `rwx` for all, and sticky on a directory; never
/// setuid or setgid (which the server refuses to set, and a copy never keeps).
pub fn carried_mode(kind: Kind, mode: u32) -> u32 {
    if kind == Kind::Dir {
        mode & 0o1777
    } else {
        mode & 0o777
    }
}

/// Compares `src` with `dst` (both roots directories, or `dst`'s missing).
pub fn compare(src: &Tree, dst: &Tree, how: Compare, filter: &Filter, delete: bool) -> Compared {
    let mut out = Compared::default();
    if dst.root.is_none() {
        out.actions.push(Action::Mkdir {
            rel: String::new(),
            mode: src.root_mode,
        });
    }
    // Source directories whose contents cannot go (a clash on the destination).
    let mut blocked: HashSet<&str> = HashSet::new();
    for (rel, s) in &src.nodes {
        let is_dir = s.kind == Kind::Dir;
        if filter.excluded(rel, is_dir) {
            if filter.excluded_here(rel, is_dir) {
                out.actions
                    .push(skip(rel, SkipReason::Excluded, "excluded by a rule"));
            }
            continue;
        }
        if let Some(top) = ancestors(rel).find(|a| blocked.contains(a)) {
            out.actions.push(skip(
                rel,
                SkipReason::Clash,
                format!("inside {top}, which is not a directory on the destination"),
            ));
            continue;
        }
        if let Some(problem) = &s.error {
            out.actions
                .push(skip(rel, SkipReason::of(problem.reason), &problem.message));
            continue;
        }
        let d = dst.nodes.get(rel);
        match s.kind {
            Kind::Symlink => out.actions.push(skip(
                rel,
                SkipReason::Symlink,
                "a symlink: only files and directories are synced",
            )),
            Kind::Other => out.actions.push(skip(
                rel,
                SkipReason::Special,
                "a special file: only files and directories are synced",
            )),
            Kind::Dir => match d {
                None => out.actions.push(Action::Mkdir {
                    rel: rel.clone(),
                    mode: s.mode,
                }),
                Some(d) if d.kind == Kind::Dir => {
                    fix_mode(&mut out.actions, rel, Kind::Dir, s.mode, d.mode);
                }
                Some(d) => {
                    blocked.insert(rel);
                    out.actions.push(clash(rel, "a directory", d.kind));
                }
            },
            Kind::File => match d {
                None => out.actions.push(Action::Create {
                    rel: rel.clone(),
                    size: s.size,
                    mtime: s.mtime,
                    mode: s.mode,
                }),
                Some(d) if d.kind == Kind::File => file_pair(&mut out, rel, s, d, how),
                Some(d) => out.actions.push(clash(rel, "a file", d.kind)),
            },
        }
    }
    for (shown, problem) in &src.unnamed {
        out.actions.push(skip(
            shown,
            SkipReason::of(problem.reason),
            &problem.message,
        ));
    }
    if delete {
        deletions(&mut out.actions, src, dst, filter);
    }
    out
}

/// The two sides of one file.
fn file_pair(out: &mut Compared, rel: &str, s: &Node, d: &Node, how: Compare) {
    let update = |why| Action::Update {
        rel: rel.to_owned(),
        size: s.size,
        mtime: s.mtime,
        mode: s.mode,
        old: (d.size, d.mtime, d.mode),
        why,
    };
    if s.size != d.size {
        out.actions.push(update(Why::Size));
    } else if how == Compare::SizeOnly || (how == Compare::Quick && s.mtime == d.mtime) {
        fix_mode(&mut out.actions, rel, Kind::File, s.mode, d.mode);
    } else if d.error.is_some() {
        out.actions.push(update(Why::Unverified));
    } else {
        out.pending.push(Pending {
            rel: rel.to_owned(),
            src: s.clone(),
            dst: d.clone(),
        });
    }
    // A file sent keeps the destination's mode (as an overwrite does): fixed after it.
    if s.size != d.size {
        fix_mode(&mut out.actions, rel, Kind::File, s.mode, d.mode);
    }
}

/// Settles a file in question by the digests of both sides (`None`: not known).
pub fn settle(pending: Pending, src: Option<Digest>, dst: Option<Digest>) -> Vec<Action> {
    let Pending {
        rel,
        src: s,
        dst: d,
    } = pending;
    let mut actions = Vec::new();
    match (src, dst) {
        (Some(a), Some(b)) if a == b => {
            if s.mtime != d.mtime {
                actions.push(Action::FixTime {
                    rel: rel.clone(),
                    mtime: s.mtime,
                });
            }
        }
        (a, b) => actions.push(Action::Update {
            rel: rel.clone(),
            size: s.size,
            mtime: s.mtime,
            mode: s.mode,
            old: (d.size, d.mtime, d.mode),
            why: if a.is_some() && b.is_some() {
                Why::Content
            } else {
                Why::Unverified
            },
        }),
    }
    fix_mode(&mut actions, &rel, Kind::File, s.mode, d.mode);
    actions
}

fn fix_mode(actions: &mut Vec<Action>, rel: &str, kind: Kind, src: u32, dst: u32) {
    let (want, have) = (carried_mode(kind, src), carried_mode(kind, dst));
    if want != have {
        actions.push(Action::FixMode {
            rel: rel.to_owned(),
            kind,
            mode: want,
        });
    }
}

fn skip(rel: &str, reason: SkipReason, message: impl Into<String>) -> Action {
    Action::Skip {
        rel: rel.to_owned(),
        reason,
        message: message.into(),
    }
}

fn clash(rel: &str, what: &str, there: Kind) -> Action {
    let there = match there {
        Kind::Dir => "a directory",
        Kind::File => "a file",
        Kind::Symlink => "a symlink",
        Kind::Other => "a special file",
    };
    skip(
        rel,
        SkipReason::Clash,
        format!(
            "{what} on the source, {there} on the destination: left as it is (remove it to \
             sync this entry)"
        ),
    )
}

/// The parent directories of `rel`, nearest last: `a`, `a/b` for `a/b/c`.
fn ancestors(rel: &str) -> impl Iterator<Item = &str> {
    rel.match_indices('/').map(move |(at, _)| &rel[..at])
}

/// What the destination has that the source does not, to delete deepest first. Kept: what a
/// rule excludes, what lies below a source entry that could not be read or is not a
/// directory, what the destination could not read or name, and every directory above any of
/// those.
fn deletions(actions: &mut Vec<Action>, src: &Tree, dst: &Tree, filter: &Filter) {
    let mut candidates: BTreeMap<&str, &Node> = BTreeMap::new();
    let mut kept_dirs: HashSet<&str> = HashSet::new();
    for (rel, d) in &dst.nodes {
        if src.nodes.contains_key(rel) {
            continue;
        }
        let guarded = filter.excluded(rel, d.kind == Kind::Dir)
            || ancestors(rel).any(|a| {
                src.nodes
                    .get(a)
                    .is_some_and(|s| s.kind != Kind::Dir || s.error.is_some())
            });
        if guarded {
            kept_dirs.extend(ancestors(rel));
            continue;
        }
        if let Some(problem) = &d.error {
            kept_dirs.extend(ancestors(rel));
            actions.push(skip(
                rel,
                SkipReason::of(problem.reason),
                format!(
                    "not deleted: the destination could not be read here ({})",
                    problem.message
                ),
            ));
            continue;
        }
        candidates.insert(rel, d);
    }
    let mut deletes: Vec<(&str, &Node)> = candidates
        .into_iter()
        .filter(|(rel, _)| !kept_dirs.contains(rel))
        .collect();
    // Deepest first; within a depth, any order (siblings).
    deletes.sort_by_key(|(rel, _)| std::cmp::Reverse(rel.matches('/').count()));
    actions.extend(deletes.into_iter().map(|(rel, d)| Action::Delete {
        rel: rel.to_owned(),
        kind: d.kind,
        listed: (d.kind == Kind::File).then_some((d.size, d.mtime)),
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::sync::filter::RuleKind;

    fn node(kind: Kind, size: u64, mtime: i64, mode: u32) -> Node {
        Node {
            kind,
            size,
            mtime,
            mode,
            digest: None,
            error: None,
        }
    }

    fn tree(entries: &[(&str, Node)]) -> Tree {
        Tree {
            root: Some(Kind::Dir),
            nodes: entries
                .iter()
                .map(|(rel, n)| ((*rel).to_owned(), n.clone()))
                .collect(),
            ..Tree::default()
        }
    }

    fn words(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| format!("{} {}", a.word(), a.rel()))
            .collect()
    }

    #[test]
    fn each_mode_tells_files_apart_its_own_way() {
        let src = tree(&[
            ("same", node(Kind::File, 3, 10, 0o644)),
            ("touched", node(Kind::File, 3, 20, 0o644)),
            ("grown", node(Kind::File, 4, 10, 0o644)),
            ("new", node(Kind::File, 1, 10, 0o600)),
            ("chmod", node(Kind::File, 3, 10, 0o600)),
        ]);
        let dst = tree(&[
            ("same", node(Kind::File, 3, 10, 0o644)),
            ("touched", node(Kind::File, 3, 10, 0o644)),
            ("grown", node(Kind::File, 3, 10, 0o644)),
            ("chmod", node(Kind::File, 3, 10, 0o644)),
        ]);
        let none = Filter::default();
        let quick = compare(&src, &dst, Compare::Quick, &none, false);
        assert_eq!(
            words(&quick.actions),
            ["fix-mode chmod", "update grown", "create new"]
        );
        assert_eq!(quick.pending.len(), 1);
        assert_eq!(quick.pending[0].rel, "touched");
        let sizes = compare(&src, &dst, Compare::SizeOnly, &none, false);
        assert_eq!(
            words(&sizes.actions),
            ["fix-mode chmod", "update grown", "create new"]
        );
        assert!(sizes.pending.is_empty());
        let sums = compare(&src, &dst, Compare::Checksum, &none, false);
        let pending: Vec<_> = sums.pending.iter().map(|p| p.rel.as_str()).collect();
        assert_eq!(pending, ["chmod", "same", "touched"]);

        let touched = quick.pending[0].clone();
        let d = Some(Digest::of(b"abc"));
        assert_eq!(words(&settle(touched.clone(), d, d)), ["fix-time touched"]);
        assert_eq!(
            words(&settle(touched.clone(), d, Some(Digest::of(b"abd")))),
            ["update touched"]
        );
        assert_eq!(words(&settle(touched, d, None)), ["update touched"]);
    }

    #[test]
    fn clashes_links_and_deletes_deepest_first_with_guards() {
        let src = tree(&[
            ("d", node(Kind::Dir, 0, 0, 0o755)),
            ("d/f", node(Kind::File, 1, 1, 0o644)),
            ("link", node(Kind::Symlink, 1, 1, 0o777)),
            ("f-vs-link", node(Kind::File, 1, 1, 0o644)),
            ("file-vs-dir", node(Kind::File, 1, 1, 0o644)),
        ]);
        let dst = tree(&[
            ("d", node(Kind::File, 1, 1, 0o644)),
            ("f-vs-link", node(Kind::Symlink, 1, 1, 0o777)),
            ("file-vs-dir", node(Kind::Dir, 0, 0, 0o755)),
            ("file-vs-dir/inner", node(Kind::File, 1, 1, 0o644)),
            ("old", node(Kind::Dir, 0, 0, 0o755)),
            ("old/a", node(Kind::File, 5, 5, 0o644)),
            ("old/deeper", node(Kind::Dir, 0, 0, 0o755)),
            ("old/deeper/b", node(Kind::File, 5, 5, 0o644)),
            ("keep", node(Kind::Dir, 0, 0, 0o755)),
            ("keep/x.tmp", node(Kind::File, 1, 1, 0o644)),
            ("keep/y", node(Kind::File, 1, 1, 0o644)),
        ]);
        let filter = Filter::new(&[(RuleKind::Exclude, "*.tmp".into())]).unwrap();
        let out = compare(&src, &dst, Compare::Quick, &filter, true);
        assert_eq!(
            words(&out.actions),
            [
                "skip d",
                "skip d/f",
                "skip f-vs-link",
                "skip file-vs-dir",
                "skip link",
                "delete old/deeper/b",
                "delete keep/y",
                "delete old/a",
                "delete old/deeper",
                "delete old",
            ]
        );
        let Action::Delete { listed, .. } = &out.actions[5] else {
            panic!()
        };
        assert_eq!(*listed, Some((5, 5)));
        let without = compare(&src, &dst, Compare::Quick, &filter, false);
        assert!(without.actions.iter().all(|a| a.word() != "delete"));
    }

    #[test]
    fn an_unreadable_source_directory_protects_its_copy() {
        let mut unreadable = node(Kind::Dir, 0, 0, 0o755);
        unreadable.error = Some(super::super::tree::Problem {
            reason: crate::engine::event::LeftOutReason::Unreadable,
            message: "forbidden".into(),
        });
        let src = tree(&[("locked", unreadable)]);
        let dst = tree(&[
            ("locked", node(Kind::Dir, 0, 0, 0o755)),
            ("locked/precious", node(Kind::File, 1, 1, 0o644)),
        ]);
        let out = compare(&src, &dst, Compare::Quick, &Filter::default(), true);
        assert_eq!(words(&out.actions), ["skip locked"]);
    }
}
