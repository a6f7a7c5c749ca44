//! A tmux server on a private socket, for the tests that drive the real `ferry` binary like a
//! person: keys in, screen text out, polling instead of fixed sleeps.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long any one screen or file state may take to appear.
pub const WAIT: Duration = Duration::from_secs(30);

/// A tmux server on a private socket, killed when the test ends however it ends.
#[derive(Debug)]
pub struct Tmux {
    pub socket: PathBuf,
}

impl Tmux {
    pub fn run(&self, args: &[&str]) -> Output {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output();
        match output {
            Ok(output) => output,
            Err(e) => panic!("running tmux: {e}"),
        }
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        let out = self.run(&args);
        assert!(
            out.status.success(),
            "send-keys: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    /// Polls the screen until `check` accepts it, twice: tmux shows a frame as it arrives, so
    /// the first capture that passes may be half drawn (the next assertion then reads torn
    /// rows, as seen under load). A second look a moment later must pass too, and is the one
    /// returned. Not "two equal captures": a transfer's progress redraws every tick.
    pub fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if check(&screen) {
                std::thread::sleep(Duration::from_millis(50));
                let settled = self.screen();
                if check(&settled) {
                    return settled;
                }
            }
            if start.elapsed() > WAIT {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// Fails loudly without tmux rather than passing without testing.
pub fn require_tmux() {
    let version = Command::new("tmux").arg("-V").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "tmux is required for the TUI end-to-end test (install it: apt-get install -y tmux)"
    );
}

impl Tmux {
    /// A `width` x `height` terminal on a private tmux socket running `program` (the real
    /// `ferry`, or a command line that runs it, such as setpriv's) with `args`, in `cwd`, with
    /// `env` set and every variable that could leak a developer's own setup in (XDG
    /// directories, `FERRY_TOKEN`, `FERRY_PASSWORD`) cleared first. The shell prints `EXIT=N`
    /// when ferry ends and keeps the pane a minute for the test to read.
    pub fn start(
        socket: PathBuf,
        cwd: &std::path::Path,
        env: &[(&str, &std::path::Path)],
        program: &[&str],
        args: &[&str],
        (width, height): (u16, u16),
    ) -> Tmux {
        require_tmux();
        let quote = |text: &str| format!("'{}'", text.replace('\'', r"'\''"));
        let mut command = format!(
            "cd {} && env -u XDG_CONFIG_HOME -u XDG_STATE_HOME -u XDG_DATA_HOME \
             -u XDG_CACHE_HOME -u FERRY_PASSWORD -u FERRY_TOKEN",
            quote(&cwd.display().to_string())
        );
        for (name, value) in env {
            command.push_str(&format!(" {name}={}", quote(&value.display().to_string())));
        }
        for arg in program.iter().chain(args) {
            command.push(' ');
            command.push_str(&quote(arg));
        }
        command.push_str("; echo EXIT=$?; sleep 60");
        let tmux = Tmux { socket };
        let (width, height) = (width.to_string(), height.to_string());
        let out = tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &width,
            "-y",
            &height,
            &command,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }
}
