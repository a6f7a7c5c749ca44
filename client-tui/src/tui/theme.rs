//! Colours: the themes shipped in `assets/themes/`, or a theme file named by the config.

use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// The theme for dark terminals, the default.
pub const DARK: &str = include_str!("../../../assets/themes/dark.toml");
/// The theme for light terminals.
pub const LIGHT: &str = include_str!("../../../assets/themes/light.toml");

/// Every colour the interface uses, by role.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub fg: Color,
    pub bg: Color,
    pub border: Color,
    pub border_focus: Color,
    pub title: Color,
    pub header: Color,
    pub dir: Color,
    pub file: Color,
    pub symlink: Color,
    pub other: Color,
    pub cursor_fg: Color,
    pub cursor_bg: Color,
    pub cursor_inactive_bg: Color,
    pub marked: Color,
    pub verified: Color,
    pub dim: Color,
    pub status_fg: Color,
    pub status_bg: Color,
    pub error_fg: Color,
    pub error_bg: Color,
    pub info_fg: Color,
    pub info_bg: Color,
    pub progress: Color,
    pub progress_bg: Color,
    pub dialog_border: Color,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    colors: Colors,
}

/// The file form: every field optional so a theme can change only a few colours of the dark one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Colors {
    fg: Option<String>,
    bg: Option<String>,
    border: Option<String>,
    border_focus: Option<String>,
    title: Option<String>,
    header: Option<String>,
    dir: Option<String>,
    file: Option<String>,
    symlink: Option<String>,
    other: Option<String>,
    cursor_fg: Option<String>,
    cursor_bg: Option<String>,
    cursor_inactive_bg: Option<String>,
    marked: Option<String>,
    verified: Option<String>,
    dim: Option<String>,
    status_fg: Option<String>,
    status_bg: Option<String>,
    error_fg: Option<String>,
    error_bg: Option<String>,
    info_fg: Option<String>,
    info_bg: Option<String>,
    progress: Option<String>,
    progress_bg: Option<String>,
    dialog_border: Option<String>,
}

impl Default for Theme {
    fn default() -> Self {
        Theme::fallback()
    }
}

impl Theme {
    /// The built-in dark colours, used under any theme file (which may set only some).
    fn fallback() -> Theme {
        Theme {
            fg: Color::Reset,
            bg: Color::Reset,
            border: Color::DarkGray,
            border_focus: Color::LightCyan,
            title: Color::White,
            header: Color::Yellow,
            dir: Color::LightBlue,
            file: Color::Reset,
            symlink: Color::LightCyan,
            other: Color::Magenta,
            cursor_fg: Color::Black,
            cursor_bg: Color::LightCyan,
            cursor_inactive_bg: Color::DarkGray,
            marked: Color::LightYellow,
            verified: Color::LightGreen,
            dim: Color::DarkGray,
            status_fg: Color::Black,
            status_bg: Color::Cyan,
            error_fg: Color::White,
            error_bg: Color::Red,
            info_fg: Color::Black,
            info_bg: Color::LightGreen,
            progress: Color::LightGreen,
            progress_bg: Color::DarkGray,
            dialog_border: Color::LightYellow,
        }
    }

    /// A built-in theme's text by name.
    pub fn builtin(name: &str) -> Option<&'static str> {
        match name {
            "dark" | "default" => Some(DARK),
            "light" => Some(LIGHT),
            _ => None,
        }
    }

    /// Reads a theme file's text; the error names the line and the bad value.
    pub fn from_toml(text: &str) -> Result<Theme, String> {
        let file: ThemeFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut theme = Theme::fallback();
        let c = file.colors;
        let slots: [(&str, Option<String>, &mut Color); 25] = [
            ("fg", c.fg, &mut theme.fg),
            ("bg", c.bg, &mut theme.bg),
            ("border", c.border, &mut theme.border),
            ("border_focus", c.border_focus, &mut theme.border_focus),
            ("title", c.title, &mut theme.title),
            ("header", c.header, &mut theme.header),
            ("dir", c.dir, &mut theme.dir),
            ("file", c.file, &mut theme.file),
            ("symlink", c.symlink, &mut theme.symlink),
            ("other", c.other, &mut theme.other),
            ("cursor_fg", c.cursor_fg, &mut theme.cursor_fg),
            ("cursor_bg", c.cursor_bg, &mut theme.cursor_bg),
            (
                "cursor_inactive_bg",
                c.cursor_inactive_bg,
                &mut theme.cursor_inactive_bg,
            ),
            ("marked", c.marked, &mut theme.marked),
            ("verified", c.verified, &mut theme.verified),
            ("dim", c.dim, &mut theme.dim),
            ("status_fg", c.status_fg, &mut theme.status_fg),
            ("status_bg", c.status_bg, &mut theme.status_bg),
            ("error_fg", c.error_fg, &mut theme.error_fg),
            ("error_bg", c.error_bg, &mut theme.error_bg),
            ("info_fg", c.info_fg, &mut theme.info_fg),
            ("info_bg", c.info_bg, &mut theme.info_bg),
            ("progress", c.progress, &mut theme.progress),
            ("progress_bg", c.progress_bg, &mut theme.progress_bg),
            ("dialog_border", c.dialog_border, &mut theme.dialog_border),
        ];
        for (name, value, slot) in slots {
            if let Some(value) = value {
                *slot = Color::from_str(&value)
                    .map_err(|_| format!("colors.{name}: `{value}` is not a colour"))?;
            }
        }
        Ok(theme)
    }

    /// Plain text on the background.
    pub fn base(&self) -> Style {
        Style::default().fg(self.fg).bg(self.bg)
    }

    /// The status bar.
    pub fn status(&self) -> Style {
        Style::default().fg(self.status_fg).bg(self.status_bg)
    }

    /// An error banner.
    pub fn error(&self) -> Style {
        Style::default()
            .fg(self.error_fg)
            .bg(self.error_bg)
            .add_modifier(Modifier::BOLD)
    }

    /// An informational banner.
    pub fn info(&self) -> Style {
        Style::default().fg(self.info_fg).bg(self.info_bg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_themes_parse() {
        assert_eq!(Theme::from_toml(DARK).unwrap(), Theme::default());
        let light = Theme::from_toml(LIGHT).unwrap();
        assert_eq!(light.dir, Color::Blue);
    }

    #[test]
    fn partial_theme_keeps_the_rest() {
        let theme = Theme::from_toml("[colors]\ndir = \"#ff0000\"\n").unwrap();
        assert_eq!(theme.dir, Color::Rgb(255, 0, 0));
        assert_eq!(theme.file, Theme::default().file);
    }

    #[test]
    fn bad_colour_is_named() {
        let err = Theme::from_toml("[colors]\ndir = \"blurple\"\n").unwrap_err();
        assert_eq!(err, "colors.dir: `blurple` is not a colour");
    }
}
