//! Where a pane is: which side of the screen, and a directory there (a local path or a
//! server wire path), with the path arithmetic both need: a child, the parent, a typed path.

use std::path::PathBuf;

/// Which side of the screen, and so which file system, a pane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Local,
    Remote,
}

impl Side {
    /// The other pane.
    pub fn other(self) -> Side {
        match self {
            Side::Local => Side::Remote,
            Side::Remote => Side::Local,
        }
    }
}

/// A directory on one side: a local path, or a server wire path (`""` is the root).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    Local(PathBuf),
    Remote(String),
}

impl Location {
    /// The path of a child entry.
    pub fn join(&self, name: &str) -> Location {
        match self {
            Location::Local(dir) => Location::Local(dir.join(crate::names::os_name(name))),
            Location::Remote(dir) => Location::Remote(join_wire(dir, &typed_name(name))),
        }
    }

    /// The parent directory and the name of this one inside it; `None` at a root.
    pub fn parent(&self) -> Option<(Location, String)> {
        match self {
            Location::Local(dir) => {
                let name = crate::names::wire_name(dir.file_name()?);
                Some((Location::Local(dir.parent()?.to_path_buf()), name))
            }
            Location::Remote(dir) if dir.is_empty() => None,
            Location::Remote(dir) => Some(match dir.rsplit_once('/') {
                Some((parent, name)) => (Location::Remote(parent.to_string()), name.to_string()),
                None => (Location::Remote(String::new()), dir.clone()),
            }),
        }
    }

    /// The path as shown and as typed in the go-to prompt: remote paths start with `/`.
    pub fn display(&self) -> String {
        match self {
            Location::Local(dir) => dir.display().to_string(),
            Location::Remote(dir) => format!("/{dir}"),
        }
    }

    /// The path as the one escaping rule shows it in titles, rows and messages: a local
    /// directory's bytes exactly (not with replacement characters), no control character raw.
    pub fn shown(&self) -> String {
        match self {
            Location::Local(dir) => crate::format::local_path(dir),
            remote => crate::format::escape_name(&remote.display()).into_owned(),
        }
    }

    /// A key for matching transfer events against pane entries.
    pub fn key(&self) -> String {
        match self {
            Location::Local(dir) => dir.to_string_lossy().into_owned(),
            Location::Remote(dir) => dir.clone(),
        }
    }

    /// Where the go-to prompt's `text` leads from this directory: a local path (absolute,
    /// relative, or from `~`), or a server path (`/a/b`, `a/b`, `..`).
    pub fn goto(&self, text: &str) -> Location {
        match self {
            Location::Local(current) => {
                let typed = match text.strip_prefix('~') {
                    Some(rest) => match std::env::var_os("HOME") {
                        Some(home) => {
                            PathBuf::from(home).join(typed_local(rest.trim_start_matches('/')))
                        }
                        None => typed_local(text),
                    },
                    None => typed_local(text),
                };
                Location::Local(current.join(typed))
            }
            Location::Remote(current) => Location::Remote(resolve_wire(current, text)),
        }
    }
}

/// A child path on the server.
pub fn join_wire(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Turns what the user typed into a wire path relative to `current`: `/a/b`, `a/b`, `..`.
pub fn resolve_wire(current: &str, typed: &str) -> String {
    let mut parts: Vec<&str> = if typed.starts_with('/') {
        Vec::new()
    } else {
        current.split('/').filter(|p| !p.is_empty()).collect()
    };
    for part in typed.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    typed_name(&parts.join("/"))
}

/// A remote name or path as the user may type it, the way ferry shows names (`\u{202e}`,
/// upper-case hex), in its one wire form; text that is no valid path is left for the server
/// to refuse with its reason.
fn typed_name(typed: &str) -> String {
    crate::url::wire_path(typed.as_bytes()).unwrap_or_else(|_| typed.to_owned())
}

/// A local path as typed in the go-to prompt, the way ferry shows names (the wire escape, so
/// the prompt's own text leads back to its directory); text that is no valid escape is taken
/// as it is.
fn typed_local(text: &str) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    match ferry_protocol::path::decode(text) {
        Ok(bytes) => PathBuf::from(std::ffi::OsStr::from_bytes(&bytes)),
        Err(_) => PathBuf::from(text),
    }
}
