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
#[command(
    name = "ferry-server",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// The directory to serve; clients cannot reach outside it [default: the current
    /// directory, or / with --stdio].
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Serve exactly one session over stdin and stdout, as `ssh host ferry-server --stdio`
    /// runs it: no listener, no token (ssh authenticated the user), the user's own
    /// permissions the only limit; logs go to stderr (or --log-file), never stdout. Exits
    /// when the session ends, with 0 when the client ended it. Refuses the flags of a
    /// listener (--listen, TLS, --token, --users, connection caps, login budgets).
    #[arg(long)]
    stdio: bool,
    /// Append the log to this file instead of writing it to stderr.
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// Address and port to listen on (a host name is resolved). Without --token or --users,
    /// only a loopback address is accepted.
    #[arg(long, default_value_t = format!("127.0.0.1:{}", ferry_protocol::DEFAULT_PORT))]
    listen: String,
    /// Refuse every change to the served tree.
    #[arg(long)]
    read_only: bool,
    /// Shared secret clients must present in their hello.
    #[arg(long, env = "FERRY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Connections served at once; more are turned away with `busy`.
    #[arg(long, default_value_t = 256, value_parser = at_least_one)]
    max_connections: usize,
    /// How long a connection may stay silent between requests before it is closed, e.g. 300,
    /// 90s, 5min (a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "5min", value_parser = parse_timeout)]
    idle_timeout: Duration,
    /// Connections served at once from one client address; more are turned away with `busy`.
    #[arg(long, default_value_t = 32, value_parser = at_least_one)]
    max_per_address: usize,
    /// How long a new connection has to log in (a successful hello) before it is closed, e.g.
    /// 10, 10s, 1min (a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_timeout)]
    login_timeout: Duration,
    /// Connections not logged in yet, at most. At this cap, or at --max-connections or
    /// --max-per-address, a new connection takes the place of the oldest one not logged in, so
    /// connections that never log in cannot keep a user out.
    #[arg(long, default_value_t = 64, value_parser = at_least_one)]
    max_unauthenticated: usize,
    /// After 5 failed logins from one address, it gets one attempt per this interval until
    /// its failures are paid off, e.g. 2s, 500ms.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_timeout)]
    address_login_interval: Duration,
    /// Addresses that have failed logins get, all together, one attempt per this interval
    /// (after a burst of 10), e.g. 250ms, 1s; other addresses are not held up by them.
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = parse_timeout)]
    server_login_interval: Duration,
    /// How long a transfer may make no progress at all before its connection is closed, e.g.
    /// 60, 30s, 2min (a bare number is seconds). A slow transfer that moves is never cut.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_timeout)]
    stall_timeout: Duration,
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
    /// Largest file an upload may leave, e.g. 500M, 10G or 512MiB (K, M, G, T are powers of
    /// 1000; Ki, Mi, Gi, Ti powers of 1024). No limit when absent.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    max_upload_size: Option<u64>,
    /// Free space to keep on the root's filesystem; an upload that would leave less is refused
    /// with `no_space` before its bytes are read (with 0, only one that cannot fit at all).
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_bytes)]
    reserve: u64,
    /// Bytes per second each connection may send, and may receive, e.g. 10M or 1MiB (as for
    /// --max-upload-size); held within 5 % over any 2 seconds, without bursts. No limit when
    /// absent (or 0).
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    limit_rate: Option<u64>,
    /// Bytes per second all connections together may send, and may receive (shared by them
    /// as they come); with --limit-rate, each connection obeys both.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    limit_rate_total: Option<u64>,
    /// Longest request header in bytes, newline included (1024 to 65536).
    #[arg(long, value_name = "BYTES", default_value_t = ferry_protocol::MAX_HEADER_LEN as u64,
          value_parser = clap::value_parser!(u64).range(1024..=ferry_protocol::MAX_HEADER_LEN as u64))]
    max_header_len: u64,
    /// Longest path a request may name, in bytes (1 to 4096).
    #[arg(long, value_name = "BYTES", default_value_t = ferry_protocol::path::MAX_PATH_LEN as u64,
          value_parser = clap::value_parser!(u64).range(1..=ferry_protocol::path::MAX_PATH_LEN as u64))]
    max_path_len: u64,
    /// Longest name in a request path, in bytes (1 to 255).
    #[arg(long, value_name = "BYTES", default_value_t = ferry_protocol::path::MAX_NAME_LEN as u64,
          value_parser = clap::value_parser!(u64).range(1..=ferry_protocol::path::MAX_NAME_LEN as u64))]
    max_name_len: u64,
    /// Remove hidden partial uploads untouched for this long, e.g. 24h, 3d, 90min; `never`
    /// keeps them. A partial is what lets an interrupted upload resume.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_expiry)]
    partial_expiry: Expiry,
    /// The name this server announces on the local network [default: the host name].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Do not announce this server on the local network (DNS-SD over multicast DNS,
    /// `_ferry._tcp`). A server listening on loopback only, or with --stdio, never announces.
    #[arg(long)]
    no_announce: bool,
    /// Accounts file: one `NAME:ACCESS:HASH:ROOT` line per user, each confined to their own
    /// root (write entries with `ferry-server hash-password`). Clients then log in as a user;
    /// with --token too, the token alone also works (on --root).
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
}

/// Anything but serving.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Hash a password with argon2id for the users file.
    ///
    /// The password is read from the terminal without echo (asked twice), or from the first
    /// line of stdin when it is not a terminal. With --users, the account is added to that
    /// file (or its line replaced) atomically, mode 0600; with --user and --root alone, the
    /// whole line is printed; otherwise just the hash.
    HashPassword(HashPassword),
}

#[derive(Debug, clap::Args)]
struct HashPassword {
    /// The users file to add the account to (created if missing, in a directory that must
    /// exist); needs --user and --root.
    #[arg(long, value_name = "FILE", requires_all = ["user", "root"])]
    users: Option<PathBuf>,
    /// The account's name: 1 to 64 letters, digits, '.', '_' or '-'.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// The directory the account is confined to (made absolute).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// The account may read but never change anything.
    #[arg(long)]
    read_only: bool,
}

#[tokio::main]
async fn main() {
    let code = match start().await {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("ferry-server: {}", causes(&err));
            1
        }
    };
    // Exits here rather than by returning: tokio reads stdin on a blocking thread whose read
    // cannot be cancelled, and dropping the runtime would wait for it, so a `--stdio` session
    // that ended while its client still held stdin open would never exit.
    std::process::exit(code);
}

/// An error and its causes on one line, each cause only once: many messages already quote
/// their source, and anyhow's own report would repeat it (and add a backtrace when
/// `RUST_BACKTRACE` is set, which tells an owner nothing about a bad flag or file).
fn causes(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line
}

/// The flags that configure a listener (and the sweep of a long-running server), which
/// `--stdio` has none of; each is refused when given on the command line with it.
const LISTENER_FLAGS: [(&str, &str); 14] = [
    ("listen", "--listen"),
    ("token", "--token"),
    ("users", "--users"),
    ("tls", "--tls"),
    ("tls_cert", "--tls-cert"),
    ("tls_key", "--tls-key"),
    ("no_tls", "--no-tls"),
    ("data_dir", "--data-dir"),
    ("max_connections", "--max-connections"),
    ("max_per_address", "--max-per-address"),
    ("max_unauthenticated", "--max-unauthenticated"),
    ("address_login_interval", "--address-login-interval"),
    ("server_login_interval", "--server-login-interval"),
    ("partial_expiry", "--partial-expiry"),
];

async fn start() -> anyhow::Result<()> {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Args::command().get_matches();
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    if let Some(Command::HashPassword(hash)) = &args.command {
        return hash_password(hash);
    }
    let given = |id: &str| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
    if args.stdio {
        let refused: Vec<&str> = LISTENER_FLAGS
            .iter()
            .filter(|(id, _)| given(id))
            .map(|(_, flag)| *flag)
            .collect();
        if !refused.is_empty() {
            anyhow::bail!(
                "{} cannot be used with --stdio: it serves one session over stdin and stdout \
                 that ssh has already authenticated and encrypted, so it has no listener, TLS, \
                 token, users file, connection caps, login budgets or partial sweep",
                refused.join(", ")
            );
        }
    }
    init_logging(&args)?;

    raise_open_file_limit();
    if args.stdio {
        return serve_stdio(args).await;
    }
    let data_dir = args.data_dir.clone();
    let mut config = Config::new(args.root.clone().unwrap_or_else(|| PathBuf::from(".")));
    config.read_only = args.read_only;
    config.token = args.token.clone().filter(|token| !token.is_empty());
    if let Some(path) = &args.users {
        let users = ferry_server::users::Users::load(path)?;
        config.users = Some(std::sync::Arc::new(users));
    }
    set_session_limits(&mut config, &args);
    config.max_connections = args.max_connections;
    config.max_per_address = args.max_per_address;
    config.max_unauthenticated = args.max_unauthenticated;
    config.address_login_interval = args.address_login_interval;
    config.server_login_interval = args.server_login_interval;
    config.partial_expiry = args.partial_expiry.0;

    let listener = tokio::net::TcpListener::bind(args.listen.as_str())
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let loopback = listener
        .local_addr()
        .is_ok_and(|addr| addr.ip().is_loopback());
    // Checked again by `run`; here too so nothing (a TLS certificate) is made for a start that
    // is refused anyway.
    if !loopback && config.token.is_none() && config.users.is_none() {
        let addr = listener.local_addr()?;
        return Err(ferry_server::ServerError::Unprotected { addr }.into());
    }
    let identity = tls_identity(
        &args.tls_cert,
        &args.tls_key,
        args.tls,
        args.no_tls,
        loopback,
        data_dir.as_deref(),
        &args.listen,
    )?;
    let fingerprint = identity
        .as_ref()
        .map(|(_, fingerprint)| fingerprint.clone());
    config.tls = identity.map(|(tls, _)| tls);
    log_limits(&config);
    let announcer = announce(&args, &listener, fingerprint);
    let served = ferry_server::run(listener, config, shutdown_signal()).await;
    if let Some(announcer) = announcer {
        announcer.stop();
    }
    served?;
    Ok(())
}

/// Announces the server on the local network unless `--no-announce` (or loopback only, which
/// `announce::start` declines); a failure to announce is logged and serving goes on.
fn announce(
    args: &Args,
    listener: &tokio::net::TcpListener,
    fingerprint: Option<String>,
) -> Option<ferry_server::announce::Announcer> {
    use ferry_server::announce;
    if args.no_announce {
        tracing::debug!("--no-announce: not announced on the local network");
        return None;
    }
    let bound = listener.local_addr().ok()?;
    let what = announce::Announcement {
        name: args.name.clone().unwrap_or_else(announce::host_name),
        fingerprint,
        read_only: args.read_only,
    };
    announce::start(bound, &what).unwrap_or_else(|err| {
        tracing::warn!("{err}; serving on without it");
        None
    })
}

/// Logs to stderr, or appended to `--log-file`; never to stdout, which `--stdio` speaks the
/// protocol on. A `--stdio` session logs only warnings by default, since ssh hands its stderr
/// to the client's terminal; `RUST_LOG` still chooses.
fn init_logging(args: &Args) -> anyhow::Result<()> {
    let default = if args.stdio { "warn" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match &args.log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the log file {}", path.display()))?;
            logs.with_writer(std::sync::Mutex::new(file))
                .with_ansi(false)
                .init();
        }
        None => logs
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
    }
    Ok(())
}

/// `--stdio`: one session over stdin and stdout, then exit. A token in the environment
/// (`FERRY_TOKEN`, perhaps left from serving elsewhere) is ignored, and said so.
async fn serve_stdio(args: Args) -> anyhow::Result<()> {
    if args.token.is_some() {
        tracing::warn!("FERRY_TOKEN is ignored with --stdio: ssh already authenticated the user");
    }
    let mut config = Config::new(args.root.clone().unwrap_or_else(|| PathBuf::from("/")));
    config.read_only = args.read_only;
    set_session_limits(&mut config, &args);
    ferry_server::serve_stdio(config, shutdown_signal()).await?;
    Ok(())
}

/// The limits of one session, the same whether it came through the listener or over stdio.
fn set_session_limits(config: &mut Config, args: &Args) {
    config.idle_timeout = args.idle_timeout;
    config.login_timeout = args.login_timeout;
    config.stall_timeout = args.stall_timeout;
    config.max_upload_size = args.max_upload_size;
    config.free_space_reserve = args.reserve;
    config.limit_rate = args.limit_rate.filter(|&rate| rate > 0);
    config.limit_rate_total = args.limit_rate_total.filter(|&rate| rate > 0);
    // Within the ranges clap checked, so they fit.
    config.max_header_len = usize::try_from(args.max_header_len).unwrap_or(usize::MAX);
    config.max_path_len = usize::try_from(args.max_path_len).unwrap_or(usize::MAX);
    config.max_name_len = usize::try_from(args.max_name_len).unwrap_or(usize::MAX);
}

/// The limits in force, so an owner can confirm what the flags did; and a warning when the
/// free-space reserve already exceeds the free space, since every upload would then fail.
fn log_limits(config: &Config) {
    let size = |bytes: u64| humansize::format_size(bytes, humansize::BINARY);
    tracing::info!(
        max_upload_size = %config.max_upload_size.map_or("none".to_owned(), size),
        reserve = %size(config.free_space_reserve),
        partial_expiry = %config
            .partial_expiry
            .map_or("never".to_owned(), |expiry| humantime::format_duration(expiry).to_string()),
        max_connections = config.max_connections,
        max_per_address = config.max_per_address,
        max_unauthenticated = config.max_unauthenticated,
        login_timeout = %humantime::format_duration(config.login_timeout),
        idle_timeout = %humantime::format_duration(config.idle_timeout),
        stall_timeout = %humantime::format_duration(config.stall_timeout),
        limit_rate = %config.limit_rate.map_or("none".to_owned(), |rate| size(rate) + "/s"),
        limit_rate_total = %config
            .limit_rate_total
            .map_or("none".to_owned(), |rate| size(rate) + "/s"),
        "limits"
    );
    if let Ok(stats) = rustix::fs::statvfs(&config.root) {
        let free = stats.f_bavail.saturating_mul(stats.f_frsize);
        if free < config.free_space_reserve {
            tracing::warn!(
                "the free-space reserve ({}) is more than the root's filesystem has free ({}): \
                 every upload will be refused with no_space until space is freed or --reserve \
                 lowered",
                size(config.free_space_reserve),
                size(free)
            );
        }
    }
}

/// The TLS configuration the flags ask for: PEM files, or the kept self-signed pair with
/// `--tls` or beyond loopback; none on loopback or with `--no-tls`. Its fingerprint is logged
/// so the owner can hand it to users who pin it, and returned for the announcement.
fn tls_identity(
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
    tls: bool,
    no_tls: bool,
    loopback: bool,
    data_dir: Option<&std::path::Path>,
    listen: &str,
) -> anyhow::Result<Option<(std::sync::Arc<rustls::ServerConfig>, String)>> {
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
    Ok(Some((identity.config, identity.fingerprint)))
}

/// A size with an optional unit: `parse-size`'s rules (K = 1000, Ki = 1024, a `B` optional).
fn parse_bytes(text: &str) -> Result<u64, String> {
    parse_size::parse_size(text).map_err(|err| format!("{err} (try 500M, 10G or 512MiB)"))
}

/// A count that must be at least one.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(err) => Err(err.to_string()),
    }
}

/// A timeout: a bare number of seconds, or a duration like 90s or 5min; never zero, which
/// would close every connection at once.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let timeout = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(text)
            .map_err(|err| format!("{err} (try 60, 30s, 5min or 1h)"))?,
    };
    if timeout.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(timeout)
}

/// How long a partial upload is kept; `None` for ever.
#[derive(Debug, Clone, Copy)]
struct Expiry(Option<Duration>);

fn parse_expiry(text: &str) -> Result<Expiry, String> {
    if text.eq_ignore_ascii_case("never") {
        return Ok(Expiry(None));
    }
    let expiry = humantime::parse_duration(text)
        .map_err(|err| format!("{err} (try 24h, 3d, 90min or never)"))?;
    if expiry.is_zero() {
        return Err(
            "a zero expiry would sweep every interrupted upload; use never to keep them".into(),
        );
    }
    Ok(Expiry(Some(expiry)))
}

/// Every connection holds a socket and, while walking a tree, three descriptors per level; the
/// common default soft limit of 1024 is too low for that, and the hard limit is ours to take.
/// The server measures the limit after this and budgets its descriptors from it.
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
/// The SIGTERM handler is installed when this is called, not when the future is first polled,
/// so a signal that arrives right after the "serving" line still stops the server cleanly.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        wait_for_signal(
            #[cfg(unix)]
            term,
        )
        .await
    }
}

async fn wait_for_signal(#[cfg(unix)] term: std::io::Result<tokio::signal::unix::Signal>) {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match term {
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

/// `ferry-server hash-password`: a password in, an argon2id entry out.
fn hash_password(opts: &HashPassword) -> anyhow::Result<()> {
    use ferry_server::users;
    if let Some(name) = &opts.user
        && !users::valid_name(name)
    {
        anyhow::bail!("user name {name:?} must be 1 to 64 letters, digits, '.', '_' or '-'");
    }
    let password = read_password()?;
    if password.is_empty() {
        anyhow::bail!("the password is empty");
    }
    if password.len() > users::MAX_CREDENTIAL_LEN {
        anyhow::bail!(
            "the password is over {} bytes; the server refuses longer ones",
            users::MAX_CREDENTIAL_LEN
        );
    }
    let hash = users::hash_password(&password)?;
    let (Some(file), Some(name), Some(root)) = (&opts.users, &opts.user, &opts.root) else {
        match (&opts.user, &opts.root) {
            (Some(name), Some(root)) => {
                let root = std::path::absolute(root)?;
                let access = if opts.read_only { "ro" } else { "rw" };
                println!("{name}:{access}:{hash}:{}", root.display());
            }
            _ => println!("{hash}"),
        }
        return Ok(());
    };
    let root = std::fs::canonicalize(root)
        .with_context(|| format!("cannot use {} as a root", root.display()))?;
    let parent = std::path::absolute(file)?
        .parent()
        .map(std::path::Path::to_path_buf);
    if let Some(parent) = parent.filter(|parent| !parent.is_dir()) {
        anyhow::bail!(
            "cannot write {}: the directory {} does not exist (create it first, e.g. mkdir -p)",
            file.display(),
            parent.display()
        );
    }
    if !root.is_dir() {
        anyhow::bail!("{} is not a directory", root.display());
    }
    users::upsert(file, name, &hash, &root, opts.read_only)?;
    eprintln!("{name}: written to {}", file.display());
    Ok(())
}

/// The password from the terminal without echo, asked twice so a typo is caught; from stdin's
/// first line when stdin is not a terminal (scripts).
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            anyhow::bail!("the passwords differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
