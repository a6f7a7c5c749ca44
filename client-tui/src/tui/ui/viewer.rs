//! Draws what [`FileActions`] has on screen: the internal viewer over the whole screen (a title
//! line, the rows, and a status line that shows a scan's progress or the prompt being typed),
//! and the question after an edit whose remote file changed meanwhile.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::super::theme::Theme;
use super::super::viewer::edit::FileActions;
use super::super::viewer::{Prompt, Viewer};
use super::truncate;

/// Draws over whatever the main screen drew.
pub fn draw(frame: &mut Frame, files: &FileActions, theme: &Theme) {
    if let Some(viewer) = &files.viewer {
        draw_viewer(frame, viewer, theme);
    }
    if let Some(ask) = &files.ask {
        let path = super::super::location::Location::Remote(ask.path.clone()).shown();
        let text = vec![
            Line::from(format!(
                "{path} changed on the server after you opened it for editing."
            )),
            Line::from(""),
            Line::from("o  overwrite it with your version"),
            Line::from("k  keep both: yours is saved under a new name"),
            Line::from("d  discard your changes (Esc)"),
        ];
        popup(frame, text, " Changed on the server ", theme);
    }
    if let Some(kept) = &files.kept {
        let path = super::super::location::Location::Remote(kept.path.clone()).shown();
        let text = vec![
            Line::from(format!("Could not save {path}: {}", kept.error)),
            Line::from(""),
            Line::from(format!(
                "Your edit is kept in {}",
                crate::format::local_path(&kept.copy)
            )),
            Line::from(""),
            Line::from("r  retry the upload"),
            Line::from("d  discard your copy"),
            Line::from("Esc  keep the copy there and close this"),
        ];
        popup(frame, text, " Not saved ", theme);
    }
    super::defuse(frame.buffer_mut());
}

/// A question in a box over the middle of the screen.
fn popup(frame: &mut Frame, text: Vec<Line>, title: &str, theme: &Theme) {
    let area = frame.area();
    let width = area.width.saturating_sub(4).min(70);
    let height = u16::try_from(text.len() + 4)
        .unwrap_or(u16::MAX)
        .min(area.height);
    let rect = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    );
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(text)
            .style(theme.base())
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(title)),
        rect,
    );
}

fn draw_viewer(frame: &mut Frame, viewer: &Viewer, theme: &Theme) {
    let area = frame.area();
    frame.render_widget(Clear, area);
    frame.render_widget(Block::default().style(theme.base()), area);
    if area.height < 3 {
        return;
    }
    let width = usize::from(area.width);
    let place = viewer.source.shown();
    let title = format!(" {}  {}", crate::format::escape_name(&viewer.title), place);
    frame.render_widget(
        Paragraph::new(truncate(&title, width)).style(theme.status()),
        Rect::new(area.x, area.y, area.width, 1),
    );
    let hit = Style::default().add_modifier(Modifier::REVERSED);
    let lines: Vec<Line> = if viewer.size.is_none() && viewer.error.is_none() {
        vec![Line::from("Reading…")]
    } else {
        viewer
            .rows()
            .into_iter()
            .map(|row| {
                let mut spans: Vec<Span> = Vec::new();
                let mut run = String::new();
                let mut marked = false;
                for cell in row.cells {
                    if cell.hit != marked && !run.is_empty() {
                        let style = if marked { hit } else { theme.base() };
                        spans.push(Span::styled(std::mem::take(&mut run), style));
                    }
                    marked = cell.hit;
                    run.push(cell.ch);
                }
                if !run.is_empty() {
                    spans.push(Span::styled(run, if marked { hit } else { theme.base() }));
                }
                Line::from(spans)
            })
            .collect()
    };
    let body = Rect::new(area.x, area.y + 1, area.width, area.height - 2);
    frame.render_widget(Paragraph::new(lines).style(theme.base()), body);
    let bottom = match &viewer.prompt {
        Some((Prompt::Search, input)) => format!("Search: {}", input.text()),
        Some((Prompt::Goto, input)) => {
            format!("Go to line (or @offset, 0xhex): {}", input.text())
        }
        None => viewer.status(),
    };
    let style = if viewer.error.is_some() && viewer.prompt.is_none() && viewer.scan.is_none() {
        theme.error()
    } else {
        theme.status()
    };
    frame.render_widget(
        Paragraph::new(truncate(&crate::format::escape_text(&bottom), width)).style(style),
        Rect::new(area.x, area.y + area.height - 1, area.width, 1),
    );
}
