//! One pane's browsing state: where it is, what is listed, how it is sorted and filtered,
//! the cursor and the marks. Pure data: listings arrive from the event loop.
//!
//! A listing is kept whole in `entries`; `view` holds the indices that pass the hidden-file
//! rule and the filter, in sort order, so a 100,000-entry directory is re-sorted only when the
//! order changes and rendering touches only the visible slice.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use ferry_protocol::{Entry, Kind};
use serde::Deserialize;

use super::attrs::Column;
use super::keymap::Action;
use super::rank::Ranker;
// Where a pane is was first defined here; the session task and the tests name it so.
pub use super::location::{Location, Side};

/// The column a listing is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortKey {
    Name,
    Size,
    Time,
}

impl SortKey {
    /// The next key in the `s` cycle.
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Name => SortKey::Size,
            SortKey::Size => SortKey::Time,
            SortKey::Time => SortKey::Name,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Size => "size",
            SortKey::Time => "time",
        }
    }
}

/// The slot in [`Pane::view`] of the `..` row: it stands for the parent directory, is not
/// an entry of the listing, and sits first whatever the sort and the filter, so going up is
/// always one row above the first name.
pub const PARENT_ROW: usize = usize::MAX;

/// How long quick jump waits for the next letter of a name before a key starts over.
pub const JUMP_PAUSE: Duration = Duration::from_millis(1000);

/// Typing the start of a name to move the cursor to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickJump {
    /// What was typed, shown in the pane's footer.
    pub prefix: String,
    /// When the last letter came: a pause longer than [`JUMP_PAUSE`] ends the jump.
    pub last: Instant,
    /// The last letter typed, when no name starts with `prefix` and it: kept out of the
    /// prefix, shown so the user sees the miss.
    pub missed: Option<char>,
}

/// A listing request in flight, so a late answer for a directory the user left is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub serial: u64,
    pub dir: Location,
    /// The name to put the cursor on once the listing arrives.
    pub select: Option<String>,
    /// The directory the pane showed until a refresh found it gone: this listing is of one of
    /// its ancestors, and a gone ancestor sends the pane further up.
    pub vanished: Option<Location>,
    /// The error of the operation this listing follows, said again if the pane has to move
    /// up: the news of the move must not hide why a mkdir or rename there failed.
    pub note: Option<String>,
}

/// Why a listing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListError {
    pub message: String,
    /// The directory is not there (`not_found`, or no longer a directory): the pane moves up
    /// instead of showing a tree that no longer exists.
    pub gone: bool,
}

impl ListError {
    /// A failure that says nothing about whether the directory exists (a lost connection).
    pub fn other(message: impl Into<String>) -> ListError {
        ListError {
            message: message.into(),
            gone: false,
        }
    }
}

/// What a listing that arrived means for the rest of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    /// Not the listing the pane waits for (a newer navigation won): dropped.
    Stale,
    /// Shown; `moved` says which gone directory it replaces, and why, when it does.
    Shown { moved: Option<String> },
    /// The directory shown (or an ancestor tried after it) is gone: list `parent` next.
    MoveUp {
        parent: Location,
        vanished: Location,
        note: Option<String>,
    },
    /// The directory does not list (`gone`: it is not there).
    Failed {
        dir: Location,
        message: String,
        gone: bool,
    },
}

/// One pane.
#[derive(Debug, Clone)]
pub struct Pane {
    pub side: Side,
    pub dir: Location,
    pub entries: Vec<Entry>,
    /// Indices into `entries`, filtered and sorted, after [`PARENT_ROW`] when the directory
    /// has a parent.
    pub view: Vec<usize>,
    /// Position in `view`.
    pub cursor: usize,
    /// First visible row of `view`.
    pub offset: usize,
    /// Rows the last layout gave the listing; paging and scrolling use it.
    pub height: usize,
    pub marks: HashSet<String>,
    pub sort: SortKey,
    pub reverse: bool,
    pub show_hidden: bool,
    pub filter: String,
    pub pending: Option<Pending>,
    /// Why the last listing failed, shown in place of the entries.
    pub error: Option<String>,
    /// Whether a listing has ever arrived.
    pub loaded: bool,
    /// The start of a name being typed.
    pub jump: Option<QuickJump>,
    /// The attribute columns the toggle shows, in order.
    pub columns: Vec<Column>,
    /// Whether they are shown now (with a symlink's target after its name).
    pub attributes: bool,
}

impl Pane {
    pub fn new(side: Side, dir: Location) -> Pane {
        Pane {
            side,
            dir,
            entries: Vec::new(),
            view: Vec::new(),
            cursor: 0,
            offset: 0,
            height: 20,
            marks: HashSet::new(),
            sort: SortKey::Name,
            reverse: false,
            show_hidden: false,
            filter: String::new(),
            pending: None,
            error: None,
            loaded: false,
            jump: None,
            columns: Column::ALL.to_vec(),
            attributes: false,
        }
    }

    /// A new pane of the same side at `dir`, sorted and showing hidden files as this one.
    pub fn reopened(&self, dir: Location) -> Pane {
        Pane {
            sort: self.sort,
            reverse: self.reverse,
            show_hidden: self.show_hidden,
            columns: self.columns.clone(),
            attributes: self.attributes,
            ..Pane::new(self.side, dir)
        }
    }

    /// The entry under the cursor (none on the `..` row).
    pub fn current(&self) -> Option<&Entry> {
        self.entry_at(self.cursor)
    }

    /// The entry on row `row` of the view; `None` past the end and on the `..` row.
    pub fn entry_at(&self, row: usize) -> Option<&Entry> {
        self.view.get(row).and_then(|&i| self.entries.get(i))
    }

    /// Whether the cursor is on the `..` row.
    pub fn on_parent_row(&self) -> bool {
        self.view.get(self.cursor) == Some(&PARENT_ROW)
    }

    /// Whether an operation on the selection would mean the `..` row alone (nothing marked,
    /// the cursor on it): the caller says why nothing happens.
    pub fn only_parent_selected(&self) -> bool {
        self.marks.is_empty() && self.on_parent_row()
    }

    /// The entries the view shows, in order, without the `..` row.
    pub fn shown(&self) -> impl Iterator<Item = &Entry> {
        self.view.iter().filter_map(|&i| self.entries.get(i))
    }

    /// A listing arrived: shown if it is the one the pane waits for.
    pub fn listed(
        &mut self,
        serial: u64,
        dir: Location,
        result: Result<Vec<Entry>, ListError>,
    ) -> Listed {
        let Some(pending) = self.pending.take_if(|p| p.serial == serial) else {
            return Listed::Stale;
        };
        let refreshed = self.loaded && dir == self.dir;
        match result {
            Ok(entries) => {
                self.set_listing(dir.clone(), entries, pending.select.as_deref());
                let moved = pending.vanished.map(|gone| {
                    let moved =
                        format!("{} no longer exists: showing {}", gone.shown(), dir.shown());
                    match pending.note {
                        Some(note) => format!("{moved} ({note})"),
                        None => moved,
                    }
                });
                Listed::Shown { moved }
            }
            // The directory shown (or an ancestor tried after it) is gone: the nearest
            // ancestor that still lists takes its place, rather than a stale view
            // whose operations would act on a tree that no longer exists.
            Err(error)
                if error.gone
                    && (refreshed || pending.vanished.is_some())
                    && let Some((parent, _)) = dir.parent() =>
            {
                Listed::MoveUp {
                    parent,
                    vanished: pending.vanished.unwrap_or(dir),
                    note: pending.note,
                }
            }
            Err(ListError { message, gone }) => {
                if !self.loaded {
                    self.dir = dir.clone();
                    self.error = Some(message.clone());
                }
                Listed::Failed { dir, message, gone }
            }
        }
    }

    /// Shows a new listing. A listing of the same directory keeps the cursor on the same name
    /// and keeps the marks; a new directory puts it on `select` or the top.
    pub fn set_listing(&mut self, dir: Location, entries: Vec<Entry>, select: Option<&str>) {
        let same_dir = self.loaded && dir == self.dir;
        let keep = if same_dir {
            self.current().map(|e| e.name.clone())
        } else {
            None
        };
        let on_parent = same_dir && self.on_parent_row();
        if same_dir {
            let names: HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            self.marks.retain(|m| names.contains(m.as_str()));
        } else {
            self.marks.clear();
            self.filter.clear();
            self.offset = 0;
        }
        self.dir = dir;
        self.entries = entries;
        self.error = None;
        self.loaded = true;
        let old_cursor = self.cursor;
        self.rebuild_view(select.map(str::to_string).or(keep).as_deref());
        if on_parent && select.is_none() {
            self.cursor = 0;
        } else if same_dir && select.is_none() && self.view.is_empty() {
            self.cursor = old_cursor.min(self.view.len().saturating_sub(1));
        }
        self.scroll_to_cursor();
    }

    /// Re-applies sort, hidden rule and filter, keeping the cursor on `select` if it is visible,
    /// else putting it on the first entry (on `..` only when nothing else is shown): Enter in a
    /// directory just opened goes on into its first entry, and `..` is one row up.
    pub fn rebuild_view(&mut self, select: Option<&str>) {
        let show_hidden = self.show_hidden;
        let mut ranker = (!self.filter.is_empty()).then(|| Ranker::new(&self.filter));
        // A filter ranks what it keeps (see `rank`): best first, the sort breaking ties.
        let mut ranks = vec![
            None;
            if ranker.is_some() {
                self.entries.len()
            } else {
                0
            }
        ];
        let mut view: Vec<usize> = (0..self.entries.len())
            .filter(|&i| {
                let name = &self.entries[i].name;
                if !show_hidden && name.starts_with('.') {
                    return false;
                }
                let Some(ranker) = ranker.as_mut() else {
                    return true;
                };
                ranks[i] = ranker.rank(name);
                ranks[i].is_some()
            })
            .collect();
        let (sort, reverse, entries) = (self.sort, self.reverse, &self.entries);
        // Lower-cased once per entry, not once per comparison: 100,000 names sort in a blink.
        let lower: Vec<String> = entries.iter().map(|e| e.name.to_lowercase()).collect();
        view.sort_unstable_by(|&a, &b| {
            let by_rank = match (ranks.get(b), ranks.get(a)) {
                (Some(rb), Some(ra)) => rb.cmp(ra),
                _ => Ordering::Equal,
            };
            by_rank.then_with(|| {
                compare(
                    &entries[a],
                    &entries[b],
                    (&lower[a], &lower[b]),
                    sort,
                    reverse,
                )
            })
        });
        if self.dir.parent().is_some() {
            view.insert(0, PARENT_ROW);
        }
        self.view = view;
        let first = usize::from(self.view.len() > 1 && self.view[0] == PARENT_ROW);
        self.cursor = select
            .and_then(|name| {
                self.view
                    .iter()
                    .position(|&i| self.entries.get(i).is_some_and(|e| e.name == name))
            })
            .unwrap_or(first);
        self.scroll_to_cursor();
    }

    /// Re-sorts or re-filters without losing the entry under the cursor.
    fn refresh_view(&mut self) {
        let on_parent = self.on_parent_row();
        let keep = self.current().map(|e| e.name.clone());
        self.rebuild_view(keep.as_deref());
        if on_parent {
            self.top();
        }
    }
    /// Does what a key's action means for this pane alone (moving, marking, sorting, showing
    /// hidden files); `false` when the action means more than that.
    pub fn act(&mut self, action: Action) -> bool {
        match action {
            Action::Up => self.move_cursor(-1),
            Action::Down => self.move_cursor(1),
            Action::PageUp => self.page(false),
            Action::PageDown => self.page(true),
            Action::Top => self.top(),
            Action::Bottom => self.bottom(),
            Action::Mark => self.toggle_mark(),
            Action::InvertMarks => self.invert_marks(),
            Action::MarkAll => self.mark_all(),
            Action::ToggleHidden => self.toggle_hidden(),
            Action::SortNext => self.set_sort(self.sort.next(), self.reverse),
            Action::SortReverse => self.set_sort(self.sort, !self.reverse),
            Action::SortName => self.sort_by(SortKey::Name),
            Action::SortSize => self.sort_by(SortKey::Size),
            Action::SortTime => self.sort_by(SortKey::Time),
            Action::ToggleAttributes => self.attributes = !self.attributes,
            _ => return false,
        }
        true
    }

    /// A printable key `c` typed at `now`, which the keymap binds (`bound`) or not: `true` if it
    /// went to quick jump. An unbound key starts a jump or adds to one; a bound key adds to a
    /// jump only while it runs (the last letter less than [`JUMP_PAUSE`] ago) and some name
    /// starts with the longer prefix, so `t` finishes `report` but does its own action
    /// otherwise. The cursor goes to the first entry (in view order) whose name starts with the
    /// prefix, ignoring case; an unbound letter that matches nothing is kept out of the prefix
    /// and the footer says so.
    pub fn jump_key(&mut self, c: char, bound: bool, now: Instant) -> bool {
        let running = self
            .jump
            .take()
            .filter(|jump| now.saturating_duration_since(jump.last) <= JUMP_PAUSE);
        let typed = running.as_ref().map_or("", |jump| jump.prefix.as_str());
        if running.is_none() && bound {
            return false;
        }
        let prefix = format!("{typed}{c}");
        match self.first_starting_with(&prefix) {
            Some(row) => {
                self.cursor = row;
                self.scroll_to_cursor();
                self.jump = Some(QuickJump {
                    prefix,
                    last: now,
                    missed: None,
                });
                true
            }
            None if bound => false,
            None => {
                self.jump = Some(QuickJump {
                    prefix: typed.to_string(),
                    last: now,
                    missed: Some(c),
                });
                true
            }
        }
    }

    /// Ends quick jump when its pause is over at `now`: `true` if that changed the footer.
    pub fn jump_expired(&mut self, now: Instant) -> bool {
        let over = self
            .jump
            .as_ref()
            .is_some_and(|jump| now.saturating_duration_since(jump.last) > JUMP_PAUSE);
        if over {
            self.jump = None;
        }
        over
    }

    /// The first row whose entry's name starts with `prefix`, ignoring case.
    fn first_starting_with(&self, prefix: &str) -> Option<usize> {
        let prefix = prefix.to_lowercase();
        (0..self.view.len()).find(|&row| {
            self.entry_at(row)
                .is_some_and(|e| e.name.to_lowercase().starts_with(&prefix))
        })
    }

    /// Sorts by `key`; by the same key again, the other way round.
    fn sort_by(&mut self, key: SortKey) {
        let reverse = if self.sort == key {
            !self.reverse
        } else {
            false
        };
        self.set_sort(key, reverse);
    }

    pub fn set_sort(&mut self, sort: SortKey, reverse: bool) {
        self.sort = sort;
        self.reverse = reverse;
        self.refresh_view();
    }

    pub fn toggle_hidden(&mut self) {
        self.show_hidden = !self.show_hidden;
        if !self.show_hidden {
            self.marks.retain(|m| !m.starts_with('.'));
        }
        self.refresh_view();
    }

    pub fn set_filter(&mut self, filter: &str) {
        self.filter = filter.to_string();
        self.refresh_view();
    }

    /// Moves the cursor by `delta` rows, stopping at the ends.
    pub fn move_cursor(&mut self, delta: isize) {
        if self.view.is_empty() {
            self.cursor = 0;
            return;
        }
        let last = self.view.len() - 1;
        self.cursor = self.cursor.saturating_add_signed(delta).min(last);
        self.scroll_to_cursor();
    }

    pub fn page(&mut self, down: bool) {
        let rows = self.height.max(2) as isize - 1;
        self.move_cursor(if down { rows } else { -rows });
    }

    pub fn top(&mut self) {
        self.cursor = 0;
        self.scroll_to_cursor();
    }

    pub fn bottom(&mut self) {
        self.cursor = self.view.len().saturating_sub(1);
        self.scroll_to_cursor();
    }

    /// Scrolls the list without moving the cursor off screen (mouse wheel).
    pub fn scroll(&mut self, delta: isize) {
        let max_offset = self.view.len().saturating_sub(self.height.max(1));
        self.offset = self.offset.saturating_add_signed(delta).min(max_offset);
        let h = self.height.max(1);
        if self.cursor < self.offset {
            self.cursor = self.offset;
        } else if self.cursor >= self.offset + h {
            self.cursor = self.offset + h - 1;
        }
        self.cursor = self.cursor.min(self.view.len().saturating_sub(1));
    }

    /// Keeps the cursor inside the visible window.
    pub fn scroll_to_cursor(&mut self) {
        let h = self.height.max(1);
        if self.cursor < self.offset {
            self.offset = self.cursor;
        } else if self.cursor >= self.offset + h {
            self.offset = self.cursor + 1 - h;
        }
        let max_offset = self.view.len().saturating_sub(h);
        self.offset = self.offset.min(max_offset);
    }

    pub fn set_height(&mut self, height: usize) {
        self.height = height.max(1);
        self.scroll_to_cursor();
    }

    /// Marks or unmarks the entry under the cursor, then moves down; on `..`, which is not an
    /// entry, it only moves down (as in mc), so holding Insert from the top marks everything.
    pub fn toggle_mark(&mut self) {
        if let Some(name) = self.current().map(|e| e.name.clone()) {
            if !self.marks.remove(&name) {
                self.marks.insert(name);
            }
            self.move_cursor(1);
        } else if self.on_parent_row() {
            self.move_cursor(1);
        }
    }

    /// Inverts the marks of every visible entry.
    pub fn invert_marks(&mut self) {
        let names: Vec<String> = self.shown().map(|e| e.name.clone()).collect();
        for name in names {
            if !self.marks.remove(&name) {
                self.marks.insert(name);
            }
        }
    }

    pub fn mark_all(&mut self) {
        let names: Vec<String> = self.shown().map(|e| e.name.clone()).collect();
        self.marks.extend(names);
    }

    /// What an operation applies to: the marked entries, or else the one under the cursor.
    pub fn selection(&self) -> Vec<&Entry> {
        if self.marks.is_empty() {
            return self.current().into_iter().collect();
        }
        self.shown()
            .filter(|e| self.marks.contains(&e.name))
            .collect()
    }

    /// How many entries are marked and their total size (directories count as their own size).
    pub fn marked_total(&self) -> (usize, u64) {
        self.entries
            .iter()
            .filter(|e| self.marks.contains(&e.name))
            .fold((0, 0), |(n, bytes), e| {
                (n + 1, bytes + if e.kind == Kind::File { e.size } else { 0 })
            })
    }
}

/// Directories first, then by the key; names break ties so the order is stable.
fn compare(
    a: &Entry,
    b: &Entry,
    lower: (&String, &String),
    sort: SortKey,
    reverse: bool,
) -> Ordering {
    let dirs_first = b.is_dir_like().cmp(&a.is_dir_like());
    if dirs_first != Ordering::Equal {
        return dirs_first;
    }
    let by_name = || lower.0.cmp(lower.1).then_with(|| a.name.cmp(&b.name));
    // Size and time read best largest/newest first; reverse flips that. Ties go by name.
    let ord = match sort {
        SortKey::Name => by_name(),
        SortKey::Size => b.size.cmp(&a.size),
        SortKey::Time => b.mtime.cmp(&a.mtime),
    };
    let ord = if reverse { ord.reverse() } else { ord };
    ord.then_with(by_name)
}

#[cfg(test)]
#[path = "pane_tests.rs"]
pub(crate) mod tests;
