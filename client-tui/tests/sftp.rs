//! The SFTP fallback against a real OpenSSH `sshd` (`ferry_testkit::sshd`) whose remote `PATH`
//! has no `ferry-server`: the real `ferry` binary falls back to `ssh -s host sftp` through the
//! same shared master, and says the copies were not verified by digest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::{bytes, make_tree, ok, p, text, tree};
use ferry_testkit::sshd::{Sshd, remote as at};

/// An sshd whose remote `PATH` holds no `ferry-server`.
fn sshd_without_server() -> Sshd {
    let sshd = Sshd::start(&ferry_testkit::bin::ferry_server());
    std::fs::remove_file(sshd.dir().join("bin/ferry-server")).unwrap();
    sshd
}

fn ferry_command(sshd: &Sshd, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"));
    command
        .arg("--ssh")
        .arg(sshd.ssh_command())
        .args(args)
        .env_remove("FERRY_SSH")
        .env_remove("FERRY_TOKEN");
    command
}

fn ferry(sshd: &Sshd, args: &[&str]) -> Output {
    ferry_command(sshd, args).output().unwrap()
}

#[test]
fn files_and_trees_travel_both_ways_over_sftp_with_one_login_each() {
    let sshd = sshd_without_server();
    let local = tempfile::tempdir().unwrap();
    let remote = tempfile::tempdir().unwrap();
    let data = bytes(5 * 1024 * 1024 + 17, 7);
    std::fs::write(local.path().join("one.bin"), &data).unwrap();
    make_tree(&local.path().join("tree"), 60);

    let put = ok(ferry(
        &sshd,
        &[
            "-v",
            "put",
            p(&local.path().join("one.bin")),
            &at(remote.path()),
        ],
    ));
    let said = text(&put.stderr);
    assert!(said.contains("falling back to SFTP"), "{said}");
    assert!(said.contains("not verified by digest"), "{said}");
    assert_eq!(std::fs::read(remote.path().join("one.bin")).unwrap(), data);
    // mtime (to the second) and mode come along, set with SFTP setstat.
    let (sent, arrived) = (
        std::fs::metadata(local.path().join("one.bin")).unwrap(),
        std::fs::metadata(remote.path().join("one.bin")).unwrap(),
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(sent.mtime(), arrived.mtime());
    assert_eq!(sent.mode(), arrived.mode());

    let before = sshd.logins();
    ok(ferry(
        &sshd,
        &[
            "put",
            "-r",
            p(&local.path().join("tree")),
            &at(remote.path()),
        ],
    ));
    assert_eq!(sshd.logins() - before, 1, "{}", sshd.log());
    assert_eq!(
        tree(&remote.path().join("tree")),
        tree(&local.path().join("tree"))
    );

    let listed = ok(ferry(&sshd, &["ls", &at(remote.path())]));
    let out = text(&listed.stdout);
    assert!(out.contains("one.bin") && out.contains("tree"), "{out}");
    assert!(!out.contains(".ferry-part."), "{out}");

    let back = tempfile::tempdir().unwrap();
    let got = ok(ferry(
        &sshd,
        &["get", &at(&remote.path().join("one.bin")), p(back.path())],
    ));
    assert!(text(&got.stderr).contains("not verified by digest"));
    assert_eq!(std::fs::read(back.path().join("one.bin")).unwrap(), data);
    let before = sshd.logins();
    ok(ferry(
        &sshd,
        &[
            "get",
            "-r",
            &at(&remote.path().join("tree")),
            p(back.path()),
        ],
    ));
    assert_eq!(sshd.logins() - before, 1, "{}", sshd.log());
    assert_eq!(
        tree(&back.path().join("tree")),
        tree(&local.path().join("tree"))
    );

    // The browsing commands.
    ok(ferry(&sshd, &["mkdir", &at(&remote.path().join("made"))]));
    assert!(remote.path().join("made").is_dir());
    ok(ferry(
        &sshd,
        &["mv", &at(&remote.path().join("one.bin")), "moved.bin"],
    ));
    assert_eq!(
        std::fs::read(remote.path().join("moved.bin")).unwrap(),
        data
    );
    ok(ferry(
        &sshd,
        &["rm", "-r", &at(&remote.path().join("tree"))],
    ));
    assert!(!remote.path().join("tree").exists());
    sshd.assert_no_ssh_left();
}

#[test]
fn an_interrupted_download_resumes_from_its_partial() {
    let sshd = sshd_without_server();
    let remote = tempfile::tempdir().unwrap();
    let data = bytes(3 * 1024 * 1024, 3);
    std::fs::write(remote.path().join("big.bin"), &data).unwrap();
    let local = tempfile::tempdir().unwrap();
    // What an interrupted run left: the first 2 MiB under the partial name.
    std::fs::write(
        local.path().join(".ferry-part.big.bin"),
        &data[..2 * 1024 * 1024],
    )
    .unwrap();
    let got = ok(ferry(
        &sshd,
        &["get", &at(&remote.path().join("big.bin")), p(local.path())],
    ));
    let said = text(&got.stderr);
    // Only the missing 1 MiB travelled.
    assert!(said.contains("1 file (1 MiB)"), "{said}");
    assert_eq!(std::fs::read(local.path().join("big.bin")).unwrap(), data);
    assert!(!local.path().join(".ferry-part.big.bin").exists());
    sshd.assert_no_ssh_left();
}

#[test]
fn a_killed_upload_leaves_only_its_temporary_name() {
    let sshd = sshd_without_server();
    let local = tempfile::tempdir().unwrap();
    let remote = tempfile::tempdir().unwrap();
    let big = local.path().join("big.bin");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(1024 * 1024 * 1024).unwrap();
    let mut child = ferry_command(&sshd, &["put", p(&big), &at(remote.path())])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let partial = remote.path().join(".ferry-part.big.bin");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < 1024 * 1024 {
        assert!(Instant::now() < deadline, "no partial upload appeared");
        assert!(child.try_wait().unwrap().is_none(), "ferry ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!remote.path().join("big.bin").exists());
    assert!(partial.exists());
    sshd.assert_no_ssh_left();
}

#[test]
fn hostile_and_odd_names_from_the_server_are_checked() {
    let sshd = sshd_without_server();
    let remote = tempfile::tempdir().unwrap();
    std::fs::write(remote.path().join("line\nbreak"), "x").unwrap();
    std::fs::write(remote.path().join("back\\slash"), "y").unwrap();
    std::fs::write(remote.path().join("plain"), "z").unwrap();
    let listed = ok(ferry(&sshd, &["ls", &at(remote.path())]));
    let out = text(&listed.stdout);
    // Control characters never reach the terminal raw; every name is there, escaped.
    assert!(!out.contains("line\nbreak"), "{out}");
    assert!(out.contains("plain"), "{out}");
    assert_eq!(out.lines().count(), 3, "{out}");
    let back = tempfile::tempdir().unwrap();
    ok(ferry(
        &sshd,
        &[
            "get",
            "-r",
            &at(remote.path()),
            p(&back.path().join("copy")),
        ],
    ));
    let copy = back.path().join("copy");
    assert_eq!(std::fs::read(copy.join("line\nbreak")).unwrap(), b"x");
    assert_eq!(std::fs::read(copy.join("back\\slash")).unwrap(), b"y");
    sshd.assert_no_ssh_left();
}

#[test]
fn an_existing_file_is_replaced_only_when_asked_and_json_says_not_verified() {
    let sshd = sshd_without_server();
    let local = tempfile::tempdir().unwrap();
    let remote = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("a.txt"), "new").unwrap();
    std::fs::write(remote.path().join("a.txt"), "old").unwrap();
    let src = p(&local.path().join("a.txt")).to_owned();

    let refused = ferry(&sshd, &["put", &src, &at(remote.path())]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("already_exists"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(std::fs::read(remote.path().join("a.txt")).unwrap(), b"old");

    let put = ok(ferry(
        &sshd,
        &["put", "--overwrite", "--json", &src, &at(remote.path())],
    ));
    assert_eq!(std::fs::read(remote.path().join("a.txt")).unwrap(), b"new");
    let lines: Vec<serde_json::Value> = text(&put.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = lines.iter().find(|l| l["type"] == "summary").unwrap();
    assert_eq!(summary["verified"], false);
    assert_eq!(summary["transport"], "sftp");
    assert!(
        summary["reason"]
            .as_str()
            .unwrap()
            .contains("not verified by digest")
    );
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "file" && l["verified"] == false)
    );
    sshd.assert_no_ssh_left();
}

/// A tree copy names every entry it did not handle and goes on with the rest: a file whose
/// destination is blocked fails by name (the command ends non-zero), the files after it still
/// arrive, and a symlink is named as left out rather than passed over in silence.
#[test]
fn a_tree_copy_names_what_it_did_not_copy_and_goes_on() {
    let sshd = sshd_without_server();
    let remote = tempfile::tempdir().unwrap();
    let src = remote.path().join("tree");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::create_dir_all(src.join("b")).unwrap();
    std::fs::write(src.join("a/blocked.txt"), b"blocked").unwrap();
    std::fs::write(src.join("b/later.txt"), b"later").unwrap();
    std::os::unix::fs::symlink("b/later.txt", src.join("link")).unwrap();
    let local = tempfile::tempdir().unwrap();
    // A directory where a file should land: that one file cannot be placed.
    std::fs::create_dir_all(local.path().join("tree/a/blocked.txt/inside")).unwrap();

    let out = ferry(
        &sshd,
        &["get", "-r", "--overwrite", &at(&src), p(local.path())],
    );
    let said = text(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("blocked.txt"), "{said}");
    assert!(said.contains("left out") && said.contains("link"), "{said}");
    assert!(said.contains("1 entry not copied"), "{said}");
    assert_eq!(
        std::fs::read(local.path().join("tree/b/later.txt")).unwrap(),
        b"later"
    );
    assert!(local.path().join("tree/a/blocked.txt/inside").is_dir());
}
