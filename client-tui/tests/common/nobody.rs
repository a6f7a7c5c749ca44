//! The real `ferry-server` binary run as `nobody` (through setpriv), for tests that need the
//! server to meet permission denied: root reads everything.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const SETPRIV: &str = "/usr/bin/setpriv";
/// setpriv's arguments for running as `nobody` with no extra groups.
pub const AS_NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The server binary as `nobody`, serving `root`; killed on drop.
pub struct NobodyServer {
    child: Child,
    pub port: u16,
}

impl NobodyServer {
    pub fn start(root: &Path) -> NobodyServer {
        assert!(Path::new(SETPRIV).exists(), "the test needs setpriv");
        let server = Path::new(env!("CARGO_BIN_EXE_ferry")).with_file_name("ferry-server");
        if !server.exists() {
            let built = Command::new(env!("CARGO"))
                .args(["build", "-p", "ferry-server", "--bin", "ferry-server"])
                .status()
                .unwrap();
            assert!(built.success());
        }
        let mut child = Command::new(SETPRIV)
            .args(AS_NOBODY)
            .arg(&server)
            .args(["--root", root.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env_remove("FERRY_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let port = loop {
            line.clear();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "server exited");
            if let Some(addr) = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("addr="))
            {
                break addr.rsplit(':').next().unwrap().parse().unwrap();
            }
        };
        // The server logs each request; a full pipe must not stall it.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        NobodyServer { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ferry://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for NobodyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
