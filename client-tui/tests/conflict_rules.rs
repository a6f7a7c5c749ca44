//! The conflict policies decided per file (mc's Update: "overwrite if newer", "overwrite if the
//! size differs"), against a real server in both directions: what is replaced, what is kept and
//! named as `up_to_date`, and what the question shows of both sides when the user is asked.
// Helpers outside `#[test]` functions panic on purpose too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use common::{JobLog, TestServer, run_job, write_at};
use ferry::engine::{
    ConflictAnswer, ConflictPolicy, EngineOptions, FileFacts, JobSpec, LeftOutReason,
};

/// Seconds since the epoch every file is dated around.
const T: u64 = 1_700_000_000;

/// A source tree `src` and a destination tree `dest` with `d/` in both: a file newer in the
/// source, one older there, one of another size at the same time, one alike but for its
/// bytes, and one only in the source.
fn trees(src: &Path, dest: &Path) {
    for root in [src, dest] {
        std::fs::create_dir_all(root.join("d")).unwrap();
    }
    write_at(&src.join("d/src-newer.txt"), b"new source", T + 100);
    write_at(&dest.join("d/src-newer.txt"), b"old dest", T);
    write_at(&src.join("d/dest-newer.txt"), b"old source", T);
    write_at(&dest.join("d/dest-newer.txt"), b"new dest", T + 100);
    write_at(&src.join("d/resized.txt"), b"longer source", T);
    write_at(&dest.join("d/resized.txt"), b"short", T);
    write_at(&src.join("d/same-size.txt"), b"AAAA", T);
    write_at(&dest.join("d/same-size.txt"), b"BBBB", T);
    write_at(&src.join("d/only-source.txt"), b"fresh", T);
}

/// A server and a local directory, one the source and the other the destination of
/// [`trees`], by direction.
struct Sides {
    server: TestServer,
    local: tempfile::TempDir,
    src: PathBuf,
    dest: PathBuf,
    upload: bool,
}

impl Sides {
    fn new(upload: bool) -> Sides {
        let server = TestServer::start();
        let local = tempfile::tempdir().unwrap();
        let (src, dest) = if upload {
            (local.path().to_path_buf(), server.path(""))
        } else {
            (server.path(""), local.path().to_path_buf())
        };
        trees(&src, &dest);
        Sides {
            server,
            local,
            src,
            dest,
            upload,
        }
    }

    fn way(&self) -> &'static str {
        if self.upload { "upload" } else { "download" }
    }

    /// The job from `src` to `dest` with `policy`, which must ask nothing.
    async fn run(&self, policy: ConflictPolicy) -> JobLog {
        run_job(
            self.server.endpoint(),
            EngineOptions::default(),
            spec(self.upload, self.local.path(), policy),
            |path| panic!("no question was expected, asked about {path}"),
        )
        .await
    }
}

fn read(root: &Path, name: &str) -> String {
    String::from_utf8(std::fs::read(root.join("d").join(name)).unwrap()).unwrap()
}

/// Names of the kept destinations with their messages, sorted.
fn kept(log: &JobLog) -> Vec<(String, String)> {
    let mut kept: Vec<(String, String)> = log
        .left_out
        .iter()
        .map(|(path, reason, message)| {
            assert_eq!(*reason, LeftOutReason::UpToDate, "{path}: {message}");
            let name = path.rsplit('/').next().unwrap().to_owned();
            (name, message.clone())
        })
        .collect();
    kept.sort();
    kept
}

fn spec(upload: bool, local: &Path, policy: ConflictPolicy) -> JobSpec {
    if upload {
        JobSpec::Upload {
            items: vec![(local.join("d"), "d".into())],
            policy,
            remove_source: false,
        }
    } else {
        JobSpec::Download {
            items: vec![("d".into(), local.join("d"))],
            policy,
            remove_source: false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrite_if_newer_replaces_only_older_destinations_both_ways() {
    for upload in [true, false] {
        let sides = Sides::new(upload);
        let log = sides.run(ConflictPolicy::OverwriteIfNewer).await;
        let (dest, way) = (&sides.dest, sides.way());
        assert_eq!(read(dest, "src-newer.txt"), "new source", "{way}");
        assert_eq!(read(dest, "dest-newer.txt"), "new dest", "{way}");
        assert_eq!(
            read(dest, "resized.txt"),
            "short",
            "{way}: same time is kept"
        );
        assert_eq!(read(dest, "same-size.txt"), "BBBB", "{way}");
        assert_eq!(read(dest, "only-source.txt"), "fresh", "{way}");
        assert_eq!(
            kept(&log),
            [
                (
                    "dest-newer.txt".into(),
                    "skipped: destination is newer".into()
                ),
                (
                    "resized.txt".into(),
                    "skipped: same modification time".into()
                ),
                (
                    "same-size.txt".into(),
                    "skipped: same modification time".into()
                ),
            ],
            "{way}"
        );
        let summary = log.summary();
        assert_eq!(
            (summary.files, summary.skipped, summary.failed),
            (2, 3, 0),
            "{way}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrite_if_size_differs_keeps_same_sized_destinations_both_ways() {
    for upload in [true, false] {
        let sides = Sides::new(upload);
        let log = sides.run(ConflictPolicy::OverwriteIfSizeDiffers).await;
        let (dest, way) = (&sides.dest, sides.way());
        assert_eq!(read(dest, "src-newer.txt"), "new source", "{way}");
        assert_eq!(read(dest, "dest-newer.txt"), "old source", "{way}");
        assert_eq!(read(dest, "resized.txt"), "longer source", "{way}");
        assert_eq!(read(dest, "same-size.txt"), "BBBB", "{way}");
        assert_eq!(
            kept(&log),
            [("same-size.txt".into(), "skipped: same size".into())],
            "{way}"
        );
        assert_eq!(log.summary().files, 4, "{way}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_question_shows_both_sides_and_if_newer_for_all_decides_each_file() {
    for upload in [true, false] {
        let Sides {
            server,
            local,
            src,
            dest,
            ..
        } = Sides::new(upload);
        let (engine, mut events) = ferry::engine::Engine::with_options(
            server.endpoint(),
            EngineOptions {
                workers: 1,
                ..EngineOptions::default()
            },
        );
        engine.submit(spec(upload, local.path(), ConflictPolicy::Ask));
        let mut asked = Vec::new();
        let outcome = loop {
            match events.recv().await.unwrap() {
                ferry::engine::TransferEvent::Conflict {
                    path,
                    reply,
                    source,
                    dest,
                    ..
                } => {
                    asked.push((path, source, dest));
                    reply
                        .send(ConflictAnswer {
                            choice: ConflictPolicy::OverwriteIfNewer,
                            apply_to_all: true,
                        })
                        .unwrap();
                }
                ferry::engine::TransferEvent::Finished { outcome, .. } => break outcome,
                _ => {}
            }
        };
        let way = if upload { "upload" } else { "download" };
        assert_eq!(asked.len(), 1, "{way}: for all means asked once: {asked:?}");
        let (path, source, dest_facts) = &asked[0];
        let name = path.rsplit('/').next().unwrap();
        let expected = |root: &Path| {
            let meta = std::fs::metadata(root.join("d").join(name)).unwrap();
            FileFacts {
                size: meta.len(),
                mtime: meta
                    .modified()
                    .unwrap()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64,
            }
        };
        assert_eq!(*source, expected(&src), "{way}: {path}");
        // The answer may have replaced it: what was there is what `trees` wrote.
        let before = match name {
            "src-newer.txt" => (8, T),
            "dest-newer.txt" => (8, T + 100),
            "resized.txt" => (5, T),
            "same-size.txt" => (4, T),
            other => panic!("asked about {other}"),
        };
        assert_eq!(
            *dest_facts,
            Some(FileFacts {
                size: before.0,
                mtime: before.1 as i64
            }),
            "{way}: {path}"
        );
        let summary = outcome.unwrap();
        assert_eq!((summary.files, summary.skipped), (2, 3), "{way}");
        assert_eq!(read(&dest, "src-newer.txt"), "new source", "{way}");
        assert_eq!(read(&dest, "dest-newer.txt"), "new dest", "{way}");
    }
}

#[test]
fn the_cli_update_flag_replaces_only_older_files_and_names_the_kept_ones() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    trees(local.path(), &server.path(""));
    let out = common::ok(common::ferry(&[
        "put",
        "-r",
        "--update",
        common::p(&local.path().join("d")),
        &server.url("/"),
    ]));
    let stderr = common::text(&out.stderr);
    let dest = server.path("");
    assert_eq!(read(&dest, "src-newer.txt"), "new source");
    assert_eq!(read(&dest, "dest-newer.txt"), "new dest");
    assert_eq!(read(&dest, "only-source.txt"), "fresh");
    assert!(
        stderr.contains("up_to_date: d/dest-newer.txt: skipped: destination is newer"),
        "{stderr}"
    );
    assert!(!stderr.contains("not copied"), "{stderr}");
}
