//! Tenant traffic as a multi-tenant web server meets it (issue 11): server sessions that expire
//! before their tokens, transactions on pooled sessions, hostile tokens, sessions returned with a
//! state change still in flight, and errors that say what happened.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use support::faults::server_with;
use support::proxy::Proxy;
use support::{forged, record, until, DB, NS, SCHEMA};
use surreal_pool::{AccessToken, Connection, Error, Pool, Root, Session};

/// [`SCHEMA`] plus a record access whose server sessions end after 1 s while its tokens last
/// an hour: the configuration where a hot token outlives its pooled session.
fn brief_sessions() -> String {
    format!(
        "{SCHEMA}
        DEFINE ACCESS brief ON DATABASE TYPE RECORD
            SIGNUP ( CREATE user SET email = $email, pass = crypto::argon2::generate($password) )
            SIGNIN ( SELECT * FROM user WHERE email = $email AND crypto::argon2::compare(pass, $password) )
            DURATION FOR TOKEN 1h, FOR SESSION 1s;"
    )
}

/// Signs up `n` users through `access`; returns each one's record id and access token.
async fn users(conn: &Connection, access: &str, n: usize) -> Vec<(String, AccessToken)> {
    let mut out = Vec::new();
    for i in 0..n {
        let s = conn.attach().await.unwrap();
        let tokens = s.signup(&record(access, &format!("{access}{i}@example.com"), "pw")).await.unwrap();
        let id: String = s.query("RETURN <string> $auth.id", ()).await.unwrap().take(0).unwrap();
        s.detach().await.unwrap();
        out.push((id, tokens.access));
    }
    out
}

async fn auth_id(s: &Session) -> Result<String, Error> {
    s.query("RETURN <string> $auth.id", ()).await?.take(0)
}

/// Polls `fut` once (so that its request is queued) and hands it back.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

/// The server's session clock ticks in whole seconds: 2.1 s after an authenticate, a 1 s
/// session has expired whatever the sub-second phase.
const PAST_A_BRIEF_SESSION: Duration = Duration::from_millis(2100);

// ---------------------------------------------------------------------------------------------
// 1. A hot token never meets an expired server session.

#[tokio::test]
async fn a_hot_token_is_served_across_server_session_expiries_on_the_checkout_path() {
    let server = server_with(&brief_sessions()).await;
    let conn = Connection::connect(server.url()).await.unwrap();
    let users = users(&conn, "brief", 1).await;
    let (id, token) = &users[0];
    let pool = Pool::builder(server.url()).connections(1).max_sessions(2).namespace_database(NS, DB).build().await.unwrap();
    // One request every 0.4 s for 3.6 s: the pooled session (an affinity hit every time after
    // the first) outlives its 1 s server session several times over.
    for i in 0..10 {
        let db = pool.get_with_token(token.as_str().to_owned()).await.unwrap();
        assert_eq!(auth_id(&db).await.unwrap_or_else(|e| panic!("request {i} failed: {e}")), *id);
        drop(db);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let s = pool.status();
    assert!(s.sessions_renewed >= 1, "the server sessions expired and were renewed: {s:?}");
    assert!(s.affinity_hits >= 9, "{s:?}");
    assert_eq!(s.resets, 0, "{s:?}");
}

#[tokio::test]
async fn a_session_held_across_its_expiry_keeps_serving_its_user_in_and_out_of_a_transaction() {
    let server = server_with(&brief_sessions()).await;
    let conn = Connection::connect(server.url()).await.unwrap();
    let users = users(&conn, "brief", 1).await;
    let (id, token) = &users[0];
    let pool = Pool::builder(server.url()).connections(1).max_sessions(1).namespace_database(NS, DB).build().await.unwrap();
    let db = pool.get_with_token(token.clone()).await.unwrap();
    assert_eq!(auth_id(&db).await.unwrap(), *id);
    tokio::time::sleep(PAST_A_BRIEF_SESSION).await;
    assert_eq!(auth_id(&db).await.expect("a valid token is served after its server session expired"), *id);
    assert_eq!(pool.status().sessions_renewed, 1);

    // The same inside a transaction: it survives the renewal and commits as the user.
    let tx = db.begin().await.unwrap();
    tokio::time::sleep(PAST_A_BRIEF_SESSION).await;
    tx.query("CREATE note SET owner = $auth.id, text = 'kept'", ()).await.expect("a query in a transaction after expiry").check().unwrap();
    tx.commit().await.unwrap();
    assert_eq!(pool.status().sessions_renewed, 2);
    let owners: Vec<String> = db.query("SELECT VALUE <string> owner FROM note", ()).await.unwrap().take(0).unwrap();
    assert_eq!(owners, vec![id.clone()]);
    drop(db);
    assert_eq!(pool.status().resets, 0, "a committed transaction leaves the session clean");
}

#[tokio::test]
async fn an_expired_session_whose_token_expired_too_is_an_auth_error_and_not_retried() {
    let schema = format!(
        "{}
        DEFINE ACCESS instant ON DATABASE TYPE RECORD
            SIGNUP ( CREATE user SET email = $email, pass = crypto::argon2::generate($password) )
            SIGNIN ( SELECT * FROM user WHERE email = $email AND crypto::argon2::compare(pass, $password) )
            DURATION FOR TOKEN 1s, FOR SESSION 1s;",
        brief_sessions()
    );
    let server = server_with(&schema).await;
    let conn = Connection::connect(server.url()).await.unwrap();
    let users = users(&conn, "instant", 1).await;
    let pool = Pool::builder(server.url()).connections(1).max_sessions(1).namespace_database(NS, DB).build().await.unwrap();
    let db = pool.get_with_token(users[0].1.clone()).await.unwrap();
    assert_eq!(auth_id(&db).await.unwrap(), users[0].0);
    tokio::time::sleep(PAST_A_BRIEF_SESSION).await;
    let err = auth_id(&db).await.unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert_eq!(pool.status().sessions_renewed, 0, "an expired token is not sent again");
    drop(db);
    // And a checkout with it now is refused before any round trip.
    let trips = pool.status().auth_round_trips;
    assert!(matches!(pool.get_with_token(users[0].1.clone()).await, Err(Error::InvalidToken(_))));
    assert_eq!(pool.status().auth_round_trips, trips);
}

// ---------------------------------------------------------------------------------------------
// 2. Committed transactions keep affinity; an abandoned commit still ends its transaction.

#[tokio::test]
async fn committed_transactions_leave_pooled_sessions_clean() {
    let server = server_with(SCHEMA).await;
    let conn = Connection::connect(server.url()).await.unwrap();
    let users = users(&conn, "plain", 1).await;
    let pool = Pool::builder(server.url()).connections(1).max_sessions(2).namespace_database(NS, DB).build().await.unwrap();
    for i in 0..20 {
        let db = pool.get_with_token(users[0].1.clone()).await.unwrap();
        let tx = db.begin().await.unwrap();
        tx.query("CREATE note SET owner = $auth.id, n = $n", serde_json::json!({ "n": i })).await.unwrap().check().unwrap();
        if i % 2 == 0 { tx.commit().await.unwrap() } else { tx.cancel().await.unwrap() }
    }
    let s = pool.status();
    assert_eq!((s.resets, s.auth_round_trips, s.affinity_hits), (0, 1, 19), "{s:?}");
    let db = pool.get_with_token(users[0].1.clone()).await.unwrap();
    let n: Vec<i64> = db.query("SELECT VALUE n FROM note ORDER BY n", ()).await.unwrap().take(0).unwrap();
    assert_eq!(n, (0..20).step_by(2).collect::<Vec<_>>(), "commits kept, cancels dropped");
}

#[tokio::test]
async fn a_commit_abandoned_while_queued_still_ends_its_transaction_without_writing() {
    let server = server_with(SCHEMA).await;
    // One request in flight at a time, so that a request queued behind a slow one stays queued.
    let conn = Connection::builder(server.url()).max_in_flight(1).connect().await.unwrap();
    let (s, slow) = (conn.attach().await.unwrap(), conn.attach().await.unwrap());
    for session in [&s, &slow] {
        session.signin(&Root::new("root", "root")).await.unwrap();
        session.use_ns_db(NS, DB).await.unwrap();
    }
    // More than the server's 64 open transactions per session: abandoned commits that did not
    // end their transactions would make a `begin` fail.
    for i in 0..80 {
        let tx = s.begin().await.unwrap_or_else(|e| panic!("begin {i}: {e}"));
        tx.query("CREATE abandoned", ()).await.unwrap().check().unwrap();
        let mut blocker = Box::pin(slow.query("SLEEP 5ms", ()));
        assert!(poll_once(&mut blocker).await.is_pending(), "the slow request is queued first");
        // Queued behind it, then given up before the connection takes it.
        assert!(tx.commit().now_or_never().is_none());
        blocker.await.unwrap();
    }
    let tx = s.begin().await.expect("no transaction piled up");
    tx.cancel().await.unwrap();
    let n: Option<i64> = s.query("SELECT VALUE count() FROM abandoned GROUP ALL", ()).await.unwrap().take(0).unwrap_or(None);
    assert_eq!(n.unwrap_or(0), 0, "an abandoned commit is sent as a cancel: nothing its caller never saw is written");
}

// ---------------------------------------------------------------------------------------------
// 3. Hostile tokens cost the other tenants nothing.

/// A well-formed JWT, signed like `token`, whose `exp` has passed.
fn expired(token: &AccessToken) -> String {
    let mut parts = token.as_str().split('.');
    let (header, _, signature) = (parts.next().unwrap(), parts.next(), parts.next().unwrap());
    // {"exp":1700000000,"ID":"user:x"}
    format!("{header}.eyJleHAiOjE3MDAwMDAwMDAsIklEIjoidXNlcjp4In0.{signature}")
}

#[tokio::test]
async fn hostile_tokens_cost_hot_tenants_no_authenticate() {
    let server = server_with(SCHEMA).await;
    let conn = Connection::connect(server.url()).await.unwrap();
    let hot = users(&conn, "plain", 3).await;
    let pool = Pool::builder(server.url()).connections(1).max_sessions(4).namespace_database(NS, DB).build().await.unwrap();
    for (id, token) in &hot {
        assert_eq!(auth_id(&pool.get_with_token(token.clone()).await.unwrap()).await.unwrap(), *id);
    }
    let before = pool.status();
    let (mut round_trips, mut refused) = (0, 0);
    for i in 0..150 {
        let (id, token) = &hot[i % 3];
        let db = pool.get_with_token(token.as_str().to_owned()).await.unwrap();
        assert_eq!(auth_id(&db).await.unwrap(), *id);
        drop(db);
        if i % 3 == 2 {
            let bad = match (i / 3) % 3 {
                0 => "garbage".to_owned(),
                1 => expired(token),
                _ => forged(token),
            };
            let err = pool.get_with_token(bad).await.expect_err("a bad token is refused");
            assert!(err.is_auth(), "{err:?}");
            if matches!(err, Error::InvalidToken(_)) { refused += 1 } else { round_trips += 1 }
        }
    }
    let after = pool.status();
    assert_eq!((refused, round_trips), (34, 16));
    assert_eq!(after.affinity_hits - before.affinity_hits, 150, "every hot request kept its session: {after:?}");
    assert_eq!(after.refused_tokens - before.refused_tokens, 34, "malformed and expired tokens cost no round trip");
    assert_eq!(after.auth_round_trips - before.auth_round_trips, 16, "only forged signatures reach the server: {after:?}");
}

/// Two hot tenants on a pool of 4 sessions, least recently used (the two default sessions were
/// used since); `forgeries(hot)` are then sent all at once, and every one must be refused
/// without costing a hot tenant its session: their next requests are affinity hits.
async fn concurrent_bad_tokens_leave_hot_tenants_alone(forgeries: impl Fn(&[(String, AccessToken)]) -> Vec<String>) {
    let server = server_with(SCHEMA).await;
    let conn = Connection::connect(server.url()).await.unwrap();
    let hot = users(&conn, "plain", 2).await;
    let pool = Pool::builder(server.url()).connections(1).max_sessions(4).namespace_database(NS, DB).build().await.unwrap();
    for (_, token) in &hot {
        drop(pool.get_with_token(token.clone()).await.unwrap());
    }
    let defaults = (pool.get().await.unwrap(), pool.get().await.unwrap());
    drop(defaults);
    let refused = futures_util::future::join_all(forgeries(&hot).into_iter().map(|f| pool.get_with_token(f))).await;
    assert!(refused.iter().all(|r| matches!(r, Err(Error::Auth(_)))), "{refused:?}");
    let before = pool.status();
    for (id, token) in &hot {
        assert_eq!(auth_id(&pool.get_with_token(token.clone()).await.unwrap()).await.unwrap(), *id);
    }
    let after = pool.status();
    assert_eq!((after.affinity_hits - before.affinity_hits, after.auth_round_trips - before.auth_round_trips), (2, 0), "{after:?}");
}

#[tokio::test]
async fn concurrent_bad_tokens_never_take_a_hot_tenants_idle_session() {
    // Two forged tokens at once: two sessions are idle besides the hot ones.
    concurrent_bad_tokens_leave_hot_tenants_alone(|hot| hot.iter().map(|(_, t)| forged(t)).collect()).await;
}

#[tokio::test]
async fn concurrent_copies_of_one_forged_token_never_take_a_hot_tenants_session() {
    // One forged token, three times at once: a copy being authenticated proves nothing.
    concurrent_bad_tokens_leave_hot_tenants_alone(|hot| vec![forged(&hot[0].1); 3]).await;
}

// ---------------------------------------------------------------------------------------------
// 4. A session returned with a state change in flight is replaced, not reused.

#[tokio::test]
async fn a_session_returned_mid_signin_is_replaced_not_reset() {
    let server = server_with(SCHEMA).await;
    let conn = Connection::connect(server.url()).await.unwrap();
    let users = users(&conn, "plain", 2).await;
    // A slow link keeps the abandoned request in flight for as long as the test needs.
    let proxy = Proxy::start(server.port()).await;
    let pool = Pool::builder(proxy.url()).connections(1).max_sessions(1).namespace_database(NS, DB).build().await.unwrap();
    let db = pool.get_with_token(users[0].1.clone()).await.unwrap();
    let old = db.id().unwrap();
    proxy.delay(Duration::from_millis(100));
    {
        // A signin (argon2 on the server) sent and abandoned before its reply.
        let credentials = record("plain", "plain1@example.com", "pw");
        let mut signin = Box::pin(db.signin(&credentials));
        assert!(poll_once(&mut signin).await.is_pending());
        until("the signin is in flight", || !db.auth_known()).await;
    }
    drop(db);
    proxy.delay(Duration::ZERO);
    assert_eq!(pool.status().replaced, 1);
    let next = pool.get_with_token(users[1].1.clone()).await.unwrap();
    assert_ne!(next.id().unwrap(), old, "a fresh server session, not the one whose signin may still land");
    assert_eq!(auth_id(&next).await.unwrap(), users[1].0);
    assert_eq!(pool.status().resets, 0);
    // The old session is detached on the server.
    let deadline = Instant::now() + Duration::from_secs(5);
    while pool.connections()[0].server_sessions().await.unwrap().contains(&old) {
        assert!(Instant::now() < deadline, "the replaced session was never detached");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_session_returned_with_a_variable_in_flight_is_replaced() {
    let server = server_with(SCHEMA).await;
    let proxy = Proxy::start(server.port()).await;
    let pool = Pool::builder(proxy.url()).connections(1).max_sessions(1).namespace_database(NS, DB).identity_credentials(Root::new("root", "root")).build().await.unwrap();
    let db = pool.get().await.unwrap();
    let old = db.id().unwrap();
    proxy.delay(Duration::from_millis(100));
    {
        let mut set = Box::pin(db.set("leak", "from a previous caller"));
        assert!(poll_once(&mut set).await.is_pending());
        until("the let is in flight", || !db.auth_known()).await;
    }
    drop(db);
    proxy.delay(Duration::ZERO);
    let next = pool.get().await.unwrap();
    assert_ne!(next.id().unwrap(), old);
    let leak: Option<String> = next.query("RETURN $leak", ()).await.unwrap().take(0).unwrap();
    assert_eq!(leak, None);
    assert_eq!(pool.status().replaced, 1);
}

// ---------------------------------------------------------------------------------------------
// 7. Errors say what happened.

#[tokio::test]
async fn errors_say_what_happened() {
    let server = server_with(SCHEMA).await;
    let proxy = Proxy::start(server.port()).await;
    let conn = Connection::connect(proxy.url()).await.unwrap();
    let s = conn.attach().await.unwrap();
    s.signin(&Root::new("root", "root")).await.unwrap();
    s.use_ns_db(NS, DB).await.unwrap();

    // A decode failure names the statement, and keeps serde's message as its source.
    let err = s.query("RETURN 'text'", ()).await.unwrap().take::<i64>(0).unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    let source = std::error::Error::source(&err).expect("a source");
    assert!(source.to_string().starts_with("statement 0: "), "{source}");
    let serde = std::error::Error::source(source).expect("serde's error").to_string();
    assert_eq!(serde, "invalid type: string \"text\", expected i64");

    // A request in flight when the connection is closed may have run: a signin (~30 ms of
    // argon2 on the server) sent, then the connection closed before its reply.
    let credentials = record("plain", "closer@example.com", "pw");
    conn.attach().await.unwrap().signup(&credentials).await.unwrap();
    proxy.delay(Duration::from_millis(100));
    let mut signin = Box::pin(s.signin(&credentials));
    assert!(poll_once(&mut signin).await.is_pending());
    until("the signin is in flight", || !s.auth_known()).await;
    conn.close();
    let err = signin.await.unwrap_err();
    assert!(matches!(err, Error::ClosedInFlight) && err.may_have_run() && err.is_connection(), "{err:?}");
    // And one made after the close did not.
    let err = s.ping().await.unwrap_err();
    assert!(matches!(err, Error::Closed) && !err.may_have_run(), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// 6. A session whose re-attach failed after a reconnect is gone: refused, replaced.

mod reattach {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use ciborium::Value as Cbor;
    use tokio_tungstenite::tungstenite::Message;

    use super::support::fake::{reply, FakeServer};
    use super::support::faults::{fast, restored};
    use surreal_pool::{Connection, Error, Pool};

    fn refusal(id: u64) -> Message {
        let error = Cbor::Map(vec![
            (Cbor::Text("code".into()), Cbor::Integer((-32000).into())),
            (Cbor::Text("kind".into()), Cbor::Text("Internal".into())),
            (Cbor::Text("message".into()), Cbor::Text("could not attach".into())),
        ]);
        let frame = Cbor::Map(vec![(Cbor::Text("id".into()), Cbor::Integer(id.into())), (Cbor::Text("error".into()), error)]);
        let mut out = Vec::new();
        ciborium::into_writer(&frame, &mut out).unwrap();
        Message::Binary(out.into())
    }

    /// Answers everything with `null` (`version` too: a server of unknown version); `info`
    /// closes the socket, and the first `attach` after that is refused (the replay's).
    async fn fake() -> FakeServer {
        let phase = Arc::new(AtomicUsize::new(0));
        FakeServer::start(true, move |req| match req.method.as_str() {
            "info" => {
                phase.store(1, Ordering::SeqCst);
                vec![Message::Close(None)]
            }
            "attach" if phase.compare_exchange(1, 2, Ordering::SeqCst, Ordering::SeqCst).is_ok() => vec![refusal(req.id)],
            _ => vec![reply(req.id, Cbor::Null, None)],
        })
        .await
    }

    #[tokio::test]
    async fn a_session_that_could_not_be_reattached_refuses_commands_as_detached() {
        let fake = fake().await;
        let conn = fast(Connection::builder(fake.url())).connect().await.unwrap();
        let s = conn.attach().await.unwrap();
        s.ping().await.unwrap();
        let mut events = conn.events();
        assert!(conn.session().info().await.is_err(), "the socket closes");
        restored(&mut events).await;
        assert!(matches!(s.ping().await, Err(Error::Detached)), "its server session is gone");
        assert!(matches!(s.query("RETURN 1", ()).await, Err(Error::Detached)));
        conn.session().ping().await.expect("the connection itself is fine");
    }

    #[tokio::test]
    async fn a_pooled_session_that_could_not_be_reattached_is_replaced_not_handed_out() {
        let fake = fake().await;
        let pool = Pool::builder(fake.url()).connections(1).max_sessions(1).configure_connections(fast).build().await.unwrap();
        let old = pool.get().await.unwrap().id().unwrap();
        let mut events = pool.connections()[0].events();
        assert!(pool.connections()[0].session().info().await.is_err());
        restored(&mut events).await;
        let next = pool.get().await.expect("a fresh session");
        assert_ne!(next.id().unwrap(), old);
        next.ping().await.unwrap();
    }
}
