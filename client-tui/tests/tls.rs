//! `ferrys://` end to end: the real `ferry` binary against a real TLS server, with its own
//! HOME and XDG directories so the known-hosts file is the test's. Pins in every pasted form,
//! trust on first use, the loud refusal of a changed certificate, bytes verified both ways,
//! and no token in clear text to another machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{TestServer, bytes, ok, text};
use ferry::engine::known_hosts::Fingerprint;

/// A TLS server with a fresh self-signed certificate for 127.0.0.1, and that certificate's
/// fingerprint.
fn tls_server_on(bind: &'static str, root: tempfile::TempDir) -> (TestServer, Fingerprint) {
    let (tls, fingerprint) = common::tls_identity();
    let server = TestServer::start_on(bind, root, |config| config.tls = Some(tls));
    (server, fingerprint)
}

fn tls_server() -> (TestServer, Fingerprint) {
    tls_server_on("127.0.0.1:0", tempfile::tempdir().unwrap())
}

/// A user with an empty home: no known hosts, no config.
struct User {
    home: tempfile::TempDir,
}

impl User {
    fn new() -> User {
        User {
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn known_hosts(&self) -> PathBuf {
        self.home.path().join("data/ferry/known_hosts")
    }

    fn ferry(&self, args: &[&str]) -> Output {
        let home = self.home.path();
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(args)
            .current_dir(home)
            .env_remove("FERRY_TOKEN")
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_STATE_HOME", home.join("state"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .output()
            .unwrap()
    }
}

/// Asserts exit 1 and returns stderr, which must start with `ferry: CODE: `.
fn fails(output: Output, code: &str) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.starts_with(&format!("ferry: {code}: ")),
        "expected {code}, got {stderr}"
    );
    stderr
}

fn url(server: &TestServer, path: &str) -> String {
    format!("ferrys://127.0.0.1:{}/{path}", server.addr.port())
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn an_unknown_certificate_fails_naming_its_fingerprint() {
    let (server, fingerprint) = tls_server();
    std::fs::write(server.path("a.txt"), b"hi").unwrap();
    let user = User::new();
    let stderr = fails(
        user.ferry(&["ls", &url(&server, "")]),
        "unknown_certificate",
    );
    assert!(stderr.contains(&fingerprint.to_string()), "{stderr}");
    assert!(
        stderr.contains("--fingerprint") && stderr.contains("--accept-new"),
        "{stderr}"
    );
    assert!(
        !user.known_hosts().exists(),
        "nothing is recorded without consent"
    );
}

#[test]
fn a_pinned_fingerprint_lists_in_any_pasted_form() {
    let (server, fingerprint) = tls_server();
    std::fs::write(server.path("a.txt"), b"hi").unwrap();
    let user = User::new();
    let upper = fingerprint.to_string();
    let bare_lower = upper["SHA256:".len()..].replace(':', "").to_lowercase();
    for pin in [
        upper.clone(),
        bare_lower.clone(),
        format!("sha256:{bare_lower}"),
    ] {
        let out = ok(user.ferry(&["ls", "--fingerprint", &pin, &url(&server, "")]));
        assert!(
            text(&out.stdout).contains("a.txt"),
            "{pin}: {}",
            text(&out.stdout)
        );
    }
    assert!(!user.known_hosts().exists(), "a pin is not a first use");
}

#[test]
fn a_wrong_fingerprint_fails() {
    let (server, fingerprint) = tls_server();
    let user = User::new();
    let wrong = Fingerprint([0xAB; 32]).to_string();
    let stderr = fails(
        user.ferry(&["ls", "--fingerprint", &wrong, &url(&server, "")]),
        "fingerprint_mismatch",
    );
    assert!(stderr.contains(&fingerprint.to_string()), "{stderr}");
    assert!(stderr.contains(&wrong), "{stderr}");

    let usage = user.ferry(&["ls", "--fingerprint", "SHA256:12:34", &url(&server, "")]);
    assert_eq!(
        usage.status.code(),
        Some(2),
        "a malformed pin is a usage error"
    );
}

#[test]
fn accept_new_records_the_certificate_and_a_changed_one_is_refused_loudly() {
    let (server, first) = tls_server();
    std::fs::write(server.path("a.txt"), b"hi").unwrap();
    let port = server.addr.port();
    let user = User::new();

    let out = ok(user.ferry(&["ls", "--accept-new", &url(&server, "")]));
    assert!(text(&out.stdout).contains("a.txt"));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("trusting") && stderr.contains(&first.to_string()),
        "{stderr}"
    );
    let recorded = std::fs::read_to_string(user.known_hosts()).unwrap();
    assert_eq!(recorded, format!("127.0.0.1:{port} {first}\n"));

    // Known now: no flag needed, and nothing more is said.
    let out = ok(user.ferry(&["ls", &url(&server, "")]));
    assert!(text(&out.stdout).contains("a.txt"));
    assert_eq!(text(&out.stderr), "");

    // The same port, another certificate.
    drop(server);
    let bind: &'static str = Box::leak(format!("127.0.0.1:{port}").into_boxed_str());
    let (server, second) = tls_server_on(bind, tempfile::tempdir().unwrap());
    assert_ne!(first, second);
    for extra in [&[][..], &["--accept-new"][..]] {
        let mut args = vec!["ls"];
        args.extend_from_slice(extra);
        let target = url(&server, "");
        args.push(&target);
        let stderr = fails(user.ferry(&args), "certificate_changed");
        assert!(stderr.contains("HAS CHANGED"), "{stderr}");
        assert!(stderr.contains(&first.to_string()), "{stderr}");
        assert!(stderr.contains(&second.to_string()), "{stderr}");
        assert!(stderr.contains(p(&user.known_hosts())), "{stderr}");
        assert!(stderr.lines().count() >= 6, "loud, not one line: {stderr}");
    }
    let still = std::fs::read_to_string(user.known_hosts()).unwrap();
    assert_eq!(
        still, recorded,
        "--accept-new never replaces a recorded certificate"
    );

    // The owner confirms the new one: a pin gets through.
    let pin = second.to_string();
    ok(user.ferry(&["ls", "--fingerprint", &pin, &url(&server, "")]));
}

#[test]
fn get_and_put_over_tls_move_the_exact_bytes() {
    let (server, fingerprint) =
        tls_server_on("127.0.0.1:0", tempfile::tempdir_in("/dev/shm").unwrap());
    let pin = fingerprint.to_string();
    let user = User::new();
    let local = user.home.path().join("up");
    std::fs::create_dir_all(local.join("tree/sub")).unwrap();
    let big = bytes(5 * 1024 * 1024 + 3, 11);
    std::fs::write(local.join("big.bin"), &big).unwrap();
    std::fs::write(local.join("tree/one.txt"), b"one").unwrap();
    std::fs::write(local.join("tree/sub/two.bin"), bytes(70_000, 2)).unwrap();

    ok(user.ferry(&[
        "put",
        "--fingerprint",
        &pin,
        p(&local.join("big.bin")),
        &url(&server, ""),
    ]));
    assert!(std::fs::read(server.path("big.bin")).unwrap() == big);
    ok(user.ferry(&[
        "put",
        "-r",
        "--fingerprint",
        &pin,
        p(&local.join("tree")),
        &url(&server, ""),
    ]));
    assert_eq!(std::fs::read(server.path("tree/one.txt")).unwrap(), b"one");

    let down = user.home.path().join("down");
    std::fs::create_dir(&down).unwrap();
    ok(user.ferry(&[
        "get",
        "--fingerprint",
        &pin,
        &url(&server, "big.bin"),
        p(&down),
    ]));
    assert!(std::fs::read(down.join("big.bin")).unwrap() == big);
    ok(user.ferry(&[
        "get",
        "-r",
        "--fingerprint",
        &pin,
        &url(&server, "tree"),
        p(&down),
    ]));
    assert_eq!(
        std::fs::read(down.join("tree/sub/two.bin")).unwrap(),
        bytes(70_000, 2)
    );
}

/// An IPv4 address of this machine that is not loopback, if it has one.
fn non_loopback_address() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    text(&out.stdout)
        .split_whitespace()
        .find(|addr| {
            addr.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .map(str::to_owned)
}

#[test]
fn a_token_never_goes_to_another_machine_in_clear_text() {
    let user = User::new();
    // Refused before any connection: an address nothing answers on fails at once.
    let started = Instant::now();
    let stderr = fails(
        user.ferry(&["ls", "--token", "s3cret", "ferry://192.0.2.123:7070/"]),
        "cleartext_credentials",
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        stderr.contains("--insecure") && stderr.contains("ferrys://"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"));

    let Some(addr) = non_loopback_address() else {
        eprintln!("no non-loopback address here; the end-to-end half is skipped");
        return;
    };
    // A listener that records whatever reaches it.
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let target = format!("ferry://{addr}:{}/", listener.local_addr().unwrap().port());
    fails(
        user.ferry(&["ls", "--token", "s3cret", &target]),
        "cleartext_credentials",
    );
    assert!(listener.accept().is_err(), "not even a connection was made");

    // With --insecure the user takes the risk: the hello (and its token) does go out.
    let seen = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = stream.read(&mut buf).unwrap_or(0);
        buf.truncate(n);
        buf
    });
    let out = user.ferry(&["ls", "--insecure", "--token", "s3cret", &target]);
    assert!(!out.status.success());
    let seen = seen.join().unwrap();
    assert!(text(&seen).contains("s3cret"), "{}", text(&seen));
}

#[test]
fn a_pinned_certificate_without_its_key_is_refused() {
    use std::sync::Arc;
    // An impostor has the real certificate (it is public) but signs with its own key.
    let real = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let impostor = rcgen::KeyPair::generate().unwrap();
    let provider = rustls::crypto::ring::default_provider();
    let key = provider
        .key_provider
        .load_private_key(
            rustls::pki_types::PrivateKeyDer::try_from(impostor.serialize_der()).unwrap(),
        )
        .unwrap();
    let certified = rustls::sign::CertifiedKey::new(vec![real.cert.der().clone()], key);
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), |c| {
        c.tls = Some(Arc::new(config));
    });
    let pin = Fingerprint::of(real.cert.der()).to_string();
    let user = User::new();
    let stderr = fails(
        user.ferry(&["ls", "--fingerprint", &pin, &url(&server, "")]),
        "tls",
    );
    assert!(stderr.to_lowercase().contains("signature"), "{stderr}");
}

/// Starts the TUI at `target` in tmux as `user`, in a 110x32 terminal.
fn start_tui(user: &User, target: &str, name: &str) -> tmux::Tmux {
    let home = user.home.path();
    let (data, config, state, cache) = (
        home.join("data"),
        home.join("config"),
        home.join("state"),
        home.join("cache"),
    );
    tmux::start_ferry(
        home.join(format!("{name}.sock")),
        home,
        &[
            ("HOME", home),
            ("XDG_DATA_HOME", &data),
            ("XDG_CONFIG_HOME", &config),
            ("XDG_STATE_HOME", &state),
            ("XDG_CACHE_HOME", &cache),
        ],
        &[target],
        (110, 32),
    )
}

#[test]
fn the_tui_asks_before_trusting_and_refuses_a_changed_certificate() {
    tmux::require_tmux();
    let (server, first) = tls_server();
    std::fs::write(server.path("visible.txt"), b"hello").unwrap();
    let port = server.addr.port();
    let user = User::new();
    let target = url(&server, "");

    let tui = start_tui(&user, &target, "first");
    let hex = first.to_string();
    let (head, _) = hex.split_at("SHA256:".len() + 16 * 3);
    let screen = tui.wait_for("the trust question", |s| {
        s.contains("Unknown server certificate") && s.contains(head.trim_end_matches(':'))
    });
    assert!(
        !screen.contains("visible.txt"),
        "nothing is listed before trust:\n{screen}"
    );
    // Enter is no answer; y is.
    tui.keys(&["Enter"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(tui.screen().contains("Unknown server certificate"));
    assert!(!user.known_hosts().exists());
    tui.keys(&["y"]);
    tui.wait_for("the remote listing", |s| s.contains("visible.txt"));
    let recorded = std::fs::read_to_string(user.known_hosts()).unwrap();
    assert_eq!(recorded, format!("127.0.0.1:{port} {first}\n"));
    tui.keys(&["F10"]);
    tui.wait_for("the TUI to quit", |s| s.contains("EXIT=0"));
    drop(tui);

    // The same port, another certificate: the warning naming known_hosts' line, and nothing
    // listed; no (n) keeps the old one and connects to nothing.
    drop(server);
    let bind: &'static str = Box::leak(format!("127.0.0.1:{port}").into_boxed_str());
    let (server, second) = tls_server_on(bind, tempfile::tempdir().unwrap());
    std::fs::write(server.path("secret-listing.txt"), b"x").unwrap();
    let tui = start_tui(&user, &target, "second");
    let screen = tui.wait_for("the changed-certificate warning", |s| {
        s.contains("Server certificate changed") && s.contains("known_hosts, line 1")
    });
    assert!(!screen.contains("secret-listing.txt"), "{screen}");
    let presented = second.to_string();
    assert!(screen.contains(&presented[..40]), "{screen}");
    assert!(screen.contains(&hex[..40]), "{screen}");
    tui.keys(&["n"]);
    let screen = tui.wait_for("the dialog gone", |s| {
        !s.contains("Server certificate changed")
    });
    assert!(!screen.contains("secret-listing.txt"), "{screen}");
    assert_eq!(
        std::fs::read_to_string(user.known_hosts()).unwrap(),
        recorded
    );
}
