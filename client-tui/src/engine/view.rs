//! Whole-file and ranged exchanges for viewing and editing a remote file, as [`Session`]
//! methods: a window of bytes (a ranged `get`, checked against the range's digest), a fetch to
//! a local file and an upload back from one, each verified by digest. The TUI's viewer and
//! editor reach them through the browsing worker, so they never hold a socket.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ferry_protocol::{Digest, GetReply, GetTrailer, Put, PutReply, PutTrailer, Request};

use super::error::EngineError;
use super::session::Session;
use super::transport::FrameStream;

/// The largest window one ranged read may ask for: a viewer's reply is held in memory whole.
pub const MAX_RANGE: u64 = 4 * 1024 * 1024;

/// Bytes per read of a local file being uploaded.
const CHUNK: usize = 256 * 1024;

/// A window of a remote file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub offset: u64,
    pub bytes: Vec<u8>,
    /// The whole file's length when the window was read.
    pub file_size: u64,
    pub mtime: i64,
}

/// A remote file as it was fetched: what it must still be for an upload to replace it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub size: u64,
    pub mtime: i64,
    pub digest: Digest,
}

/// How an upload treats the remote file it would replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replace {
    /// Only if it is still the version that was fetched; otherwise [`Uploaded::Changed`].
    IfUnchanged(Fetched),
    /// Whatever it is now.
    Always,
    /// Never: the upload goes under the first free name beside it (`a (1).txt`).
    KeepBoth,
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uploaded {
    /// The bytes arrived with the digest they were sent with, under this path.
    Done { path: String, digest: Digest },
    /// The remote file is not the version fetched any more: nothing was sent.
    Changed { now: Option<Fetched> },
}

/// How a fetch into a local copy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchEnd {
    pub path: String,
    /// The local copy written (empty when none could be made).
    pub copy: PathBuf,
    pub result: Result<Fetched, String>,
}

/// How an upload from a local copy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadEnd {
    pub copy: PathBuf,
    pub path: String,
    pub result: Result<Uploaded, String>,
}

impl Session {
    /// Up to `length` bytes (capped at [`MAX_RANGE`]) of `path` from `offset`, checked against
    /// the digest the server computed over them.
    pub async fn read_range(
        &mut self,
        path: &str,
        offset: u64,
        length: u64,
    ) -> Result<Range, EngineError> {
        let conn = self.stream().await?;
        let result = read_range_on(conn, path, offset, length.min(MAX_RANGE)).await;
        self.settle_after(&result);
        result
    }

    /// Writes the whole of `path` into the local file `dest` (created by the caller), checked
    /// against the file's digest.
    pub async fn fetch_to(&mut self, path: &str, dest: &Path) -> Result<Fetched, EngineError> {
        let conn = self.stream().await?;
        let result = fetch_on(conn, path, dest).await;
        self.settle_after(&result);
        result
    }

    /// Uploads the local file `src` to `path`, the server checking the digest it was sent
    /// with; `replace` says what may happen to a file already there.
    pub async fn upload_from(
        &mut self,
        src: &Path,
        path: &str,
        replace: Replace,
    ) -> Result<Uploaded, EngineError> {
        let mut target = path.to_owned();
        match &replace {
            Replace::IfUnchanged(fetched) => {
                let now = self.version(path).await?;
                if now.as_ref() != Some(fetched) {
                    return Ok(Uploaded::Changed { now });
                }
            }
            Replace::Always => {}
            Replace::KeepBoth => target = self.free_path(path).await?,
        }
        let overwrite = replace != Replace::KeepBoth;
        let conn = self.stream().await?;
        let result = upload_on(conn, src, &target, overwrite).await;
        // Even a refusal may come while payload bytes are still unsent or unread.
        if result.is_err() {
            self.out_of_step();
        }
        let digest = result?;
        Ok(Uploaded::Done {
            path: target,
            digest,
        })
    }

    /// The remote file's size, mtime and digest now; `None` once it is gone.
    async fn version(&mut self, path: &str) -> Result<Option<Fetched>, EngineError> {
        let Some(entry) = self.try_stat(path).await? else {
            return Ok(None);
        };
        let digest = self.digest(path, entry.size).await?;
        Ok(Some(Fetched {
            size: entry.size,
            mtime: entry.mtime,
            digest,
        }))
    }

    /// `path` with a name free in its directory.
    async fn free_path(&mut self, path: &str) -> Result<String, EngineError> {
        let (dir, name) = match path.rsplit_once('/') {
            Some((dir, name)) => (dir, name),
            None => ("", path),
        };
        let taken: std::collections::HashSet<String> =
            self.list(dir).await?.into_iter().map(|e| e.name).collect();
        let free = super::local::free_name(name, |candidate| taken.contains(candidate));
        Ok(if dir.is_empty() {
            free
        } else {
            format!("{dir}/{free}")
        })
    }

    /// After an exchange: one that failed other than by the server's clean refusal may have
    /// left bytes on the wire.
    fn settle_after<T>(&mut self, result: &Result<T, EngineError>) {
        if let Err(error) = result
            && error.remote_code().is_none()
        {
            self.out_of_step();
        }
    }
}

async fn read_range_on(
    conn: &mut FrameStream,
    path: &str,
    offset: u64,
    length: u64,
) -> Result<Range, EngineError> {
    let request = Request::Get {
        path: path.into(),
        offset,
        length: Some(length),
    };
    let reply: GetReply = conn
        .request(&request)
        .await?
        .map_err(|body| EngineError::remote(path, body))?;
    if reply.size > length {
        return Err(EngineError::Protocol(format!(
            "{} bytes announced for a read of {length}",
            reply.size
        )));
    }
    conn.reader.expect_payload(reply.size);
    let mut bytes = Vec::with_capacity(usize::try_from(reply.size).unwrap_or(0));
    while let Some(chunk) = conn.reader.payload_chunk().await? {
        bytes.extend_from_slice(&chunk);
    }
    let trailer: GetTrailer = conn
        .reader
        .header()
        .await?
        .map_err(|body| EngineError::remote(path, body))?;
    if Digest::of(&bytes) != trailer.digest {
        return Err(EngineError::Checksum { path: path.into() });
    }
    Ok(Range {
        offset,
        bytes,
        file_size: reply.file_size,
        mtime: reply.mtime,
    })
}

async fn fetch_on(conn: &mut FrameStream, path: &str, dest: &Path) -> Result<Fetched, EngineError> {
    let local = |source| EngineError::Local {
        path: dest.to_path_buf(),
        source,
    };
    let request = Request::Get {
        path: path.into(),
        offset: 0,
        length: None,
    };
    let reply: GetReply = conn
        .request(&request)
        .await?
        .map_err(|body| EngineError::remote(path, body))?;
    conn.reader.expect_payload(reply.size);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(dest)
        .map_err(local)?;
    let mut hasher = blake3::Hasher::new();
    let mut written = Ok(());
    while let Some(chunk) = conn.reader.payload_chunk().await? {
        hasher.update(&chunk);
        // The payload is read to its end whatever happens here, so the session stays in step.
        if written.is_ok() {
            written = file.write_all(&chunk);
        }
    }
    let trailer: GetTrailer = conn
        .reader
        .header()
        .await?
        .map_err(|body| EngineError::remote(path, body))?;
    written.map_err(local)?;
    file.sync_all().map_err(local)?;
    let digest: Digest = hasher.finalize().into();
    if digest != trailer.digest {
        return Err(EngineError::Checksum { path: path.into() });
    }
    Ok(Fetched {
        size: reply.size,
        mtime: reply.mtime,
        digest,
    })
}

async fn upload_on(
    conn: &mut FrameStream,
    src: &Path,
    path: &str,
    overwrite: bool,
) -> Result<Digest, EngineError> {
    let local = |source| EngineError::Local {
        path: src.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(src).map_err(local)?;
    let size = file.metadata().map_err(local)?.len();
    conn.writer
        .send(&Request::Put(Put {
            path: path.into(),
            size,
            offset: 0,
            overwrite,
            digest: None,
            trailer: true,
            mtime: None,
            mode: None,
        }))
        .await?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    let mut left = size;
    while left > 0 {
        let want = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        let n = file.read(&mut buf[..want]).map_err(local)?;
        if n == 0 {
            // The announced size can no longer be sent: the connection is out of step.
            return Err(EngineError::Local {
                path: src.to_path_buf(),
                source: std::io::Error::other("the file shrank while it was uploaded"),
            });
        }
        hasher.update(&buf[..n]);
        conn.writer.write(&buf[..n]).await?;
        left -= n as u64;
    }
    let digest: Digest = hasher.finalize().into();
    conn.writer.send_header(&PutTrailer { digest }).await?;
    conn.writer.flush().await?;
    let reply: PutReply = conn
        .reader
        .header()
        .await?
        .map_err(|body| EngineError::remote(path, body))?;
    if reply.digest != digest {
        return Err(EngineError::Checksum { path: path.into() });
    }
    Ok(digest)
}
