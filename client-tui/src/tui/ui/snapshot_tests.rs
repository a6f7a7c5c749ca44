//! Screens rendered into ratatui's `TestBackend` and compared with insta snapshots. Times
//! are fixed, so the snapshots never depend on the clock.
//!
//! Over 600 lines in one module on purpose: insta names every stored snapshot after this
//! module's path, so splitting the file would rename (and re-record) all of them.

use std::path::PathBuf;
use std::time::Duration;

use ferry_protocol::{Entry, Kind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::oneshot;

use crate::engine::{FileFacts, JobId, JobProgress, TransferEvent};
use crate::tui::app::App;
use crate::tui::config::Settings;
use crate::tui::jobs::JobKey;
use crate::tui::jobs::tests::progress;
use crate::tui::message::{ConnEvent, Effect, Msg};
use crate::tui::pane::Side;
use crate::tui::pane::tests::entry;

const T: i64 = 1_764_000_000;

fn local_entries() -> Vec<Entry> {
    vec![
        entry("projects", Kind::Dir, 4096, T),
        entry("notes.md", Kind::File, 2_345, T + 60),
        entry("video.mkv", Kind::File, 1_288_490_189, T + 3600),
        entry("archive.tar.gz", Kind::File, 73_400_320, T - 86_400),
        entry(".bashrc", Kind::File, 220, T),
    ]
}

fn remote_entries() -> Vec<Entry> {
    let mut link = entry("latest", Kind::Symlink, 7, T);
    link.link = Some(Kind::Dir);
    vec![
        entry("backups", Kind::Dir, 4096, T),
        link,
        entry("report.pdf", Kind::File, 1_048_576, T + 120),
        entry("bad\nname\x1b[31m.txt", Kind::File, 12, T),
    ]
}

/// An app with both panes listed (or left empty) and the server connected.
fn app(local: Vec<Entry>, remote: Vec<Entry>, width: u16, height: u16) -> App {
    let mut app = App::new(
        Settings::default(),
        PathBuf::from("/home/me"),
        "127.0.0.1:7878".into(),
        String::new(),
    );
    app.resize(width, height);
    app.on_msg(Msg::Connection {
        conn: 1,
        event: ConnEvent::Connected {
            read_only: false,
            server: "ferry-server 0.1.0".into(),
            home: None,
        },
    });
    for command in app.take_effects() {
        if let Effect::List { side, serial, dir } = command {
            let entries = match side {
                Side::Local => local.clone(),
                Side::Remote => remote.clone(),
            };
            app.on_msg(Msg::Listed {
                side,
                serial,
                dir,
                result: Ok(entries),
            });
        }
    }
    app.take_effects();
    app
}

fn render(app: &mut App) -> TestBackend {
    app.sync_layout();
    let (width, height) = app.size;
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| super::draw(frame, &app.view()))
        .unwrap();
    terminal.backend().clone()
}

fn key(code: crossterm::event::KeyCode) -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::new(code, crossterm::event::KeyModifiers::NONE)
}

/// Submits a copy of the entry under the local cursor and reports it at `done` of `total`.
fn transfer(app: &mut App, id: u64, done: u64, total: u64, speed: f64) {
    app.on_key(key(crossterm::event::KeyCode::F(5)));
    app.on_key(key(crossterm::event::KeyCode::Enter));
    let Some(Effect::Submit { info, .. }) = app.take_effects().pop() else {
        panic!("no submit")
    };
    let job = JobKey {
        conn: 1,
        id: JobId(id),
    };
    app.on_msg(Msg::Submitted { key: job, info });
    app.on_msg(Msg::Transfer {
        conn: 1,
        event: TransferEvent::Progress(JobProgress {
            eta: (speed > 0.0).then(|| Duration::from_secs_f64((total - done) as f64 / speed)),
            ..progress(job.id, done, total, speed)
        }),
    });
}

#[test]
fn empty_panes_while_connecting() {
    let mut app = App::new(
        Settings::default(),
        PathBuf::from("/home/me"),
        "127.0.0.1:7878".into(),
        String::new(),
    );
    app.resize(100, 16);
    for command in app.take_effects() {
        if let Effect::List {
            side: Side::Local,
            serial,
            dir,
        } = command
        {
            app.on_msg(Msg::Listed {
                side: Side::Local,
                serial,
                dir,
                result: Ok(vec![]),
            });
        }
    }
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn listing() {
    let mut app = app(local_entries(), remote_entries(), 120, 16);
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn marked_entries_and_hidden_files() {
    let mut app = app(local_entries(), remote_entries(), 120, 16);
    app.on_key(key(crossterm::event::KeyCode::Char('.')));
    app.on_key(key(crossterm::event::KeyCode::Down));
    app.on_key(key(crossterm::event::KeyCode::Down));
    app.on_key(key(crossterm::event::KeyCode::Char(' ')));
    app.on_key(key(crossterm::event::KeyCode::Char(' ')));
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn filter_being_typed() {
    let mut app = app(local_entries(), remote_entries(), 120, 12);
    for c in ['/', 'v', 'm'] {
        app.on_key(key(crossterm::event::KeyCode::Char(c)));
    }
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn transfer_at_42_percent() {
    let mut app = uploading_at(12.5 * 1024.0 * 1024.0);
    insta::assert_snapshot!(render(&mut app));
}

/// Job #1 uploading the last local entry, 42 MiB of 100 done at `speed` bytes a second.
fn uploading_at(speed: f64) -> App {
    let mut app = app(local_entries(), remote_entries(), 120, 20);
    app.on_key(key(crossterm::event::KeyCode::End));
    transfer(&mut app, 1, 42 * 1024 * 1024, 100 * 1024 * 1024, speed);
    app
}

/// `L` in the transfer list sets the selected job's own limit, `L` from a pane the limit for
/// all: the row shows its limit, the status bar the one for all, and the engine is told both.
#[test]
fn rate_limits_for_a_job_and_for_all_are_shown_where_they_apply() {
    use crate::tui::rate::RateTarget;
    let mut app = uploading_at(2_000_000.0);
    let job = JobKey {
        conn: 1,
        id: JobId(1),
    };
    let typed = |app: &mut App, text: &str| {
        for c in text.chars() {
            app.on_key(key(crossterm::event::KeyCode::Char(c)));
        }
        app.on_key(key(crossterm::event::KeyCode::Enter));
    };
    for c in ['t', 'L'] {
        app.on_key(key(crossterm::event::KeyCode::Char(c)));
    }
    typed(&mut app, "2M");
    app.on_key(key(crossterm::event::KeyCode::Char('t')));
    app.on_key(key(crossterm::event::KeyCode::Char('L')));
    typed(&mut app, "10M");
    let effects = app.take_effects();
    let limits: Vec<(RateTarget, u64)> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::SetRateLimit {
                target,
                bytes_per_second,
            } => Some((*target, *bytes_per_second)),
            _ => None,
        })
        .collect();
    assert_eq!(
        limits,
        [
            (RateTarget::Job(job), 2_000_000),
            (RateTarget::All, 10_000_000)
        ]
    );
    insta::assert_snapshot!(render(&mut app));

    // What is not a rate changes nothing and says why (the prompt starts from the limit set).
    app.on_key(key(crossterm::event::KeyCode::Char('L')));
    typed(&mut app, "fast");
    assert!(app.take_effects().is_empty());
    assert_eq!(app.rate_limit, 10_000_000);
    let banner = app
        .banner
        .as_ref()
        .map(|b| b.text.clone())
        .unwrap_or_default();
    assert!(banner.starts_with("Rate limit \"10Mfast\""), "{banner}");
}

#[test]
fn finished_and_failed_transfers_with_verified_mark() {
    let mut app = app(local_entries(), remote_entries(), 120, 20);
    app.on_key(key(crossterm::event::KeyCode::Tab));
    app.on_key(key(crossterm::event::KeyCode::End));
    transfer_remote(&mut app);
    insta::assert_snapshot!(render(&mut app));
}

fn transfer_remote(app: &mut App) {
    use crate::engine::JobSummary;
    transfer(app, 1, 0, 1_048_576, 0.0);
    app.on_msg(Msg::Transfer {
        conn: 1,
        event: TransferEvent::FileDone {
            job: JobId(1),
            path: "report.pdf".into(),
            bytes: 1_048_576,
            digest: ferry_protocol::Digest::of(b""),
        },
    });
    app.on_msg(Msg::Transfer {
        conn: 1,
        event: TransferEvent::Finished {
            job: JobId(1),
            outcome: Ok(JobSummary {
                files: 1,
                bytes: 1_048_576,
                skipped: 0,
                failed: 0,
                elapsed: Duration::from_secs(2),
            }),
        },
    });
    // The refresh the finished job asked for: the local pane now holds the file.
    for command in app.take_effects() {
        if let Effect::List { side, serial, dir } = command {
            let mut entries = local_entries();
            entries.push(entry("report.pdf", Kind::File, 1_048_576, T + 120));
            app.on_msg(Msg::Listed {
                side,
                serial,
                dir,
                result: Ok(entries),
            });
        }
    }
    app.on_key(key(crossterm::event::KeyCode::Up));
    transfer(app, 2, 0, 12, 0.0);
    app.on_msg(Msg::Transfer {
        conn: 1,
        event: TransferEvent::Finished {
            job: JobId(2),
            outcome: Err("connection: 127.0.0.1:7878: connection reset by peer".into()),
        },
    });
}

#[test]
fn conflict_prompt() {
    let mut app = app(local_entries(), remote_entries(), 100, 20);
    transfer(&mut app, 3, 0, 2_345, 0.0);
    let (reply, _rx) = oneshot::channel();
    app.on_msg(Msg::Transfer {
        conn: 1,
        event: TransferEvent::Conflict {
            job: JobId(3),
            path: "projects".into(),
            reply,
            reason: None,
            source: FileFacts {
                size: 2048,
                mtime: 1_700_000_000,
            },
            dest: Some(FileFacts {
                size: 1024,
                mtime: 1_600_000_000,
            }),
        },
    });
    app.on_key(key(crossterm::event::KeyCode::Char('a')));
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn connection_lost_banner() {
    let mut app = app(local_entries(), remote_entries(), 120, 12);
    app.on_msg(Msg::Connection {
        conn: 1,
        event: ConnEvent::Lost("connection: 127.0.0.1:7878: connection refused".into()),
    });
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn narrow_terminal() {
    let mut app = app(local_entries(), remote_entries(), 60, 14);
    app.on_key(key(crossterm::event::KeyCode::End));
    transfer(&mut app, 1, 42, 100, 10.0);
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn terminal_too_small() {
    let mut app = app(local_entries(), remote_entries(), 30, 8);
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn help_from_the_live_keymap() {
    let mut app = app(local_entries(), remote_entries(), 100, 44);
    app.on_key(key(crossterm::event::KeyCode::F(1)));
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn delete_confirmation() {
    let mut app = app(local_entries(), remote_entries(), 100, 14);
    app.on_key(key(crossterm::event::KeyCode::F(8)));
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn copy_dialog_with_completion_candidates_and_a_policy() {
    use crossterm::event::KeyCode;
    let mut remote = remote_entries();
    remote.push(entry("backups-old", Kind::Dir, 4096, T));
    let mut app = app(local_entries(), remote, 100, 20);
    // Marks `projects` and `notes.md`, then F5, types `b`, Tab, and picks a policy.
    for code in [
        KeyCode::Down,
        KeyCode::Char(' '),
        KeyCode::Char(' '),
        KeyCode::F(5),
        KeyCode::Char('b'),
        KeyCode::Tab,
        KeyCode::Down,
        KeyCode::Down,
    ] {
        app.on_key(key(code));
    }
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn compare_marks_what_differs_and_says_how_many() {
    let local = vec![
        entry("projects", Kind::Dir, 4096, T),
        entry("report.pdf", Kind::File, 1_048_576, T + 600),
        entry("same.txt", Kind::File, 10, T),
    ];
    let remote = vec![
        entry("report.pdf", Kind::File, 1_048_576, T + 120),
        entry("same.txt", Kind::File, 10, T),
        entry("only-there.txt", Kind::File, 5, T),
    ];
    let mut app = app(local, remote, 100, 12);
    app.on_key(key(crossterm::event::KeyCode::Char('=')));
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn a_hundred_thousand_entries_render_only_the_visible_rows() {
    let many: Vec<Entry> = (0..100_000)
        .map(|i| entry(&format!("file{i:06}.dat"), Kind::File, i, T))
        .collect();
    let mut app = app(many, vec![], 100, 14);
    app.on_key(key(crossterm::event::KeyCode::End));
    let started = std::time::Instant::now();
    for _ in 0..100 {
        app.on_key(key(crossterm::event::KeyCode::PageUp));
        render(&mut app);
    }
    // A debug build on a busy CI box: generous, but an O(n) render per frame would blow it.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn two_jobs_with_the_transfer_list_focused_and_a_cancel_asked() {
    let mut app = app(local_entries(), remote_entries(), 120, 20);
    app.on_key(key(crossterm::event::KeyCode::End));
    transfer(
        &mut app,
        1,
        900 * 1024 * 1024,
        1_288_490_189,
        50.0 * 1024.0 * 1024.0,
    );
    app.on_key(key(crossterm::event::KeyCode::Up));
    transfer(&mut app, 2, 1000, 2_345, 500.0);
    app.on_key(key(crossterm::event::KeyCode::Char('t')));
    app.on_key(key(crossterm::event::KeyCode::Down));
    app.on_key(key(crossterm::event::KeyCode::Char('x')));
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn connect_dialog_with_bookmarks_and_recent() {
    let mut app = app(local_entries(), remote_entries(), 100, 16);
    app.bookmarks.push(crate::tui::config::Bookmark {
        name: "nas".into(),
        url: "ferry://nas.local:7070/media".into(),
        token: None,
        fingerprint: None,
    });
    app.recent.push(crate::tui::config::Recent {
        url: "ferry://10.0.0.7:7070/".into(),
        token: None,
        fingerprint: None,
    });
    app.on_key(key(crossterm::event::KeyCode::F(9)));
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn help_with_the_vim_preset() {
    let settings =
        crate::tui::config::parse("keymap = \"vim\"\n", std::path::Path::new(".")).unwrap();
    let mut app = App::new(
        settings,
        PathBuf::from("/home/me"),
        "127.0.0.1:7878".into(),
        String::new(),
    );
    app.resize(100, 44);
    app.take_effects();
    app.on_key(key(crossterm::event::KeyCode::F(1)));
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn unknown_certificate_question() {
    let mut app = app(local_entries(), remote_entries(), 100, 24);
    app.dialog = Some(crate::tui::dialogs::Dialog::Trust {
        addr: "nas.local:7070".into(),
        fingerprint: crate::engine::known_hosts::Fingerprint(std::array::from_fn(|i| i as u8 * 8)),
    });
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn changed_certificate_warning() {
    let mut app = app(local_entries(), remote_entries(), 120, 30);
    // Through the app, which swaps the engine's command-line advice for the TUI's.
    app.on_msg(crate::tui::app::Msg::Connection {
        conn: app.conn.id,
        event: crate::tui::app::ConnEvent::CertificateRefused(crate::engine::browse::Refusal {
            addr: "nas.local:7070".into(),
            presented: Some(crate::engine::known_hosts::Fingerprint([0x42; 32])),
            old: Some(crate::engine::known_hosts::Fingerprint([0xAB; 32])),
            pinned: false,
            recorded_at: Some(("/home/me/.local/share/ferry/known_hosts".into(), 2)),
            message: "certificate_changed".into(),
        }),
    });
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn password_prompt_is_masked() {
    let mut app = app(local_entries(), remote_entries(), 100, 16);
    app.connect("ferry://ann@nas.local:7070/", None);
    for c in "s3cret!".chars() {
        app.on_key(key(crossterm::event::KeyCode::Char(c)));
    }
    let screen = render(&mut app);
    let text = format!("{screen:?}");
    assert!(!text.contains("s3cret"), "the password is never drawn");
    insta::assert_snapshot!(screen);
}

#[test]
fn a_refused_file_and_a_skipped_conflict_in_the_transfer_panel() {
    use crate::engine::JobSummary;
    let mut app = app(local_entries(), remote_entries(), 120, 20);
    let summary = |bytes, skipped, failed| JobSummary {
        files: 0,
        bytes,
        skipped,
        failed,
        elapsed: Duration::from_secs(1),
    };
    // All its bytes went out, then the server refused the file: nothing is done.
    transfer(&mut app, 3, 2 << 20, 2 << 20, 0.0);
    app.on_msg(Msg::Transfer {
        conn: 1,
        event: TransferEvent::FileFailed {
            job: JobId(3),
            path: "projects".into(),
            error: "too_large: projects: 2097152 bytes is over this account's limit of 1048576"
                .into(),
        },
    });
    app.on_msg(Msg::Transfer {
        conn: 1,
        event: TransferEvent::Finished {
            job: JobId(3),
            outcome: Ok(summary(2 << 20, 0, 1)),
        },
    });
    app.on_key(key(crossterm::event::KeyCode::Down));
    transfer(&mut app, 4, 2_345, 2_345, 0.0);
    app.on_msg(Msg::Transfer {
        conn: 1,
        event: TransferEvent::Finished {
            job: JobId(4),
            outcome: Ok(summary(0, 1, 0)),
        },
    });
    let screen = render(&mut app);
    let text = format!("{screen:?}");
    assert!(!text.contains("100%"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn read_only_marker_survives_a_long_server_name_at_120_columns() {
    let mut app = app(local_entries(), remote_entries(), 120, 10);
    app.conn.label = "[::1]:17083".into();
    app.on_msg(Msg::Connection {
        conn: 1,
        event: ConnEvent::Connected {
            read_only: true,
            server: "ferry-server 0.1.0 (tls, users, limits, sweep)".into(),
            home: None,
        },
    });
    let screen = render(&mut app);
    let status = format!("{screen:?}");
    assert!(
        status.contains("[::1]:17083 connected [read-only]"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
}

#[test]
fn the_key_hints_shrink_with_the_terminal_but_f1_help_and_from_80_columns_f10_quit_stay() {
    for (width, last_hint) in [(40, "F1 help"), (80, "F10 quit"), (120, "F10 quit")] {
        let mut app = app(local_entries(), remote_entries(), width, 14);
        let backend = render(&mut app);
        let buffer = backend.buffer();
        let status: String = (0..width)
            .map(|x| buffer[(x, 13)].symbol().to_string())
            .collect();
        assert!(
            status.contains("127.0.0.1:7878 connected") && status.contains("F1 help"),
            "{width} columns: {status:?}"
        );
        assert!(
            status.trim_end().ends_with(last_hint),
            "{width} columns: {status:?}"
        );
        // The middle hints give way first, in order from the end.
        if width >= 80 {
            assert!(status.contains("F5 copy"), "{width} columns: {status:?}");
        }
    }
}

#[test]
fn the_sort_arrow_points_down_for_largest_and_newest_first() {
    let mut app = app(local_entries(), remote_entries(), 100, 14);
    // The local pane's bottom border, where its sort is shown.
    let footer = |app: &mut App| {
        let backend = render(app);
        let buffer = backend.buffer();
        (0..50u16)
            .map(|x| buffer[(x, 12)].symbol().to_string())
            .collect::<String>()
    };
    assert!(footer(&mut app).contains("name↑"), "A to Z");
    app.on_key(key(crossterm::event::KeyCode::Char('S')));
    assert!(footer(&mut app).contains("name↓"), "Z to A");
    let mut app = app_sorted(crate::tui::pane::SortKey::Size);
    assert!(footer(&mut app).contains("size↓"), "largest first");
    app.on_key(key(crossterm::event::KeyCode::Char('S')));
    assert!(footer(&mut app).contains("size↑"), "smallest first");
    let mut app = app_sorted(crate::tui::pane::SortKey::Time);
    assert!(footer(&mut app).contains("time↓"), "newest first");
}

fn app_sorted(key: crate::tui::pane::SortKey) -> App {
    let mut app = app(local_entries(), remote_entries(), 100, 14);
    app.local.set_sort(key, false);
    app
}

#[test]
fn delete_of_two_marked_directories_keeps_its_key_hint() {
    let dirs = vec![
        entry("photos", Kind::Dir, 4096, T),
        entry("projects", Kind::Dir, 4096, T),
        entry("notes.md", Kind::File, 2_345, T),
    ];
    let mut app = app(dirs, remote_entries(), 100, 14);
    app.on_key(key(crossterm::event::KeyCode::Char(' ')));
    app.on_key(key(crossterm::event::KeyCode::Char(' ')));
    app.on_key(key(crossterm::event::KeyCode::F(8)));
    let screen = format!("{:?}", render(&mut app));
    assert!(screen.contains("everything in them?"), "{screen}");
    assert!(screen.contains("y / Enter: yes"), "{screen}");
    insta::assert_snapshot!(render(&mut app));
}

/// A download whose tree is still walked while its first files already arrived.
fn scanning_download(app: &mut App) -> JobKey {
    app.on_key(key(crossterm::event::KeyCode::Tab));
    app.on_key(key(crossterm::event::KeyCode::F(5)));
    app.on_key(key(crossterm::event::KeyCode::Enter));
    let Some(Effect::Submit { info, .. }) = app.take_effects().pop() else {
        panic!("no submit")
    };
    let job = JobKey {
        conn: 1,
        id: JobId(1),
    };
    app.on_msg(Msg::Submitted { key: job, info });
    app.on_msg(Msg::Transfer {
        conn: 1,
        event: TransferEvent::Progress(JobProgress {
            job: job.id,
            files_done: 2140,
            files_total: 0,
            bytes_done: 8 * 1024 * 1024 + 400 * 1024,
            bytes_total: 0,
            current: Some("backups/2024/day-0140.log".into()),
            speed: 2.0 * 1024.0 * 1024.0,
            eta: None,
            scanning: true,
        }),
    });
    job
}

#[test]
fn a_download_still_scanning_shows_what_arrived() {
    let mut app = app(local_entries(), remote_entries(), 120, 16);
    scanning_download(&mut app);
    let screen = format!("{:?}", render(&mut app));
    assert!(screen.contains("2,140 files, 8.4 MiB"), "{screen}");
    assert!(!screen.contains("0 B / 0 B"), "{screen}");
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn a_cancelled_download_says_how_many_files_arrived() {
    let mut app = app(local_entries(), remote_entries(), 120, 16);
    let job = scanning_download(&mut app);
    for i in 0..3 {
        app.on_msg(Msg::Transfer {
            conn: 1,
            event: TransferEvent::FileDone {
                job: job.id,
                path: format!("backups/f{i}"),
                bytes: 10,
                digest: ferry_protocol::Digest::of(b"0123456789"),
            },
        });
    }
    app.on_msg(Msg::Transfer {
        conn: 1,
        event: TransferEvent::Finished {
            job: job.id,
            outcome: Err("cancelled".into()),
        },
    });
    let screen = format!("{:?}", render(&mut app));
    assert!(
        screen.contains("⊘ #1 backups: cancelled, 3 files arrived"),
        "{screen}"
    );
    assert!(
        !screen.contains('✓'),
        "a cancellation is no success: {screen}"
    );
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn a_jobs_details_list_what_it_left_out_with_why() {
    use crate::engine::{JobSummary, LeftOutReason};
    let mut app = app(local_entries(), remote_entries(), 120, 20);
    transfer(&mut app, 5, 10, 10, 0.0);
    for (path, reason, message) in [
        (
            "projects/private",
            LeftOutReason::Unreadable,
            "forbidden: Permission denied",
        ),
        (
            "projects/latest",
            LeftOutReason::Symlink,
            "a symlink: only files and directories are copied",
        ),
    ] {
        app.on_msg(Msg::Transfer {
            conn: 1,
            event: TransferEvent::LeftOut {
                job: JobId(5),
                path: path.into(),
                reason,
                message: message.into(),
            },
        });
    }
    app.on_msg(Msg::Transfer {
        conn: 1,
        event: TransferEvent::Finished {
            job: JobId(5),
            outcome: Ok(JobSummary {
                files: 1,
                bytes: 10,
                skipped: 2,
                failed: 0,
                elapsed: Duration::from_secs(1),
            }),
        },
    });
    let banner = format!("{:?}", render(&mut app));
    assert!(
        banner.contains("1 not copied, first: unreadable"),
        "{banner}"
    );
    app.on_key(key(crossterm::event::KeyCode::Char('t')));
    app.on_key(key(crossterm::event::KeyCode::Enter));
    let screen = render(&mut app);
    let text = format!("{screen:?}");
    assert!(
        text.contains("unreadable  projects/private  forbidden"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
    app.on_key(key(crossterm::event::KeyCode::Esc));
    assert!(app.dialog.is_none());
}

/// Entries with owners, and a link with its target, for the attribute columns.
fn attributed(mut entries: Vec<Entry>) -> Vec<Entry> {
    for (i, e) in entries.iter_mut().enumerate() {
        e.mode = if e.kind == Kind::File { 0o644 } else { 0o755 };
        e.owner = Some(ferry_protocol::Owner {
            uid: 1000 + i as u32,
            gid: 100,
            user: (i != 1).then(|| "ann".into()),
            group: Some("a-very-long-group-name".into()),
        });
        if e.kind == Kind::Symlink {
            e.mode = 0o777;
            e.target = Some("backups/2025".into());
        }
    }
    entries
}

#[test]
fn attribute_columns_and_a_links_target() {
    let mut app = app(
        attributed(local_entries()),
        attributed(remote_entries()),
        180,
        10,
    );
    app.on_key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('a'),
        crossterm::event::KeyModifiers::ALT,
    ));
    app.on_key(key(crossterm::event::KeyCode::Tab));
    app.on_key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('a'),
        crossterm::event::KeyModifiers::ALT,
    ));
    let screen = render(&mut app);
    let text = format!("{screen:?}");
    // An owner without a name shows its uid; a link says where it leads.
    assert!(text.contains("1001"), "{screen}");
    assert!(text.contains("latest@/ -> backups/2025"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn the_permissions_dialog() {
    let mut app = app(attributed(local_entries()), Vec::new(), 100, 24);
    app.on_key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('x'),
        crossterm::event::KeyModifiers::CONTROL,
    ));
    for c in ['c', '7', '5', '0'] {
        app.on_key(key(crossterm::event::KeyCode::Char(c)));
    }
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn find_file_while_the_search_runs() {
    let mut app = app(local_entries(), remote_entries(), 100, 20);
    app.on_key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('?'),
        crossterm::event::KeyModifiers::ALT,
    ));
    for c in "*.pdf".chars() {
        app.on_key(key(crossterm::event::KeyCode::Char(c)));
    }
    app.on_key(key(crossterm::event::KeyCode::Enter));
    let Some(Effect::Find { serial, .. }) = app.take_effects().pop() else {
        panic!("no search started")
    };
    app.on_msg(Msg::Found {
        serial,
        event: crate::engine::find::FindEvent::Found {
            paths: vec!["projects/q3/report.pdf".into(), "scan\n01.pdf".into()],
            scanned: 12_345,
        },
    });
    insta::assert_snapshot!(render(&mut app));
}

/// The left pane switched to the server (Alt+L), then connected to a second one (F9 there):
/// each title names its server, and a copy between them shows `→` in the transfer list.
#[test]
fn two_panes_on_two_servers_with_a_copy_between_them() {
    let mut app = app(local_entries(), remote_entries(), 120, 18);
    let feed = |app: &mut App, entries: &[Entry]| {
        for command in app.take_effects() {
            if let Effect::List { side, serial, dir } = command {
                app.on_msg(Msg::Listed {
                    side,
                    serial,
                    dir,
                    result: Ok(entries.to_vec()),
                });
            }
        }
    };
    app.on_key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('l'),
        crossterm::event::KeyModifiers::ALT,
    ));
    feed(&mut app, &remote_entries());
    app.connect("ferry://192.0.2.7:7070/", None);
    feed(&mut app, &local_entries());
    app.on_msg(Msg::Connection {
        conn: 2,
        event: ConnEvent::Connected {
            read_only: false,
            server: "ferry-server 0.1.0".into(),
            home: None,
        },
    });
    transfer(&mut app, 1, 300, 1000, 100.0);
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn sync_dialog_options_then_its_plan() {
    use crate::engine::sync::{self, Action, Why};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = app(local_entries(), remote_entries(), 100, 24);
    app.on_key(KeyEvent::new(KeyCode::Char('x'), KeyModifiers::CONTROL));
    app.on_key(key(KeyCode::Char('s')));
    // Delete on, checksum, one exclude pattern.
    for code in [
        KeyCode::Down,
        KeyCode::Char(' '),
        KeyCode::Down,
        KeyCode::Right,
        KeyCode::Down,
        KeyCode::Char('*'),
        KeyCode::Char('.'),
        KeyCode::Char('o'),
    ] {
        app.on_key(key(code));
    }
    insta::assert_snapshot!("sync_dialog_options", render(&mut app));
    let serial = crate::tui::sync_dialog::tests::ask_plan(&mut app);
    app.on_msg(Msg::SyncSeen {
        serial,
        seen: 12_345,
    });
    insta::assert_snapshot!("sync_dialog_planning", render(&mut app));
    let plan = sync::Plan {
        src: sync::Side::Local("/home/me".into()),
        dst: sync::Side::Remote(String::new()),
        actions: vec![
            Action::Create {
                rel: "new.txt".into(),
                size: 2048,
                mtime: T,
                mode: 0o644,
            },
            Action::Update {
                rel: "report.pdf".into(),
                size: 1_048_576,
                mtime: T,
                mode: 0o644,
                why: Why::Size,
                old: (10, T, 0o644),
            },
            Action::FixTime {
                rel: "same.txt".into(),
                mtime: T,
            },
            Action::Delete {
                rel: "extra.txt".into(),
                kind: Kind::File,
                listed: Some((3, T)),
            },
        ],
    };
    app.on_msg(Msg::SyncPlanned {
        serial,
        result: Ok(Box::new(plan)),
    });
    insta::assert_snapshot!("sync_dialog_plan", render(&mut app));
}
