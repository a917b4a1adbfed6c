//! The pool against a real SurrealDB (3.3.5 by default): default identity, token forwarding with affinity,
//! clean-on-return, cancellation, limits, and the multi-tenant isolation test.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use support::{record, setup, DB, NS};
use surreal_pool::{AccessToken, Error, Pool, Root};

async fn tenants(conn: &surreal_pool::Connection, n: usize) -> Vec<(String, AccessToken)> {
    let mut out = Vec::new();
    for i in 0..n {
        let email = format!("tenant{i}@example.com");
        let s = conn.attach().await.unwrap();
        let tokens = s.signup(&record("plain", &email, "pw")).await.unwrap();
        let id: String = s.query("RETURN <string> $auth.id", ()).await.unwrap().take(0).unwrap();
        s.detach().await.unwrap();
        out.push((id, tokens.access));
    }
    out
}

async fn who(s: &surreal_pool::Session) -> serde_json::Value {
    s.query("RETURN [<string> $auth.id, session::ns(), session::db()]", ()).await.unwrap().take(0).unwrap()
}

/// The server refuses anonymous queries (guest access is off by default): that refusal is how
/// a test sees that a session is anonymous.
async fn assert_anonymous(s: &surreal_pool::Session) {
    match s.query("RETURN 1", ()).await {
        Err(e) if e.is_not_allowed() => {}
        other => panic!("expected an anonymous session, got {other:?}"),
    }
    assert_eq!(s.token(), None);
}

#[tokio::test]
async fn get_never_returns_a_previous_callers_identity_or_state() {
    let (server, _conn) = setup().await;
    let pool = Pool::builder(server.url()).connections(1).max_sessions(1).namespace_database(NS, DB).build().await.unwrap();
    {
        let s = pool.get().await.unwrap();
        assert_anonymous(&s).await;
        s.signin(&Root::new("root", "root")).await.unwrap();
        s.use_ns_db("elsewhere", "else").await.unwrap();
        s.set("secret", "x").await.unwrap();
    }
    let s = pool.get().await.unwrap();
    assert_anonymous(&s).await; // identity wiped
    s.signin(&Root::new("root", "root")).await.unwrap(); // (root signin keeps ns/db)
    let state: serde_json::Value = s.query("RETURN [session::ns(), session::db(), $secret]", ()).await.unwrap().take(0).unwrap();
    assert_eq!(state, serde_json::json!([NS, DB, null]), "ns/db back to the pool's, variables wiped");
    assert_eq!(pool.status().resets, 1);
}

#[tokio::test]
async fn forwarded_tokens_run_as_their_user_and_repeat_tenants_hit_affinity() {
    let (server, conn) = setup().await;
    let users = tenants(&conn, 3).await;
    let pool = Pool::builder(server.url()).connections(1).max_sessions(3).namespace_database(NS, DB).build().await.unwrap();
    for round in 0..5 {
        for (id, token) in &users {
            let s = pool.get_with_token(token.clone()).await.unwrap();
            assert_eq!(who(&s).await, serde_json::json!([id, NS, DB]), "round {round}");
        }
    }
    let status = pool.status();
    assert_eq!(status.checkouts, 15);
    assert_eq!(status.auth_round_trips, 3, "one authenticate per tenant: {status:?}");
    assert_eq!(status.affinity_hits, 12);
    // A default checkout never gets a tenant's session as it is.
    let s = pool.get().await.unwrap();
    assert_anonymous(&s).await;
}

#[tokio::test]
async fn more_tenants_than_sessions_evicts_least_recently_used() {
    let (server, conn) = setup().await;
    let users = tenants(&conn, 6).await;
    let pool = Pool::builder(server.url()).connections(2).max_sessions(2).namespace_database(NS, DB).build().await.unwrap();
    for i in 0..30 {
        let (id, token) = &users[(i * 7) % users.len()];
        let s = pool.get_with_token(token.clone()).await.unwrap();
        assert_eq!(who(&s).await[0], serde_json::json!(id));
    }
    let status = pool.status();
    assert_eq!(status.size, 2);
    assert_eq!(status.checkouts, status.affinity_hits + status.auth_round_trips);
}

#[tokio::test]
async fn a_bad_token_is_an_auth_error_and_the_session_goes_back_clean() {
    let (server, conn) = setup().await;
    let users = tenants(&conn, 1).await;
    let pool = Pool::builder(server.url()).connections(1).max_sessions(1).namespace_database(NS, DB).build().await.unwrap();
    drop(pool.get_with_token(users[0].1.clone()).await.unwrap());
    match pool.get_with_token("not.a.token").await {
        Err(Error::InvalidToken(_)) => {}
        other => panic!("expected a refusal before any round trip, got {other:?}"),
    }
    match pool.get_with_token(support::forged(&users[0].1)).await {
        Err(Error::Auth(_)) => {}
        other => panic!("expected an auth error, got {other:?}"),
    }
    let s = pool.get().await.unwrap();
    assert_anonymous(&s).await;
    drop(s);
    let s = pool.get_with_token(users[0].1.clone()).await.unwrap();
    assert_eq!(who(&s).await[0], serde_json::json!(users[0].0));
    assert_eq!(pool.status().available, 0);
    drop(s);
    assert_eq!(pool.status().available, 1);
}

#[tokio::test]
async fn a_caller_who_signs_in_as_someone_else_does_not_leak_that_identity() {
    let (server, conn) = setup().await;
    let users = tenants(&conn, 2).await;
    let pool = Pool::builder(server.url()).connections(1).max_sessions(1).namespace_database(NS, DB).build().await.unwrap();
    {
        let s = pool.get_with_token(users[0].1.clone()).await.unwrap();
        s.authenticate(users[1].1.clone()).await.unwrap();
    }
    // Same token as the first checkout: the session is now user 1, so it must not be a hit.
    let s = pool.get_with_token(users[0].1.clone()).await.unwrap();
    assert_eq!(who(&s).await[0], serde_json::json!(users[0].0));
}

#[tokio::test]
async fn pool_identity_token_and_credentials_apply_to_get() {
    let (server, conn) = setup().await;
    let users = tenants(&conn, 1).await;
    let by_token = Pool::builder(server.url()).namespace_database(NS, DB).identity_token(users[0].1.clone()).build().await.unwrap();
    assert_eq!(who(&by_token.get().await.unwrap()).await[0], serde_json::json!(users[0].0));

    let by_creds =
        Pool::builder(server.url()).connections(1).max_sessions(2).namespace_database(NS, DB).identity_credentials(Root::new("root", "root")).build().await.unwrap();
    let a = by_creds.get().await.unwrap();
    let b = by_creds.get().await.unwrap();
    for s in [&a, &b] {
        let id: String = s.query("RETURN $token.ID", ()).await.unwrap().take(0).unwrap();
        assert_eq!(id, "root");
    }
    assert_eq!(by_creds.status().auth_round_trips, 2, "one signin, then one authenticate with its token");
}

#[tokio::test]
async fn checkout_waits_are_bounded() {
    let (server, _conn) = setup().await;
    let pool = Pool::builder(server.url()).connections(1).max_sessions(1).checkout_timeout(Duration::from_millis(200)).build().await.unwrap();
    let held = pool.get().await.unwrap();
    let started = std::time::Instant::now();
    match pool.get().await {
        Err(Error::Timeout { what: "checkout", .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(held);
    pool.get().await.unwrap();
}

#[tokio::test]
async fn ten_thousand_checkouts_leak_no_server_session() {
    let (server, conn) = setup().await;
    let users = tenants(&conn, 8).await;
    let pool = Pool::builder(server.url()).connections(2).max_sessions(4).namespace_database(NS, DB).build().await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let pool = pool.clone();
        let users = users.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..1250 {
                let s = match (t + i) % 3 {
                    0 => pool.get().await.unwrap(),
                    _ => pool.get_with_token(users[(t + i) % users.len()].1.clone()).await.unwrap(),
                };
                if i % 50 == 0 {
                    s.set("x", &i).await.unwrap(); // dirties it: forces a reset
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let status = pool.status();
    assert_eq!(status.checkouts, 10_000);
    assert_eq!((status.size, status.available, status.waiting), (4, 4, 0));
    let mut on_server = 0;
    for c in pool.connections() {
        on_server += c.server_sessions().await.unwrap().len();
    }
    assert_eq!(on_server, status.size);
}

#[tokio::test]
async fn dropped_checkouts_leave_the_pool_consistent() {
    let (server, conn) = setup().await;
    let users = tenants(&conn, 4).await;
    let pool = Pool::builder(server.url()).connections(1).max_sessions(2).namespace_database(NS, DB).build().await.unwrap();
    // Cancel checkouts and requests at varied points.
    for i in 0..200u64 {
        let (_, token) = &users[i as usize % users.len()];
        let delay = Duration::from_micros((i * 37) % 900);
        let _ = tokio::time::timeout(delay, async {
            let s = pool.get_with_token(token.clone()).await?;
            s.query("RETURN 1", ()).await?;
            Ok::<_, Error>(())
        })
        .await;
    }
    // Every later checkout is exactly its user.
    for (id, token) in &users {
        let s = pool.get_with_token(token.clone()).await.unwrap();
        assert_eq!(who(&s).await, serde_json::json!([id, NS, DB]));
    }
    let status = pool.status();
    assert_eq!((status.available, status.waiting), (status.size, 0));
}

/// The headline test: 50 record users, 2,000 requests over 64 tasks through 2 connections × 16
/// sessions, 10% of request futures dropped mid-flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_under_concurrency_and_cancellation() {
    let (server, conn) = setup().await;
    let users = tenants(&conn, 50).await;
    let pool = Pool::builder(server.url()).connections(2).max_sessions(16).namespace_database(NS, DB).build().await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..64usize {
        let pool = pool.clone();
        let users = users.clone();
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut state = t as u64 * 2_654_435_761 + 1;
            for i in 0..(2000 / 64 + usize::from(t < 2000 % 64)) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let (id, token) = &users[(state % users.len() as u64) as usize];
                let request = format!("{t}-{i}");
                let work = async {
                    let s = pool.get_with_token(token.clone()).await?;
                    let mut res = s
                        .query(
                            "RETURN [<string> $auth.id, session::ns(), session::db()]; CREATE note SET owner = $auth.id, request = $request, claimed = $claimed RETURN NONE",
                            serde_json::json!({ "request": request, "claimed": id }),
                        )
                        .await?;
                    let seen: serde_json::Value = res.take(0)?;
                    let _: serde_json::Value = res.take(1)?;
                    Ok::<_, Error>(seen)
                };
                if state % 10 == 0 {
                    // Dropped mid-flight at a pseudo-random point.
                    let _ = tokio::time::timeout(Duration::from_micros(state % 2000), work).await;
                    continue;
                }
                let seen = work.await.unwrap();
                assert_eq!(seen, serde_json::json!([id, NS, DB]), "request {request} ran as someone else");
                acknowledged.push(request);
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.extend(t.await.unwrap());
    }
    assert!(acknowledged.len() > 1500, "{}", acknowledged.len());

    let status = pool.status();
    assert_eq!((status.available, status.waiting), (status.size, 0), "{status:?}");
    let mut on_server = 0;
    for c in pool.connections() {
        on_server += c.server_sessions().await.unwrap().len();
    }
    assert_eq!(on_server, status.size);

    // Every row was written by the user it names, and every acknowledged write is there.
    let admin = conn.session();
    admin.signin(&Root::new("root", "root")).await.unwrap();
    admin.use_ns_db(NS, DB).await.unwrap();
    let rows: Vec<HashMap<String, String>> =
        admin.query("SELECT <string> owner AS owner, claimed, request FROM note", ()).await.unwrap().take(0).unwrap();
    for row in &rows {
        assert_eq!(row["owner"], row["claimed"], "a row written under another user: {row:?}");
    }
    let written: std::collections::HashSet<&str> = rows.iter().map(|r| r["request"].as_str()).collect();
    for request in &acknowledged {
        assert!(written.contains(request.as_str()), "acknowledged write {request} is missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_of_one_tenant_share_its_sessions_without_reauthenticating() {
    let (server, conn) = setup().await;
    let users = tenants(&conn, 1).await;
    let pool = Pool::builder(server.url()).connections(1).max_sessions(4).namespace_database(NS, DB).build().await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (pool, (id, token)) = (pool.clone(), users[0].clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let s = pool.get_with_token(token.clone()).await.unwrap();
                assert_eq!(who(&s).await[0], serde_json::json!(id));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let status = pool.status();
    assert_eq!(status.checkouts, 400);
    // At most one authenticate per session: a busy session of the same identity is waited for
    // and handed over instead of re-authenticating another one each time.
    assert!(status.auth_round_trips <= 4, "{status:?}");
    assert_eq!((status.available, status.waiting), (4, 0));
}
