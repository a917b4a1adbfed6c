//! The tower layer over real HTTP, without axum: a plain hyper 1 server on a loopback port whose
//! service is `TenantLayer` over a `service_fn`, surreal-pool, a real SurrealDB.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use support::{forged, record, setup, DB, NS};
use surreal_pool::tower::{Rejection, TenantLayer, TenantSession};
use surreal_pool::{AccessToken, Pool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{Layer, Service, ServiceExt};

/// What the handlers saw: how many requests reached them, and sessions they kept clones of.
#[derive(Clone, Default)]
struct Seen {
    calls: Arc<AtomicUsize>,
    stash: Arc<Mutex<Vec<TenantSession>>>,
}

fn json(status: u16, value: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(value.to_string()));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
    response
}

/// The routes, as a plain `service_fn` handler would write them.
async fn handle(request: Request<Incoming>, seen: Seen) -> Result<Response<Full<Bytes>>, Infallible> {
    seen.calls.fetch_add(1, Ordering::SeqCst);
    let slot = request.extensions().get::<TenantSession>().cloned().expect("behind the layer");
    let answer = async {
        match request.uri().path() {
            "/me" => {
                let db = slot.take().expect("the session is there");
                let email: serde_json::Value = db.query("RETURN $auth.email", ()).await?.take(0)?;
                Ok(json(200, serde_json::json!({ "email": email })))
            }
            // Never takes the session.
            "/ignore" => Ok(json(200, serde_json::json!("ignored"))),
            // Keeps a clone of the extension beyond the request.
            "/stash" => {
                seen.stash.lock().unwrap().push(slot.clone());
                Ok(json(200, serde_json::json!("stashed")))
            }
            // Another namespace: the record user may not (Error::NotAllowed).
            "/forbidden" => {
                let db = slot.take().expect("the session is there");
                db.use_ns_db("elsewhere", "other").await?;
                Ok(json(200, serde_json::json!("moved")))
            }
            // A statement the record user may not run (an IAM refusal inside the query).
            "/define" => {
                let db = slot.take().expect("the session is there");
                db.query("DEFINE TABLE secret_table", ()).await?.check()?;
                Ok(json(200, serde_json::json!("defined")))
            }
            // A database error whose text must not reach the client.
            "/broken" => {
                let db = slot.take().expect("the session is there");
                let v: serde_json::Value = db.query("THROW 'secret internal detail'", ()).await?.take(0)?;
                Ok(json(200, v))
            }
            // Holds the session in a query for 2 s.
            "/slow" => {
                let db = slot.take().expect("the session is there");
                let v: serde_json::Value = db.query("sleep(2s); RETURN 1", ()).await?.take(1)?;
                Ok(json(200, v))
            }
            _ => Ok(json(404, serde_json::json!("no such route"))),
        }
    };
    let answer: surreal_pool::Result<_> = answer.await;
    Ok(answer.unwrap_or_else(|e| Rejection::from(e).http_response()))
}

/// Serves the routes through `TenantLayer` with hyper's HTTP/1 server (no axum).
async fn serve(pool: Pool, seen: Seen) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = TenantLayer::new(pool).layer(tower::service_fn(move |request| handle(request, seen.clone())));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    addr
}

fn request(path: &str, authorization: Option<&str>) -> String {
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n")
}

/// A minimal HTTP/1.1 GET over a fresh TCP connection: status, raw head (lower-cased), body.
async fn get_http(addr: SocketAddr, path: &str, authorization: Option<&str>) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request(path, authorization).as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut response)).await.unwrap().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_lowercase(), body.to_string())
}

fn bearer(token: &AccessToken) -> String {
    format!("Bearer {}", token.as_str())
}

async fn users(conn: &surreal_pool::Connection, emails: &[&'static str]) -> Vec<(&'static str, AccessToken)> {
    let mut users = Vec::new();
    for email in emails {
        let s = conn.attach().await.unwrap();
        users.push((*email, s.signup(&record("account", email, "pw")).await.unwrap().access));
        s.detach().await.unwrap();
    }
    users
}

/// Every session of the pool is idle.
fn all_idle(pool: &Pool) -> bool {
    let s = pool.status();
    s.available == s.size
}

#[tokio::test]
async fn each_request_runs_as_the_user_of_its_bearer_token() {
    let (server, conn) = setup().await;
    let users = users(&conn, &["a@x.y", "b@x.y"]).await;
    let pool = Pool::builder(server.url()).connections(1).max_sessions(2).namespace_database(NS, DB).build().await.unwrap();
    let addr = serve(pool.clone(), Seen::default()).await;
    for _ in 0..3 {
        for (email, token) in &users {
            // The scheme's case does not matter.
            for scheme in ["Bearer", "bearer"] {
                let (status, head, body) = get_http(addr, "/me", Some(&format!("{scheme} {}", token.as_str()))).await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["email"], *email, "{head}");
                assert!(all_idle(&pool), "the session is back once the response is out: {:?}", pool.status());
            }
        }
    }
    assert!(pool.status().affinity_hits > 0, "repeat users cost no round trip");
}

#[tokio::test]
async fn missing_malformed_and_refused_tokens_are_401_without_echo_and_never_reach_the_handler() {
    let (server, conn) = setup().await;
    let users = users(&conn, &["a@x.y"]).await;
    let pool = Pool::builder(server.url()).connections(1).max_sessions(2).namespace_database(NS, DB).build().await.unwrap();
    let seen = Seen::default();
    let addr = serve(pool.clone(), seen.clone()).await;

    // No bearer credentials at all: `WWW-Authenticate: Bearer`, without an error code.
    for authorization in [None, Some("Basic dXNlcjpwdw==")] {
        let (status, head, body) = get_http(addr, "/me", authorization).await;
        assert_eq!(status, 401, "{authorization:?}");
        assert!(head.contains("www-authenticate: bearer\r\n"), "{head}");
        assert!(body.contains("missing bearer token"), "{body}");
    }

    // Malformed, garbage, forged (the server refuses its signature): `error="invalid_token"`.
    let forged = forged(&users[0].1);
    let garbage = "not-a-jwt";
    for token in ["", "a b", "a,b", garbage, &forged] {
        let (status, head, body) = get_http(addr, "/me", Some(&format!("Bearer {token}"))).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        assert!(head.contains("www-authenticate: bearer error=\"invalid_token\""), "{head}");
        if !token.is_empty() {
            assert!(!body.contains(token) && !head.contains(&token.to_lowercase()), "the token is not echoed");
        }
    }
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0, "refused requests never reach the handler");
    assert!(pool.status().refused_tokens >= 1, "the garbage token was refused before any round trip");
    assert!(all_idle(&pool));
}

#[tokio::test]
async fn a_refused_operation_is_403_and_a_database_error_500_without_its_text() {
    let (server, conn) = setup().await;
    let users = users(&conn, &["a@x.y"]).await;
    let pool = Pool::builder(server.url()).connections(1).max_sessions(2).namespace_database(NS, DB).build().await.unwrap();
    let addr = serve(pool.clone(), Seen::default()).await;
    let token = bearer(&users[0].1);

    let (status, head, body) = get_http(addr, "/forbidden", Some(&token)).await;
    assert_eq!(status, 403, "{body}");
    assert!(!head.contains("www-authenticate") && !head.contains("retry-after"), "{head}");
    assert!(!body.contains("permission") && !body.contains("elsewhere"), "no database text: {body}");

    let (status, _, body) = get_http(addr, "/define", Some(&token)).await;
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("IAM") && !body.contains("secret_table"), "no database text: {body}");

    let (status, _, body) = get_http(addr, "/broken", Some(&token)).await;
    assert_eq!(status, 500);
    assert!(!body.contains("secret internal detail"), "{body}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap(), serde_json::json!({ "error": "internal error" }));

    // The session the handler left in another namespace (it tried) is not reused as it was.
    let (status, _, body) = get_http(addr, "/me", Some(&token)).await;
    assert_eq!((status, serde_json::from_str::<serde_json::Value>(&body).unwrap()["email"].clone()), (200, "a@x.y".into()));
}

#[tokio::test]
async fn an_exhausted_refusing_or_closed_pool_is_503_with_retry_after() {
    let (server, conn) = setup().await;
    let users = users(&conn, &["shed@x.y"]).await;
    let token = bearer(&users[0].1);

    let pool = support::one_waiter_pool(server.url()).await;
    let seen = Seen::default();
    let addr = serve(pool.clone(), seen.clone()).await;
    let held = pool.get().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(drop) }
    });
    support::until("the waiter queues", || pool.status().waiting == 1).await;
    let started = Instant::now();
    let (status, head, body) = get_http(addr, "/me", Some(&token)).await;
    assert_eq!(status, 503, "{body}");
    assert!(started.elapsed() < Duration::from_secs(5), "refused at once");
    assert!(head.contains("retry-after: 1"), "{head}");
    assert!(!body.contains(users[0].1.as_str()));
    assert_eq!(pool.status().rejected_checkouts, 1);
    drop(held);
    waiter.await.unwrap().unwrap();

    // The checkout timeout: 503 too.
    let tiny = Pool::builder(server.url())
        .connections(1)
        .max_sessions(1)
        .namespace_database(NS, DB)
        .checkout_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let tiny_addr = serve(tiny.clone(), seen.clone()).await;
    let held = tiny.get().await.unwrap();
    let (status, head, _) = get_http(tiny_addr, "/me", Some(&token)).await;
    assert_eq!(status, 503);
    assert!(head.contains("retry-after: 1"), "{head}");
    drop(held);
    assert_eq!(get_http(tiny_addr, "/me", Some(&token)).await.0, 200);

    // The pool closed: 503.
    tiny.close();
    let (status, head, _) = get_http(tiny_addr, "/me", Some(&token)).await;
    assert_eq!(status, 503);
    assert!(head.contains("retry-after: 1"), "{head}");
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1, "only the served request reached a handler");
}

#[tokio::test]
async fn a_session_the_handler_does_not_take_goes_back_when_the_response_is_ready() {
    let (server, conn) = setup().await;
    let users = users(&conn, &["a@x.y"]).await;
    // One session: a request that kept it would make the next one time out.
    let pool = Pool::builder(server.url())
        .connections(1)
        .max_sessions(1)
        .namespace_database(NS, DB)
        .checkout_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    let seen = Seen::default();
    let addr = serve(pool.clone(), seen.clone()).await;
    let token = bearer(&users[0].1);
    for path in ["/ignore", "/stash", "/ignore", "/stash", "/me"] {
        let (status, _, body) = get_http(addr, path, Some(&token)).await;
        assert_eq!(status, 200, "{path}: {body}");
        let s = pool.status();
        assert_eq!((s.size, s.available), (1, 1), "{path}: the session is idle again: {s:?}");
    }
    let stash = seen.stash.lock().unwrap();
    assert_eq!(stash.len(), 2);
    assert!(stash.iter().all(|slot| slot.take().is_none()), "a clone kept beyond the request holds no session");
}

/// An inner service that is ready only when its gate is open, and checks that the instance
/// that reported ready is the one called (a clone starts not ready, as e.g. a `Buffer`'s does).
struct Gate {
    open: Arc<AtomicBool>,
    waker: Arc<Mutex<Option<Waker>>>,
    calls: Arc<AtomicUsize>,
    ready: bool,
}

impl Clone for Gate {
    fn clone(&self) -> Self {
        Gate { open: self.open.clone(), waker: self.waker.clone(), calls: self.calls.clone(), ready: false }
    }
}

impl Gate {
    fn set(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }
}

impl Service<Request<()>> for Gate {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.open.load(Ordering::SeqCst) {
            self.ready = true;
            Poll::Ready(Ok(()))
        } else {
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        assert!(std::mem::take(&mut self.ready), "called without having reported ready");
        self.calls.fetch_add(1, Ordering::SeqCst);
        let took = request.extensions().get::<TenantSession>().and_then(TenantSession::take).is_some();
        std::future::ready(Ok(Response::new(Full::from(took.to_string()))))
    }
}

/// Polls `f` once, with the test task's waker.
async fn pending<F: std::future::Future + Unpin>(f: &mut F) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *f).poll(cx).is_pending())).await
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

#[tokio::test]
async fn the_inner_services_readiness_is_respected() {
    let (server, conn) = setup().await;
    let users = users(&conn, &["a@x.y"]).await;
    let pool = Pool::builder(server.url()).connections(1).max_sessions(2).namespace_database(NS, DB).build().await.unwrap();
    let gate = Gate { open: Default::default(), waker: Default::default(), calls: Default::default(), ready: false };
    let mut service = TenantLayer::new(pool.clone()).layer(gate.clone());
    let with_token = || Request::builder().header("authorization", bearer(&users[0].1)).body(()).unwrap();

    // Closed: the layer is not ready either.
    let mut ready = std::pin::pin!(std::future::poll_fn(|cx| service.poll_ready(cx)));
    assert!(pending(&mut ready).await, "not ready while the inner service is not");
    gate.set(true);
    tokio::time::timeout(Duration::from_secs(5), ready).await.expect("woken when the inner service is ready").unwrap();

    // The instance polled ready serves the request (Gate asserts it), after the checkout.
    let response = assert_send(service.call(with_token())).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "true", "the handler got the session");

    // Closed again: the layer's next poll_ready is pending again.
    gate.set(false);
    let mut ready = std::pin::pin!(std::future::poll_fn(|cx| service.poll_ready(cx)));
    assert!(pending(&mut ready).await);
    gate.set(true);
    ready.await.unwrap();

    // A refused request gives the readiness up without calling the inner service.
    let response = service.call(Request::new(())).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(gate.calls.load(Ordering::SeqCst), 1);
    let response = service.ready().await.unwrap().call(with_token()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(gate.calls.load(Ordering::SeqCst), 2);
    assert!(all_idle(&pool));
}

#[tokio::test]
async fn a_client_that_disconnects_mid_checkout_or_mid_query_leaves_the_pool_consistent() {
    let (server, conn) = setup().await;
    let users = users(&conn, &["a@x.y", "b@x.y"]).await;
    // A checkout timeout longer than the test: only the cancellation can end the wait.
    let pool = Pool::builder(server.url())
        .connections(1)
        .max_sessions(1)
        .namespace_database(NS, DB)
        .checkout_timeout(Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    let addr = serve(pool.clone(), Seen::default()).await;

    // Mid-checkout: the only session is held, the request waits for its turn; the client goes.
    let held = pool.get().await.unwrap();
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    client.write_all(request("/me", Some(&bearer(&users[0].1))).as_bytes()).await.unwrap();
    support::until("the request's checkout queues", || pool.status().waiting == 1).await;
    drop(client);
    support::until("the abandoned checkout leaves the queue", || pool.status().waiting == 0).await;
    drop(held);
    let (status, _, body) = get_http(addr, "/me", Some(&bearer(&users[1].1))).await;
    assert_eq!((status, serde_json::from_str::<serde_json::Value>(&body).unwrap()["email"].clone()), (200, "b@x.y".into()));

    // Mid-query: the handler holds the session in a 2 s query when the client goes.
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    client.write_all(request("/slow", Some(&bearer(&users[0].1))).as_bytes()).await.unwrap();
    support::until("the handler holds the session", || pool.status().available == 0).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(client);
    support::until("the session comes back", || all_idle(&pool)).await;

    // Consistent: each user still gets their own identity, and nothing waits.
    for (email, token) in users.iter().chain(users.iter()) {
        let (status, _, body) = get_http(addr, "/me", Some(&bearer(token))).await;
        assert_eq!((status, serde_json::from_str::<serde_json::Value>(&body).unwrap()["email"].clone()), (200, (*email).into()));
    }
    let s = pool.status();
    assert_eq!((s.waiting, s.available, s.size), (0, 1, 1), "{s:?}");
}
