//! The small pieces of screen state the whole interface shares: which part takes the keys and
//! the banner line above the status bar.

use super::pane::Side;

/// Which part of the screen takes the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Pane(Side),
    Transfers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BannerKind {
    Error,
    Info,
    /// Something the user stopped: neither a success nor a failure.
    Cancelled,
}

/// A one-line message above the status bar, until Esc or the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    pub kind: BannerKind,
    pub text: String,
}
