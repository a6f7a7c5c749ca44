//! The viewer's pure arithmetic over bytes: where a line ends and the one before starts, how a
//! line's bytes become screen cells (invalid UTF-8 and control characters made visible), a hex
//! row, finding a needle, and telling a binary file from text by its first block.

/// The longest line the viewer lays out in one piece: a longer one (or a file without newlines)
/// is shown in pieces of this many bytes, so a row never needs more than this read.
pub const MAX_LINE: usize = 4096;

/// Bytes per hex row.
pub const HEX_WIDTH: u64 = 16;

/// Columns a tab advances to the next multiple of.
const TAB: usize = 8;

/// One character on screen, with the file offset of its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub ch: char,
    pub at: u64,
    /// Part of the search hit.
    pub hit: bool,
}

/// The length of the line at the start of `bytes` (without its newline) and where the next one
/// starts, relative to it; `None` when `bytes` end before the line does and more of the file
/// follows (`at_eof` false).
pub fn line_end(bytes: &[u8], at_eof: bool) -> Option<(usize, usize)> {
    let window = &bytes[..bytes.len().min(MAX_LINE)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => Some((i, i + 1)),
        None if window.len() == MAX_LINE => Some((MAX_LINE, MAX_LINE)),
        None if at_eof => Some((window.len(), window.len())),
        None => None,
    }
}

/// Where the line before the one starting at `pos` starts, given `before`: the bytes from
/// `pos - before.len()` up to `pos`, at least [`MAX_LINE`] + 1 of them unless they reach the
/// file's start.
pub fn line_start_before(before: &[u8], pos: u64) -> u64 {
    let lo = pos - before.len() as u64;
    let body = match before.last() {
        Some(b'\n') => &before[..before.len() - 1],
        _ => before,
    };
    match body.iter().rposition(|&b| b == b'\n') {
        Some(i) => lo + i as u64 + 1,
        None => lo,
    }
}

/// The start of the line holding `at`, given `before`: the bytes from `at - before.len()` up
/// to `at`.
pub fn line_start_of(before: &[u8], at: u64) -> u64 {
    let lo = at - before.len() as u64;
    match before.iter().rposition(|&b| b == b'\n') {
        Some(i) => lo + i as u64 + 1,
        None => lo,
    }
}

/// The cells of a line's bytes starting at file offset `base`: invalid UTF-8 as `�` per byte,
/// tabs expanded, other control characters as `·`, so no byte of the file reaches the terminal
/// raw. `hit` is a byte range to mark.
pub fn cells(bytes: &[u8], base: u64, hit: Option<(u64, u64)>) -> Vec<Cell> {
    let mut out = Vec::with_capacity(bytes.len());
    let marked = |at: u64| hit.is_some_and(|(from, to)| at >= from && at < to);
    let mut at = base;
    for chunk in bytes.utf8_chunks() {
        for ch in chunk.valid().chars() {
            if ch == '\t' {
                let pad = TAB - out.len() % TAB;
                for _ in 0..pad {
                    out.push(Cell {
                        ch: ' ',
                        at,
                        hit: marked(at),
                    });
                }
            } else {
                let shown = if ch.is_control() { '·' } else { ch };
                out.push(Cell {
                    ch: shown,
                    at,
                    hit: marked(at),
                });
            }
            at += ch.len_utf8() as u64;
        }
        for _ in chunk.invalid() {
            out.push(Cell {
                ch: '\u{fffd}',
                at,
                hit: marked(at),
            });
            at += 1;
        }
    }
    out
}

/// A hex row: offset, the bytes in hex, and them as text (`.` for what is not printable ASCII).
pub fn hex_row(bytes: &[u8], offset: u64) -> String {
    let mut row = format!("{offset:010x}  ");
    for i in 0..HEX_WIDTH as usize {
        match bytes.get(i) {
            Some(b) => row.push_str(&format!("{b:02x} ")),
            None => row.push_str("   "),
        }
        if i == 7 {
            row.push(' ');
        }
    }
    row.push_str(" |");
    row.extend(bytes.iter().map(|&b| {
        if b.is_ascii_graphic() || b == b' ' {
            b as char
        } else {
            '.'
        }
    }));
    row.push('|');
    row
}

/// The first place `needle` occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let last_start = hay.len() - needle.len();
    let mut from = 0;
    while from <= last_start {
        let i = from + hay[from..=last_start].iter().position(|&b| b == first)?;
        if &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// The last place `needle` occurs in `hay`.
pub fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (0..=hay.len() - needle.len())
        .rev()
        .find(|&i| &hay[i..i + needle.len()] == needle)
}

/// Whether a file whose first block is `first` is better shown in hex: it holds a NUL, or more
/// than a tenth of it is control bytes that text does not use.
pub fn looks_binary(first: &[u8]) -> bool {
    if first.contains(&0) {
        return true;
    }
    let odd = first
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c | 0x1b))
        .count();
    odd * 10 > first.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_at_newlines_at_the_cap_or_at_the_end_of_the_file() {
        assert_eq!(line_end(b"ab\ncd", false), Some((2, 3)));
        assert_eq!(line_end(b"abcd", false), None);
        assert_eq!(line_end(b"abcd", true), Some((4, 4)));
        let long = vec![b'x'; MAX_LINE + 10];
        assert_eq!(line_end(&long, false), Some((MAX_LINE, MAX_LINE)));
    }

    #[test]
    fn the_line_before_starts_after_the_newline_before_it() {
        // "one\ntwo\n" with pos at 8 (after "two\n"): the line before starts at 4.
        assert_eq!(line_start_before(b"one\ntwo\n", 8), 4);
        assert_eq!(line_start_before(b"one\n", 4), 0);
        assert_eq!(line_start_before(b"\n\n", 2), 1);
        assert_eq!(line_start_of(b"one\ntw", 6), 4);
    }

    #[test]
    fn cells_show_invalid_bytes_and_controls_and_mark_the_hit() {
        let c = cells(b"a\xffb\x1bc\td", 10, Some((12, 13)));
        let text: String = c.iter().map(|c| c.ch).collect();
        assert_eq!(text, "a\u{fffd}b·c   d");
        assert!(c[2].hit && !c[1].hit);
        assert_eq!(c[2].at, 12);
    }

    #[test]
    fn find_and_rfind_locate_needles() {
        assert_eq!(find(b"abcabc", b"ca"), Some(2));
        assert_eq!(rfind(b"abcabc", b"bc"), Some(4));
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find(b"aab", b"ab"), Some(1));
    }

    #[test]
    fn binary_is_told_from_text() {
        assert!(looks_binary(b"ELF\0\x01"));
        assert!(!looks_binary("plain text\twith tabs\n".as_bytes()));
        assert!(looks_binary(&[1, 2, 3, 4, 5, b'a']));
    }

    #[test]
    fn hex_rows_show_offset_hex_and_text() {
        let row = hex_row(b"Hi\n", 32);
        assert!(row.starts_with("0000000020  48 69 0a"), "{row}");
        assert!(row.ends_with("|Hi.|"), "{row}");
    }
}
