//! The server's TLS identity: a certificate and key from PEM files, or a self-signed pair made
//! on first start and kept in the data directory so its fingerprint never changes; and the
//! `SHA256:AB:CD:...` fingerprint clients pin, in the exact form `openssl x509 -fingerprint
//! -sha256` prints, so an owner can compare the two by eye.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// File names of the generated pair inside the data directory.
const CERT_FILE: &str = "tls-cert.pem";
const KEY_FILE: &str = "tls-key.pem";

/// A ready TLS configuration and the fingerprint of the certificate it presents.
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    /// What [`crate::Config::tls`] takes.
    pub config: Arc<ServerConfig>,
    /// `SHA256:` and the upper-case, colon-separated hex of the leaf certificate's SHA-256.
    pub fingerprint: String,
    /// Where the certificate came from (shown in the start-up log).
    pub cert_path: PathBuf,
    /// Whether this start generated the pair (false when it was loaded).
    pub generated: bool,
}

/// Why no TLS identity could be made; each names the file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} holds no usable PEM {what}: {message}", path.display())]
    Pem {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("the key {} does not fit the certificate {}: {message}", key.display(), cert.display())]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
    #[error("no data directory to keep the certificate in; pass --data-dir")]
    NoDataDir,
}

/// The `SHA256:AB:CD:...` fingerprint of a DER certificate.
pub fn fingerprint(cert_der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert_der);
    let mut out = String::from("SHA256:");
    for (i, byte) in digest.as_ref().iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{byte:02X}"));
    }
    out
}

/// The data directory of `ferry-server` for this user, where a generated pair is kept.
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "ferry-server").map(|dirs| dirs.data_dir().to_owned())
}

/// The identity in a certificate chain file and a private key file, both PEM.
pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsIdentity, TlsError> {
    let certs = read_certs(cert)?;
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error("private key", key, e))?;
    build(certs, key_der, cert, key, false)
}

/// The generated identity kept in `data_dir`, made on the first call with `names` (host names
/// and IP addresses) as its subject alternative names, and loaded unchanged on later calls so
/// clients that pinned it keep trusting it.
pub fn self_signed(data_dir: &Path, names: &[String]) -> Result<TlsIdentity, TlsError> {
    let cert = data_dir.join(CERT_FILE);
    let key = data_dir.join(KEY_FILE);
    if cert.exists() || key.exists() {
        return from_pem_files(&cert, &key);
    }
    let generated = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    create_private_dir(data_dir)?;
    // The key first and the certificate last: a start interrupted between the two leaves no
    // certificate, and the next start sees the key alone and reports it instead of guessing.
    write_new(&key, generated.signing_key.serialize_pem().as_bytes())?;
    write_new(&cert, generated.cert.pem().as_bytes())?;
    let certs = vec![generated.cert.der().clone()];
    let key_der = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    build(certs, key_der, &cert, &key, true)
}

/// The subject alternative names a generated certificate carries for a server listening on
/// `listen`: the loopback names, the listen host, and this machine's host name.
pub fn names_for(listen: &str) -> Vec<String> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let host = match listen.rsplit_once(':') {
        Some((host, _port)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => listen,
    };
    let unspecified = host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified());
    if !host.is_empty() && !unspecified {
        names.push(host.to_owned());
    }
    if let Ok(name) = fs::read_to_string("/etc/hostname") {
        let name = name.trim();
        if !name.is_empty() {
            names.push(name.to_owned());
        }
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|name| seen.insert(name.clone()));
    names
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error("certificate", path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("certificate", path, e))?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: "certificate",
            path: path.to_owned(),
            message: "no CERTIFICATE section found".into(),
        });
    }
    Ok(certs)
}

fn pem_error(what: &'static str, path: &Path, error: rustls::pki_types::pem::Error) -> TlsError {
    use rustls::pki_types::pem::Error;
    match error {
        Error::Io(source) => TlsError::Read {
            what,
            path: path.to_owned(),
            source,
        },
        Error::NoItemsFound => TlsError::Pem {
            what,
            path: path.to_owned(),
            message: format!("no {what} section found"),
        },
        other => TlsError::Pem {
            what,
            path: path.to_owned(),
            message: other.to_string(),
        },
    }
}

fn build(
    certs: Vec<CertificateDer<'static>>,
    key_der: PrivateKeyDer<'static>,
    cert: &Path,
    key: &Path,
    generated: bool,
) -> Result<TlsIdentity, TlsError> {
    let fingerprint = fingerprint(certs[0].as_ref());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Generate(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| TlsError::Mismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
            message: e.to_string(),
        })?;
    Ok(TlsIdentity {
        config: Arc::new(config),
        fingerprint,
        cert_path: cert.to_owned(),
        generated,
    })
}

fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })
}

/// Writes a file that must not exist yet, readable by its owner only, under a hidden name
/// renamed into place once whole, so a crash never leaves half a key under the final name.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    let failed = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = (|| {
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written.map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_openssl_style() {
        let fp = fingerprint(b"abc");
        assert_eq!(
            fp,
            "SHA256:BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }

    #[test]
    fn names_cover_loopback_and_the_listen_host() {
        let names = names_for("192.0.2.7:7070");
        for name in ["localhost", "127.0.0.1", "::1", "192.0.2.7"] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
        let names = names_for("[::]:7070");
        assert!(!names.iter().any(|n| n == "::"), "{names:?}");
        let names = names_for("127.0.0.1:7070");
        assert_eq!(names.iter().filter(|n| *n == "127.0.0.1").count(), 1);
    }
}
