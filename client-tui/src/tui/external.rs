//! Handing the screen to another program (an editor, a pager, a shell, an opener) and taking
//! it back, the way Ctrl+Z's suspend does: mouse capture off, the terminal restored, the
//! program run in the foreground, then raw mode, the alternate screen and the mouse back and
//! the whole screen drawn again. The terminal-event reader is dropped for the while, so no key
//! meant for the program is read by ferry.
//!
//! Also the private temporary copies that remote files are edited or opened through: a 0700
//! directory holding one 0600 file, removed afterwards whatever happens.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use crossterm::event::{Event, EventStream};
use futures_util::Stream;
use ratatui::DefaultTerminal;

/// What a program is started as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// A command line from the environment or the config (`$EDITOR`, `xdg-open`, `less -R`),
    /// run by `/bin/sh` with the file as its last argument, as git runs `$EDITOR`.
    Command(String),
    /// An interactive shell, run as it is (`$SHELL`).
    Shell(PathBuf),
}

/// A program to hand the screen to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub launch: Launch,
    /// The working directory.
    pub dir: Option<PathBuf>,
    /// The file it is given.
    pub file: Option<PathBuf>,
}

impl Program {
    /// The editor the environment names: `$VISUAL`, then `$EDITOR`, then `vi`.
    pub fn editor(file: PathBuf) -> Program {
        let command = ["VISUAL", "EDITOR"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|value| !value.trim().is_empty())
            .unwrap_or_else(|| "vi".into());
        Program::command(command, file)
    }

    /// `$PAGER`, else `less`.
    pub fn pager_command() -> String {
        std::env::var("PAGER")
            .ok()
            .filter(|value| !value.trim().is_empty())
            .unwrap_or_else(|| "less".into())
    }

    /// A command line run on `file`, in the file's directory.
    pub fn command(command: String, file: PathBuf) -> Program {
        Program {
            launch: Launch::Command(command),
            dir: file.parent().map(Path::to_path_buf),
            file: Some(file),
        }
    }

    /// `$SHELL` (else `/bin/sh`) in `dir`.
    pub fn shell(dir: PathBuf) -> Program {
        let shell = std::env::var_os("SHELL")
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| OsString::from("/bin/sh"));
        Program {
            launch: Launch::Shell(PathBuf::from(shell)),
            dir: Some(dir),
            file: None,
        }
    }

    /// The process to start.
    fn to_command(&self) -> std::process::Command {
        let mut command = match &self.launch {
            Launch::Command(line) => {
                let mut sh = std::process::Command::new("/bin/sh");
                sh.arg("-c").arg(format!("{line} \"$@\"")).arg("sh");
                if let Some(file) = &self.file {
                    sh.arg(file);
                }
                sh
            }
            Launch::Shell(shell) => std::process::Command::new(shell),
        };
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        command
    }

    /// Runs the program to its end on this terminal (the caller has handed the screen over);
    /// returns a message when it could not start or did not end well.
    pub fn run_here(&self) -> Result<(), String> {
        let name = match &self.launch {
            Launch::Command(line) => line.clone(),
            Launch::Shell(shell) => crate::format::local_path(shell),
        };
        match self.to_command().status() {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(format!(
                "{} ended with {status}",
                crate::format::escape_text(&name)
            )),
            Err(error) => Err(format!(
                "cannot start {}: {error}",
                crate::format::escape_text(&name)
            )),
        }
    }
}

/// The terminal's events, read by a [`EventStream`] that can be dropped while another program
/// owns the terminal and is made again on the next poll.
#[derive(Default)]
pub struct TerminalEvents {
    stream: Option<EventStream>,
}

impl std::fmt::Debug for TerminalEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalEvents")
            .field("reading", &self.stream.is_some())
            .finish()
    }
}

impl TerminalEvents {
    /// Stops reading the terminal until the next poll.
    pub fn pause(&mut self) {
        self.stream = None;
    }
}

impl Stream for TerminalEvents {
    type Item = std::io::Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let stream = self.stream.get_or_insert_with(EventStream::new);
        Pin::new(stream).poll_next(cx)
    }
}

/// Gives the terminal back as the shell had it (mouse off, cooked mode, main screen).
pub fn release(events: &mut TerminalEvents) -> std::io::Result<()> {
    events.pause();
    crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture)?;
    ratatui::restore();
    Ok(())
}

/// Takes the terminal back for ferry and has the whole screen drawn again.
///
/// Not `Terminal::clear`: it asks the terminal for the cursor position first, and that answer
/// did not arrive in time after a program had run (tmux, under load). Clearing the screen and
/// emptying ratatui's last frame has the next draw paint every cell without asking anything.
pub fn reclaim(terminal: &mut DefaultTerminal) -> std::io::Result<()> {
    crossterm::terminal::enable_raw_mode()?;
    crossterm::execute!(
        std::io::stdout(),
        crossterm::terminal::EnterAlternateScreen,
        crossterm::terminal::Clear(crossterm::terminal::ClearType::All),
        crossterm::event::EnableMouseCapture
    )?;
    // The frame last drawn is the inactive buffer; swapping twice empties both, so nothing on
    // screen is assumed to be there already.
    terminal.swap_buffers();
    terminal.swap_buffers();
    Ok(())
}

/// What the event loop hands the terminal over for.
#[derive(Debug, Clone, Copy)]
pub enum Handover<'a> {
    /// Ctrl+Z: stop as a shell job until `fg`.
    Suspend,
    /// Run a program in the foreground.
    Run(&'a Program),
}

/// Runs `program` with the screen handed over, and takes the screen back whatever happened.
pub fn hand_over(
    terminal: &mut DefaultTerminal,
    events: &mut TerminalEvents,
    program: &Program,
) -> Result<(), String> {
    release(events).map_err(|e| format!("cannot hand the terminal over: {e}"))?;
    // The runtime's other workers go on with transfers while this one waits for the program.
    let ran = tokio::task::block_in_place(|| program.run_here());
    let back = reclaim(terminal).map_err(|e| format!("cannot take the terminal back: {e}"));
    ran.and(back)
}

/// A private place for a temporary copy of the remote file `name`: a new 0700 directory in
/// the system's temporary directory, and in it `name` as an empty 0600 file.
pub fn private_copy(name: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("ferry-edit.")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()?
        .keep();
    // The name is the remote one (an editor picks its syntax from it), as a local name.
    let local = crate::names::os_name(name);
    let leaf = Path::new(&local)
        .file_name()
        .map_or_else(|| OsString::from("file"), |n| n.to_os_string());
    let file = dir.join(leaf);
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file);
    if let Err(error) = created {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(error);
    }
    Ok(file)
}

/// Removes a copy [`private_copy`] made, with its directory.
pub fn remove_copy(file: &Path) {
    if let Some(dir) = file.parent()
        && dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("ferry-edit."))
        && let Err(error) = std::fs::remove_dir_all(dir)
    {
        tracing::warn!(
            "cannot remove the temporary copy {}: {error}",
            crate::format::local_path(dir)
        );
    }
}

/// The BLAKE3 of a local file, to tell whether an editor changed it.
pub fn digest_of(file: &Path) -> std::io::Result<blake3::Hash> {
    let mut hasher = blake3::Hasher::new();
    let mut reader = std::fs::File::open(file)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize());
        }
        hasher.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_private_copy_is_a_0600_file_in_a_0700_directory_and_goes_whole() {
        let file = private_copy("notes.txt").unwrap();
        let dir = file.parent().unwrap().to_path_buf();
        assert_eq!(file.file_name().unwrap(), "notes.txt");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir), 0o700);
        remove_copy(&file);
        assert!(!dir.exists());
    }

    #[test]
    fn a_command_gets_the_file_as_its_last_argument() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a b.txt");
        std::fs::write(&file, "x").unwrap();
        let program = Program::command("printf '%s' >\"$0.out\"".into(), file.clone());
        // `$0` is "sh" here: the output lands in the file's directory.
        program.run_here().unwrap();
        let out = std::fs::read_to_string(tmp.path().join("sh.out")).unwrap();
        assert_eq!(out, file.to_str().unwrap());
    }
}
