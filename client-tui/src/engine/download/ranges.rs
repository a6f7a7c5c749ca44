//! One big download in ranges over several connections at once, as lftp's `pget` and aria2
//! do: on a link where each flow is capped (a per-connection shaper, a long fat pipe one TCP
//! window cannot fill), N flows move about N times the bytes.
//!
//! The file is cut into pieces of a power of two bytes, at least a MiB (about eight per stream,
//! so the streams end together; never more than [`MAX_PIECES`]). Each stream is a connection of its own under the
//! job's rate limits, taking pieces from one shared queue and asking for each with a ranged
//! `get` (`offset` + `length`), one request ahead so no round trip is lost between pieces. A
//! piece is written at its offset into the file's one hidden partial (sized to the whole file
//! first), and once all its bytes are written it is marked done, with its BLAKE3 chaining
//! value, in a small record beside the partial (`.ferry-part.NAME.ranges`, replaced
//! atomically), so an interrupted download fetches again only the pieces the record does not
//! hold.
//!
//! Each piece's trailer digest covers only that piece, so the whole file is verified once, at
//! the end. A piece is hashed as it arrives, still in cache, as the subtree of BLAKE3's tree it
//! is (a power of two of bytes at a multiple of itself: `blake3::hazmat`), and the pieces'
//! chaining values are merged into the whole file's digest: nothing is read back. The server
//! hashes its file meanwhile (a `get` from the end, asked as the pieces start, whose trailer is
//! the whole-file digest of the version it read), and only equal digests let the partial be
//! renamed into place. A piece that arrived from another version of the file (its length or
//! mtime moved, the server's `file_changed`, or digests that differ) fails the file as
//! `file_changed`: the partial and its record are removed and nothing takes the final name.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root,
};
use ferry_protocol::{Digest, ErrorBody, ErrorCode, GetReply, GetTrailer, Request};
use ferry_server::rate::TwoWayLimit;
use tokio::task::JoinSet;

use crate::engine::error::EngineError;
use crate::engine::job::{Job, Task, blocking, lock};
use crate::engine::local;
use crate::engine::session::Session;
use crate::engine::transport::{FrameReader, FrameStream};

use super::reply::place_verified;

const MIB: u64 = 1024 * 1024;
/// Pieces each stream takes on average: enough that the streams end close together.
const PIECES_PER_STREAM: u64 = 8;
/// The most pieces one file is cut into, which bounds its record (a line of 64 hex digits per
/// piece, rewritten as each piece is done).
pub(crate) const MAX_PIECES: u64 = 4_096;
/// Bytes a stream reads before it writes them out: its only buffer.
const BUFFER: u64 = MIB;
/// Pieces a stream has asked for before the oldest one's reply is read.
const AHEAD: usize = 2;
/// New connections one stream opens after the previous one broke.
const MAX_RECONNECTS: usize = 2;
/// The first line of a record names its format.
const MAGIC: &str = "ferry-ranges 2";

/// Whether `task` goes in ranges: a file of at least the job's threshold, with more than one
/// stream allowed, written to a regular file it does not continue in place (a destination
/// moved aside to be resumed keeps the one-stream path, which can put it back).
pub(crate) fn wanted(job: &Job, task: &Task) -> bool {
    job.options.streams > 1
        && task.size >= job.options.streams_from.max(1)
        && !task.stream
        && task.resumed.is_none()
}

/// Where the record of a partial's finished pieces is kept.
pub(crate) fn record_path(partial: &Path) -> PathBuf {
    let mut name = partial.as_os_str().to_owned();
    name.push(".ranges");
    PathBuf::from(name)
}

/// The piece size for a file of `size` bytes over `streams` streams: about
/// [`PIECES_PER_STREAM`] per stream, at least a MiB, at most [`MAX_PIECES`] pieces, and a power
/// of two, so each piece is a whole subtree of BLAKE3's tree.
fn piece_size(size: u64, streams: usize) -> u64 {
    let streams = u64::try_from(streams.max(1)).unwrap_or(u64::MAX);
    let even = size.div_ceil(streams.saturating_mul(PIECES_PER_STREAM));
    even.max(size.div_ceil(MAX_PIECES))
        .max(MIB)
        .checked_next_power_of_two()
        .unwrap_or(1 << 63)
}

/// Which pieces of which version of the file the partial holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    size: u64,
    mtime: i64,
    piece: u64,
    /// Each done piece's chaining value.
    done: Vec<Option<ChainingValue>>,
}

impl Record {
    fn new(size: u64, mtime: i64, piece: u64) -> Record {
        let count = usize::try_from(size.div_ceil(piece)).unwrap_or(0);
        Record {
            size,
            mtime,
            piece,
            done: vec![None; count],
        }
    }

    /// Piece `index`'s offset and length.
    fn range(&self, index: usize) -> (u64, u64) {
        let start = (index as u64).saturating_mul(self.piece);
        (start, self.piece.min(self.size.saturating_sub(start)))
    }

    fn encode(&self) -> String {
        use std::fmt::Write;
        let mut text = format!("{MAGIC} {} {} {}\n", self.size, self.mtime, self.piece);
        for done in &self.done {
            match done {
                Some(cv) => {
                    for byte in cv {
                        let _ = write!(text, "{byte:02x}");
                    }
                }
                None => text.push('-'),
            }
            text.push('\n');
        }
        text
    }

    /// A record as [`encode`](Self::encode) wrote it; `None` for anything else (a foreign or
    /// damaged record only costs its pieces being fetched again).
    fn decode(text: &str) -> Option<Record> {
        let mut lines = text.lines();
        let head = lines.next()?.strip_prefix(MAGIC)?;
        let mut fields = head.split_ascii_whitespace();
        let size: u64 = fields.next()?.parse().ok()?;
        let mtime: i64 = fields.next()?.parse().ok()?;
        let piece: u64 = fields.next()?.parse().ok()?;
        if piece == 0 || size == 0 || size.div_ceil(piece) > MAX_PIECES {
            return None;
        }
        if !piece.is_power_of_two() || piece < MIB {
            return None;
        }
        let mut record = Record::new(size, mtime, piece);
        for slot in &mut record.done {
            let line = lines.next()?;
            if line == "-" {
                continue;
            }
            let mut cv = [0u8; 32];
            let hex = line.as_bytes();
            if hex.len() != 64 {
                return None;
            }
            for (byte, pair) in cv.iter_mut().zip(hex.chunks_exact(2)) {
                *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
            }
            *slot = Some(cv);
        }
        if lines.next().is_some() {
            return None;
        }
        Some(record)
    }

    /// Reads at most what a record of [`MAX_PIECES`] can hold.
    fn load(path: &Path) -> Option<Record> {
        let file = File::open(path).ok()?;
        let mut text = String::new();
        file.take(MAX_PIECES * 65 + 128)
            .read_to_string(&mut text)
            .ok()?;
        Self::decode(&text)
    }

    /// Replaces the record on disk at once (a new file renamed over it), so a kill leaves the
    /// old record or the new one, never half of one.
    fn store(&self, path: &Path) -> std::io::Result<()> {
        let mut fresh = path.as_os_str().to_owned();
        fresh.push(".new");
        let fresh = PathBuf::from(fresh);
        std::fs::write(&fresh, self.encode())?;
        std::fs::rename(&fresh, path)
    }

    fn done_bytes(&self) -> u64 {
        (0..self.done.len())
            .filter(|i| self.done[*i].is_some())
            .map(|i| self.range(i).1)
            .sum()
    }

    /// The whole file's digest from its pieces' chaining values, when every piece is done and
    /// there are at least two (one piece is the root itself, which no chaining value gives).
    fn digest(&self) -> Option<Digest> {
        if self.done.len() < 2 {
            return None;
        }
        let (left, right) = self.split(0, self.size)?;
        Some(Digest::from(merge_subtrees_root(&left, &right, Mode::Hash)))
    }

    /// The chaining values of the two halves of the subtree `start..start + len`, as BLAKE3
    /// cuts it: the left one the largest power of two of bytes below `len`, so always whole
    /// pieces.
    fn split(&self, start: u64, len: u64) -> Option<(ChainingValue, ChainingValue)> {
        let left = left_subtree_len(len);
        Some((
            self.subtree(start, left)?,
            self.subtree(start + left, len - left)?,
        ))
    }

    fn subtree(&self, start: u64, len: u64) -> Option<ChainingValue> {
        if len <= self.piece {
            let index = usize::try_from(start / self.piece).ok()?;
            return *self.done.get(index)?;
        }
        let (left, right) = self.split(start, len)?;
        Some(merge_subtrees_non_root(&left, &right, Mode::Hash))
    }
}

/// What a download's streams share.
struct Shared {
    remote: String,
    local: PathBuf,
    file: Arc<File>,
    record_path: PathBuf,
    record: Arc<Mutex<Record>>,
    /// Pieces no stream has taken yet.
    queue: Mutex<VecDeque<usize>>,
    /// Bytes received in this attempt, for the task's count.
    moved: AtomicU64,
    /// The file's permission bits as the first reply gave them.
    mode: OnceLock<u32>,
}

/// Fetches `task` in ranges into `partial` (whose first `prefix` bytes an earlier one-stream
/// attempt left), verifies it whole and renames it into place, reporting the file. An error is
/// a broken link: the task goes back to the queue and its next attempt keeps every piece done.
pub(crate) async fn fetch(
    job: &Arc<Job>,
    task: &mut Task,
    partial: PathBuf,
    prefix: u64,
    control: &mut Option<Session>,
) -> Result<(), EngineError> {
    lock(&job.progress).start_file(&task.remote);
    let (size, mtime, fresh) = (task.size, task.mtime, task.fresh);
    let piece = piece_size(size, job.options.streams);
    let record_file = record_path(&partial);
    let opened = {
        let (partial, record_file) = (partial.clone(), record_file.clone());
        blocking(move || -> std::io::Result<(File, Record)> {
            let kept =
                Record::load(&record_file).filter(|r| !fresh && r.size == size && r.mtime == mtime);
            use rustix::fs::{Mode, OFlags};
            // Never through a link that took the partial's name.
            let file = File::from(rustix::fs::open(
                &partial,
                OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(local::PARTIAL_MODE),
            )?);
            let record = match kept {
                Some(record) => record,
                None => {
                    let mut record = Record::new(size, mtime, piece);
                    // Whole pieces of an earlier one-stream attempt count as done, hashed from
                    // the disk; the final digest checks them with the rest.
                    for index in 0..record.done.len() {
                        let (start, len) = record.range(index);
                        if !fresh && start + len <= prefix {
                            record.done[index] = Some(hash_piece(&file, start, len)?);
                        }
                    }
                    record
                }
            };
            // The whole length at once (sparse where nothing is written yet), so every piece
            // has its place.
            file.set_len(size)?;
            record.store(&record_file)?;
            Ok((file, record))
        })
        .await?
    };
    let (file, record) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            job.failed(task, &EngineError::local(&task.local, e));
            return Ok(());
        }
    };
    let present = record.done_bytes();
    lock(&job.progress).add_present(present);
    task.counted += present;
    let missing: VecDeque<usize> = (0..record.done.len())
        .filter(|i| record.done[*i].is_none())
        .collect();
    let streams = job.options.streams.min(missing.len());
    let shared = Arc::new(Shared {
        remote: task.remote.clone(),
        local: task.local.clone(),
        file: Arc::new(file),
        record_path: record_file.clone(),
        record: Arc::new(Mutex::new(record)),
        queue: Mutex::new(missing),
        moved: AtomicU64::new(0),
        mode: OnceLock::new(),
    });
    let mut set = JoinSet::new();
    for _ in 0..streams {
        set.spawn(stream(Arc::clone(job), Arc::clone(&shared)));
    }
    let pieces = async {
        let mut failure = None;
        while let Some(ended) = set.join_next().await {
            let error = match ended {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e,
                Err(e) => EngineError::Protocol(format!("a download stream failed: {e}")),
            };
            // Another version of the file, or an error every stream would meet: no use going
            // on.
            if !is_link(&error) {
                set.abort_all();
            }
            failure.get_or_insert(error);
        }
        failure
    };
    // The server hashes its file while the pieces move; pieces that fail do not wait for it.
    let remote = task.remote.clone();
    let (failure, theirs) = {
        let digest = async {
            match job.control_session(control).await {
                Ok(session) => session.digest(&remote, size).await,
                Err(e) => Err(e),
            }
        };
        let mut digest = std::pin::pin!(digest);
        let mut pieces = std::pin::pin!(pieces);
        tokio::select! {
            failure = &mut pieces => {
                if lock(&shared.record).done.iter().all(Option::is_some) {
                    (failure, Some(digest.await))
                } else {
                    (failure, None)
                }
            }
            theirs = &mut digest => (pieces.await, Some(theirs)),
        }
    };
    if theirs.is_none() {
        // A digest given up half-way leaves its session out of step with the server.
        *control = None;
    }
    task.counted += shared.moved.load(Ordering::Relaxed);
    let ours = lock(&shared.record).digest();
    let complete = lock(&shared.record).done.iter().all(Option::is_some);
    if !complete {
        // Every stream found the server at its connection cap: the worker waits and tries
        // again, as for its own connection, every piece done kept.
        let error = failure.unwrap_or_else(|| {
            EngineError::remote(
                &task.remote,
                ErrorBody::new(ErrorCode::Busy, "no connection for the file's pieces"),
            )
        });
        if is_link(&error) || error.remote_code() == Some(ErrorCode::Busy) {
            return Err(error);
        }
        return give_up(job, task, &partial, error).await;
    }
    let ours = match ours {
        Some(digest) => Ok(digest),
        // A single piece: read back and hashed whole.
        None => {
            let file = Arc::clone(&shared.file);
            blocking(move || hash_file(&file, size)).await?
        }
    };
    let theirs = match theirs {
        Some(Ok(digest)) => digest,
        None => return Err(EngineError::Protocol("a piece went missing".into())),
        Some(Err(e)) if is_link(&e) => return Err(e),
        // Shorter now (offset_mismatch), or changed while it was hashed.
        Some(Err(e))
            if matches!(
                e.remote_code(),
                Some(ErrorCode::OffsetMismatch | ErrorCode::FileChanged)
            ) =>
        {
            return give_up(job, task, &partial, changed(&task.remote)).await;
        }
        Some(Err(e)) => return give_up(job, task, &partial, e).await,
    };
    let ours = match ours {
        Ok(digest) => digest,
        Err(e) => {
            job.failed(task, &EngineError::local(&task.local, e));
            return Ok(());
        }
    };
    if ours != theirs {
        if present > 0 && !fresh {
            // Pieces kept from an earlier attempt may be what differs: once more from scratch.
            discard(&partial).await?;
            job.requeue(task.clone(), true);
            return Ok(());
        }
        return give_up(job, task, &partial, changed(&task.remote)).await;
    }
    let mode = task
        .keep_mode
        .unwrap_or_else(|| local::new_file_mode(shared.mode.get().copied().unwrap_or(0o644)));
    let file = Arc::clone(&shared.file);
    drop(shared);
    let dest = task.local.clone();
    let replaces = task.replaces;
    let placed = blocking(move || {
        let placed = place_verified(Some(&file), &partial, &dest, mtime, mode, replaces);
        let _ = std::fs::remove_file(&record_file);
        placed
    })
    .await?;
    match placed {
        Ok(()) => {
            job.done(task, ours);
            job.copied(task, ours);
        }
        Err(e) => job.failed(task, &EngineError::local(&task.local, e)),
    }
    Ok(())
}

/// A broken or silent connection, which a new one may cure; anything else (the server's
/// refusal, a local write that failed) fails the file.
fn is_link(error: &EngineError) -> bool {
    matches!(
        error,
        EngineError::Connection { .. } | EngineError::Protocol(_)
    )
}

fn changed(remote: &str) -> EngineError {
    EngineError::remote(
        remote,
        ErrorBody::new(
            ErrorCode::FileChanged,
            "the file changed on the server while its pieces were fetched; nothing was kept",
        ),
    )
}

/// Fails the file with `error`, removing its partial and record: their bytes are not one
/// version of the file.
async fn give_up(
    job: &Arc<Job>,
    task: &Task,
    partial: &Path,
    error: EngineError,
) -> Result<(), EngineError> {
    discard(partial).await?;
    job.failed(task, &error);
    Ok(())
}

async fn discard(partial: &Path) -> Result<(), EngineError> {
    let partial = partial.to_owned();
    blocking(move || {
        let _ = std::fs::remove_file(record_path(&partial));
        let _ = std::fs::remove_file(&partial);
    })
    .await
}

/// The chaining value of the piece `start..start + len` of `file`, read from the disk.
fn hash_piece(file: &File, start: u64, len: u64) -> std::io::Result<ChainingValue> {
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(start);
    feed(file, start, len, &mut hasher)?;
    Ok(hasher.finalize_non_root())
}

/// The BLAKE3 of the first `size` bytes of `file`.
fn hash_file(file: &File, size: u64) -> std::io::Result<Digest> {
    let mut hasher = blake3::Hasher::new();
    feed(file, 0, size, &mut hasher)?;
    Ok(Digest::from(hasher.finalize()))
}

/// Hashes the bytes `start..start + len` of `file`.
fn feed(file: &File, start: u64, len: u64, hasher: &mut blake3::Hasher) -> std::io::Result<()> {
    let mut buf = vec![0u8; local::CHUNK];
    let mut at = start;
    while at < start + len {
        let want = usize::try_from(start + len - at).map_or(buf.len(), |left| left.min(buf.len()));
        let n = file.read_at(&mut buf[..want], at)?;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        }
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(())
}

/// One stream: connections in turn (a new one after a break) until no piece is left.
async fn stream(job: Arc<Job>, shared: Arc<Shared>) -> Result<(), EngineError> {
    let mut failures = 0;
    loop {
        if lock(&shared.queue).is_empty() {
            return Ok(());
        }
        match connection(&job, &shared).await {
            Ok(()) => return Ok(()),
            // The server's connection cap: the other streams take this one's pieces.
            Err(e) if e.remote_code() == Some(ErrorCode::Busy) => return Ok(()),
            Err(e) if !is_link(&e) => return Err(e),
            Err(e) => {
                failures += 1;
                if failures > MAX_RECONNECTS {
                    return Err(e);
                }
            }
        }
    }
}

/// One connection taking pieces until the queue is empty; the pieces it had asked for go back
/// when it fails.
async fn connection(job: &Arc<Job>, shared: &Arc<Shared>) -> Result<(), EngineError> {
    let mut conn = FrameStream::open_unanswered(&job.endpoint).await?;
    let [own, all] = &job.rates;
    let (recv, send) = TwoWayLimit::obeyed(&[own, all]);
    // The job's own worker connection reads beside the streams.
    conn.limit_shared(recv, send, job.options.streams + 1);
    let FrameStream {
        mut reader,
        mut writer,
        ..
    } = conn;
    let mut asked: VecDeque<usize> = VecDeque::new();
    let outcome = async {
        let mut hello = true;
        loop {
            while asked.len() < AHEAD {
                let Some(index) = lock(&shared.queue).pop_front() else {
                    break;
                };
                let (offset, length) = lock(&shared.record).range(index);
                asked.push_back(index);
                writer
                    .send(&Request::Get {
                        path: shared.remote.clone(),
                        offset,
                        length: Some(length),
                    })
                    .await?;
            }
            writer.flush().await?;
            if hello {
                reader.hello(&job.endpoint).await?;
                hello = false;
            }
            let Some(&index) = asked.front() else {
                return Ok(());
            };
            receive(job, shared, &mut reader, index).await?;
            asked.pop_front();
        }
    }
    .await;
    if outcome.is_err() {
        let mut queue = lock(&shared.queue);
        for index in asked.into_iter().rev() {
            queue.push_front(index);
        }
    }
    outcome
}

/// Reads piece `index`'s reply, writes its bytes at their offset and marks it done.
async fn receive(
    job: &Arc<Job>,
    shared: &Arc<Shared>,
    reader: &mut FrameReader,
    index: usize,
) -> Result<(), EngineError> {
    let ((offset, length), size, mtime) = {
        let record = lock(&shared.record);
        (record.range(index), record.size, record.mtime)
    };
    let reply: GetReply = match reader.header().await? {
        Ok(reply) => reply,
        Err(body) => return Err(EngineError::remote(&shared.remote, body)),
    };
    if reply.file_size != size || reply.mtime != mtime {
        return Err(changed(&shared.remote));
    }
    if reply.offset != offset || reply.size != length {
        return Err(EngineError::Protocol(format!(
            "asked for {length} bytes of {} from byte {offset}, got {} from byte {}",
            shared.remote, reply.size, reply.offset
        )));
    }
    let _ = shared.mode.set(reply.mode);
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(offset);
    let mut left = reply.size;
    let mut at = offset;
    let mut buf = Vec::with_capacity(usize::try_from(left.min(BUFFER)).unwrap_or(0));
    while left > 0 {
        buf.clear();
        while left > 0 && buf.len() < buf.capacity() {
            let room = usize::try_from(left)
                .map_or(usize::MAX, |l| l)
                .min(buf.capacity() - buf.len());
            let start = buf.len();
            let n = reader.raw_payload_into(&mut buf, room).await?;
            hasher.update(&buf[start..]);
            left -= n as u64;
            lock(&job.progress).add_moved(n as u64);
            shared.moved.fetch_add(n as u64, Ordering::Relaxed);
        }
        let file = Arc::clone(&shared.file);
        let written = blocking(move || file.write_all_at(&buf, at).map(|()| buf)).await?;
        buf = written.map_err(|e| EngineError::local(&shared.local, e))?;
        at += buf.len() as u64;
    }
    let trailer: Result<GetTrailer, ErrorBody> = reader.header().await?;
    if let Err(body) = trailer {
        return Err(EngineError::remote(&shared.remote, body));
    }
    let cv = hasher.finalize_non_root();
    let record = Arc::clone(&shared.record);
    let path = shared.record_path.clone();
    let stored = blocking(move || {
        let mut record = lock(&record);
        if let Some(done) = record.done.get_mut(index) {
            *done = Some(cv);
        }
        record.store(&path)
    })
    .await?;
    stored.map_err(|e| EngineError::local(&shared.local, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_powers_of_two_about_eight_per_stream_and_bounded() {
        assert_eq!(piece_size(64 * MIB, 4), 2 * MIB);
        assert_eq!(piece_size(5 * MIB, 4), MIB);
        assert_eq!(piece_size(40 * MIB, 4), 2 * MIB);
        let huge = 1 << 50;
        assert!(huge / piece_size(huge, 16) <= MAX_PIECES);
    }

    /// The pieces' chaining values, merged, are the digest of the whole: for one piece and a
    /// bit, a power of two of pieces, and an odd count with a short last one.
    #[test]
    fn merged_pieces_give_the_whole_files_digest() {
        for size in [MIB + 1, 4 * MIB, 5 * MIB + 12_345] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 + i / 4096) as u8).collect();
            let mut record = Record::new(size, 0, MIB);
            for index in 0..record.done.len() {
                let (start, len) = record.range(index);
                let mut hasher = blake3::Hasher::new();
                hasher.set_input_offset(start);
                hasher.update(&data[start as usize..(start + len) as usize]);
                record.done[index] = Some(hasher.finalize_non_root());
            }
            assert_eq!(
                record.digest(),
                Some(Digest::from(blake3::hash(&data))),
                "{size}"
            );
            record.done[0] = None;
            assert_eq!(record.digest(), None);
        }
    }

    #[test]
    fn a_record_reads_back_and_refuses_what_it_did_not_write() {
        let mut record = Record::new(10 * MIB + 5, 1_764_300_000, 4 * MIB);
        record.done[1] = Some([0xab; 32]);
        assert_eq!(record.range(2), (8 * MIB, 2 * MIB + 5));
        assert_eq!(Record::decode(&record.encode()), Some(record.clone()));
        assert_eq!(record.done_bytes(), 4 * MIB);
        let cv = "ab".repeat(32);
        for bad in [
            String::new(),
            "ferry-ranges 2 10 0 1048576\n-\n-\n".to_owned(),
            "ferry-ranges 2 3145728 0 1048576\n-\n-\n".to_owned(),
            format!("ferry-ranges 2 2097152 0 1048576\n-\n{}x\n", &cv[1..]),
            "ferry-ranges 2 2097152 0 1000000\n-\n-\n".to_owned(),
            "ferry-ranges 2 99999999999999 0 1048576\n-\n".to_owned(),
            "ferry-ranges 1 1048576 0 1048576\n1\n".to_owned(),
        ] {
            assert_eq!(Record::decode(&bad), None, "{bad:?}");
        }
    }
}
