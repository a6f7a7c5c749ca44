//! `get`: a file's bytes from an offset, streamed in big chunks by a blocking reader, followed
//! by the whole file's digest (or, for a ranged `get` with a `length`, the digest of the bytes
//! sent). The announced count is always sent in full (zeros stand in for
//! bytes that vanished) so the stream stays framed; a file that changed meanwhile ends with a
//! `file_changed` error instead of a digest.

use std::io::{self, Read};

use cap_std::fs::{Metadata, MetadataExt};
use ferry_protocol::{ErrorCode, GetReply, GetTrailer};

use super::Access;
use super::{Pipe, UNITS_PER_MIB, ok_line};
use crate::error::OpError;
use crate::root::RemotePath;
use ferry_localfs::hash_prefix_until;

/// Bytes per read and per message to the socket writer.
const CHUNK: usize = 512 * 1024;

/// Answers `get`s that were all waiting in the connection's buffer, from one blocking thread:
/// the answers of small files are gathered into shared pieces, so a pipelined tree of tiny
/// files costs one thread hop and a few socket writes per batch instead of per file.
pub(super) fn get_many(access: &Access, gets: &[(String, u64, Option<u64>)], pipe: &mut Pipe) {
    let mut pending = Vec::new();
    for (wire, offset, length) in gets {
        if !get_into(access, wire, *offset, *length, pipe, &mut pending) {
            return;
        }
        // An answer that cost a prefix's hashing goes out before the next one is worked on,
        // so a client that has gone is found before more work is done for it.
        let hashed = *offset > 0 && length.is_none();
        if hashed && !pending.is_empty() && !pipe.send(std::mem::take(&mut pending)) {
            return;
        }
    }
    if !pending.is_empty() {
        pipe.send(pending);
    }
}

/// Appends one `get`'s answer to `pending`, sending full chunks on the way; what is left in
/// `pending` is the caller's to send. `false` once the connection has gone.
fn get_into(
    access: &Access,
    wire: &str,
    offset: u64,
    length: Option<u64>,
    pipe: &mut Pipe,
    pending: &mut Vec<u8>,
) -> bool {
    let opened = open_at(access, wire, offset, length.is_some(), pipe);
    if pipe.stopped() {
        return false;
    }
    let (mut file, meta, mut hasher) = match opened {
        Ok(opened) => opened,
        Err(err) => {
            pending.extend_from_slice(&err.encode());
            return true;
        }
    };
    let file_size = meta.len();
    let rest = file_size - offset;
    let reply = GetReply {
        size: length.map_or(rest, |length| length.min(rest)),
        file_size,
        offset,
        mtime: meta.mtime(),
        mode: meta.mode() & 0o7777,
    };
    let header = match ok_line(&reply) {
        Ok(line) => line,
        Err(err) => {
            pending.extend_from_slice(&err.encode());
            return true;
        }
    };
    // Pieces are gathered up to a chunk before they go to the socket writer, so a small file
    // leaves as one write: header, bytes and trailer together.
    if pending.len() + header.len() > CHUNK && !pipe.send(std::mem::take(pending)) {
        return false;
    }
    pending.extend_from_slice(&header);
    let mut remaining = reply.size;
    let mut trouble: Option<OpError> = None;
    while remaining > 0 {
        let want = usize::try_from(remaining).map_or(CHUNK, |r| r.min(CHUNK));
        if !pending.is_empty()
            && pending.len() + want > CHUNK
            && !pipe.send(std::mem::take(pending))
        {
            return false;
        }
        let start = if pending.is_empty() {
            // A recycled buffer of the right length: no zeroing of a fresh one per chunk.
            *pending = pipe.buffer(want);
            0
        } else {
            let start = pending.len();
            pending.resize(start + want, 0);
            start
        };
        let piece = &mut pending[start..];
        if trouble.is_none() {
            match read_full(&mut file, piece) {
                Ok(n) if n == want => {
                    hasher.update(piece);
                }
                Ok(_) => trouble = Some(changed(wire, "it shrank")),
                Err(err) => trouble = Some(OpError::io(&err, wire)),
            }
        }
        if trouble.is_some() {
            // Zeros stand in for what could not be read.
            piece.fill(0);
        }
        remaining -= want as u64;
    }
    if trouble.is_none() {
        trouble = match file.metadata() {
            Ok(after) if same_version(&meta, &after) => None,
            Ok(_) => Some(changed(wire, "it was modified")),
            Err(err) => Some(OpError::io(&err, wire)),
        };
    }
    let trailer = match trouble {
        None => ok_line(&GetTrailer {
            digest: hasher.finalize().into(),
        })
        .unwrap_or_else(|err| err.encode()),
        Some(err) => err.encode(),
    };
    if pending.len() + trailer.len() > pending.capacity() && pending.len() >= CHUNK / 2 {
        // Appending would reallocate a full chunk just to add one line.
        if !pipe.send(std::mem::take(pending)) {
            return false;
        }
    }
    pending.extend_from_slice(&trailer);
    true
}

/// Opens the file and hashes the part before `offset`, since the trailer covers the whole file;
/// the hashing gives up once the pipe says the answer has nowhere to go. A `ranged` read hashes
/// only what it sends: it seeks to `offset` instead.
fn open_at(
    access: &Access,
    wire: &str,
    offset: u64,
    ranged: bool,
    pipe: &Pipe,
) -> Result<(std::fs::File, Metadata, blake3::Hasher), OpError> {
    let path = RemotePath::parse(wire)?;
    let (file, meta) = access.root.open_file(&path)?;
    let mut file = file.into_std();
    if offset > meta.len() {
        return Err(OpError::new(
            ErrorCode::OffsetMismatch,
            format!(
                "{wire}: offset {offset} is past the end ({} bytes)",
                meta.len()
            ),
        ));
    }
    let mut hasher = blake3::Hasher::new();
    if ranged {
        use std::io::{Seek, SeekFrom};
        file.seek(SeekFrom::Start(offset))
            .map_err(|err| OpError::io(&err, wire))?;
        return Ok((file, meta, hasher));
    }
    // Only a resume has a prefix to hash; skipping the call spares a fresh download the
    // prefix reader's 1 MiB buffer, which dominated the cost of small files.
    if offset > 0 {
        let copied = hash_prefix_until(&mut file, offset, &mut hasher, || pipe.stopped())
            .map_err(|err| OpError::io(&err, wire))?;
        pipe.meter()
            .add(copied.div_ceil(1024 * 1024).saturating_mul(UNITS_PER_MIB));
        if copied != offset {
            return Err(changed(wire, "it shrank"));
        }
    }
    Ok((file, meta, hasher))
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Whether a file still looks like the version that was announced.
fn same_version(before: &Metadata, after: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    before.len() == after.len()
        && before.mtime() == after.mtime()
        && before.mtime_nsec() == after.mtime_nsec()
}

fn changed(wire: &str, how: &str) -> OpError {
    OpError::new(
        ErrorCode::FileChanged,
        format!("{wire}: the file changed while it was sent ({how})"),
    )
}
