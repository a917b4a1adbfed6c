//! Reconnect and replay against a real SurrealDB (3.3.5 by default), with faults injected by a TCP proxy:
//! cut sockets, stalls, refused connections, a server restart, token expiry during an outage,
//! and failover between two servers.

mod support;

use std::time::{Duration, Instant};

use support::proxy::Proxy;
use support::faults::{fast, is_restored, server_with, short_tokens, wait_for};
use support::{record, setup, DB, NS, SCHEMA};
use surreal_pool_testkit::TestServer;
use surreal_pool::{Connection, ConnectionEvent, Error, ReconnectPolicy, Root, Session};


/// `[$auth.id, ns, db, $x]`, the identity and state a replay must restore.
async fn snapshot(s: &Session) -> serde_json::Value {
    s.query("RETURN [<string> $auth.id, session::ns(), session::db(), $x]", ()).await.unwrap().take(0).unwrap()
}



/// A record user on its own session with ns/db from the token and a variable.
async fn record_session(conn: &Connection, email: &str, access: &str) -> Session {
    let s = conn.attach().await.unwrap();
    s.signup(&record(access, email, "pw")).await.unwrap();
    s.set("x", &format!("var of {email}")).await.unwrap();
    s
}

#[tokio::test]
async fn a_cut_mid_load_restores_every_session_and_loses_no_acknowledged_write() {
    let (server, _) = setup().await;
    let proxy = Proxy::start(server.port()).await;
    let conn = fast(Connection::builder(proxy.url())).connect().await.unwrap();
    let mut events = conn.events();
    let mut sessions = Vec::new();
    for i in 0..20 {
        sessions.push(record_session(&conn, &format!("cut{i}@x.y"), "account").await);
    }
    let root = conn.session();
    root.signin(&Root::new("root", "root")).await.unwrap();
    root.use_ns_db("other", "place").await.unwrap();
    root.set("x", "root var").await.unwrap();
    let mut before = Vec::new();
    for s in &sessions {
        before.push(snapshot(s).await);
    }
    let root_before = snapshot(&root).await;

    // Load: every session writes notes; cut in the middle.
    let mut tasks = Vec::new();
    for (i, s) in sessions.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut lost = 0;
            for n in 0..40 {
                let started = Instant::now();
                let result = s.query("CREATE note SET owner = $auth.id, n = $n", serde_json::json!({ "n": n })).await;
                assert!(started.elapsed() < Duration::from_secs(6), "a call outlived its timeout");
                match result.and_then(|r| r.check()) {
                    Ok(_) => acknowledged.push(n),
                    Err(Error::ConnectionLost) => lost += 1,
                    Err(e) => panic!("session {i}: unexpected {e:?}"),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (s, acknowledged, lost)
        }));
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    proxy.cut();
    wait_for(&mut events, "restored", is_restored).await;

    let mut lost_total = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        let (s, acknowledged, lost) = task.await.unwrap();
        lost_total += lost;
        assert_eq!(snapshot(&s).await, before[i], "session {i} came back as someone else or without its state");
        let mine: Vec<i64> = s.query("SELECT VALUE n FROM note WHERE owner = $auth.id", ()).await.unwrap().take(0).unwrap();
        for n in acknowledged {
            assert!(mine.contains(&n), "session {i}: acknowledged write {n} lost");
        }
    }
    assert_eq!(snapshot(&root).await, root_before);
    eprintln!("requests that failed with ConnectionLost: {lost_total}");
}

#[tokio::test]
async fn a_stalled_socket_is_detected_and_replaced() {
    let (server, _) = setup().await;
    let proxy = Proxy::start(server.port()).await;
    let conn = fast(Connection::builder(proxy.url())).connect().await.unwrap();
    let mut events = conn.events();
    let s = record_session(&conn, "stall@x.y", "account").await;
    let before = snapshot(&s).await;
    proxy.stall(true);
    let started = Instant::now();
    let during = s.query("RETURN 1", ()).await;
    assert!(matches!(during, Err(Error::ConnectionLost) | Err(Error::Timeout { .. })), "{during:?}");
    assert!(started.elapsed() < Duration::from_secs(6));
    wait_for(&mut events, "disconnect", |e| matches!(e, ConnectionEvent::Disconnected { .. })).await;
    proxy.stall(false);
    wait_for(&mut events, "restored", is_restored).await;
    assert_eq!(snapshot(&s).await, before);
}

#[tokio::test]
async fn requests_made_while_connections_are_refused_wait_for_the_replay() {
    let (server, _) = setup().await;
    let proxy = Proxy::start(server.port()).await;
    let conn = fast(Connection::builder(proxy.url())).connect().await.unwrap();
    let mut events = conn.events();
    let s = record_session(&conn, "refused@x.y", "account").await;
    let before = snapshot(&s).await;
    proxy.refuse(true);
    proxy.cut();
    wait_for(&mut events, "reconnect attempt", |e| matches!(e, ConnectionEvent::Reconnecting { attempt: 2, .. })).await;
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let v = snapshot(&s).await;
        (v, started.elapsed(), s)
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.refuse(false);
    let (after, waited, _s) = waiting.await.unwrap();
    assert_eq!(after, before);
    assert!(waited >= Duration::from_millis(1500), "the request waited for the reconnect ({waited:?})");
}

#[tokio::test]
async fn after_max_attempts_commands_fail_fast_and_the_connection_still_recovers() {
    let (server, _) = setup().await;
    let proxy = Proxy::start(server.port()).await;
    let policy = ReconnectPolicy::default().min_delay(Duration::from_millis(20)).max_delay(Duration::from_millis(300)).max_attempts(3);
    let conn = fast(Connection::builder(proxy.url())).reconnect(policy).connect().await.unwrap();
    let mut events = conn.events();
    let s = conn.session();
    s.signin(&Root::new("root", "root")).await.unwrap();
    proxy.refuse(true);
    proxy.cut();
    wait_for(&mut events, "down", |e| matches!(e, ConnectionEvent::Down { .. })).await;
    assert!(conn.is_down());
    let started = Instant::now();
    assert!(matches!(s.ping().await, Err(Error::ConnectionDown)));
    assert!(started.elapsed() < Duration::from_millis(500), "fails at once while down");
    proxy.refuse(false);
    wait_for(&mut events, "restored", is_restored).await;
    assert!(!conn.is_down() && conn.is_up());
    s.ping().await.unwrap();
}

#[tokio::test]
async fn a_server_restart_restores_remembered_identities_and_reports_the_others() {
    let mut server = surreal_pool_testkit::TestServer::start().unwrap();
    let remembering = fast(Connection::builder(server.url())).remember_credentials(true).connect().await.unwrap();
    let plain = fast(Connection::builder(server.url())).connect().await.unwrap();
    let mut remembering_events = remembering.events();
    let mut plain_events = plain.events();
    let a = remembering.attach().await.unwrap();
    a.signin(&Root::new("root", "root")).await.unwrap();
    a.use_ns_db("n", "d").await.unwrap();
    a.set("x", "kept").await.unwrap();
    let b = plain.attach().await.unwrap();
    b.signin(&Root::new("root", "root")).await.unwrap();
    let b_id = b.id();

    server.kill();
    server.restart().unwrap();
    wait_for(&mut remembering_events, "restored", is_restored).await;
    // Without remembered credentials the refused token means auth-lost: reported (before the
    // restore completes), never anonymous. (A restarted server signs system users' tokens with a
    // new key.)
    let lost = wait_for(&mut plain_events, "auth lost", |e| matches!(e, ConnectionEvent::SessionAuthLost { .. })).await;
    assert!(matches!(lost, ConnectionEvent::SessionAuthLost { session, .. } if session == b_id), "{lost:?}");
    wait_for(&mut plain_events, "restored", is_restored).await;

    // In-memory data is gone: define the namespace and database again.
    let admin = Connection::connect(server.url()).await.unwrap();
    admin.session().signin(&Root::new("root", "root")).await.unwrap();
    admin.session().query("DEFINE NAMESPACE n; USE NS n; DEFINE DATABASE d", ()).await.unwrap().check().unwrap();
    // The root user comes from the command line, so it exists again: the remembered credentials
    // sign in again if the old token is refused.
    let state: serde_json::Value = a.query("RETURN [$token.ID, session::ns(), session::db(), $x]", ()).await.unwrap().take(0).unwrap();
    assert_eq!(state, serde_json::json!(["root", "n", "d", "kept"]));
    assert!(matches!(b.query("RETURN 1", ()).await, Err(Error::AuthLost)));
    b.signin(&Root::new("root", "root")).await.unwrap();
    b.query("RETURN 1", ()).await.unwrap();
}



#[tokio::test]
async fn a_token_that_expires_during_an_outage_is_refreshed_once() {
    let server = server_with(&short_tokens(true)).await;
    let proxy = Proxy::start(server.port()).await;
    let conn = fast(Connection::builder(proxy.url())).renew_margin(Duration::ZERO).connect().await.unwrap();
    let mut events = conn.events();
    let s = record_session(&conn, "exp@x.y", "short").await;
    let before = snapshot(&s).await;
    let old = s.token().unwrap();
    proxy.refuse(true);
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(2500)).await; // the access token expires
    proxy.refuse(false);
    wait_for(&mut events, "restored", is_restored).await;
    assert_eq!(snapshot(&s).await, before, "same user, ns, db and variable after a refresh");
    assert_ne!(s.token().unwrap(), old, "the stored tokens were replaced by the refreshed pair");
}

#[tokio::test]
async fn a_token_that_expires_during_an_outage_without_refresh_is_auth_lost_until_signin() {
    let server = server_with(&short_tokens(false)).await;
    let proxy = Proxy::start(server.port()).await;
    let conn = fast(Connection::builder(proxy.url())).connect().await.unwrap();
    let mut events = conn.events();
    let s = record_session(&conn, "lost@x.y", "short").await;
    let id = s.id();
    proxy.refuse(true);
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    proxy.refuse(false);
    let lost = wait_for(&mut events, "auth lost", |e| matches!(e, ConnectionEvent::SessionAuthLost { .. })).await;
    assert!(matches!(lost, ConnectionEvent::SessionAuthLost { session, .. } if session == id), "{lost:?}");
    assert!(matches!(s.query("RETURN 1", ()).await, Err(Error::AuthLost)), "never silently anonymous");
    s.signin(&record("short", "lost@x.y", "pw")).await.unwrap();
    let who: String = s.query("RETURN $auth.email", ()).await.unwrap().take(0).unwrap();
    assert_eq!(who, "lost@x.y");
}

#[tokio::test]
async fn sessions_with_a_refresh_token_renew_before_expiry() {
    let schema = short_tokens(true).replace("FOR TOKEN 2s, FOR SESSION 1h", "FOR TOKEN 2s, FOR SESSION 2s");
    let server = server_with(&schema).await;
    let conn = fast(Connection::builder(server.url())).renew_margin(Duration::from_secs(1)).connect().await.unwrap();
    let mut events = conn.events();
    let s = record_session(&conn, "renew@x.y", "short").await;
    let first = s.token().unwrap();
    wait_for(&mut events, "renewal", |e| matches!(e, ConnectionEvent::Renewed { .. })).await;
    tokio::time::sleep(Duration::from_millis(2500)).await; // past the first session's expiry
    let who: String = s.query("RETURN $auth.email", ()).await.unwrap().take(0).unwrap();
    assert_eq!(who, "renew@x.y");
    assert_ne!(s.token().unwrap(), first);
}

#[tokio::test]
async fn a_pool_survives_a_cut_with_every_session_as_its_user() {
    let (server, conn) = setup().await;
    let proxy = Proxy::start(server.port()).await;
    let mut users = Vec::new();
    for i in 0..8 {
        let s = conn.attach().await.unwrap();
        let tokens = s.signup(&record("account", &format!("p{i}@x.y"), "pw")).await.unwrap();
        users.push((format!("p{i}@x.y"), tokens.access));
    }
    let pool = surreal_pool::Pool::builder(proxy.url()).connections(2).max_sessions(8).namespace_database(NS, DB).build().await.unwrap();
    for (email, token) in &users {
        let s = pool.get_with_token(token.clone()).await.unwrap();
        let who: String = s.query("RETURN $auth.email", ()).await.unwrap().take(0).unwrap();
        assert_eq!(&who, email);
    }
    let mut events: Vec<_> = pool.connections().iter().map(|c| c.events()).collect();
    proxy.cut();
    for e in &mut events {
        wait_for(e, "restored", is_restored).await;
    }
    let before = pool.status();
    for (email, token) in &users {
        let s = pool.get_with_token(token.clone()).await.unwrap();
        let who: String = s.query("RETURN $auth.email", ()).await.unwrap().take(0).unwrap();
        assert_eq!(&who, email);
    }
    let after = pool.status();
    assert_eq!(after.auth_round_trips, before.auth_round_trips, "replay kept every tenant's session warm");
}

/// Two independent servers whose record access signs with the same JWT key, each holding the
/// same `user` records (as nodes of one cluster would): a token is valid on both.
async fn two_nodes(users: usize) -> (TestServer, TestServer, Vec<String>) {
    let shared_key = "DEFINE ACCESS OVERWRITE account ON DATABASE TYPE RECORD
        SIGNUP ( CREATE user SET email = $email, pass = crypto::argon2::generate($password) )
        SIGNIN ( SELECT * FROM user WHERE email = $email AND crypto::argon2::compare(pass, $password) )
        WITH JWT ALGORITHM HS512 KEY 'a-shared-secret-key-for-both-nodes-of-the-test-cluster'
        DURATION FOR TOKEN 15m, FOR SESSION 12h;";
    let schema = format!("{SCHEMA}\n{shared_key}");
    let a = server_with(&schema).await;
    let b = server_with(&schema).await;
    let on_a = Connection::connect(a.url()).await.unwrap();
    let admin = on_a.session();
    admin.signin(&Root::new("root", "root")).await.unwrap();
    admin.use_ns_db(NS, DB).await.unwrap();
    let mut emails = Vec::new();
    for i in 0..users {
        let email = format!("node{i}@x.y");
        on_a.attach().await.unwrap().signup(&record("account", &email, "pw")).await.unwrap();
        emails.push(email);
    }
    let rows: Vec<serde_json::Value> = admin.query("SELECT * FROM user", ()).await.unwrap().take(0).unwrap();
    let on_b = Connection::connect(b.url()).await.unwrap();
    let bs = on_b.session();
    bs.signin(&Root::new("root", "root")).await.unwrap();
    bs.use_ns_db(NS, DB).await.unwrap();
    for row in rows {
        bs.query("CREATE type::record($id) CONTENT $row", serde_json::json!({ "id": row["id"], "row": { "email": row["email"], "pass": row["pass"] } }))
            .await
            .unwrap()
            .check()
            .unwrap();
    }
    (a, b, emails)
}

#[tokio::test]
async fn sessions_fail_over_to_another_node_with_the_same_jwt_key() {
    let (mut a, b, emails) = two_nodes(1).await;
    let conn = fast(Connection::builder(a.url()).endpoint(b.url()))
        .reconnect(ReconnectPolicy::default().min_delay(Duration::from_millis(50)).failover_after(1))
        .connect()
        .await
        .unwrap();
    let mut events = conn.events();
    let s = conn.attach().await.unwrap();
    s.signin(&record("account", &emails[0], "pw")).await.unwrap();
    s.set("x", "carried").await.unwrap();
    let before = snapshot(&s).await;
    a.kill();
    let restored = wait_for(&mut events, "restored", is_restored).await;
    match restored {
        ConnectionEvent::Restored { endpoint, .. } => assert!(endpoint.contains(&b.port().to_string()), "{endpoint}"),
        _ => unreachable!(),
    }
    assert_eq!(snapshot(&s).await, before, "the same user, ns, db and variable on the other node");
}

#[tokio::test]
async fn a_pool_over_two_nodes_keeps_every_session_when_one_dies() {
    let (a, mut b, emails) = two_nodes(6).await;
    let mut tokens = Vec::new();
    let conn = Connection::connect(a.url()).await.unwrap();
    for email in &emails {
        tokens.push(conn.attach().await.unwrap().signin(&record("account", email, "pw")).await.unwrap().access);
    }
    let pool = surreal_pool::Pool::builder(a.url())
        .endpoint(b.url())
        .connections(2)
        .max_sessions(6)
        .namespace_database(NS, DB)
        .reconnect(ReconnectPolicy::default().min_delay(Duration::from_millis(50)).failover_after(1))
        .configure_connections(|c| c.watchdog_timeout(Duration::from_secs(1)).keepalive_interval(Duration::from_millis(200)))
        .build()
        .await
        .unwrap();
    let endpoints: Vec<String> = pool.connections().iter().map(|c| c.endpoint()).collect();
    assert!(endpoints[0].contains(&a.port().to_string()) && endpoints[1].contains(&b.port().to_string()), "sockets spread: {endpoints:?}");
    for (email, token) in emails.iter().zip(&tokens) {
        let s = pool.get_with_token(token.clone()).await.unwrap();
        let who: String = s.query("RETURN $auth.email", ()).await.unwrap().take(0).unwrap();
        assert_eq!(&who, email);
    }
    let mut events = pool.connections()[1].events();
    b.kill();
    wait_for(&mut events, "restored", is_restored).await;
    let before = pool.status().auth_round_trips;
    for (email, token) in emails.iter().zip(&tokens) {
        let s = pool.get_with_token(token.clone()).await.unwrap();
        let who: String = s.query("RETURN $auth.email", ()).await.unwrap().take(0).unwrap();
        assert_eq!(&who, email, "same user on the surviving node");
    }
    assert!(pool.connections().iter().all(|c| c.endpoint().contains(&a.port().to_string())));
    assert_eq!(pool.status().auth_round_trips, before, "sessions were replayed, not re-authenticated by the pool");
    assert_eq!(pool.status().connections_up, 2);
}

#[tokio::test]
async fn a_pool_reports_connections_down_and_recovers() {
    let (server, _) = setup().await;
    let proxy = Proxy::start(server.port()).await;
    let pool = surreal_pool::Pool::builder(proxy.url())
        .connections(2)
        .max_sessions(2)
        .identity_credentials(Root::new("root", "root"))
        .reconnect(ReconnectPolicy::default().min_delay(Duration::from_millis(20)).max_delay(Duration::from_millis(200)).max_attempts(2))
        .build()
        .await
        .unwrap();
    assert_eq!((pool.status().connections_up, pool.status().connections_down), (2, 0));
    let mut events: Vec<_> = pool.connections().iter().map(|c| c.events()).collect();
    proxy.refuse(true);
    proxy.cut();
    for e in &mut events {
        wait_for(e, "down", |e| matches!(e, ConnectionEvent::Down { .. })).await;
    }
    let status = pool.status();
    assert_eq!((status.connections_up, status.connections_down), (0, 2));
    let started = Instant::now();
    let s = pool.get().await.unwrap();
    assert!(matches!(s.ping().await, Err(Error::ConnectionDown)));
    assert!(started.elapsed() < Duration::from_secs(1), "fails fast while down");
    drop(s);
    proxy.refuse(false);
    for e in &mut events {
        wait_for(e, "restored", is_restored).await;
    }
    assert_eq!(pool.status().connections_up, 2);
    pool.get().await.unwrap().query("RETURN 1", ()).await.unwrap();
}
