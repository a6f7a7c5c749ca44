//! The rules every remote path obeys, checked before any filesystem call, and the escape that
//! lets a path name any file a POSIX filesystem can hold.
//!
//! A path is relative to the served root, `/`-separated, `""` being the root itself. On the
//! wire it is a JSON string, so it must be UTF-8; a name's bytes need not be. Such bytes, and
//! the characters that would break a line or a terminal, are written with a backslash escape
//! (the [name escape](encode)): `\\` for a backslash, `\n`, `\t`, `\r`, `\xHH` for any other
//! C0 control, DEL or byte that is not part of valid UTF-8, `\u{HH}` for a C1 control. Every
//! other character stands for itself. The escape is canonical: a name has exactly one wire
//! form, so two spellings can never name the same file (which would slip past per-path locks
//! and the partial-name rule). Older peers refused every backslash, so they refuse an escaped
//! name instead of taking it for another.
//!
//! Each component, once unescaped, is a plain name: never empty, `.` or `..`, no `/` or NUL, at
//! most [`MAX_NAME_LEN`] bytes; the whole path at most [`MAX_PATH_LEN`] bytes. These rules are
//! lexical only: the server still resolves the components beneath its root handle so that
//! symlinks cannot lead out. The client applies the same rules to names a server sends, so a
//! hostile server cannot make it write outside the chosen local directory.

use std::borrow::Cow;
use std::fmt::Write;

/// The longest component, in bytes once unescaped (the common filesystem limit).
pub const MAX_NAME_LEN: usize = 255;
/// The longest path, in bytes once unescaped.
pub const MAX_PATH_LEN: usize = 4096;
/// The longest escaped form of one raw byte (`\xHH`), which bounds how long a wire path may be
/// before it is unescaped at all.
const MAX_ESCAPE_LEN: usize = 4;

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
    #[error(
        "a backslash starts an escape: \\\\, \\n, \\t, \\r, \\xHH or \\u{{H}} (a literal backslash is \\\\)"
    )]
    BadEscape,
    #[error("control characters must be escaped in paths (\\n, \\t, \\r, \\xHH, \\u{{H}})")]
    ControlCharacter,
    #[error("NUL is not allowed in names")]
    Nul,
    #[error("an escape stands for a character that must be written as itself, or another escape")]
    NotCanonical,
}

/// The wire form of raw name (or path) bytes: the escape described in the module docs. Total:
/// every byte string has exactly one wire form; `/` passes through, so a raw path encodes
/// component by component.
pub fn encode(raw: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(raw)
        && !text.chars().any(|c| c == '\\' || c.is_control())
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(raw.len() + 8);
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => push_escape(&mut out, c),
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    Cow::Owned(out)
}

/// Appends the escape of a character that is not written as itself: `\n`, `\t`, `\r`, `\xHH`
/// below U+0080, `\u{H}` above. The one spelling of these escapes, for [`encode`] and for the
/// client's terminal escape, which spells the characters it hides the same way.
pub fn push_escape(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// The raw bytes a wire string stands for, undoing [`encode`]; lenient about case and about
/// escapes that were not needed (use [`check_name`] / [`components`] for the rules). A raw
/// control character is refused: it has to be escaped.
pub fn decode(wire: &str) -> Result<Cow<'_, [u8]>, PathError> {
    if !wire.contains('\\') {
        if wire.chars().any(char::is_control) {
            return Err(PathError::ControlCharacter);
        }
        return Ok(Cow::Borrowed(wire.as_bytes()));
    }
    let mut out = Vec::with_capacity(wire.len());
    let mut chars = wire.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            if c.is_control() {
                return Err(PathError::ControlCharacter);
            }
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next().ok_or(PathError::BadEscape)? {
            '\\' => out.push(b'\\'),
            'n' => out.push(b'\n'),
            't' => out.push(b'\t'),
            'r' => out.push(b'\r'),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                if hex.len() != 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(PathError::BadEscape);
                }
                out.push(u8::from_str_radix(&hex, 16).map_err(|_| PathError::BadEscape)?);
            }
            'u' => {
                if chars.next() != Some('{') {
                    return Err(PathError::BadEscape);
                }
                let mut hex = String::new();
                loop {
                    match chars.next().ok_or(PathError::BadEscape)? {
                        '}' => break,
                        h if h.is_ascii_hexdigit() && hex.len() < 6 => hex.push(h),
                        _ => return Err(PathError::BadEscape),
                    }
                }
                let c = u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or(PathError::BadEscape)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => return Err(PathError::BadEscape),
        }
    }
    Ok(Cow::Owned(out))
}

/// Checks one name (a single component) in its wire form.
pub fn check_name(name: &str) -> Result<(), PathError> {
    name_bytes(name).map(drop)
}

/// The raw bytes of one checked name: what the filesystem calls it.
pub fn name_bytes(name: &str) -> Result<Cow<'_, [u8]>, PathError> {
    if name.is_empty() {
        return Err(PathError::EmptyComponent);
    }
    if name.len() > MAX_NAME_LEN * MAX_ESCAPE_LEN {
        return Err(PathError::NameTooLong);
    }
    let raw = decode(name)?;
    if raw.len() > MAX_NAME_LEN {
        return Err(PathError::NameTooLong);
    }
    if *raw == *b"." || *raw == *b".." {
        return Err(PathError::DotComponent);
    }
    if raw.contains(&0) {
        return Err(PathError::Nul);
    }
    if raw.contains(&b'/') || encode(&raw) != name {
        return Err(PathError::NotCanonical);
    }
    Ok(raw)
}

/// Splits a wire path into checked components (still in wire form); `""` gives none (the root).
pub fn components(path: &str) -> Result<Vec<&str>, PathError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    if path.len() > MAX_PATH_LEN * MAX_ESCAPE_LEN {
        return Err(PathError::TooLong);
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute);
    }
    let mut raw_len = 0;
    let names = path
        .split('/')
        .map(|name| {
            raw_len += name_bytes(name)?.len() + 1;
            Ok(name)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if raw_len - 1 > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    Ok(names)
}

/// Checks a whole wire path.
pub fn check(path: &str) -> Result<(), PathError> {
    components(path).map(drop)
}

/// The prefix of the hidden file an upload or download is written to before it is renamed into
/// place. Listings leave such files out, and no request may name one.
pub const PARTIAL_PREFIX: &str = ".ferry-part.";

/// The hidden partial file that stands for the wire name `name` in the same directory until
/// the transfer is verified, in wire form. The same name every time, so an interrupted transfer
/// can be resumed; names too long to carry the prefix are replaced by their digest.
pub fn partial_name(name: &str) -> String {
    let raw = decode(name).unwrap_or(Cow::Borrowed(name.as_bytes()));
    encode(&partial_name_bytes(&raw)).into_owned()
}

/// [`partial_name`] on raw bytes: the prefix and the name, or the prefix and the BLAKE3 of the
/// name's bytes when both would not fit in [`MAX_NAME_LEN`].
pub fn partial_name_bytes(raw: &[u8]) -> Vec<u8> {
    let mut partial = PARTIAL_PREFIX.as_bytes().to_vec();
    if PARTIAL_PREFIX.len() + raw.len() <= MAX_NAME_LEN {
        partial.extend_from_slice(raw);
    } else {
        partial.extend_from_slice(blake3::hash(raw).to_hex().as_bytes());
    }
    partial
}

/// Whether `name` (wire form or raw) is one of ferry's hidden partial files.
pub fn is_partial_name(name: &str) -> bool {
    is_partial_bytes(name.as_bytes())
}

/// [`is_partial_name`] on raw bytes: the escape leaves the ASCII prefix as it is.
pub fn is_partial_bytes(name: &[u8]) -> bool {
    name.starts_with(PARTIAL_PREFIX.as_bytes())
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
            ("..\\..\\x", PathError::BadEscape),
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
    fn every_byte_string_has_one_wire_form() {
        let cases: &[(&[u8], &str)] = &[
            (b"plain.txt", "plain.txt"),
            (b"a\nb", "a\\nb"),
            (b"a\\b", "a\\\\b"),
            (b"bell\x01\x7f", "bell\\x01\\x7f"),
            (b"tab\tcr\r", "tab\\tcr\\r"),
            (b"\xff\xfe", "\\xff\\xfe"),
            (b"caf\xc3\xa9 \xc3", "caf\u{e9} \\xc3"),
            ("x\u{85}y".as_bytes(), "x\\u{85}y"),
            (
                "invoice\u{202e}fdp.exe".as_bytes(),
                "invoice\u{202e}fdp.exe",
            ),
        ];
        for (raw, wire) in cases {
            assert_eq!(encode(raw), *wire, "{raw:?}");
            assert_eq!(decode(wire).unwrap(), *raw, "{wire:?}");
            assert_eq!(name_bytes(wire).unwrap(), *raw, "{wire:?}");
        }
    }

    #[test]
    fn escapes_are_refused_unless_canonical_and_harmless() {
        let cases: &[(&str, PathError)] = &[
            ("a\\", PathError::BadEscape),
            ("a\\q", PathError::BadEscape),
            ("a\\x4", PathError::BadEscape),
            ("a\\u{110000}", PathError::BadEscape),
            ("a\\u{d800}", PathError::BadEscape),
            ("\\x41", PathError::NotCanonical),
            ("\\x0a", PathError::NotCanonical),
            ("\\xFF", PathError::NotCanonical),
            ("\\xc3\\xa9", PathError::NotCanonical),
            ("a\\x2fb", PathError::NotCanonical),
            ("\\x2e\\x2e", PathError::DotComponent),
            ("\\x00", PathError::Nul),
            ("\\u{202e}", PathError::NotCanonical),
        ];
        for (wire, error) in cases {
            assert_eq!(check(wire), Err(error.clone()), "{wire:?}");
        }
        // 255 raw bytes fit, whatever their escape costs; 256 do not.
        assert_eq!(check(&"\\xff".repeat(255)), Ok(()));
        assert_eq!(check(&"\\xff".repeat(256)), Err(PathError::NameTooLong));
        let deep = vec!["\\xff".repeat(200); 21].join("/");
        assert_eq!(check(&deep), Err(PathError::TooLong));
        let fits = vec!["\\xff".repeat(200); 20].join("/");
        assert_eq!(check(&fits), Ok(()));
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
        assert_eq!(partial_name("a\\nb"), ".ferry-part.a\\nb");
        let odd = "\\xff".repeat(250);
        let partial = partial_name(&odd);
        assert_eq!(check_name(&partial), Ok(()));
        assert_eq!(
            partial_name_bytes(&[0xff; 250]),
            name_bytes(&partial).unwrap().into_owned()
        );
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
