//! TLS for `ferrys://` endpoints: deciding whether a server's certificate is trusted, the
//! handshake that applies that decision, and the rule that credentials never cross the network
//! in clear text. Opening sockets and splitting streams is `transport`'s; it calls in here.
//!
//! Trust is decided in this order: a pin given by the user (`--fingerprint`, a bookmark's
//! `fingerprint`) must match; else the known-hosts entry must match; else a certificate that
//! chains to the system roots for the host name is accepted; else, when the user said
//! `--accept-new`, the certificate is trusted and recorded; else the connection fails with the
//! presented fingerprint, so the user can check it and pin it. Whatever decides, rustls still
//! checks the handshake signatures, so a pinned certificate must still prove its key.

use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;

use super::endpoint::Endpoint;
use super::error::EngineError;
use super::known_hosts::{Fingerprint, KnownHosts};

pub(crate) type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// Engine-local error codes of trust decisions, printed first on the CLI's error line.
pub mod code {
    /// The certificate does not match the fingerprint the user pinned.
    pub const FINGERPRINT_MISMATCH: &str = "fingerprint_mismatch";
    /// The certificate differs from the one recorded in known-hosts.
    pub const CERTIFICATE_CHANGED: &str = "certificate_changed";
    /// Nothing vouches for the certificate: no pin, no known-hosts entry, no system root.
    pub const UNKNOWN_CERTIFICATE: &str = "unknown_certificate";
    /// The TLS handshake failed for another reason (not TLS, bad signature, protocol).
    pub const TLS: &str = "tls";
    /// A token or password would go in clear text to another machine.
    pub const CLEARTEXT_CREDENTIALS: &str = "cleartext_credentials";
}

/// What vouched for a server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedBy {
    /// The fingerprint the user pinned.
    Pin,
    /// The known-hosts entry.
    KnownHosts,
    /// A chain to the system's root certificates for the host name.
    SystemRoots,
    /// Nothing yet: trusted now on first use (`--accept-new`, or the user's yes in the TUI).
    FirstUse,
}

/// How a server's certificate was trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted {
    pub fingerprint: Fingerprint,
    pub by: TrustedBy,
}

/// What the verifier saw, read after the handshake to explain a failure or report a success.
#[derive(Debug, Clone)]
enum Verdict {
    Trusted(Trusted),
    Mismatch {
        presented: Fingerprint,
        expected: Fingerprint,
    },
    Changed {
        presented: Fingerprint,
        recorded: Fingerprint,
    },
    Unknown {
        presented: Fingerprint,
        why: String,
    },
}

/// The rustls verifier that applies ferry's trust order and remembers its verdict.
#[derive(Debug)]
struct Verifier {
    pin: Option<Fingerprint>,
    recorded: Option<Fingerprint>,
    roots: Option<Arc<WebPkiServerVerifier>>,
    accept_new: bool,
    provider: Arc<CryptoProvider>,
    verdict: Mutex<Option<Verdict>>,
}

impl Verifier {
    fn decide(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Verdict {
        let presented = Fingerprint::of(end_entity.as_ref());
        let trusted = |by| {
            Verdict::Trusted(Trusted {
                fingerprint: presented,
                by,
            })
        };
        if let Some(expected) = self.pin {
            return if presented == expected {
                trusted(TrustedBy::Pin)
            } else {
                Verdict::Mismatch {
                    presented,
                    expected,
                }
            };
        }
        if let Some(recorded) = self.recorded {
            return if presented == recorded {
                trusted(TrustedBy::KnownHosts)
            } else {
                Verdict::Changed {
                    presented,
                    recorded,
                }
            };
        }
        let chained = match &self.roots {
            Some(roots) => roots
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
                .map_err(|e| untrusted_because(&e)),
            None => Err("no system root certificates were found".to_owned()),
        };
        match chained {
            Ok(_) => trusted(TrustedBy::SystemRoots),
            Err(_) if self.accept_new => trusted(TrustedBy::FirstUse),
            Err(why) => Verdict::Unknown { presented, why },
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.decide(end_entity, intermediates, server_name, ocsp, now);
        let ok = matches!(verdict, Verdict::Trusted(_));
        *self.verdict.lock().unwrap_or_else(PoisonError::into_inner) = Some(verdict);
        if ok {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The system's root certificates, loaded once per process: reading them costs milliseconds
/// and every worker connection would otherwise repeat it.
fn system_roots(provider: &Arc<CryptoProvider>) -> Option<Arc<WebPkiServerVerifier>> {
    static ROOTS: OnceLock<Option<Arc<rustls::RootCertStore>>> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        let mut store = rustls::RootCertStore::empty();
        store.add_parsable_certificates(loaded.certs);
        (!store.is_empty()).then(|| Arc::new(store))
    });
    let roots = Arc::clone(roots.as_ref()?);
    WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(provider))
        .build()
        .ok()
}

/// Why the system roots do not vouch for a certificate, in words.
fn untrusted_because(error: &rustls::Error) -> String {
    use rustls::CertificateError as E;
    match error {
        rustls::Error::InvalidCertificate(
            E::NotValidForName | E::NotValidForNameContext { .. },
        ) => "it is not issued for this host name".into(),
        rustls::Error::InvalidCertificate(E::Expired | E::ExpiredContext { .. }) => {
            "it has expired".into()
        }
        rustls::Error::InvalidCertificate(E::NotValidYet | E::NotValidYetContext { .. }) => {
            "it is not valid yet".into()
        }
        rustls::Error::InvalidCertificate(E::Revoked) => "it has been revoked".into(),
        _ => "no authority this system trusts vouches for it (self-signed?)".into(),
    }
}

/// Whether `host` names this machine, where nothing crosses a network: 127/8, `::1`,
/// `localhost`. A name that merely resolves to loopback does not count.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Refuses, before anything is sent, to present a token or password in clear text to another
/// machine, unless the user said `--insecure`.
pub fn check_cleartext(endpoint: &Endpoint, addr: &str) -> Result<(), EngineError> {
    let credentials = endpoint.token.is_some() || endpoint.password.is_some();
    if endpoint.tls || endpoint.insecure || !credentials || is_loopback(&endpoint.host) {
        return Ok(());
    }
    Err(EngineError::Trust {
        code: code::CLEARTEXT_CREDENTIALS,
        addr: addr.to_owned(),
        presented: None,
        message: "refusing to send credentials in clear text to another machine; use a \
                  ferrys:// location, or pass --insecure if the network is trusted"
            .into(),
    })
}

/// Connects TLS over `stream`, deciding trust as the module describes. With
/// [`Endpoint::accept_new`] a certificate nothing vouches for is trusted and recorded in
/// `known_hosts`.
pub(crate) async fn connect(
    stream: TcpStream,
    endpoint: &Endpoint,
    addr: &str,
    known_hosts: Option<&KnownHosts>,
) -> Result<(TlsStream, Trusted), EngineError> {
    let failed = |code: &'static str, presented, message: String| EngineError::Trust {
        code,
        addr: addr.to_owned(),
        presented,
        message,
    };
    let recorded = match (&endpoint.fingerprint, known_hosts) {
        (None, Some(hosts)) => hosts.lookup(addr).map_err(|e| {
            failed(
                code::TLS,
                None,
                format!(
                    "cannot read {}: {e}",
                    crate::format::local_path(hosts.path())
                ),
            )
        })?,
        _ => None,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Verifier {
        pin: endpoint.fingerprint,
        recorded,
        roots: if endpoint.fingerprint.is_none() && recorded.is_none() {
            system_roots(&provider)
        } else {
            None
        },
        accept_new: endpoint.accept_new,
        provider: Arc::clone(&provider),
        verdict: Mutex::new(None),
    });
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(code::TLS, None, e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&verifier) as Arc<dyn ServerCertVerifier>)
        .with_no_client_auth();
    let name = ServerName::try_from(endpoint.host.clone())
        .map_err(|e| failed(code::TLS, None, format!("bad server name: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let handshake = connector.connect(name, stream).await;
    let verdict = verifier
        .verdict
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let stream = match (handshake, verdict) {
        (Ok(stream), Some(Verdict::Trusted(trusted))) => (stream, trusted),
        (Ok(_), _) => {
            return Err(failed(
                code::TLS,
                None,
                "the handshake ended without a certificate".into(),
            ));
        }
        (
            Err(_),
            Some(Verdict::Mismatch {
                presented,
                expected,
            }),
        ) => {
            return Err(failed(
                code::FINGERPRINT_MISMATCH,
                Some(presented),
                format!(
                    "the server's certificate is {presented}, not the pinned {expected}; \
                     check the fingerprint with the server's owner"
                ),
            ));
        }
        (
            Err(_),
            Some(Verdict::Changed {
                presented,
                recorded,
            }),
        ) => {
            let file =
                known_hosts.map_or_else(String::new, |h| crate::format::local_path(h.path()));
            return Err(failed(
                code::CERTIFICATE_CHANGED,
                Some(presented),
                changed_warning(addr, &recorded, &presented, &file),
            ));
        }
        (Err(_), Some(Verdict::Unknown { presented, why })) => {
            return Err(failed(
                code::UNKNOWN_CERTIFICATE,
                Some(presented),
                format!(
                    "the server's certificate is not trusted: {why}. It presented \
                     {presented}; if the server's owner confirms that fingerprint, pass \
                     --fingerprint {presented} or --accept-new"
                ),
            ));
        }
        (Err(e), _) => return Err(failed(code::TLS, None, tls_message(&e))),
    };
    if stream.1.by == TrustedBy::FirstUse
        && let Some(hosts) = known_hosts
    {
        hosts.record(addr, &stream.1.fingerprint).map_err(|e| {
            failed(
                code::TLS,
                Some(stream.1.fingerprint),
                format!(
                    "cannot record the certificate in {}: {e}",
                    crate::format::local_path(hosts.path())
                ),
            )
        })?;
    }
    Ok(stream)
}

/// The loud, multi-line warning for a certificate that differs from the recorded one.
pub fn changed_warning(
    addr: &str,
    recorded: &Fingerprint,
    presented: &Fingerprint,
    file: &str,
) -> String {
    let file = if file.is_empty() { "known_hosts" } else { file };
    format!(
        "\n@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
         @    WARNING: SERVER CERTIFICATE HAS CHANGED!             @\n\
         @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
         Someone could be intercepting your connection to {addr} (man-in-the-middle),\n\
         or its owner replaced the certificate.\n\
         Recorded:  {recorded}\n\
         Presented: {presented}\n\
         Nothing was sent. If the owner confirms the new certificate, remove the line for\n\
         {addr} from {file}, or pass --fingerprint {presented}"
    )
}

/// A handshake error in words, without rustls's type names.
fn tls_message(error: &io::Error) -> String {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidMessage(_))
        | Some(rustls::Error::InappropriateMessage { .. }) => {
            "the server does not speak TLS (is it a plain ferry:// server?)".into()
        }
        Some(e) => format!("TLS handshake failed: {e}"),
        None if error.kind() == io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the TLS handshake".into()
        }
        None => format!("TLS handshake failed: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(host: &str, tls: bool, token: Option<&str>, insecure: bool) -> Endpoint {
        Endpoint {
            host: host.into(),
            port: 7070,
            token: token.map(Into::into),
            tls,
            insecure,
            ..Endpoint::default()
        }
    }

    #[test]
    fn credentials_stay_off_the_network_in_clear_text() {
        let refused =
            check_cleartext(&endpoint("192.0.2.1", false, Some("s"), false), "a").unwrap_err();
        assert_eq!(refused.code(), code::CLEARTEXT_CREDENTIALS);
        assert!(refused.to_string().contains("--insecure"), "{refused}");
        for host in ["files.example.org", "10.0.0.2", "::2", "localhost.example"] {
            assert!(check_cleartext(&endpoint(host, false, Some("s"), false), "a").is_err());
        }
        let password = Endpoint {
            host: "192.0.2.1".into(),
            port: 7070,
            user: Some("ann".into()),
            password: Some("pw".into()),
            ..Endpoint::default()
        };
        assert!(
            check_cleartext(&password, "a").is_err(),
            "a password counts as much as a token"
        );
        // TLS, an explicit --insecure, no credentials, or this machine: allowed.
        assert!(check_cleartext(&endpoint("192.0.2.1", true, Some("s"), false), "a").is_ok());
        assert!(check_cleartext(&endpoint("192.0.2.1", false, Some("s"), true), "a").is_ok());
        assert!(check_cleartext(&endpoint("192.0.2.1", false, None, false), "a").is_ok());
        for host in ["127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST."] {
            assert!(check_cleartext(&endpoint(host, false, Some("s"), false), "a").is_ok());
        }
    }

    #[test]
    fn the_changed_warning_names_host_both_fingerprints_and_the_fix() {
        let text = changed_warning(
            "h:7070",
            &Fingerprint([1; 32]),
            &Fingerprint([2; 32]),
            "/home/u/.local/share/ferry/known_hosts",
        );
        assert!(text.contains("HAS CHANGED"));
        assert!(text.contains("h:7070"));
        assert!(text.contains(&Fingerprint([1; 32]).to_string()));
        assert!(text.contains(&Fingerprint([2; 32]).to_string()));
        assert!(text.contains("/home/u/.local/share/ferry/known_hosts"));
        assert!(text.lines().count() >= 6);
    }

    #[test]
    fn the_warning_frame_lines_up() {
        let fp = Fingerprint([7; 32]);
        let text = changed_warning("nas:7070", &fp, &fp, "/home/ann/known_hosts");
        let frame: Vec<&str> = text.lines().filter(|line| line.starts_with('@')).collect();
        assert_eq!(frame.len(), 3, "{text}");
        assert!(
            frame.iter().all(|line| line.len() == frame[0].len()),
            "{text}"
        );
    }
}
