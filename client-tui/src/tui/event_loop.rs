//! The loop that drives the app: a `select!` over terminal events, background results
//! (listings, file operations, engine events) and a tick. Keys are drawn at once; background
//! news is drained in bulk and drawn on the next tick, so a fast transfer costs at most
//! `1 / TICK` redraws a second however many progress events it sends.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyEventKind};
use futures_util::{Stream, StreamExt};
use ratatui::backend::Backend;
use ratatui::{DefaultTerminal, Terminal};
use tokio::sync::mpsc;

use crate::engine::find::FindEvent;
use crate::engine::known_hosts::KnownHosts;
use crate::engine::view::FetchEnd;
use crate::engine::{Endpoint, Engine, EngineOptions, SharedRate};

use super::app::App;
use super::config;
use super::disk;
use super::external::{self, Handover, TerminalEvents};
use super::jobs::JobKey;
use super::message::{Effect, FileEffect, FileNews, Msg};
use super::pane::{Location, Side};
use super::rate::RateTarget;
use super::remote::{self, RemoteRequest};
use super::ui;

/// How often pending background news is drawn: 20 frames a second at most.
const TICK: Duration = Duration::from_millis(50);
/// How often a sync's plan being computed says how many entries it has seen.
const SYNC_PROGRESS: Duration = Duration::from_millis(200);

/// One server connection: its engine (jobs keep running after a switch) and, for the current
/// one, the browsing task.
struct Conn {
    engine: Engine,
    remote_tx: Option<mpsc::UnboundedSender<RemoteRequest>>,
}

/// Find file's running search, so a new one or Escape can stop it: the remote task is
/// aborted (its connection closes), the local walk sees its flag.
enum Finding {
    Remote(tokio::task::JoinHandle<()>),
    Local(Arc<AtomicBool>),
}

impl Finding {
    fn stop(self) {
        match self {
            Finding::Remote(task) => task.abort(),
            Finding::Local(stop) => stop.store(true, Ordering::Relaxed),
        }
    }
}

/// Runs until the user quits, reading the real terminal's events.
pub async fn run(
    terminal: &mut DefaultTerminal,
    app: App,
    endpoint: Endpoint,
) -> anyhow::Result<()> {
    run_with(
        terminal,
        app,
        endpoint,
        TerminalEvents::default(),
        hand_over,
    )
    .await?;
    Ok(())
}

/// Hands the real terminal over: to the shell for Ctrl+Z, or to a program.
fn hand_over(
    terminal: &mut DefaultTerminal,
    events: &mut TerminalEvents,
    what: Handover<'_>,
) -> Result<(), String> {
    match what {
        Handover::Suspend => {
            suspend(terminal, events).map_err(|error| format!("Cannot suspend: {error}"))
        }
        Handover::Run(program) => external::hand_over(terminal, events, program),
    }
}

/// Ctrl+Z: gives the terminal back as it was, stops ferry with SIGTSTP as a shell job, and
/// when `fg` continues it, takes the screen back and has it drawn whole (the shell drew over
/// it). Transfers pause with the process and go on after.
fn suspend(terminal: &mut DefaultTerminal, events: &mut TerminalEvents) -> std::io::Result<()> {
    external::release(events)?;
    let stopped =
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TSTP);
    // Here again after SIGCONT (or at once, if the signal could not be sent).
    external::reclaim(terminal)?;
    stopped.map_err(std::io::Error::from)
}

/// The loop itself, over any backend and event source, so tests can drive it without a
/// terminal; `hand_over` is what Ctrl+Z and running a program do to the terminal (and its
/// event reader). Returns the final state.
pub async fn run_with<B, S>(
    terminal: &mut Terminal<B>,
    mut app: App,
    endpoint: Endpoint,
    mut events: S,
    mut hand_over: impl FnMut(&mut Terminal<B>, &mut S, Handover<'_>) -> Result<(), String>,
) -> anyhow::Result<App>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    S: Stream<Item = std::io::Result<Event>> + Unpin,
{
    let (msg_tx, mut msg_rx) = mpsc::unbounded_channel::<Msg>();
    // ssh's questions come to the dialog, never to the terminal the screen is drawn on.
    let (prompt_tx, mut prompt_rx) = mpsc::unbounded_channel();
    crate::engine::ssh::ask_through(prompt_tx);
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut finding: Option<Finding> = None;
    // F9's browse of the local network while its dialog is open.
    let mut discovering: Option<tokio::task::JoinHandle<()>> = None;
    // The sync dialog's plan being computed: aborting it closes its connection.
    let mut planning: Option<tokio::task::JoinHandle<()>> = None;
    // One limit for all transfers, whichever server they run on.
    let rate = SharedRate::new(app.rate_limit);
    conns.insert(app.conn.id, open(app.conn.id, endpoint, &msg_tx, &rate));
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let size = terminal.size()?;
    app.resize(size.width, size.height);
    let mut dirty = true;
    let mut news = false;
    // Private copies of remote files made for a program: whatever is left at the end goes.
    let mut copies = HashSet::new();
    loop {
        for effect in app.take_effects() {
            if let Effect::Suspend = effect {
                if let Err(error) = hand_over(terminal, &mut events, Handover::Suspend) {
                    app.error(error);
                }
                dirty = true;
                continue;
            }
            if let Effect::File(FileEffect::Run {
                program,
                watch,
                after,
            }) = effect
            {
                let digest = |watch: &Option<std::path::PathBuf>| {
                    watch.as_deref().map(|f| external::digest_of(f).ok())
                };
                let before = digest(&watch);
                let result = hand_over(terminal, &mut events, Handover::Run(&program));
                let changed = before != digest(&watch);
                app.on_msg(Msg::File(FileNews::Ran {
                    after,
                    result,
                    changed,
                }));
                dirty = true;
                continue;
            }
            match effect {
                Effect::Find {
                    side: _,
                    dir,
                    pattern,
                    serial,
                } => {
                    if let Some(old) = finding.take() {
                        old.stop();
                    }
                    finding = find(&app, &conns, dir, pattern, serial, &msg_tx);
                }
                Effect::StopFind => {
                    if let Some(old) = finding.take() {
                        old.stop();
                    }
                }
                Effect::Discover(on) => {
                    if !on && let Some(browse) = discovering.take() {
                        browse.abort();
                    }
                    if on && discovering.is_none() {
                        discovering = Some(tokio::spawn(discover(msg_tx.clone())));
                    }
                }
                Effect::SyncPlan {
                    serial,
                    src,
                    dst,
                    options,
                } => {
                    if let Some(old) = planning.take() {
                        old.abort();
                    }
                    planning = plan_sync(&app, &conns, serial, src, dst, options, &msg_tx);
                }
                Effect::StopSyncPlan => {
                    if let Some(old) = planning.take() {
                        old.abort();
                    }
                }
                effect => execute(effect, &mut app, &mut conns, &msg_tx, &mut copies, &rate),
            }
        }
        if app.should_quit {
            break;
        }
        if dirty {
            app.sync_layout();
            terminal.draw(|frame| {
                ui::draw(frame, &app.view());
                ui::viewer::draw(frame, &app.files, &app.theme);
            })?;
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
            Some(prompt) = prompt_rx.recv() => {
                app.on_msg(Msg::SshPrompt(prompt));
                dirty = true;
            }
            Some(msg) = msg_rx.recv() => {
                app.on_msg(msg);
                while let Ok(msg) = msg_rx.try_recv() {
                    app.on_msg(msg);
                }
                news = true;
            }
            _ = tick.tick() => {
                dirty |= std::mem::take(&mut news);
                dirty |= app.tick(Instant::now());
            }
        }
    }
    for copy in copies {
        external::remove_copy(&copy);
    }
    if let Some(browse) = discovering {
        browse.abort();
    }
    Ok(app)
}

/// Forwards the engine's browse of the local network as [`Msg::Discovered`] until aborted
/// (dropping the browser stops it); a browse that cannot start is logged, and F9 lists none.
async fn discover(msg_tx: mpsc::UnboundedSender<Msg>) {
    let mut browser = match crate::engine::discover::Browser::start() {
        Ok(browser) => browser,
        Err(err) => {
            tracing::warn!(%err, "no servers listed from the local network");
            return;
        }
    };
    while let Some(event) = browser.next().await {
        if msg_tx.send(Msg::Discovered(event)).is_err() {
            return;
        }
    }
}

/// Starts find file's search of `dir`; its news comes back as [`Msg::Found`].
fn find(
    app: &App,
    conns: &HashMap<u64, Conn>,
    dir: Location,
    pattern: String,
    serial: u64,
    msg_tx: &mpsc::UnboundedSender<Msg>,
) -> Option<Finding> {
    let tx = msg_tx.clone();
    let report = move |event| tx.send(Msg::Found { serial, event }).is_ok();
    match dir {
        Location::Local(path) => {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            tokio::task::spawn_blocking(move || {
                crate::engine::find::local(&path, &pattern, &flag, report);
            });
            Some(Finding::Local(stop))
        }
        Location::Remote(dir) => {
            let Some(conn) = conns.get(&app.conn.id) else {
                report(FindEvent::Done(Err("no server connection".into())));
                return None;
            };
            let endpoint = conn.engine.endpoint().clone();
            Some(Finding::Remote(tokio::spawn(crate::engine::find::remote(
                endpoint, dir, pattern, report,
            ))))
        }
    }
}

/// Starts computing a sync's plan on the current server; it comes back as
/// [`Msg::SyncPlanned`].
fn plan_sync(
    app: &App,
    conns: &HashMap<u64, Conn>,
    serial: u64,
    src: crate::engine::sync::Side,
    dst: crate::engine::sync::Side,
    options: crate::engine::sync::SyncOptions,
    msg_tx: &mpsc::UnboundedSender<Msg>,
) -> Option<tokio::task::JoinHandle<()>> {
    let Some(conn) = conns.get(&app.conn.id) else {
        let _ = msg_tx.send(Msg::SyncPlanned {
            serial,
            result: Err("no server connection".into()),
        });
        return None;
    };
    let endpoint = conn.engine.endpoint().clone();
    let tx = msg_tx.clone();
    Some(tokio::spawn(async move {
        let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let planning =
            crate::engine::sync::plan_on(&endpoint, src, dst, &options, Arc::clone(&seen));
        tokio::pin!(planning);
        // The count of entries seen, a few times a second, while the sides are listed.
        let mut tick = tokio::time::interval(SYNC_PROGRESS);
        let result = loop {
            tokio::select! {
                result = &mut planning => break result,
                _ = tick.tick() => {
                    let seen = seen.load(Ordering::Relaxed);
                    let _ = tx.send(Msg::SyncSeen { serial, seen });
                }
            }
        };
        let result = result.map(Box::new).map_err(|e| e.to_string());
        let _ = tx.send(Msg::SyncPlanned { serial, result });
    }))
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
fn open(
    conn: u64,
    endpoint: Endpoint,
    msg_tx: &mpsc::UnboundedSender<Msg>,
    rate: &SharedRate,
) -> Conn {
    let (engine, mut engine_rx) = Engine::with_shared_rate(
        endpoint.clone(),
        EngineOptions::default(),
        Some(rate.clone()),
    );
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
    effect: Effect,
    app: &mut App,
    conns: &mut HashMap<u64, Conn>,
    msg_tx: &mpsc::UnboundedSender<Msg>,
    copies: &mut HashSet<std::path::PathBuf>,
    rate: &SharedRate,
) {
    let current = app.conn.id;
    // Each pane's server requests go to its own connection (a second server's, or the main).
    let (left, right) = (app.conn_of(Side::Local), app.conn_of(Side::Remote));
    let via = |side: Side| if side == Side::Local { left } else { right };
    let to_pane = |conns: &HashMap<u64, Conn>, side: Side, request: RemoteRequest| {
        let sent = conns
            .get(&via(side))
            .and_then(|c| c.remote_tx.as_ref())
            .is_some_and(|tx| tx.send(request).is_ok());
        if !sent {
            tracing::error!("the remote task is gone");
        }
    };
    let to_remote = |conns: &HashMap<u64, Conn>, request: RemoteRequest| {
        let sent = conns
            .get(&current)
            .and_then(|c| c.remote_tx.as_ref())
            .is_some_and(|tx| tx.send(request).is_ok());
        if !sent {
            tracing::error!("the remote task is gone");
        }
    };
    match effect {
        Effect::List { side, serial, dir } => match dir {
            Location::Local(path) => {
                let tx = msg_tx.clone();
                tokio::task::spawn_blocking(move || {
                    let result = disk::list(&path);
                    let _ = tx.send(Msg::Listed {
                        side,
                        serial,
                        dir: Location::Local(path),
                        result,
                    });
                });
            }
            Location::Remote(dir) => to_pane(conns, side, RemoteRequest::List { serial, dir }),
        },
        Effect::Mkdir { side, path } => match path {
            Location::Local(path) => blocking_op(msg_tx, side, move || {
                disk::mkdir(&path).map(|()| file_name(&path))
            }),
            Location::Remote(path) => to_pane(conns, side, RemoteRequest::Mkdir(path)),
        },
        Effect::Rename { side, from, to } => match (from, to) {
            (Location::Local(from), Location::Local(to)) => blocking_op(msg_tx, side, move || {
                disk::rename(&from, &to).map(|()| file_name(&to))
            }),
            (Location::Remote(from), Location::Remote(to)) => {
                to_pane(conns, side, RemoteRequest::Rename { from, to });
            }
            _ => tracing::error!("rename across sides"),
        },
        Effect::Remove { side, paths } => {
            let (local_paths, remote_paths) = by_side(paths);
            if !local_paths.is_empty() {
                blocking_op(msg_tx, side, move || {
                    disk::remove(&local_paths).map(|()| None)
                });
            }
            if !remote_paths.is_empty() {
                to_pane(conns, side, RemoteRequest::Remove(remote_paths));
            }
        }
        Effect::Chmod { side, paths, mode } => {
            let (local_paths, remote_paths) = by_side(paths);
            if !local_paths.is_empty() {
                blocking_op(msg_tx, side, move || {
                    disk::chmod(&local_paths, mode).map(|()| None)
                });
            }
            if !remote_paths.is_empty() {
                to_pane(
                    conns,
                    side,
                    RemoteRequest::Chmod {
                        paths: remote_paths,
                        mode,
                    },
                );
            }
        }
        // The loop runs these itself: it holds the running search.
        Effect::Find { .. } | Effect::StopFind | Effect::Discover(_) => {}
        Effect::SyncPlan { .. } | Effect::StopSyncPlan => {}
        Effect::SubmitSync { plan, info } => match conns.get(&current) {
            Some(conn) => {
                let id = conn.engine.submit_sync(*plan);
                app.on_msg(Msg::Submitted {
                    key: JobKey { conn: current, id },
                    info,
                });
            }
            None => app.error("No connection to sync with"),
        },
        Effect::Submit { spec, info } => match conns.get(&current) {
            Some(conn) => {
                let endpoint_of = |side: Side| {
                    conns.get(&via(side)).map_or_else(
                        || conn.engine.endpoint().clone(),
                        |c| c.engine.endpoint().clone(),
                    )
                };
                let spec = super::job_request::bind(
                    spec,
                    &endpoint_of(info.dest.other()),
                    &endpoint_of(info.dest),
                );
                let id = conn.engine.submit(spec);
                let key = JobKey { conn: current, id };
                app.on_msg(Msg::Submitted { key, info });
            }
            None => app.submit_failed("No connection to transfer with"),
        },
        Effect::AnswerSsh { id, answer } => crate::engine::ssh::answer(id, answer),
        Effect::Cancel(key) => {
            if let Some(conn) = conns.get(&key.conn) {
                conn.engine.cancel(key.id);
            }
        }
        Effect::SetRateLimit {
            target,
            bytes_per_second,
        } => match target {
            RateTarget::All => rate.set(bytes_per_second),
            RateTarget::Job(key) => {
                if let Some(conn) = conns.get(&key.conn) {
                    conn.engine.set_job_rate_limit(key.id, bytes_per_second);
                }
            }
        },
        Effect::Answer { reply, answer } => {
            // The job may have ended meanwhile; then nobody waits for the answer.
            let _ = reply.send(answer);
        }
        Effect::Connect { conn, endpoint } => {
            // A pane on another server keeps browsing its own.
            let other = app.other.as_ref().map(|o| o.link.id);
            for (id, old) in conns.iter_mut() {
                if Some(*id) != other {
                    old.remote_tx = None;
                }
            }
            conns.insert(conn, open(conn, endpoint, msg_tx, rate));
        }
        Effect::ConnectPane {
            conn,
            endpoint,
            replaces,
        } => {
            if let Some(old) = replaces.and_then(|id| conns.get_mut(&id)) {
                old.remote_tx = None;
            }
            conns.insert(conn, open(conn, endpoint, msg_tx, rate));
        }
        Effect::TrustCertificate {
            conn,
            addr,
            fingerprint,
        } => {
            let Some(old) = conns.get_mut(&conn) else {
                return;
            };
            old.remote_tx = None;
            let mut endpoint = old.engine.endpoint().clone();
            endpoint.fingerprint = Some(fingerprint);
            // The reconnect is pinned, so it does not wait for this write; a failure to write
            // only costs asking again next time.
            tokio::task::spawn_blocking(move || {
                if let Some(hosts) = KnownHosts::default_location()
                    && let Err(error) = hosts.record(&addr, &fingerprint)
                {
                    tracing::warn!(
                        "cannot record {addr} in {}: {error}",
                        crate::format::local_path(hosts.path())
                    );
                }
            });
            conns.insert(conn, open(conn, endpoint, msg_tx, rate));
        }
        Effect::Probe => to_remote(conns, RemoteRequest::Probe),
        Effect::ListPartials { dir } => to_remote(conns, RemoteRequest::Partials(dir)),
        Effect::DiscardPartials { dir, paths } => {
            to_remote(conns, RemoteRequest::Discard { dir, paths });
        }
        // The loop suspends (and runs programs) before it gets here: it holds the terminal.
        Effect::Suspend => {}
        Effect::File(effect) => match effect {
            FileEffect::Read(read) => match read.source {
                Location::Local(path) => {
                    let tx = msg_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let result = disk::read_range(&path, read.offset, read.length);
                        let _ = tx.send(Msg::File(FileNews::Read {
                            tag: read.tag,
                            offset: read.offset,
                            result,
                        }));
                    });
                }
                Location::Remote(path) => to_remote(
                    conns,
                    RemoteRequest::Read {
                        serial: read.tag,
                        path,
                        offset: read.offset,
                        length: read.length,
                    },
                ),
            },
            FileEffect::Fetch { path } => {
                let name = path.rsplit('/').next().unwrap_or(&path).to_string();
                match external::private_copy(&name) {
                    Ok(dest) => {
                        copies.insert(dest.clone());
                        to_remote(conns, RemoteRequest::Fetch { path, dest });
                    }
                    Err(error) => app.on_msg(Msg::File(FileNews::Fetched(FetchEnd {
                        path,
                        copy: std::path::PathBuf::new(),
                        result: Err(format!("cannot make a private temporary copy: {error}")),
                    }))),
                }
            }
            FileEffect::Upload {
                copy,
                path,
                replace,
            } => to_remote(
                conns,
                RemoteRequest::Upload {
                    src: copy,
                    path,
                    replace,
                },
            ),
            FileEffect::RemoveCopy(copy) => {
                copies.remove(&copy);
                tokio::task::spawn_blocking(move || external::remove_copy(&copy));
            }
            FileEffect::KeepCopy(copy) => {
                copies.remove(&copy);
            }
            // The loop runs programs before it gets here: it holds the terminal.
            FileEffect::Run { .. } => {}
        },
        // Written here and now, not on a blocking task: two writes must not overtake each
        // other, and the file is small.
        Effect::SaveQueue { path, jobs } => {
            if let Err(error) = super::queue::save(&path, &jobs) {
                tracing::warn!(
                    "cannot write the transfer queue {}: {error}",
                    crate::format::local_path(&path)
                );
            }
        }
        Effect::SaveRecent(list) => {
            tokio::task::spawn_blocking(move || config::save_recent(&list));
        }
        Effect::PinBookmark {
            path,
            name,
            fingerprint,
            replacing,
        } => {
            tokio::task::spawn_blocking(move || {
                if let Err(e) = config::pin_bookmark(&path, &name, &fingerprint, replacing) {
                    tracing::warn!(
                        "keeping the fingerprint of bookmark {name:?} in {}: {e}",
                        crate::format::local_path(&path)
                    );
                }
            });
        }
    }
}

/// Paths split into the local ones and the remote ones, each in order.
fn by_side(paths: Vec<Location>) -> (Vec<std::path::PathBuf>, Vec<String>) {
    let mut local = Vec::new();
    let mut remote = Vec::new();
    for path in paths {
        match path {
            Location::Local(p) => local.push(p),
            Location::Remote(p) => remote.push(p),
        }
    }
    (local, remote)
}

fn file_name(path: &std::path::Path) -> Option<String> {
    path.file_name().map(crate::names::wire_name)
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::tui::config::Settings;

    fn press(code: KeyCode) -> std::io::Result<Event> {
        Ok(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }

    async fn wait_for_file(path: &Path, bytes: &[u8]) {
        for _ in 0..200 {
            if std::fs::read(path).ok().as_deref() == Some(bytes) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} never got its bytes", path.display());
    }

    /// The whole client minus the terminal: keys in, a real server and real files out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_drive_real_transfers_and_the_screen_shows_them_verified() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, local) = (tmp.path().join("root"), tmp.path().join("local"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&local).unwrap();
        std::fs::write(local.join("up.txt"), b"going up").unwrap();
        std::fs::write(root.join("down.txt"), b"coming down").unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(ferry_server::run(
            listener,
            ferry_server::Config::new(&root),
            std::future::pending(),
        ));

        let mut app = App::new(
            Settings::default(),
            local.clone(),
            format!("127.0.0.1:{port}"),
            String::new(),
        );
        let endpoint = Endpoint {
            host: "127.0.0.1".into(),
            port,
            token: None,
            ..Endpoint::default()
        };
        // The first listings are answered here, so the keys below never race them.
        let mut session = crate::engine::Session::connect(&endpoint).await.unwrap();
        for effect in app.take_effects() {
            if let Effect::List { side, serial, dir } = effect {
                let result = match &dir {
                    Location::Local(path) => disk::list(path),
                    Location::Remote(path) => Ok(session.list(path).await.unwrap()),
                };
                app.on_msg(Msg::Listed {
                    side,
                    serial,
                    dir,
                    result,
                });
            }
        }
        let (keys_tx, keys_rx) = mpsc::unbounded_channel();
        let events = Box::pin(futures_util::stream::unfold(keys_rx, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        }));
        let mut terminal = Terminal::new(TestBackend::new(100, 24)).unwrap();
        let driver = async {
            keys_tx.send(press(KeyCode::F(5))).unwrap();
            keys_tx.send(press(KeyCode::Enter)).unwrap();
            wait_for_file(&root.join("up.txt"), b"going up").await;
            keys_tx.send(press(KeyCode::Tab)).unwrap();
            keys_tx.send(press(KeyCode::Home)).unwrap();
            keys_tx.send(press(KeyCode::F(5))).unwrap();
            keys_tx.send(press(KeyCode::Enter)).unwrap();
            wait_for_file(&local.join("down.txt"), b"coming down").await;
            // The jobs' last events and the refreshed listings, then a few ticks: generous, for
            // a loaded CI machine.
            tokio::time::sleep(Duration::from_millis(1000)).await;
            keys_tx.send(press(KeyCode::Char('q'))).unwrap();
        };
        let (result, ()) = tokio::join!(
            run_with(&mut terminal, app, endpoint, events, |_, _, _| Ok(())),
            driver
        );
        let app = result.unwrap();
        assert!(app.should_quit);
        assert_eq!(app.transfers.jobs.len(), 2);
        let screen = format!("{}", terminal.backend());
        assert!(screen.contains("#1 ✓ up.txt"), "{screen}");
        assert!(screen.contains("#2 ✓ down.txt"), "{screen}");
        assert!(screen.contains("down.txt ✓"), "{screen}");
        assert!(screen.contains("connected"), "{screen}");
    }
}
