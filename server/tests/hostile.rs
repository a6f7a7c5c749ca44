//! Hostile input against the real server over raw sockets, one short case per attack. Every
//! case runs through [`hostile`], which checks what a user of the server would: the error
//! code the attacker got, that a second client is served during and after the attack, that
//! nothing outside the root changed, and that no file under a final name holds anything but
//! what was there before or what a completed upload put there.

// Helpers run inside tests: a failed step should stop the test with its error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use common::{Client, Server, code, digest, pattern, snapshot};
use ferry_server::Config;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// The token every harness connection offers; servers without one ignore it.
const TOKEN: &str = "s3cret";

/// One attack in progress: the server, and a second client that must stay served.
struct Case {
    server: Server,
    other: Client,
    probes: usize,
}

impl Case {
    /// A `stat` of the root on the second connection; it must succeed.
    async fn probe(&mut self) {
        let reply = self.other.request(json!({"op": "stat", "path": ""})).await;
        assert_eq!(reply["ok"], true, "the second client is served: {reply}");
        assert_eq!(reply["entry"]["kind"], "dir", "{reply}");
        self.probes += 1;
    }

    /// A fresh connection that has said hello.
    async fn client(&self) -> Client {
        greeted(&self.server).await
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.server.path(rel)
    }

    /// A header of 64 KiB + 1 on `client` is refused as too long and its connection closed,
    /// while the second client stays served.
    async fn over_64_kib_is_refused_and_closed(&mut self, mut client: Client) {
        let mut line = b"{\"op\":\"stat\",\"path\":\"".to_vec();
        line.resize(64 * 1024 + 1, b'a');
        client.send(&line).await;
        self.probe().await;
        assert_eq!(code(&client.read_reply().await), "header_too_long");
        assert!(client.closed().await);
    }

    /// `client` hangs up in the middle of an upload: the server closes its side, and the
    /// second client finds no file at `path`.
    async fn hang_up_leaves_nothing(&mut self, mut client: Client, path: &str) {
        let _ = client.writer.shutdown().await;
        assert!(client.closed().await);
        let stat = self
            .other
            .request(json!({"op": "stat", "path": path}))
            .await;
        assert_eq!(code(&stat), "not_found");
    }
}

async fn greeted(server: &Server) -> Client {
    let mut client = Client::connect(server.addr).await;
    let reply = client
        .request(json!({"op": "hello", "version": 1, "token": TOKEN}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    client
}

/// The tree every case starts from: a file, a directory, links inside the root and links to
/// the outside (absolute and relative), and a link loop.
fn fixture(server: &Server) {
    std::fs::write(server.path("f.txt"), b"file").unwrap();
    std::fs::create_dir(server.path("d")).unwrap();
    std::fs::write(server.path("d/secret.txt"), b"inside").unwrap();
    symlink("d", server.path("link")).unwrap();
    symlink(&server.outside, server.path("escape")).unwrap();
    symlink("../outside/secret.txt", server.path("rel-escape")).unwrap();
    symlink("d/../../outside", server.path("sneaky")).unwrap();
    symlink("loop", server.path("loop")).unwrap();
}

/// Regular files under `dir` with their bytes, hidden partials left out.
fn final_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    snapshot(dir)
        .into_iter()
        .filter(|(rel, _)| !rel.ends_with('/') && !rel.ends_with('@'))
        .filter(|(rel, _)| {
            let name = rel.rsplit('/').next().unwrap_or(rel);
            !name.starts_with(".ferry-part.")
        })
        .collect()
}

fn outside_digest(server: &Server) -> String {
    let mut all = Vec::new();
    for (name, bytes) in server.outside_snapshot() {
        all.extend_from_slice(name.as_bytes());
        all.push(0);
        all.extend_from_slice(digest(&bytes).as_bytes());
    }
    digest(&all)
}

/// Runs one attack. `attack` gets the case, must call [`Case::probe`] at least once while its
/// hostile connection is in its hostile state, and returns the files a completed upload was
/// allowed to leave (path and bytes); any other new or changed file under a final name fails.
async fn hostile<F>(adjust: impl FnOnce(&mut Config), attack: F)
where
    F: AsyncFnOnce(&mut Case) -> Vec<(&'static str, Vec<u8>)>,
{
    let server = Server::start_on_shm(|config| {
        config.header_timeout = Duration::from_secs(5);
        adjust(config);
    })
    .await;
    fixture(&server);
    let outside_before = outside_digest(&server);
    let files_before = final_files(&server.root);
    let other = greeted(&server).await;
    let mut case = Case {
        server,
        other,
        probes: 0,
    };
    case.probe().await;
    let completed = attack(&mut case).await;
    assert!(case.probes >= 2, "the case never probed during the attack");
    case.probe().await;
    // A newcomer is served too, once the attack's own connections have been let go.
    let mut served = false;
    for _ in 0..100 {
        let mut fresh = Client::connect(case.server.addr).await;
        let hello = fresh
            .request(json!({"op": "hello", "version": 1, "token": TOKEN}))
            .await;
        if hello["ok"] == true {
            // The whole tree still walks: no entry left behind breaks a listing.
            let walked = fresh.list_all("walk", "").await;
            assert!(walked.is_ok(), "{walked:?}");
            served = true;
            break;
        }
        assert_eq!(code(&hello), "busy");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a new client was never served after the attack");

    let server = &case.server;
    assert_eq!(
        outside_digest(server),
        outside_before,
        "outside the root changed"
    );
    let beside = std::fs::read_dir(server.root.parent().unwrap())
        .unwrap()
        .count();
    assert_eq!(beside, 2, "something appeared beside the root");
    for (rel, bytes) in final_files(&server.root) {
        if files_before.get(&rel) == Some(&bytes) {
            continue;
        }
        let allowed = completed.iter().any(|(p, b)| *p == rel && *b == bytes);
        assert!(
            allowed,
            "{rel} holds {} unexpected bytes under a final name",
            bytes.len()
        );
    }
}

/// The simplest attack: `bytes` on a greeted connection get one error with `code`, and the
/// connection is still usable afterwards.
async fn refused(bytes: &[u8], expected: &str) {
    let bytes = bytes.to_vec();
    let expected = expected.to_owned();
    hostile(
        |_| {},
        async move |case: &mut Case| {
            let mut client = case.client().await;
            client.send(&bytes).await;
            case.probe().await;
            let reply = client.read_reply().await;
            assert_eq!(code(&reply), expected, "{reply}");
            let after = client.request(json!({"op": "stat", "path": "d"})).await;
            assert_eq!(after["ok"], true, "the connection stays usable: {after}");
            vec![]
        },
    )
    .await;
}

/// [`refused`] for one JSON request.
async fn refused_json(request: Value, expected: &str) {
    let mut line = serde_json::to_vec(&request).unwrap();
    line.push(b'\n');
    refused(&line, expected).await;
}

/// A request, then the payload, as one write.
fn with_payload(header: &str, payload: &[u8]) -> Vec<u8> {
    let mut bytes = header.as_bytes().to_vec();
    bytes.push(b'\n');
    bytes.extend_from_slice(payload);
    bytes
}

// ---- Malformed headers ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_json_is_bad_request() {
    refused(b"{\"op\":\"stat\",\"path\":\n", "bad_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_that_is_an_array_is_bad_request() {
    refused(b"[\"stat\",\"f.txt\"]\n", "bad_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_array_spelling_a_recursive_remove_removes_nothing() {
    // serde reads structs from arrays field by field; this once removed `d` and all it held.
    refused(b"[\"remove\",\"d\",true]\n", "bad_request").await;
    refused(b"[\"put\",{\"path\":\"d/x\",\"size\":1}]\n", "bad_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_that_is_a_number_is_bad_request() {
    refused(b"42\n", "bad_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_that_is_a_string_is_bad_request() {
    refused(b"\"stat f.txt\"\n", "bad_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_line_and_null_are_bad_request() {
    refused(b"\n", "bad_request").await;
    refused(b"null\n", "bad_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_op_is_bad_request() {
    refused_json(
        json!({"op": "chmod", "path": "f.txt", "mode": 511}),
        "bad_request",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_op_is_bad_request() {
    refused_json(json!({"path": "f.txt"}), "bad_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_of_the_wrong_type_is_bad_request() {
    refused_json(json!({"op": "stat", "path": 5}), "bad_request").await;
    refused_json(
        json!({"op": "get", "path": ["d", "secret.txt"]}),
        "bad_request",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_of_the_wrong_type_removes_nothing() {
    refused_json(
        json!({"op": "remove", "path": "d", "recursive": "yes"}),
        "bad_request",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_keys_are_bad_request() {
    refused(
        b"{\"op\":\"remove\",\"path\":\"f.txt\",\"path\":\"d/secret.txt\"}\n",
        "bad_request",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_op_key_does_not_smuggle_a_second_op() {
    refused(
        b"{\"op\":\"stat\",\"op\":\"remove\",\"path\":\"f.txt\"}\n",
        "bad_request",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_put_field_refuses_and_skips_the_payload() {
    let payload = b"{\"op\":\"remove\",\"path\":\"f.txt\"}\n";
    let header = format!(
        "{{\"op\":\"put\",\"path\":\"new.txt\",\"size\":{},\"overwirte\":true}}",
        payload.len()
    );
    refused(&with_payload(&header, payload), "bad_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_with_an_unknown_field_skips_its_payload_and_its_trailer() {
    // What a newer client's upload looks like to this server: the trailer line after the
    // payload must not be read as a request of its own, or every later answer is off by one.
    let payload = b"{\"op\":\"remove\",\"path\":\"f.txt\"}\n";
    let header = format!(
        "{{\"op\":\"put\",\"path\":\"new.txt\",\"size\":{},\"trailer\":true,\"from_the_future\":1}}",
        payload.len()
    );
    let mut bytes = with_payload(&header, payload);
    bytes.extend_from_slice(format!("{{\"digest\":\"blake3:{}\"}}\n", "0".repeat(64)).as_bytes());
    refused(&bytes, "bad_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_and_overlong_slashes_are_bad_request() {
    refused(b"{\"op\":\"get\",\"path\":\"\xff\xfe\"}\n", "bad_request").await;
    // `..` and `/` spelt as overlong UTF-8 sequences.
    refused(
        b"{\"op\":\"get\",\"path\":\"\xc0\xae\xc0\xae\xc0\xafoutside\"}\n",
        "bad_request",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_order_mark_before_the_header_is_bad_request() {
    refused(
        b"\xef\xbb\xbf{\"op\":\"stat\",\"path\":\"\"}\n",
        "bad_request",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_is_bad_request_not_a_stack_overflow() {
    let mut line = b"{\"op\":\"stat\",\"path\":\"f.txt\",\"x\":".to_vec();
    line.extend(std::iter::repeat_n(b'[', 30_000));
    line.extend(std::iter::repeat_n(b']', 30_000));
    line.extend_from_slice(b"}\n");
    refused(&line, "bad_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_surrogate_escape_is_bad_request() {
    refused(b"{\"op\":\"stat\",\"path\":\"\\ud800\"}\n", "bad_request").await;
}

// ---- Numbers ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_size_of_two_to_the_64_is_bad_request() {
    refused(
        b"{\"op\":\"put\",\"path\":\"big\",\"size\":18446744073709551616}\n",
        "bad_request",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_float_and_string_sizes_are_bad_request() {
    for size in ["-1", "3.0", "1e3", "\"5\"", "null", "true"] {
        let header = format!("{{\"op\":\"put\",\"path\":\"n\",\"size\":{size}}}\n");
        refused(header.as_bytes(), "bad_request").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_plus_size_overflowing_is_too_large() {
    hostile(
        |_| {},
        async |case: &mut Case| {
            let mut client = case.client().await;
            client
                .send_json(&json!({"op": "put", "path": "o", "size": u64::MAX, "offset": 1}))
                .await;
            case.probe().await;
            assert_eq!(code(&client.read_reply().await), "too_large");
            // The announced payload is endless; the client can only hang up.
            drop(client);
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_offsets_past_the_end_or_past_u64_are_refused() {
    refused_json(
        json!({"op": "get", "path": "f.txt", "offset": u64::MAX}),
        "offset_mismatch",
    )
    .await;
    refused(
        b"{\"op\":\"get\",\"path\":\"f.txt\",\"offset\":18446744073709551616}\n",
        "bad_request",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_versions_out_of_range_are_refused() {
    refused(
        b"{\"op\":\"hello\",\"version\":4294967296}\n",
        "bad_request",
    )
    .await;
    refused(b"{\"op\":\"hello\",\"version\":-1}\n", "bad_request").await;
    refused_json(json!({"op": "hello", "version": 0}), "unsupported_version").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mtime_out_of_range_is_refused_before_the_payload() {
    let header = "{\"op\":\"put\",\"path\":\"m\",\"size\":3,\"mtime\":1e30}";
    refused(&with_payload(header, b"abc"), "bad_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_mtimes_keep_the_bytes_and_the_listing() {
    hostile(
        |_| {},
        async |case: &mut Case| {
            let mut client = case.client().await;
            // cap-std panics reading i64::MIN seconds back, so once stored it broke every
            // listing of its directory (found by this suite).
            for (name, mtime) in [("min", i64::MIN), ("min1", i64::MIN + 1), ("max", i64::MAX)] {
                let reply = client.put(name, b"abc", json!({"mtime": mtime})).await;
                assert_eq!(reply["ok"], true, "{reply}");
            }
            case.probe().await;
            let (entries, _, _) = client.list_all("list", "").await.unwrap();
            assert!(entries.iter().any(|e| e["name"] == "min"));
            for name in ["min", "min1", "max"] {
                let stat = client.request(json!({"op": "stat", "path": name})).await;
                assert_eq!(stat["ok"], true, "{stat}");
            }
            vec![
                ("min", b"abc".to_vec()),
                ("min1", b"abc".to_vec()),
                ("max", b"abc".to_vec()),
            ]
        },
    )
    .await;
}

// ---- Payload framing ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_closing_inside_its_payload_leaves_no_final_file() {
    for size in [1000, 4 * 1024 * 1024] {
        hostile(
            |_| {},
            async move |case: &mut Case| {
                let mut client = case.client().await;
                client
                    .send_json(&json!({"op": "put", "path": "short.bin", "size": size}))
                    .await;
                client.send(&pattern(100, 1)).await;
                case.probe().await;
                case.hang_up_leaves_nothing(client, "short.bin").await;
                vec![]
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_past_the_announced_size_are_the_next_header() {
    hostile(
        |_| {},
        async |case: &mut Case| {
            let mut client = case.client().await;
            let mut bytes = with_payload(
                "{\"op\":\"put\",\"path\":\"long.txt\",\"size\":5}",
                b"12345",
            );
            bytes.extend_from_slice(b"6789 and more\n");
            client.send(&bytes).await;
            case.probe().await;
            assert_eq!(client.read_reply().await["ok"], true);
            assert_eq!(code(&client.read_reply().await), "bad_request");
            vec![("long.txt", b"12345".to_vec())]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_malformed_trailer_leaves_no_file() {
    let wrong = format!("{{\"digest\":\"{}\"}}", digest(b"other"));
    for (trailer, expected) in [
        (wrong.as_str(), "checksum_mismatch"),
        ("{\"digest\":\"md5:abc\"}", "bad_request"),
        ("[]", "bad_request"),
    ] {
        let mut bytes = with_payload(
            "{\"op\":\"put\",\"path\":\"t.txt\",\"size\":3,\"trailer\":true}",
            b"abc",
        );
        bytes.extend_from_slice(trailer.as_bytes());
        bytes.push(b'\n');
        refused(&bytes, expected).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_mismatch_up_front_leaves_no_file() {
    let header = format!(
        "{{\"op\":\"put\",\"path\":\"dm.txt\",\"size\":3,\"digest\":\"{}\"}}",
        digest(b"xyz")
    );
    refused(&with_payload(&header, b"abc"), "checksum_mismatch").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_past_the_partial_is_offset_mismatch() {
    let header = "{\"op\":\"put\",\"path\":\"r.txt\",\"size\":3,\"offset\":10}";
    refused(&with_payload(header, b"abc"), "offset_mismatch").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_that_stalls_times_out_and_leaves_no_final_file() {
    hostile(
        |config| {
            config.idle_timeout = Duration::from_millis(500);
            // A payload that stops arriving is cut by the stall timeout.
            config.stall_timeout = Duration::from_millis(500);
        },
        async |case: &mut Case| {
            let mut client = case.client().await;
            client
                .send_json(&json!({"op": "put", "path": "stall.bin", "size": 100}))
                .await;
            client.send(&[7u8; 10]).await;
            case.probe().await;
            assert_eq!(code(&client.read_reply().await), "timeout");
            assert!(client.closed().await);
            // The second client sat idle just as long and was closed by the same rule.
            case.other = case.client().await;
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trailer_that_never_comes_leaves_no_final_file() {
    hostile(
        |_| {},
        async |case: &mut Case| {
            let mut client = case.client().await;
            let bytes = with_payload(
                "{\"op\":\"put\",\"path\":\"nt.txt\",\"size\":3,\"trailer\":true}",
                b"abc",
            );
            client.send(&bytes).await;
            case.probe().await;
            case.hang_up_leaves_nothing(client, "nt.txt").await;
            vec![]
        },
    )
    .await;
}

// ---- Header size and timing ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_of_64_kib_plus_one_is_refused_and_closed() {
    hostile(
        |_| {},
        async |case: &mut Case| {
            let client = case.client().await;
            case.over_64_kib_is_refused_and_closed(client).await;
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_ending_header_is_cut_off() {
    hostile(
        |_| {},
        async |case: &mut Case| {
            let Client { mut reader, writer } = case.client().await;
            let flood = tokio::spawn(async move {
                let mut writer = writer;
                let chunk = vec![b'{'; 256 * 1024];
                let mut sent = 0usize;
                while writer.write_all(&chunk).await.is_ok() && sent < 64 * 1024 * 1024 {
                    sent += chunk.len();
                }
                sent
            });
            case.probe().await;
            let reply = read_reply_from(&mut reader).await;
            assert_eq!(code(&reply), "header_too_long");
            let sent = flood.await.unwrap();
            assert!(sent < 64 * 1024 * 1024, "the server kept reading");
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dribbling_header_times_out() {
    hostile(
        |config| config.header_timeout = Duration::from_millis(400),
        async |case: &mut Case| {
            let Client { reader, writer } = case.client().await;
            let dribble = tokio::spawn(async move {
                let mut writer = writer;
                for byte in b"{\"op\":\"stat\",\"path\":\"f.txt\"}"
                    .iter()
                    .cycle()
                    .take(40)
                {
                    if writer.write_all(std::slice::from_ref(byte)).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                writer
            });
            case.probe().await;
            let mut client = Client {
                reader,
                writer: dribble.await.unwrap(),
            };
            assert_eq!(code(&client.read_reply().await), "timeout");
            assert!(client.closed().await);
            vec![]
        },
    )
    .await;
}

// ---- Floods ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_pipelined_requests_is_answered_in_order() {
    const FLOOD: usize = 20_000;
    hostile(
        |_| {},
        async |case: &mut Case| {
            let Client { reader, writer } = case.client().await;
            // Written on its own task: the replies must be read while the requests go out.
            let flood = tokio::spawn(async move {
                let mut writer = writer;
                let mut burst = Vec::new();
                for i in 0..FLOOD {
                    let path = if i % 2 == 0 { "f.txt" } else { "missing" };
                    burst.extend_from_slice(
                        format!("{{\"op\":\"stat\",\"path\":\"{path}\"}}\n").as_bytes(),
                    );
                }
                writer.write_all(&burst).await.unwrap();
                writer
            });
            let mut reader = reader;
            for i in 0..FLOOD {
                let reply = read_reply_from(&mut reader).await;
                if i % 2 == 0 {
                    assert_eq!(reply["entry"]["size"], 4, "{i}: {reply}");
                } else {
                    assert_eq!(code(&reply), "not_found", "{i}");
                }
                if i == FLOOD / 2 {
                    case.probe().await;
                }
            }
            drop(flood.await.unwrap());
            vec![]
        },
    )
    .await;
}

/// One reply line from a reader split off a [`Client`].
async fn read_reply_from(
    reader: &mut tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> Value {
    let mut line = Vec::new();
    let read = tokio::io::AsyncBufReadExt::read_until(reader, b'\n', &mut line);
    let n = tokio::time::timeout(common::STEP, read)
        .await
        .unwrap()
        .unwrap();
    assert!(n > 0, "a reply, not the end of the stream");
    serde_json::from_slice(&line).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_garbage_lines_gets_one_bad_request_each() {
    hostile(
        |_| {},
        async |case: &mut Case| {
            let mut client = case.client().await;
            client.send(&b"x\n".repeat(5000)).await;
            case.probe().await;
            for _ in 0..5000 {
                assert_eq!(code(&client.read_reply().await), "bad_request");
            }
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_guessing_is_cut_off_after_three_tries() {
    hostile(
        |config| config.token = Some(TOKEN.into()),
        async |case: &mut Case| {
            let mut client = Client::connect(case.server.addr).await;
            let mut burst = Vec::new();
            for guess in 0..50 {
                burst.extend_from_slice(
                    format!("{{\"op\":\"hello\",\"version\":1,\"token\":\"guess{guess}\"}}\n")
                        .as_bytes(),
                );
            }
            client.send(&burst).await;
            case.probe().await;
            for _ in 0..3 {
                assert_eq!(code(&client.read_reply().await), "unauthorized");
            }
            assert!(client.closed().await);
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_connections_gets_busy_and_the_served_keep_going() {
    hostile(
        |config| config.max_connections = 8,
        async |case: &mut Case| {
            let mut crowd = Vec::new();
            for _ in 0..40 {
                crowd.push(Client::connect(case.server.addr).await);
            }
            case.probe().await;
            let mut busy = 0;
            for client in &mut crowd {
                let mut line = Vec::new();
                let read =
                    tokio::io::AsyncBufReadExt::read_until(&mut client.reader, b'\n', &mut line);
                if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), read).await
                    && n > 0
                {
                    let reply: Value = serde_json::from_slice(&line).unwrap();
                    assert_eq!(code(&reply), "busy");
                    busy += 1;
                }
            }
            // The harness's two connections and the first few of the crowd are served.
            assert!(busy >= 40 - 8, "only {busy} refused");
            drop(crowd);
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_before_hello_are_refused_and_their_payload_skipped() {
    hostile(
        |_| {},
        async |case: &mut Case| {
            let mut client = Client::connect(case.server.addr).await;
            let payload = b"{\"op\":\"remove\",\"path\":\"f.txt\"}\n";
            let header = format!(
                "{{\"op\":\"put\",\"path\":\"pre.txt\",\"size\":{}}}",
                payload.len()
            );
            client.send(&with_payload(&header, payload)).await;
            case.probe().await;
            assert_eq!(code(&client.read_reply().await), "bad_request");
            assert_eq!(
                code(
                    &client
                        .request(json!({"op": "remove", "path": "f.txt"}))
                        .await
                ),
                "bad_request"
            );
            assert!(case.path("f.txt").exists());
            vec![]
        },
    )
    .await;
}

// ---- Path escapes ----

/// Every op that takes a path gets `expected` for `wire`.
async fn path_refused(wire: &str, expected: &str) {
    let wire = wire.to_owned();
    let expected = expected.to_owned();
    hostile(
        |_| {},
        async move |case: &mut Case| {
            let mut client = case.client().await;
            let requests = [
                json!({"op": "stat", "path": wire}),
                json!({"op": "list", "path": wire}),
                json!({"op": "walk", "path": wire}),
                json!({"op": "summary", "path": wire}),
                json!({"op": "get", "path": wire}),
                json!({"op": "mkdir", "path": wire}),
                json!({"op": "mkdir", "path": wire, "parents": false}),
                json!({"op": "rename", "path": wire, "to": "moved"}),
                json!({"op": "rename", "path": "f.txt", "to": wire, "overwrite": true}),
                json!({"op": "remove", "path": wire, "recursive": true}),
            ];
            for request in requests {
                let reply = client.request(request.clone()).await;
                assert_eq!(code(&reply), expected, "{request}");
            }
            let put = client
                .put(&wire, b"pwned", json!({"overwrite": true}))
                .await;
            assert_eq!(code(&put), expected, "put {wire:?}");
            case.probe().await;
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_dot_in_every_position_is_bad_path() {
    for wire in [
        "..",
        "../outside/secret.txt",
        "d/../../outside/secret.txt",
        "d/..",
    ] {
        path_refused(wire, "bad_path").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_paths_are_bad_path() {
    for wire in ["/", "/etc/passwd", "//outside"] {
        path_refused(wire, "bad_path").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backslashes_are_bad_path() {
    for wire in ["..\\outside\\secret.txt", "d\\secret.txt"] {
        path_refused(wire, "bad_path").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_and_control_characters_are_bad_path() {
    for wire in [
        "f.txt\u{0}",
        "d\u{0}/../x",
        "a\u{1b}[2J",
        "a\nb",
        "a\u{7f}",
        "a\u{85}",
    ] {
        path_refused(wire, "bad_path").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_escaped_dots_and_slashes_are_still_bad_path() {
    // `\u002e\u002e\u002foutside` is `../outside` once unescaped.
    refused(
        b"{\"op\":\"get\",\"path\":\"\\u002e\\u002e\\u002foutside/secret.txt\"}\n",
        "bad_path",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alike_dots_and_slashes_are_plain_names_inside_the_root() {
    // Full-width dots, a division slash, a right-to-left override: names, not escapes.
    for wire in [
        "\u{ff0e}\u{ff0e}/outside/secret.txt",
        "..\u{2215}outside",
        "\u{202e}txt.exe",
    ] {
        refused_json(json!({"op": "get", "path": wire}), "not_found").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_names_and_paths_are_bad_path() {
    path_refused(&"n".repeat(256), "bad_path").await;
    path_refused(&vec!["abcdefgh"; 456].join("/"), "bad_path").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_at_the_limit_uploads_without_leaving_a_partial() {
    let name: &'static str = "n".repeat(255).leak();
    hostile(
        |_| {},
        async |case: &mut Case| {
            let mut client = case.client().await;
            let reply = client.put(name, b"edge", json!({})).await;
            case.probe().await;
            assert_eq!(reply["ok"], true, "{reply}");
            let partials = std::fs::read_dir(&case.server.root)
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    name.to_string_lossy().starts_with(".ferry-part.")
                })
                .count();
            assert_eq!(partials, 0);
            vec![(name, b"edge".to_vec())]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_through_a_symlink_to_outside_are_forbidden() {
    for wire in ["escape/secret.txt", "escape/new", "sneaky/secret.txt"] {
        path_refused(wire, "forbidden").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_to_an_outside_file_is_never_read_through() {
    refused_json(json!({"op": "get", "path": "rel-escape"}), "forbidden").await;
    refused_json(json!({"op": "list", "path": "escape"}), "forbidden").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_loop_is_forbidden() {
    refused_json(json!({"op": "get", "path": "loop"}), "forbidden").await;
    refused_json(json!({"op": "list", "path": "loop/x"}), "forbidden").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_swapped_in_during_an_upload_cannot_carry_it_outside() {
    hostile(
        |_| {},
        async |case: &mut Case| {
            let data = pattern(4 * 1024 * 1024, 7);
            let mut client = case.client().await;
            client
                .send_json(&json!({"op": "put", "path": "d/big.bin", "size": data.len()}))
                .await;
            client.send(&data[..1024 * 1024]).await;
            // Wait until the upload is under way, then swap its directory for a link out.
            for _ in 0..500 {
                let reply = case
                    .other
                    .request(json!({"op": "partial", "path": "d/big.bin"}))
                    .await;
                if reply["length"] == 1024 * 1024 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            std::fs::rename(case.path("d"), case.path("d.old")).unwrap();
            symlink(&case.server.outside, case.path("d")).unwrap();
            case.probe().await;
            client.send(&data[1024 * 1024..]).await;
            let reply = client.read_reply().await;
            // The upload finishes in the directory it started in, now renamed, never outside.
            assert_eq!(reply["ok"], true, "{reply}");
            assert_eq!(std::fs::read(case.path("d.old/big.bin")).unwrap(), data);
            let after = client.put("d/after.txt", b"x", json!({})).await;
            assert_eq!(code(&after), "forbidden");
            vec![
                ("d.old/big.bin", data),
                ("d.old/secret.txt", b"inside".to_vec()),
            ]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_symlink_between_list_and_get_is_refused() {
    hostile(
        |_| {},
        async |case: &mut Case| {
            let mut client = case.client().await;
            let (entries, _, _) = client.list_all("list", "d").await.unwrap();
            assert!(entries.iter().any(|e| e["name"] == "secret.txt"));
            std::fs::rename(case.path("d"), case.path("d.old")).unwrap();
            symlink(&case.server.outside, case.path("d")).unwrap();
            case.probe().await;
            assert_eq!(
                code(&client.get("d/secret.txt", 0).await.unwrap_err()),
                "forbidden"
            );
            vec![("d.old/secret.txt", b"inside".to_vec())]
        },
    )
    .await;
}

// ---- Reserved names and the root ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_onto_reserved_partial_names_are_forbidden() {
    for wire in [
        ".ferry-part.f.txt",
        "d/.ferry-part.secret.txt",
        ".ferry-part.x/y",
    ] {
        let header =
            format!("{{\"op\":\"put\",\"path\":\"{wire}\",\"size\":3,\"overwrite\":true}}");
        refused(&with_payload(&header, b"abc"), "forbidden").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renames_and_mkdirs_onto_reserved_names_are_forbidden() {
    refused_json(
        json!({"op": "rename", "path": "f.txt", "to": ".ferry-part.f.txt"}),
        "forbidden",
    )
    .await;
    refused_json(json!({"op": "mkdir", "path": ".ferry-part.d"}), "forbidden").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_cannot_be_renamed_or_replaced() {
    refused_json(json!({"op": "rename", "path": "", "to": "x"}), "forbidden").await;
    refused_json(
        json!({"op": "rename", "path": "d", "to": "", "overwrite": true}),
        "forbidden",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_cannot_be_removed() {
    refused_json(
        json!({"op": "remove", "path": "", "recursive": true}),
        "forbidden",
    )
    .await;
    refused_json(json!({"op": "remove", "path": ""}), "forbidden").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renames_out_of_the_root_are_refused() {
    refused_json(
        json!({"op": "rename", "path": "f.txt", "to": "../outside/f.txt"}),
        "bad_path",
    )
    .await;
    refused_json(
        json!({"op": "rename", "path": "f.txt", "to": "escape/f.txt"}),
        "forbidden",
    )
    .await;
    refused_json(
        json!({"op": "rename", "path": "escape/secret.txt", "to": "stolen.txt"}),
        "forbidden",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_cannot_be_moved_into_itself() {
    refused_json(
        json!({"op": "rename", "path": "d", "to": "d/inner"}),
        "bad_request",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_under_a_file_or_onto_a_directory_is_refused() {
    refused(
        &with_payload("{\"op\":\"put\",\"path\":\"f.txt/x\",\"size\":1}", b"x"),
        "not_a_directory",
    )
    .await;
    refused(
        &with_payload(
            "{\"op\":\"put\",\"path\":\"d\",\"size\":1,\"overwrite\":true}",
            b"x",
        ),
        "is_a_directory",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_link_to_outside_removes_only_the_link() {
    hostile(
        |_| {},
        async |case: &mut Case| {
            let mut client = case.client().await;
            let reply = client
                .request(json!({"op": "remove", "path": "escape", "recursive": true}))
                .await;
            case.probe().await;
            assert_eq!(reply["ok"], true, "{reply}");
            assert!(std::fs::symlink_metadata(case.path("escape")).is_err());
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recursive_remove_never_follows_links_out() {
    hostile(
        |_| {},
        async |case: &mut Case| {
            symlink(&case.server.outside, case.path("d/out")).unwrap();
            symlink("../../outside/secret.txt", case.path("d/out-file")).unwrap();
            let mut client = case.client().await;
            client
                .send_json(&json!({"op": "remove", "path": "d", "recursive": true}))
                .await;
            case.probe().await;
            assert_eq!(client.read_reply().await["ok"], true);
            assert!(!case.path("d").exists());
            // What `link` and `sneaky` pointed through is gone; outside is checked by the harness.
            let sneaky = client
                .request(json!({"op": "list", "path": "sneaky"}))
                .await;
            assert_eq!(code(&sneaky), "not_found");
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_is_never_opened_for_reading() {
    hostile(
        |_| {},
        async |case: &mut Case| {
            let status = std::process::Command::new("mkfifo")
                .arg(case.path("pipe"))
                .status()
                .unwrap();
            assert!(status.success());
            let mut client = case.client().await;
            client
                .send_json(&json!({"op": "get", "path": "pipe"}))
                .await;
            case.probe().await;
            assert_eq!(code(&client.read_reply().await), "forbidden");
            // The harness reads every file it finds; a fifo would block it.
            std::fs::remove_file(case.path("pipe")).unwrap();
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_server_refuses_every_write() {
    hostile(
        |config| config.read_only = true,
        async |case: &mut Case| {
            let mut client = case.client().await;
            for request in [
                json!({"op": "mkdir", "path": "new"}),
                json!({"op": "rename", "path": "f.txt", "to": "g.txt"}),
                json!({"op": "remove", "path": "f.txt"}),
            ] {
                assert_eq!(code(&client.request(request).await), "forbidden");
            }
            let put = client
                .put("f.txt", b"over", json!({"overwrite": true}))
                .await;
            case.probe().await;
            assert_eq!(code(&put), "forbidden");
            vec![]
        },
    )
    .await;
}

// ---- Configured limits: upload size, free-space reserve, header, path and name length ----

const MIB: usize = 1024 * 1024;

/// A `put` header alone, so a test can read the refusal before sending a payload byte.
fn put_header(path: &str, size: usize, extra: Value) -> Value {
    let mut header = json!({"op": "put", "path": path, "size": size});
    common::merge(&mut header, extra);
    header
}

/// Sends a `put` header, reads its refusal before a byte of payload has been sent (proof that
/// it was refused up front), then sends the payload (and trailer) anyway and checks that the
/// connection is still in step. No partial file may have been left for `path`.
async fn refused_up_front(case: &mut Case, path: &str, size: usize, extra: Value, expected: &str) {
    let trailer = extra.get("trailer") == Some(&Value::Bool(true));
    let mut client = case.client().await;
    client.send_json(&put_header(path, size, extra)).await;
    let reply = client.read_reply().await;
    assert_eq!(code(&reply), expected, "{reply}");
    assert!(
        reply["error"]["message"].as_str().unwrap().contains(path),
        "the message names the path: {reply}"
    );
    case.probe().await;
    client.send(&pattern(size, 7)).await;
    if trailer {
        client
            .send_json(&json!({"digest": digest(&pattern(size, 7))}))
            .await;
    }
    let after = client.request(json!({"op": "stat", "path": "d"})).await;
    assert_eq!(after["ok"], true, "the connection stays in step: {after}");
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    let partial = case
        .server
        .root
        .join(parent)
        .join(format!(".ferry-part.{name}"));
    assert!(!partial.exists(), "a refused upload left {partial:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_over_the_size_limit_is_too_large_before_its_payload() {
    hostile(
        |config| config.max_upload_size = Some(MIB as u64),
        async |case: &mut Case| {
            refused_up_front(case, "big.bin", 2 * MIB, json!({}), "too_large").await;
            refused_up_front(case, "d/big.bin", MIB + 1, json!({}), "too_large").await;
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_at_the_size_limit_is_accepted() {
    hostile(
        |config| config.max_upload_size = Some(MIB as u64),
        async |case: &mut Case| {
            let mut client = case.client().await;
            let data = pattern(MIB, 3);
            let reply = client.put("exact.bin", &data, json!({})).await;
            case.probe().await;
            assert_eq!(reply["ok"], true, "{reply}");
            assert_eq!(std::fs::read(case.path("exact.bin")).unwrap(), data);
            vec![("exact.bin", data)]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_upload_over_the_size_limit_is_too_large_even_when_it_arrived_whole() {
    hostile(
        |config| config.max_upload_size = Some(10),
        async |case: &mut Case| {
            let mut client = case.client().await;
            // Header and payload in one write: the batched path, checked after the read.
            let mut bytes = Vec::new();
            for (path, data) in [
                ("over.txt", &b"eleven byte"[..]),
                ("fits.txt", b"ten bytes!"),
            ] {
                bytes.extend(with_payload(
                    &put_header(path, data.len(), json!({})).to_string(),
                    data,
                ));
            }
            client.send(&bytes).await;
            case.probe().await;
            assert_eq!(code(&client.read_reply().await), "too_large");
            assert_eq!(client.read_reply().await["ok"], true);
            assert!(!case.path("over.txt").exists());
            assert!(!case.path(".ferry-part.over.txt").exists());
            vec![("fits.txt", b"ten bytes!".to_vec())]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_whose_end_passes_the_size_limit_is_too_large_and_keeps_the_partial() {
    hostile(
        |config| config.max_upload_size = Some(MIB as u64),
        async |case: &mut Case| {
            let held = pattern(MIB / 2, 5);
            std::fs::write(case.path(".ferry-part.r.bin"), &held).unwrap();
            let mut client = case.client().await;
            let size = MIB / 2 + 1;
            client
                .send_json(&put_header("r.bin", size, json!({"offset": MIB / 2})))
                .await;
            let reply = client.read_reply().await;
            case.probe().await;
            assert_eq!(code(&reply), "too_large", "{reply}");
            client.send(&pattern(size, 6)).await;
            let partial = client
                .request(json!({"op": "partial", "path": "r.bin"}))
                .await;
            assert_eq!(
                partial["length"],
                MIB / 2,
                "the partial is untouched: {partial}"
            );
            assert_eq!(std::fs::read(case.path(".ferry-part.r.bin")).unwrap(), held);
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trailer_upload_over_the_size_limit_keeps_the_connection_in_step() {
    hostile(
        |config| config.max_upload_size = Some(MIB as u64),
        async |case: &mut Case| {
            refused_up_front(
                case,
                "t.bin",
                2 * MIB,
                json!({"trailer": true}),
                "too_large",
            )
            .await;
            refused_up_front(
                case,
                "t.bin",
                MIB + 7,
                json!({"trailer": true, "overwrite": true}),
                "too_large",
            )
            .await;
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_would_eat_into_the_reserve_is_no_space_up_front() {
    hostile(
        // More than any test machine has free: every upload would eat into it.
        |config| config.free_space_reserve = u64::MAX / 4,
        async |case: &mut Case| {
            refused_up_front(case, "r.bin", 2 * MIB, json!({}), "no_space").await;
            refused_up_front(case, "f.txt", 10, json!({"overwrite": true}), "no_space").await;
            assert_eq!(std::fs::read(case.path("f.txt")).unwrap(), b"file");
            // Reads and other changes are unaffected.
            let mut client = case.client().await;
            let made = client.request(json!({"op": "mkdir", "path": "new"})).await;
            assert_eq!(made["ok"], true, "{made}");
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_over_the_configured_cap_is_refused_and_closed() {
    hostile(
        |config| config.max_header_len = 2048,
        async |case: &mut Case| {
            // Just under the cap is served.
            let mut client = case.client().await;
            let mut fits = json!({"op": "stat", "path": "d", "pad": ""}).to_string();
            let pad = "a".repeat(2047 - fits.len());
            fits = json!({"op": "stat", "path": "d", "pad": pad}).to_string();
            assert_eq!(fits.len() + 1, 2048);
            client.send(fits.as_bytes()).await;
            client.send(b"\n").await;
            // Unknown fields are refused, but only once the line was read whole.
            assert_eq!(code(&client.read_reply().await), "bad_request");

            let mut line = b"{\"op\":\"stat\",\"path\":\"".to_vec();
            line.resize(2049, b'a');
            client.send(&line).await;
            case.probe().await;
            let reply = client.read_reply().await;
            assert_eq!(code(&reply), "header_too_long");
            assert!(
                reply["error"]["message"].as_str().unwrap().contains("2048"),
                "{reply}"
            );
            assert!(client.closed().await);
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_over_the_configured_limit_is_bad_path_for_every_op() {
    hostile(
        |config| config.max_path_len = 64,
        async |case: &mut Case| {
            let long = format!("d/{}", "p".repeat(63));
            assert_eq!(long.len(), 65);
            let mut client = case.client().await;
            for request in [
                json!({"op": "stat", "path": long}),
                json!({"op": "list", "path": long}),
                json!({"op": "walk", "path": long}),
                json!({"op": "summary", "path": long}),
                json!({"op": "get", "path": long}),
                json!({"op": "partial", "path": long}),
                json!({"op": "mkdir", "path": long}),
                json!({"op": "remove", "path": long}),
                json!({"op": "rename", "path": "f.txt", "to": long}),
                json!({"op": "rename", "path": long, "to": "g.txt"}),
            ] {
                let reply = client.request(request.clone()).await;
                assert_eq!(code(&reply), "bad_path", "{request}: {reply}");
            }
            case.probe().await;
            refused_up_front(case, &long, 2 * MIB, json!({}), "bad_path").await;
            // At the limit, all is well.
            let fits = &long[..64];
            let made = client.request(json!({"op": "mkdir", "path": fits})).await;
            assert_eq!(made["ok"], true, "{made}");
            assert!(case.path("f.txt").exists());
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_over_the_configured_limit_is_bad_path() {
    hostile(
        |config| config.max_name_len = 16,
        async |case: &mut Case| {
            let long = "n".repeat(17);
            let mut client = case.client().await;
            for request in [
                json!({"op": "mkdir", "path": format!("d/{long}/x")}),
                json!({"op": "rename", "path": "f.txt", "to": long}),
                json!({"op": "stat", "path": format!("{long}/d")}),
            ] {
                let reply = client.request(request.clone()).await;
                assert_eq!(code(&reply), "bad_path", "{request}: {reply}");
            }
            refused_up_front(case, &format!("d/{long}"), 2 * MIB, json!({}), "bad_path").await;
            let data = b"sixteen".to_vec();
            let fits = client.put(&"n".repeat(16), &data, json!({})).await;
            case.probe().await;
            assert_eq!(fits["ok"], true, "{fits}");
            assert!(case.path("f.txt").exists());
            vec![("nnnnnnnnnnnnnnnn", data)]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_cannot_raise_the_protocol_maxima() {
    hostile(
        |config| {
            config.max_header_len = 1 << 20;
            config.max_path_len = 1 << 20;
            config.max_name_len = 1 << 20;
        },
        async |case: &mut Case| {
            let mut client = case.client().await;
            let reply = client
                .request(json!({"op": "mkdir", "path": "x".repeat(256)}))
                .await;
            assert_eq!(code(&reply), "bad_path", "{reply}");
            case.over_64_kib_is_refused_and_closed(client).await;
            vec![]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_cap_header_pipelined_behind_batched_requests_is_refused_in_order() {
    hostile(
        |config| config.max_header_len = 2048,
        async |case: &mut Case| {
            let mut client = case.client().await;
            // Small puts and gets are answered in batches from what has already arrived; the
            // line over the cap behind them must still be refused, after their answers.
            let mut bytes = with_payload(&put_header("p1.txt", 2, json!({})).to_string(), b"p1");
            bytes.extend(with_payload(
                &put_header("p2.txt", 2, json!({})).to_string(),
                b"p2",
            ));
            bytes.extend(json!({"op": "get", "path": "f.txt"}).to_string().as_bytes());
            bytes.push(b'\n');
            bytes.extend(json!({"op": "get", "path": "f.txt"}).to_string().as_bytes());
            bytes.push(b'\n');
            let mut long = b"{\"op\":\"get\",\"path\":\"".to_vec();
            long.resize(4096, b'a');
            bytes.extend(long);
            client.send(&bytes).await;
            case.probe().await;
            assert_eq!(client.read_reply().await["ok"], true);
            assert_eq!(client.read_reply().await["ok"], true);
            for _ in 0..2 {
                let reply = client.read_reply().await;
                assert_eq!(reply["ok"], true, "{reply}");
                assert_eq!(client.read_bytes(4).await, b"file");
                assert_eq!(client.read_reply().await["ok"], true);
            }
            assert_eq!(code(&client.read_reply().await), "header_too_long");
            assert!(client.closed().await);
            vec![("p1.txt", b"p1".to_vec()), ("p2.txt", b"p2".to_vec())]
        },
    )
    .await;
}
