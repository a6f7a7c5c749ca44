//! The two-pane terminal interface: local files on the left, a ferry server on the right,
//! transfers running in the background below.
//!
//! # Module map
//! - [`app`]: all state and its updates, synchronous and free of IO.
//! - [`event_loop`]: terminal events, background results and the tick; runs [`app::Command`]s.
//! - [`ui`]: pure rendering of an [`app::App`].
//! - [`pane`]: one pane's listing, sort, filter, cursor and marks.
//! - [`partials`]: the dialog of the caller's partial uploads in the remote directory.
//! - [`transfers`]: jobs as the UI sees them and the progress math.
//! - [`keymap`], [`config`], [`theme`]: what keys, files and colours mean.
//! - [`local`], [`remote`]: the left pane's file system, the right pane's session task.
//! - [`input`]: the one-line text field (text formatting is shared with the CLI in
//!   [`crate::format`]).
//!
//! [`run`] owns its tokio runtime, so `main.rs` stays synchronous.

pub mod app;
pub mod config;
pub mod event_loop;
pub mod input;
pub mod keymap;
pub mod local;
pub mod pane;
pub mod partials;
pub mod remote;
pub mod theme;
pub mod transfers;
pub mod ui;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};

use crate::engine::Endpoint;

/// What the command line asks of the TUI.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The server to open; `None` starts the bundled server in-process.
    pub target: Option<crate::url::RemoteUrl>,
    /// The server's token, when it needs one.
    pub token: Option<String>,
    /// The password of the user the target names (`FERRY_PASSWORD` or asked before start).
    pub password: Option<String>,
    /// The directory the bundled server serves (default: the home directory).
    pub serve: Option<PathBuf>,
    /// A config file to read instead of the one in the platform config directory.
    pub config: Option<PathBuf>,
    /// The certificate fingerprint to pin for a `ferrys://` target (`--fingerprint`).
    pub fingerprint: Option<crate::engine::known_hosts::Fingerprint>,
    /// Trust a new certificate of the target without asking (`--accept-new`).
    pub accept_new: bool,
    /// Allow the token in clear text to another machine (`--insecure`).
    pub insecure: bool,
}

/// Runs the full-screen interface until the user quits.
pub fn run(options: Options) -> anyhow::Result<()> {
    let _log_guard = init_logging();
    let (settings, config_warning) = config::load(options.config.as_deref());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(run_async(options, settings, config_warning));
    // Blocking listings of a slow disk must not keep the process alive after quitting.
    runtime.shutdown_timeout(Duration::from_millis(500));
    result
}

async fn run_async(
    options: Options,
    settings: config::Settings,
    config_warning: Option<String>,
) -> anyhow::Result<()> {
    let local_dir = std::env::current_dir().context("reading the current directory")?;
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let (endpoint, remote_path, bundled, recent) = match &options.target {
        Some(url) => {
            let recent = config::Recent {
                url: url.to_string(),
                token: None,
                fingerprint: options.fingerprint.map(|fp| fp.to_string()),
            };
            let mut endpoint = url.endpoint(options.token.clone());
            endpoint.password.clone_from(&options.password);
            endpoint.fingerprint = options.fingerprint;
            endpoint.accept_new = options.accept_new;
            endpoint.insecure = options.insecure;
            (endpoint, url.path.clone(), None, Some(recent))
        }
        None => {
            let root = match &options.serve {
                Some(dir) => dir.clone(),
                None => directories::BaseDirs::new()
                    .map(|b| b.home_dir().to_path_buf())
                    .context("no home directory to serve; pass --serve DIR")?,
            };
            let root = std::fs::canonicalize(&root)
                .with_context(|| format!("serving {}", crate::format::local_path(&root)))?;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .context("starting the bundled server")?;
            let port = listener.local_addr()?.port();
            let token = random_token()?;
            let mut config = ferry_server::Config::new(&root);
            config.token = Some(token.clone());
            tokio::spawn(async move {
                let shutdown = async {
                    let _ = shutdown_rx.await;
                };
                if let Err(error) = ferry_server::run(listener, config, shutdown).await {
                    tracing::error!(
                        "bundled server: {}",
                        crate::format::escape_text(&error.to_string())
                    );
                }
            });
            tracing::info!(
                "bundled server on 127.0.0.1:{port} serving {}",
                crate::format::local_path(&root)
            );
            let endpoint = Endpoint {
                host: "127.0.0.1".into(),
                port,
                token: Some(token),
                ..Endpoint::default()
            };
            (endpoint, String::new(), Some(root), None)
        }
    };

    let recent_list = tokio::task::spawn_blocking(config::load_recent)
        .await
        .unwrap_or_default();
    let label = endpoint.address();
    tracing::info!(
        "ferry {} opening {label} with {} on the left",
        env!("CARGO_PKG_VERSION"),
        crate::format::local_path(&local_dir)
    );
    let mut app = app::App::new(settings, local_dir, label, remote_path);
    app.config_path = options.config.clone().or_else(config::default_config_path);
    app.conn.bundled = bundled;
    app.recent = recent_list;
    if let Some(recent) = recent {
        app.remember_on_connect(recent);
    }
    if let Some(url) = options.target.as_ref().filter(|url| url.user.is_some()) {
        app.expect_login(app::Login {
            url: url.to_string(),
            token: options.token.clone(),
            fingerprint: options.fingerprint.map(|fp| fp.to_string()),
        });
    }
    if let Some(warning) = config_warning {
        app.error(warning);
    }

    let mut terminal = ratatui::try_init().context("opening the terminal")?;
    install_panic_hook();
    let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture);
    let result = event_loop::run(&mut terminal, app, endpoint).await;
    let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    let _ = shutdown_tx.send(());
    result
}

/// Restores the terminal on a panic anywhere, then exits: a panic in a tokio task would
/// otherwise leave the loop running on a terminal that is no longer in raw mode.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
        ratatui::restore();
        tracing::error!("panic: {info}");
        previous(info);
        std::process::exit(101);
    }));
}

/// Logs to `ferry.log` in the state directory: the screen belongs to the TUI.
fn init_logging() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir = config::state_dir()?;
    std::fs::create_dir_all(&dir).ok()?;
    let appender = tracing_appender::rolling::never(&dir, "ferry.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .finish();
    // main.rs may have installed one already; that one then keeps the logs.
    tracing::subscriber::set_global_default(subscriber).ok()?;
    Some(guard)
}

/// A token known only to this process, for the bundled server. With no randomness from the OS
/// there is no safe token, so the bundled server does not start rather than run guessable.
fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for the bundled server's token: {e}"))?;
    Ok(ferry_protocol::digest::hex(&bytes))
}

#[cfg(test)]
mod tests {
    #[test]
    fn bundled_tokens_are_128_random_bits() {
        let a = super::random_token().unwrap();
        let b = super::random_token().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
