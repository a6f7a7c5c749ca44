//! One upload on a worker's connection: the conflict policy and the resume check (asked on a
//! side connection, since the main one is busy with pipelined requests), then the `put` with
//! its payload hashed while it is sent and the digest in a trailer; later, its reply.
//!
//! The file is opened (a small one read whole) before its `put` is sent, so the request can
//! carry the permission bits of the very file whose bytes follow.

mod reply;
mod request;
mod source;

pub(crate) use reply::finish_put;
pub(crate) use request::send_put;
pub(crate) use source::{ReadAhead, SmallFile, read_ahead};
