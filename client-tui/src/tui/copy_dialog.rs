//! F5/F6's question before a copy or move starts: where to (the other pane's directory unless
//! edited; Tab completes directory names), with which conflict policy, and what is being sent
//! (how many entries, how large). Enter starts, Escape cancels. The dialog holds no IO: a
//! completion in a directory the other pane does not show asks the app for its listing and
//! finishes when it arrives.

use crossterm::event::{KeyCode, KeyEvent};
use ferry_protocol::{Entry, Kind};

use crate::engine::ConflictPolicy;
use crate::format;

use super::input::LineInput;
use super::location::{Location, Side};
use super::pane::Pane;

/// The policies the dialog cycles through (Up/Down), with their words.
pub const POLICIES: [(ConflictPolicy, &str); 7] = [
    (ConflictPolicy::Ask, "ask"),
    (ConflictPolicy::Overwrite, "overwrite"),
    (ConflictPolicy::OverwriteIfNewer, "overwrite if newer"),
    (
        ConflictPolicy::OverwriteIfSizeDiffers,
        "overwrite if size differs",
    ),
    (ConflictPolicy::Skip, "skip"),
    (ConflictPolicy::Resume, "resume"),
    (ConflictPolicy::Rename, "keep both"),
];

/// At most this many completion candidates are named under the field.
const SHOWN_CANDIDATES: usize = 6;

/// A copy or move waiting for its destination and policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyDialog {
    pub source: Side,
    pub is_move: bool,
    /// The entries to send, by name in the source pane's directory.
    pub names: Vec<String>,
    pub files: u64,
    pub dirs: u64,
    /// The files' bytes (a directory's contents are not known without a walk).
    pub bytes: u64,
    /// The other pane's directory: the default destination, and what a relative path means.
    pub base: Location,
    pub input: LineInput,
    /// Index into [`POLICIES`].
    pub policy: usize,
    /// What the last Tab found: candidates, or that nothing matched.
    pub note: Option<String>,
    /// A listing asked for a completion (its serial once asked); any edit forgets it, so a
    /// late listing does not complete text typed since.
    pub completing: Option<u64>,
}

/// What a key in the dialog asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Stay,
    Close,
    /// Start: send the names into `dest` with `policy`.
    Start {
        dest: Location,
        policy: ConflictPolicy,
    },
    /// Tab in a directory the other pane does not show: list `dir` and hand the entries to
    /// [`CopyDialog::complete_from`].
    List(Location),
}

impl CopyDialog {
    /// The question for the selection of `source` into `dest`'s directory; `None` with nothing
    /// selected.
    pub fn new(source: &Pane, dest: &Pane, is_move: bool) -> Option<CopyDialog> {
        let selection = source.selection();
        if selection.is_empty() {
            return None;
        }
        let dirs = selection.iter().filter(|e| e.is_dir_like()).count() as u64;
        let bytes = selection
            .iter()
            .filter(|e| e.kind == Kind::File)
            .map(|e| e.size)
            .sum();
        Some(CopyDialog {
            source: source.side,
            is_move,
            names: selection.iter().map(|e| e.name.clone()).collect(),
            files: selection.len() as u64 - dirs,
            dirs,
            bytes,
            base: dest.dir.clone(),
            input: LineInput::new(&typed_form(&dest.dir)),
            policy: 0,
            note: None,
            completing: None,
        })
    }

    /// The title: `Copy 3 items` / `Move notes.txt`.
    pub fn title(&self) -> String {
        let verb = if self.is_move { "Move" } else { "Copy" };
        match self.names.as_slice() {
            [one] => format!("{verb} {}", format::escape_name(one)),
            many => format!("{verb} {} items", format::count(many.len() as u64)),
        }
    }

    /// `2 files, 1 directory: 3.0 KiB + contents`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.files > 0 {
            parts.push(format::counted(self.files, "file", "files"));
        }
        if self.dirs > 0 {
            parts.push(format::counted(self.dirs, "directory", "directories"));
        }
        let contents = if self.dirs > 0 { " + contents" } else { "" };
        format!(
            "{}: {}{contents}",
            parts.join(", "),
            format::size(self.bytes)
        )
    }

    pub fn policy(&self) -> ConflictPolicy {
        POLICIES[self.policy].0
    }

    pub fn policy_name(&self) -> &'static str {
        POLICIES[self.policy].1
    }

    /// Where the typed text leads: the other pane's directory when empty, else the path,
    /// absolute or relative to that directory.
    pub fn destination(&self) -> Location {
        let text = self.input.text().trim();
        if text.is_empty() || text == typed_form(&self.base) {
            return self.base.clone();
        }
        without_trailing_slash(self.base.goto(text))
    }

    pub fn on_key(&mut self, key: &KeyEvent) -> Outcome {
        match key.code {
            KeyCode::Esc => Outcome::Close,
            KeyCode::Enter => Outcome::Start {
                dest: self.destination(),
                policy: self.policy(),
            },
            KeyCode::Up => {
                self.policy = (self.policy + POLICIES.len() - 1) % POLICIES.len();
                Outcome::Stay
            }
            KeyCode::Down => {
                self.policy = (self.policy + 1) % POLICIES.len();
                Outcome::Stay
            }
            KeyCode::Tab => {
                let (dir, _) = self.split();
                self.completing = Some(0);
                Outcome::List(dir)
            }
            _ => {
                if self.input.handle(key) {
                    self.note = None;
                    self.completing = None;
                }
                Outcome::Stay
            }
        }
    }

    /// The typed text's directory part as a location, and the name being typed after it.
    fn split(&self) -> (Location, String) {
        let text = self.input.text();
        match text.rfind('/') {
            Some(at) => {
                let (dir, prefix) = (&text[..=at], &text[at + 1..]);
                (
                    without_trailing_slash(self.base.goto(dir)),
                    prefix.to_owned(),
                )
            }
            None => (self.base.clone(), text.to_owned()),
        }
    }

    /// Completes the name being typed from `entries`, the listing of its directory: one
    /// matching directory is filled in with a `/`; several fill in what they share and are
    /// named below the field. A listing for text that changed since is ignored.
    pub fn complete_from(&mut self, entries: &[Entry]) {
        self.completing = None;
        let text = self.input.text().to_owned();
        let (_, prefix) = self.split();
        let head = &text[..text.len() - prefix.len()];
        let mut matches: Vec<&str> = entries
            .iter()
            .filter(|e| e.is_dir_like() && e.name.starts_with(&prefix))
            .map(|e| e.name.as_str())
            .collect();
        matches.sort_unstable();
        match matches.as_slice() {
            [] => {
                self.note = Some(format!(
                    "no directory here starts with `{}`",
                    format::escape_name(&prefix)
                ));
            }
            [one] => {
                self.input = LineInput::new(&format!("{head}{one}/"));
                self.note = None;
            }
            many => {
                let shared = shared_prefix(many);
                self.input = LineInput::new(&format!("{head}{shared}"));
                let mut names: Vec<String> = many
                    .iter()
                    .take(SHOWN_CANDIDATES)
                    .map(|n| format::escape_name(n).into_owned())
                    .collect();
                if many.len() > SHOWN_CANDIDATES {
                    names.push(format!("+{} more", many.len() - SHOWN_CANDIDATES));
                }
                self.note = Some(names.join("  "));
            }
        }
    }

    /// Whether the listing `serial` is the one a completion waits for.
    pub fn waits_for(&self, serial: u64) -> bool {
        self.completing == Some(serial)
    }

    /// Records the serial of the listing asked for the pending completion.
    pub fn asked(&mut self, serial: u64) {
        if self.completing.is_some() {
            self.completing = Some(serial);
        }
    }
}

/// A directory as typed in the field: a local path in the one display rule, or `/a/b`.
fn typed_form(dir: &Location) -> String {
    match dir {
        Location::Local(dir) => format::local_path(dir),
        remote => remote.display(),
    }
}

/// `a/b/` as `a/b`, so the same directory typed with a slash is the same location.
fn without_trailing_slash(location: Location) -> Location {
    match location {
        Location::Local(path) => {
            // `components` drops a trailing separator and `.` parts.
            Location::Local(path.components().collect())
        }
        Location::Remote(path) => Location::Remote(path.trim_end_matches('/').to_owned()),
    }
}

/// The longest start all of `names` share, on a character boundary.
fn shared_prefix<'a>(names: &[&'a str]) -> &'a str {
    let Some(first) = names.first() else {
        return "";
    };
    let mut end = first.len();
    for name in &names[1..] {
        let common = first
            .char_indices()
            .zip(name.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, a), _)| i + a.len_utf8());
        end = end.min(common);
    }
    &first[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::pane::tests::entry;
    use crossterm::event::KeyModifiers;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn panes() -> (Pane, Pane) {
        let mut local = Pane::new(Side::Local, Location::Local("/home/me".into()));
        local.set_listing(
            Location::Local("/home/me".into()),
            vec![
                entry("a.txt", Kind::File, 1000, 0),
                entry("b.bin", Kind::File, 24, 0),
                entry("photos", Kind::Dir, 4096, 0),
            ],
            None,
        );
        for name in ["a.txt", "b.bin", "photos"] {
            local.marks.insert(name.into());
        }
        let mut remote = Pane::new(Side::Remote, Location::Remote("data".into()));
        remote.set_listing(
            Location::Remote("data".into()),
            vec![
                entry("archive", Kind::Dir, 0, 0),
                entry("archive-old", Kind::Dir, 0, 0),
                entry("backup", Kind::Dir, 0, 0),
                entry("a.txt", Kind::File, 5, 0),
            ],
            None,
        );
        (local, remote)
    }

    #[test]
    fn defaults_to_the_other_pane_and_says_what_is_sent() {
        let (local, remote) = panes();
        let dialog = CopyDialog::new(&local, &remote, false).unwrap();
        assert_eq!(dialog.title(), "Copy 3 items");
        assert_eq!(dialog.input.text(), "/data");
        assert_eq!(dialog.summary(), "2 files, 1 directory: 1 KiB + contents");
        assert_eq!(dialog.destination(), Location::Remote("data".into()));
        assert_eq!(dialog.policy(), ConflictPolicy::Ask);
    }

    #[test]
    fn typed_paths_are_absolute_or_relative_to_the_other_pane() {
        let (local, remote) = panes();
        let mut dialog = CopyDialog::new(&local, &remote, true).unwrap();
        dialog.input = LineInput::new("new/sub/");
        assert_eq!(
            dialog.destination(),
            Location::Remote("data/new/sub".into())
        );
        dialog.input = LineInput::new("/elsewhere");
        assert_eq!(dialog.destination(), Location::Remote("elsewhere".into()));
        dialog.input = LineInput::new("");
        assert_eq!(dialog.destination(), Location::Remote("data".into()));
        let mut back = CopyDialog::new(&remote, &local, false).unwrap();
        back.input = LineInput::new("in/here/");
        assert_eq!(
            back.destination(),
            Location::Local("/home/me/in/here".into())
        );
    }

    #[test]
    fn up_and_down_cycle_the_policy_and_enter_starts_with_it() {
        let (local, remote) = panes();
        let mut dialog = CopyDialog::new(&local, &remote, false).unwrap();
        dialog.on_key(&key(KeyCode::Down));
        dialog.on_key(&key(KeyCode::Down));
        assert_eq!(dialog.policy_name(), "overwrite if newer");
        dialog.on_key(&key(KeyCode::Up));
        dialog.on_key(&key(KeyCode::Up));
        dialog.on_key(&key(KeyCode::Up));
        assert_eq!(dialog.policy(), ConflictPolicy::Rename);
        assert_eq!(
            dialog.on_key(&key(KeyCode::Enter)),
            Outcome::Start {
                dest: Location::Remote("data".into()),
                policy: ConflictPolicy::Rename
            }
        );
        assert_eq!(dialog.on_key(&key(KeyCode::Esc)), Outcome::Close);
    }

    #[test]
    fn tab_completes_directories_one_or_what_they_share() {
        let (local, remote) = panes();
        let mut dialog = CopyDialog::new(&local, &remote, false).unwrap();
        dialog.input = LineInput::new("/data/ar");
        assert_eq!(
            dialog.on_key(&key(KeyCode::Tab)),
            Outcome::List(Location::Remote("data".into()))
        );
        dialog.complete_from(&remote.entries);
        assert_eq!(dialog.input.text(), "/data/archive");
        assert_eq!(dialog.note.as_deref(), Some("archive  archive-old"));
        dialog.input = LineInput::new("/data/b");
        dialog.complete_from(&remote.entries);
        assert_eq!(dialog.input.text(), "/data/backup/");
        dialog.input = LineInput::new("/data/a.t");
        dialog.complete_from(&remote.entries);
        assert_eq!(dialog.input.text(), "/data/a.t", "files are not offered");
        assert!(dialog.note.as_deref().unwrap().contains("no directory"));
        dialog.input = LineInput::new("/data/backup/x");
        assert_eq!(
            dialog.on_key(&key(KeyCode::Tab)),
            Outcome::List(Location::Remote("data/backup".into()))
        );
        assert!(dialog.completing.is_some());
    }

    #[test]
    fn shared_prefix_stops_at_the_first_difference() {
        assert_eq!(shared_prefix(&["archive", "archive-old"]), "archive");
        assert_eq!(shared_prefix(&["abc", "abd", "ab"]), "ab");
        assert_eq!(shared_prefix(&["é1", "é2"]), "é");
        assert_eq!(shared_prefix(&["x"]), "x");
    }
}
