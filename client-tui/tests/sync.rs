//! `ferry sync` with the real binary against a real server, both ways round: each comparison
//! mode, the plan (`--dry-run`, `--json`), an mtime-only difference fixed without a transfer
//! (the destination keeps its inode), `--delete` with `--max-delete` and the empty-source
//! guard, `--exclude`/`--include` in order, names that need the escape, a symlink on the
//! destination never followed, an interrupted sync that a re-run finishes, and a source that
//! changes during the sync.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{TestServer, bytes, ferry, ferry_running, ok, p, text, tree};
use serde_json::Value;

/// `ferry sync ARGS...`, run to its end.
fn sync(args: &[&str]) -> std::process::Output {
    let mut all = vec!["sync"];
    all.extend_from_slice(args);
    ferry(&all)
}

/// The plan of `ferry sync --dry-run --json ARGS...`: the action lines and the totals.
fn plan(args: &[&str]) -> (Vec<Value>, Value) {
    let mut all = vec!["--dry-run", "--json"];
    all.extend_from_slice(args);
    let out = sync(&all);
    let mut lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let totals = lines.pop().unwrap();
    assert_eq!(totals["type"], "plan", "{totals}");
    assert!(lines.iter().all(|l| l["type"] == "action"), "{lines:?}");
    (lines, totals)
}

/// `word path` for each action, in order.
fn words(actions: &[Value]) -> Vec<String> {
    actions
        .iter()
        .map(|a| {
            format!(
                "{} {}",
                a["action"].as_str().unwrap(),
                a["path"].as_str().unwrap()
            )
        })
        .collect()
}

/// Nothing left to do: every count of the plan is zero.
fn assert_in_sync(args: &[&str]) {
    let (actions, totals) = plan(args);
    let real: Vec<_> = actions
        .iter()
        .filter(|a| a["action"] != "skip")
        .cloned()
        .collect();
    assert!(real.is_empty(), "still to do: {:?}", words(&real));
    assert_eq!(totals["files"], 0, "{totals}");
}

/// Each file's mtime and permission bits below `root`, by relative path.
fn stamps(root: &Path) -> BTreeMap<String, (i64, u32)> {
    tree(root)
        .keys()
        .filter(|rel| !rel.ends_with('/'))
        .map(|rel| {
            let meta = std::fs::metadata(root.join(rel)).unwrap();
            (
                rel.clone(),
                (meta.mtime(), meta.permissions().mode() & 0o777),
            )
        })
        .collect()
}

fn set_mtime(path: &Path, secs: i64) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs as u64))
        .unwrap();
}

fn inode(path: &Path) -> u64 {
    std::fs::symlink_metadata(path).unwrap().ino()
}

/// A small tree: nested directories, files of a few sizes and modes, an empty file.
fn build(root: &Path) {
    std::fs::create_dir_all(root.join("docs/deep/er")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(root.join("a.txt"), b"alpha").unwrap();
    std::fs::write(root.join("docs/b.bin"), bytes(70_000, 1)).unwrap();
    std::fs::write(root.join("docs/deep/er/c"), b"").unwrap();
    std::fs::write(root.join("docs/private"), b"secret").unwrap();
    std::fs::set_permissions(
        root.join("docs/private"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    for (i, name) in ["a.txt", "docs/b.bin", "docs/deep/er/c", "docs/private"]
        .iter()
        .enumerate()
    {
        set_mtime(&root.join(name), 1_600_000_000 + i as i64);
    }
}

#[test]
fn local_to_remote_each_mode_copies_then_converges() {
    for mode in [None, Some("--checksum"), Some("--size-only")] {
        let server = TestServer::start();
        let src = tempfile::tempdir().unwrap();
        build(src.path());
        let url = server.url("dst");
        let mut args: Vec<&str> = mode.into_iter().collect();
        args.extend([p(src.path()), url.as_str()]);
        ok(sync(&args));
        assert_eq!(tree(&server.path("dst")), tree(src.path()), "{mode:?}");
        assert_eq!(stamps(&server.path("dst")), stamps(src.path()), "{mode:?}");
        assert_in_sync(&args);
        // One file grows, one changes at the same size with a new mtime.
        std::fs::write(src.path().join("a.txt"), b"alpha!").unwrap();
        std::fs::write(src.path().join("docs/private"), b"SECRET").unwrap();
        set_mtime(&src.path().join("docs/private"), 1_700_000_000);
        let (actions, totals) = plan(&args);
        let expected: &[&str] = match mode {
            // Same size: size-only does not look further.
            Some("--size-only") => &["update a.txt"],
            _ => &["update a.txt", "update docs/private"],
        };
        assert_eq!(words(&actions), expected, "{mode:?}");
        assert_eq!(totals["files"], expected.len(), "{mode:?}");
        ok(sync(&args));
        if mode != Some("--size-only") {
            assert_eq!(tree(&server.path("dst")), tree(src.path()), "{mode:?}");
            assert_in_sync(&args);
        }
        assert_eq!(
            std::fs::read(server.path("dst/a.txt")).unwrap(),
            b"alpha!",
            "{mode:?}"
        );
    }
}

#[test]
fn remote_to_local_each_mode_copies_then_converges() {
    for mode in [None, Some("--checksum"), Some("--size-only")] {
        let server = TestServer::start();
        build(&server.path("src"));
        let dst = tempfile::tempdir().unwrap();
        let target = dst.path().join("copy");
        let url = server.url("src");
        let mut args: Vec<&str> = mode.into_iter().collect();
        args.extend([url.as_str(), p(&target)]);
        ok(sync(&args));
        assert_eq!(tree(&target), tree(&server.path("src")), "{mode:?}");
        assert_eq!(stamps(&target), stamps(&server.path("src")), "{mode:?}");
        assert_in_sync(&args);
        std::fs::write(server.path("src/docs/b.bin"), bytes(70_001, 2)).unwrap();
        let (actions, _) = plan(&args);
        assert_eq!(words(&actions), ["update docs/b.bin"], "{mode:?}");
        ok(sync(&args));
        assert_eq!(tree(&target), tree(&server.path("src")), "{mode:?}");
        assert_in_sync(&args);
    }
}

#[test]
fn an_mtime_only_difference_is_fixed_without_sending_the_file() {
    // Local to remote: the server's file keeps its inode (a `put` would rename a new one in).
    let server = TestServer::start();
    let src = tempfile::tempdir().unwrap();
    build(src.path());
    let url = server.url("dst");
    ok(sync(&[p(src.path()), &url]));
    let dst_file = server.path("dst/docs/b.bin");
    let before = inode(&dst_file);
    set_mtime(&src.path().join("docs/b.bin"), 1_650_000_000);
    std::fs::set_permissions(
        src.path().join("a.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let a_inode = inode(&server.path("dst/a.txt"));
    for how in [None, Some("--checksum")] {
        let mut args: Vec<&str> = how.into_iter().collect();
        args.extend([p(src.path()), url.as_str()]);
        let (actions, totals) = plan(&args);
        assert_eq!(
            words(&actions),
            ["fix-mode a.txt", "fix-time docs/b.bin"],
            "{how:?}"
        );
        assert_eq!(totals["files"], 0);
        assert_eq!(totals["bytes"], 0);
    }
    let out = ok(sync(&["--json", p(src.path()), &url]));
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().all(|l| l["type"] != "file"), "{lines:?}");
    assert_eq!(inode(&dst_file), before);
    assert_eq!(std::fs::metadata(&dst_file).unwrap().mtime(), 1_650_000_000);
    assert_eq!(inode(&server.path("dst/a.txt")), a_inode);
    assert_eq!(
        std::fs::metadata(server.path("dst/a.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    assert_in_sync(&[p(src.path()), &url]);

    // Remote to local, the same.
    let local = tempfile::tempdir().unwrap();
    let copy = local.path().join("copy");
    ok(sync(&[&url, p(&copy)]));
    let local_file = copy.join("docs/b.bin");
    let before = inode(&local_file);
    set_mtime(&local_file, 1_111_111_111);
    let (actions, _) = plan(&[&url, p(&copy)]);
    assert_eq!(words(&actions), ["fix-time docs/b.bin"]);
    ok(sync(&[&url, p(&copy)]));
    assert_eq!(inode(&local_file), before);
    assert_eq!(
        std::fs::metadata(&local_file).unwrap().mtime(),
        1_650_000_000
    );
}

#[test]
fn quick_check_trusts_size_and_mtime_checksum_does_not() {
    let server = TestServer::start();
    let src = tempfile::tempdir().unwrap();
    build(src.path());
    let url = server.url("dst");
    ok(sync(&[p(src.path()), &url]));
    // Same size and mtime, other bytes: only --checksum sees it.
    std::fs::write(server.path("dst/a.txt"), b"ALPHA").unwrap();
    set_mtime(&server.path("dst/a.txt"), 1_600_000_000);
    assert_in_sync(&[p(src.path()), &url]);
    let (actions, _) = plan(&["--checksum", p(src.path()), &url]);
    assert_eq!(words(&actions), ["update a.txt"]);
    assert_eq!(actions[0]["why"], "content differs");
    ok(sync(&["-c", p(src.path()), &url]));
    assert_eq!(std::fs::read(server.path("dst/a.txt")).unwrap(), b"alpha");
}

#[test]
fn dry_run_prints_every_action_and_changes_nothing() {
    let server = TestServer::start();
    let src = tempfile::tempdir().unwrap();
    build(src.path());
    std::os::unix::fs::symlink("a.txt", src.path().join("link")).unwrap();
    let url = server.url("dst");
    let out = ok(sync(&["--dry-run", p(src.path()), &url]));
    let shown = text(&out.stdout);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(
        lines[..lines.len() - 1]
            .iter()
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>(),
        [
            "mkdir .",
            "create a.txt",
            "mkdir docs",
            "create docs/b.bin",
            "mkdir docs/deep",
            "mkdir docs/deep/er",
            "create docs/deep/er/c",
            "create docs/private",
            "mkdir empty",
            "skip link",
        ],
        "{shown}"
    );
    assert!(lines[9].contains("symlink"), "{shown}");
    let last = lines.last().unwrap();
    assert!(last.starts_with("plan: 4 to create"), "{last}");
    assert!(last.contains("4 file(s) to send"), "{last}");
    assert!(!server.path("dst").exists());
    let (_, totals) = plan(&[p(src.path()), &url]);
    assert_eq!(totals["files"], 4);
    assert_eq!(totals["bytes"], 5 + 70_000 + 6);
    assert_eq!(totals["mkdir"], 5);
    assert_eq!(totals["skip"], 1);
}

#[test]
fn delete_needs_the_flag_and_removes_deepest_first() {
    let server = TestServer::start();
    let src = tempfile::tempdir().unwrap();
    build(src.path());
    let url = server.url("dst");
    ok(sync(&[p(src.path()), &url]));
    std::fs::create_dir_all(server.path("dst/old/inner")).unwrap();
    std::fs::write(server.path("dst/old/inner/x"), b"x").unwrap();
    std::fs::write(server.path("dst/docs/stale"), b"s").unwrap();
    // Without --delete nothing goes.
    ok(sync(&[p(src.path()), &url]));
    assert!(server.path("dst/old/inner/x").exists());
    let (actions, totals) = plan(&["--delete", p(src.path()), &url]);
    assert_eq!(
        words(&actions),
        [
            "delete old/inner/x",
            "delete docs/stale",
            "delete old/inner",
            "delete old"
        ]
    );
    assert_eq!(totals["delete"], 4);
    ok(sync(&["--delete", p(src.path()), &url]));
    assert_eq!(tree(&server.path("dst")), tree(src.path()));

    // Remote to local too.
    let local = tempfile::tempdir().unwrap();
    let copy = local.path().join("copy");
    ok(sync(&[&url, p(&copy)]));
    std::fs::write(copy.join("docs/extra"), b"e").unwrap();
    ok(sync(&["--delete", &url, p(&copy)]));
    assert!(!copy.join("docs/extra").exists());
    assert_eq!(tree(&copy), tree(src.path()));
}

#[test]
fn max_delete_refuses_the_whole_run_before_changing_anything() {
    let server = TestServer::start();
    let src = tempfile::tempdir().unwrap();
    build(src.path());
    let url = server.url("dst");
    ok(sync(&[p(src.path()), &url]));
    for name in ["x1", "x2", "x3"] {
        std::fs::write(server.path("dst").join(name), b"x").unwrap();
    }
    std::fs::write(src.path().join("new"), b"n").unwrap();
    let out = sync(&["--delete", "--max-delete", "2", p(src.path()), &url]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("max_delete"), "{err}");
    assert!(err.contains("would delete 3 entries"), "{err}");
    assert!(server.path("dst/x1").exists());
    assert!(!server.path("dst/new").exists(), "nothing is changed");
    ok(sync(&[
        "--delete",
        "--max-delete",
        "3",
        p(src.path()),
        &url,
    ]));
    assert!(!server.path("dst/x1").exists());
    assert!(server.path("dst/new").exists());
}

#[test]
fn an_empty_source_with_delete_is_refused_unless_forced() {
    let server = TestServer::start();
    let src = tempfile::tempdir().unwrap();
    build(src.path());
    let url = server.url("dst");
    ok(sync(&[p(src.path()), &url]));
    let empty = tempfile::tempdir().unwrap();
    let out = sync(&["--delete", p(empty.path()), &url]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("empty_source"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert!(err.contains("mount"), "{err}");
    assert_eq!(tree(&server.path("dst")), tree(src.path()));
    // Without --delete an empty source is harmless; with --force it empties the copy.
    ok(sync(&[p(empty.path()), &url]));
    ok(sync(&["--delete", "--force", p(empty.path()), &url]));
    assert!(tree(&server.path("dst")).is_empty());
    // A source that does not exist is refused whatever the flags.
    let out = sync(&[
        "--delete",
        "--force",
        p(&empty.path().join("missing")),
        &url,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not_found"));
}

#[test]
fn an_unreadable_source_is_refused() {
    let server = TestServer::start();
    let base = tempfile::tempdir().unwrap();
    ferry_testkit::data::chmod(base.path(), 0o755);
    let src = base.path().join("src");
    build(&src);
    ferry_testkit::data::chmod(&src, 0o700);
    std::fs::create_dir(server.path("dst")).unwrap();
    std::fs::write(server.path("dst/keep"), b"k").unwrap();
    let url = server.url("dst");
    let out = common::ferry_as_nobody(&["sync", "--delete", p(&src), &url]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("forbidden"), "{err}");
    assert!(err.contains("cannot be listed"), "{err}");
    assert!(server.path("dst/keep").exists());
}

#[test]
fn a_remote_directory_the_server_cannot_read_keeps_its_local_copy() {
    use ferry_testkit::data::chmod;
    let root = ferry_testkit::data::shm_dir();
    chmod(root.path(), 0o755);
    std::fs::create_dir_all(root.path().join("src/open")).unwrap();
    std::fs::create_dir_all(root.path().join("src/locked")).unwrap();
    std::fs::write(root.path().join("src/open/a"), b"a").unwrap();
    std::fs::write(root.path().join("src/locked/secret"), b"s").unwrap();
    chmod(&root.path().join("src"), 0o755);
    chmod(&root.path().join("src/open"), 0o755);
    chmod(&root.path().join("src/open/a"), 0o644);
    chmod(&root.path().join("src/locked"), 0o700);
    let server = ferry_testkit::nobody::NobodyServer::start(root.path());
    // A copy made earlier, when the server could still read everything.
    let local = tempfile::tempdir().unwrap();
    let copy = local.path().join("copy");
    std::fs::create_dir_all(copy.join("open")).unwrap();
    std::fs::create_dir_all(copy.join("locked")).unwrap();
    std::fs::write(copy.join("open/a"), b"old").unwrap();
    std::fs::write(copy.join("locked/secret"), b"s").unwrap();
    let out = sync(&["--delete", &server.url("src"), p(&copy)]);
    assert_eq!(out.status.code(), Some(23), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("unreadable: locked"), "{err}");
    assert_eq!(std::fs::read(copy.join("open/a")).unwrap(), b"a");
    assert_eq!(
        std::fs::read(copy.join("locked/secret")).unwrap(),
        b"s",
        "what the server could not list is never deleted"
    );
}

#[test]
fn excludes_and_includes_apply_in_order_and_protect_the_destination() {
    let server = TestServer::start();
    let src = tempfile::tempdir().unwrap();
    build(src.path());
    std::fs::create_dir_all(src.path().join("build/sub")).unwrap();
    std::fs::write(src.path().join("build/sub/out.o"), b"o").unwrap();
    std::fs::create_dir_all(src.path().join("docs/build")).unwrap();
    std::fs::write(src.path().join("docs/build/kept"), b"k").unwrap();
    std::fs::write(src.path().join("x.log"), b"l").unwrap();
    std::fs::write(src.path().join("docs/keep.log"), b"l").unwrap();
    let url = server.url("dst");
    std::fs::create_dir_all(server.path("dst/build")).unwrap();
    std::fs::write(server.path("dst/build/theirs"), b"t").unwrap();
    std::fs::write(server.path("dst/old.log"), b"t").unwrap();
    let args = [
        "--delete",
        "--include",
        "keep.log",
        "--exclude",
        "*.log",
        "--exclude",
        "/build/",
        p(src.path()),
        &url,
    ];
    let (actions, _) = plan(&args);
    let skipped: Vec<_> = actions
        .iter()
        .filter(|a| a["action"] == "skip")
        .map(|a| (a["path"].as_str().unwrap(), a["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(skipped, [("build", "excluded"), ("x.log", "excluded")]);
    assert!(
        actions.iter().all(|a| a["action"] != "delete"),
        "{actions:?}"
    );
    ok(sync(&args));
    assert!(server.path("dst/docs/keep.log").exists());
    assert!(
        server.path("dst/docs/build/kept").exists(),
        "only /build is anchored"
    );
    assert!(!server.path("dst/x.log").exists());
    assert!(!server.path("dst/build/sub").exists());
    // Excluded on the destination: never deleted.
    assert!(server.path("dst/build/theirs").exists());
    assert!(server.path("dst/old.log").exists());
    // The other order: the exclude comes first and wins.
    let (actions, _) = plan(&[
        "--exclude",
        "*.log",
        "--include",
        "keep.log",
        p(src.path()),
        &url,
    ]);
    assert!(
        actions
            .iter()
            .any(|a| a["path"] == "docs/keep.log" && a["reason"] == "excluded"),
        "{actions:?}"
    );
}

#[test]
fn names_that_need_the_escape_go_both_ways() {
    let server = TestServer::start();
    let src = tempfile::tempdir().unwrap();
    let odd = [
        &b"two\nlines"[..],
        b"\xff\xfe",
        b"-rf",
        b"--delete",
        b"back\\slash",
    ];
    for (i, name) in odd.iter().enumerate() {
        std::fs::write(src.path().join(OsStr::from_bytes(name)), bytes(10 + i, 3)).unwrap();
    }
    std::fs::create_dir(src.path().join(OsStr::from_bytes(b"dir\n\xff"))).unwrap();
    std::fs::write(src.path().join(OsStr::from_bytes(b"dir\n\xff/-x")), b"in").unwrap();
    let url = server.url("dst");
    ok(sync(&[p(src.path()), &url]));
    let listed = |dir: &Path| -> Vec<Vec<u8>> {
        let mut names: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().as_bytes().to_vec())
            .collect();
        names.sort();
        names
    };
    assert_eq!(listed(&server.path("dst")), listed(src.path()));
    assert_eq!(
        std::fs::read(server.path("dst").join(OsStr::from_bytes(b"dir\n\xff/-x"))).unwrap(),
        b"in"
    );
    assert_in_sync(&[p(src.path()), &url]);
    // Back the other way, with a deletion of an odd name.
    let local = tempfile::tempdir().unwrap();
    let copy = local.path().join("copy");
    ok(sync(&[&url, p(&copy)]));
    assert_eq!(listed(&copy), listed(src.path()));
    std::fs::write(copy.join(OsStr::from_bytes(b"gone\n\xff")), b"g").unwrap();
    let (actions, _) = plan(&["--delete", &url, p(&copy)]);
    assert_eq!(words(&actions), ["delete gone\\n\\xff"]);
    ok(sync(&["--delete", &url, p(&copy)]));
    assert_eq!(listed(&copy), listed(src.path()));
}

#[test]
fn a_symlink_on_the_destination_is_never_followed() {
    let server = TestServer::start();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("target"), b"precious").unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), b"new content").unwrap();
    std::fs::create_dir(server.path("dst")).unwrap();
    std::fs::write(server.path("dst/inside"), b"inside").unwrap();
    // A link where a file would be written, and one only the destination has.
    std::os::unix::fs::symlink("inside", server.path("dst/f")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("target"), server.path("dst/extra")).unwrap();
    let url = server.url("dst");
    let (actions, _) = plan(&["--delete", p(src.path()), &url]);
    assert_eq!(
        words(&actions),
        ["skip f", "delete extra", "delete inside"],
        "{actions:?}"
    );
    assert_eq!(actions[0]["reason"], "type_clash");
    let out = sync(&["--delete", p(src.path()), &url]);
    assert_eq!(out.status.code(), Some(23), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("type_clash"));
    assert!(
        std::fs::symlink_metadata(server.path("dst/f"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!server.path("dst/extra").exists());
    assert_eq!(
        std::fs::read(outside.path().join("target")).unwrap(),
        b"precious"
    );

    // The same locally: a link in the local copy is left alone, its target untouched.
    std::fs::write(server.path("src2"), b"").unwrap();
    std::fs::remove_file(server.path("src2")).unwrap();
    std::fs::create_dir(server.path("src2")).unwrap();
    std::fs::write(server.path("src2/f"), b"remote").unwrap();
    let local = tempfile::tempdir().unwrap();
    let copy = local.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    std::os::unix::fs::symlink(outside.path().join("target"), copy.join("f")).unwrap();
    let out = sync(&[&server.url("src2"), p(&copy)]);
    assert_eq!(out.status.code(), Some(23), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(outside.path().join("target")).unwrap(),
        b"precious"
    );
}

#[test]
fn two_local_or_two_remote_sides_are_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let out = sync(&[p(a.path()), p(b.path())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("ferry:// location"));
    let server = TestServer::start();
    std::fs::create_dir(server.path("x")).unwrap();
    let out = sync(&[&server.url("x"), &server.url("y")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("ferry:// location"));
}

/// Waits until `done` says so, or fails after a generous deadline.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Regular files below `root` whose names are not hidden partials.
fn finished_files(root: &Path) -> usize {
    tree(root)
        .keys()
        .filter(|rel| !rel.ends_with('/') && !rel.contains(".ferry-part"))
        .count()
}

#[test]
fn a_killed_sync_is_finished_by_running_it_again() {
    let server = TestServer::start_shm();
    let src = tempfile::tempdir_in("/dev/shm").unwrap();
    for i in 0..24 {
        let dir = src.path().join(format!("d{}", i % 3));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{i}")), bytes(400_000, i)).unwrap();
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = runtime.block_on(common::Proxy::start(
        server.addr,
        Some(Duration::from_millis(15)),
    ));
    let slow = proxy.url("dst");
    let mut child = ferry_running(&["sync", "-j", "2", p(src.path()), &slow]);
    let dst = server.path("dst");
    wait_for("a first file", || dst.exists() && finished_files(&dst) >= 1);
    child.kill().unwrap();
    child.wait().unwrap();
    // The link goes down with the client: no bytes it had sent arrive after the re-run.
    drop(runtime);
    assert!(finished_files(&dst) < 24, "killed before the end");
    // Whatever arrived under a final name is whole. The server may still be placing (a file
    // whose bytes all came) or dropping (a partial) what the killed client sent: the tree is
    // read once two reads in a row agree.
    let read = || std::panic::catch_unwind(|| tree(&dst)).ok();
    let since = std::time::Instant::now();
    let settled = loop {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "the server never settled"
        );
        if let Some(first) = read() {
            std::thread::sleep(Duration::from_millis(200));
            if read().as_ref() == Some(&first) {
                break first;
            }
        }
    };
    for (rel, bytes_there) in settled {
        if rel.ends_with('/') || rel.contains(".ferry-part") {
            continue;
        }
        assert_eq!(
            bytes_there,
            std::fs::read(src.path().join(&rel)).unwrap(),
            "{rel}"
        );
    }
    ok(sync(&[p(src.path()), &server.url("dst")]));
    assert_eq!(tree(&dst), tree(src.path()));
    assert_in_sync(&[p(src.path()), &server.url("dst")]);
}

#[test]
fn a_source_changed_during_the_sync_is_reported_not_copied_half() {
    let server = TestServer::start_shm();
    let src = tempfile::tempdir_in("/dev/shm").unwrap();
    let big = src.path().join("big");
    std::fs::write(&big, bytes(12 * 1024 * 1024, 9)).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = runtime.block_on(common::Proxy::start(
        server.addr,
        Some(Duration::from_millis(20)),
    ));
    let child = ferry_running(&["sync", p(src.path()), &proxy.url("dst")]);
    wait_for("bytes on the way", || proxy.total().0 > 1024 * 1024);
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().append(true).open(&big).unwrap();
        file.write_all(b"appended while it was sent").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("file_changed"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !server.path("dst/big").exists(),
        "no half file under the final name"
    );
    ok(sync(&[p(src.path()), &server.url("dst")]));
    assert_eq!(
        std::fs::read(server.path("dst/big")).unwrap(),
        std::fs::read(&big).unwrap()
    );
}

#[test]
fn watch_follows_a_create_a_change_a_rename_and_a_delete() {
    let server = TestServer::start();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("first"), b"1").unwrap();
    let url = server.url("dst");
    let mut child = ferry_running(&["sync", "--watch", "--delete", p(src.path()), &url]);
    let dst = server.path("dst");
    let holds = |name: &str, bytes: &[u8]| std::fs::read(dst.join(name)).is_ok_and(|b| b == bytes);
    wait_for("the first sync", || holds("first", b"1"));
    std::fs::create_dir(src.path().join("sub")).unwrap();
    std::fs::write(src.path().join("sub/new"), b"created").unwrap();
    wait_for("a create", || holds("sub/new", b"created"));
    std::fs::write(src.path().join("sub/new"), b"changed!").unwrap();
    wait_for("a change", || holds("sub/new", b"changed!"));
    std::fs::rename(src.path().join("sub/new"), src.path().join("renamed")).unwrap();
    wait_for("a rename", || {
        holds("renamed", b"changed!") && !dst.join("sub/new").exists()
    });
    std::fs::remove_file(src.path().join("first")).unwrap();
    wait_for("a delete", || !dst.join("first").exists());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(tree(&dst), tree(src.path()));
}

#[test]
fn watch_of_a_remote_source_survives_a_server_restart() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("src")).unwrap();
    std::fs::write(root.path().join("src/a"), b"a").unwrap();
    let (runtime, port) = common::start_server(root.path(), 0);
    let url = format!("ferry://127.0.0.1:{port}/src");
    let local = tempfile::tempdir().unwrap();
    let copy = local.path().join("copy");
    let mut child = ferry_running(&["sync", "--watch", "--watch-interval", "0.2", &url, p(&copy)]);
    // What it says on stderr, read as it comes.
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let said = said.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                said.lock().unwrap().push_str(&line);
                said.lock().unwrap().push('\n');
            }
        })
    };
    wait_for("the first sync", || copy.join("a").exists());
    // The server goes away (every connection closed at once) and, once a sync has failed,
    // comes back on its port.
    drop(runtime);
    std::fs::write(root.path().join("src/b"), b"b").unwrap();
    wait_for("a failed sync", || {
        said.lock().unwrap().contains("trying again")
    });
    let (_runtime, _) = common::start_server(root.path(), port);
    wait_for("a file added while the server was down", || {
        std::fs::read(copy.join("b")).is_ok_and(|b| b == b"b")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
}
