//! Rendering: pure functions from a [`View`] (the state a frame shows) to a frame. Nothing here
//! changes state, so every screen can be snapshot-tested against ratatui's `TestBackend`.
//!
//! Where things go comes from [`super::layout`], which the mouse handling shares, so a click
//! lands on the row that was drawn.

mod chmod;
mod details;
mod dialog;
mod find;
mod listing;
mod status;
mod sync;
mod transfers;
pub mod viewer;

use std::collections::{HashSet, VecDeque};

use ratatui::Frame;
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::chmod::ChmodDialog;
use super::conflict::ConflictPrompt;
use super::dialogs::Dialog;
use super::find::FindList;
use super::input::LineInput;
use super::jobs::{self, JobKey, JobRow};
use super::keymap::Keymap;
use super::layout::{self, MIN_HEIGHT, MIN_WIDTH};
use super::mouse::Drag;
use super::pane::{Pane, Side};
use super::places::OtherServer;
use super::screen::{Banner, Focus};
use super::server_link::ServerLink;
use super::sync_dialog::SyncDialog;
use super::theme::Theme;

/// What one frame shows: the pieces of state the views read, borrowed for the draw. The views
/// take this rather than the app, so rendering depends on the state it shows and nothing else.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub local: &'a Pane,
    pub remote: &'a Pane,
    pub focus: Focus,
    pub keymap: &'a Keymap,
    pub theme: &'a Theme,
    pub conn: &'a ServerLink,
    /// A pane on another server than `conn`'s.
    pub other: Option<&'a OtherServer>,
    pub jobs: &'a [JobRow],
    /// The job the panel scrolls to.
    pub selected_job: usize,
    pub dialog: &'a Option<Dialog>,
    pub chmod: &'a Option<ChmodDialog>,
    pub find: &'a Option<FindList>,
    pub sync: &'a Option<SyncDialog>,
    pub conflicts: &'a VecDeque<ConflictPrompt>,
    /// The filter being typed in the focused pane.
    pub filtering: &'a Option<LineInput>,
    pub banner: &'a Option<Banner>,
    /// Files that arrived with a matching digest, by side and location key.
    pub verified: &'a HashSet<(Side, String)>,
    pub drag: &'a Option<Drag>,
    /// The rate limit for all transfers, in bytes per second; 0 for none.
    pub rate_limit: u64,
}

impl View<'_> {
    pub fn pane(&self, side: Side) -> &Pane {
        match side {
            Side::Local => self.local,
            Side::Remote => self.remote,
        }
    }

    /// The connection of the server `side`'s pane shows (when it shows one).
    pub fn link(&self, side: Side) -> &ServerLink {
        match self.other {
            Some(other) if other.side == side => &other.link,
            _ => self.conn,
        }
    }

    /// The number the user knows job `key` by.
    pub fn job_number(&self, key: JobKey) -> u64 {
        jobs::job_number(self.jobs, key)
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, view: &View<'_>) {
    let area = frame.area();
    frame.render_widget(Block::default().style(view.theme.base()), area);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "Terminal too small: {}x{}. ferry needs at least {MIN_WIDTH}x{MIN_HEIGHT}.",
            area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(Line::from(text))
                .wrap(Wrap { trim: true })
                .style(view.theme.base()),
            area,
        );
        return;
    }
    let areas = layout::layout(area, view.jobs.len(), view.banner.is_some());
    listing::draw(frame, view, Side::Local, areas.local);
    listing::draw(frame, view, Side::Remote, areas.remote);
    if let Some(panel) = areas.transfers {
        transfers::draw(frame, view, panel);
    }
    if let Some(banner) = areas.banner {
        status::draw_banner(frame, view, banner);
    }
    status::draw_status(frame, view, areas.status);
    if let Some(list) = view.find {
        find::draw(frame, view, area, list);
    }
    if let Some(dialog) = view.sync {
        sync::draw(frame, view, area, dialog);
    }
    if let Some(dialog) = view.chmod {
        chmod::draw(frame, view, area, dialog);
    }
    dialog::draw(frame, view, area);
    defuse(frame.buffer_mut());
}

/// The last line of defence against a hostile server: text from the network is escaped where
/// it is formatted, and whatever control or bidi character slipped through anyway becomes a
/// visible `?` here, so no cell can ever make the terminal clear, retitle or reorder the screen.
fn defuse(buffer: &mut ratatui::buffer::Buffer) {
    for cell in &mut buffer.content {
        if crate::format::escape_name(cell.symbol()) != cell.symbol() {
            cell.set_symbol("?");
        }
    }
}

/// Text cut to `width` columns with an ellipsis.
fn truncate(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let total: usize = text.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod snapshot_tests;

#[cfg(test)]
mod defuse_tests {
    use ratatui::buffer::Buffer;
    use ratatui::layout::Rect;

    #[test]
    fn no_cell_can_carry_a_control_or_bidi_character() {
        let mut buffer = Buffer::empty(Rect::new(0, 0, 6, 1));
        for (x, symbol) in ["a", "\u{1b}", "\u{9b}", "\u{202e}", "é", "\u{7}"]
            .into_iter()
            .enumerate()
        {
            buffer[(x as u16, 0)].set_symbol(symbol);
        }
        super::defuse(&mut buffer);
        let shown: Vec<&str> = buffer.content.iter().map(|cell| cell.symbol()).collect();
        assert_eq!(shown, ["a", "?", "?", "?", "é", "?"]);
    }
}
