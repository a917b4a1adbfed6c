//! The blocking facade, from plain synchronous code (no async runtime in the test): one test
//! per group of the API — auth, data and pooling; transactions; live queries; namespace and
//! database selection; the session's, connection's and pool's other methods.

use std::sync::Arc;
use std::time::Duration;

use surreal_pool_testkit::TestServer;
use surreal_pool::{blocking, Action, Error, Pool, Record, RecordId, Root};

const SCHEMA: &str = "
DEFINE NAMESPACE app; USE NS app; DEFINE DATABASE main; USE NS app DB main;
DEFINE TABLE user SCHEMALESS PERMISSIONS FOR select WHERE id = $auth.id;
DEFINE ACCESS account ON DATABASE TYPE RECORD
    SIGNUP ( CREATE user SET email = $email, pass = crypto::argon2::generate($password) )
    SIGNIN ( SELECT * FROM user WHERE email = $email AND crypto::argon2::compare(pass, $password) )
    WITH REFRESH;";

#[test]
fn the_blocking_api_does_auth_data_and_pooling_from_plain_threads() {
    let server = TestServer::start().unwrap();
    let conn = blocking::Connection::connect(server.url()).unwrap();
    let admin = conn.session();
    admin.signin(&Root::new("root", "root")).unwrap();
    admin.query(SCHEMA, ()).unwrap().check().unwrap();
    admin.use_ns_db("app", "main").unwrap();
    let created: serde_json::Value = admin.create(RecordId::new("note", "a b"), serde_json::json!({ "text": "2024-01-01" })).unwrap();
    assert_eq!(created["text"], "2024-01-01");

    let user = conn.attach().unwrap();
    let vars = serde_json::json!({ "email": "b@x.y", "password": "pw" });
    let tokens = user.signup(&Record::new("app", "main", "account", vars)).unwrap();
    assert!(tokens.refresh.is_some());
    assert_eq!(user.info().unwrap().unwrap()["email"], "b@x.y");
    let tokens = user.refresh(&tokens).unwrap();
    user.invalidate().unwrap();
    assert!(user.query("RETURN 1", ()).unwrap_err().is_not_allowed());

    let pool = Arc::new(blocking::Pool::new(Pool::builder(server.url()).connections(1).max_sessions(4).namespace_database("app", "main")).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (pool, token) = (pool.clone(), tokens.access.clone());
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let s = pool.get_with_token(token.clone()).unwrap();
                    let email: String = s.query("RETURN $auth.email", ()).unwrap().take(0).unwrap();
                    assert_eq!(email, "b@x.y");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let status = pool.status();
    assert_eq!((status.checkouts, status.available), (80, 4));
    let busiest = pool.busiest_tenants();
    assert_eq!(busiest.iter().map(|t| t.checkouts).sum::<u64>(), 80);
    assert!(busiest[0].tenant.contains("(app/main, account)"), "{busiest:?}");
    assert!(matches!(pool.get_with_token("garbage"), Err(Error::InvalidToken(_))));
}

#[tokio::test]
async fn dropping_a_blocking_pool_inside_async_code_does_not_panic() {
    let server = TestServer::start().unwrap();
    let url = server.url();
    // Built on a blocking thread (block_on is not allowed on an async worker)...
    let pool = tokio::task::spawn_blocking(move || blocking::Pool::new(Pool::builder(url).connections(1).max_sessions(1)).unwrap())
        .await
        .unwrap();
    assert_eq!(pool.status().size, 1);
    // ...and dropped here, in async code: its runtime shuts down in the background.
    drop(pool);
}

/// A server with [`SCHEMA`], and a root session on a blocking connection selecting app/main.
fn admin(server: &TestServer) -> (blocking::Connection, blocking::Session) {
    let conn = blocking::Connection::connect(server.url()).unwrap();
    let admin = conn.attach().unwrap();
    admin.signin(&Root::new("root", "root")).unwrap();
    admin.query(SCHEMA, ()).unwrap().check().unwrap();
    admin.use_ns_db("app", "main").unwrap();
    admin.query("DEFINE TABLE note; DEFINE TABLE account; DEFINE TABLE wrote TYPE RELATION", ()).unwrap().check().unwrap();
    (conn, admin)
}

fn count(db: &blocking::Session, table: &str) -> i64 {
    db.query(&format!("RETURN count(SELECT * FROM {table})"), ()).unwrap().take(0).unwrap()
}

#[test]
fn blocking_transactions_commit_cancel_and_cancel_on_drop() {
    let server = TestServer::start().unwrap();
    let (conn, admin) = admin(&server);
    let s = conn.attach().unwrap();
    s.signin(&Root::new("root", "root")).unwrap();
    s.use_ns_db("app", "main").unwrap();

    let tx = s.begin().unwrap();
    assert!(!tx.id().is_nil());
    tx.query("CREATE account:a SET balance = 10", ()).unwrap().check().unwrap();
    tx.query("CREATE account:b SET balance = 0", ()).unwrap().check().unwrap();
    assert_eq!(count(&admin, "account"), 0, "not visible before the commit");
    tx.commit().unwrap();
    assert_eq!(count(&admin, "account"), 2);

    let tx = s.begin().unwrap();
    tx.query("DELETE account", ()).unwrap().check().unwrap();
    tx.cancel().unwrap();
    assert_eq!(count(&admin, "account"), 2, "a cancelled transaction writes nothing");

    {
        let tx = s.begin().unwrap();
        tx.query("DELETE account", ()).unwrap().check().unwrap();
    } // dropped: cancelled in the background
    assert_eq!(count(&admin, "account"), 2, "a dropped transaction writes nothing");
    assert_eq!(count(&s, "account"), 2, "the session goes on outside any transaction");

    // From plain threads, on pooled sessions.
    let pool = Arc::new(blocking::Pool::new(Pool::builder(server.url()).connections(1).max_sessions(2).namespace_database("app", "main")).unwrap());
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let db = pool.get().unwrap();
                db.signin(&Root::new("root", "root")).unwrap();
                db.use_ns_db("app", "main").unwrap();
                let tx = db.begin().unwrap();
                tx.query("CREATE account SET balance = $i", serde_json::json!({ "i": i })).unwrap().check().unwrap();
                tx.commit().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(count(&admin, "account"), 4);
}

#[test]
fn blocking_live_iterator_receives_a_create_and_ends_on_drop() {
    let server = TestServer::start().unwrap();
    let (conn, admin) = admin(&server);
    let s = conn.attach().unwrap();
    s.signin(&Root::new("root", "root")).unwrap();
    s.use_ns_db("app", "main").unwrap();

    let mut changes = s.live::<serde_json::Value>("note").unwrap();
    let live_id = changes.id().expect("a live query id");
    match changes.next_timeout(Duration::from_millis(200)) {
        Err(e) => assert!(e.is_timeout(), "{e:?}"),
        other => panic!("nothing changed yet: {other:?}"),
    }
    // A write from another thread (its own session).
    let url = server.url();
    std::thread::spawn(move || {
        let conn = blocking::Connection::connect(url).unwrap();
        let writer = conn.session();
        writer.signin(&Root::new("root", "root")).unwrap();
        writer.use_ns_db("app", "main").unwrap();
        let _: serde_json::Value = writer.create(RecordId::new("note", "n1"), serde_json::json!({ "text": "hi" })).unwrap();
    })
    .join()
    .unwrap();
    let change = changes.next_timeout(Duration::from_secs(10)).unwrap().expect("a notification");
    assert_eq!(change.action, Action::Create);
    assert_eq!(change.record, "note:n1");
    assert_eq!(change.data["text"], "hi");

    // The plain iterator, bounded: a quiet wait yields a timeout and the iteration goes on.
    let mut bounded = changes.with_timeout(Duration::from_millis(100));
    assert!(bounded.next().unwrap().unwrap_err().is_timeout());
    admin.query("UPDATE note:n1 SET text = 'again'", ()).unwrap().check().unwrap();
    let next = bounded.find(|n| n.is_ok()).unwrap().unwrap();
    assert_eq!((next.action, next.data["text"].as_str()), (Action::Update, Some("again")));

    // Dropping it kills the live query on the server: killing it again finds nothing (while
    // killing one that runs succeeds).
    let running = s.live::<serde_json::Value>("account").unwrap();
    s.query(&format!("KILL u'{}'", running.id().unwrap()), ()).unwrap().check().unwrap();
    drop(bounded);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let killed = s.query(&format!("KILL u'{live_id}'"), ()).unwrap().check();
        if killed.is_err() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the live query was not killed on drop");
        std::thread::sleep(Duration::from_millis(20));
    }

    // A live query ends (the iterator returns None) when its session's identity changes.
    let mut ended = s.live_query::<serde_json::Value, _>("LIVE SELECT * FROM note WHERE text = $t", serde_json::json!({ "t": "x" })).unwrap();
    s.invalidate().unwrap();
    assert!(ended.next_timeout(Duration::from_secs(5)).unwrap().is_none());
    assert!(ended.next().is_none());
}

#[test]
fn blocking_use_ns_and_use_db_select_each_part() {
    let server = TestServer::start().unwrap();
    let (conn, _admin) = admin(&server);
    let s = conn.attach().unwrap();
    s.signin(&Root::new("root", "root")).unwrap();
    let selected = |s: &blocking::Session| -> serde_json::Value { s.query("RETURN [session::ns(), session::db()]", ()).unwrap().take(0).unwrap() };
    s.use_ns("app").unwrap();
    s.use_db("main").unwrap();
    assert_eq!(selected(&s), serde_json::json!(["app", "main"]));
    s.use_db("other").unwrap();
    assert_eq!(selected(&s), serde_json::json!(["app", "other"]), "use_db keeps the namespace");
    s.use_ns("elsewhere").unwrap();
    assert_eq!(selected(&s), serde_json::json!(["elsewhere", "other"]), "use_ns keeps the database");
}

#[test]
fn blocking_session_connection_and_pool_methods() {
    let server = TestServer::start().unwrap();
    let (conn, admin) = admin(&server);

    // Identity and ids.
    assert_eq!(conn.session().id(), None);
    let s = conn.attach().unwrap();
    let id = s.id().expect("an attached session has an id");
    assert!(conn.server_sessions().unwrap().contains(&id));
    assert_eq!(s.token(), None);
    let tokens = s.signup(&Record::new("app", "main", "account", serde_json::json!({ "email": "c@x.y", "password": "pw" }))).unwrap();
    assert_eq!(s.token(), Some(tokens.access.clone()));
    assert!(s.auth_known());
    assert!(s.signin(&Root::new("root", "wrong")).unwrap_err().is_auth());
    assert!(!s.auth_known());
    assert!(matches!(s.query("RETURN 1", ()), Err(Error::AuthLost)));
    let dyn_creds: &dyn surreal_pool::Credentials = &Root::new("root", "root");
    s.signin(dyn_creds).unwrap();
    assert!(s.auth_known());

    // The connection seen from the session, and its events.
    let via = s.connection();
    assert_eq!(via.endpoint(), conn.endpoint());
    assert!(via.is_up() && !via.is_down() && !via.is_closed());
    let mut events = conn.events();
    assert!(matches!(events.try_recv(), Ok(None)));
    assert!(events.recv_timeout(Duration::from_millis(50)).unwrap_err().is_timeout());

    // The rest of the data API.
    s.use_ns_db("app", "main").unwrap();
    #[derive(serde::Serialize)]
    struct Edge {
        #[serde(rename = "in")]
        from: RecordId,
        out: RecordId,
    }
    let edge = Edge { from: RecordId::new("person", "a"), out: RecordId::new("post", 1) };
    let made: Vec<serde_json::Value> = s.insert_relation("wrote", vec![edge]).unwrap();
    assert_eq!(made[0]["in"], "person:a");
    assert_eq!(s.as_async().id(), Some(id));

    // Detach waits for the server.
    s.detach().unwrap();
    assert!(!conn.server_sessions().unwrap().contains(&id));
    assert!(matches!(conn.session().detach(), Err(Error::InvalidArgument(_))), "the default session cannot be detached");

    // The pool: its connections, a pooled session's async side, closing.
    let pool = blocking::Pool::new(Pool::builder(server.url()).connections(2).max_sessions(2)).unwrap();
    let sockets = pool.connections();
    assert_eq!(sockets.len(), 2);
    assert!(sockets.iter().all(|c| c.is_up()));
    let db = pool.get().unwrap();
    assert!(db.id().is_some() && db.as_async().id() == db.id());
    assert_eq!(db.connection().server_sessions().unwrap().iter().filter(|i| Some(**i) == db.id()).count(), 1);
    drop(db);
    pool.close();
    assert!(matches!(pool.get(), Err(Error::Closed)), "a closed pool refuses checkouts");
    conn.close();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !conn.is_closed() {
        assert!(std::time::Instant::now() < deadline, "the connection closes");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(admin);
}

#[test]
fn blocking_server_version_and_the_4_0_options_follow_the_server() {
    let server = TestServer::start().unwrap();
    let (conn, _admin) = admin(&server);
    let version = conn.server_version().expect("the test server says its version");
    let s = conn.attach().unwrap();
    s.signin(&Root::new("root", "root")).unwrap();
    s.use_ns_db("app", "main").unwrap();
    let options = surreal_pool::QueryOptions::new().read_only(surreal_pool::ReadOnly::max_staleness(std::time::Duration::from_secs(5)));
    let isolation = surreal_pool::TransactionOptions::new().isolation(surreal_pool::Isolation::Serializable);
    if version.major() >= 4 {
        let one: i64 = s.query_with("RETURN 1", (), options).unwrap().take(0).unwrap();
        assert_eq!(one, 1);
        let tx = s.begin_with(isolation).unwrap();
        assert_eq!(tx.isolation(), Some(surreal_pool::Isolation::Serializable));
        tx.commit().unwrap();
    } else {
        // 3.x has no such options: refused before anything is sent, the session still usable.
        assert!(s.query_with("RETURN 1", (), options).unwrap_err().is_unsupported());
        assert!(s.begin_with(isolation).unwrap_err().is_unsupported());
        let one: i64 = s.query_with("RETURN 1", (), surreal_pool::QueryOptions::new()).unwrap().take(0).unwrap();
        assert_eq!(one, 1);
    }
}

/// A pool's nodes and their events, from plain threads: the second endpoint refuses every
/// connection, so the socket whose home it is serves from the first, every try to move home
/// fails, and the node is ejected.
#[test]
fn blocking_pool_nodes_and_events_show_a_node_ejected() {
    let server = TestServer::start().unwrap();
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("ws://{}", listener.local_addr().unwrap())
    }; // nothing listens there any more
    let health = surreal_pool::HealthPolicy::default().interval(Duration::from_millis(100)).eject_after(2).ready_check(false);
    let pool = blocking::Pool::new(Pool::builder(server.url()).endpoint(dead.as_str()).connections(2).health(health)).unwrap();
    let mut events = pool.events();
    let nodes = pool.nodes();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes.iter().map(|n| n.sockets).sum::<usize>(), 2, "both sockets on the first node: {nodes:?}");
    let ejected = loop {
        match events.recv_timeout(Duration::from_secs(15)).expect("an ejection within 15 s") {
            surreal_pool::PoolEvent::NodeEjected { endpoint, .. } => break endpoint,
            _ => continue,
        }
    };
    assert_eq!(ejected, format!("{dead}/rpc"));
    assert_ne!(pool.nodes()[1].state, surreal_pool::NodeState::Healthy);
    assert!(pool.nodes()[1].ejections >= 1);
    // Polling drains what is kept and then answers "none", without blocking.
    let mut kept = 0;
    while events.try_recv().expect("the pool is open").is_some() {
        kept += 1;
        assert!(kept <= 256, "the channel keeps at most 256 events");
    }
    pool.close();
}
