//! Helpers for the fault tests: fast reconnect settings, short-lived tokens, event waits.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use surreal_pool_testkit::TestServer;
use surreal_pool::{Connection, ConnectionBuilder, ConnectionEvent, ReconnectPolicy, Root};

use super::SCHEMA;

/// Quick reconnects and a 1 s watchdog, so fault tests finish fast.
pub fn fast(builder: ConnectionBuilder) -> ConnectionBuilder {
    builder
        .reconnect(ReconnectPolicy::default().min_delay(Duration::from_millis(50)).max_delay(Duration::from_millis(400)))
        .keepalive_interval(Duration::from_millis(200))
        .watchdog_timeout(Duration::from_millis(1000))
        .request_timeout(Duration::from_secs(5))
}

/// [`SCHEMA`] plus a record access `short` whose tokens last 2 s; `refresh` adds WITH REFRESH.
pub fn short_tokens(refresh: bool) -> String {
    format!(
        "{SCHEMA}
        DEFINE ACCESS OVERWRITE short ON DATABASE TYPE RECORD
            SIGNUP ( CREATE user SET email = $email, pass = crypto::argon2::generate($password) )
            SIGNIN ( SELECT * FROM user WHERE email = $email AND crypto::argon2::compare(pass, $password) )
            {}
            DURATION FOR TOKEN 2s, FOR SESSION 1h;",
        if refresh { "WITH REFRESH" } else { "" }
    )
}

/// A server with `schema` applied as root.
pub async fn server_with(schema: &str) -> TestServer {
    let server = TestServer::start().unwrap();
    let conn = Connection::connect(server.url()).await.unwrap();
    let s = conn.session();
    s.signin(&Root::new("root", "root")).await.unwrap();
    s.query(schema, ()).await.unwrap().check().unwrap();
    server
}

/// Waits (up to 15 s) for an event matching `pred`.
pub async fn wait_for(events: &mut tokio::sync::broadcast::Receiver<ConnectionEvent>, what: &str, pred: impl Fn(&ConnectionEvent) -> bool) -> ConnectionEvent {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(e)) if pred(&e) => return e,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("event stream ended while waiting for {what}: {e}"),
            Err(_) => panic!("no {what} event within 15 s"),
        }
    }
}

pub fn is_restored(e: &ConnectionEvent) -> bool {
    matches!(e, ConnectionEvent::Restored { .. })
}

/// Waits for the next `Restored` event.
pub async fn restored(events: &mut tokio::sync::broadcast::Receiver<ConnectionEvent>) -> ConnectionEvent {
    wait_for(events, "restored", is_restored).await
}
