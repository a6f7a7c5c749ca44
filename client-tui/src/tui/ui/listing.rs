//! One pane: the path bar as its title, the visible slice of the listing as a table, and a
//! footer with the marks, the filter and the sort order.

use ferry_protocol::{Entry, Kind};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table, Wrap};

use super::super::attrs::Column;
use super::super::layout;
use super::super::pane::{Pane, Side};
use super::super::screen::Focus;
use super::super::server_link::ConnState;
use super::super::theme::Theme;
use super::View;
use super::truncate;
use crate::format;

/// Below this inner width the modified-time column is dropped.
const TIME_COLUMN_MIN_WIDTH: u16 = 46;
const SIZE_WIDTH: u16 = 9;
const TIME_WIDTH: u16 = 16;
/// Columns for an owner or a group name; longer names are cut.
const OWNER_WIDTH: u16 = 8;
/// Attribute columns give way before the name gets narrower than this.
const NAME_MIN_WIDTH: u16 = 14;

pub fn draw(frame: &mut Frame, view: &View, side: Side, area: Rect) {
    let pane = view.pane(side);
    let theme = &view.theme;
    let focused = view.focus == Focus::Pane(side);
    let border = if focused {
        theme.border_focus
    } else {
        theme.border
    };
    let label = super::super::places::label(&pane.dir, &view.link(side).label).to_string();
    // A local directory's bytes shown by the one rule, not with replacement characters.
    let path = pane.dir.shown();
    let busy = if pane.pending.is_some() { " ⟳" } else { "" };
    // Laid out where the mouse reads it too: a click on a directory of the path goes there.
    let path = layout::title_path(area, &label, &path, busy).text;
    let title = Line::from(vec![
        Span::styled(
            format!(" {label}: "),
            Style::default()
                .fg(theme.title)
                .add_modifier(Modifier::BOLD),
        ),
        Span::styled(path, Style::default().fg(theme.title)),
        Span::raw(format!("{busy} ")),
    ]);
    let sort = format!(
        " {}{}{} ",
        pane.sort.label(),
        // ↑ ascending (A to Z, smallest, oldest first), ↓ descending: size and time read best
        // largest and newest first, so that is their unreversed order.
        if pane.reverse == (pane.sort == super::super::pane::SortKey::Name) {
            "↓"
        } else {
            "↑"
        },
        if pane.show_hidden { " .*" } else { "" }
    );
    let block = Block::bordered()
        .border_style(Style::default().fg(border))
        .title(title)
        .title_bottom(footer(view, pane, focused))
        .title_bottom(Line::from(sort).right_aligned());
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let message = empty_message(view, pane, side);
    if let Some(message) = &message
        && pane.view.is_empty()
    {
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                message,
                Style::default().fg(theme.dim),
            )))
            .wrap(Wrap { trim: true }),
            Rect {
                y: inner.y + 1,
                height: inner.height.saturating_sub(1),
                ..inner
            },
        );
        return;
    }

    let show_time = inner.width >= TIME_COLUMN_MIN_WIDTH;
    let fixed = SIZE_WIDTH + 1 + if show_time { TIME_WIDTH + 1 } else { 0 };
    let columns = attribute_columns(pane, inner.width.saturating_sub(fixed));
    let mut widths = vec![Constraint::Fill(1), Constraint::Length(SIZE_WIDTH)];
    let mut header = vec!["Name", "     Size"];
    for column in &columns {
        widths.push(Constraint::Length(column_width(*column)));
        header.push(match column {
            Column::Mode => "Mode",
            Column::Owner => "Owner",
            Column::Group => "Group",
        });
    }
    if show_time {
        widths.push(Constraint::Length(TIME_WIDTH));
        header.push("Modified");
    }
    let taken: u16 = columns.iter().map(|c| column_width(*c) + 1).sum();
    let name_width = usize::from(inner.width.saturating_sub(fixed + taken));
    let header_style = Style::default()
        .fg(theme.header)
        .add_modifier(Modifier::BOLD);
    let rows_visible = layout::list_rows(area);
    let end = (pane.offset + rows_visible).min(pane.view.len());
    let dir_key = pane.dir.clone();
    let rows: Vec<Row> = pane.view[pane.offset..end]
        .iter()
        .enumerate()
        .map(|(i, &index)| {
            let at_cursor = pane.offset + i == pane.cursor;
            let Some(entry) = pane.entries.get(index) else {
                return parent_row(view, at_cursor, focused);
            };
            let marked = pane.marks.contains(&entry.name);
            let verified = view
                .verified
                .contains(&(side, dir_key.join(&entry.name).key()));
            let mut style = Style::default().fg(match (entry.kind, entry.is_dir_like()) {
                (_, true) => theme.dir,
                (Kind::Symlink, _) => theme.symlink,
                (Kind::Other, _) => theme.other,
                _ => theme.file,
            });
            if marked {
                style = style.fg(theme.marked).add_modifier(Modifier::BOLD);
            }
            if at_cursor {
                style = cursor_style(style, theme, focused);
            }
            let mut cells = vec![
                name_cell(
                    view,
                    entry,
                    (at_cursor && focused, marked, verified),
                    (name_width, pane.attributes),
                ),
                Line::from(format!("{:>9}", size_text(entry))),
            ];
            for column in &columns {
                cells.push(Line::from(attribute_text(entry, *column)));
            }
            if show_time {
                cells.push(Line::from(format::mtime(entry.mtime)));
            }
            Row::new(cells).style(style)
        })
        .collect();
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(header_style))
        .column_spacing(1);
    frame.render_widget(table, inner);
    // Nothing but `..`: the reason shows under it.
    if let Some(message) = message {
        let below = Rect {
            y: inner.y + 2,
            height: inner.height.saturating_sub(2),
            ..inner
        };
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                message,
                Style::default().fg(theme.dim),
            )))
            .wrap(Wrap { trim: true }),
            below,
        );
    }
}

/// The cursor's row, brighter in the focused pane than in the other.
fn cursor_style(style: Style, theme: &Theme, focused: bool) -> Style {
    let bg = if focused {
        theme.cursor_bg
    } else {
        theme.cursor_inactive_bg
    };
    style.bg(bg).fg(theme.cursor_fg)
}

/// The `..` row: a directory-coloured `../` with `<UP>` where a size would be.
fn parent_row<'a>(view: &View, at_cursor: bool, focused: bool) -> Row<'a> {
    let theme = &view.theme;
    let mut style = Style::default().fg(theme.dir);
    if at_cursor {
        style = cursor_style(style, theme, focused);
    }
    let pointer = if at_cursor && focused { '›' } else { ' ' };
    Row::new(vec![
        Line::from(format!("{pointer} ../")),
        Line::from(format!("{:>9}", "<UP>")),
    ])
    .style(style)
}

/// The name with a two-cell gutter: `›` on the focused cursor row, so the cursor shows even
/// without colours, and `*` on marked entries.
fn name_cell<'a>(
    view: &View,
    entry: &Entry,
    (pointer, marked, verified): (bool, bool, bool),
    (width, attributes): (usize, bool),
) -> Line<'a> {
    let suffix = match (entry.kind, entry.is_dir_like()) {
        (Kind::Symlink, true) => "@/",
        (_, true) => "/",
        (Kind::Symlink, _) => "@",
        _ => "",
    };
    let mark = format!(
        "{}{}",
        if pointer { '›' } else { ' ' },
        if marked { '*' } else { ' ' }
    );
    let tick = if verified { " ✓" } else { "" };
    // With the attribute columns, a link says where it leads (when the server may say).
    let target = match (&entry.target, attributes) {
        (Some(target), true) => format!(" -> {}", format::escape_name(target)),
        _ => String::new(),
    };
    let name = format!("{}{suffix}{target}", format::escape_name(&entry.name));
    let name = truncate(&name, width.saturating_sub(2 + tick.chars().count()));
    let mut spans = vec![Span::raw(mark), Span::raw(name)];
    if verified {
        spans.push(Span::styled(tick, Style::default().fg(view.theme.verified)));
    }
    Line::from(spans)
}

/// The attribute columns shown in a table `room` columns wide (after size and time): the
/// pane's, while they leave the name [`NAME_MIN_WIDTH`] columns; the last ones give way first.
fn attribute_columns(pane: &Pane, room: u16) -> Vec<Column> {
    if !pane.attributes {
        return Vec::new();
    }
    let mut columns = pane.columns.clone();
    while !columns.is_empty()
        && room.saturating_sub(columns.iter().map(|c| column_width(*c) + 1).sum()) < NAME_MIN_WIDTH
    {
        columns.pop();
    }
    columns
}

fn column_width(column: Column) -> u16 {
    match column {
        Column::Mode => 10,
        Column::Owner | Column::Group => OWNER_WIDTH,
    }
}

/// An entry's cell in an attribute column: a name the server (or this machine) has, else the
/// number; nothing when the entry says nothing (an older server).
fn attribute_text(entry: &Entry, column: Column) -> String {
    let owner = entry.owner.as_ref();
    let text = match column {
        Column::Mode => return format::permissions(entry.kind, entry.mode),
        Column::Owner => owner.map(|o| o.user.clone().unwrap_or_else(|| o.uid.to_string())),
        Column::Group => owner.map(|o| o.group.clone().unwrap_or_else(|| o.gid.to_string())),
    };
    text.map(|t| truncate(&format::escape_name(&t), usize::from(OWNER_WIDTH)))
        .unwrap_or_default()
}

fn size_text(entry: &Entry) -> String {
    if entry.is_dir_like() {
        "<DIR>".to_string()
    } else if entry.kind == Kind::File {
        format::size(entry.size)
    } else {
        String::new()
    }
}

fn empty_message(view: &View, pane: &Pane, side: Side) -> Option<String> {
    if pane.shown().next().is_some() {
        return None;
    }
    if side == Side::Remote
        && let ConnState::Lost(error) = &view.conn.state
        && !pane.loaded
    {
        return Some(format!("Not connected: {error}"));
    }
    if let Some(error) = &pane.error {
        return Some(error.clone());
    }
    if !pane.loaded {
        return Some(
            if side == Side::Remote && view.conn.state == ConnState::Connecting {
                "Connecting…".into()
            } else {
                "Loading…".into()
            },
        );
    }
    if pane.entries.is_empty() {
        return Some("(empty directory)".into());
    }
    if !pane.filter.is_empty() {
        return Some(format!("Nothing matches /{}", pane.filter));
    }
    Some("(only hidden entries: press . to show them)".into())
}

fn footer<'a>(view: &View, pane: &Pane, focused: bool) -> Line<'a> {
    let theme = &view.theme;
    let mut spans = Vec::new();
    let (count, bytes) = pane.marked_total();
    if count > 0 {
        spans.push(Span::styled(
            format!(
                " {} marked, {} ",
                format::count(count as u64),
                format::size(bytes)
            ),
            Style::default()
                .fg(theme.marked)
                .add_modifier(Modifier::BOLD),
        ));
    } else if pane.loaded {
        let (dirs, files) = pane.shown().fold((0, 0), |(dirs, files), e| {
            if e.is_dir_like() {
                (dirs + 1, files)
            } else {
                (dirs, files + 1)
            }
        });
        spans.push(Span::styled(
            format!(" {} ", counted(dirs, files)),
            Style::default().fg(theme.dim),
        ));
    }
    if let Some(jump) = &pane.jump {
        let text = match jump.missed {
            Some(c) => format!(" »{}{c}: no match ", jump.prefix),
            None => format!(" »{} ", jump.prefix),
        };
        spans.push(Span::styled(text, Style::default().fg(theme.header)));
    }
    match (&view.filtering, focused) {
        (Some(input), true) => spans.push(Span::styled(
            format!(" /{}▏", input.text()),
            Style::default()
                .fg(theme.header)
                .add_modifier(Modifier::BOLD),
        )),
        _ if !pane.filter.is_empty() => {
            spans.push(Span::styled(
                format!(" /{} ", pane.filter),
                Style::default().fg(theme.header),
            ));
        }
        _ => {}
    }
    Line::from(spans)
}

/// `1 dir, 3 files`.
fn counted(dirs: usize, files: usize) -> String {
    format!(
        "{}, {}",
        format::counted(dirs as u64, "dir", "dirs"),
        format::counted(files as u64, "file", "files")
    )
}
