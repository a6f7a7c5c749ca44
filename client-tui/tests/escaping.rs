//! One escaping rule for local names too: files whose names hold a newline, an ESC sequence, a
//! bidi override or bytes that are not UTF-8, met in situations that print them (a put onto an
//! existing file, a get onto an existing file, a `same_file` refusal, an unreadable directory
//! of a `put -r`, a TUI banner), are shown by the one escape on every line the real `ferry`
//! binary prints: no raw control byte, no replacement character, every stderr line ferry's
//! own, and `--json` lines that parse and give the exact bytes back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{TestServer, ferry, ferry_as_nobody, p, text};
use ferry_protocol::path as wire;
use ferry_testkit::data::chmod;
use ferry_testkit::nobody::{AS_NOBODY, SETPRIV};
use serde_json::Value;
use tmux::{Tmux, require_tmux};

/// Raw names and how the one rule shows them. The first would forge a line of ferry's own
/// if its newline reached the terminal.
const NAMES: [(&[u8], &str); 4] = [
    (
        b"nl\nferry: 0 files failed, all digests verified",
        "nl\\nferry: 0 files failed, all digests verified",
    ),
    (b"esc\x1b[31mred", "esc\\x1b[31mred"),
    ("bidi\u{202e}fdp.exe".as_bytes(), "bidi\\u{202e}fdp.exe"),
    (b"bad\xff\xfe", "bad\\xff\\xfe"),
];

fn raw(dir: &Path, name: &[u8]) -> PathBuf {
    dir.join(OsStr::from_bytes(name))
}

/// A path that is plain ASCII (a temporary directory) with the escape of a name after it.
fn shown(dir: &Path, escaped: &str) -> String {
    format!("{}/{escaped}", dir.to_str().unwrap())
}

/// A location whose path is `name`'s bytes, every byte but plain ones percent-encoded.
fn url_of(server: &TestServer, name: &[u8]) -> String {
    let mut path = String::new();
    for &b in name {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            path.push(b as char);
        } else {
            path.push_str(&format!("%{b:02X}"));
        }
    }
    server.url(&path)
}

/// What reaches a terminal: no raw control byte but the newline ending a line, no DEL, no
/// C1 control, no replacement character standing for lost bytes, no bidi override.
fn assert_terminal_safe(what: &str, bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        assert!(
            (b >= 0x20 && b != 0x7f) || b == b'\n',
            "{what} holds the raw byte {b:#04x} at {i}: {:?}",
            text(bytes)
        );
    }
    let text = std::str::from_utf8(bytes).unwrap_or_else(|_| panic!("{what} is not UTF-8"));
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() && c != '\n' || matches!(c, '\u{fffd}' | '\u{202e}')),
        "{what} holds a control, bidi or replacement character: {text:?}"
    );
}

/// Every line ferry writes on stderr is its own (starts with `ferry:`) and safe to show.
fn assert_stderr(out: &Output) -> String {
    assert_terminal_safe("stderr", &out.stderr);
    let stderr = text(&out.stderr);
    for line in stderr.lines() {
        assert!(
            line.starts_with("ferry: "),
            "a line not ferry's: {line:?} in\n{stderr}"
        );
    }
    stderr
}

/// `--json` output: only newlines end lines, every line is one object, nothing was lost to a
/// replacement character.
fn json_lines(out: &Output) -> Vec<Value> {
    for (i, &b) in out.stdout.iter().enumerate() {
        assert!(
            (b >= 0x20 && b != 0x7f) || b == b'\n',
            "stdout holds the raw byte {b:#04x} at {i}"
        );
    }
    let stdout = std::str::from_utf8(&out.stdout).expect("--json output is UTF-8");
    assert!(!stdout.contains('\u{fffd}'), "{stdout}");
    stdout
        .lines()
        .map(|l| {
            let value: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert!(value.is_object(), "{l}");
            value
        })
        .collect()
}

/// The raw bytes a `--json` path stands for (the wire escape).
fn decoded(value: &Value) -> Vec<u8> {
    wire::decode(value.as_str().unwrap()).unwrap().into_owned()
}

/// The `--json` lines of failed files whose path gives back `raw`.
fn failed_for<'a>(lines: &'a [Value], raw: &[u8]) -> &'a Value {
    lines
        .iter()
        .find(|l| l["status"] == "failed" && decoded(&l["path"]) == raw)
        .unwrap_or_else(|| panic!("no failure for {:?} in {lines:?}", text(raw)))
}

#[test]
fn a_put_onto_existing_files_names_each_by_the_one_escape() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let mut args = vec![OsStr::new("put"), OsStr::new("--json")];
    let sources: Vec<PathBuf> = NAMES.iter().map(|(n, _)| raw(local.path(), n)).collect();
    for ((name, _), source) in NAMES.iter().zip(&sources) {
        std::fs::write(source, b"new").unwrap();
        std::fs::write(raw(server.root.path(), name), b"old").unwrap();
        args.push(source.as_os_str());
    }
    let url = server.url("");
    args.push(OsStr::new(&url));
    let out = ferry(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = assert_stderr(&out);
    let lines = json_lines(&out);
    for (name, escaped) in NAMES {
        assert!(
            stderr.contains(&format!("ferry: already_exists: {escaped}: ")),
            "{escaped} in\n{stderr}"
        );
        let failed = failed_for(&lines, name);
        assert_eq!(failed["code"], "already_exists");
        assert_eq!(
            std::fs::read(raw(server.root.path(), name)).unwrap(),
            b"old"
        );
    }
}

#[test]
fn a_get_onto_existing_local_files_names_each_by_the_one_escape() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let mut urls = Vec::new();
    for (name, _) in NAMES {
        std::fs::write(raw(server.root.path(), name), b"new").unwrap();
        std::fs::write(raw(local.path(), name), b"old").unwrap();
        urls.push(url_of(&server, name));
    }
    let mut args = vec![OsStr::new("get"), OsStr::new("--json")];
    args.push(OsStr::new("--allow-unsafe-names"));
    args.extend(urls.iter().map(OsStr::new));
    args.push(local.path().as_os_str());
    let out = ferry(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = assert_stderr(&out);
    let lines = json_lines(&out);
    for (name, escaped) in NAMES {
        let dest = shown(local.path(), escaped);
        assert!(
            stderr.contains(&format!("ferry: already_exists: {dest}: ")),
            "{dest} in\n{stderr}"
        );
        let failed = failed_for(&lines, name);
        assert!(
            failed["error"].as_str().unwrap().contains(&dest),
            "{failed}"
        );
        assert_eq!(std::fs::read(raw(local.path(), name)).unwrap(), b"old");
    }
}

#[test]
fn a_same_file_refusal_names_the_local_file_by_the_one_escape() {
    let server = TestServer::start();
    let root = server.root.path();
    for (name, escaped) in NAMES {
        let file = raw(root, name);
        std::fs::write(&file, b"mine").unwrap();
        let url = url_of(&server, name);
        let out = ferry(&[
            OsStr::new("put"),
            OsStr::new("--json"),
            OsStr::new("--overwrite"),
            file.as_os_str(),
            OsStr::new(&url),
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let stderr = assert_stderr(&out);
        assert!(stderr.contains("same_file"), "{stderr}");
        let local = shown(root, escaped);
        assert!(stderr.contains(&local), "{local} in\n{stderr}");
        let lines = json_lines(&out);
        let failed = failed_for(&lines, file.as_os_str().as_bytes());
        assert_eq!(failed["code"], "same_file");
        assert!(
            failed["error"].as_str().unwrap().contains(&local),
            "{failed}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"mine");
    }
}

#[test]
fn an_unreadable_directory_of_a_put_r_is_named_by_the_one_escape() {
    let server = TestServer::start_shm();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    chmod(local.path(), 0o755);
    let tree = local.path().join("t");
    std::fs::create_dir(&tree).unwrap();
    chmod(&tree, 0o755);
    std::fs::write(tree.join("ok.txt"), b"ok").unwrap();
    chmod(&tree.join("ok.txt"), 0o644);
    for (name, _) in NAMES {
        let dir = raw(&tree, name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("secret"), b"s").unwrap();
        // Only root may read it; the client runs as nobody.
        chmod(&dir, 0o700);
    }
    let out = ferry_as_nobody(&["put", "-r", "--json", p(&tree), &server.url("")]);
    assert_eq!(out.status.code(), Some(23), "{}", text(&out.stderr));
    let stderr = assert_stderr(&out);
    let lines = json_lines(&out);
    for (name, escaped) in NAMES {
        let dir = shown(&tree, escaped);
        assert!(
            stderr.contains(&format!("ferry: unreadable: {dir}: forbidden: ")),
            "{dir} in\n{stderr}"
        );
        let left_out = lines
            .iter()
            .find(|l| {
                l["type"] == "left_out"
                    && decoded(&l["path"]) == raw(&tree, name).as_os_str().as_bytes()
            })
            .unwrap_or_else(|| panic!("{dir} not left out in {lines:?}"));
        assert_eq!(left_out["reason"], "unreadable");
    }
    assert_eq!(std::fs::read(server.path("t/ok.txt")).unwrap(), b"ok");
}

#[test]
fn a_put_r_move_removes_directories_whose_names_need_the_escape() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("t");
    std::fs::create_dir(&tree).unwrap();
    for (name, _) in NAMES {
        let dir = raw(&tree, name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("f"), name).unwrap();
    }
    let url = server.url("");
    let out = ferry(&[
        OsStr::new("put"),
        OsStr::new("-r"),
        OsStr::new("--move"),
        tree.as_os_str(),
        OsStr::new(&url),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for (name, _) in NAMES {
        assert_eq!(
            std::fs::read(raw(&server.path("t"), name).join("f")).unwrap(),
            name
        );
    }
    // Every file went, so the move leaves nothing: the directories it emptied are gone.
    assert!(
        !tree.exists(),
        "left behind: {:?}",
        std::fs::read_dir(&tree)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect::<Vec<_>>())
            .ok()
    );
}

#[test]
fn a_tui_banner_names_a_local_directory_on_one_line_by_the_one_escape() {
    require_tmux();
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    chmod(tmp.path(), 0o755);
    let name: &[u8] = b"tui\nferry: fine \x1b[31m\xff\xe2\x80\xaedir";
    let escaped = "tui\\nferry: fine \\x1b[31m\\xff\\u{202e}dir";
    let locked = raw(tmp.path(), name);
    std::fs::create_dir(&locked).unwrap();
    // Root steps in for the shell; ferry, as nobody, cannot list it.
    chmod(&locked, 0o700);
    std::os::unix::fs::symlink(&locked, tmp.path().join("here")).unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    chmod(&home, 0o777);
    let mut as_nobody = vec![SETPRIV];
    as_nobody.extend(AS_NOBODY);
    as_nobody.push(env!("CARGO_BIN_EXE_ferry"));
    let tmux = Tmux::start(
        tmp.path().join("tmux.sock"),
        &tmp.path().join("here"),
        &[("HOME", &home)],
        &as_nobody,
        &[&server.url("")],
        (250, 30),
    );
    let path = shown(tmp.path(), escaped);
    // The pane says why it is empty, by the one rule too.
    let screen = tmux.wait_for("the pane's error", |s| s.contains("Permission denied"));
    assert!(
        screen.contains(&format!("forbidden: {path}: Permission denied")),
        "{screen}"
    );
    tmux.keys(&["C-r"]);
    let screen = tmux.wait_for("the banner", |s| s.contains("Cannot list"));
    let banner = screen.lines().find(|l| l.contains("Cannot list")).unwrap();
    assert!(
        banner.contains(&format!("Cannot list {path}: forbidden: {path}: ")),
        "{path} not on the banner's line:\n{screen}"
    );
    assert!(
        !screen.contains('\u{fffd}') && !screen.contains('\u{202e}'),
        "{screen}"
    );
    // The forged words stay inside the banner's line, never one of their own.
    assert!(
        !screen
            .lines()
            .any(|l| l.trim_start().starts_with("ferry: fine")),
        "{screen}"
    );
}

#[test]
fn a_tui_conflict_question_names_the_local_file_by_the_one_escape() {
    require_tmux();
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("local");
    let home = tmp.path().join("home");
    for dir in [&local, &home] {
        std::fs::create_dir(dir).unwrap();
    }
    let name: &[u8] = b"c\nferry: ok \x1b[1m\xff";
    let escaped = "c\\nferry: ok \\x1b[1m\\xff";
    std::fs::write(raw(server.root.path(), name), b"new").unwrap();
    std::fs::write(raw(&local, name), b"old").unwrap();
    let tmux = tmux::start_ferry(
        tmp.path().join("tmux.sock"),
        &local,
        &[("HOME", home.as_path())],
        &[&server.url("")],
        (120, 40),
    );
    tmux.wait_for("both listings", |s| {
        s.matches("0 dirs, 1 file").count() == 2 && s.contains("connected")
    });
    tmux.keys(&["Tab"]);
    tmux.keys(&["C-a"]);
    tmux.wait_for("the file marked", |s| s.contains("1 marked"));
    tmux.keys(&["F5", "Enter"]);
    let screen = tmux.wait_for("the question", |s| {
        s.contains("The destination already exists")
    });
    let path = shown(&local, escaped);
    assert!(
        screen.lines().any(|l| l.contains(&path)),
        "{path} not on one line of the question:\n{screen}"
    );
    assert!(!screen.contains('\u{fffd}'), "{screen}");
    assert!(
        !screen
            .lines()
            .any(|l| l.trim_start().starts_with("ferry: ok")),
        "{screen}"
    );
    assert_eq!(std::fs::read(raw(&local, name)).unwrap(), b"old");
}

#[test]
fn the_tui_go_to_prompt_shows_a_local_directory_by_the_one_escape_and_leads_back_to_it() {
    require_tmux();
    let server = TestServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let name: &[u8] = b"go\nferry: ok \x1b[1m\xff";
    let escaped = "go\\nferry: ok \\x1b[1m\\xff";
    let odd = raw(tmp.path(), name);
    std::fs::create_dir_all(odd.join("deeper")).unwrap();
    std::fs::write(odd.join("deeper/found.txt"), b"f").unwrap();
    std::os::unix::fs::symlink(&odd, tmp.path().join("here")).unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let tmux = tmux::start_ferry(
        tmp.path().join("tmux.sock"),
        &tmp.path().join("here"),
        &[("HOME", home.as_path())],
        &[&server.url("")],
        (160, 40),
    );
    tmux.wait_for("the local listing", |s| {
        s.contains("deeper") && s.contains("connected")
    });
    tmux.keys(&["C-g"]);
    let screen = tmux.wait_for("the prompt", |s| s.contains("Go to path"));
    let path = shown(tmp.path(), escaped);
    assert!(
        screen.contains(&path),
        "{path} not in the prompt:\n{screen}"
    );
    assert!(!screen.contains('\u{fffd}'), "{screen}");
    // The prompt's own text, one directory further, leads to the right directory.
    tmux.keys(&["/deeper"]);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the directory below", |s| {
        s.contains("found.txt") || s.contains("Cannot list")
    });
    assert!(screen.contains("found.txt"), "{screen}");
}

#[test]
fn a_missing_source_is_named_whole_in_json_whatever_its_name_holds() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let sources: Vec<PathBuf> = NAMES.iter().map(|(n, _)| raw(local.path(), n)).collect();
    let mut args = vec![OsStr::new("put"), OsStr::new("--json")];
    args.extend(sources.iter().map(|s| s.as_os_str()));
    let url = server.url("");
    args.push(OsStr::new(&url));
    let out = ferry(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = assert_stderr(&out);
    let lines = json_lines(&out);
    for ((_, escaped), source) in NAMES.iter().zip(&sources) {
        let path = shown(local.path(), escaped);
        assert!(
            stderr.contains(&format!("ferry: not_found: {path}: ")),
            "{path} in\n{stderr}"
        );
        assert_eq!(
            failed_for(&lines, source.as_os_str().as_bytes())["code"],
            "not_found"
        );
    }
}
