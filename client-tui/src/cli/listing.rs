//! `ferry ls`: a directory as a table (directories first, then by name) or, with `--json`, one
//! JSON object per entry per line, written as the batches arrive so memory stays bounded
//! however big the directory.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;

use ferry_protocol::{Entry, ErrorCode, Kind};
use humansize::{BINARY, format_size};

use super::error::CliError;
use crate::engine::{Endpoint, Session};
use crate::format;
use crate::url::RemoteUrl;

/// Lists `url` to `out`.
pub async fn ls(
    endpoint: &Endpoint,
    url: &RemoteUrl,
    json: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    // `stat` and `list` go with `hello`: one round trip after the connection's.
    let (mut session, target) = Session::connect_listing(endpoint, &url.path).await?;
    // `ls FILE` shows the file, as the shell's does.
    if !target.is_dir_like() {
        let mut entry = target;
        entry.name = super::locations::base_name(&url.path).to_owned();
        return print_all(vec![entry], json, out);
    }
    if json {
        let mut stream = session.list_stream(&url.path).await?;
        while let Some(batch) = stream.next_batch().await? {
            for entry in &batch {
                write_json(entry, out)?;
            }
            out.flush()?;
        }
        return Ok(());
    }
    // Sorted as it arrives up to a cap; past it what was gathered is printed sorted and the
    // rest follows in the server's order, so a listing that never ends cannot fill memory.
    let mut stream = session.list_stream(&url.path).await?;
    let mut gathered = Vec::new();
    let mut streaming = false;
    loop {
        let batch = match stream.next_batch().await {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(e) if e.remote_code() == Some(ErrorCode::NotADirectory) => break,
            Err(e) => return Err(e.into()),
        };
        if streaming {
            for entry in &batch {
                writeln!(out, "{}", format_entry(entry))?;
            }
            out.flush()?;
            continue;
        }
        gathered.extend(batch);
        if gathered.len() > MAX_SORTED {
            print_all(std::mem::take(&mut gathered), false, out)?;
            eprintln!(
                "ferry: more than {} entries: the rest follow unsorted, as the server sends \
                 them",
                format::count(MAX_SORTED as u64)
            );
            streaming = true;
        }
    }
    if streaming {
        Ok(())
    } else {
        print_all(gathered, false, out)
    }
}

/// Entries `ls` sorts before it prints; a bigger directory is printed as it arrives.
pub const MAX_SORTED: usize = 100_000;

fn print_all(mut entries: Vec<Entry>, json: bool, out: &mut impl Write) -> Result<(), CliError> {
    entries.sort_by(|a, b| {
        b.is_dir_like()
            .cmp(&a.is_dir_like())
            .then_with(|| a.name.cmp(&b.name))
    });
    for entry in &entries {
        if json {
            write_json(entry, out)?;
        } else {
            writeln!(out, "{}", format_entry(entry))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// One entry as a line of JSON that is safe on a terminal too.
fn write_json(entry: &Entry, out: &mut impl Write) -> Result<(), CliError> {
    let line = serde_json::to_string(entry).map_err(std::io::Error::from)?;
    writeln!(out, "{}", json_for_terminal(&line))?;
    Ok(())
}

/// JSON escapes only C0 controls; C1 controls and bidi overrides are valid raw, yet would
/// drive or reorder a terminal that shows the output. Those only occur inside strings, where
/// `\uXXXX` means the same, so scripts still read the exact names.
fn json_for_terminal(line: &str) -> Cow<'_, str> {
    if !line.chars().any(format::needs_escape) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 16);
    for c in line.chars() {
        if format::needs_escape(c) {
            // Every such character is in the Basic Multilingual Plane: one `\uXXXX` each.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One table row: type and mode, size, mtime (local time), name (`/` after directories, `@` after links).
pub fn format_entry(entry: &Entry) -> String {
    let mode = format::permissions(entry.kind, entry.mode);
    let size = if entry.kind == Kind::File {
        format_size(entry.size, BINARY)
    } else {
        "-".to_owned()
    };
    let suffix = match entry.kind {
        Kind::Dir => "/",
        Kind::Symlink => "@",
        _ => "",
    };
    format!(
        "{mode} {size:>10}  {}  {}{suffix}",
        format::mtime(entry.mtime),
        format::escape_name(&entry.name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_type_mode_size_and_name() {
        let entry = Entry {
            name: "my file.txt".into(),
            kind: Kind::File,
            size: 1536,
            mtime: 0,
            mode: 0o644,
            link: None,
            error: None,
            owner: None,
            target: None,
        };
        assert_eq!(
            format_entry(&entry),
            "-rw-r--r--   1.50 KiB  1970-01-01 00:00  my file.txt"
        );
        let dir = Entry {
            name: "docs".into(),
            kind: Kind::Dir,
            mode: 0o755,
            ..entry
        };
        assert!(format_entry(&dir).starts_with("drwxr-xr-x"));
        assert!(format_entry(&dir).ends_with("  docs/"));
        // A hostile server's name cannot drive the terminal.
        let hostile = Entry {
            name: "x\u{1b}[2Jy".into(),
            ..dir
        };
        assert!(format_entry(&hostile).ends_with("  x\\x1b[2Jy/"));
    }

    #[test]
    fn directories_come_first_then_names() {
        let mk = |name: &str, kind| Entry {
            name: name.into(),
            kind,
            size: 0,
            mtime: 0,
            mode: 0o644,
            link: None,
            error: None,
            owner: None,
            target: None,
        };
        let mut out = Vec::new();
        print_all(
            vec![
                mk("b", Kind::File),
                mk("z", Kind::Dir),
                mk("a", Kind::File),
                mk("c", Kind::Dir),
            ],
            true,
            &mut out,
        )
        .unwrap();
        let names: Vec<String> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Entry>(l).unwrap().name)
            .collect();
        assert_eq!(names, ["c", "z", "a", "b"]);
    }
}
