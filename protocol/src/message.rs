//! Requests, responses and their one-line JSON encoding.
//!
//! Requests are one enum tagged by `"op"`. Responses are one struct per kind, written with
//! `"ok": true` in front; a failure is `{"ok":false,"error":{...}}` whatever was asked. Since
//! responses come back in request order, the client always knows which struct to expect.
//!
//! Over 600 lines on purpose: this is the one list of the wire's messages, in the order
//! PROTOCOL.md gives them, and the tests below it (a third of the file) check each against the
//! spec's examples; split, the two would drift apart.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorBody, ErrorCode};
use crate::{Digest, MAX_HEADER_LEN};

/// A shared secret; its `Debug` form is redacted so it never reaches a log.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(pub String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

fn default_true() -> bool {
    true
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A request from client to server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Must come first: names the protocol version and the credentials the server needs, a
    /// shared `token` or a `user` with a `password`.
    Hello {
        version: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Token>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<Token>,
    },
    /// One entry's metadata. Answered by [`StatReply`]; with `identity`, the reply also carries
    /// the file's opaque identity token, so a client on the same machine can tell whether it is
    /// one of its own files.
    Stat {
        path: String,
        #[serde(default, skip_serializing_if = "is_false")]
        identity: bool,
    },
    /// A directory's entries, streamed as [`ListBatch`]es until one has `more: false`.
    List { path: String },
    /// Every entry below a directory, depth first, names relative to `path`; streamed like `list`.
    Walk { path: String },
    /// Totals of the tree below a path, so progress bars know the whole before the first byte.
    Summary { path: String },
    /// Every entry below the directory `path` as `walk` gives it, each regular file with its
    /// digest, streamed as [`DigestBatch`]es: comparing a tree costs one request, not one per
    /// file. With `paths` (at most [`MAX_DIGEST_PATHS`], relative to `path`), only those.
    Digests {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        paths: Option<Vec<String>>,
    },
    /// A file's bytes from `offset`: [`GetReply`], its payload, then [`GetTrailer`].
    Get {
        path: String,
        #[serde(default, skip_serializing_if = "is_zero")]
        offset: u64,
        /// A ranged read (a viewer's window): at most this many bytes, and the trailer's digest
        /// covers exactly the bytes sent instead of the whole file, so the server hashes no
        /// prefix. Absent (older clients, downloads), the rest of the file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        length: Option<u64>,
    },
    /// Bytes for a file, written atomically. Answered by [`PutReply`].
    Put(Put),
    /// What a hidden partial upload of `path` already holds. Answered by [`PartialReply`].
    Partial { path: String },
    /// The caller's own hidden partial uploads in the directory `path`. Answered by
    /// [`PartialsReply`].
    Partials { path: String },
    /// Removes the caller's hidden partial upload of the file `path` (not the file itself).
    Discard { path: String },
    /// Creates a directory (and, with `parents`, the missing ones above it).
    Mkdir {
        path: String,
        #[serde(default = "default_true")]
        parents: bool,
        /// The source directory's permission bits, for a copy of a tree: the new directory (not
        /// the parents made on the way, nor one that exists) gets them without setuid, setgid or
        /// sticky, plus owner `rwx` so its files can be written, less the server's umask, so a
        /// private directory stays private. Without it, the server's default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<u32>,
    },
    /// Moves `path` to `to`, both inside the root.
    Rename {
        path: String,
        to: String,
        #[serde(default, skip_serializing_if = "is_false")]
        overwrite: bool,
    },
    /// Removes a file, symlink or empty directory; a full directory only with `recursive`.
    Remove {
        path: String,
        #[serde(default, skip_serializing_if = "is_false")]
        recursive: bool,
        /// With any of the `if_*` preconditions, only a regular file that still has that
        /// length, mtime (seconds) and digest is removed; otherwise `file_changed`. A move
        /// sends them for each source it removes, so a file changed since its copy stays.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        if_size: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        if_mtime: Option<i64>,
        /// Costs the server a read of the whole file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        if_digest: Option<Digest>,
    },
    /// Copies the regular file at `path` (symlinks followed inside the root, as `get` does) to
    /// `to` inside the same root, without its bytes crossing the connection: answered by
    /// [`CopyReply`] once the copy is verified and in place. One file per request, so a tree's
    /// copy accounts for every entry and reports progress as its files land.
    Copy {
        path: String,
        to: String,
        #[serde(default, skip_serializing_if = "is_false")]
        overwrite: bool,
    },
    /// Sets a file's or directory's modification time and/or permission bits (at least one),
    /// without sending its bytes: a sync fixes a time or a mode this way, a chmod dialog too.
    /// Answered by [`AttrsReply`]. A symlink at `path` is refused, never followed.
    Attrs {
        path: String,
        /// Seconds since the Unix epoch.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mtime: Option<i64>,
        /// Permission bits: at most [`ATTRS_MODE_BITS`] (`0o777` and sticky).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<u32>,
    },
}

/// The bits an `attrs` request may set: the permission bits and sticky; never setuid or
/// setgid, which would let a client hand out the server user's (or a group's) rights.
pub const ATTRS_MODE_BITS: u32 = 0o1777;

/// The `put` request: `size` bytes follow it, to be written at `offset` of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Put {
    pub path: String,
    /// Payload bytes after this header; the file ends up `offset + size` bytes long.
    pub size: u64,
    /// Resume point: the hidden partial must already hold at least this many bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: u64,
    /// Replace an existing file; without it an existing file gives `already_exists`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub overwrite: bool,
    /// The digest the whole file must have, when the client knows it up front.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// A [`PutTrailer`] header with the digest follows the payload: a client can hash while it
    /// sends instead of reading the file twice.
    #[serde(default, skip_serializing_if = "is_false")]
    pub trailer: bool,
    /// Modification time to give the file, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<i64>,
    /// The source's Unix permission bits, for a new file; a server keeps only the `0o777` bits
    /// less its umask, and an overwritten file keeps its own mode, so a private file is never
    /// widened. Absent (older clients), a new file gets `0o666` less the umask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

impl Request {
    /// How many payload bytes follow this request's header.
    pub fn payload_size(&self) -> u64 {
        match self {
            Request::Put(put) => put.size,
            _ => 0,
        }
    }

    /// The op's wire name, for logs.
    pub fn op(&self) -> &'static str {
        match self {
            Request::Hello { .. } => "hello",
            Request::Stat { .. } => "stat",
            Request::List { .. } => "list",
            Request::Walk { .. } => "walk",
            Request::Summary { .. } => "summary",
            Request::Digests { .. } => "digests",
            Request::Get { .. } => "get",
            Request::Put(_) => "put",
            Request::Partial { .. } => "partial",
            Request::Partials { .. } => "partials",
            Request::Discard { .. } => "discard",
            Request::Mkdir { .. } => "mkdir",
            Request::Rename { .. } => "rename",
            Request::Remove { .. } => "remove",
            Request::Attrs { .. } => "attrs",
            Request::Copy { .. } => "copy",
        }
    }
}

/// The header that follows a `put` payload when the request set `trailer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutTrailer {
    pub digest: Digest,
}

/// What an entry is, as `lstat` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// Sockets, fifos, devices: listed, never transferred.
    #[serde(other)]
    Other,
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The name in its directory; for `walk`, the path relative to the walked directory. In
    /// wire form: bytes that are not UTF-8, control characters and backslashes are escaped
    /// ([`crate::path::encode`]), so every name a POSIX filesystem holds is listed exactly.
    pub name: String,
    pub kind: Kind,
    /// Bytes, for files; what `lstat` says otherwise.
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// Unix permission bits.
    pub mode: u32,
    /// For a symlink whose target is inside the root: what it points to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Kind>,
    /// Set by `walk` on an entry it could not go into (an unreadable or too deep directory),
    /// so that a copy of the tree names what it could not copy instead of only counting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// Who owns the entry, for a listing's owner and group columns; absent from older servers
    /// (and on entries `walk` could not describe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// For a symlink: what it points to, as the link's text in the name escape; left out when
    /// that text leads out of the root (it would tell the client how the server is laid out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// An entry's owner: the numeric ids `lstat` gives, with the names the system has for them
/// (absent when it has none, or one too long to show), in the name escape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Entry {
    /// Whether the entry can be entered like a directory (a directory, or a link to one).
    pub fn is_dir_like(&self) -> bool {
        self.kind == Kind::Dir || self.link == Some(Kind::Dir)
    }
}

/// Reply to `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloReply {
    pub version: u32,
    /// The server's name and version, for display.
    pub server: String,
    pub read_only: bool,
    /// Lets a client learn whether the server runs on its own machine (see [`host_token`]);
    /// absent when the server cannot tell which kernel it runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<HostIdentity>,
    /// The logged-in user's home directory as a wire path under the served root, so a client
    /// can resolve a path written relative to it (`host:photos` over ssh). Only a `--stdio`
    /// server, which runs as that user, sends it; absent when the home is not under the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
}

/// What a server says about the machine it runs on, in a form only a client on that same
/// machine can match: a random salt and [`host_token`] of the salt and the kernel's boot id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostIdentity {
    /// Random per server process, so tokens cannot be linked across servers.
    pub salt: String,
    /// [`host_token`] of `salt` and the server's boot id.
    pub host: String,
}

/// Reply to `stat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatReply {
    pub entry: Entry,
    /// With `identity` in the request: [`file_token`] of the file the path leads to (links
    /// followed), when the server knows its boot id and the path resolves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Reply to `copy`: the copy's digest (read back from the new file and equal to the source's)
/// and its length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyReply {
    pub digest: Digest,
    pub file_size: u64,
}

/// Reply to `attrs`: the entry as it is after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttrsReply {
    pub entry: Entry,
}

/// The host part of the same-machine check: a keyed hash of the kernel's boot id (from
/// `/proc/sys/kernel/random/boot_id`). Equal tokens under one salt mean one running kernel,
/// hence one set of `(dev, ino)` numbers. The boot id never crosses the wire: a client on
/// another machine cannot reverse the token, nor brute-force file tokens without it.
pub fn host_token(salt: &str, boot_id: &str) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("ferry 1 host identity");
    hash_field(&mut hasher, salt.as_bytes());
    hash_field(&mut hasher, boot_id.trim().as_bytes());
    hasher.finalize().to_hex().to_string()
}

/// One file's identity under a salt: a keyed hash of the boot id with the file's device and
/// inode numbers, so the raw numbers never leave the server.
pub fn file_token(salt: &str, boot_id: &str, dev: u64, ino: u64) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("ferry 1 file identity");
    hash_field(&mut hasher, salt.as_bytes());
    hash_field(&mut hasher, boot_id.trim().as_bytes());
    hasher.update(&dev.to_le_bytes());
    hasher.update(&ino.to_le_bytes());
    hasher.finalize().to_hex().to_string()
}

/// A length-prefixed field, so two fields can never run into each other.
fn hash_field(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// One batch of a `list` or `walk` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListBatch {
    pub entries: Vec<Entry>,
    /// More batches follow; the last batch says `false`.
    pub more: bool,
    /// On the last batch of a `walk`: entries left out (directories too deep or unreadable).
    /// Every name is listed since names are escaped; older servers also counted here names
    /// they could not send.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: u64,
}

/// The most `paths` one `digests` request may name; more gives `too_large`. The header limit
/// alone would allow some 16,000 one-letter names; a client with more sends several requests
/// (or asks for the whole subtree).
pub const MAX_DIGEST_PATHS: usize = 4096;

/// One entry of a `digests` answer: the entry as `walk` describes it, and for a regular file
/// the BLAKE3 digest of its bytes. A file that could not be hashed has no `digest` and an
/// `error` saying why; symlinks, directories and special files have neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestEntry {
    #[serde(flatten)]
    pub entry: Entry,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
}

/// One batch of a `digests` answer; built by [`EntryBatcher`] like a `walk`'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestBatch {
    pub entries: Vec<DigestEntry>,
    /// More batches follow; the last batch says `false`.
    pub more: bool,
    /// On the last batch: entries `walk` would count as skipped, and each entry with an `error`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: u64,
}

/// Reply to `summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryReply {
    pub files: u64,
    pub dirs: u64,
    /// Total bytes of the files.
    pub bytes: u64,
    /// Entries that a transfer would skip (symlinks, special files, directories too deep).
    #[serde(default)]
    pub skipped: u64,
}

/// First reply to `get`: `size` payload bytes follow, then a [`GetTrailer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetReply {
    pub size: u64,
    /// The whole file's length; `offset + size`.
    pub file_size: u64,
    pub offset: u64,
    pub mtime: i64,
    pub mode: u32,
}

/// Second reply to `get`, after its payload: the digest of the whole file, `offset` or not;
/// for a ranged `get` (with `length`), the digest of the bytes sent.
/// If the file changed while it was sent, this is instead an error with code `file_changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetTrailer {
    pub digest: Digest,
}

/// Reply to `put`, once the file is in place under its final name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutReply {
    /// The digest the server computed over the whole file.
    pub digest: Digest,
    pub file_size: u64,
}

/// Reply to `partial`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialReply {
    /// Bytes the hidden partial holds; 0 when there is none.
    pub length: u64,
    /// Digest of those bytes, so a client can check they match its own before resuming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
}

/// Reply to `partials`: at most [`MAX_PARTIALS_LISTED`] of them, in no particular order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialsReply {
    pub partials: Vec<PartialEntry>,
    /// More of the caller's partials are in the directory than were listed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub more: bool,
    /// Partials of the caller whose target's name could not be read back (a long name on a
    /// filesystem without extended attributes); `discard` still removes them by that name.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unnamed: u64,
}

/// The most partials one `partials` reply lists: names of up to 255 bytes, escaped, keep the
/// line under [`MAX_HEADER_LEN`].
pub const MAX_PARTIALS_LISTED: usize = 64;

/// One hidden partial upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialEntry {
    /// The name of the file it will become, in the listed directory.
    pub name: String,
    /// Bytes it holds.
    pub size: u64,
    /// When it was last written, in seconds since the Unix epoch.
    pub mtime: i64,
}

/// Reply with nothing to say but success (`mkdir`, `rename`, `remove`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {}

/// A header could not be encoded within the protocol's limits.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("header of {0} bytes is over the protocol's limit")]
    TooLong(usize),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// A request that could not be understood, with what is needed to carry on after it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    pub message: String,
    /// Payload bytes the header announced, as far as could be read from it: the server skips
    /// them so that the next header is found where the client put it.
    pub payload: u64,
    /// The header said `"trailer": true`: a trailer line follows the payload and is skipped
    /// with it, or it would be read as the next request and every later answer would be off
    /// by one (a newer client's `put` with a field this server does not know did exactly that).
    pub trailer: bool,
}

/// A response header that is not a response.
#[derive(Debug, thiserror::Error)]
#[error("malformed response header: {0}")]
pub struct ResponseError(#[from] serde_json::Error);

fn finish_line(mut line: Vec<u8>) -> Result<Vec<u8>, EncodeError> {
    line.push(b'\n');
    if line.len() > MAX_HEADER_LEN {
        return Err(EncodeError::TooLong(line.len()));
    }
    Ok(line)
}

/// Encodes a request as a header line, `\n` included.
pub fn encode_request(request: &Request) -> Result<Vec<u8>, EncodeError> {
    finish_line(serde_json::to_vec(request)?)
}

/// Encodes any header (a trailer, say) as a line, `\n` included.
pub fn encode_header<T: Serialize>(header: &T) -> Result<Vec<u8>, EncodeError> {
    finish_line(serde_json::to_vec(header)?)
}

/// Encodes a successful response: `{"ok":true,` then the reply's own fields.
pub fn encode_ok<T: Serialize>(reply: &T) -> Result<Vec<u8>, EncodeError> {
    let body = serde_json::to_vec(reply)?;
    let mut line = Vec::with_capacity(body.len() + 12);
    line.extend_from_slice(b"{\"ok\":true");
    match body.as_slice() {
        [b'{', b'}'] => line.push(b'}'),
        [b'{', rest @ ..] => {
            line.push(b',');
            line.extend_from_slice(rest);
        }
        // Replies are always structs; anything else is a programming error worth a clear message.
        _ => {
            return Err(EncodeError::Json(serde::ser::Error::custom(
                "a reply must serialize to a JSON object",
            )));
        }
    }
    finish_line(line)
}

/// Encodes a failed response. Never fails: an over-long message is shortened.
pub fn encode_err(code: ErrorCode, message: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct Failure<'a> {
        ok: bool,
        error: ErrorBodyRef<'a>,
    }
    #[derive(Serialize)]
    struct ErrorBodyRef<'a> {
        code: ErrorCode,
        message: &'a str,
    }
    const MAX_MESSAGE: usize = 1024;
    let mut cut = message.len().min(MAX_MESSAGE);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    let failure = Failure {
        ok: false,
        error: ErrorBodyRef {
            code,
            message: &message[..cut],
        },
    };
    let mut line = serde_json::to_vec(&failure).unwrap_or_else(|_| {
        br#"{"ok":false,"error":{"code":"io","message":"unencodable error"}}"#.to_vec()
    });
    line.push(b'\n');
    line
}

/// Whether a header line holds a JSON object, the only thing a header may be. serde reads a
/// struct from an array too, field by field in order, so without this check
/// `["remove","docs",true]` would be a recursive `remove`.
fn is_object(line: &[u8]) -> bool {
    line.iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .is_some_and(|&b| b == b'{')
}

/// Decodes a request header line (without its `\n`).
pub fn decode_request(line: &[u8]) -> Result<Request, RequestError> {
    if !is_object(line) {
        return Err(RequestError {
            message: "malformed request: a header must be a JSON object".to_owned(),
            payload: 0,
            trailer: false,
        });
    }
    serde_json::from_slice(line).map_err(|err| {
        /// Just enough of a header to skip its payload when the rest of it is wrong.
        #[derive(Deserialize)]
        struct Announced {
            #[serde(default)]
            size: u64,
            #[serde(default)]
            trailer: serde_json::Value,
        }
        let (payload, trailer) = serde_json::from_slice::<Announced>(line)
            .map_or((0, false), |a| {
                (a.size, a.trailer == serde_json::Value::Bool(true))
            });
        RequestError {
            message: format!("malformed request: {err}"),
            payload,
            trailer,
        }
    })
}

/// Decodes a response header line into the expected reply, or the error the server sent.
pub fn decode_reply<T: DeserializeOwned>(
    line: &[u8],
) -> Result<Result<T, ErrorBody>, ResponseError> {
    #[derive(Deserialize)]
    struct Status {
        ok: bool,
        #[serde(default)]
        error: Option<ErrorBody>,
    }
    if !is_object(line) {
        return Err(ResponseError(serde::de::Error::custom(
            "a response header must be a JSON object",
        )));
    }
    let status: Status = serde_json::from_slice(line)?;
    if status.ok {
        return Ok(Ok(serde_json::from_slice(line)?));
    }
    Ok(Err(status.error.unwrap_or_else(|| {
        ErrorBody::new(ErrorCode::Unknown, "the server failed without saying why")
    })))
}

/// Packs entries into [`ListBatch`] lines that each stay under the header limit, without
/// holding more than one batch in memory.
#[derive(Debug)]
pub struct EntryBatcher {
    line: Vec<u8>,
    count: usize,
}

const BATCH_PREFIX: &[u8] = b"{\"ok\":true,\"entries\":[";
/// Room kept for the closing `],"more":false,"skipped":N}\n`.
const BATCH_SUFFIX_ROOM: usize = 64;

impl Default for EntryBatcher {
    fn default() -> Self {
        Self::new()
    }
}

impl EntryBatcher {
    pub fn new() -> Self {
        let mut line = Vec::with_capacity(MAX_HEADER_LEN);
        line.extend_from_slice(BATCH_PREFIX);
        Self { line, count: 0 }
    }

    /// Adds an entry (an [`Entry`], or a [`DigestEntry`]). When it does not fit in the current
    /// batch, the batch is closed and returned as a full line (with `more: true`) and the entry
    /// starts the next one.
    pub fn push<T: Serialize>(&mut self, entry: &T) -> Result<Option<Vec<u8>>, EncodeError> {
        let encoded = serde_json::to_vec(entry)?;
        if BATCH_PREFIX.len() + encoded.len() + BATCH_SUFFIX_ROOM > MAX_HEADER_LEN {
            return Err(EncodeError::TooLong(encoded.len()));
        }
        let mut full = None;
        if self.line.len() + 1 + encoded.len() + BATCH_SUFFIX_ROOM > MAX_HEADER_LEN {
            full = Some(self.close(true, 0));
        }
        if self.count > 0 {
            self.line.push(b',');
        }
        self.line.extend_from_slice(&encoded);
        self.count += 1;
        Ok(full)
    }

    /// Closes the last batch (with `more: false`), which may be empty.
    pub fn finish(mut self, skipped: u64) -> Vec<u8> {
        self.close(false, skipped)
    }

    fn close(&mut self, more: bool, skipped: u64) -> Vec<u8> {
        let mut line = std::mem::replace(&mut self.line, Vec::with_capacity(MAX_HEADER_LEN));
        self.line.extend_from_slice(BATCH_PREFIX);
        self.count = 0;
        line.extend_from_slice(if more {
            b"],\"more\":true"
        } else {
            b"],\"more\":false"
        });
        if skipped > 0 {
            line.extend_from_slice(format!(",\"skipped\":{skipped}").as_bytes());
        }
        line.extend_from_slice(b"}\n");
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> &[u8] {
        s.as_bytes()
    }

    #[test]
    fn decodes_the_documented_examples() {
        assert_eq!(
            decode_request(line(r#"{"op":"hello","version":1}"#)),
            Ok(Request::Hello {
                version: 1,
                token: None,
                user: None,
                password: None,
            })
        );
        assert_eq!(
            decode_request(line(r#"{"op":"get","path":"docs/a.txt","offset":0}"#)),
            Ok(Request::Get {
                path: "docs/a.txt".into(),
                offset: 0,
                length: None,
            })
        );
        assert_eq!(
            decode_request(line(r#"{"op":"get","path":"docs/a.txt"}"#)),
            Ok(Request::Get {
                path: "docs/a.txt".into(),
                offset: 0,
                length: None,
            })
        );
        let put = decode_request(line(
            r#"{"op":"put","path":"docs/a.txt","size":5,"overwrite":false}"#,
        ))
        .unwrap();
        assert_eq!(put.payload_size(), 5);
        assert_eq!(
            decode_request(line(r#"{"op":"mkdir","path":"a/b"}"#)),
            Ok(Request::Mkdir {
                path: "a/b".into(),
                parents: true,
                mode: None,
            })
        );
    }

    #[test]
    fn requests_round_trip() {
        let requests = vec![
            Request::Hello {
                version: 1,
                token: Some(Token("s3cret".into())),
                user: None,
                password: None,
            },
            Request::Hello {
                version: 1,
                token: None,
                user: Some("ann".into()),
                password: Some(Token("pw".into())),
            },
            Request::Stat {
                path: "a".into(),
                identity: false,
            },
            Request::List { path: "".into() },
            Request::Walk { path: "x".into() },
            Request::Summary { path: "x".into() },
            Request::Digests {
                path: "x".into(),
                paths: None,
            },
            Request::Digests {
                path: "".into(),
                paths: Some(vec!["a".into(), "b/c\\xff".into()]),
            },
            Request::Get {
                path: "a".into(),
                offset: 7,
                length: None,
            },
            Request::Get {
                path: "a".into(),
                offset: 0,
                length: Some(65_536),
            },
            Request::Put(Put {
                path: "a b/\"c\"".into(),
                size: 3,
                offset: 1,
                overwrite: true,
                digest: Some(Digest::of(b"x")),
                trailer: false,
                mtime: Some(1_700_000_000),
                mode: Some(0o755),
            }),
            Request::Partial { path: "a".into() },
            Request::Partials { path: "d".into() },
            Request::Discard { path: "d/a".into() },
            Request::Mkdir {
                path: "d".into(),
                parents: false,
                mode: None,
            },
            Request::Mkdir {
                path: "d/e".into(),
                parents: true,
                mode: Some(0o700),
            },
            Request::Rename {
                path: "a".into(),
                to: "b".into(),
                overwrite: true,
            },
            Request::Remove {
                path: "d".into(),
                recursive: true,
                if_size: None,
                if_mtime: None,
                if_digest: None,
            },
            Request::Remove {
                path: "d/a".into(),
                recursive: false,
                if_size: Some(3),
                if_mtime: Some(-1),
                if_digest: Some(Digest::from(blake3::hash(b"abc"))),
            },
            Request::Attrs {
                path: "d/a".into(),
                mtime: Some(1_764_300_000),
                mode: Some(0o1750),
            },
            Request::Attrs {
                path: "d".into(),
                mtime: None,
                mode: Some(0o640),
            },
            Request::Copy {
                path: "d/a".into(),
                to: "e/a".into(),
                overwrite: true,
            },
        ];
        for request in requests {
            let encoded = encode_request(&request).unwrap();
            assert_eq!(encoded.last(), Some(&b'\n'));
            assert_eq!(encoded.iter().filter(|&&b| b == b'\n').count(), 1);
            let decoded = decode_request(&encoded[..encoded.len() - 1]).unwrap();
            assert_eq!(decoded, request);
        }
    }

    #[test]
    fn refuses_unknown_ops_fields_and_types() {
        for bad in [
            r#"{"op":"format_disk"}"#,
            r#"{"path":"a"}"#,
            r#"{"op":"stat","path":"a","extra":1}"#,
            r#"{"op":"stat","path":5}"#,
            r#"{"op":"get","path":"a","offset":-1}"#,
            r#"{"op":"get","path":"a","offset":18446744073709551616}"#,
            r#"{"op":"stat","path":"a","path":"b"}"#,
            r#"{"op":"put","path":"a","size":3,"sizee":1}"#,
            r#"not json"#,
            r#"[]"#,
            r#""#,
        ] {
            let err = decode_request(line(bad)).unwrap_err();
            assert!(err.message.starts_with("malformed request"), "{bad}");
        }
    }

    #[test]
    fn a_put_without_mode_is_what_older_clients_send() {
        let Request::Put(put) =
            decode_request(line(r#"{"op":"put","path":"a","size":1}"#)).unwrap()
        else {
            panic!("not a put");
        };
        assert_eq!(put.mode, None);
        let encoded = encode_request(&Request::Put(put)).unwrap();
        assert!(!String::from_utf8_lossy(&encoded).contains("mode"));
        let Request::Put(put) =
            decode_request(line(r#"{"op":"put","path":"a","size":1,"mode":493}"#)).unwrap()
        else {
            panic!("not a put");
        };
        assert_eq!(put.mode, Some(0o755));
    }

    #[test]
    fn a_mkdir_without_mode_is_what_older_clients_send() {
        let plain = Request::Mkdir {
            path: "a".into(),
            parents: true,
            mode: None,
        };
        let encoded = encode_request(&plain).unwrap();
        assert_eq!(
            encoded,
            b"{\"op\":\"mkdir\",\"path\":\"a\",\"parents\":true}\n"
        );
        assert_eq!(
            decode_request(line(r#"{"op":"mkdir","path":"a","mode":448}"#)),
            Ok(Request::Mkdir {
                path: "a".into(),
                parents: true,
                mode: Some(0o700),
            })
        );
    }

    #[test]
    fn arrays_are_never_read_as_headers() {
        // serde would read these field by field; found by the hostile-input suite.
        for bad in [
            r#"["stat","a"]"#,
            r#"["remove","docs",true]"#,
            r#" ["put",{"path":"a","size":3}]"#,
            r#"[5]"#,
        ] {
            let err = decode_request(line(bad)).unwrap_err();
            assert_eq!(err.payload, 0, "{bad}");
        }
        assert!(decode_reply::<Done>(b"[true]").is_err());
        assert!(decode_reply::<StatReply>(br#"[true,{"name":"a"}]"#).is_err());
        assert!(decode_request(line(" \t{\"op\":\"stat\",\"path\":\"a\"}")).is_ok());
    }

    #[test]
    fn a_bad_request_still_says_how_much_payload_to_skip() {
        let err =
            decode_request(line(r#"{"op":"put","path":"a","size":3,"bogus":true}"#)).unwrap_err();
        assert_eq!(err.payload, 3);
        let err = decode_request(line(r#"{"op":"upload","size":10}"#)).unwrap_err();
        assert_eq!(err.payload, 10);
        let err = decode_request(line(r#"{"op":"put","size":"ten"}"#)).unwrap_err();
        assert_eq!(err.payload, 0);
        assert!(!err.trailer);
    }

    #[test]
    fn a_bad_request_says_whether_a_trailer_follows_its_payload() {
        let err = decode_request(line(
            r#"{"op":"put","path":"a","size":3,"trailer":true,"future":1}"#,
        ))
        .unwrap_err();
        assert_eq!((err.payload, err.trailer), (3, true));
        for no_trailer in [
            r#"{"op":"put","path":"a","size":3,"future":1}"#,
            r#"{"op":"put","path":"a","size":3,"trailer":false,"future":1}"#,
            r#"{"op":"put","path":"a","size":3,"trailer":"yes","future":1}"#,
        ] {
            let err = decode_request(line(no_trailer)).unwrap_err();
            assert_eq!((err.payload, err.trailer), (3, false), "{no_trailer}");
        }
    }

    #[test]
    fn ok_replies_carry_ok_true_and_decode_back() {
        let reply = PutReply {
            digest: Digest::of(b"abc"),
            file_size: 3,
        };
        let encoded = encode_ok(&reply).unwrap();
        let text = std::str::from_utf8(&encoded).unwrap();
        assert!(
            text.starts_with("{\"ok\":true,\"digest\":\"blake3:"),
            "{text}"
        );
        let decoded: PutReply = decode_reply(&encoded[..encoded.len() - 1])
            .unwrap()
            .unwrap();
        assert_eq!(decoded, reply);

        assert_eq!(encode_ok(&Done {}).unwrap(), b"{\"ok\":true}\n");
        let done: Done = decode_reply(b"{\"ok\":true}").unwrap().unwrap();
        assert_eq!(done, Done {});
    }

    #[test]
    fn errors_decode_into_error_bodies() {
        let encoded = encode_err(ErrorCode::NotFound, "no such file: \"a\nb\"");
        assert_eq!(encoded.iter().filter(|&&b| b == b'\n').count(), 1);
        let err = decode_reply::<StatReply>(&encoded[..encoded.len() - 1])
            .unwrap()
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::NotFound);
        assert_eq!(err.message, "no such file: \"a\nb\"");

        let long = "é".repeat(2000);
        let encoded = encode_err(ErrorCode::Io, &long);
        assert!(encoded.len() < 1200);
    }

    #[test]
    fn batches_stay_under_the_header_limit_and_lose_nothing() {
        let mut batcher = EntryBatcher::new();
        let mut lines = Vec::new();
        let total = 5000;
        for i in 0..total {
            let entry = Entry {
                name: format!("file \"{i}\" ünïcode"),
                kind: Kind::File,
                size: i,
                mtime: 1_700_000_000,
                mode: 0o644,
                link: None,
                error: None,
                owner: None,
                target: None,
            };
            if let Some(full) = batcher.push(&entry).unwrap() {
                lines.push(full);
            }
        }
        lines.push(batcher.finish(2));
        assert!(lines.len() > 1);
        let mut seen = 0;
        for (i, line) in lines.iter().enumerate() {
            assert!(line.len() <= MAX_HEADER_LEN);
            assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
            let batch: ListBatch = decode_reply(&line[..line.len() - 1]).unwrap().unwrap();
            let last = i == lines.len() - 1;
            assert_eq!(batch.more, !last);
            assert_eq!(batch.skipped, if last { 2 } else { 0 });
            for entry in batch.entries {
                assert_eq!(entry.size, seen);
                seen += 1;
            }
        }
        assert_eq!(seen, total);
    }

    #[test]
    fn digests_requests_and_batches_encode_as_documented() {
        assert_eq!(
            encode_request(&Request::Digests {
                path: "photos".into(),
                paths: None,
            })
            .unwrap(),
            b"{\"op\":\"digests\",\"path\":\"photos\"}\n"
        );
        assert_eq!(
            decode_request(line(r#"{"op":"digests","path":"","paths":["a","d/b"]}"#)),
            Ok(Request::Digests {
                path: "".into(),
                paths: Some(vec!["a".into(), "d/b".into()]),
            })
        );
        assert!(decode_request(line(r#"{"op":"digests","path":"","paths":"a"}"#)).is_err());
        assert!(decode_request(line(r#"{"op":"digests","path":"","depth":1}"#)).is_err());

        let file = DigestEntry {
            entry: Entry {
                name: "2024/a \\xff.jpg".into(),
                kind: Kind::File,
                size: 3,
                mtime: 1_764_300_000,
                mode: 0o644,
                link: None,
                error: None,
                owner: None,
                target: None,
            },
            digest: Some(Digest::of(b"abc")),
        };
        let unreadable = DigestEntry {
            entry: Entry {
                name: "secret".into(),
                error: Some(ErrorBody::new(ErrorCode::Forbidden, "Permission denied")),
                owner: None,
                target: None,
                ..file.entry.clone()
            },
            digest: None,
        };
        let link = DigestEntry {
            entry: Entry {
                name: "latest".into(),
                kind: Kind::Symlink,
                link: Some(Kind::Dir),
                ..file.entry.clone()
            },
            digest: None,
        };
        let mut batcher = EntryBatcher::new();
        for entry in [&file, &unreadable, &link] {
            assert!(batcher.push(entry).unwrap().is_none());
        }
        let encoded = batcher.finish(1);
        let text = std::str::from_utf8(&encoded).unwrap();
        // The digest sits beside the entry's own fields, not in an object of its own.
        assert!(
            text.starts_with(&format!(
                r#"{{"ok":true,"entries":[{{"name":"2024/a \\xff.jpg","kind":"file","size":3,"mtime":1764300000,"mode":420,"digest":"{}"}}"#,
                Digest::of(b"abc")
            )),
            "{text}"
        );
        let batch: DigestBatch = decode_reply(&encoded[..encoded.len() - 1])
            .unwrap()
            .unwrap();
        assert_eq!(
            batch,
            DigestBatch {
                entries: vec![file, unreadable, link],
                more: false,
                skipped: 1,
            }
        );
        // A walk's batch is a digests batch without digests, and back.
        let walked: ListBatch = decode_reply(&encoded[..encoded.len() - 1])
            .unwrap()
            .unwrap();
        assert_eq!(walked.entries.len(), 3);
    }

    #[test]
    fn an_empty_listing_is_one_batch() {
        let line = EntryBatcher::new().finish(0);
        assert_eq!(line, b"{\"ok\":true,\"entries\":[],\"more\":false}\n");
    }

    #[test]
    fn identity_tokens_hide_their_inputs_and_depend_on_every_one() {
        let boot = "0b2f6c1e-8f7a-4a47-9d0e-3c1f2a5b6c7d";
        let host = host_token("00ff", boot);
        assert_eq!(host.len(), 64);
        assert_eq!(host, host_token("00ff", &format!("{boot}\n")), "trimmed");
        assert_ne!(host, host_token("00fe", boot), "salted");
        let file = file_token("00ff", boot, 2049, 131_074);
        assert!(!file.contains("131074") && !host.contains(boot));
        for other in [
            file_token("00fe", boot, 2049, 131_074),
            file_token("00ff", "another boot", 2049, 131_074),
            file_token("00ff", boot, 2050, 131_074),
            file_token("00ff", boot, 2049, 131_075),
            // Fields never run into each other.
            file_token("00f", &format!("f{boot}"), 2049, 131_074),
        ] {
            assert_ne!(file, other);
        }
        let request: Request =
            serde_json::from_str(r#"{"op":"stat","path":"a","identity":true}"#).unwrap();
        assert_eq!(
            request,
            Request::Stat {
                path: "a".into(),
                identity: true
            }
        );
        let plain = encode_request(&Request::Stat {
            path: "a".into(),
            identity: false,
        })
        .unwrap();
        assert_eq!(plain, b"{\"op\":\"stat\",\"path\":\"a\"}\n");
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let request = Request::Hello {
            version: 1,
            token: Some(Token("hunter2".into())),
            user: Some("ann".into()),
            password: Some(Token("correct horse".into())),
        };
        assert!(!format!("{request:?}").contains("hunter2"));
        assert!(!format!("{request:?}").contains("correct horse"));
    }
}
