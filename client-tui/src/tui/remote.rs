//! The right pane's link to the engine's browsing worker ([`crate::engine::browse`]): it runs
//! the worker for one server and turns its events into the app's [`Msg`]s. The worker owns the
//! session and the network; this side only translates, so the UI holds no socket.

use tokio::sync::mpsc;

use crate::engine::Endpoint;
use crate::engine::browse::{self, BrowseEvent, ListFailure};

use super::app::{ListError, Msg};
use super::message::FileNews;
use super::pane::{Location, Side};
use super::viewer::Chunk;

/// Work for the remote pane.
pub use crate::engine::browse::BrowseRequest as RemoteRequest;

/// Serves requests until the sender is dropped (a new connection replaced this one), reporting
/// as connection `conn`.
pub async fn run(
    conn: u64,
    endpoint: Endpoint,
    requests: mpsc::UnboundedReceiver<RemoteRequest>,
    msg_tx: mpsc::UnboundedSender<Msg>,
) {
    let (event_tx, mut event_rx) = mpsc::unbounded_channel();
    let forward = async {
        while let Some(event) = event_rx.recv().await {
            if msg_tx.send(to_msg(conn, event)).is_err() {
                break;
            }
        }
    };
    tokio::join!(browse::run(endpoint, requests, event_tx), forward);
}

/// The app's message for a worker's event.
fn to_msg(conn: u64, event: BrowseEvent) -> Msg {
    match event {
        BrowseEvent::Link(event) => Msg::Connection { conn, event },
        BrowseEvent::Listed {
            serial,
            dir,
            result,
        } => Msg::Listed {
            side: Side::Remote,
            serial,
            dir: Location::Remote(dir),
            result: result.map_err(|ListFailure { message, gone }| ListError { message, gone }),
        },
        BrowseEvent::Done(result) => Msg::OpDone {
            side: Side::Remote,
            result,
        },
        BrowseEvent::Partials { dir, result, note } => Msg::Partials { dir, result, note },
        BrowseEvent::Read {
            serial,
            offset,
            result,
        } => Msg::File(FileNews::Read {
            tag: serial,
            offset,
            result: result.map(|range| Chunk {
                bytes: range.bytes,
                file_size: range.file_size,
            }),
        }),
        BrowseEvent::Fetched(end) => Msg::File(FileNews::Fetched(end)),
        BrowseEvent::Uploaded(end) => Msg::File(FileNews::Uploaded(end)),
    }
}
