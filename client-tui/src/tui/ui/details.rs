//! The details of one job, opened from the transfer list: every file that failed and every
//! entry of a tree that was not copied, each with why, in a scrollable list, so nothing a job
//! left behind stays hidden behind a count.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::super::jobs::JobKey;
use super::super::layout::centered;
use super::View;

pub fn draw(frame: &mut Frame, view: &View, area: Rect, key: JobKey, scroll: usize) {
    let Some(job) = view.jobs.iter().find(|j| j.key == key) else {
        return;
    };
    let mut rows = job.details();
    if rows.is_empty() {
        rows.push("nothing failed and nothing was left out".into());
    }
    let height = area.height.saturating_sub(2).min(rows.len() as u16 + 2);
    let popup = centered(area, area.width.saturating_sub(4), height);
    let visible = usize::from(height.saturating_sub(2));
    let scroll = scroll.min(rows.len().saturating_sub(visible));
    let lines: Vec<Line> = rows
        .into_iter()
        .skip(scroll)
        .take(visible)
        .map(Line::from)
        .collect();
    let title = format!(
        " #{} {}: {} failed, {} not copied ",
        job.number,
        job.info.label,
        job.failures.len(),
        job.left_out.len()
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .border_style(Style::default().fg(view.theme.dialog_border))
                .title(Span::styled(
                    title,
                    Style::default().add_modifier(Modifier::BOLD),
                ))
                .title_bottom(Line::from(" ↑/↓ PgUp/PgDn scroll, Esc closes ").right_aligned())
                .style(view.theme.base()),
        ),
        popup,
    );
}
