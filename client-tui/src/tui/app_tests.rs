//! Key → action → new state, with listings and engine events fed in by hand.

use std::time::{Duration, Instant};

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ferry_protocol::{Digest, Entry, Kind};
use tokio::sync::oneshot;

use super::*;
use crate::engine::{ConflictPolicy, JobId, JobProgress, JobSpec, JobSummary};
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
        let commands = app.take_commands();
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
            server: Some("ferry-server 0.1.0".into()),
        },
    });
    settle(&mut app);
    app
}

/// Answers the remote pane's listing in flight as a server that lists it would.
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
    let commands = app.take_commands();
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
    app.on_key(key(KeyCode::Home));
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
    let commands = app.take_commands();
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
    assert!(app.take_commands().is_empty());
}

#[test]
fn a_late_listing_of_a_directory_left_is_dropped() {
    let mut app = app();
    app.on_key(key(KeyCode::Enter));
    let stale = app.take_commands();
    // Changing course before the answer: go to /tmp instead.
    app.on_key(ctrl('g'));
    app.on_key(ctrl('u'));
    press_all(&mut app, &"/tmp".chars().map(ch).collect::<Vec<_>>());
    app.on_key(key(KeyCode::Enter));
    settle(&mut app);
    for command in stale {
        if let Effect::List { side, serial, dir } = command {
            app.on_msg(Msg::Listed {
                side,
                serial,
                dir,
                result: Ok(vec![]),
            });
        }
    }
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

#[test]
fn f5_uploads_the_marked_entries_and_f6_moves() {
    let mut app = app();
    press_all(&mut app, &[ch('j'), ch(' '), ch(' '), key(KeyCode::F(5))]);
    let commands = app.take_commands();
    let [
        Effect::Submit {
            spec:
                JobSpec::Upload {
                    items,
                    policy,
                    remove_source,
                },
            info,
        },
    ] = commands.as_slice()
    else {
        panic!("{commands:?}")
    };
    assert_eq!(
        items,
        &[
            (PathBuf::from("/home/me/a.txt"), "a.txt".to_string()),
            (PathBuf::from("/home/me/b.bin"), "b.bin".to_string())
        ]
    );
    assert_eq!(*policy, ConflictPolicy::Ask);
    assert!(!remove_source);
    assert_eq!(info.label, "2 items");
    assert!(app.local.marks.is_empty());

    app.on_key(key(KeyCode::Tab));
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::F(6)));
    let commands = app.take_commands();
    let [
        Effect::Submit {
            spec:
                JobSpec::Download {
                    items,
                    remove_source,
                    ..
                },
            ..
        },
    ] = commands.as_slice()
    else {
        panic!("{commands:?}")
    };
    assert_eq!(
        items,
        &[(
            "remote.txt".to_string(),
            PathBuf::from("/home/me/remote.txt")
        )]
    );
    assert!(remove_source);
}

#[test]
fn a_read_only_server_refuses_uploads_up_front() {
    let mut app = app();
    app.conn.read_only = true;
    app.on_key(key(KeyCode::F(5)));
    assert!(app.take_commands().is_empty());
    assert_eq!(app.banner.as_ref().unwrap().kind, BannerKind::Error);
}

fn submitted(app: &mut App) -> JobKey {
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::F(5)));
    let Some(Effect::Submit { info, .. }) = app.take_commands().pop() else {
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
fn job_progress_verification_and_refresh() {
    let mut app = app();
    let job = submitted(&mut app);
    assert!(app.transfers_running());
    let event = |event| Msg::Transfer { conn: 1, event };
    app.on_msg(event(TransferEvent::Planned {
        job: job.id,
        files: 1,
        bytes: 1000,
    }));
    app.on_msg(event(TransferEvent::Progress(JobProgress {
        job: job.id,
        files_done: 0,
        files_total: 1,
        bytes_done: 420,
        bytes_total: 1000,
        current: Some("a.txt".into()),
        speed: 100.0,
        eta: Some(Duration::from_secs(6)),
        scanning: false,
    })));
    assert_eq!(
        super::super::jobs::percent(app.transfers.jobs[0].ratio()),
        42
    );
    // Events of another connection's job with the same id change nothing.
    app.on_msg(Msg::Transfer {
        conn: 9,
        event: TransferEvent::Planned {
            job: job.id,
            files: 5,
            bytes: 5,
        },
    });
    assert_eq!(app.transfers.jobs[0].progress.bytes_total, 1000);

    app.on_msg(event(TransferEvent::FileDone {
        job: job.id,
        path: "a.txt".into(),
        bytes: 1000,
        digest: Digest::of(b""),
    }));
    assert!(app.verified.contains(&(Side::Remote, "a.txt".to_string())));
    assert!(!app.verified.contains(&(Side::Local, "a.txt".to_string())));
    app.on_msg(event(TransferEvent::Finished {
        job: job.id,
        // A resumed file: 400 of its 1000 bytes were already there, 600 crossed the wire.
        outcome: Ok(JobSummary {
            files: 1,
            bytes: 600,
            skipped: 0,
            failed: 0,
            elapsed: Duration::from_secs(1),
        }),
    }));
    assert!(!app.transfers_running());
    let commands = app.take_commands();
    assert!(
        matches!(
            &commands[..],
            [Effect::List {
                side: Side::Remote,
                ..
            }]
        ),
        "{commands:?}"
    );
    let banner = app.banner.as_ref().unwrap();
    assert_eq!(banner.kind, BannerKind::Info);
    assert!(
        banner.text.ends_with("copied: 1 file verified, 600 B sent"),
        "{}",
        banner.text
    );
}

#[test]
fn failures_are_shown_not_swallowed() {
    let mut app = app();
    let job = submitted(&mut app);
    app.on_msg(Msg::Transfer {
        conn: 1,
        event: TransferEvent::FileFailed {
            job: job.id,
            path: "a.txt".into(),
            error: "permission_denied".into(),
        },
    });
    app.on_msg(Msg::Transfer {
        conn: 1,
        event: TransferEvent::Finished {
            job: job.id,
            outcome: Ok(JobSummary {
                files: 0,
                bytes: 0,
                skipped: 0,
                failed: 1,
                elapsed: Duration::ZERO,
            }),
        },
    });
    let banner = app.banner.clone().unwrap();
    assert_eq!(banner.kind, BannerKind::Error);
    assert!(
        banner.text.ends_with(" permission_denied (a.txt)"),
        "{}",
        banner.text
    );
    assert_eq!(app.transfers.jobs[0].failures.len(), 1);
}

#[test]
fn conflicts_are_asked_once_with_apply_to_all() {
    let mut app = app();
    let job = submitted(&mut app);
    let (reply, mut answer_rx) = oneshot::channel();
    app.on_msg(Msg::Transfer {
        conn: 1,
        event: TransferEvent::Conflict {
            job: job.id,
            path: "a.txt".into(),
            reply,
            reason: None,
        },
    });
    assert_eq!(app.conflicts.len(), 1);
    // Keys go to the question, not the panes.
    press_all(&mut app, &[ch('j'), ch('a'), key(KeyCode::Right)]);
    assert_eq!(app.conflicts[0].selected, 1);
    assert!(app.conflicts[0].apply_to_all);
    app.on_key(ch('r'));
    assert!(app.conflicts.is_empty());
    let Some(Effect::Answer { reply, answer }) = app.take_commands().pop() else {
        panic!()
    };
    reply.send(answer).unwrap();
    assert_eq!(
        answer_rx.try_recv().unwrap(),
        ConflictAnswer {
            choice: ConflictPolicy::Resume,
            apply_to_all: true
        }
    );

    let (reply, _rx) = oneshot::channel();
    app.on_msg(Msg::Transfer {
        conn: 1,
        event: TransferEvent::Conflict {
            job: job.id,
            path: "b".into(),
            reply,
            reason: None,
        },
    });
    app.on_key(key(KeyCode::Esc));
    let Some(Effect::Answer { answer, .. }) = app.take_commands().pop() else {
        panic!()
    };
    assert_eq!(answer.choice, ConflictPolicy::Skip);
}

#[test]
fn delete_asks_first() {
    let mut app = app();
    app.on_key(key(KeyCode::F(8)));
    assert!(
        matches!(&app.dialog, Some(Dialog::Confirm { message, .. }) if message == "Delete directory docs and everything in it?")
    );
    app.on_key(ch('n'));
    assert!(app.dialog.is_none());
    assert!(app.take_commands().is_empty());
    app.on_key(key(KeyCode::Delete));
    app.on_key(ch('y'));
    let commands = app.take_commands();
    assert!(
        matches!(&commands[..], [Effect::Remove { side: Side::Local, paths }] if paths == &[Location::Local("/home/me/docs".into())])
    );
}

#[test]
fn mkdir_and_rename_prompts() {
    let mut app = app();
    app.on_key(key(KeyCode::F(7)));
    press_all(&mut app, &[ch('n'), ch('e'), ch('w'), key(KeyCode::Enter)]);
    let commands = app.take_commands();
    assert!(
        matches!(&commands[..], [Effect::Mkdir { side: Side::Local, path }] if *path == Location::Local("/home/me/new".into()))
    );

    app.on_key(key(KeyCode::F(7)));
    press_all(&mut app, &[ch('a'), ch('/'), ch('b'), key(KeyCode::Enter)]);
    assert!(app.take_commands().is_empty());
    assert!(
        app.banner
            .as_ref()
            .unwrap()
            .text
            .contains("not a valid name")
    );

    app.on_key(key(KeyCode::Tab));
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::F(2)));
    press_all(
        &mut app,
        &[
            key(KeyCode::Backspace),
            key(KeyCode::Backspace),
            key(KeyCode::Backspace),
            ch('m'),
            ch('d'),
            key(KeyCode::Enter),
        ],
    );
    let commands = app.take_commands();
    assert!(
        matches!(&commands[..], [Effect::Rename { side: Side::Remote, from, to }]
            if *from == Location::Remote("remote.txt".into()) && *to == Location::Remote("remote.md".into())),
        "{commands:?}"
    );
    app.on_msg(Msg::OpDone {
        side: Side::Remote,
        result: Ok(Some("remote.md".into())),
    });
    assert!(matches!(&app.remote.pending, Some(p) if p.select.as_deref() == Some("remote.md")));
}

#[test]
fn filter_as_you_type() {
    let mut app = app();
    press_all(&mut app, &[ch('/'), ch('b'), ch('n')]);
    assert_eq!(app.local.view.len(), 1);
    assert_eq!(current(&app), "b.bin");
    // While filtering, letters are text, not commands.
    app.on_key(ch('q'));
    assert!(!app.should_quit);
    app.on_key(key(KeyCode::Backspace));
    app.on_key(key(KeyCode::Enter));
    assert!(app.filtering.is_none());
    assert_eq!(app.local.filter, "bn");
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.local.view.len(), 4);
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
        matches!(&app.take_commands()[..], [Effect::List { dir: Location::Local(p), .. }] if p == &PathBuf::from("/tmp"))
    );
    app.on_key(key(KeyCode::Tab));
    app.on_key(ctrl('g'));
    press_all(&mut app, &"a/../b/c".chars().map(ch).collect::<Vec<_>>());
    app.on_key(key(KeyCode::Enter));
    assert!(
        matches!(&app.take_commands()[..], [Effect::List { dir: Location::Remote(p), .. }] if p == "b/c")
    );
}

#[test]
fn quitting_asks_while_transfers_run() {
    let mut app = app();
    let job = submitted(&mut app);
    app.on_key(ch('q'));
    assert!(!app.should_quit);
    assert!(matches!(
        app.dialog,
        Some(Dialog::Confirm {
            on_yes: Confirmed::Quit,
            ..
        })
    ));
    app.on_key(ch('y'));
    assert!(app.should_quit);
    assert!(matches!(&app.take_commands()[..], [Effect::Cancel(k)] if *k == job));

    let mut idle = self::app();
    idle.on_key(key(KeyCode::F(10)));
    assert!(idle.should_quit);
}

#[test]
fn cancelling_a_job_from_the_transfer_list() {
    let mut app = app();
    let job = submitted(&mut app);
    app.on_key(ch('t'));
    assert_eq!(app.focus, Focus::Transfers);
    app.on_key(ch('x'));
    app.on_key(key(KeyCode::Enter));
    assert!(matches!(&app.take_commands()[..], [Effect::Cancel(k)] if *k == job));
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.focus, Focus::Pane(Side::Local));
}

#[test]
fn a_lost_connection_shows_a_banner_and_ctrl_r_reconnects() {
    let mut app = app();
    app.on_msg(Msg::Connection {
        conn: 1,
        event: ConnEvent::Lost("connection reset".into()),
    });
    assert!(matches!(app.conn.state, ConnState::Lost(_)));
    let banner = app.banner.clone().unwrap();
    assert!(
        banner
            .text
            .contains("— press Ctrl+R to reconnect (connection reset)"),
        "{}",
        banner.text
    );
    app.on_key(key(KeyCode::F(5)));
    assert!(app.take_commands().is_empty());
    app.on_key(ctrl('r'));
    assert_eq!(app.conn.state, ConnState::Connecting);
    assert!(app.take_commands().iter().any(|c| matches!(
        c,
        Effect::List {
            side: Side::Remote,
            ..
        }
    )));
    // Old connections' news is ignored.
    app.on_msg(Msg::Connection {
        conn: 0,
        event: ConnEvent::Lost("old".into()),
    });
    assert_eq!(app.conn.state, ConnState::Connecting);
}

#[test]
fn help_lists_the_live_keymap_and_closes() {
    let mut app = app();
    app.on_key(key(KeyCode::F(1)));
    assert!(matches!(app.dialog, Some(Dialog::Help { .. })));
    app.on_key(key(KeyCode::Esc));
    assert!(app.dialog.is_none());
    app.on_key(ch('?'));
    assert!(matches!(app.dialog, Some(Dialog::Help { .. })));
}

fn mouse(kind: MouseEventKind, column: u16, row: u16) -> MouseEvent {
    MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    }
}

#[test]
fn mouse_click_double_click_wheel_and_drag() {
    let mut app = app();
    let t0 = Instant::now();
    // Row 2 is the first entry (border, header); row 4 the third.
    app.on_mouse(mouse(MouseEventKind::Down(MouseButton::Left), 70, 3), t0);
    assert_eq!(app.focus, Focus::Pane(Side::Remote));
    assert_eq!(app.remote.cursor, 1);
    app.on_mouse(mouse(MouseEventKind::Up(MouseButton::Left), 70, 3), t0);
    // Below the last entry: focus moves, the cursor stays.
    app.on_mouse(mouse(MouseEventKind::Down(MouseButton::Left), 70, 9), t0);
    assert_eq!(app.remote.cursor, 1);

    app.on_mouse(mouse(MouseEventKind::Down(MouseButton::Left), 10, 3), t0);
    assert_eq!(current(&app), "a.txt");
    app.on_mouse(mouse(MouseEventKind::Up(MouseButton::Left), 10, 3), t0);
    app.on_mouse(mouse(MouseEventKind::Down(MouseButton::Left), 10, 2), t0);
    app.on_mouse(mouse(MouseEventKind::Up(MouseButton::Left), 10, 2), t0);
    app.on_mouse(
        mouse(MouseEventKind::Down(MouseButton::Left), 10, 2),
        t0 + Duration::from_millis(200),
    );
    let commands = app.take_commands();
    assert!(
        matches!(&commands[..], [Effect::List { dir, .. }] if *dir == Location::Local("/home/me/docs".into())),
        "{commands:?}"
    );
    for command in commands {
        if let Effect::List { side, serial, dir } = command {
            app.on_msg(Msg::Listed {
                side,
                serial,
                dir,
                result: Ok(local_entries()),
            });
        }
    }
    app.on_key(key(KeyCode::Backspace));
    settle(&mut app);

    app.on_mouse(mouse(MouseEventKind::ScrollDown, 10, 5), t0);
    assert_eq!(app.local.offset, 0, "nothing to scroll in four entries");

    app.on_mouse(
        mouse(MouseEventKind::Down(MouseButton::Left), 10, 5),
        t0 + Duration::from_secs(5),
    );
    app.on_mouse(
        mouse(MouseEventKind::Drag(MouseButton::Left), 40, 5),
        t0 + Duration::from_secs(5),
    );
    app.on_mouse(
        mouse(MouseEventKind::Up(MouseButton::Left), 80, 5),
        t0 + Duration::from_secs(5),
    );
    let commands = app.take_commands();
    let [
        Effect::Submit {
            spec: JobSpec::Upload { items, .. },
            ..
        },
    ] = commands.as_slice()
    else {
        panic!("{commands:?}")
    };
    assert_eq!(
        items,
        &[(PathBuf::from("/home/me/c.log"), "c.log".to_string())]
    );
}

#[test]
fn connect_dialog_offers_bookmarks_and_recent() {
    let mut app = app();
    app.bookmarks.push(Bookmark {
        name: "nas".into(),
        url: "ferry://nas:7878/media".into(),
        token: Some("t".into()),
        fingerprint: None,
    });
    app.recent.push(Recent {
        url: "ferry://other:9/".into(),
        token: None,
        fingerprint: None,
    });
    app.on_key(ch('c'));
    let Some(Dialog::Connect { targets, .. }) = &app.dialog else {
        panic!()
    };
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0].label, "★ nas  ferry://nas:7878/media");
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Enter));
    assert!(matches!(
        &app.dialog,
        Some(Dialog::Input {
            purpose: InputPurpose::Address,
            ..
        })
    ));
    app.on_key(key(KeyCode::Esc));
    assert!(app.dialog.is_none());
}

#[test]
fn clicking_a_job_selects_it() {
    let mut app = app();
    submitted(&mut app);
    app.banner = None;
    let panel = app.areas().transfers.unwrap();
    // Border, then the overall row, then the first job.
    app.on_mouse(
        mouse(MouseEventKind::Down(MouseButton::Left), 10, panel.y + 2),
        Instant::now(),
    );
    assert_eq!(app.focus, Focus::Transfers);
    assert_eq!(app.transfers.selected, 0);
}

#[test]
fn a_typed_address_connects_and_is_remembered_without_its_token() {
    let mut app = app();
    app.on_key(ch('c'));
    app.on_key(key(KeyCode::Enter));
    app.on_key(ctrl('u'));
    press_all(
        &mut app,
        &"ferry://nas:7070/media secret"
            .chars()
            .map(ch)
            .collect::<Vec<_>>(),
    );
    app.on_key(key(KeyCode::Enter));
    let commands = app.take_commands();
    let [Effect::Connect { conn, endpoint }, Effect::List { dir, .. }] = commands.as_slice() else {
        panic!("{commands:?}")
    };
    assert_eq!(
        (*conn, endpoint.host.as_str(), endpoint.port),
        (2, "nas", 7070)
    );
    assert_eq!(endpoint.token.as_deref(), Some("secret"));
    assert_eq!(*dir, Location::Remote("media".into()));
    assert_eq!(app.conn.state, ConnState::Connecting);
    app.on_msg(Msg::Connection {
        conn: 2,
        event: ConnEvent::Connected {
            read_only: true,
            server: None,
        },
    });
    // Connected is not enough: only a location that lists is remembered.
    assert!(app.take_commands().is_empty());
    remote_listed(&mut app);
    let commands = app.take_commands();
    let [Effect::SaveRecent(list)] = commands.as_slice() else {
        panic!("{commands:?}")
    };
    assert_eq!(
        list[0],
        Recent {
            url: "ferry://nas:7070/media".into(),
            token: None,
            fingerprint: None,
        }
    );
    assert!(app.conn.read_only);
}

#[test]
fn a_refresh_does_not_cancel_a_navigation_in_flight() {
    let mut app = app();
    app.on_key(key(KeyCode::Enter));
    app.on_key(ctrl('r'));
    settle(&mut app);
    assert_eq!(app.local.dir, Location::Local("/home/me/docs".into()));
}

/// Connects to a `ferrys://` server and returns the new connection's id.
fn connect_tls(app: &mut App, url: &str) -> u64 {
    app.connect(url, Some("secret".into()));
    let commands = app.take_commands();
    let Some(Effect::Connect { conn, endpoint }) = commands.first() else {
        panic!("{commands:?}")
    };
    assert!(endpoint.tls);
    assert_eq!(endpoint.fingerprint, None);
    *conn
}

fn unknown(app: &mut App, conn: u64, fingerprint: Fingerprint) {
    app.on_msg(Msg::Connection {
        conn,
        event: ConnEvent::UnknownCertificate {
            addr: "nas:7070".into(),
            fingerprint,
        },
    });
}

#[test]
fn a_new_certificate_is_asked_about_and_only_y_trusts_it() {
    let mut app = app();
    let conn = connect_tls(&mut app, "ferrys://nas:7070/media");
    let fingerprint = Fingerprint([7; 32]);
    unknown(&mut app, conn, fingerprint);
    assert_eq!(
        app.dialog,
        Some(Dialog::Trust {
            addr: "nas:7070".into(),
            fingerprint
        })
    );
    assert!(matches!(app.conn.state, ConnState::Lost(_)));
    // Enter and other keys do not trust: only an explicit `y` does.
    app.on_key(key(KeyCode::Enter));
    app.on_key(ch('x'));
    assert!(matches!(app.dialog, Some(Dialog::Trust { .. })));
    assert!(app.take_commands().is_empty());

    app.on_key(ch('y'));
    assert_eq!(app.dialog, None);
    assert_eq!(app.conn.state, ConnState::Connecting);
    let commands = app.take_commands();
    let [
        Effect::TrustCertificate {
            conn: trusted_conn,
            addr,
            fingerprint: trusted,
        },
        Effect::List {
            side: Side::Remote, ..
        },
    ] = commands.as_slice()
    else {
        panic!("{commands:?}")
    };
    assert_eq!(
        (*trusted_conn, addr.as_str(), *trusted),
        (conn, "nas:7070", fingerprint)
    );

    // News of the attempt before the answer does not ask again.
    unknown(&mut app, conn, fingerprint);
    assert_eq!(app.dialog, None);

    // Once connected and listed, the recent entry keeps the pin (and never the token).
    app.on_msg(Msg::Connection {
        conn,
        event: ConnEvent::Connected {
            read_only: false,
            server: None,
        },
    });
    remote_listed(&mut app);
    let commands = app.take_commands();
    let Some(Effect::SaveRecent(list)) = commands.first() else {
        panic!("{commands:?}")
    };
    assert_eq!(
        list[0],
        Recent {
            url: "ferrys://nas:7070/media".into(),
            token: None,
            fingerprint: Some(fingerprint.to_string()),
        }
    );
}

#[test]
fn refusing_a_new_certificate_does_not_connect() {
    let mut app = app();
    let conn = connect_tls(&mut app, "ferrys://nas:7070/");
    unknown(&mut app, conn, Fingerprint([7; 32]));
    app.on_key(ch('n'));
    assert_eq!(app.dialog, None);
    assert!(app.take_commands().is_empty());
    assert!(matches!(app.conn.state, ConnState::Lost(_)));
    let banner = app.banner.as_ref().unwrap();
    assert_eq!(banner.kind, BannerKind::Error);
    assert!(banner.text.contains("not trusted"), "{}", banner.text);
}

#[test]
fn a_changed_certificate_shows_the_warning_and_does_not_connect() {
    let mut app = app();
    let conn = connect_tls(&mut app, "ferrys://nas:7070/");
    let warning = crate::engine::tls::changed_warning(
        "nas:7070",
        &Fingerprint([1; 32]),
        &Fingerprint([2; 32]),
        "/home/me/.local/share/ferry/known_hosts",
    );
    app.on_msg(Msg::Connection {
        conn,
        event: ConnEvent::CertificateRefused(warning.clone()),
    });
    let Some(Dialog::Alert { title, message }) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert_eq!(title, "Server certificate refused");
    // The engine's warning, with TUI advice instead of a command-line flag.
    let (kept, _) = warning.split_once(", or pass --fingerprint").unwrap();
    assert!(message.starts_with(kept), "{message}");
    assert!(!message.contains("--fingerprint"), "{message}");
    let reconnect = format!("press {} to reconnect", app.keymap.hint(Action::Refresh));
    assert!(message.contains(&reconnect), "{message}");
    assert!(
        message.ends_with(&format!("\n{}", Fingerprint([2; 32]))),
        "the new fingerprint on a line of its own: {message}"
    );
    assert!(matches!(app.conn.state, ConnState::Lost(_)));
    // `y` is no answer here: there is nothing to accept.
    app.on_key(ch('y'));
    assert!(matches!(app.dialog, Some(Dialog::Alert { .. })));
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.dialog, None);
    assert!(app.take_commands().is_empty());
}

/// The fingerprint as lower-case hex without `SHA256:` or colons, as some tools print it.
fn bare_hex(fingerprint: &Fingerprint) -> String {
    fingerprint.0.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_bookmark_fingerprint_is_the_pin_and_a_trusted_one_is_remembered() {
    let mut app = app();
    let pinned = Fingerprint([9; 32]);
    app.bookmarks.push(Bookmark {
        name: "pinned".into(),
        url: "ferrys://nas:7070/media".into(),
        token: None,
        fingerprint: Some(bare_hex(&pinned)),
    });
    app.bookmarks.push(Bookmark {
        name: "bad".into(),
        url: "ferrys://other:7070/".into(),
        token: None,
        fingerprint: Some("SHA256:12".into()),
    });
    app.bookmarks.push(Bookmark {
        name: "new".into(),
        url: "ferrys://fresh:7070/".into(),
        token: None,
        fingerprint: None,
    });
    app.on_key(ch('c'));
    app.on_key(key(KeyCode::Enter));
    let commands = app.take_commands();
    let Some(Effect::Connect { endpoint, .. }) = commands.first() else {
        panic!("{commands:?}")
    };
    assert_eq!(endpoint.fingerprint, Some(pinned));

    // A malformed pin is an error, never a connection without one.
    app.on_key(ch('c'));
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Enter));
    assert!(app.take_commands().is_empty());
    assert!(
        app.banner
            .as_ref()
            .unwrap()
            .text
            .contains("Bad fingerprint")
    );

    // Trusting a bookmark's new certificate pins it in the bookmark too.
    app.on_key(ch('c'));
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Enter));
    let conn = app.conn.id;
    app.take_commands();
    app.on_msg(Msg::Connection {
        conn,
        event: ConnEvent::UnknownCertificate {
            addr: "fresh:7070".into(),
            fingerprint: Fingerprint([3; 32]),
        },
    });
    app.config_path = Some(PathBuf::from("/home/ann/.config/ferry/config.toml"));
    app.on_key(ch('y'));
    assert_eq!(
        app.bookmarks[2].fingerprint,
        Some(Fingerprint([3; 32]).to_string())
    );
    // ... and in the config file, so the bookmark still remembers it next time.
    let pinned_in_file: Vec<_> = app
        .take_commands()
        .into_iter()
        .filter_map(|command| match command {
            Effect::PinBookmark {
                path,
                name,
                fingerprint,
            } => Some((path, name, fingerprint)),
            _ => None,
        })
        .collect();
    assert_eq!(
        pinned_in_file,
        [(
            PathBuf::from("/home/ann/.config/ferry/config.toml"),
            "new".to_owned(),
            Fingerprint([3; 32]).to_string()
        )]
    );
    assert_eq!(
        app.bookmarks[0].fingerprint,
        Some(bare_hex(&pinned)),
        "a pin the user wrote is left as written"
    );
}

/// Types `text` into whatever has the keys.
fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        app.on_key(ch(c));
    }
}

#[test]
fn a_location_with_a_user_asks_for_the_password_then_connects_with_it() {
    let mut app = app();
    app.take_commands();
    app.connect("ferry://ann@nas:7070/media", None);
    // Nothing leaves before the password is typed.
    assert!(app.take_commands().is_empty());
    let Some(Dialog::Input { title, purpose, .. }) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert_eq!(title, "Password for ann@nas:7070");
    assert!(matches!(purpose, InputPurpose::Password(_)));
    type_text(&mut app, " pass word ");
    app.on_key(key(KeyCode::Enter));
    let commands = app.take_commands();
    let Some(Effect::Connect { conn, endpoint }) = commands.first() else {
        panic!("{commands:?}")
    };
    assert_eq!(endpoint.user.as_deref(), Some("ann"));
    assert_eq!(
        endpoint.password.as_deref(),
        Some(" pass word "),
        "taken as typed"
    );
    assert!(
        !format!("{endpoint:?}").contains("pass word"),
        "Debug redacts it"
    );
    let conn = *conn;
    app.on_msg(Msg::Connection {
        conn,
        event: ConnEvent::Connected {
            read_only: false,
            server: None,
        },
    });
    remote_listed(&mut app);
    let commands = app.take_commands();
    let [Effect::SaveRecent(list)] = commands.as_slice() else {
        panic!("{commands:?}")
    };
    assert_eq!(list[0].url, "ferry://ann@nas:7070/media");
    assert_eq!(list[0].token, None);
}

#[test]
fn a_refused_password_is_shown_and_asked_again() {
    let mut app = app();
    app.take_commands();
    app.connect("ferry://ann@nas:7070/", None);
    type_text(&mut app, "wrong");
    app.on_key(key(KeyCode::Enter));
    let conn = app.conn.id;
    app.take_commands();
    app.on_msg(Msg::Connection {
        conn,
        event: ConnEvent::Unauthorized(
            "unauthorized: nas:7070: wrong user name or password".into(),
        ),
    });
    let banner = app.banner.as_ref().unwrap();
    assert_eq!(banner.kind, BannerKind::Error);
    assert!(
        banner.text.contains("wrong user name or password"),
        "{}",
        banner.text
    );
    assert!(matches!(app.conn.state, ConnState::Lost(_)));
    let Some(Dialog::Input { input, purpose, .. }) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert_eq!(input.text(), "", "the retry starts empty");
    assert!(matches!(purpose, InputPurpose::Password(_)));
    type_text(&mut app, "right");
    app.on_key(key(KeyCode::Enter));
    let commands = app.take_commands();
    let Some(Effect::Connect { endpoint, .. }) = commands.first() else {
        panic!("{commands:?}")
    };
    assert_eq!(endpoint.password.as_deref(), Some("right"));
    // Esc on a password prompt connects nowhere.
    app.connect("ferry://bob@nas:7070/", None);
    app.take_commands();
    app.on_key(key(KeyCode::Esc));
    assert!(app.dialog.is_none());
    assert!(app.take_commands().is_empty());
}

/// Opens F9 → "New address…" and types `text` into the field as a user would.
fn new_address(app: &mut App, clear: bool, text: &str) {
    app.update(Action::Connect);
    app.on_key(key(KeyCode::End));
    app.on_key(key(KeyCode::Enter));
    let Some(Dialog::Input { input, .. }) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert_eq!(input.text(), "ferry://");
    if clear {
        app.on_key(ctrl('u'));
    }
    type_text(app, text);
    app.on_key(key(KeyCode::Enter));
}

#[test]
fn a_new_address_with_a_user_keeps_the_password_prompt_it_opens() {
    let mut app = app();
    app.take_commands();
    new_address(&mut app, true, "ferry://ann@nas:7070/media");
    assert!(
        app.take_commands().is_empty(),
        "nothing sent before the password"
    );
    let Some(Dialog::Input { title, purpose, .. }) = &app.dialog else {
        panic!("the password prompt was dropped: {:?}", app.dialog)
    };
    assert_eq!(title, "Password for ann@nas:7070");
    assert!(matches!(purpose, InputPurpose::Password(_)));
    type_text(&mut app, "secret");
    app.on_key(key(KeyCode::Enter));
    let commands = app.take_commands();
    let Some(Effect::Connect { endpoint, .. }) = commands.first() else {
        panic!("{commands:?}")
    };
    assert_eq!(
        (
            endpoint.host.as_str(),
            endpoint.port,
            endpoint.user.as_deref()
        ),
        ("nas", 7070, Some("ann"))
    );
    assert_eq!(endpoint.password.as_deref(), Some("secret"));
    assert_eq!(app.dialog, None);
}

#[test]
fn a_location_typed_over_the_prefill_keeps_its_own_scheme() {
    let mut app = app();
    app.take_commands();
    new_address(&mut app, false, "ferrys://ann@[::1]:17083/");
    assert!(app.banner.is_none(), "{:?}", app.banner);
    let Some(Dialog::Input { title, .. }) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert_eq!(
        title, "Password for ann@[::1]:17083",
        "port and brackets shown"
    );
    type_text(&mut app, "pw");
    app.on_key(key(KeyCode::Enter));
    let commands = app.take_commands();
    let Some(Effect::Connect { endpoint, .. }) = commands.first() else {
        panic!("{commands:?}")
    };
    assert!(endpoint.tls);
    assert_eq!((endpoint.host.as_str(), endpoint.port), ("::1", 17083));
    assert_eq!(app.conn.label, "[::1]:17083");

    // The pre-fill completed by a bare HOST:PORT still means `ferry://`.
    new_address(&mut app, false, "nas:7070/");
    let commands = app.take_commands();
    let Some(Effect::Connect { endpoint, .. }) = commands.first() else {
        panic!("{commands:?}")
    };
    assert!(!endpoint.tls);
    assert_eq!((endpoint.host.as_str(), endpoint.port), ("nas", 7070));
}

#[test]
fn only_a_prefill_followed_by_a_scheme_is_dropped() {
    assert_eq!(without_prefill("ferry://ferrys://h:1/"), "ferrys://h:1/");
    assert_eq!(without_prefill("FERRY://ferry://h:1/"), "ferry://h:1/");
    assert_eq!(without_prefill("ferry://h:1/a://b"), "ferry://h:1/a://b");
    assert_eq!(without_prefill("ferry://h:1/"), "ferry://h:1/");
    assert_eq!(without_prefill("ferry://://h"), "ferry://://h");
    assert_eq!(without_prefill("h:1"), "h:1");
}

#[test]
fn a_read_only_connection_says_read_only_access() {
    let mut app = app();
    app.on_msg(Msg::Connection {
        conn: 1,
        event: ConnEvent::Connected {
            read_only: true,
            server: None,
        },
    });
    app.focus = Focus::Pane(Side::Remote);
    app.update(Action::Mkdir);
    assert_eq!(app.dialog, None);
    let banner = app.banner.as_ref().unwrap();
    assert_eq!(
        banner.text,
        "Cannot make a directory: this connection has read-only access"
    );
}

/// A job of one 2 MiB file, finished with `summary` after the given file events.
fn finished_job(app: &mut App, dest: Side, events: Vec<TransferEvent>, summary: JobSummary) {
    let job = submitted(app);
    let mut all = vec![TransferEvent::Planned {
        job: job.id,
        files: 1,
        bytes: 2 << 20,
    }];
    all.extend(events);
    all.push(TransferEvent::Finished {
        job: job.id,
        outcome: Ok(summary),
    });
    if let Some(last) = app.transfers.jobs.last_mut() {
        last.info.dest = dest;
    }
    for event in all {
        app.on_msg(Msg::Transfer { conn: 1, event });
    }
}

fn summary(files: u64, bytes: u64, skipped: u64, failed: u64) -> JobSummary {
    JobSummary {
        files,
        bytes,
        skipped,
        failed,
        elapsed: Duration::from_secs(1),
    }
}

#[test]
fn a_job_whose_only_file_failed_shows_nothing_done_and_the_error_first() {
    let mut app = app();
    let id = JobId(7);
    finished_job(
        &mut app,
        Side::Remote,
        vec![
            TransferEvent::Progress(JobProgress {
                job: id,
                files_done: 1,
                files_total: 1,
                bytes_done: 2 << 20,
                bytes_total: 2 << 20,
                current: None,
                speed: 0.0,
                eta: None,
                scanning: false,
            }),
            TransferEvent::FileFailed {
                job: id,
                path: "two.bin".into(),
                error: "too_large: two.bin: 2097152 bytes is over the limit of 1048576".into(),
            },
        ],
        summary(0, 2 << 20, 0, 1),
    );
    let job = &app.transfers.jobs[0];
    assert_eq!(job.key.id, id);
    assert_eq!(job.ratio(), 0.0, "bytes of a refused file are not done");
    assert_eq!(job.bytes_done(), 0);
    let banner = app.banner.as_ref().unwrap();
    assert_eq!(banner.kind, BannerKind::Error);
    assert_eq!(
        banner.text,
        format!(
            "#{} too_large: 2097152 bytes is over the limit of 1048576 (two.bin)",
            job.number
        )
    );
}

#[test]
fn a_skipped_only_job_says_skipped() {
    let mut app = app();
    finished_job(&mut app, Side::Remote, vec![], summary(0, 0, 1, 0));
    let job = &app.transfers.jobs[0];
    assert!(job.skipped_only());
    assert_eq!(job.ratio(), 0.0);
    let banner = app.banner.as_ref().unwrap();
    assert_eq!(banner.kind, BannerKind::Info);
    assert!(
        banner.text.ends_with(": nothing copied, skipped"),
        "{}",
        banner.text
    );
}

#[test]
fn a_download_says_received() {
    let mut app = app();
    let id = JobId(7);
    finished_job(
        &mut app,
        Side::Local,
        vec![TransferEvent::FileDone {
            job: id,
            path: "a.txt".into(),
            bytes: 8,
            digest: Digest::of(b"12345678"),
        }],
        summary(1, 8, 0, 0),
    );
    assert_eq!(app.transfers.jobs[0].ratio(), 1.0);
    let banner = app.banner.as_ref().unwrap();
    assert!(
        banner
            .text
            .ends_with("copied: 1 file verified, 8 B received"),
        "{}",
        banner.text
    );
}

#[test]
fn a_failure_names_its_file_once() {
    assert_eq!(
        failure_text("d/two.bin", "too_large: d/two.bin: over"),
        "too_large: over"
    );
    assert_eq!(failure_text("/x", "io: x: gone"), "io: gone");
    assert_eq!(failure_text("a.txt", "a.txt: unreadable"), "unreadable");
    assert_eq!(
        failure_text("a.txt", "permission_denied"),
        "permission_denied"
    );
}

#[test]
fn a_scheme_typed_after_the_prefill_replaces_it_in_the_field() {
    let mut app = app();
    app.update(Action::Connect);
    app.on_key(key(KeyCode::End));
    app.on_key(key(KeyCode::Enter));
    type_text(&mut app, "ferrys://ann@h:1/");
    let Some(Dialog::Input { input, .. }) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert_eq!(input.text(), "ferrys://ann@h:1/");
    // A plain host after the pre-fill, and a `://` later in the path, are left alone.
    app.on_key(ctrl('u'));
    type_text(&mut app, "ferry://h:1/a://b");
    let Some(Dialog::Input { input, .. }) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert_eq!(input.text(), "ferry://h:1/a://b");
}

/// Submits a copy of the entry under the local cursor as job `id` of connection `conn`.
fn submit_as(app: &mut App, conn: u64, id: u64) -> JobKey {
    app.on_key(key(KeyCode::F(5)));
    let Some(Effect::Submit { info, .. }) = app.take_commands().pop() else {
        panic!("no submit")
    };
    let job = JobKey {
        conn,
        id: JobId(id),
    };
    app.on_msg(Msg::Submitted { key: job, info });
    job
}

fn finish(app: &mut App, job: JobKey) {
    app.on_msg(Msg::Transfer {
        conn: job.conn,
        event: TransferEvent::Finished {
            job: job.id,
            outcome: Ok(summary(1, 1000, 0, 0)),
        },
    });
}

/// The rows the transfer panel draws, as text.
fn panel_text(app: &mut App) -> String {
    app.sync_layout();
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(app.size.0, app.size.1)).unwrap();
    terminal.draw(|frame| ui::draw(frame, &app.view())).unwrap();
    format!("{}", terminal.backend())
}

#[test]
fn the_transfer_list_follows_the_running_job_so_x_cancels_what_it_shows() {
    let mut app = app();
    app.on_key(key(KeyCode::Down));
    for id in 1..=14 {
        let job = submit_as(&mut app, 1, id);
        finish(&mut app, job);
    }
    // The newest finished job is in view, not the first five.
    let screen = panel_text(&mut app);
    assert!(screen.contains("#14 ✓"), "{screen}");
    assert!(!screen.contains("#1 ✓"), "{screen}");

    let slow = submit_as(&mut app, 1, 15);
    assert_eq!(app.transfers.selected, 14);
    let screen = panel_text(&mut app);
    assert!(screen.contains("#15 ↑ a.txt"), "{screen}");
    app.on_key(ch('x'));
    assert!(
        matches!(&app.dialog, Some(Dialog::Confirm { message, on_yes: Confirmed::CancelUpload(k), .. })
            if message.starts_with("Cancel transfer #15") && *k == slow),
        "{:?}",
        app.dialog
    );
    app.on_key(ch('n'));

    // Newer jobs finishing do not hide the one still running.
    for id in 16..=20 {
        let job = submit_as(&mut app, 1, id);
        finish(&mut app, job);
    }
    assert_eq!(app.transfers.selected, 14);
    let screen = panel_text(&mut app);
    assert!(screen.contains("#15 ↑ a.txt"), "{screen}");

    // Once the user chooses in the focused list, new jobs do not move the selection.
    app.on_key(ch('t'));
    assert_eq!(app.focus, Focus::Transfers);
    assert_eq!(app.transfers.selected, 14);
    app.on_key(key(KeyCode::Home));
    submit_as(&mut app, 1, 21);
    assert_eq!(app.transfers.selected, 0);
    let screen = panel_text(&mut app);
    assert!(screen.contains("›#1 ✓"), "{screen}");
    // Back in the panes, the list follows again with the next change.
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.transfers.selected, 20);
    finish(&mut app, slow);
    assert_eq!(app.transfers.selected, 20, "#21 is still running");
}

#[test]
fn job_numbers_stay_unique_after_connecting_to_another_server() {
    let mut app = app();
    app.on_key(key(KeyCode::Down));
    let first = submit_as(&mut app, 1, 1);
    app.connect("ferry://other:7070/", None);
    app.on_msg(Msg::Connection {
        conn: 2,
        event: ConnEvent::Connected {
            read_only: false,
            server: None,
        },
    });
    settle(&mut app);
    // The new connection's engine counts from 1 again.
    let second = submit_as(&mut app, 2, 1);
    assert_eq!(first.id, second.id);
    let numbers: Vec<u64> = app.transfers.jobs.iter().map(|j| j.number).collect();
    assert_eq!(numbers, [1, 2]);
    finish(&mut app, second);
    assert!(
        app.banner.as_ref().unwrap().text.starts_with("#2 copied"),
        "{:?}",
        app.banner
    );
    app.on_msg(Msg::Transfer {
        conn: 1,
        event: TransferEvent::Finished {
            job: first.id,
            outcome: Err("cancelled".into()),
        },
    });
    assert_eq!(app.banner.as_ref().unwrap().text, "#1 a.txt: cancelled");
    assert_eq!(app.banner.as_ref().unwrap().kind, BannerKind::Cancelled);
    let screen = panel_text(&mut app);
    assert!(screen.contains("#1 ⊘ a.txt: cancelled"), "{screen}");
    assert!(screen.contains("#2 ✓ a.txt"), "{screen}");
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
        app.take_commands();
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
    app.take_commands();
    answer_list(&mut app, Side::Local, Ok(local_entries()));
    app.on_key(key(KeyCode::Tab));
    app.on_key(ctrl('r'));
    answer_list(&mut app, Side::Local, gone());
    assert_eq!(
        answer_list(&mut app, Side::Local, Ok(local_entries())),
        Location::Local("/home/me".into())
    );
    assert!(
        app.banner
            .as_ref()
            .unwrap()
            .text
            .contains("/home/me/docs no longer exists"),
        "{:?}",
        app.banner
    );

    // Going into a directory that is not there is only an error: the pane stays.
    app.request_list(Side::Local, Location::Local("/home/me/nope".into()), None);
    app.take_commands();
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
    app.take_commands();
    app.on_msg(Msg::Connection {
        conn,
        event: ConnEvent::Connected {
            read_only: false,
            server: None,
        },
    });
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
        !app.take_commands()
            .iter()
            .any(|c| matches!(c, Effect::SaveRecent(_))),
    );
    assert!(app.recent.is_empty());

    // A connection that failed is kept for when it lists.
    app.connect("ferry://nas:7070/media", None);
    app.take_commands();
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
fn delete_questions_say_a_directory_goes_with_everything_in_it() {
    let mut app = app();
    let question = |app: &App| match &app.dialog {
        Some(Dialog::Confirm { message, .. }) => message.clone(),
        other => panic!("{other:?}"),
    };
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::F(8)));
    assert_eq!(question(&app), "Delete file a.txt?");
    app.on_key(key(KeyCode::Esc));
    app.on_key(ch(' '));
    app.on_key(ch(' '));
    app.on_key(key(KeyCode::F(8)));
    assert_eq!(question(&app), "Delete 2 marked files?");
    app.on_key(key(KeyCode::Esc));
    app.on_key(ctrl('a'));
    app.on_key(key(KeyCode::F(8)));
    assert_eq!(
        question(&app),
        "Delete 4 marked entries, including 1 directory and everything in it?"
    );
}

#[test]
fn home_and_end_move_through_the_connect_dialog() {
    let mut app = app();
    for name in ["a", "b", "c"] {
        app.recent.push(Recent {
            url: format!("ferry://{name}:7070/"),
            token: None,
            fingerprint: None,
        });
    }
    app.on_key(ch('c'));
    let selected = |app: &App| match &app.dialog {
        Some(Dialog::Connect { selected, .. }) => *selected,
        other => panic!("{other:?}"),
    };
    app.on_key(key(KeyCode::End));
    assert_eq!(selected(&app), 3, "the last row types an address");
    app.on_key(key(KeyCode::Home));
    assert_eq!(selected(&app), 0);
    app.on_key(key(KeyCode::End));
    app.on_key(key(KeyCode::Enter));
    assert!(matches!(
        &app.dialog,
        Some(Dialog::Input {
            purpose: InputPurpose::Address,
            ..
        })
    ));
}

#[test]
fn a_mkdir_in_a_directory_that_is_gone_says_why_and_moves_up() {
    let mut app = app();
    app.request_list(Side::Remote, Location::Remote("shared".into()), None);
    app.take_commands();
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
fn a_download_cut_off_keeps_its_bytes_on_screen_and_asks_about_the_connection() {
    let mut app = app();
    app.on_key(key(KeyCode::Tab));
    app.on_key(key(KeyCode::Down));
    let job = submit_as(&mut app, 1, 1);
    let event = |event| Msg::Transfer { conn: 1, event };
    app.on_msg(event(TransferEvent::Planned {
        job: job.id,
        files: 1,
        bytes: 150 << 20,
    }));
    app.on_msg(event(TransferEvent::Progress(JobProgress {
        job: job.id,
        files_done: 0,
        files_total: 1,
        bytes_done: 35 << 20,
        bytes_total: 150 << 20,
        current: Some("remote.txt".into()),
        speed: 1e6,
        eta: None,
        scanning: false,
    })));
    app.on_msg(event(TransferEvent::FileFailed {
        job: job.id,
        path: "remote.txt".into(),
        error: "connection: 127.0.0.1:7878: connection reset by peer".into(),
    }));
    // The status bar must not keep saying connected: the browsing session checks at once.
    let commands = app.take_commands();
    assert!(
        matches!(commands.as_slice(), [Effect::Probe]),
        "{commands:?}"
    );
    app.on_msg(event(TransferEvent::Finished {
        job: job.id,
        outcome: Ok(summary(0, 35 << 20, 0, 1)),
    }));
    let row = &app.transfers.jobs[0];
    assert_eq!(row.bytes_done(), 35 << 20);
    assert!(row.kept_partial());
    let banner = &app.banner.as_ref().unwrap().text;
    assert!(
        banner.starts_with("#1 connection: 127.0.0.1:7878: connection reset by peer")
            && banner.ends_with("; partial kept, F5 again resumes"),
        "{banner}"
    );
    let screen = panel_text(&mut app);
    assert!(screen.contains("35 MiB / 150 MiB"), "{screen}");
    assert!(screen.contains("partial kept"), "{screen}");
    assert!(!screen.contains("0 B / 150 MiB"), "{screen}");

    // One question at a time, until the connection's news arrives.
    let second = submit_as(&mut app, 1, 2);
    app.on_msg(event(TransferEvent::FileFailed {
        job: second.id,
        path: "remote.txt".into(),
        error: "connection: 127.0.0.1:7878: refused".into(),
    }));
    assert!(app.take_commands().is_empty());
    app.on_msg(Msg::Connection {
        conn: 1,
        event: ConnEvent::Lost("connection: 127.0.0.1:7878: refused".into()),
    });
    assert!(matches!(app.conn.state, ConnState::Lost(_)));
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
    app.on_msg(Msg::Connection {
        conn,
        event: ConnEvent::Connected {
            read_only: false,
            server: None,
        },
    });
    assert!(
        !app.banner
            .as_ref()
            .is_some_and(|b| b.text.contains("refused")),
        "{:?}",
        app.banner
    );
}
