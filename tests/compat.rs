//! Server versions: the version a connection learns at connect (and again on reconnect), and
//! what SurrealDB 4.0 adds (options to `begin` and `query`), usable only where the server has
//! it. The first part runs against whichever test server `SURREAL_BIN` / `SURREAL_VERSION`
//! selects (SurrealDB 3.3.5 in CI, where the 4.0 additions must fail typed, having sent
//! nothing); the second against scripted fakes, for servers the test server is not.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ciborium::Value as Cbor;
use support::fake::{query_result, reply, FakeServer, Request};
use support::faults::{fast, restored};
use support::{server, setup, DB, NS};
use surreal_pool::{Connection, Error, Isolation, QueryOptions, ReadOnly, Root, ServerVersion, Session, TransactionOptions};
use tokio_tungstenite::tungstenite::Message;

async fn root(conn: &Connection) -> Session {
    let db = conn.attach().await.unwrap();
    db.signin(&Root::new("root", "root")).await.unwrap();
    db.use_ns_db(NS, DB).await.unwrap();
    db
}

// ---------------------------------------------------------------------------------------------
// Against the test server.

#[tokio::test]
async fn the_version_kept_at_connect_is_the_one_the_server_says() {
    let server = server();
    let conn = Connection::connect(server.url()).await.unwrap();
    let kept = conn.server_version().expect("the test server says its version");
    let said = conn.session().version().await.unwrap();
    assert_eq!(kept.as_str(), said);
    assert_eq!(kept, ServerVersion::parse(&said).unwrap());
    // And it is the binary's own (`surreal version`), whichever binary the tests run against.
    assert_eq!(said, format!("surrealdb-{}", surreal_pool_testkit::binary_version().unwrap()));
}

/// CI runs the suite against the default test server: SurrealDB 3.3.5.
#[tokio::test]
async fn the_default_test_server_is_3_3_5() {
    let chosen = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(choice) = chosen("SURREAL_BIN").or_else(|| chosen("SURREAL_VERSION").filter(|v| !matches!(v.as_str(), "3" | "3.3" | "3.3.5"))) {
        eprintln!("not the default test server ({choice}): nothing to check");
        return;
    }
    let server = server();
    let conn = Connection::connect(server.url()).await.unwrap();
    assert_eq!(conn.server_version().unwrap().as_str(), "surrealdb-3.3.5");
}

#[tokio::test]
async fn the_version_is_learnt_again_after_a_reconnect() {
    let mut server = server();
    let conn = fast(Connection::builder(server.url())).connect().await.unwrap();
    let before = conn.server_version().unwrap();
    let mut events = conn.events();
    server.restart().unwrap();
    restored(&mut events).await;
    assert_eq!(conn.server_version(), Some(before));
}

#[tokio::test]
async fn read_only_transactions_where_the_server_has_them_and_a_typed_refusal_where_not() {
    let (_server, conn) = setup().await;
    let db = root(&conn).await;
    db.query("CREATE person:a SET name = 'A'", ()).await.unwrap().check().unwrap();
    let has = conn.server_version().unwrap().has_begin_options();
    let started = Instant::now();
    match db.begin_with(TransactionOptions::new().read_only(ReadOnly::current())).await {
        Err(e) if !has => {
            assert!(e.is_unsupported(), "{e:?}");
            assert!(e.to_string().contains("4.0"), "{e}");
            assert!(started.elapsed() < Duration::from_millis(100), "refused before any round trip");
        }
        Ok(tx) if has => {
            assert_eq!(tx.isolation(), Some(Isolation::Snapshot));
            let snapshot = tx.snapshot().expect("a read-only transaction describes its snapshot");
            assert!(!snapshot.is_stale(), "{snapshot:?}");
            let name: Option<String> = tx.query("RETURN person:a.name", ()).await.unwrap().take(0).unwrap();
            assert_eq!(name.as_deref(), Some("A"));
            let write = tx.query("CREATE person:b SET name = 'B'", ()).await.and_then(|r| r.check());
            assert!(write.is_err(), "a read-only transaction refuses writes: {write:?}");
            tx.commit().await.unwrap();
        }
        other => panic!("begin options {}: {other:?}", if has { "expected" } else { "refused" }),
    }
    let b: Option<serde_json::Value> = db.select(surreal_pool::RecordId::new("person", "b")).await.unwrap();
    assert_eq!(b, None, "nothing was written");
    // The session is as it was: a plain transaction works, and empty options are one.
    for tx in [db.begin().await.unwrap(), db.begin_with(TransactionOptions::new()).await.unwrap()] {
        assert_eq!((tx.isolation(), tx.snapshot()), (None, None));
        tx.query("CREATE person:c SET name = 'C'", ()).await.unwrap().check().unwrap();
        tx.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn isolation_levels_where_the_server_has_them() {
    let (_server, conn) = setup().await;
    let db = root(&conn).await;
    let has = conn.server_version().unwrap().has_begin_options();
    let serializable = TransactionOptions::new().isolation(Isolation::Serializable);
    let begun = db.begin_with(serializable).await;
    match begun {
        Err(e) => assert!(!has && e.is_unsupported(), "{e:?}"),
        Ok(tx) => {
            assert!(has);
            assert_eq!(tx.isolation(), Some(Isolation::Serializable));
            assert_eq!(tx.snapshot(), None, "read-write");
            tx.query("CREATE person:s SET name = 'S'", ()).await.unwrap().check().unwrap();
            tx.commit().await.unwrap();
            let s: Option<String> = db.query("RETURN person:s.name", ()).await.unwrap().take(0).unwrap();
            assert_eq!(s.as_deref(), Some("S"));
            // The server refuses what it cannot do: a serializable read of a stale snapshot.
            let stale = serializable.read_only(ReadOnly::max_staleness(Duration::from_secs(5)));
            let e = db.begin_with(stale).await.unwrap_err();
            assert!(e.server_error().is_some(), "{e:?}");
        }
    }
}

#[tokio::test]
async fn read_only_queries_where_the_server_has_them_and_a_typed_refusal_where_not() {
    let (_server, conn) = setup().await;
    let db = root(&conn).await;
    db.query("CREATE person:a SET name = 'A'", ()).await.unwrap().check().unwrap();
    let has = conn.server_version().unwrap().has_query_options();
    let options = QueryOptions::new().read_only(ReadOnly::max_staleness(Duration::from_secs(1)));
    match db.query_with("RETURN person:a.name; RETURN $x", serde_json::json!({"x": 2}), options).await {
        Err(e) => assert!(!has && e.is_unsupported(), "{e:?}"),
        Ok(mut res) => {
            assert!(has);
            assert_eq!(res.len(), 2, "the caller's statements, and only those (not the block's BEGIN and COMMIT)");
            assert!(res.snapshot().is_some_and(|s| !s.is_stale()), "{:?}", res.snapshot());
            assert_eq!(res.take::<String>(0).unwrap(), "A");
            assert_eq!(res.take::<i64>(1).unwrap(), 2);
            match db.query_with("CREATE person:b", (), options).await.and_then(|r| r.check()) {
                Err(Error::Query { index: 0, error, .. }) => assert!(error.message().contains("read only"), "{error}"),
                other => panic!("a read-only query refuses writes, in the statement that writes: {other:?}"),
            }
            // A transaction's statements are refused in such a block.
            let e = db.query_with("BEGIN; RETURN 1; COMMIT", (), options).await.unwrap_err();
            assert!(e.server_error().is_some(), "{e:?}");
            let b: Option<serde_json::Value> = db.select(surreal_pool::RecordId::new("person", "b")).await.unwrap();
            assert_eq!(b, None);
        }
    }
    // Empty options are a plain query, on any server.
    let two: i64 = db.query_with("RETURN 1 + 1", (), QueryOptions::new()).await.unwrap().take(0).unwrap();
    assert_eq!(two, 2);
}

// ---------------------------------------------------------------------------------------------
// Against fakes: servers the test server is not.

/// A fake recording the methods it is asked, answering `version` with `version` (or not at all,
/// for `None`), `begin` with `begin`, `query` with 1 and anything else with null.
async fn recording(version: Option<Cbor>, begin: impl Fn() -> Cbor + Send + Sync + 'static) -> (FakeServer, Arc<Mutex<Vec<String>>>) {
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = asked.clone();
    let fake = FakeServer::start(true, move |req: Request| {
        log.lock().unwrap().push(req.method.clone());
        match req.method.as_str() {
            "version" => version.clone().map(|v| vec![reply(req.id, v, None)]).unwrap_or_default(),
            "begin" => vec![reply(req.id, begin(), None)],
            "query" => vec![reply(req.id, query_result(Cbor::Integer(1.into())), None)],
            _ => vec![reply(req.id, Cbor::Null, None)],
        }
    })
    .await;
    (fake, asked)
}

fn uuid(n: u8) -> Cbor {
    Cbor::Tag(37, Box::new(Cbor::Bytes(vec![n; 16])))
}

fn text(s: &str) -> Cbor {
    Cbor::Text(s.into())
}

fn quick(url: String) -> surreal_pool::ConnectionBuilder {
    Connection::builder(url).connect_timeout(Duration::from_millis(500)).request_timeout(Duration::from_secs(2))
}

fn read_only() -> TransactionOptions {
    TransactionOptions::new().read_only(ReadOnly::current())
}

#[tokio::test]
async fn the_4_0_additions_are_never_sent_to_a_3_x_server() {
    let (fake, asked) = recording(Some(text("surrealdb-3.3.5")), || uuid(1)).await;
    let conn = quick(fake.url()).connect().await.unwrap();
    assert_eq!(conn.server_version().unwrap().major(), 3);
    let db = conn.session();
    assert!(db.begin_with(read_only()).await.unwrap_err().is_unsupported());
    assert!(db.begin_with(TransactionOptions::new().isolation(Isolation::Snapshot)).await.unwrap_err().is_unsupported());
    let options = QueryOptions::new().read_only(ReadOnly::current());
    assert!(db.query_with("RETURN 1", (), options).await.unwrap_err().is_unsupported());
    assert_eq!(*asked.lock().unwrap(), ["version"], "nothing was sent");
    // What 3.x has works as before.
    db.begin().await.unwrap().cancel().await.unwrap();
    let one: i64 = db.query_with("RETURN 1", (), QueryOptions::new()).await.unwrap().take(0).unwrap();
    assert_eq!(one, 1);
}

#[tokio::test]
async fn a_server_that_does_not_say_its_version_is_spoken_to_as_a_3_x_one() {
    let refusal = || {
        Cbor::Map(vec![
            (text("code"), Cbor::Integer((-32602).into())),
            (text("kind"), text("NotAllowed")),
            (text("message"), text("Method not allowed")),
        ])
    };
    // Says something else, refuses `version` (an error frame), or does not answer it at all.
    let error_frame = move |id: u64| {
        let frame = Cbor::Map(vec![(text("id"), Cbor::Integer(id.into())), (text("error"), refusal())]);
        let mut out = Vec::new();
        ciborium::into_writer(&frame, &mut out).unwrap();
        Message::Binary(out.into())
    };
    let refusing = FakeServer::start(true, move |req| match req.method.as_str() {
        "version" => vec![error_frame(req.id)],
        _ => vec![reply(req.id, query_result(Cbor::Integer(1.into())), None)],
    })
    .await;
    let (odd, _) = recording(Some(text("a custom build")), || uuid(1)).await;
    let (silent, asked) = recording(None, || uuid(1)).await;
    for (fake, bounded) in [(&refusing, false), (&odd, false), (&silent, true)] {
        let started = Instant::now();
        let conn = quick(fake.url()).connect().await.expect("a server of unknown version is not refused");
        if bounded {
            assert!(started.elapsed() >= Duration::from_millis(500), "waited for the answer up to the connect timeout");
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(conn.server_version(), None);
        let db = conn.session();
        let one: i64 = db.query("RETURN 1", ()).await.unwrap().take(0).unwrap();
        assert_eq!(one, 1);
        let begun = db.begin_with(read_only()).await;
        match begun {
            Err(Error::Unsupported { server, .. }) => assert_eq!(server, "of an unknown version"),
            other => panic!("{other:?}"),
        }
    }
    assert!(!asked.lock().unwrap().iter().any(|m| m == "begin"));
}

#[tokio::test]
async fn a_server_that_closes_the_socket_when_asked_its_version_is_a_connect_error() {
    let fake = FakeServer::start(true, |_| vec![Message::Close(None)]).await;
    match quick(fake.url()).connect().await {
        Err(Error::Connect { reason, .. }) => assert!(reason.contains("version"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_4_x_server_answers_options_with_what_it_opened() {
    let reply = || {
        Cbor::Map(vec![
            (text("id"), uuid(2)),
            (text("isolation"), text("snapshot")),
            (
                text("snapshot"),
                Cbor::Map(vec![
                    (text("position"), Cbor::Bytes(vec![1, 2, 3])),
                    (text("age"), Cbor::Tag(14, Box::new(Cbor::Array(vec![Cbor::Integer(3.into())])))),
                    (text("stale"), Cbor::Bool(true)),
                ]),
            ),
        ])
    };
    let (fake, asked) = recording(Some(text("surrealdb-4.0.0-beta.1")), reply).await;
    let conn = quick(fake.url()).connect().await.unwrap();
    assert!(conn.server_version().unwrap().has_begin_options());
    let db = conn.session();
    let tx = db.begin_with(TransactionOptions::new().read_only(ReadOnly::max_staleness(Duration::from_secs(5)))).await.unwrap();
    assert_eq!(tx.id(), uuid::Uuid::from_bytes([2; 16]));
    assert_eq!(tx.isolation(), Some(Isolation::Snapshot));
    let snapshot = tx.snapshot().unwrap();
    assert_eq!((snapshot.age(), snapshot.is_stale(), snapshot.position()), (Duration::from_secs(3), true, Some(&[1u8, 2, 3][..])));
    tx.commit().await.unwrap();
    assert_eq!(*asked.lock().unwrap(), ["version", "begin", "commit"]);
}

/// A server claiming 4.x that answers a `begin` with options as 3.x does (a bare id) has not
/// read them: the transaction it opened is cancelled, and the caller told.
#[tokio::test]
async fn options_a_server_ignored_are_never_ignored_silently() {
    let (fake, asked) = recording(Some(text("surrealdb-4.0.0")), || uuid(3)).await;
    let conn = quick(fake.url()).connect().await.unwrap();
    let db = conn.session();
    match db.begin_with(read_only()).await {
        Err(e @ Error::Unsupported { .. }) => assert!(e.to_string().contains("ignored"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(*asked.lock().unwrap(), ["version", "begin", "cancel"], "the transaction it opened is cancelled");
}

/// A reconnect may land on another server (a failover, a rolling upgrade): its version is
/// learnt again before anything else is sent.
#[tokio::test]
async fn a_reconnect_to_an_upgraded_server_learns_its_version() {
    use support::proxy::Proxy;
    let port = |fake: &FakeServer| fake.url().rsplit(':').next().unwrap().trim_end_matches('/').parse::<u16>().unwrap();
    let (old, _) = recording(Some(text("surrealdb-3.3.5")), || uuid(4)).await;
    let (new, asked) = recording(Some(text("surrealdb-4.0.0-beta.1")), || uuid(4)).await;
    let proxy = Proxy::start(port(&old)).await;
    let conn = fast(quick(proxy.url())).connect().await.unwrap();
    assert_eq!(conn.server_version().unwrap().major(), 3);
    assert!(conn.session().begin_with(read_only()).await.unwrap_err().is_unsupported());
    let mut events = conn.events();
    proxy.set_upstream(port(&new));
    proxy.cut();
    restored(&mut events).await;
    assert_eq!(conn.server_version().unwrap().as_str(), "surrealdb-4.0.0-beta.1");
    assert_eq!(asked.lock().unwrap().first().map(String::as_str), Some("version"), "asked first on the new socket");
    // Now the options are sent (this fake answers them as one that ignored them).
    assert!(conn.session().begin_with(read_only()).await.unwrap_err().to_string().contains("ignored"));
}

