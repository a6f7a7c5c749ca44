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
/// Key hints ranked this or lower (see [`key_bar`]) show only where the whole server summary
/// still fits beside them: they are conveniences, the summary is what the user is connected to.
pub const EXTRA_RANK: usize = 7;
/// Columns kept after the summary for the server's name before the hints ranked
/// [`EXTRA_RANK`] or lower show.
const NAME_ROOM: usize = 20;
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
/// columns wide. Hints are drawn in the order given (F1 to F10, as mc does) but kept by
/// `ranks` (lower is more needed): when the bar is narrow the least needed give way first, and
/// all of them give way to the first `STATE_MIN` columns of the summary (those ranked
/// [`EXTRA_RANK`] or lower to all of it), except the most needed (help: how a new user finds
/// every other key). Right-aligned with a trailing space.
/// The status bar draws its hints here and a click on one is its key.
pub fn key_bar(
    status: Rect,
    state: usize,
    widths: &[usize],
    ranks: &[usize],
) -> Vec<(usize, Rect)> {
    let room = usize::from(status.width).saturating_sub(state.min(STATE_MIN) + 1);
    // Hints ranked `EXTRA_RANK` or lower never cut the summary, nor the server's name after it.
    let extra_room = usize::from(status.width).saturating_sub(state + NAME_ROOM + 1);
    let mut order: Vec<usize> = (0..widths.len()).collect();
    order.sort_by_key(|&i| (ranks.get(i).copied().unwrap_or(usize::MAX), i));
    let mut shown: Vec<usize> = Vec::with_capacity(widths.len());
    let mut used = 0;
    for i in order {
        let width = widths[i];
        let grown = if shown.is_empty() {
            width
        } else {
            used + KEY_GAP + width
        };
        let room = if ranks.get(i).is_some_and(|&r| r >= EXTRA_RANK) {
            extra_room
        } else {
            room
        };
        if !shown.is_empty() && grown + 1 > room {
            // A shorter, less needed hint may still fit where this one does not.
            continue;
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

/// A pane's title as drawn and clicked: the path, cut from the left to fit, and where each of
/// its directories is on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TitlePath {
    /// The path as drawn, after ` LABEL: `: cut from the left behind `…` when it is too long.
    pub text: String,
    /// Each directory still visible (its name and the `/` after it): its cells on the title
    /// row, and how many levels above the pane's directory it is (0: the directory itself).
    pub segments: Vec<(Rect, usize)>,
}

/// Lays out the title of a pane drawn in `area`: ` LABEL: ` then the `/`-separated `path`
/// (a local path, or a remote one starting with `/`) then `busy`. The listing draws `text`
/// and a click on a segment goes to its directory, so both come from here.
pub fn title_path(area: Rect, label: &str, path: &str, busy: &str) -> TitlePath {
    use unicode_width::UnicodeWidthChar;
    let room = usize::from(area.width.saturating_sub(8))
        .saturating_sub(label.chars().count() + busy.chars().count());
    let chars: Vec<char> = path.chars().collect();
    // The first character shown: all of them, or enough of the end to fit behind `…`.
    let skip = if chars.len() <= room || room == 0 {
        0
    } else {
        chars.len() - room + 1
    };
    let text = if skip == 0 {
        path.to_string()
    } else {
        format!("…{}", chars[skip..].iter().collect::<String>())
    };
    // Where each segment starts and ends in `chars`: a leading `/` is the root's own segment;
    // every other segment is a name and the `/` that follows it.
    let mut spans = Vec::new();
    let mut start = 0;
    for (i, &c) in chars.iter().enumerate() {
        if c == '/' {
            spans.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < chars.len() {
        spans.push((start, chars.len()));
    }
    let levels = spans.len();
    // The border's corner, then ` LABEL: `.
    let origin = usize::from(area.x) + 1 + 1 + label.chars().count() + 2;
    let column = |index: usize| -> usize {
        origin
            + usize::from(skip > 0)
            + chars[skip..index.max(skip)]
                .iter()
                .map(|c| c.width().unwrap_or(0))
                .sum::<usize>()
    };
    let right = usize::from(area.x + area.width).saturating_sub(1);
    let segments = spans
        .into_iter()
        .enumerate()
        .filter(|&(_, (_, end))| end > skip)
        .filter_map(|(i, (begin, end))| {
            let left = column(begin.max(skip));
            let stop = column(end).min(right);
            (stop > left).then(|| {
                (
                    Rect::new(
                        u16::try_from(left).unwrap_or(u16::MAX),
                        area.y,
                        u16::try_from(stop - left).unwrap_or(u16::MAX),
                        1,
                    ),
                    levels - 1 - i,
                )
            })
        })
        .collect();
    TitlePath { text, segments }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_directory_of_a_title_path_has_its_cells() {
        let area = Rect::new(0, 0, 60, 20);
        let title = title_path(area, "Local", "/srv/data/x", "");
        assert_eq!(title.text, "/srv/data/x");
        // ` Local: ` after the corner: the path starts at column 9.
        let cells: Vec<(u16, u16, usize)> = title
            .segments
            .iter()
            .map(|(rect, up)| (rect.x, rect.width, *up))
            .collect();
        assert_eq!(cells, [(9, 1, 3), (10, 4, 2), (14, 5, 1), (19, 1, 0)]);
    }

    #[test]
    fn a_cut_title_keeps_the_segments_it_still_shows() {
        let area = Rect::new(40, 0, 24, 20);
        // Room for 24 - 8 - 3 = 13 characters.
        let title = title_path(area, "srv", "/alpha/beta/gamma", "");
        assert_eq!(title.text, "…a/beta/gamma");
        let ups: Vec<usize> = title.segments.iter().map(|(_, up)| *up).collect();
        // The root is cut off; what is left of alpha (`a/`) still goes to alpha.
        assert_eq!(ups, [2, 1, 0]);
        assert_eq!(title.segments[0].0.x, 40 + 1 + 1 + 3 + 2 + 1);
    }
}
