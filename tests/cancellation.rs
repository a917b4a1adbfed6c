//! Invariant 6, deterministically: a slow link (the proxy delays every chunk by 20 ms each way,
//! so every round trip takes about 40 ms) lets a test drop a checkout + authenticate + query
//! future at each of its await points in turn — before the checkout, during `authenticate`
//! (request sent, reply not seen), between the checkout and the query, during the query — and
//! check after each drop that no slot leaked and that no session of unknown identity is handed
//! to the next caller.

mod support;

use std::time::Duration;

use support::proxy::Proxy;
use support::{record, setup, DB, NS};
use surreal_pool::{Error, Pool};

#[tokio::test]
async fn dropping_at_every_await_point_keeps_the_pool_consistent() {
    let (server, conn) = setup().await;
    let mut users = Vec::new();
    for i in 0..2 {
        let email = format!("c{i}@x.y");
        let s = conn.attach().await.unwrap();
        users.push((email.clone(), s.signup(&record("plain", &email, "pw")).await.unwrap().access));
    }
    let proxy = Proxy::start(server.port()).await;
    // One session, two tenants: every checkout for the other tenant must re-authenticate.
    let pool = Pool::builder(proxy.url()).connections(1).max_sessions(1).namespace_database(NS, DB).affinity_wait(Duration::ZERO).build().await.unwrap();
    proxy.delay(Duration::from_millis(20));

    // Drop points from 0 to 160 ms in 10 ms steps cover: checkout (no round trip), authenticate
    // sent / answered (~0–40 ms), query sent / answered (~40–80 ms), and completion.
    let mut replaced_before = 0;
    for (step, drop_after) in (0..=160).step_by(10).enumerate() {
        let (email, token) = &users[step % 2];
        let outcome = tokio::time::timeout(Duration::from_millis(drop_after), async {
            let s = pool.get_with_token(token.clone()).await?;
            let who: String = s.query("RETURN $auth.email", ()).await?.take(0)?;
            Ok::<_, Error>(who)
        })
        .await;
        if let Ok(result) = outcome {
            assert_eq!(&result.unwrap(), email, "completed as its own user");
        }
        // Let replies of dropped requests arrive.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let status = pool.status();
        // Back idle, or (dropped with its authenticate or query's state change in flight)
        // replaced: taken out of the pool, to be created afresh by the next checkout.
        let replaced = status.replaced > replaced_before;
        let want = if replaced { (0, 0, 0) } else { (1, 1, 0) };
        assert_eq!((status.size, status.available, status.waiting), want, "after dropping at {drop_after} ms: {status:?}");
        replaced_before = status.replaced;
        // The next caller (the other tenant) runs as itself: never as the dropped one, never as
        // a session whose authenticate outcome was unknown.
        let (other_email, other_token) = &users[(step + 1) % 2];
        let s = pool.get_with_token(other_token.clone()).await.unwrap();
        let who: String = s.query("RETURN $auth.email", ()).await.unwrap().take(0).unwrap();
        assert_eq!(&who, other_email, "after dropping at {drop_after} ms");
    }
    let on_server = pool.connections()[0].server_sessions().await.unwrap().len();
    assert_eq!(on_server, 1, "no server session leaked");
}
