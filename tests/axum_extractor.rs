//! The axum extractor over real HTTP: axum on a loopback port, surreal-pool, a real SurrealDB.
//! Each test runs twice: with the `TenantLayer` installed (the extractor takes the session the
//! layer checked out; the layer answers refusals) and without it (the extractor checks out
//! itself). The answers must be the same.

mod support;

use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use support::{record, setup, DB, NS};
use surreal_pool::axum::{Rejection, Tenant};
use surreal_pool::tower::TenantLayer;
use surreal_pool::Pool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn me(Tenant(db): Tenant) -> Result<Json<serde_json::Value>, Rejection> {
    let email: serde_json::Value = db.query("RETURN $auth.email", ()).await?.take(0)?;
    Ok(Json(serde_json::json!({ "email": email })))
}

async fn broken(Tenant(db): Tenant) -> Result<Json<serde_json::Value>, Rejection> {
    let v: serde_json::Value = db.query("THROW 'secret internal detail'", ()).await?.take(0)?;
    Ok(Json(v))
}

/// A minimal HTTP/1.1 GET over a fresh TCP connection: status line, raw head, body.
async fn get_http(addr: std::net::SocketAddr, path: &str, authorization: Option<&str>) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut response)).await.unwrap().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_lowercase(), body.to_string())
}

async fn serve(pool: Pool, layered: bool) -> std::net::SocketAddr {
    let mut app = Router::new().route("/me", get(me)).route("/broken", get(broken));
    if layered {
        app = app.route_layer(TenantLayer::new(pool.clone()));
    }
    let app = app.with_state(pool);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn bearer_tokens_are_forwarded_and_failures_map_to_http_answers() {
    forwarded_and_mapped(false).await;
}

#[tokio::test]
async fn behind_the_layer_bearer_tokens_are_forwarded_and_failures_map_to_http_answers() {
    forwarded_and_mapped(true).await;
}

async fn forwarded_and_mapped(layered: bool) {
    let (server, conn) = setup().await;
    let mut users = Vec::new();
    for email in ["a@x.y", "b@x.y"] {
        let s = conn.attach().await.unwrap();
        users.push((email, s.signup(&record("account", email, "pw")).await.unwrap().access));
    }
    let pool = Pool::builder(server.url()).connections(1).max_sessions(2).namespace_database(NS, DB).checkout_timeout(Duration::from_millis(300)).build().await.unwrap();
    let addr = serve(pool.clone(), layered).await;

    for _ in 0..3 {
        for (email, token) in &users {
            let (status, _, body) = get_http(addr, "/me", Some(&format!("Bearer {}", token.as_str()))).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["email"], *email);
        }
    }

    let (status, head, _) = get_http(addr, "/me", None).await;
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: bearer"), "{head}");

    let forged = "eyJhbGciOiJIUzUxMiJ9.eyJleHAiOjF9.c2lnbmF0dXJl";
    let (status, head, body) = get_http(addr, "/me", Some(&format!("Bearer {forged}"))).await;
    assert_eq!(status, 401);
    assert!(head.contains("invalid_token"));
    assert!(!body.contains(forged) && !head.contains(&forged.to_lowercase()), "the token is not echoed");

    // A database error is a 500 without its internals.
    let (status, _, body) = get_http(addr, "/broken", Some(&format!("Bearer {}", users[0].1.as_str()))).await;
    assert_eq!(status, 500);
    assert!(!body.contains("secret internal detail"), "{body}");

    // The pool exhausted: 503 with Retry-After.
    let held: Vec<_> = vec![pool.get().await.unwrap(), pool.get().await.unwrap()];
    let (status, head, _) = get_http(addr, "/me", Some(&format!("Bearer {}", users[0].1.as_str()))).await;
    assert_eq!(status, 503);
    assert!(head.contains("retry-after: 1"), "{head}");
    drop(held);

    // The database down: 503 too.
    pool.close();
    let (status, head, _) = get_http(addr, "/me", Some(&format!("Bearer {}", users[0].1.as_str()))).await;
    assert_eq!(status, 503);
    assert!(head.contains("retry-after"));
}

#[tokio::test]
async fn a_checkout_refused_for_too_many_waiting_is_a_503_at_once() {
    refused_for_too_many_waiting(false).await;
}

#[tokio::test]
async fn behind_the_layer_a_checkout_refused_for_too_many_waiting_is_a_503_at_once() {
    refused_for_too_many_waiting(true).await;
}

async fn refused_for_too_many_waiting(layered: bool) {
    let (server, conn) = setup().await;
    let s = conn.attach().await.unwrap();
    let token = s.signup(&record("account", "shed@x.y", "pw")).await.unwrap().access;
    let pool = support::one_waiter_pool(server.url()).await;
    let addr = serve(pool.clone(), layered).await;
    let held = pool.get().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(drop) }
    });
    support::until("the waiter queues", || pool.status().waiting > 0).await;
    let (status, head, body) = get_http(addr, "/me", Some(&format!("Bearer {}", token.as_str()))).await;
    assert_eq!(status, 503, "{body}");
    assert!(head.contains("retry-after: 1"), "{head}");
    assert!(!body.contains(token.as_str()));
    assert_eq!(pool.status().rejected_checkouts, 1);
    drop(held);
    waiter.await.unwrap().unwrap();
}

/// Two `Tenant`s in one handler behind the layer: the request has one session, the second is a 500.
async fn twice(Tenant(_first): Tenant, Tenant(_second): Tenant) -> &'static str {
    "two sessions"
}

#[tokio::test]
async fn behind_the_layer_a_request_has_one_session() {
    let (server, conn) = setup().await;
    let s = conn.attach().await.unwrap();
    let token = s.signup(&record("account", "twice@x.y", "pw")).await.unwrap().access;
    let pool = Pool::builder(server.url()).connections(1).max_sessions(2).namespace_database(NS, DB).build().await.unwrap();
    let app = Router::new().route("/twice", get(twice)).route_layer(TenantLayer::new(pool.clone())).with_state(pool.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (status, _, body) = get_http(addr, "/twice", Some(&format!("Bearer {}", token.as_str()))).await;
    assert_eq!(status, 500, "{body}");
    let s = pool.status();
    assert_eq!(s.available, s.size, "the one session is back: {s:?}");
}
