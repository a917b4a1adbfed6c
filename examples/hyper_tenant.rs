//! A multi-tenant HTTP server on plain hyper 1 (no axum), through the same `TenantLayer` the
//! axum example installs: the layer forwards each request's `Authorization: Bearer <jwt>`
//! through the pool and puts the session into the request's extensions; the handler, a
//! `tower::service_fn`, takes it out with `TenantSession::take`.
//!
//! ```text
//! cargo run --example hyper_tenant                         # self-demo, own local SurrealDB
//! cargo run --example hyper_tenant -- ws://127.0.0.1:8000  # self-demo against yours (root/root)
//! ```
//!
//! Routes (all behind the layer):
//!
//! * `GET /me` → `{"user", "email"}`: the caller, as the database sees them (`$auth`)
//! * `GET /ping` → `"pong"`: never takes the session, which goes back to the pool anyway
//!
//! Refusals are the layer's own answers (401 with `WWW-Authenticate`, 503 with `Retry-After`);
//! a handler's errors go through the same mapping (`Rejection::from(e).http_response()`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use surreal_pool::tower::{Rejection, TenantLayer, TenantSession};
use surreal_pool::{Pool, Record, Root};
use surreal_pool_testkit::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::Layer;

const NS: &str = "surrealdb";
const DB: &str = "hyper_app";

const SCHEMA: &str = r#"
DEFINE NAMESPACE IF NOT EXISTS surrealdb;
USE NS surrealdb;
DEFINE DATABASE IF NOT EXISTS hyper_app;
USE NS surrealdb DB hyper_app;
DEFINE TABLE IF NOT EXISTS user SCHEMALESS PERMISSIONS FOR select, update WHERE id = $auth.id, FOR create, delete NONE;
DEFINE ACCESS IF NOT EXISTS account ON DATABASE TYPE RECORD
    SIGNUP ( CREATE user SET email = $email, pass = crypto::argon2::generate($password) )
    SIGNIN ( SELECT * FROM user WHERE email = $email AND crypto::argon2::compare(pass, $password) )
    DURATION FOR TOKEN 15m, FOR SESSION 12h;
"#;

// ----- the service -----

fn json_response(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

/// The handler behind the layer: a plain async function of the request.
async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let slot = request.extensions().get::<TenantSession>();
    let answer = match request.uri().path() {
        "/me" => {
            let Some(db) = slot.and_then(TenantSession::take) else {
                return Ok(Rejection::Internal.http_response()); // not behind the layer
            };
            match db.query("RETURN { user: <string> $auth.id, email: $auth.email }", ()).await.and_then(|mut r| r.take(0)) {
                Ok(me) => json_response(StatusCode::OK, me),
                Err(e) => {
                    eprintln!("[server] {e}"); // never contains tokens
                    Rejection::from(e).http_response()
                }
            }
        }
        // The session is left in the extensions: the layer gives it back when this is answered.
        "/ping" => json_response(StatusCode::OK, json!("pong")),
        _ => json_response(StatusCode::NOT_FOUND, json!({ "error": "no such route" })),
    };
    Ok(answer)
}

/// Serves hyper's HTTP/1 connections on `listener`, each through `TenantLayer` over `handle`.
async fn serve(listener: TcpListener, pool: Pool) {
    let service = TenantLayer::new(pool).layer(tower::service_fn(handle));
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                eprintln!("[server] connection: {e}");
            }
        });
    }
}

// ----- the self-demo -----

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1);
    let (url, _server) = match url {
        Some(url) if url.starts_with("ws://") || url.starts_with("wss://") => (url, None),
        Some(other) => return Err(format!("usage: hyper_tenant [ws://host:port]; got {other:?}").into()),
        None => {
            println!("starting a local SurrealDB test server (built once, cached) ...");
            let server = TestServer::start()?;
            (server.url(), Some(server))
        }
    };
    let pool = Pool::builder(&url)
        .connections(1)
        .max_sessions(4)
        .namespace_database(NS, DB)
        .checkout_timeout(Duration::from_millis(500))
        .build()
        .await?;
    {
        let admin = pool.connections()[0].attach().await?;
        admin.signin(&Root::new("root", "root")).await?;
        admin.query(SCHEMA, ()).await?.check()?;
        admin.detach().await?;
    }
    println!("connected to {url}; schema ready in {NS}/{DB}");

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(serve(listener, pool.clone()));
    println!("hyper serving on http://{addr}, every route behind TenantLayer");

    // Two users (unique emails, so the demo can run again against the same database).
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut users = Vec::new();
    for name in ["alice", "bob"] {
        let email = format!("{name}+{}@example.com", &run[..8]);
        let db = pool.get().await?; // signed up on an anonymous session; the pool resets it after
        let vars = json!({ "email": email, "password": format!("{name}-password") });
        let tokens = db.signup(&Record::new(NS, DB, "account", vars)).await?;
        users.push((email, tokens.access.as_str().to_owned()));
    }

    // Each request runs as its token's user.
    for _ in 0..2 {
        for (email, token) in &users {
            let (status, _, body) = get(addr, "/me", Some(&format!("Bearer {token}"))).await?;
            let me: serde_json::Value = serde_json::from_str(&body)?;
            println!("GET /me as {email} -> {status} {me}");
            expect(status == 200 && me["email"] == *email.as_str(), format!("{email} should see themselves"))?;
        }
    }
    println!("ok: each user sees only their own identity; {} affinity hits", pool.status().affinity_hits);

    // A handler that never takes the session: it goes back to the pool with the response.
    let (status, _, body) = get(addr, "/ping", Some(&format!("Bearer {}", users[0].1))).await?;
    let s = pool.status();
    println!("GET /ping -> {status} {body}; sessions idle after it: {}/{}", s.available, s.size);
    expect(status == 200 && s.available == s.size, "the untaken session is back")?;

    // The layer's own refusals: the handler never runs, the token never comes back.
    let forged = format!("{}x", users[0].1);
    for (what, authorization) in [
        ("no header", None),
        ("another scheme", Some("Basic dXNlcjpwdw==".to_owned())),
        ("a malformed header", Some("Bearer two words".to_owned())),
        ("a garbage token", Some("Bearer not-a-jwt".to_owned())),
        ("a forged signature", Some(format!("Bearer {forged}"))),
    ] {
        let (status, head, body) = get(addr, "/me", authorization.as_deref()).await?;
        let challenge = head.lines().find_map(|l| l.strip_prefix("www-authenticate: ")).unwrap_or("(none)");
        println!("GET /me with {what} -> {status}, WWW-Authenticate: {challenge}, {body}");
        expect(status == 401, format!("{what}: expected 401"))?;
        expect(!body.contains(&forged) && !body.contains(&users[0].1), "the token leaked into the response")?;
    }

    // The pool exhausted: the layer answers 503 with Retry-After.
    let held = [pool.get().await?, pool.get().await?, pool.get().await?, pool.get().await?];
    let (status, head, body) = get(addr, "/me", Some(&format!("Bearer {}", users[0].1))).await?;
    let retry_after = head.lines().find_map(|l| l.strip_prefix("retry-after: ")).unwrap_or("(none)");
    println!("GET /me with every session held -> {status}, Retry-After: {retry_after}, {body}");
    expect(status == 503 && retry_after == "1", "expected 503 with Retry-After: 1")?;
    drop(held);

    println!("pool.status() = {:?}", pool.status());
    server.abort();
    pool.close();
    Ok(())
}

fn expect(ok: bool, what: impl Into<String>) -> Result<(), Box<dyn std::error::Error>> {
    if ok {
        Ok(())
    } else {
        Err(format!("demo check failed: {}", what.into()).into())
    }
}

/// One HTTP/1.1 GET with `Connection: close`: the status, the headers (lower-cased), the body.
async fn get(addr: SocketAddr, path: &str, authorization: Option<&str>) -> Result<(u16, String, String), Box<dyn std::error::Error>> {
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n").as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await??;
    let response = String::from_utf8(response)?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("a response without a header end")?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("a response without a status")?;
    Ok((status, head.to_ascii_lowercase(), body.to_owned()))
}
