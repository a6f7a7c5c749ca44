//! The internal viewer (F3): a file, local or remote, shown as text or hex while only the
//! part on screen is read. The file is read in blocks of [`BLOCK`] bytes into a small window
//! ([`MAX_BLOCKS`] of them around the view), so a 1 GiB file opens as fast as a small one and
//! memory stays flat. Searching and going to a line read forward (or back) through the file in
//! chunks of [`SCAN`] bytes, one at a time, showing progress, until found or cancelled.
//!
//! Synchronous and free of IO like the rest of the app: it asks for [`ReadRequest`]s and is
//! given the bytes back in [`Viewer::on_read`]. The text arithmetic is in `text`; the editor and
//! shell hand-over that F4 and Ctrl+O use is in `edit`.
//!
//! Over 600 lines with its tests: the window of blocks, the moves that wait for bytes and the
//! scans all work on one cache and one pending move; apart, they would pass that state around.

pub mod edit;
pub mod text;

use std::collections::{BTreeMap, HashSet};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::input::LineInput;
use super::location::Location;
use text::{Cell, HEX_WIDTH, MAX_LINE};

/// Bytes per block of the view's window.
pub const BLOCK: u64 = 64 * 1024;
/// Blocks kept at most: 4 MiB, whatever the file's size.
pub const MAX_BLOCKS: usize = 64;
/// Bytes per read of a search or a go-to-line.
pub const SCAN: u64 = 1024 * 1024;
/// Columns Left and Right move by.
const HSTEP: usize = 8;

/// The viewer's own keys, for the help screen and README (fixed: the keymap is for the panes).
pub const KEYS: [(&str, &str); 9] = [
    ("viewer: ↑ ↓ j k", "line up, down"),
    ("viewer: PgUp PgDn", "page up, down (also b, Space)"),
    ("viewer: Home End g G", "start, end of the file"),
    ("viewer: ← → h l", "scroll sideways (w: wrap)"),
    ("viewer: /  n  N", "search, next, previous"),
    ("viewer: :  Ctrl+G", "go to line, @offset, 0xhex"),
    ("viewer: x  F4", "hex / text"),
    ("viewer: Esc", "cancel a search"),
    ("viewer: q Esc F3 F10", "close"),
];

/// A read the viewer needs: `length` bytes of its file at `offset`, answered with `tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub source: Location,
    pub tag: u64,
    pub offset: u64,
    pub length: u64,
}

/// Bytes read for the viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub bytes: Vec<u8>,
    /// The file's length when they were read.
    pub file_size: u64,
}

/// What a key did to the viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Stay,
    Close,
}

/// A prompt typed at the bottom line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    Search,
    Goto,
}

/// A search or go-to-line reading through the file.
#[derive(Debug, Clone)]
pub struct Scan {
    kind: ScanKind,
    tag: u64,
    /// Forward: the offset of the next chunk; backward: the end of the next chunk.
    next: u64,
    /// The needle's overlap with the chunk read before, so a match across chunks is found.
    carry: Vec<u8>,
    /// Bytes read so far and the bytes there are to read, for the progress shown.
    pub done: u64,
    pub span: u64,
}

#[derive(Debug, Clone)]
enum ScanKind {
    Find {
        needle: Vec<u8>,
        backward: bool,
    },
    /// Newlines still to pass for a go-to-line.
    Line {
        left: u64,
        line: u64,
    },
}

/// A move that waits for bytes to arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nav {
    Down(usize),
    Up(usize),
    /// To the line holding this offset.
    Reveal(u64),
}

/// One row on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub offset: u64,
    pub cells: Vec<Cell>,
}

/// The viewer's state.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub source: Location,
    /// The file's name as shown in the title.
    pub title: String,
    /// Tags of this viewer's reads: `id << 24` for blocks, plus a scan's number for its chunks.
    id: u64,
    scans: u64,
    /// The file's length, known once the first read answers.
    pub size: Option<u64>,
    blocks: BTreeMap<u64, Vec<u8>>,
    asked: HashSet<u64>,
    /// The first byte shown: a line's start in text mode, a row's in hex.
    pub top: u64,
    pub hscroll: usize,
    pub wrap: bool,
    pub hex: bool,
    /// The user chose text or hex: the first block no longer decides.
    chosen: bool,
    pub width: usize,
    pub height: usize,
    pub prompt: Option<(Prompt, LineInput)>,
    needle: Option<Vec<u8>>,
    pub scan: Option<Scan>,
    /// The last match, as a byte range.
    pub hit: Option<(u64, u64)>,
    pub note: Option<String>,
    pub error: Option<String>,
    pending: Option<Nav>,
    out: Vec<ReadRequest>,
}

impl Viewer {
    /// A viewer of `source` on a `width` × `height` screen; `id` tells its reads from those of
    /// viewers before it. Its first read is queued at once.
    pub fn new(source: Location, title: String, id: u64, width: u16, height: u16) -> Viewer {
        let mut viewer = Viewer {
            source,
            title,
            id,
            scans: 0,
            size: None,
            blocks: BTreeMap::new(),
            asked: HashSet::new(),
            top: 0,
            hscroll: 0,
            wrap: false,
            hex: false,
            chosen: false,
            width: 80,
            height: 20,
            prompt: None,
            needle: None,
            scan: None,
            hit: None,
            note: None,
            error: None,
            pending: None,
            out: Vec::new(),
        };
        viewer.resize(width, height);
        viewer.settle();
        viewer
    }

    /// The screen's size: a title line and a status line around the text.
    pub fn resize(&mut self, width: u16, height: u16) {
        self.width = usize::from(width).max(1);
        self.height = usize::from(height).saturating_sub(2).max(1);
    }

    /// Takes the reads to send.
    pub fn take_reads(&mut self) -> Vec<ReadRequest> {
        std::mem::take(&mut self.out)
    }

    fn block_tag(&self) -> u64 {
        self.id << 24
    }

    /// Whether a reply with `tag` is for this viewer.
    pub fn owns(&self, tag: u64) -> bool {
        tag >> 24 == self.id
    }

    /// Bytes of a read this viewer asked for.
    pub fn on_read(&mut self, tag: u64, offset: u64, result: Result<Chunk, String>) {
        let chunk = match result {
            Ok(chunk) => chunk,
            Err(error) => {
                self.asked.remove(&(offset / BLOCK));
                if self.scan.as_ref().is_some_and(|s| s.tag == tag) {
                    self.scan = None;
                }
                self.error = Some(error);
                return;
            }
        };
        self.size = Some(chunk.file_size);
        if tag == self.block_tag() {
            let index = offset / BLOCK;
            self.asked.remove(&index);
            if index == 0 && !self.chosen {
                self.hex = text::looks_binary(&chunk.bytes);
            }
            self.blocks.insert(index, chunk.bytes);
        } else if self.scan.as_ref().is_some_and(|s| s.tag == tag) {
            self.scan_step(offset, &chunk.bytes);
        }
        self.settle();
    }

    /// Bytes `from..to` (clipped to the file) from the window, or the first block missing.
    fn bytes(&self, from: u64, to: u64) -> Result<Vec<u8>, u64> {
        let size = self.size.ok_or(0u64)?;
        let to = to.min(size);
        let mut out = Vec::with_capacity(to.saturating_sub(from) as usize);
        let mut at = from;
        while at < to {
            let index = at / BLOCK;
            let block = self.blocks.get(&index).ok_or(index)?;
            let start = (at - index * BLOCK) as usize;
            let end = ((to - index * BLOCK) as usize).min(block.len());
            if start >= end {
                // A block shorter than expected: the file shrank since the size was read.
                break;
            }
            out.extend_from_slice(&block[start..end]);
            at += (end - start) as u64;
        }
        Ok(out)
    }

    /// The rows from `from` on, at most `count`; stops early at a block not read yet, which
    /// is then returned too.
    fn layout(&self, from: u64, count: usize) -> (Vec<Row>, Option<u64>) {
        let Some(size) = self.size else {
            return (Vec::new(), Some(0));
        };
        let mut rows = Vec::new();
        let mut pos = from;
        while rows.len() < count && pos < size {
            if self.hex {
                let bytes = match self.bytes(pos, pos.saturating_add(HEX_WIDTH)) {
                    Ok(bytes) => bytes,
                    Err(missing) => return (rows, Some(missing)),
                };
                rows.push(Row {
                    offset: pos,
                    cells: text::hex_row(&bytes, pos)
                        .chars()
                        .map(|ch| Cell {
                            ch,
                            at: pos,
                            hit: false,
                        })
                        .collect(),
                });
                pos = pos.saturating_add(HEX_WIDTH);
                continue;
            }
            let end = pos.saturating_add(MAX_LINE as u64).min(size);
            let bytes = match self.bytes(pos, end) {
                Ok(bytes) => bytes,
                Err(missing) => return (rows, Some(missing)),
            };
            let Some((len, step)) = text::line_end(&bytes, end == size) else {
                break;
            };
            let cells = text::cells(&bytes[..len], pos, self.hit);
            if self.wrap && cells.len() > self.width {
                for piece in cells.chunks(self.width) {
                    rows.push(Row {
                        offset: piece.first().map_or(pos, |c| c.at),
                        cells: piece.to_vec(),
                    });
                }
            } else {
                rows.push(Row {
                    offset: pos,
                    cells: cells
                        .into_iter()
                        .skip(self.hscroll)
                        .take(self.width)
                        .collect(),
                });
            }
            pos += step.max(1) as u64;
        }
        rows.truncate(count);
        (rows, None)
    }

    /// What the screen shows now.
    pub fn rows(&self) -> Vec<Row> {
        let mut rows = self.layout(self.top, self.height).0;
        rows.truncate(self.height);
        rows
    }

    /// Carries out a waiting move, asks for the blocks the screen needs and forgets the ones
    /// far from it.
    fn settle(&mut self) {
        if let Some(nav) = self.pending.take() {
            self.navigate(nav);
        }
        let (_, missing) = self.layout(self.top, self.height + 1);
        if let Some(index) = missing {
            self.ask(index);
        }
        let here = self.top / BLOCK;
        while self.blocks.len() > MAX_BLOCKS {
            let far = self
                .blocks
                .keys()
                .copied()
                .max_by_key(|&index| index.abs_diff(here));
            match far {
                Some(index) => self.blocks.remove(&index),
                None => break,
            };
        }
    }

    fn ask(&mut self, index: u64) {
        if self.blocks.contains_key(&index) || !self.asked.insert(index) {
            return;
        }
        self.out.push(ReadRequest {
            source: self.source.clone(),
            tag: self.block_tag(),
            offset: index * BLOCK,
            length: BLOCK,
        });
    }

    /// Applies a move as far as the bytes at hand allow; the rest waits in `pending`.
    fn navigate(&mut self, nav: Nav) {
        let Some(size) = self.size else {
            self.pending = Some(nav);
            return;
        };
        match nav {
            Nav::Down(n) if self.hex => {
                let last = size.saturating_sub(1) / HEX_WIDTH * HEX_WIDTH;
                let step = (n as u64).saturating_mul(HEX_WIDTH);
                self.top = self.top.saturating_add(step).min(last);
            }
            Nav::Up(n) if self.hex => {
                self.top = self.top.saturating_sub(n as u64 * HEX_WIDTH);
            }
            Nav::Reveal(at) if self.hex => self.top = at / HEX_WIDTH * HEX_WIDTH,
            Nav::Down(n) => {
                let (rows, missing) = self.layout(self.top, n + 1);
                if let Some(row) = rows.get(n) {
                    self.top = row.offset;
                } else if let Some(index) = missing {
                    self.ask(index);
                    if let Some(row) = rows.last() {
                        let done = rows.len() - 1;
                        self.top = row.offset;
                        self.pending = Some(Nav::Down(n - done));
                    } else {
                        self.pending = Some(Nav::Down(n));
                    }
                } else if let Some(row) = rows.last() {
                    self.top = row.offset;
                }
            }
            Nav::Up(n) => {
                for done in 0..n {
                    if self.top == 0 {
                        break;
                    }
                    let lo = self.top.saturating_sub(MAX_LINE as u64 + 1);
                    match self.bytes(lo, self.top) {
                        Ok(before) => self.top = text::line_start_before(&before, self.top),
                        Err(index) => {
                            self.ask(index);
                            self.pending = Some(Nav::Up(n - done));
                            return;
                        }
                    }
                }
            }
            Nav::Reveal(at) => {
                let at = at.min(size);
                let lo = at.saturating_sub(MAX_LINE as u64);
                match self.bytes(lo, at) {
                    Ok(before) => self.top = text::line_start_of(&before, at),
                    Err(index) => {
                        self.ask(index);
                        self.top = at;
                        self.pending = Some(Nav::Reveal(at));
                    }
                }
            }
        }
    }

    fn go(&mut self, nav: Nav) {
        self.pending = None;
        self.navigate(nav);
    }

    /// The last screenful.
    fn end(&mut self) {
        let Some(size) = self.size else { return };
        if self.hex {
            let last = size.saturating_sub(1) / HEX_WIDTH * HEX_WIDTH;
            self.top = last.saturating_sub((self.height as u64 - 1) * HEX_WIDTH);
        } else {
            self.top = size;
            self.go(Nav::Up(self.height));
        }
    }

    /// A key; the outcome says whether the viewer closes.
    pub fn on_key(&mut self, key: &KeyEvent) -> Outcome {
        self.note = None;
        if self.prompt.is_some() {
            self.prompt_key(key);
            self.settle();
            return Outcome::Stay;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let page = self.height.saturating_sub(1).max(1);
        match key.code {
            KeyCode::Esc if self.scan.is_some() => {
                self.scan = None;
                self.note = Some("Search cancelled".into());
            }
            KeyCode::Esc | KeyCode::F(3) | KeyCode::F(10) | KeyCode::Char('q') => {
                return Outcome::Close;
            }
            KeyCode::Down | KeyCode::Char('j') | KeyCode::Enter => self.go(Nav::Down(1)),
            KeyCode::Up | KeyCode::Char('k') => self.go(Nav::Up(1)),
            KeyCode::PageDown | KeyCode::Char(' ') => self.go(Nav::Down(page)),
            KeyCode::Char('f') if ctrl => self.go(Nav::Down(page)),
            KeyCode::PageUp | KeyCode::Char('b') => self.go(Nav::Up(page)),
            KeyCode::Home => self.top = 0,
            KeyCode::Char('g') if !ctrl => self.top = 0,
            KeyCode::End | KeyCode::Char('G') => self.end(),
            KeyCode::Right | KeyCode::Char('l') if !self.wrap && !self.hex => {
                self.hscroll += HSTEP;
            }
            KeyCode::Left | KeyCode::Char('h') if !self.wrap && !self.hex => {
                self.hscroll = self.hscroll.saturating_sub(HSTEP);
            }
            KeyCode::Char('w') => {
                self.wrap = !self.wrap;
                self.hscroll = 0;
            }
            KeyCode::F(4) | KeyCode::Char('x') => {
                self.chosen = true;
                self.hex = !self.hex;
                let at = self.top;
                self.go(Nav::Reveal(at));
            }
            KeyCode::Char('/') => self.prompt = Some((Prompt::Search, LineInput::default())),
            KeyCode::Char(':') => self.prompt = Some((Prompt::Goto, LineInput::default())),
            KeyCode::Char('g') if ctrl => self.prompt = Some((Prompt::Goto, LineInput::default())),
            KeyCode::Char('n') => self.search_again(false),
            KeyCode::Char('N') => self.search_again(true),
            _ => {}
        }
        self.settle();
        Outcome::Stay
    }

    fn prompt_key(&mut self, key: &KeyEvent) {
        let Some((kind, mut input)) = self.prompt.take() else {
            return;
        };
        match key.code {
            KeyCode::Esc => {}
            KeyCode::Enter => {
                let text = input.text().to_string();
                match kind {
                    Prompt::Search if !text.is_empty() => {
                        self.needle = Some(text.into_bytes());
                        let from = self.hit.map_or(self.top, |(start, _)| start + 1);
                        self.start_find(from, false);
                    }
                    Prompt::Search => {}
                    Prompt::Goto => self.goto(text.trim()),
                }
            }
            _ => {
                input.handle(key);
                self.prompt = Some((kind, input));
            }
        }
    }

    fn search_again(&mut self, backward: bool) {
        if self.needle.is_none() {
            self.note = Some("Nothing to search for yet: / starts a search".into());
            return;
        }
        let from = match (self.hit, backward) {
            (Some((start, _)), false) => start + 1,
            (Some((start, _)), true) => start,
            (None, _) => self.top,
        };
        self.start_find(from, backward);
    }

    /// Goes to a line number, or to a byte offset written `@N` or `0xHEX`.
    fn goto(&mut self, text: &str) {
        let offset = if let Some(hex) = text.strip_prefix("0x") {
            u64::from_str_radix(hex, 16).ok()
        } else if let Some(dec) = text.strip_prefix('@') {
            dec.parse().ok()
        } else {
            None
        };
        if let Some(offset) = offset {
            self.go(Nav::Reveal(offset));
            return;
        }
        match text.parse::<u64>() {
            Ok(0 | 1) => self.top = 0,
            Ok(line) if self.hex => self.go(Nav::Reveal((line - 1).saturating_mul(HEX_WIDTH))),
            Ok(line) => self.start_scan(
                ScanKind::Line {
                    left: line - 1,
                    line,
                },
                0,
            ),
            Err(_) => {
                self.note = Some(format!(
                    "Not a line number or offset: {}",
                    crate::format::escape_text(text)
                ));
            }
        }
    }

    fn start_find(&mut self, from: u64, backward: bool) {
        let Some(needle) = self.needle.clone() else {
            return;
        };
        self.start_scan(ScanKind::Find { needle, backward }, from);
    }

    fn start_scan(&mut self, kind: ScanKind, from: u64) {
        let Some(size) = self.size else { return };
        self.scans += 1;
        let backward = matches!(kind, ScanKind::Find { backward: true, .. });
        let from = from.min(size);
        let span = if backward { from } else { size - from };
        self.scan = Some(Scan {
            kind,
            tag: self.block_tag() + self.scans,
            next: from,
            carry: Vec::new(),
            done: 0,
            span,
        });
        self.scan_next();
    }

    /// Asks for the scan's next chunk, or ends it at the end (or start) of the file.
    fn scan_next(&mut self) {
        let Some(scan) = &self.scan else { return };
        let size = self.size.unwrap_or(0);
        let backward = matches!(scan.kind, ScanKind::Find { backward: true, .. });
        let (offset, length) = if backward {
            let start = scan.next.saturating_sub(SCAN);
            (start, scan.next - start)
        } else {
            (scan.next, SCAN.min(size.saturating_sub(scan.next)))
        };
        if length == 0 {
            let scan = self.scan.take();
            self.note = Some(match scan.map(|s| s.kind) {
                Some(ScanKind::Line { line, left }) => {
                    self.end();
                    format!("The file has only {} lines, not {line}", line - left)
                }
                _ => "Not found".into(),
            });
            return;
        }
        let tag = scan.tag;
        self.out.push(ReadRequest {
            source: self.source.clone(),
            tag,
            offset,
            length,
        });
    }

    /// A chunk of the running scan arrived.
    fn scan_step(&mut self, offset: u64, bytes: &[u8]) {
        let Some(scan) = self.scan.as_mut() else {
            return;
        };
        scan.done += bytes.len() as u64;
        let mut found = None;
        match &mut scan.kind {
            ScanKind::Find {
                needle,
                backward: false,
            } => {
                let start = offset - scan.carry.len() as u64;
                let mut hay = std::mem::take(&mut scan.carry);
                hay.extend_from_slice(bytes);
                if let Some(i) = text::find(&hay, needle) {
                    found = Some((start + i as u64, needle.len() as u64));
                } else {
                    let keep = hay.len().min(needle.len().saturating_sub(1));
                    scan.carry = hay[hay.len() - keep..].to_vec();
                }
                scan.next = offset + bytes.len() as u64;
                if bytes.is_empty() {
                    scan.next = self.size.unwrap_or(0);
                }
            }
            ScanKind::Find {
                needle,
                backward: true,
            } => {
                let mut hay = bytes.to_vec();
                hay.extend_from_slice(&scan.carry);
                if let Some(i) = text::rfind(&hay, needle) {
                    found = Some((offset + i as u64, needle.len() as u64));
                } else {
                    let keep = hay.len().min(needle.len().saturating_sub(1));
                    scan.carry = hay[..keep].to_vec();
                }
                scan.next = offset;
            }
            ScanKind::Line { left, .. } => {
                for (i, _) in bytes.iter().enumerate().filter(|(_, b)| **b == b'\n') {
                    *left -= 1;
                    if *left == 0 {
                        found = Some((offset + i as u64 + 1, 0));
                        break;
                    }
                }
                scan.next = offset + bytes.len() as u64;
                if bytes.is_empty() {
                    scan.next = self.size.unwrap_or(0);
                }
            }
        }
        match found {
            Some((at, len)) => {
                let scan = self.scan.take();
                if len > 0 {
                    self.hit = Some((at, at + len));
                } else if let Some(ScanKind::Line { line, .. }) = scan.map(|s| s.kind) {
                    self.note = Some(format!("Line {line}"));
                }
                self.go(Nav::Reveal(at));
            }
            None => self.scan_next(),
        }
    }

    /// The status line's text: position, mode, and what a scan or prompt is doing.
    pub fn status(&self) -> String {
        if let Some(scan) = &self.scan {
            let percent = percent(scan.done, scan.span);
            let what = match scan.kind {
                ScanKind::Find { .. } => "Searching",
                ScanKind::Line { .. } => "Counting lines",
            };
            return format!("{what}… {percent}% (Esc cancels)");
        }
        if let Some(error) = &self.error {
            return error.clone();
        }
        if let Some(note) = &self.note {
            return note.clone();
        }
        let size = self.size.unwrap_or(0);
        let percent = percent(self.top, size);
        format!(
            "{} of {}  {percent}%  {}{}  / search  n N next  : go to  x hex/text  w wrap  q close",
            self.top,
            crate::format::size(size),
            if self.hex { "hex" } else { "text" },
            if self.wrap { " wrap" } else { "" },
        )
    }

    /// Whether every block the viewer holds is within its window's cap, for tests of memory.
    pub fn blocks_held(&self) -> usize {
        self.blocks.len()
    }
}

/// `part` of `whole` in per cent, for any sizes a server may claim.
fn percent(part: u64, whole: u64) -> u128 {
    (u128::from(part) * 100)
        .checked_div(u128::from(whole))
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    /// Answers the viewer's reads from `file` until it asks for none.
    fn serve(viewer: &mut Viewer, file: &[u8]) {
        for _ in 0..10_000 {
            let reads = viewer.take_reads();
            if reads.is_empty() {
                return;
            }
            for read in reads {
                let start = (read.offset as usize).min(file.len());
                let end = (start + read.length as usize).min(file.len());
                viewer.on_read(
                    read.tag,
                    read.offset,
                    Ok(Chunk {
                        bytes: file[start..end].to_vec(),
                        file_size: file.len() as u64,
                    }),
                );
            }
        }
        panic!("the viewer kept reading");
    }

    fn shown(viewer: &Viewer) -> Vec<String> {
        viewer
            .rows()
            .iter()
            .map(|r| r.cells.iter().map(|c| c.ch).collect())
            .collect()
    }

    fn numbered(lines: usize) -> Vec<u8> {
        (1..=lines)
            .map(|i| format!("line {i}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn pages_down_and_back_and_to_the_end() {
        let file = numbered(100_000);
        let mut v = Viewer::new(Location::Remote("f".into()), "f".into(), 1, 40, 12);
        serve(&mut v, &file);
        assert_eq!(shown(&v)[0], "line 1");
        v.on_key(&key(KeyCode::PageDown));
        serve(&mut v, &file);
        assert_eq!(shown(&v)[0], "line 10");
        v.on_key(&key(KeyCode::PageUp));
        serve(&mut v, &file);
        assert_eq!(shown(&v)[0], "line 1");
        v.on_key(&key(KeyCode::End));
        serve(&mut v, &file);
        let rows = shown(&v);
        assert_eq!(rows.last().map(String::as_str), Some("line 100000"));
        assert_eq!(rows.len(), 10);
        v.on_key(&key(KeyCode::Up));
        serve(&mut v, &file);
        assert_eq!(shown(&v)[0], "line 99990");
        assert!(v.blocks_held() <= MAX_BLOCKS);
    }

    #[test]
    fn search_finds_forward_and_back_across_chunks_and_goto_counts_lines() {
        let file = numbered(300_000);
        let mut v = Viewer::new(Location::Remote("f".into()), "f".into(), 2, 40, 12);
        serve(&mut v, &file);
        v.on_key(&key(KeyCode::Char('/')));
        for c in "line 250000\n".chars() {
            v.on_key(&key(KeyCode::Char(c)));
        }
        v.on_key(&key(KeyCode::Enter));
        serve(&mut v, &file);
        assert_eq!(shown(&v)[0], "line 250000", "{:?}", v.status());
        v.on_key(&key(KeyCode::Char('N')));
        serve(&mut v, &file);
        assert_eq!(v.status(), "Not found");
        v.on_key(&key(KeyCode::Char(':')));
        for c in "123456".chars() {
            v.on_key(&key(KeyCode::Char(c)));
        }
        v.on_key(&key(KeyCode::Enter));
        serve(&mut v, &file);
        assert_eq!(shown(&v)[0], "line 123456");
    }

    #[test]
    fn moving_back_over_long_lines_reads_the_blocks_it_needs() {
        // Lines of 4,000 bytes: each step back reads across block boundaries.
        let line = format!("{}\n", "a".repeat(3_999));
        let file = line.repeat(2_000).into_bytes();
        let mut v = Viewer::new(Location::Remote("f".into()), "f".into(), 4, 40, 12);
        serve(&mut v, &file);
        v.on_key(&key(KeyCode::End));
        serve(&mut v, &file);
        assert_eq!(v.top, file.len() as u64 - 10 * 4_000);
        v.on_key(&key(KeyCode::PageUp));
        serve(&mut v, &file);
        assert_eq!(v.top, file.len() as u64 - 20 * 4_000 + 4_000);
    }

    #[test]
    fn a_file_claiming_an_absurd_size_moves_without_overflow() {
        let mut v = Viewer::new(Location::Remote("f".into()), "f".into(), 5, 80, 12);
        v.on_read(
            v.block_tag(),
            0,
            Ok(Chunk {
                bytes: vec![0; 100],
                file_size: u64::MAX,
            }),
        );
        for code in [
            KeyCode::End,
            KeyCode::PageDown,
            KeyCode::Down,
            KeyCode::PageUp,
        ] {
            v.on_key(&key(code));
            let _ = v.rows();
            let _ = v.status();
        }
        v.on_key(&key(KeyCode::Char(':')));
        for c in "99999999999999999999"
            .chars()
            .chain("18446744073709551615".chars())
        {
            v.on_key(&key(KeyCode::Char(c)));
        }
        v.on_key(&key(KeyCode::Enter));
        v.on_key(&key(KeyCode::Char(':')));
        for c in "0xffffffffffffffff".chars() {
            v.on_key(&key(KeyCode::Char(c)));
        }
        v.on_key(&key(KeyCode::Enter));
        let _ = v.rows();
        assert!(v.top <= u64::MAX - 15);
    }

    #[test]
    fn a_binary_file_opens_in_hex_and_x_toggles() {
        let mut file = b"\x7fELF\0\x01\x02".to_vec();
        file.extend_from_slice(&[b'a'; 40]);
        let mut v = Viewer::new(Location::Remote("f".into()), "f".into(), 3, 80, 12);
        serve(&mut v, &file);
        assert!(v.hex);
        assert!(
            shown(&v)[0].starts_with("0000000000  7f 45 4c 46 00"),
            "{:?}",
            shown(&v)
        );
        v.on_key(&key(KeyCode::Char('x')));
        serve(&mut v, &file);
        assert!(!v.hex);
    }
}
