//! The partial-uploads dialog of the remote pane: the caller's hidden partial uploads in the
//! pane's directory (what a cancelled or broken upload left for a resume), with their size and
//! age, and a key to delete the selected one. Its own state, keys and outcome; the app only
//! opens it, runs what it asks for and feeds it the server's answers.

use std::time::{SystemTime, UNIX_EPOCH};

use crossterm::event::{KeyCode, KeyEvent};
use ferry_protocol::PartialEntry;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::theme::Theme;
use crate::format;

/// The dialog's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialsDialog {
    /// The remote directory shown (a wire path).
    pub dir: String,
    /// `None` while the server's answer is awaited.
    pub entries: Option<Vec<PartialEntry>>,
    pub selected: usize,
    /// The last failure, or what a deletion did.
    pub note: Option<String>,
    /// The server had more than it listed.
    pub more: bool,
}

/// What a key asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The dialog stays, maybe changed.
    Stay,
    Close,
    /// Delete the partial upload of this remote file (a wire path), then list again.
    Discard(String),
}

impl PartialsDialog {
    /// A dialog for `dir` waiting for its listing.
    pub fn new(dir: String) -> Self {
        Self {
            dir,
            entries: None,
            selected: 0,
            note: None,
            more: false,
        }
    }

    /// The server's listing (sorted by name here), or why there is none.
    pub fn listed(&mut self, result: Result<(Vec<PartialEntry>, bool), String>) {
        match result {
            Ok((mut entries, more)) => {
                entries.sort_by(|a, b| a.name.cmp(&b.name));
                self.selected = self.selected.min(entries.len().saturating_sub(1));
                self.entries = Some(entries);
                self.more = more;
            }
            Err(error) => {
                self.entries.get_or_insert_with(Vec::new);
                self.note = Some(error);
            }
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Outcome {
        let count = self.entries.as_ref().map_or(0, Vec::len);
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => return Outcome::Close,
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(count.saturating_sub(1));
            }
            KeyCode::Delete | KeyCode::F(8) | KeyCode::Char('d') => {
                if let Some(entry) = self.entries.as_ref().and_then(|e| e.get(self.selected)) {
                    let path = ferry_protocol::path::join(&self.dir, &entry.name);
                    self.note = Some(format!("deleting {}…", format::escape_name(&entry.name)));
                    return Outcome::Discard(path);
                }
            }
            _ => {}
        }
        Outcome::Stay
    }

    /// The title of the box.
    pub fn title(&self) -> String {
        let dir = if self.dir.is_empty() { "/" } else { &self.dir };
        format!("Partial uploads in {}", format::escape_name(dir))
    }

    /// The rows of the box: one per partial (size, age, name), then notes and key hints.
    pub fn lines(&self, theme: &Theme) -> Vec<Line<'static>> {
        let dim = Style::default().fg(theme.dim);
        let mut lines = Vec::new();
        match &self.entries {
            None => lines.push(Line::from(Span::styled("Asking the server…", dim))),
            Some(entries) if entries.is_empty() => {
                lines.push(Line::from(Span::styled("No partial uploads here.", dim)));
            }
            Some(entries) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                for (i, entry) in entries.iter().enumerate() {
                    let style = if i == self.selected {
                        Style::default().bg(theme.cursor_bg).fg(theme.cursor_fg)
                    } else {
                        Style::default()
                    };
                    let pointer = if i == self.selected { "›" } else { " " };
                    lines.push(Line::from(Span::styled(
                        format!(
                            "{pointer}{:>10}  {:>8}  {}",
                            format::size(entry.size),
                            age(now.saturating_sub(entry.mtime)),
                            format::escape_name(&entry.name)
                        ),
                        style,
                    )));
                }
            }
        }
        if self.more {
            lines.push(Line::from(Span::styled(
                "More than one listing holds: delete some and look again.",
                dim,
            )));
        }
        if let Some(note) = &self.note {
            lines.push(Line::from(format::escape_text(note).into_owned()));
        }
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            "Del / d: delete the partial    Esc: close",
            dim,
        )));
        lines
    }
}

/// How long ago, in the largest whole unit: `42 s ago`, `3 min ago`, `5 h ago`, `2 d ago`.
fn age(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => format!("{seconds} s ago"),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86_400 => format!("{} h ago", seconds / 3600),
        _ => format!("{} d ago", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn entry(name: &str) -> PartialEntry {
        PartialEntry {
            name: name.into(),
            size: 10,
            mtime: 0,
        }
    }

    #[test]
    fn delete_names_the_selected_partials_target_and_esc_closes() {
        let mut dialog = PartialsDialog::new("isos".into());
        assert_eq!(dialog.on_key(key(KeyCode::Delete)), Outcome::Stay);
        dialog.listed(Ok((vec![entry("b.iso"), entry("a.iso")], false)));
        dialog.on_key(key(KeyCode::Down));
        dialog.on_key(key(KeyCode::Down));
        assert_eq!(
            dialog.on_key(key(KeyCode::Char('d'))),
            Outcome::Discard("isos/b.iso".into())
        );
        assert_eq!(dialog.on_key(key(KeyCode::Esc)), Outcome::Close);
    }

    #[test]
    fn ages_read_in_one_unit() {
        assert_eq!(age(5), "5 s ago");
        assert_eq!(age(125), "2 min ago");
        assert_eq!(age(7200), "2 h ago");
        assert_eq!(age(3 * 86_400), "3 d ago");
        assert_eq!(age(-3), "0 s ago");
    }
}
