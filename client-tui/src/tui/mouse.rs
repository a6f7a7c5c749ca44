//! The mouse's own state (the last click, to tell a double click, and a drag in progress) and
//! what a mouse event means on the screen as [`super::layout`] lays it out. The app applies the
//! [`Gesture`]; hit-testing uses the same arithmetic the views draw with.

use std::time::{Duration, Instant};

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Position;

use unicode_width::UnicodeWidthStr;

use super::keymap::{self, Action};
use super::layout::{self, Areas};
use super::location::Side;

/// Two clicks on the same row closer than this are a double click.
const DOUBLE_CLICK: Duration = Duration::from_millis(400);
/// Rows one wheel notch scrolls.
const WHEEL_ROWS: isize = 3;

/// A drag that started on a pane entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drag {
    pub side: Side,
    pub name: String,
    /// Whether the mouse moved with the button down (a plain click is not a drag).
    pub moved: bool,
}

/// The mouse between events.
#[derive(Debug, Default)]
pub struct Mouse {
    pub drag: Option<Drag>,
    last_click: Option<(Instant, Side, usize)>,
}

/// What a mouse event means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gesture {
    /// The wheel over a pane: scroll it by this many rows.
    Scroll(Side, isize),
    /// A click on the transfer panel's row of this job (it may be past the last job).
    Job(usize),
    /// A click in a pane: on the visible row `row` of its listing, if on one.
    Press(Side, Option<usize>),
    /// A drag from one pane released over the other, on its visible row `row` if on one: a
    /// folder's row means into that folder.
    Drop(Drag, Option<usize>),
    /// A click on a key hint in the status bar: what its key does.
    Key(Action),
    /// A click on a directory of a pane's title path, this many levels above the pane's.
    Title(Side, usize),
}

/// The status bar as drawn: its key hints (with their actions) and the width of the server
/// summary before them, which decides how many hints fit.
#[derive(Debug, Clone, Copy)]
pub struct KeyBar<'a> {
    pub hints: &'a [(Action, String)],
    pub summary: &'a str,
}

impl KeyBar<'_> {
    /// The action of the hint drawn at `at` in the status bar `status`.
    fn action_at(&self, status: ratatui::layout::Rect, at: Position) -> Option<Action> {
        let widths: Vec<usize> = self
            .hints
            .iter()
            .map(|(_, hint)| UnicodeWidthStr::width(hint.as_str()))
            .collect();
        let state = UnicodeWidthStr::width(self.summary);
        let ranks: Vec<usize> = self
            .hints
            .iter()
            .map(|&(action, _)| keymap::bar_rank(action))
            .collect();
        layout::key_bar(status, state, &widths, &ranks)
            .into_iter()
            .find(|(_, rect)| rect.contains(at))
            .and_then(|(i, _)| self.hints.get(i))
            .map(|&(action, _)| action)
    }
}

impl Mouse {
    /// What `event` means on a screen laid out as `areas`, with the transfer panel scrolled to
    /// show job `selected_job` and the status bar showing `bar`.
    pub fn gesture(
        &mut self,
        event: MouseEvent,
        areas: &Areas,
        selected_job: usize,
        bar: KeyBar<'_>,
        titles: [&layout::TitlePath; 2],
    ) -> Option<Gesture> {
        let at = Position::new(event.column, event.row);
        let side = if areas.local.contains(at) {
            Some(Side::Local)
        } else if areas.remote.contains(at) {
            Some(Side::Remote)
        } else {
            None
        };
        match event.kind {
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let delta = if event.kind == MouseEventKind::ScrollDown {
                    WHEEL_ROWS
                } else {
                    -WHEEL_ROWS
                };
                Some(Gesture::Scroll(side?, delta))
            }
            MouseEventKind::Down(MouseButton::Left) => match side {
                Some(side) => {
                    let (area, title) = if side == Side::Local {
                        (areas.local, titles[0])
                    } else {
                        (areas.remote, titles[1])
                    };
                    if let Some((_, up)) = title.segments.iter().find(|(rect, _)| rect.contains(at))
                    {
                        return Some(Gesture::Title(side, *up));
                    }
                    Some(Gesture::Press(side, layout::pane_row(area, event.row)))
                }
                None if areas.status.contains(at) => {
                    bar.action_at(areas.status, at).map(Gesture::Key)
                }
                None => {
                    let panel = areas.transfers.filter(|panel| panel.contains(at))?;
                    layout::job_at(panel, selected_job, event.row).map(Gesture::Job)
                }
            },
            MouseEventKind::Drag(MouseButton::Left) => {
                if let Some(drag) = self.drag.as_mut() {
                    drag.moved = true;
                }
                None
            }
            MouseEventKind::Up(MouseButton::Left) => {
                let drag = self
                    .drag
                    .take()
                    .filter(|drag| drag.moved && side == Some(drag.side.other()))?;
                let area = if drag.side == Side::Local {
                    areas.remote
                } else {
                    areas.local
                };
                Some(Gesture::Drop(drag, layout::pane_row(area, event.row)))
            }
            _ => None,
        }
    }

    /// A click at `now` on row `index` of the pane on `side`, the entry `name` (none on the
    /// `..` row, which cannot be dragged): `true` when it is the second of a double click;
    /// otherwise it may start a drag.
    pub fn clicked(
        &mut self,
        now: Instant,
        side: Side,
        index: usize,
        name: Option<String>,
    ) -> bool {
        let double = matches!(self.last_click, Some((t, s, i))
            if s == side && i == index && now.duration_since(t) <= DOUBLE_CLICK);
        if double {
            self.last_click = None;
            self.drag = None;
        } else {
            self.last_click = Some((now, side, index));
            self.drag = name.map(|name| Drag {
                side,
                name,
                moved: false,
            });
        }
        double
    }
}
