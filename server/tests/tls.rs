//! TLS end to end: a server from PEM files or its kept self-signed pair, real TLS clients doing
//! hello/put/get with digests checked, plain and garbage peers turned away without harming
//! others, clear errors for bad PEM files, and the real binary logging its fingerprint.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader as StdBufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{STEP, Server, digest, pattern};
use ferry_server::tls;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A certificate for 127.0.0.1 written as PEM files into `dir`; returns (cert, key, DER).
fn write_pem_pair(
    dir: &Path,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    CertificateDer<'static>,
) {
    let pair =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
    (cert, key, pair.cert.der().clone())
}

/// A TLS client that trusts exactly `cert`.
struct TlsClient {
    stream: BufReader<tokio_rustls::client::TlsStream<TcpStream>>,
}

impl TlsClient {
    async fn connect(addr: SocketAddr, cert: &CertificateDer<'static>) -> std::io::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let stream = tokio::time::timeout(STEP, connector.connect(name, tcp))
            .await
            .expect("handshake in time")?;
        Ok(Self {
            stream: BufReader::new(stream),
        })
    }

    async fn send_json(&mut self, value: &Value) {
        let mut line = serde_json::to_vec(value).unwrap();
        line.push(b'\n');
        self.stream.get_mut().write_all(&line).await.unwrap();
        self.stream.get_mut().flush().await.unwrap();
    }

    async fn reply(&mut self) -> Value {
        let mut line = Vec::new();
        let n = tokio::time::timeout(STEP, self.stream.read_until(b'\n', &mut line))
            .await
            .expect("reply in time")
            .unwrap();
        assert!(n > 0, "a reply, not EOF");
        serde_json::from_slice(&line).unwrap()
    }

    async fn request(&mut self, value: Value) -> Value {
        self.send_json(&value).await;
        self.reply().await
    }

    async fn put(&mut self, path: &str, data: &[u8]) -> Value {
        let header = json!({"op": "put", "path": path, "size": data.len()});
        let mut line = serde_json::to_vec(&header).unwrap();
        line.push(b'\n');
        let out = self.stream.get_mut();
        out.write_all(&line).await.unwrap();
        out.write_all(data).await.unwrap();
        out.flush().await.unwrap();
        self.reply().await
    }

    async fn get(&mut self, path: &str) -> (Vec<u8>, Value) {
        let reply = self
            .request(json!({"op": "get", "path": path, "offset": 0}))
            .await;
        assert_eq!(reply["ok"], true, "{reply}");
        let mut data = vec![0u8; reply["size"].as_u64().unwrap() as usize];
        tokio::time::timeout(STEP, self.stream.read_exact(&mut data))
            .await
            .expect("payload in time")
            .unwrap();
        (data, self.reply().await)
    }
}

#[tokio::test]
async fn a_tls_client_puts_and_gets_with_digests_checked() {
    let pem = tempfile::tempdir().unwrap();
    let (cert, key, der) = write_pem_pair(pem.path());
    let identity = tls::from_pem_files(&cert, &key).unwrap();
    assert_eq!(identity.fingerprint, tls::fingerprint(der.as_ref()));
    let server = Server::start_with(|c| c.tls = Some(identity.config.clone())).await;

    let mut client = TlsClient::connect(server.addr, &der).await.unwrap();
    let hello = client.request(json!({"op": "hello", "version": 1})).await;
    assert_eq!(hello["ok"], true, "{hello}");
    // Bigger than a TLS record and than the server's read buffer, so it spans many of both.
    let data = pattern(3 * 1024 * 1024 + 17, 5);
    let put = client.put("dir-less.bin", &data).await;
    assert_eq!(put["ok"], true, "{put}");
    assert_eq!(put["digest"], digest(&data), "{put}");
    assert_eq!(std::fs::read(server.path("dir-less.bin")).unwrap(), data);
    let (got, trailer) = client.get("dir-less.bin").await;
    assert_eq!(got.len(), data.len());
    assert!(
        got == data,
        "the bytes read back over TLS are the bytes sent"
    );
    assert_eq!(trailer["digest"], digest(&data), "{trailer}");
}

#[tokio::test]
async fn plain_and_garbage_peers_are_closed_and_others_still_served() {
    let pem = tempfile::tempdir().unwrap();
    let (cert, key, der) = write_pem_pair(pem.path());
    let identity = tls::from_pem_files(&cert, &key).unwrap();
    let server = Server::start_with(|c| c.tls = Some(identity.config.clone())).await;

    // A plain-text ferry client: its hello is not a TLS record, so the server closes.
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"{\"op\":\"hello\",\"version\":1}\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(STEP, plain.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the plain client is closed, not left hanging");
    assert!(
        !rest.windows(4).any(|w| w == b"\"ok\""),
        "no protocol reply reaches a peer that did not shake hands: {rest:?}"
    );

    // Garbage, and a peer that says nothing while another is served.
    let mut garbage = TcpStream::connect(server.addr).await.unwrap();
    garbage
        .write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0, 1, 2])
        .await
        .unwrap();
    let _silent = TcpStream::connect(server.addr).await.unwrap();

    let mut client = TlsClient::connect(server.addr, &der).await.unwrap();
    let hello = client.request(json!({"op": "hello", "version": 1})).await;
    assert_eq!(hello["ok"], true, "{hello}");
    let stat = client.request(json!({"op": "stat", "path": ""})).await;
    assert_eq!(stat["ok"], true, "{stat}");
}

#[tokio::test]
async fn a_silent_peer_is_dropped_after_the_header_timeout() {
    let pem = tempfile::tempdir().unwrap();
    let (cert, key, _) = write_pem_pair(pem.path());
    let identity = tls::from_pem_files(&cert, &key).unwrap();
    let server = Server::start_with(|c| {
        c.tls = Some(identity.config.clone());
        c.header_timeout = Duration::from_millis(300);
    })
    .await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(STEP, silent.read_to_end(&mut rest))
        .await
        .expect("closed in time")
        .ok();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn the_self_signed_pair_is_made_once_and_kept() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("state/ferry-server");
    let names = tls::names_for("127.0.0.1:7070");
    let first = tls::self_signed(&dir, &names).unwrap();
    assert!(first.generated);
    assert!(first.fingerprint.starts_with("SHA256:"));
    assert_eq!(first.fingerprint.len(), "SHA256:".len() + 32 * 3 - 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = std::fs::metadata(dir.join("tls-key.pem")).unwrap();
        assert_eq!(
            key.permissions().mode() & 0o777,
            0o600,
            "the key is private"
        );
    }
    let again = tls::self_signed(&dir, &names).unwrap();
    assert!(!again.generated);
    assert_eq!(
        again.fingerprint, first.fingerprint,
        "restarts keep the fingerprint"
    );

    // And a client that trusts it is served.
    let pem = std::fs::read(dir.join("tls-cert.pem")).unwrap();
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
    let server = Server::start_with(|c| c.tls = Some(again.config.clone())).await;
    let mut client = TlsClient::connect(server.addr, &der).await.unwrap();
    let hello = client.request(json!({"op": "hello", "version": 1})).await;
    assert_eq!(hello["ok"], true, "{hello}");
}

#[test]
fn bad_pem_files_fail_with_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = write_pem_pair(dir.path());
    let missing = dir.path().join("missing.pem");
    let err = tls::from_pem_files(&missing, &key).unwrap_err().to_string();
    assert!(
        err.contains("missing.pem") && err.contains("cannot read"),
        "{err}"
    );

    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "hello, not a certificate\n").unwrap();
    let err = tls::from_pem_files(&junk, &key).unwrap_err().to_string();
    assert!(
        err.contains("junk.pem") && err.contains("certificate"),
        "{err}"
    );
    let err = tls::from_pem_files(&cert, &junk).unwrap_err().to_string();
    assert!(
        err.contains("junk.pem") && err.contains("private key"),
        "{err}"
    );
    // A certificate file given as the key: no key in it.
    let err = tls::from_pem_files(&cert, &cert).unwrap_err().to_string();
    assert!(
        err.contains("cert.pem") && err.contains("private key"),
        "{err}"
    );

    let other = tempfile::tempdir().unwrap();
    let (_, other_key, _) = write_pem_pair(other.path());
    let err = tls::from_pem_files(&cert, &other_key)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not fit"), "{err}");

    // A generated pair with its certificate gone is reported, not silently replaced.
    let kept = tempfile::tempdir().unwrap();
    tls::self_signed(kept.path(), &["localhost".to_owned()]).unwrap();
    std::fs::remove_file(kept.path().join("tls-cert.pem")).unwrap();
    let err = tls::self_signed(kept.path(), &["localhost".to_owned()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("tls-cert.pem"), "{err}");
}

/// Starts the real binary and returns it with the stderr lines read until `until` matched.
fn start_binary(args: &[&str], until: &str) -> (std::process::Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry-server"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in StdBufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + STEP;
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let done = line.contains(until);
                lines.push(line);
                if done {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    (child, lines)
}

#[test]
fn the_binary_logs_the_fingerprint_of_its_pem_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = write_pem_pair(dir.path());
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let (mut child, lines) = start_binary(
        &[
            "--root",
            root.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        "serving",
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let expected = tls::fingerprint(der.as_ref());
    let text = lines.join("\n");
    assert!(text.contains(&expected), "{expected} in:\n{text}");
    assert!(text.contains("tls=true"), "{text}");

    // And the same as openssl prints it, when openssl is here to ask.
    if let Ok(out) = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert)
        .output()
    {
        let printed = String::from_utf8_lossy(&out.stdout);
        let hex = printed.trim().rsplit('=').next().unwrap();
        assert_eq!(format!("SHA256:{hex}"), expected);
    }
}

#[test]
fn the_binary_refuses_a_bad_key_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _, _) = write_pem_pair(dir.path());
    let junk = dir.path().join("junk-key.pem");
    std::fs::write(&junk, "nothing here").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ferry-server"))
        .args([
            "--root",
            dir.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&junk)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("junk-key.pem"), "{stderr}");
}

#[test]
fn the_binary_generates_its_certificate_with_tls_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = [
        "--root",
        dir.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--tls",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let fingerprint_of = |lines: &[String]| {
        lines
            .iter()
            .find_map(|l| l.split("fingerprint=").nth(1))
            .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
            .expect("a fingerprint line")
    };
    let (mut child, lines) = start_binary(&args, "serving");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(lines.iter().any(|l| l.contains("generated")), "{lines:?}");
    let first = fingerprint_of(&lines);
    let (mut child, lines) = start_binary(&args, "serving");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!lines.iter().any(|l| l.contains("generated")), "{lines:?}");
    assert_eq!(fingerprint_of(&lines), first);
}

#[tokio::test]
async fn a_client_over_the_limit_reads_busy_inside_tls() {
    let pem = tempfile::tempdir().unwrap();
    let (cert, key, der) = write_pem_pair(pem.path());
    let identity = tls::from_pem_files(&cert, &key).unwrap();
    let server = Server::start_with(|c| {
        c.tls = Some(identity.config.clone());
        c.max_per_address = 1;
    })
    .await;
    let mut first = TlsClient::connect(server.addr, &der).await.unwrap();
    let hello = first.request(json!({"op": "hello", "version": 1})).await;
    assert_eq!(hello["ok"], true, "{hello}");
    let mut second = TlsClient::connect(server.addr, &der).await.unwrap();
    let refused = second.reply().await;
    assert_eq!(refused["error"]["code"], "busy", "{refused}");
    let stat = first.request(json!({"op": "stat", "path": ""})).await;
    assert_eq!(stat["ok"], true, "the held connection is unharmed: {stat}");
}
