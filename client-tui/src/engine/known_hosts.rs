//! Certificate fingerprints: parsing what people paste, and the known-hosts file that pins each
//! server's certificate on first use, like ssh's `known_hosts`.
//!
//! The file holds one `host:port SHA256:AB:CD:...` line per server (`#` starts a comment) and
//! is replaced whole through a temporary file, so a crash mid-write never loses the pins.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The SHA-256 of a server's DER certificate, the value pinned and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(cert_der: &[u8]) -> Fingerprint {
        let digest = ring::digest::digest(&ring::digest::SHA256, cert_der);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }
}

/// Printed as `openssl x509 -noout -fingerprint -sha256` prints it, with `SHA256:` in front.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SHA256:")?;
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

/// Why a fingerprint could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a SHA-256 fingerprint: expected SHA256: and 64 hex digits, colons optional")]
pub struct BadFingerprint(pub String);

/// Accepts `SHA256:AB:CD:...`, openssl's `sha256 Fingerprint=AB:CD...`, and bare hex, in any
/// case, with or without colons.
impl FromStr for Fingerprint {
    type Err = BadFingerprint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadFingerprint(s.to_owned());
        let trimmed = s.trim();
        let hex = match trimmed.split_once(['=', ':']) {
            Some((prefix, rest))
                if prefix.eq_ignore_ascii_case("sha256")
                    || prefix.eq_ignore_ascii_case("sha256 fingerprint") =>
            {
                rest
            }
            _ => trimmed,
        };
        let digits: Vec<u8> = hex.bytes().filter(|&b| b != b':').collect();
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Fingerprint(bytes))
    }
}

/// The known-hosts file: the certificate each server presented when it was first trusted.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    path: PathBuf,
}

impl KnownHosts {
    /// The file at `path` (it need not exist yet).
    pub fn at(path: impl Into<PathBuf>) -> KnownHosts {
        KnownHosts { path: path.into() }
    }

    /// `known_hosts` in ferry's data directory, when the platform has a home directory.
    pub fn default_location() -> Option<KnownHosts> {
        directories::ProjectDirs::from("", "", "ferry")
            .map(|dirs| KnownHosts::at(dirs.data_dir().join("known_hosts")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fingerprint recorded for `host_port`; `None` when there is none or no file.
    pub fn lookup(&self, host_port: &str) -> io::Result<Option<Fingerprint>> {
        Ok(self.find(host_port)?.map(|(_, fingerprint)| fingerprint))
    }

    /// The line (counted from 1) that holds `host_port`'s fingerprint, with it: what a warning
    /// about a changed certificate points the user to.
    pub fn find(&self, host_port: &str) -> io::Result<Option<(usize, Fingerprint)>> {
        let text = self.read()?;
        Ok(entries(&text)
            .find(|(_, host, _)| host.eq_ignore_ascii_case(host_port))
            .and_then(|(line, _, fp)| Some((line, fp.parse().ok()?))))
    }

    /// Records the fingerprint of `host_port`, replacing its line where it is (a rotated
    /// certificate) or adding one at the end, keeping every other line as it was.
    pub fn record(&self, host_port: &str, fingerprint: &Fingerprint) -> io::Result<()> {
        let old = self.read()?;
        let entry = format!("{host_port} {fingerprint}");
        let mut text = String::with_capacity(old.len() + entry.len() + 1);
        let mut replaced = false;
        for line in old.lines() {
            let this_host = !line.trim_start().starts_with('#')
                && line
                    .split_whitespace()
                    .next()
                    .is_some_and(|host| host.eq_ignore_ascii_case(host_port));
            if !this_host {
                text.push_str(line);
            } else if !replaced {
                text.push_str(&entry);
                replaced = true;
            } else {
                // A second line for the same server would only shadow the first: dropped.
                continue;
            }
            text.push('\n');
        }
        if !replaced {
            text.push_str(&entry);
            text.push('\n');
        }
        crate::atomic::write(&self.path, text.as_bytes(), None)
    }

    /// The file's text; empty when there is no file yet.
    fn read(&self) -> io::Result<String> {
        match fs::read_to_string(&self.path) {
            Ok(text) => Ok(text),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(String::new()),
            Err(err) => Err(err),
        }
    }
}

/// The `(line number, host:port, fingerprint)` entries of a known-hosts text, skipping
/// comments and blanks; lines count from 1.
fn entries(text: &str) -> impl Iterator<Item = (usize, &str, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|(n, line)| {
            let mut words = line.split_whitespace();
            Some((n, words.next()?, words.next()?))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENSSL: &str = "AB:7B:2D:44:55:82:10:F5:E5:69:E6:2C:43:F8:8D:C3:E6:14:1C:1F:C8:80:BA:7B:CF:1D:EA:2B:8C:E3:53:54";

    #[test]
    fn fingerprints_parse_in_every_pasted_form() {
        let canonical: Fingerprint = format!("SHA256:{OPENSSL}").parse().unwrap();
        assert_eq!(canonical.to_string(), format!("SHA256:{OPENSSL}"));
        let bare_lower = OPENSSL.replace(':', "").to_lowercase();
        for form in [
            format!("sha256:{}", OPENSSL.to_lowercase()),
            format!("SHA256:{bare_lower}"),
            bare_lower.clone(),
            OPENSSL.to_owned(),
            format!("sha256 Fingerprint={OPENSSL}"),
            format!("  SHA256:{OPENSSL}\n"),
        ] {
            assert_eq!(form.parse::<Fingerprint>(), Ok(canonical), "{form}");
        }
        for bad in [
            "",
            "SHA256:",
            "SHA256:AB",
            &bare_lower[2..],
            "zz".repeat(32).as_str(),
        ] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad}");
        }
        assert!(
            format!("MD5:{OPENSSL}").parse::<Fingerprint>().is_err(),
            "another digest's name is not taken for hex"
        );
    }

    #[test]
    fn known_hosts_record_replace_and_keep_others() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = KnownHosts::at(dir.path().join("sub/known_hosts"));
        let a = Fingerprint([1; 32]);
        let b = Fingerprint([2; 32]);
        assert_eq!(hosts.lookup("h:1").unwrap(), None);
        hosts.record("h:1", &a).unwrap();
        hosts.record("[::1]:2", &b).unwrap();
        assert_eq!(hosts.lookup("h:1").unwrap(), Some(a));
        assert_eq!(hosts.lookup("H:1").unwrap(), Some(a));
        assert_eq!(hosts.lookup("[::1]:2").unwrap(), Some(b));
        assert_eq!(hosts.lookup("h:2").unwrap(), None);
        hosts.record("h:1", &b).unwrap();
        assert_eq!(hosts.lookup("h:1").unwrap(), Some(b));
        let text = fs::read_to_string(hosts.path()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        let leftovers = fs::read_dir(dir.path().join("sub")).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn a_rotated_certificate_replaces_its_line_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = KnownHosts::at(dir.path().join("known_hosts"));
        let (a, b, c) = (
            Fingerprint([1; 32]),
            Fingerprint([2; 32]),
            Fingerprint([3; 32]),
        );
        let text = format!("# mine\nfirst:1 {a}\n\nrotated:2 {b}\nlast:3 {c}\n");
        fs::write(hosts.path(), &text).unwrap();
        assert_eq!(hosts.find("rotated:2").unwrap(), Some((4, b)));
        hosts.record("rotated:2", &c).unwrap();
        assert_eq!(
            fs::read_to_string(hosts.path()).unwrap(),
            text.replace(&format!("rotated:2 {b}"), &format!("rotated:2 {c}"))
        );
        assert_eq!(hosts.find("rotated:2").unwrap(), Some((4, c)));
        assert_eq!(hosts.find("nowhere:4").unwrap(), None);
    }
}
