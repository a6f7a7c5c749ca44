//! One download on a worker's connection: the conflict policy and the local partial's prefix
//! hash, then the `get` from that offset; later, its payload streamed into the hidden partial,
//! verified against the trailer's whole-file digest and renamed into place.
//!
//! A streamed partial is `0600` while its bytes arrive and gets its final mode by `fchmod`
//! just before the rename: a new file the server's mode less the umask, a replaced file its
//! own. A small file, verified in memory before it touches the disk, is created `0600` and
//! given its final mode before its bytes are written.

mod disk;
mod ranges;
mod reply;
mod request;

pub(crate) use disk::DiskStage;
pub(crate) use reply::finish_get;
pub(crate) use request::send_get;
