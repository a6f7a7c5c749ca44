//! `ferry://HOST:PORT/PATH` locations (and `ferrys://` for TLS), and the ssh ones,
//! `ssh://[USER@]HOST[:PORT]/PATH` and scp's `[USER@]HOST:PATH`: parsing what people type
//! into the host, port and the checked wire path the engine sends, and printing them back in a
//! form that parses again.
//!
//! An argument without a scheme is an scp location when a `:` comes before any `/` (as scp
//! decides): `nas:photos`, `ann@nas:/srv`, `[::1]:x`; `./a:b` and `/x/a:b` are local paths.
//! Its path is taken as typed (no percent-decoding, as scp), relative to the remote home unless
//! it starts with `/`. ferry's own locations always carry `ferry://` or `ferrys://`, so
//! `nas:7070` is the file `7070` in nas's home, as scp reads it. In an `ssh://` location a path
//! starting with `~` (`ssh://nas/~/photos`) is relative to the home too.
//!
//! The path is percent-decoded and then held to the protocol's path rules, so a location that
//! parses is one the server can be asked about; `?` and `#` are ordinary file-name characters
//! here, since ferry URLs carry no query or fragment.
//!
//! A path is written the way ferry shows names: with the protocol's escapes (`new\nline`,
//! `\xff`, `back\\slash`, `\u{202e}`), so a name can be copied from `ferry ls` and typed back.
//! A percent escape is a raw byte (`%0A`, `%FF`).

use std::fmt;
use std::str::FromStr;

use ferry_protocol::{DEFAULT_PORT, path};

use crate::engine::Endpoint;
use crate::engine::ssh::SshTarget;

/// A parsed `ferry://HOST:PORT/PATH` or `ferrys://HOST:PORT/PATH` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    /// A `ferrys://` location: the connection speaks TLS.
    pub tls: bool,
    /// The account to log in as (`ferry://ann@host/`), percent-decoded. Its password never
    /// comes from the location: see [`crate::engine::Endpoint::password`].
    pub user: Option<String>,
    /// Host name or IP address; IPv6 without brackets.
    pub host: String,
    /// Port, [`ferry_protocol::DEFAULT_PORT`] when the URL names none.
    pub port: u16,
    /// The wire path: no leading or trailing `/`, `""` for the root, checked by the path rules.
    /// With [`SshVia::home_relative`] it is relative to the remote home, until
    /// [`RemoteUrl::under_home`] resolves it.
    pub path: String,
    /// Reached through ssh (`ssh://`, `host:path`); `port` is then ssh's port, 22 when the
    /// location names none.
    pub ssh: Option<SshVia>,
}

/// How an ssh location reaches its machine, beyond the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SshVia {
    /// The port the location names; `None` leaves it to ssh and its configuration.
    pub port: Option<u16>,
    /// The path is relative to the logged-in user's home (`host:photos`, `ssh://host/~/x`).
    pub home_relative: bool,
}

/// Why a location could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(pub String);

const SCHEME: &str = "ferry://";
const TLS_SCHEME: &str = "ferrys://";
const SSH_SCHEME: &str = "ssh://";
/// ssh's port when a location names none: only for telling servers apart, ssh picks its own.
const SSH_PORT: u16 = 22;

impl RemoteUrl {
    /// The server this location is on, with the token to present.
    pub fn endpoint(&self, token: Option<String>) -> Endpoint {
        if let Some(via) = self.ssh {
            return Endpoint {
                host: self.host.clone(),
                port: self.port,
                ssh: Some(SshTarget {
                    user: self.user.clone(),
                    host: self.host.clone(),
                    port: via.port,
                }),
                ..Endpoint::default()
            };
        }
        Endpoint {
            host: self.host.clone(),
            port: self.port,
            token,
            tls: self.tls,
            user: self.user.clone(),
            ..Endpoint::default()
        }
    }

    /// The same server with another wire path.
    pub fn with_path(&self, path: impl Into<String>) -> RemoteUrl {
        RemoteUrl {
            tls: self.tls,
            user: self.user.clone(),
            host: self.host.clone(),
            port: self.port,
            path: path.into(),
            ssh: self.ssh.map(|via| SshVia {
                home_relative: false,
                ..via
            }),
        }
    }

    /// Whether the path still waits for the remote home ([`Self::under_home`]).
    pub fn needs_home(&self) -> bool {
        self.ssh.is_some_and(|via| via.home_relative)
    }

    /// The location with a home-relative path resolved under `home` (a wire path, as `hello`
    /// gives it); any other location as it is.
    pub fn under_home(&self, home: &str) -> RemoteUrl {
        if !self.needs_home() {
            return self.clone();
        }
        let path = match (home.is_empty(), self.path.is_empty()) {
            (true, _) => self.path.clone(),
            (false, true) => home.to_owned(),
            (false, false) => format!("{home}/{}", self.path),
        };
        self.with_path(path)
    }

    /// Whether a command-line argument is meant as a remote location rather than a local path:
    /// a scheme, or scp's `host:path` (a `:` before any `/`).
    pub fn looks_remote(arg: &str) -> bool {
        Self::scheme_len(arg).is_some()
            || starts_with_ci(arg, SSH_SCHEME)
            || scp_split(arg).is_some()
    }

    /// The length of the scheme `arg` starts with, and whether it is the TLS one.
    fn scheme_len(arg: &str) -> Option<(usize, bool)> {
        let starts = |scheme: &str| {
            arg.get(..scheme.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        };
        if starts(SCHEME) {
            Some((SCHEME.len(), false))
        } else if starts(TLS_SCHEME) {
            Some((TLS_SCHEME.len(), true))
        } else {
            None
        }
    }
}

fn err(message: impl Into<String>) -> UrlError {
    UrlError(message.into())
}

fn starts_with_ci(arg: &str, prefix: &str) -> bool {
    arg.get(..prefix.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(prefix))
}

/// scp's reading of an argument without a scheme: `[user@]host:path` when a `:` ends a
/// non-empty destination before any `/` (an IPv6 host in brackets) and no `//` follows it.
/// `None`: a local path, or a URL of an unknown scheme.
fn scp_split(arg: &str) -> Option<(&str, &str)> {
    let host_start = arg.find('@').map_or(0, |at| at + 1);
    let colon = if arg[host_start..].starts_with('[') {
        host_start + arg[host_start..].find("]:")? + 1
    } else {
        arg.find(':')?
    };
    let destination = &arg[..colon];
    if destination.is_empty() || destination.contains('/') || destination.ends_with('@') {
        return None;
    }
    // `scheme://…` is a URL of a scheme ferry does not speak, never a host and a path.
    if arg[colon + 1..].starts_with("//") {
        return None;
    }
    Some((destination, &arg[colon + 1..]))
}

/// `[user@]host[:port]` of a location: the user percent-decoded, an IPv6 host in brackets.
fn parse_authority(authority: &str) -> Result<(Option<String>, String, Option<u16>), UrlError> {
    let (user, authority) = match authority.rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains(':') => {
            return Err(err(
                "a password in a location is refused (it would stay in shell history and \
                 process lists); set FERRY_PASSWORD or type it when asked",
            ));
        }
        Some((userinfo, host)) => {
            let user = percent_decode(userinfo)?;
            if user.is_empty() || user.chars().any(char::is_control) {
                return Err(err(
                    "the user name before '@' is empty or has control characters",
                ));
            }
            (Some(user), host)
        }
        None => (None, authority),
    };
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let close = inner
            .find(']')
            .ok_or_else(|| err("an IPv6 address opened with '[' must close with ']'"))?;
        let host = &inner[..close];
        let after = &inner[close + 1..];
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| err(format!("unexpected {after:?} after the IPv6 address")))?,
            ),
        };
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(err(format!("{host:?} is not an IPv6 address")));
        }
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(err(
                    "IPv6 addresses must be written in brackets, like ferry://[::1]:7070/",
                ));
            }
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(err("the location names no host"));
    }
    check_host(host)?;
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => {
                return Err(err(format!("{p:?} is not a port number (1-65535)")));
            }
            Ok(port) => Some(port),
        },
    };
    Ok((user, host.to_owned(), port))
}

/// A host name that ssh would read as an option, or that holds spaces or controls, is refused
/// before anything runs.
fn check_host(host: &str) -> Result<(), UrlError> {
    if host.starts_with('-') || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err(format!(
            "{} is not a host name",
            crate::format::escape_text(host)
        )));
    }
    Ok(())
}

/// A path as typed, percent-decoded or not, in its wire form without leading or trailing `/`.
fn typed_path(decoded: &[u8]) -> Result<String, UrlError> {
    let start = decoded
        .iter()
        .position(|&b| b != b'/')
        .unwrap_or(decoded.len());
    let end = decoded
        .iter()
        .rposition(|&b| b != b'/')
        .map_or(start, |i| i + 1);
    wire_path(&decoded[start..end]).map_err(|e| {
        err(format!(
            "bad path {}: {e}",
            crate::format::escape_name(&path::encode(decoded))
        ))
    })
}

/// A path after `~`: `~` alone or `~/…` is home-relative; `~ann/x` is another user's home,
/// which ferry does not resolve.
fn strip_home(raw: &str) -> Result<Option<&str>, UrlError> {
    let Some(rest) = raw.strip_prefix('~') else {
        return Ok(None);
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Ok(Some(rest));
    }
    Err(err(
        "~user paths are not supported: write the path from / or relative to your home",
    ))
}

/// `ssh://[user@]host[:port]/path`, the scheme already taken off.
fn parse_ssh_url(rest: &str) -> Result<RemoteUrl, UrlError> {
    let (authority, raw_path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let (user, host, port) = parse_authority(authority)?;
    let (home_relative, raw_path) = match strip_home(raw_path)? {
        Some(rest) => (true, rest),
        None => (false, raw_path),
    };
    let path = typed_path(&percent_decode_bytes(raw_path)?)?;
    Ok(RemoteUrl {
        tls: false,
        user,
        host,
        port: port.unwrap_or(SSH_PORT),
        path,
        ssh: Some(SshVia {
            port,
            home_relative,
        }),
    })
}

/// scp's `[user@]host:path`: the path as typed (no percent-decoding), relative to the home
/// unless it starts with `/`.
fn parse_scp(destination: &str, raw_path: &str) -> Result<RemoteUrl, UrlError> {
    let (user, host) = match destination.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, destination),
    };
    if user.is_some_and(|u| u.is_empty() || u.chars().any(char::is_control)) {
        return Err(err(
            "the user name before '@' is empty or has control characters",
        ));
    }
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) if v6.parse::<std::net::Ipv6Addr>().is_ok() => v6,
        Some(v6) => return Err(err(format!("{v6:?} is not an IPv6 address"))),
        None => host,
    };
    check_host(host)?;
    let (home_relative, raw_path) = match strip_home(raw_path)? {
        Some(rest) => (true, rest),
        None => (!raw_path.starts_with('/'), raw_path),
    };
    let path = typed_path(raw_path.as_bytes())?;
    Ok(RemoteUrl {
        tls: false,
        user: user.map(str::to_owned),
        host: host.to_owned(),
        port: SSH_PORT,
        path,
        ssh: Some(SshVia {
            port: None,
            home_relative,
        }),
    })
}

/// A path as a person typed it (after percent-decoding: raw bytes), in its canonical wire
/// form: escapes are read leniently (`\u{202e}` as ferry shows it, upper-case hex), raw
/// control characters and bytes that are not UTF-8 stand for themselves, and the result holds
/// to the path rules.
pub fn wire_path(typed: &[u8]) -> Result<String, path::PathError> {
    let mut text = String::with_capacity(typed.len());
    for chunk in typed.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                let mut buf = [0u8; 4];
                text.push_str(&path::encode(c.encode_utf8(&mut buf).as_bytes()));
            } else {
                text.push(c);
            }
        }
        text.push_str(&path::encode(chunk.invalid()));
    }
    let wire = text
        .split('/')
        .map(|part| {
            let raw = path::decode(part)?;
            // A slash is the separator, never a byte of a name, however it is written.
            if raw.contains(&b'/') {
                return Err(path::PathError::NotCanonical);
            }
            Ok(path::encode(&raw).into_owned())
        })
        .collect::<Result<Vec<_>, _>>()?
        .join("/");
    path::check(&wire)?;
    Ok(wire)
}

/// The raw bytes of a percent-encoded text. `percent-encoding` keeps a `%` that starts no
/// escape as it is; here such a `%` is refused instead, since a location that means something
/// other than what was typed is worse than none.
fn percent_decode_bytes(s: &str) -> Result<Vec<u8>, UrlError> {
    let bytes = s.as_bytes();
    let bad = (0..bytes.len()).find(|&i| {
        bytes[i] == b'%'
            && !bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if let Some(i) = bad {
        return Err(err(format!("bad percent escape at byte {i} of the path")));
    }
    Ok(percent_encoding::percent_decode_str(s).collect())
}

fn percent_decode(s: &str) -> Result<String, UrlError> {
    String::from_utf8(percent_decode_bytes(s)?)
        .map_err(|_| err("the decoded text is not valid UTF-8"))
}

/// Escapes what would not survive a round trip through [`percent_decode`] or a shell prompt.
/// Other characters, letters of every script included, stay as they are so a printed location
/// reads as the names it holds (`percent-encoding` alone would escape every non-ASCII byte).
fn percent_encode(s: &str) -> String {
    percent_encode_where(s, |c| c == '%' || c == ' ' || c.is_control())
}

/// A user name as it may stand before `@`: the characters that delimit a location escaped too.
fn encode_user(user: &str) -> String {
    percent_encode_where(user, |c| {
        matches!(c, '%' | ' ' | '@' | ':' | '/') || c.is_control()
    })
}

/// `s` with each character `escape` picks written as the percent escapes of its UTF-8 bytes.
fn percent_encode_where(s: &str, escape: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if escape(c) {
            let mut buf = [0u8; 4];
            let bytes = c.encode_utf8(&mut buf).as_bytes();
            // Every byte of a picked character (none is a letter or digit) becomes `%XX`.
            out.extend(percent_encoding::percent_encode(
                bytes,
                percent_encoding::NON_ALPHANUMERIC,
            ));
        } else {
            out.push(c);
        }
    }
    out
}

impl FromStr for RemoteUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if starts_with_ci(s, SSH_SCHEME) {
            return parse_ssh_url(&s[SSH_SCHEME.len()..]);
        }
        let Some((scheme_len, tls)) = Self::scheme_len(s) else {
            if let Some((destination, path)) = scp_split(s) {
                return parse_scp(destination, path);
            }
            return Err(err(format!(
                "{s:?} is not a remote location: it must start with ferry://, ferrys:// or \
                 ssh://, or be host:path"
            )));
        };
        let rest = &s[scheme_len..];
        let (authority, raw_path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (user, host, port) = parse_authority(authority)?;
        let path = typed_path(&percent_decode_bytes(raw_path)?)?;
        Ok(RemoteUrl {
            tls,
            user,
            host,
            port: port.unwrap_or(DEFAULT_PORT),
            path,
            ssh: None,
        })
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match (self.ssh, self.tls) {
            (Some(_), _) => SSH_SCHEME,
            (None, true) => TLS_SCHEME,
            (None, false) => SCHEME,
        };
        f.write_str(scheme)?;
        if let Some(user) = &self.user {
            write!(f, "{}@", encode_user(user))?;
        }
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.ssh {
            Some(SshVia { port: None, .. }) => write!(f, "{host}/")?,
            _ => write!(f, "{host}:{}/", self.port)?,
        }
        if self.needs_home() {
            f.write_str(if self.path.is_empty() { "~" } else { "~/" })?;
        }
        f.write_str(&percent_encode(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> RemoteUrl {
        s.parse().unwrap()
    }

    #[test]
    fn parses_host_port_and_path() {
        assert_eq!(
            url("ferry://example.org:9000/docs/a.txt"),
            RemoteUrl {
                tls: false,
                user: None,
                host: "example.org".into(),
                port: 9000,
                path: "docs/a.txt".into(),
                ssh: None,
            }
        );
        assert_eq!(url("ferry://h").port, DEFAULT_PORT);
        assert_eq!(url("ferry://h").path, "");
        assert_eq!(url("ferry://h/").path, "");
        assert_eq!(url("ferry://h:1//docs/sub/").path, "docs/sub");
        assert_eq!(url("FERRY://h/x").path, "x");
    }

    #[test]
    fn a_user_name_is_decoded_and_printed_back() {
        let u = url("ferry://ann@example.org:9000/docs");
        assert_eq!(u.user.as_deref(), Some("ann"));
        assert_eq!((u.host.as_str(), u.port), ("example.org", 9000));
        assert_eq!(u.to_string(), "ferry://ann@example.org:9000/docs");
        let odd = url("ferrys://a%40b%3Ac@[::1]/");
        assert_eq!(odd.user.as_deref(), Some("a@b:c"));
        assert_eq!(url(&odd.to_string()), odd);
        assert_eq!(odd.endpoint(None).user.as_deref(), Some("a@b:c"));
        assert_eq!(url("ferry://h/").user, None);
    }

    #[test]
    fn ipv6_goes_in_brackets() {
        let u = url("ferry://[::1]:7071/a");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 7071, "a")
        );
        assert_eq!(url("ferry://[fe80::1]/").port, DEFAULT_PORT);
        assert!("ferry://::1/a".parse::<RemoteUrl>().is_err());
        assert!("ferry://[::1/a".parse::<RemoteUrl>().is_err());
        assert!("ferry://[nothex]/a".parse::<RemoteUrl>().is_err());
        assert!("ferry://[::1]x/a".parse::<RemoteUrl>().is_err());
    }

    #[test]
    fn percent_escapes_decode_and_round_trip() {
        let u = url("ferry://h/my%20file%20%22v2%22%25.txt");
        assert_eq!(u.path, "my file \"v2\"%.txt");
        assert_eq!(url(&u.to_string()), u);
        let u = url("ferry://h/%C3%BCn%C3%AFcode/日本");
        assert_eq!(u.path, "ünïcode/日本");
        assert_eq!(url(&u.to_string()), u);
        let v6 = url("ferry://[::1]:9/a%20b");
        assert_eq!(v6.to_string(), "ferry://[::1]:9/a%20b");
        assert_eq!(url(&v6.to_string()), v6);
    }

    #[test]
    fn refuses_bad_locations_with_a_reason() {
        for (bad, why) in [
            ("/local/path", "must start with ferry://"),
            ("http://h/a", "must start with ferry://"),
            ("ssh://-oProxyCommand=x/", "not a host name"),
            ("-oProxyCommand=x:a", "not a host name"),
            ("ssh://h/~ann/x", "~user paths"),
            ("h:a/../b", "bad path"),
            ("ferry://", "no host"),
            ("ferry://:7070/a", "no host"),
            ("ferry://h:0/", "not a port"),
            ("ferry://h:99999/", "not a port"),
            ("ferry://h:http/", "not a port"),
            ("ferry://ann:pw@h/", "password in a location is refused"),
            ("ferry://@h/", "user name before '@' is empty"),
            ("ferry://h/a/../b", "bad path"),
            ("ferry://h/a%2F..%2Fb", "bad path"),
            ("ferry://h/a//b", "bad path"),
            ("ferry://h/a%00b", "bad path"),
            ("ferry://h/a%zz", "percent escape"),
            ("ferry://h/a%2", "percent escape"),
            // Two hex digits, nothing else: a sign is not a digit (`%+1` was once read as 0x01).
            ("ferry://h/a%+1b", "percent escape"),
            ("ferry://h/a\\qb", "bad path"),
            ("ferry://h/a\\x2fb", "bad path"),
            ("ferry://h/\\x2e\\x2e/b", "bad path"),
        ] {
            let e = bad.parse::<RemoteUrl>().unwrap_err();
            assert!(e.0.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn any_name_can_be_typed_as_ferry_shows_it_or_as_percent_escapes() {
        for (typed, wire) in [
            ("ferry://h/new\\nline", "new\\nline"),
            ("ferry://h/new%0Aline", "new\\nline"),
            ("ferry://h/d/%FF%80", "d/\\xff\\x80"),
            ("ferry://h/\\xFF", "\\xff"),
            ("ferry://h/back\\\\slash", "back\\\\slash"),
            ("ferry://h/x\\u{202e}y", "x\u{202e}y"),
            ("ferry://h/caf\\xc3\\xa9", "caf\u{e9}"),
        ] {
            let u = url(typed);
            assert_eq!(u.path, wire, "{typed}");
            assert_eq!(url(&u.to_string()), u, "{typed} prints back");
        }
    }

    #[test]
    fn ferrys_is_the_same_location_over_tls() {
        let u = url("ferrys://example.org:9000/docs/a.txt");
        assert!(u.tls);
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("example.org", 9000, "docs/a.txt")
        );
        assert_eq!(url("FERRYS://h").port, DEFAULT_PORT);
        assert!(!url("ferry://h").tls);
        assert_eq!(u.to_string(), "ferrys://example.org:9000/docs/a.txt");
        assert_eq!(url(&u.to_string()), u);
        assert_eq!(url("ferrys://[::1]:9/a").to_string(), "ferrys://[::1]:9/a");
        assert!(u.with_path("b").tls);
        let endpoint = u.endpoint(Some("t".into()));
        assert!(endpoint.tls && !endpoint.accept_new && !endpoint.insecure);
        assert!(!url("ferry://h").endpoint(None).tls);
        assert!("ferryss://h/".parse::<RemoteUrl>().is_err());
    }

    #[test]
    fn tells_remote_arguments_from_local_ones() {
        assert!(RemoteUrl::looks_remote("ferrys://h/"));
        assert!(RemoteUrl::looks_remote("ferry://h/"));
        assert!(!RemoteUrl::looks_remote("./ferry://h"));
        assert!(!RemoteUrl::looks_remote("f"));
    }

    #[test]
    fn scp_locations_are_relative_to_the_home_unless_absolute() {
        let u = url("nas:photos/2024");
        assert_eq!(
            (u.host.as_str(), u.path.as_str(), u.user.as_deref()),
            ("nas", "photos/2024", None)
        );
        assert!(u.needs_home());
        assert_eq!(u.under_home("home/ann").path, "home/ann/photos/2024");
        assert!(!u.under_home("home/ann").needs_home());
        assert_eq!(url("nas:").under_home("root").path, "root");
        assert_eq!(url("nas:~").under_home("root").path, "root");
        assert_eq!(url("nas:~/x").under_home("root").path, "root/x");
        let abs = url("ann@nas:/srv/a b");
        assert_eq!(
            (abs.user.as_deref(), abs.path.as_str()),
            (Some("ann"), "srv/a b")
        );
        assert!(!abs.needs_home());
        assert_eq!(abs.under_home("root"), abs);
        let v6 = url("[::1]:/tmp");
        assert_eq!((v6.host.as_str(), v6.path.as_str()), ("::1", "tmp"));
        // As scp: no percent-decoding in this form.
        assert_eq!(url("h:50%25").path, "50%25");
    }

    #[test]
    fn ssh_urls_name_a_port_only_when_given() {
        let u = url("ssh://ann@nas:2222/srv/x");
        assert_eq!(
            u.ssh,
            Some(SshVia {
                port: Some(2222),
                home_relative: false
            })
        );
        assert_eq!((u.path.as_str(), u.port), ("srv/x", 2222));
        let e = u.endpoint(Some("t".into()));
        let target = e.ssh.clone().unwrap();
        assert_eq!(
            (target.user.as_deref(), target.port),
            (Some("ann"), Some(2222))
        );
        assert_eq!(e.token, None);
        assert_eq!(e.address(), "ssh://ann@nas:2222");
        assert_eq!(url("ssh://nas").ssh.unwrap().port, None);
        assert!(url("ssh://nas/~/a").needs_home());
        assert!(url("ssh://nas/~").needs_home());
        assert!(!url("ferry://nas/x").needs_home());
    }

    #[test]
    fn ssh_locations_print_back_to_themselves() {
        for typed in [
            "ssh://ann@nas:2222/srv/x",
            "ssh://nas/a%20b",
            "nas:photos",
            "nas:",
            "ann@nas:/abs",
            "[::1]:rel",
        ] {
            let u = url(typed);
            assert_eq!(url(&u.to_string()), u, "{typed} -> {u}");
        }
        assert_eq!(url("nas:photos").to_string(), "ssh://nas/~/photos");
        assert_eq!(url("nas:").to_string(), "ssh://nas/~");
        assert_eq!(url("nas:/x").to_string(), "ssh://nas/x");
    }

    #[test]
    fn a_colon_before_any_slash_makes_an_scp_location() {
        for remote in [
            "nas:",
            "nas:x",
            "ann@nas:x",
            "h:/abs",
            "[::1]:x",
            "ssh://h/",
        ] {
            assert!(RemoteUrl::looks_remote(remote), "{remote}");
        }
        for local in [
            "./a:b",
            "/x/a:b",
            "file",
            ":x",
            "dir/sub:x",
            "ann@nas",
            "@:x",
        ] {
            assert!(!RemoteUrl::looks_remote(local), "{local}");
        }
    }
}
