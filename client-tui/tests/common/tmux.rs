//! The real `ferry` in a tmux terminal (the driver is `ferry_testkit::tmux`), and the
//! directories a TUI test starts it in.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

pub use ferry_testkit::tmux::{Tmux, WAIT, require_tmux};

/// A `width` x `height` terminal running the real `ferry` with `args` in `cwd`, with `env` set
/// and the developer's own setup cleared (see [`Tmux::start`]).
pub fn start_ferry(
    socket: PathBuf,
    cwd: &Path,
    env: &[(&str, &Path)],
    args: &[&str],
    size: (u16, u16),
) -> Tmux {
    Tmux::start(socket, cwd, env, &[env!("CARGO_BIN_EXE_ferry")], args, size)
}

/// Where a TUI test runs ferry: a temporary directory holding the tmux socket, an empty
/// `home` (so no developer's config is read) and the `local` directory ferry starts in.
pub struct Desk {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub local: PathBuf,
}

impl Desk {
    pub fn new() -> Desk {
        Self::in_dir(tempfile::tempdir().unwrap())
    }

    /// On tmpfs, for big files.
    pub fn on_shm() -> Desk {
        Self::in_dir(ferry_testkit::data::shm_dir())
    }

    fn in_dir(tmp: tempfile::TempDir) -> Desk {
        let (home, local) = (tmp.path().join("home"), tmp.path().join("local"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&local).unwrap();
        Desk { tmp, home, local }
    }

    /// A new directory `name` beside `home` and `local`, such as the directory a server serves.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// ferry with `args` in `local`, with `HOME` set to `home`.
    pub fn ferry(&self, args: &[&str], size: (u16, u16)) -> Tmux {
        start_ferry(
            self.tmp.path().join("tmux.sock"),
            &self.local,
            &[("HOME", &self.home)],
            args,
            size,
        )
    }
}

/// Waits until `path` holds exactly `expected`, showing the screen if it never does.
pub fn wait_for_file(path: &Path, expected: &[u8], tmux: &Tmux) {
    let start = std::time::Instant::now();
    while std::fs::read(path).ok().as_deref() != Some(expected) {
        assert!(
            start.elapsed() < WAIT,
            "{} never got the expected bytes; the screen:\n{}",
            path.display(),
            tmux.screen()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The left pane's half of a screen line (two panes meet at `││`).
pub fn left_pane(line: &str) -> &str {
    line.split_once("││").map_or(line, |(left, _)| left)
}

/// The right pane's half of a screen line, when the line has one.
pub fn right_pane(line: &str) -> Option<&str> {
    line.split_once("││").map(|(_, right)| right)
}

/// Whether the screen shows the left pane's cursor (`›`) on a row holding `name`.
pub fn cursor_left(screen: &str, name: &str) -> bool {
    screen
        .lines()
        .map(left_pane)
        .any(|l| l.contains('›') && l.contains(name))
}

/// Whether the screen shows the right pane's cursor (`›`) on a row holding `name`.
pub fn cursor_right(screen: &str, name: &str) -> bool {
    screen
        .lines()
        .filter_map(right_pane)
        .any(|r| r.contains('›') && r.contains(name))
}

/// The last line of the screen: the status bar.
pub fn status_line(screen: &str) -> &str {
    screen
        .trim_end_matches('\n')
        .lines()
        .last()
        .unwrap_or_default()
}

/// The ferry process under the tmux pane's shell.
pub fn ferry_pid(tmux: &Tmux) -> u32 {
    let out = tmux.run(&["list-panes", "-t", "t", "-F", "#{pane_pid}"]);
    let shell: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
    children
        .split_whitespace()
        .map(|p| p.parse::<u32>().unwrap())
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "ferry")
        })
        .unwrap_or(shell)
}
