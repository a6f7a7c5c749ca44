//! `ferry`: the two-pane TUI when run bare, the scripting commands otherwise. This file only
//! holds the clap definitions and turns results into output and exit codes; the work is in the
//! library (`ferry::cli`, `ferry::engine`, `ferry::tui`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use clap_complete::Shell;
use ferry::cli::{self, CliError, TransferOptions};
use ferry::engine::Endpoint;
use ferry::engine::known_hosts::{Fingerprint, KnownHosts};
use ferry::engine::sync::{Compare, Filter, RuleKind, Side, SyncOptions};
use ferry::url::RemoteUrl;

/// A keyboard-driven file-transfer tool: run bare for the two-pane interface, or use the
/// commands below in scripts.
#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    after_help = "Examples:
  ferry                                      open the two-pane interface
  ferry ls ferry://nas:7070/photos
  ferry put -r ~/photos ferry://nas/         makes /photos on the server
  ferry get -r ferry://nas/photos .          makes ./photos
  ferry get ferry://nas/big.iso              into .; run it again after an interruption:
                                             it resumes
  ferry get -r --resume ferry://nas/photos . re-run an interrupted -r: finished files cost a
                                             digest check, the others continue
  ferry rm -r ferry://nas/old ferry://nas/tmp
  ferry sync -n ~/photos ferry://nas/photos  the plan to bring the server's copy up to
                                             date; without -n it runs (see ferry sync --help)
  ferry mv --overwrite ferry://nas/new.txt old.txt
  ferry ls --accept-new ferrys://nas/        TLS; trust the server's certificate on first use
  ferry ls ferrys://ann@nas/                 log in as ann: the password comes from
                                             FERRY_PASSWORD, or is asked without echo
  ferry get -r nas:photos .                  over ssh: runs ferry-server --stdio on nas
  ferry ls ssh://ann@nas:2222/srv            over ssh, from /

Locations are ferry://[USER@]HOST[:PORT]/PATH (ferrys:// for TLS, port 7070 by default),
or over ssh ssh://[USER@]HOST[:PORT]/PATH and scp's [USER@]HOST:PATH (relative to the
remote home unless it starts with /; a colon before any slash makes an argument remote:
write ./a:b for a local file).
The path is percent-decoded, as in any URL: write a space as %20 or quote it, and a
literal % as %25 (a server file named \"50% off.txt\" is ferry://nas/50%25%20off.txt).

Without a flag, an existing destination fails that file (exit 1) and the others go on:
--resume, --overwrite, --skip-existing or --rename says what to do instead. A source that
cannot be copied (missing, a symlink, a directory without -r) fails alone the same way.
Inside a tree, every entry not copied is named on stderr with why (symlink, special_file,
unreadable, bad_name, vanished); --json prints each file, each such entry and a summary.
If the server goes away mid-transfer, one line says so and which files are not finished,
and the next one how to finish them: what arrived is kept.

Exit status: 0 on success, 1 on failure (one line on stderr: ferry: CODE: PATH: MESSAGE),
2 on a usage error, 23 when entries of a tree could not be read or held (or, with --strict,
were symlinks or special files), 24 when entries only vanished, 130 when interrupted, 141
when stdout was closed early (| head), as for ls."
)]
struct Cli {
    /// The server's shared secret.
    #[arg(long, env = "FERRY_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    trust: TrustFlags,
    #[command(subcommand)]
    command: Option<Command>,
    /// Open the interface at this location (ferry://HOST:PORT/PATH, percent-decoded; or over
    /// ssh, HOST:PATH or ssh://[USER@]HOST[:PORT]/PATH).
    url: Option<RemoteUrl>,
    /// Serve this directory in-process and open it (instead of connecting to a server).
    #[arg(long, value_name = "DIR")]
    serve: Option<PathBuf>,
    /// Read this config file instead of the default one.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    ssh: SshFlags,
    /// Say on stderr how the server is reached (tcp, tls or ssh).
    #[arg(short, long, global = true)]
    verbose: bool,
}

/// How to reach `ssh://` and `host:path` locations.
#[derive(Debug, Clone, Args)]
struct SshFlags {
    /// The ssh command to run, with its options (as rsync's -e): 'ssh -p 2222 -i key'.
    #[arg(long = "ssh", env = "FERRY_SSH", global = true, value_name = "COMMAND")]
    command: Option<String>,
    /// The remote ferry-server, when it is not on the remote PATH.
    #[arg(long, global = true, value_name = "PATH")]
    server_path: Option<String>,
}

impl SshFlags {
    /// Sets how this process runs ssh; `batch` for the TUI, where ssh must never prompt.
    fn configure(&self, batch: bool) -> Result<(), CliError> {
        let mut settings = ferry::engine::ssh::SshSettings::with_command(self.command.as_deref())
            .map_err(|message| CliError::Usage {
            code: "bad_request",
            path: "--ssh".into(),
            message,
        })?;
        settings.server_path.clone_from(&self.server_path);
        settings.batch = batch;
        ferry::engine::ssh::configure(settings);
        Ok(())
    }
}

/// How far to trust a `ferrys://` server's certificate, and whether clear text may carry a
/// token.
#[derive(Debug, Clone, Args)]
struct TrustFlags {
    /// Trust only the certificate with this SHA-256 fingerprint (as `openssl x509 -noout
    /// -fingerprint -sha256` prints it; colons and case optional).
    #[arg(long, global = true, value_name = "SHA256:HEX")]
    fingerprint: Option<Fingerprint>,
    /// Trust a certificate seen for the first time and record it in known_hosts; a later
    /// change is refused.
    #[arg(long, global = true)]
    accept_new: bool,
    /// Allow sending the token or password in clear text over ferry:// to another machine.
    #[arg(long, global = true)]
    insecure: bool,
}

impl TrustFlags {
    fn apply(&self, mut endpoint: Endpoint) -> Endpoint {
        endpoint.fingerprint = self.fingerprint;
        endpoint.accept_new = self.accept_new;
        endpoint.insecure = self.insecure;
        endpoint
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List a remote directory (directories first).
    Ls {
        /// One JSON object per entry per line, in the server's order, streamed.
        #[arg(long)]
        json: bool,
        /// The remote directory (ferry://HOST:PORT/PATH, percent-decoded: % is %25).
        url: RemoteUrl,
    },
    /// Download files, or directories with -r.
    #[command(override_usage = "ferry get [OPTIONS] <URL>... [LOCAL]")]
    Get {
        /// Copy directories and everything under them.
        #[arg(short, long)]
        recursive: bool,
        /// Remote files or directories, all on one server (ferry://HOST:PORT/PATH,
        /// percent-decoded: % is %25), then the local target, as with scp: an existing
        /// directory receives each source under its own name; otherwise (one source) the new
        /// name. A trailing / means it must be a directory. Without a target: the current
        /// directory.
        #[arg(required = true, num_args = 1.., value_name = "URL|LOCAL")]
        paths: Vec<GetArg>,
        #[command(flatten)]
        transfer: TransferArgs,
    },
    /// Upload files, or directories with -r.
    Put {
        /// Copy directories and everything under them.
        #[arg(short, long)]
        recursive: bool,
        /// Local files or directories.
        #[arg(required = true, num_args = 1.., value_name = "LOCAL")]
        sources: Vec<PathBuf>,
        /// The target (ferry://HOST:PORT/PATH, percent-decoded: % is %25): an existing
        /// directory receives each source under its own name; otherwise (one source) the new
        /// name. A trailing / means it must be a directory.
        #[arg(value_name = "URL")]
        target: RemoteTarget,
        #[command(flatten)]
        transfer: TransferArgs,
    },
    /// Copy a remote file, or a directory with -r, to another remote location: on one server
    /// the server copies it (no bytes through this machine), between two servers the bytes
    /// stream through this process's memory, never its disk; verified end to end either way.
    /// Both locations log in with the same token or password.
    Copy {
        /// Copy directories and everything under them.
        #[arg(short, long)]
        recursive: bool,
        /// The source (ferry://HOST:PORT/PATH, percent-decoded: % is %25).
        from: RemoteUrl,
        /// The target (ferry://HOST:PORT/PATH): an existing directory receives the source
        /// under its own name; otherwise the new name. A trailing / means it must be a
        /// directory.
        #[arg(value_name = "URL")]
        to: RemoteTarget,
        #[command(flatten)]
        transfer: TransferArgs,
    },
    /// Create remote directories and their missing parents.
    Mkdir {
        /// The directories to create, all on one server (ferry://HOST:PORT/PATH,
        /// percent-decoded).
        #[arg(required = true, num_args = 1.., value_name = "URL")]
        urls: Vec<RemoteUrl>,
    },
    /// Remove remote files, or directories with -r.
    Rm {
        /// Remove directories and everything under them.
        #[arg(short, long)]
        recursive: bool,
        /// What to remove, all on one server (ferry://HOST:PORT/PATH, percent-decoded).
        #[arg(required = true, num_args = 1.., value_name = "URL")]
        urls: Vec<RemoteUrl>,
    },
    /// Rename or move a remote entry on the same server.
    Mv {
        /// Replace an existing entry at the destination (a directory only if it is empty).
        #[arg(long)]
        overwrite: bool,
        /// The entry to move (ferry://HOST:PORT/PATH, percent-decoded).
        url: RemoteUrl,
        /// A path on the same server (or a ferry:// location); an existing directory receives
        /// the entry under its own name.
        to: String,
    },
    /// List your hidden partial uploads in remote directories (what a cancelled or broken
    /// upload left for a resume), or delete them with --rm.
    Partials {
        /// Delete the partial upload of each named file instead of listing (the file itself,
        /// if it exists, is untouched).
        #[arg(long)]
        rm: bool,
        /// Directories to list, or with --rm the files whose partials go, all on one server
        /// (ferry://HOST:PORT/PATH, percent-decoded).
        #[arg(required = true, num_args = 1.., value_name = "URL")]
        urls: Vec<RemoteUrl>,
    },
    /// Make a directory hold what another holds, moving only what differs: one local
    /// directory and one remote one, either way round.
    #[command(after_help = "Examples:
  ferry sync ~/photos ferry://nas/photos           upload what changed
  ferry sync -n --delete ferry://nas/photos ~/ph   show the plan (with deletions)
  ferry sync --checksum --exclude '*.tmp' --exclude /build/ . ferry://nas/src

Files are the same when their size and mtime (seconds) are (--checksum: their digests;
--size-only: their size). A file whose content is the same but whose mtime differs gets its
mtime set, never its bytes sent again; permission bits are carried too. What is sent goes as
one verified, atomic, resumable transfer; an interrupted sync is finished by running it
again. Deletions (--delete only) come last, once every transfer is verified, deepest first;
excluded entries are never deleted. Rules (--exclude, --include) are tried in the order
given and the first match decides; a pattern with a / is anchored to the directory synced,
one without matches a name at any depth, a trailing / matches directories only.")]
    Sync {
        /// The directory to copy from: a local path or ferry://HOST:PORT/PATH.
        src: GetArg,
        /// The directory to bring up to date (made if missing): a local path or
        /// ferry://HOST:PORT/PATH, the other side's kind.
        dst: GetArg,
        /// Print the plan (one line per action, then the totals) and change nothing.
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// The plan as one JSON object per line on stdout, then (without --dry-run) each
        /// step's result and a closing object.
        #[arg(long)]
        json: bool,
        /// Compare files of the same size by digest, not by mtime.
        #[arg(short = 'c', long, conflicts_with = "size_only")]
        checksum: bool,
        /// Compare files by size only.
        #[arg(long)]
        size_only: bool,
        /// Delete what the destination has and the source does not (never excluded entries).
        #[arg(long)]
        delete: bool,
        /// With --delete: refuse the whole sync, before changing anything, when it would
        /// delete more than N entries.
        #[arg(long, value_name = "N", requires = "delete")]
        max_delete: Option<u64>,
        /// With --delete: go on even when the source is empty or could not be listed whole
        /// (which is what an unmounted disk looks like).
        #[arg(long)]
        force: bool,
        /// Leave out what matches PATTERN (a glob; repeatable, in order with --include).
        #[arg(long, value_name = "PATTERN")]
        exclude: Vec<String>,
        /// Keep what matches PATTERN even if a later --exclude matches it.
        #[arg(long, value_name = "PATTERN")]
        include: Vec<String>,
        /// Files in flight at once (one connection each).
        #[arg(short = 'j', long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// After the first sync, keep DST in step until interrupted: a local SRC is watched
        /// for changes, a remote one polled every --watch-interval; a sync that fails (a
        /// server restarting) is tried again.
        #[arg(long, conflicts_with = "dry_run")]
        watch: bool,
        /// With --watch: seconds between looks at a remote SRC, and before a failed sync is
        /// tried again.
        #[arg(long, value_name = "SECONDS", default_value_t = 2.0, value_parser = positive_seconds)]
        watch_interval: f64,
        /// `--exclude` and `--include` in the order given (filled from clap's indices).
        #[arg(skip)]
        rules: Vec<(RuleKind, String)>,
    },
    /// List the ferry servers announcing themselves on the local network (DNS-SD over
    /// multicast DNS), one per line: name, address:port, tls or plain, the announced
    /// certificate fingerprint (a hint: the first connection still checks it).
    Discover {
        /// How long to listen, e.g. 2s, 500ms, 1min.
        #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// One JSON object per server per line.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script.
    Completions { shell: Shell },
    /// Print the manual page (roff).
    Man,
}

/// One positional argument of `get`: a remote source, or (last) the local target.
#[derive(Debug, Clone)]
enum GetArg {
    Remote(RemoteUrl),
    Local(PathBuf),
}

impl std::str::FromStr for GetArg {
    type Err = ferry::url::UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if RemoteUrl::looks_remote(s) {
            s.parse().map(GetArg::Remote)
        } else {
            Ok(GetArg::Local(PathBuf::from(s)))
        }
    }
}

/// `get`'s sources and target: every argument but a last local one is a source, and without
/// a local one the target is `.`, as scp users expect. A usage error (exit 2) otherwise.
fn split_get(paths: &[GetArg]) -> Result<(Vec<RemoteUrl>, PathBuf), clap::Error> {
    let (sources, local) = match paths.split_last() {
        Some((GetArg::Local(local), sources)) => (sources, local.clone()),
        _ => (paths, PathBuf::from(".")),
    };
    let mut urls = Vec::with_capacity(sources.len());
    for source in sources {
        match source {
            GetArg::Remote(url) => urls.push(url.clone()),
            GetArg::Local(path) => {
                return Err(get_usage(format!(
                    "'{}' is not a ferry:// location: only the last argument may be local",
                    ferry::format::local_path(path)
                )));
            }
        }
    }
    if urls.is_empty() {
        return Err(get_usage(
            "nothing to download: name a ferry:// location before the local target".into(),
        ));
    }
    Ok((urls, local))
}

fn get_usage(message: String) -> clap::Error {
    let mut command = Cli::command();
    let get = command.find_subcommand_mut("get").map(|get| {
        let get = std::mem::take(get);
        get.bin_name("ferry get")
    });
    get.unwrap_or(command)
        .error(clap::error::ErrorKind::ValueValidation, message)
}

/// A `put` target that remembers a trailing `/`, which the parsed location drops: as with
/// `cp`, it names a directory that must exist, never a new file called like it.
#[derive(Debug, Clone)]
struct RemoteTarget {
    url: RemoteUrl,
    dir: bool,
}

impl std::str::FromStr for RemoteTarget {
    type Err = ferry::url::UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(RemoteTarget {
            url: s.parse()?,
            dir: s.ends_with('/'),
        })
    }
}

/// What to do about existing destinations, and how many connections to use.
#[derive(Debug, Args)]
#[group(id = "conflict", multiple = false)]
struct ConflictFlags {
    /// Replace existing destination files.
    #[arg(long)]
    overwrite: bool,
    /// Leave existing destination files alone.
    #[arg(long)]
    skip_existing: bool,
    /// Continue existing files whose bytes are the start of the source; any other fails as
    /// resume_mismatch and is left as it was. A complete, identical file costs a digest check,
    /// not a transfer: the way to re-run an interrupted -r.
    #[arg(long)]
    resume: bool,
    /// Keep existing files; give the new ones a free name ("a (1).txt").
    #[arg(long)]
    rename: bool,
    /// Replace an existing file only when the source is newer (by modification time); the
    /// others are kept and named as up_to_date.
    #[arg(long)]
    update: bool,
}

#[derive(Debug, Args)]
struct TransferArgs {
    #[command(flatten)]
    conflict: ConflictFlags,
    /// Files in flight at once (one connection each).
    #[arg(short = 'j', long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Delete each source once its copy is verified.
    #[arg(long = "move")]
    remove_source: bool,
    /// Print one JSON object per line on stdout: each file's result, each entry not copied
    /// (with its reason), then a summary with the exit status.
    #[arg(long)]
    json: bool,
    /// Fail (exit 23) when symlinks or special files inside a tree were left out.
    #[arg(long)]
    strict: bool,
    /// Download names that hold bidirectional controls or zero-width characters as they are;
    /// without it each such file fails with unsafe_name (other programs would show the name
    /// as the spoof it may be).
    #[arg(long)]
    allow_unsafe_names: bool,
    /// Bytes per second to receive, and to send, at most, e.g. 10M or 500K (K, M, G are
    /// powers of 1000; Ki, Mi, Gi powers of 1024), held within 5 % over any 2 seconds.
    #[arg(long, value_name = "RATE", value_parser = ferry::engine::parse_rate)]
    limit_rate: Option<u64>,
    /// Connections one big file is downloaded over at once, in ranges (faster where each
    /// connection is capped); 1 turns it off.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16))]
    streams: u16,
    /// The size from which a file is downloaded over several streams, e.g. 64Mi.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = ferry::engine::parse_rate)]
    streams_from: u64,
}

impl TransferArgs {
    fn options(&self, recursive: bool) -> TransferOptions {
        let c = &self.conflict;
        let mut options = TransferOptions::new(
            recursive,
            cli::policy_from_flags(c.overwrite, c.skip_existing, c.resume, c.rename, c.update),
            usize::from(self.jobs),
        );
        options.remove_source = self.remove_source;
        options.json = self.json;
        options.strict = self.strict;
        options.allow_unsafe_names = self.allow_unsafe_names;
        options.limit_rate = self.limit_rate.unwrap_or(0);
        options.streams = usize::from(self.streams);
        options.streams_from = self.streams_from;
        options
    }
}

fn main() -> ExitCode {
    // Run by ssh as its SSH_ASKPASS for the TUI: the one argument is ssh's question.
    if let Some(socket) = std::env::var_os(ferry::engine::ssh::ASKPASS_SOCKET_ENV) {
        let prompt = std::env::args().nth(1).unwrap_or_default();
        return ferry::engine::ssh::askpass_client(&socket, &prompt);
    }
    let matches = Cli::command().get_matches();
    let mut args = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some(Command::Sync { rules, .. }) = &mut args.command
        && let Some(sync) = matches.subcommand_matches("sync")
    {
        *rules = ordered_rules(sync);
    }
    if let Err(e) = args.ssh.configure(args.command.is_none()) {
        return fail(&e);
    }
    let Some(command) = args.command else {
        let code = run_tui(args.url, args.token, args.serve, args.config, args.trust);
        ferry::engine::ssh::close_masters();
        return code;
    };
    match &command {
        // Both are written whole into memory first: clap_complete panics on a failed write,
        // and a reader that stops early (`| head`) must end the command quietly.
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "ferry", &mut script);
            return write_stdout(&script);
        }
        Command::Man => {
            let mut page = match ferry::man::page(Cli::command()) {
                Ok(page) => page,
                Err(e) => return fail(&CliError::Output(e)),
            };
            page.extend_from_slice(MAN_EXTRA.as_bytes());
            return write_stdout(&page);
        }
        Command::Get { paths, .. } => {
            if let Err(e) = split_get(paths) {
                e.exit();
            }
        }
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ferry: io: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Asked before the runtime starts: the prompt blocks on the terminal.
    let password = match password_for(remote_of(&command)) {
        Ok(password) => password,
        Err(e) => return fail(&e),
    };
    let ran = runtime.block_on(run_command(
        command,
        args.token,
        password,
        args.trust,
        args.verbose,
    ));
    ferry::engine::ssh::close_masters();
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// A number of seconds above zero (and below a year), for `--watch-interval`.
fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs < 31_536_000.0 => Ok(secs),
        _ => Err(format!("'{text}' is not a number of seconds above 0")),
    }
}

/// `sync`'s `--exclude` and `--include` patterns in the order they were given, which decides
/// (the first rule that matches wins).
fn ordered_rules(matches: &clap::ArgMatches) -> Vec<(RuleKind, String)> {
    let mut rules = Vec::new();
    for (id, kind) in [
        ("exclude", RuleKind::Exclude),
        ("include", RuleKind::Include),
    ] {
        if let (Some(at), Some(patterns)) = (matches.indices_of(id), matches.get_many::<String>(id))
        {
            rules.extend(at.zip(patterns).map(|(i, p)| (i, kind, p.clone())));
        }
    }
    rules.sort_by_key(|(i, _, _)| *i);
    rules.into_iter().map(|(_, kind, p)| (kind, p)).collect()
}

/// Sections clap_mangen does not generate, in roff: appended after its page, whose last
/// section it has closed.
const MAN_EXTRA: &str = r#".SH ENVIRONMENT
.TP
\fBFERRY_TOKEN\fR
The server's shared secret, as \fB\-\-token\fR gives it; kept out of shell history and
process lists.
.TP
\fBFERRY_SSH\fR
The ssh command, with its options, for ssh:// and HOST:PATH locations, as \fB\-\-ssh\fR
gives it.
.TP
\fBFERRY_PASSWORD\fR
The password for a location that names a user (ferry://ann@nas/); without it, ferry asks on
the terminal without echo. Never taken from the location or the command line.
.SH FILES
Paths as on Linux; other systems use their own configuration, data and state directories.
.TP
\fI~/.config/ferry/config.toml\fR
Settings, keys, theme and bookmarks of the interface (\fB\-\-config\fR reads another file).
.TP
\fI~/.local/share/ferry/known_hosts\fR
Certificate fingerprints of ferrys:// servers, one "host:port SHA256:..." line each,
recorded on first use with \fB\-\-accept\-new\fR or by the interface.
.TP
\fI~/.local/state/ferry/recent.toml\fR
The interface's recent connections.
.TP
\fI~/.local/state/ferry/ferry.log\fR
The interface's log.
"#;

/// Writes a generated text to stdout; a closed pipe ends it quietly, as for any command.
fn write_stdout(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&CliError::Output(e)),
    }
}

fn fail(error: &CliError) -> ExitCode {
    if !error.already_reported() {
        eprintln!("ferry: {}", error.shown());
    }
    ExitCode::from(error.exit_code())
}

/// The server a command talks to.
fn remote_of(command: &Command) -> Option<&RemoteUrl> {
    match command {
        Command::Ls { url, .. }
        | Command::Put {
            target: RemoteTarget { url, .. },
            ..
        }
        | Command::Mv { url, .. }
        | Command::Copy { from: url, .. } => Some(url),
        Command::Get { paths, .. } => paths.iter().find_map(|arg| match arg {
            GetArg::Remote(url) => Some(url),
            GetArg::Local(_) => None,
        }),
        Command::Mkdir { urls } | Command::Rm { urls, .. } | Command::Partials { urls, .. } => {
            urls.first()
        }
        Command::Sync { src, dst, .. } => [src, dst].into_iter().find_map(|arg| match arg {
            GetArg::Remote(url) => Some(url),
            GetArg::Local(_) => None,
        }),
        Command::Completions { .. } | Command::Man | Command::Discover { .. } => None,
    }
}

/// With `--accept-new`, settles trust once before the command's connections, so a certificate
/// seen for the first time is recorded and announced exactly once.
async fn settle_first_use(endpoint: &Endpoint) -> Result<(), CliError> {
    use ferry::engine::check_trust;
    use ferry::engine::tls::TrustedBy;
    let known_hosts = KnownHosts::default_location();
    let trusted = check_trust(endpoint, known_hosts.as_ref()).await?;
    if trusted.by == TrustedBy::FirstUse {
        let file = known_hosts.map_or_else(String::new, |h| ferry::format::local_path(h.path()));
        eprintln!(
            "ferry: trusting {}:{}'s new certificate {} (recorded in {file})",
            endpoint.host, endpoint.port, trusted.fingerprint
        );
    }
    Ok(())
}

/// The password for a location that names a user (`ferry://ann@host/`): `FERRY_PASSWORD`, or
/// asked on the terminal without echo. Never taken from the location or the command line,
/// where it would stay in shell history and process lists.
fn password_for(url: Option<&RemoteUrl>) -> Result<Option<String>, CliError> {
    // Over ssh the user is ssh's, and ssh asks for what it needs.
    let url = url.filter(|url| url.ssh.is_none());
    let Some((url, user)) = url.and_then(|url| Some((url, url.user.as_deref()?))) else {
        return Ok(None);
    };
    if let Some(password) = std::env::var_os("FERRY_PASSWORD") {
        return Ok(Some(password.to_string_lossy().into_owned()));
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage {
            code: "unauthorized",
            path: url.to_string(),
            message: format!(
                "no password for {user}: set FERRY_PASSWORD, or run ferry in a terminal to be asked"
            ),
        });
    }
    rpassword::prompt_password(format!("Password for {user}@{}: ", url.host))
        .map(Some)
        .map_err(CliError::Output)
}

/// Runs `command`; an ssh location whose remote has no `ferry-server` is served over SFTP
/// instead (`cli::sftp`), for the commands that fallback knows.
async fn run_command(
    command: Command,
    token: Option<String>,
    password: Option<String>,
    trust: TrustFlags,
    verbose: bool,
) -> Result<(), CliError> {
    let fallback = sftp_fallback(&command);
    match run_ferry(command, token, password, trust, verbose).await {
        Err(CliError::Engine(e)) if ferry::engine::ssh::server_missing(&e) => match fallback {
            Some(fallback) => cli::sftp::run(fallback, verbose).await,
            None => Err(CliError::Engine(e)),
        },
        other => other,
    }
}

/// The SFTP form of `command` when its locations are over ssh.
fn sftp_fallback(command: &Command) -> Option<cli::sftp::Fallback> {
    use cli::sftp::Fallback;
    remote_of(command)?.ssh?;
    Some(match command {
        Command::Ls { json, url } => Fallback::Ls {
            url: url.clone(),
            json: *json,
        },
        Command::Get {
            recursive,
            paths,
            transfer,
        } => {
            let (urls, local) = split_get(paths).ok()?;
            Fallback::Get {
                urls,
                local,
                options: transfer.options(*recursive),
            }
        }
        Command::Put {
            recursive,
            sources,
            target,
            transfer,
        } => {
            let mut options = transfer.options(*recursive);
            options.dir_target = target.dir;
            Fallback::Put {
                sources: sources.clone(),
                target: target.url.clone(),
                options,
            }
        }
        Command::Mkdir { urls } => Fallback::Mkdir { urls: urls.clone() },
        Command::Rm { recursive, urls } => Fallback::Rm {
            urls: urls.clone(),
            recursive: *recursive,
        },
        Command::Mv { url, to, .. } => Fallback::Mv {
            url: url.clone(),
            to: to.clone(),
        },
        _ => return None,
    })
}

async fn run_ferry(
    mut command: Command,
    token: Option<String>,
    password: Option<String>,
    trust: TrustFlags,
    verbose: bool,
) -> Result<(), CliError> {
    if verbose && let Some(url) = remote_of(&command) {
        eprintln!("ferry: {}", transport_line(url));
    }
    resolve_homes(&mut command).await?;
    // Every connection of the command logs in with the same credentials.
    let at = |url: &RemoteUrl| {
        let mut endpoint = trust.apply(url.endpoint(token.clone()));
        endpoint.password.clone_from(&password);
        endpoint
    };
    if let Some(url) = remote_of(&command)
        && url.tls
        && trust.accept_new
        && trust.fingerprint.is_none()
    {
        settle_first_use(&trust.apply(url.endpoint(None))).await?;
    }
    match command {
        Command::Ls { json, url } => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            cli::ls(&at(&url), &url, json, &mut out).await
        }
        Command::Get {
            recursive,
            paths,
            transfer,
        } => {
            // Checked in main already, before the runtime started.
            let (urls, local) = split_get(&paths)
                .map_err(|e| CliError::Job(format!("bad_request: {}", e.kind())))?;
            let endpoint = urls
                .first()
                .map(at)
                .ok_or_else(|| CliError::Job("no source given".into()))?;
            cli::get(&endpoint, &urls, &local, transfer.options(recursive))
                .await
                .map(drop)
        }
        Command::Put {
            recursive,
            sources,
            target,
            transfer,
        } => {
            let mut options = transfer.options(recursive);
            options.dir_target = target.dir;
            cli::put(&at(&target.url), &sources, &target.url, options)
                .await
                .map(drop)
        }
        Command::Copy {
            recursive,
            from,
            to,
            transfer,
        } => cli::copy(
            &at(&from),
            &from,
            &at(&to.url),
            &to.url,
            to.dir,
            transfer.options(recursive),
        )
        .await
        .map(drop),
        Command::Mkdir { urls } => {
            let endpoint = first_endpoint(&urls, at, "nothing to make")?;
            cli::mkdir(&endpoint, &urls).await
        }
        Command::Rm { recursive, urls } => {
            let endpoint = first_endpoint(&urls, at, "nothing to remove")?;
            cli::rm(&endpoint, &urls, recursive).await
        }
        Command::Mv { url, to, overwrite } => cli::mv(&at(&url), &url, &to, overwrite).await,
        Command::Partials { rm, urls } => {
            let endpoint = first_endpoint(&urls, at, "nothing to list")?;
            cli::partials(&endpoint, &urls, rm).await
        }
        Command::Sync {
            src,
            dst,
            dry_run,
            json,
            checksum,
            size_only,
            delete,
            max_delete,
            force,
            jobs,
            rules,
            watch,
            watch_interval,
            ..
        } => {
            let filter = Filter::new(&rules).map_err(|e| CliError::Usage {
                code: "bad_request",
                path: e.pattern,
                message: format!("not a pattern: {}", e.message),
            })?;
            let options = SyncOptions {
                compare: if checksum {
                    Compare::Checksum
                } else if size_only {
                    Compare::SizeOnly
                } else {
                    Compare::Quick
                },
                delete,
                max_delete,
                force,
                filter,
            };
            let side = |arg: GetArg| match arg {
                GetArg::Remote(url) => (Side::Remote(url.path.clone()), Some(url)),
                GetArg::Local(path) => (Side::Local(path), None),
            };
            let ((src, src_url), (dst, dst_url)) = (side(src), side(dst));
            let Some(url) = src_url.or(dst_url) else {
                return Err(CliError::Usage {
                    code: "bad_request",
                    path: String::new(),
                    message: "one side must be a ferry:// location and the other a local \
                              directory"
                        .into(),
                });
            };
            let run = cli::SyncRun {
                dry_run,
                json,
                jobs: usize::from(jobs),
                watch: watch.then(|| std::time::Duration::from_secs_f64(watch_interval)),
            };
            cli::sync(&at(&url), src, dst, &options, run).await
        }
        Command::Discover { timeout, json } => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            cli::discover(timeout, json, &mut out).await
        }
        Command::Completions { .. } | Command::Man => Ok(()),
    }
}

/// How `url`'s server is reached, for `-v`.
fn transport_line(url: &RemoteUrl) -> String {
    let endpoint = url.endpoint(None);
    match (&url.ssh, url.tls) {
        (Some(_), _) => format!(
            "{} via ssh ({} ferry-server --stdio, one shared ssh connection)",
            endpoint.address(),
            endpoint.ssh.map(|t| t.destination()).unwrap_or_default()
        ),
        (None, true) => format!("{} via tls", endpoint.address()),
        (None, false) => format!("{} via tcp", endpoint.address()),
    }
}

/// Resolves the command's home-relative ssh locations (`nas:photos`) under the remote home,
/// asked once; `mv`'s destination too when it is such a location.
async fn resolve_homes(command: &mut Command) -> Result<(), CliError> {
    let mut mv_target = None;
    let mut urls: Vec<&mut RemoteUrl> = match command {
        Command::Ls { url, .. }
        | Command::Put {
            target: RemoteTarget { url, .. },
            ..
        } => vec![url],
        Command::Mv { url, to, .. } => {
            let parsed = RemoteUrl::looks_remote(to)
                .then(|| to.parse::<RemoteUrl>().ok())
                .flatten()
                .filter(RemoteUrl::needs_home);
            mv_target = Some((to, parsed));
            vec![url]
        }
        Command::Get { paths, .. } => paths
            .iter_mut()
            .filter_map(|arg| match arg {
                GetArg::Remote(url) => Some(url),
                GetArg::Local(_) => None,
            })
            .collect(),
        Command::Mkdir { urls } | Command::Rm { urls, .. } | Command::Partials { urls, .. } => {
            urls.iter_mut().collect()
        }
        Command::Copy {
            from,
            to: RemoteTarget { url, .. },
            ..
        } => vec![from, url],
        Command::Sync { src, dst, .. } => [src, dst]
            .into_iter()
            .filter_map(|arg| match arg {
                GetArg::Remote(url) => Some(url),
                GetArg::Local(_) => None,
            })
            .collect(),
        Command::Completions { .. } | Command::Man | Command::Discover { .. } => Vec::new(),
    };
    if let Some((_, Some(target))) = mv_target.as_mut() {
        urls.push(target);
    }
    cli::resolve_homes(urls).await?;
    if let Some((to, Some(target))) = mv_target {
        // A trailing `/` still says "into that directory".
        let slash = if to.ends_with('/') { "/" } else { "" };
        *to = format!("{target}{slash}");
    }
    Ok(())
}

/// The endpoint of the first of `urls` (a command's locations are all on one server);
/// `nothing` is the error when there is none.
fn first_endpoint(
    urls: &[RemoteUrl],
    at: impl Fn(&RemoteUrl) -> Endpoint,
    nothing: &str,
) -> Result<Endpoint, CliError> {
    urls.first()
        .map(at)
        .ok_or_else(|| CliError::Job(nothing.into()))
}

fn run_tui(
    mut target: Option<RemoteUrl>,
    token: Option<String>,
    serve: Option<PathBuf>,
    config: Option<PathBuf>,
    trust: TrustFlags,
) -> ExitCode {
    // Asked before the screen is taken over; a refused one is asked again in the interface.
    let password = match password_for(target.as_ref()) {
        Ok(password) => password,
        Err(e) => return fail(&e),
    };
    // A home-relative start location is resolved before the screen is taken over, so a
    // failure is one line on the terminal.
    if let Some(url) = target.as_mut().filter(|url| url.needs_home()) {
        let resolved = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CliError::Output)
            .and_then(|runtime| {
                let resolved = runtime.block_on(cli::resolve_homes(vec![url]));
                runtime.shutdown_background();
                resolved
            });
        if let Err(e) = resolved {
            return fail(&e);
        }
    }
    let options = ferry::tui::Options {
        target,
        token,
        password,
        serve,
        config,
        fingerprint: trust.fingerprint,
        accept_new: trust.accept_new,
        insecure: trust.insecure,
    };
    match ferry::tui::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry: {}", ferry::format::escape_text(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
