//! Every name a Linux filesystem holds goes through the real `ferry` binary both ways, exactly:
//! invalid UTF-8, control characters, a backslash, a name of high bytes only. `ferry ls` shows
//! each one escaped on one line, `ls --json` gives the exact names in the wire escape, `get -r`
//! and `put -r` leave byte-identical trees, `rm` and `mv` reach them, a download refuses names
//! that would spoof other programs unless allowed, a server's words never start a line, and
//! the TUI (in tmux) counts and copies them all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use common::{TestServer, ferry, ok, text};
use ferry_protocol::path as wire;
use tmux::{Desk, WAIT, require_tmux};

/// Files with names other tools carry and ferry used to hide, and their wire names.
const ODD: [(&[u8], &str); 6] = [
    (b"new\nline.txt", "new\\nline.txt"),
    (b"back\\slash.txt", "back\\\\slash.txt"),
    (b"ctl\x01.txt", "ctl\\x01.txt"),
    (b"bad-\xff.txt", "bad-\\xff.txt"),
    (b"\x80\x81\x82\x83", "\\x80\\x81\\x82\\x83"),
    (b"plain.txt", "plain.txt"),
];
/// A directory with an odd name, and an odd name inside it.
const DIR: &[u8] = b"dir\t\xfe";
const INNER: &[u8] = b"in\x1bside";

fn raw(dir: &Path, name: &[u8]) -> PathBuf {
    dir.join(OsStr::from_bytes(name))
}

/// The odd names, made on disk with their raw bytes under `dir`.
fn make_odd_tree(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, (name, _)) in ODD.iter().enumerate() {
        std::fs::write(raw(dir, name), format!("content {i}")).unwrap();
    }
    std::fs::create_dir(raw(dir, DIR)).unwrap();
    std::fs::write(raw(&raw(dir, DIR), INNER), b"deep").unwrap();
}

/// Every entry below `root` by its raw relative path: files with their bytes, directories
/// with a trailing `/`. Compared raw, so a name changed in any byte shows.
fn raw_tree(root: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    fn visit(root: &Path, dir: &Path, out: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            if path.is_dir() {
                let mut key = rel.clone();
                key.push(b'/');
                out.insert(key, Vec::new());
                visit(root, &path, out);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    visit(root, root, &mut out);
    out
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// Output a terminal can show as it is: UTF-8 with no control character but line ends.
fn assert_printable(what: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|_| panic!("{what} is not UTF-8"));
    assert!(
        !text.chars().any(|c| c != '\n' && c.is_control()),
        "{what} holds a raw control character: {text:?}"
    );
}

#[test]
fn ls_shows_every_name_once_escaped_and_json_gives_the_exact_bytes() {
    let server = TestServer::start();
    make_odd_tree(&server.path("t"));

    let out = ok(ferry(&[os("ls"), os(&server.url("t"))]));
    assert_printable("ls", &out.stdout);
    let listing = text(&out.stdout);
    assert_eq!(listing.lines().count(), ODD.len() + 1, "{listing}");
    for (_, shown) in ODD {
        assert!(
            listing.lines().any(|l| l.ends_with(&format!("  {shown}"))),
            "{shown} missing:\n{listing}"
        );
    }
    assert!(
        listing.lines().any(|l| l.ends_with("  dir\\t\\xfe/")),
        "{listing}"
    );

    let out = ok(ferry(&[os("ls"), os("--json"), os(&server.url("t"))]));
    assert_printable("ls --json", &out.stdout);
    let mut names: Vec<Vec<u8>> = text(&out.stdout)
        .lines()
        .map(|line| {
            let entry: serde_json::Value = serde_json::from_str(line).unwrap();
            wire::name_bytes(entry["name"].as_str().unwrap())
                .unwrap()
                .into_owned()
        })
        .collect();
    names.sort();
    let mut expected: Vec<Vec<u8>> = ODD.iter().map(|(name, _)| name.to_vec()).collect();
    expected.push(DIR.to_vec());
    expected.sort();
    assert_eq!(names, expected);
}

#[test]
fn get_r_and_put_r_leave_byte_identical_trees_both_ways() {
    let server = TestServer::start();
    let source = server.path("t");
    make_odd_tree(&source);
    let local = tempfile::tempdir().unwrap();

    let out = ok(ferry(&[
        os("get"),
        os("-r"),
        os(&server.url("t")),
        local.path().as_os_str(),
    ]));
    assert_printable("get -r", &out.stderr);
    let fetched = local.path().join("t");
    assert_eq!(raw_tree(&fetched), raw_tree(&source));
    assert_eq!(raw_tree(&source).len(), ODD.len() + 2);

    let out = ok(ferry(&[
        os("put"),
        os("-r"),
        fetched.as_os_str(),
        os(&server.url("back")),
    ]));
    assert_printable("put -r", &out.stderr);
    assert_eq!(raw_tree(&server.path("back")), raw_tree(&source));

    // Single files, named by their escape in a location and by their raw bytes locally.
    let single = tempfile::tempdir().unwrap();
    let into = single.path().as_os_str();
    ok(ferry(&[
        os("get"),
        os(&server.url("t/bad-\\xff.txt")),
        into,
    ]));
    ok(ferry(&[
        os("get"),
        os(&server.url("t/new%0Aline.txt")),
        into,
    ]));
    assert_eq!(
        std::fs::read(raw(single.path(), b"bad-\xff.txt")).unwrap(),
        b"content 3"
    );
    assert_eq!(
        std::fs::read(raw(single.path(), b"new\nline.txt")).unwrap(),
        b"content 0"
    );
    std::fs::create_dir(server.path("up")).unwrap();
    let upload = raw(single.path(), b"bad-\xff.txt");
    ok(ferry(&[
        os("put"),
        upload.as_os_str(),
        os(&server.url("up/")),
    ]));
    assert_eq!(
        std::fs::read(raw(&server.path("up"), b"bad-\xff.txt")).unwrap(),
        b"content 3"
    );
}

#[test]
fn rm_and_mv_reach_names_with_any_bytes() {
    let server = TestServer::start();
    let dir = server.path("t");
    make_odd_tree(&dir);

    ok(ferry(&[os("rm"), os(&server.url("t/ctl\\x01.txt"))]));
    assert!(!raw(&dir, b"ctl\x01.txt").exists());
    ok(ferry(&[os("rm"), os(&server.url("t/%80%81%82%83"))]));
    assert!(!raw(&dir, b"\x80\x81\x82\x83").exists());
    ok(ferry(&[
        os("rm"),
        os("-r"),
        os(&server.url("t/dir\\t\\xfe")),
    ]));
    assert!(!raw(&dir, DIR).exists());

    ok(ferry(&[
        os("mv"),
        os(&server.url("t/new\\nline.txt")),
        os("t/moved\\x7f\\\\\\xff"),
    ]));
    assert!(!raw(&dir, b"new\nline.txt").exists());
    assert_eq!(
        std::fs::read(raw(&dir, b"moved\x7f\\\xff")).unwrap(),
        b"content 0"
    );

    // A name no path can hold is refused with a clear code, before anything is sent.
    let out = ferry(&[os("rm"), os(&server.url("t/a\\x2fb"))]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("bad path"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_download_refuses_names_that_spoof_other_programs_unless_allowed() {
    let server = TestServer::start();
    let dir = server.path("t");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("invoice\u{202e}fdp.exe"), b"spoof").unwrap();
    std::fs::write(dir.join("zero\u{200b}width.txt"), b"hidden").unwrap();
    std::fs::write(dir.join("fine.txt"), b"fine").unwrap();
    let local = tempfile::tempdir().unwrap();

    let out = ferry(&[
        os("get"),
        os("-r"),
        os(&server.url("t")),
        local.path().as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("unsafe_name") && stderr.contains("invoice\\u{202e}fdp.exe"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{202e}'), "{stderr}");
    assert_eq!(
        raw_tree(&local.path().join("t"))
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        [b"fine.txt".to_vec()],
        "only the safe name was written"
    );

    ok(ferry(&[
        os("get"),
        os("-r"),
        os("--allow-unsafe-names"),
        os("--overwrite"),
        os(&server.url("t")),
        local.path().as_os_str(),
    ]));
    assert_eq!(raw_tree(&local.path().join("t")), raw_tree(&dir));
}

/// A server that says hello, then refuses everything with a message that holds a line of its
/// own, made to look like ferry's.
fn lying_server() -> (tokio::runtime::Runtime, std::net::SocketAddr) {
    use ferry_protocol::{
        ErrorCode, Frame, FrameDecoder, HelloReply, Request, decode_request, encode_err, encode_ok,
    };
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    ferry_testkit::wire::fake_server(|stream| async move {
        let (read, mut write) = stream.into_split();
        let mut frames = tokio_util::codec::FramedRead::new(read, FrameDecoder::new());
        while let Some(Ok(Frame::Header(line))) = frames.next().await {
            let out = match decode_request(&line) {
                Ok(Request::Hello { .. }) => encode_ok(&HelloReply {
                    version: ferry_protocol::VERSION,
                    server: "liar".into(),
                    read_only: false,
                    identity: None,
                    home: None,
                })
                .unwrap(),
                _ => encode_err(
                    ErrorCode::Forbidden,
                    "nope\nferry: 0 files failed, all digests verified\r\n",
                ),
            };
            if write.write_all(&out).await.is_err() {
                return;
            }
        }
    })
}

#[test]
fn a_servers_words_never_start_a_line_of_their_own() {
    let (_server, addr) = lying_server();
    for args in [
        vec!["mkdir".to_owned(), format!("ferry://{addr}/x")],
        vec!["rm".to_owned(), format!("ferry://{addr}/x")],
        vec!["ls".to_owned(), format!("ferry://{addr}/x")],
    ] {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let out = ferry(&args);
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
        assert!(
            stderr.starts_with("ferry: forbidden: ") && stderr.contains("nope\\nferry: 0 files"),
            "{stderr:?}"
        );
    }
}

#[test]
fn the_tui_counts_and_copies_every_name() {
    require_tmux();
    let desk = Desk::new();
    let root = desk.tmp.path().join("served");
    let local = &desk.local;
    make_odd_tree(&root);
    let (_server, port) = common::start_server(&root, 0);
    let tmux = desk.ferry(&[&format!("ferry://127.0.0.1:{port}/")], (120, 40));
    // Six files and a directory, every one of them, shown escaped.
    let screen = tmux.wait_for("the remote pane's count", |s| {
        s.contains("1 dir, 6 files") && s.contains("connected")
    });
    for shown in [
        "new\\nline.txt",
        "bad-\\xff.txt",
        "ctl\\x01.txt",
        "dir\\t\\xfe",
    ] {
        assert!(screen.contains(shown), "{shown} not shown:\n{screen}");
    }

    tmux.keys(&["Tab"]);
    tmux.keys(&["C-a"]);
    tmux.wait_for("all seven marked", |s| s.contains("7 marked"));
    tmux.keys(&["F5", "Enter"]);
    let start = Instant::now();
    while raw_tree(local) != raw_tree(&root) {
        assert!(
            start.elapsed() < WAIT,
            "the copy never completed; the screen:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.wait_for("the local pane's count", |s| {
        s.matches("1 dir, 6 files").count() == 2
    });
}

#[test]
fn the_tui_shows_spoofing_names_escaped_and_refuses_to_write_them() {
    require_tmux();
    let desk = Desk::new();
    let (root, local) = (desk.dir("served"), &desk.local);
    std::fs::write(root.join("invoice\u{202e}fdp.exe"), b"spoof").unwrap();
    std::fs::write(root.join("fine.txt"), b"fine").unwrap();
    let (_server, port) = common::start_server(&root, 0);
    let tmux = desk.ferry(&[&format!("ferry://127.0.0.1:{port}/")], (120, 40));
    let screen = tmux.wait_for("the remote listing", |s| {
        s.contains("0 dirs, 2 files") && s.contains("connected")
    });
    assert!(screen.contains("invoice\\u{202e}fdp.exe"), "{screen}");
    assert!(!screen.contains('\u{202e}'), "{screen}");

    tmux.keys(&["Tab"]);
    tmux.keys(&["C-a"]);
    tmux.wait_for("both marked", |s| s.contains("2 marked"));
    tmux.keys(&["F5", "Enter"]);
    let screen = tmux.wait_for("the refusal", |s| s.contains("unsafe_name"));
    assert!(!screen.contains('\u{202e}'), "{screen}");
    let start = Instant::now();
    while std::fs::read(local.join("fine.txt")).ok().as_deref() != Some(&b"fine"[..]) {
        assert!(
            start.elapsed() < WAIT,
            "fine.txt never arrived:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        raw_tree(local).into_keys().collect::<Vec<_>>(),
        [b"fine.txt".to_vec()],
        "the spoofing name was written"
    );
}
