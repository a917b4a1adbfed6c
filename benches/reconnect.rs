//! Reconnect cost against a real SurrealDB 3.3.5: time from a cut (TCP proxy) to every session
//! restored, and the replay's requests per session, for growing session counts. Each session is
//! a record user with its namespace/database (from the token), one variable and a token.
//!
//! `cargo bench --bench reconnect` (option: `-- --sessions 100,500,1000`).

use std::time::{Duration, Instant};

use surreal_pool_testkit::{proxy, TestServer};
use surreal_pool::{Connection, ConnectionEvent, ReconnectPolicy};

use surreal_pool_bench_support as support;


#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip_while(|a| a != "--sessions")
        .nth(1)
        .unwrap_or_else(|| "100,500,1000".into())
        .split(',')
        .map(|n| n.parse().expect("--sessions takes a comma-separated list"))
        .collect();
    // Above the server's default of 256 sessions per socket, to measure larger replays.
    let server = TestServer::start_with_env(&[("SURREAL_WEBSOCKET_MAX_ATTACHED_SESSIONS", "4096")]).expect("SurrealDB test server");
    let tokens = support::setup(&server.url(), "", 10).await;
    let min_delay = Duration::from_millis(100);
    println!("reconnect bench: backoff min {min_delay:?} (the first attempt is immediate), record-user sessions with ns/db, 1 variable, token");
    println!("{:>9} {:>16} {:>16} {:>14} {:>16}", "sessions", "cut→restored ms", "replay ms", "requests/sess", "ms per 100 sess");
    for &n in &counts {
        let proxy = proxy::Proxy::start(server.port()).await;
        let conn = Connection::builder(proxy.url())
            .reconnect(ReconnectPolicy::default().min_delay(min_delay))
            .connect()
            .await
            .unwrap();
        let mut sessions = Vec::with_capacity(n);
        for i in 0..n {
            let s = conn.attach().await.unwrap();
            s.authenticate(tokens[i % tokens.len()].clone()).await.unwrap();
            s.set("x", &i).await.unwrap();
            sessions.push(s);
        }
        let mut events = conn.events();
        let cut = Instant::now();
        proxy.cut();
        let (replay, requests) = loop {
            match tokio::time::timeout(Duration::from_secs(30), events.recv()).await.expect("restored within 30 s").unwrap() {
                ConnectionEvent::Restored { elapsed, requests, sessions: replayed, .. } => {
                    assert_eq!(replayed, n + 1, "every session (and the default one) replayed");
                    break (elapsed, requests);
                }
                _ => continue,
            }
        };
        let total = cut.elapsed();
        // Check: the last session is itself again.
        let x: usize = sessions[n - 1].query("RETURN $x", ()).await.unwrap().take(0).unwrap();
        assert_eq!(x, n - 1);
        println!(
            "{n:>9} {:>16.2} {:>16.2} {:>14.2} {:>16.2}",
            total.as_secs_f64() * 1e3,
            replay.as_secs_f64() * 1e3,
            requests as f64 / n as f64,
            total.as_secs_f64() * 1e3 / (n as f64 / 100.0)
        );
    }
}
