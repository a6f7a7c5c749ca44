//! `ferry-server`: serves one directory to many ferry clients at once.
//!
//! The binary is a thin shell around [`run`], so the client can embed a server in-process and
//! tests can drive a real one on `127.0.0.1:0`.
//!
//! # Modules
//! Layers, each importing only those below it: `listener` (or `stdio`) → `handler` → `ops` → `root` →
//! `connection`, with the shared pieces beside them.
//! - `listener`: the accept loop, admission through `slots`, the login deadline and graceful
//!   shutdown.
//! - `stdio`: `--stdio`, one session over stdin and stdout (under ssh), beside the listener:
//!   no listener, no credentials, the same handler.
//! - `slots`: the connection limits (total, per address, before login) and which connection
//!   gives way to a newcomer.
//! - `state`: what every connection of one server shares (`ServerState`).
//! - `logins`: the budgets that slow down failed logins per client address and server-wide.
//! - `handler`: one client's request loop: decoding, pipelined batches of requests that have
//!   arrived whole, and the last word when the connection ends.
//! - `ops`: the `hello` gate, request dispatch, and one file per operation.
//! - `root`: every filesystem path decision, resolved beneath an open handle on the root.
//! - `connection`: one client's framed byte stream: header reads with limits and timeouts,
//!   payloads read straight into large buffers, replies batched until the pipeline is drained.
//! - `buffer_pool`: the big transfer buffers all connections recycle.
//! - `work_budget`: each connection's budget of work units for expensive requests.
//! - `config`: [`Config`], how a server behaves.
//! - `error`: [`ServerError`], the per-request error and the mapping of IO errors to wire codes.
//! - `uploads`: the server-wide set of paths being written, so two writers never collide, and
//!   the bytes they have claimed on disk.
//! - `descriptors`: the process's budget of open descriptors for work that walks trees.
//! - `sweep`: removes hidden partial uploads abandoned for longer than the expiry.
//! - `rate`: rate limits (a token bucket shared by streams, and a reader or writer that obeys
//!   it), for `--limit-rate` here and in the client.
//! - `announce`: the server's DNS-SD announcement on the local network (`_ferry._tcp`).
//! - `tls`: the TLS identity (PEM files or a kept self-signed pair) and its fingerprint.

pub mod announce;
mod buffer_pool;
mod config;
mod connection;
mod descriptors;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod handler;
mod listener;
mod logins;
mod ops;
pub mod rate;
mod root;
mod slots;
mod state;
mod stdio;
mod sweep;
pub mod tls;
mod uploads;
pub mod users;
mod work_budget;

pub use config::Config;
pub use error::ServerError;
pub use listener::run;
pub use stdio::serve_stdio;
