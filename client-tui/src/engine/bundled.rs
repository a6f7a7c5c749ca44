//! The bundled server: a `ferry-server` run inside this process on loopback, so the TUI can
//! browse a local directory with nothing else installed. Starting it binds a socket, so it
//! lives in the engine, not in the interface that asks for it.

use std::path::Path;

use tokio::sync::oneshot;

use super::endpoint::Endpoint;

/// Why the bundled server did not start. The messages are the ones the TUI has always exited
/// with.
#[derive(Debug, thiserror::Error)]
pub enum BundledError {
    #[error("starting the bundled server")]
    Bind(#[source] std::io::Error),
    #[error(transparent)]
    Address(std::io::Error),
    /// With no randomness from the OS there is no safe token, so the server does not start
    /// rather than run guessable.
    #[error("no randomness for the bundled server's token: {0}")]
    Randomness(getrandom::Error),
}

/// A running bundled server; it stops when this is stopped or dropped.
#[derive(Debug)]
pub struct BundledServer {
    /// Where it listens, with the token it accepts.
    pub endpoint: Endpoint,
    shutdown: oneshot::Sender<()>,
}

impl BundledServer {
    /// Tells the server to shut down; its task ends on its own.
    pub fn stop(self) {
        let _ = self.shutdown.send(());
    }
}

/// Starts a server for `root` (already canonical) on a free loopback port, with a token known
/// only to this process. Must be called inside a tokio runtime, which then runs the server.
pub async fn start(root: &Path) -> Result<BundledServer, BundledError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(BundledError::Bind)?;
    let port = listener.local_addr().map_err(BundledError::Address)?.port();
    let token = random_token()?;
    let mut config = ferry_server::Config::new(root);
    config.token = Some(token.clone());
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = shutdown_rx.await;
        };
        if let Err(error) = ferry_server::run(listener, config, shutdown).await {
            tracing::error!(
                "bundled server: {}",
                crate::format::escape_text(&error.to_string())
            );
        }
    });
    tracing::info!(
        "bundled server on 127.0.0.1:{port} serving {}",
        crate::format::local_path(root)
    );
    let endpoint = Endpoint {
        host: "127.0.0.1".into(),
        port,
        token: Some(token),
        ..Endpoint::default()
    };
    Ok(BundledServer {
        endpoint,
        shutdown: shutdown_tx,
    })
}

/// A token known only to this process, for the bundled server.
fn random_token() -> Result<String, BundledError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(BundledError::Randomness)?;
    Ok(ferry_protocol::digest::hex(&bytes))
}

#[cfg(test)]
mod tests {
    #[test]
    fn bundled_tokens_are_128_random_bits() {
        let a = super::random_token().unwrap();
        let b = super::random_token().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
