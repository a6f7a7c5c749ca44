//! The modal dialogs: each one's state, and its keys turned into an [`Outcome`] the app
//! carries out. A dialog changes only itself; whatever it means for the rest of the app
//! (connecting, deleting, a transfer's cancel) goes back as an outcome.

use std::borrow::Cow;
use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent};

use crate::engine::known_hosts::Fingerprint;
use crate::format;
use crate::url::RemoteUrl;

use crate::engine::ConflictPolicy;

use super::config::{Bookmark, Recent};
use super::copy_dialog::{self, CopyDialog};
use super::input::LineInput;
use super::jobs::{JobKey, JobRow};
use super::pane::{Location, Pane, Side};
use super::partials::{self, PartialsDialog};

/// What the address prompt starts with, so a plain `HOST:PORT` needs no scheme typed.
const ADDRESS_PREFILL: &str = "ferry://";

/// What a text prompt is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputPurpose {
    Mkdir(Side),
    Rename(Side, String),
    Goto(Side),
    Address,
    /// The password of the user a location names; typed masked, sent once, kept nowhere.
    Password(PendingLogin),
    /// A rate limit, for all transfers or one.
    RateLimit(super::jobs::RateTarget),
    /// The answer to ssh's question `id`; typed masked, handed to ssh, kept nowhere.
    SshPrompt(u64),
}

/// A connection that waits for its user's password, and is asked for it again when the
/// server refuses the one given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    pub url: String,
    pub token: Option<String>,
    pub fingerprint: Option<String>,
}

/// A certificate that changed since it was trusted, as the dialog shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedCertificate {
    pub addr: String,
    pub old: Fingerprint,
    pub new: Fingerprint,
    /// Where the old one is kept, in words: `/home/ann/.local/share/ferry/known_hosts, line 3`,
    /// or the bookmark, recent entry or `--fingerprint` that pinned it.
    pub held_in: String,
}

/// What a yes/no question does on yes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    Delete(Side, Vec<Location>),
    Quit,
    CancelJob(JobKey),
    /// An upload's cancel: yes keeps its partial on the server for a resume, `d` deletes it.
    CancelUpload(JobKey),
    /// Resume the transfers an earlier run left unfinished; `d` discards them instead.
    ResumeSaved,
    DiscardSaved,
}

/// A server the connect dialog offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTarget {
    pub label: String,
    pub url: String,
    pub token: Option<String>,
    /// A pinned certificate fingerprint, as the bookmark or recent entry holds it.
    pub fingerprint: Option<String>,
    /// The bundled server ferry started with, reached by its own endpoint, not a location.
    pub bundled: bool,
}

/// A modal dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialog {
    Input {
        title: String,
        input: LineInput,
        purpose: InputPurpose,
    },
    Confirm {
        title: String,
        message: String,
        on_yes: Confirmed,
    },
    Help {
        scroll: usize,
    },
    Connect {
        targets: Vec<ConnectTarget>,
        selected: usize,
    },
    /// A `ferrys://` server presented a certificate nothing vouches for: trust it or not.
    /// Only `y` trusts; Enter does not, so a habitual key press cannot.
    Trust {
        addr: String,
        fingerprint: Fingerprint,
    },
    /// A server's certificate is not the one trusted before: both fingerprints, where the old
    /// one is kept, and the offer to replace it. Only `y` replaces; Enter does not.
    CertificateChanged(ChangedCertificate),
    /// A message that only needs reading, such as a refused certificate's warning.
    Alert {
        title: String,
        message: String,
    },
    /// A job's failed and left-out entries, with why.
    Details {
        job: JobKey,
        scroll: usize,
    },
    /// The caller's partial uploads in the remote pane's directory.
    Partials(PartialsDialog),
    /// F5/F6: where to, and with which conflict policy.
    Copy(CopyDialog),
}

/// The dialogs the app opens, built from the state they ask about.
impl Dialog {
    /// The prompt for a new directory's name in the pane on `side`.
    pub fn mkdir(side: Side) -> Dialog {
        Dialog::Input {
            title: "New directory".into(),
            input: LineInput::default(),
            purpose: InputPurpose::Mkdir(side),
        }
    }

    /// The prompt for entry `name`'s new name, starting from the old one.
    pub fn rename(side: Side, name: String) -> Dialog {
        Dialog::Input {
            title: format!("Rename {}", format::escape_name(&name)),
            input: LineInput::new(&name),
            purpose: InputPurpose::Rename(side, name),
        }
    }

    /// The go-to prompt, starting from the pane's directory `dir`.
    pub fn goto(side: Side, dir: &Location) -> Dialog {
        // Shown by the one rule, and read back by it: a local directory whose name is
        // not UTF-8 is reached again, not a lossy look-alike.
        let current = match dir {
            Location::Local(dir) => format::local_path(dir),
            remote => remote.display(),
        };
        Dialog::Input {
            title: "Go to path".into(),
            input: LineInput::new(&current),
            purpose: InputPurpose::Goto(side),
        }
    }

    /// The question before quitting with `running` transfers still running.
    pub fn quit(running: usize) -> Dialog {
        Dialog::Confirm {
            title: "Quit".into(),
            message: format!(
                "{running} transfer{} still running. Cancel and quit?",
                if running == 1 { " is" } else { "s are" }
            ),
            on_yes: Confirmed::Quit,
        }
    }

    /// The question before deleting the selection of `pane` on `side`, or why not while one
    /// of the `jobs` still reads it; `None` with nothing selected.
    pub fn delete(side: Side, pane: &Pane, jobs: &[JobRow]) -> Option<Dialog> {
        let selection = pane.selection();
        // A directory goes with everything in it: the question says so, since the answer
        // cannot be undone.
        let dirs = selection
            .iter()
            .filter(|e| e.kind == ferry_protocol::Kind::Dir)
            .count();
        let message = match selection.as_slice() {
            [] => return None,
            [one] if one.kind == ferry_protocol::Kind::Dir => format!(
                "Delete directory {} and everything in it?",
                format::escape_name(&one.name)
            ),
            [one] => format!(
                "Delete {} {}?",
                if one.kind == ferry_protocol::Kind::Symlink {
                    "link"
                } else {
                    "file"
                },
                format::escape_name(&one.name)
            ),
            many if dirs == 1 => format!(
                "Delete {} marked entries, including 1 directory and everything in it?",
                many.len()
            ),
            many if dirs > 1 => format!(
                "Delete {} marked entries, including {} directories and everything in them?",
                format::count(many.len() as u64),
                format::count(dirs as u64)
            ),
            many => format!("Delete {} marked files?", format::count(many.len() as u64)),
        };
        let paths: Vec<Location> = selection.iter().map(|e| pane.dir.join(&e.name)).collect();
        // What a running job still reads is not deleted under it: its files would vanish
        // half-copied. The user cancels the job first, or waits for it.
        let busy = paths.iter().zip(&selection).find_map(|(path, entry)| {
            let key = path.key();
            jobs.iter()
                .filter(|job| job.is_active() && job.info.dest != side)
                .find(|job| job.info.items.iter().any(|(src, _)| overlaps(src, &key)))
                .map(|job| {
                    format!(
                        "{} is being read by transfer #{} ({}): cancel it first (x), or wait \
                         for it to finish.",
                        format::escape_name(&entry.name),
                        job.number,
                        job.info.label
                    )
                })
        });
        if let Some(message) = busy {
            return Some(Dialog::Alert {
                title: "Not deleted".into(),
                message,
            });
        }
        Some(Dialog::Confirm {
            title: "Delete".into(),
            message,
            on_yes: Confirmed::Delete(side, paths),
        })
    }

    /// The question before cancelling `job`: an upload's offers to delete its partial too.
    pub fn cancel(job: &JobRow) -> Dialog {
        let (message, on_yes) = if job.info.dest == Side::Remote {
            (
                format!(
                    "Cancel transfer #{} ({})? y: cancel and keep the partial upload on the \
                     server for a later resume. d: cancel and delete the partial upload.",
                    job.number, job.info.label
                ),
                Confirmed::CancelUpload(job.key),
            )
        } else {
            (
                format!("Cancel transfer #{} ({})?", job.number, job.info.label),
                Confirmed::CancelJob(job.key),
            )
        };
        Dialog::Confirm {
            title: "Cancel transfer".into(),
            message,
            on_yes,
        }
    }

    /// The servers to connect to: the bundled server to return to (once another is shown), the
    /// bookmarks, the recent ones, the `Host`s of `~/.ssh/config` (their home over ssh), then
    /// an address.
    pub fn connect(
        bookmarks: &[Bookmark],
        recent: &[Recent],
        ssh_hosts: &[String],
        bundled: Option<&Path>,
    ) -> Dialog {
        let mut targets: Vec<ConnectTarget> = bundled
            .map(|root| ConnectTarget {
                label: format!("⌂ back to the bundled server: {}", format::local_path(root)),
                url: String::new(),
                token: None,
                fingerprint: None,
                bundled: true,
            })
            .into_iter()
            .collect();
        targets.extend(bookmarks.iter().map(|b| ConnectTarget {
            label: format!("★ {}  {}", b.name, b.url),
            url: b.url.clone(),
            token: b.token.clone(),
            fingerprint: b.fingerprint.clone(),
            bundled: false,
        }));
        targets.extend(recent.iter().map(|r| ConnectTarget {
            label: format!("  {}", r.url),
            url: r.url.clone(),
            token: r.token.clone(),
            fingerprint: r.fingerprint.clone(),
            bundled: false,
        }));
        targets.extend(ssh_hosts.iter().map(|host| ConnectTarget {
            label: format!("  {}:  (ssh)", format::escape_text(host)),
            url: format!("{host}:"),
            token: None,
            fingerprint: None,
            bundled: false,
        }));
        Dialog::Connect {
            targets,
            selected: 0,
        }
    }

    /// ssh's question, asked masked (the answer is typically a secret).
    pub fn ssh_prompt(prompt: &crate::engine::ssh::SshPrompt) -> Dialog {
        Dialog::Input {
            title: format::escape_text(prompt.prompt.trim_end_matches([':', ' '])).into_owned(),
            input: LineInput::new(""),
            purpose: InputPurpose::SshPrompt(prompt.id),
        }
    }

    /// The servers found on the local network, as rows after the others: a `ferrys://`
    /// location when one announced TLS, with no pin (its announced fingerprint is only a hint
    /// the app checks against the handshake), and the token of a bookmark of the same address,
    /// since credentials are never sent to a server only because it announced itself.
    pub fn discovered_targets(
        found: &[crate::engine::discover::Found],
        bookmarks: &[Bookmark],
    ) -> Vec<ConnectTarget> {
        found
            .iter()
            .map(|server| {
                let url = server.url();
                let token = bookmarks
                    .iter()
                    .filter(|b| {
                        b.url.parse::<RemoteUrl>().is_ok_and(|u| {
                            u.tls == server.tls
                                && u.endpoint(None).address() == server.addr.to_string()
                        })
                    })
                    .find_map(|b| b.token.clone());
                let tls = if server.tls { " [tls]" } else { "" };
                ConnectTarget {
                    label: format!(
                        "⌁ {}  {url}{tls}  (on the network)",
                        format::escape_text(&server.name)
                    ),
                    url,
                    token,
                    fingerprint: None,
                    bundled: false,
                }
            })
            .collect()
    }

    /// The masked prompt for the password of the user `login` names.
    pub fn password(login: PendingLogin) -> Dialog {
        let user = login
            .url
            .parse::<RemoteUrl>()
            .ok()
            .and_then(|url| {
                let addr = url.endpoint(None).address();
                Some(format!("{}@{addr}", url.user?))
            })
            .unwrap_or_default();
        Dialog::Input {
            title: format!("Password for {}", format::escape_name(&user)),
            input: LineInput::new(""),
            purpose: InputPurpose::Password(login),
        }
    }

    /// The server's certificate is not the trusted one: the warning, with what a TUI user can
    /// do about it (`reconnect_key` asks about the new one).
    pub fn certificate_refused(warning: &str, reconnect_key: &str) -> Dialog {
        Dialog::Alert {
            title: "Server certificate refused".into(),
            message: tui_advice(warning, reconnect_key),
        }
    }
}

/// What a key in a dialog asks of the app, beyond the dialog's own change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Yes to a question.
    Confirmed(Confirmed),
    /// `d` on an upload's cancel: cancel it, and delete its partial once it has stopped.
    CancelAndDiscard(JobKey),
    /// A prompt's text: trimmed, except a password, which is taken exactly as typed.
    Submitted(InputPurpose, String),
    /// `y` to a certificate nothing vouches for.
    Trust {
        addr: String,
        fingerprint: Fingerprint,
    },
    /// No to that certificate: the server at this address stays unconnected.
    Distrust(String),
    /// `y` to a changed certificate: put the new one where the old one was, and connect.
    Replace(ChangedCertificate),
    /// Delete the partial upload of `path` (a wire path) in `dir`, then list `dir` again.
    DiscardPartial { dir: String, path: String },
    /// Switch to a server the connect dialog listed.
    Connect(ConnectTarget),
    /// The copy dialog's Enter: send `names` from the `source` pane into `dest`.
    StartCopy {
        source: Side,
        is_move: bool,
        names: Vec<String>,
        dest: Location,
        policy: ConflictPolicy,
    },
    /// The copy dialog's Tab: its completion needs the listing of this directory.
    Complete(Location),
    /// Esc on ssh's question `id`: ssh is told there is no answer.
    SshDeclined(u64),
}

impl Dialog {
    /// A key press: the dialog it leaves open (`None`: closed) and what the app is to do.
    /// `detail_rows` says how many rows a job's details have, which their dialog scrolls.
    pub fn on_key(
        self,
        key: &KeyEvent,
        detail_rows: impl Fn(JobKey) -> usize,
    ) -> (Option<Dialog>, Option<Outcome>) {
        let mut outcome = None;
        let next = match self {
            Dialog::Details { job, scroll } => {
                let scroll = match key.code {
                    KeyCode::Up | KeyCode::Char('k') => scroll.saturating_sub(1),
                    KeyCode::Down | KeyCode::Char('j') => scroll + 1,
                    KeyCode::PageUp => scroll.saturating_sub(10),
                    KeyCode::PageDown => scroll + 10,
                    KeyCode::Home => 0,
                    _ => usize::MAX,
                };
                // Clamped to the list's end, so Up after a long PageDown moves at once.
                let rows = detail_rows(job);
                (scroll != usize::MAX).then(|| Dialog::Details {
                    job,
                    scroll: scroll.min(rows.saturating_sub(1)),
                })
            }
            Dialog::Help { scroll } => match key.code {
                KeyCode::Up | KeyCode::Char('k') => Some(Dialog::Help {
                    scroll: scroll.saturating_sub(1),
                }),
                KeyCode::Down | KeyCode::Char('j') => Some(Dialog::Help { scroll: scroll + 1 }),
                KeyCode::PageUp => Some(Dialog::Help {
                    scroll: scroll.saturating_sub(10),
                }),
                KeyCode::PageDown => Some(Dialog::Help {
                    scroll: scroll + 10,
                }),
                _ => None,
            },
            Dialog::Confirm {
                title,
                message,
                on_yes,
            } => return confirm_key(key, title, message, on_yes),
            Dialog::Input {
                title,
                input,
                purpose,
            } => return input_key(key, title, input, purpose),
            Dialog::Trust { addr, fingerprint } => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    outcome = Some(Outcome::Trust { addr, fingerprint });
                    None
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    outcome = Some(Outcome::Distrust(addr));
                    None
                }
                _ => Some(Dialog::Trust { addr, fingerprint }),
            },
            Dialog::CertificateChanged(changed) => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    outcome = Some(Outcome::Replace(changed));
                    None
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    outcome = Some(Outcome::Distrust(changed.addr));
                    None
                }
                _ => Some(Dialog::CertificateChanged(changed)),
            },
            Dialog::Alert { title, message } => match key.code {
                KeyCode::Enter | KeyCode::Esc | KeyCode::Char('q') => None,
                _ => Some(Dialog::Alert { title, message }),
            },
            Dialog::Partials(mut dialog) => match dialog.on_key(*key) {
                partials::Outcome::Stay => Some(Dialog::Partials(dialog)),
                partials::Outcome::Close => None,
                partials::Outcome::Discard(path) => {
                    outcome = Some(Outcome::DiscardPartial {
                        dir: dialog.dir.clone(),
                        path,
                    });
                    Some(Dialog::Partials(dialog))
                }
            },
            Dialog::Connect { targets, selected } => return connect_key(key, targets, selected),
            Dialog::Copy(mut dialog) => match dialog.on_key(key) {
                copy_dialog::Outcome::Stay => Some(Dialog::Copy(dialog)),
                copy_dialog::Outcome::Close => None,
                copy_dialog::Outcome::Start { dest, policy } => {
                    outcome = Some(Outcome::StartCopy {
                        source: dialog.source,
                        is_move: dialog.is_move,
                        names: dialog.names,
                        dest,
                        policy,
                    });
                    None
                }
                copy_dialog::Outcome::List(dir) => {
                    outcome = Some(Outcome::Complete(dir));
                    Some(Dialog::Copy(dialog))
                }
            },
        };
        (next, outcome)
    }
}

/// Yes (`y`, Enter) or no (`n`, Esc); `d` on an upload's cancel also deletes its partial.
fn confirm_key(
    key: &KeyEvent,
    title: String,
    message: String,
    on_yes: Confirmed,
) -> (Option<Dialog>, Option<Outcome>) {
    let next = match key.code {
        KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
            return (None, Some(Outcome::Confirmed(on_yes)));
        }
        KeyCode::Char('d') | KeyCode::Char('D') => {
            if let Confirmed::CancelUpload(key) = on_yes {
                return (None, Some(Outcome::CancelAndDiscard(key)));
            } else if on_yes == Confirmed::ResumeSaved {
                return (None, Some(Outcome::Confirmed(Confirmed::DiscardSaved)));
            } else {
                Some(Dialog::Confirm {
                    title,
                    message,
                    on_yes,
                })
            }
        }
        KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => None,
        _ => Some(Dialog::Confirm {
            title,
            message,
            on_yes,
        }),
    };
    (next, None)
}

/// A prompt's keys: Enter submits, Esc closes, the rest edit the text.
fn input_key(
    key: &KeyEvent,
    title: String,
    mut input: LineInput,
    purpose: InputPurpose,
) -> (Option<Dialog>, Option<Outcome>) {
    let next = match key.code {
        KeyCode::Esc => {
            if let InputPurpose::SshPrompt(id) = purpose {
                return (None, Some(Outcome::SshDeclined(id)));
            }
            None
        }
        KeyCode::Enter => {
            // A password is taken exactly as typed, spaces included.
            let text = match purpose {
                InputPurpose::Password(_) | InputPurpose::SshPrompt(_) => input.text().to_string(),
                _ => input.text().trim().to_string(),
            };
            return (None, Some(Outcome::Submitted(purpose, text)));
        }
        _ => {
            input.handle(key);
            // A scheme typed or pasted right after the pre-fill replaces it at once,
            // so the field shows the location the user means.
            if purpose == InputPurpose::Address
                && input.cursor() == input.text().chars().count()
                && without_prefill(input.text()).len() < input.text().len()
            {
                input = LineInput::new(without_prefill(input.text()));
            }
            Some(Dialog::Input {
                title,
                input,
                purpose,
            })
        }
    };
    (next, None)
}

/// Moving through the servers offered; Enter connects, or on the last row asks for an address.
fn connect_key(
    key: &KeyEvent,
    targets: Vec<ConnectTarget>,
    selected: usize,
) -> (Option<Dialog>, Option<Outcome>) {
    // The last row is "type an address".
    let rows = targets.len() + 1;
    let next = match key.code {
        KeyCode::Esc | KeyCode::Char('q') => None,
        KeyCode::Up | KeyCode::Char('k') => Some(Dialog::Connect {
            targets,
            selected: selected.saturating_sub(1),
        }),
        KeyCode::Down | KeyCode::Char('j') | KeyCode::Tab => Some(Dialog::Connect {
            targets,
            selected: (selected + 1).min(rows - 1),
        }),
        KeyCode::Home | KeyCode::PageUp | KeyCode::Char('g') => Some(Dialog::Connect {
            targets,
            selected: 0,
        }),
        KeyCode::End | KeyCode::PageDown | KeyCode::Char('G') => Some(Dialog::Connect {
            targets,
            selected: rows - 1,
        }),
        KeyCode::Enter => match targets.get(selected) {
            Some(target) => {
                return (None, Some(Outcome::Connect(target.clone())));
            }
            None => Some(Dialog::Input {
                title: "Address: ferry:// or ferrys://[USER@]HOST:PORT/PATH [TOKEN]".into(),
                input: LineInput::new(ADDRESS_PREFILL),
                purpose: InputPurpose::Address,
            }),
        },
        _ => Some(Dialog::Connect { targets, selected }),
    };
    (next, None)
}

/// The typed address without the prompt's pre-filled scheme when the user typed or pasted a
/// location with its own (`ferry://ferrys://host`): the pre-fill was only a convenience.
pub fn without_prefill(typed: &str) -> &str {
    let rest = typed
        .get(..ADDRESS_PREFILL.len())
        .filter(|head| head.eq_ignore_ascii_case(ADDRESS_PREFILL))
        .map(|_| &typed[ADDRESS_PREFILL.len()..]);
    match rest.and_then(|rest| rest.split_once("://").map(|(scheme, _)| (rest, scheme))) {
        Some((rest, scheme))
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            rest
        }
        _ => typed,
    }
}

/// The location typed in F9's address prompt: without the pre-filled scheme when the user
/// typed one of their own; a bare `HOST:PORT[/PATH]` (digits after the colon) or `HOST` taken
/// as `ferry://HOST:PORT/PATH`, since this prompt is where servers are typed; any other scp
/// form (`nas:photos`, `ann@nas:`, `nas:/srv`) kept for ssh.
pub fn typed_address(typed: &str) -> Cow<'_, str> {
    let typed = without_prefill(typed);
    let scp = crate::url::RemoteUrl::looks_remote(typed) && !names_a_port(typed);
    if typed.contains("://") || scp {
        Cow::Borrowed(typed)
    } else {
        Cow::Owned(format!("{ADDRESS_PREFILL}{typed}"))
    }
}

/// Whether `typed` is `HOST:PORT` with an optional path: digits only between the colon
/// and the first `/` (or the end), or a bracketed IPv6 host.
fn names_a_port(typed: &str) -> bool {
    if typed.starts_with('[') {
        return true;
    }
    typed.split_once(':').is_some_and(|(_, rest)| {
        let port = rest.split('/').next().unwrap_or_default();
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The address prompt as shown: the token after the location is a secret, so it shows one
/// dot per character, like a password; the location itself stays readable.
pub fn masked_address(typed: &str) -> Vec<char> {
    let mut in_token = false;
    let mut seen_location = false;
    typed
        .chars()
        .map(|c| {
            if c.is_whitespace() {
                in_token = seen_location;
                c
            } else {
                seen_location = true;
                if in_token { '•' } else { c }
            }
        })
        .collect()
}

/// The engine's certificate warning with its command-line advice (`pass --fingerprint`)
/// replaced by what a TUI user can do; fingerprints and the rest are kept as they are.
fn tui_advice(warning: &str, reconnect_key: &str) -> String {
    const CLI: &str = ", or pass --fingerprint ";
    let Some(at) = warning.find(CLI) else {
        return warning.to_owned();
    };
    let presented = warning[at + CLI.len()..].trim();
    format!(
        "{}, then press {reconnect_key} to reconnect and be asked about the new one; or set \
         the bookmark's fingerprint to\n{presented}",
        &warning[..at]
    )
}

/// Whether one of two location keys (local paths or remote wire paths, as [`Location::key`]
/// gives them) is the other or lies inside it.
fn overlaps(a: &str, b: &str) -> bool {
    fn within(inner: &str, outer: &str) -> bool {
        outer.is_empty()
            || inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('/') || outer.ends_with('/'))
    }
    within(a, b) || within(b, a)
}

#[cfg(test)]
mod overlap_tests {
    use super::overlaps;

    #[test]
    fn an_entry_overlaps_what_holds_it_and_what_it_holds_but_not_a_sibling() {
        assert!(overlaps("/home/u/big", "/home/u/big"));
        assert!(overlaps("/home/u/big/f01", "/home/u/big"));
        assert!(overlaps("/home/u", "/home/u/big/f01"));
        assert!(overlaps("/", "/home/u"));
        assert!(overlaps("", "photos/2024"));
        assert!(overlaps("photos", "photos/2024/a.jpg"));
        assert!(!overlaps("/home/u/big", "/home/u/bigger"));
        assert!(!overlaps("photos/2024", "photos/2025"));
        assert!(!overlaps("photos", "photosets"));
    }
}
