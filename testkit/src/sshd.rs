//! A real OpenSSH `sshd` on a free loopback port for the ssh tests: a generated host key, one
//! authorized generated client key, a private client config (`ssh -F`) that names it as the
//! host `sshtest`, and the test's `ferry-server` first on the remote `PATH`. The remote `HOME`
//! is a directory of the test's own, so home-relative paths (`sshtest:x`) land there.
//!
//! sshd runs as root here (the tests do) with `UsePAM no` and `StrictModes no`, so nothing on
//! the machine needs setting up beyond the `openssh-server` package. Its log (`-e`, level
//! VERBOSE) goes to a file the tests read: one `Accepted publickey` line per authentication.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The host alias of the private client config.
pub const HOST: &str = "sshtest";
/// Where Debian's package puts the daemon.
pub const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd and everything its tests need; killed when dropped.
#[derive(Debug)]
pub struct Sshd {
    dir: tempfile::TempDir,
    child: Child,
    pub port: u16,
}

fn keygen(path: &Path) {
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ferry-test", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success(), "ssh-keygen {}", path.display());
}

impl Sshd {
    /// Starts sshd with `server` (the test's `ferry-server`) on the remote `PATH`, and waits
    /// until it accepts connections.
    pub fn start(server: &Path) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (.ci/run does)"
        );
        let dir = tempfile::Builder::new().prefix("sshd-").tempdir().unwrap();
        let d = dir.path();
        for sub in ["bin", "home"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        std::os::unix::fs::symlink(server, d.join("bin/ferry-server")).unwrap();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        keygen(&d.join("wrong_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        let mut words = host_pub.split_whitespace();
        let (kind, key) = (words.next().unwrap(), words.next().unwrap());
        std::fs::write(d.join("known_hosts"), format!("{HOST} {kind} {key}\n")).unwrap();
        std::fs::write(d.join("no_known_hosts"), "").unwrap();
        // sshd wants its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = free_port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
                 PidFile none\nLogLevel VERBOSE\nPasswordAuthentication yes\n\
                 KbdInteractiveAuthentication no\nMaxStartups 100\nMaxSessions 100\n\
                 Subsystem sftp /usr/lib/openssh/sftp-server\n\
                 SetEnv PATH={d}/bin:/usr/local/bin:/usr/bin:/bin HOME={d}/home\n",
                d = d.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let sshd = Sshd { dir, child, port };
        sshd.write_config("ssh_config", "client_key", "known_hosts", "yes");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                sshd.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sshd
    }

    /// The test's directory: configs, keys, the log, `bin/` and `home/`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The remote user's home (`$HOME` of every session).
    pub fn home(&self) -> PathBuf {
        self.dir().join("home")
    }

    /// Writes a client config `name` for [`HOST`] with the key file `key`, the known-hosts
    /// file `known` and `StrictHostKeyChecking` `strict`; returns its path.
    pub fn write_config(&self, name: &str, key: &str, known: &str, strict: &str) -> PathBuf {
        let d = self.dir();
        let path = d.join(name);
        std::fs::write(
            &path,
            format!(
                "Host {HOST}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  \
                 HostKeyAlias {HOST}\n  IdentityFile {d}/{key}\n  IdentitiesOnly yes\n  \
                 UserKnownHostsFile {d}/{known}\n  StrictHostKeyChecking {strict}\n  \
                 BatchMode yes\n  LogLevel ERROR\n",
                port = self.port,
                d = d.display()
            ),
        )
        .unwrap();
        path
    }

    /// The ssh command line (`--ssh`, `FERRY_SSH`) that uses the private config.
    pub fn ssh_command(&self) -> String {
        format!("ssh -F {}", self.dir().join("ssh_config").display())
    }

    /// `ssh -F` with the config `name` (see [`Self::write_config`]).
    pub fn ssh_command_with(&self, name: &str) -> String {
        format!("ssh -F {}", self.dir().join(name).display())
    }

    /// sshd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("sshd.log")).unwrap_or_default()
    }

    /// Authentications so far: sshd logs one `Accepted publickey` line for each.
    pub fn logins(&self) -> usize {
        self.log().matches("Accepted publickey").count()
    }

    /// ssh processes (pid and command line) whose command line names this test's directory:
    /// the clients and masters a test started (a master keeps its client's command line).
    pub fn ssh_processes(&self) -> Vec<(u32, String)> {
        let marker = self.dir().to_string_lossy().into_owned();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if pid == self.child.id() {
                continue;
            }
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&marker) && cmdline.starts_with("ssh ") {
                found.push((pid, cmdline));
            }
        }
        found
    }

    /// Waits (up to 10 s) until no ssh process of this test is left, and returns what is left
    /// then (empty when all ended).
    pub fn wait_no_ssh(&self) -> Vec<(u32, String)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.ssh_processes();
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asserts that no ssh process of this test is left (clients and the shared master).
    pub fn assert_no_ssh_left(&self) {
        let left = self.wait_no_ssh();
        assert!(left.is_empty(), "ssh processes left: {left:?}");
    }
}

/// `HOST:/abs/path` for a local path (the remote machine is this one).
pub fn remote(path: &Path) -> String {
    format!("{HOST}:{}", path.display())
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
