//! Local file names and their wire form, for the engine, the CLI and the TUI alike: the one
//! conversion, shared with the server, lives in `ferry_localfs`. A leaf: it needs nothing of
//! ferry but that crate.

pub use ferry_localfs::{os_name, wire_name};
