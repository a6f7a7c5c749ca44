//! The sync dialog: its options, the plan being computed, then the plan's counts and its
//! `--dry-run` lines, scrolled.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::super::layout::centered;
use super::super::sync_dialog::{Field, Stage, SyncDialog, totals_line};
use super::View;
use super::dialog::block;
use super::truncate;
use crate::format;

pub fn draw(frame: &mut Frame, view: &View, area: Rect, dialog: &SyncDialog) {
    let theme = &view.theme;
    let width = area.width.saturating_sub(4).min(90);
    let height = area.height.saturating_sub(4).clamp(8, 24);
    let popup = centered(area, width, height);
    let block = block(view, "Sync");
    let inner = block.inner(popup);
    frame.render_widget(Clear, popup);
    frame.render_widget(block, popup);
    let room = usize::from(inner.width);
    let header = Style::default().fg(theme.header);
    let dim = Style::default().fg(theme.dim);
    let mut lines: Vec<Line> = Vec::new();
    let option = |field: Field, text: String| {
        let chosen = matches!(dialog.stage, Stage::Options) && dialog.field == field;
        let style = if chosen {
            Style::default().bg(theme.cursor_bg).fg(theme.cursor_fg)
        } else {
            Style::default()
        };
        Line::from(Span::styled(truncate(&text, room), style))
    };
    lines.push(option(
        Field::Direction,
        format!(
            "from → to: < {} >",
            format::escape_name(&dialog.direction())
        ),
    ));
    lines.push(option(
        Field::Delete,
        format!(
            "delete what the source lacks: < {} >",
            if dialog.delete { "on" } else { "off" }
        ),
    ));
    lines.push(option(
        Field::Compare,
        format!("compare: < {} >", dialog.compare_name()),
    ));
    lines.push(option(
        Field::Exclude,
        format!(
            "exclude: {}{}",
            format::escape_name(dialog.exclude.text()),
            if dialog.field == Field::Exclude && matches!(dialog.stage, Stage::Options) {
                "▏"
            } else {
                ""
            }
        ),
    ));
    lines.push(Line::from(""));
    if let Some(error) = &dialog.error {
        lines.push(Line::from(Span::styled(
            truncate(&format::escape_text(error), room),
            Style::default().fg(theme.error_fg),
        )));
    }
    let hint = match &dialog.stage {
        Stage::Options => {
            "Enter: plan  Esc: cancel  ↑/↓: option  ←/→/Space: change  (exclude: a,b c)"
        }
        Stage::Planning { seen, .. } => {
            lines.push(Line::from(Span::styled(
                format!(
                    "planning: listing and comparing both sides… {} entries seen",
                    format::count(*seen)
                ),
                header,
            )));
            "Esc: stop"
        }
        Stage::Planned {
            totals,
            lines: actions,
            scroll,
            ..
        } => {
            lines.push(Line::from(Span::styled(
                truncate(&totals_line(totals), room),
                header,
            )));
            let rows = usize::from(inner.height).saturating_sub(lines.len() + 1);
            if actions.is_empty() {
                lines.push(Line::from(Span::styled("nothing to do: in sync", dim)));
            }
            for line in actions.iter().skip(*scroll).take(rows) {
                lines.push(Line::from(truncate(line, room)));
            }
            "Enter: run  Esc: cancel  ↑/↓ PgUp/PgDn: scroll  Backspace: options"
        }
    };
    let rows = usize::from(inner.height);
    lines.truncate(rows.saturating_sub(1));
    while lines.len() + 1 < rows {
        lines.push(Line::from(""));
    }
    lines.push(Line::from(Span::styled(truncate(hint, room), dim)));
    frame.render_widget(Paragraph::new(lines), inner);
}
