//! F9's servers found on the local network: listed while the dialog browses, and an announced
//! fingerprint that is only a hint the handshake must confirm.

use super::*;
use crate::engine::discover::{DiscoverEvent, Found};

fn found(fingerprint: Option<Fingerprint>) -> Found {
    Found {
        name: "the nas".into(),
        addr: "10.0.0.5:7070".parse().unwrap(),
        tls: true,
        fingerprint: fingerprint.map(|fp| fp.to_string()),
        read_only: false,
        version: Some(1),
    }
}

/// F9, the browse started by the tick, `server` found, and its row picked: returns the
/// connection's id.
fn pick_discovered(app: &mut App, server: Found) -> u64 {
    app.take_effects();
    app.on_key(key(KeyCode::F(9)));
    app.tick(Instant::now());
    assert!(
        app.take_effects()
            .iter()
            .any(|e| matches!(e, Effect::Discover(true))),
        "the browse starts while the dialog is open"
    );
    app.on_msg(Msg::Discovered(DiscoverEvent::Found(server)));
    let Some(Dialog::Connect { targets, .. }) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    let row = targets.last().unwrap();
    assert!(
        row.label.contains("the nas") && row.label.contains("[tls]"),
        "{row:?}"
    );
    assert_eq!(row.url, "ferrys://10.0.0.5:7070/");
    assert_eq!(row.fingerprint, None, "an announcement is never a pin");
    app.on_key(key(KeyCode::End));
    app.on_key(key(KeyCode::Up));
    app.on_key(key(KeyCode::Enter));
    let effects = app.take_effects();
    let Some(Effect::Connect { conn, endpoint }) = effects.first() else {
        panic!("{effects:?}")
    };
    assert_eq!((endpoint.host.as_str(), endpoint.tls), ("10.0.0.5", true));
    assert_eq!(endpoint.fingerprint, None);
    assert_eq!(
        endpoint.token, None,
        "no credentials to a server for announcing itself"
    );
    *conn
}

fn presented(app: &mut App, conn: u64, fingerprint: Fingerprint) {
    app.on_msg(Msg::Connection {
        conn,
        event: ConnEvent::UnknownCertificate {
            addr: "10.0.0.5:7070".into(),
            fingerprint,
        },
    });
}

#[test]
fn the_announced_certificate_is_trusted_once_the_handshake_shows_it() {
    let mut app = app();
    let conn = pick_discovered(&mut app, found(Some(Fingerprint([5; 32]))));
    presented(&mut app, conn, Fingerprint([5; 32]));
    assert_eq!(
        app.dialog, None,
        "nothing to ask: the handshake showed the announced one"
    );
    assert!(app.take_effects().iter().any(|e| matches!(
        e,
        Effect::TrustCertificate { fingerprint, .. } if *fingerprint == Fingerprint([5; 32])
    )));
    // Closed, the dialog stops the browse and forgets what it found.
    app.tick(Instant::now());
    assert!(
        app.take_effects()
            .iter()
            .any(|e| matches!(e, Effect::Discover(false)))
    );
}

#[test]
fn a_certificate_other_than_the_announced_one_is_asked_about_with_a_line_saying_so() {
    let mut app = app();
    let conn = pick_discovered(&mut app, found(Some(Fingerprint([5; 32]))));
    presented(&mut app, conn, Fingerprint([6; 32]));
    assert_eq!(
        app.dialog,
        Some(Dialog::Trust {
            addr: "10.0.0.5:7070".into(),
            fingerprint: Fingerprint([6; 32])
        })
    );
    let banner = app.banner.clone().unwrap();
    assert!(
        banner
            .text
            .contains("differs from the one announced on the network"),
        "{}",
        banner.text
    );
    assert!(
        !app.take_effects()
            .iter()
            .any(|e| matches!(e, Effect::TrustCertificate { .. }))
    );
}

#[test]
fn a_server_announcing_no_fingerprint_gets_the_usual_question() {
    let mut app = app();
    let conn = pick_discovered(&mut app, found(None));
    presented(&mut app, conn, Fingerprint([6; 32]));
    assert!(
        matches!(app.dialog, Some(Dialog::Trust { .. })),
        "{:?}",
        app.dialog
    );
}

#[test]
fn a_server_found_while_new_address_is_selected_leaves_it_selected() {
    let mut app = app();
    app.on_key(key(KeyCode::F(9)));
    app.tick(Instant::now());
    app.on_msg(Msg::Discovered(DiscoverEvent::Found(found(None))));
    app.on_key(key(KeyCode::Enter));
    assert!(
        matches!(app.dialog, Some(Dialog::Input { .. })),
        "Enter on the fresh list's only row asks for an address: {:?}",
        app.dialog
    );
}
