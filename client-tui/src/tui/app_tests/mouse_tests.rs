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

    app.on_mouse(mouse(MouseEventKind::Down(MouseButton::Left), 10, 3), t0);
    assert_eq!(current(&app), "a.txt");
    app.on_mouse(mouse(MouseEventKind::Up(MouseButton::Left), 10, 3), t0);
    app.on_mouse(mouse(MouseEventKind::Down(MouseButton::Left), 10, 2), t0);
    app.on_mouse(mouse(MouseEventKind::Up(MouseButton::Left), 10, 2), t0);
    app.on_mouse(
        mouse(MouseEventKind::Down(MouseButton::Left), 10, 2),
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
