//! Modal dialogs drawn over the panes: prompts, confirmations, the conflict question, the
//! connect list, the certificate trust question and warnings, and the key help (read from the
//! live keymap).

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::super::conflict::{CONFLICT_CHOICES, ConflictPrompt};
use super::super::copy_dialog::CopyDialog;
use super::super::dialogs::{Dialog, InputPurpose, masked_address};
use super::super::keymap::Action;
use super::super::layout::centered;
use super::View;
use super::truncate;
use crate::format;

pub fn draw(frame: &mut Frame, view: &View, area: Rect) {
    match &view.dialog {
        Some(Dialog::Help { scroll }) => help(frame, view, area, *scroll),
        Some(Dialog::Details { job, scroll }) => {
            super::details::draw(frame, view, area, *job, *scroll);
        }
        Some(Dialog::Confirm { title, message, .. }) => {
            // Wrapped here, not by the paragraph, so the box grows with a question that takes
            // two rows and the key hint stays inside it.
            let lines = vec![
                (message.clone(), Style::default()),
                (String::new(), Style::default()),
                (
                    "y / Enter: yes    n / Esc: no".into(),
                    Style::default().fg(view.theme.dim),
                ),
            ];
            wrapped(frame, view, area, title, lines, 60);
        }
        Some(Dialog::Input {
            title,
            input,
            purpose,
        }) => {
            let width = area.width.saturating_sub(4).min(70);
            let popup = centered(area, width, 5);
            let block = block(view, title);
            let inner = block.inner(popup);
            frame.render_widget(Clear, popup);
            frame.render_widget(block, popup);
            let room = usize::from(inner.width.saturating_sub(1));
            // A password shows as one dot per character: its length, never its text.
            // The address prompt's token after the location is masked the same way.
            let chars: Vec<char> = match purpose {
                InputPurpose::Password(_) | InputPurpose::SshPrompt(_) => {
                    input.text().chars().map(|_| '•').collect()
                }
                InputPurpose::Address => masked_address(input.text()),
                _ => input.text().chars().collect(),
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
                    Style::default().fg(view.theme.dim),
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
                    Style::default().fg(view.theme.dim),
                ),
            ];
            wrapped(frame, view, area, "Unknown server certificate", lines, 72);
        }
        Some(Dialog::CertificateChanged(changed)) => {
            let plain = Style::default();
            let bold = Style::default().add_modifier(Modifier::BOLD);
            let lines = vec![
                (
                    format!(
                        "The certificate of {} is not the one trusted before: someone could be \
                         intercepting the connection, or its owner replaced the certificate. \
                         Nothing has been sent.",
                        format::escape_name(&changed.addr)
                    ),
                    plain,
                ),
                (String::new(), plain),
                (
                    format!("Old, in {}:", format::escape_text(&changed.held_in)),
                    plain,
                ),
                (format!("  {}", changed.old), bold),
                ("New, presented now:".into(), plain),
                (format!("  {}", changed.new), bold),
                (String::new(), plain),
                (
                    "If the server's owner confirms the new fingerprint, replace the old one \
                     with it (the rest of the file stays as it is)."
                        .into(),
                    plain,
                ),
                (String::new(), plain),
                (
                    "y: replace and connect    n / Esc: do not connect".into(),
                    Style::default().fg(view.theme.dim),
                ),
            ];
            wrapped(frame, view, area, "Server certificate changed", lines, 76);
        }
        Some(Dialog::Alert { title, message }) => {
            // ferry's own line breaks stay; what a line quotes is escaped on it.
            let text: Vec<_> = message
                .trim_start()
                .lines()
                .map(format::escape_text)
                .collect();
            let mut lines: Vec<(String, Style)> =
                banner_aligned(text.iter().map(|line| line.as_ref()).collect())
                    .into_iter()
                    .map(|line| (line, Style::default()))
                    .collect();
            lines.push((String::new(), Style::default()));
            lines.push((
                "Enter / Esc: close".into(),
                Style::default().fg(view.theme.dim),
            ));
            wrapped(frame, view, area, title, lines, 100);
        }
        Some(Dialog::Partials(dialog)) => {
            boxed(
                frame,
                view,
                area,
                &dialog.title(),
                dialog.lines(view.theme),
                90,
            );
        }
        Some(Dialog::Copy(dialog)) => copy(frame, view, area, dialog),
        Some(Dialog::Connect { targets, selected }) => {
            let mut lines: Vec<Line> = Vec::new();
            if targets.is_empty() {
                lines.push(Line::from(Span::styled(
                    "No bookmarks or recent servers yet.",
                    Style::default().fg(view.theme.dim),
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
                        .bg(view.theme.cursor_bg)
                        .fg(view.theme.cursor_fg)
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
                Style::default().fg(view.theme.dim),
            )));
            boxed(frame, view, area, "Connect", lines, 70);
        }
        None => {
            if let Some(prompt) = view.conflicts.front() {
                conflict(frame, view, area, prompt);
            }
        }
    }
}

pub(super) fn block<'a>(view: &View, title: &str) -> Block<'a> {
    Block::bordered()
        .border_style(Style::default().fg(view.theme.dialog_border))
        .title(Span::styled(
            format!(" {title} "),
            Style::default().add_modifier(Modifier::BOLD),
        ))
        .style(view.theme.base())
}

pub(super) fn boxed(
    frame: &mut Frame,
    view: &View,
    area: Rect,
    title: &str,
    lines: Vec<Line>,
    max_width: u16,
) {
    let width = area.width.saturating_sub(4).min(max_width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = centered(area, width, height);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block(view, title))
            .wrap(Wrap { trim: false }),
        popup,
    );
}

/// Like [`boxed`] for plain lines, wrapped at spaces by [`wrap_words`], so the box is exactly
/// as tall as its rows.
fn wrapped(
    frame: &mut Frame,
    view: &View,
    area: Rect,
    title: &str,
    lines: Vec<(String, Style)>,
    max_width: u16,
) {
    let width = area.width.saturating_sub(4).min(max_width);
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let mut rows: Vec<Line> = Vec::new();
    for (text, style) in lines {
        for piece in wrap_words(&text, inner) {
            rows.push(Line::from(Span::styled(piece, style)));
        }
    }
    let height = u16::try_from(rows.len() + 2)
        .unwrap_or(u16::MAX)
        .min(area.height);
    let popup = centered(area, width, height);
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(rows).block(block(view, title)), popup);
}

/// `text` cut into rows of at most `width` characters at spaces, never inside a word that
/// fits a row. A fingerprint gets rows of its own, split only between its bytes, so it is
/// read (and compared) as a whole; a blank line stays one blank row.
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut rows = Vec::new();
    let mut row = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        // The spaces before a word are kept inside a row (indents, aligned columns) and
        // dropped at a break.
        let word_at = rest.find(|c| c != ' ').unwrap_or(rest.len());
        let (gap, after) = rest.split_at(word_at);
        let word_end = after.find(' ').unwrap_or(after.len());
        let (word, tail) = after.split_at(word_end);
        rest = tail;
        if word.is_empty() {
            break;
        }
        let used = row.chars().count();
        let len = word.chars().count();
        if word.starts_with("SHA256:") {
            let indent = if row.trim().is_empty() {
                format!("{row}{gap}")
            } else {
                rows.push(std::mem::take(&mut row));
                String::new()
            };
            row.clear();
            let room = width.saturating_sub(indent.len()).max(1);
            rows.extend(
                fingerprint_rows(word, room)
                    .into_iter()
                    .map(|piece| format!("{indent}{piece}")),
            );
            continue;
        }
        if !row.trim().is_empty() && used + gap.len() + len > width {
            rows.push(std::mem::take(&mut row));
        } else {
            row.push_str(gap);
        }
        if row.chars().count() + len <= width {
            row.push_str(word);
        } else {
            // Longer than any row: cut where it must be.
            let chars: Vec<char> = word.chars().collect();
            for piece in chars.chunks(width) {
                if !row.trim().is_empty() {
                    rows.push(std::mem::take(&mut row));
                }
                row = piece.iter().collect();
            }
        }
    }
    if !row.trim().is_empty() || rows.is_empty() {
        rows.push(row.trim_end().to_owned());
    }
    rows
}

/// A fingerprint as rows of whole bytes, the rows as even as the width allows.
fn fingerprint_rows(fingerprint: &str, width: usize) -> Vec<String> {
    let Some(hex) = fingerprint.strip_prefix("SHA256:") else {
        return vec![fingerprint.to_owned()];
    };
    let bytes: Vec<&str> = hex.split(':').collect();
    if fingerprint.chars().count() <= width {
        return vec![fingerprint.to_owned()];
    }
    // `SHA256:` then `xx:` per byte on the first row; later rows line up under the bytes.
    let lead = "SHA256:".len();
    let fit = (width.saturating_sub(lead) / 3).max(1);
    let count = bytes.len().div_ceil(fit);
    let per_row = bytes.len().div_ceil(count);
    bytes
        .chunks(per_row)
        .enumerate()
        .map(|(i, chunk)| {
            let head = if i == 0 {
                "SHA256:".to_owned()
            } else {
                " ".repeat(lead)
            };
            let last = (i + 1) * per_row >= bytes.len();
            format!("{head}{}{}", chunk.join(":"), if last { "" } else { ":" })
        })
        .collect()
}

/// The `@@@` banner of a warning with each framed line padded to the frame's width, so its
/// right edge lines up whatever the text between the `@`s.
fn banner_aligned(lines: Vec<&str>) -> Vec<String> {
    let frame = lines
        .iter()
        .find(|l| l.len() >= 3 && l.chars().all(|c| c == '@'))
        .map(|l| l.chars().count());
    lines
        .into_iter()
        .map(|line| match frame {
            Some(width)
                if line.len() > 2
                    && line.starts_with('@')
                    && line.ends_with('@')
                    && !line.chars().all(|c| c == '@') =>
            {
                let inside = line[1..line.len() - 1].trim_end();
                format!("@{inside:<pad$}@", pad = width.saturating_sub(2))
            }
            _ => line.to_owned(),
        })
        .collect()
}

/// `text` cut into pieces of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(width)
        .take(4)
        .map(|piece| piece.iter().collect())
        .collect()
}

fn conflict(frame: &mut Frame, view: &View, area: Rect, prompt: &ConflictPrompt) {
    let theme = &view.theme;
    let width = area.width.saturating_sub(4).min(72);
    let path = truncate(
        &format::escape_name(&prompt.path),
        usize::from(width.saturating_sub(4)),
    );
    // Two rows of choices, so all six fit a narrow box.
    let mut rows = [Vec::new(), Vec::new()];
    for (i, (_, label, key)) in CONFLICT_CHOICES.iter().enumerate() {
        let style = if i == prompt.selected {
            Style::default()
                .bg(theme.cursor_bg)
                .fg(theme.cursor_fg)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        let row = &mut rows[i * 2 / CONFLICT_CHOICES.len()];
        row.push(Span::styled(format!(" {label} ({key}) "), style));
        row.push(Span::raw(" "));
    }
    let more = view.conflicts.len() - 1;
    let facts = |facts: Option<crate::engine::FileFacts>| match facts {
        Some(f) => format!("{:>10}  {}", format::size(f.size), format::mtime(f.mtime)),
        None => "not a regular file".to_owned(),
    };
    let newer = match (prompt.source, prompt.dest) {
        (s, Some(d)) if d.mtime > s.mtime => ["", "  (newer)"],
        (s, Some(d)) if d.mtime < s.mtime => ["  (newer)", ""],
        _ => ["", ""],
    };
    let mut lines = vec![
        Line::from("The destination already exists:"),
        Line::from(Span::styled(path, Style::default().fg(theme.marked))),
        Line::from(format!(
            "  source       {}{}",
            facts(Some(prompt.source)),
            newer[0]
        )),
        Line::from(format!("  destination  {}{}", facts(prompt.dest), newer[1])),
    ];
    if let Some(reason) = &prompt.reason {
        // The last answer could not be carried out: why, in words, then the question again.
        let reason = format::escape_text(reason);
        for piece in wrap(&reason, usize::from(width.saturating_sub(4)).max(1)) {
            lines.push(Line::from(Span::styled(
                piece,
                Style::default().fg(theme.marked),
            )));
        }
    }
    lines.extend([
        Line::from(""),
        Line::from(std::mem::take(&mut rows[0])),
        Line::from(std::mem::take(&mut rows[1])),
        Line::from(format!(
            "[{}] apply to all conflicts of transfer #{} (a)",
            if prompt.apply_to_all { "x" } else { " " },
            view.job_number(prompt.job)
        )),
    ]);
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
    boxed(frame, view, area, "File exists", lines, 72);
}

/// The copy dialog: what is sent, where to (edited in place), the conflict policy.
fn copy(frame: &mut Frame, view: &View, area: Rect, dialog: &CopyDialog) {
    let theme = &view.theme;
    let width = area.width.saturating_sub(4).min(76);
    let mut lines = vec![
        (dialog.summary(), Style::default()),
        (String::new(), Style::default()),
        ("to:".to_owned(), Style::default().fg(theme.header)),
        // The field's row, drawn below over this placeholder.
        (String::new(), Style::default()),
    ];
    if let Some(note) = &dialog.note {
        lines.push((note.clone(), Style::default().fg(theme.dim)));
    }
    lines.extend([
        (String::new(), Style::default()),
        (
            format!("if it exists: < {} >", dialog.policy_name()),
            Style::default().fg(theme.header),
        ),
        (String::new(), Style::default()),
        (
            "Enter: start  Esc: cancel  Tab: complete  ↑/↓: if it exists".into(),
            Style::default().fg(theme.dim),
        ),
    ]);
    let inner_width = usize::from(width.saturating_sub(2)).max(1);
    let rows: Vec<Line> = lines
        .into_iter()
        .flat_map(|(text, style)| {
            wrap_words(&text, inner_width)
                .into_iter()
                .map(move |piece| Line::from(Span::styled(piece, style)))
        })
        .collect();
    let height = u16::try_from(rows.len() + 2)
        .unwrap_or(u16::MAX)
        .min(area.height);
    let popup = centered(area, width, height);
    let block = block(view, &dialog.title());
    let inner = block.inner(popup);
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(rows).block(block), popup);
    // The destination field: its row is the one after `to:` (the summary takes one row unless
    // it wrapped, which a width of 76 leaves for only the longest names).
    let summary_rows = wrap_words(&dialog.summary(), inner_width).len() as u16;
    let field = Rect {
        y: inner.y + summary_rows + 2,
        height: 1,
        ..inner
    };
    if field.y >= inner.bottom() {
        return;
    }
    let room = usize::from(field.width.saturating_sub(1)).max(1);
    let chars: Vec<char> = dialog.input.text().chars().collect();
    let start = dialog.input.cursor().saturating_sub(room);
    let shown: String = chars[start..].iter().take(room).collect();
    frame.render_widget(
        Paragraph::new(format::escape_name(&shown).into_owned())
            .style(Style::default().add_modifier(Modifier::UNDERLINED)),
        field,
    );
    let x = field.x + u16::try_from(dialog.input.cursor() - start).unwrap_or(0);
    frame.set_cursor_position(Position::new(
        x.min(field.right().saturating_sub(1)),
        field.y,
    ));
}

fn help(frame: &mut Frame, view: &View, area: Rect, scroll: usize) {
    let theme = &view.theme;
    let mut lines = Vec::new();
    for action in Action::ALL {
        let keys = view.keymap.bindings(action);
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
        ("drag and drop", "copy to the other pane / into a folder"),
    ]
    .into_iter()
    .chain(super::super::viewer::KEYS)
    {
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
                block(view, "Keys")
                    .title_bottom(Line::from(" ↑/↓ scroll, any other key closes ").right_aligned()),
            )
            .scroll((u16::try_from(scroll).unwrap_or(0), 0)),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_spaces_and_keeps_fingerprints_whole() {
        assert_eq!(
            wrap_words("the server's owner confirms", 12),
            ["the server's", "owner", "confirms"]
        );
        assert_eq!(wrap_words("a    b", 10), ["a    b"], "inner spacing kept");
        assert_eq!(wrap_words("", 10), [""]);
        let fp = format!("SHA256:{}", vec!["ab"; 32].join(":"));
        let rows = wrap_words(&format!("Presented: {fp}"), 60);
        assert_eq!(rows[0], "Presented:");
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(rows[1], format!("SHA256:{}:", vec!["ab"; 16].join(":")));
        assert_eq!(rows[2], format!("       {}", vec!["ab"; 16].join(":")));
        assert_eq!(wrap_words(&fp, 200), vec![fp.clone()]);
        assert_eq!(wrap_words("  SHA256:ab:cd", 40), ["  SHA256:ab:cd"]);
        assert_eq!(wrap_words("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap_words("  abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap_words("  ab cd", 5), ["  ab", "cd"]);
    }

    #[test]
    fn the_banner_frame_lines_up() {
        let rows = banner_aligned(vec!["@@@@@@@@@@", "@  WARN    @", "text"]);
        assert_eq!(rows, ["@@@@@@@@@@", "@  WARN  @", "text"]);
    }
}
