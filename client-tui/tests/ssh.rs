//! ferry over ssh against a real OpenSSH `sshd` on loopback (`ferry_testkit::sshd`): the real
//! `ferry` binary runs the system's `ssh`, which runs the test's `ferry-server --stdio`. Each
//! test ends by checking that no ssh process of its own is left (clients and the shared
//! master).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{bytes, make_tree, ok, p, text, tree};
use ferry_testkit::sshd::{HOST, Sshd, remote as at};

fn sshd() -> Sshd {
    Sshd::start(&ferry_testkit::bin::ferry_server())
}

/// `ferry --ssh 'ssh -F CONFIG' ARGS`, without the developer's `FERRY_SSH`.
fn ferry_ssh(sshd: &Sshd, args: &[&str]) -> Output {
    ferry_with(&sshd.ssh_command(), args)
}

fn ferry_with(ssh: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("--ssh")
        .arg(ssh)
        .args(args)
        .env_remove("FERRY_SSH")
        .env_remove("FERRY_TOKEN")
        .output()
        .unwrap()
}

#[test]
fn files_and_trees_travel_both_ways() {
    let sshd = sshd();
    let local = tempfile::tempdir().unwrap();
    let remote = tempfile::tempdir().unwrap();
    let data = bytes(3 * 1024 * 1024 + 17, 7);
    std::fs::write(local.path().join("one.bin"), &data).unwrap();
    make_tree(&local.path().join("tree"), 60);

    ok(ferry_ssh(
        &sshd,
        &["put", p(&local.path().join("one.bin")), &at(remote.path())],
    ));
    assert_eq!(std::fs::read(remote.path().join("one.bin")).unwrap(), data);
    ok(ferry_ssh(
        &sshd,
        &[
            "put",
            "-r",
            p(&local.path().join("tree")),
            &at(remote.path()),
        ],
    ));
    assert_eq!(
        tree(&remote.path().join("tree")),
        tree(&local.path().join("tree"))
    );

    let back = tempfile::tempdir().unwrap();
    ok(ferry_ssh(
        &sshd,
        &["get", &at(&remote.path().join("one.bin")), p(back.path())],
    ));
    assert_eq!(std::fs::read(back.path().join("one.bin")).unwrap(), data);
    ok(ferry_ssh(
        &sshd,
        &[
            "get",
            "-r",
            &at(&remote.path().join("tree")),
            p(back.path()),
        ],
    ));
    assert_eq!(
        tree(&back.path().join("tree")),
        tree(&local.path().join("tree"))
    );
    sshd.assert_no_ssh_left();
}

#[test]
fn scp_paths_are_relative_to_the_remote_home() {
    let sshd = sshd();
    std::fs::write(sshd.home().join("in-home.txt"), "home").unwrap();
    std::fs::create_dir(sshd.home().join("photos")).unwrap();
    let abs = tempfile::tempdir().unwrap();
    std::fs::write(abs.path().join("in-abs.txt"), "abs").unwrap();

    let home = ok(ferry_ssh(&sshd, &["ls", &format!("{HOST}:")]));
    assert!(
        text(&home.stdout).contains("in-home.txt"),
        "{}",
        text(&home.stdout)
    );
    let listed = ok(ferry_ssh(&sshd, &["ls", &at(abs.path())]));
    assert!(text(&listed.stdout).contains("in-abs.txt"));
    assert!(!text(&listed.stdout).contains("in-home.txt"));

    // A relative source and target, and the ssh:// form with ~.
    let local = tempfile::tempdir().unwrap();
    ok(ferry_ssh(
        &sshd,
        &["get", &format!("{HOST}:in-home.txt"), p(local.path())],
    ));
    assert_eq!(
        std::fs::read_to_string(local.path().join("in-home.txt")).unwrap(),
        "home"
    );
    ok(ferry_ssh(
        &sshd,
        &[
            "put",
            p(&local.path().join("in-home.txt")),
            &format!("{HOST}:photos/"),
        ],
    ));
    assert!(sshd.home().join("photos/in-home.txt").is_file());
    let tilde = ok(ferry_ssh(&sshd, &["ls", &format!("ssh://{HOST}/~/photos")]));
    assert!(text(&tilde.stdout).contains("in-home.txt"));
    // mv's destination is home-relative too, and a trailing / still means "into".
    std::fs::create_dir(sshd.home().join("into")).unwrap();
    ok(ferry_ssh(
        &sshd,
        &[
            "mv",
            &format!("{HOST}:photos/in-home.txt"),
            &format!("{HOST}:into/"),
        ],
    ));
    assert!(sshd.home().join("into/in-home.txt").is_file());
    sshd.assert_no_ssh_left();
}

#[test]
fn a_tree_copy_with_four_workers_logs_in_once() {
    let sshd = sshd();
    let local = tempfile::tempdir().unwrap();
    let remote = tempfile::tempdir().unwrap();
    make_tree(&local.path().join("tree"), 400);

    let before = sshd.logins();
    let put = ok(ferry_ssh(
        &sshd,
        &[
            "-v",
            "put",
            "-r",
            "-j",
            "4",
            p(&local.path().join("tree")),
            &at(remote.path()),
        ],
    ));
    assert!(
        text(&put.stderr).contains("via ssh"),
        "{}",
        text(&put.stderr)
    );
    assert_eq!(sshd.logins() - before, 1, "{}", sshd.log());
    let sessions = sshd.log().matches("Starting session").count();
    assert!(
        sessions >= 4,
        "the workers had channels of their own: {sessions}"
    );
    sshd.assert_no_ssh_left();

    let back = tempfile::tempdir().unwrap();
    let before = sshd.logins();
    ok(ferry_ssh(
        &sshd,
        &[
            "get",
            "-r",
            "-j",
            "4",
            &at(&remote.path().join("tree")),
            p(back.path()),
        ],
    ));
    assert_eq!(sshd.logins() - before, 1, "{}", sshd.log());
    assert_eq!(
        tree(&back.path().join("tree")),
        tree(&local.path().join("tree"))
    );
    sshd.assert_no_ssh_left();
}

/// Runs `ferry` with `ssh`, expects a failure, and returns its stderr after checking it is
/// one `ssh_failed` line that came quickly.
fn fails_fast(ssh: &str, args: &[&str]) -> String {
    let started = Instant::now();
    let out = ferry_with(ssh, args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(15), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("ferry: ssh_failed: ssh://sshtest: "),
        "{stderr}"
    );
    stderr
}

/// A login with the client config `config` (key `key`, known-hosts file `known`, strict host
/// key checking) fails fast with ssh's words holding `words`; no one was logged in.
fn refused(config: &str, key: &str, known: &str, words: &str) {
    let sshd = sshd();
    sshd.write_config(config, key, known, "yes");
    let said = fails_fast(&sshd.ssh_command_with(config), &["ls", &format!("{HOST}:")]);
    assert!(said.contains(words), "{said}");
    assert_eq!(sshd.logins(), 0);
    sshd.assert_no_ssh_left();
}

#[test]
fn a_wrong_key_fails_fast_in_sshs_words() {
    refused("wrong", "wrong_key", "known_hosts", "Permission denied");
}

#[test]
fn an_unknown_host_key_is_refused_clearly() {
    refused(
        "strict",
        "client_key",
        "no_known_hosts",
        "Host key verification failed",
    );
}

#[test]
fn a_missing_remote_server_names_server_path() {
    let sshd = sshd();
    let ssh = sshd.ssh_command();
    let said = fails_fast(
        &ssh,
        &["--server-path", "/nowhere/ferry-server", "ls", "sshtest:/"],
    );
    assert!(
        said.contains("/nowhere/ferry-server was not found"),
        "{said}"
    );
    assert!(said.contains("--server-path"), "{said}");
    // Not on the remote PATH at all: the SFTP fallback (tests/sftp.rs).
    sshd.assert_no_ssh_left();
}

#[test]
fn a_refused_connection_says_so() {
    let sshd = sshd();
    let ssh = format!("{} -o Port=1", sshd.ssh_command());
    let said = fails_fast(&ssh, &["ls", "sshtest:/"]);
    assert!(said.contains("Connection refused"), "{said}");
    sshd.assert_no_ssh_left();
}

/// Kills the remote `ferry-server --stdio` sessions of this sshd (its `HOME` in their
/// environment); how many.
fn kill_remote_servers(sshd: &Sshd) -> usize {
    let home = format!("HOME={}", sshd.home().display());
    let mut killed = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let mine = environ.split(|&b| b == 0).any(|var| var == home.as_bytes());
        if mine && cmdline.starts_with("ferry-server --stdio") {
            let status = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
            killed += usize::from(status.success());
        }
    }
    killed
}

#[test]
fn a_remote_killed_mid_transfer_is_finished_by_resume() {
    let sshd = sshd();
    let remote = tempfile::tempdir_in("/dev/shm").unwrap();
    let data = bytes(512 * 1024 * 1024, 3);
    std::fs::write(remote.path().join("big.bin"), &data).unwrap();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let source = at(&remote.path().join("big.bin"));

    let mut running = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "--ssh",
            &sshd.ssh_command(),
            "get",
            &source,
            p(local.path()),
        ])
        .env_remove("FERRY_SSH")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Some bytes have arrived: a partial file is growing in the target directory.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let arrived: u64 = std::fs::read_dir(local.path())
            .unwrap()
            .flatten()
            .map(|e| e.metadata().map_or(0, |m| m.len()))
            .sum();
        if arrived > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "nothing arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The engine reconnects after a lost connection: with ferry-server gone from the remote
    // PATH its reconnects fail too, and the job stops.
    let server = sshd.dir().join("bin/ferry-server");
    std::fs::remove_file(&server).unwrap();
    assert!(kill_remote_servers(&sshd) >= 1);
    let status = running.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(running.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("big.bin"), "{stderr}");
    eprintln!("after the kill: {stderr}");
    assert!(
        !local.path().join("big.bin").exists()
            || std::fs::read(local.path().join("big.bin")).unwrap() != data
    );

    std::os::unix::fs::symlink(ferry_testkit::bin::ferry_server(), &server).unwrap();
    ok(ferry_ssh(
        &sshd,
        &["get", "--resume", &source, p(local.path())],
    ));
    assert!(std::fs::read(local.path().join("big.bin")).unwrap() == data);
    sshd.assert_no_ssh_left();
}

/// The pids of this process's children whose command line is ssh with this test's config.
fn my_ssh_children(sshd: &Sshd) -> Vec<u32> {
    let me = std::process::id().to_string();
    sshd.ssh_processes()
        .into_iter()
        .filter(|(pid, cmdline)| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The parent's pid is the second field after the parenthesised name.
            let ppid = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().nth(1));
            cmdline.starts_with("ssh ") && ppid == Some(me.as_str())
        })
        .map(|(pid, _)| pid)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_session_kills_and_reaps_its_ssh() {
    use ferry::engine::ssh::{SshSettings, close_masters, configure};
    let sshd = sshd();
    configure(SshSettings::with_command(Some(&sshd.ssh_command())).unwrap());
    let url: ferry::url::RemoteUrl = format!("{HOST}:/").parse().unwrap();
    let mut session = ferry::engine::Session::connect(&url.endpoint(None))
        .await
        .unwrap();
    assert_eq!(session.home(), Some(&sshd.home().to_str().unwrap()[1..]));
    assert!(session.stat("").await.unwrap().is_dir_like());
    let children = my_ssh_children(&sshd);
    assert_eq!(children.len(), 1, "{:?}", sshd.ssh_processes());
    drop(session);
    // Killed and reaped: not even a zombie keeps its /proc entry.
    let deadline = Instant::now() + Duration::from_secs(10);
    while children
        .iter()
        .any(|pid| Path::new(&format!("/proc/{pid}")).exists())
    {
        assert!(
            Instant::now() < deadline,
            "ssh child {children:?} still there"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The shared master is this process's last ssh; it ends with the program.
    close_masters();
    sshd.assert_no_ssh_left();
}

/// The real TUI in tmux started at `sshtest:` (the remote home) with `ssh`.
fn tui_over_ssh(ssh: &str, location: &str, desk: &Path) -> ferry_testkit::tmux::Tmux {
    let home = desk.join("home");
    std::fs::create_dir_all(&home).unwrap();
    ferry_testkit::tmux::Tmux::start(
        desk.join("tmux.sock"),
        desk,
        &[("HOME", home.as_path())],
        &[env!("CARGO_BIN_EXE_ferry")],
        &["--ssh", ssh, location],
        (120, 30),
    )
}

#[test]
fn the_tui_browses_the_remote_home_and_says_ssh() {
    let sshd = sshd();
    std::fs::write(sshd.home().join("in-home.txt"), "home").unwrap();
    let desk = tempfile::tempdir().unwrap();
    let tmux = tui_over_ssh(&sshd.ssh_command(), &format!("{HOST}:"), desk.path());
    let screen = tmux.wait_for("the remote home listed", |s| {
        s.contains("in-home.txt") && s.contains("ssh://sshtest connected")
    });
    // Nothing of ssh's reached the screen.
    assert!(!screen.contains("Warning"), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
    sshd.assert_no_ssh_left();
}

/// A client config `name` with `key` that lets ssh ask (`BatchMode no`), as a user's own
/// config would.
fn asking_config(sshd: &Sshd, name: &str, key: &str) -> String {
    let path = sshd.write_config(name, key, "known_hosts", "yes");
    let config = std::fs::read_to_string(&path)
        .unwrap()
        .replace("BatchMode yes", "BatchMode no");
    std::fs::write(&path, config).unwrap();
    sshd.ssh_command_with(name)
}

#[test]
fn the_tui_asks_sshs_questions_in_its_own_masked_dialog() {
    let sshd = sshd();
    let key = sshd.dir().join("pass_key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "open sesame", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let mut authorized = std::fs::read_to_string(sshd.dir().join("authorized_keys")).unwrap();
    authorized.push_str(&std::fs::read_to_string(key.with_extension("pub")).unwrap());
    std::fs::write(sshd.dir().join("authorized_keys"), authorized).unwrap();
    std::fs::write(sshd.home().join("in-home.txt"), "home").unwrap();

    let desk = tempfile::tempdir().unwrap();
    let ssh = asking_config(&sshd, "pass", "pass_key");
    let tmux = tui_over_ssh(&ssh, &format!("{HOST}:/"), desk.path());
    tmux.wait_for("ssh's question in the dialog", |s| {
        s.contains("Enter passphrase for key")
    });
    tmux.keys(&["-l", "open sesame"]);
    let screen = tmux.wait_for("the masked answer", |s| s.contains("•••••••••••"));
    assert!(!screen.contains("open sesame"), "{screen}");
    tmux.keys(&["Enter"]);
    tmux.wait_for("the root listed", |s| {
        s.contains("ssh://sshtest connected") && s.contains("tmp/")
    });
    assert_eq!(sshd.logins(), 1);
    tmux.keys(&["q"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
    drop(tmux);
    sshd.assert_no_ssh_left();
}

#[test]
fn the_tui_shows_a_refused_login_in_sshs_words_after_its_questions() {
    let sshd = sshd();
    let desk = tempfile::tempdir().unwrap();
    // The wrong key: sshd then offers a password, which ssh asks for through the dialog.
    let ssh = asking_config(&sshd, "wrong", "wrong_key");
    let tmux = tui_over_ssh(&ssh, &format!("{HOST}:/"), desk.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut asked = 0;
    let screen = loop {
        let screen = tmux.wait_for("a question or the refusal", |s| {
            s.contains("'s password") || s.contains("Permission denied")
        });
        if screen.contains("Permission denied") {
            break screen;
        }
        asked += 1;
        assert!(Instant::now() < deadline, "{screen}");
        // Declined: ssh asks again, then gives up.
        tmux.keys(&["Escape"]);
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(screen.contains("ssh_failed"), "{screen}");
    assert!(asked >= 1, "ssh's password question was never shown");
    tmux.keys(&["q"]);
    tmux.wait_for("a clean exit", |s| s.contains("EXIT=0"));
    drop(tmux);
    sshd.assert_no_ssh_left();
}
