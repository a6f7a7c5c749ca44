//! What the TUI knows of the server the remote pane browses: its label, the state of the link,
//! its access and the certificate the user accepted. The browsing session itself lives in the
//! session task; this is only its picture.

use std::path::PathBuf;

use crate::engine::known_hosts::Fingerprint;

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
            server: None,
            bundled: None,
            accepted: None,
        }
    }
}
