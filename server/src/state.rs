//! What every connection of one server shares: the configuration, the served root, the uploads
//! in progress, the credentials to check a `hello` against, the login budgets and the shutdown
//! signal. Built once by [`crate::run`] for a listener's many connections, or by
//! [`crate::serve_stdio`] for its one session; its own module so that the layers below the
//! listener can read it without importing the accept loop.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::ServerError;
use crate::logins::Logins;
use crate::rate::TwoWayLimit;
use crate::root::{PathLimits, Root};
use crate::uploads::Uploads;
use crate::users::Accounts;

/// What every connection of one server shares.
#[derive(Debug)]
pub(crate) struct ServerState {
    pub config: Config,
    /// The served root of token and open sessions; users of a users file have their own.
    pub root: Arc<Root>,
    pub uploads: Uploads,
    /// The configured token's BLAKE3 hash: comparing fixed-size hashes in constant time leaks
    /// neither the token's bytes nor its length.
    pub token_hash: Option<[u8; 32]>,
    /// The users file's accounts, their roots open, when one is configured.
    pub accounts: Option<Accounts>,
    /// How many failed logins each client address, and all of them together, still owe.
    pub logins: Logins,
    /// Cancelled on shutdown; long blocking work (a walk of a huge tree) checks it and stops.
    pub shutdown: CancellationToken,
    /// `limit_rate_total`: what all connections together receive, and what they send.
    pub rate_total: TwoWayLimit,
}

impl ServerState {
    /// Opens the root (and every account's root) under `config`'s path limits; the only error
    /// is a root or users file that cannot be opened.
    pub fn open(config: Config) -> Result<Self, ServerError> {
        let limits = PathLimits::new(config.max_path_len, config.max_name_len);
        let root = Root::open(&config.root)
            .map(|root| root.with_limits(limits))
            .map_err(|source| ServerError::OpenRoot {
                path: config.root.clone(),
                source,
            })?;
        let accounts = config
            .users
            .as_deref()
            .map(|users| {
                Accounts::open(users, |path| {
                    Root::open(path).map(|root| root.with_limits(limits))
                })
            })
            .transpose()?;
        let config_total = config.limit_rate_total.unwrap_or(0);
        Ok(Self {
            token_hash: config
                .token
                .as_ref()
                .map(|token| *blake3::hash(token.as_bytes()).as_bytes()),
            accounts,
            logins: Logins::new(&config),
            config,
            root: Arc::new(root),
            uploads: Uploads::default(),
            shutdown: CancellationToken::new(),
            rate_total: TwoWayLimit::new(config_total),
        })
    }
}
