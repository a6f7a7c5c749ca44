//! Authentication against a real server on loopback: a users file with two accounts on their
//! own roots (one read-only), the token beside it, the delay and the limit on failed attempts,
//! oversized credentials, and the gate that lets nothing but `hello` through before success.
//! The real binary is driven too: `hash-password`, secure-by-default, and logs without secrets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Client, STEP, Server, code, names, users_file};
use serde_json::{Value, json};

const ANN_PASSWORD: &str = "correct horse battery staple";
const BOB_PASSWORD: &str = "bob's secret";

/// Two accounts on their own roots: ann may write, bob only read.
struct Accounts {
    _base: tempfile::TempDir,
    ann_root: PathBuf,
    bob_root: PathBuf,
    file: PathBuf,
}

fn accounts() -> Accounts {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().canonicalize().unwrap();
    let ann_root = dir.join("ann");
    let bob_root = dir.join("bob");
    std::fs::create_dir(&ann_root).unwrap();
    std::fs::create_dir(&bob_root).unwrap();
    std::fs::write(ann_root.join("ann.txt"), b"ann's").unwrap();
    std::fs::write(bob_root.join("bob.txt"), b"bob's").unwrap();
    let file = dir.join("users");
    users_file(
        &file,
        &[
            ("ann", ANN_PASSWORD, &ann_root, false),
            ("bob", BOB_PASSWORD, &bob_root, true),
        ],
    );
    Accounts {
        _base: base,
        ann_root,
        bob_root,
        file,
    }
}

async fn start(accounts: &Accounts, delay: Duration, token: Option<&str>) -> Server {
    let users = ferry_server::users::Users::load(&accounts.file).unwrap();
    Server::start_with(|config| {
        config.users = Some(Arc::new(users));
        config.auth_delay = delay;
        config.token = token.map(str::to_owned);
    })
    .await
}

fn login(user: &str, password: &str) -> Value {
    json!({"op": "hello", "version": 1, "user": user, "password": password})
}

async fn logged_in(server: &Server, user: &str, password: &str) -> Client {
    let mut client = Client::connect(server.addr).await;
    let reply = client.request(login(user, password)).await;
    assert_eq!(reply["ok"], true, "{user} logs in: {reply}");
    client
}

async fn list(client: &mut Client, path: &str) -> Vec<String> {
    let (entries, _, _) = client.list_all("list", path).await.unwrap();
    names(&entries)
}

#[tokio::test]
async fn each_user_reaches_only_their_own_root_and_a_read_only_user_changes_nothing() {
    let accounts = accounts();
    let server = start(&accounts, Duration::from_millis(10), None).await;
    std::fs::write(server.path("server.txt"), b"server root").unwrap();

    let mut ann = logged_in(&server, "ann", ANN_PASSWORD).await;
    assert_eq!(list(&mut ann, "").await, ["ann.txt"]);
    let put = ann.put("new.txt", b"from ann", json!({})).await;
    assert_eq!(put["ok"], true, "{put}");
    assert_eq!(
        std::fs::read(accounts.ann_root.join("new.txt")).unwrap(),
        b"from ann"
    );
    assert!(!accounts.bob_root.join("new.txt").exists());
    assert!(!server.path("new.txt").exists());
    let escape = ann
        .request(json!({"op": "stat", "path": "../bob/bob.txt"}))
        .await;
    assert_eq!(code(&escape), "bad_path");
    let (_, bytes, _) = ann.get("ann.txt", 0).await.unwrap();
    assert_eq!(bytes, b"ann's");

    let mut bob = Client::connect(server.addr).await;
    let hello = bob.request(login("bob", BOB_PASSWORD)).await;
    assert_eq!(hello["read_only"], true, "{hello}");
    assert_eq!(list(&mut bob, "").await, ["bob.txt"]);
    let refused = [
        json!({"op": "mkdir", "path": "d"}),
        json!({"op": "rename", "path": "bob.txt", "to": "b.txt"}),
        json!({"op": "remove", "path": "bob.txt"}),
    ];
    for request in refused {
        let reply = bob.request(request.clone()).await;
        assert_eq!(code(&reply), "forbidden", "{request}: {reply}");
    }
    // The refused upload's payload is skipped: the next request is read where it starts.
    let put = bob.put("x.txt", b"payload bytes", json!({})).await;
    assert_eq!(code(&put), "forbidden", "{put}");
    let (_, bytes, _) = bob.get("bob.txt", 0).await.unwrap();
    assert_eq!(bytes, b"bob's");
    let mut on_disk: Vec<_> = std::fs::read_dir(&accounts.bob_root)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, ["bob.txt"]);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_are_refused_alike_after_the_delay() {
    let accounts = accounts();
    let delay = Duration::from_millis(400);
    let server = start(&accounts, delay, None).await;
    let mut answers = Vec::new();
    for (user, password) in [("ann", "wrong"), ("nobody", "wrong"), ("ann", "")] {
        let mut client = Client::connect(server.addr).await;
        let started = Instant::now();
        let reply = client.request(login(user, password)).await;
        let took = started.elapsed();
        assert_eq!(code(&reply), "unauthorized", "{user}: {reply}");
        assert!(
            took >= delay,
            "{user}: answered after {took:?}, before the delay"
        );
        answers.push(reply["error"]["message"].clone());
        // Still unauthenticated.
        let stat = client.request(json!({"op": "stat", "path": ""})).await;
        assert_eq!(code(&stat), "unauthorized");
    }
    assert_eq!(
        answers[0], answers[1],
        "an unknown user reads like a wrong password"
    );
    // A user name needs a password: the token alone is not enough on a users-only server.
    let mut client = Client::connect(server.addr).await;
    let reply = client
        .request(json!({"op": "hello", "version": 1, "token": "anything"}))
        .await;
    assert_eq!(code(&reply), "unauthorized", "{reply}");
}

#[tokio::test]
async fn the_third_failure_closes_the_connection_while_others_are_served() {
    let accounts = accounts();
    let delay = Duration::from_millis(500);
    let server = start(&accounts, delay, None).await;
    let mut guesser = Client::connect(server.addr).await;
    let started = Instant::now();
    // Three guesses at once: the answers come one delay apart.
    for guess in ["a", "b", "c"] {
        guesser.send_json(&login("ann", guess)).await;
    }
    let served = tokio::spawn({
        let addr = server.addr;
        async move {
            let mut ann = Client::connect(addr).await;
            let reply = ann.request(login("ann", ANN_PASSWORD)).await;
            assert_eq!(reply["ok"], true, "{reply}");
            let stat = ann.request(json!({"op": "stat", "path": "ann.txt"})).await;
            assert_eq!(stat["ok"], true, "{stat}");
            Instant::now()
        }
    });
    for _ in 0..3 {
        let reply = guesser.read_reply().await;
        assert_eq!(code(&reply), "unauthorized", "{reply}");
    }
    let guessed = Instant::now();
    assert!(guessed - started >= delay * 3, "each failure waited");
    assert!(
        guesser.closed().await,
        "the third failure closes the connection"
    );
    let other_done = served.await.unwrap();
    assert!(
        other_done < guessed,
        "the other client was served during the guesser's delays"
    );
}

#[tokio::test]
async fn credentials_over_a_kibibyte_are_refused_at_once() {
    let accounts = accounts();
    // A delay long enough that an answer before it proves no hashing and no wait happened.
    let server = start(&accounts, Duration::from_secs(5), Some("tok")).await;
    let long = "p".repeat(2048);
    for hello in [
        login("ann", &long),
        login(&long, "pw"),
        json!({"op": "hello", "version": 1, "token": long}),
    ] {
        let mut client = Client::connect(server.addr).await;
        let started = Instant::now();
        let reply = client.request(hello).await;
        assert_eq!(code(&reply), "bad_request", "{reply}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "refused in {:?}",
            started.elapsed()
        );
        let stat = client.request(json!({"op": "stat", "path": ""})).await;
        assert_eq!(code(&stat), "unauthorized");
    }
}

#[tokio::test]
async fn nothing_but_hello_is_served_before_a_login() {
    let accounts = accounts();
    let server = start(&accounts, Duration::from_millis(10), None).await;
    let requests = [
        json!({"op": "stat", "path": "ann.txt"}),
        json!({"op": "list", "path": ""}),
        json!({"op": "walk", "path": ""}),
        json!({"op": "summary", "path": ""}),
        json!({"op": "get", "path": "ann.txt"}),
        json!({"op": "partial", "path": "ann.txt"}),
        json!({"op": "mkdir", "path": "d"}),
        json!({"op": "rename", "path": "ann.txt", "to": "b.txt"}),
        json!({"op": "remove", "path": "ann.txt"}),
    ];
    // Three to a connection: the fourth request before a login would close it.
    for some in requests.chunks(3) {
        let mut client = Client::connect(server.addr).await;
        for request in some {
            let reply = client.request(request.clone()).await;
            assert_eq!(code(&reply), "unauthorized", "{request}: {reply}");
        }
    }
    assert!(!accounts.ann_root.join("d").exists());
    assert!(accounts.ann_root.join("ann.txt").exists());
    let mut client = Client::connect(server.addr).await;
    // An upload's payload (and trailer) is skipped, so the connection stays in step.
    let put = client
        .put(
            "sneaky.txt",
            b"{\"op\":\"remove\"}\n",
            json!({"trailer": false}),
        )
        .await;
    assert_eq!(code(&put), "unauthorized", "{put}");
    client
        .send_json(&json!({"op": "put", "path": "t.txt", "size": 3, "trailer": true}))
        .await;
    client.send(b"abc").await;
    client
        .send_json(&json!({"digest": common::digest(b"abc")}))
        .await;
    assert_eq!(code(&client.read_reply().await), "unauthorized");
    let reply = client.request(login("ann", ANN_PASSWORD)).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(list(&mut client, "").await, ["ann.txt"]);
}

#[tokio::test]
async fn the_token_serves_the_server_root_beside_the_users() {
    let accounts = accounts();
    let server = start(&accounts, Duration::from_millis(10), Some("tok")).await;
    std::fs::write(server.path("server.txt"), b"server root").unwrap();
    let mut client = Client::connect(server.addr).await;
    let reply = client
        .request(json!({"op": "hello", "version": 1, "token": "tok"}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(list(&mut client, "").await, ["server.txt"]);
    // A user name selects the users file: the right token does not stand in for a password.
    let mut client = Client::connect(server.addr).await;
    let reply = client
        .request(
            json!({"op": "hello", "version": 1, "token": "tok", "user": "ann", "password": "no"}),
        )
        .await;
    assert_eq!(code(&reply), "unauthorized", "{reply}");
    let mut ann = logged_in(&server, "ann", ANN_PASSWORD).await;
    assert_eq!(list(&mut ann, "").await, ["ann.txt"]);
}

#[tokio::test]
async fn a_token_only_server_works_as_before_and_has_no_users() {
    let server = Server::start_with(|config| {
        config.token = Some("tok".into());
        config.auth_delay = Duration::from_millis(10);
    })
    .await;
    let mut client = Client::connect(server.addr).await;
    let reply = client.request(login("ann", ANN_PASSWORD)).await;
    assert_eq!(code(&reply), "unauthorized", "{reply}");
    let reply = client
        .request(json!({"op": "hello", "version": 1, "token": "tok"}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
}

#[tokio::test]
async fn overlapping_roots_share_one_writer_per_file() {
    // ann's root holds bob's: the same file under two names must still have one writer.
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().canonicalize().unwrap();
    let inner = dir.join("inner");
    std::fs::create_dir(&inner).unwrap();
    let users = users_file(
        &dir.join("users"),
        &[("outer", "pw", &dir, false), ("inner", "pw", &inner, false)],
    );
    let server = Server::start_with(|config| config.users = Some(Arc::new(users))).await;
    let mut outer = logged_in(&server, "outer", "pw").await;
    let mut inner_client = logged_in(&server, "inner", "pw").await;
    // outer starts a big upload and stops half-way, holding the file.
    outer
        .send_json(&json!({"op": "put", "path": "inner/f.bin", "size": 1_000_000}))
        .await;
    outer.send(&vec![0u8; 1000]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reply = inner_client.put("f.bin", b"other", json!({})).await;
    assert_eq!(code(&reply), "busy", "{reply}");
}

// --- the real binary ---

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry-server"));
    command.env_remove("FERRY_TOKEN").env("RUST_LOG", "debug");
    command
}

/// Runs `hash-password` with the password on stdin; returns its status and stderr.
fn hash_password(args: &[&str], password: &str) -> (std::process::ExitStatus, String, String) {
    let mut child = binary()
        .arg("hash-password")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running `ferry-server` whose stderr is collected by a thread.
struct Running {
    child: std::process::Child,
    addr: String,
    log: Arc<std::sync::Mutex<String>>,
}

impl Running {
    fn start(args: &[&str]) -> Self {
        let mut child = binary()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let mut line = String::new();
        let addr = loop {
            line.clear();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "server exited");
            log.lock().unwrap().push_str(&line);
            if line.contains(" serving ") {
                break line
                    .split_whitespace()
                    .find_map(|word| word.strip_prefix("addr="))
                    .unwrap()
                    .to_owned();
            }
        };
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut line = String::new();
            while stderr.read_line(&mut line).is_ok_and(|n| n > 0) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        // An answered hello proves the accept loop, and with it the signal handler, is running.
        let port = addr.rsplit(':').next().unwrap();
        let reply = hello_blocking(
            &format!("127.0.0.1:{port}"),
            &json!({"op": "hello", "version": 1}),
        );
        assert!(reply.get("ok").is_some(), "{reply}");
        Self { child, addr, log }
    }

    fn stop(mut self) -> String {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}");
        std::thread::sleep(Duration::from_millis(100));
        self.log.lock().unwrap().clone()
    }
}

/// One `hello` over a fresh blocking connection; the reply.
fn hello_blocking(addr: &str, hello: &Value) -> Value {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(STEP)).unwrap();
    let mut line = serde_json::to_vec(hello).unwrap();
    line.push(b'\n');
    stream.write_all(&line).unwrap();
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    reader.read_line(&mut reply).unwrap();
    serde_json::from_str(&reply).unwrap()
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn hash_password_writes_an_entry_that_logs_in_and_no_secret_reaches_the_log() {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("carol");
    std::fs::create_dir(&root).unwrap();
    let users = base.path().join("users");
    let password = "pw-on-stdin-7f3a";
    let (status, _, stderr) = hash_password(
        &[
            "--users",
            arg(&users),
            "--user",
            "carol",
            "--root",
            arg(&root),
        ],
        password,
    );
    assert!(status.success(), "{stderr}");
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(text.contains("carol:rw:$argon2id$"), "{text}");
    assert!(!text.contains(password));

    // Without --users, the hash goes to stdout.
    let (status, stdout, _) = hash_password(&[], "x");
    assert!(status.success());
    assert!(stdout.starts_with("$argon2id$v=19$"), "{stdout}");

    let token = "tok-never-logged-91c2";
    let server = Running::start(&[
        "--root",
        arg(base.path()),
        "--listen",
        "127.0.0.1:0",
        "--users",
        arg(&users),
        "--token",
        token,
    ]);
    let ok = hello_blocking(
        &server.addr,
        &json!({"op": "hello", "version": 1, "user": "carol", "password": password}),
    );
    assert_eq!(ok["ok"], true, "{ok}");
    let wrong_password = "wrong-pw-5e6d";
    let refused = hello_blocking(
        &server.addr,
        &json!({"op": "hello", "version": 1, "user": "carol\u{1b}[31m", "password": wrong_password}),
    );
    assert_eq!(refused["error"]["code"], "unauthorized", "{refused}");
    let by_token = hello_blocking(
        &server.addr,
        &json!({"op": "hello", "version": 1, "token": token}),
    );
    assert_eq!(by_token["ok"], true, "{by_token}");
    let log = server.stop();
    assert!(log.contains("carol"), "logins are logged: {log}");
    for secret in [password, wrong_password, token] {
        assert!(!log.contains(secret), "{secret} is in the log:\n{log}");
    }
    assert!(
        !log.contains('\u{1b}'),
        "control characters in names are escaped:\n{log}"
    );
}

#[test]
fn beyond_loopback_the_server_needs_credentials() {
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("data");
    let out = binary()
        .args(["--root", arg(base.path()), "--listen", "0.0.0.0:0"])
        .args(["--data-dir", arg(&data)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--token or --users"), "{stderr}");

    let server = Running::start(&[
        "--root",
        arg(base.path()),
        "--listen",
        "0.0.0.0:0",
        "--token",
        "tok",
        "--no-tls",
    ]);
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let reply = hello_blocking(
        &format!("127.0.0.1:{port}"),
        &json!({"op": "hello", "version": 1, "token": "tok"}),
    );
    assert_eq!(reply["ok"], true, "{reply}");
    server.stop();

    // On loopback, no credentials is fine, and the log says why it stays there.
    let server = Running::start(&["--root", arg(base.path()), "--listen", "127.0.0.1:0"]);
    let log = server.stop();
    assert!(log.contains("loopback only"), "{log}");
}

#[tokio::test]
async fn the_library_refuses_an_unprotected_public_address() {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let config = ferry_server::Config::new(root.path());
    let err = ferry_server::run(listener, config, std::future::pending())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ferry_server::ServerError::Unprotected { .. }),
        "{err}"
    );
}

#[test]
fn the_binary_takes_the_login_deadline_and_the_cap_before_login() {
    let base = tempfile::tempdir().unwrap();
    let server = Running::start(&[
        "--root",
        arg(base.path()),
        "--listen",
        "127.0.0.1:0",
        "--token",
        "tok",
        "--login-timeout",
        "1s",
        "--max-unauthenticated",
        "1",
    ]);
    let silent = |addr: &str| {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(STEP)).unwrap();
        BufReader::new(stream)
    };
    let read_code = |reader: &mut BufReader<std::net::TcpStream>| {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let reply: Value = serde_json::from_str(&line).unwrap();
        code(&reply).to_owned()
    };
    // The only place for a connection not logged in: the second takes it from the first.
    let mut first = silent(&server.addr);
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let mut second = silent(&server.addr);
    assert_eq!(read_code(&mut first), "busy");
    assert_eq!(read_code(&mut second), "timeout");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
    let ok = hello_blocking(
        &server.addr,
        &json!({"op": "hello", "version": 1, "token": "tok"}),
    );
    assert_eq!(ok["ok"], true, "{ok}");
    let log = server.stop();
    assert!(log.contains("login_timeout=1s"), "{log}");
    assert!(log.contains("max_unauthenticated=1"), "{log}");
}
