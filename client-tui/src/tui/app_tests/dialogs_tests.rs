//! The dialogs' keys and questions: delete, mkdir and rename prompts, help, connect.

use super::*;

#[test]
fn delete_asks_first() {
    let mut app = app();
    app.on_key(key(KeyCode::F(8)));
    assert!(
        matches!(&app.dialog, Some(Dialog::Confirm { message, .. }) if message == "Delete directory docs and everything in it?")
    );
    app.on_key(ch('n'));
    assert!(app.dialog.is_none());
    assert!(app.take_effects().is_empty());
    app.on_key(key(KeyCode::Delete));
    app.on_key(ch('y'));
    let commands = app.take_effects();
    assert!(
        matches!(&commands[..], [Effect::Remove { side: Side::Local, paths }] if paths == &[Location::Local("/home/me/docs".into())])
    );
}

#[test]
fn mkdir_and_rename_prompts() {
    let mut app = app();
    app.on_key(key(KeyCode::F(7)));
    press_all(&mut app, &[ch('n'), ch('e'), ch('w'), key(KeyCode::Enter)]);
    let commands = app.take_effects();
    assert!(
        matches!(&commands[..], [Effect::Mkdir { side: Side::Local, path }] if *path == Location::Local("/home/me/new".into()))
    );

    app.on_key(key(KeyCode::F(7)));
    press_all(&mut app, &[ch('a'), ch('/'), ch('b'), key(KeyCode::Enter)]);
    assert!(app.take_effects().is_empty());
    assert!(banner_text(&app).contains("not a valid name"));

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
    let commands = app.take_effects();
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
fn help_lists_the_live_keymap_and_closes() {
    let mut app = app();
    app.on_key(key(KeyCode::F(1)));
    assert!(matches!(app.dialog, Some(Dialog::Help { .. })));
    app.on_key(key(KeyCode::Esc));
    assert!(app.dialog.is_none());
    app.on_key(ch('?'));
    assert!(matches!(app.dialog, Some(Dialog::Help { .. })));
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
