//! `ferry man`: the manual page, one page for the whole program. clap_mangen writes the title,
//! synopsis and options; every subcommand is described on this same page (clap_mangen would
//! point to `ferry-ls(1)` and other pages nobody installs); the examples are kept verbatim in a
//! no-fill block, so `man` neither reflows nor hyphenates them; and the TUI's keys come from
//! the live default keymap, so the page cannot drift from what the keys do.

use std::io;

use crate::tui::keymap::{Action, Keymap};

/// The page for `cmd` (ferry's whole command line), in roff, before the sections the caller
/// appends (environment, files).
pub fn page(cmd: clap::Command) -> io::Result<Vec<u8>> {
    let mut cmd = cmd;
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    // No hyphenation anywhere: a word split across lines ("inter- face") cannot be searched
    // for or pasted.
    out.extend_from_slice(b".nh\n");
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    commands(&cmd, &mut out)?;
    if let Some(after) = cmd.get_after_help() {
        after_help(&after.to_string(), &mut out);
    }
    keys(&Keymap::default(), &mut out);
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// COMMANDS: each subcommand's synopsis, what it does and its options, on this page.
fn commands(cmd: &clap::Command, out: &mut Vec<u8>) -> io::Result<()> {
    out.extend_from_slice(b".SH COMMANDS\nThe options above apply to every command too.\n");
    // Global options are described once, above; `--help` goes without saying.
    let shared: Vec<String> = cmd
        .get_arguments()
        .filter(|arg| arg.is_global_set() || arg.get_id() == "help")
        .map(|arg| arg.get_id().to_string())
        .collect();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{} {}", cmd.get_name(), sub.get_name());
        let mut sub = sub.clone().bin_name(&name).mut_args(|arg| {
            if shared.iter().any(|id| arg.get_id() == id.as_str()) {
                arg.hide(true)
            } else {
                arg
            }
        });
        let usage = sub.render_usage().to_string();
        let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage);
        out.extend_from_slice(format!(".SS \"{}\"\n", escape(&name)).as_bytes());
        out.extend_from_slice(b".nf\n");
        out.extend_from_slice(escape_lines(usage).as_bytes());
        out.extend_from_slice(b".fi\n");
        if let Some(about) = sub.get_long_about().or(sub.get_about()) {
            out.extend_from_slice(b".PP\n");
            out.extend_from_slice(escape_lines(&about.to_string()).as_bytes());
        }
        // clap_mangen's option list, under this subsection rather than a section of its own.
        let mut options = Vec::new();
        clap_mangen::Man::new(sub).render_options_section(&mut options)?;
        let options = String::from_utf8_lossy(&options);
        for line in options.lines().filter(|line| !line.starts_with(".SH")) {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }
    Ok(())
}

/// The help's closing text: its `Examples:` paragraph verbatim under EXAMPLES, the other
/// paragraphs as prose under NOTES.
fn after_help(text: &str, out: &mut Vec<u8>) {
    let mut notes = Vec::new();
    for paragraph in text.split("\n\n") {
        match paragraph.strip_prefix("Examples:\n") {
            Some(examples) => {
                out.extend_from_slice(b".SH EXAMPLES\n.nf\n");
                out.extend_from_slice(escape_lines(examples).as_bytes());
                out.extend_from_slice(b".fi\n");
            }
            None => notes.push(paragraph),
        }
    }
    if !notes.is_empty() {
        out.extend_from_slice(b".SH NOTES\n");
        for paragraph in notes {
            out.extend_from_slice(b".PP\n");
            out.extend_from_slice(escape_lines(paragraph).as_bytes());
        }
    }
}

/// THE INTERFACE'S KEYS: every action of the default keymap with its keys.
fn keys(keymap: &Keymap, out: &mut Vec<u8>) {
    out.extend_from_slice(
        b".SH INTERFACE KEYS\nThe default keymap of the two\\-pane interface (F1 shows the \
          keymap in use; the config file can change it, or choose the vim preset).\n",
    );
    for action in Action::ALL {
        let keys = keymap.bindings(action);
        if keys.is_empty() {
            continue;
        }
        let keys: Vec<String> = keys
            .iter()
            .map(|k| format!("\\fB{}\\fR", escape(k)))
            .collect();
        out.extend_from_slice(
            format!(".TP\n{}\n{}\n", keys.join(", "), escape(action.describe())).as_bytes(),
        );
    }
    out.extend_from_slice(
        b".PP\nEsc clears the banner, the filter or the marks. The mouse selects (a double click \
          enters), scrolls, and copies an entry dragged onto the other pane: onto a folder's \
          row, into that folder.\n",
    );
}

/// Text made safe for roff: backslashes and dashes escaped (a dash stays a dash you can
/// paste), and a line never starts a request.
fn escape(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\e")
        .replace('-', "\\-")
        .replace('\'', "\\(aq");
    if escaped.starts_with('.') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// [`escape`] line by line, each ended with a newline.
fn escape_lines(text: &str) -> String {
    text.lines().map(|line| escape(line) + "\n").collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_requests_and_dashes_are_escaped() {
        assert_eq!(escape("ferry get -r a\\b"), "ferry get \\-r a\\eb");
        assert_eq!(escape(".hidden"), "\\&.hidden");
        assert_eq!(escape("it's"), "it\\(aqs");
    }
}
