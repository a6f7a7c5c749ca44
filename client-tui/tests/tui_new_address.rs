//! The real `ferry` TUI in tmux, connecting through F9 → "New address…" to a location that
//! names a user: the masked password prompt must appear (it used to be dropped with the address
//! dialog), and a location typed over the pre-filled `ferry://` must connect as typed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use std::path::Path;

use common::TestServer;

const PASSWORD: &str = "ann's passphrase";

/// A server with a users file holding `ann`, whose root is a directory of her own; returns the
/// server and the directory holding ann's root (`ann/`).
fn server_with_ann() -> (TestServer, tempfile::TempDir) {
    common::server_with_user("ann", PASSWORD, |_| {})
}

/// [`server_with_ann`] over TLS with a fresh self-signed certificate for 127.0.0.1.
fn tls_server_with_ann() -> (TestServer, tempfile::TempDir) {
    let (tls, _) = common::tls_identity();
    common::server_with_user("ann", PASSWORD, |config| config.tls = Some(tls))
}

/// `ferry` with no location (so it starts on its bundled server), in a fresh home.
fn start_tui(tmp: &Path) -> tmux::Tmux {
    tmux::require_tmux();
    let home = tmp.join("home");
    std::fs::create_dir(&home).unwrap();
    let tmux = tmux::start_ferry(
        tmp.join("tmux.sock"),
        tmp,
        &[("HOME", &home)],
        &[],
        (120, 30),
    );
    tmux.wait_for("the bundled server connected", |s| {
        s.contains("bundled server") && s.contains("connected")
    });
    tmux
}

/// F9, then Enter on "New address…" (the only row of a fresh connect list).
fn open_address_prompt(tmux: &tmux::Tmux) {
    tmux.keys(&["F9"]);
    tmux.wait_for("the connect list", |s| s.contains("New address"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the address prompt", |s| s.contains("Address: ferry://"));
}

/// Types the password into the prompt that must be showing, and waits for ann's root.
fn log_in(tmux: &tmux::Tmux, server: &TestServer) {
    type_password(tmux, server);
    see_ann_root(tmux, server);
}

fn type_password(tmux: &tmux::Tmux, server: &TestServer) {
    let title = format!("Password for ann@127.0.0.1:{}", server.addr.port());
    tmux.wait_for("the password prompt, port included", |s| s.contains(&title));
    tmux.keys(&["-l", PASSWORD]);
    let screen = tmux.wait_for("the masked password", |s| {
        s.contains(&"•".repeat(PASSWORD.chars().count()))
    });
    assert!(!screen.contains("passphrase"), "{screen}");
    tmux.keys(&["Enter"]);
}

fn see_ann_root(tmux: &tmux::Tmux, server: &TestServer) {
    let screen = tmux.wait_for("ann's root listed", |s| s.contains("ann.txt"));
    assert!(!screen.contains("server-root.txt"), "{screen}");
    assert!(
        screen.contains(&format!("127.0.0.1:{} connected", server.addr.port())),
        "{screen}"
    );
}

#[test]
fn a_new_address_with_a_user_asks_for_the_password_then_connects() {
    let (server, _ann) = server_with_ann();
    let tmp = tempfile::tempdir().unwrap();
    let tmux = start_tui(tmp.path());
    open_address_prompt(&tmux);
    // The tester's steps exactly: clear the field, type the whole location, Enter.
    tmux.keys(&["C-u"]);
    tmux.keys(&[
        "-l",
        &format!("ferry://ann@127.0.0.1:{}/", server.addr.port()),
    ]);
    tmux.keys(&["Enter"]);
    log_in(&tmux, &server);
    tmux.keys(&["F10"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
}

#[test]
fn a_location_typed_over_the_prefilled_scheme_connects_as_typed() {
    let (server, _ann) = server_with_ann();
    let tmp = tempfile::tempdir().unwrap();
    let tmux = start_tui(tmp.path());
    open_address_prompt(&tmux);
    // Pasted (or typed) after the pre-filled `ferry://`, as a user does without clearing it.
    tmux.keys(&[
        "-l",
        &format!("ferry://ann@127.0.0.1:{}/", server.addr.port()),
    ]);
    let typed = format!("ferry://ann@127.0.0.1:{}/", server.addr.port());
    let screen = tmux.wait_for("the location in the field", |s| s.contains(&typed));
    assert!(!screen.contains("ferry://ferry://"), "{screen}");
    tmux.keys(&["Enter"]);
    log_in(&tmux, &server);
    let screen = tmux.screen();
    assert!(!screen.contains("Bad address"), "{screen}");
    tmux.keys(&["F10"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
}

#[test]
fn a_new_ferrys_address_with_a_user_asks_for_the_password_then_the_certificate() {
    let (server, _ann) = tls_server_with_ann();
    let tmp = tempfile::tempdir().unwrap();
    let tmux = start_tui(tmp.path());
    open_address_prompt(&tmux);
    // The tester's location, pasted over the pre-fill.
    tmux.keys(&[
        "-l",
        &format!("ferrys://ann@127.0.0.1:{}/", server.addr.port()),
    ]);
    tmux.keys(&["Enter"]);
    type_password(&tmux, &server);
    tmux.wait_for("the trust question", |s| {
        s.contains("Unknown server certificate")
    });
    tmux.keys(&["y"]);
    see_ann_root(&tmux, &server);
    let known_hosts =
        std::fs::read_to_string(tmp.path().join("home/.local/share/ferry/known_hosts")).unwrap();
    assert!(
        known_hosts.starts_with(&format!("127.0.0.1:{} SHA256:", server.addr.port())),
        "{known_hosts}"
    );
    tmux.keys(&["F10"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
}
