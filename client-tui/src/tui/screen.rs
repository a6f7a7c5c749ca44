//! The small pieces of screen state the whole interface shares: which part takes the keys, the
//! banner line above the status bar, and a drag in progress.

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

/// A drag that started on a pane entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drag {
    pub side: Side,
    pub name: String,
    /// Whether the mouse moved with the button down (a plain click is not a drag).
    pub moved: bool,
}
