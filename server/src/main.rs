//! The `ferry-server` binary: flags, logging, the socket, and signals; everything else is the
//! library's [`ferry_server::run`].

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ferry_server::Config;
use tracing_subscriber::EnvFilter;

/// Serves one directory to ferry clients.
#[derive(Debug, Parser)]
#[command(name = "ferry-server", version, about)]
struct Args {
    /// The directory to serve; clients cannot reach outside it.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Address and port to listen on (a host name is resolved).
    #[arg(long, default_value_t = format!("127.0.0.1:{}", ferry_protocol::DEFAULT_PORT))]
    listen: String,
    /// Refuse every change to the served tree.
    #[arg(long)]
    read_only: bool,
    /// Shared secret clients must present in their hello.
    #[arg(long, env = "FERRY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Connections served at once; more are turned away with `busy`.
    #[arg(long, default_value_t = 256)]
    max_connections: usize,
    /// Seconds a connection may stay silent before it is closed.
    #[arg(long, default_value_t = 300)]
    idle_timeout: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    raise_open_file_limit();
    let mut config = Config::new(args.root);
    config.read_only = args.read_only;
    config.token = args.token.filter(|token| !token.is_empty());
    config.max_connections = args.max_connections.max(1);
    config.idle_timeout = Duration::from_secs(args.idle_timeout.max(1));

    let listener = tokio::net::TcpListener::bind(args.listen.as_str())
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    ferry_server::run(listener, config, shutdown_signal()).await?;
    Ok(())
}

/// Every connection holds a socket and, while walking a tree, two descriptors per level; the
/// common default soft limit of 1024 is too low for that, and the hard limit is ours to take.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(err) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(%err, "cannot raise the open file limit");
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
