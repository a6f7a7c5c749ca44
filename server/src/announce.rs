//! Announcing a listening server on the local network with DNS-SD over multicast DNS
//! (`_ferry._tcp.local.`), the way printers and NAS boxes make themselves known, so a client
//! can list it without being told its address. Only the binary announces: an embedded server
//! (the client's bundled one) listens on loopback, which is never announced.
//!
//! What is announced is a hint for people choosing a server, never a credential: the
//! certificate fingerprint in the TXT record lets a client check the handshake against it, but
//! anyone on the network can announce anything (SECURITY.md, "Discovery").

use std::net::SocketAddr;
use std::time::Duration;

use mdns_sd::{IfKind, ServiceDaemon, ServiceInfo};
use tracing::{debug, info, warn};

/// The DNS-SD service type ferry servers announce and clients browse.
pub const SERVICE_TYPE: &str = "_ferry._tcp.local.";
/// TXT key: the protocol version the server speaks.
pub const TXT_VERSION: &str = "v";
/// TXT key: `1` when the server speaks TLS (`ferrys://`), `0` otherwise.
pub const TXT_TLS: &str = "tls";
/// TXT key: the certificate's `SHA256:AB:CD:...` fingerprint, present only with TLS.
pub const TXT_FINGERPRINT: &str = "fp";
/// TXT key: `1` when the server refuses every change.
pub const TXT_READ_ONLY: &str = "ro";
/// The longest instance name: one DNS label.
pub const MAX_NAME_LEN: usize = 63;
/// How long shutdown waits for the goodbye packets to leave before giving up on them.
const GOODBYE_WAIT: Duration = Duration::from_secs(1);

/// What a server says about itself.
#[derive(Debug, Clone)]
pub struct Announcement {
    /// The instance name people see (`--name`, or the host name).
    pub name: String,
    /// The certificate fingerprint when the server speaks TLS.
    pub fingerprint: Option<String>,
    /// Whether every change is refused.
    pub read_only: bool,
}

/// A running announcement; [`Announcer::stop`] withdraws it.
pub struct Announcer {
    daemon: ServiceDaemon,
    fullname: String,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer")
            .field("fullname", &self.fullname)
            .finish_non_exhaustive()
    }
}

/// Why the server could not announce itself (it serves on regardless).
#[derive(Debug, thiserror::Error)]
#[error("cannot announce on the local network: {0}")]
pub struct AnnounceError(#[from] mdns_sd::Error);

/// This machine's host name, its first label only (`nas` of `nas.example.org`), or `ferry`
/// when it has none.
pub fn host_name() -> String {
    let uname = rustix::system::uname();
    let node = uname.nodename().to_string_lossy();
    let first = node.split('.').next().unwrap_or_default().trim();
    if first.is_empty() {
        "ferry".to_owned()
    } else {
        first.to_owned()
    }
}

/// Starts announcing a server listening on `bound`. A loopback address is never announced
/// (`Ok(None)`, said at debug level): nobody else could connect to it. An unspecified address
/// is announced on every non-loopback interface (IPv4 only for `0.0.0.0`), a specific one on
/// its own interface only.
pub fn start(bound: SocketAddr, what: &Announcement) -> Result<Option<Announcer>, AnnounceError> {
    let ip = bound.ip();
    if ip.is_loopback() {
        debug!(%bound, "listening on loopback only: not announced on the local network");
        return Ok(None);
    }
    let daemon = ServiceDaemon::new()?;
    daemon.disable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])?;
    let addresses = if ip.is_unspecified() {
        if ip.is_ipv4() {
            daemon.disable_interface(IfKind::IPv6)?;
        }
        String::new()
    } else {
        daemon.disable_interface(IfKind::All)?;
        daemon.enable_interface(IfKind::Addr(ip))?;
        ip.to_string()
    };
    let name = instance_name(&what.name);
    let host = format!("{}.local.", host_name());
    let mut properties = vec![
        (TXT_VERSION, ferry_protocol::VERSION.to_string()),
        (TXT_TLS, u8::from(what.fingerprint.is_some()).to_string()),
        (TXT_READ_ONLY, u8::from(what.read_only).to_string()),
    ];
    if let Some(fingerprint) = &what.fingerprint {
        properties.push((TXT_FINGERPRINT, fingerprint.clone()));
    }
    let mut info = ServiceInfo::new(
        SERVICE_TYPE,
        &name,
        &host,
        addresses.as_str(),
        bound.port(),
        &properties[..],
    )?;
    if ip.is_unspecified() {
        info = info.enable_addr_auto();
    } else {
        info.set_interfaces(vec![IfKind::Addr(ip)]);
    }
    let fullname = info.get_fullname().to_owned();
    if let Err(err) = daemon.register(info) {
        drop(daemon.shutdown());
        return Err(err.into());
    }
    info!(name = %name, service = SERVICE_TYPE, port = bound.port(), "announced on the local network");
    Ok(Some(Announcer { daemon, fullname }))
}

impl Announcer {
    /// Withdraws the announcement (goodbye packets, so browsers forget it at once) and stops
    /// the responder; waits at most a second for them to leave.
    pub fn stop(self) {
        match self.daemon.unregister(&self.fullname) {
            Ok(status) => {
                if status.recv_timeout(GOODBYE_WAIT).is_err() {
                    debug!("the announcement's goodbye was not confirmed in time");
                }
            }
            Err(err) => warn!(%err, "cannot withdraw the announcement"),
        }
        if let Ok(status) = self.daemon.shutdown() {
            drop(status.recv_timeout(GOODBYE_WAIT));
        }
    }
}

/// `name` cut to one DNS label's bytes on a character boundary, control characters left out;
/// the host name when nothing is left.
fn instance_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_NAME_LEN {
            break;
        }
        out.push(c);
    }
    if out.trim().is_empty() {
        host_name()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_to_one_label_on_a_char_boundary() {
        let name = "é".repeat(40);
        let cut = instance_name(&name);
        assert!(cut.len() <= MAX_NAME_LEN);
        assert_eq!(cut, "é".repeat(31));
        assert_eq!(instance_name("a\u{7}b"), "ab");
        assert_eq!(instance_name("  "), host_name());
    }
}
