//! The transfer panel: an overall bar, then one line per job with its bar, bytes, speed and
//! time left; finished jobs stay with their outcome until cleared.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Row, Table};

use super::super::jobs::{self, JobRow, JobState};
use super::super::layout::first_visible_job;
use super::super::screen::Focus;
use super::super::theme::Theme;
use super::View;
use super::truncate;
use crate::format;

/// The width of each job's bar.
const BAR_WIDTH: u16 = 20;

pub fn draw(frame: &mut Frame, view: &View, area: Rect) {
    let theme = &view.theme;
    let focused = view.focus == Focus::Transfers;
    let overall = jobs::overall(view.jobs);
    let failed = view
        .jobs
        .iter()
        .filter(|j| match &j.state {
            JobState::Failed(message) => message != "cancelled",
            JobState::Done(summary) => summary.failed > 0 || j.left_out_errors > 0,
            _ => false,
        })
        .count();
    let mut title = vec![Span::styled(
        format!(" Transfers: {} running", overall.running),
        Style::default()
            .fg(theme.title)
            .add_modifier(Modifier::BOLD),
    )];
    if failed > 0 {
        title.push(Span::styled(
            format!(", {failed} failed"),
            Style::default().fg(theme.error_bg),
        ));
    }
    title.push(Span::raw(" "));
    let mut hint = format!(
        " {} focus  {} cancel  {} clear finished ",
        view.keymap.hint(super::super::keymap::Action::Transfers),
        view.keymap.hint(super::super::keymap::Action::CancelJob),
        view.keymap
            .hint(super::super::keymap::Action::ClearFinished),
    );
    if focused {
        // Where a job's failures and left-out entries are listed by name.
        hint.insert_str(
            0,
            &format!(
                " {} details ",
                view.keymap.hint(super::super::keymap::Action::Enter)
            ),
        );
    }
    let block = Block::bordered()
        .border_style(Style::default().fg(if focused {
            theme.border_focus
        } else {
            theme.border
        }))
        .title(Line::from(title))
        .title_bottom(
            Line::from(Span::styled(hint, Style::default().fg(theme.dim))).right_aligned(),
        );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 {
        return;
    }

    let wide = inner.width >= 90;
    let bar_width = if wide { BAR_WIDTH } else { 10 };
    let mut widths = vec![
        Constraint::Fill(1),
        Constraint::Length(bar_width),
        Constraint::Length(4),
        Constraint::Length(21),
    ];
    if wide {
        widths.push(Constraint::Length(12));
        widths.push(Constraint::Length(12));
    }

    let overall_ratio = jobs::ratio(overall.bytes_done, overall.bytes_total);
    let overall_row = if overall.running == 0 {
        Row::new(vec![Line::from("Overall: idle")]).style(Style::default().fg(theme.dim))
    } else if overall.scanning {
        let mut cells = vec![Line::from("Overall")];
        cells.extend(scanning_cells(overall.files_done, overall.bytes_done));
        if wide {
            cells.extend(rate_cells(overall.speed, None));
        }
        Row::new(cells).style(Style::default().add_modifier(Modifier::BOLD))
    } else {
        let mut cells = vec![Line::from("Overall")];
        cells.extend(bar_cells(overall_ratio, bar_width, theme));
        cells.push(sizes_cell(overall.bytes_done, overall.bytes_total));
        if wide {
            cells.extend(rate_cells(overall.speed, overall.eta));
        }
        Row::new(cells).style(Style::default().add_modifier(Modifier::BOLD))
    };

    let rows_for_jobs = usize::from(inner.height - 1);
    let first = first_visible_job(view.selected_job, area);
    let label_width = usize::from(
        inner
            .width
            .saturating_sub(bar_width + 4 + 21 + if wide { 24 + 5 } else { 3 }),
    );
    let mut rows = vec![overall_row];
    for (i, job) in view.jobs.iter().enumerate().skip(first).take(rows_for_jobs) {
        let selected = focused && i == view.selected_job;
        rows.push(job_row(view, job, selected, wide, bar_width, label_width));
    }
    frame.render_widget(Table::new(rows, widths).column_spacing(1), inner);
}

fn job_row<'a>(
    view: &View,
    job: &JobRow,
    selected: bool,
    wide: bool,
    bar_width: u16,
    label_width: usize,
) -> Row<'a> {
    let theme = &view.theme;
    // What the two places are, not which side of the screen they were on.
    let arrow = super::super::places::arrow(&job.info.src_dir, &job.info.dest_dir);
    let verb = if job.info.is_move { "mv " } else { "" };
    let (mark, state_style) = match &job.state {
        JobState::Scanning | JobState::Running => (arrow, Style::default()),
        JobState::Queued => ("…", Style::default().fg(theme.dim)),
        JobState::Paused => ("‖", Style::default().fg(theme.dim)),
        JobState::Failed(message) if message == "cancelled" => {
            ("⊘", Style::default().fg(theme.dim))
        }
        JobState::Done(_) if job.skipped_only() && job.left_out_errors == 0 => {
            ("–", Style::default().fg(theme.dim))
        }
        JobState::Done(s) if s.failed == 0 && job.left_out_errors == 0 => {
            ("✓", Style::default().fg(theme.verified))
        }
        JobState::Done(_) | JobState::Failed(_) => ("✗", Style::default().fg(theme.error_bg)),
    };
    let current = match (&job.state, &job.progress.current) {
        (JobState::Running, Some(c)) if job.progress.files_total > 1 => {
            format!(" ({})", format::escape_name(c))
        }
        (JobState::Scanning, Some(c)) => {
            format!(" ({})", format::escape_name(c))
        }
        _ => String::new(),
    };
    let pointer = if selected { "›" } else { "" };
    // A job's own limit while it runs, before its name, so a narrow panel still shows it.
    let limit = if job.rate_limit > 0 && job.is_active() {
        format!("≤{} ", super::super::rate::label(job.rate_limit))
    } else {
        String::new()
    };
    let label = match &job.state {
        JobState::Failed(message) => format!(
            "{pointer}#{} {mark} {verb}{}: {message}",
            job.number, job.info.label
        ),
        _ => format!(
            "{pointer}#{} {mark} {limit}{verb}{}{current} → {}",
            job.number,
            job.info.label,
            job.info.dest_dir.shown()
        ),
    };
    let ratio = job.ratio();
    let mut cells = vec![Line::from(truncate(&label, label_width))];
    if job.state == JobState::Scanning {
        cells.extend(scanning_cells(
            job.progress.files_done,
            job.progress.bytes_done,
        ));
        if wide && job.progress.files_done > 0 {
            cells.extend(rate_cells(job.progress.speed, None));
        }
    } else {
        cells.extend(bar_cells(ratio, bar_width, theme));
    }
    match &job.state {
        JobState::Scanning => {}
        JobState::Queued => cells.push(Line::from(format!("{:>21}", "queued"))),
        JobState::Paused => cells.push(Line::from(format!("{:>21}", "paused"))),
        JobState::Failed(message) => {
            // What a stopped job left behind matters more than the word, which the label
            // already carries.
            let text = if job.files_verified > 0 {
                format!(
                    "{} arrived",
                    format::counted(job.files_verified, "file", "files")
                )
            } else if message == "cancelled" {
                "cancelled".to_string()
            } else {
                "failed".to_string()
            };
            cells.push(Line::from(format!("{text:>21}")));
        }
        JobState::Running | JobState::Done(_) => {
            cells.push(sizes_cell(job.bytes_done(), job.progress.bytes_total));
            if wide {
                match &job.state {
                    JobState::Done(s) => {
                        let text = if job.kept_partial() {
                            "partial kept".to_string()
                        } else if s.failed > 0 {
                            format!("{} failed", format::count(s.failed))
                        } else if job.left_out_errors > 0 {
                            format!("{} not copied", format::count(job.left_out_errors))
                        } else if s.files == 0 && s.skipped > 0 {
                            format!("{} skipped", format::count(s.skipped))
                        } else {
                            format::counted(s.files, "file", "files")
                        };
                        cells.push(Line::from(format!("{text:>12}")));
                        cells.push(Line::from(format!("in {}", format::eta(s.elapsed))));
                    }
                    _ => {
                        cells.extend(rate_cells(job.progress.speed, job.progress.eta));
                    }
                }
            }
        }
    }
    let mut style = state_style;
    if selected {
        style = style.bg(theme.cursor_bg).fg(theme.cursor_fg);
    }
    Row::new(cells).style(style)
}

/// The bar and percentage cells, the same for a job and for the overall row.
fn bar_cells(ratio: f64, bar_width: u16, theme: &Theme) -> [Line<'static>; 2] {
    [
        Line::from(Span::styled(
            jobs::bar(ratio, usize::from(bar_width)),
            Style::default().fg(theme.progress),
        )),
        Line::from(format!("{:>3}%", jobs::percent(ratio))),
    ]
}

/// The bar, percentage and sizes cells while the tree is still walked: no scale exists yet,
/// so only what already arrived is told.
fn scanning_cells(files: u64, bytes: u64) -> [Line<'static>; 3] {
    let done = if files == 0 {
        String::new()
    } else {
        format!(
            "{}, {}",
            format::counted(files, "file", "files"),
            format::size(bytes)
        )
    };
    [
        Line::from("scanning…"),
        Line::from(""),
        Line::from(format!("{done:>21}")),
    ]
}

/// `done / total` in the width the sizes column has.
fn sizes_cell(done: u64, total: u64) -> Line<'static> {
    Line::from(format!(
        "{:>21}",
        format!("{} / {}", format::size(done), format::size(total))
    ))
}

/// Speed and time left, shown only when the panel is wide.
fn rate_cells(speed: f64, eta: Option<Duration>) -> [Line<'static>; 2] {
    [
        Line::from(format!("{:>12}", format::speed(speed))),
        Line::from(
            eta.map(|e| format!("{:>12}", format!("ETA {}", format::eta(e))))
                .unwrap_or_default(),
        ),
    ]
}
