//! The server link: connecting, reconnecting, certificates, passwords and typed addresses.

use super::*;
use crate::tui::dialogs::{masked_address, typed_address, without_prefill};

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
    assert!(app.take_effects().is_empty());
    app.on_key(ctrl('r'));
    assert_eq!(app.conn.state, ConnState::Connecting);
    assert!(app.take_effects().iter().any(|c| matches!(
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

/// Opens the connect dialog's "new address" field and types `text` (an address, then maybe a
/// token) and Enter.
fn type_address(app: &mut App, text: &str) {
    app.on_key(ch('c'));
    app.on_key(key(KeyCode::Enter));
    app.on_key(ctrl('u'));
    press_all(app, &text.chars().map(ch).collect::<Vec<_>>());
    app.on_key(key(KeyCode::Enter));
}

#[test]
fn a_typed_address_connects_and_is_remembered_without_its_token() {
    let mut app = app();
    type_address(&mut app, "ferry://nas:7070/media secret");
    let commands = app.take_effects();
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
    connected(&mut app, 2, true);
    // Connected is not enough: only a location that lists is remembered.
    assert!(app.take_effects().is_empty());
    remote_listed(&mut app);
    let commands = app.take_effects();
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

/// Connects to a `ferrys://` server and returns the new connection's id.
fn connect_tls(app: &mut App, url: &str) -> u64 {
    app.connect(url, Some("secret".into()));
    let commands = app.take_effects();
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
    assert!(app.take_effects().is_empty());

    app.on_key(ch('y'));
    assert_eq!(app.dialog, None);
    assert_eq!(app.conn.state, ConnState::Connecting);
    let commands = app.take_effects();
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
    connected(&mut app, conn, false);
    remote_listed(&mut app);
    let commands = app.take_effects();
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
    assert!(app.take_effects().is_empty());
    assert!(matches!(app.conn.state, ConnState::Lost(_)));
    let banner = app.banner.as_ref().unwrap();
    assert_eq!(banner.kind, BannerKind::Error);
    assert!(banner.text.contains("not trusted"), "{}", banner.text);
}

/// The engine's news of a changed certificate of `nas:7070`: `old` in known_hosts' line 3.
fn changed(old: Fingerprint, new: Fingerprint) -> ConnEvent {
    ConnEvent::CertificateRefused(crate::engine::browse::Refusal {
        addr: "nas:7070".into(),
        presented: Some(new),
        old: Some(old),
        pinned: false,
        recorded_at: Some(("/home/me/.local/share/ferry/known_hosts".into(), 3)),
        message: crate::engine::tls::changed_warning("nas:7070", &old, &new, "known_hosts"),
    })
}

#[test]
fn a_changed_certificate_names_where_the_old_one_is_and_only_y_replaces_it() {
    let mut app = app();
    let conn = connect_tls(&mut app, "ferrys://nas:7070/");
    let (old, new) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
    app.on_msg(Msg::Connection {
        conn,
        event: changed(old, new),
    });
    let Some(Dialog::CertificateChanged(shown)) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert_eq!((shown.old, shown.new), (old, new));
    assert_eq!(
        shown.held_in,
        "/home/me/.local/share/ferry/known_hosts, line 3"
    );
    assert!(matches!(app.conn.state, ConnState::Lost(_)));
    // Enter is no answer: a habitual key press must not accept a changed certificate.
    app.on_key(key(KeyCode::Enter));
    assert!(matches!(app.dialog, Some(Dialog::CertificateChanged(_))));
    assert!(app.take_effects().is_empty());
    app.on_key(ch('y'));
    assert_eq!(app.dialog, None);
    let commands = app.take_effects();
    assert!(
        commands.iter().any(|c| matches!(c,
            Effect::TrustCertificate { addr, fingerprint, .. }
                if addr == "nas:7070" && *fingerprint == new)),
        "{commands:?}"
    );

    // No leaves it refused.
    let conn = connect_tls(&mut app, "ferrys://nas:7070/");
    app.on_msg(Msg::Connection {
        conn,
        event: changed(old, new),
    });
    app.on_key(ch('n'));
    assert_eq!(app.dialog, None);
    assert!(
        !app.take_effects()
            .iter()
            .any(|c| matches!(c, Effect::TrustCertificate { .. }))
    );
}

#[test]
fn a_changed_pinned_certificate_names_the_bookmark_and_replaces_its_pin() {
    let mut app = app();
    let old = Fingerprint([1; 32]);
    app.bookmarks = vec![Bookmark {
        name: "home nas".into(),
        url: "ferrys://nas:7070/".into(),
        token: None,
        fingerprint: Some(bare_hex(&old)),
    }];
    app.config_path = Some("/home/me/.config/ferry/config.toml".into());
    app.connect_pinned("ferrys://nas:7070/", None, Some(&bare_hex(&old)));
    let conn = app.conn.id;
    app.take_effects();
    let new = Fingerprint([2; 32]);
    app.on_msg(Msg::Connection {
        conn,
        event: ConnEvent::CertificateRefused(crate::engine::browse::Refusal {
            addr: "nas:7070".into(),
            presented: Some(new),
            old: Some(old),
            pinned: true,
            recorded_at: None,
            message: "fingerprint_mismatch".into(),
        }),
    });
    let Some(Dialog::CertificateChanged(shown)) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert_eq!(
        shown.held_in,
        "the fingerprint of bookmark \"home nas\" in /home/me/.config/ferry/config.toml"
    );
    app.on_key(ch('y'));
    assert_eq!(app.bookmarks[0].fingerprint, Some(new.to_string()));
    let commands = app.take_effects();
    assert!(
        commands.iter().any(|c| matches!(c,
            Effect::PinBookmark { name, replacing: Some(was), .. }
                if name == "home nas" && *was == old)),
        "{commands:?}"
    );
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
    let commands = app.take_effects();
    let Some(Effect::Connect { endpoint, .. }) = commands.first() else {
        panic!("{commands:?}")
    };
    assert_eq!(endpoint.fingerprint, Some(pinned));

    // A malformed pin is an error, never a connection without one.
    app.on_key(ch('c'));
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Enter));
    assert!(app.take_effects().is_empty());
    assert!(banner_text(&app).contains("Bad fingerprint"));

    // Trusting a bookmark's new certificate pins it in the bookmark too.
    app.on_key(ch('c'));
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Enter));
    let conn = app.conn.id;
    app.take_effects();
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
        .take_effects()
        .into_iter()
        .filter_map(|command| match command {
            Effect::PinBookmark {
                path,
                name,
                fingerprint,
                replacing: None,
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
    app.take_effects();
    app.connect("ferry://ann@nas:7070/media", None);
    // Nothing leaves before the password is typed.
    assert!(app.take_effects().is_empty());
    let Some(Dialog::Input { title, purpose, .. }) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert_eq!(title, "Password for ann@nas:7070");
    assert!(matches!(purpose, InputPurpose::Password(_)));
    type_text(&mut app, " pass word ");
    app.on_key(key(KeyCode::Enter));
    let commands = app.take_effects();
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
    connected(&mut app, conn, false);
    remote_listed(&mut app);
    let commands = app.take_effects();
    let [Effect::SaveRecent(list)] = commands.as_slice() else {
        panic!("{commands:?}")
    };
    assert_eq!(list[0].url, "ferry://ann@nas:7070/media");
    assert_eq!(list[0].token, None);
}

#[test]
fn a_refused_password_is_shown_and_asked_again() {
    let mut app = app();
    app.take_effects();
    app.connect("ferry://ann@nas:7070/", None);
    type_text(&mut app, "wrong");
    app.on_key(key(KeyCode::Enter));
    let conn = app.conn.id;
    app.take_effects();
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
    let commands = app.take_effects();
    let Some(Effect::Connect { endpoint, .. }) = commands.first() else {
        panic!("{commands:?}")
    };
    assert_eq!(endpoint.password.as_deref(), Some("right"));
    // Esc on a password prompt connects nowhere.
    app.connect("ferry://bob@nas:7070/", None);
    app.take_effects();
    app.on_key(key(KeyCode::Esc));
    assert!(app.dialog.is_none());
    assert!(app.take_effects().is_empty());
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
    app.take_effects();
    new_address(&mut app, true, "ferry://ann@nas:7070/media");
    assert!(
        app.take_effects().is_empty(),
        "nothing sent before the password"
    );
    let Some(Dialog::Input { title, purpose, .. }) = &app.dialog else {
        panic!("the password prompt was dropped: {:?}", app.dialog)
    };
    assert_eq!(title, "Password for ann@nas:7070");
    assert!(matches!(purpose, InputPurpose::Password(_)));
    type_text(&mut app, "secret");
    app.on_key(key(KeyCode::Enter));
    let commands = app.take_effects();
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
    app.take_effects();
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
    let commands = app.take_effects();
    let Some(Effect::Connect { endpoint, .. }) = commands.first() else {
        panic!("{commands:?}")
    };
    assert!(endpoint.tls);
    assert_eq!((endpoint.host.as_str(), endpoint.port), ("::1", 17083));
    assert_eq!(app.conn.label, "[::1]:17083");

    // The pre-fill completed by a bare HOST:PORT still means `ferry://`.
    new_address(&mut app, false, "nas:7070/");
    let commands = app.take_effects();
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
fn a_bare_host_and_port_is_a_ferry_location_and_the_token_is_masked() {
    assert_eq!(typed_address("nas:7070"), "ferry://nas:7070");
    assert_eq!(typed_address("nas:7070/photos"), "ferry://nas:7070/photos");
    assert_eq!(
        typed_address("ferry://ferrys://nas:7070/"),
        "ferrys://nas:7070/"
    );
    assert_eq!(typed_address("ferry://nas:7070/"), "ferry://nas:7070/");
    let shown: String = masked_address("ferry://nas:7070/ s3cret")
        .into_iter()
        .collect();
    assert_eq!(shown, "ferry://nas:7070/ ••••••");
    let shown: String = masked_address("  nas:1").into_iter().collect();
    assert_eq!(shown, "  nas:1");
}

#[test]
fn a_read_only_connection_says_read_only_access() {
    let mut app = app();
    connected(&mut app, 1, true);
    app.focus = Focus::Pane(Side::Remote);
    app.update(Action::Mkdir);
    assert_eq!(app.dialog, None);
    let banner = app.banner.as_ref().unwrap();
    assert_eq!(
        banner.text,
        "Cannot make a directory: this connection has read-only access"
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

#[test]
fn an_scp_address_opens_the_remote_home_once_the_link_says_where_it_is() {
    let mut app = app();
    type_address(&mut app, "ann@nas:photos");
    let commands = app.take_effects();
    let [Effect::Connect { conn, endpoint }, Effect::List { dir, .. }] = commands.as_slice() else {
        panic!("{commands:?}")
    };
    // ssh logs in as ann: no ferry password is asked, and the status bar says ssh.
    assert!(app.dialog.is_none(), "{:?}", app.dialog);
    let ssh = endpoint.ssh.clone().unwrap();
    assert_eq!(
        (ssh.user.as_deref(), ssh.host.as_str()),
        (Some("ann"), "nas")
    );
    assert!(app.conn.summary().contains("ssh://ann@nas"));
    assert_eq!(*dir, Location::Remote(String::new()));
    app.on_msg(Msg::Connection {
        conn: *conn,
        event: ConnEvent::Connected {
            read_only: false,
            server: "ferry-server 0.1.0".into(),
            home: Some("home/ann".into()),
        },
    });
    let commands = app.take_effects();
    assert!(
        commands.iter().any(|c| matches!(c,
            Effect::List { dir: Location::Remote(d), .. } if d == "home/ann/photos")),
        "{commands:?}"
    );
}

#[test]
fn the_hosts_of_the_ssh_config_are_offered_and_open_their_home() {
    let mut app = app();
    app.ssh_hosts = vec!["nas".into()];
    app.on_key(ch('c'));
    let Some(Dialog::Connect { targets, .. }) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert_eq!(targets[0].url, "nas:");
    assert!(targets[0].label.contains("(ssh)"));
    app.on_key(key(KeyCode::Enter));
    let commands = app.take_effects();
    let Some(Effect::Connect { endpoint, .. }) = commands.first() else {
        panic!("{commands:?}")
    };
    assert_eq!(endpoint.ssh.as_ref().map(|t| t.host.as_str()), Some("nas"));
    assert!(app.conn.summary().contains("ssh://nas"));
}
