//! API keys for services: SurrealDB 3.x bearer access (`DEFINE ACCESS … TYPE BEARER`), keys
//! granted with `ACCESS … GRANT`, signed in with as [`BearerKey`] at every level, used as a
//! pool's identity, and refused when wrong or revoked (`tests/bearer_key_secrets.rs`: never
//! printed or logged).

mod support;

use support::bearer::{admin, grant, who};
use support::{setup, DB, NS};
use surreal_pool::{BearerKey, Error, Pool};

#[tokio::test]
async fn a_key_granted_for_a_database_user_signs_in_as_that_user() {
    let (_server, conn) = setup().await;
    let admin = admin(&conn).await;
    let (_, owner_key) = grant(&admin, "ACCESS api GRANT FOR USER tobie").await;
    let (_, viewer_key) = grant(&admin, "ACCESS api ON DATABASE GRANT FOR USER reporter").await;

    let s = conn.attach().await.unwrap();
    let tokens = s.signin(&BearerKey::database(NS, DB, "api", owner_key)).await.unwrap();
    assert!(tokens.refresh.is_none(), "a bearer access issues no refresh token");
    assert_eq!(s.token(), Some(tokens.access));
    assert_eq!(who(&s).await, serde_json::json!({ "id": "tobie", "ac": "api", "auth": null, "ns": NS, "db": DB }));
    s.query("CREATE report:1 SET ok = true", ()).await.unwrap().check().unwrap();

    // The grant carries its user's roles: a viewer reads, and cannot write.
    let viewer = conn.attach().await.unwrap();
    viewer.signin(&BearerKey::database(NS, DB, "api", viewer_key)).await.unwrap();
    assert_eq!(who(&viewer).await["id"], "reporter");
    let reports: Vec<serde_json::Value> = viewer.query("SELECT * FROM report", ()).await.unwrap().take(0).unwrap();
    assert_eq!(reports.len(), 1);
    let made: Vec<serde_json::Value> = viewer.query("CREATE report:2", ()).await.unwrap().take(0).unwrap();
    assert!(made.is_empty(), "a viewer creates nothing: {made:?}");
    assert_eq!(s.query("RETURN count(SELECT * FROM report)", ()).await.unwrap().take::<i64>(0).unwrap(), 1);
}

#[tokio::test]
async fn a_key_granted_for_a_record_signs_in_as_that_record() {
    let (_server, conn) = setup().await;
    let admin = admin(&conn).await;
    let (_, key) = grant(&admin, "ACCESS device GRANT FOR RECORD user:alice").await;

    let s = conn.attach().await.unwrap();
    s.signin(&BearerKey::database(NS, DB, "device", key)).await.unwrap();
    assert_eq!(who(&s).await, serde_json::json!({ "id": "user:alice", "ac": "device", "auth": "user:alice", "ns": NS, "db": DB }));
    let me = s.info().await.unwrap().expect("the record user reads itself");
    assert_eq!(me["email"], "alice@x.y");
}

#[tokio::test]
async fn namespace_and_root_keys_sign_in_at_their_level() {
    let (_server, conn) = setup().await;
    let admin = admin(&conn).await;
    let (_, ns_key) = grant(&admin, "ACCESS ops ON NAMESPACE GRANT FOR USER tobie").await;
    let (_, root_key) = grant(&admin, "ACCESS admin_api ON ROOT GRANT FOR USER root").await;

    let ns = conn.attach().await.unwrap();
    let tokens = ns.signin(&BearerKey::namespace(NS, "ops", ns_key)).await.unwrap();
    ns.use_db(DB).await.unwrap();
    assert_eq!(who(&ns).await, serde_json::json!({ "id": "tobie", "ac": "ops", "auth": null, "ns": NS, "db": DB }));
    // Namespace (and root) bearer tokens can be authenticated elsewhere, like any token.
    let other = conn.attach().await.unwrap();
    other.authenticate(tokens.access).await.unwrap();
    other.use_db(DB).await.unwrap();
    assert_eq!(other.query("RETURN $token.AC", ()).await.unwrap().take::<String>(0).unwrap(), "ops");

    let root = conn.attach().await.unwrap();
    root.signin(&BearerKey::root("admin_api", root_key)).await.unwrap();
    root.use_ns_db(NS, DB).await.unwrap();
    assert_eq!(who(&root).await, serde_json::json!({ "id": "root", "ac": "admin_api", "auth": null, "ns": NS, "db": DB }));
    root.query("DEFINE TABLE made_by_key", ()).await.unwrap().check().unwrap();
}

#[tokio::test]
async fn revoked_wrong_and_malformed_keys_fail_with_auth_errors() {
    let (_server, conn) = setup().await;
    let admin = admin(&conn).await;
    let (id, key) = grant(&admin, "ACCESS api GRANT FOR USER tobie").await;
    let (_, record_key) = grant(&admin, "ACCESS device GRANT FOR RECORD user:alice").await;
    let secret = key.rsplit('-').next().unwrap().to_owned();
    let wrong = format!("{}{}", &key[..key.len() - 4], if key.ends_with("AAAA") { "BBBB" } else { "AAAA" });

    let s = conn.attach().await.unwrap();
    s.signin(&BearerKey::database(NS, DB, "api", key.clone())).await.unwrap();
    let revoked: serde_json::Value = admin.query(&format!("ACCESS api REVOKE GRANT {id}"), ()).await.unwrap().take(0).unwrap();
    assert!(!revoked.to_string().contains(&secret), "the server shows a grant's key only once");

    let attempts = [
        ("revoked", BearerKey::database(NS, DB, "api", key.clone())),
        ("wrong secret", BearerKey::database(NS, DB, "api", wrong.clone())),
        ("malformed", BearerKey::database(NS, DB, "api", "not-a-key")),
        ("another method's key", BearerKey::database(NS, DB, "api", record_key.clone())),
        ("no such access method", BearerKey::database(NS, DB, "nope", record_key.clone())),
        ("wrong level", BearerKey::namespace(NS, "api", record_key.clone())),
    ];
    for (what, creds) in attempts {
        let s = conn.attach().await.unwrap();
        match s.signin(&creds).await {
            Err(e @ Error::Auth(_)) => {
                assert!(e.is_auth(), "{what}: {e}");
                let text = format!("{e} {e:?}");
                for k in [&key, &wrong, &record_key, &secret] {
                    assert!(!text.contains(k.as_str()), "{what}: the error shows the key");
                }
            }
            other => panic!("{what}: expected an auth error, got {other:?}"),
        }
        assert!(!s.auth_known(), "{what}: a failed signin leaves the identity unknown");
        assert!(matches!(s.query("RETURN 1", ()).await, Err(Error::AuthLost)), "{what}");
    }
}

#[tokio::test]
async fn a_key_is_the_pools_identity_and_each_session_signs_in_once() {
    let (server, conn) = setup().await;
    let admin = admin(&conn).await;
    let (_, key) = grant(&admin, "ACCESS api GRANT FOR USER tobie").await;
    let (_, ns_key) = grant(&admin, "ACCESS ops ON NAMESPACE GRANT FOR USER tobie").await;

    // A database-level key: SurrealDB 3.3.5 does not authenticate the tokens it signs in to,
    // so each pooled session signs in with the key itself; each stays the pool identity's.
    let pool = Pool::builder(server.url())
        .connections(1)
        .max_sessions(4)
        .namespace_database(NS, DB)
        .identity_credentials(BearerKey::database(NS, DB, "api", key))
        .build()
        .await
        .unwrap();
    let warmed = pool.status();
    assert_eq!(warmed.size, 4);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    let db = pool.get().await.unwrap();
                    assert_eq!(who(&db).await, serde_json::json!({ "id": "tobie", "ac": "api", "auth": null, "ns": NS, "db": DB }));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let status = pool.status();
    assert_eq!(status.checkouts, 80);
    assert_eq!(status.resets, 0, "sessions come back clean: {status:?}");
    assert_eq!(status.auth_round_trips, warmed.auth_round_trips, "no signin after the warm-up: {status:?}");
    assert_eq!(warmed.auth_round_trips, 4, "one signin per session, no failed authenticate first");

    // A namespace-level key: one signin for the pool, the other sessions authenticate its token.
    let pool = Pool::builder(server.url())
        .connections(1)
        .max_sessions(3)
        .namespace_database(NS, DB)
        .identity_credentials(BearerKey::namespace(NS, "ops", ns_key))
        .build()
        .await
        .unwrap();
    let held: Vec<_> = futures_util::future::join_all((0..3).map(|_| pool.get())).await.into_iter().map(Result::unwrap).collect();
    for db in &held {
        assert_eq!(who(db).await["ac"], "ops");
    }
    let tokens: std::collections::HashSet<String> = held.iter().map(|db| db.token().unwrap().as_str().to_owned()).collect();
    assert_eq!(tokens.len(), 1, "the sessions share the pool's one token");
}
