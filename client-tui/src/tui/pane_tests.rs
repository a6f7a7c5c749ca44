//! A pane's listing, sort, filter, cursor and marks, with entries made by hand.

use super::*;
use crate::tui::location::resolve_wire;
use std::time::{Duration, Instant};

pub fn entry(name: &str, kind: Kind, size: u64, mtime: i64) -> Entry {
    Entry {
        name: name.to_string(),
        kind,
        size,
        mtime,
        mode: if kind == Kind::Dir { 0o755 } else { 0o644 },
        link: None,
        error: None,
        owner: None,
        target: None,
    }
}

/// The names the view shows, without the `..` row.
fn names(pane: &Pane) -> Vec<&str> {
    pane.shown().map(|e| e.name.as_str()).collect()
}

fn sample() -> Pane {
    listing(vec![
        entry("b.txt", Kind::File, 300, 30),
        entry("Alpha", Kind::Dir, 4096, 10),
        entry(".hidden", Kind::File, 1, 50),
        entry("a.txt", Kind::File, 100, 40),
        entry("zeta", Kind::Dir, 4096, 20),
    ])
}

/// A local pane showing `entries` in `/data`.
fn listing(entries: Vec<Entry>) -> Pane {
    let mut pane = Pane::new(Side::Local, Location::Local("/data".into()));
    pane.set_listing(Location::Local("/data".into()), entries, None);
    pane
}

#[test]
fn directories_first_then_name() {
    let pane = sample();
    assert_eq!(names(&pane), ["Alpha", "zeta", "a.txt", "b.txt"]);
}

#[test]
fn sorting_by_size_and_time_and_reverse() {
    let mut pane = sample();
    pane.set_sort(SortKey::Size, false);
    assert_eq!(names(&pane), ["Alpha", "zeta", "b.txt", "a.txt"]);
    pane.set_sort(SortKey::Time, false);
    assert_eq!(names(&pane), ["zeta", "Alpha", "a.txt", "b.txt"]);
    pane.set_sort(SortKey::Name, true);
    assert_eq!(names(&pane), ["zeta", "Alpha", "b.txt", "a.txt"]);
}

#[test]
fn hidden_and_filter() {
    let mut pane = sample();
    pane.toggle_hidden();
    assert_eq!(names(&pane).len(), 5);
    pane.set_filter("txt");
    assert_eq!(names(&pane), ["a.txt", "b.txt"]);
    pane.set_filter("ZT");
    assert_eq!(names(&pane), ["zeta"]);
}

#[test]
fn the_filter_shows_names_holding_it_first_then_scattered_matches() {
    let mut pane = listing(
        ["a1b9c9d9", "photos-1999", "zz", "1999.tar"]
            .map(|name| entry(name, Kind::File, 1, 0))
            .to_vec(),
    );
    pane.set_filter("1999");
    // Both holders of "1999" first, then the scattered one; `zz` not at all.
    let shown = names(&pane);
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert_eq!(shown[2], "a1b9c9d9", "{shown:?}");
    pane.set_filter("");
    assert_eq!(names(&pane).len(), 4);
}

#[test]
fn cursor_survives_resort_and_refresh() {
    let mut pane = sample();
    pane.move_cursor(3);
    assert_eq!(pane.current().unwrap().name, "b.txt");
    pane.set_sort(SortKey::Size, false);
    assert_eq!(pane.current().unwrap().name, "b.txt");
    pane.marks.insert("a.txt".into());
    let entries = pane.entries.clone();
    pane.set_listing(Location::Local("/data".into()), entries, None);
    assert_eq!(pane.current().unwrap().name, "b.txt");
    assert!(pane.marks.contains("a.txt"));
}

#[test]
fn marks_and_selection() {
    let mut pane = sample();
    assert_eq!(pane.selection()[0].name, "Alpha");
    pane.move_cursor(2);
    pane.toggle_mark();
    pane.toggle_mark();
    assert_eq!(pane.cursor, 4.min(pane.view.len() - 1));
    assert_eq!(pane.marked_total(), (2, 400));
    let sel: Vec<_> = pane.selection().iter().map(|e| e.name.clone()).collect();
    assert_eq!(sel, ["a.txt", "b.txt"]);
    pane.invert_marks();
    assert_eq!(pane.marked_total(), (2, 0));
    pane.mark_all();
    assert_eq!(pane.marks.len(), 4);
}

#[test]
fn paging_keeps_the_cursor_visible() {
    let mut pane = Pane::new(Side::Remote, Location::Remote(String::new()));
    let entries = (0..100_000)
        .map(|i| entry(&format!("f{i:06}"), Kind::File, i, 0))
        .collect();
    pane.set_height(30);
    pane.set_listing(Location::Remote(String::new()), entries, None);
    pane.page(true);
    assert_eq!((pane.cursor, pane.offset), (29, 0));
    pane.page(true);
    assert_eq!((pane.cursor, pane.offset), (58, 29));
    pane.bottom();
    assert_eq!((pane.cursor, pane.offset), (99_999, 99_970));
    pane.scroll(-10);
    assert_eq!((pane.cursor, pane.offset), (99_989, 99_960));
    pane.top();
    assert_eq!((pane.cursor, pane.offset), (0, 0));
}

#[test]
fn locations() {
    let remote = Location::Remote("a/b".into());
    assert_eq!(
        remote.parent(),
        Some((Location::Remote("a".into()), "b".into()))
    );
    assert_eq!(
        Location::Remote("a".into()).parent(),
        Some((Location::Remote("".into()), "a".into()))
    );
    assert_eq!(Location::Remote("".into()).parent(), None);
    assert_eq!(
        Location::Remote("".into()).join("x"),
        Location::Remote("x".into())
    );
    assert_eq!(remote.display(), "/a/b");
    assert_eq!(resolve_wire("a/b", "../c"), "a/c");
    assert_eq!(resolve_wire("a/b", "/x/y/"), "x/y");
    assert_eq!(resolve_wire("a", "/"), "");
}

#[test]
fn dotdot_stays_first_and_is_not_an_entry() {
    let mut pane = sample();
    assert_eq!(pane.view[0], PARENT_ROW);
    // A new directory opens on its first entry; `..` is the row above.
    assert_eq!(pane.current().unwrap().name, "Alpha");
    pane.top();
    assert!(pane.on_parent_row() && pane.current().is_none());
    assert!(pane.selection().is_empty() && pane.only_parent_selected());
    // Sorting and filtering keep it first, and the cursor on it.
    pane.set_sort(SortKey::Size, true);
    assert!(pane.on_parent_row());
    pane.set_filter("txt");
    assert_eq!(pane.view[0], PARENT_ROW);
    assert_eq!(names(&pane), ["a.txt", "b.txt"]);
    pane.set_filter("nothing matches this");
    assert_eq!(pane.view, [PARENT_ROW]);
    pane.set_filter("");
    // Marking skips it (the cursor moves on); marking everything leaves it out.
    pane.top();
    pane.toggle_mark();
    assert!(pane.marks.is_empty());
    assert_eq!(pane.current().unwrap().name, "Alpha");
    pane.mark_all();
    pane.invert_marks();
    pane.invert_marks();
    assert_eq!(pane.marks.len(), 4);
    assert!(!pane.only_parent_selected());
    // A refresh of the same directory while on `..` stays on it.
    pane.marks.clear();
    pane.top();
    let entries = pane.entries.clone();
    pane.set_listing(Location::Local("/data".into()), entries, None);
    assert!(pane.on_parent_row());
}

#[test]
fn no_dotdot_at_the_root() {
    let mut pane = Pane::new(Side::Remote, Location::Remote(String::new()));
    pane.set_listing(
        Location::Remote(String::new()),
        vec![entry("a", Kind::File, 1, 1)],
        None,
    );
    assert_eq!(names(&pane), ["a"]);
    assert_eq!(pane.view.len(), 1);
    pane.set_listing(Location::Remote("a".into()), Vec::new(), None);
    assert_eq!(pane.view, [PARENT_ROW]);
    assert!(pane.on_parent_row());
}

#[test]
fn quick_jump_follows_the_typed_start_of_a_name() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut pane = sample();
    pane.entries.push(entry("beta.md", Kind::File, 1, 1));
    pane.entries.push(entry("bz", Kind::File, 1, 1));
    pane.set_sort(SortKey::Name, false);
    // Unbound letters start and extend; case is ignored; the first name in view order wins.
    assert!(pane.jump_key('B', false, ms(0)));
    assert_eq!(pane.current().unwrap().name, "b.txt");
    assert!(pane.jump_key('e', false, ms(500)));
    assert_eq!(pane.current().unwrap().name, "beta.md");
    assert_eq!(pane.jump.as_ref().unwrap().prefix, "Be");
    // A letter no name continues with is kept out of the prefix and shown as a miss.
    assert!(pane.jump_key('q', false, ms(900)));
    assert_eq!(pane.current().unwrap().name, "beta.md");
    let jump = pane.jump.clone().unwrap();
    assert_eq!((jump.prefix.as_str(), jump.missed), ("Be", Some('q')));
    // A bound key continues a running jump only when a name continues with it.
    assert!(pane.jump_key('t', true, ms(1500)));
    assert_eq!(pane.current().unwrap().name, "beta.md");
    assert!(
        !pane.jump_key('j', true, ms(1600)),
        "no name starts with `betj`"
    );
    // After a pause a bound key is its own again, and an unbound one starts over.
    pane.jump = None;
    assert!(pane.jump_key('z', false, ms(2000)));
    assert_eq!(pane.current().unwrap().name, "zeta");
    assert!(!pane.jump_key('t', true, ms(3100)));
    assert!(pane.jump_key('a', false, ms(4200)));
    assert_eq!(pane.current().unwrap().name, "Alpha");
    assert!(!pane.jump_expired(ms(5200)));
    assert!(pane.jump_expired(ms(5201)));
    assert!(pane.jump.is_none());
}
