//! Relay jobs between two remote places against real servers: a tree copied inside one server
//! by the server itself (no payload through a counting proxy), a tree streamed from one server
//! to another (bytes, mtimes and modes on the destination's disk), a move between servers,
//! conflict policies on both paths, and a directory copied into itself refused.
// Helpers outside `#[test]` functions panic on purpose too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::{JobLog, Proxy, TestServer, bytes, digest, run_job, tree};
use ferry::engine::{ConflictAnswer, ConflictPolicy, EngineOptions, JobSpec, LeftOutReason};

fn never(_: &str) -> ConflictAnswer {
    panic!("no conflict was expected")
}

/// A tree with a 3 MiB file, small files two levels down, an empty directory and a symlink.
fn make_source(root: &std::path::Path) {
    std::fs::create_dir_all(root.join("src/a/b")).unwrap();
    std::fs::create_dir_all(root.join("src/empty")).unwrap();
    std::fs::write(root.join("src/big.bin"), bytes(3 * 1024 * 1024 + 7, 1)).unwrap();
    std::fs::write(root.join("src/a/one.txt"), b"one").unwrap();
    std::fs::write(root.join("src/a/b/two.txt"), bytes(70_000, 2)).unwrap();
    std::fs::write(root.join("src/a/b/zero"), b"").unwrap();
    std::fs::set_permissions(
        root.join("src/a/one.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::fs::File::options()
        .write(true)
        .open(root.join("src/a/b/two.txt"))
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_500_000_000))
        .unwrap();
    std::os::unix::fs::symlink("a/one.txt", root.join("src/link")).unwrap();
}

fn relay(
    from: &ferry::engine::Endpoint,
    to: &ferry::engine::Endpoint,
    policy: ConflictPolicy,
) -> JobSpec {
    JobSpec::Relay {
        from: Box::new(from.clone()),
        to: Box::new(to.clone()),
        items: vec![("src".into(), "dst".into())],
        policy,
        remove_source: false,
    }
}

/// The copy holds exactly the source's files and directories, with their mtimes and modes.
fn assert_same_tree(src: &std::path::Path, dst: &std::path::Path, log: &JobLog) {
    assert_eq!(tree(src), tree(dst), "{log:?}");
    for rel in ["big.bin", "a/one.txt", "a/b/two.txt"] {
        let (a, b) = (
            std::fs::metadata(src.join(rel)).unwrap(),
            std::fs::metadata(dst.join(rel)).unwrap(),
        );
        assert_eq!(a.mtime(), b.mtime(), "{rel}");
        assert_eq!(a.mode() & 0o777, b.mode() & 0o777, "{rel}");
    }
    assert!(!dst.join("link").exists(), "a symlink is left out");
    assert_eq!(log.summary().files, 4, "{log:?}");
    assert_eq!(log.summary().failed, 0, "{log:?}");
    assert_eq!(log.left_out.len(), 1, "{log:?}");
    assert_eq!(log.left_out[0].1, LeftOutReason::Symlink);
    let big = std::fs::read(dst.join("big.bin")).unwrap();
    assert!(
        log.done
            .iter()
            .any(|(path, _, d)| path == "dst/big.bin" && *d == digest(&big)),
        "{:?}",
        log.done
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_copied_inside_one_server_moves_no_payload_through_the_client() {
    let server = TestServer::start();
    make_source(server.root.path());
    let proxy = Proxy::start(server.addr, None).await;
    let log = run_job(
        proxy.endpoint(),
        EngineOptions::default(),
        relay(&proxy.endpoint(), &proxy.endpoint(), ConflictPolicy::Fail),
        never,
    )
    .await;
    assert_same_tree(&server.path("src"), &server.path("dst"), &log);
    let (up, down) = proxy.total();
    // Requests, listings and replies only: the tree holds over 3 MiB.
    assert!(up + down < 64 * 1024, "{up} bytes up, {down} down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_streams_from_one_server_to_another_verified() {
    let (a, b) = (TestServer::start(), TestServer::start());
    make_source(a.root.path());
    let log = run_job(
        a.endpoint(),
        EngineOptions::default(),
        relay(&a.endpoint(), &b.endpoint(), ConflictPolicy::Fail),
        never,
    )
    .await;
    assert_same_tree(&a.path("src"), &b.path("dst"), &log);
    assert!(log.summary().bytes >= 3 * 1024 * 1024, "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_between_servers_removes_the_sources_it_copied() {
    let (a, b) = (TestServer::start(), TestServer::start());
    make_source(a.root.path());
    let before = tree(&a.path("src"));
    let log = run_job(
        a.endpoint(),
        EngineOptions::default(),
        JobSpec::Relay {
            from: Box::new(a.endpoint()),
            to: Box::new(b.endpoint()),
            items: vec![("src".into(), "dst".into())],
            policy: ConflictPolicy::Fail,
            remove_source: true,
        },
        never,
    )
    .await;
    assert_eq!(log.summary().files, 4, "{log:?}");
    assert_eq!(tree(&b.path("dst")), before);
    // Only the link (left out, so never copied) keeps its directory.
    assert!(!a.path("src/big.bin").exists());
    assert!(!a.path("src/a").exists());
    assert!(
        std::fs::symlink_metadata(a.path("src/link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taken_names_follow_the_policy_on_one_server_and_across_two() {
    let (a, b) = (TestServer::start(), TestServer::start());
    for (dest_root, to_server) in [(a.root.path(), &a), (b.root.path(), &b)] {
        std::fs::write(a.path("f.txt"), b"new").unwrap();
        std::fs::write(dest_root.join("g.txt"), b"old").unwrap();
        let item = |policy| JobSpec::Relay {
            from: Box::new(a.endpoint()),
            to: Box::new(to_server.endpoint()),
            items: vec![("f.txt".into(), "g.txt".into())],
            policy,
            remove_source: false,
        };
        let log = run_job(
            a.endpoint(),
            EngineOptions::default(),
            item(ConflictPolicy::Fail),
            never,
        )
        .await;
        assert_eq!(log.summary().failed, 1, "{log:?}");
        assert!(log.failed[0].1.starts_with("already_exists"), "{log:?}");
        let log = run_job(
            a.endpoint(),
            EngineOptions::default(),
            item(ConflictPolicy::Skip),
            never,
        )
        .await;
        assert_eq!(log.summary().skipped, 1, "{log:?}");
        assert_eq!(std::fs::read(dest_root.join("g.txt")).unwrap(), b"old");
        let log = run_job(
            a.endpoint(),
            EngineOptions::default(),
            item(ConflictPolicy::Rename),
            never,
        )
        .await;
        assert_eq!(log.summary().files, 1, "{log:?}");
        assert_eq!(std::fs::read(dest_root.join("g (1).txt")).unwrap(), b"new");
        let log = run_job(
            a.endpoint(),
            EngineOptions::default(),
            item(ConflictPolicy::Ask),
            |_| ConflictAnswer {
                choice: ConflictPolicy::Overwrite,
                apply_to_all: false,
            },
        )
        .await;
        assert_eq!(log.conflicts, ["g.txt"], "{log:?}");
        assert_eq!(std::fs::read(dest_root.join("g.txt")).unwrap(), b"new");
        std::fs::remove_file(dest_root.join("g (1).txt")).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_copied_into_itself_on_one_server_is_refused() {
    let server = TestServer::start();
    make_source(server.root.path());
    let log = run_job(
        server.endpoint(),
        EngineOptions::default(),
        JobSpec::Relay {
            from: Box::new(server.endpoint()),
            to: Box::new(server.endpoint()),
            items: vec![("src".into(), "src/a/inner".into())],
            policy: ConflictPolicy::Fail,
            remove_source: false,
        },
        never,
    )
    .await;
    assert_eq!(log.summary().failed, 1, "{log:?}");
    assert!(log.failed[0].1.contains("into itself"), "{log:?}");
    assert!(!server.path("src/a/inner").exists());
}

#[test]
fn ferry_copy_copies_a_tree_between_two_servers_and_inside_one() {
    let (a, b) = (TestServer::start(), TestServer::start());
    make_source(a.root.path());
    std::fs::create_dir(b.path("into")).unwrap();
    // An existing directory receives the source under its own name.
    common::ok(common::ferry(&[
        "copy",
        "-r",
        &a.url("src"),
        &b.url("into"),
    ]));
    assert_eq!(tree(&a.path("src")), tree(&b.path("into/src")));
    // Anything else is the new name.
    common::ok(common::ferry(&[
        "copy",
        "-r",
        &a.url("src"),
        &a.url("again"),
    ]));
    assert_eq!(tree(&a.path("src")), tree(&a.path("again")));
    common::ok(common::ferry(&[
        "copy",
        &a.url("src/big.bin"),
        &b.url("big"),
    ]));
    assert_eq!(
        std::fs::read(b.path("big")).unwrap(),
        std::fs::read(a.path("src/big.bin")).unwrap()
    );
    let refused = common::ferry(&["copy", &a.url("src"), &b.url("x")]);
    assert!(!refused.status.success());
    assert!(
        common::text(&refused.stderr).contains("is_a_directory"),
        "{}",
        common::text(&refused.stderr)
    );
    assert!(!b.path("x").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_keeps_an_identical_destination_and_replaces_a_different_one() {
    let (a, b) = (TestServer::start(), TestServer::start());
    std::fs::write(a.path("same.txt"), b"same bytes").unwrap();
    std::fs::write(a.path("new.txt"), b"the source").unwrap();
    for (dest, to) in [(&a, "copy-"), (&b, "")] {
        let same = format!("{to}same.txt");
        let new = format!("{to}new.txt");
        std::fs::write(dest.path(&same), b"same bytes").unwrap();
        std::fs::write(dest.path(&new), b"not the source").unwrap();
        let log = run_job(
            a.endpoint(),
            EngineOptions::default(),
            JobSpec::Relay {
                from: Box::new(a.endpoint()),
                to: Box::new(dest.endpoint()),
                items: vec![
                    ("same.txt".into(), same.clone()),
                    ("new.txt".into(), new.clone()),
                ],
                policy: ConflictPolicy::Resume,
                remove_source: false,
            },
            never,
        )
        .await;
        assert_eq!(
            (log.summary().skipped, log.summary().files),
            (1, 1),
            "{log:?}"
        );
        assert_eq!(std::fs::read(dest.path(&new)).unwrap(), b"the source");
        assert_eq!(std::fs::read(dest.path(&same)).unwrap(), b"same bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_mid_relay_leave_every_file_accounted_for_and_none_half_placed() {
    let (a, b) = (TestServer::start(), TestServer::start());
    make_source(a.root.path());
    // Every connection to the destination breaks after 1 MiB: the 3 MiB file never makes it.
    let cutting = Proxy::start_cutting(b.addr, 1024 * 1024).await;
    let log = run_job(
        a.endpoint(),
        EngineOptions::default(),
        relay(
            &a.endpoint(),
            &cutting.endpoint(),
            ConflictPolicy::Overwrite,
        ),
        never,
    )
    .await;
    let (files, failed) = match &log.outcome {
        Some(Ok(summary)) => (summary.files, summary.failed),
        other => panic!("{other:?}"),
    };
    assert_eq!(files + failed, 4, "{log:?}");
    assert!(failed >= 1, "{log:?}");
    assert!(!b.path("dst/big.bin").exists(), "a cut file was placed");
    for (path, _, digest) in &log.done {
        let on_disk = std::fs::read(b.path(path)).unwrap();
        assert_eq!(*digest, common::digest(&on_disk), "{path}");
    }
}
