//! Keys to actions: the presets shipped in `assets/keymaps/`, overridden per action by the
//! config's `[keys]` table.
//!
//! A binding is one key (`F5`) or a two-key sequence written with a space (`ctrl+x d`, mc's
//! prefix keys): the app holds the first key until the second comes.
//!
//! The keymap only says what a key means in the panes; dialogs and text prompts read keys
//! directly because typing a `q` into a prompt must never quit.
//!
//! Over 600 lines with its tests: the actions with their names and help text, the key syntax
//! and the lookups are one table seen three ways, and each change touches all three.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The built-in default keymap.
pub const DEFAULT_PRESET: &str = include_str!("../../../assets/keymaps/default.toml");
/// The vim-flavoured preset.
pub const VIM_PRESET: &str = include_str!("../../../assets/keymaps/vim.toml");

/// What a key asks for in the panes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Enter,
    Parent,
    SwitchPane,
    Mark,
    InvertMarks,
    MarkAll,
    Copy,
    Move,
    Mkdir,
    Delete,
    Rename,
    Filter,
    Refresh,
    Goto,
    ToggleHidden,
    SortNext,
    SortReverse,
    SortName,
    SortSize,
    SortTime,
    ToggleAttributes,
    Chmod,
    Find,
    SwitchPlace,
    Connect,
    Transfers,
    CancelJob,
    ClearFinished,
    RateLimit,
    PauseJob,
    JobUp,
    JobDown,
    RetryJob,
    Partials,
    Compare,
    Sync,
    View,
    Edit,
    Subshell,
    Help,
    Suspend,
    Quit,
}

impl Action {
    /// Every action, in the order the help screen lists them.
    pub const ALL: [Action; 48] = [
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Top,
        Action::Bottom,
        Action::Enter,
        Action::Parent,
        Action::SwitchPane,
        Action::Mark,
        Action::InvertMarks,
        Action::MarkAll,
        Action::Copy,
        Action::Move,
        Action::Mkdir,
        Action::Delete,
        Action::Rename,
        Action::Filter,
        Action::Refresh,
        Action::Goto,
        Action::ToggleHidden,
        Action::SortNext,
        Action::SortReverse,
        Action::SortName,
        Action::SortSize,
        Action::SortTime,
        Action::ToggleAttributes,
        Action::Chmod,
        Action::Find,
        Action::SwitchPlace,
        Action::Connect,
        Action::Transfers,
        Action::CancelJob,
        Action::ClearFinished,
        Action::RateLimit,
        Action::PauseJob,
        Action::JobUp,
        Action::JobDown,
        Action::RetryJob,
        Action::Partials,
        Action::Compare,
        Action::Sync,
        Action::View,
        Action::Edit,
        Action::Subshell,
        Action::Help,
        Action::Suspend,
        Action::Quit,
    ];

    /// The action's name in keymap files.
    pub fn name(self) -> &'static str {
        match self {
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::Enter => "enter",
            Action::Parent => "parent",
            Action::SwitchPane => "switch_pane",
            Action::Mark => "mark",
            Action::InvertMarks => "invert_marks",
            Action::MarkAll => "mark_all",
            Action::Copy => "copy",
            Action::Move => "move",
            Action::Mkdir => "mkdir",
            Action::Delete => "delete",
            Action::Rename => "rename",
            Action::Filter => "filter",
            Action::Refresh => "refresh",
            Action::Goto => "goto",
            Action::ToggleHidden => "toggle_hidden",
            Action::SortNext => "sort_next",
            Action::SortReverse => "sort_reverse",
            Action::SortName => "sort_name",
            Action::SortSize => "sort_size",
            Action::SortTime => "sort_time",
            Action::ToggleAttributes => "toggle_attributes",
            Action::Chmod => "chmod",
            Action::Find => "find",
            Action::SwitchPlace => "switch_place",
            Action::Connect => "connect",
            Action::Transfers => "transfers",
            Action::CancelJob => "cancel_job",
            Action::ClearFinished => "clear_finished",
            Action::RateLimit => "rate_limit",
            Action::PauseJob => "pause_job",
            Action::JobUp => "job_up",
            Action::JobDown => "job_down",
            Action::RetryJob => "retry_job",
            Action::Partials => "partials",
            Action::Compare => "compare",
            Action::Sync => "sync",
            Action::View => "view",
            Action::Edit => "edit",
            Action::Subshell => "subshell",
            Action::Help => "help",
            Action::Suspend => "suspend",
            Action::Quit => "quit",
        }
    }

    /// A short description for the help screen.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Up => "cursor up",
            Action::Down => "cursor down",
            Action::PageUp => "page up",
            Action::PageDown => "page down",
            Action::Top => "first entry",
            Action::Bottom => "last entry",
            Action::Enter => "enter directory, open a file",
            Action::Parent => "parent directory",
            Action::SwitchPane => "switch pane",
            Action::Mark => "mark / unmark",
            Action::InvertMarks => "invert marks",
            Action::MarkAll => "mark all",
            Action::Copy => "copy to the other pane",
            Action::Move => "move to the other pane",
            Action::Mkdir => "make directory",
            Action::Delete => "delete",
            Action::Rename => "rename",
            Action::Filter => "filter as you type",
            Action::Refresh => "refresh / reconnect",
            Action::Goto => "go to path",
            Action::ToggleHidden => "show / hide dotfiles",
            Action::SortNext => "sort: name, size, time",
            Action::SortReverse => "reverse sort",
            Action::SortName => "sort by name",
            Action::SortSize => "sort by size",
            Action::SortTime => "sort by time",
            Action::ToggleAttributes => "show / hide attribute columns",
            Action::Chmod => "change permissions",
            Action::Find => "find files by name (glob) below here",
            Action::SwitchPlace => "switch this pane: server / local",
            Action::Connect => "connect to a server",
            Action::Transfers => "focus the transfer list",
            Action::CancelJob => "cancel selected transfer",
            Action::ClearFinished => "clear finished transfers",
            Action::RateLimit => "rate limit: selected transfer / all",
            Action::PauseJob => "pause or resume selected transfer",
            Action::JobUp => "move queued transfer up",
            Action::JobDown => "move queued transfer down",
            Action::RetryJob => "retry failed transfer's failed files",
            Action::Partials => "remote partial uploads",
            Action::Compare => "compare panes (dirs not descended)",
            Action::Sync => "sync this directory into the other",
            Action::View => "view the file (text or hex)",
            Action::Edit => "edit the file with $VISUAL / $EDITOR",
            Action::Subshell => "shell in the local directory",
            Action::Help => "this help",
            Action::Suspend => "suspend to the shell (fg resumes)",
            Action::Quit => "quit",
        }
    }
}

impl FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("unknown action `{s}`"))
    }
}

/// The actions the status bar offers, with their short labels, in the order they are drawn
/// (by function key, as mc does).
const KEY_BAR: [(Action, &str); 9] = [
    (Action::Help, "help"),
    (Action::View, "view"),
    (Action::Edit, "edit"),
    (Action::Copy, "copy"),
    (Action::Move, "move"),
    (Action::Mkdir, "mkdir"),
    (Action::Delete, "del"),
    (Action::Connect, "connect"),
    (Action::Quit, "quit"),
];

/// The same actions, most needed first: a narrow bar drops hints from the end of this list.
/// Help is how a new user finds every other key, and quit how to leave; viewing and editing
/// have Enter and the help screen besides, so they rank past `layout::EXTRA_RANK`.
const KEY_BAR_NEED: [Action; 9] = [
    Action::Help,
    Action::Quit,
    Action::Copy,
    Action::Move,
    Action::Mkdir,
    Action::Delete,
    Action::Connect,
    Action::View,
    Action::Edit,
];

/// How much a status bar hint for `action` is needed (lower is more), for `layout::key_bar`.
pub fn bar_rank(action: Action) -> usize {
    KEY_BAR_NEED
        .iter()
        .position(|&a| a == action)
        .unwrap_or(KEY_BAR_NEED.len())
}

/// One key with its modifiers, normalised so a lookup matches what the terminal sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl Key {
    /// Normalises a terminal key event: shift is folded into the character (`G`, `*`), since
    /// terminals disagree about reporting it for printable keys.
    pub fn from_event(event: &KeyEvent) -> Key {
        let mut modifiers =
            event.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match event.code {
            KeyCode::Char(c) => {
                modifiers.remove(KeyModifiers::SHIFT);
                if modifiers.contains(KeyModifiers::CONTROL) {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            KeyCode::BackTab => {
                modifiers.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Key { code, modifiers }
    }
}

impl FromStr for Key {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.len() > 5 && lower.starts_with("ctrl+") {
                modifiers |= KeyModifiers::CONTROL;
                rest = &rest[5..];
            } else if rest.len() > 4 && lower.starts_with("alt+") {
                modifiers |= KeyModifiers::ALT;
                rest = &rest[4..];
            } else if rest.len() > 6 && lower.starts_with("shift+") {
                modifiers |= KeyModifiers::SHIFT;
                rest = &rest[6..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => {
                if modifiers.contains(KeyModifiers::SHIFT) {
                    modifiers.remove(KeyModifiers::SHIFT);
                    KeyCode::Char(c.to_ascii_uppercase())
                } else if modifiers.contains(KeyModifiers::CONTROL) {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            _ => named_key(rest).ok_or_else(|| format!("unknown key `{s}`"))?,
        };
        // Terminals send Shift+Tab as its own key.
        let code = if code == KeyCode::Tab && modifiers.contains(KeyModifiers::SHIFT) {
            modifiers.remove(KeyModifiers::SHIFT);
            KeyCode::BackTab
        } else {
            code
        };
        Ok(Key { code, modifiers })
    }
}

/// A two-key sequence written with a space: `ctrl+x d`.
fn parse_chord(text: &str) -> Result<(Key, Key), String> {
    match text.split_whitespace().collect::<Vec<_>>().as_slice() {
        [first, second] => Ok((first.parse()?, second.parse()?)),
        _ => Err(format!("unknown key `{text}`: a sequence is two keys")),
    }
}

fn named_key(name: &str) -> Option<KeyCode> {
    let lower = name.to_ascii_lowercase();
    let code = match lower.as_str() {
        "enter" | "return" => KeyCode::Enter,
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "backspace" => KeyCode::Backspace,
        "delete" | "del" => KeyCode::Delete,
        "insert" | "ins" => KeyCode::Insert,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "pageup" | "pgup" => KeyCode::PageUp,
        "pagedown" | "pgdn" => KeyCode::PageDown,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "esc" | "escape" => KeyCode::Esc,
        "space" => KeyCode::Char(' '),
        f if f.starts_with('f') => {
            let n: u8 = f[1..].parse().ok()?;
            if !(1..=24).contains(&n) {
                return None;
            }
            KeyCode::F(n)
        }
        _ => return None,
    };
    Some(code)
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl+")?;
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            f.write_str("Alt+")?;
        }
        if self.modifiers.contains(KeyModifiers::SHIFT) {
            f.write_str("Shift+")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) if self.modifiers.contains(KeyModifiers::CONTROL) => {
                write!(f, "{}", c.to_ascii_uppercase())
            }
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "F{n}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("Shift+Tab"),
            KeyCode::Backspace => f.write_str("Backspace"),
            KeyCode::Delete => f.write_str("Delete"),
            KeyCode::Insert => f.write_str("Insert"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Up => f.write_str("Up"),
            KeyCode::Down => f.write_str("Down"),
            KeyCode::Left => f.write_str("Left"),
            KeyCode::Right => f.write_str("Right"),
            KeyCode::Esc => f.write_str("Esc"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// A keymap file: `[keys] action = ["key", ...]`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapFile {
    #[serde(default)]
    keys: BTreeMap<String, Vec<String>>,
}

/// Which keys do which action.
#[derive(Debug, Clone)]
pub struct Keymap {
    by_key: HashMap<Key, Action>,
    by_action: BTreeMap<Action, Vec<Key>>,
    /// Two-key sequences (`ctrl+x d`), by their keys and by action.
    by_chord: HashMap<(Key, Key), Action>,
    chords: BTreeMap<Action, Vec<(Key, Key)>>,
}

impl Default for Keymap {
    fn default() -> Self {
        // The shipped preset is checked by a test, so an error here cannot reach a user.
        Keymap::from_toml(DEFAULT_PRESET).unwrap_or_else(|_| Keymap::empty())
    }
}

impl Keymap {
    fn empty() -> Keymap {
        Keymap {
            by_key: HashMap::new(),
            by_action: BTreeMap::new(),
            by_chord: HashMap::new(),
            chords: BTreeMap::new(),
        }
    }

    /// Reads a keymap file's text.
    pub fn from_toml(text: &str) -> Result<Keymap, String> {
        let file: KeymapFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut keymap = Keymap::empty();
        keymap.apply(&file.keys)?;
        Ok(keymap)
    }

    /// A built-in preset by name.
    pub fn preset(name: &str) -> Option<&'static str> {
        match name {
            "default" => Some(DEFAULT_PRESET),
            "vim" => Some(VIM_PRESET),
            _ => None,
        }
    }

    /// Replaces the keys of each named action; a key taken from another action moves here.
    pub fn apply(&mut self, overrides: &BTreeMap<String, Vec<String>>) -> Result<(), String> {
        for (name, keys) in overrides {
            let action: Action = name.parse()?;
            let (chords, keys): (Vec<&String>, Vec<&String>) =
                keys.iter().partition(|k| k.trim().contains(' '));
            let keys = keys
                .iter()
                .map(|k| k.parse::<Key>())
                .collect::<Result<Vec<_>, _>>()?;
            let chords = chords
                .iter()
                .map(|k| parse_chord(k))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(old) = self.by_action.remove(&action) {
                for key in old {
                    self.by_key.remove(&key);
                }
            }
            for chord in self.chords.remove(&action).unwrap_or_default() {
                self.by_chord.remove(&chord);
            }
            for chord in &chords {
                if let Some(previous) = self.by_chord.insert(*chord, action)
                    && previous != action
                    && let Some(list) = self.chords.get_mut(&previous)
                {
                    list.retain(|c| c != chord);
                }
            }
            self.chords.insert(action, chords);
            for key in &keys {
                if let Some(previous) = self.by_key.insert(*key, action)
                    && previous != action
                    && let Some(list) = self.by_action.get_mut(&previous)
                {
                    list.retain(|k| k != key);
                }
            }
            self.by_action.insert(action, keys);
        }
        Ok(())
    }

    /// The action bound to a key event, if any.
    pub fn action(&self, event: &KeyEvent) -> Option<Action> {
        self.by_key.get(&Key::from_event(event)).copied()
    }

    /// Whether `event` starts a two-key sequence: the app waits for the second key.
    pub fn is_prefix(&self, event: &KeyEvent) -> bool {
        let key = Key::from_event(event);
        self.by_chord.keys().any(|(first, _)| *first == key)
    }

    /// The action of the sequence `first` then `event`, if any.
    pub fn chord(&self, first: Key, event: &KeyEvent) -> Option<Action> {
        self.by_chord.get(&(first, Key::from_event(event))).copied()
    }

    /// Every binding of an action as shown in help: single keys, then sequences (`Ctrl+X d`).
    pub fn bindings(&self, action: Action) -> Vec<String> {
        let chords = self.chords.get(&action).map(Vec::as_slice).unwrap_or(&[]);
        self.keys(action)
            .iter()
            .map(ToString::to_string)
            .chain(chords.iter().map(|(a, b)| format!("{a} {b}")))
            .collect()
    }

    /// The keys bound to an action, in the order the file gave them.
    pub fn keys(&self, action: Action) -> &[Key] {
        self.by_action
            .get(&action)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The first key of an action, for hints like "F5 copy".
    pub fn hint(&self, action: Action) -> String {
        self.bindings(action)
            .into_iter()
            .next()
            .unwrap_or_else(|| "-".to_string())
    }

    /// The status bar's key hints (`F5 copy`), in order, with the action each stands for: the
    /// view draws them and a click on one does its action.
    pub fn bar_hints(&self) -> Vec<(Action, String)> {
        KEY_BAR
            .iter()
            .map(|&(action, label)| (action, format!("{} {label}", self.hint(action))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn presets_parse_and_bind_every_action() {
        for text in [DEFAULT_PRESET, VIM_PRESET] {
            let keymap = Keymap::from_toml(text).unwrap();
            for action in Action::ALL {
                assert!(!keymap.bindings(action).is_empty(), "{action:?} has no key");
            }
        }
    }

    #[test]
    fn default_keys_resolve() {
        let keymap = Keymap::default();
        for (code, modifiers, action) in [
            (KeyCode::Char('j'), KeyModifiers::NONE, Some(Action::Down)),
            (KeyCode::F(5), KeyModifiers::NONE, Some(Action::Copy)),
            (
                KeyCode::Char('r'),
                KeyModifiers::CONTROL,
                Some(Action::Refresh),
            ),
            (
                KeyCode::Char('*'),
                KeyModifiers::SHIFT,
                Some(Action::InvertMarks),
            ),
            (KeyCode::Char(' '), KeyModifiers::NONE, Some(Action::Mark)),
            (
                KeyCode::BackTab,
                KeyModifiers::SHIFT,
                Some(Action::SwitchPane),
            ),
            (KeyCode::Char('G'), KeyModifiers::SHIFT, None),
        ] {
            assert_eq!(keymap.action(&press(code, modifiers)), action, "{code:?}");
        }
    }

    #[test]
    fn vim_preset_adds_motions() {
        let keymap = Keymap::from_toml(VIM_PRESET).unwrap();
        for (code, modifiers, action) in [
            (
                KeyCode::Char('G'),
                KeyModifiers::SHIFT,
                Some(Action::Bottom),
            ),
            (KeyCode::Char('g'), KeyModifiers::NONE, Some(Action::Top)),
            (KeyCode::Char('y'), KeyModifiers::NONE, Some(Action::Copy)),
        ] {
            assert_eq!(keymap.action(&press(code, modifiers)), action, "{code:?}");
        }
    }

    #[test]
    fn overrides_replace_an_action_and_steal_its_keys() {
        let mut keymap = Keymap::default();
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "copy".to_string(),
            vec!["ctrl+c".to_string(), "q".to_string()],
        );
        keymap.apply(&overrides).unwrap();
        assert_eq!(
            keymap.action(&press(KeyCode::F(5), KeyModifiers::NONE)),
            None
        );
        assert_eq!(
            keymap.action(&press(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Copy)
        );
        assert_eq!(
            keymap.action(&press(KeyCode::Char('q'), KeyModifiers::NONE)),
            Some(Action::Copy)
        );
        assert_eq!(keymap.keys(Action::Quit), &["F10".parse::<Key>().unwrap()]);
    }

    #[test]
    fn bad_names_are_reported() {
        let mut keymap = Keymap::default();
        let mut overrides = BTreeMap::new();
        overrides.insert("fly".to_string(), vec!["F5".to_string()]);
        assert_eq!(
            keymap.apply(&overrides).unwrap_err(),
            "unknown action `fly`"
        );
        let mut overrides = BTreeMap::new();
        overrides.insert("copy".to_string(), vec!["Hyper+F5".to_string()]);
        assert!(
            keymap
                .apply(&overrides)
                .unwrap_err()
                .contains("unknown key")
        );
    }

    #[test]
    fn a_two_key_sequence_waits_for_its_second_key() {
        for text in [DEFAULT_PRESET, VIM_PRESET] {
            let keymap = Keymap::from_toml(text).unwrap();
            let ctrl_x = press(KeyCode::Char('x'), KeyModifiers::CONTROL);
            assert!(keymap.is_prefix(&ctrl_x));
            assert_eq!(keymap.action(&ctrl_x), None);
            let first = Key::from_event(&ctrl_x);
            assert_eq!(
                keymap.chord(first, &press(KeyCode::Char('d'), KeyModifiers::NONE)),
                Some(Action::Compare)
            );
            assert_eq!(
                keymap.chord(first, &press(KeyCode::Char('q'), KeyModifiers::NONE)),
                None
            );
            assert_eq!(
                keymap.action(&press(KeyCode::Char('='), KeyModifiers::NONE)),
                Some(Action::Compare)
            );
            assert_eq!(keymap.bindings(Action::Compare), ["=", "Ctrl+X d"]);
        }
        let mut keymap = Keymap::default();
        let mut overrides = BTreeMap::new();
        overrides.insert("help".to_string(), vec!["ctrl+x d".to_string()]);
        keymap.apply(&overrides).unwrap();
        assert_eq!(keymap.bindings(Action::Compare), ["="]);
        assert_eq!(
            keymap.chord(
                "ctrl+x".parse().unwrap(),
                &press(KeyCode::Char('d'), KeyModifiers::NONE)
            ),
            Some(Action::Help)
        );
        assert!(
            keymap
                .apply(&BTreeMap::from([(
                    "compare".to_string(),
                    vec!["a b c".to_string()]
                )]))
                .unwrap_err()
                .contains("two keys")
        );
    }

    #[test]
    fn keys_display_like_they_are_written() {
        for text in [
            "ctrl+r", "F5", "Space", "alt+n", "PgUp", "BackTab", "G", "*",
        ] {
            let key: Key = text.parse().unwrap();
            let shown = key.to_string();
            assert_eq!(shown.parse::<Key>().unwrap(), key, "{text} -> {shown}");
        }
    }
}
