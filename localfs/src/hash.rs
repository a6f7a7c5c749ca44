//! The prefix hash a resume checks: the bytes a file already holds, fed to the BLAKE3 hasher
//! that goes on with the rest, so a resumed transfer's digest covers the whole file. The
//! server hashes its copy's prefix, the client its own; both must read the same bytes.

use std::io::{self, Read};
use std::path::Path;

/// Read size: big enough to keep syscalls rare, small enough that memory stays flat whatever
/// the file size.
const CHUNK: usize = 1024 * 1024;

/// Feeds up to `limit` bytes of `reader` to `hasher` in big reads; returns how many there were.
pub fn hash_prefix(
    reader: &mut impl Read,
    limit: u64,
    hasher: &mut blake3::Hasher,
) -> io::Result<u64> {
    hash_prefix_until(reader, limit, hasher, || false)
}

/// [`hash_prefix`] that gives up, with what it hashed so far, once `stopped` says so; asked
/// before every MiB.
pub fn hash_prefix_until(
    reader: &mut impl Read,
    limit: u64,
    hasher: &mut blake3::Hasher,
    stopped: impl Fn() -> bool,
) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    while total < limit && !stopped() {
        let want = usize::try_from(limit - total).map_or(buf.len(), |left| left.min(buf.len()));
        let n = match reader.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok(total)
}

/// The hasher over the first `len` bytes of the file at `path`; `None` when the file is
/// shorter.
pub fn hash_file_prefix(path: &Path, len: u64) -> io::Result<Option<blake3::Hasher>> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let read = hash_prefix(&mut file, len, &mut hasher)?;
    Ok((read == len).then_some(hasher))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Vec<u8> {
        (0..3 * CHUNK + 17).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn prefix_hashes_match_whole_buffer_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        let data = data();
        std::fs::write(&file, &data).unwrap();
        let cut = 2 * CHUNK + 5;
        let hasher = hash_file_prefix(&file, cut as u64).unwrap().unwrap();
        assert_eq!(hasher.finalize(), blake3::hash(&data[..cut]));
        assert_eq!(
            hash_file_prefix(&file, 0).unwrap().unwrap().finalize(),
            blake3::hash(b"")
        );
        assert!(
            hash_file_prefix(&file, data.len() as u64 + 1)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_prefix_stops_at_the_end_or_when_told() {
        let data = data();
        let mut hasher = blake3::Hasher::new();
        let read = hash_prefix(&mut &data[..], u64::MAX, &mut hasher).unwrap();
        assert_eq!(read, data.len() as u64);
        assert_eq!(hasher.finalize(), blake3::hash(&data));

        let asked = std::cell::Cell::new(0);
        let mut hasher = blake3::Hasher::new();
        let read = hash_prefix_until(&mut &data[..], u64::MAX, &mut hasher, || {
            asked.set(asked.get() + 1);
            asked.get() > 2
        })
        .unwrap();
        assert_eq!(read, 2 * CHUNK as u64);
        assert_eq!(hasher.finalize(), blake3::hash(&data[..2 * CHUNK]));
    }
}
