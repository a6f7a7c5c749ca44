//! Finding servers on the local network, over real multicast: two network namespaces joined
//! by a veth pair (10.231.x.0/24), a real `ferry-server` announcing in one and the real
//! `ferry discover` (or the TUI's F9) browsing from the other. Needs root and `ip`; without
//! them each test says why and passes without testing (CI runs as root, where they run).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/tmux.rs"]
mod tmux;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Two network namespaces joined by a veth pair; deleted (with the pair) on drop, however the
/// test ends.
struct NetPair {
    server_ns: String,
    client_ns: String,
    server_ip: String,
}

/// Each pair gets its own names and subnet, so tests running at once never meet.
static NEXT: AtomicU32 = AtomicU32::new(0);

impl NetPair {
    /// The pair, or `None` (said on stderr) when this is not root or `ip` is missing.
    fn make() -> Option<NetPair> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED: discovery tests need root to make network namespaces");
            return None;
        }
        if Command::new("ip").arg("-V").output().is_err() {
            eprintln!("SKIPPED: discovery tests need `ip` (iproute2)");
            return None;
        }
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}x{n}", std::process::id() % 100_000);
        let subnet = (std::process::id() * 7 + n * 31) % 250 + 1;
        let pair = NetPair {
            server_ns: format!("fdS{id}"),
            client_ns: format!("fdC{id}"),
            server_ip: format!("10.231.{subnet}.1"),
        };
        let (veth_s, veth_c) = (format!("vdS{id}"), format!("vdC{id}"));
        let client_ip = format!("10.231.{subnet}.2");
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", &pair.server_ns],
            vec!["netns", "add", &pair.client_ns],
            vec![
                "link", "add", &veth_s, "type", "veth", "peer", "name", &veth_c,
            ],
            vec!["link", "set", &veth_s, "netns", &pair.server_ns],
            vec!["link", "set", &veth_c, "netns", &pair.client_ns],
        ];
        for step in steps {
            ip(&step);
        }
        for (ns, dev, addr) in [
            (&pair.server_ns, &veth_s, &pair.server_ip),
            (&pair.client_ns, &veth_c, &client_ip),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        Some(pair)
    }

    /// `program` with `args` run inside `ns`.
    fn command(ns: &str, program: &Path, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns]).arg(program).args(args);
        command.env_remove("FERRY_TOKEN");
        command
    }

    /// A `ferry-server` in the server namespace with `args` (a token added), logging at debug
    /// level; returns once it serves, with its log lines so far.
    fn server(&self, root: &Path, args: &[&str]) -> Server {
        let server = ferry_testkit::bin::ferry_server();
        let mut all = vec!["--root", root.to_str().unwrap(), "--token", "secret"];
        all.extend_from_slice(args);
        let mut child = Self::command(&self.server_ns, &server, &all)
            .env("RUST_LOG", "debug,mdns_sd=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut log = BufReader::new(child.stderr.take().unwrap());
        let mut said = String::new();
        loop {
            let mut line = String::new();
            assert!(
                log.read_line(&mut line).unwrap() > 0,
                "server exited before serving: {said}"
            );
            said.push_str(&line);
            if ferry_testkit::bin::serving_addr(&line).is_some() {
                break;
            }
        }
        let server = Server { child, said };
        ferry_testkit::bin::drain(log);
        server
    }

    /// "the nas": TLS with a self-signed certificate kept in `data`, on every address, port 7070.
    fn nas(&self, root: &Path, data: &Path) -> Server {
        let data = data.to_str().unwrap();
        let args = [
            "--listen",
            "0.0.0.0:7070",
            "--name",
            "the nas",
            "--data-dir",
            data,
        ];
        self.server(root, &args)
    }

    /// `ferry discover --json` from the client namespace: one object per server found.
    fn discover(&self, timeout: &str) -> Vec<serde_json::Value> {
        let ferry = Path::new(env!("CARGO_BIN_EXE_ferry"));
        let started = Instant::now();
        let output = Self::command(
            &self.client_ns,
            ferry,
            &["discover", "--json", "--timeout", timeout],
        )
        .output()
        .unwrap();
        assert!(
            output.status.success(),
            "ferry discover: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "discover overran its timeout"
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for NetPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the peer.
        for ns in [&self.server_ns, &self.client_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// A running server, killed on drop; `said` is its log up to its "serving" line.
struct Server {
    child: Child,
    said: String,
}

impl Server {
    /// The fingerprint it logged: "clients can pin this certificate with --fingerprint X".
    fn fingerprint(&self) -> String {
        self.said
            .split("--fingerprint ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("a TLS server logs its fingerprint")
            .to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn named<'a>(found: &'a [serde_json::Value], name: &str) -> Option<&'a serde_json::Value> {
    found.iter().find(|server| server["name"] == name)
}

#[test]
fn a_server_is_found_from_another_namespace() {
    let Some(net) = NetPair::make() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tls = net.nas(dir.path(), &data);
    let plain = net.server(
        dir.path(),
        &[
            "--listen",
            &format!("{}:7171", net.server_ip),
            "--name",
            "plain one",
            "--no-tls",
            "--read-only",
        ],
    );
    let found = net.discover("3s");
    let nas = named(&found, "the nas").unwrap_or_else(|| panic!("not found: {found:?}"));
    assert_eq!(nas["address"], format!("{}:7070", net.server_ip));
    assert_eq!(nas["port"], 7070);
    assert_eq!(nas["tls"], true);
    assert_eq!(nas["fingerprint"], tls.fingerprint());
    assert_eq!(nas["read_only"], false);
    assert_eq!(nas["url"], format!("ferrys://{}:7070/", net.server_ip));
    let other = named(&found, "plain one").unwrap_or_else(|| panic!("not found: {found:?}"));
    assert_eq!(other["address"], format!("{}:7171", net.server_ip));
    assert_eq!(other["tls"], false);
    assert_eq!(other["fingerprint"], serde_json::Value::Null);
    assert_eq!(other["read_only"], true);
    assert_eq!(found.len(), 2, "{found:?}");
    drop(plain);
}

#[test]
fn loopback_only_and_no_announce_servers_are_not_found() {
    let Some(net) = NetPair::make() else { return };
    let dir = tempfile::tempdir().unwrap();
    let loopback = net.server(
        dir.path(),
        &["--listen", "127.0.0.1:7070", "--name", "on loopback"],
    );
    assert!(
        loopback.said.contains("not announced"),
        "a loopback server says why at debug level: {}",
        loopback.said
    );
    let _quiet = net.server(
        dir.path(),
        &[
            "--listen",
            "0.0.0.0:7171",
            "--no-tls",
            "--name",
            "quiet one",
            "--no-announce",
        ],
    );
    // The control: announcing works in this very network, so the absences below mean
    // something.
    let _loud = net.server(
        dir.path(),
        &["--listen", "0.0.0.0:7272", "--no-tls", "--name", "loud one"],
    );
    let found = net.discover("3s");
    let names: Vec<&str> = found.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["loud one"]);
}

#[test]
fn f9_lists_a_discovered_server_and_connects_trusting_the_announced_certificate() {
    let Some(net) = NetPair::make() else { return };
    let desk = tmux::Desk::new();
    let served = desk.dir("served");
    std::fs::write(served.join("announced-file.txt"), b"hello").unwrap();
    let data = desk.dir("data");
    let server = net.nas(&served, &data);
    // The token comes from a bookmark of the same address: a discovered server is never sent
    // credentials of its own accord. The bookmark pins nothing, so trust rests on the
    // announcement matching the handshake.
    let config = desk.home.join(".config/ferry");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!(
            "[[bookmarks]]\nname = \"by hand\"\nurl = \"ferrys://{}:7070/\"\ntoken = \"secret\"\n",
            net.server_ip
        ),
    )
    .unwrap();
    let ferry = env!("CARGO_BIN_EXE_ferry");
    let tmux = tmux::Tmux::start(
        desk.tmp.path().join("tmux.sock"),
        &desk.local,
        &[("HOME", &desk.home)],
        &["ip", "netns", "exec", &net.client_ns, ferry],
        &[],
        (120, 30),
    );
    tmux.wait_for("the bundled server connected", |s| {
        s.contains("bundled server") && s.contains("connected")
    });
    tmux.keys(&["F9"]);
    let row = format!("the nas  ferrys://{}:7070/ [tls]", net.server_ip);
    tmux.wait_for("the discovered server listed", |s| s.contains(&row));
    // The discovered row is the last before "New address…".
    tmux.keys(&["End"]);
    tmux.keys(&["Up"]);
    tmux.wait_for("the discovered row selected", |s| {
        s.lines().any(|l| l.contains(&format!("›⌁ {row}")))
    });
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the server's root listed", |s| {
        s.contains("announced-file.txt") && s.contains(&format!("{}:7070 connected", net.server_ip))
    });
    assert!(!screen.contains("Unknown server certificate"), "{screen}");
    let known = std::fs::read_to_string(desk.home.join(".local/share/ferry/known_hosts")).unwrap();
    assert!(
        known.contains(&format!("{}:7070 {}", net.server_ip, server.fingerprint())),
        "the announced certificate is remembered once the handshake showed it: {known}"
    );
}

#[test]
fn a_server_that_shuts_down_withdraws_its_announcement() {
    let Some(net) = NetPair::make() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = net.nas(dir.path(), &data);
    let ferry = Path::new(env!("CARGO_BIN_EXE_ferry"));
    let browsing = NetPair::command(
        &net.client_ns,
        ferry,
        &["discover", "--json", "--timeout", "6s"],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    // Found within a second here; the browse goes on for 6. Then the server stops (SIGTERM,
    // as a service manager stops it): its goodbye must take it off the list, where a server
    // that merely vanished would stay for its records' two minutes.
    std::thread::sleep(Duration::from_secs(3));
    let stopped = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let output = browsing.wait_with_output().unwrap();
    let listed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(!listed.contains("the nas"), "still listed: {listed}");
    // The control: a browse lists it while it runs.
    let _again = net.nas(dir.path(), &data);
    assert!(named(&net.discover("2s"), "the nas").is_some());
    drop(server);
}
