//! The rules every remote path obeys, checked before any filesystem call.
//!
//! A path is relative to the served root, `/`-separated, `""` being the root itself. Each
//! component is a plain name: never empty, `.` or `..`, no backslash, no NUL or other control
//! character, at most [`MAX_NAME_LEN`] bytes; the whole path at most [`MAX_PATH_LEN`] bytes.
//! These rules are lexical only: the server still resolves the components beneath its root
//! handle so that symlinks cannot lead out. The client applies the same rules to names a server
//! sends, so a hostile server cannot make it write outside the chosen local directory.

/// The longest component, in bytes (the common filesystem limit).
pub const MAX_NAME_LEN: usize = 255;
/// The longest path, in bytes.
pub const MAX_PATH_LEN: usize = 4096;

/// Why a path was refused; the message is meant for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path is longer than {MAX_PATH_LEN} bytes")]
    TooLong,
    #[error("a name is longer than {MAX_NAME_LEN} bytes")]
    NameTooLong,
    #[error("paths are relative to the served root and must not start with '/'")]
    Absolute,
    #[error("empty path component (a doubled or trailing '/')")]
    EmptyComponent,
    #[error("'.' and '..' are not allowed in paths")]
    DotComponent,
    #[error("backslashes are not allowed in paths")]
    Backslash,
    #[error("control characters are not allowed in paths")]
    ControlCharacter,
}

/// Checks one name (a single component).
pub fn check_name(name: &str) -> Result<(), PathError> {
    if name.is_empty() {
        return Err(PathError::EmptyComponent);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(PathError::NameTooLong);
    }
    if name == "." || name == ".." {
        return Err(PathError::DotComponent);
    }
    if name.contains('\\') {
        return Err(PathError::Backslash);
    }
    if name.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter);
    }
    Ok(())
}

/// Splits a wire path into checked components; `""` gives none (the root).
pub fn components(path: &str) -> Result<Vec<&str>, PathError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute);
    }
    path.split('/')
        .map(|name| check_name(name).map(|()| name))
        .collect()
}

/// Checks a whole wire path.
pub fn check(path: &str) -> Result<(), PathError> {
    components(path).map(drop)
}

/// The prefix of the hidden file an upload or download is written to before it is renamed into
/// place. Listings leave such files out, and no request may name one.
pub const PARTIAL_PREFIX: &str = ".ferry-part.";

/// The hidden partial file that stands for `name` in the same directory until the transfer is
/// verified. The same name every time, so an interrupted transfer can be resumed; names too long
/// to carry the prefix are replaced by their digest.
pub fn partial_name(name: &str) -> String {
    if PARTIAL_PREFIX.len() + name.len() <= MAX_NAME_LEN {
        format!("{PARTIAL_PREFIX}{name}")
    } else {
        format!("{PARTIAL_PREFIX}{}", blake3::hash(name.as_bytes()).to_hex())
    }
}

/// Whether `name` is one of ferry's hidden partial files.
pub fn is_partial_name(name: &str) -> bool {
    name.starts_with(PARTIAL_PREFIX)
}

/// `parent` joined with `name`, the way the wire writes it.
pub fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

/// The parent of a wire path and its last name; `None` for the root.
pub fn split_last(path: &str) -> Option<(&str, &str)> {
    if path.is_empty() {
        return None;
    }
    Some(match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_paths() {
        assert_eq!(components(""), Ok(vec![]));
        assert_eq!(components("a"), Ok(vec!["a"]));
        assert_eq!(
            components("docs/my file's \"v2\".txt"),
            Ok(vec!["docs", "my file's \"v2\".txt"])
        );
        assert_eq!(
            components("ünïcödé/日本語/.hidden"),
            Ok(vec!["ünïcödé", "日本語", ".hidden"])
        );
        assert_eq!(components("..."), Ok(vec!["..."]));
    }

    #[test]
    fn refuses_escapes_and_oddities() {
        let cases: &[(&str, PathError)] = &[
            ("/etc/passwd", PathError::Absolute),
            ("..", PathError::DotComponent),
            ("a/../../b", PathError::DotComponent),
            ("./a", PathError::DotComponent),
            ("a//b", PathError::EmptyComponent),
            ("a/", PathError::EmptyComponent),
            ("..\\..\\x", PathError::Backslash),
            ("a\0b", PathError::ControlCharacter),
            ("a\nb", PathError::ControlCharacter),
            ("a\u{1b}[31mred", PathError::ControlCharacter),
            ("a\u{85}b", PathError::ControlCharacter),
        ];
        for (path, error) in cases {
            assert_eq!(check(path), Err(error.clone()), "{path:?}");
        }
        assert_eq!(check(&"a".repeat(256)), Err(PathError::NameTooLong));
        assert_eq!(check(&"a".repeat(255)), Ok(()));
        let long = vec!["abcdefgh"; 500].join("/");
        assert_eq!(check(&long), Err(PathError::TooLong));
    }

    #[test]
    fn partial_names_are_stable_valid_and_recognised() {
        assert_eq!(partial_name("a.txt"), ".ferry-part.a.txt");
        let long = "x".repeat(250);
        let partial = partial_name(&long);
        assert_eq!(partial, partial_name(&long));
        assert!(partial.len() <= MAX_NAME_LEN);
        assert_eq!(check_name(&partial), Ok(()));
        assert!(is_partial_name(&partial));
        assert!(!is_partial_name("a.txt"));
    }

    #[test]
    fn join_and_split_are_inverse() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a/b", "c"), "a/b/c");
        assert_eq!(split_last("a/b/c"), Some(("a/b", "c")));
        assert_eq!(split_last("c"), Some(("", "c")));
        assert_eq!(split_last(""), None);
    }
}
