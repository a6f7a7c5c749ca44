//! The scripting commands (being written).
