//! [`Session`]: one connection for browsing and small operations, one request at a time.
//!
//! Listings arrive in batches; [`Session::list`] collects them for the TUI, while
//! [`Session::list_stream`] hands them out one batch at a time so `ls --json` of a huge
//! directory never holds more than one batch.
//!
//! Round trips run one after another are what a long link makes slow, so a session can send
//! requests before their answers are due: with `hello` ([`Session::connect_stat`],
//! [`Session::connect_listing`]), in pipelined windows, or ahead of the questions a job will
//! ask ([`Session::send_ahead`]). Over 600 lines, not split: every request shares the one
//! connection's order of answers, and that bookkeeping (out of step, sent ahead, reconnect)
//! must stay in one place.

use ferry_protocol::{
    AttrsReply, CopyReply, DigestBatch, DigestEntry, Done, Entry, ErrorCode, GetReply, GetTrailer,
    ListBatch, PartialReply, PartialsReply, Request, StatReply, SummaryReply,
};
use ferry_protocol::{Digest, ErrorBody};

use super::endpoint::Endpoint;
use super::error::EngineError;
use super::transport::FrameStream;

/// Most entries [`Session::list`] gathers: the TUI's pane holds a listing whole.
pub const MAX_LISTED: usize = 200_000;
/// Most entries [`Session::walk`] gathers: an upload into an existing directory learns
/// what is already there from it.
pub const MAX_WALKED: usize = 500_000;

/// One connection to the server, used for browsing and small operations.
#[derive(Debug)]
pub struct Session {
    conn: FrameStream,
    /// Kept to reconnect when the server has closed an idle session.
    endpoint: Endpoint,
    /// Set when a listing was dropped before its last batch: its leftovers are still on the wire.
    poisoned: bool,
    /// Requests sent ahead ([`Session::send_ahead`], or a `list` sent with `hello`), whose
    /// answers are still on the wire, in order: asking exactly the next of them reads its
    /// answer instead of sending it again; asking anything else finds the session out of step,
    /// and it starts over on a new connection.
    ahead: std::collections::VecDeque<Request>,
}

/// A listing being received batch by batch; see [`Session::list_stream`]. `E` is what each
/// batch holds: [`Entry`]s (`list`, `walk`), or [`DigestEntry`]s ([`Session::digests`]).
#[derive(Debug)]
pub struct ListStream<'a, E = Entry> {
    session: &'a mut Session,
    path: String,
    finished: bool,
    skipped: u64,
    items: std::marker::PhantomData<E>,
}

/// What a streamed answer's batches hold, and how a batch says it is the last.
pub trait StreamItem: Sized {
    type Batch: serde::de::DeserializeOwned;
    /// The batch's entries, whether more follow, and (on the last) what the server skipped.
    fn split(batch: Self::Batch) -> (Vec<Self>, bool, u64);
}

impl StreamItem for Entry {
    type Batch = ListBatch;
    fn split(batch: ListBatch) -> (Vec<Self>, bool, u64) {
        (batch.entries, batch.more, batch.skipped)
    }
}

impl StreamItem for DigestEntry {
    type Batch = DigestBatch;
    fn split(batch: DigestBatch) -> (Vec<Self>, bool, u64) {
        (batch.entries, batch.more, batch.skipped)
    }
}

impl<E: StreamItem> ListStream<'_, E> {
    /// The next batch of entries, `None` after the last one.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<E>>, EngineError> {
        if self.finished {
            return Ok(None);
        }
        let batch = self
            .session
            .conn
            .reader
            .header::<E::Batch>()
            .await?
            .map_err(|body| {
                self.finished = true;
                EngineError::remote(&self.path, body)
            })?;
        let (entries, more, skipped) = E::split(batch);
        if !more {
            self.finished = true;
            self.skipped = skipped;
        }
        Ok(Some(entries))
    }

    /// Entries the server left out (too deep or unreadable; an older server also left out
    /// names it could not send), known once the stream has ended.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

impl<E> Drop for ListStream<'_, E> {
    fn drop(&mut self) {
        // A listing abandoned halfway leaves batches on the wire that the next request would
        // read as its answer: the session starts over on a new connection.
        if !self.finished {
            self.session.poisoned = true;
        }
    }
}

/// A remote source a move has copied and verified: what it must still be when it is removed
/// at the job's end, so a file changed on the server meanwhile is kept.
#[derive(Debug, Clone)]
pub(super) struct CopiedSource {
    pub(super) path: String,
    pub(super) size: u64,
    pub(super) mtime: i64,
    pub(super) digest: Digest,
}

/// This kernel's boot id, read once; `None` where the kernel does not say it.
pub(super) fn boot_id() -> Option<&'static str> {
    static BOOT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT.get_or_init(|| {
        let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let id = id.trim().to_owned();
        (!id.is_empty()).then_some(id)
    })
    .as_deref()
}

/// Whether a server's `hello` identity is this machine's.
pub(super) fn same_machine(identity: &ferry_protocol::HostIdentity) -> bool {
    boot_id().is_some_and(|boot| ferry_protocol::host_token(&identity.salt, boot) == identity.host)
}

impl Session {
    /// Connects and says `hello`.
    pub async fn connect(endpoint: &Endpoint) -> Result<Session, EngineError> {
        Self::connect_then(endpoint, &[]).await
    }

    /// Connects and says `hello` with `first` sent right behind it (see
    /// [`FrameStream::open_then`]); their answers are still to be read.
    async fn connect_then(endpoint: &Endpoint, first: &[Request]) -> Result<Session, EngineError> {
        let known_hosts = super::known_hosts::KnownHosts::default_location();
        Ok(Session {
            conn: FrameStream::open_then(endpoint, known_hosts.as_ref(), first).await?,
            endpoint: endpoint.clone(),
            poisoned: false,
            ahead: std::collections::VecDeque::new(),
        })
    }

    /// Connects and `stat`s each of `paths`, all in the round trip of `hello`: what a command
    /// learns about its locations before it starts a job (which goes on with this session).
    /// Each outcome in order; an error of the connection itself is the whole call's.
    pub async fn connect_stat(
        endpoint: &Endpoint,
        paths: &[String],
    ) -> Result<(Session, Vec<Result<Entry, EngineError>>), EngineError> {
        let requests = paths
            .iter()
            .map(|path| Request::Stat {
                path: path.clone(),
                identity: false,
            })
            .collect::<Vec<_>>();
        let mut session = Self::connect_then(endpoint, &requests).await?;
        let mut entries = Vec::with_capacity(paths.len());
        for path in paths {
            let reply = session.conn.reader.header::<StatReply>().await?;
            entries.push(
                reply
                    .map(|r| r.entry)
                    .map_err(|body| EngineError::remote(path, body)),
            );
        }
        Ok((session, entries))
    }

    /// Connects, `stat`s `path` and asks for its listing, all in the round trip of `hello`
    /// (`ferry ls`): the entry, and a session whose [`list_stream`](Self::list_stream) of
    /// `path` reads the listing already asked for. When the entry is no directory the listing's
    /// answer (an error) is simply never read.
    pub async fn connect_listing(
        endpoint: &Endpoint,
        path: &str,
    ) -> Result<(Session, Entry), EngineError> {
        let requests = [
            Request::Stat {
                path: path.into(),
                identity: false,
            },
            Request::List { path: path.into() },
        ];
        let mut session = Self::connect_then(endpoint, &requests).await?;
        session.ahead.push_back(Request::List { path: path.into() });
        let entry = session
            .conn
            .reader
            .header::<StatReply>()
            .await?
            .map_err(|body| EngineError::remote(path, body))?
            .entry;
        Ok((session, entry))
    }

    /// Whether the server said it is read-only.
    pub fn read_only(&self) -> bool {
        self.conn.hello.read_only
    }

    /// The server's name and version, as it introduced itself.
    pub fn server_name(&self) -> &str {
        &self.conn.hello.server
    }

    /// The logged-in user's home as a wire path, when the server said (a `--stdio` server
    /// over ssh does).
    pub fn home(&self) -> Option<&str> {
        self.conn.hello.home.as_deref()
    }

    /// Makes sure a request can be sent: a connection the server has closed (idle timeout) or
    /// that an abandoned listing left out of step is replaced by a fresh one. Nothing has been
    /// sent yet, so this is safe whatever the request.
    async fn ready(&mut self) -> Result<(), EngineError> {
        if self.poisoned || !self.ahead.is_empty() || self.conn.reader.is_stale() {
            self.conn = FrameStream::open(&self.endpoint).await?;
            self.poisoned = false;
            self.ahead.clear();
        }
        Ok(())
    }

    /// Sends `requests` now, without waiting for their answers, for callers that will ask
    /// exactly these, in this order, and would otherwise wait a round trip for each in turn (a
    /// job's screening and the start of its plan). Asking something else first costs a new
    /// connection, never a wrong answer. Only small requests, so nothing can stall.
    pub(crate) async fn send_ahead(&mut self, requests: Vec<Request>) -> Result<(), EngineError> {
        self.ready().await?;
        for request in &requests {
            self.conn.writer.send(request).await?;
        }
        self.conn.writer.flush().await?;
        self.ahead.extend(requests);
        Ok(())
    }

    /// The connection, ready for an exchange that streams its own payload ([`super::view`]'s
    /// ranged reads, fetches and uploads). Call [`Self::out_of_step`] if it fails halfway.
    pub(super) async fn stream(&mut self) -> Result<&mut FrameStream, EngineError> {
        self.ready().await?;
        Ok(&mut self.conn)
    }

    /// An exchange stopped halfway: whatever is left of it on the wire is not the next answer,
    /// so the next request starts over on a new connection.
    pub(super) fn out_of_step(&mut self) {
        self.poisoned = true;
    }

    /// Whether `request` is the next one sent ahead; if so its answer is the next to read.
    fn take_ahead(&mut self, request: &Request) -> bool {
        if self.ahead.front() == Some(request) {
            self.ahead.pop_front();
            true
        } else {
            false
        }
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &mut self,
        path: &str,
        request: Request,
    ) -> Result<T, EngineError> {
        let reply = if self.take_ahead(&request) {
            self.conn.reader.header::<T>().await?
        } else {
            self.ready().await?;
            self.conn.request::<T>(&request).await?
        };
        reply.map_err(|body| EngineError::remote(path, body))
    }

    /// One entry's metadata, as `lstat` sees it on the server.
    pub async fn stat(&mut self, path: &str) -> Result<Entry, EngineError> {
        let reply: StatReply = self
            .call(
                path,
                Request::Stat {
                    path: path.into(),
                    identity: false,
                },
            )
            .await?;
        Ok(reply.entry)
    }

    /// The salt of the server's machine identity when it runs on this very machine (so its
    /// files may be ours), else `None`.
    pub(crate) fn shared_machine(&self) -> Option<String> {
        let identity = self.conn.hello.identity.as_ref()?;
        same_machine(identity).then(|| identity.salt.clone())
    }

    /// Like [`try_stat`](Self::try_stat), with the identity token of the file the path leads
    /// to (see [`shared_machine`](Self::shared_machine)).
    pub(crate) async fn stat_identity(
        &mut self,
        path: &str,
    ) -> Result<Option<(Entry, Option<String>)>, EngineError> {
        let request = Request::Stat {
            path: path.into(),
            identity: true,
        };
        match self.call::<StatReply>(path, request).await {
            Ok(reply) => Ok(Some((reply.entry, reply.id))),
            Err(e) if e.remote_code() == Some(ErrorCode::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The identity tokens of several paths (see [`stat_identity`](Self::stat_identity)) with
    /// one round trip's worth of waiting: `None` for a path the server refuses or gives none for.
    pub(crate) async fn identities(
        &mut self,
        paths: &[String],
    ) -> Result<Vec<Option<String>>, EngineError> {
        let requests = paths
            .iter()
            .map(|path| Request::Stat {
                path: path.clone(),
                identity: true,
            })
            .collect::<Vec<_>>();
        let replies = self.pipeline_replies::<StatReply>(paths, &requests).await?;
        Ok(replies
            .into_iter()
            .map(|reply| reply.ok().and_then(|r| r.id))
            .collect())
    }

    /// Like [`stat`](Self::stat), with `not_found` as `None`.
    pub async fn try_stat(&mut self, path: &str) -> Result<Option<Entry>, EngineError> {
        match self.stat(path).await {
            Ok(entry) => Ok(Some(entry)),
            Err(e) if e.remote_code() == Some(ErrorCode::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A whole directory listing, in the server's order (callers sort); `too_large` past
    /// [`MAX_LISTED`] entries.
    pub async fn list(&mut self, path: &str) -> Result<Vec<Entry>, EngineError> {
        self.collect(Request::List { path: path.into() }, path, MAX_LISTED)
            .await
    }

    /// Every entry below `path`, names relative to it, parents before children;
    /// `too_large` past [`MAX_WALKED`] entries.
    pub async fn walk(&mut self, path: &str) -> Result<Vec<Entry>, EngineError> {
        self.collect(Request::Walk { path: path.into() }, path, MAX_WALKED)
            .await
    }

    /// Gathers a whole listing, up to `cap` entries: a server that never ends one must not
    /// fill the client's memory. Past the cap the stream is dropped (the session reconnects).
    async fn collect(
        &mut self,
        request: Request,
        path: &str,
        cap: usize,
    ) -> Result<Vec<Entry>, EngineError> {
        let mut stream = self.start_stream(request, path).await?;
        let mut all = Vec::new();
        while let Some(batch) = stream.next_batch().await? {
            if all.len() + batch.len() > cap {
                return Err(EngineError::Remote {
                    code: ErrorCode::TooLarge,
                    message: format!(
                        "more than {} entries: ferry holds at most that many here \
                         (`ferry ls --json` streams a listing of any size)",
                        crate::format::count(cap as u64)
                    ),
                    path: path.to_owned(),
                });
            }
            all.extend(batch);
        }
        Ok(all)
    }

    /// A directory listing delivered batch by batch. Dropping the stream early is allowed: the
    /// session then opens a new connection for its next request.
    pub async fn list_stream(&mut self, path: &str) -> Result<ListStream<'_>, EngineError> {
        self.start_stream(Request::List { path: path.into() }, path)
            .await
    }

    /// Like [`list_stream`](Self::list_stream) for a whole tree (`walk`).
    pub async fn walk_stream(&mut self, path: &str) -> Result<ListStream<'_>, EngineError> {
        self.start_stream(Request::Walk { path: path.into() }, path)
            .await
    }

    /// Every entry below the directory `path` as `walk` gives it, each regular file with its
    /// BLAKE3 digest, batch by batch, in one request (the server caches digests, so a repeat is
    /// cheap); with `paths` (at most [`ferry_protocol::MAX_DIGEST_PATHS`], relative to `path`),
    /// only those entries, in that order.
    pub async fn digests(
        &mut self,
        path: &str,
        paths: Option<Vec<String>>,
    ) -> Result<ListStream<'_, DigestEntry>, EngineError> {
        let request = Request::Digests {
            path: path.into(),
            paths,
        };
        self.start_stream(request, path).await
    }

    async fn start_stream<E>(
        &mut self,
        request: Request,
        path: &str,
    ) -> Result<ListStream<'_, E>, EngineError> {
        if !self.take_ahead(&request) {
            self.ready().await?;
            self.conn.writer.send(&request).await?;
            self.conn.writer.flush().await?;
        }
        Ok(ListStream {
            session: self,
            path: path.to_owned(),
            finished: false,
            skipped: 0,
            items: std::marker::PhantomData,
        })
    }

    /// Creates a directory and any missing parents.
    pub async fn mkdir(&mut self, path: &str) -> Result<(), EngineError> {
        let _: Done = self
            .call(
                path,
                Request::Mkdir {
                    path: path.into(),
                    parents: true,
                    mode: None,
                },
            )
            .await?;
        Ok(())
    }

    /// Creates exactly one directory, like `mkdir` without `-p`: a missing parent is
    /// `not_found` and an existing entry `already_exists`, so a view of a tree someone else
    /// deleted cannot bring it back.
    pub async fn create_dir(&mut self, path: &str) -> Result<(), EngineError> {
        let _: Done = self
            .call(
                path,
                Request::Mkdir {
                    path: path.into(),
                    parents: false,
                    mode: None,
                },
            )
            .await?;
        Ok(())
    }

    /// Moves `from` to `to`; an existing `to` is an error.
    pub async fn rename(&mut self, from: &str, to: &str) -> Result<(), EngineError> {
        self.rename_with(from, to, false).await
    }

    /// Moves `from` to `to`, replacing an existing `to` when `overwrite` (`ferry mv
    /// --overwrite`).
    pub async fn rename_with(
        &mut self,
        from: &str,
        to: &str,
        overwrite: bool,
    ) -> Result<(), EngineError> {
        let _: Done = self
            .call(
                from,
                Request::Rename {
                    path: from.into(),
                    to: to.into(),
                    overwrite,
                },
            )
            .await?;
        Ok(())
    }

    /// Removes a file, a link or an empty directory; with `recursive`, a whole tree.
    pub async fn remove(&mut self, path: &str, recursive: bool) -> Result<(), EngineError> {
        let _: Done = self
            .call(
                path,
                Request::Remove {
                    path: path.into(),
                    recursive,
                    if_size: None,
                    if_mtime: None,
                    if_digest: None,
                },
            )
            .await?;
        Ok(())
    }

    /// Totals of the tree below `path`, counted by the server in one request.
    pub async fn summary(&mut self, path: &str) -> Result<SummaryReply, EngineError> {
        self.call(path, Request::Summary { path: path.into() })
            .await
    }

    /// How many bytes a hidden partial upload of `path` holds, and their digest.
    pub async fn partial(&mut self, path: &str) -> Result<PartialReply, EngineError> {
        self.call(path, Request::Partial { path: path.into() })
            .await
    }

    /// This session's own hidden partial uploads in the directory `path`: what cancelled or
    /// broken uploads left there for a resume.
    pub async fn partials(&mut self, path: &str) -> Result<PartialsReply, EngineError> {
        self.call(path, Request::Partials { path: path.into() })
            .await
    }

    /// Removes this session's hidden partial upload of `path` (never the file itself).
    pub async fn discard(&mut self, path: &str) -> Result<(), EngineError> {
        let _: Done = self
            .call(path, Request::Discard { path: path.into() })
            .await?;
        Ok(())
    }

    /// The digest of a remote file of `size` bytes, without moving its bytes: a `get` from its
    /// end returns no payload, only the whole-file digest.
    pub async fn digest(&mut self, path: &str, size: u64) -> Result<Digest, EngineError> {
        let reply: GetReply = self
            .call(
                path,
                Request::Get {
                    path: path.into(),
                    offset: size,
                    length: None,
                },
            )
            .await?;
        self.conn.reader.expect_payload(reply.size);
        while self.conn.reader.payload_chunk().await?.is_some() {}
        let trailer: Result<GetTrailer, ErrorBody> = self.conn.reader.header().await?;
        Ok(trailer
            .map_err(|body| EngineError::remote(path, body))?
            .digest)
    }

    /// Removes several paths with one round trip's worth of waiting, returning each outcome.
    pub async fn remove_many(
        &mut self,
        paths: &[String],
        recursive: bool,
    ) -> Result<Vec<Result<(), EngineError>>, EngineError> {
        let requests = paths
            .iter()
            .map(|p| Request::Remove {
                path: p.clone(),
                recursive,
                if_size: None,
                if_mtime: None,
                if_digest: None,
            })
            .collect::<Vec<_>>();
        self.pipeline(paths, &requests).await
    }

    /// Removes entries a sync found on its destination and not on its source, never
    /// recursively: a file (given its listed length and mtime) only while it still has them
    /// (else `file_changed`, and it stays), a link or an empty directory as it is. Each outcome
    /// in order.
    pub(crate) async fn remove_listed(
        &mut self,
        entries: &[(String, Option<(u64, i64)>)],
    ) -> Result<Vec<Result<(), EngineError>>, EngineError> {
        let paths = entries.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
        let requests = entries
            .iter()
            .map(|(path, listed)| Request::Remove {
                path: path.clone(),
                recursive: false,
                if_size: listed.map(|(size, _)| size),
                if_mtime: listed.map(|(_, mtime)| mtime),
                if_digest: None,
            })
            .collect::<Vec<_>>();
        self.pipeline(&paths, &requests).await
    }

    /// Removes a move's copied sources, each only while it still has the length, mtime and
    /// digest of the copy (else `file_changed`), returning each outcome.
    pub(super) async fn remove_copied(
        &mut self,
        sources: &[CopiedSource],
    ) -> Result<Vec<Result<(), EngineError>>, EngineError> {
        let paths = sources.iter().map(|s| s.path.clone()).collect::<Vec<_>>();
        let requests = sources
            .iter()
            .map(|s| Request::Remove {
                path: s.path.clone(),
                recursive: false,
                if_size: Some(s.size),
                if_mtime: Some(s.mtime),
                if_digest: Some(s.digest),
            })
            .collect::<Vec<_>>();
        self.pipeline(&paths, &requests).await
    }

    /// Creates several directories (parents first), each with the mode of the directory it
    /// copies when one is given, returning each outcome.
    pub async fn mkdir_many(
        &mut self,
        dirs: &[(String, Option<u32>)],
    ) -> Result<Vec<Result<(), EngineError>>, EngineError> {
        let paths = dirs.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
        let requests = dirs
            .iter()
            .map(|(p, mode)| Request::Mkdir {
                path: p.clone(),
                parents: true,
                mode: *mode,
            })
            .collect::<Vec<_>>();
        self.pipeline(&paths, &requests).await
    }

    /// Sets the modification time and/or the permission bits of a remote file or directory
    /// (never through a symlink), returning the entry as it now is: a sync fixes a time or a
    /// mode without sending the bytes again, a chmod is this one request.
    pub async fn set_attrs(
        &mut self,
        path: &str,
        mtime: Option<i64>,
        mode: Option<u32>,
    ) -> Result<Entry, EngineError> {
        let reply: AttrsReply = self
            .call(
                path,
                Request::Attrs {
                    path: path.into(),
                    mtime,
                    mode,
                },
            )
            .await?;
        Ok(reply.entry)
    }

    /// [`set_attrs`](Self::set_attrs) for many paths (each `(path, mtime, mode)`) with one
    /// round trip's worth of waiting, each outcome in order.
    pub async fn set_attrs_many(
        &mut self,
        changes: &[(String, Option<i64>, Option<u32>)],
    ) -> Result<Vec<Result<Entry, EngineError>>, EngineError> {
        let paths = changes
            .iter()
            .map(|(p, _, _)| p.clone())
            .collect::<Vec<_>>();
        let requests = changes
            .iter()
            .map(|(path, mtime, mode)| Request::Attrs {
                path: path.clone(),
                mtime: *mtime,
                mode: *mode,
            })
            .collect::<Vec<_>>();
        let replies = self
            .pipeline_replies::<AttrsReply>(&paths, &requests)
            .await?;
        Ok(replies.into_iter().map(|r| r.map(|r| r.entry)).collect())
    }

    /// Copies files inside the server (each `(from, to)`), the bytes never crossing the
    /// connection, with one round trip's worth of waiting: each copy's outcome in order.
    pub async fn copy_many(
        &mut self,
        pairs: &[(String, String)],
        overwrite: bool,
    ) -> Result<Vec<Result<CopyReply, EngineError>>, EngineError> {
        let paths = pairs.iter().map(|(_, to)| to.clone()).collect::<Vec<_>>();
        let requests = pairs
            .iter()
            .map(|(from, to)| Request::Copy {
                path: from.clone(),
                to: to.clone(),
                overwrite,
            })
            .collect::<Vec<_>>();
        self.pipeline_replies(&paths, &requests).await
    }

    /// The connection itself, for an exchange the caller frames (a relay's `get` streamed into
    /// another server's `put`). The session counts as out of step until [`Self::settle`]: an
    /// exchange cut short makes the next request start over on a new connection.
    pub(super) async fn frames(&mut self) -> Result<&mut FrameStream, EngineError> {
        self.ready().await?;
        self.poisoned = true;
        Ok(&mut self.conn)
    }

    /// The exchange begun with [`Self::frames`] was read to its end.
    pub(super) fn settle(&mut self) {
        self.poisoned = false;
    }

    /// Sends small requests in windows and reads their `Done` replies; each window is small
    /// enough to sit in the socket buffers, so writing it whole before reading cannot deadlock.
    async fn pipeline(
        &mut self,
        paths: &[String],
        requests: &[Request],
    ) -> Result<Vec<Result<(), EngineError>>, EngineError> {
        let outcomes = self.pipeline_replies::<Done>(paths, requests).await?;
        Ok(outcomes.into_iter().map(|o| o.map(drop)).collect())
    }

    /// The totals of several paths with one round trip's worth of waiting (a download's
    /// free-space check), each outcome in order.
    pub(crate) async fn summary_many(
        &mut self,
        paths: &[String],
    ) -> Result<Vec<Result<SummaryReply, EngineError>>, EngineError> {
        let requests = paths
            .iter()
            .map(|p| Request::Summary { path: p.clone() })
            .collect::<Vec<_>>();
        self.pipeline_replies(paths, &requests).await
    }

    /// Sends requests in windows without waiting between them and reads each one's reply.
    async fn pipeline_replies<T: serde::de::DeserializeOwned>(
        &mut self,
        paths: &[String],
        requests: &[Request],
    ) -> Result<Vec<Result<T, EngineError>>, EngineError> {
        const WINDOW: usize = 64;
        let mut outcomes = Vec::with_capacity(requests.len());
        if self.ahead.len() >= requests.len()
            && self.ahead.iter().zip(requests).all(|(a, r)| a == r)
        {
            for name in paths {
                self.ahead.pop_front();
                let reply = self.conn.reader.header::<T>().await?;
                outcomes.push(reply.map_err(|body| EngineError::remote(name, body)));
            }
            return Ok(outcomes);
        }
        self.ready().await?;
        for (chunk, names) in requests.chunks(WINDOW).zip(paths.chunks(WINDOW)) {
            for request in chunk {
                self.conn.writer.send(request).await?;
            }
            self.conn.writer.flush().await?;
            for name in names {
                let reply = self.conn.reader.header::<T>().await?;
                outcomes.push(reply.map_err(|body| EngineError::remote(name, body)));
            }
        }
        Ok(outcomes)
    }
}
