//! Find file: the pattern being typed, then the matches as they arrive, with how many there
//! are and whether the search still runs.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::super::find::{FindList, Search};
use super::super::layout::centered;
use super::View;
use super::dialog::block;
use super::truncate;
use crate::engine::find::MAX_FOUND;
use crate::format;

pub fn draw(frame: &mut Frame, view: &View, area: Rect, list: &FindList) {
    let theme = &view.theme;
    let width = area.width.saturating_sub(4).min(90);
    let height = area.height.saturating_sub(4).clamp(6, 24);
    let popup = centered(area, width, height);
    let title = format!("Find in {}", list.root.shown());
    let block = block(
        view,
        &truncate(&title, usize::from(width.saturating_sub(4))),
    );
    let inner = block.inner(popup);
    frame.render_widget(Clear, popup);
    frame.render_widget(block, popup);
    let room = usize::from(inner.width);
    let mut lines = Vec::new();
    match &list.search {
        Search::Typing(input) => {
            lines.push(Line::from(format!(
                "Name (glob: *.txt, report-202?; plain text: contained): {}▏",
                format::escape_name(input.text())
            )));
            lines.push(Line::from(Span::styled(
                "Enter: search  Esc: cancel",
                Style::default().fg(theme.dim),
            )));
            frame.render_widget(Paragraph::new(lines), inner);
            return;
        }
        search => {
            let count = format::count(list.found.len() as u64);
            let scanned = format::count(list.scanned);
            let state = match search {
                Search::Running => format!("searching… {count} found, {scanned} looked at"),
                Search::Done(Ok(false)) => format!("done: {count} found, {scanned} looked at"),
                Search::Done(Ok(true)) => format!(
                    "stopped at {} found: narrow the pattern",
                    format::count(MAX_FOUND as u64)
                ),
                Search::Done(Err(error)) => format!("failed: {}", format::escape_text(error)),
                Search::Typing(_) => String::new(),
            };
            lines.push(Line::from(Span::styled(
                truncate(
                    &format!("{} · {state}", format::escape_name(&list.pattern)),
                    room,
                ),
                Style::default().fg(theme.header),
            )));
        }
    }
    let rows = usize::from(inner.height.saturating_sub(2));
    let first = list.offset(rows);
    for (i, rel) in list.found.iter().enumerate().skip(first).take(rows) {
        let text = truncate(&format::escape_name(rel), room.saturating_sub(2));
        lines.push(if i == list.cursor {
            Line::from(Span::styled(
                format!("› {text}"),
                Style::default().bg(theme.cursor_bg).fg(theme.cursor_fg),
            ))
        } else {
            Line::from(format!("  {text}"))
        });
    }
    frame.render_widget(Paragraph::new(lines), inner);
    let hint = Rect {
        y: inner.y + inner.height.saturating_sub(1),
        height: 1,
        ..inner
    };
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(
            "Enter: go there  Esc: stop and close",
            Style::default().fg(theme.dim),
        ))),
        hint,
    );
}
