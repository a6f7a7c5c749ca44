//! Modal dialogs drawn over the panes: prompts, confirmations, the conflict question, the
//! connect list, the certificate trust question and warnings, and the key help (read from the
//! live keymap).

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::super::app::{App, CONFLICT_CHOICES, ConflictPrompt, Dialog, InputPurpose};
use super::super::keymap::Action;
use super::{centered, truncate};
use crate::format;

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    match &app.dialog {
        Some(Dialog::Help { scroll }) => help(frame, app, area, *scroll),
        Some(Dialog::Confirm { title, message, .. }) => {
            let lines = vec![
                Line::from(message.clone()),
                Line::from(""),
                Line::from(Span::styled(
                    "y / Enter: yes    n / Esc: no",
                    Style::default().fg(app.theme.dim),
                )),
            ];
            boxed(frame, app, area, title, lines, 60);
        }
        Some(Dialog::Input {
            title,
            input,
            purpose,
        }) => {
            let width = area.width.saturating_sub(4).min(70);
            let popup = centered(area, width, 5);
            let block = block(app, title);
            let inner = block.inner(popup);
            frame.render_widget(Clear, popup);
            frame.render_widget(block, popup);
            let room = usize::from(inner.width.saturating_sub(1));
            // A password shows as one dot per character: its length, never its text.
            let masked = matches!(purpose, InputPurpose::Password(_));
            let chars: Vec<char> = if masked {
                input.text().chars().map(|_| '•').collect()
            } else {
                input.text().chars().collect()
            };
            let start = input.cursor().saturating_sub(room);
            let shown: String = chars[start..].iter().take(room).collect();
            frame.render_widget(
                Paragraph::new(format::escape_name(&shown).into_owned()),
                inner,
            );
            frame.render_widget(
                Paragraph::new(Span::styled(
                    "Enter: ok    Esc: cancel",
                    Style::default().fg(app.theme.dim),
                )),
                Rect {
                    y: inner.y + 2,
                    height: 1,
                    ..inner
                },
            );
            let x = inner.x + u16::try_from(input.cursor() - start).unwrap_or(0);
            frame.set_cursor_position(Position::new(
                x.min(inner.right().saturating_sub(1)),
                inner.y,
            ));
        }
        Some(Dialog::Trust { addr, fingerprint }) => {
            let plain = Style::default();
            let bold = Style::default().add_modifier(Modifier::BOLD);
            let hex = fingerprint.to_string();
            // Two rows of 16 bytes, so the whole fingerprint reads well in a narrow box too.
            let (first, second) = hex.split_at("SHA256:".len() + 16 * 3);
            let lines = vec![
                (
                    format!(
                        "{} presented a certificate that nothing vouches for",
                        format::escape_name(addr)
                    ),
                    plain,
                ),
                (
                    "(no pin, not in known_hosts, no system root):".into(),
                    plain,
                ),
                (String::new(), plain),
                (format!("  {first}"), bold),
                (format!("  {}{second}", " ".repeat("SHA256:".len())), bold),
                (String::new(), plain),
                (
                    "Compare it with the fingerprint the server's owner gave you".into(),
                    plain,
                ),
                (
                    "(ferry-server logs it at start). Nothing has been sent yet.".into(),
                    plain,
                ),
                (String::new(), plain),
                (
                    "y: trust and remember    n / Esc: do not connect".into(),
                    Style::default().fg(app.theme.dim),
                ),
            ];
            wrapped(frame, app, area, "Unknown server certificate", lines, 72);
        }
        Some(Dialog::Alert { title, message }) => {
            let mut lines: Vec<(String, Style)> = format::escape_text(message.trim_start())
                .lines()
                .map(|line| (line.to_owned(), Style::default()))
                .collect();
            lines.push((String::new(), Style::default()));
            lines.push((
                "Enter / Esc: close".into(),
                Style::default().fg(app.theme.dim),
            ));
            wrapped(frame, app, area, title, lines, 100);
        }
        Some(Dialog::Connect { targets, selected }) => {
            let mut lines: Vec<Line> = Vec::new();
            if targets.is_empty() {
                lines.push(Line::from(Span::styled(
                    "No bookmarks or recent servers yet.",
                    Style::default().fg(app.theme.dim),
                )));
            }
            for (i, target) in targets
                .iter()
                .map(|t| t.label.as_str())
                .chain(["  New address…"])
                .enumerate()
            {
                let style = if i == *selected {
                    Style::default()
                        .bg(app.theme.cursor_bg)
                        .fg(app.theme.cursor_fg)
                } else {
                    Style::default()
                };
                let pointer = if i == *selected { "›" } else { " " };
                lines.push(Line::from(Span::styled(
                    format!("{pointer}{target}"),
                    style,
                )));
            }
            lines.push(Line::from(""));
            lines.push(Line::from(Span::styled(
                "Enter: connect    Esc: close",
                Style::default().fg(app.theme.dim),
            )));
            boxed(frame, app, area, "Connect", lines, 70);
        }
        None => {
            if let Some(prompt) = app.conflicts.front() {
                conflict(frame, app, area, prompt);
            }
        }
    }
}

fn block<'a>(app: &App, title: &str) -> Block<'a> {
    Block::bordered()
        .border_style(Style::default().fg(app.theme.dialog_border))
        .title(Span::styled(
            format!(" {title} "),
            Style::default().add_modifier(Modifier::BOLD),
        ))
        .style(app.theme.base())
}

fn boxed(frame: &mut Frame, app: &App, area: Rect, title: &str, lines: Vec<Line>, max_width: u16) {
    let width = area.width.saturating_sub(4).min(max_width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = centered(area, width, height);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block(app, title))
            .wrap(Wrap { trim: false }),
        popup,
    );
}

/// Like [`boxed`] for plain lines, each cut to the box's width (a fingerprint has no spaces
/// to wrap at), so the box is exactly as tall as its rows.
fn wrapped(
    frame: &mut Frame,
    app: &App,
    area: Rect,
    title: &str,
    lines: Vec<(String, Style)>,
    max_width: u16,
) {
    let width = area.width.saturating_sub(4).min(max_width);
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let mut rows: Vec<Line> = Vec::new();
    for (text, style) in lines {
        let chars: Vec<char> = text.chars().collect();
        if chars.is_empty() {
            rows.push(Line::from(""));
        }
        for piece in chars.chunks(inner) {
            rows.push(Line::from(Span::styled(
                piece.iter().collect::<String>(),
                style,
            )));
        }
    }
    let height = u16::try_from(rows.len() + 2)
        .unwrap_or(u16::MAX)
        .min(area.height);
    let popup = centered(area, width, height);
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(rows).block(block(app, title)), popup);
}

fn conflict(frame: &mut Frame, app: &App, area: Rect, prompt: &ConflictPrompt) {
    let theme = &app.theme;
    let width = area.width.saturating_sub(4).min(72);
    let path = truncate(
        &format::escape_name(&prompt.path),
        usize::from(width.saturating_sub(4)),
    );
    let mut buttons = Vec::new();
    for (i, (_, label, key)) in CONFLICT_CHOICES.iter().enumerate() {
        let style = if i == prompt.selected {
            Style::default()
                .bg(theme.cursor_bg)
                .fg(theme.cursor_fg)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        buttons.push(Span::styled(format!(" {label} ({key}) "), style));
        buttons.push(Span::raw(" "));
    }
    let more = app.conflicts.len() - 1;
    let mut lines = vec![
        Line::from("The destination already exists:"),
        Line::from(Span::styled(path, Style::default().fg(theme.marked))),
        Line::from(""),
        Line::from(buttons),
        Line::from(format!(
            "[{}] apply to all conflicts of transfer #{} (a)",
            if prompt.apply_to_all { "x" } else { " " },
            prompt.job.id.0
        )),
    ];
    if more > 0 {
        lines.push(Line::from(Span::styled(
            format!("{more} more waiting"),
            Style::default().fg(theme.dim),
        )));
    }
    lines.push(Line::from(Span::styled(
        "←/→ choose, Enter: ok, Esc: skip",
        Style::default().fg(theme.dim),
    )));
    boxed(frame, app, area, "File exists", lines, 72);
}

fn help(frame: &mut Frame, app: &App, area: Rect, scroll: usize) {
    let theme = &app.theme;
    let mut lines = Vec::new();
    for action in Action::ALL {
        let keys: Vec<String> = app
            .keymap
            .keys(action)
            .iter()
            .map(ToString::to_string)
            .collect();
        lines.push(Line::from(vec![
            Span::styled(
                format!("{:<24}", truncate(&keys.join(", "), 23)),
                Style::default().fg(theme.header),
            ),
            Span::raw(action.describe()),
        ]));
    }
    for (keys, what) in [
        ("Esc", "clear banner, filter or marks"),
        ("mouse", "click, double-click, wheel"),
        ("drag and drop", "copy to the other pane"),
    ] {
        lines.push(Line::from(vec![
            Span::styled(format!("{keys:<24}"), Style::default().fg(theme.header)),
            Span::raw(what),
        ]));
    }
    let height = area.height.saturating_sub(2).min(lines.len() as u16 + 2);
    let popup = centered(area, area.width.saturating_sub(4).min(64), height);
    let visible = usize::from(height.saturating_sub(2));
    let scroll = scroll.min(lines.len().saturating_sub(visible));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(
                block(app, "Keys")
                    .title_bottom(Line::from(" ↑/↓ scroll, any other key closes ").right_aligned()),
            )
            .scroll((u16::try_from(scroll).unwrap_or(0), 0)),
        popup,
    );
}
