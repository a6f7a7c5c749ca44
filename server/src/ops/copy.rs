//! `copy`: a file copied inside the served root by the server itself, so a copy between two
//! directories of one server costs the client one request and no payload. The kernel moves the
//! bytes (`copy_file_range`, which shares extents where the filesystem can reflink, and copies
//! in the kernel elsewhere) into the hidden partial beside the target, the way a `put` writes;
//! each chunk is then read back from both files and compared, and the source's bytes hashed,
//! so the digest answered is of bytes seen in the new file. Only a complete, verified copy is
//! renamed onto the final name; a failed or interrupted one (client gone, server stopping)
//! removes its partial, so it never leaves a final name and nothing to resume.
//!
//! The new file gets what a `get` and a `put` would give it: the source's mtime, and its
//! permission bits (less the umask) when it is new, the replaced file's when it overwrites.
//! The destination's rules are `put`'s (a symlink is written through at its target inside the
//! root, never replaced); a target that is the source itself (the same inode) is refused.

use std::io;
use std::os::unix::fs::{FileExt, PermissionsExt};

use cap_std::fs::MetadataExt;
use ferry_localfs::{system_time, umask};
use ferry_protocol::{CopyReply, Digest, ErrorCode};
use tokio_util::sync::CancellationToken;

use super::put::{
    PARTIAL_MODE, claim_space, create_partial, lock_partial, names_file, new_file_mode, place,
    remember_target,
};
use super::{Access, Meter, UNITS_PER_MIB, check_writable, ok_line, same_version};
use crate::buffer_pool;
use crate::error::OpError;
use crate::root::{ParentCache, RemotePath};

/// Bytes copied, read back and compared per step: big enough that the kernel's copy and the
/// reads are few, large calls, small enough that a copy's two buffers (one per file) cost
/// what an upload's do (SECURITY.md's memory rows).
const CHUNK: usize = 1024 * 1024;

pub(super) fn copy(
    access: &Access,
    from: &str,
    to: &str,
    overwrite: bool,
    stop: &CancellationToken,
    meter: &Meter,
) -> Result<Vec<u8>, OpError> {
    check_writable(access, to)?;
    let from_path = RemotePath::parse(from)?;
    let to_path = RemotePath::parse(to)?;
    if to_path.is_root() {
        return Err(OpError::new(ErrorCode::IsADirectory, "/: is a directory"));
    }
    let (source, source_meta) = access.root.open_file(&from_path)?;
    let source = source.into_std();
    // A destination symlink is written through at its target, as `put` does.
    let to_path = match overwrite {
        true => access.root.write_through(&to_path)?.unwrap_or(to_path),
        false => to_path,
    };
    let wire = to_path.wire.clone();
    let mut parents = ParentCache::default();
    let (dir, name) = access.root.open_parent_cached(&to_path, &mut parents)?;
    let guard = access
        .claim_upload(&dir, to_path.name())
        .map_err(|err| OpError::io(&err, &wire))?
        .ok_or_else(|| {
            OpError::new(
                ErrorCode::Busy,
                format!("{wire}: another client is writing this file"),
            )
        })?;
    let mode = match dir.symlink_metadata(name) {
        Ok(meta) if meta.is_dir() => {
            return Err(OpError::new(
                ErrorCode::IsADirectory,
                format!("{wire}: is a directory"),
            ));
        }
        Ok(meta) if (meta.dev(), meta.ino()) == (source_meta.dev(), source_meta.ino()) => {
            return Err(OpError::new(
                ErrorCode::BadRequest,
                format!("{wire}: is {from} itself; a file cannot be copied onto itself"),
            ));
        }
        Ok(_) if !overwrite => {
            return Err(OpError::new(
                ErrorCode::AlreadyExists,
                format!("{wire}: already exists"),
            ));
        }
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(OpError::new(
                ErrorCode::Forbidden,
                format!("{wire}: became a symlink while the copy began"),
            ));
        }
        Ok(meta) if meta.is_file() => meta.mode() & 0o777,
        Ok(_) => new_file_mode(Some(source_meta.mode())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            new_file_mode(Some(source_meta.mode()))
        }
        Err(err) => return Err(OpError::io(&err, &wire)),
    };
    let size = source_meta.len();
    claim_space(access, &guard, &dir, size, &wire, &mut parents)?;
    let partial = to_path.partial(&access.owner);
    let file = create_partial(&dir, &partial.raw, &wire)?;
    lock_partial(&file, &wire)?;
    if access.owner.is_hashed(&partial.wire) {
        remember_target(&file, to_path.name());
    }
    let discard = || {
        if let Err(err) = dir.remove_file(&partial.raw) {
            tracing::warn!(path = %wire, %err, "cannot remove a failed copy's partial");
        }
    };
    let digest = match copy_bytes(&source, &file, size, stop, meter) {
        Ok(digest) => digest,
        Err(err) => {
            discard();
            return Err(err.into_op(from, &wire));
        }
    };
    let unchanged = source
        .metadata()
        .ok()
        .map(cap_std::fs::Metadata::from_just_metadata)
        .is_some_and(|now| same_version(&source_meta, &now));
    if !unchanged {
        discard();
        return Err(OpError::new(
            ErrorCode::FileChanged,
            format!("{from}: changed while it was copied; nothing was placed at {wire}"),
        ));
    }
    // i64::MIN seconds cannot be read back by cap-std (see `put::finish`): not set.
    let mtime = Some(source_meta.mtime()).filter(|&secs| secs != i64::MIN);
    if let Some(when) = mtime.and_then(system_time)
        && let Err(err) = file.set_modified(when)
    {
        tracing::warn!(path = %wire, %err, "cannot set the modification time");
    }
    if mode != PARTIAL_MODE & !umask()
        && let Err(err) = file.set_permissions(std::fs::Permissions::from_mode(mode))
    {
        tracing::warn!(path = %wire, %err, "cannot set the permission bits");
    }
    if !names_file(&dir, &partial.raw, &file) {
        return Err(OpError::new(
            ErrorCode::Busy,
            format!("{wire}: the partial copy was replaced while it was written"),
        ));
    }
    place(&dir, &partial.raw, name, overwrite, &wire, "copy")?;
    drop(guard);
    ok_line(&CopyReply {
        digest,
        file_size: size,
    })
}

/// Why the bytes did not all arrive in the partial.
enum CopyFailed {
    Stopped,
    Shrank,
    Differs,
    Read(io::Error),
    Write(io::Error),
}

impl CopyFailed {
    fn into_op(self, from: &str, to: &str) -> OpError {
        match self {
            Self::Stopped => OpError::new(ErrorCode::Io, format!("{to}: the copy was stopped")),
            Self::Shrank => OpError::new(
                ErrorCode::FileChanged,
                format!("{from}: became shorter while it was copied"),
            ),
            Self::Differs => OpError::new(
                ErrorCode::ChecksumMismatch,
                format!("{to}: the copy read back differs from {from}"),
            ),
            Self::Read(err) => OpError::io(&err, from),
            Self::Write(err) => OpError::io(&err, to),
        }
    }
}

/// Copies `size` bytes from `source` into `dest` chunk by chunk, each copied by the kernel,
/// then read back from both and compared, the source's bytes hashed: the digest of what the
/// new file holds. A filesystem pair the kernel cannot copy between gets the bytes written
/// from the buffer already read.
fn copy_bytes(
    source: &std::fs::File,
    dest: &std::fs::File,
    size: u64,
    stop: &CancellationToken,
    meter: &Meter,
) -> Result<Digest, CopyFailed> {
    let mut theirs = buffer_pool::take(CHUNK);
    let mut ours = buffer_pool::take(CHUNK);
    let result = (|| {
        let mut hasher = blake3::Hasher::new();
        let mut kernel = true;
        let mut offset = 0u64;
        while offset < size {
            if stop.is_cancelled() {
                return Err(CopyFailed::Stopped);
            }
            let len = usize::try_from(size - offset).map_or(CHUNK, |left| left.min(CHUNK));
            theirs.resize(len, 0);
            ours.resize(len, 0);
            if kernel {
                kernel = kernel_copy(source, dest, offset, len)?;
            }
            source
                .read_exact_at(&mut theirs, offset)
                .map_err(|err| match err.kind() {
                    io::ErrorKind::UnexpectedEof => CopyFailed::Shrank,
                    _ => CopyFailed::Read(err),
                })?;
            if !kernel {
                dest.write_all_at(&theirs, offset)
                    .map_err(CopyFailed::Write)?;
            }
            dest.read_exact_at(&mut ours, offset)
                .map_err(CopyFailed::Write)?;
            if theirs != ours {
                return Err(CopyFailed::Differs);
            }
            hasher.update(&theirs);
            meter.add((len as u64 * UNITS_PER_MIB).div_ceil(1024 * 1024));
            offset += len as u64;
        }
        Ok(Digest::from(hasher.finalize()))
    })();
    buffer_pool::give(theirs);
    buffer_pool::give(ours);
    result
}

/// `len` bytes at `offset` copied by `copy_file_range`; `false` (nothing copied) when the
/// kernel cannot copy between these two files, so the caller writes them itself.
fn kernel_copy(
    source: &std::fs::File,
    dest: &std::fs::File,
    offset: u64,
    len: usize,
) -> Result<bool, CopyFailed> {
    use rustix::io::Errno;
    let (mut at_in, mut at_out) = (offset, offset);
    let mut left = len;
    while left > 0 {
        match rustix::fs::copy_file_range(source, Some(&mut at_in), dest, Some(&mut at_out), left) {
            Ok(0) => return Err(CopyFailed::Shrank),
            Ok(done) => left -= done,
            Err(err)
                if left == len
                    && (err == Errno::XDEV
                        || err == Errno::NOSYS
                        || err == Errno::OPNOTSUPP
                        || err == Errno::INVAL) =>
            {
                return Ok(false);
            }
            Err(Errno::INTR) => {}
            Err(err) => return Err(CopyFailed::Write(err.into())),
        }
    }
    Ok(true)
}
