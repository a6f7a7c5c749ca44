//! The users file: named accounts, each with an argon2id password hash, its own root and a
//! read-only or read-write flag. Loaded and checked once at start; `hash-password` writes it.
//!
//! One account per line, `NAME:ACCESS:HASH:ROOT`, where ACCESS is `rw` or `ro`, HASH a PHC
//! string (`$argon2id$v=19$m=19456,t=2,p=1$...`) and ROOT an absolute directory (last, so it
//! may hold `:`). Blank lines and lines starting with `#` are ignored. A line format keeps each
//! account greppable, every error pointed at by a line number, and a rewrite of one account a
//! one-line change.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use argon2::{Argon2, PasswordHash, PasswordHasher};
use tokio::sync::Semaphore;

use crate::root::Root;

/// Longest token, user name or password a `hello` may carry; longer ones are refused before
/// anything is hashed, so a megabyte "password" costs the server nothing.
pub const MAX_CREDENTIAL_LEN: usize = 1024;
/// Longest user name in the file.
const MAX_NAME_LEN: usize = 64;

/// Whether `name` may name an account: 1 to 64 ASCII letters, digits, `.`, `_` or `-`. Kept
/// narrow so a name is safe in a URL, a log line and the file's `:`-separated fields.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Why a users file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsersError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A line breaks the format, or names a root that is not a directory.
    #[error("{path}:{line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// The file holds no account at all, so no one could ever log in.
    #[error("{path}: no users (add one with `ferry-server hash-password --users FILE`)")]
    Empty { path: PathBuf },
    /// Hashing a new password failed (no randomness for the salt, say).
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// One account of the file.
#[derive(Clone)]
pub struct User {
    /// The PHC string of the argon2id hash.
    hash: String,
    /// An absolute directory, checked at load.
    pub root: PathBuf,
    pub read_only: bool,
}

impl fmt::Debug for User {
    // The hash is not a secret in the usual sense, but it is what a guesser would work on.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("root", &self.root)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

/// The accounts of a users file, checked: every hash is argon2id and every root a directory.
#[derive(Debug, Clone)]
pub struct Users {
    path: PathBuf,
    users: BTreeMap<String, User>,
}

impl Users {
    /// Reads and checks `path`. A malformed line fails with its number; a file that others
    /// than its owner may read is logged as a warning (it holds password hashes).
    pub fn load(path: &Path) -> Result<Self, UsersError> {
        let text = std::fs::read_to_string(path).map_err(|source| UsersError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        warn_if_exposed(path);
        let users = parse(path, &text)?;
        for (name, user) in &users {
            if !user.root.is_dir() {
                let line = line_of(&text, name);
                return Err(UsersError::Line {
                    path: path.to_path_buf(),
                    line,
                    message: format!("root {} is not a directory", user.root.display()),
                });
            }
        }
        if users.is_empty() {
            return Err(UsersError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            users,
        })
    }

    /// The file the accounts came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Account names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// One account.
    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }
}

/// The line that defines `name`, for an error found after parsing.
fn line_of(text: &str, name: &str) -> usize {
    let prefix = format!("{name}:");
    text.lines()
        .position(|line| line.trim_start().starts_with(&prefix))
        .map_or(0, |index| index + 1)
}

fn parse(path: &Path, text: &str) -> Result<BTreeMap<String, User>, UsersError> {
    let mut users = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |message: String| UsersError::Line {
            path: path.to_path_buf(),
            line: index + 1,
            message,
        };
        let mut fields = line.splitn(4, ':');
        let (Some(name), Some(access), Some(hash), Some(root)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(fail("expected NAME:ACCESS:HASH:ROOT".into()));
        };
        if !valid_name(name) {
            return Err(fail(format!(
                "user name {name:?} must be 1 to {MAX_NAME_LEN} letters, digits, '.', '_' or '-'"
            )));
        }
        let read_only = match access {
            "ro" => true,
            "rw" => false,
            other => return Err(fail(format!("access must be rw or ro, not {other:?}"))),
        };
        check_hash(hash).map_err(fail)?;
        let root = PathBuf::from(root);
        if !root.is_absolute() {
            return Err(fail(format!(
                "root {} must be an absolute path",
                root.display()
            )));
        }
        let user = User {
            hash: hash.to_owned(),
            root,
            read_only,
        };
        if users.insert(name.to_owned(), user).is_some() {
            return Err(fail(format!("user {name} is defined twice")));
        }
    }
    Ok(users)
}

/// Only argon2id hashes are accepted: a weaker variant in the file is a mistake worth a start
/// failure rather than a quiet downgrade.
fn check_hash(hash: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(hash).map_err(|err| format!("bad password hash: {err}"))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "password hash must be argon2id, not {}",
            parsed.algorithm
        ));
    }
    argon2::Params::try_from(&parsed).map_err(|err| format!("bad argon2 parameters: {err}"))?;
    Ok(())
}

#[cfg(unix)]
fn warn_if_exposed(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "the users file is readable by others than its owner; chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_exposed(_path: &Path) {}

/// Hashes `password` with argon2id at the crate's defaults (19 MiB of memory, 2 passes, 1
/// lane: OWASP's recommended minimum, about 30 ms here) and a random 16-byte salt.
pub fn hash_password(password: &str) -> Result<String, UsersError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| UsersError::Hash(err.to_string()))
}

/// Adds the account `name` to the users file at `path`, or replaces its line, keeping every
/// other line (comments included) as it was. The new file is written beside the old one with
/// mode 0600 and renamed over it, so a crash leaves the old file or the new, never half of one.
pub fn upsert(
    path: &Path,
    name: &str,
    hash: &str,
    root: &Path,
    read_only: bool,
) -> Result<(), UsersError> {
    let io_err = |source| UsersError::Io {
        path: path.to_path_buf(),
        source,
    };
    let fail = |message: String| UsersError::Line {
        path: path.to_path_buf(),
        line: 0,
        message,
    };
    if !valid_name(name) {
        return Err(fail(format!(
            "user name {name:?} must be 1 to {MAX_NAME_LEN} letters, digits, '.', '_' or '-'"
        )));
    }
    if root.to_str().is_none_or(|text| text.contains('\n')) {
        return Err(fail(format!(
            "root {} must be valid UTF-8 on one line",
            root.display()
        )));
    }
    let old = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => String::new(),
        Err(err) => return Err(io_err(err)),
    };
    // The rest of the file must already be valid: a rewrite never launders a broken file.
    parse(path, &old)?;
    let entry = format!(
        "{name}:{}:{hash}:{}",
        if read_only { "ro" } else { "rw" },
        root.display()
    );
    let prefix = format!("{name}:");
    let mut replaced = false;
    let mut lines: Vec<String> = Vec::new();
    if old.is_empty() {
        lines.push("# ferry users: NAME:ACCESS:HASH:ROOT (ACCESS is rw or ro)".into());
    }
    for line in old.lines() {
        if line.trim_start().starts_with(&prefix) {
            lines.push(entry.clone());
            replaced = true;
        } else {
            lines.push(line.to_owned());
        }
    }
    if !replaced {
        lines.push(entry);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    // Whatever fails (a full disk, say), no temporary file is left beside the users file.
    ferry_localfs::replace(path, text.as_bytes(), None).map_err(io_err)
}

/// The accounts as a running server uses them: roots open, hashes ready to verify.
#[derive(Debug)]
pub(crate) struct Accounts {
    accounts: BTreeMap<String, Account>,
    /// Verified against when the user does not exist, so that answer takes as long as a wrong
    /// password and does not reveal which names are accounts.
    dummy_hash: String,
    /// argon2 takes 19 MiB per verification: a bound on how many run at once bounds memory
    /// however many clients try to log in together.
    hashing: Arc<Semaphore>,
    /// One permit: attempts from addresses that have failed logins (see [`crate::logins`])
    /// hash one at a time, so however many guess at once, they hold at most one of `hashing`'s
    /// permits and the other logins never queue behind more than one of their hashes.
    suspects: Arc<Semaphore>,
    /// argon2's blocks for the verifications `hashing` lets run at once, kept and reused:
    /// freed after each hash, they stayed resident in whichever allocator arena the blocking
    /// thread had used, so failed logins grew the server by one hash's memory per arena
    /// (400 MiB on 2 cores) and it kept it.
    memory: Arc<Mutex<Vec<Vec<argon2::Block>>>>,
}

/// One account, its root open.
#[derive(Debug)]
pub(crate) struct Account {
    hash: String,
    pub root: Arc<Root>,
    pub read_only: bool,
}

impl Accounts {
    /// Opens every account's root with `open`, the way the server opens its own.
    pub fn open(
        users: &Users,
        open: impl Fn(&Path) -> io::Result<Root>,
    ) -> Result<Self, crate::error::ServerError> {
        let mut accounts = BTreeMap::new();
        for (name, user) in &users.users {
            let root = open(&user.root).map_err(|source| crate::error::ServerError::OpenRoot {
                path: user.root.clone(),
                source,
            })?;
            accounts.insert(
                name.clone(),
                Account {
                    hash: user.hash.clone(),
                    root: Arc::new(root),
                    read_only: user.read_only,
                },
            );
        }
        let mut random = [0u8; 32];
        getrandom::fill(&mut random)
            .map_err(|err| crate::error::ServerError::Users(err.to_string()))?;
        let dummy = ferry_protocol::digest::hex(&random);
        // With the parameters of the file's first account, so a file written by hand with other
        // costs still answers an unknown name as slowly as a known one.
        let params = users
            .users
            .values()
            .next()
            .and_then(|user| PasswordHash::new(&user.hash).ok())
            .and_then(|hash| argon2::Params::try_from(&hash).ok())
            .unwrap_or_default();
        let dummy_hash = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(dummy.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| crate::error::ServerError::Users(err.to_string()))?;
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            accounts,
            dummy_hash,
            hashing: Arc::new(Semaphore::new(parallel.clamp(2, 8))),
            suspects: Arc::new(Semaphore::new(1)),
            memory: Arc::default(),
        })
    }

    /// Every account's root, for work that covers all served trees (the partial sweep).
    pub fn roots(&self) -> impl Iterator<Item = &Arc<Root>> {
        self.accounts.values().map(|account| &account.root)
    }

    /// The account `name` if `password` is its password. The hash runs on the blocking pool
    /// (tens of milliseconds of CPU); an unknown name is hashed too, against the dummy. A
    /// `suspect` attempt (from an address that has failed) first waits for the one permit such
    /// attempts share.
    pub async fn verify(&self, name: &str, password: &str, suspect: bool) -> Option<&Account> {
        let account = self.accounts.get(name);
        let hash = account.map_or_else(|| self.dummy_hash.clone(), |a| a.hash.clone());
        let password = password.to_owned();
        let suspect = if suspect {
            Some(Arc::clone(&self.suspects).acquire_owned().await.ok()?)
        } else {
            None
        };
        let permit = Arc::clone(&self.hashing).acquire_owned().await.ok()?;
        let memory = Arc::clone(&self.memory);
        // Both permits go with the hash: a connection closed meanwhile does not stop it.
        let verified = tokio::task::spawn_blocking(move || {
            let _permits = (permit, suspect);
            // One set of blocks per permit at most, since each is taken under one.
            let mut blocks = memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
                .unwrap_or_default();
            let verified = PasswordHash::new(&hash)
                .is_ok_and(|parsed| verify_in(&parsed, password.as_bytes(), &mut blocks));
            memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(blocks);
            verified
        })
        .await
        .unwrap_or(false);
        if verified { account } else { None }
    }
}

/// Whether `password` matches the argon2id hash `parsed`, hashed in `blocks` (grown to the
/// hash's memory cost the first time): what `verify_password` does, without allocating.
fn verify_in(parsed: &PasswordHash, password: &[u8], blocks: &mut Vec<argon2::Block>) -> bool {
    let (Ok(params), Some(salt), Some(expected)) = (
        argon2::Params::try_from(parsed),
        parsed.salt.as_ref(),
        parsed.hash.as_ref(),
    ) else {
        return false;
    };
    let Ok(version) = parsed
        .version
        .map_or(Ok(argon2::Version::default()), argon2::Version::try_from)
    else {
        return false;
    };
    if blocks.len() < params.block_count() {
        blocks.resize(params.block_count(), argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(argon2::Algorithm::Argon2id, version, params);
    argon
        .hash_password_into_with_memory(password, salt, &mut out, &mut blocks[..])
        .is_ok()
        && argon2::password_hash::phc::Output::new(&out).is_ok_and(|out| out == *expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_accounts_and_points_at_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let hash = hash_password("pw").unwrap();
        let root = dir.path().display();
        let good = format!("# c\n\nann:rw:{hash}:{root}\nbob:ro:{hash}:{root}\n");
        let users = parse(Path::new("u"), &good).unwrap();
        assert!(!users["ann"].read_only);
        assert!(users["bob"].read_only);

        for (text, line, needle) in [
            (
                format!("ann:rw:{hash}:{root}\nbob:xx:{hash}:{root}\n"),
                2,
                "access",
            ),
            (format!("\nann:rw:{hash}\n"), 2, "NAME:ACCESS"),
            (format!("a b:rw:{hash}:{root}\n"), 1, "user name"),
            (
                format!("ann:rw:{}:{root}\n", hash.replace("argon2id", "argon2i")),
                1,
                "argon2id",
            ),
            (format!("ann:rw:{hash}:relative/dir\n"), 1, "absolute"),
            (
                format!("ann:rw:{hash}:{root}\nann:ro:{hash}:{root}\n"),
                2,
                "twice",
            ),
        ] {
            let err = parse(Path::new("u"), &text).unwrap_err().to_string();
            assert!(err.starts_with(&format!("u:{line}: ")), "{err}");
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn upsert_replaces_one_line_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users");
        let hash = hash_password("one").unwrap();
        upsert(&file, "ann", &hash, dir.path(), false).unwrap();
        upsert(&file, "bob", &hash, dir.path(), true).unwrap();
        let second = hash_password("two").unwrap();
        upsert(&file, "ann", &second, dir.path(), true).unwrap();
        let users = Users::load(&file).unwrap();
        assert_eq!(users.names().collect::<Vec<_>>(), ["ann", "bob"]);
        assert_eq!(users.get("ann").unwrap().hash, second);
        assert!(users.get("ann").unwrap().read_only);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn an_unknown_user_is_hashed_at_the_costs_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users");
        let params = argon2::Params::new(8 * 1024, 1, 1, None).unwrap();
        let hash = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(b"pw")
            .unwrap()
            .to_string();
        std::fs::write(&file, format!("ann:rw:{hash}:{}\n", dir.path().display())).unwrap();
        let users = Users::load(&file).unwrap();
        let accounts = Accounts::open(&users, Root::open).unwrap();
        assert!(
            accounts.dummy_hash.contains("$m=8192,t=1,p=1$"),
            "{}",
            accounts.dummy_hash
        );
    }

    #[test]
    fn a_missing_root_fails_the_load_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users");
        let hash = hash_password("pw").unwrap();
        let text = format!(
            "ann:rw:{hash}:{}\nbob:rw:{hash}:{}/missing\n",
            dir.path().display(),
            dir.path().display()
        );
        std::fs::write(&file, text).unwrap();
        let err = Users::load(&file).unwrap_err().to_string();
        assert!(err.contains(":2: root"), "{err}");
    }
}
