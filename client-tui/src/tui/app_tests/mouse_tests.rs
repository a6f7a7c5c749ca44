//! Clicks, double clicks, the wheel, drags, and a click on the transfer list.

use super::*;

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

    // The local pane is not at the root: row 2 is `..`, so its entries start a row lower.
    app.on_mouse(mouse(MouseEventKind::Down(MouseButton::Left), 10, 4), t0);
    assert_eq!(current(&app), "a.txt");
    app.on_mouse(mouse(MouseEventKind::Up(MouseButton::Left), 10, 4), t0);
    app.on_mouse(mouse(MouseEventKind::Down(MouseButton::Left), 10, 3), t0);
    app.on_mouse(mouse(MouseEventKind::Up(MouseButton::Left), 10, 3), t0);
    app.on_mouse(
        mouse(MouseEventKind::Down(MouseButton::Left), 10, 3),
        t0 + Duration::from_millis(200),
    );
    let commands = app.take_effects();
    assert!(
        matches!(&commands[..], [Effect::List { dir, .. }] if *dir == Location::Local("/home/me/docs".into())),
        "{commands:?}"
    );
    answer_lists(&mut app, commands, local_entries());
    app.on_key(key(KeyCode::Backspace));
    settle(&mut app);

    app.on_mouse(mouse(MouseEventKind::ScrollDown, 10, 6), t0);
    assert_eq!(app.local.offset, 0, "nothing to scroll in four entries");

    app.on_mouse(
        mouse(MouseEventKind::Down(MouseButton::Left), 10, 6),
        t0 + Duration::from_secs(5),
    );
    app.on_mouse(
        mouse(MouseEventKind::Drag(MouseButton::Left), 40, 6),
        t0 + Duration::from_secs(5),
    );
    app.on_mouse(
        mouse(MouseEventKind::Up(MouseButton::Left), 80, 6),
        t0 + Duration::from_secs(5),
    );
    let commands = app.take_effects();
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
fn double_click_on_dotdot_goes_up_and_it_cannot_be_dragged() {
    let mut app = app();
    let t0 = Instant::now();
    let down = |column, row| mouse(MouseEventKind::Down(MouseButton::Left), column, row);
    let up = |column, row| mouse(MouseEventKind::Up(MouseButton::Left), column, row);
    // A drag from `..` to the other pane copies nothing.
    app.on_mouse(down(10, 2), t0);
    assert!(app.local.on_parent_row());
    app.on_mouse(
        mouse(MouseEventKind::Drag(MouseButton::Left), 40, 2),
        t0 + Duration::from_secs(1),
    );
    app.on_mouse(up(80, 4), t0 + Duration::from_secs(1));
    let commands = app.take_effects();
    assert!(commands.is_empty(), "{commands:?}");
    // A double click on it lists the parent, with the cursor on the directory left.
    app.on_mouse(down(10, 2), t0 + Duration::from_secs(5));
    app.on_mouse(up(10, 2), t0 + Duration::from_secs(5));
    app.on_mouse(down(10, 2), t0 + Duration::from_millis(5200));
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
        ],
    );
    assert_eq!(current(&app), "me");
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

/// The status bar as drawn at the app's size, and the column where `label` starts in it.
fn drawn_column(app: &mut App, label: &str) -> Option<u16> {
    app.sync_layout();
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(app.size.0, app.size.1)).unwrap();
    terminal.draw(|frame| ui::draw(frame, &app.view())).unwrap();
    let buffer = terminal.backend().buffer();
    let y = app.size.1 - 1;
    let row: Vec<String> = (0..app.size.0)
        .map(|x| buffer[(x, y)].symbol().to_string())
        .collect();
    (0..app.size.0).find(|&x| {
        label.chars().enumerate().all(|(i, c)| {
            row.get(usize::from(x) + i)
                .is_some_and(|s| *s == c.to_string())
        })
    })
}

#[test]
fn a_click_on_a_key_hint_does_what_the_key_does() {
    let click = |app: &mut App, x, y| {
        app.on_mouse(
            mouse(MouseEventKind::Down(MouseButton::Left), x, y),
            Instant::now(),
        );
    };
    let mut app = app();
    app.resize(120, 30);
    // F7 mkdir: a click on its last letter opens the prompt, as F7 does.
    let x = drawn_column(&mut app, "F7 mkdir").expect("F7 is drawn");
    click(&mut app, x + 7, 29);
    assert!(
        matches!(app.dialog, Some(Dialog::Input { .. })),
        "{:?}",
        app.dialog
    );
    app.on_key(key(KeyCode::Esc));
    // The gap before it and the server summary do nothing.
    click(&mut app, x - 1, 29);
    click(&mut app, 2, 29);
    assert!(app.dialog.is_none(), "{:?}", app.dialog);
    let x = drawn_column(&mut app, "F10 quit").expect("F10 is drawn");
    click(&mut app, x, 29);
    assert!(app.should_quit);

    // Narrower, with hints dropped: the clicks follow what is drawn.
    let mut narrow = super::app();
    narrow.resize(80, 24);
    assert_eq!(drawn_column(&mut narrow, "F9 connect"), None);
    let x = drawn_column(&mut narrow, "F1 help").expect("F1 is drawn");
    click(&mut narrow, x + 3, 23);
    assert!(
        matches!(narrow.dialog, Some(Dialog::Help { .. })),
        "{:?}",
        narrow.dialog
    );
}
