//! Big transfer buffers (upload payloads, download chunks) shared by all connections: taken
//! for one transfer and given back, so the server holds a bounded set of them instead of
//! whatever the allocator keeps after buffers allocated on one thread are freed on another.

use std::sync::{Mutex, PoisonError};

/// At most this many buffers wait in the pool (at most 8 MiB): enough for a few transfers
/// at once to recycle, little enough to stay under the memory budget when idle.
const POOL_MAX: usize = 8;
/// Only buffers in this range are kept; smaller ones are cheap, bigger ones rare.
const KEEP: std::ops::RangeInclusive<usize> = 256 * 1024..=2 * 1024 * 1024;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty buffer with at least `capacity` bytes of room.
pub(crate) fn take(capacity: usize) -> Vec<u8> {
    if KEEP.contains(&capacity) {
        let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = pool.iter().position(|buf| buf.capacity() >= capacity) {
            return pool.swap_remove(at);
        }
    }
    Vec::with_capacity(capacity)
}

/// Gives a buffer back for another transfer (or frees it when the pool is full).
pub(crate) fn give(mut buf: Vec<u8>) {
    if !KEEP.contains(&buf.capacity()) {
        return;
    }
    buf.clear();
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    if pool.len() < POOL_MAX {
        pool.push(buf);
    }
}
