//! Soak test: many clients doing random operations against one server for a while, some
//! hanging up in the middle of a payload. Every completed file must match its digest, and once
//! the clients are gone the process's open file descriptors, tokio tasks and hidden partial
//! files must be back where they started (abandoned uploads leave partials on purpose; those
//! are counted apart).
//!
//! Ignored by default; run it with
//! `cargo test -p ferry-server --release --test soak -- --ignored --nocapture`.
//! `FERRY_SOAK_SECS` (default 60) and `FERRY_SOAK_CLIENTS` (default 200) change its size.

// Helpers run inside tests: a failed step should stop the test with its error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Server, code, digest, pattern};
use serde_json::json;

/// What all clients did, for the figures printed at the end.
#[derive(Default)]
struct Tally {
    puts: AtomicU64,
    gets: AtomicU64,
    lists: AtomicU64,
    mkdirs: AtomicU64,
    renames: AtomicU64,
    removes: AtomicU64,
    cut_puts: AtomicU64,
    cut_gets: AtomicU64,
    busy: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What one client believes its directory holds.
#[derive(Default)]
struct Model {
    /// Completed files and their digests.
    files: BTreeMap<String, String>,
    /// Names whose last upload was cut off on purpose: their partial should still be there.
    abandoned: BTreeSet<String>,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Sizes mostly small, sometimes past the server's small-upload threshold and its chunk size.
fn random_size(rng: &mut Rng) -> usize {
    match rng.below(10) {
        0..=5 => rng.below(4096) as usize,
        6..=8 => rng.below(300 * 1024) as usize,
        _ => rng.below(3 * 1024 * 1024) as usize,
    }
}

async fn run_client(id: u64, server: Arc<Server>, deadline: Instant, tally: Arc<Tally>) -> Model {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let dir = format!("c{id}");
    let mut client = server.client().await;
    let made = client.request(json!({"op": "mkdir", "path": dir})).await;
    assert_eq!(made["ok"], true, "{made}");
    let mut model = Model::default();
    let mut serial = 0u64;
    while Instant::now() < deadline {
        serial += 1;
        let name = format!("f{}", rng.below(12));
        let wire = format!("{dir}/{name}");
        match rng.below(20) {
            // A complete upload.
            0..=6 => {
                let data = pattern(random_size(&mut rng), id * 1_000_000 + serial);
                let reply = client.put(&wire, &data, json!({"overwrite": true})).await;
                if reply["ok"] != true && code(&reply) == "busy" {
                    // The writer of an upload this client cut off is still finishing.
                    bump(&tally.busy, 1);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                assert_eq!(reply["ok"], true, "{wire}: {reply}");
                assert_eq!(reply["digest"], digest(&data), "{wire}");
                model.files.insert(name.clone(), digest(&data));
                model.abandoned.remove(&name);
                bump(&tally.puts, 1);
                bump(&tally.bytes_up, data.len() as u64);
            }
            // An upload cut off half-way: hang up and come back.
            7 => {
                let size = random_size(&mut rng).max(2);
                let data = pattern(size, serial);
                client
                    .send_json(&json!({"op": "put", "path": wire, "size": size, "overwrite": true}))
                    .await;
                client.send(&data[..size / 2]).await;
                drop(client);
                client = server.client().await;
                // Wait until the server has taken in the half that was sent, so the next
                // request for this name cannot overtake the cut upload.
                let started = Instant::now();
                loop {
                    let partial = client.request(json!({"op": "partial", "path": wire})).await;
                    if partial["length"] == size / 2 {
                        break;
                    }
                    assert!(started.elapsed() < common::STEP, "{wire}: {partial}");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                model.abandoned.insert(name.clone());
                bump(&tally.cut_puts, 1);
            }
            // A download, checked against the model; sometimes cut off half-way.
            8..=11 => {
                let Some(want) = model.files.get(&name).cloned() else {
                    continue;
                };
                if rng.below(6) == 0 {
                    client.send_json(&json!({"op": "get", "path": wire})).await;
                    let header = client.read_reply().await;
                    assert_eq!(header["ok"], true, "{header}");
                    let size = header["size"].as_u64().unwrap() as usize;
                    let _ = client.read_bytes(size / 2).await;
                    drop(client);
                    client = server.client().await;
                    bump(&tally.cut_gets, 1);
                    continue;
                }
                let (_, data, trailer) = client.get(&wire, 0).await.unwrap();
                assert_eq!(digest(&data), want, "{wire}");
                assert_eq!(trailer["digest"], want, "{wire}");
                bump(&tally.gets, 1);
                bump(&tally.bytes_down, data.len() as u64);
            }
            12..=13 => {
                let (entries, _, _) = client.list_all("list", &dir).await.unwrap();
                let listed: BTreeSet<String> = entries
                    .iter()
                    .filter(|e| e["kind"] == "file")
                    .map(|e| e["name"].as_str().unwrap().to_owned())
                    .collect();
                let known: BTreeSet<String> = model.files.keys().cloned().collect();
                assert_eq!(listed, known, "{dir}");
                bump(&tally.lists, 1);
            }
            14..=15 => {
                let sub = format!("{dir}/s{}", rng.below(4));
                let reply = client.request(json!({"op": "mkdir", "path": sub})).await;
                assert_eq!(reply["ok"], true, "{reply}");
                bump(&tally.mkdirs, 1);
            }
            16..=17 => {
                let to = format!("f{}", rng.below(12));
                let Some(moved) = model.files.get(&name).cloned() else {
                    continue;
                };
                let reply = client
                    .request(json!({"op": "rename", "path": wire, "to": format!("{dir}/{to}"), "overwrite": true}))
                    .await;
                assert_eq!(reply["ok"], true, "{reply}");
                model.files.remove(&name);
                model.files.insert(to, moved);
                bump(&tally.renames, 1);
            }
            _ => {
                let reply = client.request(json!({"op": "remove", "path": wire})).await;
                if model.files.remove(&name).is_some() {
                    assert_eq!(reply["ok"], true, "{reply}");
                } else {
                    assert_eq!(code(&reply), "not_found", "{reply}");
                }
                bump(&tally.removes, 1);
            }
        }
    }
    model
}

/// Waits up to `patience` for `now()` to come down to `target`; returns the last reading.
async fn settle(target: usize, patience: Duration, now: impl Fn() -> usize) -> usize {
    let started = Instant::now();
    loop {
        let value = now();
        if value <= target || started.elapsed() > patience {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long; run with --ignored (see the module docs)"]
async fn many_clients_for_a_while_leave_nothing_behind() {
    let secs = env_or("FERRY_SOAK_SECS", 60);
    let clients = env_or("FERRY_SOAK_CLIENTS", 200);
    // Every client comes from 127.0.0.1: the per-address limit must not be what is tested.
    let server = Arc::new(
        Server::start_on_shm(|config| {
            config.max_connections = 1024;
            config.max_per_address = 1024;
            config.max_unauthenticated = 1024;
        })
        .await,
    );
    // One round trip first, so the server's lazily created state exists in the baseline.
    let mut warm = server.client().await;
    assert_eq!(
        warm.request(json!({"op": "stat", "path": ""})).await["ok"],
        true
    );
    drop(warm);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fds_before = open_fds();
    let tasks_before = alive_tasks();

    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let tally = Arc::new(Tally::default());
    let mut handles = Vec::new();
    for id in 0..clients {
        handles.push(tokio::spawn(run_client(
            id,
            Arc::clone(&server),
            deadline,
            Arc::clone(&tally),
        )));
    }
    let mut peak_fds = 0;
    while !handles.iter().all(|h| h.is_finished()) {
        peak_fds = peak_fds.max(open_fds());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut models = Vec::new();
    for handle in handles {
        models.push(handle.await.unwrap());
    }
    let ran = started.elapsed();

    // Every completed file is on disk under its name with its digest, and nothing else is.
    let mut files = 0;
    let mut expected_partials = 0;
    let mut found_partials = 0;
    for (id, model) in models.iter().enumerate() {
        let dir = server.path(&format!("c{id}"));
        let mut on_disk = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if entry.file_type().unwrap().is_dir() {
                continue;
            }
            if let Some(of) = name.strip_prefix(".ferry-part.") {
                assert!(
                    model.abandoned.contains(of),
                    "c{id}: a partial of {of} outlived its upload"
                );
                found_partials += 1;
                continue;
            }
            on_disk.insert(name, digest(&std::fs::read(entry.path()).unwrap()));
        }
        assert_eq!(on_disk, model.files, "c{id}");
        files += on_disk.len();
        expected_partials += model.abandoned.len();
    }
    assert_eq!(found_partials, expected_partials, "abandoned partials");

    let fds_after = settle(fds_before, Duration::from_secs(10), open_fds).await;
    let tasks_after = settle(tasks_before, Duration::from_secs(10), alive_tasks).await;
    let t = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "soak: {clients} clients for {:.1} s: {} puts ({} MiB), {} gets ({} MiB), {} lists, \
         {} mkdirs, {} renames, {} removes; {} uploads and {} downloads cut off on purpose, \
         {} busy retries",
        ran.as_secs_f64(),
        t(&tally.puts),
        t(&tally.bytes_up) >> 20,
        t(&tally.gets),
        t(&tally.bytes_down) >> 20,
        t(&tally.lists),
        t(&tally.mkdirs),
        t(&tally.renames),
        t(&tally.removes),
        t(&tally.cut_puts),
        t(&tally.cut_gets),
        t(&tally.busy),
    );
    println!(
        "soak: {files} files verified; open fds {fds_before} before, {peak_fds} at peak, \
         {fds_after} after; tokio tasks {tasks_before} before, {tasks_after} after; \
         {found_partials} abandoned partials (expected {expected_partials}), 0 from completed uploads"
    );
    assert!(t(&tally.puts) > clients, "the soak barely ran");
    assert!(
        fds_after <= fds_before,
        "file descriptors leaked: {fds_before} -> {fds_after}"
    );
    assert!(
        tasks_after <= tasks_before,
        "tasks leaked: {tasks_before} -> {tasks_after}"
    );
}
