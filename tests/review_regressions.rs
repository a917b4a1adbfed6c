//! Regression tests for the races found in review: each scenario once let a command run under
//! the wrong identity, leaked a slot or a server session, or starved a tenant.

mod support;

use std::time::{Duration, Instant};

use support::proxy::Proxy;
use support::faults::{fast, restored, server_with, short_tokens};
use support::{record, setup, DB, NS};
use surreal_pool::{Connection, Database, Error, Pool, Root};





#[tokio::test]
async fn a_command_queued_during_an_outage_is_refused_once_the_identity_is_lost() {
    let server = server_with(&short_tokens(false)).await;
    let proxy = Proxy::start(server.port()).await;
    let conn = fast(Connection::builder(proxy.url())).connect().await.unwrap();
    let s = conn.attach().await.unwrap();
    s.signup(&record("short", "q@x.y", "pw")).await.unwrap();
    proxy.refuse(true);
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let restore = async {
        tokio::time::sleep(Duration::from_millis(2500)).await; // the token expires meanwhile
        proxy.refuse(false);
    };
    let (queued, _) = tokio::join!(s.query("RETURN 1", ()), restore);
    assert!(matches!(queued, Err(Error::AuthLost)), "{queued:?}");
}

#[tokio::test]
async fn remembered_credentials_do_not_outlive_a_later_authenticate() {
    let server = server_with(&short_tokens(false)).await;
    let proxy = Proxy::start(server.port()).await;
    let conn = fast(Connection::builder(proxy.url())).remember_credentials(true).connect().await.unwrap();
    let mut events = conn.events();
    let other = Connection::connect(server.url()).await.unwrap().attach().await.unwrap();
    let token = other.signup(&record("short", "rec@x.y", "pw")).await.unwrap().access;
    let s = conn.attach().await.unwrap();
    s.signin(&Database::new(NS, DB, "tobie", "123456")).await.unwrap();
    s.authenticate(token).await.unwrap();
    proxy.refuse(true);
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    proxy.refuse(false);
    restored(&mut events).await;
    // The record token expired and has no refresh: auth-lost, never the database user from before.
    assert!(matches!(s.query("RETURN $token.ID", ()).await, Err(Error::AuthLost)));
}

#[tokio::test]
async fn a_pooled_tenant_never_becomes_the_pool_identity_after_a_reconnect() {
    let server = server_with(&short_tokens(false)).await;
    let proxy = Proxy::start(server.port()).await;
    let pool = Pool::builder(proxy.url())
        .connections(1)
        .max_sessions(1)
        .namespace_database(NS, DB)
        .identity_credentials(Root::new("root", "root"))
        .configure_connections(|c| fast(c).remember_credentials(true))
        .build()
        .await
        .unwrap();
    let mut events = pool.connections()[0].events();
    let other = Connection::connect(server.url()).await.unwrap().attach().await.unwrap();
    let token = other.signup(&record("short", "ten@x.y", "pw")).await.unwrap().access;
    let s = pool.get_with_token(token).await.unwrap();
    proxy.refuse(true);
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    proxy.refuse(false);
    restored(&mut events).await;
    assert!(matches!(s.query("RETURN $token.ID", ()).await, Err(Error::AuthLost)));
    drop(s);
    // The pool cleans it: the next default checkout is root, in the pool's ns/db.
    let next = pool.get().await.unwrap();
    let state: serde_json::Value = next.query("RETURN [$token.ID, session::ns(), session::db()]", ()).await.unwrap().take(0).unwrap();
    assert_eq!(state, serde_json::json!(["root", NS, DB]));
}

#[tokio::test]
async fn cancelled_creates_leak_neither_slots_nor_server_sessions() {
    let (server, _conn) = setup().await;
    let proxy = Proxy::start(server.port()).await;
    let pool = Pool::builder(proxy.url()).connections(1).max_sessions(4).max_sessions_per_connection(4).warm_sessions(0).build().await.unwrap();
    let _held = pool.get().await.unwrap(); // every later get must create
    proxy.stall(true);
    for _ in 0..3 {
        assert!(tokio::time::timeout(Duration::from_millis(200), pool.get()).await.is_err());
    }
    proxy.stall(false);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(tokio::time::timeout(Duration::from_secs(3), pool.get()).await.expect("no hang").expect("a slot"));
    }
    let listed = pool.connections()[0].server_sessions().await.unwrap().len();
    assert_eq!(listed, pool.status().size, "server sessions = pool sessions (no orphans)");
}

#[tokio::test]
async fn one_busy_tenant_does_not_starve_another() {
    let (server, conn) = setup().await;
    let mut tokens = Vec::new();
    for i in 0..2 {
        let s = conn.attach().await.unwrap();
        tokens.push(s.signup(&record("plain", &format!("t{i}@x.y"), "pw")).await.unwrap().access);
    }
    let pool = Pool::builder(server.url()).connections(1).max_sessions(2).namespace_database(NS, DB).checkout_timeout(Duration::from_secs(1)).build().await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let mut hot = Vec::new();
    for _ in 0..6 {
        let (pool, a, stop) = (pool.clone(), tokens[0].clone(), stop.clone());
        hot.push(tokio::spawn(async move {
            while !stop.is_cancelled() {
                if let Ok(s) = pool.get_with_token(a.clone()).await {
                    let _ = s.query("RETURN 1", ()).await;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let other = pool.get_with_token(tokens[1].clone()).await;
    stop.cancel();
    for h in hot {
        h.await.unwrap();
    }
    assert!(other.is_ok(), "starved for {:?}: {other:?}", started.elapsed());
}

#[tokio::test]
async fn a_detach_lost_with_the_socket_is_not_replayed() {
    let (server, _) = setup().await;
    let proxy = Proxy::start(server.port()).await;
    let conn = fast(Connection::builder(proxy.url())).connect().await.unwrap();
    let mut events = conn.events();
    let s = conn.attach().await.unwrap();
    let id = s.id().unwrap();
    proxy.stall(true);
    drop(s);
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.cut();
    proxy.stall(false);
    restored(&mut events).await;
    // A detach still queued when the socket died runs after the replay; one lost in flight must
    // not be replayed at all. Either way the session is gone shortly after the restore.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while conn.server_sessions().await.unwrap().contains(&id) {
        assert!(std::time::Instant::now() < deadline, "the dropped session is attached again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_renewal_racing_an_invalidate_never_signs_the_session_back_in() {
    let server = server_with(&short_tokens(true)).await;
    let proxy = Proxy::start(server.port()).await;
    let pool = Pool::builder(proxy.url())
        .connections(1)
        .max_sessions(1)
        .namespace_database(NS, DB)
        .configure_connections(|c| fast(c).renew_margin(Duration::from_secs(5)))
        .build()
        .await
        .unwrap();
    {
        let s = pool.get().await.unwrap();
        s.signup(&record("short", "prev@x.y", "pw")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        proxy.stall(true);
        let unstall = async {
            tokio::time::sleep(Duration::from_millis(450)).await;
            proxy.stall(false);
        };
        let (r, _) = tokio::join!(s.invalidate(), unstall);
        r.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let next = pool.get().await.unwrap();
    match next.query("RETURN <string> $auth.id", ()).await {
        Err(e) => assert!(e.is_not_allowed(), "anonymous is refused: {e:?}"),
        Ok(mut r) => panic!("the next caller ran as {:?}", r.take::<serde_json::Value>(0)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn closing_a_pool_under_hand_over_load_does_not_deadlock() {
    let (server, conn) = setup().await;
    let token = conn.attach().await.unwrap().signup(&record("plain", "close@x.y", "pw")).await.unwrap().access;
    for round in 0..5 {
        let pool = Pool::builder(server.url()).connections(1).max_sessions(4).namespace_database(NS, DB).build().await.unwrap();
        let mut workers = Vec::new();
        for _ in 0..8 {
            let (pool, token) = (pool.clone(), token.clone());
            workers.push(tokio::spawn(async move {
                for _ in 0..200 {
                    match pool.get_with_token(token.clone()).await {
                        Ok(s) => {
                            let _ = s.query("RETURN 1", ()).await;
                        }
                        Err(_) => return, // closed
                    }
                }
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(30 + 20 * round)).await;
        // Close from a plain thread; a deadlock would block it (and the runtime) for good.
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let closer = pool.clone();
        std::thread::spawn(move || {
            closer.close();
            let _ = done_tx.send(());
        });
        assert!(done_rx.recv_timeout(std::time::Duration::from_secs(5)).is_ok(), "Pool::close deadlocked (round {round})");
        for w in workers {
            tokio::time::timeout(std::time::Duration::from_secs(10), w).await.expect("workers finish after close").unwrap();
        }
        assert!(matches!(pool.get_with_token(token.clone()).await, Err(Error::Closed)), "a closed pool hands nothing out");
    }
}
