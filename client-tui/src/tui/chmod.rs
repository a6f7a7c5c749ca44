//! The permissions dialog (mc's Ctrl+X c): the bits of the entry under the cursor, or of the
//! marked entries, as twelve checkboxes and an octal number; keys edit them, Enter applies the
//! mode to every entry (on the server through its `attrs` request), Escape leaves them as they
//! were. The component owns its state and keys and returns what the app should do.

use crossterm::event::{KeyCode, KeyEvent};
use ferry_protocol::Kind;

use super::location::{Location, Side};
use super::pane::Pane;

/// The bits in the order the dialog lists them, with their labels.
pub const BITS: [(u32, &str); 12] = [
    (0o400, "owner read"),
    (0o200, "owner write"),
    (0o100, "owner execute"),
    (0o040, "group read"),
    (0o020, "group write"),
    (0o010, "group execute"),
    (0o004, "others read"),
    (0o002, "others write"),
    (0o001, "others execute"),
    (0o4000, "set user id"),
    (0o2000, "set group id"),
    (0o1000, "sticky"),
];

/// The dialog's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChmodDialog {
    pub side: Side,
    /// The entries the mode is applied to.
    pub targets: Vec<Location>,
    /// What the title names: the entry, or how many there are.
    pub what: String,
    /// The kind of the first entry, for the `drwx` preview.
    pub kind: Kind,
    pub mode: u32,
    /// The row of [`BITS`] the cursor is on.
    pub cursor: usize,
    /// Octal digits typed in a row (up to four): they are the mode, as `chmod 750` reads.
    pub typed: String,
}

/// What a key asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Set `mode` on every path of `side`.
    Apply {
        side: Side,
        paths: Vec<Location>,
        mode: u32,
    },
    /// Leave everything as it is.
    Cancel,
}

impl ChmodDialog {
    /// The dialog for the pane's selection (marked entries, or the one under the cursor).
    /// Symlinks are left out: a link has no bits of its own to change (Linux ignores them), and
    /// changing its target's through it is what the server refuses too.
    pub fn open(side: Side, pane: &Pane) -> Result<ChmodDialog, String> {
        let selection: Vec<_> = pane
            .selection()
            .into_iter()
            .filter(|e| e.kind != Kind::Symlink)
            .collect();
        let Some(first) = selection.first() else {
            return Err(if pane.on_parent_row() && pane.marks.is_empty() {
                "`..` is the parent directory: its permissions are changed from there".into()
            } else {
                "Nothing to change: a symlink has no permissions of its own".into()
            });
        };
        let what = match selection.as_slice() {
            [one] => crate::format::escape_name(&one.name).into_owned(),
            many => format!("{} entries", many.len()),
        };
        Ok(ChmodDialog {
            side,
            targets: selection.iter().map(|e| pane.dir.join(&e.name)).collect(),
            what,
            kind: first.kind,
            mode: first.mode & 0o7777,
            cursor: 0,
            typed: String::new(),
        })
    }

    /// A key: moving between bits, toggling one (Space, `x`), typing the mode in octal (`7`
    /// `5` `0` gives 0750, as `chmod 750` does; a fifth digit starts over), Enter to apply,
    /// Escape to cancel. Other keys do nothing.
    pub fn on_key(&mut self, key: &KeyEvent) -> Option<Outcome> {
        if let KeyCode::Char(c @ '0'..='7') = key.code {
            if self.typed.len() == 4 {
                self.typed.clear();
            }
            self.typed.push(c);
            self.mode = u32::from_str_radix(&self.typed, 8).unwrap_or(self.mode) & 0o7777;
            return None;
        }
        self.typed.clear();
        match key.code {
            KeyCode::Esc => return Some(Outcome::Cancel),
            KeyCode::Enter => {
                return Some(Outcome::Apply {
                    side: self.side,
                    paths: self.targets.clone(),
                    mode: self.mode,
                });
            }
            KeyCode::Up | KeyCode::Char('k') => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') | KeyCode::Tab => {
                self.cursor = (self.cursor + 1).min(BITS.len() - 1);
            }
            KeyCode::Char(' ' | 'x') => self.mode ^= BITS[self.cursor].0,
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::pane::tests::entry;
    use crossterm::event::KeyModifiers;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn bits_toggle_and_octal_shifts_in() {
        let mut pane = Pane::new(Side::Local, Location::Local("/d".into()));
        let mut file = entry("f", Kind::File, 1, 0);
        file.mode = 0o644;
        let mut link = entry("l", Kind::Symlink, 1, 0);
        link.mode = 0o777;
        pane.set_listing(Location::Local("/d".into()), vec![file, link], Some("f"));
        let mut dialog = ChmodDialog::open(Side::Local, &pane).unwrap();
        assert_eq!((dialog.mode, dialog.what.as_str()), (0o644, "f"));
        dialog.on_key(&key(KeyCode::Down));
        dialog.on_key(&key(KeyCode::Down));
        dialog.on_key(&key(KeyCode::Char(' ')));
        assert_eq!(dialog.mode, 0o744);
        for c in ['7', '5', '0'] {
            dialog.on_key(&key(KeyCode::Char(c)));
        }
        assert_eq!(dialog.mode, 0o750);
        assert_eq!(
            dialog.on_key(&key(KeyCode::Enter)),
            Some(Outcome::Apply {
                side: Side::Local,
                paths: vec![Location::Local("/d/f".into())],
                mode: 0o750
            })
        );
        // A link alone has nothing to change.
        pane.set_listing(
            Location::Local("/d".into()),
            pane.entries.clone(),
            Some("l"),
        );
        assert!(ChmodDialog::open(Side::Local, &pane).is_err());
    }
}
