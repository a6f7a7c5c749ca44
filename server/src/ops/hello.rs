//! `hello`: the version check and the token, which must come before anything else.

use std::sync::Arc;

use ferry_protocol::{ErrorCode, HelloReply, Token, VERSION};
use subtle::ConstantTimeEq;

use super::{Flow, Scope, ok_line};
use crate::connection::{ConnError, Connection};
use crate::error::OpError;
use crate::listener::Shared;

/// Wrong tokens tolerated on one connection before it is closed, to slow guessing down.
const MAX_FAILURES: u32 = 3;

/// What a connection has proved so far.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// Set by a successful `hello`: what every later request may reach.
    scope: Option<Arc<Scope>>,
    failures: u32,
}

impl Session {
    pub fn greeted(&self) -> bool {
        self.scope.is_some()
    }

    pub fn scope(&self) -> Option<&Arc<Scope>> {
        self.scope.as_ref()
    }
}

pub(super) async fn handle(
    conn: &mut Connection,
    shared: &Arc<Shared>,
    session: &mut Session,
    version: u32,
    token: Option<&Token>,
) -> Result<Flow, ConnError> {
    if version != VERSION {
        let err = OpError::new(
            ErrorCode::UnsupportedVersion,
            format!("this server speaks protocol version {VERSION}, not {version}"),
        );
        conn.write(&err.encode()).await?;
        return Ok(Flow::Continue);
    }
    if let Some(expected) = &shared.token_hash {
        let given = token.map_or([0u8; 32], |token| {
            *blake3::hash(token.0.as_bytes()).as_bytes()
        });
        let matches: bool = given.ct_eq(expected).into();
        if token.is_none() || !matches {
            session.failures += 1;
            session.scope = None;
            let err = OpError::new(ErrorCode::Unauthorized, "missing or wrong token");
            conn.write(&err.encode()).await?;
            if session.failures >= MAX_FAILURES {
                return Ok(Flow::Close);
            }
            return Ok(Flow::Continue);
        }
    }
    let scope = Scope::new(
        Arc::clone(shared),
        Arc::clone(&shared.root),
        Arc::clone(&shared.root_key),
        shared.config.read_only,
    );
    let reply = HelloReply {
        version: VERSION,
        server: format!("ferry-server {}", env!("CARGO_PKG_VERSION")),
        read_only: scope.read_only,
    };
    session.scope = Some(Arc::new(scope));
    let line = ok_line(&reply).unwrap_or_else(|err| err.encode());
    conn.write(&line).await?;
    Ok(Flow::Continue)
}
