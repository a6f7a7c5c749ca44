//! `hello`: the version check and the credentials, which must come before anything else. A
//! success gives the session its [`Scope`]: the server root for a token or an open server, the
//! account's own root and access for a user of the users file.

use std::sync::Arc;

use ferry_protocol::{ErrorCode, HelloReply, Token, VERSION};
use subtle::ConstantTimeEq;

use super::{Flow, Scope, ok_line};
use crate::connection::{ConnError, Connection};
use crate::error::OpError;
use crate::listener::Shared;
use crate::uploads::Owner;
use crate::users::MAX_CREDENTIAL_LEN;

/// Failed attempts tolerated on one connection before it is closed, to slow guessing down.
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

/// What a `hello` presented.
#[derive(Debug)]
pub(super) struct Credentials {
    pub token: Option<Token>,
    pub user: Option<String>,
    pub password: Option<Token>,
}

pub(super) async fn handle(
    conn: &mut Connection,
    shared: &Arc<Shared>,
    session: &mut Session,
    version: u32,
    credentials: Credentials,
) -> Result<Flow, ConnError> {
    if version != VERSION {
        let err = OpError::new(
            ErrorCode::UnsupportedVersion,
            format!("this server speaks protocol version {VERSION}, not {version}"),
        );
        conn.write(&err.encode()).await?;
        return Ok(Flow::Continue);
    }
    // A new hello starts over: whatever the session had is dropped before anything is checked.
    session.scope = None;
    let Credentials {
        token,
        user,
        password,
    } = credentials;
    let oversized = [
        token.as_ref().map(|t| t.0.len()),
        user.as_ref().map(String::len),
        password.as_ref().map(|p| p.0.len()),
    ]
    .into_iter()
    .flatten()
    .any(|len| len > MAX_CREDENTIAL_LEN);
    if oversized {
        // Refused before any hashing, so an oversized credential costs nothing to send back.
        let err = OpError::new(
            ErrorCode::BadRequest,
            format!("credentials over {MAX_CREDENTIAL_LEN} bytes are refused"),
        );
        return fail(conn, session, &err).await;
    }
    let scope = match authenticate(shared, token.as_ref(), user.as_deref(), password.as_ref()).await
    {
        Ok(scope) => scope,
        Err(message) => {
            // Only this connection waits; the others are served meanwhile.
            tokio::time::sleep(shared.config.auth_delay).await;
            let err = OpError::new(ErrorCode::Unauthorized, message);
            return fail(conn, session, &err).await;
        }
    };
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

/// Counts a failed attempt and answers it; the third closes the connection.
async fn fail(
    conn: &mut Connection,
    session: &mut Session,
    err: &OpError,
) -> Result<Flow, ConnError> {
    session.failures += 1;
    conn.write(&err.encode()).await?;
    if session.failures >= MAX_FAILURES {
        return Ok(Flow::Close);
    }
    Ok(Flow::Continue)
}

/// The scope the credentials earn, or why they earn none. A user name selects the users file
/// (the token is then not looked at); without one, the token is checked when the server has
/// one. Secrets are never logged; user names are, escaped (`?` formatting), since they are the
/// client's text.
async fn authenticate(
    shared: &Arc<Shared>,
    token: Option<&Token>,
    user: Option<&str>,
    password: Option<&Token>,
) -> Result<Scope, &'static str> {
    let config = &shared.config;
    if let Some(name) = user {
        let Some(accounts) = &shared.accounts else {
            return Err("this server has no user accounts");
        };
        let password = password.map_or("", |p| p.0.as_str());
        return match accounts.verify(name, password).await {
            Some(account) => {
                tracing::info!(user = ?name, "logged in");
                Ok(Scope::new(
                    Arc::clone(shared),
                    Arc::clone(&account.root),
                    Owner::account(name),
                    account.read_only || config.read_only,
                ))
            }
            None => {
                tracing::warn!(user = ?name, "failed login: wrong user name or password");
                Err("wrong user name or password")
            }
        };
    }
    if let Some(expected) = &shared.token_hash {
        let given = token.map_or([0u8; 32], |token| {
            *blake3::hash(token.0.as_bytes()).as_bytes()
        });
        let matches: bool = given.ct_eq(expected).into();
        if token.is_none() || !matches {
            tracing::warn!("failed hello: missing or wrong token");
            return Err(if shared.accounts.is_some() {
                "missing or wrong token, and no user name"
            } else {
                "missing or wrong token"
            });
        }
    } else if shared.accounts.is_some() {
        tracing::warn!("failed hello: no user name");
        return Err("this server needs a user name and password");
    }
    Ok(Scope::new(
        Arc::clone(shared),
        Arc::clone(&shared.root),
        Owner::shared(),
        config.read_only,
    ))
}
