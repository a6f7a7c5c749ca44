//! F3, F4, Enter on a file and Ctrl+O as one component: which viewer, editor, opener or shell
//! a file gets, the remote file's round trip through a private temporary copy (fetched and
//! verified, handed to the program, uploaded back verified when it changed, unless the remote
//! file changed meanwhile: then the user is asked), and the internal viewer while it is open.
//!
//! Like the app it answers to, it does no IO: it returns [`FileEffect`]s for the event loop and
//! is told what happened as [`FileNews`].
//!
//! Over 600 lines only with its unit tests (the code is 500).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent};

use crate::engine::view::{FetchEnd, Fetched, Replace, UploadEnd, Uploaded};

use super::super::config::Pager;
use super::super::external::Program;
use super::super::location::{Location, Side};
use super::{Chunk, Outcome, ReadRequest, Viewer};

/// Work for the event loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileEffect {
    /// Bytes for the viewer.
    Read(ReadRequest),
    /// Hand the screen to `program`; `watch` is the file whose change matters, hashed before
    /// and after.
    Run {
        program: Program,
        watch: Option<PathBuf>,
        after: After,
    },
    /// Fetch the remote file `path` into a new private copy.
    Fetch { path: String },
    /// Upload the private copy `copy` to `path`.
    Upload {
        copy: PathBuf,
        path: String,
        replace: Replace,
    },
    /// Remove a private copy and its directory.
    RemoveCopy(PathBuf),
    /// Never remove this copy on the way out: it holds an edit not yet saved on the server.
    KeepCopy(PathBuf),
}

/// What the event loop reports back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileNews {
    Read {
        tag: u64,
        offset: u64,
        result: Result<Chunk, String>,
    },
    /// A fetch ended; its `copy` is empty when no copy could be made.
    Fetched(FetchEnd),
    /// A program ended; `changed` says whether the watched file's bytes changed.
    Ran {
        after: After,
        result: Result<(), String>,
        changed: bool,
    },
    Uploaded(UploadEnd),
}

/// What follows when a handed-over program ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    Nothing,
    /// A shell: both panes are read again.
    Refresh,
    /// A local file was edited in place: its pane is read again.
    LocalEdit,
    /// A remote file's private copy was edited: uploaded if it changed.
    RemoteEdit {
        path: String,
        copy: PathBuf,
        fetched: Fetched,
    },
    /// A private copy was only shown: it goes.
    Discard(PathBuf),
}

/// The file a key acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub file: Location,
    /// Its name, as the pane lists it.
    pub name: String,
}

/// A message for the banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    Info(String),
    Error(String),
}

/// What the app is to do after a call: effects to queue, a banner, panes to read again.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub effects: Vec<FileEffect>,
    pub note: Option<Note>,
    pub refresh: Vec<Side>,
}

impl Step {
    fn effect(effect: FileEffect) -> Step {
        Step {
            effects: vec![effect],
            ..Step::default()
        }
    }

    fn with(mut self, note: Note) -> Step {
        self.note = Some(note);
        self
    }
}

/// The question after an edit whose remote file changed meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub path: String,
    pub copy: PathBuf,
}

/// An edit whose upload failed: its copy stays on disk until a verified upload or an explicit
/// discard, so a server that went away or refused never costs the user the edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub path: String,
    pub copy: PathBuf,
    pub error: String,
    replace: Replace,
}

/// What a fetched copy is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    Edit,
    /// Shown by this command line (the pager, an opener).
    Show(String),
}

/// The component.
#[derive(Debug, Default)]
pub struct FileActions {
    pub viewer: Option<Viewer>,
    pub ask: Option<Ask>,
    /// The question after a failed upload: retry, discard, or keep the copy where it is.
    pub kept: Option<Kept>,
    /// Uploads in flight, by copy, with how they replace: a retry replaces the same way.
    uploading: Vec<(PathBuf, Replace)>,
    fetching: Vec<(String, Purpose)>,
    views: u64,
    pub pager: Pager,
    /// Openers by lower-case extension.
    pub openers: BTreeMap<String, String>,
}

fn shown(path: &str) -> String {
    Location::Remote(path.to_string()).shown()
}

impl FileActions {
    /// With the config's pager choice and openers.
    pub fn new(pager: Pager, openers: BTreeMap<String, String>) -> FileActions {
        FileActions {
            pager,
            openers,
            ..FileActions::default()
        }
    }

    /// Whether keys go here first: the viewer or the question is on screen.
    pub fn wants_keys(&self) -> bool {
        self.viewer.is_some() || self.ask.is_some() || self.kept.is_some()
    }

    /// Remembers how each upload in `step` replaces, for a retry after it fails.
    fn track(&mut self, step: Step) -> Step {
        for effect in &step.effects {
            if let FileEffect::Upload { copy, replace, .. } = effect {
                self.uploading.retain(|(c, _)| c != copy);
                self.uploading.push((copy.clone(), replace.clone()));
            }
        }
        step
    }

    /// A key on the failed upload's question.
    fn on_kept_key(&mut self, key: &KeyEvent, kept: Kept) -> Step {
        let where_ = crate::format::local_path(&kept.copy);
        match key.code {
            KeyCode::Char('r') => {
                let step = Step::effect(FileEffect::Upload {
                    copy: kept.copy,
                    path: kept.path.clone(),
                    replace: kept.replace,
                })
                .with(Note::Info(format!("Saving {}…", shown(&kept.path))));
                self.track(step)
            }
            KeyCode::Char('d') => Step::effect(FileEffect::RemoveCopy(kept.copy)).with(Note::Info(
                format!("Your changes to {} were discarded", shown(&kept.path)),
            )),
            KeyCode::Esc => Step::default().with(Note::Info(format!(
                "Your edit of {} is kept in {where_}",
                shown(&kept.path)
            ))),
            _ => {
                self.kept = Some(kept);
                Step::default()
            }
        }
    }

    pub fn resize(&mut self, width: u16, height: u16) {
        if let Some(viewer) = &mut self.viewer {
            viewer.resize(width, height);
        }
    }

    /// F3: the internal viewer, or the external pager when the config says so.
    pub fn view(&mut self, target: Target, size: (u16, u16)) -> Step {
        if self.pager == Pager::External {
            return self.show(target, Program::pager_command());
        }
        self.views += 1;
        let mut viewer = Viewer::new(target.file, target.name, self.views, size.0, size.1);
        let effects = viewer
            .take_reads()
            .into_iter()
            .map(FileEffect::Read)
            .collect();
        self.viewer = Some(viewer);
        Step {
            effects,
            ..Step::default()
        }
    }

    /// Enter on a file: the opener configured for its extension, else F3.
    pub fn open(&mut self, target: Target, size: (u16, u16)) -> Step {
        let ext = target
            .name
            .rsplit_once('.')
            .map(|(_, ext)| ext.to_lowercase());
        match ext.and_then(|ext| self.openers.get(&ext)).cloned() {
            Some(opener) => self.show(target, opener),
            None => self.view(target, size),
        }
    }

    /// Runs `command` on the file, through a fetched copy if it is remote.
    fn show(&mut self, target: Target, command: String) -> Step {
        match target.file {
            Location::Local(file) => Step::effect(FileEffect::Run {
                program: Program::command(command, file),
                watch: None,
                after: After::Nothing,
            }),
            Location::Remote(path) => self.fetch(path, Purpose::Show(command)),
        }
    }

    fn fetch(&mut self, path: String, purpose: Purpose) -> Step {
        self.fetching.push((path.clone(), purpose));
        Step::effect(FileEffect::Fetch { path: path.clone() })
            .with(Note::Info(format!("Fetching {}…", shown(&path))))
    }

    /// F4: `$VISUAL`/`$EDITOR` on a local file in place, or on a verified copy of a remote one.
    pub fn edit(&mut self, target: Target) -> Step {
        match target.file {
            Location::Local(file) => Step::effect(FileEffect::Run {
                program: Program::editor(file.clone()),
                watch: Some(file),
                after: After::LocalEdit,
            }),
            Location::Remote(path) => self.fetch(path, Purpose::Edit),
        }
    }

    /// Ctrl+O: a shell in the local pane's directory.
    pub fn subshell(&mut self, local_dir: Option<PathBuf>) -> Step {
        match local_dir {
            Some(dir) => Step::effect(FileEffect::Run {
                program: Program::shell(dir),
                watch: None,
                after: After::Refresh,
            }),
            None => Step::default().with(Note::Error(
                "No local pane: the shell opens in a local pane's directory".into(),
            )),
        }
    }

    /// A key while the viewer or the question is on screen.
    pub fn on_key(&mut self, key: &KeyEvent) -> Step {
        if let Some(kept) = self.kept.take() {
            return self.on_kept_key(key, kept);
        }
        if let Some(ask) = self.ask.take() {
            let replace = match key.code {
                KeyCode::Char('o') => Replace::Always,
                KeyCode::Char('k') => Replace::KeepBoth,
                KeyCode::Char('d') | KeyCode::Esc => {
                    return Step::effect(FileEffect::RemoveCopy(ask.copy)).with(Note::Info(
                        format!("Your changes to {} were discarded", shown(&ask.path)),
                    ));
                }
                _ => {
                    self.ask = Some(ask);
                    return Step::default();
                }
            };
            let step = Step::effect(FileEffect::Upload {
                copy: ask.copy,
                path: ask.path,
                replace,
            });
            return self.track(step);
        }
        let Some(viewer) = self.viewer.as_mut() else {
            return Step::default();
        };
        if viewer.on_key(key) == Outcome::Close {
            self.viewer = None;
            return Step::default();
        }
        self.reads()
    }

    fn reads(&mut self) -> Step {
        let effects = self
            .viewer
            .as_mut()
            .map(|v| v.take_reads().into_iter().map(FileEffect::Read).collect())
            .unwrap_or_default();
        Step {
            effects,
            ..Step::default()
        }
    }

    /// What the event loop reports.
    pub fn on_news(&mut self, news: FileNews) -> Step {
        match news {
            FileNews::Read {
                tag,
                offset,
                result,
            } => match self.viewer.as_mut() {
                Some(viewer) if viewer.owns(tag) => {
                    viewer.on_read(tag, offset, result);
                    self.reads()
                }
                _ => Step::default(),
            },
            FileNews::Fetched(FetchEnd { path, copy, result }) => self.fetched(path, copy, result),
            FileNews::Ran {
                after,
                result,
                changed,
            } => {
                let step = ran(after, result, changed);
                self.track(step)
            }
            FileNews::Uploaded(UploadEnd { copy, path, result }) => {
                self.uploaded(copy, path, result)
            }
        }
    }

    /// An upload ended: the copy goes only after a verified save.
    fn uploaded(&mut self, copy: PathBuf, path: String, result: Result<Uploaded, String>) -> Step {
        let replace = match self.uploading.iter().position(|(c, _)| *c == copy) {
            Some(i) => self.uploading.remove(i).1,
            // Not known (cannot happen): never overwrite what is there.
            None => Replace::KeepBoth,
        };
        match result {
            Ok(Uploaded::Done { path: saved, .. }) => Step {
                effects: vec![FileEffect::RemoveCopy(copy)],
                note: Some(Note::Info(format!("Saved {} (verified)", shown(&saved)))),
                refresh: vec![Side::Remote],
            },
            Ok(Uploaded::Changed { .. }) => {
                self.ask = Some(Ask { path, copy });
                Step::default()
            }
            Err(error) => {
                let note = Note::Error(format!(
                    "Could not save {}: {error}; your edit is kept in {}",
                    shown(&path),
                    crate::format::local_path(&copy)
                ));
                self.kept = Some(Kept {
                    path,
                    copy: copy.clone(),
                    error,
                    replace,
                });
                Step::effect(FileEffect::KeepCopy(copy)).with(note)
            }
        }
    }

    fn fetched(&mut self, path: String, copy: PathBuf, result: Result<Fetched, String>) -> Step {
        let Some(i) = self.fetching.iter().position(|(p, _)| *p == path) else {
            return Step::effect(FileEffect::RemoveCopy(copy));
        };
        let (_, purpose) = self.fetching.remove(i);
        let fetched = match result {
            Ok(fetched) => fetched,
            Err(error) => {
                let mut step = Step::default().with(Note::Error(format!(
                    "Cannot fetch {}: {error}",
                    shown(&path)
                )));
                if !copy.as_os_str().is_empty() {
                    step.effects.push(FileEffect::RemoveCopy(copy));
                }
                return step;
            }
        };
        let run = match purpose {
            Purpose::Edit => FileEffect::Run {
                program: Program::editor(copy.clone()),
                watch: Some(copy.clone()),
                after: After::RemoteEdit {
                    path,
                    copy,
                    fetched,
                },
            },
            Purpose::Show(command) => FileEffect::Run {
                program: Program::command(command, copy.clone()),
                watch: None,
                after: After::Discard(copy),
            },
        };
        Step::effect(run)
    }
}

/// What follows a program's end.
fn ran(after: After, result: Result<(), String>, changed: bool) -> Step {
    let mut step = match after {
        After::Nothing => Step::default(),
        After::Refresh => Step {
            refresh: vec![Side::Local, Side::Remote],
            ..Step::default()
        },
        After::LocalEdit => Step {
            refresh: vec![Side::Local],
            ..Step::default()
        },
        After::Discard(copy) => Step::effect(FileEffect::RemoveCopy(copy)),
        After::RemoteEdit {
            path,
            copy,
            fetched,
        } => {
            if let Err(error) = result {
                return Step::effect(FileEffect::RemoveCopy(copy)).with(Note::Error(format!(
                    "{error}: nothing uploaded to {}",
                    shown(&path)
                )));
            }
            if !changed {
                return Step::effect(FileEffect::RemoveCopy(copy)).with(Note::Info(format!(
                    "{} unchanged: nothing uploaded",
                    shown(&path)
                )));
            }
            // From here the copy holds the user's edit: even if ferry ends while the upload is
            // in flight, the copy stays.
            return Step {
                effects: vec![
                    FileEffect::KeepCopy(copy.clone()),
                    FileEffect::Upload {
                        copy,
                        path: path.clone(),
                        replace: Replace::IfUnchanged(fetched),
                    },
                ],
                ..Step::default()
            }
            .with(Note::Info(format!("Saving {}…", shown(&path))));
        }
    };
    if let Err(error) = result {
        step.note = Some(Note::Error(error));
    }
    step
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn fetched() -> Fetched {
        Fetched {
            size: 3,
            mtime: 1_700_000_000,
            digest: ferry_protocol::Digest::of(b"abc"),
        }
    }

    fn remote_edit() -> After {
        After::RemoteEdit {
            path: "d/a.txt".into(),
            copy: PathBuf::from("/tmp/ferry-edit.x/a.txt"),
            fetched: fetched(),
        }
    }

    fn press(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn an_edit_is_uploaded_only_when_it_changed_and_the_editor_ended_well() {
        let copy = PathBuf::from("/tmp/ferry-edit.x/a.txt");
        let step = ran(remote_edit(), Ok(()), true);
        assert_eq!(
            step.effects,
            vec![
                FileEffect::KeepCopy(copy.clone()),
                FileEffect::Upload {
                    copy: copy.clone(),
                    path: "d/a.txt".into(),
                    replace: Replace::IfUnchanged(fetched()),
                }
            ]
        );
        for (result, changed) in [(Ok(()), false), (Err("vi ended with 1".into()), true)] {
            let step = ran(remote_edit(), result, changed);
            assert_eq!(step.effects, vec![FileEffect::RemoveCopy(copy.clone())]);
            assert!(step.note.is_some());
        }
    }

    #[test]
    fn the_question_overwrites_keeps_both_or_discards_and_ignores_other_keys() {
        let copy = PathBuf::from("/tmp/ferry-edit.x/a.txt");
        let mut files = FileActions::default();
        let changed = files.on_news(FileNews::Uploaded(UploadEnd {
            copy: copy.clone(),
            path: "d/a.txt".into(),
            result: Ok(Uploaded::Changed { now: None }),
        }));
        assert!(changed.effects.is_empty());
        assert!(files.wants_keys());
        assert_eq!(files.on_key(&press('z')), Step::default());
        let step = files.on_key(&press('o'));
        assert_eq!(
            step.effects,
            vec![FileEffect::Upload {
                copy: copy.clone(),
                path: "d/a.txt".into(),
                replace: Replace::Always,
            }]
        );
        assert!(!files.wants_keys());
        for (key, effect) in [
            (
                'k',
                FileEffect::Upload {
                    copy: copy.clone(),
                    path: "d/a.txt".into(),
                    replace: Replace::KeepBoth,
                },
            ),
            ('d', FileEffect::RemoveCopy(copy.clone())),
        ] {
            files.ask = Some(Ask {
                path: "d/a.txt".into(),
                copy: copy.clone(),
            });
            assert_eq!(files.on_key(&press(key)).effects, vec![effect]);
        }
    }

    #[test]
    fn a_failed_fetch_removes_the_copy_and_a_failed_upload_keeps_it_until_saved_or_discarded() {
        let copy = PathBuf::from("/tmp/ferry-edit.x/a.txt");
        let mut files = FileActions::default();
        let step = files.edit(Target {
            file: Location::Remote("d/a.txt".into()),
            name: "a.txt".into(),
        });
        assert_eq!(
            step.effects,
            vec![FileEffect::Fetch {
                path: "d/a.txt".into()
            }]
        );
        let step = files.on_news(FileNews::Fetched(FetchEnd {
            path: "d/a.txt".into(),
            copy: copy.clone(),
            result: Err("not_found: d/a.txt".into()),
        }));
        assert_eq!(step.effects, vec![FileEffect::RemoveCopy(copy.clone())]);
        assert!(matches!(step.note, Some(Note::Error(ref e)) if e.contains("not_found")));
        // The edit is uploaded if unchanged on the server; the upload fails: the copy stays.
        let step = files.on_news(FileNews::Ran {
            after: remote_edit(),
            result: Ok(()),
            changed: true,
        });
        assert!(step.effects.contains(&FileEffect::KeepCopy(copy.clone())));
        let failed = || {
            FileNews::Uploaded(UploadEnd {
                copy: copy.clone(),
                path: "d/a.txt".into(),
                result: Err("connection: gone".into()),
            })
        };
        let step = files.on_news(failed());
        assert_eq!(step.effects, vec![FileEffect::KeepCopy(copy.clone())]);
        assert!(
            matches!(step.note, Some(Note::Error(ref e)) if e.contains("gone") && e.contains("/tmp/ferry-edit.x/a.txt")),
            "{step:?}"
        );
        assert!(files.wants_keys());
        // Other keys leave the question up; r retries the same way (only if unchanged).
        assert_eq!(files.on_key(&press('z')), Step::default());
        let step = files.on_key(&press('r'));
        assert_eq!(
            step.effects,
            vec![FileEffect::Upload {
                copy: copy.clone(),
                path: "d/a.txt".into(),
                replace: Replace::IfUnchanged(fetched()),
            }]
        );
        // Failing again, Esc keeps the copy and closes; d discards it.
        files.on_news(failed());
        let esc = files.on_key(&KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        assert!(esc.effects.is_empty());
        assert!(!files.wants_keys());
        files.on_news(failed());
        let step = files.on_key(&press('d'));
        assert_eq!(step.effects, vec![FileEffect::RemoveCopy(copy)]);
    }

    #[test]
    fn enter_uses_the_opener_of_the_extension_in_any_case_else_the_viewer() {
        let mut openers = BTreeMap::new();
        openers.insert("pdf".to_string(), "xdg-open".to_string());
        let mut files = FileActions::new(Pager::Internal, openers);
        let step = files.open(
            Target {
                file: Location::Local(PathBuf::from("/d/Paper.PDF")),
                name: "Paper.PDF".into(),
            },
            (80, 24),
        );
        assert!(
            matches!(&step.effects[..], [FileEffect::Run { program, .. }] if program.launch == super::super::super::external::Launch::Command("xdg-open".into())),
            "{step:?}"
        );
        let step = files.open(
            Target {
                file: Location::Local(PathBuf::from("/d/notes.txt")),
                name: "notes.txt".into(),
            },
            (80, 24),
        );
        assert!(files.viewer.is_some());
        assert!(
            matches!(&step.effects[..], [FileEffect::Read(_)]),
            "{step:?}"
        );
    }
}
