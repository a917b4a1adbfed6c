//! Testing a multi-tenant service under network faults with the test kit
//! (`surreal-pool-testkit`): a real SurrealDB server, a fault proxy in front of it, a pool of
//! tenants forwarding their tokens through it, and a cut in the middle of the load. Every
//! answer must name its requester; requests in flight at the cut fail as "may have run".
//!
//! ```text
//! cargo run --example tenant_faults      # builds (once, cached) and starts its own SurrealDB
//! ```

use std::time::Duration;

use surreal_pool::{Connection, Pool, Record, ReconnectPolicy, Root};
use surreal_pool_testkit::{Proxy, TestServer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = TestServer::start()?;
    // Schema and tenants, directly (not through the proxy).
    let admin = Connection::connect(server.url()).await?.session();
    admin.signin(&Root::new("root", "root")).await?;
    admin
        .query(
            "DEFINE NAMESPACE app; USE NS app; DEFINE DATABASE main; USE NS app DB main;
             DEFINE TABLE user SCHEMALESS PERMISSIONS FOR select WHERE id = $auth.id;
             DEFINE ACCESS tenant ON DATABASE TYPE RECORD
                 SIGNUP ( CREATE user SET email = $email )
                 SIGNIN ( SELECT * FROM user WHERE email = $email )
                 DURATION FOR TOKEN 1h, FOR SESSION 10m;",
            (),
        )
        .await?
        .check()?;
    let mut tenants = Vec::new();
    for i in 0..8 {
        let email = format!("tenant{i}@example.com");
        let s = Connection::connect(server.url()).await?.session();
        let tokens = s.signup(&Record::new("app", "main", "tenant", serde_json::json!({ "email": email }))).await?;
        tenants.push((email, tokens.access));
    }

    // The service under test talks to the server through the fault proxy.
    let proxy = Proxy::start(server.port()).await;
    let pool = Pool::builder(proxy.url())
        .connections(2)
        .max_sessions(8)
        .namespace_database("app", "main")
        .reconnect(ReconnectPolicy::default().min_delay(Duration::from_millis(50)))
        .request_timeout(Duration::from_secs(5))
        .build()
        .await?;

    let load = tokio::spawn({
        let pool = pool.clone();
        async move {
            let (mut ok, mut may_have_run) = (0, 0);
            for round in 0..200 {
                let (email, token) = &tenants[round % tenants.len()];
                let answer = async {
                    let db = pool.get_with_token(token.clone()).await?;
                    db.query("RETURN $auth.email", ()).await?.take::<String>(0)
                };
                match answer.await {
                    Ok(who) => {
                        assert_eq!(&who, email, "an answer ran as someone else");
                        ok += 1;
                    }
                    Err(e) if e.may_have_run() || e.is_connection() => may_have_run += 1,
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, surreal_pool::Error>((ok, may_have_run))
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    proxy.cut(); // every socket drops mid-load; the pool reconnects and replays every session
    let (ok, lost) = load.await??;
    println!("{ok} answers, each as its requester; {lost} in flight at the cut (may have run); {:?}", pool.status());
    Ok(())
}
