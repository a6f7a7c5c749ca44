//! The SFTP fallback: when an ssh location's remote has no `ferry-server` (its shell exits
//! 127), ferry speaks SFTP to the `sftp` subsystem (`ssh -s host sftp`) through the same shared
//! master, so no second login. SFTP has no server-side digest: a copy is checked by its size
//! only, and every summary says it was not verified by digest.
//!
//! Reads and writes are pipelined as OpenSSH's `sftp` does ([`IN_FLIGHT`] requests of
//! [`CHUNK`] bytes outstanding), never one request per round trip. A download is written to the
//! same hidden partial name ferry uses (so an interrupted one resumes from its length); an
//! upload to a hidden partial name on the remote, renamed into place only once complete.
//! Names the server lists go through the protocol's name rules (no `/`, `.`, `..`, NUL), and a
//! listing is bounded by [`MAX_ENTRIES`].

use std::path::{Path, PathBuf};

use ferry_protocol::path;
use ferry_protocol::{Entry, ErrorCode, Kind};
use futures_util::stream::{FuturesOrdered, FuturesUnordered, StreamExt};
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::error::EngineError;
use super::ssh::{self, Opening, Remote, SshChild, SshTarget};

/// Bytes asked by one read or sent by one write (OpenSSH's `sftp` default).
pub const CHUNK: u32 = 32 * 1024;
/// Requests kept outstanding per file (OpenSSH's `sftp -R` default).
pub const IN_FLIGHT: usize = 64;
/// Most entries one listing of a directory may hold.
pub const MAX_ENTRIES: usize = 1_000_000;
/// Bytes an upload reads from its local file at once.
const LOCAL_READ: usize = 1024 * 1024;
/// Files of one directory a tree copy moves at once, so small files do not each wait out
/// their round trips alone.
pub const FILES_AT_ONCE: usize = 8;
/// Deepest tree a recursive copy goes into.
pub const MAX_DEPTH: usize = 256;
/// Seconds one SFTP request may wait for its answer.
const REQUEST_TIMEOUT: u64 = 120;
/// Why an SFTP copy is not verified, for summaries and `--json`.
pub const NOT_VERIFIED: &str =
    "not verified by digest: SFTP has no server-side digest (only the size was checked)";

/// One SFTP session over an ssh child.
pub struct Sftp {
    raw: RawSftpSession,
    _child: SshChild,
    label: String,
}

impl std::fmt::Debug for Sftp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sftp").field("label", &self.label).finish()
    }
}

/// An SFTP failure as an engine error: the server's status as the closest ferry code.
fn remote_error(error: SftpError, at: &str) -> EngineError {
    let (code, message) = match &error {
        SftpError::Status(status) => (
            match status.status_code {
                StatusCode::NoSuchFile => ErrorCode::NotFound,
                StatusCode::PermissionDenied => ErrorCode::Forbidden,
                StatusCode::OpUnsupported => ErrorCode::BadRequest,
                _ => ErrorCode::Io,
            },
            if status.error_message.is_empty() {
                status.status_code.to_string()
            } else {
                status.error_message.clone()
            },
        ),
        SftpError::Timeout => (ErrorCode::Timeout, "the SFTP server did not answer".into()),
        other => (ErrorCode::Io, format!("sftp: {other}")),
    };
    EngineError::Remote {
        code,
        message,
        path: at.to_owned(),
    }
}

fn is_eof(error: &SftpError) -> bool {
    matches!(error, SftpError::Status(s) if s.status_code == StatusCode::Eof)
}

fn local(path: &Path, error: std::io::Error) -> EngineError {
    EngineError::local(path.to_path_buf(), error)
}

/// A listed name in wire form, or why it is refused: the protocol's rules for one name.
pub fn checked_name(name: &str) -> Result<String, EngineError> {
    let wire = path::encode(name.as_bytes()).into_owned();
    path::check_name(&wire).map_err(|e| EngineError::Remote {
        code: ErrorCode::BadPath,
        message: format!("the SFTP server listed a name ferry refuses: {e}"),
        path: crate::format::escape_text(name).into_owned(),
    })?;
    Ok(wire)
}

fn entry(name: String, attrs: &FileAttributes) -> Entry {
    let kind = if attrs.is_dir() {
        Kind::Dir
    } else if attrs.is_symlink() {
        Kind::Symlink
    } else if attrs.is_regular() {
        Kind::File
    } else {
        Kind::Other
    };
    Entry {
        name,
        kind,
        size: attrs.size.unwrap_or(0),
        mtime: i64::from(attrs.mtime.unwrap_or(0)),
        mode: attrs.permissions.unwrap_or(0) & 0o7777,
        link: None,
        error: None,
        owner: None,
        target: None,
    }
}

/// Joins a remote directory and a name with one `/`.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

impl Sftp {
    /// Opens the `sftp` subsystem on `target` through the shared master.
    pub async fn connect(target: &SshTarget) -> Result<Sftp, EngineError> {
        let (opening, dir) = Opening::wait(target).await?;
        let (child, reader, writer) = ssh::spawn_remote(target, &dir, Remote::Sftp)?;
        let raw = RawSftpSession::new(tokio::io::join(reader, writer));
        raw.set_timeout(REQUEST_TIMEOUT);
        if let Err(e) = raw.init().await {
            let cause = EngineError::Ssh {
                addr: target.label(),
                message: format!("the sftp subsystem did not start: {e}"),
            };
            return Err(child.failure(cause).await);
        }
        opening.opened();
        Ok(Sftp {
            raw,
            _child: child,
            label: target.label(),
        })
    }

    /// The location's label, `ssh://host`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// What `path` is (following a symlink, as a copy does).
    pub async fn stat(&self, at: &str) -> Result<Entry, EngineError> {
        let attrs = self
            .raw
            .stat(at)
            .await
            .map_err(|e| remote_error(e, at))?
            .attrs;
        let name = at.rsplit('/').find(|n| !n.is_empty()).unwrap_or("/");
        Ok(entry(name.to_owned(), &attrs))
    }

    /// A directory's entries, names checked; a listing past [`MAX_ENTRIES`] is refused.
    /// Names ferry refuses are left out and returned apart, each with its error.
    pub async fn list(&self, at: &str) -> Result<(Vec<Entry>, Vec<EngineError>), EngineError> {
        let handle = self
            .raw
            .opendir(at)
            .await
            .map_err(|e| remote_error(e, at))?
            .handle;
        let mut entries = Vec::new();
        let mut refused = Vec::new();
        let result = loop {
            match self.raw.readdir(handle.as_str()).await {
                Ok(name) => {
                    for file in name.files {
                        if file.filename == "." || file.filename == ".." {
                            continue;
                        }
                        match checked_name(&file.filename) {
                            Ok(wire) if !path::is_partial_name(&wire) => {
                                entries.push(entry(wire, &file.attrs));
                            }
                            Ok(_) => {}
                            Err(e) => refused.push(e),
                        }
                    }
                    if entries.len() + refused.len() > MAX_ENTRIES {
                        break Err(EngineError::Remote {
                            code: ErrorCode::TooLarge,
                            message: format!("more than {MAX_ENTRIES} entries"),
                            path: at.to_owned(),
                        });
                    }
                }
                Err(e) if is_eof(&e) => break Ok(()),
                Err(e) => break Err(remote_error(e, at)),
            }
        };
        let _ = self.raw.close(handle).await;
        result.map(|()| (entries, refused))
    }

    /// Makes a directory.
    pub async fn mkdir(&self, at: &str, mode: Option<u32>) -> Result<(), EngineError> {
        let attrs = FileAttributes {
            permissions: mode,
            ..FileAttributes::empty()
        };
        self.raw
            .mkdir(at, attrs)
            .await
            .map(drop)
            .map_err(|e| remote_error(e, at))
    }

    /// Renames `from` to `to`, replacing `to` (`posix-rename@openssh.com` when offered; a plain
    /// rename, which refuses an existing target, otherwise).
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), EngineError> {
        let mut data = Vec::new();
        for s in [from, to] {
            let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
            data.extend_from_slice(&len.to_be_bytes());
            data.extend_from_slice(s.as_bytes());
        }
        match self.raw.extended("posix-rename@openssh.com", data).await {
            Ok(russh_sftp::protocol::Packet::Status(s)) if s.status_code == StatusCode::Ok => {
                Ok(())
            }
            Ok(russh_sftp::protocol::Packet::Status(s))
                if s.status_code != StatusCode::OpUnsupported =>
            {
                Err(remote_error(SftpError::Status(s), to))
            }
            _ => self
                .raw
                .rename(from, to)
                .await
                .map(drop)
                .map_err(|e| remote_error(e, to)),
        }
    }

    /// Removes a file, or a directory (and, with `recursive`, what it holds).
    pub async fn remove(&self, at: &str, recursive: bool) -> Result<(), EngineError> {
        let attrs = self
            .raw
            .lstat(at)
            .await
            .map_err(|e| remote_error(e, at))?
            .attrs;
        if !attrs.is_dir() {
            return self
                .raw
                .remove(at)
                .await
                .map(drop)
                .map_err(|e| remote_error(e, at));
        }
        if recursive {
            Box::pin(self.remove_tree(at, 0)).await?;
        }
        self.raw
            .rmdir(at)
            .await
            .map(drop)
            .map_err(|e| remote_error(e, at))
    }

    async fn remove_tree(&self, at: &str, depth: usize) -> Result<(), EngineError> {
        if depth > MAX_DEPTH {
            return Err(EngineError::Remote {
                code: ErrorCode::TooLarge,
                message: format!("deeper than {MAX_DEPTH} levels"),
                path: at.to_owned(),
            });
        }
        let (entries, _) = self.list(at).await?;
        for e in entries {
            let child = join(at, &e.name);
            if e.kind == Kind::Dir {
                Box::pin(self.remove_tree(&child, depth + 1)).await?;
                self.raw
                    .rmdir(child.as_str())
                    .await
                    .map_err(|err| remote_error(err, &child))?;
            } else {
                self.raw
                    .remove(child.as_str())
                    .await
                    .map_err(|err| remote_error(err, &child))?;
            }
        }
        Ok(())
    }

    /// Downloads the file `from` to `to`, through `to`'s hidden partial name: resumed from the
    /// partial's length when one is there, renamed into place once its size is the remote's.
    /// Returns the bytes received in this run.
    pub async fn get_file(
        &self,
        from: &str,
        to: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, EngineError> {
        let name = to
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let partial = to.with_file_name(path::partial_name(&name));
        let handle = self
            .raw
            .open(from, OpenFlags::READ, FileAttributes::empty())
            .await
            .map_err(|e| remote_error(e, from))?
            .handle;
        let result = self.read_into(&handle, from, &partial, progress).await;
        let _ = self.raw.close(handle).await;
        let (received, attrs) = result?;
        if let Some(mtime) = attrs.mtime {
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::from(mtime));
            let file = std::fs::File::options()
                .write(true)
                .open(&partial)
                .map_err(|e| local(&partial, e))?;
            file.set_modified(when).map_err(|e| local(&partial, e))?;
        }
        if let Some(mode) = attrs.permissions {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(mode & 0o777))
                .map_err(|e| local(&partial, e))?;
        }
        std::fs::rename(&partial, to).map_err(|e| local(to, e))?;
        Ok(received)
    }

    /// Reads the open remote file into `partial` from its current length, [`IN_FLIGHT`] reads
    /// outstanding; a short read asks again for the rest of its chunk.
    async fn read_into(
        &self,
        handle: &str,
        from: &str,
        partial: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(u64, FileAttributes), EngineError> {
        let attrs = self
            .raw
            .fstat(handle)
            .await
            .map_err(|e| remote_error(e, from))?
            .attrs;
        let size = attrs.size.unwrap_or(0);
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(partial)
            .await
            .map_err(|e| local(partial, e))?;
        let mut start = file.metadata().await.map_err(|e| local(partial, e))?.len();
        if start > size {
            // Longer than the source: not a part of it; start again.
            file.set_len(0).await.map_err(|e| local(partial, e))?;
            start = 0;
        }
        let mut next = start;
        let mut eof = false;
        let mut received = 0u64;
        let mut end = start;
        let mut pending = FuturesOrdered::new();
        let read = |offset: u64, len: u32| {
            let raw = &self.raw;
            let handle = handle.to_owned();
            async move { (offset, len, raw.read(handle, offset, len).await) }
        };
        loop {
            while !eof && pending.len() < IN_FLIGHT {
                pending.push_back(read(next, CHUNK));
                next += u64::from(CHUNK);
                if next >= size {
                    // One read past the size tells whether the file grew; no more after it.
                    eof = true;
                }
            }
            let Some((offset, len, result)) = pending.next().await else {
                break;
            };
            match result {
                Ok(data) if !data.data.is_empty() => {
                    let n = data.data.len();
                    if n > len as usize {
                        return Err(EngineError::Protocol(format!(
                            "the SFTP server sent {n} bytes for a read of {len}"
                        )));
                    }
                    file.seek(std::io::SeekFrom::Start(offset))
                        .await
                        .map_err(|e| local(partial, e))?;
                    file.write_all(&data.data)
                        .await
                        .map_err(|e| local(partial, e))?;
                    let n = n as u64;
                    received += n;
                    end = end.max(offset + n);
                    progress(n);
                    if n < u64::from(len) && offset + n < size {
                        let rest = u32::try_from(u64::from(len) - n).unwrap_or(CHUNK);
                        pending.push_back(read(offset + n, rest));
                    }
                }
                Ok(_) => {}
                Err(e) if is_eof(&e) => {}
                Err(e) => return Err(remote_error(e, from)),
            }
        }
        file.flush().await.map_err(|e| local(partial, e))?;
        file.sync_all().await.map_err(|e| local(partial, e))?;
        if end != size {
            return Err(EngineError::Remote {
                code: ErrorCode::FileChanged,
                message: format!(
                    "{end} bytes read where the file had {size}: it changed during the copy"
                ),
                path: from.to_owned(),
            });
        }
        Ok((received, attrs))
    }

    /// Uploads the local file `from` to `to`: written under `to`'s hidden partial name,
    /// [`IN_FLIGHT`] writes outstanding, its mtime and mode set, its size checked, then renamed
    /// into place. Never half-written under the final name.
    pub async fn put_file(
        &self,
        from: &Path,
        to: &str,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, EngineError> {
        let (dir, name) = match to.rsplit_once('/') {
            Some((dir, name)) => (format!("{dir}/"), name),
            None => (String::new(), to),
        };
        let partial = format!("{dir}{}", path::partial_name(name));
        let meta = std::fs::metadata(from).map_err(|e| local(from, e))?;
        let mut file = tokio::fs::File::open(from)
            .await
            .map_err(|e| local(from, e))?;
        let handle = self
            .raw
            .open(
                partial.as_str(),
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                FileAttributes::empty(),
            )
            .await
            .map_err(|e| remote_error(e, to))?
            .handle;
        let mut pending = FuturesUnordered::new();
        let mut read = Vec::new();
        let mut read_at = 0usize;
        let mut offset = 0u64;
        let mut done = false;
        let mut result = Ok(());
        while !done || !pending.is_empty() {
            while !done && pending.len() < IN_FLIGHT {
                if read_at >= read.len() {
                    // Refilled a MiB at a time: each read of a tokio file is a trip to a
                    // blocking thread, too dear for every 32 KiB.
                    read.resize(LOCAL_READ, 0);
                    read_at = 0;
                    match file.read(&mut read).await {
                        Ok(0) => {
                            read.clear();
                            done = true;
                            break;
                        }
                        Ok(n) => read.truncate(n),
                        Err(e) => {
                            result = Err(local(from, e));
                            done = true;
                            break;
                        }
                    }
                }
                let n = (read.len() - read_at).min(CHUNK as usize);
                let buf = read[read_at..read_at + n].to_vec();
                read_at += n;
                let raw = &self.raw;
                let h = handle.clone();
                let at = offset;
                pending.push(async move { (n as u64, raw.write(h, at, buf).await) });
                offset += n as u64;
            }
            let Some((n, written)) = pending.next().await else {
                continue;
            };
            match written {
                Ok(_) => progress(n),
                Err(e) => {
                    result = Err(remote_error(e, to));
                    done = true;
                }
            }
        }
        if let Err(e) = result {
            let _ = self.raw.close(handle).await;
            return Err(e);
        }
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| u32::try_from(d.as_secs()).ok());
        let attrs = {
            use std::os::unix::fs::PermissionsExt;
            FileAttributes {
                permissions: Some(meta.permissions().mode() & 0o777),
                atime: mtime,
                mtime,
                ..FileAttributes::empty()
            }
        };
        // Every write is answered, so the times set now stay; the size is asked in the same
        // round trip.
        let (set, stat) = tokio::join!(
            self.raw.fsetstat(handle.as_str(), attrs),
            self.raw.fstat(handle.as_str())
        );
        let closed = self.raw.close(handle).await;
        set.map_err(|e| remote_error(e, to))?;
        let written = stat.map_err(|e| remote_error(e, to))?.attrs.size;
        closed.map_err(|e| remote_error(e, to))?;
        if written != Some(offset) {
            return Err(EngineError::Remote {
                code: ErrorCode::FileChanged,
                message: format!("{written:?} bytes on the server where {offset} were sent"),
                path: to.to_owned(),
            });
        }
        self.rename(&partial, to).await?;
        Ok(offset)
    }
}

/// Where a local copy of remote `name` goes under `dir`: the wire name decoded to its bytes.
pub fn local_child(dir: &Path, wire: &str) -> Result<PathBuf, EngineError> {
    let raw = path::name_bytes(wire).map_err(|e| EngineError::Remote {
        code: ErrorCode::BadPath,
        message: e.to_string(),
        path: wire.to_owned(),
    })?;
    use std::os::unix::ffi::OsStrExt;
    Ok(dir.join(std::ffi::OsStr::from_bytes(&raw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        assert!(checked_name("..").is_err());
        assert!(checked_name("a/b").is_err());
        assert!(checked_name("a\0b").is_err());
        assert!(checked_name("").is_err());
        assert_eq!(checked_name("ok.txt").unwrap(), "ok.txt");
        assert_eq!(join("/srv", "a"), "/srv/a");
        assert_eq!(join("/", "a"), "/a");
    }
}
