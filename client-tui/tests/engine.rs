//! The engine against a real server in-process: sessions, transfers both ways at every size
//! class, resume, corruption, cancel, conflict policies, moves and many clients at once.
// Helpers outside `#[test]` functions panic on purpose too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{JobLog, Proxy, TestServer, bytes, digest, run_job, tree};
use ferry::engine::{
    ConflictAnswer, ConflictPolicy, Endpoint, Engine, EngineOptions, JobSpec, Session,
    TransferEvent,
};
use ferry_protocol::Kind;

const MIB: usize = 1024 * 1024;

fn never(_: &str) -> ConflictAnswer {
    panic!("no conflict was expected")
}

/// One job with the default options, in which no conflict is expected.
async fn run_plain(endpoint: Endpoint, spec: JobSpec) -> JobLog {
    run_with(endpoint, EngineOptions::default(), spec).await
}

/// One job with `options`, in which no conflict is expected.
async fn run_with(endpoint: Endpoint, options: EngineOptions, spec: JobSpec) -> JobLog {
    run_job(endpoint, options, spec, never).await
}

/// Every one of the job's `files` arrived and none failed.
fn assert_delivered(log: &JobLog, files: u64) {
    assert_eq!(
        (log.summary().files, log.summary().failed),
        (files, 0),
        "{log:?}"
    );
}

/// The job failed exactly one file, with an error starting `error`.
fn assert_failed_once(log: &JobLog, error: &str) {
    assert_eq!(log.summary().failed, 1);
    assert!(log.failed[0].1.starts_with(error), "{:?}", log.failed);
}

fn upload(local: PathBuf, remote: &str, policy: ConflictPolicy) -> JobSpec {
    JobSpec::Upload {
        items: vec![(local, remote.to_owned())],
        policy,
        remove_source: false,
    }
}

fn download(remote: &str, local: PathBuf, policy: ConflictPolicy) -> JobSpec {
    JobSpec::Download {
        items: vec![(remote.to_owned(), local)],
        policy,
        remove_source: false,
    }
}

fn src_again(local: &tempfile::TempDir, i: usize) -> PathBuf {
    local.path().join(format!("up{i}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_every_size_class_cross_both_ways_byte_for_byte() {
    let server = TestServer::start_shm();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let sizes = [0usize, 1, MIB + 1, 64 * MIB];
    for (i, &size) in sizes.iter().enumerate() {
        let data = bytes(size, i as u64);
        let src = local.path().join(format!("up{i}"));
        std::fs::write(&src, &data).unwrap();

        let log = run_plain(
            server.endpoint(),
            upload(src, &format!("f{i}"), ConflictPolicy::Fail),
        )
        .await;
        let summary = log.summary();
        assert_eq!((summary.files, summary.failed), (1, 0), "{size}: {log:?}");
        assert_eq!(summary.bytes, size as u64);
        assert_eq!(
            log.done,
            vec![(format!("f{i}"), size as u64, digest(&data))]
        );
        assert_eq!(
            std::fs::read(server.path(&format!("f{i}"))).unwrap(),
            data,
            "up {size}"
        );

        let dest = local.path().join(format!("down{i}"));
        let log = run_plain(
            server.endpoint(),
            download(&format!("f{i}"), dest.clone(), ConflictPolicy::Fail),
        )
        .await;
        assert_eq!(log.summary().files, 1, "{log:?}");
        assert_eq!(log.done[0].2, digest(&data));
        assert_eq!(std::fs::read(&dest).unwrap(), data, "down {size}");
        assert!(log.progress_events > 0);
        // Both copies carry the source's modification time (to the second, as the wire has it).
        let mtime = |p: &std::path::Path| {
            let t = std::fs::metadata(p).unwrap().modified().unwrap();
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        };
        assert_eq!(
            mtime(&server.path(&format!("f{i}"))),
            mtime(&src_again(&local, i))
        );
        assert_eq!(mtime(&dest), mtime(&src_again(&local, i)));
        // No hidden partial is left behind once the file is in place.
        assert!(!local.path().join(format!(".ferry-part.down{i}")).exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_browse_and_change_the_tree() {
    let server = TestServer::start();
    std::fs::create_dir(server.path("docs")).unwrap();
    std::fs::write(server.path("docs/a.txt"), b"hello").unwrap();
    let mut session = Session::connect(&server.endpoint()).await.unwrap();
    assert!(!session.read_only());

    let entry = session.stat("docs/a.txt").await.unwrap();
    assert_eq!((entry.kind, entry.size), (Kind::File, 5));
    session.mkdir("docs/new/deeper").await.unwrap();
    assert!(server.path("docs/new/deeper").is_dir());
    let mut names: Vec<_> = session
        .list("docs")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.sort();
    assert_eq!(names, ["a.txt", "new"]);

    session
        .rename("docs/a.txt", "docs/new/b.txt")
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(server.path("docs/new/b.txt")).unwrap(),
        b"hello"
    );
    let summary = session.summary("docs").await.unwrap();
    assert_eq!((summary.files, summary.bytes), (1, 5));

    let err = session.stat("docs/a.txt").await.unwrap_err();
    assert_eq!(err.code(), "not_found");
    assert!(
        err.to_string().starts_with("not_found: docs/a.txt: "),
        "{err}"
    );

    let err = session.remove("docs", false).await.unwrap_err();
    assert_eq!(err.code(), "not_empty");
    session.remove("docs", true).await.unwrap();
    assert!(!server.path("docs").exists());

    // The session is still in step after errors and streamed listings.
    for i in 0..300 {
        std::fs::write(server.path(&format!("many {i}")), b"").unwrap();
    }
    let mut stream = session.list_stream("").await.unwrap();
    let mut count = 0;
    while let Some(batch) = stream.next_batch().await.unwrap() {
        count += batch.len();
    }
    assert_eq!(count, 300);
    drop(stream);
    assert_eq!(session.walk("").await.unwrap().len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_refused_and_a_good_one_accepted() {
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), |c| {
        c.token = Some("s3cret".into())
    });
    let mut endpoint = server.endpoint();
    endpoint.token = None;
    assert_eq!(
        Session::connect(&endpoint).await.unwrap_err().code(),
        "unauthorized"
    );
    endpoint.token = Some("wrong".into());
    assert_eq!(
        Session::connect(&endpoint).await.unwrap_err().code(),
        "unauthorized"
    );
    endpoint.token = Some("s3cret".into());
    Session::connect(&endpoint).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trees_go_up_and_come_back_with_odd_names_and_skipped_links() {
    let server = TestServer::start_shm();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let src = local.path().join("src");
    common::make_tree(&src, 300);
    let odd = src.join("names with spaces");
    std::fs::create_dir_all(&odd).unwrap();
    for name in [
        "a b.txt",
        "ünïcödé 日本.txt",
        "it's \"quoted\".txt",
        "#hash%20?.txt",
    ] {
        std::fs::write(odd.join(name), name.as_bytes()).unwrap();
    }
    std::os::unix::fs::symlink("/etc/passwd", src.join("escape")).unwrap();

    let log = run_plain(
        server.endpoint(),
        upload(src.clone(), "dst", ConflictPolicy::Fail),
    )
    .await;
    let summary = log.summary();
    assert_eq!(
        (summary.files, summary.skipped, summary.failed),
        (304, 1, 0)
    );
    assert_eq!(log.planned.map(|p| p.0), Some(304));
    let expected = tree(&src);
    assert_eq!(tree(&server.path("dst")), expected);

    // A link on the server is skipped too, never followed.
    std::os::unix::fs::symlink("/etc", server.path("dst/etc-link")).unwrap();
    let back = local.path().join("back");
    let log = run_plain(
        server.endpoint(),
        download("dst", back.clone(), ConflictPolicy::Fail),
    )
    .await;
    assert_eq!(log.summary().files, 304);
    assert_eq!(log.summary().skipped, 1);
    assert!(!back.join("etc-link").exists());
    assert_eq!(tree(&back), expected);
    assert!(!back.join("escape").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_download_resumes_and_moves_only_the_rest() {
    let server = TestServer::start_shm();
    let data = bytes(8 * MIB, 42);
    std::fs::write(server.path("big"), &data).unwrap();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    // What an interrupted run leaves: the first 5 MiB in the hidden partial.
    std::fs::write(local.path().join(".ferry-part.big"), &data[..5 * MIB]).unwrap();

    let proxy = Proxy::start(server.addr, None).await;
    let dest = local.path().join("big");
    let log = run_plain(
        proxy.endpoint(),
        download("big", dest.clone(), ConflictPolicy::Fail),
    )
    .await;
    assert_eq!(log.summary().files, 1);
    assert_eq!(log.summary().bytes, 3 * MIB as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(log.done[0].2, digest(&data));
    let (_, down) = proxy.total();
    assert!(
        down < 4 * MIB as u64,
        "{down} bytes came down for 3 MiB missing"
    );
    assert!(down >= 3 * MIB as u64);
    assert!(!local.path().join(".ferry-part.big").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_upload_resumes_after_checking_the_servers_prefix() {
    let server = TestServer::start_shm();
    let data = bytes(8 * MIB, 43);
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let src = local.path().join("big");
    std::fs::write(&src, &data).unwrap();
    std::fs::write(server.path(".ferry-part.big"), &data[..6 * MIB]).unwrap();

    let proxy = Proxy::start(server.addr, None).await;
    let log = run_plain(proxy.endpoint(), upload(src, "big", ConflictPolicy::Fail)).await;
    assert_eq!(log.summary().files, 1, "{log:?}");
    assert_eq!(log.summary().bytes, 2 * MIB as u64);
    assert_eq!(std::fs::read(server.path("big")).unwrap(), data);
    let (up, _) = proxy.total();
    assert!(up < 3 * MIB as u64, "{up} bytes went up for 2 MiB missing");
    assert!(!server.path(".ferry-part.big").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_partials_are_detected_and_the_file_restarted() {
    let server = TestServer::start_shm();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let data = bytes(4 * MIB, 44);
    std::fs::write(server.path("down"), &data).unwrap();
    // A local partial of the right length but wrong bytes: the whole-file digest catches it.
    let mut bad = data[..2 * MIB].to_vec();
    bad[12345] ^= 0xff;
    std::fs::write(local.path().join(".ferry-part.down"), &bad).unwrap();
    let log = run_plain(
        server.endpoint(),
        download("down", local.path().join("down"), ConflictPolicy::Fail),
    )
    .await;
    assert_eq!(log.summary().files, 1, "{log:?}");
    assert_eq!(std::fs::read(local.path().join("down")).unwrap(), data);

    // A partial longer than the file is not a prefix of it.
    std::fs::write(server.path("short"), b"abc").unwrap();
    std::fs::write(local.path().join(".ferry-part.short"), b"abcdef").unwrap();
    let log = run_plain(
        server.endpoint(),
        download("short", local.path().join("short"), ConflictPolicy::Fail),
    )
    .await;
    assert_eq!(log.summary().files, 1);
    assert_eq!(std::fs::read(local.path().join("short")).unwrap(), b"abc");

    // A link that took the partial's name is replaced, never written through.
    let victim = local.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, local.path().join(".ferry-part.short2")).unwrap();
    std::fs::write(server.path("short2"), b"xyz").unwrap();
    let log = run_plain(
        server.endpoint(),
        download("short2", local.path().join("short2"), ConflictPolicy::Fail),
    )
    .await;
    assert_eq!(log.summary().files, 1);
    assert_eq!(std::fs::read(local.path().join("short2")).unwrap(), b"xyz");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");

    // A server-side partial with wrong bytes: the `partial` digest differs, all is sent again.
    let src = local.path().join("up");
    std::fs::write(&src, &data).unwrap();
    std::fs::write(server.path(".ferry-part.up"), &bad).unwrap();
    let log = run_plain(server.endpoint(), upload(src, "up", ConflictPolicy::Fail)).await;
    assert_eq!(log.summary().files, 1, "{log:?}");
    assert_eq!(log.summary().bytes, data.len() as u64);
    assert_eq!(std::fs::read(server.path("up")).unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_leaves_only_a_hidden_partial_that_a_rerun_resumes() {
    let server = TestServer::start_shm();
    let data = bytes(16 * MIB, 45);
    std::fs::write(server.path("slow"), &data).unwrap();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let dest = local.path().join("slow");
    // About 6 MB/s, so the cancel lands in the middle.
    let proxy = Proxy::start(server.addr, Some(Duration::from_millis(10))).await;
    let (engine, mut events_rx) = Engine::new(proxy.endpoint());
    let job = engine.submit(download("slow", dest.clone(), ConflictPolicy::Fail));
    let mut cancelled_at = None;
    let outcome = loop {
        match events_rx.recv().await.unwrap() {
            TransferEvent::Progress(p) if p.bytes_done > MIB as u64 && cancelled_at.is_none() => {
                engine.cancel(job);
                cancelled_at = Some(p.bytes_done);
            }
            TransferEvent::Finished { outcome, .. } => break outcome,
            _ => {}
        }
    };
    assert_eq!(outcome.unwrap_err(), "cancelled");
    assert!(cancelled_at.is_some());
    assert!(
        !dest.exists(),
        "a cancelled download must not appear under its name"
    );
    // Writes already handed to the blocking pool still land; wait until the partial is still.
    let held = settled_len(
        &local.path().join(".ferry-part.slow"),
        Duration::from_millis(100),
        || {},
    )
    .await;
    assert!(held > 0 && held < data.len() as u64, "{held}");

    let log = run_plain(
        server.endpoint(),
        download("slow", dest.clone(), ConflictPolicy::Fail),
    )
    .await;
    assert_eq!(log.summary().bytes, data.len() as u64 - held);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
}

/// The length of `path` once it stops growing, checked every `every`; `during` runs at each
/// check, so a test can assert what must hold while the writes drain.
async fn settled_len(path: &std::path::Path, every: Duration, during: impl Fn()) -> u64 {
    let mut held = 0;
    loop {
        tokio::time::sleep(every).await;
        during();
        let now = std::fs::metadata(path).unwrap().len();
        if now == held {
            return held;
        }
        held = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_upload_leaves_no_remote_file() {
    let server = TestServer::start_shm();
    let data = bytes(16 * MIB, 46);
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let src = local.path().join("slow");
    std::fs::write(&src, &data).unwrap();
    let proxy = Proxy::start(server.addr, Some(Duration::from_millis(10))).await;
    let (engine, mut events_rx) = Engine::new(proxy.endpoint());
    let job = engine.submit(upload(src, "slow", ConflictPolicy::Fail));
    let outcome = loop {
        match events_rx.recv().await.unwrap() {
            TransferEvent::Progress(p) if p.bytes_done > 2 * MIB as u64 => engine.cancel(job),
            TransferEvent::Finished { outcome, .. } => break outcome,
            _ => {}
        }
    };
    assert_eq!(outcome.unwrap_err(), "cancelled");
    // The server takes in what the proxy still holds, then lets go; nothing may appear under
    // the final name meanwhile.
    let held = settled_len(
        &server.path(".ferry-part.slow"),
        Duration::from_millis(300),
        || assert!(!server.path("slow").exists()),
    )
    .await;
    assert!(held > 0 && held < data.len() as u64, "{held}");

    // Running the same upload again continues the server's partial after checking it.
    let log = run_plain(
        server.endpoint(),
        upload(local.path().join("slow"), "slow", ConflictPolicy::Fail),
    )
    .await;
    assert_delivered(&log, 1);
    assert_eq!(log.summary().bytes, data.len() as u64 - held);
    assert_eq!(std::fs::read(server.path("slow")).unwrap(), data);
}

/// Makes a local file and a remote file with the same name and different bytes.
fn conflicting(server: &TestServer, dir: &std::path::Path, name: &str) -> (Vec<u8>, Vec<u8>) {
    let ours = format!("ours {name}").into_bytes();
    let theirs = format!("theirs {name}, longer").into_bytes();
    std::fs::write(dir.join(name), &ours).unwrap();
    std::fs::write(server.path(name), &theirs).unwrap();
    (ours, theirs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_policies_for_uploads() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let (ours, theirs) = conflicting(&server, local.path(), "a.txt");
    let src = local.path().join("a.txt");

    let log = run_plain(
        server.endpoint(),
        upload(src.clone(), "a.txt", ConflictPolicy::Fail),
    )
    .await;
    assert_failed_once(&log, "already_exists: a.txt");
    assert_eq!(std::fs::read(server.path("a.txt")).unwrap(), theirs);

    let log = run_plain(
        server.endpoint(),
        upload(src.clone(), "a.txt", ConflictPolicy::Skip),
    )
    .await;
    assert_eq!((log.summary().skipped, log.summary().files), (1, 0));
    assert_eq!(std::fs::read(server.path("a.txt")).unwrap(), theirs);

    let log = run_plain(
        server.endpoint(),
        upload(src.clone(), "a.txt", ConflictPolicy::Rename),
    )
    .await;
    assert_eq!(log.done[0].0, "a (1).txt");
    assert_eq!(std::fs::read(server.path("a (1).txt")).unwrap(), ours);
    assert_eq!(std::fs::read(server.path("a.txt")).unwrap(), theirs);

    // Resume of a different file leaves it and says why; of the same file moves nothing.
    let log = run_plain(
        server.endpoint(),
        upload(src.clone(), "a.txt", ConflictPolicy::Resume),
    )
    .await;
    assert_failed_once(&log, "resume_mismatch: a.txt");
    assert_eq!(std::fs::read(server.path("a.txt")).unwrap(), theirs);
    std::fs::write(server.path("a.txt"), &ours).unwrap();
    let log = run_plain(
        server.endpoint(),
        upload(src.clone(), "a.txt", ConflictPolicy::Resume),
    )
    .await;
    assert_eq!((log.summary().files, log.summary().bytes), (1, 0));

    std::fs::write(server.path("a.txt"), &theirs).unwrap();
    let log = run_plain(
        server.endpoint(),
        upload(src.clone(), "a.txt", ConflictPolicy::Overwrite),
    )
    .await;
    assert_eq!(log.summary().files, 1);
    assert_eq!(std::fs::read(server.path("a.txt")).unwrap(), ours);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_policies_for_downloads() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let (ours, theirs) = conflicting(&server, local.path(), "a.txt");
    let dest = local.path().join("a.txt");

    let log = run_plain(
        server.endpoint(),
        download("a.txt", dest.clone(), ConflictPolicy::Fail),
    )
    .await;
    assert_failed_once(&log, "already_exists: ");
    assert_eq!(std::fs::read(&dest).unwrap(), ours);

    let log = run_plain(
        server.endpoint(),
        download("a.txt", dest.clone(), ConflictPolicy::Skip),
    )
    .await;
    assert_eq!(log.summary().skipped, 1);
    assert_eq!(std::fs::read(&dest).unwrap(), ours);

    let log = run_plain(
        server.endpoint(),
        download("a.txt", dest.clone(), ConflictPolicy::Rename),
    )
    .await;
    assert_eq!(log.summary().files, 1);
    assert_eq!(
        std::fs::read(local.path().join("a (1).txt")).unwrap(),
        theirs
    );
    assert_eq!(std::fs::read(&dest).unwrap(), ours);

    // "ours a.txt" is not a prefix of "theirs ...": resume finds out and puts it back.
    let log = run_plain(
        server.endpoint(),
        download("a.txt", dest.clone(), ConflictPolicy::Resume),
    )
    .await;
    assert_eq!(log.summary().failed, 1, "{log:?}");
    assert!(log.failed[0].1.starts_with("resume_mismatch: "), "{log:?}");
    assert_eq!(std::fs::read(&dest).unwrap(), ours);
    // A true prefix is continued.
    std::fs::write(&dest, &theirs[..6]).unwrap();
    let log = run_plain(
        server.endpoint(),
        download("a.txt", dest.clone(), ConflictPolicy::Resume),
    )
    .await;
    assert_eq!(log.summary().bytes, theirs.len() as u64 - 6);
    assert_eq!(std::fs::read(&dest).unwrap(), theirs);

    std::fs::write(&dest, &ours).unwrap();
    let log = run_plain(
        server.endpoint(),
        download("a.txt", dest.clone(), ConflictPolicy::Overwrite),
    )
    .await;
    assert_eq!(log.summary().files, 1);
    assert_eq!(std::fs::read(&dest).unwrap(), theirs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_waits_for_the_answer_and_apply_to_all_asks_once() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::create_dir(server.path("src")).unwrap();
    for name in ["a", "b", "c"] {
        std::fs::write(src.join(name), b"new").unwrap();
        std::fs::write(server.path(&format!("src/{name}")), b"old").unwrap();
    }
    std::fs::write(src.join("fresh"), b"new").unwrap();
    let log = run_job(
        server.endpoint(),
        EngineOptions {
            workers: 2,
            ..EngineOptions::default()
        },
        upload(src.clone(), "src", ConflictPolicy::Ask),
        |_| ConflictAnswer {
            choice: ConflictPolicy::Overwrite,
            apply_to_all: true,
        },
    )
    .await;
    assert_eq!(log.conflicts.len(), 1, "{:?}", log.conflicts);
    assert_eq!(log.summary().files, 4);
    for name in ["a", "b", "c", "fresh"] {
        assert_eq!(
            std::fs::read(server.path(&format!("src/{name}"))).unwrap(),
            b"new"
        );
    }

    // Without apply-to-all, every conflict is asked; a skip answer leaves them alone.
    for name in ["a", "b", "c"] {
        std::fs::write(server.path(&format!("src/{name}")), b"old").unwrap();
    }
    let log = run_job(
        server.endpoint(),
        EngineOptions::default(),
        upload(src, "src", ConflictPolicy::Ask),
        |_| ConflictAnswer {
            choice: ConflictPolicy::Skip,
            apply_to_all: false,
        },
    )
    .await;
    assert_eq!(log.conflicts.len(), 4, "{:?}", log.conflicts);
    assert_eq!(log.summary().skipped, 4);
    assert_eq!(std::fs::read(server.path("src/a")).unwrap(), b"old");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_remove_the_source_only_after_the_copy_is_verified() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("tree");
    common::make_tree(&src, 30);
    let expected = tree(&src);
    let log = run_plain(
        server.endpoint(),
        JobSpec::Upload {
            items: vec![(src.clone(), "tree".into())],
            policy: ConflictPolicy::Fail,
            remove_source: true,
        },
    )
    .await;
    assert_eq!(log.summary().files, 30);
    assert!(!src.exists(), "the moved tree is still there");
    assert_eq!(tree(&server.path("tree")), expected);

    let back = local.path().join("back");
    let log = run_plain(
        server.endpoint(),
        JobSpec::Download {
            items: vec![("tree".into(), back.clone())],
            policy: ConflictPolicy::Fail,
            remove_source: true,
        },
    )
    .await;
    assert_eq!(log.summary().files, 30);
    assert_eq!(tree(&back), expected);
    assert!(!server.path("tree").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_at_once_all_arrive_intact() {
    let server = TestServer::start_shm();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let mut jobs = Vec::new();
    for i in 0..50u64 {
        let data = bytes(64 * 1024 + i as usize * 4099, 1000 + i);
        let src = local.path().join(format!("c{i}"));
        std::fs::write(&src, &data).unwrap();
        let endpoint = server.endpoint();
        let dest = local.path().join(format!("back{i}"));
        jobs.push(tokio::spawn(async move {
            let options = EngineOptions {
                workers: 2,
                ..EngineOptions::default()
            };
            let up = run_with(
                endpoint.clone(),
                options,
                upload(src, &format!("c{i}"), ConflictPolicy::Fail),
            )
            .await;
            assert_eq!(up.summary().files, 1, "client {i}: {up:?}");
            let down = run_with(
                endpoint,
                options,
                download(&format!("c{i}"), dest.clone(), ConflictPolicy::Fail),
            )
            .await;
            assert_eq!(down.summary().files, 1, "client {i}: {down:?}");
            (data, std::fs::read(dest).unwrap())
        }));
    }
    for (i, job) in jobs.into_iter().enumerate() {
        let (sent, got) = job.await.unwrap();
        assert_eq!(sent, got, "client {i}");
        assert_eq!(std::fs::read(server.path(&format!("c{i}"))).unwrap(), sent);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_jobs_share_one_engine() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let (engine, mut events_rx) = Engine::new(server.endpoint());
    let mut ids = Vec::new();
    for i in 0..5 {
        let src = local.path().join(format!("s{i}"));
        std::fs::write(&src, bytes(10_000 * i, i as u64)).unwrap();
        ids.push(engine.submit(upload(src, &format!("s{i}"), ConflictPolicy::Fail)));
    }
    let mut finished = Vec::new();
    while finished.len() < ids.len() {
        if let TransferEvent::Finished { job, outcome } = events_rx.recv().await.unwrap() {
            assert_eq!(outcome.unwrap().files, 1);
            finished.push(job);
        }
    }
    finished.sort();
    assert_eq!(finished, ids);
    for i in 0..5 {
        assert_eq!(
            std::fs::read(server.path(&format!("s{i}"))).unwrap(),
            bytes(10_000 * i, i as u64)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_at_its_connection_limit_slows_clients_down_instead_of_failing_them() {
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), |c| c.max_connections = 3);
    let local = tempfile::tempdir().unwrap();
    let mut jobs = Vec::new();
    for i in 0..12u64 {
        let data = bytes(200_000, 500 + i);
        let src = local.path().join(format!("b{i}"));
        std::fs::write(&src, &data).unwrap();
        let endpoint = server.endpoint();
        jobs.push(tokio::spawn(async move {
            let options = EngineOptions {
                workers: 2,
                ..EngineOptions::default()
            };
            let log = run_with(
                endpoint,
                options,
                upload(src, &format!("b{i}"), ConflictPolicy::Fail),
            )
            .await;
            (data, log)
        }));
    }
    for (i, job) in jobs.into_iter().enumerate() {
        let (data, log) = job.await.unwrap();
        assert_eq!(log.summary().files, 1, "client {i}: {log:?}");
        assert_eq!(std::fs::read(server.path(&format!("b{i}"))).unwrap(), data);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_are_pipelined_instead_of_paying_a_round_trip_each() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("many");
    std::fs::create_dir(&src).unwrap();
    for i in 0..400 {
        std::fs::write(src.join(format!("f{i:03}")), bytes(100, i)).unwrap();
    }
    // 10 ms per round trip at least: one at a time, 400 files would take over 4 s each way.
    let proxy = Proxy::start(server.addr, Some(Duration::from_millis(5))).await;
    let one = EngineOptions {
        workers: 1,
        ..EngineOptions::default()
    };
    let started = std::time::Instant::now();
    let log = run_with(
        proxy.endpoint(),
        one,
        upload(src.clone(), "many", ConflictPolicy::Fail),
    )
    .await;
    let up = started.elapsed();
    assert_eq!(log.summary().files, 400);

    let started = std::time::Instant::now();
    let back = local.path().join("back");
    let log = run_with(
        proxy.endpoint(),
        one,
        download("many", back.clone(), ConflictPolicy::Fail),
    )
    .await;
    let down = started.elapsed();
    assert_eq!(log.summary().files, 400);
    assert_eq!(tree(&back), tree(&src));
    assert!(up < Duration::from_secs(2), "upload took {up:?}");
    assert!(down < Duration::from_secs(2), "download took {down:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_another_upload_holds_is_retried_once_it_is_free() {
    let server = TestServer::start_shm();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let (first, second) = (bytes(4 * MIB, 60), bytes(3 * MIB, 61));
    std::fs::write(local.path().join("first"), &first).unwrap();
    std::fs::write(local.path().join("second"), &second).unwrap();
    let slow = Proxy::start(server.addr, Some(Duration::from_millis(10))).await;

    let (engine, events_rx) = Engine::new(slow.endpoint());
    let job = engine.submit(upload(
        local.path().join("first"),
        "same",
        ConflictPolicy::Overwrite,
    ));
    // Wait until the slow upload has the path.
    while !server.path(".ferry-part.same").exists() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let log = run_plain(
        server.endpoint(),
        upload(
            local.path().join("second"),
            "same",
            ConflictPolicy::Overwrite,
        ),
    )
    .await;
    assert_delivered(&log, 1);
    let first_log = common::follow(job, events_rx, never).await;
    assert_eq!(first_log.summary().files, 1);
    // The second upload waited for the first, so its bytes are the ones that stay.
    assert_eq!(std::fs::read(server.path("same")).unwrap(), second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_outlives_the_servers_idle_timeout_and_abandoned_listings() {
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), |c| {
        c.idle_timeout = Duration::from_millis(300)
    });
    for i in 0..3000 {
        std::fs::write(
            server.path(&format!("a rather long file name number {i:05}")),
            b"",
        )
        .unwrap();
    }
    let mut session = Session::connect(&server.endpoint()).await.unwrap();
    assert_eq!(
        session
            .stat("a rather long file name number 00001")
            .await
            .unwrap()
            .size,
        0
    );
    // The server hangs up on the idle session; the next request still works.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(session.list("").await.unwrap().len(), 3000);

    // A listing given up after its first batch leaves the rest on the wire; the session
    // starts over and answers the next request correctly.
    let mut stream = session.list_stream("").await.unwrap();
    let first = stream.next_batch().await.unwrap().unwrap();
    assert!(!first.is_empty() && first.len() < 3000);
    drop(stream);
    let entry = session
        .stat("a rather long file name number 02999")
        .await
        .unwrap();
    assert_eq!(entry.name, "a rather long file name number 02999");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_that_keeps_breaking_still_delivers_by_resuming() {
    let server = TestServer::start_shm();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let data = bytes(10 * MIB, 70);
    std::fs::write(server.path("far"), &data).unwrap();
    let src = local.path().join("near");
    std::fs::write(&src, &data).unwrap();
    // Every connection dies after 3 MiB: no single one can carry the file, so only resuming
    // gets it across.
    let flaky = Proxy::start_cutting(server.addr, 3 * MIB as u64).await;
    let one = EngineOptions {
        workers: 1,
        ..EngineOptions::default()
    };

    let dest = local.path().join("far");
    let log = run_with(
        flaky.endpoint(),
        one,
        download("far", dest.clone(), ConflictPolicy::Fail),
    )
    .await;
    assert_delivered(&log, 1);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    // Each new connection continued where the last one broke.
    assert!(log.summary().bytes < 12 * MIB as u64, "{log:?}");

    let log = run_with(
        flaky.endpoint(),
        one,
        upload(src, "near", ConflictPolicy::Fail),
    )
    .await;
    assert_delivered(&log, 1);
    // No connection carries 10 MiB, so arriving at all proves each one resumed the last.
    // (Bytes counted up here include what sat in socket buffers when a link broke.)
    assert_eq!(std::fs::read(server.path("near")).unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_small_files_survive_a_breaking_link_none_lost_none_doubled() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("tree");
    common::make_tree(&src, 300);
    let expected = tree(&src);
    // About 450 KB in all; each connection dies after 128 KiB, with dozens of files in flight.
    let flaky = Proxy::start_cutting(server.addr, 128 * 1024).await;
    let options = EngineOptions {
        workers: 2,
        ..EngineOptions::default()
    };

    let log = run_with(
        flaky.endpoint(),
        options,
        upload(src.clone(), "tree", ConflictPolicy::Fail),
    )
    .await;
    assert_delivered(&log, 300);
    let mut done: Vec<&String> = log.done.iter().map(|d| &d.0).collect();
    done.sort();
    done.dedup();
    assert_eq!(done.len(), 300, "a file reported twice or not at all");
    assert_eq!(tree(&server.path("tree")), expected);

    let back = local.path().join("back");
    let log = run_with(
        flaky.endpoint(),
        options,
        download("tree", back.clone(), ConflictPolicy::Fail),
    )
    .await;
    assert_delivered(&log, 300);
    assert_eq!(log.done.len(), 300);
    assert_eq!(tree(&back), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_on_download_names_the_local_file_and_rename_keeps_both() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir(server.path("d")).unwrap();
    let dest = local.path().join("d");
    std::fs::create_dir(&dest).unwrap();
    for name in ["x.txt", "y.txt"] {
        std::fs::write(server.path(&format!("d/{name}")), b"remote").unwrap();
        std::fs::write(dest.join(name), b"local").unwrap();
    }
    let log = run_job(
        server.endpoint(),
        EngineOptions::default(),
        download("d", dest.clone(), ConflictPolicy::Ask),
        |_| ConflictAnswer {
            choice: ConflictPolicy::Rename,
            apply_to_all: true,
        },
    )
    .await;
    assert_eq!(log.conflicts.len(), 1, "{:?}", log.conflicts);
    assert!(
        log.conflicts[0].starts_with(dest.to_str().unwrap()),
        "{:?}",
        log.conflicts
    );
    assert_eq!(log.summary().files, 2);
    for name in ["x", "y"] {
        assert_eq!(
            std::fs::read(dest.join(format!("{name}.txt"))).unwrap(),
            b"local"
        );
        assert_eq!(
            std::fs::read(dest.join(format!("{name} (1).txt"))).unwrap(),
            b"remote"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_sends_its_first_directories_while_the_rest_is_still_being_planned() {
    // Over a slow link each level of a deep tree costs the planner a round trip to make its
    // directories on the server; the files of the levels already made must not wait for the
    // deepest one.
    let server = TestServer::start_shm();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let root = local.path().join("up");
    let mut dir = root.clone();
    for d in 0..40 {
        dir = dir.join(format!("d{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..5 {
            std::fs::write(dir.join(format!("f{f}")), bytes(1000 + f, d as u64)).unwrap();
        }
    }
    let proxy = Proxy::start(server.addr, Some(Duration::from_millis(15))).await;
    let (engine, mut events_rx) = Engine::new(proxy.endpoint());
    let job = engine.submit(upload(root.clone(), "up", ConflictPolicy::Fail));
    let mut done_before_plan = 0;
    let mut planned = None;
    let outcome = loop {
        match events_rx.recv().await.unwrap() {
            TransferEvent::FileDone { .. } if planned.is_none() => done_before_plan += 1,
            TransferEvent::Planned { files, .. } => planned = Some(files),
            TransferEvent::Progress(p) if p.scanning => assert_eq!(p.job, job),
            TransferEvent::Progress(p) => {
                assert_eq!(p.job, job);
                assert_eq!(Some(p.files_total), planned, "totals before the plan");
            }
            TransferEvent::Finished { outcome, .. } => break outcome,
            _ => {}
        }
    };
    let summary = outcome.unwrap();
    assert_eq!((summary.files, summary.failed), (200, 0));
    assert_eq!(planned, Some(200));
    assert!(
        done_before_plan > 0,
        "every file waited for the last directory to be made"
    );
    assert_eq!(tree(&server.path("up")), tree(&root));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_tree_starts_arriving_and_is_reported_while_it_is_still_walked() {
    // Over a slow link the walk of 20,000 entries takes dozens of round trips of the proxy
    // (about half a second, ten progress ticks): the first files must not wait for its end
    // (they used to), and progress must count them before the plan (QA: 27,553 files on disk
    // while the row still said `0% scanning…`), marked as scanning and without totals, and
    // never go backwards. The totals, when they come, count every file.
    let server = TestServer::start_shm();
    common::make_tree(&server.path("big"), 20_000);
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let proxy = Proxy::start(server.addr, Some(Duration::from_millis(15))).await;
    let (engine, mut events_rx) = Engine::new(proxy.endpoint());
    let job = engine.submit(download(
        "big",
        local.path().join("big"),
        ConflictPolicy::Fail,
    ));
    let mut planned = None;
    let mut scanning_seen = 0u64;
    let mut done_before_plan = 0u64;
    let mut last_done = (0, 0);
    let outcome = loop {
        match events_rx.recv().await.unwrap() {
            TransferEvent::FileDone { .. } if planned.is_none() => done_before_plan += 1,
            TransferEvent::Planned { files, bytes, .. } => planned = Some((files, bytes)),
            TransferEvent::Progress(p) => {
                assert_eq!(p.job, job);
                if p.scanning {
                    assert_eq!((p.files_total, p.bytes_total, p.eta), (0, 0, None), "{p:?}");
                    if planned.is_none() {
                        scanning_seen = scanning_seen.max(p.files_done);
                    }
                } else {
                    let (files, bytes) = planned.expect("totals before the plan");
                    assert_eq!((p.files_total, p.bytes_total), (files, bytes));
                    assert!(p.files_done <= files && p.bytes_done <= bytes, "{p:?}");
                }
                assert!(
                    p.files_done >= last_done.0 && p.bytes_done >= last_done.1,
                    "progress went backwards: {last_done:?} -> {p:?}"
                );
                last_done = (p.files_done, p.bytes_done);
            }
            TransferEvent::Finished { outcome, .. } => break outcome,
            _ => {}
        }
    };
    let summary = outcome.unwrap();
    assert_eq!((summary.files, summary.failed), (20_000, 0));
    assert!(
        done_before_plan > 0,
        "every file waited for the end of the walk"
    );
    assert!(
        scanning_seen > 0,
        "{done_before_plan} files arrived before the plan, and no progress said so"
    );
    assert_eq!(last_done.0, 20_000);
    let expected = tree(&server.path("big"));
    let total = expected.values().map(|b| b.len() as u64).sum::<u64>();
    assert_eq!(planned, Some((20_000, total)));
    assert_eq!(tree(&local.path().join("big")), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_grew_after_the_walk_keeps_bytes_done_within_the_total() {
    // QA: `132.91 MiB/40.00 MiB … eta 0s`. The walk counts a file at 1 MiB; it has grown to
    // 3 MiB by the time it is fetched (here: while the engine asks about the local copy),
    // and a neighbour shrank. The total follows, and bytes done never pass it.
    let server = TestServer::start();
    std::fs::create_dir(server.path("d")).unwrap();
    std::fs::write(server.path("d/grows.bin"), bytes(MIB, 1)).unwrap();
    std::fs::write(server.path("d/shrinks.bin"), bytes(MIB, 2)).unwrap();
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir(local.path().join("d")).unwrap();
    std::fs::write(local.path().join("d/grows.bin"), b"old").unwrap();
    std::fs::write(local.path().join("d/shrinks.bin"), b"old").unwrap();
    let (engine, mut events_rx) = Engine::with_options(
        server.endpoint(),
        EngineOptions {
            workers: 1,
            ..EngineOptions::default()
        },
    );
    let job = engine.submit(download("d", local.path().join("d"), ConflictPolicy::Ask));
    let grown = bytes(3 * MIB, 3);
    let shrunk = bytes(MIB / 4, 4);
    let mut planned = None;
    let mut last = None;
    let outcome = loop {
        match events_rx.recv().await.unwrap() {
            TransferEvent::Planned { files, bytes, .. } => planned = Some((files, bytes)),
            TransferEvent::Conflict { path, reply, .. } => {
                if path.ends_with("grows.bin") {
                    std::fs::write(server.path("d/grows.bin"), &grown).unwrap();
                } else {
                    std::fs::write(server.path("d/shrinks.bin"), &shrunk).unwrap();
                }
                let _ = reply.send(ConflictAnswer {
                    choice: ConflictPolicy::Overwrite,
                    apply_to_all: false,
                });
            }
            TransferEvent::Progress(p) if !p.scanning => {
                assert!(p.bytes_done <= p.bytes_total, "{p:?}");
                assert!(p.files_done <= p.files_total, "{p:?}");
                last = Some(p);
            }
            TransferEvent::Finished { outcome, .. } => break outcome,
            _ => {}
        }
    };
    let summary = outcome.unwrap();
    assert_eq!(summary.files, 2);
    assert_eq!(
        planned,
        Some((2, 2 * MIB as u64)),
        "the walk saw the old sizes"
    );
    let last = last.expect("a closing progress event");
    assert_eq!(last.job, job);
    let real = (grown.len() + shrunk.len()) as u64;
    assert_eq!((last.bytes_done, last.bytes_total), (real, real));
    assert_eq!(
        std::fs::read(local.path().join("d/grows.bin")).unwrap(),
        grown
    );
    assert_eq!(
        std::fs::read(local.path().join("d/shrinks.bin")).unwrap(),
        shrunk
    );
}
