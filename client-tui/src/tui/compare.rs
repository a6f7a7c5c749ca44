//! Comparing the two panes (mc's Ctrl+X d): in each pane, the entries the other pane's listing
//! lacks, or holds older or with another size, become that pane's marks, so F5 copies exactly
//! them. Only the listings the panes already hold are compared: no request, no walk, and
//! directories that exist on both sides are not descended (their contents may differ unseen).

use std::collections::HashMap;

use ferry_protocol::{Entry, Kind};

use super::pane::Pane;

/// Why an entry was marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// The other side has no entry of that name.
    Missing,
    /// Both are files and this one was modified later.
    Newer,
    /// Both are files modified at the same second, with different sizes: both are marked, since
    /// neither is known to be the newer one.
    SizeDiffers,
}

/// How many entries one pane's comparison marked, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub missing: usize,
    pub newer: usize,
    pub size_differs: usize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.missing + self.newer + self.size_differs
    }

    /// `12 marked: 7 missing there, 3 newer, 2 size differs`, leaving out reasons of none.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.missing, "missing there"),
            (self.newer, "newer"),
            (self.size_differs, "size differs"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{} {what}", crate::format::count(*n as u64)))
        .collect();
        if parts.is_empty() {
            "nothing differs".to_owned()
        } else {
            format!(
                "{} marked: {}",
                crate::format::count(self.total() as u64),
                parts.join(", ")
            )
        }
    }
}

/// Why `entry` differs from the entry of the same name among `other`'s, if it does. Only files
/// and directories take part: a link or a special file is never copied, so never marked.
pub fn difference(entry: &Entry, other: Option<&Entry>) -> Option<Difference> {
    if !matches!(entry.kind, Kind::File | Kind::Dir) {
        return None;
    }
    let Some(other) = other else {
        return Some(Difference::Missing);
    };
    // A file against a directory (or a link) would fail as a copy: not marked.
    if entry.kind != Kind::File || other.kind != Kind::File {
        return None;
    }
    if entry.mtime > other.mtime {
        Some(Difference::Newer)
    } else if entry.mtime == other.mtime && entry.size != other.size {
        Some(Difference::SizeDiffers)
    } else {
        None
    }
}

/// Marks in `pane` what differs from `other`'s listing, replacing its marks, among the entries
/// the pane shows (a filter or hidden dotfiles stay out, as with mark all).
pub fn mark(pane: &mut Pane, other: &Pane) -> Counts {
    let theirs: HashMap<&str, &Entry> =
        other.entries.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut counts = Counts::default();
    let mut marks = Vec::new();
    for entry in pane.shown() {
        let Some(why) = difference(entry, theirs.get(entry.name.as_str()).copied()) else {
            continue;
        };
        match why {
            Difference::Missing => counts.missing += 1,
            Difference::Newer => counts.newer += 1,
            Difference::SizeDiffers => counts.size_differs += 1,
        }
        marks.push(entry.name.clone());
    }
    pane.marks = marks.into_iter().collect();
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::pane::tests::entry;
    use crate::tui::pane::{Location, Side};

    fn file(name: &str, size: u64, mtime: i64) -> Entry {
        entry(name, Kind::File, size, mtime)
    }

    fn pane(side: Side, entries: Vec<Entry>) -> Pane {
        let dir = match side {
            Side::Local => Location::Local("/here".into()),
            Side::Remote => Location::Remote(String::new()),
        };
        let mut pane = Pane::new(side, dir.clone());
        pane.set_listing(dir, entries, None);
        pane
    }

    #[test]
    fn marks_missing_newer_and_same_time_other_size_on_each_side() {
        let mut local = pane(
            Side::Local,
            vec![
                file("only-here.txt", 10, 100),
                file("newer-here.txt", 10, 200),
                file("older-here.txt", 10, 100),
                file("same.txt", 10, 100),
                file("resized.txt", 11, 100),
                entry("new-dir", Kind::Dir, 0, 0),
                entry("both-dir", Kind::Dir, 0, 0),
                entry("link", Kind::Symlink, 0, 0),
                file("file-vs-dir", 1, 100),
            ],
        );
        let mut remote = pane(
            Side::Remote,
            vec![
                file("newer-here.txt", 99, 100),
                file("older-here.txt", 10, 200),
                file("same.txt", 10, 100),
                file("resized.txt", 12, 100),
                entry("both-dir", Kind::Dir, 0, 0),
                entry("file-vs-dir", Kind::Dir, 0, 0),
                file("only-there.txt", 1, 1),
            ],
        );
        let here = mark(&mut local, &remote);
        let there = mark(&mut remote, &local);
        let mut marked: Vec<&str> = local.marks.iter().map(String::as_str).collect();
        marked.sort_unstable();
        assert_eq!(
            marked,
            ["new-dir", "newer-here.txt", "only-here.txt", "resized.txt"]
        );
        assert_eq!(
            here,
            Counts {
                missing: 2,
                newer: 1,
                size_differs: 1
            }
        );
        assert_eq!(
            here.describe(),
            "4 marked: 2 missing there, 1 newer, 1 size differs"
        );
        let mut marked: Vec<&str> = remote.marks.iter().map(String::as_str).collect();
        marked.sort_unstable();
        assert_eq!(marked, ["older-here.txt", "only-there.txt", "resized.txt"]);
        assert_eq!(there.total(), 3);
    }

    #[test]
    fn identical_listings_mark_nothing_and_clear_old_marks() {
        let entries = vec![file("a", 1, 5), entry("d", Kind::Dir, 0, 0)];
        let mut local = pane(Side::Local, entries.clone());
        local.marks.insert("a".into());
        let remote = pane(Side::Remote, entries);
        let counts = mark(&mut local, &remote);
        assert!(local.marks.is_empty());
        assert_eq!(counts.describe(), "nothing differs");
    }

    #[test]
    fn hidden_entries_stay_unmarked() {
        let mut local = pane(Side::Local, vec![file(".dot", 1, 1), file("seen", 1, 1)]);
        local.show_hidden = false;
        local.rebuild_view(None);
        let remote = pane(Side::Remote, Vec::new());
        mark(&mut local, &remote);
        assert_eq!(local.marks.len(), 1);
        assert!(local.marks.contains("seen"));
    }
}
