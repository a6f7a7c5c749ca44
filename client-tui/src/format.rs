//! How entries and transfers are shown to people, in the TUI and the CLI alike: sizes, times,
//! durations, speeds, and names with their control characters escaped.
//!
//! One escaping rule serves every name and every server text that reaches a terminal: the
//! protocol's name escape (`\n`, `\t`, `\r`, `\xHH`, `\u{H}`, `\\`), which a wire name already
//! carries, plus `\u{H}` for the characters that reorder or hide text. So a name looks the
//! same in `ferry ls`, a TUI row, a progress line, a banner and a log, it can be typed back
//! as a path, and nothing a server says can start a line of its own.

use std::borrow::Cow;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use ferry_protocol::path as wire;
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A size like `1.50 MiB`; bytes below 1 KiB as `512 B`.
pub fn size(bytes: u64) -> String {
    humansize::format_size(
        bytes,
        humansize::BINARY.decimal_places(1).space_after_value(true),
    )
}

/// A count like `27,553`: file counts in the tens of thousands are read at a glance.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A counted noun like `20,000 files` or `1 directory`: every count ferry shows goes through
/// here, so none of them lacks its separators.
pub fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// A transfer speed like `12.3 MiB/s`.
pub fn speed(bytes_per_second: f64) -> String {
    if !bytes_per_second.is_finite() || bytes_per_second <= 0.0 {
        return "-".to_string();
    }
    format!("{}/s", size(bytes_per_second.round() as u64))
}

/// A duration like `0:07`, `12:34` or `1:02:03`, rounded up to whole seconds so a bar never
/// shows `0:00` while bytes remain.
pub fn eta(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    if duration.subsec_nanos() > 0 {
        secs += 1;
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// A modification time as `YYYY-MM-DD HH:MM` in the user's time zone, the one their other
/// tools show; both panes use it, so they stay comparable.
pub fn mtime(seconds: i64) -> String {
    mtime_in(seconds, shown_zone())
}

/// [`mtime`] in `zone`. A time outside the years 9999 BC to 9999 AD (a broken or hostile
/// server's) shows as `-`.
pub fn mtime_in(seconds: i64, zone: &TimeZone) -> String {
    match Timestamp::from_second(seconds) {
        Ok(time) => zone
            .to_datetime(time)
            .strftime("%Y-%m-%d %H:%M")
            .to_string(),
        Err(_) => "-".to_string(),
    }
}

/// The zone times are shown in: the system's (`TZ`, else `/etc/localtime`), read once; UTC
/// where it cannot be read. In unit tests it is UTC, whatever the machine's: they snapshot
/// screens and rows, which must read the same everywhere.
fn shown_zone() -> &'static TimeZone {
    static ZONE: OnceLock<TimeZone> = OnceLock::new();
    ZONE.get_or_init(|| {
        if cfg!(test) {
            TimeZone::UTC
        } else {
            TimeZone::system()
        }
    })
}

/// Permission bits as `ls -l` shows them, after the type character (`-` a file, `d` a
/// directory, `l` a symlink, `?` anything else): `drwxr-xr-x`, with setuid, setgid and the
/// sticky bit as `s`/`S` and `t`/`T` in the execute places.
pub fn permissions(kind: ferry_protocol::Kind, mode: u32) -> String {
    use ferry_protocol::Kind;
    let mut out = String::with_capacity(10);
    out.push(match kind {
        Kind::File => '-',
        Kind::Dir => 'd',
        Kind::Symlink => 'l',
        Kind::Other => '?',
    });
    // Each class: its three bits, and the special bit shown in its execute place.
    for (shift, special, set) in [(6u32, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (mode >> shift) & 7;
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        out.push(match (bits & 1 != 0, mode & special != 0) {
            (true, true) => set,
            (false, true) => set.to_ascii_uppercase(),
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    out
}

/// A name safe to put on a terminal: control characters become `\n`, `\t`, `\x1b`, `\u{9b}`,
/// and so do the invisible characters that reorder or hide text (bidirectional overrides and
/// isolates, zero-width marks), so a name like `invoice\u{202e}fdp.exe` cannot pose as
/// `invoiceexe.pdf`. A wire name (escaped already, backslashes doubled) is shown as it is
/// written on the wire, but for those invisible characters.
pub fn escape_name(name: &str) -> Cow<'_, str> {
    if !name.chars().any(needs_escape) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        if needs_escape(c) {
            wire::push_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A message safe to print on one line, such as an error that quotes a server's words: the
/// same rule as [`escape_name`], line breaks included, so a server can never end ferry's line
/// and print one of its own that looks like ferry's (`ferry: 0 files failed`). Text ferry
/// writes on several lines is split before it is escaped.
pub fn escape_text(text: &str) -> Cow<'_, str> {
    escape_name(text)
}

/// A local path as the one rule shows it: its bytes in the wire escape (so a name that is not
/// UTF-8 is shown exactly, not with replacement characters), then [`escape_name`].
pub fn local_path(path: &Path) -> String {
    escape_name(&wire::encode(path.as_os_str().as_bytes())).into_owned()
}

/// Whether a wire name holds characters that reorder or hide text (bidirectional controls,
/// zero-width marks). Such a name is escaped on screen, but other programs would show it as
/// the spoof it may be, so a download refuses it unless the user allows it.
pub fn is_unsafe_name(name: &str) -> bool {
    name.chars().any(|c| !c.is_control() && needs_escape(c))
}

/// Control characters, and the format characters that change how the text around them is
/// ordered or seen: they are what "Trojan Source" style spoofing is made of. The zero-width
/// (non-)joiners stay: scripts such as Persian and emoji sequences need them.
pub(crate) fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(27_553), "27,553");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(counted(20_000, "file", "files"), "20,000 files");
        assert_eq!(counted(1, "entry", "entries"), "1 entry");
        assert_eq!(counted(0, "file", "files"), "0 files");
    }

    #[test]
    fn names_cannot_drive_or_fool_the_terminal() {
        assert_eq!(escape_name("plain name.txt"), "plain name.txt");
        assert_eq!(escape_name("a\u{1b}[2Jb"), "a\\x1b[2Jb");
        assert_eq!(escape_name("bell\u{7}"), "bell\\x07");
        assert_eq!(escape_name("csi\u{9b}31m"), "csi\\u{9b}31m");
        assert_eq!(escape_name("line\nbreak\ttab"), "line\\nbreak\\ttab");
        assert_eq!(
            escape_name("invoice\u{202e}fdp.exe"),
            "invoice\\u{202e}fdp.exe"
        );
        assert_eq!(escape_name("zero\u{200b}width"), "zero\\u{200b}width");
        // Letters of right-to-left scripts are names like any other.
        assert_eq!(escape_name("שלום.txt"), "שלום.txt");
        assert_eq!(escape_name("می\u{200c}خواهم"), "می\u{200c}خواهم");
    }

    #[test]
    fn server_words_never_start_a_line_of_their_own() {
        assert_eq!(escape_text("all fine"), "all fine");
        assert_eq!(
            escape_text("nope\nferry: 0 files failed, all digests verified"),
            "nope\\nferry: 0 files failed, all digests verified"
        );
        assert_eq!(
            escape_text("WARNING\r\nnope\u{1b}[2J\tthere"),
            "WARNING\\r\\nnope\\x1b[2J\\tthere"
        );
        // Escaping twice changes nothing: text escaped where it entered stays as it is.
        let once = escape_text("a\nb\u{202e}c").into_owned();
        assert_eq!(escape_text(&once), once);
    }

    #[test]
    fn a_name_looks_the_same_from_the_wire_and_from_the_disk() {
        let raw: &[u8] = b"new\nline \xff back\\slash";
        let on_disk = local_path(Path::new(std::ffi::OsStr::from_bytes(raw)));
        assert_eq!(on_disk, "new\\nline \\xff back\\\\slash");
        assert_eq!(escape_name(&wire::encode(raw)), on_disk);
        assert_eq!(
            local_path(Path::new("/tmp/invoice\u{202e}fdp.exe")),
            "/tmp/invoice\\u{202e}fdp.exe"
        );
    }

    #[test]
    fn names_that_spoof_other_programs_are_unsafe() {
        assert!(is_unsafe_name("invoice\u{202e}fdp.exe"));
        assert!(is_unsafe_name("zero\u{200b}width"));
        assert!(!is_unsafe_name("plain.txt"));
        assert!(!is_unsafe_name("new\\nline"));
        assert!(!is_unsafe_name("שלום.txt"));
        assert!(!is_unsafe_name("می\u{200c}خواهم"));
    }

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(2 * 1024 * 1024 * 1024), "2 GiB");
    }

    #[test]
    fn speeds_and_etas() {
        assert_eq!(speed(0.0), "-");
        assert_eq!(speed(f64::NAN), "-");
        assert_eq!(speed(10.0 * 1024.0 * 1024.0), "10 MiB/s");
        assert_eq!(eta(Duration::from_millis(6_200)), "0:07");
        assert_eq!(eta(Duration::from_secs(754)), "12:34");
        assert_eq!(eta(Duration::from_secs(3723)), "1:02:03");
    }

    #[test]
    fn times_are_utc() {
        let mtime = |seconds| mtime_in(seconds, &TimeZone::UTC);
        assert_eq!(mtime(0), "1970-01-01 00:00");
        assert_eq!(mtime(1_700_000_000), "2023-11-14 22:13");
        assert_eq!(mtime(951_782_400), "2000-02-29 00:00");
        assert_eq!(mtime(-86_400), "1969-12-31 00:00");
    }

    #[test]
    fn times_are_shown_in_the_zone_given() {
        let tokyo = TimeZone::fixed(jiff::tz::offset(9));
        assert_eq!(mtime_in(1_700_000_000, &tokyo), "2023-11-15 07:13");
        let new_york = TimeZone::fixed(jiff::tz::offset(-5));
        assert_eq!(mtime_in(0, &new_york), "1969-12-31 19:00");
        assert_eq!(mtime_in(i64::MAX, &TimeZone::UTC), "-");
        assert_eq!(mtime_in(i64::MIN, &tokyo), "-");
        // Unit tests see UTC whatever the machine's zone, so their snapshots hold everywhere.
        assert_eq!(mtime(0), "1970-01-01 00:00");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_name("plain.txt"), "plain.txt");
        assert_eq!(escape_name("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(escape_name("\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(escape_name("x\u{9b}y"), "x\\u{9b}y");
    }
}
