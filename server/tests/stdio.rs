//! `ferry-server --stdio`, the real binary as `ssh host ferry-server --stdio` runs it: one
//! session over real pipes, no token, the process's own permissions as the only limit, logs
//! on stderr and nothing but the protocol on stdout, and an exit when the session ends.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_testkit::nobody;
use ferry_testkit::wire::{Client, code, names};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

/// How long a process may take to exit once its session is over.
const EXIT_WITHIN: Duration = Duration::from_secs(30);

/// A `ferry-server --stdio` child: the raw client speaks over its stdin and stdout; its stderr
/// is collected whole.
struct Session {
    child: Child,
    client: Client<pipe::Receiver, pipe::Sender>,
    stderr: JoinHandle<String>,
}

#[allow(clippy::unwrap_used)]
impl Session {
    /// Starts `prefix` (e.g. setpriv) then the server with `--stdio` and `args`, logging at
    /// debug level. Must run inside a tokio runtime (the pipes register with it).
    fn start(prefix: &[&str], args: &[&str], envs: &[(&str, &str)]) -> Self {
        let server = env!("CARGO_BIN_EXE_ferry-server");
        let mut command = match prefix.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(server);
                command
            }
            None => Command::new(server),
        };
        let mut child = command
            .arg("--stdio")
            .args(args)
            .env("RUST_LOG", "debug")
            .env_remove("FERRY_TOKEN")
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin =
            pipe::Sender::from_owned_fd(OwnedFd::from(child.stdin.take().unwrap())).unwrap();
        let stdout =
            pipe::Receiver::from_owned_fd(OwnedFd::from(child.stdout.take().unwrap())).unwrap();
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            err.read_to_string(&mut text).unwrap();
            text
        });
        Self {
            child,
            client: Client::over(stdout, stdin),
            stderr,
        }
    }

    /// Waits for the process to exit by itself, closing its stdin first when `close_stdin`
    /// (else only once it has exited): its status, what stdout still carried after the last
    /// reply read, and everything it wrote on stderr.
    async fn exit(self, close_stdin: bool) -> (ExitStatus, Vec<u8>, String) {
        let Session {
            mut child,
            client,
            stderr,
        } = self;
        let Client { mut reader, writer } = client;
        let mut writer = Some(writer);
        if close_stdin {
            drop(writer.take());
        }
        let deadline = Instant::now() + EXIT_WITHIN;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("ferry-server --stdio did not exit within {EXIT_WITHIN:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        drop(writer);
        let mut rest = Vec::new();
        tokio::time::timeout(EXIT_WITHIN, reader.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        (status, rest, stderr.join().unwrap())
    }
}

#[allow(clippy::unwrap_used)]
fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn blake3(data: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(data).to_hex())
}

/// The whole session a user would have: hello with no token, list, an upload and a download
/// checked by their digests, then the end of stdin, which ends the process with 0. Every byte
/// of stdout is read as a header or a payload and nothing follows; the log went to stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_without_a_token_ends_cleanly_at_the_end_of_stdin() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("before.txt"), b"already here").unwrap();
    let mut session = Session::start(&[], &["--root", arg(root.path())], &[]);
    let client = &mut session.client;

    let hello = client.hello().await;
    assert_eq!(hello["read_only"], false, "{hello}");
    let (entries, _, _) = client.list_all("list", "").await.unwrap();
    assert_eq!(names(&entries), ["before.txt"]);

    let data: Vec<u8> = (0..300_000u32).flat_map(u32::to_le_bytes).collect();
    let put = client
        .put("up/new.bin", &data, json!({"digest": blake3(&data)}))
        .await;
    assert_eq!(put["ok"], false, "no parent directory yet: {put}");
    assert_eq!(
        client.request(json!({"op": "mkdir", "path": "up"})).await["ok"],
        true
    );
    let put = client
        .put("up/new.bin", &data, json!({"digest": blake3(&data)}))
        .await;
    assert_eq!(put["ok"], true, "{put}");
    assert_eq!(put["digest"], blake3(&data));
    assert_eq!(std::fs::read(root.path().join("up/new.bin")).unwrap(), data);

    let (reply, got, trailer) = client.get("up/new.bin", 0).await.unwrap();
    assert_eq!(reply["size"], data.len());
    assert_eq!(got, data);
    assert_eq!(trailer["digest"], blake3(&data), "{trailer}");

    let (status, rest, log) = session.exit(true).await;
    assert!(status.success(), "{status}; log: {log}");
    assert!(
        rest.is_empty(),
        "stdout carries nothing but replies: {rest:?}"
    );
    assert!(
        log.contains("op=\"hello\"") && log.contains("op=\"put\""),
        "the log is on stderr: {log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        log.contains("stdin_pipe=true stdout_pipe=true"),
        "pipes go through the reactor: {log}"
    );
}

/// A header over the cap gets the stable `header_too_long` line, then the process exits by
/// itself with a failure status while the client still holds stdin open: no panic, no hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_header_gets_the_stable_error_and_the_process_exits() {
    let root = tempfile::tempdir().unwrap();
    let mut session = Session::start(&[], &["--root", arg(root.path())], &[]);
    session.client.hello().await;
    let mut hostile = vec![b'a'; ferry_protocol::MAX_HEADER_LEN + 10];
    hostile.push(b'\n');
    session.client.send(&hostile).await;
    let reply = session.client.read_reply().await;
    assert_eq!(code(&reply), "header_too_long", "{reply}");

    let (status, rest, log) = session.exit(false).await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(rest.is_empty(), "nothing after the error line: {rest:?}");
    assert!(
        log.contains("the session ended: header line longer"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

/// The end of stdin inside an upload: the process exits with a failure (the session was cut,
/// not ended), and the final name never appears; only the hidden partial stays, to resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_ending_inside_an_upload_leaves_no_visible_file() {
    let root = tempfile::tempdir().unwrap();
    let mut session = Session::start(&[], &["--root", arg(root.path())], &[]);
    session.client.hello().await;
    session
        .client
        .send_json(&json!({"op": "put", "path": "cut.bin", "size": 1_000_000}))
        .await;
    session.client.send(&[7u8; 100_000]).await;

    let (status, rest, log) = session.exit(true).await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(rest.is_empty(), "no reply to a cut upload: {rest:?}");
    assert!(log.contains("inside a message"), "{log}");
    let left: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        left.iter().all(|name| name.starts_with(".ferry-part.")),
        "only a hidden partial may stay: {left:?}"
    );
}

/// Without --root the served root is `/`; a token in the environment is ignored, and the log
/// says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_is_slash_and_a_token_in_the_environment_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deep.txt"), b"from the whole tree").unwrap();
    let mut session = Session::start(&[], &[], &[("FERRY_TOKEN", "left-over")]);
    session.client.hello().await;
    let wire_path = format!("{}/deep.txt", arg(dir.path()).trim_start_matches('/'));
    let (_, data, _) = session.client.get(&wire_path, 0).await.unwrap();
    assert_eq!(data, b"from the whole tree");

    let (status, _, log) = session.exit(true).await;
    assert!(status.success(), "{log}");
    assert!(log.contains("FERRY_TOKEN is ignored with --stdio"), "{log}");
}

/// The process's own permissions are the only limit: as `nobody`, a file only root may read
/// is refused with `forbidden`, and one it may read is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_own_permissions_are_the_limit() {
    nobody::require_setpriv();
    let root = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(root.path().join("secret"), b"root only").unwrap();
    std::fs::set_permissions(
        root.path().join("secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(root.path().join("public"), b"everyone").unwrap();
    std::fs::set_permissions(
        root.path().join("public"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let prefix: Vec<&str> = std::iter::once(nobody::SETPRIV)
        .chain(nobody::AS_NOBODY)
        .collect();
    let mut session = Session::start(&prefix, &["--root", arg(root.path())], &[]);
    session.client.hello().await;
    let refused = session.client.get("secret", 0).await.unwrap_err();
    assert_eq!(code(&refused), "forbidden", "{refused}");
    let (_, data, _) = session.client.get("public", 0).await.unwrap();
    assert_eq!(data, b"everyone");
    let put = session.client.put("new", b"x", json!({})).await;
    assert_eq!(code(&put), "forbidden", "{put}");

    let (status, _, log) = session.exit(true).await;
    assert!(status.success(), "{log}");
}

/// The idle timeout still applies: a session that says nothing ends by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_ends_at_the_idle_timeout() {
    let root = tempfile::tempdir().unwrap();
    let mut session = Session::start(
        &[],
        &["--root", arg(root.path()), "--idle-timeout", "1s"],
        &[],
    );
    session.client.hello().await;
    let (status, rest, log) = session.exit(false).await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(log.contains("no request for the idle timeout"), "{log}");
}

/// Flags of a listener are refused with --stdio, each named, with a failure status and
/// nothing on stdout.
#[test]
fn listener_flags_are_refused_with_stdio() {
    let cases: [&[&str]; 6] = [
        &["--listen", "127.0.0.1:0"],
        &["--tls"],
        &["--users", "/nonexistent/users"],
        &["--token", "secret"],
        &["--max-connections", "3"],
        &["--partial-expiry", "1h"],
    ];
    for case in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_ferry-server"))
            .arg("--stdio")
            .args(case)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{case:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{} cannot be used with --stdio", case[0])),
            "{case:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{case:?}");
    }
}

/// Stdin and stdout that are not pipes (a file of requests, replies into a file) go through
/// the blocking fallback: the same replies, and a clean exit at the end of the file.
#[test]
fn requests_from_a_file_are_answered_into_a_file() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.txt"), b"abc").unwrap();
    let work = tempfile::tempdir().unwrap();
    let requests = work.path().join("requests");
    std::fs::write(
        &requests,
        b"{\"op\":\"hello\",\"version\":1}\n{\"op\":\"list\",\"path\":\"\"}\n",
    )
    .unwrap();
    let replies = work.path().join("replies");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry-server"))
        .args(["--stdio", "--root", arg(root.path())])
        .env("RUST_LOG", "debug")
        .stdin(std::fs::File::open(&requests).unwrap())
        .stdout(std::fs::File::create(&replies).unwrap())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("stdin_pipe=false"), "{log}");
    let text = std::fs::read_to_string(&replies).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(names(lines[1]["entries"].as_array().unwrap()), ["a.txt"]);
}

/// With --log-file the log goes there and stderr stays empty; a `hello` naming a user is
/// refused (there are no accounts) and one without credentials then succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_goes_to_a_file_and_a_user_name_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let log_file = work.path().join("server.log");
    let mut session = Session::start(
        &[],
        &["--root", arg(root.path()), "--log-file", arg(&log_file)],
        &[],
    );
    let refused = session
        .client
        .request(json!({"op": "hello", "version": 1, "user": "ann", "password": "x"}))
        .await;
    assert_eq!(code(&refused), "unauthorized", "{refused}");
    session.client.hello().await;

    let (status, rest, stderr) = session.exit(true).await;
    assert!(status.success(), "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        stderr.is_empty(),
        "nothing on stderr with --log-file: {stderr}"
    );
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(log.contains("op=\"hello\""), "{log}");
}

/// SIGTERM stops the session: the process exits with a failure and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_session() {
    let root = tempfile::tempdir().unwrap();
    let mut session = Session::start(&[], &["--root", arg(root.path())], &[]);
    session.client.hello().await;
    let pid = session.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let (status, _, log) = session.exit(false).await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("the session ended"), "{log}");
}

/// The pipes are made non-blocking for the session and blocking again after it, so a command
/// that shares them next (here in the same shell) does not meet `EAGAIN`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_and_stdout_are_blocking_again_after_the_session() {
    let root = tempfile::tempdir().unwrap();
    let script = r#""$0" "$@"; cat /proc/self/fdinfo/0 /proc/self/fdinfo/1"#;
    let mut session = Session::start(&["sh", "-c", script], &["--root", arg(root.path())], &[]);
    session.client.hello().await;
    let (status, rest, log) = session.exit(true).await;
    assert!(status.success(), "{log}");
    assert!(log.contains("stdin_pipe=true stdout_pipe=true"), "{log}");
    let fdinfo = String::from_utf8(rest).unwrap();
    let flags: Vec<u32> = fdinfo
        .lines()
        .filter_map(|line| line.strip_prefix("flags:"))
        .map(|octal| u32::from_str_radix(octal.trim(), 8).unwrap())
        .collect();
    assert_eq!(flags.len(), 2, "{fdinfo}");
    const O_NONBLOCK: u32 = 0o4000;
    assert!(
        flags.iter().all(|flags| flags & O_NONBLOCK == 0),
        "{fdinfo}"
    );
}

/// A client that goes away (stdin ended and stdout closed, as when ssh dies) stops expensive
/// work at once: here a `get` whose offset makes the server hash a 256 GiB sparse prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_stops_expensive_work() {
    let root = tempfile::tempdir().unwrap();
    let size: u64 = 256 << 30;
    std::fs::File::create(root.path().join("sparse"))
        .unwrap()
        .set_len(size)
        .unwrap();
    let mut session = Session::start(&[], &["--root", arg(root.path())], &[]);
    session.client.hello().await;
    session
        .client
        .send_json(&json!({"op": "get", "path": "sparse", "offset": size - 1}))
        .await;
    // Long enough for the request to be read and the hashing to start.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let Session {
        mut child,
        client,
        stderr,
    } = session;
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still hashing for a client that has gone");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let log = stderr.join().unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
}

/// `hello` tells the client where the user's home is (`$HOME` under the root), so
/// `host:photos` resolves as scp's does; a home outside the root is not sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_names_the_home_under_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home/ann");
    std::fs::create_dir_all(&home).unwrap();
    let mut session = Session::start(&[], &[], &[("HOME", arg(&home))]);
    let hello = session.client.hello().await;
    let wire = arg(&std::fs::canonicalize(&home).unwrap())
        .trim_start_matches('/')
        .to_owned();
    assert_eq!(hello["home"], wire.as_str(), "{hello}");
    assert!(session.exit(true).await.0.success());

    let elsewhere = tempfile::tempdir().unwrap();
    let mut session = Session::start(
        &[],
        &["--root", arg(elsewhere.path())],
        &[("HOME", arg(&home))],
    );
    let hello = session.client.hello().await;
    assert!(hello.get("home").is_none(), "{hello}");
    assert!(session.exit(true).await.0.success());
}
