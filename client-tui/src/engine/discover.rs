//! Finding ferry servers on the local network: browsing DNS-SD over multicast DNS for
//! `_ferry._tcp.local.` (what `ferry_server::announce` publishes), for `ferry discover` and
//! F9's list. What arrives is anyone's claim: names are kept as text to be escaped when shown,
//! the number of servers kept is capped, and the fingerprint is only a hint that the TLS
//! handshake must confirm (SECURITY.md, "Discovery").

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ferry_server::announce::{SERVICE_TYPE, TXT_FINGERPRINT, TXT_READ_ONLY, TXT_TLS, TXT_VERSION};
use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent};

/// Servers kept at most, so a network flooding announcements cannot grow the list (or F9's
/// dialog) without bound; later ones are dropped.
pub const MAX_FOUND: usize = 256;
/// The longest name or fingerprint kept, in bytes: a DNS-SD TXT value holds up to 255.
const MAX_TEXT: usize = 255;

/// One server found on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The announced instance name (not escaped: escape it to show it).
    pub name: String,
    /// The address to connect to: an IPv4 address when one was announced.
    pub addr: SocketAddr,
    /// Whether it speaks TLS (`ferrys://`).
    pub tls: bool,
    /// The announced certificate fingerprint: a hint, to be confirmed by the handshake.
    pub fingerprint: Option<String>,
    /// Whether it said it refuses changes.
    pub read_only: bool,
    /// The protocol version it announced, when it did.
    pub version: Option<u32>,
}

impl Found {
    /// The location that opens the server's root: `ferrys://` when it announced TLS. Shared
    /// by `ferry discover` and F9, which must agree on it to match a pick to its announcement.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "ferrys" } else { "ferry" };
        format!("{scheme}://{}/", self.addr)
    }
}

/// What a browse reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoverEvent {
    /// A server was found, or its announcement changed.
    Found(Found),
    /// The server of that instance name withdrew its announcement.
    Gone(String),
}

/// Why browsing could not start.
#[derive(Debug, thiserror::Error)]
#[error("network_error: cannot browse the local network: {0}")]
pub struct DiscoverError(#[from] mdns_sd::Error);

/// A running browse of the local network; dropping it (or [`Browser::stop`]) stops it.
pub struct Browser {
    daemon: ServiceDaemon,
    events: mdns_sd::Receiver<ServiceEvent>,
    /// Instance names seen, so `MAX_FOUND` counts servers, not announcements.
    seen: BTreeSet<String>,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("seen", &self.seen.len())
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts browsing on every non-loopback interface.
    pub fn start() -> Result<Self, DiscoverError> {
        let daemon = ServiceDaemon::new()?;
        daemon.disable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])?;
        let events = daemon.browse(SERVICE_TYPE)?;
        Ok(Self {
            daemon,
            events,
            seen: BTreeSet::new(),
        })
    }

    /// The next server found or gone; `None` once browsing has stopped.
    pub async fn next(&mut self) -> Option<DiscoverEvent> {
        loop {
            let event = self.events.recv_async().await.ok()?;
            match event {
                ServiceEvent::ServiceResolved(service) => {
                    let Some(found) = found_from(&service) else {
                        continue;
                    };
                    if !self.seen.contains(&found.name) {
                        if self.seen.len() >= MAX_FOUND {
                            continue;
                        }
                        self.seen.insert(found.name.clone());
                    }
                    return Some(DiscoverEvent::Found(found));
                }
                ServiceEvent::ServiceRemoved(_, fullname) => {
                    let name = instance_of(&fullname);
                    if self.seen.remove(&name) {
                        return Some(DiscoverEvent::Gone(name));
                    }
                }
                _ => {}
            }
        }
    }

    /// Stops browsing and the responder thread.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        drop(self.daemon.stop_browse(SERVICE_TYPE));
        drop(self.daemon.shutdown());
    }
}

/// The servers found within `timeout`, one per instance name (the latest announcement), sorted
/// by name.
pub async fn discover(timeout: Duration) -> Result<Vec<Found>, DiscoverError> {
    let mut browser = Browser::start()?;
    let mut found = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, browser.next()).await {
        match event {
            DiscoverEvent::Found(server) => {
                found.insert(server.name.clone(), server);
            }
            DiscoverEvent::Gone(name) => {
                found.remove(&name);
            }
        }
    }
    browser.stop();
    Ok(found.into_values().collect())
}

/// A usable server from a resolved announcement: it needs a port and an address; an IPv4
/// address is preferred, then a global IPv6 one (a link-local one needs a scope a URL cannot
/// carry here).
fn found_from(service: &mdns_sd::ResolvedService) -> Option<Found> {
    if service.port == 0 {
        return None;
    }
    let mut addresses: Vec<IpAddr> = service
        .addresses
        .iter()
        .map(mdns_sd::ScopedIp::to_ip_addr)
        .filter(|ip| !ip.is_unspecified() && !ip.is_multicast())
        .filter(|ip| match ip {
            IpAddr::V4(_) => true,
            IpAddr::V6(v6) => !v6.is_unicast_link_local(),
        })
        .collect();
    addresses.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    let ip = *addresses.first()?;
    let text = |key: &str| {
        service
            .txt_properties
            .get_property_val_str(key)
            .map(|value| cut(value.trim()))
    };
    let fingerprint = text(TXT_FINGERPRINT).filter(|fp| !fp.is_empty());
    Some(Found {
        name: cut(&instance_of(&service.fullname)),
        addr: SocketAddr::new(ip, service.port),
        tls: text(TXT_TLS).as_deref() == Some("1"),
        fingerprint,
        read_only: text(TXT_READ_ONLY).as_deref() == Some("1"),
        version: text(TXT_VERSION).and_then(|v| v.parse().ok()),
    })
}

/// The instance name of a full service name (`nas._ferry._tcp.local.` → `nas`).
fn instance_of(fullname: &str) -> String {
    let suffix = format!(".{SERVICE_TYPE}");
    fullname
        .strip_suffix(&suffix)
        .unwrap_or(fullname)
        .to_owned()
}

/// `text` cut to `MAX_TEXT` bytes on a character boundary.
fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_lose_the_service_type() {
        assert_eq!(instance_of("nas._ferry._tcp.local."), "nas");
        assert_eq!(instance_of("odd"), "odd");
        assert_eq!(cut(&"é".repeat(200)).len(), 254);
    }
}
