//! A one-line text field for prompts and the filter: insert, delete, move, by character.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The text being typed and where the caret is (a char index, not a byte index).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineInput {
    text: String,
    cursor: usize,
}

impl LineInput {
    /// A field holding `text` with the caret at its end.
    pub fn new(text: &str) -> LineInput {
        LineInput {
            text: text.to_string(),
            cursor: text.chars().count(),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The caret position, in characters.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    fn byte_index(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(i, _)| i)
    }

    /// Applies an editing key; returns whether the text changed. Keys it does not know
    /// (Enter, Esc, Tab...) are left to the caller.
    pub fn handle(&mut self, key: &KeyEvent) -> bool {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('u') if ctrl => {
                let at = self.byte_index(self.cursor);
                self.text.replace_range(..at, "");
                self.cursor = 0;
                true
            }
            KeyCode::Char('a') if ctrl => {
                self.cursor = 0;
                false
            }
            KeyCode::Char('e') if ctrl => {
                self.cursor = self.text.chars().count();
                false
            }
            KeyCode::Char(c) if !ctrl => {
                let at = self.byte_index(self.cursor);
                self.text.insert(at, c);
                self.cursor += 1;
                true
            }
            KeyCode::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                let at = self.byte_index(self.cursor);
                self.text.remove(at);
                true
            }
            KeyCode::Delete if self.cursor < self.text.chars().count() => {
                let at = self.byte_index(self.cursor);
                self.text.remove(at);
                true
            }
            KeyCode::Left => {
                self.cursor = self.cursor.saturating_sub(1);
                false
            }
            KeyCode::Right => {
                self.cursor = (self.cursor + 1).min(self.text.chars().count());
                false
            }
            KeyCode::Home => {
                self.cursor = 0;
                false
            }
            KeyCode::End => {
                self.cursor = self.text.chars().count();
                false
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn edits_by_character() {
        let mut input = LineInput::new("héllo");
        assert_eq!(input.cursor(), 5);
        input.handle(&key(KeyCode::Left));
        input.handle(&key(KeyCode::Left));
        input.handle(&key(KeyCode::Left));
        input.handle(&key(KeyCode::Backspace));
        assert_eq!(input.text(), "hllo");
        input.handle(&key(KeyCode::Char('é')));
        input.handle(&key(KeyCode::End));
        input.handle(&key(KeyCode::Char('!')));
        assert_eq!(input.text(), "héllo!");
        input.handle(&key(KeyCode::Home));
        input.handle(&key(KeyCode::Delete));
        assert_eq!(input.text(), "éllo!");
        input.handle(&KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
        assert_eq!(input.text(), "éllo!");
    }
}
