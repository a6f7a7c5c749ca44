//! The bottom lines: the banner (errors, lost connection, finished jobs) and the status bar
//! with the server, its connection state and the main keys.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use unicode_width::UnicodeWidthStr;

use super::super::keymap;
use super::super::layout;
use super::super::screen::BannerKind;
use super::super::server_link::ConnState;
use super::View;
use super::truncate;

pub fn draw_banner(frame: &mut Frame, view: &View, area: Rect) {
    let Some(banner) = &view.banner else { return };
    let (style, icon) = match banner.kind {
        BannerKind::Error => (view.theme.error(), "✗"),
        BannerKind::Info => (view.theme.info(), "✓"),
        BannerKind::Cancelled => (view.theme.info(), "⊘"),
    };
    // Errors quote the server's own words, which may hold escape sequences.
    let text = format!(" {icon} {}", crate::format::escape_name(&banner.text));
    let hint = " (Esc) ";
    let room = usize::from(area.width).saturating_sub(hint.len());
    let text = truncate(&text, room);
    let pad = room.saturating_sub(unicode_width::UnicodeWidthStr::width(text.as_str()));
    let line = Line::from(vec![
        Span::raw(text),
        Span::raw(" ".repeat(pad)),
        Span::raw(hint),
    ]);
    frame.render_widget(Paragraph::new(line).style(style), area);
}

pub fn draw_status(frame: &mut Frame, view: &View, area: Rect) {
    let theme = &view.theme;
    let conn = &view.conn;
    // The summary holds the `[tls]` and `[read-only]` markers: before the server's name,
    // which is the first thing cut when the bar is short, since what the user may do and
    // whether the link is encrypted matter more than which version serves it.
    let mut left = conn.summary();
    let core_width = unicode_width::UnicodeWidthStr::width(left.as_str());
    // Also before the name: a limit slows every transfer, and says why they are slow.
    if view.rate_limit > 0 {
        left.push_str(&format!(
            " [limit {}]",
            super::super::rate::label(view.rate_limit)
        ));
    }
    match (&conn.bundled, &conn.server) {
        (Some(dir), _) => left.push_str(&format!(
            " (bundled server: {})",
            crate::format::local_path(dir)
        )),
        (None, Some(server)) if conn.state == ConnState::Connected => {
            left.push_str(&format!(" ({})", crate::format::escape_name(server)));
        }
        _ => {}
    }
    if let Some(drag) = &view.drag
        && drag.moved
    {
        left.push_str(&format!(
            "  dragging {}",
            crate::format::escape_name(&drag.name)
        ));
    }
    let hints: Vec<String> = view
        .keymap
        .bar_hints()
        .into_iter()
        .map(|(_, hint)| hint)
        .collect();
    let widths: Vec<usize> = hints
        .iter()
        .map(|h| UnicodeWidthStr::width(h.as_str()))
        .collect();
    let width = usize::from(area.width);
    // Where layout puts them, which is where a click finds them.
    let ranks: Vec<usize> = view
        .keymap
        .bar_hints()
        .into_iter()
        .map(|(action, _)| keymap::bar_rank(action))
        .collect();
    let shown: Vec<&str> = layout::key_bar(area, core_width, &widths, &ranks)
        .into_iter()
        .filter_map(|(i, _)| hints.get(i).map(String::as_str))
        .collect();
    let right = format!("{} ", shown.join(&" ".repeat(layout::KEY_GAP)));
    let right_width = unicode_width::UnicodeWidthStr::width(right.as_str());
    let left = truncate(&left, width.saturating_sub(right_width + 1));
    let pad = width
        .saturating_sub(unicode_width::UnicodeWidthStr::width(left.as_str()))
        .saturating_sub(unicode_width::UnicodeWidthStr::width(right.as_str()));
    let state_style = match conn.state {
        ConnState::Lost(_) => theme.error(),
        _ => theme.status().add_modifier(Modifier::BOLD),
    };
    let line = Line::from(vec![
        Span::styled(left, state_style),
        Span::raw(" ".repeat(pad)),
        Span::styled(right, Style::default()),
    ]);
    frame.render_widget(Paragraph::new(line).style(theme.status()), area);
}
