//! The real `ferry` binary against a real server in-process: what a user types and sees.
// Helpers outside `#[test]` functions panic on purpose too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{TestServer, bytes, interrupt, ok, p, text, tree};

fn ferry(args: &[&str]) -> Output {
    ferry_in(Path::new("."), args)
}

fn ferry_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(dir)
        .env_remove("FERRY_TOKEN")
        .output()
        .unwrap()
}

/// Asserts a failure reported as exactly one line starting with `prefix`.
fn fails_with(output: Output, prefix: &str) {
    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr: {}",
        text(&output.stderr)
    );
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(prefix),
        "expected {prefix:?}, got {stderr:?}"
    );
}

#[test]
fn put_and_get_single_files_like_cp() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let data = bytes(100_000, 1);
    let src = local.path().join("report 2026.pdf");
    std::fs::write(&src, &data).unwrap();
    std::fs::create_dir(server.path("docs")).unwrap();

    // Into an existing directory: keeps its name. Scripts see nothing on stdout.
    let out = ok(ferry(&["put", p(&src), &server.url("docs")]));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(
        std::fs::read(server.path("docs/report 2026.pdf")).unwrap(),
        data
    );
    // Onto a new name: that is the name.
    ok(ferry(&["put", p(&src), &server.url("docs/renamed.pdf")]));
    assert_eq!(
        std::fs::read(server.path("docs/renamed.pdf")).unwrap(),
        data
    );
    // Percent-escapes in the URL name the same file; getting it back beside its source is a
    // conflict with the source itself.
    fails_with(
        ferry(&[
            "get",
            &server.url("docs/report%202026.pdf"),
            p(local.path()),
        ]),
        "ferry: already_exists: ",
    );
    assert_eq!(std::fs::read(&src).unwrap(), data);
    let back = local.path().join("back");
    std::fs::create_dir(&back).unwrap();
    ok(ferry(&["get", &server.url("docs/renamed.pdf"), p(&back)]));
    assert_eq!(std::fs::read(back.join("renamed.pdf")).unwrap(), data);
    ok(ferry(&[
        "get",
        &server.url("docs/renamed.pdf"),
        p(&back.join("new name")),
    ]));
    assert_eq!(std::fs::read(back.join("new name")).unwrap(), data);
}

#[test]
fn existing_destinations_fail_unless_a_flag_says_otherwise() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    std::fs::write(server.path("a.txt"), b"server").unwrap();
    let dest = local.path().join("a.txt");
    std::fs::write(&dest, b"local").unwrap();

    fails_with(
        ferry(&["get", &server.url("a.txt"), p(&dest)]),
        &format!("ferry: already_exists: {}", dest.display()),
    );
    assert_eq!(std::fs::read(&dest).unwrap(), b"local");
    ok(ferry(&[
        "get",
        "--skip-existing",
        &server.url("a.txt"),
        p(&dest),
    ]));
    assert_eq!(std::fs::read(&dest).unwrap(), b"local");
    ok(ferry(&["get", "--rename", &server.url("a.txt"), p(&dest)]));
    assert_eq!(
        std::fs::read(local.path().join("a (1).txt")).unwrap(),
        b"server"
    );
    ok(ferry(&[
        "get",
        "--overwrite",
        &server.url("a.txt"),
        p(&dest),
    ]));
    assert_eq!(std::fs::read(&dest).unwrap(), b"server");

    fails_with(
        ferry(&["put", p(&dest), &server.url("a.txt")]),
        "ferry: already_exists: a.txt: ",
    );
    // Two policies at once make no sense.
    let out = ferry(&[
        "put",
        "--overwrite",
        "--rename",
        p(&dest),
        &server.url("a.txt"),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn errors_are_one_line_with_code_and_path() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir(server.path("docs")).unwrap();
    fails_with(
        ferry(&["get", &server.url("docs/a.txt"), p(local.path())]),
        "ferry: not_found: docs/a.txt: ",
    );
    fails_with(
        ferry(&["get", &server.url("docs"), p(local.path())]),
        "ferry: is_a_directory: docs: ",
    );
    fails_with(
        ferry(&["rm", &server.url("docs")]),
        "ferry: is_a_directory: docs: ",
    );
    // A directory onto a local file: one line, however many files the directory holds.
    for i in 0..5 {
        std::fs::write(server.path(&format!("docs/f{i}")), b"x").unwrap();
    }
    let file = local.path().join("plain");
    std::fs::write(&file, b"keep").unwrap();
    fails_with(
        ferry(&["get", "-r", &server.url("docs"), p(&file)]),
        &format!("ferry: already_exists: {}", file.display()),
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"keep");
    fails_with(
        ferry(&["ls", &server.url("nope")]),
        "ferry: not_found: nope: ",
    );
    let missing = local.path().join("missing");
    fails_with(
        ferry(&["put", p(&missing), &server.url("")]),
        &format!("ferry: not_found: {}", missing.display()),
    );
    // Nobody listening: a connection error, still one line.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    fails_with(
        ferry(&["ls", &format!("ferry://127.0.0.1:{closed}/")]),
        "ferry: connection: 127.0.0.1:",
    );
    // A bad location is a usage error from the argument parser.
    let out = ferry(&["ls", "ferry://h/a/../b"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("bad path"));
}

#[test]
fn a_thousand_files_go_up_and_come_back() {
    let server = TestServer::start_shm();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let photos = local.path().join("photos");
    common::make_tree(&photos, 1000);
    let expected = tree(&photos);
    assert_eq!(expected.keys().filter(|k| !k.ends_with('/')).count(), 1000);

    // `put -r photos ferry://h/` makes /photos.
    ok(ferry_in(
        local.path(),
        &["put", "-r", "photos", &server.url("")],
    ));
    assert_eq!(tree(&server.path("photos")), expected);

    // Into an existing local directory: back/photos.
    let back = local.path().join("back");
    std::fs::create_dir(&back).unwrap();
    ok(ferry(&[
        "get",
        "-r",
        "-j",
        "8",
        &server.url("photos"),
        p(&back),
    ]));
    assert_eq!(tree(&back.join("photos")), expected);
    // To a new name: that directory is the copy.
    ok(ferry(&[
        "get",
        "-r",
        &server.url("photos"),
        p(&local.path().join("copy")),
    ]));
    assert_eq!(tree(&local.path().join("copy")), expected);
    // Again into the existing copy: every file conflicts, --skip-existing makes it a no-op.
    ok(ferry(&[
        "get",
        "-r",
        "--skip-existing",
        &server.url("photos"),
        p(&back),
    ]));
    assert_eq!(tree(&back.join("photos")), expected);
}

#[test]
fn several_sources_and_awkward_names() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let names = [
        "with space.txt",
        "ünïcödé 日本語.txt",
        "it's \"quoted\".txt",
        "100%.txt",
    ];
    let mut args = vec!["put".to_owned()];
    for name in names {
        let path = local.path().join(name);
        std::fs::write(&path, name.as_bytes()).unwrap();
        args.push(p(&path).to_owned());
    }
    std::fs::create_dir(server.path("in")).unwrap();
    args.push(server.url("in"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(ferry(&args));
    for name in names {
        assert_eq!(
            std::fs::read(server.path(&format!("in/{name}"))).unwrap(),
            name.as_bytes()
        );
    }
    // Several sources into something that is not a directory is refused before anything moves.
    let mut bad = args.clone();
    let target = server.url("in/with space.txt");
    *bad.last_mut().unwrap() = &target;
    fails_with(ferry(&bad), "ferry: not_a_directory: ");

    let out = ok(ferry(&["ls", "--json", &server.url("in")]));
    let mut listed: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<ferry_protocol::Entry>(l)
                .unwrap()
                .name
        })
        .collect();
    listed.sort();
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected);

    let back = local.path().join("back");
    std::fs::create_dir(&back).unwrap();
    let url = server.url("in/%C3%BCn%C3%AFc%C3%B6d%C3%A9%20%E6%97%A5%E6%9C%AC%E8%AA%9E.txt");
    ok(ferry(&["get", &url, p(&back)]));
    assert_eq!(
        std::fs::read(back.join("ünïcödé 日本語.txt")).unwrap(),
        "ünïcödé 日本語.txt".as_bytes()
    );
}

#[test]
fn ls_sorts_directories_first_and_json_streams_every_entry() {
    let server = TestServer::start();
    std::fs::create_dir(server.path("zdir")).unwrap();
    std::fs::create_dir(server.path("adir")).unwrap();
    std::fs::write(server.path("b.txt"), vec![0u8; 2048]).unwrap();
    std::fs::write(server.path("a.txt"), b"x").unwrap();
    let out = ok(ferry(&["ls", &server.url("")]));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[0].starts_with('d') && lines[0].ends_with(" adir/"),
        "{lines:?}"
    );
    assert!(lines[1].ends_with(" zdir/"));
    assert!(lines[2].ends_with(" a.txt"));
    assert!(
        lines[3].contains("2 KiB") && lines[3].ends_with(" b.txt"),
        "{lines:?}"
    );

    // A big directory: every entry exactly once, each line a JSON object.
    for i in 0..3000 {
        std::fs::write(server.path(&format!("zdir/file number {i:05}")), b"").unwrap();
    }
    let out = ok(ferry(&["ls", "--json", &server.url("zdir")]));
    let mut names: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            let value: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(value["kind"], "file");
            value["name"].as_str().unwrap().to_owned()
        })
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3000);

    // `ls FILE` shows the file.
    let out = ok(ferry(&["ls", &server.url("a.txt")]));
    assert!(text(&out.stdout).trim_end().ends_with(" a.txt"));
}

#[test]
fn mkdir_rm_and_mv_change_the_remote_tree() {
    let server = TestServer::start();
    ok(ferry(&["mkdir", &server.url("a/b/c")]));
    assert!(server.path("a/b/c").is_dir());
    std::fs::write(server.path("a/f.txt"), b"f").unwrap();

    ok(ferry(&["mv", &server.url("a/f.txt"), "a/g.txt"]));
    assert_eq!(std::fs::read(server.path("a/g.txt")).unwrap(), b"f");
    // Into an existing directory, keeping the name; the target may be a full location.
    ok(ferry(&["mv", &server.url("a/g.txt"), &server.url("a/b")]));
    assert_eq!(std::fs::read(server.path("a/b/g.txt")).unwrap(), b"f");
    fails_with(
        ferry(&["mv", &server.url("a/missing"), "x"]),
        "ferry: not_found: a/missing: ",
    );

    ok(ferry(&["rm", &server.url("a/b/g.txt")]));
    assert!(!server.path("a/b/g.txt").exists());
    ok(ferry(&["rm", "-r", &server.url("a")]));
    assert!(!server.path("a").exists());
}

#[test]
fn the_token_comes_from_the_flag_or_the_environment() {
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), |c| {
        c.token = Some("s3cret".into())
    });
    fails_with(ferry(&["ls", &server.url("")]), "ferry: unauthorized: ");
    ok(ferry(&["--token", "s3cret", "ls", &server.url("")]));
    ok(ferry(&["ls", "--token", "s3cret", &server.url("")]));
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["ls", &server.url("")])
        .env("FERRY_TOKEN", "s3cret")
        .output()
        .unwrap();
    ok(out);
}

#[test]
fn an_interrupted_download_is_resumed_without_any_flag() {
    let server = TestServer::start_shm();
    let data = bytes(3 * 1024 * 1024, 9);
    std::fs::write(server.path("big.iso"), &data).unwrap();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    std::fs::write(
        local.path().join(".ferry-part.big.iso"),
        &data[..1024 * 1024],
    )
    .unwrap();
    ok(ferry(&["get", &server.url("big.iso"), p(local.path())]));
    assert_eq!(std::fs::read(local.path().join("big.iso")).unwrap(), data);
    assert!(!local.path().join(".ferry-part.big.iso").exists());
}

#[test]
fn put_move_removes_the_local_source() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("moving.txt");
    std::fs::write(&src, b"bye").unwrap();
    ok(ferry(&["put", "--move", p(&src), &server.url("")]));
    assert!(!src.exists());
    assert_eq!(std::fs::read(server.path("moving.txt")).unwrap(), b"bye");
}

#[test]
fn completions_and_man_page_print_to_stdout() {
    for shell in ["bash", "zsh", "fish"] {
        let out = ok(ferry(&["completions", shell]));
        let script = text(&out.stdout);
        assert!(
            script.contains("ferry") && script.contains("put"),
            "{shell}"
        );
    }
    let out = ok(ferry(&["man"]));
    let page = text(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH ferry"),
        "{}",
        &page[..200.min(page.len())]
    );
    assert!(page.contains("completions"));
}

#[test]
fn a_read_only_server_refuses_changes_by_name() {
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), |c| c.read_only = true);
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("a.txt");
    std::fs::write(&src, b"a").unwrap();
    fails_with(
        ferry(&["put", p(&src), &server.url("")]),
        "ferry: forbidden: a.txt: ",
    );
    fails_with(
        ferry(&["mkdir", &server.url("new")]),
        "ferry: forbidden: new: ",
    );
    assert!(!server.path("a.txt").exists() && !server.path("new").exists());
}

#[test]
fn ctrl_c_stops_a_download_and_the_next_run_finishes_it() {
    let server = TestServer::start_shm();
    let data = bytes(16 * 1024 * 1024, 77);
    std::fs::write(server.path("slow.bin"), &data).unwrap();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // About 6 MB/s through the proxy: the interrupt lands in the middle.
    let proxy = runtime.block_on(common::Proxy::start(
        server.addr,
        Some(std::time::Duration::from_millis(10)),
    ));
    let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["get", &proxy.url("slow.bin"), p(local.path())])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let partial = local.path().join(".ferry-part.slow.bin");
    let started = std::time::Instant::now();
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < 1024 * 1024 {
        assert!(
            started.elapsed().as_secs() < 20,
            "the download never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    // What to do next, then the reason (a single file resumes on a plain re-run).
    assert_eq!(
        text(&out.stderr).trim(),
        "ferry: interrupted: 0 files arrived; what arrived is kept: re-run the same command to \
         finish\nferry: cancelled"
    );
    assert!(!local.path().join("slow.bin").exists());
    let held = std::fs::metadata(&partial).unwrap().len();
    assert!(held > 0 && held < data.len() as u64);

    ok(ferry(&["get", &server.url("slow.bin"), p(local.path())]));
    assert_eq!(std::fs::read(local.path().join("slow.bin")).unwrap(), data);
    drop(proxy);
    drop(runtime);
}

/// The peak resident memory of a running process, in KiB, while it lasts.
fn watch_peak_rss(child: &mut std::process::Child) -> (u64, usize) {
    let status = format!("/proc/{}/status", child.id());
    let (mut peak, mut samples) = (0, 0);
    while child.try_wait().unwrap().is_none() {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            peak = peak.max(kib);
            samples += 1;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(child.wait().unwrap().success());
    (peak, samples)
}

#[test]
fn memory_stays_flat_whatever_the_file_size() {
    let server = TestServer::start_shm();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let size = 256 * 1024 * 1024;
    let data = bytes(size, 3);
    let src = local.path().join("huge.bin");
    std::fs::write(&src, &data).unwrap();
    drop(data);

    let mut put = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["put", p(&src), &server.url("")])
        .spawn()
        .unwrap();
    let (put_peak, put_samples) = watch_peak_rss(&mut put);
    let back = local.path().join("back.bin");
    let mut get = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["get", &server.url("huge.bin"), p(&back)])
        .spawn()
        .unwrap();
    let (get_peak, get_samples) = watch_peak_rss(&mut get);

    eprintln!("peak RSS for 256 MiB: put {put_peak} KiB, get {get_peak} KiB");
    assert!(put_samples > 0 && get_samples > 0);
    // A quarter of the file would already mean the file is being held; the buffers are ~1 MiB.
    assert!(put_peak < 64 * 1024, "put peaked at {put_peak} KiB");
    assert!(get_peak < 64 * 1024, "get peaked at {get_peak} KiB");
    assert_eq!(
        std::fs::metadata(server.path("huge.bin")).unwrap().len(),
        size as u64
    );
    assert!(std::fs::read(&back).unwrap() == std::fs::read(&src).unwrap());
}

#[test]
fn ipv6_locations_work_end_to_end() {
    let server = TestServer::start_on("[::1]:0", tempfile::tempdir().unwrap(), |_| {});
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("v6.txt");
    std::fs::write(&src, b"over IPv6").unwrap();
    let target = server.url("");
    assert!(target.starts_with("ferry://[::1]:"));
    ok(ferry(&["put", p(&src), &target]));
    assert_eq!(std::fs::read(server.path("v6.txt")).unwrap(), b"over IPv6");
    let out = ok(ferry(&["ls", &target]));
    assert!(text(&out.stdout).trim_end().ends_with(" v6.txt"));
    ok(ferry(&[
        "get",
        &server.url("v6.txt"),
        p(&local.path().join("back.txt")),
    ]));
    assert_eq!(
        std::fs::read(local.path().join("back.txt")).unwrap(),
        b"over IPv6"
    );
}

#[test]
fn get_takes_several_sources_into_a_directory() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir(server.path("dir")).unwrap();
    std::fs::write(server.path("dir/inner.txt"), b"inner").unwrap();
    std::fs::write(server.path("one.txt"), b"one").unwrap();
    let into = local.path().join("into");
    std::fs::create_dir(&into).unwrap();
    ok(ferry(&[
        "get",
        "-r",
        &server.url("one.txt"),
        &server.url("dir"),
        p(&into),
    ]));
    assert_eq!(std::fs::read(into.join("one.txt")).unwrap(), b"one");
    assert_eq!(std::fs::read(into.join("dir/inner.txt")).unwrap(), b"inner");

    // Several sources into something that is not a directory: refused, nothing written.
    let nowhere = local.path().join("nowhere");
    fails_with(
        ferry(&[
            "get",
            &server.url("one.txt"),
            &server.url("dir/inner.txt"),
            p(&nowhere),
        ]),
        &format!("ferry: not_a_directory: {}", nowhere.display()),
    );
    assert!(!nowhere.exists());
    // Sources on two servers cannot be one job.
    let other = TestServer::start();
    std::fs::write(other.path("x"), b"x").unwrap();
    fails_with(
        ferry(&["get", &server.url("one.txt"), &other.url("x"), p(&into)]),
        "ferry: bad_request: ",
    );
}

#[test]
fn a_rerun_of_get_r_with_resume_restores_what_is_missing_and_hints_without_it() {
    use std::os::unix::fs::MetadataExt;
    let server = TestServer::start();
    std::fs::create_dir(server.path("many")).unwrap();
    let mut files = Vec::new();
    for i in 0..6 {
        // One file large enough to take the streaming path, the others small.
        let len = if i == 0 { 3 * 1024 * 1024 } else { 1000 + i };
        let data = bytes(len, 300 + i as u64);
        std::fs::write(server.path(&format!("many/f{i}.bin")), &data).unwrap();
        files.push(data);
    }
    let local = tempfile::tempdir().unwrap();
    let dlm = local.path().join("dlm");
    std::fs::create_dir(&dlm).unwrap();
    ok(ferry(&["get", "-r", &server.url("many"), p(&dlm)]));
    let got = dlm.join("many");
    assert_eq!(tree(&got), tree(&server.path("many")));

    // As after an interruption: one file missing, the others finished.
    std::fs::remove_file(got.join("f3.bin")).unwrap();
    let big_inode = std::fs::metadata(got.join("f0.bin")).unwrap().ino();
    ok(ferry(&[
        "get",
        "-r",
        "--resume",
        &server.url("many"),
        p(&dlm),
    ]));
    assert_eq!(tree(&got), tree(&server.path("many")));
    // A complete, identical file was checked, not fetched again into a new file.
    assert_eq!(
        std::fs::metadata(got.join("f0.bin")).unwrap().ino(),
        big_inode
    );
    assert!(
        std::fs::read_dir(&got).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".ferry-part")),
        "a partial was left behind"
    );

    // Without a flag: the missing file still comes back, each finished one says what to do.
    std::fs::remove_file(got.join("f3.bin")).unwrap();
    let out = ferry(&["get", "-r", &server.url("many"), p(&dlm)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(got.join("f3.bin")).unwrap(), files[3]);
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 5, "{stderr}");
    for line in stderr.lines() {
        assert!(
            line.starts_with(&format!("ferry: already_exists: {}/f", got.display()))
                && line.ends_with(
                    ": the destination exists (choose --overwrite, --skip-existing, --resume or --rename)"
                ),
            "{line}"
        );
    }
}

#[test]
fn local_errors_name_the_file_asked_for_never_the_partial() {
    let server = TestServer::start();
    std::fs::write(server.path("small.txt"), b"small").unwrap();
    let local = tempfile::tempdir().unwrap();
    let file = local.path().join("file.txt");
    std::fs::write(&file, b"a file, not a directory").unwrap();

    // A trailing slash means a directory, as with cp: never a new file named like it.
    let missing = format!("{}/", local.path().join("nonexistent/dir").display());
    fails_with(
        ferry(&["get", &server.url("small.txt"), &missing]),
        &format!("ferry: not_found: {missing}: no such directory"),
    );
    let under_file = format!("{}/", file.display());
    fails_with(
        ferry(&["get", &server.url("small.txt"), &under_file]),
        &format!("ferry: not_a_directory: {under_file}: "),
    );
    assert!(!local.path().join("nonexistent").exists());
    // The same for put: a remote target ending in / is a directory that must exist.
    fails_with(
        ferry(&["put", p(&file), &format!("{}/", server.url("newdir"))]),
        "ferry: not_found: newdir: no such directory",
    );
    fails_with(
        ferry(&["put", p(&file), &format!("{}/", server.url("small.txt"))]),
        "ferry: not_a_directory: small.txt: ",
    );
    assert!(!server.path("newdir").exists());
    assert_eq!(std::fs::read(server.path("small.txt")).unwrap(), b"small");
    // A local failure names the path asked for, with the OS's reason.
    let inside_file = file.join("sub");
    let out = ferry(&["get", &server.url("small.txt"), p(&inside_file)]);
    assert!(
        !text(&out.stderr).contains(".ferry-part"),
        "{}",
        text(&out.stderr)
    );
    fails_with(
        out,
        &format!("ferry: not_a_directory: {}: ", inside_file.display()),
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"a file, not a directory");

    // Permissions, as a user without them (root ignores them): the same code both ways.
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| text(&o.stdout).trim() == "0");
    if !(as_root && Path::new("/usr/bin/setpriv").exists()) {
        eprintln!("skipped the permission half: needs root and setpriv");
        return;
    }
    let shared = tempfile::tempdir_in("/dev/shm").unwrap();
    let chmod = |path: &Path, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    chmod(shared.path(), 0o755);
    let noperm = shared.path().join("noperm");
    std::fs::create_dir(&noperm).unwrap();
    chmod(&noperm, 0o755);
    let secret = shared.path().join("secret.txt");
    std::fs::write(&secret, b"root only").unwrap();
    chmod(&secret, 0o600);
    let as_nobody = |args: &[&str]| {
        Command::new("/usr/bin/setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_ferry"))
            .args(args)
            .current_dir(shared.path())
            .env_remove("FERRY_TOKEN")
            .output()
            .unwrap()
    };
    let out = as_nobody(&[
        "get",
        &server.url("small.txt"),
        &format!("{}/", noperm.display()),
    ]);
    assert!(
        !text(&out.stderr).contains(".ferry-part"),
        "{}",
        text(&out.stderr)
    );
    fails_with(
        out,
        &format!("ferry: forbidden: {}: ", noperm.join("small.txt").display()),
    );
    fails_with(
        as_nobody(&["put", p(&secret), &server.url("")]),
        &format!("ferry: forbidden: {}: ", secret.display()),
    );
    assert!(!server.path("secret.txt").exists());
}

#[test]
fn a_file_that_grows_while_it_is_sent_fails_and_is_never_placed() {
    let server = TestServer::start_shm();
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let src = local.path().join("growing.log");
    let data = bytes(24 * 1024 * 1024, 81);
    std::fs::write(&src, &data).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // A slow link, so the file is appended to while most of it has still to go.
    let proxy = runtime.block_on(common::Proxy::start(
        server.addr,
        Some(std::time::Duration::from_millis(1)),
    ));
    let up = proxy.up.clone();
    let appender = {
        let src = src.clone();
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            while up.load(std::sync::atomic::Ordering::Relaxed) < 2 * 1024 * 1024 {
                assert!(started.elapsed().as_secs() < 30, "the upload never started");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new().append(true).open(&src).unwrap();
            file.write_all(b"one more line\n").unwrap();
        })
    };
    let out = ferry(&["put", p(&src), &proxy.url("")]);
    appender.join().unwrap();
    fails_with(
        out,
        &format!(
            "ferry: file_changed: {}: the file changed while it was being sent",
            src.display()
        ),
    );
    assert!(
        !server.path("growing.log").exists(),
        "a prefix snapshot took the final name"
    );

    // The file as it is now goes up whole on the next run.
    ok(ferry(&["put", p(&src), &server.url("")]));
    let mut grown = data;
    grown.extend_from_slice(b"one more line\n");
    assert_eq!(std::fs::read(server.path("growing.log")).unwrap(), grown);
    drop(proxy);
    drop(runtime);
}

#[test]
fn rm_takes_several_locations_and_goes_on_past_a_refusal() {
    let server = TestServer::start();
    for name in ["a.txt", "b.txt", "c.txt"] {
        std::fs::write(server.path(name), name).unwrap();
    }
    std::fs::create_dir(server.path("dir")).unwrap();
    ok(ferry(&["rm", &server.url("a.txt"), &server.url("b.txt")]));
    assert!(!server.path("a.txt").exists() && !server.path("b.txt").exists());
    // Without -r the directory stays, and says why; the file after it still goes.
    fails_with(
        ferry(&["rm", &server.url("dir"), &server.url("c.txt")]),
        "ferry: is_a_directory: dir: ",
    );
    assert!(server.path("dir").is_dir() && !server.path("c.txt").exists());
    ok(ferry(&["rm", "-r", &server.url("dir")]));
    assert!(!server.path("dir").exists());
    let other = TestServer::start();
    std::fs::write(other.path("x"), b"x").unwrap();
    std::fs::write(server.path("y"), b"y").unwrap();
    fails_with(
        ferry(&["rm", &server.url("y"), &other.url("x")]),
        "ferry: bad_request: ",
    );
    assert!(server.path("y").exists() && other.path("x").exists());
}

#[test]
fn help_says_how_to_resume_and_how_locations_are_spelled() {
    let help = text(&ok(ferry(&["--help"])).stdout);
    assert!(help.contains("ferry get -r --resume"), "{help}");
    assert!(help.contains("%25"), "{help}");
    assert!(help.contains("token or password in clear text"), "{help}");
    for command in ["get", "put"] {
        let help = text(&ok(ferry(&[command, "--help"])).stdout);
        let line = help.lines().find(|l| l.contains("--recursive")).unwrap();
        assert!(line.contains("Copy directories"), "{command}: {line}");
    }
    let help = text(&ok(ferry(&["ls", "--help"])).stdout);
    assert!(help.contains("percent-decoded"), "{help}");
    let page = text(&ok(ferry(&["man"])).stdout);
    for needle in [
        ".SH ENVIRONMENT",
        "\\fBFERRY_TOKEN\\fR",
        "\\fBFERRY_PASSWORD\\fR",
        ".SH FILES",
        "config.toml",
        "known_hosts",
        "recent.toml",
        "ferry.log",
    ] {
        assert!(page.contains(needle), "{needle}");
    }
    // A bare % is no escape: refused as usage, with the reason.
    let out = ferry(&["ls", "ferry://127.0.0.1:1/100%.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("percent"),
        "{}",
        text(&out.stderr)
    );
}

/// Runs `ferry` with stdout a pipe whose reader has already gone, as `| head` leaves it.
fn ferry_into_closed_pipe(args: &[&str]) -> Output {
    // The reader is closed before the spawn. Another test's child forked in between can hold
    // a copy of it until its exec, and then the first write succeeds: a few tries absorb that.
    let mut last = None;
    for _ in 0..5 {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(args)
            .env_remove("FERRY_TOKEN")
            .stdout(writer)
            .output()
            .unwrap();
        if out.status.code() != Some(0) {
            return out;
        }
        last = Some(out);
    }
    last.unwrap()
}

#[test]
fn a_link_among_the_sources_fails_alone_and_the_others_are_copied() {
    let server = TestServer::start();
    std::fs::create_dir(server.path("dir with space")).unwrap();
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("zero.bin"), [0u8; 1000]).unwrap();
    std::fs::write(local.path().join("a.txt"), b"a").unwrap();
    std::os::unix::fs::symlink("a.txt", local.path().join("link_to_a")).unwrap();

    let out = ferry_in(
        local.path(),
        &[
            "put",
            "zero.bin",
            "link_to_a",
            "a.txt",
            &server.url("dir%20with%20space/"),
        ],
    );
    fails_with(
        out,
        "ferry: forbidden: link_to_a: a symlink: only regular files and directories are transferred",
    );
    assert_eq!(
        tree(&server.path("dir with space"))
            .keys()
            .collect::<Vec<_>>(),
        ["a.txt", "zero.bin"]
    );

    // The same for get: a link and a missing name fail, each on its line; the file comes.
    std::fs::write(server.path("r.txt"), b"r").unwrap();
    std::os::unix::fs::symlink("r.txt", server.path("r-link")).unwrap();
    let into = tempfile::tempdir().unwrap();
    let out = ferry(&[
        "get",
        &server.url("r-link"),
        &server.url("missing"),
        &server.url("r.txt"),
        p(into.path()),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "ferry: forbidden: r-link: a symlink: only regular files and directories are transferred\n\
         ferry: not_found: missing: No such file or directory\n"
    );
    assert_eq!(std::fs::read(into.path().join("r.txt")).unwrap(), b"r");
    assert_eq!(std::fs::read_dir(into.path()).unwrap().count(), 1);
}

#[test]
fn links_and_special_files_left_out_of_a_tree_are_named_on_stderr() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("ltest");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), b"a").unwrap();
    std::fs::write(src.join("sub/b.txt"), b"b").unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
    let fifo = Command::new("mkfifo")
        .arg(src.join("fifo"))
        .status()
        .unwrap();
    assert!(fifo.success());
    // Each named with why, in any order, then one closing count; exit status 0 (by design).
    let lines = |out: &Output| {
        let mut lines: Vec<String> = text(&out.stderr).lines().map(str::to_owned).collect();
        let last = lines.pop().unwrap_or_default();
        lines.sort();
        (lines, last)
    };
    let by_design = |n: u64| {
        format!(
            "ferry: not copied: {n} symlinks or special files (by design; --strict makes them \
             an error) (each named above)"
        )
    };

    let out = ok(ferry_in(&src, &["put", "-r", ".", &server.url("")]));
    assert_eq!(
        lines(&out),
        (
            vec![
                "ferry: special_file: ./fifo: a special file: only files and directories are copied"
                    .to_owned(),
                "ferry: symlink: ./link: a symlink: only files and directories are copied".to_owned()
            ],
            by_design(2)
        )
    );
    assert!(out.stdout.is_empty());
    assert_eq!(
        tree(&server.path("ltest")).keys().collect::<Vec<_>>(),
        ["a.txt", "sub/", "sub/b.txt"]
    );

    // Back down, with the server's own links and fifo in the tree.
    std::os::unix::fs::symlink("sub", server.path("ltest/sublink")).unwrap();
    let fifo = Command::new("mkfifo")
        .arg(server.path("ltest/fifo"))
        .status()
        .unwrap();
    assert!(fifo.success());
    let into = tempfile::tempdir().unwrap();
    let out = ok(ferry(&["get", "-r", &server.url("ltest"), p(into.path())]));
    let named = vec![
        "ferry: special_file: ltest/fifo: a special file: only files and directories are copied"
            .to_owned(),
        "ferry: symlink: ltest/sublink: a symlink: only files and directories are copied"
            .to_owned(),
    ];
    assert_eq!(lines(&out), (named.clone(), by_design(2)));
    assert_eq!(
        tree(&into.path().join("ltest")).keys().collect::<Vec<_>>(),
        ["a.txt", "sub/", "sub/b.txt"]
    );
    // With --skip-existing the count holds the files left alone too, and says so.
    let out = ok(ferry(&[
        "get",
        "-r",
        "--skip-existing",
        &server.url("ltest"),
        p(into.path()),
    ]));
    let (mut named_then, last) = lines(&out);
    let existing = named_then.remove(0);
    assert_eq!(named_then, named);
    assert_eq!(
        last,
        "ferry: skipped 2 existing destination files (--skip-existing)"
    );
    assert_eq!(existing, by_design(2));
    // Nothing left out, nothing said.
    let out = ok(ferry(&[
        "get",
        "-r",
        &server.url("ltest/sub"),
        p(into.path()),
    ]));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn a_link_to_a_sibling_directory_is_listed_as_one() {
    let server = TestServer::start();
    std::fs::create_dir_all(server.path("ltest/sub")).unwrap();
    std::fs::create_dir(server.path("remote_dir")).unwrap();
    std::fs::write(server.path("remote_dir/r.txt"), b"r").unwrap();
    std::os::unix::fs::symlink("../remote_dir", server.path("ltest/dir_link")).unwrap();
    std::os::unix::fs::symlink("sub", server.path("ltest/sublink")).unwrap();
    let out = ok(ferry(&["ls", "--json", &server.url("ltest")]));
    let entries: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for name in ["dir_link", "sublink"] {
        let entry = entries.iter().find(|e| e["name"] == name).unwrap();
        assert_eq!(entry["link"], "dir", "{entry}");
    }
    let out = ok(ferry(&["ls", &server.url("ltest/dir_link")]));
    assert!(text(&out.stdout).trim_end().ends_with("  r.txt"));
}

/// A TCP proxy in front of the server that can play dead: like a tunnel (`ssh -L`) whose
/// server was killed, it cuts what is open and then accepts and at once closes every new
/// connection. Each read is forwarded after a pause, so a transfer can be caught mid-way.
struct Tunnel {
    addr: std::net::SocketAddr,
    down_bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    dead: std::sync::Arc<std::sync::atomic::AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl Tunnel {
    fn start(target: std::net::SocketAddr) -> Tunnel {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let dead = Arc::new(AtomicBool::new(false));
        let down_bytes = Arc::new(AtomicU64::new(0));
        let (dead2, down2) = (dead.clone(), down_bytes.clone());
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if dead2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let dead_up = dead2.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = cr.read(&mut buf).await {
                        if dead_up.load(Ordering::SeqCst) || sw.write_all(&buf[..n]).await.is_err()
                        {
                            break;
                        }
                    }
                });
                let (dead_down, down) = (dead2.clone(), down2.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let read = tokio::time::timeout(
                            std::time::Duration::from_millis(50),
                            sr.read(&mut buf),
                        )
                        .await;
                        if dead_down.load(Ordering::SeqCst) {
                            break;
                        }
                        let n = match read {
                            Err(_) => continue,
                            Ok(Ok(n @ 1..)) => n,
                            Ok(_) => break,
                        };
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        down.fetch_add(n as u64, Ordering::SeqCst);
                    }
                    // Dropping both halves closes the client's connection.
                });
            }
        });
        Tunnel {
            addr,
            down_bytes,
            dead,
            _runtime: runtime,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("ferry://127.0.0.1:{}/{path}", self.addr.port())
    }

    /// Waits until `bytes` have come down, then plays dead.
    fn die_after(&self, bytes: u64) {
        use std::sync::atomic::Ordering;
        let started = std::time::Instant::now();
        while self.down_bytes.load(Ordering::SeqCst) < bytes {
            assert!(
                started.elapsed().as_secs() < 30,
                "the transfer never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        self.dead.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_server_lost_behind_a_tunnel_is_reported_once_with_how_to_finish() {
    let server = TestServer::start_shm();
    std::fs::create_dir(server.path("med")).unwrap();
    for i in 0..6 {
        std::fs::write(
            server.path(&format!("med/f{i}.bin")),
            bytes(2 * 1024 * 1024, 500 + i),
        )
        .unwrap();
    }
    let local = tempfile::tempdir_in("/dev/shm").unwrap();
    let dl = local.path().join("dl");
    std::fs::create_dir(&dl).unwrap();
    let tunnel = Tunnel::start(server.addr);
    let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "get",
            "-r",
            &tunnel.url("med"),
            &format!("{}/", dl.display()),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tunnel.die_after(3 * 1024 * 1024);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    // Once for the whole job, naming the server and the files, with no hint about TLS: this
    // server spoke plain ferry a moment ago.
    let lost = format!("ferry: connection: 127.0.0.1:{}: ", tunnel.addr.port());
    assert!(lines[0].starts_with(&lost), "{stderr}");
    assert!(lines[0].contains(" not finished: med/f"), "{stderr}");
    assert!(!stderr.contains("TLS"), "{stderr}");
    assert_eq!(
        lines[1],
        "ferry: what arrived is kept: re-run the same command with --resume to finish"
    );
    assert!(tree(&dl.join("med")).len() < 6, "the tunnel died too late");

    // What the hint says works.
    ok(ferry(&[
        "get",
        "-r",
        "--resume",
        &server.url("med"),
        &format!("{}/", dl.display()),
    ]));
    assert_eq!(tree(&dl.join("med")), tree(&server.path("med")));

    // One file: a plain re-run finishes it.
    std::fs::write(server.path("one.bin"), bytes(8 * 1024 * 1024, 600)).unwrap();
    let tunnel = Tunnel::start(server.addr);
    let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["get", &tunnel.url("one.bin"), p(local.path())])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tunnel.die_after(1024 * 1024);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("; 1 file not finished: one.bin\n"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("ferry: what arrived is kept: re-run the same command to finish\n"),
        "{stderr}"
    );
    ok(ferry(&["get", &server.url("one.bin"), p(local.path())]));
    assert_eq!(
        std::fs::read(local.path().join("one.bin")).unwrap(),
        std::fs::read(server.path("one.bin")).unwrap()
    );
}

#[test]
fn a_plain_client_at_a_tls_server_hears_tls_as_a_possibility() {
    let (tls, _) = common::tls_identity();
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), |c| c.tls = Some(tls));
    let out = ferry(&["ls", &server.url("")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    // The server closes without a word, or after a TLS alert the client cannot read.
    assert!(
        stderr.starts_with("ferry: connection: ") || stderr.starts_with("ferry: protocol: "),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(" (the server may speak TLS: then use a ferrys:// location)\n"),
        "{stderr}"
    );
}

#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    let server = TestServer::start();
    std::fs::create_dir(server.path("big")).unwrap();
    for i in 0..2000 {
        std::fs::write(server.path(&format!("big/file-{i:05}.txt")), b"").unwrap();
    }
    for args in [
        vec!["ls", &server.url("big") as &str],
        vec!["ls", "--json", &server.url("big")],
        vec!["man"],
        vec!["completions", "bash"],
        vec!["completions", "zsh"],
    ] {
        let out = ferry_into_closed_pipe(&args);
        assert_eq!(
            text(&out.stderr),
            "",
            "{args:?} said something: it must end quietly"
        );
        // 128 + SIGPIPE: what a shell shows for ls cut short the same way.
        assert_eq!(
            out.status.code(),
            Some(141),
            "{args:?}: {}",
            out.stdout.len()
        );
    }
    // As people type it.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{}' ls '{}' | head -1",
            env!("CARGO_BIN_EXE_ferry"),
            server.url("big")
        ))
        .output()
        .unwrap();
    assert_eq!(text(&out.stderr), "");
    assert_eq!(text(&out.stdout).lines().count(), 1);
}

#[test]
fn mkdir_takes_several_locations_and_mv_can_overwrite() {
    let server = TestServer::start();
    ok(ferry(&["mkdir", &server.url("a/b"), &server.url("c")]));
    assert!(server.path("a/b").is_dir() && server.path("c").is_dir());
    std::fs::write(server.path("f.txt"), b"f").unwrap();
    // One that cannot be made fails alone.
    fails_with(
        ferry(&["mkdir", &server.url("f.txt/x"), &server.url("d")]),
        "ferry: not_a_directory: f.txt/x: ",
    );
    assert!(server.path("d").is_dir());

    std::fs::write(server.path("new.txt"), b"new").unwrap();
    fails_with(
        ferry(&["mv", &server.url("new.txt"), "f.txt"]),
        "ferry: already_exists: f.txt: the destination exists (use --overwrite to replace it)",
    );
    assert_eq!(std::fs::read(server.path("f.txt")).unwrap(), b"f");
    ok(ferry(&[
        "mv",
        "--overwrite",
        &server.url("new.txt"),
        "f.txt",
    ]));
    assert_eq!(std::fs::read(server.path("f.txt")).unwrap(), b"new");
    assert!(!server.path("new.txt").exists());

    std::fs::create_dir_all(server.path("tree/sub")).unwrap();
    fails_with(
        ferry(&["mv", &server.url("tree"), &server.url("tree/sub/x")]),
        "ferry: bad_request: tree: cannot move a directory into itself (tree/sub/x is inside it)",
    );
    assert!(server.path("tree/sub").is_dir());
}

#[test]
fn mv_onto_a_name_ending_in_a_slash_needs_that_directory() {
    let server = TestServer::start();
    std::fs::write(server.path("m.txt"), b"m").unwrap();
    std::fs::write(server.path("plain"), b"p").unwrap();
    fails_with(
        ferry(&["mv", &server.url("m.txt"), &server.url("nodir/")]),
        "ferry: not_found: nodir: no such directory",
    );
    fails_with(
        ferry(&["mv", &server.url("m.txt"), "plain/"]),
        "ferry: not_a_directory: plain: not a directory",
    );
    assert_eq!(std::fs::read(server.path("m.txt")).unwrap(), b"m");
    assert!(!server.path("nodir").exists());
    std::fs::create_dir(server.path("dir")).unwrap();
    ok(ferry(&["mv", &server.url("m.txt"), "dir/"]));
    assert_eq!(std::fs::read(server.path("dir/m.txt")).unwrap(), b"m");
}

#[test]
fn get_without_a_target_downloads_here_and_messages_carry_no_os_error_numbers() {
    let server = TestServer::start();
    std::fs::write(server.path("r.txt"), b"r").unwrap();
    std::fs::write(server.path("s.txt"), b"s").unwrap();
    std::fs::create_dir(server.path("tree")).unwrap();
    std::fs::write(server.path("tree/a.txt"), b"a").unwrap();
    let here = tempfile::tempdir().unwrap();
    ok(ferry_in(here.path(), &["get", &server.url("r.txt")]));
    assert_eq!(std::fs::read(here.path().join("r.txt")).unwrap(), b"r");
    ok(ferry_in(
        here.path(),
        &["get", "-r", &server.url("s.txt"), &server.url("tree")],
    ));
    assert_eq!(std::fs::read(here.path().join("tree/a.txt")).unwrap(), b"a");
    // A local name anywhere but last is a usage error.
    let out = ferry_in(here.path(), &["get", "r.txt", &server.url("r.txt")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("only the last argument may be local"),
        "{}",
        text(&out.stderr)
    );
    // put still needs its target.
    assert_eq!(
        ferry_in(here.path(), &["put", "r.txt"]).status.code(),
        Some(2)
    );

    fails_with(
        ferry(&["ls", &server.url("missing")]),
        "ferry: not_found: missing: No such file or directory",
    );
    let out = ferry_in(here.path(), &["get", "-r", &server.url("tree"), "r.txt"]);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("os error"), "{stderr}");
    fails_with(out, "ferry: already_exists: r.txt: File exists");
}

#[test]
fn put_r_onto_a_remote_file_fails_once_and_uploads_nothing() {
    // More directories than the walk may read ahead: a refused item must stop its walk, not
    // wait on it.
    let server = TestServer::start();
    std::fs::write(server.path("taken"), b"a file").unwrap();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("tree");
    for d in 0..40 {
        let dir = src.join(format!("d{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f"), b"x").unwrap();
    }
    let out = ferry(&["put", "-r", src.to_str().unwrap(), &server.url("taken")]);
    fails_with(
        out,
        "ferry: not_a_directory: taken: a directory cannot replace a file",
    );
    assert_eq!(std::fs::read(server.path("taken")).unwrap(), b"a file");
    let names: Vec<_> = std::fs::read_dir(server.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["taken"]);
}
