//! The workspace's real binaries, and what a `ferry-server` process says on stderr: its
//! "serving" line names the address it listens on, and its log must keep being read so a full
//! pipe never stalls it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Stdio};

/// The path of the workspace binary `name` (`ferry`, `ferry-server`), built first when the
/// test's own package did not build it: it sits beside the `deps` folder holding the test.
pub fn path(name: &str, package: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = dir.join(name);
    if !binary.exists() {
        let built = Command::new(env!("CARGO"))
            .args(["build", "-p", package, "--bin", name])
            .status()
            .unwrap();
        assert!(built.success(), "building {name}");
    }
    binary
}

/// The `ferry-server` binary.
pub fn ferry_server() -> PathBuf {
    path("ferry-server", "ferry-server")
}

/// Starts a server's `command` logging at info level into a pipe the test reads (returned);
/// its stdout is dropped.
pub fn spawn_logging(command: &mut Command) -> (Child, BufReader<ChildStderr>) {
    let mut child = command
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = BufReader::new(child.stderr.take().unwrap());
    (child, log)
}

/// The address a log line announces when it is the server's "serving" line.
pub fn serving_addr(line: &str) -> Option<&str> {
    if !line.contains("serving") {
        return None;
    }
    line.split_whitespace()
        .find_map(|word| word.strip_prefix("addr="))
}

/// Reads a server's log until a line `wanted` accepts, and returns it; panics when the server
/// exits first.
pub fn wait_line(log: &mut impl BufRead, wanted: impl Fn(&str) -> bool) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            log.read_line(&mut line).unwrap() > 0,
            "server exited before serving"
        );
        if wanted(&line) {
            return line;
        }
    }
}

/// Reads a server's log until its "serving" line and returns the address in it.
pub fn wait_serving(log: &mut impl BufRead) -> String {
    let line = wait_line(log, |line| serving_addr(line).is_some());
    serving_addr(&line).unwrap().to_owned()
}

/// Keeps reading a log on its own thread: the server logs each request, and a full pipe must
/// not stall it.
pub fn drain(mut log: impl BufRead + Send + 'static) {
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
}
