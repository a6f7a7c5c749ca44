//! The loop that drives the app: a `select!` over terminal events, background results
//! (listings, file operations, engine events) and a tick. Keys are drawn at once; background
//! news is drained in bulk and drawn on the next tick, so a fast transfer costs at most
//! `1 / TICK` redraws a second however many progress events it sends.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use tokio::sync::mpsc;

use crate::engine::{Endpoint, Engine};

use super::app::{App, Command, Msg};
use super::config;
use super::local;
use super::pane::{Location, Side};
use super::remote::{self, RemoteRequest};
use super::transfers::JobKey;
use super::ui;

/// How often pending background news is drawn: 20 frames a second at most.
const TICK: Duration = Duration::from_millis(50);

/// One server connection: its engine (jobs keep running after a switch) and, for the current
/// one, the browsing task.
struct Conn {
    engine: Engine,
    remote_tx: Option<mpsc::UnboundedSender<RemoteRequest>>,
}

/// Runs until the user quits.
pub async fn run(
    terminal: &mut DefaultTerminal,
    mut app: App,
    endpoint: Endpoint,
) -> anyhow::Result<()> {
    let (msg_tx, mut msg_rx) = mpsc::unbounded_channel::<Msg>();
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    conns.insert(app.conn.id, open(app.conn.id, endpoint, &msg_tx));
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let size = terminal.size()?;
    app.resize(size.width, size.height);
    let mut dirty = true;
    let mut news = false;
    loop {
        for command in app.take_commands() {
            execute(command, &mut app, &mut conns, &msg_tx);
        }
        if app.should_quit {
            break;
        }
        if dirty {
            app.sync_layout();
            terminal.draw(|frame| ui::draw(frame, &app))?;
            dirty = false;
        }
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => {
                    dirty |= on_terminal_event(&mut app, event);
                }
                Some(Err(error)) => return Err(error.into()),
                None => break,
            },
            Some(msg) = msg_rx.recv() => {
                app.on_msg(msg);
                while let Ok(msg) = msg_rx.try_recv() {
                    app.on_msg(msg);
                }
                news = true;
            }
            _ = tick.tick() => {
                dirty |= std::mem::take(&mut news);
            }
        }
    }
    Ok(())
}

/// Returns whether the screen needs drawing.
fn on_terminal_event(app: &mut App, event: Event) -> bool {
    match event {
        // Release and repeat events (kitty protocol, Windows) would double every key.
        Event::Key(key) if key.kind == KeyEventKind::Press => app.on_key(key),
        Event::Mouse(mouse) => app.on_mouse(mouse, Instant::now()),
        Event::Resize(width, height) => app.resize(width, height),
        _ => return false,
    }
    true
}

/// Starts an engine and a browsing task for a server.
fn open(conn: u64, endpoint: Endpoint, msg_tx: &mpsc::UnboundedSender<Msg>) -> Conn {
    let (engine, mut engine_rx) = Engine::new(endpoint.clone());
    let tx = msg_tx.clone();
    tokio::spawn(async move {
        while let Some(event) = engine_rx.recv().await {
            if tx.send(Msg::Transfer { conn, event }).is_err() {
                break;
            }
        }
    });
    let (remote_tx, remote_rx) = mpsc::unbounded_channel();
    tokio::spawn(remote::run(conn, endpoint, remote_rx, msg_tx.clone()));
    Conn {
        engine,
        remote_tx: Some(remote_tx),
    }
}

fn execute(
    command: Command,
    app: &mut App,
    conns: &mut HashMap<u64, Conn>,
    msg_tx: &mpsc::UnboundedSender<Msg>,
) {
    let current = app.conn.id;
    let to_remote = |conns: &HashMap<u64, Conn>, request: RemoteRequest| {
        let sent = conns
            .get(&current)
            .and_then(|c| c.remote_tx.as_ref())
            .is_some_and(|tx| tx.send(request).is_ok());
        if !sent {
            tracing::error!("the remote task is gone");
        }
    };
    match command {
        Command::List { side, serial, dir } => match dir {
            Location::Local(path) => {
                let tx = msg_tx.clone();
                tokio::task::spawn_blocking(move || {
                    let result = local::list(&path);
                    let _ = tx.send(Msg::Listed {
                        side,
                        serial,
                        dir: Location::Local(path),
                        result,
                    });
                });
            }
            Location::Remote(dir) => to_remote(conns, RemoteRequest::List { serial, dir }),
        },
        Command::Mkdir { side, path } => match path {
            Location::Local(path) => blocking_op(msg_tx, side, move || {
                local::mkdir(&path).map(|()| file_name(&path))
            }),
            Location::Remote(path) => to_remote(conns, RemoteRequest::Mkdir(path)),
        },
        Command::Rename { side, from, to } => match (from, to) {
            (Location::Local(from), Location::Local(to)) => blocking_op(msg_tx, side, move || {
                local::rename(&from, &to).map(|()| file_name(&to))
            }),
            (Location::Remote(from), Location::Remote(to)) => {
                to_remote(conns, RemoteRequest::Rename { from, to });
            }
            _ => tracing::error!("rename across sides"),
        },
        Command::Remove { side, paths } => {
            let mut local_paths = Vec::new();
            let mut remote_paths = Vec::new();
            for path in paths {
                match path {
                    Location::Local(p) => local_paths.push(p),
                    Location::Remote(p) => remote_paths.push(p),
                }
            }
            if !local_paths.is_empty() {
                blocking_op(msg_tx, side, move || {
                    local::remove(&local_paths).map(|()| None)
                });
            }
            if !remote_paths.is_empty() {
                to_remote(conns, RemoteRequest::Remove(remote_paths));
            }
        }
        Command::Submit { spec, info } => match conns.get(&current) {
            Some(conn) => {
                let id = conn.engine.submit(spec);
                app.on_msg(Msg::Submitted {
                    key: JobKey { conn: current, id },
                    info,
                });
            }
            None => app.error("No connection to transfer with"),
        },
        Command::Cancel(key) => {
            if let Some(conn) = conns.get(&key.conn) {
                conn.engine.cancel(key.id);
            }
        }
        Command::Answer { reply, answer } => {
            // The job may have ended meanwhile; then nobody waits for the answer.
            let _ = reply.send(answer);
        }
        Command::Connect { conn, endpoint } => {
            for old in conns.values_mut() {
                old.remote_tx = None;
            }
            conns.insert(conn, open(conn, endpoint, msg_tx));
        }
        Command::SaveRecent(list) => {
            tokio::task::spawn_blocking(move || config::save_recent(&list));
        }
    }
}

fn file_name(path: &std::path::Path) -> Option<String> {
    path.file_name().map(|n| n.to_string_lossy().into_owned())
}

fn blocking_op(
    msg_tx: &mpsc::UnboundedSender<Msg>,
    side: Side,
    work: impl FnOnce() -> Result<Option<String>, String> + Send + 'static,
) {
    let tx = msg_tx.clone();
    tokio::task::spawn_blocking(move || {
        let _ = tx.send(Msg::OpDone {
            side,
            result: work(),
        });
    });
}
