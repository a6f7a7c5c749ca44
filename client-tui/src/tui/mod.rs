//! The two-pane terminal interface: local files on the left, a ferry server on the right,
//! transfers running in the background below.
//!
//! # Module map
//! - [`app`]: the coordinator: one [`app::App`] holds the components below and routes keys,
//!   clicks and news to them; synchronous and free of IO.
//! - [`message`]: the vocabulary with the event loop: [`message::Effect`]s out, [`message::Msg`]s in.
//! - [`event_loop`]: terminal events, background results and the tick; runs the effects.
//! - Components, each with its own state and keys: [`pane`] (one pane's listing, sort,
//!   filter, cursor and marks) over [`location`] (sides and paths) and [`attrs`] (its
//!   attribute columns); [`dialogs`] (the modal dialogs and their outcomes), [`partials`]
//!   (the partial-uploads dialog) and [`rate`] (the rate limit prompt and how a limit is shown); [`copy_dialog`] (F5/F6's where-to and policy); [`conflict`]
//!   (an existing destination's question); [`compare`] (marking what differs between the
//!   panes); [`chmod`] (the permissions dialog); [`find`] (find file: the pattern, the matches
//!   as they arrive, the jump); [`jobs`] (the transfer list and its rows, with
//!   [`job_request`] making a copy's request and [`job_report`] saying how a job ended);
//!   [`server_link`] (what the remote pane knows of its server); [`mouse`] (clicks and drags);
//!   [`screen`] (focus, banner).
//! - [`layout`]: where each part of the screen goes, as numbers; shared by [`ui`] and the
//!   click mapping.
//! - [`ui`]: pure rendering of a [`ui::View`] borrowed from the app.
//! - [`keymap`], [`config`], [`theme`]: what keys, files and colours mean.
//! - [`disk`], [`remote`]: the left pane's file system, the right pane's link to the engine's
//!   browsing worker.
//! - [`viewer`]: F3's internal viewer (text or hex, reading only what is shown) and, in
//!   [`viewer::edit`], what F3, F4, Enter on a file and Ctrl+O do with a file; [`external`]
//!   hands the screen to another program (editor, pager, opener, shell) and takes it back.
//! - [`input`]: the one-line text field (text formatting is shared with the CLI in
//!   [`crate::format`]).
//!
//! [`run`] owns its tokio runtime, so `main.rs` stays synchronous.

pub mod app;
pub mod attrs;
pub mod chmod;
pub mod compare;
pub mod config;
pub mod conflict;
pub mod copy_dialog;
pub mod dialogs;
pub mod disk;
pub mod event_loop;
pub mod external;
pub mod find;
pub mod input;
pub mod job_report;
pub mod job_request;
pub mod jobs;
pub mod keymap;
pub mod layout;
pub mod location;
pub mod message;
pub mod mouse;
pub mod pane;
pub mod partials;
pub mod places;
pub mod queue;
pub mod rank;
pub mod rate;
pub mod remote;
pub mod screen;
pub mod server_link;
pub mod sync_dialog;
pub mod theme;
pub mod ui;
pub mod viewer;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};

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
    let (endpoint, remote_path, bundled, recent, server) = match &options.target {
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
            (endpoint, url.path.clone(), None, Some(recent), None)
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
            let server = crate::engine::bundled::start(&root).await?;
            let endpoint = server.endpoint.clone();
            (endpoint, String::new(), Some(root), None, Some(server))
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
    app.bundled_server = bundled.clone().map(|root| (root, endpoint.clone()));
    let bundled_session = bundled.clone();
    app.conn.bundled = bundled;
    app.conn.tls = endpoint.tls;
    app.recent = recent_list;
    app.ssh_hosts = tokio::task::spawn_blocking(crate::engine::ssh::user_config_hosts)
        .await
        .unwrap_or_default();
    if let Some(recent) = recent {
        app.remember_on_connect(recent);
    }
    if let Some(url) = options
        .target
        .as_ref()
        .filter(|url| url.user.is_some() && url.ssh.is_none())
    {
        app.expect_login(app::PendingLogin {
            url: url.to_string(),
            token: options.token.clone(),
            fingerprint: options.fingerprint.map(|fp| fp.to_string()),
        });
    }
    if let Some(warning) = config_warning {
        app.error(warning);
    }
    // Transfers an earlier run left unfinished. Not for the bundled server: its port is new
    // each run, so no job would ever match it.
    if bundled_session.is_none() {
        let path = config::state_dir().map(|dir| queue::path_in(&dir));
        let loaded = path.as_deref().map(queue::load).unwrap_or_default();
        app.queue = queue::Queue::restore(path, loaded.jobs, &endpoint);
        if let Some(note) = loaded.note {
            app.error(note);
        }
        app.offer_saved_jobs();
    }

    let mut terminal = ratatui::try_init().context("opening the terminal")?;
    install_panic_hook();
    let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture);
    let result = event_loop::run(&mut terminal, app, endpoint).await;
    let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    if let Some(server) = server {
        server.stop();
    }
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
