//! `walk` names what it could not go into, with why: a directory the server may not read (the
//! real binary run as an unprivileged user, since root reads everything) and one below the
//! depth cap, so that a copy of the tree can say what it left out instead of only counting it.
// Helpers outside `#[test]` functions panic on purpose too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::{Client, Server};
use serde_json::Value;

fn chmod(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn by_name<'a>(entries: &'a [Value], name: &str) -> &'a Value {
    entries
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {entries:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_directory_is_listed_with_its_error() {
    assert!(
        std::path::Path::new("/usr/bin/setpriv").exists(),
        "the test needs setpriv to run the server as another user"
    );
    let root = tempfile::tempdir_in("/dev/shm").unwrap();
    chmod(root.path(), 0o755);
    std::fs::create_dir_all(root.path().join("a/private")).unwrap();
    std::fs::create_dir_all(root.path().join("a/open")).unwrap();
    std::fs::write(root.path().join("a/private/secret.txt"), b"x").unwrap();
    std::fs::write(root.path().join("a/open/f.txt"), b"y").unwrap();
    chmod(&root.path().join("a"), 0o755);
    chmod(&root.path().join("a/open"), 0o755);
    chmod(&root.path().join("a/open/f.txt"), 0o644);
    // Owned by root: the server, as nobody, may see it but not read it.
    chmod(&root.path().join("a/private"), 0o700);
    let mut child = Command::new("/usr/bin/setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_ferry-server"))
        .args(["--root", root.path().to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env_remove("FERRY_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "server exited");
        if let Some(addr) = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))
        {
            break addr.parse().unwrap();
        }
    };
    // The server logs each request; a full pipe must not stall it.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let mut client = Client::connect(addr).await;
    client.hello().await;
    let (entries, skipped, _) = client.list_all("walk", "a").await.unwrap();
    let private = by_name(&entries, "private");
    assert_eq!(private["kind"], "dir");
    assert_eq!(private["error"]["code"], "forbidden", "{private}");
    assert!(
        private["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ermission denied"),
        "{private}"
    );
    // The readable rest is walked as before, without an error.
    assert!(by_name(&entries, "open").get("error").is_none());
    by_name(&entries, "open/f.txt");
    // Still counted, for clients that do not read `error`.
    assert_eq!(skipped, 1);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_below_the_depth_cap_is_named_with_too_large() {
    let server = Server::start_on_shm(|_| {}).await;
    let deep = vec!["d"; 131].join("/");
    std::fs::create_dir_all(server.path(&deep)).unwrap();
    let mut client = server.client().await;
    let (entries, _, _) = client.list_all("walk", "").await.unwrap();
    let with_error: Vec<&Value> = entries
        .iter()
        .filter(|e| e.get("error").is_some())
        .collect();
    assert_eq!(with_error.len(), 1, "{with_error:?}");
    assert_eq!(with_error[0]["name"].as_str().unwrap().len(), 129 * 2 - 1);
    assert_eq!(with_error[0]["error"]["code"], "too_large");
}
