//! `ferry man` as `man` shows it: one page that points to no page that does not exist, keeps
//! its examples as written (no reflow, no hyphenation) and lists the interface's keys from the
//! live keymap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{ferry, ok, text};
use ferry::tui::keymap::{Action, Keymap};

/// The page in roff, and as `man` renders it 100 columns wide.
fn page() -> (String, String) {
    let roff = text(&ok(ferry(&["man"])).stdout);
    let mut man = Command::new("man")
        .args(["-l", "-"])
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("man(1) is needed to check the page as people read it");
    man.stdin
        .take()
        .unwrap()
        .write_all(roff.as_bytes())
        .unwrap();
    let out = man.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    (roff, text(&out.stdout))
}

#[test]
fn the_man_page_refers_to_no_missing_page_keeps_examples_verbatim_and_lists_the_keys() {
    let (roff, shown) = page();

    // `name(1)` only where that page exists: `ferry man` writes one page, ferry(1).
    for (at, _) in shown.match_indices('(') {
        let section: String = shown[at + 1..].chars().take(2).collect();
        let is_reference =
            section.starts_with(|c: char| c.is_ascii_digit()) && section.ends_with(')');
        let name: String = shown[..at]
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '‐' | '_'))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        assert!(
            !is_reference || name.is_empty() || name == "ferry",
            "a reference to a page that is not generated: {name}({section}"
        );
    }
    assert!(!roff.contains("ferry\\-ls"), "ferry-ls(1) is no page");

    // Every command is described here instead.
    for command in ["ls", "get", "put", "mkdir", "rm", "mv", "partials"] {
        let heading = format!("ferry {command}");
        assert!(
            shown.lines().any(|l| l.trim() == heading)
                && shown
                    .lines()
                    .any(|l| l.trim().starts_with(&format!("{heading} ")) && l.contains('<')),
            "no section with the synopsis of {heading}"
        );
    }

    // Examples exactly as the help writes them, spacing and all, and no word hyphenated.
    for line in [
        "ferry get -r --resume ferry://nas/photos . re-run an interrupted -r: finished files cost a",
        "                                           digest check, the others continue",
        "ferry                                      open the two-pane interface",
    ] {
        assert!(
            shown.lines().any(|l| l.trim_end().ends_with(line)),
            "example line not kept: {line:?}\n{shown}"
        );
    }
    assert!(
        !shown.contains("inter‐") && !shown.contains("inter-\n"),
        "{shown}"
    );

    // The key table: every action of the live default keymap, with its keys.
    let keymap = Keymap::default();
    let keys_at = shown.find("INTERFACE KEYS").expect("no key table");
    let table = &shown[keys_at..];
    for action in Action::ALL {
        let keys = keymap.bindings(action);
        if keys.is_empty() {
            continue;
        }
        let row = table
            .find(action.describe())
            .unwrap_or_else(|| panic!("{:?} missing: {table}", action.describe()));
        let above = &table[..row];
        let last_line = above.trim_end().lines().last().unwrap_or_default();
        assert!(
            last_line.contains(&keys.join(", ")) || above.ends_with(&format!("{}  ", keys[0])),
            "{}: keys {keys:?} not beside it: {last_line:?}",
            action.describe()
        );
    }
}
