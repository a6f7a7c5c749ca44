//! Key → action → new state, with listings and engine events fed in by hand.

use std::time::{Duration, Instant};

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ferry_protocol::{Digest, Entry, Kind};
use tokio::sync::oneshot;

use super::*;
use crate::engine::{ConflictPolicy, JobId, JobProgress, JobSpec, JobSummary};
use crate::tui::pane::SortKey;
use crate::tui::pane::tests::entry;

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn local_entries() -> Vec<Entry> {
    vec![
        entry("docs", Kind::Dir, 4096, 1_700_000_000),
        entry("a.txt", Kind::File, 1000, 1_700_000_100),
        entry("b.bin", Kind::File, 2000, 1_700_000_200),
        entry("c.log", Kind::File, 3000, 1_700_000_300),
    ]
}

fn remote_entries() -> Vec<Entry> {
    vec![
        entry("photos", Kind::Dir, 4096, 1_700_000_000),
        entry("remote.txt", Kind::File, 42, 1_700_000_000),
    ]
}

/// Answers every queued listing with `local_entries` / `remote_entries`; returns the other
/// commands.
fn settle(app: &mut App) -> Vec<Effect> {
    let mut others = Vec::new();
    loop {
        let commands = app.take_effects();
        if commands.is_empty() {
            return others;
        }
        for command in commands {
            match command {
                Effect::List { side, serial, dir } => {
                    let result = Ok(match side {
                        Side::Local => local_entries(),
                        Side::Remote => remote_entries(),
                    });
                    app.on_msg(Msg::Listed {
                        side,
                        serial,
                        dir,
                        result,
                    });
                }
                other => others.push(other),
            }
        }
    }
}

fn app() -> App {
    let mut app = App::new(
        Settings::default(),
        PathBuf::from("/home/me"),
        "127.0.0.1:7878".into(),
        String::new(),
    );
    app.resize(120, 40);
    app.on_msg(Msg::Connection {
        conn: 1,
        event: ConnEvent::Connected {
            read_only: false,
            server: "ferry-server 0.1.0".into(),
            home: None,
        },
    });
    settle(&mut app);
    app
}

/// Answers the remote pane's listing in flight as a server that lists it would.
/// Connection `conn` comes up (read-only with `read_only`).
fn connected(app: &mut App, conn: u64, read_only: bool) {
    app.on_msg(Msg::Connection {
        conn,
        event: ConnEvent::Connected {
            read_only,
            server: "ferry-server 0.1.0".into(),
            home: None,
        },
    });
}

/// The banner's text; there must be one.
fn banner_text(app: &App) -> &str {
    &app.banner.as_ref().unwrap().text
}

/// Answers the listings among `commands` with `entries`.
fn answer_lists(app: &mut App, commands: Vec<Effect>, entries: Vec<Entry>) {
    for command in commands {
        if let Effect::List { side, serial, dir } = command {
            app.on_msg(Msg::Listed {
                side,
                serial,
                dir,
                result: Ok(entries.clone()),
            });
        }
    }
}

fn remote_listed(app: &mut App) {
    let pending = app.remote.pending.clone().unwrap();
    app.on_msg(Msg::Listed {
        side: Side::Remote,
        serial: pending.serial,
        dir: pending.dir,
        result: Ok(remote_entries()),
    });
}

fn current(app: &App) -> String {
    app.pane(app.active_side()).current().unwrap().name.clone()
}

fn press_all(app: &mut App, keys: &[KeyEvent]) {
    for k in keys {
        app.on_key(*k);
    }
}

#[test]
fn start_lists_both_panes() {
    let mut app = App::new(
        Settings::default(),
        PathBuf::from("/home/me"),
        "h:1".into(),
        "srv".into(),
    );
    let commands = app.take_effects();
    assert!(
        matches!(&commands[0], Effect::List { side: Side::Local, dir: Location::Local(p), .. } if p == &PathBuf::from("/home/me"))
    );
    assert!(
        matches!(&commands[1], Effect::List { side: Side::Remote, dir: Location::Remote(p), .. } if p == "srv")
    );
    assert_eq!(app.conn.state, ConnState::Connecting);
}

#[test]
fn cursor_moves_and_tab_switches_panes() {
    let mut app = app();
    assert_eq!(current(&app), "docs");
    press_all(&mut app, &[ch('j'), key(KeyCode::Down)]);
    assert_eq!(current(&app), "b.bin");
    app.on_key(ch('k'));
    assert_eq!(current(&app), "a.txt");
    app.on_key(key(KeyCode::End));
    assert_eq!(current(&app), "c.log");
    // Home is the top row: `..`, above the first entry.
    app.on_key(key(KeyCode::Home));
    assert!(app.local.on_parent_row());
    app.on_key(ch('j'));
    assert_eq!(current(&app), "docs");
    app.on_key(key(KeyCode::Tab));
    assert_eq!(app.focus, Focus::Pane(Side::Remote));
    assert_eq!(current(&app), "photos");
    app.on_key(key(KeyCode::Tab));
    assert_eq!(app.focus, Focus::Pane(Side::Local));
}

#[test]
fn key_releases_are_ignored() {
    let mut app = app();
    let mut release = ch('j');
    release.kind = KeyEventKind::Release;
    app.on_key(release);
    assert_eq!(current(&app), "docs");
}

#[test]
fn enter_and_back_put_the_cursor_on_the_directory_left() {
    let mut app = app();
    app.on_key(key(KeyCode::Enter));
    let commands = app.take_effects();
    let Some(Effect::List { side, serial, dir }) = commands.into_iter().next() else {
        panic!()
    };
    assert_eq!(dir, Location::Local("/home/me/docs".into()));
    app.on_msg(Msg::Listed {
        side,
        serial,
        dir,
        result: Ok(vec![entry("inner", Kind::File, 1, 0)]),
    });
    assert_eq!(app.local.dir, Location::Local("/home/me/docs".into()));
    assert_eq!(current(&app), "inner");

    app.on_key(key(KeyCode::Backspace));
    settle(&mut app);
    assert_eq!(app.local.dir, Location::Local("/home/me".into()));
    assert_eq!(current(&app), "docs");

    app.on_key(key(KeyCode::Tab));
    press_all(&mut app, &[ch('l')]);
    settle(&mut app);
    assert_eq!(app.remote.dir, Location::Remote("photos".into()));
    app.on_key(ch('h'));
    settle(&mut app);
    assert_eq!(app.remote.dir, Location::Remote(String::new()));
    assert_eq!(current(&app), "photos");
    // Nothing above the root.
    app.on_key(ch('h'));
    assert!(app.take_effects().is_empty());
}

#[test]
fn a_late_listing_of_a_directory_left_is_dropped() {
    let mut app = app();
    app.on_key(key(KeyCode::Enter));
    let stale = app.take_effects();
    // Changing course before the answer: go to /tmp instead.
    app.on_key(ctrl('g'));
    app.on_key(ctrl('u'));
    press_all(&mut app, &"/tmp".chars().map(ch).collect::<Vec<_>>());
    app.on_key(key(KeyCode::Enter));
    settle(&mut app);
    answer_lists(&mut app, stale, vec![]);
    assert_eq!(app.local.dir, Location::Local("/tmp".into()));
    assert_eq!(app.local.entries.len(), 4);
}

#[test]
fn marking_inverting_and_marking_all() {
    let mut app = app();
    press_all(&mut app, &[ch('j'), ch(' '), key(KeyCode::Insert)]);
    assert_eq!(current(&app), "c.log");
    assert_eq!(app.local.marked_total(), (2, 3000));
    app.on_key(KeyEvent::new(KeyCode::Char('*'), KeyModifiers::SHIFT));
    assert_eq!(app.local.marked_total(), (2, 3000));
    assert!(app.local.marks.contains("docs") && app.local.marks.contains("c.log"));
    app.on_key(ctrl('a'));
    assert_eq!(app.local.marked_total(), (4, 6000));
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.local.marks.len(), 0);
}

fn submitted(app: &mut App) -> JobKey {
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::F(5)));
    app.on_key(key(KeyCode::Enter));
    let Some(Effect::Submit { info, .. }) = app.take_effects().pop() else {
        panic!()
    };
    let job = JobKey {
        conn: 1,
        id: JobId(7),
    };
    app.on_msg(Msg::Submitted { key: job, info });
    job
}

#[test]
fn filter_as_you_type() {
    let mut app = app();
    press_all(&mut app, &[ch('/'), ch('b'), ch('n')]);
    assert_eq!(app.local.shown().count(), 1);
    assert_eq!(current(&app), "b.bin");
    // While filtering, letters are text, not commands.
    app.on_key(ch('q'));
    assert!(!app.should_quit);
    app.on_key(key(KeyCode::Backspace));
    app.on_key(key(KeyCode::Enter));
    assert!(app.filtering.is_none());
    assert_eq!(app.local.filter, "bn");
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.local.shown().count(), 4);
}

#[test]
fn sort_and_hidden_keys() {
    let mut app = app();
    app.on_key(ch('s'));
    assert_eq!(app.local.sort, SortKey::Size);
    app.on_key(KeyEvent::new(KeyCode::Char('S'), KeyModifiers::SHIFT));
    assert!(app.local.reverse);
    app.on_key(KeyEvent::new(KeyCode::Char('t'), KeyModifiers::ALT));
    assert_eq!((app.local.sort, app.local.reverse), (SortKey::Time, false));
    app.on_key(ch('.'));
    assert!(app.local.show_hidden);
}

#[test]
fn goto_path_on_both_sides() {
    let mut app = app();
    app.on_key(ctrl('g'));
    app.on_key(ctrl('u'));
    press_all(&mut app, &"/tmp".chars().map(ch).collect::<Vec<_>>());
    app.on_key(key(KeyCode::Enter));
    assert!(
        matches!(&app.take_effects()[..], [Effect::List { dir: Location::Local(p), .. }] if p == &PathBuf::from("/tmp"))
    );
    app.on_key(key(KeyCode::Tab));
    app.on_key(ctrl('g'));
    press_all(&mut app, &"a/../b/c".chars().map(ch).collect::<Vec<_>>());
    app.on_key(key(KeyCode::Enter));
    assert!(
        matches!(&app.take_effects()[..], [Effect::List { dir: Location::Remote(p), .. }] if p == "b/c")
    );
}

#[test]
fn a_refresh_does_not_cancel_a_navigation_in_flight() {
    let mut app = app();
    app.on_key(key(KeyCode::Enter));
    app.on_key(ctrl('r'));
    settle(&mut app);
    assert_eq!(app.local.dir, Location::Local("/home/me/docs".into()));
}

/// Answers the listing in flight on `side` with `result`; returns the directory it was for.
fn answer_list(app: &mut App, side: Side, result: Result<Vec<Entry>, ListError>) -> Location {
    let pending = app.pane(side).pending.clone().unwrap();
    app.on_msg(Msg::Listed {
        side,
        serial: pending.serial,
        dir: pending.dir.clone(),
        result,
    });
    pending.dir
}

fn gone() -> Result<Vec<Entry>, ListError> {
    Err(ListError {
        message: "not_found: no such directory".into(),
        gone: true,
    })
}

#[test]
fn a_refresh_that_finds_the_directory_gone_moves_up_to_the_nearest_that_lists() {
    let mut app = app();
    app.on_key(key(KeyCode::Tab));
    // Into /photos/2024/may, as the server lists it.
    for dir in ["photos", "photos/2024", "photos/2024/may"] {
        app.request_list(Side::Remote, Location::Remote(dir.into()), None);
        app.take_effects();
        answer_list(&mut app, Side::Remote, Ok(remote_entries()));
    }
    assert_eq!(app.remote.dir, Location::Remote("photos/2024/may".into()));

    // Someone removed photos/2024: Ctrl+R walks up until a directory lists.
    app.on_key(ctrl('r'));
    assert_eq!(
        answer_list(&mut app, Side::Remote, gone()),
        Location::Remote("photos/2024/may".into())
    );
    assert_eq!(
        answer_list(&mut app, Side::Remote, gone()),
        Location::Remote("photos/2024".into())
    );
    assert_eq!(
        answer_list(&mut app, Side::Remote, Ok(remote_entries())),
        Location::Remote("photos".into())
    );
    assert_eq!(app.remote.dir, Location::Remote("photos".into()));
    assert!(app.remote.pending.is_none());
    assert_eq!(
        app.banner.as_ref().unwrap().text,
        "/photos/2024/may no longer exists: showing /photos"
    );

    // The local pane does the same.
    app.request_list(Side::Local, Location::Local("/home/me/docs".into()), None);
    app.take_effects();
    answer_list(&mut app, Side::Local, Ok(local_entries()));
    app.on_key(key(KeyCode::Tab));
    app.on_key(ctrl('r'));
    answer_list(&mut app, Side::Local, gone());
    assert_eq!(
        answer_list(&mut app, Side::Local, Ok(local_entries())),
        Location::Local("/home/me".into())
    );
    assert!(
        banner_text(&app).contains("/home/me/docs no longer exists"),
        "{:?}",
        app.banner
    );

    // Going into a directory that is not there is only an error: the pane stays.
    app.request_list(Side::Local, Location::Local("/home/me/nope".into()), None);
    app.take_effects();
    answer_list(&mut app, Side::Local, gone());
    assert!(app.local.pending.is_none());
    assert_eq!(app.local.dir, Location::Local("/home/me".into()));
    assert!(
        app.banner
            .as_ref()
            .unwrap()
            .text
            .starts_with("Cannot list /home/me/nope")
    );
}

#[test]
fn a_location_that_does_not_list_is_not_remembered() {
    let mut app = app();
    app.connect("ferry://nas:7070/r.txt", None);
    let conn = app.conn.id;
    app.take_effects();
    connected(&mut app, conn, false);
    answer_list(
        &mut app,
        Side::Remote,
        Err(ListError {
            message: "not_a_directory: r.txt".into(),
            gone: true,
        }),
    );
    // Going up from there lists, but the location typed was not a place to come back to.
    app.on_key(key(KeyCode::Tab));
    app.on_key(key(KeyCode::Backspace));
    answer_list(&mut app, Side::Remote, Ok(remote_entries()));
    assert!(
        !app.take_effects()
            .iter()
            .any(|c| matches!(c, Effect::SaveRecent(_))),
    );
    assert!(app.recent.is_empty());

    // A connection that failed is kept for when it lists.
    app.connect("ferry://nas:7070/media", None);
    app.take_effects();
    answer_list(
        &mut app,
        Side::Remote,
        Err(ListError::other("connection: refused")),
    );
    assert!(app.recent.is_empty());
    app.on_key(ctrl('r'));
    answer_list(&mut app, Side::Remote, Ok(remote_entries()));
    assert_eq!(app.recent[0].url, "ferry://nas:7070/media");
}

#[test]
fn a_mkdir_in_a_directory_that_is_gone_says_why_and_moves_up() {
    let mut app = app();
    app.request_list(Side::Remote, Location::Remote("shared".into()), None);
    app.take_effects();
    answer_list(&mut app, Side::Remote, Ok(remote_entries()));
    app.on_msg(Msg::OpDone {
        side: Side::Remote,
        result: Err("not_found: shared/newd: no such directory".into()),
    });
    assert_eq!(
        answer_list(&mut app, Side::Remote, gone()),
        Location::Remote("shared".into())
    );
    answer_list(&mut app, Side::Remote, Ok(remote_entries()));
    assert_eq!(app.remote.dir, Location::Remote(String::new()));
    assert_eq!(
        app.banner.as_ref().unwrap().text,
        "/shared no longer exists: showing / (not_found: shared/newd: no such directory)"
    );
}

#[test]
fn a_failed_actions_banner_goes_with_the_next_success() {
    let mut app = app();
    app.on_msg(Msg::OpDone {
        side: Side::Remote,
        result: Err("already_exists: new: File exists".into()),
    });
    assert_eq!(app.banner.as_ref().unwrap().kind, BannerKind::Error);
    app.on_msg(Msg::OpDone {
        side: Side::Remote,
        result: Ok(Some("other".into())),
    });
    assert!(app.banner.is_none(), "{:?}", app.banner);

    // A refused login, then the same connection in: no refusal stays on screen.
    let conn = app.conn.id;
    app.on_msg(Msg::Connection {
        conn,
        event: ConnEvent::Unauthorized("unauthorized: nas:7070: wrong password".into()),
    });
    app.dialog = None;
    connected(&mut app, conn, false);
    assert!(
        !app.banner
            .as_ref()
            .is_some_and(|b| b.text.contains("refused")),
        "{:?}",
        app.banner
    );
}

#[path = "app_tests/dialogs_tests.rs"]
mod dialogs_tests;
#[path = "app_tests/discover_tests.rs"]
mod discover_tests;
#[path = "app_tests/jobs_tests.rs"]
mod jobs_tests;
#[path = "app_tests/link_tests.rs"]
mod link_tests;
#[path = "app_tests/mouse_tests.rs"]
mod mouse_tests;

#[test]
fn enter_on_dotdot_goes_up_and_entry_keys_say_why_they_skip_it() {
    let mut app = app();
    app.on_key(key(KeyCode::Home));
    assert!(app.local.on_parent_row());
    for k in [
        key(KeyCode::F(5)),
        key(KeyCode::F(6)),
        key(KeyCode::F(8)),
        key(KeyCode::F(2)),
    ] {
        app.banner = None;
        app.on_key(k);
        assert!(app.dialog.is_none(), "{k:?} opened {:?}", app.dialog);
        assert!(banner_text(&app).contains("`..`"), "{k:?}");
        let commands = app.take_effects();
        assert!(commands.is_empty(), "{k:?}: {commands:?}");
    }
    // With marks, F5 copies the marks, wherever the cursor is; F2 still means `..`.
    app.local.marks.insert("a.txt".into());
    app.banner = None;
    app.on_key(key(KeyCode::F(2)));
    assert!(app.dialog.is_none() && banner_text(&app).contains("`..`"));
    app.on_key(key(KeyCode::F(5)));
    app.on_key(key(KeyCode::Enter));
    let commands = app.take_effects();
    assert!(
        matches!(&commands[..], [Effect::Submit { .. }]),
        "{commands:?}"
    );
    app.on_key(key(KeyCode::Home));
    app.on_key(key(KeyCode::Enter));
    let commands = app.take_effects();
    assert!(
        matches!(&commands[..], [Effect::List { dir, .. }] if *dir == Location::Local("/home".into())),
        "{commands:?}"
    );
    answer_lists(
        &mut app,
        commands,
        vec![
            entry("alice", Kind::Dir, 4096, 0),
            entry("me", Kind::Dir, 4096, 0),
            entry("zed", Kind::Dir, 4096, 0),
        ],
    );
    assert_eq!(app.local.dir, Location::Local("/home".into()));
    assert_eq!(current(&app), "me");
}

#[test]
fn quick_jump_takes_unbound_letters_and_leaves_bound_keys_alone() {
    let mut app = app();
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    // `b` is bound to nothing: the cursor jumps to b.bin.
    app.on_key_at(ch('b'), ms(0));
    assert_eq!(current(&app), "b.bin");
    // `.` is bound (hidden files) but continues `b.bin` within the pause: part of the name.
    app.on_key_at(ch('.'), ms(300));
    assert_eq!(current(&app), "b.bin");
    assert!(!app.local.show_hidden);
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
    terminal.draw(|frame| ui::draw(frame, &app.view())).unwrap();
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("»b."), "{screen}");
    // `j` continues no name: it moves down, as bound, and ends the jump.
    app.on_key_at(ch('j'), ms(600));
    assert_eq!(current(&app), "c.log");
    assert!(app.local.jump.is_none());
    // After a pause, `c` is the connect key, not a jump to c.log.
    app.on_key_at(ch('a'), ms(1000));
    assert_eq!(current(&app), "a.txt");
    assert!(!app.tick(ms(1900)));
    assert!(app.tick(ms(2100)), "the pause is over: the footer changes");
    app.on_key_at(ch('c'), ms(2200));
    assert!(
        matches!(app.dialog, Some(Dialog::Connect { .. })),
        "{:?}",
        app.dialog
    );
    assert_eq!(current(&app), "a.txt");
    // Keys typed into a dialog are not jumps.
    app.on_key_at(ch('d'), ms(2300));
    assert_eq!(current(&app), "a.txt");
}

#[test]
fn ctrl_z_asks_the_loop_to_suspend_and_changes_nothing_else() {
    let mut app = app();
    app.on_key(key(KeyCode::Down));
    app.on_key(ctrl('z'));
    let commands = app.take_effects();
    assert!(matches!(&commands[..], [Effect::Suspend]), "{commands:?}");
    assert_eq!(current(&app), "a.txt");
    assert!(app.dialog.is_none() && !app.should_quit);
}
