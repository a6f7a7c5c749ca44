//! The coordinator: [`App`] holds the components (panes, dialogs, the transfer list, the
//! server link, the banner) and is the only place their changes meet: [`App::on_key`],
//! [`App::on_mouse`], [`App::update`] and [`App::on_msg`] route to the component that owns
//! the state and apply the outcome it returns. Synchronous and free of IO: whatever needs the
//! disk, the network or the engine is queued as an [`Effect`] for the event loop, and the
//! outcome comes back as a [`Msg`]. That keeps every behaviour testable with plain values.
//!
//! Over 600 lines because what is left here is the wiring between components (a finished job
//! refreshes panes, a listing saves the recent list, a refused login reopens the password
//! prompt): each piece is short, and splitting it further would scatter one decision over
//! several files. The components' own state and keys live in their modules.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent};
use ferry_protocol::{Entry, PartialEntry};
use ratatui::layout::Rect;

use crate::engine::known_hosts::Fingerprint;
use crate::engine::{
    ConflictAnswer, ConflictPolicy, Endpoint, JobId, JobSpec, JobSummary, TransferEvent,
};
use crate::url::RemoteUrl;

use super::chmod::{self, ChmodDialog};
use super::compare;
use super::config::{self, Bookmark, Recent, ResumeJobs, Settings};
use super::conflict::ConflictPrompt;
use super::copy_dialog::CopyDialog;
use super::dialogs::{
    ChangedCertificate, Confirmed, Dialog, InputPurpose, Outcome as DialogOutcome, typed_address,
};
use super::find::{self, FindList};
use super::input::LineInput;
use super::job_report::{self, failure_text};
use super::job_request;
use super::jobs::{self, JobInfo, JobKey, JobState, TransferList};
use super::keymap::{Action, Key, Keymap};
use super::layout;
use super::location::{Location, Side};
use super::mouse::{Gesture, KeyBar, Mouse};
use super::pane::{Listed, Pane};
use super::partials::PartialsDialog;
use super::places::{self, OtherServer, Places};
use super::queue::{self, Queue};
use super::rate::{self, RateTarget};
use super::screen::{Banner, BannerKind, Focus};
use super::server_link::{self, ConnState, LinkNews, ServerLink};
use super::sync_dialog::{self, SyncDialog};
use super::theme::Theme;
use super::ui;
use super::viewer::edit::{FileActions, Note, Step, Target};
use crate::format;

// The session task and `tui::run` name these through the app, where they were first defined.
pub use super::dialogs::PendingLogin;
pub use super::message::{ConnEvent, Effect, ListError, Msg};

/// Everything the screen shows.
#[derive(Debug)]
pub struct App {
    pub local: Pane,
    pub remote: Pane,
    pub focus: Focus,
    /// The pane that had focus last, where keys go back to from the transfer list.
    pub last_pane: Side,
    pub keymap: Keymap,
    pub theme: Theme,
    pub conn: ServerLink,
    pub transfers: TransferList,
    pub dialog: Option<Dialog>,
    /// The permissions dialog, over the panes.
    pub chmod: Option<ChmodDialog>,
    /// Find file, over the panes.
    pub find: Option<FindList>,
    /// The sync dialog, over the panes.
    pub sync: Option<SyncDialog>,
    pub conflicts: VecDeque<ConflictPrompt>,
    /// The filter being typed in the focused pane.
    pub filtering: Option<LineInput>,
    pub banner: Option<Banner>,
    /// Files that arrived with a matching digest, by side and [`Location::key`].
    pub verified: HashSet<(Side, String)>,
    pub bookmarks: Vec<Bookmark>,
    /// The config file the bookmarks came from, where a fingerprint trusted for a bookmark is
    /// written back so the bookmark remembers it.
    pub config_path: Option<PathBuf>,
    pub recent: Vec<Recent>,
    /// The bundled server ferry started with (what it serves, how to reach it), offered by F9
    /// to return to once the remote pane shows another server.
    pub bundled_server: Option<(PathBuf, Endpoint)>,
    /// The `Host` names of `~/.ssh/config`, offered in the connect dialog.
    pub ssh_hosts: Vec<String>,
    /// The recent-list entry to save once this connection comes up.
    pending_recent: Option<Recent>,
    /// A location relative to the remote home (`nas:photos`) waiting for the connection to
    /// say where the home is.
    pending_home: Option<RemoteUrl>,
    /// Servers found on the local network while F9's dialog browses (cleared when it closes).
    discovered: Vec<crate::engine::discover::Found>,
    /// Whether the event loop browses for them.
    discovering: bool,
    /// The address and announced fingerprint of the discovered server being connected: a hint
    /// the handshake must show before it is trusted, never trust by itself.
    announced: Option<(String, Fingerprint)>,
    /// The current connection's login as a user, so a refused password can be asked again.
    login: Option<PendingLogin>,
    pub size: (u16, u16),
    pub should_quit: bool,
    pub mouse: Mouse,
    /// Set by a reconnect request, so its success is announced.
    reconnecting: bool,
    /// A [`Effect::Probe`] is out; cleared by the next news of the connection.
    probing: bool,
    serial: u64,
    outbox: Vec<Effect>,
    /// Uploads cancelled with "delete the partial": their partials go once they have stopped.
    discard_after_cancel: HashSet<JobKey>,
    /// The first key of a two-key sequence (`Ctrl+X`), waiting for the second.
    chord: Option<Key>,
    /// A copy into a typed directory, waiting for that directory to be made (or found).
    awaiting_dest: Option<(Side, JobSpec, JobInfo)>,
    /// F3, F4, Enter on a file, Ctrl+O, and the viewer while it is open.
    pub files: FileActions,
    /// The rate limit for all transfers together, in bytes per second; 0 for none.
    pub rate_limit: u64,
    /// Where each pane was on the kind of place (local or server) it does not show now.
    places: Places,
    /// A pane on another server than `conn`'s, with its own connection.
    pub other: Option<OtherServer>,
    /// The transfer queue file's jobs.
    pub queue: Queue,
    pub resume_jobs: ResumeJobs,
    /// How many jobs run at once; the rest wait their turn in the transfer list.
    pub max_jobs: usize,
    /// The jobs read at start that the question at start is about, by number.
    restored: Vec<u64>,
}

/// The key of job `number` while it waits (queued or paused).
fn waiting_key(number: u64) -> JobKey {
    JobKey {
        conn: jobs::NOT_STARTED,
        id: JobId(number),
    }
}

/// The character a key types, for quick jump: none with Ctrl or Alt held.
fn printable(key: &KeyEvent) -> Option<char> {
    let held = KeyModifiers::CONTROL | KeyModifiers::ALT;
    match key.code {
        KeyCode::Char(c) if !key.modifiers.intersects(held) && !c.is_control() && c != ' ' => {
            Some(c)
        }
        _ => None,
    }
}

impl App {
    /// The state at start-up; the first listings are queued at once.
    pub fn new(
        settings: Settings,
        local_dir: PathBuf,
        remote_label: String,
        remote_path: String,
    ) -> App {
        let make = |side, dir| {
            let mut pane = Pane::new(side, dir);
            pane.sort = settings.defaults.sort;
            pane.reverse = settings.defaults.reverse;
            pane.show_hidden = settings.defaults.show_hidden;
            pane.columns.clone_from(&settings.defaults.columns);
            pane.attributes = settings.defaults.attributes;
            pane
        };
        let mut app = App {
            local: make(Side::Local, Location::Local(local_dir.clone())),
            remote: make(Side::Remote, Location::Remote(remote_path.clone())),
            focus: Focus::Pane(Side::Local),
            last_pane: Side::Local,
            keymap: settings.keymap,
            theme: settings.theme,
            conn: ServerLink::connecting(1, remote_label),
            transfers: TransferList::default(),
            dialog: None,
            chmod: None,
            find: None,
            sync: None,
            conflicts: VecDeque::new(),
            filtering: None,
            banner: None,
            verified: HashSet::new(),
            bookmarks: settings.bookmarks,
            config_path: None,
            recent: Vec::new(),
            bundled_server: None,
            pending_recent: None,
            ssh_hosts: Vec::new(),
            pending_home: None,
            discovered: Vec::new(),
            discovering: false,
            announced: None,
            login: None,
            size: (120, 40),
            should_quit: false,
            mouse: Mouse::default(),
            reconnecting: false,
            probing: false,
            serial: 0,
            outbox: Vec::new(),
            discard_after_cancel: HashSet::new(),
            chord: None,
            awaiting_dest: None,
            files: FileActions::new(settings.pager, settings.open),
            rate_limit: 0,
            places: Places::default(),
            other: None,
            queue: Queue::default(),
            resume_jobs: settings.resume_jobs,
            max_jobs: settings.max_jobs,
            restored: Vec::new(),
        };
        app.request_list(Side::Local, Location::Local(local_dir), None);
        app.request_list(Side::Remote, Location::Remote(remote_path), None);
        app
    }

    fn save_queue(&mut self) {
        if let Some((path, jobs)) = self.queue.snapshot() {
            self.outbox.push(Effect::SaveQueue { path, jobs });
        }
    }

    /// At start: the transfers an earlier run left for this server, as `resume_jobs` says.
    pub fn offer_saved_jobs(&mut self) {
        let count = self.queue.waiting.len();
        if count == 0 {
            return;
        }
        match self.resume_jobs {
            ResumeJobs::Always => {
                self.restored = self.restore_rows(JobState::Queued);
                self.start_queued();
            }
            ResumeJobs::Never => {
                self.queue.waiting.clear();
                self.save_queue();
                self.info(format!(
                    "{count} unfinished transfer(s) of an earlier run not resumed (resume_jobs = \"never\")"
                ));
            }
            ResumeJobs::Ask => {
                let list: Vec<String> = self
                    .queue
                    .waiting
                    .iter()
                    .take(5)
                    .map(|job| {
                        let what = match job.direction {
                            queue::Direction::Upload => "upload",
                            queue::Direction::Download => "download",
                        };
                        let failed = match &job.stage {
                            queue::Stage::Failed(why) => {
                                format!(", failed: {}", format::escape_text(why))
                            }
                            queue::Stage::Running | queue::Stage::Queued => String::new(),
                            queue::Stage::Paused => ", paused".to_string(),
                        };
                        format!("{} ({what}{failed})", format::escape_text(&job.label))
                    })
                    .collect();
                let more = if count > 5 {
                    format!(" and {} more", count - 5)
                } else {
                    String::new()
                };
                self.dialog = Some(Dialog::Confirm {
                    title: "Resume transfers".into(),
                    message: format!(
                        "{count} transfer(s) of an earlier run did not finish: {}{more}. \
                         y: resume them all from their partials. d: discard them. Esc: keep \
                         them paused in the transfer list to pick from (t, then Ctrl+P \
                         resumes one, x drops one).",
                        list.join("; ")
                    ),
                    on_yes: Confirmed::ResumeSaved,
                });
                self.restored = self.restore_rows(JobState::Paused);
            }
        }
    }

    /// The jobs read at start as rows of the transfer list in `state` (queued or paused),
    /// still kept in the file; their numbers.
    fn restore_rows(&mut self, state: JobState) -> Vec<u64> {
        let mut numbers = Vec::new();
        for job in std::mem::take(&mut self.queue.waiting) {
            let number = self
                .transfers
                .enqueue(job.server.clone(), job.spec(), queue::info(&job));
            self.transfers.set_waiting(number, state.clone());
            self.queue.adopt(waiting_key(number), job);
            numbers.push(number);
        }
        self.follow_jobs();
        numbers
    }

    /// `y` to the question at start: every restored job queued to run again.
    fn resume_saved(&mut self) {
        for number in std::mem::take(&mut self.restored) {
            self.transfers.set_waiting(number, JobState::Queued);
        }
        self.start_queued();
    }

    /// A new job: a row in the transfer list, started when fewer than `max_jobs` run.
    fn enqueue(&mut self, spec: JobSpec, info: JobInfo) {
        let label = info.label.clone();
        let number = self.transfers.enqueue(self.conn.label.clone(), spec, info);
        if let Some(spec) = self.transfers.spec(number)
            && self.queue.enqueued(waiting_key(number), spec, &label)
        {
            self.save_queue();
        }
        self.start_queued();
        self.follow_jobs();
    }

    /// Starts queued jobs, first in list order, while fewer than `max_jobs` run.
    fn start_queued(&mut self) {
        let server = self.conn.label.clone();
        for (_, spec, info) in self.transfers.next_to_start(self.max_jobs, &server) {
            self.outbox.push(Effect::Submit { spec, info });
        }
    }

    /// The event loop could not give the job it was handed to an engine.
    pub fn submit_failed(&mut self, why: &str) {
        if let Some(number) = self.transfers.first_starting() {
            self.transfers.drop_waiting(number);
            self.error(format!("#{number}: {why}"));
        }
    }

    /// `p` on the transfer list: pauses the selected running job (its engine job is
    /// cancelled, which keeps every partial), or queues a paused one again.
    fn pause_or_resume(&mut self) {
        if let Some(old) = self.transfers.pause_selected() {
            self.outbox.push(Effect::Cancel(old));
            if let Some(job) = self.transfers.selected_job() {
                self.queue.paused(old, job.key);
                self.save_queue();
            }
            self.start_queued();
        } else if self.transfers.resume_selected() {
            self.start_queued();
        }
    }

    /// `x` on a queued or paused job: it will not run; `true` if the selected job was one.
    fn drop_selected_waiting(&mut self) -> bool {
        let Some(job) = self.transfers.selected_job() else {
            return false;
        };
        if !matches!(job.state, JobState::Queued | JobState::Paused) {
            return false;
        }
        let (number, key) = (job.number, job.key);
        self.transfers.drop_waiting(number);
        if self.queue.forget(key) {
            self.save_queue();
        }
        true
    }

    /// Takes the queued effects.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.outbox)
    }

    /// Remembers `recent` once the current connection succeeds.
    pub fn remember_on_connect(&mut self, recent: Recent) {
        self.pending_recent = Some(recent);
    }

    pub fn pane(&self, side: Side) -> &Pane {
        match side {
            Side::Local => &self.local,
            Side::Remote => &self.remote,
        }
    }

    pub fn pane_mut(&mut self, side: Side) -> &mut Pane {
        match side {
            Side::Local => &mut self.local,
            Side::Remote => &mut self.remote,
        }
    }

    /// The connection of the server `side`'s pane shows (when it shows one).
    pub fn link(&self, side: Side) -> &ServerLink {
        match &self.other {
            Some(other) if other.side == side => &other.link,
            _ => &self.conn,
        }
    }

    /// The id of the connection `side`'s pane uses for the server.
    pub fn conn_of(&self, side: Side) -> u64 {
        self.link(side).id
    }

    /// A connection id no link has had.
    fn next_conn_id(&self) -> u64 {
        self.conn
            .id
            .max(self.other.as_ref().map_or(0, |o| o.link.id))
            + 1
    }

    /// The pane that keys apply to.
    pub fn active_side(&self) -> Side {
        match self.focus {
            Focus::Pane(side) => side,
            Focus::Transfers => self.last_pane,
        }
    }

    pub fn error(&mut self, text: impl Into<String>) {
        let text = text.into();
        // One line per message in the log too, whatever a name or a server put in it.
        tracing::warn!("{}", format::escape_text(&text));
        self.banner = Some(Banner {
            kind: BannerKind::Error,
            text,
        });
    }

    /// The next action that succeeded: an error banner from an earlier one is old news.
    fn clear_error_banner(&mut self) {
        if self
            .banner
            .as_ref()
            .is_some_and(|b| b.kind == BannerKind::Error)
        {
            self.banner = None;
        }
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.banner = Some(Banner {
            kind: BannerKind::Info,
            text: text.into(),
        });
    }

    /// Whether any job still runs.
    pub fn transfers_running(&self) -> bool {
        self.transfers.running().next().is_some()
    }

    /// The number the user knows job `key` by.
    pub fn job_number(&self, key: JobKey) -> u64 {
        self.transfers.number(key)
    }

    /// What the next frame shows, borrowed from this state.
    pub fn view(&self) -> ui::View<'_> {
        ui::View {
            local: &self.local,
            remote: &self.remote,
            focus: self.focus,
            keymap: &self.keymap,
            theme: &self.theme,
            conn: &self.conn,
            other: self.other.as_ref(),
            jobs: &self.transfers.jobs,
            selected_job: self.transfers.selected,
            dialog: &self.dialog,
            chmod: &self.chmod,
            find: &self.find,
            sync: &self.sync,
            conflicts: &self.conflicts,
            filtering: &self.filtering,
            banner: &self.banner,
            verified: &self.verified,
            drag: &self.mouse.drag,
            rate_limit: self.rate_limit,
        }
    }

    /// Moves the selection to the newest running job, else the newest job, unless the user is
    /// choosing in the focused list: the panel then shows what `x` would cancel.
    fn follow_jobs(&mut self) {
        self.transfers.follow(self.focus == Focus::Transfers);
    }

    /// Records a new terminal size and lays the panes out for it.
    pub fn resize(&mut self, width: u16, height: u16) {
        self.size = (width, height);
        self.files.resize(width, height);
        self.sync_layout();
    }

    /// Tells the panes how many rows they show; the transfer panel's height changes with the
    /// job count, so this runs before every draw.
    pub fn sync_layout(&mut self) {
        let areas = self.areas();
        self.local.set_height(layout::list_rows(areas.local));
        self.remote.set_height(layout::list_rows(areas.remote));
    }

    /// Where each part of the screen is at the current size, as the views draw it.
    pub fn areas(&self) -> layout::Areas {
        layout::layout(
            Rect::new(0, 0, self.size.0, self.size.1),
            self.transfers.jobs.len(),
            self.banner.is_some(),
        )
    }

    fn request_list(&mut self, side: Side, dir: Location, select: Option<String>) {
        self.request_list_after(side, dir, select, None, None);
    }

    /// [`Self::request_list`], saying which gone directory the pane is moving up from and what
    /// error to repeat if it has to.
    fn request_list_after(
        &mut self,
        side: Side,
        dir: Location,
        select: Option<String>,
        vanished: Option<Location>,
        note: Option<String>,
    ) {
        self.serial += 1;
        let serial = self.serial;
        self.pane_mut(side).pending = Some(super::pane::Pending {
            serial,
            dir: dir.clone(),
            select,
            vanished,
            note,
        });
        self.outbox.push(Effect::List { side, serial, dir });
    }

    /// Lists the pane's directory again; a navigation still in flight wins, so a job that
    /// finishes just after Enter does not pull the user back.
    fn refresh(&mut self, side: Side) {
        let pane = self.pane(side);
        match pane.pending.clone() {
            Some(p) => self.request_list_after(side, p.dir, p.select, p.vanished, p.note),
            None => {
                let dir = pane.dir.clone();
                self.request_list(side, dir, None);
            }
        }
    }

    /// A key press. Dialogs, conflicts and the filter see keys before the keymap does.
    pub fn on_key(&mut self, key: KeyEvent) {
        self.on_key_at(key, Instant::now());
    }

    /// [`Self::on_key`] at `now`, which tells quick jump's letters of one name apart from
    /// keys typed after a pause.
    pub fn on_key_at(&mut self, key: KeyEvent, now: Instant) {
        if key.kind != KeyEventKind::Press {
            return;
        }
        if self.files.wants_keys() {
            let step = self.files.on_key(&key);
            return self.file_step(step);
        }
        if self.find.is_some() {
            return self.find_key(key);
        }
        // A dialog over it (ssh asking for the plan's connection) takes the keys first.
        if self.sync.is_some() && self.dialog.is_none() {
            return self.sync_key(key);
        }
        if self.chmod.is_some() {
            return self.chmod_key(key);
        }
        if let Some(first) = self.chord.take() {
            // The second key of a sequence: its action, or nothing (as mc does).
            if let Some(action) = self.keymap.chord(first, &key) {
                self.update(action);
            }
            return;
        }
        if self.dialog.is_none()
            && self.conflicts.is_empty()
            && self.filtering.is_none()
            && self.keymap.is_prefix(&key)
        {
            self.chord = Some(Key::from_event(&key));
            return;
        }
        let jumping = match (self.focus, printable(&key)) {
            (Focus::Pane(side), Some(c))
                if self.dialog.is_none()
                    && self.conflicts.is_empty()
                    && self.filtering.is_none() =>
            {
                let bound = self.keymap.action(&key).is_some();
                self.pane_mut(side).jump_key(c, bound, now)
            }
            _ => false,
        };
        if jumping {
            return;
        }
        // Any other key ends a jump: its next letter starts over.
        self.local.jump = None;
        self.remote.jump = None;
        if self.dialog.is_some() {
            self.dialog_key(key);
        } else if !self.conflicts.is_empty() {
            self.conflict_key(key);
        } else if self.filtering.is_some() {
            self.filter_key(key);
        } else if let Some(action) = self.keymap.action(&key) {
            self.update(action);
        } else if key.code == KeyCode::Esc {
            self.escape();
        }
    }

    /// The passing of time at `now`: a quick jump whose pause is over leaves the footer.
    /// Returns whether the screen changed.
    pub fn tick(&mut self, now: Instant) -> bool {
        self.follow_discovery();
        let local = self.local.jump_expired(now);
        self.remote.jump_expired(now) || local
    }

    fn escape(&mut self) {
        if self.focus == Focus::Transfers {
            self.focus = Focus::Pane(self.last_pane);
            self.follow_jobs();
            return;
        }
        let side = self.active_side();
        if self.banner.take().is_some() {
            return;
        }
        let pane = self.pane_mut(side);
        if !pane.filter.is_empty() {
            pane.set_filter("");
        } else {
            pane.marks.clear();
        }
    }

    /// Does what an action means in the current focus.
    pub fn update(&mut self, action: Action) {
        if self.focus == Focus::Transfers && self.transfers_action(action) {
            return;
        }
        let side = self.active_side();
        if self.pane_mut(side).act(action) {
            return;
        }
        match action {
            Action::Enter => self.enter(side),
            Action::Parent => self.parent(side),
            Action::SwitchPane => {
                let next = side.other();
                self.focus = Focus::Pane(next);
                self.last_pane = next;
            }
            // Rename acts on the cursor's entry even with marks.
            Action::Copy | Action::Move | Action::Delete | Action::Rename
                if self.pane(side).only_parent_selected()
                    || (action == Action::Rename && self.pane(side).on_parent_row()) =>
            {
                self.error("`..` is the parent directory, not an entry: it cannot be copied, moved, deleted or renamed");
            }
            Action::Copy => self.ask_transfer(side, false),
            Action::Move => self.ask_transfer(side, true),
            Action::Compare => self.compare(),
            Action::Sync => {
                match SyncDialog::open(side, self.local.dir.clone(), self.remote.dir.clone()) {
                    Ok(dialog) => self.sync = Some(dialog),
                    Err(why) => self.error(why),
                }
            }
            Action::Mkdir => {
                if self.writable(side, "make a directory") {
                    self.dialog = Some(Dialog::mkdir(side));
                }
            }
            Action::Delete => self.ask_delete(side),
            Action::Rename => {
                if let Some(name) = self.pane(side).current().map(|e| e.name.clone())
                    && self.writable(side, "rename")
                {
                    self.dialog = Some(Dialog::rename(side, name));
                }
            }
            Action::Filter => {
                self.filtering = Some(LineInput::new(&self.pane(side).filter));
            }
            Action::Refresh => {
                if side == Side::Remote || matches!(self.conn.state, ConnState::Lost(_)) {
                    if matches!(self.conn.state, ConnState::Lost(_)) {
                        self.conn.state = ConnState::Connecting;
                        self.reconnecting = true;
                        self.banner = None;
                    }
                    self.refresh(Side::Remote);
                }
                if side == Side::Local {
                    self.refresh(Side::Local);
                }
            }
            Action::Goto => self.dialog = Some(Dialog::goto(side, &self.pane(side).dir)),
            Action::Chmod => match ChmodDialog::open(side, self.pane(side)) {
                Ok(dialog) => self.chmod = Some(dialog),
                Err(why) => self.error(why),
            },
            Action::Find if self.other.as_ref().is_some_and(|o| o.side == side) => {
                self.error("Find file searches the main connection's server only, not this pane's");
            }
            Action::Find => {
                self.serial += 1;
                self.find = Some(FindList::new(
                    side,
                    self.pane(side).dir.clone(),
                    self.serial,
                ));
            }
            Action::SwitchPlace => {
                let (here, there) = (
                    self.pane(side).dir.clone(),
                    self.pane(side.other()).dir.clone(),
                );
                let to = self.places.switch(side, &here, &there);
                self.request_list(side, to, None);
            }
            Action::Connect => self.open_connect(),
            Action::Transfers => {
                if !self.transfers.jobs.is_empty() {
                    // The list opens on the job it was showing (the newest running one).
                    self.follow_jobs();
                    self.focus = Focus::Transfers;
                }
            }
            Action::CancelJob => self.ask_cancel(),
            Action::RateLimit => {
                self.dialog = Some(rate::dialog(RateTarget::All, self.rate_limit, None));
            }
            Action::Partials => {
                // Partials live on the server: the remote pane's directory, whichever pane has
                // the focus.
                if let Location::Remote(dir) = &self.remote.dir {
                    let dir = dir.clone();
                    self.dialog = Some(Dialog::Partials(PartialsDialog::new(dir.clone())));
                    self.outbox.push(Effect::ListPartials { dir });
                }
            }
            Action::ClearFinished => {
                self.transfers.clear_finished();
                if self.transfers.jobs.is_empty() {
                    self.focus = Focus::Pane(self.last_pane);
                }
                self.follow_jobs();
            }
            Action::Edit if !self.writable(side, "edit a file") => {}
            Action::View | Action::Edit => {
                if let Some(target) = self.file_target(side) {
                    let step = if action == Action::View {
                        self.files.view(target, self.size)
                    } else {
                        self.files.edit(target)
                    };
                    self.file_step(step);
                }
            }
            Action::Subshell => {
                let dir = match &self.local.dir {
                    Location::Local(dir) => Some(dir.clone()),
                    Location::Remote(_) => None,
                };
                let step = self.files.subshell(dir);
                self.file_step(step);
            }
            Action::Help => self.dialog = Some(Dialog::Help { scroll: 0 }),
            Action::Suspend => self.outbox.push(Effect::Suspend),
            Action::Quit => {
                let running = self.transfers.running().count();
                if running == 0 {
                    self.should_quit = true;
                } else {
                    self.dialog = Some(Dialog::quit(running));
                }
            }
            // Moves, marks and sorting: the pane did them above.
            Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom
            | Action::Mark
            | Action::InvertMarks
            | Action::MarkAll
            | Action::ToggleHidden
            | Action::SortNext
            | Action::SortReverse
            | Action::SortName
            | Action::SortSize
            | Action::SortTime
            | Action::ToggleAttributes
            | Action::PauseJob
            | Action::JobUp
            | Action::JobDown
            | Action::RetryJob => {}
        }
    }

    /// Keys that mean something else while the transfer list has focus; `true` if handled.
    fn transfers_action(&mut self, action: Action) -> bool {
        match action {
            Action::Up | Action::Down | Action::Top | Action::Bottom => {
                self.transfers.select(action);
            }
            Action::Enter => {
                if let Some(job) = self.transfers.selected_job() {
                    self.dialog = Some(Dialog::Details {
                        job: job.key,
                        scroll: 0,
                    });
                }
            }
            Action::Delete => self.ask_cancel(),
            Action::RateLimit => match self.transfers.selected_job().filter(|j| j.is_active()) {
                Some(job) => {
                    let target = RateTarget::Job(job.key);
                    self.dialog = Some(rate::dialog(target, job.rate_limit, Some(job.number)));
                }
                None => self.dialog = Some(rate::dialog(RateTarget::All, self.rate_limit, None)),
            },
            Action::PauseJob => self.pause_or_resume(),
            Action::JobUp | Action::JobDown => {
                if !self.transfers.move_selected(action == Action::JobUp) {
                    self.info("Only a queued or paused job moves in the queue");
                }
            }
            Action::RetryJob => match self.transfers.retry_selected() {
                Some((server, _, _)) if server != self.conn.label => {
                    self.info("That job is for another server: connect there to retry it");
                }
                Some((_, spec, info)) => self.enqueue(spec, info),
                None => self.info("Only a failed job is retried"),
            },
            Action::Transfers | Action::SwitchPane => {
                self.focus = Focus::Pane(self.last_pane);
                self.follow_jobs();
            }
            _ => return false,
        }
        true
    }

    fn enter(&mut self, side: Side) {
        let pane = self.pane(side);
        if pane.on_parent_row() {
            return self.parent(side);
        }
        let Some(entry) = pane.current() else { return };
        if !entry.is_dir_like() {
            if let Some(target) = self.file_target(side) {
                let step = self.files.open(target, self.size);
                self.file_step(step);
            }
            return;
        }
        let dir = pane.dir.join(&entry.name);
        self.request_list(side, dir, None);
    }

    /// The pane's title as drawn in `area` (the listing lays it out the same way).
    fn title_path(&self, side: Side, area: Rect) -> layout::TitlePath {
        let pane = self.pane(side);
        let label = places::label(&pane.dir, &self.link(side).label);
        let busy = if pane.pending.is_some() { " ⟳" } else { "" };
        layout::title_path(area, label, &pane.dir.shown(), busy)
    }

    /// Goes `up` levels above the pane's directory (a click on the title's path), with the
    /// cursor on the directory it came up from.
    fn go_up(&mut self, side: Side, up: usize) {
        let mut dir = self.pane(side).dir.clone();
        let mut from = None;
        for _ in 0..up {
            let Some((parent, name)) = dir.parent() else {
                break;
            };
            dir = parent;
            from = Some(name);
        }
        if up > 0 {
            self.request_list(side, dir, from);
        }
    }

    fn parent(&mut self, side: Side) {
        if let Some((dir, name)) = self.pane(side).dir.parent() {
            self.request_list(side, dir, Some(name));
        }
    }

    /// A key for the permissions dialog; a read-only server refuses the change itself, and
    /// the banner shows its words.
    fn chmod_key(&mut self, key: KeyEvent) {
        let Some(dialog) = self.chmod.as_mut() else {
            return;
        };
        match dialog.on_key(&key) {
            Some(chmod::Outcome::Apply { side, paths, mode }) => {
                self.chmod = None;
                self.outbox.push(Effect::Chmod { side, paths, mode });
            }
            Some(chmod::Outcome::Cancel) => self.chmod = None,
            None => {}
        }
    }

    /// A key for the sync dialog.
    fn sync_key(&mut self, key: KeyEvent) {
        let Some(dialog) = self.sync.as_mut() else {
            return;
        };
        match dialog.on_key(&key) {
            sync_dialog::Outcome::Stay => {}
            sync_dialog::Outcome::Close => {
                if dialog.pending().is_some() {
                    self.outbox.push(Effect::StopSyncPlan);
                }
                self.sync = None;
            }
            sync_dialog::Outcome::Plan { src, dst, options } => {
                self.serial += 1;
                dialog.planning(self.serial);
                self.outbox.push(Effect::SyncPlan {
                    serial: self.serial,
                    src,
                    dst,
                    options,
                });
            }
            sync_dialog::Outcome::Run(plan) => {
                let source = dialog.source;
                let src_dir = dialog.dir(source).clone();
                let dest_dir = dialog.dir(source.other()).clone();
                // Closed either way: a refusal's banner is not to be hidden behind it.
                self.sync = None;
                if !self.can_transfer(source, false) {
                    return;
                }
                let info = JobInfo {
                    dest: source.other(),
                    label: format!("sync → {}", dest_dir.shown()),
                    src_dir,
                    dest_dir,
                    items: Vec::new(),
                    is_move: false,
                };
                self.outbox.push(Effect::SubmitSync { plan, info });
            }
        }
    }

    /// A key for find file.
    fn find_key(&mut self, key: KeyEvent) {
        let Some(list) = self.find.as_mut() else {
            return;
        };
        match list.on_key(&key) {
            Some(find::Outcome::Start {
                side,
                dir,
                pattern,
                serial,
            }) => self.outbox.push(Effect::Find {
                side,
                dir,
                pattern,
                serial,
            }),
            Some(find::Outcome::Close) => {
                self.find = None;
                self.outbox.push(Effect::StopFind);
            }
            Some(find::Outcome::Jump { side, dir, name }) => {
                self.find = None;
                self.outbox.push(Effect::StopFind);
                self.focus = Focus::Pane(side);
                self.last_pane = side;
                self.request_list(side, dir, Some(name));
            }
            None => {}
        }
    }

    /// Whether `side` can be written, saying why not in the banner.
    fn writable(&mut self, side: Side, what: &str) -> bool {
        if matches!(self.pane(side).dir, Location::Remote(_)) && self.link(side).read_only {
            // The server may be writable and only this account read-only: the hello does
            // not say which, so the message names the access, not the server.
            self.error(format!(
                "Cannot {what}: this connection has read-only access"
            ));
            return false;
        }
        true
    }

    /// Whether a copy or move from `source` can start now, saying why not in the banner.
    fn can_transfer(&mut self, source: Side, is_move: bool) -> bool {
        let dest = source.other();
        let verb = if is_move { "move" } else { "copy" };
        let key = self.keymap.hint(Action::SwitchPlace);
        if let Some(why) = places::refusal(&self.pane(source).dir, &self.pane(dest).dir, &key) {
            self.error(why);
            return false;
        }
        if !self.writable(dest, verb) || (is_move && !self.writable(source, verb)) {
            return false;
        }
        if let ConnState::Lost(_) = self.conn.state {
            self.error("Not connected: press Ctrl+R to reconnect");
            return false;
        }
        true
    }

    /// F5/F6: asks where to, and with which policy, before the selection is sent.
    fn ask_transfer(&mut self, source: Side, is_move: bool) {
        if !self.can_transfer(source, is_move) {
            return;
        }
        let dialog = CopyDialog::new(self.pane(source), self.pane(source.other()), is_move);
        self.dialog = dialog.map(Dialog::Copy);
    }

    /// The copy dialog's Enter: into the other pane's directory at once; into another one once
    /// it is made (it may exist already, which is as good).
    fn start_copy(
        &mut self,
        source: Side,
        is_move: bool,
        names: Vec<String>,
        dest: Location,
        policy: ConflictPolicy,
    ) {
        if !self.can_transfer(source, is_move) {
            return;
        }
        let into_pane = dest == self.pane(source.other()).dir;
        if !into_pane && self.awaiting_dest.is_some() {
            // One directory is made at a time, so its answer cannot be taken for another's.
            self.error("Not copied: the last copy is still making its destination; try again");
            return;
        }
        let Some((spec, info)) = job_request::request_into(
            self.pane(source),
            dest.clone(),
            is_move,
            Some(names),
            policy,
        ) else {
            return;
        };
        self.pane_mut(source).marks.clear();
        if into_pane {
            self.enqueue(spec, info);
        } else {
            let side = source.other();
            self.awaiting_dest = Some((side, spec, info));
            self.outbox.push(Effect::Mkdir { side, path: dest });
        }
    }

    /// Marks in both panes what differs from the other (mc's compare directories).
    fn compare(&mut self) {
        // Against a listing not (yet) shown, everything would look missing there.
        if [&self.local, &self.remote]
            .iter()
            .any(|pane| !pane.loaded || pane.error.is_some())
        {
            self.error("Nothing compared: both panes must show a listing");
            return;
        }
        let local = compare::mark(&mut self.local, &self.remote);
        let remote = compare::mark(&mut self.remote, &self.local);
        self.info(format!(
            "Local: {}. Remote: {}",
            local.describe(),
            remote.describe()
        ));
    }

    /// The copy dialog's Tab: completes from the other pane's listing when the typed directory
    /// is the one it shows, else asks for that directory's listing.
    fn complete_destination(&mut self, dir: Location) {
        let Some(Dialog::Copy(dialog)) = &mut self.dialog else {
            return;
        };
        let side = dialog.source.other();
        let pane = match side {
            Side::Local => &self.local,
            Side::Remote => &self.remote,
        };
        if pane.dir == dir && pane.loaded {
            dialog.complete_from(&pane.entries);
            return;
        }
        self.serial += 1;
        dialog.asked(self.serial);
        self.outbox.push(Effect::List {
            side,
            serial: self.serial,
            dir,
        });
    }

    /// Queues a copy or move of `names` (default: the selection) into the other pane.
    pub fn transfer(&mut self, source: Side, is_move: bool, names: Option<Vec<String>>) {
        let dir = self.pane(source.other()).dir.clone();
        self.transfer_into(source, is_move, dir, names);
    }

    /// [`Self::transfer`] into `dir` on the other side: its pane's directory, or a folder in
    /// it a drag was dropped on.
    fn transfer_into(
        &mut self,
        source: Side,
        is_move: bool,
        dir: Location,
        names: Option<Vec<String>>,
    ) {
        if !self.can_transfer(source, is_move) {
            return;
        }
        let Some((spec, info)) =
            job_request::request_into(self.pane(source), dir, is_move, names, ConflictPolicy::Ask)
        else {
            return;
        };
        self.pane_mut(source).marks.clear();
        self.enqueue(spec, info);
    }

    fn ask_delete(&mut self, side: Side) {
        if !self.writable(side, "delete") {
            return;
        }
        if let Some(dialog) = Dialog::delete(side, self.pane(side), &self.transfers.jobs) {
            self.dialog = Some(dialog);
        }
    }

    fn ask_cancel(&mut self) {
        if self.focus == Focus::Transfers && self.drop_selected_waiting() {
            return;
        }
        // From the panes, `x` means the selected job if it runs, else the newest running one.
        let Some(job) = self.transfers.to_cancel(self.focus == Focus::Transfers) else {
            return;
        };
        self.dialog = Some(Dialog::cancel(job));
    }

    fn open_connect(&mut self) {
        // The bundled server, unless the remote pane shows it already.
        let home = (self.conn.bundled.is_none())
            .then_some(self.bundled_server.as_ref())
            .flatten()
            .map(|(root, _)| root.as_path());
        self.dialog = Some(Dialog::connect(
            &self.bookmarks,
            &self.recent,
            &self.ssh_hosts,
            home,
        ));
        self.add_discovered();
    }

    /// F9's servers found on the local network, appended to the open connect dialog.
    fn add_discovered(&mut self) {
        if let Some(Dialog::Connect { targets, .. }) = self.dialog.as_mut() {
            targets.extend(Dialog::discovered_targets(
                &self.discovered,
                &self.bookmarks,
            ));
        }
    }

    /// A server found or gone: the open connect dialog is rebuilt, its selection kept.
    fn on_discovered(&mut self, event: crate::engine::discover::DiscoverEvent) {
        use crate::engine::discover::DiscoverEvent;
        if !self.discovering {
            // News from a browse already stopped.
            return;
        }
        match event {
            DiscoverEvent::Found(server) => {
                match self.discovered.iter_mut().find(|s| s.name == server.name) {
                    Some(old) => *old = server,
                    None => self.discovered.push(server),
                }
            }
            DiscoverEvent::Gone(name) => self.discovered.retain(|s| s.name != name),
        }
        if let Some(Dialog::Connect { selected, targets }) = &self.dialog {
            // Rows come and go at the end: a selected "New address…" (the last row) stays
            // selected, so a server appearing never turns Enter into a connection to it.
            let (selected, on_last) = (*selected, *selected == targets.len());
            self.open_connect();
            if let Some(Dialog::Connect {
                targets,
                selected: now,
            }) = self.dialog.as_mut()
            {
                *now = if on_last {
                    targets.len()
                } else {
                    selected.min(targets.len())
                };
            }
        }
    }

    /// Starts F9's browse of the local network while its dialog is open (from the tick, a
    /// moment after F9, so opening the dialog asks nothing else of the event loop) and stops it
    /// once the dialog has closed; the servers found are then forgotten, so the next F9 lists
    /// only those answering then.
    fn follow_discovery(&mut self) {
        let open = matches!(self.dialog, Some(Dialog::Connect { .. }));
        if open != self.discovering {
            self.discovering = open;
            if !open {
                self.discovered.clear();
            }
            self.outbox.push(Effect::Discover(open));
        }
    }

    /// Switches the remote pane to another server.
    pub fn connect(&mut self, url: &str, token: Option<String>) {
        self.connect_pinned(url, token, None);
    }

    /// Switches the remote pane to another server, trusting only the certificate with
    /// `fingerprint` when one is given (a bookmark's or recent entry's pin).
    pub fn connect_pinned(&mut self, url: &str, token: Option<String>, fingerprint: Option<&str>) {
        self.connect_as(url, token, fingerprint, None);
    }

    /// Switches the remote pane back to the bundled server, at its root.
    fn return_to_bundled(&mut self) {
        let Some((root, endpoint)) = self.bundled_server.clone() else {
            return;
        };
        self.login = None;
        self.pending_recent = None;
        self.conn = ServerLink::connecting(self.conn.id + 1, endpoint.address());
        self.conn.bundled = Some(root);
        self.remote = self.remote.reopened(Location::Remote(String::new()));
        self.sync_layout();
        self.outbox.push(Effect::Connect {
            conn: self.conn.id,
            endpoint,
        });
        self.request_list(Side::Remote, Location::Remote(String::new()), None);
    }

    /// The first connection logs in as a user: a refused password is asked again.
    pub fn expect_login(&mut self, login: PendingLogin) {
        self.login = Some(login);
    }

    /// Asks for the password of the user `url` names, masked, then connects with it.
    fn ask_password(&mut self, login: PendingLogin) {
        self.dialog = Some(Dialog::password(login));
    }

    /// [`Self::connect_pinned`] with the password of the user the location names; without
    /// one, a location with a user asks for it first.
    pub fn connect_as(
        &mut self,
        url: &str,
        token: Option<String>,
        fingerprint: Option<&str>,
        password: Option<String>,
    ) {
        self.announced = None;
        let parsed: RemoteUrl = match url.trim().parse() {
            Ok(u) => u,
            Err(e) => {
                self.error(format!("Bad address {url}: {e}"));
                return;
            }
        };
        let fingerprint = match fingerprint.map(str::parse::<Fingerprint>).transpose() {
            Ok(fingerprint) => fingerprint,
            Err(e) => {
                self.error(format!("Bad fingerprint for {url}: {e}"));
                return;
            }
        };
        // Over ssh the user is ssh's to log in, not a ferry account's.
        let ferry_user = parsed.user.as_ref().filter(|_| parsed.ssh.is_none());
        self.login = ferry_user.map(|_| PendingLogin {
            url: url.trim().to_owned(),
            token: token.clone(),
            fingerprint: fingerprint.map(|fp| fp.to_string()),
        });
        if password.is_none()
            && let Some(login) = self.login.clone()
        {
            self.ask_password(login);
            return;
        }
        if password.is_some() {
            // A retry after a refused password: the refusal is old news.
            self.banner = None;
        }
        let endpoint = Endpoint {
            host: parsed.host.clone(),
            port: parsed.port,
            token,
            tls: parsed.tls,
            fingerprint,
            user: parsed.user.clone(),
            password,
            ..parsed.endpoint(None)
        };
        // F9 in the left pane while it shows a server connects that pane, beside the main one.
        if self.active_side() == Side::Local && matches!(self.local.dir, Location::Remote(_)) {
            let id = self.next_conn_id();
            let replaces = self.other.take().map(|o| o.link.id);
            self.other = Some(OtherServer {
                side: Side::Local,
                link: ServerLink::connecting(id, endpoint.address()),
            });
            self.local = self.local.reopened(Location::Remote(parsed.path.clone()));
            self.sync_layout();
            self.outbox.push(Effect::ConnectPane {
                conn: id,
                endpoint,
                replaces,
            });
            self.request_list(Side::Local, Location::Remote(parsed.path), None);
            return;
        }
        self.conn = ServerLink::connecting(self.next_conn_id(), endpoint.address());
        self.conn.tls = parsed.tls;
        // Tokens stay out of the recent list: it is a plain file, and bookmarks are the place
        // for a secret the user chose to keep.
        self.pending_recent = Some(Recent {
            url: parsed.to_string(),
            token: None,
            fingerprint: fingerprint.map(|fp| fp.to_string()),
        });
        // A home-relative location starts at the root and moves home once the link is up.
        let start = if parsed.needs_home() {
            String::new()
        } else {
            parsed.path.clone()
        };
        self.pending_home = parsed.needs_home().then(|| parsed.clone());
        self.remote = self.remote.reopened(Location::Remote(start.clone()));
        self.sync_layout();
        self.queue.set_server(&endpoint);
        self.outbox.push(Effect::Connect {
            conn: self.conn.id,
            endpoint,
        });
        self.request_list(Side::Remote, Location::Remote(start), None);
    }

    /// The link is up and said where the home is (`None`: it did not): a home-relative
    /// location waiting for it is opened.
    fn open_pending_home(&mut self, home: Option<String>) {
        let Some(url) = self.pending_home.take() else {
            return;
        };
        match home {
            Some(home) => {
                let dir = Location::Remote(url.under_home(&home).path);
                self.remote = self.remote.reopened(dir.clone());
                self.sync_layout();
                self.request_list(Side::Remote, dir, None);
            }
            None => self.error(format!(
                "{} did not say where your home directory is: write the path from / (host:/path)",
                self.conn.label
            )),
        }
    }

    fn dialog_key(&mut self, key: KeyEvent) {
        let Some(dialog) = self.dialog.take() else {
            return;
        };
        let jobs = &self.transfers.jobs;
        let (next, outcome) = dialog.on_key(&key, |job| {
            jobs.iter()
                .find(|j| j.key == job)
                .map_or(0, |j| j.details().len())
        });
        if let Some(DialogOutcome::Complete(dir)) = outcome {
            // The completion fills in the dialog that stays open.
            self.dialog = next;
            self.complete_destination(dir);
            return;
        }
        if let Some(outcome) = outcome {
            self.dialog_outcome(outcome);
        }
        // What the key did may have opened a follow-up dialog (a password to ask for a
        // location with a user, say): that one is newer than what this dialog became.
        if self.dialog.is_none() {
            self.dialog = next;
        }
    }

    /// Carries out what a dialog's key asked for.
    fn dialog_outcome(&mut self, outcome: DialogOutcome) {
        match outcome {
            DialogOutcome::Confirmed(on_yes) => self.confirmed(on_yes),
            DialogOutcome::CancelAndDiscard(key) => {
                self.discard_after_cancel.insert(key);
                self.outbox.push(Effect::Cancel(key));
            }
            DialogOutcome::Submitted(purpose, text) => self.submit_input(purpose, text),
            DialogOutcome::Trust { addr, fingerprint } => self.trust_certificate(addr, fingerprint),
            DialogOutcome::Replace(changed) => self.replace_certificate(changed),
            DialogOutcome::Distrust(addr) => {
                self.error(format!(
                    "Not connected: the certificate of {addr} is not trusted"
                ));
            }
            DialogOutcome::DiscardPartial { dir, path } => {
                self.outbox.push(Effect::DiscardPartials {
                    dir: Some(dir),
                    paths: vec![path],
                });
            }
            DialogOutcome::Connect(target) if target.bundled => self.return_to_bundled(),
            DialogOutcome::SshDeclined(id) => {
                self.outbox.push(Effect::AnswerSsh { id, answer: None });
            }
            DialogOutcome::Connect(target) => {
                let hint = self
                    .discovered
                    .iter()
                    .find(|server| target.fingerprint.is_none() && server.url() == target.url)
                    .and_then(|server| {
                        Some((
                            server.addr.to_string(),
                            server.fingerprint.as_deref()?.parse().ok()?,
                        ))
                    });
                self.connect_pinned(&target.url, target.token, target.fingerprint.as_deref());
                self.announced = hint;
            }
            DialogOutcome::StartCopy {
                source,
                is_move,
                names,
                dest,
                policy,
            } => self.start_copy(source, is_move, names, dest, policy),
            DialogOutcome::Complete(dir) => self.complete_destination(dir),
        }
    }

    /// The user said yes to a certificate seen for the first time: it is recorded, pinned for
    /// the reconnect, and kept with the recent entry and with a bookmark of that server that had
    /// no pin (in the config file too).
    fn trust_certificate(&mut self, addr: String, fingerprint: Fingerprint) {
        let pin = fingerprint.to_string();
        if let Some(recent) = self.pending_recent.as_mut() {
            recent.fingerprint = Some(pin.clone());
        }
        let same_server = |bookmark: &Bookmark| {
            bookmark.fingerprint.is_none()
                && bookmark
                    .url
                    .parse::<RemoteUrl>()
                    .is_ok_and(|url| url.tls && url.endpoint(None).address() == addr)
        };
        self.pin_bookmarks(&pin, same_server, None);
        self.conn.accepted = Some(fingerprint);
        self.conn.state = ConnState::Connecting;
        self.outbox.push(Effect::TrustCertificate {
            conn: self.conn.id,
            addr,
            fingerprint,
        });
        self.refresh(Side::Remote);
    }

    /// The user confirmed a changed certificate: every pin of the old one (recent entries,
    /// bookmarks, in the config file too) and its known_hosts line take the new one, each
    /// file replaced whole with its other lines kept; then the connection is made again.
    fn replace_certificate(&mut self, changed: ChangedCertificate) {
        let (old, new) = (changed.old, changed.new.to_string());
        for recent in &mut self.recent {
            if server_link::pins(&recent.fingerprint, &old) {
                recent.fingerprint = Some(new.clone());
            }
        }
        self.pin_bookmarks(
            &new,
            |bookmark| server_link::pins(&bookmark.fingerprint, &old),
            Some(old),
        );
        self.trust_certificate(changed.addr, changed.new);
    }

    /// Writes `pin` into the bookmarks `which` picks, in memory and in the config file (over
    /// the `replacing` fingerprint, for a rotated certificate).
    fn pin_bookmarks(
        &mut self,
        pin: &str,
        which: impl Fn(&Bookmark) -> bool,
        replacing: Option<Fingerprint>,
    ) {
        for bookmark in self.bookmarks.iter_mut().filter(|b| which(b)) {
            bookmark.fingerprint = Some(pin.to_owned());
            if let Some(path) = &self.config_path {
                self.outbox.push(Effect::PinBookmark {
                    path: path.clone(),
                    name: bookmark.name.clone(),
                    fingerprint: pin.to_owned(),
                    replacing,
                });
            }
        }
    }

    fn confirmed(&mut self, on_yes: Confirmed) {
        match on_yes {
            Confirmed::Delete(side, paths) => {
                self.pane_mut(side).marks.clear();
                self.outbox.push(Effect::Remove { side, paths });
            }
            Confirmed::Quit => {
                for job in self.transfers.running() {
                    self.outbox.push(Effect::Cancel(job.key));
                }
                self.should_quit = true;
            }
            Confirmed::CancelJob(key) | Confirmed::CancelUpload(key) => {
                self.outbox.push(Effect::Cancel(key));
            }
            Confirmed::ResumeSaved => self.resume_saved(),
            Confirmed::DiscardSaved => {
                let restored = std::mem::take(&mut self.restored);
                let count = restored.len();
                for number in restored {
                    self.transfers.drop_waiting(number);
                    self.queue.forget(waiting_key(number));
                }
                self.save_queue();
                self.info(format!(
                    "{count} unfinished transfer(s) discarded (their partials stay)"
                ));
            }
        }
    }

    fn submit_input(&mut self, purpose: InputPurpose, text: String) {
        // ssh takes any answer, an empty one too.
        if let InputPurpose::SshPrompt(id) = purpose {
            self.outbox.push(Effect::AnswerSsh {
                id,
                answer: Some(text),
            });
            return;
        }
        if let InputPurpose::RateLimit(target) = purpose {
            return self.set_rate_limit(target, &text);
        }
        if text.is_empty() {
            return;
        }
        let bad_name = text == "." || text == ".." || text.contains('/') || text.contains('\0');
        match purpose {
            InputPurpose::Mkdir(side) | InputPurpose::Rename(side, _) if bad_name => {
                let _ = side;
                self.error(format!(
                    "`{}` is not a valid name",
                    format::escape_name(&text)
                ));
            }
            InputPurpose::Mkdir(side) => {
                let path = self.pane(side).dir.join(&text);
                self.outbox.push(Effect::Mkdir { side, path });
            }
            InputPurpose::Rename(side, old) => {
                if old != text {
                    let dir = self.pane(side).dir.clone();
                    self.outbox.push(Effect::Rename {
                        side,
                        from: dir.join(&old),
                        to: dir.join(&text),
                    });
                }
            }
            InputPurpose::Goto(side) => {
                let dir = self.pane(side).dir.goto(&text);
                self.request_list(side, dir, None);
            }
            InputPurpose::Address => {
                let mut parts = text.split_whitespace();
                let url = typed_address(parts.next().unwrap_or_default()).into_owned();
                let token = parts.next().map(str::to_string);
                self.connect(&url, token);
            }
            InputPurpose::Password(login) => {
                self.connect_as(
                    &login.url,
                    login.token,
                    login.fingerprint.as_deref(),
                    Some(text),
                );
            }
            InputPurpose::RateLimit(target) => self.set_rate_limit(target, &text),
            // Answered above, before the empty-text check.
            InputPurpose::SshPrompt(_) => {}
        }
    }

    /// Sets the limit typed for `target`: shown at once, paced by the engine from its next
    /// piece of bytes on.
    fn set_rate_limit(&mut self, target: RateTarget, text: &str) {
        let bytes_per_second = match rate::parse(text) {
            Ok(rate) => rate,
            Err(message) => return self.error(message),
        };
        match target {
            RateTarget::All => self.rate_limit = bytes_per_second,
            RateTarget::Job(key) => match self.transfers.get_mut(key) {
                Some(job) if job.is_active() => job.rate_limit = bytes_per_second,
                // It ended while the prompt was open: nothing to limit.
                _ => return,
            },
        }
        self.outbox.push(Effect::SetRateLimit {
            target,
            bytes_per_second,
        });
    }

    fn conflict_key(&mut self, key: KeyEvent) {
        let Some(prompt) = self.conflicts.front_mut() else {
            return;
        };
        if let Some(choice) = prompt.on_key(&key)
            && let Some(mut prompt) = self.conflicts.pop_front()
        {
            let answer = ConflictAnswer {
                choice,
                apply_to_all: prompt.apply_to_all,
            };
            if let Some(reply) = prompt.reply.take() {
                self.outbox.push(Effect::Answer { reply, answer });
            }
        }
    }

    fn filter_key(&mut self, key: KeyEvent) {
        let side = self.active_side();
        match key.code {
            KeyCode::Enter => self.filtering = None,
            KeyCode::Esc => {
                self.filtering = None;
                self.pane_mut(side).set_filter("");
            }
            KeyCode::Up => self.pane_mut(side).move_cursor(-1),
            KeyCode::Down => self.pane_mut(side).move_cursor(1),
            KeyCode::PageUp => self.pane_mut(side).page(false),
            KeyCode::PageDown => self.pane_mut(side).page(true),
            _ => {
                if let Some(input) = self.filtering.as_mut()
                    && input.handle(&key)
                {
                    let text = input.text().to_string();
                    self.pane_mut(side).set_filter(&text);
                }
            }
        }
    }

    /// A mouse event; `now` tells double clicks from two clicks.
    pub fn on_mouse(&mut self, event: MouseEvent, now: Instant) {
        if self.dialog.is_some()
            || !self.conflicts.is_empty()
            || self.chmod.is_some()
            || self.find.is_some()
            || self.sync.is_some()
        {
            return;
        }
        let areas = self.areas();
        let hints = self.keymap.bar_hints();
        let summary = self.conn.summary();
        let bar = KeyBar {
            hints: &hints,
            summary: &summary,
        };
        let titles = [
            self.title_path(Side::Local, areas.local),
            self.title_path(Side::Remote, areas.remote),
        ];
        let Some(gesture) = self.mouse.gesture(
            event,
            &areas,
            self.transfers.selected,
            bar,
            [&titles[0], &titles[1]],
        ) else {
            return;
        };
        match gesture {
            Gesture::Key(action) => self.update(action),
            Gesture::Title(side, up) => self.go_up(side, up),
            Gesture::Scroll(side, delta) => self.pane_mut(side).scroll(delta),
            Gesture::Job(index) => {
                if index < self.transfers.jobs.len() {
                    self.transfers.selected = index;
                    self.focus = Focus::Transfers;
                }
            }
            Gesture::Press(side, row) => {
                self.focus = Focus::Pane(side);
                self.last_pane = side;
                self.filtering = None;
                let pane = self.pane_mut(side);
                let Some(index) = row
                    .map(|row| pane.offset + row)
                    .filter(|&index| index < pane.view.len())
                else {
                    return;
                };
                pane.cursor = index;
                pane.scroll_to_cursor();
                let name = pane.current().map(|e| e.name.clone());
                if self.mouse.clicked(now, side, index, name) {
                    self.enter(side);
                }
            }
            Gesture::Drop(drag, row) => {
                let pane = self.pane(drag.side);
                // Dropping a marked entry carries all the marks, like a file manager.
                let names = if pane.marks.contains(&drag.name) {
                    None
                } else {
                    Some(vec![drag.name])
                };
                let target = self.pane(drag.side.other());
                let folder = row
                    .and_then(|row| target.entry_at(target.offset + row))
                    .filter(|entry| entry.is_dir_like())
                    .map(|entry| target.dir.join(&entry.name));
                match folder {
                    Some(dir) => self.transfer_into(drag.side, false, dir, names),
                    None => self.transfer(drag.side, false, names),
                }
            }
        }
    }

    /// The regular file under the cursor, for F3, F4 and Enter; says why when there is none.
    fn file_target(&mut self, side: Side) -> Option<Target> {
        let pane = self.pane(side);
        let entry = pane.current().filter(|_| !pane.on_parent_row());
        match entry {
            Some(entry) if entry.kind == ferry_protocol::Kind::File => Some(Target {
                file: pane.dir.join(&entry.name),
                name: entry.name.clone(),
            }),
            _ => {
                self.error("Not a file: view and edit work on a regular file");
                None
            }
        }
    }

    /// Carries out what the file actions asked for.
    fn file_step(&mut self, step: Step) {
        self.outbox
            .extend(step.effects.into_iter().map(Effect::File));
        match step.note {
            Some(Note::Info(text)) => self.info(text),
            Some(Note::Error(text)) => self.error(text),
            None => {}
        }
        for side in step.refresh {
            self.refresh(side);
        }
    }

    /// News from the event loop.
    pub fn on_msg(&mut self, msg: Msg) {
        match msg {
            Msg::File(news) => {
                let step = self.files.on_news(news);
                self.file_step(step);
            }
            Msg::Partials { dir, result, note } => self.on_partials(dir, result, note),
            Msg::Listed {
                side,
                serial,
                dir,
                result,
            } => {
                // The server's listings come back marked remote, whichever pane asked: the
                // serial says which.
                let asked = |pane: &Pane| pane.pending.as_ref().is_some_and(|p| p.serial == serial);
                let side = if asked(self.pane(side.other())) {
                    side.other()
                } else {
                    side
                };
                self.on_listed(side, serial, dir, result);
            }
            Msg::OpDone { side, result }
                if self.awaiting_dest.as_ref().is_some_and(|w| w.0 == side) =>
            {
                self.destination_made(result);
            }
            Msg::OpDone { side, result } => {
                if let Err(error) = &result {
                    self.error(error.clone());
                } else {
                    self.clear_error_banner();
                }
                for side in places::answered(side, &self.local.dir, &self.remote.dir) {
                    match &result {
                        Ok(select) => {
                            let dir = self.pane(side).dir.clone();
                            self.request_list(side, dir, select.clone());
                        }
                        Err(error) => {
                            let pane = self.pane(side);
                            if pane.pending.is_none() {
                                let dir = pane.dir.clone();
                                let note = Some(error.clone());
                                self.request_list_after(side, dir, None, None, note);
                            }
                        }
                    }
                }
            }
            Msg::Connection { conn, event } => self.on_link_event(conn, event),
            Msg::Submitted { key, info } => {
                match self.transfers.first_starting() {
                    Some(number) => {
                        let waiting = waiting_key(number);
                        if self.queue.started(waiting, key) {
                            self.save_queue();
                        }
                        self.transfers.started(number, key);
                    }
                    None => self.transfers.submitted(key, info),
                }
                self.follow_jobs();
            }
            Msg::Transfer { conn, event } => self.on_transfer(conn, event),
            // ssh waits for this answer: its question comes before any dialog left open.
            Msg::SshPrompt(prompt) => self.dialog = Some(Dialog::ssh_prompt(&prompt)),
            Msg::Discovered(event) => self.on_discovered(event),
            Msg::SyncSeen { serial, seen } => {
                if let Some(dialog) = self.sync.as_mut() {
                    dialog.seen(serial, seen);
                }
            }
            Msg::SyncPlanned { serial, result } => {
                if let Some(dialog) = self.sync.as_mut() {
                    dialog.planned(serial, result.map(|plan| *plan));
                }
            }
            Msg::Found { serial, event } => {
                if let Some(list) = self.find.as_mut() {
                    list.news(serial, event);
                }
            }
        }
    }

    /// The copy dialog's destination directory was made, or could not be: the copy starts if
    /// it exists now.
    fn destination_made(&mut self, result: Result<Option<String>, String>) {
        let Some((side, spec, info)) = self.awaiting_dest.take() else {
            return;
        };
        match result {
            Err(e) if !e.starts_with("already_exists") => {
                self.error(format!(
                    "Not copied: cannot make the destination {}: {e}",
                    info.dest_dir.shown()
                ));
            }
            made => {
                // A new directory shows in the pane at once, not only when the job ends.
                if made.is_ok() {
                    self.refresh(side);
                }
                self.enqueue(spec, info);
            }
        }
    }

    /// Partial uploads listed (or deleted), for the dialog if it shows that directory, else
    /// for the banner.
    fn on_partials(
        &mut self,
        dir: Option<String>,
        result: Result<(Vec<PartialEntry>, bool), String>,
        note: Option<String>,
    ) {
        match &mut self.dialog {
            Some(Dialog::Partials(dialog)) if dir.as_ref() == Some(&dialog.dir) => {
                dialog.note = note;
                dialog.listed(result);
            }
            _ => match (result, note) {
                (Err(error), _) => self.error(format!("Partial uploads: {error}")),
                (Ok(_), Some(note)) => self.info(note),
                (Ok(_), None) => {}
            },
        }
    }

    /// A listing arrived: the pane shows it if it still waits for it; the rest of the screen
    /// hears what it meant.
    fn on_listed(
        &mut self,
        side: Side,
        serial: u64,
        dir: Location,
        result: Result<Vec<Entry>, ListError>,
    ) {
        if let Some(Dialog::Copy(dialog)) = &mut self.dialog
            && dialog.waits_for(serial)
        {
            match result {
                Ok(entries) => dialog.complete_from(&entries),
                Err(e) => {
                    dialog.completing = None;
                    dialog.note = Some(format!("Cannot list {}: {}", dir.shown(), e.message));
                }
            }
            return;
        }
        match self.pane_mut(side).listed(serial, dir, result) {
            Listed::Stale => {}
            Listed::Shown { moved } => {
                if let Some(text) = moved {
                    self.error(text);
                }
                if side == Side::Remote
                    && let Some(recent) = self.pending_recent.take()
                {
                    // Only a location that connected and listed is worth offering again.
                    config::remember(&mut self.recent, recent);
                    self.outbox.push(Effect::SaveRecent(self.recent.clone()));
                }
            }
            Listed::MoveUp {
                parent,
                vanished,
                note,
            } => self.request_list_after(side, parent, None, Some(vanished), note),
            Listed::Failed { dir, message, gone } => {
                if side == Side::Remote && gone {
                    // A location that does not list is not offered again (a lost
                    // connection keeps it: the reconnect may list it).
                    self.pending_recent = None;
                }
                // The lost-connection banner already says it, and how to reconnect.
                let lost = side == Side::Remote && matches!(self.conn.state, ConnState::Lost(_));
                if !lost {
                    self.error(format!("Cannot list {}: {message}", dir.shown()));
                }
            }
        }
    }

    /// News of the link to the server the remote pane browses.
    fn on_link_event(&mut self, conn: u64, event: ConnEvent) {
        if let Some(other) = self.other.as_mut()
            && other.link.id == conn
        {
            let side = other.side;
            let label = other.link.label.clone();
            match other.link.apply(event) {
                LinkNews::Up { was_lost } => {
                    if was_lost {
                        self.info(format!("Reconnected to {label}"));
                        self.refresh(side);
                    }
                }
                LinkNews::Known => {}
                LinkNews::Lost(error) => {
                    self.error(format!("Disconnected from {label} ({error})"));
                }
                LinkNews::AskTrust { .. } | LinkNews::Refused(_) => self.error(format!(
                    "{label}: its certificate is not trusted yet: connect to it in the right \
                     pane first to look at it and trust it"
                )),
                LinkNews::Unauthorized(error) => {
                    self.error(format!("Login to {label} refused ({error})"));
                }
            }
            return;
        }
        if conn != self.conn.id {
            return;
        }
        self.probing = false;
        let home = match &event {
            ConnEvent::Connected { home, .. } => home.clone(),
            _ => None,
        };
        match self.conn.apply(event) {
            LinkNews::Up { was_lost } => {
                self.open_pending_home(home);
                let was_lost = was_lost || std::mem::take(&mut self.reconnecting);
                // A login that succeeded leaves no refusal on screen.
                self.clear_error_banner();
                // Jobs queued for this server while the session was elsewhere.
                self.start_queued();
                if was_lost {
                    self.info(format!("Reconnected to {}", self.conn.label));
                    if self.remote.pending.is_none() {
                        self.refresh(Side::Remote);
                    }
                    // A local-side pane switched to the server lists it again too.
                    if matches!(self.local.dir, Location::Remote(_)) && self.local.pending.is_none()
                    {
                        self.refresh(Side::Local);
                    }
                }
            }
            LinkNews::Known => {}
            LinkNews::AskTrust { addr, fingerprint } => {
                if let Some((_, announced)) = self.announced.take().filter(|(at, _)| *at == addr) {
                    if announced == fingerprint {
                        self.info(format!(
                            "{addr} showed the certificate it announced on the network: trusted and remembered"
                        ));
                        return self.trust_certificate(addr, fingerprint);
                    }
                    self.announcement_differed(&addr, &announced);
                }
                self.dialog = Some(Dialog::Trust { addr, fingerprint });
            }
            LinkNews::Refused(refusal) => {
                self.error(format!(
                    "Refused {}: its certificate is not the trusted one",
                    self.conn.label
                ));
                if let Some((addr, announced)) = self.announced.take()
                    && refusal.presented.as_ref() != Some(&announced)
                {
                    self.announcement_differed(&addr, &announced);
                }
                self.dialog = Some(match (refusal.old, refusal.presented) {
                    (Some(old), Some(new)) => Dialog::CertificateChanged(ChangedCertificate {
                        held_in: server_link::held_in(
                            &refusal,
                            &old,
                            &self.bookmarks,
                            &self.recent,
                            self.config_path.as_deref(),
                        ),
                        addr: refusal.addr,
                        old,
                        new,
                    }),
                    _ => {
                        let key = self.keymap.hint(Action::Refresh);
                        Dialog::certificate_refused(&refusal.message, &key)
                    }
                });
            }
            LinkNews::Unauthorized(error) => {
                self.error(format!("Login to {} refused ({error})", self.conn.label));
                if let Some(login) = self.login.clone() {
                    self.ask_password(login);
                }
            }
            LinkNews::Lost(error) => {
                let key = self.keymap.hint(Action::Refresh);
                self.error(format!(
                    "Disconnected from {} — press {key} to reconnect ({error})",
                    self.conn.label
                ));
            }
        }
    }

    /// The line beside a certificate question when the server's certificate is not the one
    /// announced for it on the network: someone else may have announced it, or answered.
    fn announcement_differed(&mut self, addr: &str, announced: &Fingerprint) {
        self.error(format!(
            "{addr}'s certificate differs from the one announced on the network ({announced})"
        ));
    }

    /// A job on the current connection says the connection broke: the browsing session is
    /// asked to check at once, so the status bar does not say connected until the next key.
    fn check_connection(&mut self, conn: u64, error: &str) {
        if conn == self.conn.id
            && self.conn.state == ConnState::Connected
            && !self.probing
            && super::jobs::is_connection_error(error)
        {
            self.probing = true;
            self.outbox.push(Effect::Probe);
        }
    }

    /// Shows a banner; an error one is logged too.
    fn show(&mut self, banner: Banner) {
        match banner.kind {
            BannerKind::Error => self.error(banner.text),
            _ => self.banner = Some(banner),
        }
    }

    fn on_transfer(&mut self, conn: u64, event: TransferEvent) {
        match event {
            TransferEvent::Planned { job, files, bytes } => {
                if let Some(job) = self.transfers.get_mut(JobKey { conn, id: job }) {
                    job.planned(files, bytes);
                }
            }
            TransferEvent::Progress(progress) => {
                if let Some(job) = self.transfers.get_mut(JobKey {
                    conn,
                    id: progress.job,
                }) {
                    job.progressed(&progress);
                }
            }
            TransferEvent::Conflict {
                job,
                path,
                reply,
                reason,
                source,
                dest,
            } => {
                self.conflicts.push_back(ConflictPrompt {
                    job: JobKey { conn, id: job },
                    path,
                    reply: Some(reply),
                    selected: 0,
                    apply_to_all: false,
                    reason,
                    source,
                    dest,
                });
            }
            TransferEvent::FileDone {
                job, path, bytes, ..
            } => {
                let key = JobKey { conn, id: job };
                if let Some((dest, keys)) = self.transfers.arrived(key, path, bytes) {
                    self.verified.extend(keys.into_iter().map(|k| (dest, k)));
                }
            }
            TransferEvent::FileFailed { job, path, error } => {
                let key = JobKey { conn, id: job };
                if let Some(job) = self.transfers.get_mut(key) {
                    job.file_failed(&path, &error);
                }
                self.check_connection(conn, &error);
                self.error(format!(
                    "#{} {} ({})",
                    self.job_number(key),
                    failure_text(&path, &error),
                    format::escape_name(&path)
                ));
            }
            TransferEvent::LeftOut {
                job,
                path,
                reason,
                message,
            } => {
                if let Some(job) = self.transfers.get_mut(JobKey { conn, id: job }) {
                    job.left_out(&path, reason, &message);
                }
            }
            TransferEvent::Finished { job, outcome } => {
                self.job_finished(JobKey { conn, id: job }, outcome);
            }
        }
    }

    fn job_finished(&mut self, key: JobKey, outcome: Result<JobSummary, String>) {
        self.conflicts.retain(|c| c.job != key);
        if self.queue.finished(key, &outcome) {
            self.save_queue();
        }
        let Some(job) = self.transfers.get_mut(key) else {
            return;
        };
        job.finished(outcome);
        let job = job.clone();
        self.start_queued();
        // Only on the server the browsing session talks to.
        if self.discard_after_cancel.remove(&key) && key.conn == self.conn.id {
            // The file being sent when it stopped, and each item it was sent as: a
            // name without a partial is simply not found.
            let mut paths: Vec<String> =
                job.info.items.iter().map(|(_, dst)| dst.clone()).collect();
            paths.extend(job.progress.current.clone());
            paths.sort();
            paths.dedup();
            self.outbox
                .push(Effect::DiscardPartials { dir: None, paths });
        }
        self.follow_jobs();
        let ending = job_report::ending(&job, &self.keymap);
        if ending.all_verified {
            for (_, dst) in &job.info.items {
                self.verified.insert((job.info.dest, dst.clone()));
            }
        }
        if let Some(failure) = &ending.failure {
            self.check_connection(key.conn, failure);
        }
        if let Some(banner) = ending.banner {
            self.show(banner);
        }
        for side in [Side::Local, Side::Remote] {
            let dir = &self.pane(side).dir;
            if *dir == job.info.dest_dir || (job.info.is_move && *dir == job.info.src_dir) {
                self.refresh(side);
            }
        }
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
