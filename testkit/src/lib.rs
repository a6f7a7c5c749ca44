//! What the integration tests of `ferry-server` and `ferry` share, written once: a raw protocol
//! client that speaks the wire as a peer outside the project would ([`wire`]), the real binaries
//! and their logs ([`bin`]), a binary run as `nobody` to meet permission denied ([`nobody`]), a
//! tmux driver for the TUI end to end ([`tmux`]), a real OpenSSH `sshd` on loopback
//! ([`sshd`]), and deterministic test data ([`data`]).
//!
//! Test code: a failed setup step stops the test with its error, which is what `unwrap` does.
//! Nothing here knows a test's expectations; each suite keeps its own in its `tests/common`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod bin;
pub mod data;
pub mod nobody;
pub mod sshd;
pub mod tmux;
pub mod wire;
