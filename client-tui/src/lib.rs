//! The `ferry` client: one transfer engine behind two faces, the two-pane TUI and the
//! scripting CLI.
//!
//! # Module map
//! - [`url`]: `ferry://HOST:PORT/PATH` locations.
//! - [`engine`]: the only code that touches the network: sessions for browsing and small
//!   operations, background transfer jobs with progress events, atomic local writes.
//! - [`cli`]: `ferry ls|get|put|mkdir|rm|mv`, printing for scripts and people.
//! - [`format`](mod@format): sizes, times, speeds and escaped names, for both faces.
//! - [`man`]: `ferry man`, the manual page with every command, the examples and the keys.
//! - [`names`]: local file names and their wire form (the protocol's name escape).
//! - [`tui`]: the full-screen two-pane interface: state, event loop, rendering, keymap, config.

mod atomic;
pub mod cli;
pub mod engine;
pub mod format;
pub mod man;
pub mod names;
pub mod tui;
pub mod url;
