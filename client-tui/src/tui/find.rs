//! Find file (mc's Alt+?): a name pattern typed, then searched below the pane's directory on
//! its side, the matches listed as they arrive (the count grows while the walk goes on); Enter
//! on one goes to its directory with the cursor on it, Escape stops the search and closes.
//! The component owns its state and keys; the search itself runs off the UI thread
//! ([`crate::engine::find`]) and its news comes back through [`FindList::news`].

use crossterm::event::{KeyCode, KeyEvent};

use crate::engine::find::{FindEvent, MAX_FOUND};

use super::input::LineInput;
use super::location::{Location, Side};

/// Where a search is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Search {
    /// The pattern is being typed.
    Typing(LineInput),
    /// The walk goes on.
    Running,
    /// The walk ended: `Ok(true)` when it stopped at the most matches it keeps.
    Done(Result<bool, String>),
}

/// The find dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindList {
    pub side: Side,
    /// The directory searched.
    pub root: Location,
    pub pattern: String,
    /// Which search the news must belong to: one started after it replaces it.
    pub serial: u64,
    pub search: Search,
    /// Matches, relative to `root`, in the order found.
    pub found: Vec<String>,
    /// Entries looked at so far.
    pub scanned: u64,
    pub cursor: usize,
    /// Rows the last draw showed, for paging.
    pub height: usize,
}

/// What a key asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Start searching `dir` on `side` for `pattern`, as search `serial`.
    Start {
        side: Side,
        dir: Location,
        pattern: String,
        serial: u64,
    },
    /// Stop the search (if it runs) and close.
    Close,
    /// Stop the search, close, and show `name` in `dir`.
    Jump {
        side: Side,
        dir: Location,
        name: String,
    },
}

impl FindList {
    /// The dialog asking for a pattern to search the pane's directory `root` for.
    pub fn new(side: Side, root: Location, serial: u64) -> FindList {
        FindList {
            side,
            root,
            pattern: String::new(),
            serial,
            search: Search::Typing(LineInput::default()),
            found: Vec::new(),
            scanned: 0,
            cursor: 0,
            height: 10,
        }
    }

    /// A key; `None` when it changes only the dialog.
    pub fn on_key(&mut self, key: &KeyEvent) -> Option<Outcome> {
        if let Search::Typing(input) = &mut self.search {
            return match key.code {
                KeyCode::Esc => Some(Outcome::Close),
                KeyCode::Enter if input.text().is_empty() => None,
                KeyCode::Enter => {
                    self.pattern = input.text().to_owned();
                    self.search = Search::Running;
                    Some(Outcome::Start {
                        side: self.side,
                        dir: self.root.clone(),
                        pattern: self.pattern.clone(),
                        serial: self.serial,
                    })
                }
                _ => {
                    input.handle(key);
                    None
                }
            };
        }
        let last = self.found.len().saturating_sub(1);
        let page = self.height.max(2) - 1;
        match key.code {
            KeyCode::Esc => return Some(Outcome::Close),
            KeyCode::Enter => return self.jump(),
            KeyCode::Up | KeyCode::Char('k') => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => self.cursor = (self.cursor + 1).min(last),
            KeyCode::PageUp => self.cursor = self.cursor.saturating_sub(page),
            KeyCode::PageDown => self.cursor = (self.cursor + page).min(last),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = last,
            _ => {}
        }
        None
    }

    /// Where the match under the cursor is: its directory and its name there.
    fn jump(&self) -> Option<Outcome> {
        let rel = self.found.get(self.cursor)?;
        let (dir, name) = match rel.rsplit_once('/') {
            Some((parent, name)) => (self.root.join(parent), name),
            None => (self.root.clone(), rel.as_str()),
        };
        Some(Outcome::Jump {
            side: self.side,
            dir,
            name: name.to_owned(),
        })
    }

    /// News of search `serial`; dropped when it is not this one's.
    pub fn news(&mut self, serial: u64, event: FindEvent) {
        if serial != self.serial || self.search != Search::Running {
            return;
        }
        match event {
            FindEvent::Found { paths, scanned } => {
                let room = MAX_FOUND.saturating_sub(self.found.len());
                self.found.extend(paths.into_iter().take(room));
                self.scanned = scanned;
            }
            FindEvent::Done(end) => self.search = Search::Done(end),
        }
    }

    /// The first row shown, so that the cursor stays visible in `rows` rows.
    pub fn offset(&self, rows: usize) -> usize {
        self.cursor.saturating_sub(rows.max(1) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn a_pattern_starts_a_search_whose_matches_lead_to_their_directory() {
        let root = Location::Remote("top".into());
        let mut find = FindList::new(Side::Remote, root, 7);
        for c in "*.txt".chars() {
            assert_eq!(find.on_key(&key(KeyCode::Char(c))), None);
        }
        assert_eq!(
            find.on_key(&key(KeyCode::Enter)),
            Some(Outcome::Start {
                side: Side::Remote,
                dir: Location::Remote("top".into()),
                pattern: "*.txt".into(),
                serial: 7
            })
        );
        let found = |paths: &[&str]| FindEvent::Found {
            paths: paths.iter().map(|p| p.to_string()).collect(),
            scanned: 10,
        };
        find.news(7, found(&["a.txt"]));
        // An older search's news is not this one's.
        find.news(6, found(&["stale.txt"]));
        find.news(7, found(&["deep/er/b.txt"]));
        assert_eq!(find.found, ["a.txt", "deep/er/b.txt"]);
        assert_eq!(find.search, Search::Running);
        find.on_key(&key(KeyCode::Down));
        assert_eq!(
            find.on_key(&key(KeyCode::Enter)),
            Some(Outcome::Jump {
                side: Side::Remote,
                dir: Location::Remote("top/deep/er".into()),
                name: "b.txt".into()
            })
        );
        find.news(7, FindEvent::Done(Ok(false)));
        assert_eq!(find.search, Search::Done(Ok(false)));
        assert_eq!(find.on_key(&key(KeyCode::Esc)), Some(Outcome::Close));
    }
}
