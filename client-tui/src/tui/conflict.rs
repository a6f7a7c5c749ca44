//! The question a destination that exists asks: which choice, and whether for all. The engine
//! waits on the reply channel until the user answers.

use crossterm::event::{KeyCode, KeyEvent};
use tokio::sync::oneshot;

use crate::engine::{ConflictAnswer, ConflictPolicy, FileFacts};

use super::jobs::JobKey;

/// The choices a conflict offers, with their shortcut keys. "If newer" and "if size differs"
/// are mc's Update: with "apply to all" they are decided for each later file by its own sizes
/// and times.
pub const CONFLICT_CHOICES: [(ConflictPolicy, &str, char); 6] = [
    (ConflictPolicy::Overwrite, "Overwrite", 'o'),
    (ConflictPolicy::OverwriteIfNewer, "If newer", 'u'),
    (
        ConflictPolicy::OverwriteIfSizeDiffers,
        "If size differs",
        'd',
    ),
    (ConflictPolicy::Skip, "Skip", 's'),
    (ConflictPolicy::Resume, "Resume", 'r'),
    (ConflictPolicy::Rename, "Keep both", 'n'),
];

/// A destination that exists, waiting for the user's answer.
#[derive(Debug)]
pub struct ConflictPrompt {
    pub job: JobKey,
    pub path: String,
    pub reply: Option<oneshot::Sender<ConflictAnswer>>,
    /// Index into [`CONFLICT_CHOICES`].
    pub selected: usize,
    pub apply_to_all: bool,
    /// Why the question comes again (the last answer could not be carried out).
    pub reason: Option<String>,
    /// The source's size and time, and the destination's (`None`: not a regular file).
    pub source: FileFacts,
    pub dest: Option<FileFacts>,
}

impl ConflictPrompt {
    /// A key press: moves the choice or toggles "for all", or returns the choice made.
    pub fn on_key(&mut self, key: &KeyEvent) -> Option<ConflictPolicy> {
        match key.code {
            KeyCode::Left | KeyCode::Up | KeyCode::BackTab => {
                self.selected =
                    (self.selected + CONFLICT_CHOICES.len() - 1) % CONFLICT_CHOICES.len();
                None
            }
            KeyCode::Right | KeyCode::Down | KeyCode::Tab => {
                self.selected = (self.selected + 1) % CONFLICT_CHOICES.len();
                None
            }
            KeyCode::Char('a') | KeyCode::Char(' ') => {
                self.apply_to_all = !self.apply_to_all;
                None
            }
            KeyCode::Enter => Some(CONFLICT_CHOICES[self.selected].0),
            KeyCode::Esc => Some(ConflictPolicy::Skip),
            KeyCode::Char(c) => CONFLICT_CHOICES
                .iter()
                .find(|(_, _, k)| *k == c.to_ascii_lowercase())
                .map(|(p, _, _)| *p),
            _ => None,
        }
    }
}
