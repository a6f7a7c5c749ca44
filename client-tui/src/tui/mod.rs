//! The two-pane terminal interface: local files on the left, a ferry server on the right.
//!
//! The entry point [`run`] owns its tokio runtime, so `main.rs` stays synchronous.

use std::path::PathBuf;

/// What the command line asks of the TUI.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The server to open; `None` starts the bundled server in-process.
    pub target: Option<crate::url::RemoteUrl>,
    /// The server's token, when it needs one.
    pub token: Option<String>,
    /// The directory the bundled server serves (default: the home directory).
    pub serve: Option<PathBuf>,
    /// A config file to read instead of the one in the platform config directory.
    pub config: Option<PathBuf>,
}

/// Runs the full-screen interface until the user quits.
pub fn run(options: Options) -> anyhow::Result<()> {
    let _ = options;
    anyhow::bail!("the TUI is not written yet")
}
