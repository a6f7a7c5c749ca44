//! Rendering: pure functions from [`App`] to a frame. Nothing here changes state, so every
//! screen can be snapshot-tested against ratatui's `TestBackend`.
//!
//! [`layout`] is shared with the mouse handling, so a click lands on the row that was drawn.

mod details;
mod dialog;
mod pane;
mod status;
mod transfers;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::app::App;

/// The smallest terminal ferry draws in.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 10;
/// Rows between a pane's top edge and its first entry: the border and the column header.
pub const LIST_TOP: u16 = 2;
/// Most jobs the transfer panel shows at once.
const MAX_JOB_ROWS: u16 = 5;

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub local: Rect,
    pub remote: Rect,
    pub transfers: Option<Rect>,
    pub banner: Option<Rect>,
    pub status: Rect,
}

/// Lays the screen out for the current state.
pub fn layout(area: Rect, app: &App) -> Areas {
    let panel = if app.jobs.is_empty() {
        0
    } else {
        (app.jobs.len() as u16).min(MAX_JOB_ROWS) + 3
    };
    // The transfer panel gives way before the panes become useless.
    let panel = panel.min(area.height.saturating_sub(8));
    let banner = u16::from(app.banner.is_some());
    let [panes, transfers, banner_area, status] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(panel),
        Constraint::Length(banner),
        Constraint::Length(1),
    ])
    .areas(area);
    let [local, remote] =
        Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(panes);
    Areas {
        local,
        remote,
        transfers: (panel > 0).then_some(transfers),
        banner: (banner > 0).then_some(banner_area),
        status,
    }
}

/// How many entries fit in a pane drawn in `area`.
pub fn list_rows(area: Rect) -> usize {
    usize::from(area.height.saturating_sub(LIST_TOP + 1))
}

/// The first job the transfer panel in `panel` shows: it scrolls to keep the selection visible.
pub fn first_visible_job(app: &App, panel: Rect) -> usize {
    // Borders and the overall row take three rows.
    let rows = usize::from(panel.height.saturating_sub(3)).max(1);
    app.selected_job.saturating_sub(rows - 1)
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    frame.render_widget(Block::default().style(app.theme.base()), area);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "Terminal too small: {}x{}. ferry needs at least {MIN_WIDTH}x{MIN_HEIGHT}.",
            area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(Line::from(text))
                .wrap(Wrap { trim: true })
                .style(app.theme.base()),
            area,
        );
        return;
    }
    let areas = layout(area, app);
    pane::draw(frame, app, super::pane::Side::Local, areas.local);
    pane::draw(frame, app, super::pane::Side::Remote, areas.remote);
    if let Some(panel) = areas.transfers {
        transfers::draw(frame, app, panel);
    }
    if let Some(banner) = areas.banner {
        status::draw_banner(frame, app, banner);
    }
    status::draw_status(frame, app, areas.status);
    dialog::draw(frame, app, area);
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

/// A rectangle of at most `width` x `height` in the middle of `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
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

/// Text cut from the left, for paths whose end matters most.
fn truncate_left(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width || width == 0 {
        return text.to_string();
    }
    let tail: String = text.chars().skip(count - width + 1).collect();
    format!("…{tail}")
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
