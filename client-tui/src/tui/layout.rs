//! Where each part of the screen goes, as arithmetic on rectangles and counts. A leaf: the
//! views draw into these areas and the mouse handling maps clicks through the same functions,
//! so a click lands on the row that was drawn, and neither needs the other.

use ratatui::layout::{Constraint, Layout, Rect};

/// The smallest terminal ferry draws in.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 10;
/// Rows between a pane's top edge and its first entry: the border and the column header.
pub const LIST_TOP: u16 = 2;
/// Most jobs the transfer panel shows at once.
const MAX_JOB_ROWS: u16 = 5;
/// The status bar keeps at least this many columns for the server, its state and its markers
/// (`[tls] [read-only]`) before it gives them to key hints beyond the first and the last.
const STATE_MIN: usize = 48;
/// Columns between two key hints in the status bar.
pub const KEY_GAP: usize = 2;

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub local: Rect,
    pub remote: Rect,
    pub transfers: Option<Rect>,
    pub banner: Option<Rect>,
    pub status: Rect,
}

/// Lays the screen out for `jobs` jobs in the transfer panel and a banner line or none.
pub fn layout(area: Rect, jobs: usize, banner: bool) -> Areas {
    let panel = if jobs == 0 {
        0
    } else {
        (jobs as u16).min(MAX_JOB_ROWS) + 3
    };
    // The transfer panel gives way before the panes become useless.
    let panel = panel.min(area.height.saturating_sub(8));
    let banner = u16::from(banner);
    let [panes, transfers, banner_area, status] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(panel),
        Constraint::Length(banner),
        Constraint::Length(1),
    ])
    .areas(area);
    let [local, remote] =
        Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(panes);
    Areas {
        local,
        remote,
        transfers: (panel > 0).then_some(transfers),
        banner: (banner > 0).then_some(banner_area),
        status,
    }
}

/// How many entries fit in a pane drawn in `area`.
pub fn list_rows(area: Rect) -> usize {
    usize::from(area.height.saturating_sub(LIST_TOP + 1))
}

/// The first job the transfer panel in `panel` shows: it scrolls to keep the `selected` job
/// visible.
pub fn first_visible_job(selected: usize, panel: Rect) -> usize {
    // Borders and the overall row take three rows.
    let rows = usize::from(panel.height.saturating_sub(3)).max(1);
    selected.saturating_sub(rows - 1)
}

/// The row of a pane's visible listing that screen row `y` falls on, for a pane drawn in
/// `area`; `None` on the border, the header or below the last row.
pub fn pane_row(area: Rect, y: u16) -> Option<usize> {
    let first = area.y + LIST_TOP;
    if y < first || usize::from(y - first) >= list_rows(area) {
        return None;
    }
    Some(usize::from(y - first))
}

/// The job the transfer panel in `panel` draws on screen row `y`, scrolled to show the
/// `selected` job; `None` on the border and the overall row (it may be past the last job).
pub fn job_at(panel: Rect, selected: usize, y: u16) -> Option<usize> {
    // The border, then the overall row, then the jobs.
    (y > panel.y + 1).then(|| first_visible_job(selected, panel) + usize::from(y - panel.y - 2))
}

/// Where the key hints go in the status bar `status`: the index and rectangle of each hint
/// that fits, in order, for hints `widths` columns wide, after a server summary `state`
/// columns wide. The first (help) always shows, since it is how a new user finds every other
/// key, and so does the last (quit), since a user must always see how to leave; the middle
/// ones follow in order while they fit, right-aligned with a trailing space, giving way to the
/// first `STATE_MIN` columns of the summary. The status bar draws its hints here and a click
/// on one is its key.
pub fn key_bar(status: Rect, state: usize, widths: &[usize]) -> Vec<(usize, Rect)> {
    let room = usize::from(status.width).saturating_sub(state.min(STATE_MIN) + 1);
    let last = widths.len().saturating_sub(1);
    let mut shown: Vec<usize> = Vec::with_capacity(widths.len());
    let mut used = 0;
    // Help and quit first, then the middle in order.
    let order = std::iter::once(0)
        .chain((last > 0).then_some(last))
        .chain(1..last);
    for i in order {
        let Some(&width) = widths.get(i) else { break };
        let grown = if shown.is_empty() {
            width
        } else {
            used + KEY_GAP + width
        };
        if !shown.is_empty() && grown + 1 > room {
            break;
        }
        used = grown;
        shown.push(i);
    }
    shown.sort_unstable();
    // The trailing space.
    let start = usize::from(status.width).saturating_sub(used + 1);
    let mut x = start;
    let mut rects = Vec::with_capacity(shown.len());
    for i in shown {
        let width = widths[i];
        let left = x.min(usize::from(status.width));
        let right = (x + width).min(usize::from(status.width));
        rects.push((
            i,
            Rect::new(
                status.x + u16::try_from(left).unwrap_or(u16::MAX),
                status.y,
                u16::try_from(right - left).unwrap_or(u16::MAX),
                1,
            ),
        ));
        x += width + KEY_GAP;
    }
    rects
}

/// A rectangle of at most `width` x `height` in the middle of `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}
