//! The permissions dialog: one checkbox per bit, the cursor's row highlighted, and the mode as
//! `ls` and as octal below.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::super::chmod::{BITS, ChmodDialog};
use super::View;
use super::dialog::boxed;
use crate::format;

pub fn draw(frame: &mut Frame, view: &View, area: Rect, dialog: &ChmodDialog) {
    let theme = &view.theme;
    let mut lines: Vec<Line> = BITS
        .iter()
        .enumerate()
        .map(|(row, &(bit, label))| {
            let mark = if dialog.mode & bit != 0 { 'x' } else { ' ' };
            let text = format!(" [{mark}] {label:<16} {bit:04o} ");
            if row == dialog.cursor {
                Line::from(Span::styled(
                    text,
                    Style::default().bg(theme.cursor_bg).fg(theme.cursor_fg),
                ))
            } else {
                Line::from(text)
            }
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        format!(
            " {}  {:04o}",
            format::permissions(dialog.kind, dialog.mode),
            dialog.mode
        ),
        Style::default().add_modifier(Modifier::BOLD),
    )));
    lines.push(Line::from(Span::styled(
        " Space: toggle  0-7: octal  Enter: apply  Esc: cancel",
        Style::default().fg(theme.dim),
    )));
    let title = format!("Permissions: {}", dialog.what);
    boxed(frame, view, area, &title, lines, 58);
}
