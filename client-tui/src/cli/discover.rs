//! `ferry discover`: the servers announcing themselves on the local network within a
//! timeout, one per line (name, address, TLS, fingerprint), or one JSON object per line.
//! Names are anyone's words on the network, so the table escapes them (JSON escapes anyway).

use std::io::Write;
use std::time::Duration;

use super::CliError;
use crate::engine::discover::{self, Found};

/// Browses for `timeout` and prints what answered, sorted by name.
pub async fn discover(timeout: Duration, json: bool, out: &mut impl Write) -> Result<(), CliError> {
    let found = discover::discover(timeout)
        .await
        .map_err(|e| CliError::Job(e.to_string()))?;
    for server in &found {
        if json {
            serde_json::to_writer(&mut *out, &json_line(server))
                .map_err(|e| CliError::Output(e.into()))?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", table_line(server))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `NAME  ADDRESS:PORT  tls|plain  FINGERPRINT` (`-` without one), plus `read-only`.
fn table_line(server: &Found) -> String {
    let mut line = format!(
        "{}  {}  {}  {}",
        crate::format::escape_text(&server.name),
        server.addr,
        if server.tls { "tls" } else { "plain" },
        server
            .fingerprint
            .as_deref()
            .map_or_else(|| "-".into(), crate::format::escape_text),
    );
    if server.read_only {
        line.push_str("  read-only");
    }
    line
}

/// The `--json` object of one server, with the URL to open it.
fn json_line(server: &Found) -> serde_json::Value {
    serde_json::json!({
        "name": server.name,
        "address": server.addr.to_string(),
        "port": server.addr.port(),
        "tls": server.tls,
        "fingerprint": server.fingerprint,
        "read_only": server.read_only,
        "version": server.version,
        "url": server.url(),
    })
}
