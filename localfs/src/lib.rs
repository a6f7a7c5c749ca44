//! The rules about local files that ferry's server and client share, each written once: the
//! permission bits new files get ([`umask`]), how a file's time becomes the protocol's seconds
//! and back ([`secs_since_epoch`], [`system_time`]), what kind an entry is and the wire
//! [`Entry`](ferry_protocol::Entry) its metadata makes ([`kind_of`], [`entry`]), the prefix
//! hash a resume checks ([`hash_prefix`]), who owns an entry ([`owner`]), replacing a small
//! file whole ([`replace`]), a local name's wire form ([`wire_name`], [`os_name`]), and an
//! mtime or mode set without following a symlink ([`set_attrs_nofollow`]).
//!
//! A crate of its own because the protocol crate stays free of IO, and the client should not
//! reach into the server for rules that are not the server's. It sits between the two: it
//! needs only the protocol, and both programs use it.

mod attrs;
mod entry;
mod hash;
mod mode;
mod names;
mod owner;
mod replace;
mod time;

pub use attrs::{AttrsError, set_attrs_nofollow};
pub use entry::{FileTypeView, MetadataView, entry, kind_of, owner_of};
pub use hash::{hash_file_prefix, hash_prefix, hash_prefix_until};
pub use mode::umask;
pub use names::{os_name, wire_name};
pub use owner::owner;
pub use replace::replace;
pub use time::{mtime_secs, secs_since_epoch, system_time};
