//! `summary`: totals of a tree (or of one file) before a transfer starts, so progress can be
//! shown against the whole. Directories are counted below the path, not the path itself.

use ferry_protocol::{Kind, SummaryReply};
use tokio_util::sync::CancellationToken;

use super::ok_line;
use super::walk::Walker;
use super::{Access, Meter};
use crate::error::OpError;
use crate::root::RemotePath;
use ferry_localfs::kind_of;

/// Totals of `wire`; a walk of a directory counts its entries on `meter` and ends early once
/// `stop` is cancelled (the client left), and its answer is then never sent.
pub(super) fn summary(
    access: &Access,
    wire: &str,
    stop: &CancellationToken,
    meter: &Meter,
) -> Result<Vec<u8>, OpError> {
    let path = RemotePath::parse(wire)?;
    let meta = access.root.symlink_metadata(&path)?;
    let mut totals = SummaryReply {
        files: 0,
        dirs: 0,
        bytes: 0,
        skipped: 0,
    };
    match kind_of(meta.file_type()) {
        Kind::File => {
            totals.files = 1;
            totals.bytes = meta.len();
        }
        Kind::Dir => {
            let mut walker = Walker::new(access, &path, stop.clone(), meter.clone())?;
            while let Some(entry) = walker.next_entry() {
                // What the walk named with an error is in its `skipped` already.
                if walker.named_again() || (entry.error.is_some() && entry.kind != Kind::Dir) {
                    continue;
                }
                match entry.kind {
                    Kind::File => {
                        totals.files += 1;
                        totals.bytes = totals.bytes.saturating_add(entry.size);
                    }
                    Kind::Dir => totals.dirs += 1,
                    Kind::Symlink | Kind::Other => totals.skipped += 1,
                }
            }
            walker.finish()?;
            totals.skipped += walker.skipped();
        }
        Kind::Symlink | Kind::Other => totals.skipped = 1,
    }
    ok_line(&totals)
}
