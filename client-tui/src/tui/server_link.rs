//! What the TUI knows of the server the remote pane browses: its label, the state of the link,
//! its access and the certificate the user accepted. The browsing session itself lives in the
//! session task; this is only its picture.

use std::path::PathBuf;

use crate::engine::browse::Refusal;
use crate::engine::known_hosts::Fingerprint;

use super::config::{Bookmark, Recent};

use super::message::ConnEvent;

/// The state of the link to the server that the remote pane browses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    Connecting,
    Connected,
    Lost(String),
}

/// The server the remote pane shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLink {
    /// Bumped on every (re)connect so late events from an old connection are recognised.
    pub id: u64,
    /// `host:port`, as shown in the status bar.
    pub label: String,
    pub state: ConnState,
    pub read_only: bool,
    /// Whether the link speaks TLS (a `ferrys://` location), shown as `[tls]`.
    pub tls: bool,
    /// The server's name and version, once known.
    pub server: Option<String>,
    /// What the bundled server serves, when this is the in-process server.
    pub bundled: Option<PathBuf>,
    /// The certificate the user accepted for this connection, so late news of it being
    /// unknown (from the attempt before the answer) does not ask again.
    pub accepted: Option<Fingerprint>,
}

impl ServerLink {
    /// Connection `id` to the server at `label`, on its way up.
    pub fn connecting(id: u64, label: String) -> ServerLink {
        ServerLink {
            id,
            label,
            state: ConnState::Connecting,
            read_only: false,
            tls: false,
            server: None,
            bundled: None,
            accepted: None,
        }
    }

    /// The status bar's first words: a dot, the server, the state of the link and its
    /// markers (`[tls]`, `[read-only]`). The bar
    /// keeps room for them before key hints, so the click mapping measures them too.
    pub fn summary(&self) -> String {
        let (dot, state) = match &self.state {
            ConnState::Connecting => ("◌", "connecting"),
            ConnState::Connected => ("●", "connected"),
            ConnState::Lost(_) => ("✗", "disconnected"),
        };
        let tls = if self.tls { " [tls]" } else { "" };
        let read_only = if self.read_only { " [read-only]" } else { "" };
        format!(" {dot} {} {state}{tls}{read_only}", self.label)
    }

    /// Takes in news of the link (its state, access and server name) and says what it means
    /// for the rest of the screen.
    pub fn apply(&mut self, event: ConnEvent) -> LinkNews {
        match event {
            ConnEvent::Connected {
                read_only, server, ..
            } => {
                let was_lost = matches!(self.state, ConnState::Lost(_));
                self.state = ConnState::Connected;
                self.read_only = read_only;
                self.server = Some(server);
                LinkNews::Up { was_lost }
            }
            ConnEvent::UnknownCertificate { addr, fingerprint } => {
                if self.accepted == Some(fingerprint) {
                    return LinkNews::Known;
                }
                self.state = ConnState::Lost("the server's certificate is not trusted yet".into());
                LinkNews::AskTrust { addr, fingerprint }
            }
            ConnEvent::CertificateRefused(refusal) => {
                self.state = ConnState::Lost("certificate refused".into());
                LinkNews::Refused(refusal)
            }
            ConnEvent::Unauthorized(error) => {
                self.state = ConnState::Lost(error.clone());
                LinkNews::Unauthorized(error)
            }
            ConnEvent::Lost(error) => {
                self.state = ConnState::Lost(error.clone());
                LinkNews::Lost(error)
            }
        }
    }
}

/// What news of the link means once [`ServerLink::apply`] has taken it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkNews {
    /// The link is up; `was_lost`: it had been lost, so coming back is news.
    Up { was_lost: bool },
    /// News of a certificate the user already accepted on this link: nothing to ask.
    Known,
    /// A certificate nothing vouches for: the user is asked whether to trust it.
    AskTrust {
        addr: String,
        fingerprint: Fingerprint,
    },
    /// The certificate is not the trusted one: the engine's full warning.
    Refused(Refusal),
    /// The server refused the credentials.
    Unauthorized(String),
    /// The link broke.
    Lost(String),
}

/// Where the old fingerprint of a `refusal` is kept, in words for the changed-certificate
/// dialog: the known_hosts file and line, or the pin's origin (a bookmark in `config`, the
/// recent list, or `--fingerprint`), and known_hosts too when it holds the same.
pub fn held_in(
    refusal: &Refusal,
    old: &Fingerprint,
    bookmarks: &[Bookmark],
    recent: &[Recent],
    config: Option<&std::path::Path>,
) -> String {
    let file = refusal
        .recorded_at
        .as_ref()
        .map(|(path, line)| format!("{}, line {line}", crate::format::local_path(path)));
    if !refusal.pinned {
        return file.unwrap_or_else(|| "known_hosts".into());
    }
    let pin = if let Some(bookmark) = bookmarks.iter().find(|b| pins(&b.fingerprint, old)) {
        let config = config.map(crate::format::local_path).unwrap_or_default();
        format!(
            "the fingerprint of bookmark \"{}\" in {config}",
            bookmark.name
        )
    } else if recent.iter().any(|r| pins(&r.fingerprint, old)) {
        "the fingerprint kept with the recent connection".to_owned()
    } else {
        "the fingerprint given with --fingerprint".to_owned()
    };
    match file {
        Some(file) => format!("{pin} and {file}"),
        None => pin,
    }
}

/// Whether a bookmark's or recent entry's `pin` (in any form a user writes one) is
/// `fingerprint`.
pub fn pins(pin: &Option<String>, fingerprint: &Fingerprint) -> bool {
    pin.as_deref()
        .is_some_and(|pin| pin.parse::<Fingerprint>().as_ref() == Ok(fingerprint))
}
