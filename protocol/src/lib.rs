//! ferry's wire protocol, with no IO: the types that cross the wire, the header framing, the
//! error codes and the rules for paths. `PROTOCOL.md` at the repository root is the prose
//! version of the same contract; the two are kept in step.
//!
//! # Grammar
//!
//! ```text
//! stream   = *message
//! message  = header [payload]
//! header   = JSON-object "\n"          ; UTF-8, one line, at most MAX_HEADER_LEN bytes with "\n"
//! payload  = size*OCTET                ; exactly `size` raw bytes, when the header has "size"
//! ```
//!
//! A header's top-level `"size"` is always the count of raw bytes that follow it. Requests carry
//! `"op"`; responses carry `"ok"` and come back in request order, so a client may pipeline.
//!
//! # Modules
//! - [`frame`]: splits a byte stream into headers and payload chunks, whatever the read sizes.
//! - [`message`]: requests, responses and their encoding.
//! - [`error`]: the stable error codes.
//! - [`path`]: which remote paths are acceptable, checked the same way by server and client,
//!   and the name escape that lets a path name any bytes a filesystem holds.
//! - [`digest`]: the `blake3:<hex>` file digest.
//! - [`codec`] (feature `codec`): the frame decoder as a `tokio_util::codec::Decoder`.

#[cfg(feature = "codec")]
pub mod codec;
pub mod digest;
pub mod error;
pub mod frame;
pub mod message;
pub mod path;

pub use digest::Digest;
pub use error::{ErrorBody, ErrorCode};
pub use frame::{Frame, FrameDecoder, FrameError};
pub use message::*;

/// The protocol version a `hello` must name.
pub const VERSION: u32 = 1;

/// The longest header line accepted, its `\n` included. A peer that sends more without a newline
/// is cut off, so one connection can never make the other side buffer more than this.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

/// The port `ferry-server` listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 7070;
