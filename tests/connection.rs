//! The connection actor and session plumbing against a real SurrealDB (3.3.5 by default).

mod support;

use std::time::{Duration, Instant};

use support::{server, setup};
use surreal_pool::{Connection, Error, Root};

#[tokio::test]
async fn hundred_concurrent_requests_each_get_their_own_answer() {
    let server = server();
    let conn = Connection::connect(server.url()).await.unwrap();
    let s = conn.session();
    s.signin(&Root::new("root", "root")).await.unwrap();
    let answers = futures_util::future::join_all((0..100i64).map(|i| {
        let s = &s;
        async move {
            let v: i64 = s.query("RETURN $i * 2", serde_json::json!({ "i": i })).await.unwrap().take(0).unwrap();
            (i, v)
        }
    }))
    .await;
    assert_eq!(answers.len(), 100);
    for (i, v) in answers {
        assert_eq!(v, i * 2);
    }
}

#[tokio::test]
async fn sessions_on_one_socket_keep_their_own_state() {
    let (_server, conn) = setup().await;
    let a = conn.attach().await.unwrap();
    let b = conn.attach().await.unwrap();
    a.signin(&Root::new("root", "root")).await.unwrap();
    b.signin(&Root::new("root", "root")).await.unwrap();
    a.use_ns_db("na", "da").await.unwrap();
    a.set("x", "from a").await.unwrap();
    b.use_ns("nb").await.unwrap();
    b.use_db("db").await.unwrap();
    b.set("x", &42).await.unwrap();
    let ra: serde_json::Value = a.query("RETURN [session::ns(), session::db(), $x]", ()).await.unwrap().take(0).unwrap();
    let rb: serde_json::Value = b.query("RETURN [session::ns(), session::db(), $x]", ()).await.unwrap().take(0).unwrap();
    assert_eq!(ra, serde_json::json!(["na", "da", "from a"]));
    assert_eq!(rb, serde_json::json!(["nb", "db", 42]));
    b.unset("x").await.unwrap();
    let gone: serde_json::Value = b.query("RETURN $x", ()).await.unwrap().take(0).unwrap();
    assert!(gone.is_null());
    // use_ns leaves the database alone, use_db the namespace.
    a.use_ns("other").await.unwrap();
    let r: serde_json::Value = a.query("RETURN [session::ns(), session::db()]", ()).await.unwrap().take(0).unwrap();
    assert_eq!(r, serde_json::json!(["other", "da"]));
    // reset clears everything: identity (so queries are refused), ns/db and variables.
    a.reset().await.unwrap();
    assert_eq!(a.token(), None);
    assert!(a.query("RETURN 1", ()).await.unwrap_err().is_not_allowed());
    a.signin(&Root::new("root", "root")).await.unwrap();
    let ns: serde_json::Value = a.query("RETURN session::ns()", ()).await.unwrap().take(0).unwrap();
    assert!(ns.is_null(), "namespace cleared: {ns}");
    a.use_ns_db("na", "da").await.unwrap();
    let x: serde_json::Value = a.query("RETURN $x", ()).await.unwrap().take(0).unwrap();
    assert!(x.is_null(), "variables cleared");
}

#[tokio::test]
async fn attach_and_detach_are_visible_on_the_server() {
    let server = server();
    let conn = Connection::connect(server.url()).await.unwrap();
    let a = conn.attach().await.unwrap();
    let b = conn.attach().await.unwrap();
    let mut listed = conn.server_sessions().await.unwrap();
    listed.sort();
    let mut want = vec![a.id().unwrap(), b.id().unwrap()];
    want.sort();
    assert_eq!(listed, want);
    a.detach().await.unwrap();
    assert_eq!(conn.server_sessions().await.unwrap(), vec![b.id().unwrap()]);
    // Dropping a session detaches it in the background.
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !conn.server_sessions().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "dropped session still attached");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn version_and_ping_answer() {
    let server = server();
    let conn = Connection::connect(server.url()).await.unwrap();
    let s = conn.session();
    s.ping().await.unwrap();
    let v = s.version().await.unwrap();
    // The test server's own version (3.3.5 by default: see tests/compat.rs), whichever it is.
    assert_eq!(v, format!("surrealdb-{}", surreal_pool_testkit::binary_version().unwrap()));
}

#[tokio::test]
async fn a_request_after_close_is_a_typed_error() {
    let server = server();
    let conn = Connection::connect(server.url()).await.unwrap();
    let s = conn.session();
    s.ping().await.unwrap();
    conn.close();
    match s.ping().await {
        Err(Error::Closed) => {}
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(conn.is_closed());
}

#[tokio::test]
async fn a_slow_reply_times_out_without_breaking_the_connection() {
    let server = server();
    let conn = Connection::builder(server.url()).request_timeout(Duration::from_millis(300)).connect().await.unwrap();
    let s = conn.session();
    s.signin(&Root::new("root", "root")).await.unwrap();
    let started = Instant::now();
    let err = s.query("SLEEP 2s", ()).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    let one: i64 = s.query("RETURN 1", ()).await.unwrap().take(0).unwrap();
    assert_eq!(one, 1);
}

#[tokio::test]
async fn statement_errors_are_per_statement() {
    let server = server();
    let conn = Connection::connect(server.url()).await.unwrap();
    let s = conn.session();
    s.signin(&Root::new("root", "root")).await.unwrap();
    let mut res = s.query("RETURN 1; THROW 'boom'; RETURN 3", ()).await.unwrap();
    assert_eq!(res.len(), 3);
    assert_eq!(res.take::<i64>(0).unwrap(), 1);
    match res.take::<i64>(1) {
        Err(Error::Query { index: 1, error, .. }) => assert!(error.message().contains("boom"), "{error}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(res.take::<i64>(2).unwrap(), 3);
}

#[tokio::test]
async fn connect_failures_are_typed() {
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    match Connection::connect(format!("ws://127.0.0.1:{port}")).await {
        Err(e @ Error::Connect { .. }) => {
            let Error::Connect { endpoint, .. } = &e else { unreachable!() };
            assert!(endpoint.contains(&port.to_string()));
            // The io error is the source, for callers that inspect it.
            let source = std::error::Error::source(&e).expect("a source");
            assert_eq!(source.downcast_ref::<std::io::Error>().map(|io| io.kind()), Some(std::io::ErrorKind::ConnectionRefused), "{source:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(Connection::connect("http://127.0.0.1:1").await, Err(Error::InvalidUrl(_))));
    assert!(matches!(Connection::connect("not a url").await, Err(Error::InvalidUrl(_))));
}

/// A server that stops reading while it still sends: a write the socket cannot take must not
/// stop the connection from reading. A live query's notifications arrive while a 40 MiB request
/// is stuck in the socket, then the request completes.
#[tokio::test]
async fn notifications_arrive_while_a_write_is_blocked_by_a_peer_that_stops_reading() {
    use futures_util::StreamExt;
    use support::proxy::{Proxy, HOLD};
    use support::{DB, NS};

    let (server, direct) = setup().await;
    let writer = direct.attach().await.unwrap();
    writer.signin(&Root::new("root", "root")).await.unwrap();
    writer.use_ns_db(NS, DB).await.unwrap();

    let proxy = Proxy::start(server.port()).await;
    let proxied = Connection::builder(proxy.url()).request_timeout(Duration::from_secs(60)).connect().await.unwrap();
    let watcher = proxied.attach().await.unwrap();
    watcher.signin(&Root::new("root", "root")).await.unwrap();
    watcher.use_ns_db(NS, DB).await.unwrap();
    let mut changes = watcher.live::<serde_json::Value>("note").await.unwrap();
    let sender = proxied.attach().await.unwrap();
    sender.signin(&Root::new("root", "root")).await.unwrap();

    // Far more than the socket buffers on both sides of the proxy hold.
    const BIG: usize = 40 << 20;
    let mut upstream = proxy.upstream_bytes();
    let before = *upstream.borrow_and_update();
    proxy.stall_upstream(true);
    let big = tokio::spawn(async move {
        let text = "a".repeat(BIG);
        sender.query("RETURN string::len($text)", serde_json::json!({ "text": text })).await?.take::<i64>(0)
    });
    // The proxy has read (and holds) the first MiB of the request: the actor is writing it,
    // and the rest cannot leave.
    tokio::time::timeout(Duration::from_secs(20), upstream.wait_for(|n| *n >= before + HOLD as u64))
        .await
        .expect("the big request reached the proxy")
        .unwrap();

    for n in 0..3 {
        writer.query("CREATE note SET n = $n", serde_json::json!({ "n": n })).await.unwrap().check().unwrap();
        let change = tokio::time::timeout(Duration::from_secs(5), changes.next())
            .await
            .expect("a notification while the write is blocked")
            .expect("the stream is open")
            .unwrap();
        assert_eq!(change.data["n"], n);
    }
    assert!(!big.is_finished(), "the big request was still blocked");

    proxy.stall_upstream(false);
    let len = tokio::time::timeout(Duration::from_secs(60), big).await.expect("the big request completes").unwrap().unwrap();
    assert_eq!(len, BIG as i64);
    assert!(proxied.is_up());
}

/// The write-stall watchdog: a batch the socket has not taken within the watchdog timeout ends
/// the socket, even while frames keep arriving (so the read watchdog alone would not).
#[tokio::test]
async fn a_write_blocked_for_the_watchdog_timeout_replaces_the_socket() {
    use support::faults::fast;
    use support::proxy::{Proxy, HOLD};
    use support::{DB, NS};
    use surreal_pool::ConnectionEvent;

    let (server, direct) = setup().await;
    let writer = direct.attach().await.unwrap();
    writer.signin(&Root::new("root", "root")).await.unwrap();
    writer.use_ns_db(NS, DB).await.unwrap();
    let proxy = Proxy::start(server.port()).await;
    let proxied = fast(Connection::builder(proxy.url())).request_timeout(Duration::from_secs(30)).connect().await.unwrap();
    let watcher = proxied.attach().await.unwrap();
    watcher.signin(&Root::new("root", "root")).await.unwrap();
    watcher.use_ns_db(NS, DB).await.unwrap();
    let _changes = watcher.live::<serde_json::Value>("note").await.unwrap();
    let sender = proxied.attach().await.unwrap();
    let mut events = proxied.events();

    let mut upstream = proxy.upstream_bytes();
    let before = *upstream.borrow_and_update();
    proxy.stall_upstream(true);
    let big = tokio::spawn(async move { sender.query("RETURN string::len($text)", serde_json::json!({ "text": "a".repeat(40 << 20) })).await });
    tokio::time::timeout(Duration::from_secs(20), upstream.wait_for(|n| *n >= before + HOLD as u64)).await.unwrap().unwrap();
    let stalled_at = Instant::now();
    // Notifications keep the socket from going quiet meanwhile (until aborted below).
    let notes = tokio::spawn(async move {
        for n in 0..100_000 {
            writer.query("CREATE note SET n = $n", serde_json::json!({ "n": n })).await.unwrap().check().unwrap();
        }
    });
    let reason = loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("a disconnect").unwrap();
        if let ConnectionEvent::Disconnected { reason, .. } = event {
            break reason;
        }
    };
    assert!(reason.contains("write stalled"), "{reason}");
    assert!(stalled_at.elapsed() < Duration::from_secs(5), "detected after {:?}", stalled_at.elapsed());
    assert!(matches!(big.await.unwrap(), Err(Error::ConnectionLost)));
    notes.abort();
    proxy.stall_upstream(false);
}
