//! ferry over ssh, the fast path: the system's `ssh` runs `ferry-server --stdio` on the remote
//! machine and the normal protocol flows over the child's stdin and stdout. Running the real
//! `ssh` (as rsync does) keeps everything the user set up working: `~/.ssh/config`, keys, the
//! agent, `known_hosts`, `ProxyJump`.
//!
//! One login per session: every ssh this process starts shares one master connection per
//! destination through OpenSSH connection sharing, in a private control directory (0700) made
//! for this process. The first connection to a destination authenticates and leaves the master
//! behind; the others wait for it (`Opening`) and then only open a channel on it.
//! [`close_masters`] ends the masters when the program ends.
//!
//! The child never writes to the terminal: its stderr is piped and kept (the last
//! [`STDERR_KEPT`] bytes), so a failed connection reports ssh's own words (`SshChild::failure`).
//! Dropping the halves kills the child; tokio reaps it.
//!
//! Prompts: the CLI leaves ssh's questions on the terminal, as scp does. The TUI owns the
//! terminal, so it registers a prompt channel ([`ask_through`]): ssh then runs this very
//! program as its `SSH_ASKPASS` (`SSH_ASKPASS_REQUIRE=force`), which hands each question
//! (a password, a passphrase, a new host key) over a socket in the private control directory
//! to the TUI's masked dialog and prints the answer back to ssh ([`askpass_client`]). Without
//! a channel and in batch mode, ssh never asks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot};

use super::error::EngineError;

/// The ssh program when neither `--ssh` nor `FERRY_SSH` names another.
pub const DEFAULT_COMMAND: &str = "ssh";
/// The remote command when `--server-path` names none: found on the remote `PATH`.
pub const DEFAULT_SERVER: &str = "ferry-server";
/// How much of ssh's stderr is kept for an error message: its last bytes, where ssh puts the
/// reason it gave up.
pub const STDERR_KEPT: usize = 4096;
/// The capacity asked for ssh's stdin and stdout pipes (the kernel's default is 64 KiB).
const PIPE_SIZE: usize = 1024 * 1024;
/// How long a failed connection waits for ssh to exit, to read its status and last words.
const EXIT_WAIT: Duration = Duration::from_secs(5);
/// How long a master may outlive its last channel (OpenSSH's `ControlPersist`), in case this
/// process dies without [`close_masters`].
const PERSIST_SECS: u32 = 60;
/// The exit status of a shell that did not find the command.
const NOT_FOUND_STATUS: i32 = 127;

/// Most of `~/.ssh/config` read for its `Host` names; a longer file is read that far.
const CONFIG_READ: u64 = 1024 * 1024;
/// Most `Host` names offered.
const MAX_CONFIG_HOSTS: usize = 200;

/// The `Host` names of an ssh config text, in order, once each: the ones a person can
/// connect to, so patterns (`*`, `?`, `!`) are left out. `Include` is not followed.
pub fn config_hosts(text: &str) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let mut words = line.split(|c: char| c.is_whitespace() || c == '=');
        let Some(keyword) = words.next() else {
            continue;
        };
        if !keyword.eq_ignore_ascii_case("host") {
            continue;
        }
        for name in words.filter(|w| !w.is_empty()) {
            let pattern = name.contains(['*', '?', '!']);
            let odd = name.starts_with('-') || name.chars().any(char::is_control);
            if !pattern
                && !odd
                && !hosts.iter().any(|h| h == name)
                && hosts.len() < MAX_CONFIG_HOSTS
            {
                hosts.push(name.to_owned());
            }
        }
    }
    hosts
}

/// The `Host` names of the user's `~/.ssh/config` (none when it cannot be read).
pub fn user_config_hosts() -> Vec<String> {
    use std::io::Read;
    let Some(home) = std::env::var_os("HOME") else {
        return Vec::new();
    };
    let mut text = String::new();
    let read = std::fs::File::open(Path::new(&home).join(".ssh/config"))
        .and_then(|file| file.take(CONFIG_READ).read_to_string(&mut text));
    match read {
        Ok(_) => config_hosts(&text),
        Err(_) => Vec::new(),
    }
}

/// The variable that tells a `ferry` started by ssh as its `SSH_ASKPASS` where to ask.
pub const ASKPASS_SOCKET_ENV: &str = "FERRY_ASKPASS_SOCKET";
/// Most bytes of a question or an answer carried between ssh's askpass and the TUI.
const PROMPT_MAX: u64 = 4096;
/// How long a question waits for its answer before ssh is told there is none.
const ANSWER_WAIT: Duration = Duration::from_secs(600);

/// A question ssh asked through ferry as its `SSH_ASKPASS`: answer it with [`answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshPrompt {
    pub id: u64,
    /// ssh's words, as it would have printed them on the terminal.
    pub prompt: String,
}

/// Where questions go, and the answers still owed.
#[derive(Debug)]
struct PromptDesk {
    tx: mpsc::UnboundedSender<SshPrompt>,
    waiting: BTreeMap<u64, oneshot::Sender<Option<String>>>,
    next: u64,
    /// The socket askpass connects to, once listening.
    socket: Option<PathBuf>,
}

static DESK: Mutex<Option<PromptDesk>> = Mutex::new(None);

fn lock_desk() -> std::sync::MutexGuard<'static, Option<PromptDesk>> {
    DESK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// From now on ssh's questions come to `tx` (the TUI's dialog) instead of the terminal.
pub fn ask_through(tx: mpsc::UnboundedSender<SshPrompt>) {
    *lock_desk() = Some(PromptDesk {
        tx,
        waiting: BTreeMap::new(),
        next: 0,
        socket: None,
    });
}

/// The answer to question `id`; `None`: the user declined.
pub fn answer(id: u64, answer: Option<String>) {
    let reply = lock_desk()
        .as_mut()
        .and_then(|desk| desk.waiting.remove(&id));
    if let Some(reply) = reply {
        let _ = reply.send(answer);
    }
}

/// The askpass socket in `dir`, listening (started on first use), when questions have
/// somewhere to go.
fn askpass_socket(dir: &Path) -> Option<PathBuf> {
    let mut desk = lock_desk();
    let desk = desk.as_mut()?;
    if let Some(socket) = &desk.socket {
        return Some(socket.clone());
    }
    let socket = dir.join("askpass");
    let listener = tokio::net::UnixListener::bind(&socket).ok()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_question(stream));
        }
    });
    desk.socket = Some(socket.clone());
    Some(socket)
}

/// One question from askpass: its line in, the answer out (`1` and the text, or `0`).
async fn serve_question(stream: tokio::net::UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut question = Vec::new();
    if read
        .take(PROMPT_MAX)
        .read_to_end(&mut question)
        .await
        .is_err()
    {
        return;
    }
    let prompt = String::from_utf8_lossy(&question).trim().to_owned();
    let (reply_tx, reply_rx) = oneshot::channel();
    let asked = {
        let mut desk = lock_desk();
        desk.as_mut().and_then(|desk| {
            desk.next += 1;
            let id = desk.next;
            desk.waiting.insert(id, reply_tx);
            desk.tx.send(SshPrompt { id, prompt }).ok()
        })
    };
    let answer = match asked {
        Some(()) => tokio::time::timeout(ANSWER_WAIT, reply_rx)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten(),
        None => None,
    };
    let line = match answer {
        Some(text) => format!("1{text}"),
        None => "0".to_owned(),
    };
    let _ = write.write_all(line.as_bytes()).await;
    let _ = write.shutdown().await;
}

/// `ferry` run by ssh as its `SSH_ASKPASS`: asks `prompt` through the socket `socket` and
/// prints the answer for ssh; status 1 when there is none (declined, or no one to ask).
pub fn askpass_client(socket: &std::ffi::OsStr, prompt: &str) -> std::process::ExitCode {
    use std::io::{Read, Write};
    let asked = (|| {
        let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
        stream.write_all(prompt.replace(['\n', '\r'], " ").as_bytes())?;
        stream.shutdown(std::net::Shutdown::Write)?;
        let mut answer = String::new();
        stream.take(PROMPT_MAX).read_to_string(&mut answer)?;
        Ok::<_, std::io::Error>(answer)
    })();
    match asked.as_deref().ok().and_then(|a| a.strip_prefix('1')) {
        Some(text) => {
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{text}").and_then(|()| out.flush()).is_ok() {
                return std::process::ExitCode::SUCCESS;
            }
            std::process::ExitCode::FAILURE
        }
        None => std::process::ExitCode::FAILURE,
    }
}

/// A remote machine reached through ssh: `[user@]host[:port]`, as ssh takes it (`host` may be
/// a `Host` alias of `~/.ssh/config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    /// `None`: what ssh's configuration says (22 by default).
    pub port: Option<u16>,
}

impl SshTarget {
    /// `[user@]host`, the destination word given to ssh.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(user) => format!("{user}@{}", self.host),
            None => self.host.clone(),
        }
    }

    /// `ssh://[user@]host[:port]`: how the machine is named in messages and the status bar.
    pub fn label(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let user = self
            .user
            .as_ref()
            .map_or(String::new(), |u| format!("{u}@"));
        match self.port {
            Some(port) => format!("ssh://{user}{host}:{port}"),
            None => format!("ssh://{user}{host}"),
        }
    }
}

/// How this process runs ssh, the same for every connection: set once by the program from its
/// flags ([`configure`]), since `--ssh` and `--server-path` are the program's, not a
/// location's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSettings {
    /// The ssh program and its own options (`--ssh 'ssh -p 2222 -i key'`, `FERRY_SSH`).
    pub command: Vec<String>,
    /// The remote `ferry-server` (`--server-path`), when it is not on the remote `PATH`.
    pub server_path: Option<String>,
    /// Never let ssh ask anything (`BatchMode yes`): the TUI owns the terminal, so a prompt
    /// there would corrupt the screen or stop ssh.
    pub batch: bool,
}

impl Default for SshSettings {
    fn default() -> Self {
        SshSettings {
            command: vec![DEFAULT_COMMAND.to_owned()],
            server_path: None,
            batch: false,
        }
    }
}

impl SshSettings {
    /// Settings from an `--ssh` / `FERRY_SSH` command line, split as a POSIX shell would.
    pub fn with_command(command: Option<&str>) -> Result<SshSettings, String> {
        let mut settings = SshSettings::default();
        if let Some(line) = command.filter(|line| !line.trim().is_empty()) {
            let words = shlex::split(line)
                .ok_or_else(|| format!("cannot split the ssh command {line:?} into words"))?;
            if words.is_empty() {
                return Err("the ssh command is empty".into());
            }
            settings.command = words;
        }
        Ok(settings)
    }
}

static SETTINGS: OnceLock<SshSettings> = OnceLock::new();

/// Sets how this process runs ssh; the first call wins (the program makes it once, before any
/// connection).
pub fn configure(settings: SshSettings) {
    let _ = SETTINGS.set(settings);
}

fn settings() -> SshSettings {
    SETTINGS.get().cloned().unwrap_or_else(|| {
        let from_env = std::env::var("FERRY_SSH").ok();
        SshSettings::with_command(from_env.as_deref()).unwrap_or_default()
    })
}

/// The private control directory and the masters started in it.
#[derive(Debug)]
struct Sharing {
    dir: PathBuf,
    /// Per destination key: whether its master is up, behind a lock the first opener holds
    /// until it is.
    masters: BTreeMap<String, Arc<tokio::sync::Mutex<Option<SshTarget>>>>,
}

static SHARING: Mutex<Option<Sharing>> = Mutex::new(None);

/// A short private directory for the control sockets: a socket path must fit in about 100
/// bytes, and ssh adds a temporary suffix while it sets one up. Under `XDG_RUNTIME_DIR` when
/// there is one, else the temporary directory; 0700 either way (the socket is a logged-in
/// session anyone reaching it could use).
fn control_dir() -> Result<PathBuf, EngineError> {
    let parent = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("ferry-ssh-")
        .tempdir_in(&parent)
        .map_err(|e| EngineError::local(parent, e))?;
    // `tempdir` makes it 0700 already; kept past the TempDir, which `close_masters` removes.
    Ok(dir.keep())
}

fn lock_sharing() -> std::sync::MutexGuard<'static, Option<Sharing>> {
    SHARING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The key of a destination's master: the same command, user, host and port share one.
fn master_key(command: &[String], target: &SshTarget) -> String {
    format!("{command:?} {target:?}")
}

/// A connection's turn to open: the first to a destination holds the lock until its master is
/// up (`hello` answered), so several workers starting at once do not each log in.
#[derive(Debug)]
pub(crate) struct Opening {
    first: Option<tokio::sync::OwnedMutexGuard<Option<SshTarget>>>,
    target: SshTarget,
}

impl Opening {
    /// Waits for the destination's master, or for the turn to make it.
    pub(crate) async fn wait(target: &SshTarget) -> Result<(Opening, PathBuf), EngineError> {
        let command = settings().command;
        let (lock, dir) = {
            let mut sharing = lock_sharing();
            if sharing.is_none() {
                *sharing = Some(Sharing {
                    dir: control_dir()?,
                    masters: BTreeMap::new(),
                });
            }
            let Some(sharing) = sharing.as_mut() else {
                return Err(EngineError::Protocol("no ssh control directory".into()));
            };
            let lock = sharing
                .masters
                .entry(master_key(&command, target))
                .or_default();
            (Arc::clone(lock), sharing.dir.clone())
        };
        let guard = lock.lock_owned().await;
        let first = guard.is_none().then_some(guard);
        Ok((
            Opening {
                first,
                target: target.clone(),
            },
            dir,
        ))
    }

    /// The connection said `hello`: the master is up, later openers go ahead at once.
    pub(crate) fn opened(mut self) {
        if let Some(mut guard) = self.first.take() {
            *guard = Some(self.target.clone());
        }
    }
}

/// Ends every master this process started (`ssh -O exit`) and removes the control directory.
/// The program calls it once at its end; a master left by a crash ends by itself
/// `PERSIST_SECS` after its last channel.
pub fn close_masters() {
    let Some(sharing) = lock_sharing().take() else {
        return;
    };
    let command = settings().command;
    for lock in sharing.masters.values() {
        let Ok(guard) = lock.try_lock() else {
            continue;
        };
        let Some(target) = guard.as_ref() else {
            continue;
        };
        let mut exit = std::process::Command::new(&command[0]);
        exit.args(&command[1..])
            .args(sharing_options(&sharing.dir))
            .args(port_option(target))
            .args(["-O", "exit", "--"])
            .arg(target.destination())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = exit.status();
    }
    let _ = std::fs::remove_dir_all(&sharing.dir);
}

fn sharing_options(dir: &Path) -> Vec<String> {
    vec![
        "-o".into(),
        "ControlMaster=auto".into(),
        "-o".into(),
        format!("ControlPath={}/%C", dir.display()),
        "-o".into(),
        format!("ControlPersist={PERSIST_SECS}"),
    ]
}

fn port_option(target: &SshTarget) -> Vec<String> {
    target
        .port
        .map_or_else(Vec::new, |port| vec!["-p".into(), port.to_string()])
}

/// A word as one argument of a POSIX shell command line: ssh hands the remote command to the
/// login shell, so a server path with spaces or quotes must arrive whole.
fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:=@".contains(&b))
    {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The full argument list after the program: the user's options, connection sharing, the
/// port, `BatchMode` when asked, then `--`, the destination and the remote command. The `--`
/// keeps a destination that looks like an option from being read as one.
fn arguments(
    settings: &SshSettings,
    dir: &Path,
    target: &SshTarget,
    remote: Remote,
) -> Vec<String> {
    let mut args: Vec<String> = settings.command[1..].to_vec();
    args.extend(sharing_options(dir));
    args.extend(port_option(target));
    if settings.batch {
        args.extend(["-o".into(), "BatchMode=yes".into()]);
    }
    if remote == Remote::Sftp {
        args.push("-s".into());
    }
    // ssh's stdin is the protocol: no pseudo-terminal, which would mangle the bytes.
    args.extend(["-T".into(), "--".into(), target.destination()]);
    match remote {
        Remote::Ferry => {
            let server = settings.server_path.as_deref().unwrap_or(DEFAULT_SERVER);
            args.push(format!("{} --stdio", shell_quote(server)));
        }
        Remote::Sftp => args.push("sftp".into()),
    }
    args
}

/// What runs at the far end of the ssh channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Remote {
    /// `ferry-server --stdio`: the ferry protocol.
    Ferry,
    /// The `sftp` subsystem: the fallback when the remote has no `ferry-server`.
    Sftp,
}

/// Whether `error` says the remote has no `ferry-server` (its shell exited 127): the one
/// failure the SFTP fallback answers, since ssh itself worked.
/// A server named with `--server-path` and missing stays an error: the user asked for it.
pub fn server_missing(error: &EngineError) -> bool {
    settings().server_path.is_none()
        && matches!(error, EngineError::Ssh { message, .. } if message.contains(NOT_FOUND_WORDS))
}

/// The words [`SshChild::failure`] puts in a missing server's message.
const NOT_FOUND_WORDS: &str = "was not found on the remote machine";

/// A running ssh child: its stdout and stdin become the connection's halves, and what it says
/// on stderr is kept for the error if it fails.
#[derive(Debug)]
pub(crate) struct SshChild {
    child: Arc<tokio::sync::Mutex<Child>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    label: String,
    /// Whether the remote command was named with `--server-path`, for the advice.
    server_path: Option<String>,
}

/// The receiving half: ssh's stdout, holding the child so it lives as long as either half.
#[derive(Debug)]
pub(crate) struct SshReader {
    stdout: ChildStdout,
    _child: Arc<tokio::sync::Mutex<Child>>,
}

/// The sending half: ssh's stdin.
#[derive(Debug)]
pub(crate) struct SshWriter {
    stdin: ChildStdin,
    _child: Arc<tokio::sync::Mutex<Child>>,
}

/// Starts `ssh … host ferry-server --stdio` with the process's settings and the control
/// directory `dir`.
pub(crate) fn spawn(
    target: &SshTarget,
    dir: &Path,
) -> Result<(SshChild, SshReader, SshWriter), EngineError> {
    spawn_remote(target, dir, Remote::Ferry)
}

/// Starts ssh with `remote` at the far end: the ferry server, or the `sftp` subsystem.
pub(crate) fn spawn_remote(
    target: &SshTarget,
    dir: &Path,
    remote: Remote,
) -> Result<(SshChild, SshReader, SshWriter), EngineError> {
    let mut settings = settings();
    let label = target.label();
    // With somewhere to send questions, ssh asks there instead of never.
    let askpass = askpass_socket(dir).zip(std::env::current_exe().ok());
    if askpass.is_some() {
        settings.batch = false;
    }
    if target.host.starts_with('-') {
        return Err(EngineError::Ssh {
            addr: label,
            message: "a host name cannot start with '-'".into(),
        });
    }
    let mut command = Command::new(&settings.command[0]);
    command
        .args(arguments(&settings, dir, target, remote))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some((socket, program)) = &askpass {
        command
            .env("SSH_ASKPASS", program)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env(ASKPASS_SOCKET_ENV, socket);
    }
    let mut child = command.spawn().map_err(|e| EngineError::Ssh {
        addr: label.clone(),
        message: format!(
            "cannot run {:?}: {}",
            settings.command[0],
            super::error::without_os_error(&e.to_string())
        ),
    })?;
    let (Some(stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(EngineError::Ssh {
            addr: label,
            message: "ssh started without its pipes".into(),
        });
    };
    // The protocol's pipes hold 1 MiB instead of 64 KiB, so a large write and ssh's reads
    // take turns far less often; where the kernel refuses, the default stays.
    let _ = rustix::pipe::fcntl_setpipe_size(&stdin, PIPE_SIZE);
    let _ = rustix::pipe::fcntl_setpipe_size(&stdout, PIPE_SIZE);
    let kept = Arc::new(Mutex::new(Vec::new()));
    let keeping = Arc::clone(&kept);
    // Read to the end so ssh never blocks on a full pipe; only the last bytes are kept.
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let mut kept = keeping.lock().unwrap_or_else(PoisonError::into_inner);
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > STDERR_KEPT {
                let cut = kept.len() - STDERR_KEPT;
                kept.drain(..cut);
            }
        }
    });
    let child = Arc::new(tokio::sync::Mutex::new(child));
    Ok((
        SshChild {
            child: Arc::clone(&child),
            stderr: kept,
            label,
            server_path: settings.server_path,
        },
        SshReader {
            stdout,
            _child: Arc::clone(&child),
        },
        SshWriter {
            stdin,
            _child: child,
        },
    ))
}

impl SshChild {
    /// What went wrong, in ssh's words, once the connection failed before `hello` was
    /// answered: waits a little for ssh to exit, then reads its status and its last lines.
    /// `cause` is the engine's own error, kept when ssh is still running (the remote server
    /// answered but something else failed).
    pub(crate) async fn failure(&self, cause: EngineError) -> EngineError {
        let status = {
            let mut child = self.child.lock().await;
            match tokio::time::timeout(EXIT_WAIT, child.wait()).await {
                Ok(Ok(status)) => Some(status),
                _ => None,
            }
        };
        let Some(status) = status else {
            return cause;
        };
        // The stderr reader may still hold the last bytes for a moment after the exit.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let said = self.said();
        let message = if status.code() == Some(NOT_FOUND_STATUS) {
            let server = self.server_path.as_deref().unwrap_or(DEFAULT_SERVER);
            let fix = if self.server_path.is_some() {
                "check the path given with --server-path"
            } else {
                "install it there, or name it with --server-path"
            };
            format!("{server} {NOT_FOUND_WORDS} ({said}): {fix}")
        } else if said.is_empty() {
            format!("ssh ended ({status}) before the server answered")
        } else {
            said
        };
        EngineError::Ssh {
            addr: self.label.clone(),
            message,
        }
    }

    /// ssh's last words, on one line: its last non-empty lines joined with `; `, without the
    /// warnings it prints on every first contact.
    fn said(&self) -> String {
        let kept = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        let text = String::from_utf8_lossy(&kept);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with("Warning: Permanently added"))
            .collect();
        let last = &lines[lines.len().saturating_sub(3)..];
        last.join("; ")
    }
}

impl tokio::io::AsyncRead for SshReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for SshWriter {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_keeps_the_destination_and_the_server_path_whole() {
        let settings = SshSettings {
            command: vec!["ssh".into(), "-i".into(), "key".into()],
            server_path: Some("/opt/my ferry/ferry-server".into()),
            batch: true,
        };
        let target = SshTarget {
            user: Some("ann".into()),
            host: "nas".into(),
            port: Some(2222),
        };
        let args = arguments(&settings, Path::new("/run/x"), &target, Remote::Ferry);
        assert_eq!(&args[..2], ["-i", "key"]);
        assert!(args.contains(&"ControlPath=/run/x/%C".to_owned()));
        assert!(args.contains(&"BatchMode=yes".to_owned()));
        let dash = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(args[dash + 1], "ann@nas");
        assert_eq!(args[dash + 2], "'/opt/my ferry/ferry-server' --stdio");
        assert_eq!(args.len(), dash + 3);
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(
            shell_quote("/usr/bin/ferry-server"),
            "/usr/bin/ferry-server"
        );
    }

    #[test]
    fn an_ssh_command_is_split_like_a_shell_would() {
        let s = SshSettings::with_command(Some("ssh -p 2222 -i 'my key'")).unwrap();
        assert_eq!(s.command, ["ssh", "-p", "2222", "-i", "my key"]);
        assert_eq!(SshSettings::with_command(None).unwrap().command, ["ssh"]);
        assert!(SshSettings::with_command(Some("ssh 'open")).is_err());
    }

    #[test]
    fn config_hosts_are_the_names_without_patterns() {
        let text = "Host nas pi\n  HostName 10.0.0.2\nHost *.lan !x\nhost=box\n\
                    Match all\nHost nas -evil *\n";
        assert_eq!(config_hosts(text), ["nas", "pi", "box"]);
        assert!(config_hosts("").is_empty());
    }

    #[test]
    fn a_target_is_labelled_as_an_ssh_location() {
        let t = SshTarget {
            user: None,
            host: "::1".into(),
            port: Some(22),
        };
        assert_eq!(t.label(), "ssh://[::1]:22");
        assert_eq!(t.destination(), "::1");
    }
}
