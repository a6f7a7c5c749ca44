//! Files moved both ways arrive byte-equal with the right digests, uploads are atomic and
//! resumable, and a download of a file that changes underneath says so.

mod common;

use common::{Client, Server, code, digest, pattern};
use serde_json::json;

const MIB: usize = 1024 * 1024;

#[allow(clippy::unwrap_used)]
async fn round_trip(server: &Server, client: &mut Client, name: &str, data: &[u8]) {
    // Upload, then check the bytes on disk and the digest the server computed.
    let reply = client.put(name, data, json!({})).await;
    assert_eq!(reply["ok"], true, "{name}: {reply}");
    assert_eq!(reply["digest"], digest(data), "{name}");
    assert_eq!(reply["file_size"], data.len() as u64, "{name}");
    let on_disk = std::fs::read(server.path(name)).unwrap();
    assert!(on_disk == data, "{name}: bytes on disk differ");

    // Download it back.
    let (head, got, trailer) = client.get(name, 0).await.unwrap();
    assert_eq!(head["size"], data.len() as u64);
    assert_eq!(head["file_size"], data.len() as u64);
    assert_eq!(head["offset"], 0);
    assert!(got == data, "{name}: downloaded bytes differ");
    assert_eq!(
        trailer,
        json!({"ok": true, "digest": digest(data)}),
        "{name}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_every_size_round_trip_byte_equal() {
    let server = Server::start().await;
    let mut client = server.client().await;
    for (name, len) in [
        ("empty", 0),
        ("one", 1),
        ("mib-plus-one", MIB + 1),
        ("sixty-four-mib", 64 * MIB),
        // Around the server's internal buffer sizes, where off-by-one mistakes would hide.
        ("quarter-mib-minus-one", MIB / 4 - 1),
        ("quarter-mib", MIB / 4),
        ("quarter-mib-plus-one", MIB / 4 + 1),
        ("half-mib-minus-header", MIB / 2 - 100),
        ("half-mib", MIB / 2),
        ("half-mib-plus-one", MIB / 2 + 1),
    ] {
        round_trip(&server, &mut client, name, &pattern(len, len as u64)).await;
    }
    // Nothing hidden is left behind once every upload is complete.
    let leftovers: Vec<_> = std::fs::read_dir(&server.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".ferry-part."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_made_on_the_server_download_exactly() {
    let server = Server::start().await;
    std::fs::create_dir(server.path("dir")).unwrap();
    let data = pattern(3 * MIB + 17, 9);
    std::fs::write(server.path("dir/local.bin"), &data).unwrap();
    let mut client = server.client().await;
    let (head, got, trailer) = client.get("dir/local.bin", 0).await.unwrap();
    assert_eq!(head["mode"].as_u64().unwrap() & 0o777, 0o644);
    assert!(got == data);
    assert_eq!(trailer["digest"], digest(&data));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_from_an_offset_sends_the_tail_and_the_whole_files_digest() {
    let server = Server::start().await;
    let data = pattern(MIB + 5, 3);
    std::fs::write(server.path("f"), &data).unwrap();
    let mut client = server.client().await;

    let (head, got, trailer) = client.get("f", 1000).await.unwrap();
    assert_eq!(head["size"], (data.len() - 1000) as u64);
    assert_eq!(head["file_size"], data.len() as u64);
    assert_eq!(head["offset"], 1000);
    assert!(got == data[1000..]);
    assert_eq!(trailer["digest"], digest(&data));

    let (head, got, trailer) = client.get("f", data.len() as u64).await.unwrap();
    assert_eq!(head["size"], 0);
    assert!(got.is_empty());
    assert_eq!(trailer["digest"], digest(&data));

    let err = client.get("f", data.len() as u64 + 1).await.unwrap_err();
    assert_eq!(code(&err), "offset_mismatch");
    // Still usable afterwards.
    assert_eq!(client.get("f", 0).await.unwrap().1, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_refuses_directories_and_missing_files() {
    let server = Server::start().await;
    std::fs::create_dir(server.path("d")).unwrap();
    let mut client = server.client().await;
    assert_eq!(
        code(&client.get("d", 0).await.unwrap_err()),
        "is_a_directory"
    );
    assert_eq!(
        code(&client.get("", 0).await.unwrap_err()),
        "is_a_directory"
    );
    let missing = client.get("nope.txt", 0).await.unwrap_err();
    assert_eq!(code(&missing), "not_found");
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nope.txt")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_with_a_trailer_digest() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let data = pattern(2 * MIB + 3, 4);
    client
        .send_json(&json!({"op": "put", "path": "t.bin", "size": data.len(), "trailer": true}))
        .await;
    client.send(&data).await;
    client.send_json(&json!({"digest": digest(&data)})).await;
    let reply = client.read_reply().await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["digest"], digest(&data));
    assert!(std::fs::read(server.path("t.bin")).unwrap() == data);

    // A wrong trailer digest: nothing under the final name, no partial left either.
    client
        .send_json(&json!({"op": "put", "path": "bad.bin", "size": data.len(), "trailer": true}))
        .await;
    client.send(&data).await;
    client
        .send_json(&json!({"digest": digest(b"something else")}))
        .await;
    assert_eq!(code(&client.read_reply().await), "checksum_mismatch");
    assert!(!server.path("bad.bin").exists());
    assert!(!server.path(".ferry-part.bad.bin").exists());
    // The connection goes on.
    assert_eq!(
        client.request(json!({"op": "stat", "path": "t.bin"})).await["ok"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_with_the_digest_up_front() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let data = pattern(MIB, 5);
    let reply = client
        .put("u.bin", &data, json!({"digest": digest(&data)}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert!(std::fs::read(server.path("u.bin")).unwrap() == data);

    let reply = client
        .put("v.bin", &data, json!({"digest": digest(&data[1..])}))
        .await;
    assert_eq!(code(&reply), "checksum_mismatch");
    assert!(!server.path("v.bin").exists());
    assert!(!server.path(".ferry-part.v.bin").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_sets_the_mtime_and_respects_overwrite() {
    let server = Server::start().await;
    let mut client = server.client().await;
    let reply = client
        .put("m.txt", b"first", json!({"mtime": 1_600_000_000}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let stat = client.request(json!({"op": "stat", "path": "m.txt"})).await;
    assert_eq!(stat["entry"]["mtime"], 1_600_000_000);
    assert_eq!(stat["entry"]["size"], 5);

    // A time no filesystem can hold does not lose the bytes (nor crash the server).
    for mtime in [i64::MIN, i64::MAX] {
        let reply = client
            .put("n.txt", b"kept", json!({"mtime": mtime, "overwrite": true}))
            .await;
        assert_eq!(reply["ok"], true, "{mtime}: {reply}");
        assert_eq!(std::fs::read(server.path("n.txt")).unwrap(), b"kept");
    }

    let reply = client.put("m.txt", b"second", json!({})).await;
    assert_eq!(code(&reply), "already_exists");
    assert_eq!(std::fs::read(server.path("m.txt")).unwrap(), b"first");

    let reply = client
        .put("m.txt", b"second", json!({"overwrite": true}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(std::fs::read(server.path("m.txt")).unwrap(), b"second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_is_checked_before_its_payload_and_the_payload_is_still_skipped() {
    let server = Server::start().await;
    std::fs::create_dir(server.path("dir")).unwrap();
    std::fs::write(server.path("file"), b"x").unwrap();
    let mut client = server.client().await;
    let payload = b"{\"op\":\"remove\",\"path\":\"file\"}\n";
    let cases = [
        ("missing/a", "not_found"),
        ("file/a", "not_a_directory"),
        ("dir", "is_a_directory"),
        ("file", "already_exists"),
        (".ferry-part.x", "forbidden"),
        ("../x", "bad_path"),
    ];
    for (path, expected) in cases {
        // The payload looks like a request: if it were not skipped, `file` would vanish.
        let reply = client.put(path, payload, json!({"trailer": true})).await;
        assert_eq!(code(&reply), expected, "{path}");
        client.send_json(&json!({"digest": digest(payload)})).await;
        let stat = client.request(json!({"op": "stat", "path": "file"})).await;
        assert_eq!(stat["ok"], true, "{path}: {stat}");
    }
    assert_eq!(std::fs::read(server.path("file")).unwrap(), b"x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_put_leaves_a_resumable_partial_and_no_final_file() {
    // Big uploads stream through a writer thread; small ones are read whole first.
    for len in [4 * MIB, 100_000] {
        interrupted_then_resumed(len).await;
    }
}

#[allow(clippy::unwrap_used)]
async fn interrupted_then_resumed(len: usize) {
    let server = Server::start().await;
    let data = pattern(len, 6);
    let half = data.len() / 2;
    {
        let mut client = server.client().await;
        client
            .send_json(&json!({"op": "put", "path": "big.bin", "size": data.len()}))
            .await;
        client.send(&data[..half]).await;
        // The client vanishes half-way.
    }
    let mut client = server.client().await;
    // The server notices the close and stops writing; wait for all bytes to reach the disk.
    let mut held = 0;
    for _ in 0..200 {
        let reply = client
            .request(json!({"op": "partial", "path": "big.bin"}))
            .await;
        held = reply["length"].as_u64().unwrap();
        if held == half as u64 {
            assert_eq!(reply["digest"], digest(&data[..half]));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(held, half as u64, "{len}");
    assert!(
        !server.path("big.bin").exists(),
        "no final file from a cut-off upload"
    );
    // The partial is hidden from listings.
    let (entries, _, _) = client.list_all("list", "").await.unwrap();
    assert!(entries.is_empty(), "{entries:?}");

    // Resuming from further than the partial holds is refused.
    let reply = client
        .put("big.bin", &data[half + 1..], json!({"offset": half + 1}))
        .await;
    assert_eq!(code(&reply), "offset_mismatch");

    // Resume from a little before the end of what is held: the partial is cut back there.
    let resume_at = half - 1000;
    let reply = client
        .put(
            "big.bin",
            &data[resume_at..],
            json!({"offset": resume_at, "digest": digest(&data)}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["digest"], digest(&data));
    assert_eq!(reply["file_size"], data.len() as u64);
    assert!(std::fs::read(server.path("big.bin")).unwrap() == data);
    let reply = client
        .request(json!({"op": "partial", "path": "big.bin"}))
        .await;
    assert_eq!(reply, json!({"ok": true, "length": 0}));
    // Nothing to resume under a directory that does not exist yet either.
    let reply = client
        .request(json!({"op": "partial", "path": "no/such/dir/f"}))
        .await;
    assert_eq!(reply, json!({"ok": true, "length": 0}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_of_one_path_get_busy() {
    let server = Server::start().await;
    let data = pattern(MIB, 7);
    let mut first = server.client().await;
    first
        .send_json(&json!({"op": "put", "path": "same.bin", "size": data.len()}))
        .await;
    first.send(&data[..1000]).await;
    // Wait until the first upload is under way: its partial holds the bytes sent so far.
    let mut second = server.client().await;
    let mut under_way = false;
    for _ in 0..400 {
        let reply = second
            .request(json!({"op": "partial", "path": "same.bin"}))
            .await;
        if reply["length"] == 1000 {
            under_way = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(under_way);
    let reply = second
        .put("same.bin", b"other", json!({"overwrite": true}))
        .await;
    assert_eq!(code(&reply), "busy");
    // Another path is fine meanwhile.
    assert_eq!(second.put("other.bin", b"ok", json!({})).await["ok"], true);
    first.send(&data[1000..]).await;
    let reply = first.read_reply().await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert!(std::fs::read(server.path("same.bin")).unwrap() == data);
    // Once the first is done, the path is free again.
    let reply = second
        .put("same.bin", b"other", json!({"overwrite": true}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_shrinks_during_a_get_ends_with_file_changed() {
    let server = Server::start().await;
    let data = pattern(64 * MIB, 8);
    std::fs::write(server.path("moving.bin"), &data).unwrap();
    let mut client = server.client().await;
    let reply = client
        .request(json!({"op": "get", "path": "moving.bin"}))
        .await;
    assert_eq!(reply["size"], data.len() as u64);
    // Only a few MiB can be in flight; the rest is read after this.
    std::fs::OpenOptions::new()
        .write(true)
        .open(server.path("moving.bin"))
        .unwrap()
        .set_len(1024)
        .unwrap();
    // Exactly the announced count still arrives, so the stream stays framed.
    let got = client.read_bytes(data.len()).await;
    assert_eq!(got.len(), data.len());
    let trailer = client.read_reply().await;
    assert_eq!(code(&trailer), "file_changed");
    assert_eq!(
        client
            .request(json!({"op": "stat", "path": "moving.bin"}))
            .await["entry"]["size"],
        1024
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_transfer_at_once() {
    // All fifty come from 127.0.0.1, past the default 32 per address.
    let server = Server::start_with(|c| c.max_per_address = 64).await;
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(addr).await;
            client.hello().await;
            let data = pattern(256 * 1024 + i as usize * 4099, i);
            let name = format!("client-{i}.bin");
            let reply = client
                .put(&name, &data, json!({"digest": digest(&data)}))
                .await;
            assert_eq!(reply["ok"], true, "{name}: {reply}");
            let (_, got, trailer) = client.get(&name, 0).await.unwrap();
            assert!(got == data, "{name}");
            assert_eq!(trailer["digest"], digest(&data));
            (name, data)
        }));
    }
    for task in tasks {
        let (name, data) = task.await.unwrap();
        assert!(std::fs::read(server.path(&name)).unwrap() == data, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_sized_puts_empty_with_trailer_and_a_resume_with_nothing_left() {
    let server = Server::start().await;
    let mut client = server.client().await;
    // An empty file with a trailer: the trailer follows the header directly.
    client
        .send_json(&json!({"op": "put", "path": "empty", "size": 0, "trailer": true}))
        .await;
    client.send_json(&json!({"digest": digest(b"")})).await;
    let reply = client.read_reply().await;
    assert_eq!(reply["digest"], digest(b""), "{reply}");
    assert_eq!(std::fs::metadata(server.path("empty")).unwrap().len(), 0);

    // A partial that already holds every byte: a resume at its end with no payload finishes it.
    let data = pattern(100_000, 12);
    std::fs::write(server.path(".ferry-part.whole.bin"), &data).unwrap();
    let reply = client
        .put(
            "whole.bin",
            b"",
            json!({"offset": data.len(), "digest": digest(&data), "mtime": -86_400}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["file_size"], data.len() as u64);
    assert!(std::fs::read(server.path("whole.bin")).unwrap() == data);
    let stat = client
        .request(json!({"op": "stat", "path": "whole.bin"}))
        .await;
    assert_eq!(stat["entry"]["mtime"], -86_400);
}
