//! `ferry://HOST:PORT/PATH` locations (being written by the engine/CLI work).

use std::fmt;
use std::str::FromStr;

/// A parsed `ferry://HOST:PORT/PATH` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    /// Host name or IP address; IPv6 without brackets.
    pub host: String,
    /// Port, [`ferry_protocol::DEFAULT_PORT`] when the URL names none.
    pub port: u16,
    /// The wire path: no leading or trailing `/`, `""` for the root, checked by the path rules.
    pub path: String,
}

/// Why a location could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(pub String);

impl FromStr for RemoteUrl {
    type Err = UrlError;

    fn from_str(_s: &str) -> Result<Self, Self::Err> {
        Err(UrlError("not written yet".into()))
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ferry://{}:{}/{}", self.host, self.port, self.path)
    }
}
