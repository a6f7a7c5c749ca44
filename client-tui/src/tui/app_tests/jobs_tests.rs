//! Copies and moves from the keys to the transfer list: submitting, progress, conflicts,
//! cancelling, and what a job's end says.

use super::*;
use crate::engine::FileFacts;

#[test]
fn f5_uploads_the_marked_entries_and_f6_moves() {
    let mut app = app();
    press_all(
        &mut app,
        &[
            ch('j'),
            ch(' '),
            ch(' '),
            key(KeyCode::F(5)),
            key(KeyCode::Enter),
        ],
    );
    let commands = app.take_effects();
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
    app.on_key(key(KeyCode::Enter));
    let commands = app.take_effects();
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
    assert!(app.take_effects().is_empty());
    assert_eq!(app.banner.as_ref().unwrap().kind, BannerKind::Error);
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
    assert_eq!(crate::tui::jobs::percent(app.transfers.jobs[0].ratio()), 42);
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
    let commands = app.take_effects();
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
    assert_eq!(app.conflicts.len(), 1);
    // Keys go to the question, not the panes.
    press_all(&mut app, &[ch('j'), ch('a'), key(KeyCode::Right)]);
    assert_eq!(app.conflicts[0].selected, 1);
    assert!(app.conflicts[0].apply_to_all);
    app.on_key(ch('r'));
    assert!(app.conflicts.is_empty());
    let Some(Effect::Answer { reply, answer }) = app.take_effects().pop() else {
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
    app.on_key(key(KeyCode::Esc));
    let Some(Effect::Answer { answer, .. }) = app.take_effects().pop() else {
        panic!()
    };
    assert_eq!(answer.choice, ConflictPolicy::Skip);
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
    assert!(matches!(&app.take_effects()[..], [Effect::Cancel(k)] if *k == job));

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
    assert!(matches!(&app.take_effects()[..], [Effect::Cancel(k)] if *k == job));
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.focus, Focus::Pane(Side::Local));
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

/// Submits a copy of the entry under the local cursor as job `id` of connection `conn`.
fn submit_as(app: &mut App, conn: u64, id: u64) -> JobKey {
    app.on_key(key(KeyCode::F(5)));
    app.on_key(key(KeyCode::Enter));
    let Some(Effect::Submit { info, .. }) = app.take_effects().pop() else {
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
    connected(&mut app, 2, false);
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
    let commands = app.take_effects();
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
    assert!(app.take_effects().is_empty());
    app.on_msg(Msg::Connection {
        conn: 1,
        event: ConnEvent::Lost("connection: 127.0.0.1:7878: refused".into()),
    });
    assert!(matches!(app.conn.state, ConnState::Lost(_)));
}

#[test]
fn a_typed_destination_is_made_first_and_an_existing_one_is_as_good() {
    let mut app = app();
    // The cursor on `a.txt`, F5, and a new directory typed under the remote one.
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::F(5)));
    assert!(matches!(app.dialog, Some(Dialog::Copy(_))));
    press_all(&mut app, &[ch('n'), ch('e'), ch('w'), key(KeyCode::Enter)]);
    assert!(app.dialog.is_none());
    let effects = app.take_effects();
    let [Effect::Mkdir { side, path }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(
        (*side, path),
        (Side::Remote, &Location::Remote("new".into()))
    );
    // It exists already (another client made it): the copy goes in all the same.
    app.on_msg(Msg::OpDone {
        side: Side::Remote,
        result: Err("already_exists: new: a directory of that name exists".into()),
    });
    assert!(app.banner.is_none());
    let effects = app.take_effects();
    let Some(Effect::Submit {
        spec: JobSpec::Upload { items, policy, .. },
        info,
    }) = effects.last()
    else {
        panic!("{effects:?}")
    };
    assert_eq!(
        items,
        &[(PathBuf::from("/home/me/a.txt"), "new/a.txt".to_string())]
    );
    assert_eq!(*policy, ConflictPolicy::Ask);
    assert_eq!(info.dest_dir, Location::Remote("new".into()));

    // A destination that cannot be made copies nothing and says why.
    app.on_key(key(KeyCode::F(5)));
    press_all(
        &mut app,
        &[ch('x'), key(KeyCode::Down), key(KeyCode::Enter)],
    );
    app.take_effects();
    app.on_msg(Msg::OpDone {
        side: Side::Remote,
        result: Err("forbidden: x: read-only".into()),
    });
    assert!(
        !app.take_effects()
            .iter()
            .any(|e| matches!(e, Effect::Submit { .. }))
    );
    assert!(banner_text(&app).contains("cannot make the destination /x"));

    // Escape copies nothing.
    app.on_key(key(KeyCode::F(5)));
    app.on_key(key(KeyCode::Esc));
    assert!(app.dialog.is_none());
    assert!(app.take_effects().is_empty());
}

#[test]
fn ctrl_x_then_d_compares_and_marks_what_the_other_pane_lacks() {
    let mut app = app();
    app.on_key(ctrl('x'));
    assert!(app.local.marks.is_empty(), "the first key waits");
    app.on_key(ch('d'));
    let mut marked: Vec<&str> = app.local.marks.iter().map(String::as_str).collect();
    marked.sort_unstable();
    assert_eq!(marked, ["a.txt", "b.bin", "c.log", "docs"]);
    assert!(banner_text(&app).contains("Local: 4 marked: 4 missing there"));
    // A sequence that means nothing is dropped whole: `d` does not start a quick jump.
    app.local.marks.clear();
    app.on_key(ctrl('x'));
    app.on_key(ch('q'));
    assert!(!app.should_quit && app.local.jump.is_none());
    // Without the remote listing (a lost connection), nothing is compared.
    app.remote.error = Some("connection refused".into());
    app.on_key(ch('='));
    assert!(app.local.marks.is_empty());
    assert!(banner_text(&app).contains("Nothing compared"));
}

#[test]
fn a_big_job_s_counts_carry_thousands_separators() {
    let mut app = app();
    finished_job(
        &mut app,
        Side::Remote,
        vec![],
        summary(20_000, 3 << 30, 1_234, 0),
    );
    let banner = app.banner.as_ref().unwrap();
    assert!(
        banner
            .text
            .ends_with("copied: 20,000 files verified, 3 GiB sent, 1,234 skipped"),
        "{}",
        banner.text
    );
}
