//! The config file (TOML in the platform config directory): theme, keymap, browsing defaults,
//! bookmarks; and the list of recent connections kept beside the logs.
//!
//! A config that does not parse never stops ferry: the defaults are used and the problem is
//! shown in the error banner, naming the file, line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use directories::ProjectDirs;
use serde::{Deserialize, Serialize};

use super::attrs::Column;
use crate::engine::known_hosts::Fingerprint;

use super::keymap::Keymap;
use super::pane::SortKey;
use super::theme::Theme;

/// The default config, as shipped.
pub const DEFAULT_CONFIG: &str = include_str!("../../../assets/config.toml");

/// How many recent connections are remembered.
const MAX_RECENT: usize = 10;

/// A saved server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bookmark {
    pub name: String,
    /// `ferry://HOST:PORT/PATH`, or `ferrys://` for TLS.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The `ferrys://` server's certificate fingerprint (`SHA256:AB:CD:...`), pinned: no other
    /// certificate is accepted for this bookmark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// The `[defaults]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    pub show_hidden: bool,
    pub sort: SortKey,
    pub reverse: bool,
    /// The attribute columns (`mode`, `owner`, `group`) the toggle shows.
    pub columns: Vec<Column>,
    /// Whether they show from the start.
    pub attributes: bool,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            show_hidden: false,
            sort: SortKey::Name,
            reverse: false,
            columns: Column::ALL.to_vec(),
            attributes: false,
        }
    }
}

/// The config file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default = "default_theme")]
    theme: String,
    #[serde(default = "default_keymap")]
    keymap: String,
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    bookmarks: Vec<Bookmark>,
    #[serde(default)]
    keys: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pager: Pager,
    /// Programs that open a file on Enter, by extension (lower case, without the dot).
    #[serde(default)]
    open: BTreeMap<String, String>,
    #[serde(default)]
    resume_jobs: ResumeJobs,
    #[serde(default = "default_max_jobs")]
    max_jobs: usize,
}

/// Jobs that run at once unless the config says otherwise.
pub const DEFAULT_MAX_JOBS: usize = 2;

fn default_max_jobs() -> usize {
    DEFAULT_MAX_JOBS
}

/// What a start does with the unfinished transfers an earlier run left in the queue file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResumeJobs {
    /// A dialog lists them: resume all, discard them, or leave them for later.
    #[default]
    Ask,
    /// Resume them at once.
    Always,
    /// Leave them be (their partials stay) and forget them.
    Never,
}

/// What F3 (and Enter on a file) shows a file with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pager {
    /// ferry's own viewer: reads only the part shown, local or remote.
    #[default]
    Internal,
    /// `$PAGER` (`less` when unset), on the file itself or a fetched copy of a remote one.
    External,
}

fn default_theme() -> String {
    "dark".into()
}

fn default_keymap() -> String {
    "default".into()
}

/// The config, resolved: theme and keymap loaded, overrides applied.
#[derive(Debug, Clone)]
pub struct Settings {
    pub theme: Theme,
    pub keymap: Keymap,
    pub defaults: Defaults,
    pub bookmarks: Vec<Bookmark>,
    pub pager: Pager,
    /// Openers by lower-case extension, from the `[open]` table.
    pub open: BTreeMap<String, String>,
    pub resume_jobs: ResumeJobs,
    /// Jobs that run at once (at least 1); the others wait in the transfer list.
    pub max_jobs: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            theme: Theme::default(),
            keymap: Keymap::default(),
            defaults: Defaults::default(),
            bookmarks: Vec::new(),
            pager: Pager::default(),
            open: BTreeMap::new(),
            resume_jobs: ResumeJobs::default(),
            max_jobs: DEFAULT_MAX_JOBS,
        }
    }
}

/// The platform directories for ferry, when the platform has a home directory.
pub fn project_dirs() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "ferry")
}

/// Where the config file lives unless `--config` says otherwise.
pub fn default_config_path() -> Option<PathBuf> {
    project_dirs().map(|d| d.config_dir().join("config.toml"))
}

/// Where logs and the recent list go: the state directory, or the cache directory on
/// platforms without one.
pub fn state_dir() -> Option<PathBuf> {
    project_dirs().map(|d| {
        d.state_dir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| d.cache_dir().to_path_buf())
    })
}

/// Loads the config; a missing file means the defaults. On any problem the defaults are
/// returned with a one-line message for the banner.
pub fn load(path: Option<&Path>) -> (Settings, Option<String>) {
    let explicit = path.is_some();
    let Some(path) = path.map(Path::to_path_buf).or_else(default_config_path) else {
        return (Settings::default(), None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return (Settings::default(), None);
        }
        Err(e) => {
            return (
                Settings::default(),
                Some(format!("{}: {e}", crate::format::local_path(&path))),
            );
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    match parse(&text, base) {
        Ok(settings) => (settings, None),
        Err(message) => (
            Settings::default(),
            Some(format!(
                "{}: {message} (using defaults)",
                crate::format::local_path(&path)
            )),
        ),
    }
}

/// Parses config text; relative theme and keymap paths are taken from `base`.
pub fn parse(text: &str, base: &Path) -> Result<Settings, String> {
    let file: ConfigFile = toml::from_str(text).map_err(|e| describe_toml_error(text, &e))?;
    let theme_text = match Theme::builtin(&file.theme) {
        Some(text) => text.to_string(),
        None => read_beside(base, &file.theme, "theme")?,
    };
    let theme = Theme::from_toml(&theme_text).map_err(|e| format!("theme {}: {e}", file.theme))?;
    let keymap_text = match Keymap::preset(&file.keymap) {
        Some(text) => text.to_string(),
        None => read_beside(base, &file.keymap, "keymap")?,
    };
    let mut keymap =
        Keymap::from_toml(&keymap_text).map_err(|e| format!("keymap {}: {e}", file.keymap))?;
    keymap
        .apply(&file.keys)
        .map_err(|e| format!("[keys]: {e}"))?;
    Ok(Settings {
        theme,
        keymap,
        defaults: file.defaults,
        bookmarks: file.bookmarks,
        pager: file.pager,
        resume_jobs: file.resume_jobs,
        max_jobs: file.max_jobs.max(1),
        open: file
            .open
            .into_iter()
            .map(|(ext, program)| (ext.trim_start_matches('.').to_lowercase(), program))
            .collect(),
    })
}

fn read_beside(base: &Path, name: &str, what: &str) -> Result<String, String> {
    let path = base.join(name);
    std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{what} `{name}` is neither built in nor a readable file ({}: {e})",
            crate::format::local_path(&path)
        )
    })
}

/// Squeezes toml's multi-line report into one line that still names the line and column.
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', " ");
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// One remembered connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recent {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The certificate the user accepted for this `ferrys://` server, pinned on reconnect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RecentFile {
    #[serde(default)]
    recent: Vec<Recent>,
}

fn recent_path() -> Option<PathBuf> {
    state_dir().map(|d| d.join("recent.toml"))
}

/// The recent connections, newest first; an unreadable file just means none.
pub fn load_recent() -> Vec<Recent> {
    recent_path()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| toml::from_str::<RecentFile>(&text).ok())
        .map(|f| f.recent)
        .unwrap_or_default()
}

/// Puts a connection at the front of the recent list.
pub fn remember(list: &mut Vec<Recent>, entry: Recent) {
    list.retain(|r| r.url != entry.url);
    list.insert(0, entry);
    list.truncate(MAX_RECENT);
}

/// Saves the recent list; failures are logged, since losing it is harmless.
pub fn save_recent(list: &[Recent]) {
    let Some(path) = recent_path() else { return };
    let file = RecentFile {
        recent: list.to_vec(),
    };
    let result = toml::to_string(&file)
        .map_err(|e| e.to_string())
        .and_then(|text| {
            crate::atomic::write(&path, text.as_bytes(), None).map_err(|e| e.to_string())
        });
    if let Err(e) = result {
        tracing::warn!("saving {}: {e}", crate::format::local_path(&path));
    }
}

/// Writes `fingerprint` into the bookmark `name` of the config file at `path`, unless it has
/// one already other than `replacing` (a rotated certificate's, in whatever form it was
/// written); returns whether the file changed. Everything else in the file (comments, order,
/// spacing) stays as the user wrote it, and the file is replaced atomically.
pub fn pin_bookmark(
    path: &Path,
    name: &str,
    fingerprint: &str,
    replacing: Option<Fingerprint>,
) -> Result<bool, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut doc = text
        .parse::<toml_edit::DocumentMut>()
        .map_err(|e| e.to_string())?;
    let Some(bookmarks) = doc
        .get_mut("bookmarks")
        .and_then(toml_edit::Item::as_array_of_tables_mut)
    else {
        return Ok(false);
    };
    let Some(bookmark) = bookmarks
        .iter_mut()
        .find(|table| table.get("name").and_then(toml_edit::Item::as_str) == Some(name))
    else {
        return Ok(false);
    };
    let rotated = |old: &toml_edit::Item| {
        let old = old.as_str().and_then(|old| old.parse::<Fingerprint>().ok());
        replacing.is_some() && old == replacing
    };
    if bookmark.get("fingerprint").is_some_and(|old| !rotated(old)) {
        return Ok(false);
    }
    bookmark.insert("fingerprint", toml_edit::value(fingerprint));
    // The config may hold tokens: the new file keeps the original's permissions.
    crate::atomic::write(path, doc.to_string().as_bytes(), Some(path))
        .map_err(|e| e.to_string())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_certificate_replaces_only_the_pin_it_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let old = Fingerprint([1; 32]);
        let bare = "01".repeat(32);
        let text = format!(
            "[[bookmarks]]\nname = \"nas\"\nurl = \"ferrys://nas:7070/\"\nfingerprint = \"{bare}\" # pinned\n"
        );
        std::fs::write(&path, &text).unwrap();
        let new = Fingerprint([2; 32]).to_string();
        // Another old one than the file holds: left alone.
        let other = Some(Fingerprint([3; 32]));
        assert!(!pin_bookmark(&path, "nas", &new, other).unwrap());
        assert!(pin_bookmark(&path, "nas", &new, Some(old)).unwrap());
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(
            written.contains(&format!("fingerprint = \"{new}\"")),
            "{written}"
        );
        assert!(!written.contains(&bare), "{written}");
        assert!(
            written.starts_with("[[bookmarks]]\nname = \"nas\"\n"),
            "{written}"
        );
    }

    #[test]
    fn a_trusted_fingerprint_is_written_into_its_bookmark_keeping_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let text = "# my servers\ntheme = \"light\"\n\n[[bookmarks]]\nname = \"nas\" # at home\nurl = \"ferrys://nas:7070/\"\n\n[[bookmarks]]\nname = \"pinned\"\nurl = \"ferrys://other:7070/\"\nfingerprint = \"SHA256:AA\"\n";
        std::fs::write(&path, text).unwrap();
        assert!(pin_bookmark(&path, "nas", "SHA256:01:02", None).unwrap());
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.starts_with("# my servers\n"), "{written}");
        assert!(written.contains("name = \"nas\" # at home"), "{written}");
        let settings = parse(&written, dir.path()).unwrap();
        assert_eq!(
            settings.bookmarks[0].fingerprint.as_deref(),
            Some("SHA256:01:02")
        );
        // A pin the user wrote is never replaced, and an unknown name changes nothing.
        assert!(!pin_bookmark(&path, "pinned", "SHA256:FF", None).unwrap());
        assert!(!pin_bookmark(&path, "nobody", "SHA256:FF", None).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), written);
        assert_eq!(
            parse(&written, dir.path()).unwrap().bookmarks[1]
                .fingerprint
                .as_deref(),
            Some("SHA256:AA")
        );
    }

    #[test]
    fn shipped_config_parses() {
        let settings = parse(DEFAULT_CONFIG, Path::new(".")).unwrap();
        assert_eq!(settings.defaults, Defaults::default());
        assert!(settings.bookmarks.is_empty());
    }

    #[test]
    fn full_config() {
        let text = r#"
theme = "light"
keymap = "vim"
[defaults]
show_hidden = true
sort = "size"
reverse = true
[[bookmarks]]
name = "nas"
url = "ferry://nas:7878/media"
[keys]
quit = ["ctrl+q"]
"#;
        let settings = parse(text, Path::new(".")).unwrap();
        assert_eq!(
            settings.theme,
            Theme::from_toml(super::super::theme::LIGHT).unwrap()
        );
        assert!(settings.defaults.show_hidden);
        assert_eq!(settings.defaults.sort, SortKey::Size);
        assert_eq!(settings.bookmarks[0].name, "nas");
        assert_eq!(
            settings.keymap.hint(super::super::keymap::Action::Quit),
            "Ctrl+Q"
        );
        assert_eq!(
            settings.keymap.hint(super::super::keymap::Action::Top),
            "Home"
        );
    }

    #[test]
    fn syntax_error_names_the_line() {
        let err = parse(
            "theme = \"dark\"\n[defaults]\nsort = name\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(err.starts_with("line 3, column 8:"), "{err}");
    }

    #[test]
    fn unknown_key_names_the_line() {
        let err = parse("theme = \"dark\"\ncolour = 3\n", Path::new(".")).unwrap_err();
        assert!(err.starts_with("line 2,"), "{err}");
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn missing_theme_file_is_explained() {
        let err = parse("theme = \"nope.toml\"\n", Path::new("/nonexistent")).unwrap_err();
        assert!(err.contains("theme `nope.toml`"), "{err}");
    }

    #[test]
    fn broken_config_file_falls_back_to_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "keymap = [\n").unwrap();
        let (settings, warning) = load(Some(&path));
        assert_eq!(settings.defaults, Defaults::default());
        let warning = warning.unwrap();
        assert!(warning.contains("config.toml: line "), "{warning}");
    }

    #[test]
    fn recent_list_is_newest_first_and_bounded() {
        let mut list = Vec::new();
        for i in 0..12 {
            remember(
                &mut list,
                Recent {
                    url: format!("ferry://h:{i}/"),
                    token: None,
                    fingerprint: None,
                },
            );
        }
        remember(
            &mut list,
            Recent {
                url: "ferry://h:5/".into(),
                token: None,
                fingerprint: None,
            },
        );
        assert_eq!(list.len(), MAX_RECENT);
        assert_eq!(list[0].url, "ferry://h:5/");
        assert_eq!(list[1].url, "ferry://h:11/");
    }
}
