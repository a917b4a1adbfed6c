//! Invariant 7 for API keys: a bearer key never appears in `Debug` output, errors or a
//! TRACE-level capture of every tracing event, through signins at each level, a failed
//! signin, a reconnect whose replay signs in again with the remembered key, and a pool whose
//! identity is a key. (One test in its binary: a scoped subscriber sees every event only when
//! no other test's thread registers the callsites first.)

mod support;

use std::time::Duration;

use support::bearer::{admin, grant, who};
use support::proxy::Proxy;
use support::{setup, Capture, DB, NS};
use surreal_pool::{BearerKey, ConnectionEvent, Pool};

#[tokio::test]
async fn a_key_never_appears_in_debug_output_or_a_trace_capture() {
    let capture = Capture::default();
    let _guard = capture.trace_here();

    let (server, admin_conn) = setup().await;
    let admin = admin(&admin_conn).await;
    let (_, key) = grant(&admin, "ACCESS api GRANT FOR USER tobie").await;
    let (_, record_key) = grant(&admin, "ACCESS device GRANT FOR RECORD user:alice").await;
    let (_, ns_key) = grant(&admin, "ACCESS ops ON NAMESPACE GRANT FOR USER tobie").await;
    // The grant statements' results carry the keys: only what the library itself logs or
    // prints from here on counts.
    let before = capture.text().len();
    let mut secrets = vec![key.clone(), record_key.clone(), ns_key.clone()];
    secrets.extend(secrets.clone().iter().map(|k| k.rsplit('-').next().unwrap().to_owned()));
    let mut printed = Vec::<String>::new();

    // Signins at every level, with the key remembered for a reconnect's replay.
    let proxy = Proxy::start(server.port()).await;
    let conn = support::remembering_connection(proxy.url()).await;
    let user_key = BearerKey::database(NS, DB, "api", key.clone());
    let s = conn.attach().await.unwrap();
    let tokens = s.signin(&user_key).await.unwrap();
    let device = conn.attach().await.unwrap();
    device.signin(&BearerKey::database(NS, DB, "device", record_key.clone())).await.unwrap();
    let ns = conn.attach().await.unwrap();
    ns.signin(&BearerKey::namespace(NS, "ops", ns_key.clone())).await.unwrap();
    ns.use_db(DB).await.unwrap();
    let failed = conn.attach().await.unwrap().signin(&BearerKey::database(NS, DB, "device", key.clone())).await.unwrap_err();
    printed.push(format!("{failed} {failed:?}"));
    printed.push(format!("{user_key:?} {:?} {s:?} {conn:?} {tokens:?}", BearerKey::root("admin_api", ns_key.clone())));

    // The replay authenticates each token and, where the server refuses it (a database-level
    // bearer token), signs in again with the remembered key.
    let mut events = conn.events();
    proxy.cut();
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.unwrap().unwrap();
        printed.push(format!("{e:?}"));
        if matches!(e, ConnectionEvent::Restored { .. }) {
            break;
        }
    }
    for (session, id) in [(&s, "tobie"), (&device, "user:alice"), (&ns, "tobie")] {
        assert_eq!(who(session).await["id"], id, "restored after the reconnect");
    }

    // The pool with a key as its identity.
    let builder = Pool::builder(server.url()).max_sessions(2).namespace_database(NS, DB).identity_credentials(user_key.clone());
    printed.push(format!("{builder:?}"));
    let pool = builder.build().await.unwrap();
    let db = pool.get().await.unwrap();
    who(&db).await;
    printed.push(format!("{db:?} {pool:?} {:?}", pool.status()));

    let log = capture.text()[before..].to_owned();
    assert!(log.contains("surreal_pool.request"), "tracing was captured ({} bytes)", log.len());
    assert!(log.contains("surreal_pool.reconnect"), "the reconnect was traced");
    let everything = format!("{log}\n{}", printed.join("\n"));
    for secret in &secrets {
        assert!(!everything.contains(secret.as_str()), "a key was printed: {}…", &secret[..secret.len().min(18)]);
    }
}
