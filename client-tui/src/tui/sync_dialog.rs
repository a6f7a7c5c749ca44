//! The sync dialog (Ctrl+X s): `ferry sync` between the two panes' directories. Its options
//! (direction, delete, comparison, exclude patterns), then the plan computed in the
//! background by the engine (`engine::sync::plan_on`), shown as counts and the `--dry-run`
//! lines, then Enter hands the plan to the engine as one job. Escape closes it at any point;
//! a plan still being computed is stopped by the app.

use crossterm::event::{KeyCode, KeyEvent};

use super::input::LineInput;
use super::location::{Location, Side};
use crate::engine::sync::{self, Compare, Filter, Plan, RuleKind, SyncOptions, Totals};

/// The option the cursor is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Direction,
    Delete,
    Compare,
    Exclude,
}

const FIELDS: [Field; 4] = [
    Field::Direction,
    Field::Delete,
    Field::Compare,
    Field::Exclude,
];

/// Where the dialog is.
#[derive(Debug)]
pub enum Stage {
    Options,
    /// The plan is being computed, as request `serial`; `seen` entries listed so far.
    Planning {
        serial: u64,
        seen: u64,
    },
    /// The plan, its counts and its lines; `scroll` is the first line shown.
    Planned {
        plan: Box<Plan>,
        totals: Totals,
        lines: Vec<String>,
        scroll: usize,
    },
}

/// What a key asks of the app.
#[derive(Debug)]
pub enum Outcome {
    Stay,
    /// Closed; a plan being computed is to be stopped.
    Close,
    /// Compute the plan of `src` to `dst`.
    Plan {
        src: sync::Side,
        dst: sync::Side,
        options: SyncOptions,
    },
    /// Carry out the plan.
    Run(Box<Plan>),
}

#[derive(Debug)]
pub struct SyncDialog {
    /// The pane whose directory is the source.
    pub source: Side,
    pub local: Location,
    pub remote: Location,
    pub delete: bool,
    pub compare: Compare,
    pub exclude: LineInput,
    pub field: Field,
    pub stage: Stage,
    /// Why the last plan was refused or could not be made.
    pub error: Option<String>,
}

impl SyncDialog {
    /// Opened from the pane on `source`, which it syncs into the other by default. Two
    /// directories on the same kind of side cannot be synced, as with `ferry sync`.
    pub fn open(source: Side, local: Location, remote: Location) -> Result<Self, String> {
        if matches!(
            (&local, &remote),
            (Location::Local(_), Location::Local(_)) | (Location::Remote(_), Location::Remote(_))
        ) {
            return Err(
                "Cannot sync: one pane must show the server and the other a local directory".into(),
            );
        }
        Ok(SyncDialog {
            source,
            local,
            remote,
            delete: false,
            compare: Compare::Quick,
            exclude: LineInput::default(),
            field: Field::Direction,
            stage: Stage::Options,
            error: None,
        })
    }

    pub fn dir(&self, side: Side) -> &Location {
        match side {
            Side::Local => &self.local,
            Side::Remote => &self.remote,
        }
    }

    /// `source → destination`, as the direction option shows it.
    pub fn direction(&self) -> String {
        format!(
            "{} → {}",
            self.dir(self.source).shown(),
            self.dir(self.source.other()).shown()
        )
    }

    pub fn compare_name(&self) -> &'static str {
        compare_name(self.compare)
    }

    /// The exclude patterns typed, split at commas and spaces.
    pub fn patterns(&self) -> Vec<String> {
        split_patterns(self.exclude.text())
    }

    /// A key press.
    pub fn on_key(&mut self, key: &KeyEvent) -> Outcome {
        if key.code == KeyCode::Esc {
            return Outcome::Close;
        }
        match &mut self.stage {
            Stage::Options => self.option_key(key),
            Stage::Planning { .. } => Outcome::Stay,
            Stage::Planned {
                plan,
                lines,
                scroll,
                ..
            } => match key.code {
                KeyCode::Enter => Outcome::Run(plan.clone()),
                KeyCode::Up | KeyCode::Char('k') => {
                    *scroll = scroll.saturating_sub(1);
                    Outcome::Stay
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    *scroll = (*scroll + 1).min(lines.len().saturating_sub(1));
                    Outcome::Stay
                }
                KeyCode::PageUp => {
                    *scroll = scroll.saturating_sub(10);
                    Outcome::Stay
                }
                KeyCode::PageDown => {
                    *scroll = (*scroll + 10).min(lines.len().saturating_sub(1));
                    Outcome::Stay
                }
                // Back to the options, to plan again.
                KeyCode::Backspace => {
                    self.stage = Stage::Options;
                    Outcome::Stay
                }
                _ => Outcome::Stay,
            },
        }
    }

    fn option_key(&mut self, key: &KeyEvent) -> Outcome {
        let at = FIELDS.iter().position(|f| *f == self.field).unwrap_or(0);
        match key.code {
            KeyCode::Enter => return self.ask_plan(),
            KeyCode::Up | KeyCode::BackTab => {
                self.field = FIELDS[(at + FIELDS.len() - 1) % FIELDS.len()];
            }
            KeyCode::Down | KeyCode::Tab => self.field = FIELDS[(at + 1) % FIELDS.len()],
            _ if self.field == Field::Exclude => {
                self.exclude.handle(key);
            }
            KeyCode::Left | KeyCode::Right | KeyCode::Char(' ') => {
                let back = key.code == KeyCode::Left;
                match self.field {
                    Field::Direction => self.source = self.source.other(),
                    Field::Delete => self.delete = !self.delete,
                    Field::Compare => self.compare = next_compare(self.compare, back),
                    Field::Exclude => {}
                }
            }
            _ => {}
        }
        Outcome::Stay
    }

    /// Enter on the options: the plan's request, or why not.
    fn ask_plan(&mut self) -> Outcome {
        let rules: Vec<(RuleKind, String)> = self
            .patterns()
            .into_iter()
            .map(|p| (RuleKind::Exclude, p))
            .collect();
        let filter = match Filter::new(&rules) {
            Ok(filter) => filter,
            Err(e) => {
                self.error = Some(format!(
                    "bad pattern {}: {}",
                    crate::format::escape_name(&e.pattern),
                    e.message
                ));
                return Outcome::Stay;
            }
        };
        self.error = None;
        let side = |location: &Location| match location {
            Location::Local(path) => sync::Side::Local(path.clone()),
            Location::Remote(path) => sync::Side::Remote(path.clone()),
        };
        Outcome::Plan {
            src: side(self.dir(self.source)),
            dst: side(self.dir(self.source.other())),
            options: SyncOptions {
                compare: self.compare,
                delete: self.delete,
                max_delete: None,
                force: false,
                filter,
            },
        }
    }

    /// The plan was asked for as request `serial`.
    pub fn planning(&mut self, serial: u64) {
        self.stage = Stage::Planning { serial, seen: 0 };
    }

    /// Progress of request `serial`.
    pub fn seen(&mut self, serial: u64, count: u64) {
        if let Stage::Planning { serial: s, seen } = &mut self.stage
            && *s == serial
        {
            *seen = count;
        }
    }

    /// The engine's answer to request `serial`; an older request's is ignored.
    pub fn planned(&mut self, serial: u64, result: Result<Plan, String>) {
        if !matches!(self.stage, Stage::Planning { serial: s, .. } if s == serial) {
            return;
        }
        match result {
            Ok(plan) => {
                let lines = plan.actions.iter().map(sync::action_line).collect();
                self.stage = Stage::Planned {
                    totals: plan.totals(),
                    plan: Box::new(plan),
                    lines,
                    scroll: 0,
                };
            }
            Err(error) => {
                self.error = Some(error);
                self.stage = Stage::Options;
            }
        }
    }

    /// The request being computed, if any.
    pub fn pending(&self) -> Option<u64> {
        match self.stage {
            Stage::Planning { serial, .. } => Some(serial),
            _ => None,
        }
    }
}

fn compare_name(compare: Compare) -> &'static str {
    match compare {
        Compare::Quick => "quick (size and time)",
        Compare::Checksum => "checksum",
        Compare::SizeOnly => "size only",
    }
}

fn next_compare(compare: Compare, back: bool) -> Compare {
    const ORDER: [Compare; 3] = [Compare::Quick, Compare::Checksum, Compare::SizeOnly];
    let at = ORDER.iter().position(|c| *c == compare).unwrap_or(0);
    let step = if back { ORDER.len() - 1 } else { 1 };
    ORDER[(at + step) % ORDER.len()]
}

fn split_patterns(text: &str) -> Vec<String> {
    text.split([',', ' '])
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The plan's counts in one line, as the dialog shows them above the actions.
pub fn totals_line(t: &Totals) -> String {
    format!(
        "{} to create, {} to update, {} to fix, {} to delete, {} skipped; {} file(s) to send, {}",
        t.create,
        t.update,
        t.fix_time + t.fix_mode,
        t.delete,
        t.skip,
        t.files,
        crate::format::size(t.bytes)
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn dialog() -> SyncDialog {
        SyncDialog::open(
            Side::Local,
            Location::Local("/here".into()),
            Location::Remote("there".into()),
        )
        .unwrap()
    }

    #[test]
    fn two_local_or_two_remote_directories_are_refused() {
        let two_local = SyncDialog::open(
            Side::Local,
            Location::Local("/a".into()),
            Location::Local("/b".into()),
        );
        assert!(
            two_local
                .unwrap_err()
                .contains("one pane must show the server")
        );
        let two_remote = SyncDialog::open(
            Side::Local,
            Location::Remote("a".into()),
            Location::Remote("b".into()),
        );
        assert!(two_remote.is_err());
    }

    #[test]
    fn options_change_and_enter_asks_for_the_plan_the_way_they_say() {
        let mut d = dialog();
        d.on_key(&key(KeyCode::Char(' ')));
        assert_eq!(d.source, Side::Remote);
        d.on_key(&key(KeyCode::Down));
        d.on_key(&key(KeyCode::Char(' ')));
        assert!(d.delete);
        d.on_key(&key(KeyCode::Down));
        d.on_key(&key(KeyCode::Right));
        assert_eq!(d.compare, Compare::Checksum);
        d.on_key(&key(KeyCode::Left));
        d.on_key(&key(KeyCode::Left));
        assert_eq!(d.compare, Compare::SizeOnly);
        d.on_key(&key(KeyCode::Down));
        for c in "*.tmp, cache build".chars() {
            d.on_key(&key(KeyCode::Char(c)));
        }
        assert_eq!(d.patterns(), ["*.tmp", "cache", "build"]);
        let Outcome::Plan { src, dst, options } = d.on_key(&key(KeyCode::Enter)) else {
            panic!("no plan asked");
        };
        assert!(matches!(src, sync::Side::Remote(p) if p == "there"));
        assert!(matches!(dst, sync::Side::Local(p) if p == std::path::Path::new("/here")));
        assert!(options.delete && !options.force);
        assert_eq!(options.compare, Compare::SizeOnly);
        assert!(options.filter.excluded("cache", true));
        assert!(options.filter.excluded("a/x.tmp", false));
        assert!(!options.filter.excluded("keep.txt", false));
    }

    #[test]
    fn an_answer_to_an_older_request_is_ignored_and_an_error_goes_back_to_the_options() {
        let mut d = dialog();
        d.planning(2);
        d.seen(1, 7);
        d.seen(2, 42);
        assert!(matches!(d.stage, Stage::Planning { seen: 42, .. }));
        d.planned(1, Err("stale".into()));
        assert_eq!(d.pending(), Some(2));
        assert!(d.error.is_none());
        d.planned(2, Err("empty_source: x: the source is empty".into()));
        assert!(matches!(d.stage, Stage::Options));
        assert_eq!(
            d.error.as_deref(),
            Some("empty_source: x: the source is empty")
        );
        assert!(matches!(d.on_key(&key(KeyCode::Esc)), Outcome::Close));
    }

    #[test]
    fn a_plan_scrolls_and_enter_runs_it() {
        let mut d = dialog();
        d.planning(1);
        let plan = Plan {
            src: sync::Side::Local("/here".into()),
            dst: sync::Side::Remote("there".into()),
            actions: (0..3)
                .map(|i| sync::Action::Delete {
                    rel: format!("f{i}"),
                    kind: ferry_protocol::Kind::File,
                    listed: None,
                })
                .collect(),
        };
        d.planned(1, Ok(plan));
        let Stage::Planned { totals, lines, .. } = &d.stage else {
            panic!("no plan shown");
        };
        assert_eq!(totals.delete, 3);
        assert!(lines[0].starts_with("delete") && lines[0].ends_with("f0"));
        for _ in 0..5 {
            d.on_key(&key(KeyCode::Down));
        }
        assert!(matches!(d.stage, Stage::Planned { scroll: 2, .. }));
        assert!(matches!(d.on_key(&key(KeyCode::Enter)), Outcome::Run(_)));
    }

    /// The app with the server connected (read-only or not) and both panes listed empty.
    fn app(read_only: bool) -> crate::tui::app::App {
        use crate::tui::message::{ConnEvent, Effect, Msg};
        let mut app = crate::tui::app::App::new(
            crate::tui::config::Settings::default(),
            std::path::PathBuf::from("/home/me"),
            "127.0.0.1:7878".into(),
            String::new(),
        );
        app.resize(100, 30);
        app.on_msg(Msg::Connection {
            conn: 1,
            event: ConnEvent::Connected {
                read_only,
                server: "ferry-server".into(),
                home: None,
            },
        });
        for effect in app.take_effects() {
            if let Effect::List { side, serial, dir } = effect {
                app.on_msg(Msg::Listed {
                    side,
                    serial,
                    dir,
                    result: Ok(Vec::new()),
                });
            }
        }
        app.take_effects();
        app.on_key(KeyEvent::new(KeyCode::Char('x'), KeyModifiers::CONTROL));
        app.on_key(key(KeyCode::Char('s')));
        assert!(app.sync.is_some(), "Ctrl+X s opens the dialog");
        app
    }

    /// Enter on the options: the plan request's serial.
    pub(crate) fn ask_plan(app: &mut crate::tui::app::App) -> u64 {
        use crate::tui::message::Effect;
        app.on_key(key(KeyCode::Enter));
        app.take_effects()
            .into_iter()
            .find_map(|e| match e {
                Effect::SyncPlan { serial, .. } => Some(serial),
                _ => None,
            })
            .expect("Enter asks for the plan")
    }

    fn planned(app: &mut crate::tui::app::App) {
        use crate::tui::message::Msg;
        let serial = ask_plan(app);
        let plan = Plan {
            src: sync::Side::Local("/home/me".into()),
            dst: sync::Side::Remote(String::new()),
            actions: Vec::new(),
        };
        app.on_msg(Msg::SyncPlanned {
            serial,
            result: Ok(Box::new(plan)),
        });
    }

    #[test]
    fn escape_while_planning_stops_the_plan_and_enter_at_the_plan_submits_one_job() {
        use crate::tui::message::Effect;
        let mut app = app(false);
        app.on_key(key(KeyCode::Enter));
        assert!(matches!(app.take_effects()[..], [Effect::SyncPlan { .. }]));
        app.on_key(key(KeyCode::Esc));
        assert!(app.sync.is_none());
        assert!(matches!(app.take_effects()[..], [Effect::StopSyncPlan]));

        let mut app = self::app(false);
        planned(&mut app);
        app.on_key(key(KeyCode::Enter));
        assert!(app.sync.is_none());
        let effects = app.take_effects();
        let [Effect::SubmitSync { info, .. }] = &effects[..] else {
            panic!("one sync job: {effects:?}");
        };
        assert_eq!(info.dest, Side::Remote);
        assert_eq!(info.dest_dir, app.remote.dir);
    }

    #[test]
    fn a_read_only_connection_refuses_the_run_into_the_server() {
        let mut app = app(true);
        planned(&mut app);
        app.on_key(key(KeyCode::Enter));
        assert!(app.take_effects().is_empty());
        assert!(app.sync.is_none(), "closed, so the banner shows");
        let banner = app
            .banner
            .as_ref()
            .map(|b| b.text.clone())
            .unwrap_or_default();
        assert!(banner.contains("read-only"), "{banner}");
    }
}
