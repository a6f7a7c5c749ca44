//! `ferry-server --stdio`: exactly one session over the process's own stdin and stdout, the
//! way `ssh host ferry-server --stdio` runs it. ssh has authenticated the user and carries the
//! bytes, so there is no listener, no TLS and no credential to check: the `hello` still comes
//! first (it negotiates the version) but needs no token, and the process's own Unix
//! permissions are the only limit beneath the root. Everything else of a connection (header
//! caps, idle and stall timeouts, the work budget, upload claims and the free-space reserve)
//! is the same code as over TCP.
//!
//! The partial-upload sweep does not run (`partial_expiry` is not used): it would walk the
//! whole served tree (`/` by default) at the start of every ssh session. Partials stay until a
//! client resumes or removes them.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use tracing::{Instrument, info, info_span};

use crate::config::Config;
use crate::connection::Transport;
use crate::error::ServerError;
use crate::handler;
use crate::slots::Slots;
use crate::state::ServerState;

/// Serves one session over stdin and stdout until the client ends it (the end of stdin
/// between requests), the session fails, or `shutdown` resolves.
///
/// `config` must carry no token, users file or TLS ([`ServerError::NotForStdio`]); the
/// connection caps mean nothing for one session and are not used. Nothing may write to stdout
/// meanwhile: it carries the protocol. `Ok` only when the client closed the session cleanly;
/// [`ServerError::Session`] says why it ended otherwise (a timeout, a header over the cap, a
/// shutdown, the stream cut inside a message).
pub async fn serve_stdio(
    mut config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    if config.token.is_some() {
        return Err(ServerError::NotForStdio("a token"));
    }
    if config.users.is_some() {
        return Err(ServerError::NotForStdio("a users file"));
    }
    if config.tls.is_some() {
        return Err(ServerError::NotForStdio("TLS"));
    }
    // One session: its slot is the only one, and no other connection can take its place.
    config.max_connections = 1;
    config.max_per_address = 1;
    config.max_unauthenticated = 1;
    config.home = home_under(&config.root);
    crate::descriptors::init(config.max_connections);
    let slots = Arc::new(Slots::new(&config));
    let server = Arc::new(ServerState::open(config)?);
    info!(root = %server.config.root.display(), read_only = server.config.read_only, "serving one session on stdin and stdout");
    let cancel = server.shutdown.clone();
    let close = cancel.child_token();
    // The address only keys the login budgets, which a session without credentials never
    // spends.
    let slot = slots
        .admit(IpAddr::V4(Ipv4Addr::LOCALHOST), close.clone())
        .map_err(|why| ServerError::Session(why.to_owned()))?;
    // Both close the session through its token and then never resolve: the session's own end
    // (with its last word on the wire) is what ends the select.
    let deadline = slot.login_deadline();
    let stopping = async {
        shutdown.await;
        info!("stopping");
        cancel.cancel();
        std::future::pending::<()>().await;
    };
    let session = handler::serve_transport(Transport::stdio(), Arc::clone(&server), close, slot)
        .instrument(info_span!("stdio"));
    let ended = tokio::select! {
        ended = session => ended,
        () = deadline => Ok(()),
        () = stopping => Ok(()),
    };
    cancel.cancel();
    crate::connection::restore_stdio();
    ended.map_err(ServerError::Session)
}

/// The logged-in user's home (`$HOME`, as ssh sets it) as a wire path under `root`, so a
/// client can resolve `host:photos` as scp does; `None` when it is not under the root or has no
/// wire form.
fn home_under(root: &Path) -> Option<String> {
    let home = std::fs::canonicalize(std::env::var_os("HOME")?).ok()?;
    let root = std::fs::canonicalize(root).ok()?;
    let rest = home.strip_prefix(&root).ok()?;
    let wire = rest
        .components()
        .map(|name| ferry_localfs::wire_name(name.as_os_str()))
        .collect::<Vec<_>>()
        .join("/");
    ferry_protocol::path::check(&wire).ok()?;
    Some(wire)
}
