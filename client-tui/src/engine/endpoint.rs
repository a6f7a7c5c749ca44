//! [`Endpoint`]: where a server is and the credentials and trust choices for it.

use super::known_hosts;
use super::ssh::SshTarget;

/// Where a server is and how to prove we may use it. `Debug` shows whether secrets are set,
/// never what they are, so an endpoint can be logged.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub token: Option<String>,
    /// Speak TLS (a `ferrys://` location).
    pub tls: bool,
    /// The certificate fingerprint the user pinned; it alone decides trust when set.
    pub fingerprint: Option<known_hosts::Fingerprint>,
    /// Trust a certificate nothing vouches for on first use, and record it in known-hosts.
    pub accept_new: bool,
    /// Allow credentials in clear text to another machine (plain `ferry://`).
    pub insecure: bool,
    /// The account to log in as, on a server with a users file.
    pub user: Option<String>,
    /// The account's password: from `FERRY_PASSWORD`, a prompt or the connect dialog; never
    /// from a location, never stored.
    pub password: Option<String>,
    /// Reach the server through ssh (`ssh://` and `host:path` locations): the system's `ssh`
    /// runs `ferry-server --stdio` there. `host`, `port` and the ferry credentials are then
    /// unused: ssh authenticates.
    pub ssh: Option<SshTarget>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |secret: &Option<String>| secret.as_ref().map(|_| "<redacted>");
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("token", &redacted(&self.token))
            .field("tls", &self.tls)
            .field("fingerprint", &self.fingerprint)
            .field("accept_new", &self.accept_new)
            .field("insecure", &self.insecure)
            .field("user", &self.user)
            .field("password", &redacted(&self.password))
            .field("ssh", &self.ssh)
            .finish()
    }
}

impl Endpoint {
    /// `host:port` (an IPv6 host in brackets): how the server is named in messages and in
    /// known-hosts; `ssh://[user@]host[:port]` for a server reached through ssh.
    pub fn address(&self) -> String {
        if let Some(ssh) = &self.ssh {
            return ssh.label();
        }
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}
