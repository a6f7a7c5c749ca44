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
    /// Connections served at once from one client address; more are turned away with `busy`.
    #[arg(long, default_value_t = 32)]
    max_per_address: usize,
    /// Seconds a transfer may make no progress at all before its connection is closed.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    stall_timeout: u64,
    /// Speak TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "no_tls"
    )]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        conflicts_with = "no_tls"
    )]
    tls_key: Option<PathBuf>,
    /// Speak TLS with a self-signed certificate made on first start and kept in the data
    /// directory. On by default when listening beyond loopback.
    #[arg(long, conflicts_with = "no_tls")]
    tls: bool,
    /// Speak plain TCP even beyond loopback: tokens and files cross the network readable.
    #[arg(long)]
    no_tls: bool,
    /// Where the self-signed certificate is kept (default: the user's data directory).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
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
    let data_dir = args.data_dir.clone();
    let mut config = Config::new(args.root);
    config.read_only = args.read_only;
    config.token = args.token.filter(|token| !token.is_empty());
    config.max_connections = args.max_connections.max(1);
    config.idle_timeout = Duration::from_secs(args.idle_timeout.max(1));
    config.max_per_address = args.max_per_address.max(1);
    config.stall_timeout = Duration::from_secs(args.stall_timeout.max(1));

    let listener = tokio::net::TcpListener::bind(args.listen.as_str())
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let loopback = listener
        .local_addr()
        .is_ok_and(|addr| addr.ip().is_loopback());
    config.tls = tls_identity(
        &args.tls_cert,
        &args.tls_key,
        args.tls,
        args.no_tls,
        loopback,
        data_dir.as_deref(),
        &args.listen,
    )?;
    ferry_server::run(listener, config, shutdown_signal()).await?;
    Ok(())
}

/// The TLS configuration the flags ask for: PEM files, or the kept self-signed pair with
/// `--tls` or beyond loopback; none on loopback or with `--no-tls`. Its fingerprint is logged
/// so the owner can hand it to users who pin it.
fn tls_identity(
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
    tls: bool,
    no_tls: bool,
    loopback: bool,
    data_dir: Option<&std::path::Path>,
    listen: &str,
) -> anyhow::Result<Option<std::sync::Arc<rustls::ServerConfig>>> {
    use ferry_server::tls;
    let identity = match (cert, key) {
        (Some(cert), Some(key)) => tls::from_pem_files(cert, key)?,
        _ if no_tls => {
            if !loopback {
                tracing::warn!(
                    "TLS is off beyond loopback (--no-tls): tokens, passwords and files cross \
                     the network readable by anyone on the path"
                );
            }
            return Ok(None);
        }
        _ if tls || !loopback => {
            let dir = match data_dir {
                Some(dir) => dir.to_owned(),
                None => tls::default_data_dir().ok_or(tls::TlsError::NoDataDir)?,
            };
            tls::self_signed(&dir, &tls::names_for(listen))?
        }
        _ => return Ok(None),
    };
    if identity.generated {
        tracing::info!(cert = %identity.cert_path.display(), "generated a self-signed TLS certificate");
    }
    tracing::info!(
        fingerprint = %identity.fingerprint,
        cert = %identity.cert_path.display(),
        "TLS on; clients can pin this certificate with --fingerprint {}",
        identity.fingerprint
    );
    Ok(Some(identity.config))
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
