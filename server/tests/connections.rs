//! The handshake, the token, the connection limit and graceful shutdown.

mod common;

use std::time::Duration;

use common::{Client, Server, code, pattern};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_must_come_first() {
    let server = Server::start().await;
    let mut client = Client::connect(server.addr).await;
    let early = client.request(json!({"op": "stat", "path": ""})).await;
    assert_eq!(code(&early), "bad_request");
    assert!(
        early["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hello")
    );
    // A put before hello is refused and its payload skipped.
    let put = client
        .put("x", b"{\"op\":\"stat\",\"path\":\"\"}\n", json!({}))
        .await;
    assert_eq!(code(&put), "bad_request");
    assert!(!server.path("x").exists());

    let wrong = client.request(json!({"op": "hello", "version": 2})).await;
    assert_eq!(code(&wrong), "unsupported_version");
    let hello = client.hello().await;
    assert_eq!(hello["version"], 1);
    assert_eq!(hello["read_only"], false);
    assert!(
        hello["server"]
            .as_str()
            .unwrap()
            .starts_with("ferry-server ")
    );
    assert_eq!(
        client.request(json!({"op": "stat", "path": ""})).await["ok"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_required_and_checked() {
    let server = Server::start_with(|config| config.token = Some("s3cret".into())).await;
    let mut client = Client::connect(server.addr).await;
    let early = client.request(json!({"op": "list", "path": ""})).await;
    assert_eq!(code(&early), "unauthorized");
    let bare = client.request(json!({"op": "hello", "version": 1})).await;
    assert_eq!(code(&bare), "unauthorized");
    let wrong = client
        .request(json!({"op": "hello", "version": 1, "token": "s3cre"}))
        .await;
    assert_eq!(code(&wrong), "unauthorized");
    assert_eq!(
        code(&client.request(json!({"op": "stat", "path": ""})).await),
        "unauthorized"
    );
    let right = client
        .request(json!({"op": "hello", "version": 1, "token": "s3cret"}))
        .await;
    assert_eq!(right["ok"], true, "{right}");
    assert_eq!(
        client.request(json!({"op": "stat", "path": ""})).await["ok"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_wrong_tokens_close_the_connection() {
    let server = Server::start_with(|config| config.token = Some("s3cret".into())).await;
    let mut client = Client::connect(server.addr).await;
    for guess in ["a", "b", "c"] {
        let reply = client
            .request(json!({"op": "hello", "version": 1, "token": guess}))
            .await;
        assert_eq!(code(&reply), "unauthorized");
    }
    assert!(client.closed().await);
    // Others can still come in with the right token.
    let mut other = Client::connect(server.addr).await;
    let ok = other
        .request(json!({"op": "hello", "version": 1, "token": "s3cret"}))
        .await;
    assert_eq!(ok["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_over_the_limit_get_busy_and_are_closed() {
    let server = Server::start_with(|config| config.max_connections = 2).await;
    let first = server.client().await;
    let mut second = server.client().await;
    let mut third = Client::connect(server.addr).await;
    // The refusal arrives unasked, before any request.
    assert_eq!(code(&third.read_reply().await), "busy");
    assert!(third.closed().await);
    assert_eq!(
        second.request(json!({"op": "stat", "path": ""})).await["ok"],
        true
    );

    // A slot frees when a client leaves.
    drop(first);
    let mut admitted = false;
    for _ in 0..100 {
        let mut next = Client::connect(server.addr).await;
        let reply = next.request(json!({"op": "hello", "version": 1})).await;
        if reply["ok"] == true {
            admitted = true;
            break;
        }
        assert_eq!(code(&reply), "busy");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting_and_leaves_no_partial_under_a_final_name() {
    let mut server = Server::start().await;
    let data = pattern(8 * 1024 * 1024, 1);
    let mut uploader = server.client().await;
    uploader
        .send_json(&json!({"op": "put", "path": "cut.bin", "size": data.len()}))
        .await;
    uploader.send(&data[..1024 * 1024]).await;
    let mut idle = server.client().await;
    assert_eq!(
        idle.request(json!({"op": "stat", "path": ""})).await["ok"],
        true
    );
    // Wait until the upload is visibly under way.
    let mut held = 0;
    for _ in 0..400 {
        let reply = idle
            .request(json!({"op": "partial", "path": "cut.bin"}))
            .await;
        held = reply["length"].as_u64().unwrap();
        if held == 1024 * 1024 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(held, 1024 * 1024);

    let (root, addr) = (server.root.clone(), server.addr);
    server.stop().await.unwrap();
    assert!(idle.closed().await);
    assert!(uploader.closed().await);
    assert!(!root.join("cut.bin").exists());
    assert_eq!(
        std::fs::metadata(root.join(".ferry-part.cut.bin"))
            .unwrap()
            .len(),
        1024 * 1024
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_root_is_an_error_from_run() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = ferry_server::Config::new(dir.path().join("nope"));
    let result = ferry_server::run(listener, config, std::future::pending()).await;
    assert!(
        matches!(result, Err(ferry_server::ServerError::OpenRoot { .. })),
        "{result:?}"
    );
}
