//! What surreal-pool tells you while it runs: tracing spans per request (method, session,
//! duration — never tokens), connection events, and the pool's counters.
//!
//! ```text
//! cargo run --example observability            # starts its own local SurrealDB
//! RUST_LOG=surreal_pool=trace cargo run --example observability
//! ```

use std::time::Duration;

use surreal_pool_testkit::TestServer;
use surreal_pool::{Pool, Record, Root};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "surreal_pool=debug".into()))
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();
    let server = TestServer::start()?;
    let pool = Pool::builder(server.url())
        .connections(2)
        .max_sessions(4)
        .namespace_database("obs", "obs")
        .identity_credentials(Root::new("root", "root"))
        .build()
        .await?;
    for conn in pool.connections() {
        let mut events = conn.events();
        tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                println!("connection event: {event:?}");
            }
        });
    }
    let admin = pool.get().await?;
    admin
        .query(
            "DEFINE NAMESPACE IF NOT EXISTS obs; USE NS obs; DEFINE DATABASE IF NOT EXISTS obs; USE NS obs DB obs;
             DEFINE ACCESS IF NOT EXISTS account ON DATABASE TYPE RECORD
                SIGNUP ( CREATE user SET email = $email, pass = crypto::argon2::generate($password) )
                SIGNIN ( SELECT * FROM user WHERE email = $email AND crypto::argon2::compare(pass, $password) );",
            (),
        )
        .await?
        .check()?;
    let token = admin.signup(&Record::new("obs", "obs", "account", serde_json::json!({"email": "o@x.y", "password": "pw"}))).await?.access;
    drop(admin);
    for _ in 0..5 {
        let s = pool.get_with_token(token.clone()).await?;
        s.query("RETURN $auth.email", ()).await?;
    }
    let _ = pool.get_with_token("not-a-token").await; // a refused token: an auth error, no token in the logs
    tokio::time::sleep(Duration::from_millis(50)).await;
    let s = pool.status();
    println!(
        "pool status: {} sessions ({} idle, {} waiting) on {} connections ({} up); {} checkouts, {} affinity hits, {} auth round trips, {} resets",
        s.size, s.available, s.waiting, s.connections, s.connections_up, s.checkouts, s.affinity_hits, s.auth_round_trips, s.resets
    );
    Ok(())
}
