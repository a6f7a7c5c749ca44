//! The real TUI in tmux against the real server binary run as `nobody`: a selection in which
//! one item is refused copies the others, and a copy that could not read a directory says so
//! and lists it, with why, in the job's details (Enter on the transfer list).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/endless.rs"]
mod endless;
#[path = "common/tmux.rs"]
mod tmux;

use ferry_testkit::data::chmod;
use ferry_testkit::nobody::NobodyServer;
use tmux::{Desk, Tmux, WAIT};

/// Polls until `check` holds, failing after the common deadline.
fn wait_until(what: &str, check: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn one_refused_item_of_a_selection_fails_alone_and_is_listed_in_the_details() {
    let served = tempfile::tempdir_in("/dev/shm").unwrap();
    chmod(served.path(), 0o755);
    let dest = served.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    chmod(&dest, 0o777);
    // A directory the server may not read: a copy into it cannot learn what is there.
    std::fs::create_dir(dest.join("locked")).unwrap();
    chmod(&dest.join("locked"), 0o700);
    let server = NobodyServer::start(served.path());

    let desk = Desk::new();
    let local = &desk.local;
    std::fs::create_dir_all(local.join("locked")).unwrap();
    std::fs::write(local.join("locked/inner.txt"), b"i").unwrap();
    for i in 0..5 {
        std::fs::write(local.join(format!("file{i}.txt")), format!("{i}")).unwrap();
    }
    let tmux = desk.ferry(&[&server.url("dest")], (120, 30));
    tmux.wait_for("both panes", |s| {
        s.contains("file4.txt") && s.contains("locked/") && s.contains("connected")
    });
    tmux.keys(&["C-a"]);
    tmux.wait_for("all marked", |s| s.contains("6 marked"));
    tmux.keys(&["F5", "Enter"]);
    wait_until("the five files on the server", || {
        (0..5).all(|i| dest.join(format!("file{i}.txt")).exists())
    });
    let screen = tmux.wait_for("the job's end", |s| s.contains("1 failed"));
    assert!(screen.contains("forbidden"), "{screen}");

    tmux.keys(&["t"]);
    tmux.wait_for("the transfer list focused", |s| s.contains("Enter details"));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the details", |s| s.contains("1 failed, 0 not copied"));
    assert!(
        screen
            .lines()
            .any(|l| l.contains("failed") && l.contains("dest/locked") && l.contains("forbidden")),
        "{screen}"
    );
    tmux.keys(&["Escape"]);
    tmux.wait_for("the details closed", |s| !s.contains("not copied "));
}

/// ferry on `server`'s root; in the remote pane, `key` (F5 copy, F6 move) on `a`, which holds
/// a directory the server cannot read: the banner says what was not copied, and why.
fn send_a_from_the_remote_pane(server: &NobodyServer, key: &str) -> (Desk, Tmux) {
    let desk = Desk::new();
    let tmux = desk.ferry(&[&server.url("")], (120, 30));
    tmux.wait_for("the remote pane", |s| {
        s.contains("a/") && s.contains("connected")
    });
    tmux.keys(&["Tab"]);
    tmux.keys(&["Home"]);
    tmux.wait_for("the cursor on a", |s| s.contains("a/"));
    tmux.keys(&[key, "Enter"]);
    let screen = tmux.wait_for("the banner", |s| s.contains("not copied, first:"));
    assert!(screen.contains("unreadable"), "{screen}");
    (desk, tmux)
}

#[test]
fn a_download_that_could_not_read_a_directory_says_so_and_names_it() {
    let served = tempfile::tempdir_in("/dev/shm").unwrap();
    chmod(served.path(), 0o755);
    for dir in ["a", "a/open", "a/private"] {
        std::fs::create_dir(served.path().join(dir)).unwrap();
        chmod(&served.path().join(dir), 0o755);
    }
    std::fs::write(served.path().join("a/open/f.txt"), b"open").unwrap();
    chmod(&served.path().join("a/open/f.txt"), 0o644);
    std::fs::write(served.path().join("a/private/secret.txt"), b"s").unwrap();
    chmod(&served.path().join("a/private"), 0o700);
    std::os::unix::fs::symlink("open/f.txt", served.path().join("a/link")).unwrap();
    let server = NobodyServer::start(served.path());

    let (desk, tmux) = send_a_from_the_remote_pane(&server, "F5");
    let local = &desk.local;
    assert!(local.join("a/open/f.txt").exists());

    tmux.keys(&["t"]);
    tmux.wait_for("the transfer list focused", |s| s.contains("Enter details"));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the details", |s| s.contains("0 failed, 2 not copied"));
    let row = |reason: &str, path: &str| {
        screen
            .lines()
            .any(|l| l.contains(reason) && l.contains(path))
    };
    assert!(row("unreadable", "a/private"), "{screen}");
    assert!(screen.contains("forbidden: Permission denied"), "{screen}");
    assert!(row("symlink", "a/link"), "{screen}");
}

#[test]
fn a_listing_that_never_ends_stops_at_the_pane_cap_and_says_so() {
    let (_runtime, addr) = endless::start();
    let desk = Desk::new();
    let tmux = desk.ferry(&[&format!("ferry://{addr}/")], (160, 30));
    let screen = tmux.wait_for("the cap message", |s| s.contains("more than 200,000"));
    assert!(screen.contains("too_large"), "{screen}");
    // Still alive and answering keys.
    tmux.keys(&["F1"]);
    tmux.wait_for("the help", |s| s.contains("copy to the other pane"));
}

/// F8 on a directory a running upload is reading is refused, with a message naming it and the
/// transfer, instead of deleting the files under the job; the job then completes whole, and
/// once it is over the same F8 asks as usual.
#[test]
fn deleting_what_a_running_upload_reads_is_refused_and_names_it() {
    let server = common::TestServer::start_shm();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // A slow link keeps the upload running while the keys are pressed.
    let proxy = runtime.block_on(common::Proxy::start(
        server.addr,
        Some(std::time::Duration::from_millis(30)),
    ));
    let desk = Desk::on_shm();
    let local = &desk.local;
    std::fs::create_dir_all(local.join("big")).unwrap();
    let body = |i: usize| common::bytes(1024 * 1024, i as u64);
    for i in 0..40 {
        std::fs::write(local.join(format!("big/f{i:02}")), body(i)).unwrap();
    }
    let tmux = desk.ferry(&[&proxy.url("")], (120, 30));
    tmux.wait_for("both panes", |s| {
        s.contains("big/") && s.contains("connected")
    });
    // The local pane's top row is `..`: big/ is the one below.
    tmux.keys(&["Home", "Down"]);
    tmux.keys(&["F5", "Enter"]);
    wait_until("the upload under way", || server.path("big").is_dir());
    tmux.keys(&["F8"]);
    let screen = tmux.wait_for("the refusal", |s| s.contains("is being read by transfer"));
    assert!(
        screen.contains("big is being read by transfer #1"),
        "{screen}"
    );
    assert!(!screen.contains("Delete directory"), "{screen}");
    tmux.keys(&["Enter"]);
    wait_until("every file on the server", || {
        (0..40).all(|i| std::fs::read(server.path(&format!("big/f{i:02}"))).ok() == Some(body(i)))
    });
    for i in 0..40 {
        assert_eq!(
            std::fs::read(local.join(format!("big/f{i:02}"))).unwrap(),
            body(i)
        );
    }
    // Over: deleting is asked for as usual.
    tmux.wait_for("the job's end", |s| {
        !s.contains("is being read") && s.contains("✓")
    });
    tmux.keys(&["F8"]);
    tmux.wait_for("the usual question", |s| {
        s.contains("Delete directory big and everything in it?")
    });
    tmux.keys(&["n"]);
}

/// A move (F6) of a remote directory the server could read only in part keeps on the server
/// every entry that did not arrive, and removes what did.
#[test]
fn a_move_that_could_not_read_everything_keeps_what_did_not_arrive() {
    let served = tempfile::tempdir_in("/dev/shm").unwrap();
    chmod(served.path(), 0o755);
    // Writable by the server (nobody), so it can remove what arrived.
    for dir in ["a", "a/open", "a/private", "a/z"] {
        std::fs::create_dir(served.path().join(dir)).unwrap();
        chmod(&served.path().join(dir), 0o777);
    }
    for (file, body) in [
        ("a/open/f.txt", "open"),
        ("a/private/secret.txt", "secret"),
        ("a/z/g.txt", "after"),
    ] {
        std::fs::write(served.path().join(file), body).unwrap();
        chmod(&served.path().join(file), 0o644);
    }
    chmod(&served.path().join("a/private"), 0o700);
    let server = NobodyServer::start(served.path());

    let (desk, _tmux) = send_a_from_the_remote_pane(&server, "F6");
    let local = &desk.local;
    wait_until("the moved files gone from the server", || {
        !served.path().join("a/open/f.txt").exists() && !served.path().join("a/z/g.txt").exists()
    });
    assert_eq!(std::fs::read(local.join("a/open/f.txt")).unwrap(), b"open");
    assert_eq!(std::fs::read(local.join("a/z/g.txt")).unwrap(), b"after");
    // What did not arrive stays where it was, and so do the directories holding it.
    assert_eq!(
        std::fs::read(served.path().join("a/private/secret.txt")).unwrap(),
        b"secret"
    );
    assert!(!local.join("a/private/secret.txt").exists());
}

/// The same refusal on the other side: F8 on a remote directory a running download reads.
#[test]
fn deleting_what_a_running_download_reads_is_refused_and_names_it() {
    let server = common::TestServer::start_shm();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = runtime.block_on(common::Proxy::start(
        server.addr,
        Some(std::time::Duration::from_millis(30)),
    ));
    std::fs::create_dir(server.path("big")).unwrap();
    let body = |i: usize| common::bytes(1024 * 1024, i as u64);
    for i in 0..40 {
        std::fs::write(server.path(&format!("big/f{i:02}")), body(i)).unwrap();
    }
    let desk = Desk::on_shm();
    let local = &desk.local;
    let tmux = desk.ferry(&[&proxy.url("")], (120, 30));
    tmux.wait_for("the remote pane", |s| {
        s.contains("big/") && s.contains("connected")
    });
    tmux.keys(&["Tab"]);
    tmux.keys(&["Home"]);
    tmux.keys(&["F5", "Enter"]);
    wait_until("the download under way", || local.join("big").is_dir());
    tmux.keys(&["F8"]);
    let screen = tmux.wait_for("the refusal", |s| s.contains("is being read by transfer"));
    assert!(
        screen.contains("big is being read by transfer #1"),
        "{screen}"
    );
    tmux.keys(&["Enter"]);
    wait_until("every file here", || {
        (0..40).all(|i| std::fs::read(local.join(format!("big/f{i:02}"))).ok() == Some(body(i)))
    });
    for i in 0..40 {
        assert_eq!(
            std::fs::read(server.path(&format!("big/f{i:02}"))).unwrap(),
            body(i)
        );
    }
}
