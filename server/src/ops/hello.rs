//! `hello`: the version check and the credentials, which must come before anything else. A
//! success gives the login its [`Access`]: the server root for a token or an open server, the
//! account's own root and access for a user of the users file. A failure is answered at a fixed
//! time after the request and paid for in the client address's login budget
//! ([`crate::logins`]).

use std::sync::Arc;
use std::time::Duration;

use ferry_protocol::{ErrorCode, HelloReply, Token, VERSION};
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use super::{Access, ok_line};
use crate::connection::{ConnError, Connection};
use crate::error::OpError;
use crate::slots::Slot;
use crate::state::ServerState;
use crate::uploads::Owner;
use crate::users::MAX_CREDENTIAL_LEN;

/// Failed attempts tolerated on one connection before it is closed, to slow guessing down.
const MAX_FAILURES: u32 = 3;
/// Requests answered before a login on one connection; the last of them closes it, so a
/// connection cannot keep busy without credentials.
const MAX_EARLY_REQUESTS: u32 = 4;

/// What a connection has proved so far, and its slot among the server's connections.
#[derive(Debug)]
pub(crate) struct Login {
    /// Set by a successful `hello`: what every later request may reach.
    access: Option<Arc<Access>>,
    failures: u32,
    /// Requests refused for coming before a login.
    early: u32,
    slot: Slot,
}

impl Login {
    pub fn new(slot: Slot) -> Self {
        Self {
            access: None,
            failures: 0,
            early: 0,
            slot,
        }
    }

    pub fn access(&self) -> Option<&Arc<Access>> {
        self.access.as_ref()
    }

    /// Why the listener closed this connection before it logged in, as the line to send.
    pub fn closed_line(&self) -> Option<Vec<u8>> {
        self.slot.closed_line()
    }

    /// Counts a request refused for coming before a login (its refusal already sent); the
    /// [`MAX_EARLY_REQUESTS`]th closes the connection ([`ConnError::Refused`]).
    pub fn refused_before_login(&mut self) -> Result<(), ConnError> {
        self.early += 1;
        if self.early >= MAX_EARLY_REQUESTS {
            tracing::debug!("too many requests before a login; closing");
            return Err(ConnError::Refused);
        }
        Ok(())
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
    server: &Arc<ServerState>,
    login: &mut Login,
    version: u32,
    credentials: Credentials,
) -> Result<(), ConnError> {
    let arrived = Instant::now();
    if version != VERSION {
        let err = OpError::new(
            ErrorCode::UnsupportedVersion,
            format!("this server speaks protocol version {VERSION}, not {version}"),
        );
        conn.write(&err.encode()).await?;
        return Ok(());
    }
    // A new hello starts over: whatever the login had is dropped before anything is checked.
    login.access = None;
    let oversized = [
        credentials.token.as_ref().map(|t| t.0.len()),
        credentials.user.as_ref().map(String::len),
        credentials.password.as_ref().map(|p| p.0.len()),
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
        return fail(conn, login, &err).await;
    }
    let mut now = arrived;
    let attempt = loop {
        // Enabled before booking, so a settle between the two is not missed.
        let room = server.logins.room().notified();
        tokio::pin!(room);
        room.as_mut().enable();
        if let Some(attempt) = server.logins.try_book(login.slot.ip(), now) {
            break attempt;
        }
        tokio::select! {
            biased;
            () = login.slot.closing() => return Err(ConnError::Cancelled),
            () = room => {}
        }
        now = Instant::now();
    };
    // Waiting for the address's budget does not depend on the credentials, so the fixed answer
    // time counts from the end of that wait.
    let answer_at = later(attempt.start.max(arrived), server.config.auth_delay);
    let (start, suspect) = (attempt.start, attempt.suspect);
    let checked = async {
        tokio::time::sleep_until(start).await;
        authenticate(server, &credentials, suspect).await
    };
    let outcome = tokio::select! {
        biased;
        () = login.slot.closing() => return Err(ConnError::Cancelled),
        outcome = checked => outcome,
    };
    let access = match outcome {
        Ok(access) => {
            attempt.settle(true);
            access
        }
        Err(message) => {
            attempt.settle(false);
            // A fixed time after the request, not after the check: how long the check took
            // (an account's hashing cost, or none for an unknown name) does not show. Only this
            // connection waits; the others are served meanwhile.
            tokio::select! {
                biased;
                () = login.slot.closing() => return Err(ConnError::Cancelled),
                () = tokio::time::sleep_until(answer_at) => {}
            }
            let err = OpError::new(ErrorCode::Unauthorized, message);
            return fail(conn, login, &err).await;
        }
    };
    if !login.slot.log_in() {
        // Closed at the login deadline (or to make room) while the check ran.
        return Err(ConnError::Cancelled);
    }
    let reply = HelloReply {
        version: VERSION,
        server: format!("ferry-server {}", env!("CARGO_PKG_VERSION")),
        read_only: access.read_only,
        identity: super::stat::host_identity(),
        home: server.config.home.clone(),
    };
    login.access = Some(Arc::new(access));
    let line = ok_line(&reply).unwrap_or_else(|err| err.encode());
    conn.write(&line).await?;
    Ok(())
}

/// Counts a failed attempt and answers it; the third closes the connection.
async fn fail(conn: &mut Connection, login: &mut Login, err: &OpError) -> Result<(), ConnError> {
    login.failures += 1;
    conn.write(&err.encode()).await?;
    if login.failures >= MAX_FAILURES {
        return Err(ConnError::Refused);
    }
    Ok(())
}

/// The access the credentials earn, or why they earn none. A user name selects the users file
/// (the token is then not looked at); without one, the token is checked when the server has
/// one. Secrets are never logged; user names are, escaped (`?` formatting), since they are the
/// client's text.
async fn authenticate(
    server: &Arc<ServerState>,
    credentials: &Credentials,
    suspect: bool,
) -> Result<Access, &'static str> {
    let config = &server.config;
    let token = credentials.token.as_ref();
    let user = credentials.user.as_deref();
    let password = credentials.password.as_ref();
    if let Some(name) = user {
        let Some(accounts) = &server.accounts else {
            return Err("this server has no user accounts");
        };
        let password = password.map_or("", |p| p.0.as_str());
        return match accounts.verify(name, password, suspect).await {
            Some(account) => {
                tracing::info!(user = ?name, "logged in");
                Ok(Access::new(
                    Arc::clone(server),
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
    if let Some(expected) = &server.token_hash {
        let given = token.map_or([0u8; 32], |token| {
            *blake3::hash(token.0.as_bytes()).as_bytes()
        });
        let matches: bool = given.ct_eq(expected).into();
        if token.is_none() || !matches {
            tracing::warn!("failed hello: missing or wrong token");
            return Err(if server.accounts.is_some() {
                "missing or wrong token, and no user name"
            } else {
                "missing or wrong token"
            });
        }
    } else if server.accounts.is_some() {
        tracing::warn!("failed hello: no user name");
        return Err("this server needs a user name and password");
    }
    Ok(Access::new(
        Arc::clone(server),
        Arc::clone(&server.root),
        Owner::shared(),
        config.read_only,
    ))
}

/// `at + wait`, saturating: a configured delay of years must not overflow the clock.
fn later(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait)
        .unwrap_or_else(|| at + Duration::from_secs(100 * 365 * 24 * 3600))
}
