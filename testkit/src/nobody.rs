//! The real `ferry-server` run as `nobody` (through setpriv), for tests that need the server to
//! meet permission denied: root reads everything.

use std::path::Path;
use std::process::{Child, Command};

use crate::bin;

pub const SETPRIV: &str = "/usr/bin/setpriv";
/// setpriv's arguments for running as `nobody` with no extra groups.
pub const AS_NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

/// Fails loudly without setpriv rather than passing without testing.
pub fn require_setpriv() {
    assert!(
        Path::new(SETPRIV).exists(),
        "the test needs setpriv to run the server as another user"
    );
}

/// The server binary as `nobody`, serving `root`; killed on drop.
#[derive(Debug)]
pub struct NobodyServer {
    child: Child,
    pub addr: std::net::SocketAddr,
    pub port: u16,
}

impl NobodyServer {
    pub fn start(root: &Path) -> NobodyServer {
        require_setpriv();
        let (child, mut log) = bin::spawn_logging(
            Command::new(SETPRIV)
                .args(AS_NOBODY)
                .arg(bin::ferry_server())
                .args(["--root", root.to_str().unwrap(), "--listen", "127.0.0.1:0"])
                .env_remove("FERRY_TOKEN"),
        );
        let addr: std::net::SocketAddr = bin::wait_serving(&mut log).parse().unwrap();
        bin::drain(log);
        NobodyServer {
            child,
            addr,
            port: addr.port(),
        }
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
