//! A multi-tenant HTTP server (axum): every request runs as *its* user. The `TenantLayer`
//! forwards the request's `Authorization: Bearer <jwt>` through the pool (it checks out a session
//! authenticated as that token) and the `Tenant` extractor hands that session to the handler, so
//! the table permissions (`WHERE owner = $auth.id`) decide what each caller sees.
//!
//! ```text
//! cargo run --example multi_tenant                               # self-demo, own local SurrealDB
//! cargo run --example multi_tenant -- --demo ws://127.0.0.1:8000 # self-demo against yours (root/root)
//! cargo run --example multi_tenant -- --serve                    # serve on http://127.0.0.1:3000
//! ```
//!
//! Routes:
//!
//! * `POST /signup` `{"email", "password"}` → `{"token"}` (a record user's access token; not
//!   behind the layer)
//! * `GET /notes` → the caller's notes
//! * `POST /notes` `{"text"}` → the created note (201)
//! * `GET /metrics` → the pool's metrics in Prometheus text format (feature `metrics`; not
//!   behind the layer)
//!
//! Errors (the layer's and the handlers' alike, one mapping: `surreal_pool::tower::Rejection`): a
//! missing, malformed, bad or expired token is 401 with `WWW-Authenticate`; a checkout timeout
//! (pool exhausted), too many waiting or a connection problem is 503 with `Retry-After`; a
//! refused operation 403; anything else 500. Bodies carry a short fixed message: never the
//! token, never the database's error text (that goes to the log).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use surreal_pool::axum::{Rejection, Tenant};
use surreal_pool::tower::TenantLayer;
use surreal_pool::{AccessToken, Pool, Record, Root};
use surreal_pool_testkit::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NS: &str = "surrealdb";
const DB: &str = "notes_app";
/// The record access method the `/signup` route uses.
const ACCESS: &str = "account";

const SCHEMA: &str = r#"
DEFINE NAMESPACE IF NOT EXISTS surrealdb;
USE NS surrealdb;
DEFINE DATABASE IF NOT EXISTS notes_app;
USE NS surrealdb DB notes_app;
DEFINE TABLE IF NOT EXISTS user SCHEMALESS PERMISSIONS FOR select, update WHERE id = $auth.id, FOR create, delete NONE;
DEFINE INDEX IF NOT EXISTS user_email ON user FIELDS email UNIQUE;
DEFINE TABLE IF NOT EXISTS note SCHEMALESS PERMISSIONS FOR select, create, update, delete WHERE owner = $auth.id;
DEFINE ACCESS IF NOT EXISTS account ON DATABASE TYPE RECORD
    SIGNUP ( CREATE user SET email = $email, pass = crypto::argon2::generate($password) )
    SIGNIN ( SELECT * FROM user WHERE email = $email AND crypto::argon2::compare(pass, $password) )
    DURATION FOR TOKEN 15m, FOR SESSION 12h;
-- Only for the demo's expired-token check: same users, one-second tokens.
DEFINE ACCESS IF NOT EXISTS short_lived ON DATABASE TYPE RECORD
    SIGNIN ( SELECT * FROM user WHERE email = $email AND crypto::argon2::compare(pass, $password) )
    DURATION FOR TOKEN 1s, FOR SESSION 1s;
"#;

// ----- the HTTP API -----

/// The routes; the pool is the only state (it is `Clone`, an `Arc` inside).
fn app(pool: Pool) -> Router {
    Router::new()
        .route("/notes", get(list_notes).post(create_note))
        // The routes above run as the caller: the layer checks out a session forwarded as the
        // request's bearer token (or answers 401/503 itself), and `Tenant` takes it.
        .route_layer(TenantLayer::new(pool.clone()))
        // Added after the layer: not behind it (signing up needs no token; nor does a scrape).
        .route("/signup", post(signup))
        .route("/metrics", get(metrics))
        .with_state(pool)
}

/// The Prometheus recorder, installed once by `main`.
static PROMETHEUS: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> = std::sync::OnceLock::new();

/// `GET /metrics`: the pool's gauges set now, then everything recorded so far.
async fn metrics(State(pool): State<Pool>) -> String {
    pool.record_metrics();
    PROMETHEUS.get().map(|h| h.render()).unwrap_or_default()
}

#[derive(Deserialize)] // no Debug: it holds a password
struct SignupForm {
    email: String,
    password: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Note {
    id: String,
    text: String,
    owner: String,
}

#[derive(Deserialize)]
struct NewNote {
    text: String,
}

/// `POST /signup`: signs a record user up on an anonymous pooled session and returns the access
/// token. The session is then authenticated as the new user, so the pool resets it before anyone
/// else gets it.
async fn signup(State(pool): State<Pool>, Json(form): Json<SignupForm>) -> Result<Json<serde_json::Value>, Response> {
    let db = pool.get().await.map_err(refused)?;
    let vars = json!({ "email": form.email, "password": form.password });
    let tokens = db.signup(&Record::new(NS, DB, ACCESS, vars)).await.map_err(|e| match e {
        // The access method refused (e.g. the email is taken): the client's input, not a token.
        e if e.is_auth() => (StatusCode::BAD_REQUEST, Json(json!({ "error": "signup refused" }))).into_response(),
        e => refused(e),
    })?;
    Ok(Json(json!({ "token": tokens.access.as_str() })))
}

/// `GET /notes`: the caller's notes. The query has no `WHERE owner = …`: the permissions do that.
async fn list_notes(Tenant(db): Tenant) -> Result<Json<Vec<Note>>, Rejection> {
    let notes: Vec<Note> = db.query("SELECT id, text, owner FROM note", ()).await?.take(0)?;
    Ok(Json(notes))
}

/// `POST /notes`: creates a note owned by the caller.
async fn create_note(Tenant(db): Tenant, Json(new): Json<NewNote>) -> Result<(StatusCode, Json<Note>), Rejection> {
    let sql = "CREATE ONLY note SET text = $text, owner = $auth.id RETURN id, text, owner";
    let note: Note = db.query(sql, json!({ "text": new.text })).await?.take(0)?;
    Ok((StatusCode::CREATED, Json(note)))
}

/// The shared mapping (401/403/503/500, a fixed message); surreal_pool errors never contain
/// tokens or passwords, so they may be logged.
fn refused(e: surreal_pool::Error) -> Response {
    eprintln!("[server] {e}");
    Rejection::from(e).into_response()
}

// ----- running it -----

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    let _ = PROMETHEUS.set(handle);
    let mut serve = false;
    let mut url = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--demo" => serve = false,
            "--serve" => serve = true,
            a if a.starts_with("ws://") || a.starts_with("wss://") => url = Some(arg),
            _ => return Err(format!("usage: multi_tenant [--demo | --serve] [ws://host:port]; got {arg:?}").into()),
        }
    }

    // Use the URL given, or start a local server.
    let (url, _server) = match url {
        Some(url) => (url, None),
        None => {
            println!("starting a local SurrealDB test server (built once, cached) ...");
            let server = TestServer::start()?;
            (server.url(), Some(server))
        }
    };

    // The server refuses anonymous queries: apply the schema as root, on a session of its own.
    let pool = Pool::builder(&url)
        .connections(2)
        .max_sessions(8)
        .namespace_database(NS, DB)
        .checkout_timeout(Duration::from_secs(2))
        .build()
        .await?;
    {
        let admin = pool.connections()[0].attach().await?;
        admin.signin(&Root::new("root", "root")).await?;
        admin.query(SCHEMA, ()).await?.check()?;
        admin.detach().await?;
    }
    println!("connected to {url}; schema ready in {NS}/{DB}");

    if serve {
        let listener = TcpListener::bind("127.0.0.1:3000").await?;
        println!("listening on http://{}  (Ctrl-C to stop)", listener.local_addr()?);
        println!("  curl -s -XPOST localhost:3000/signup -H 'content-type: application/json' -d '{{\"email\":\"a@b.c\",\"password\":\"pw\"}}'");
        println!("  curl -s localhost:3000/notes -H \"authorization: Bearer $TOKEN\"");
        axum::serve(listener, app(pool.clone()))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
    } else {
        demo(&url, &pool).await?;
    }
    pool.close();
    Ok(())
}

/// Serves `app(pool)` on a free loopback port until the returned sender is dropped or fired.
async fn spawn_server(pool: Pool) -> std::io::Result<(SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = axum::serve(listener, app(pool)).with_graceful_shutdown(shutdown).await {
            eprintln!("[server] stopped: {e}");
        }
    });
    Ok((addr, stop, task))
}

/// Signs up two users over HTTP, has each create notes, and checks that each sees only their
/// own; then shows the 401 and 503 mappings.
async fn demo(url: &str, pool: &Pool) -> Result<(), Box<dyn std::error::Error>> {
    let (addr, stop, server) = spawn_server(pool.clone()).await?;
    println!("serving on http://{addr}");

    // Unique emails, so the demo can run repeatedly against the same server.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut users = Vec::new();
    for (name, texts) in [("alice", &["buy milk", "call Bob"][..]), ("bob", &["Person:John Smith", "2024-01-01"][..])] {
        let email = format!("{name}+{}@example.com", &run[..8]);
        let signup = json!({ "email": email, "password": format!("{name}-password") });
        let (status, body) = http(addr, "POST", "/signup", None, Some(&signup)).await?;
        expect(status == 200, format!("signup {name}: {status} {body}"))?;
        let token = body["token"].as_str().ok_or("signup returned no token")?.to_owned();
        println!("POST /signup {email} -> {status} (token {})", AccessToken::new(token.clone()));
        for text in texts {
            let (status, body) = http(addr, "POST", "/notes", Some(&token), Some(&json!({ "text": text }))).await?;
            expect(status == 201, format!("create note for {name}: {status} {body}"))?;
            println!("  {name}: POST /notes {text:?} -> {status} {}", body["id"]);
        }
        users.push((name, email, token, texts));
    }

    // Each user lists their notes: only their own, although the query has no WHERE clause.
    let mut owners = Vec::new();
    for (name, _, token, texts) in &users {
        let (status, body) = http(addr, "GET", "/notes", Some(token), None).await?;
        expect(status == 200, format!("list notes for {name}: {status} {body}"))?;
        let notes: Vec<Note> = serde_json::from_value(body)?;
        let seen: Vec<&str> = notes.iter().map(|n| n.text.as_str()).collect();
        println!("{name}: GET /notes -> {status}, sees {seen:?}");
        let mut expected: Vec<&str> = texts.to_vec();
        let mut got = seen.clone();
        expected.sort();
        got.sort();
        expect(got == expected, format!("{name} should see exactly their notes {expected:?}, saw {seen:?}"))?;
        let owner = notes.first().map(|n| n.owner.clone()).ok_or("no notes")?;
        expect(notes.iter().all(|n| n.owner == owner), format!("{name} sees notes of several owners"))?;
        owners.push(owner);
    }
    expect(owners[0] != owners[1], "both users' notes have the same owner")?;
    println!("ok: each user sees only their own notes ({} vs {})", owners[0], owners[1]);

    // 401s: no token, a garbage token, a forged JWT, an expired token.
    let forged = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJleHAiOjQxMDI0NDQ4MDAsIk5TIjoic3VycmVhbGRiIn0.c2lnbmF0dXJl";
    let expired = {
        let (_, email, _, _) = &users[0];
        let vars = json!({ "email": email, "password": "alice-password" });
        let session = pool.get().await?; // dirty after this signin: the pool resets it before reuse
        let tokens = session.signin(&Record::new(NS, DB, "short_lived", vars)).await?;
        tokens.access.as_str().to_owned()
    };
    tokio::time::sleep(Duration::from_millis(2100)).await; // the short_lived token is now expired
    for (what, token) in [("no token", None), ("garbage token", Some("not-a-jwt")), ("forged JWT", Some(forged)), ("expired token", Some(&*expired))] {
        let (status, body) = http(addr, "GET", "/notes", token, None).await?;
        println!("GET /notes with {what} -> {status} {body}");
        expect(status == 401, format!("{what}: expected 401"))?;
        if let Some(token) = token {
            expect(!body.to_string().contains(token), "the token leaked into the response")?;
        }
    }

    // 503: a pool of one session, held elsewhere, so the request's checkout times out.
    let tiny = Pool::builder(url)
        .connections(1)
        .max_sessions(1)
        .namespace_database(NS, DB)
        .checkout_timeout(Duration::from_millis(300))
        .build()
        .await?;
    let (tiny_addr, tiny_stop, tiny_server) = spawn_server(tiny.clone()).await?;
    let held = tiny.get().await?;
    let (status, headers, body) = http_raw(tiny_addr, "GET", "/notes", Some(&users[0].2), None).await?;
    let retry_after = headers.lines().find_map(|l| l.strip_prefix("retry-after: ")).unwrap_or("(none)");
    println!("GET /notes on an exhausted pool -> {status}, Retry-After: {retry_after}, {body}");
    expect(status == 503 && retry_after == "1", "expected 503 with Retry-After: 1")?;
    drop(held);
    let (status, _, _) = http_raw(tiny_addr, "GET", "/notes", Some(&users[0].2), None).await?;
    expect(status == 200, format!("after releasing the session: {status}"))?;
    let _ = tiny_stop.send(());
    tiny_server.await?;
    tiny.close();

    println!("pool.status() = {:?}", pool.status());
    let (status, _, text) = http_raw(addr, "GET", "/metrics", None, None).await?;
    let checkouts = text.lines().filter(|l| l.starts_with("surreal_pool_checkouts_total")).collect::<Vec<_>>().join(", ");
    println!("GET /metrics -> {status}: {checkouts}");
    expect(status == 200 && text.contains(r#"surreal_pool_checkouts_total{outcome="ok"}"#), "metrics served")?;
    expect(!users.iter().any(|u| text.contains(u.2.as_str())), "no token in the metrics")?;
    let _ = stop.send(());
    server.await?;
    Ok(())
}

fn expect(ok: bool, what: impl Into<String>) -> Result<(), Box<dyn std::error::Error>> {
    if ok {
        Ok(())
    } else {
        Err(format!("demo check failed: {}", what.into()).into())
    }
}

// ----- a minimal HTTP/1.1 client over loopback (one request per connection) -----

async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Result<(u16, serde_json::Value), Box<dyn std::error::Error>> {
    let (status, _, body) = http_raw(addr, method, path, bearer, body).await?;
    Ok((status, serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body))))
}

/// Sends one request with `Connection: close`; returns the status, the headers (lower-cased)
/// and the body.
async fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Result<(u16, String, String), Box<dyn std::error::Error>> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = bearer {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));

    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await??;
    let response = String::from_utf8(response)?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("a response without a header end")?;
    let (status_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("a response without a status")?;
    Ok((status, headers.to_ascii_lowercase(), body.to_owned()))
}
