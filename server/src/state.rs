//! What every connection of one server shares: the configuration, the served root, the uploads
//! in progress, the credentials to check a `hello` against, the login budgets and the shutdown
//! signal. Built once by [`crate::run`]; its own module so that the layers below the listener
//! can read it without importing the accept loop.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::logins::Logins;
use crate::root::Root;
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
}
