//! Multi-tenant throughput, side by side in one run against one real SurrealDB 3.3.5:
//!
//! * (a) `Pool::get_with_token` — per-request token forwarding with affinity;
//! * (b) naive — authenticate, query, invalidate on every request (one attached session per
//!   caller, on one socket);
//! * (c) one shared connection with no auth round trips (a root session; the ceiling).
//!
//! `cargo bench --bench pool` (options: `-- --secs 3 --callers 128 --tenants 64`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use surreal_pool_testkit::TestServer;
use surreal_pool::{AccessToken, Connection, Pool, Root};

use surreal_pool_bench_support as support;

const QUERY: &str = "RETURN 1";

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `callers` tasks doing `op(caller, i)` until `secs` pass; returns requests/s.
async fn measure<F, Fut>(secs: u64, callers: usize, op: F) -> f64
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..callers {
        let (op, done) = (op.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while Instant::now() < deadline {
                op(c, i).await;
                i += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs = arg("--secs", 3);
    let callers = arg("--callers", 128) as usize;
    let tenants = arg("--tenants", 64) as usize;
    let server = TestServer::start().expect("SurrealDB test server");
    let tokens: Arc<Vec<AccessToken>> = Arc::new(support::setup(&server.url(), "", tenants).await);
    println!("surreal-pool multi-tenant bench: {tenants} tenants, {callers} callers, {secs} s per row, `{QUERY}`");
    println!("{:<58} {:>10} {:>14}", "variant", "req/s", "auth RT/req");

    // (c) one shared connection, no auth per request
    let conn = Connection::connect(server.url()).await.unwrap();
    let shared = Arc::new(conn.session());
    shared.signin(&Root::new("root", "root")).await.unwrap();
    let s = shared.clone();
    let c_rate = measure(secs, callers, move |_, _| {
        let s = s.clone();
        async move {
            s.query(QUERY, ()).await.unwrap();
        }
    })
    .await;
    println!("{:<58} {:>10.0} {:>14}", "(c) 1 shared connection, no auth", c_rate, "0");

    // (b) naive: authenticate + query + invalidate per request, one session per caller
    let naive_conn = Connection::connect(server.url()).await.unwrap();
    let mut sessions = Vec::new();
    for _ in 0..callers {
        sessions.push(Arc::new(naive_conn.attach().await.unwrap()));
    }
    let sessions = Arc::new(sessions);
    let t = tokens.clone();
    let b_rate = measure(secs, callers, move |c, i| {
        let (s, t) = (sessions[c].clone(), t.clone());
        async move {
            s.authenticate(t[(c + i as usize) % t.len()].clone()).await.unwrap();
            s.query(QUERY, ()).await.unwrap();
            s.invalidate().await.unwrap();
        }
    })
    .await;
    println!("{:<58} {:>10.0} {:>14}", "(b) naive: authenticate + query + invalidate, 1 socket", b_rate, "2");

    // (a) the pool, token forwarding with affinity
    let mut a_rates = Vec::new();
    for connections in [1usize, 2] {
        let sessions = (arg("--sessions", tenants as u64) as usize).clamp(1, 256 * connections);
        let pool = Pool::builder(server.url())
            .connections(connections)
            .max_sessions(sessions)
            .namespace_database("bench", "bench")
            .build()
            .await
            .unwrap();
        // Warm: each tenant once.
        for t in tokens.iter() {
            drop(pool.get_with_token(t.clone()).await.unwrap());
        }
        let before = pool.status();
        let (p, t) = (pool.clone(), tokens.clone());
        let rate = measure(secs, callers, move |c, i| {
            let (p, t) = (p.clone(), t.clone());
            async move {
                let s = p.get_with_token(t[(c * 7 + i as usize) % t.len()].as_str()).await.unwrap();
                s.query(QUERY, ()).await.unwrap();
            }
        })
        .await;
        let after = pool.status();
        let per_req = (after.auth_round_trips - before.auth_round_trips) as f64 / (after.checkouts - before.checkouts).max(1) as f64;
        let label = format!("(a) pool get_with_token, {connections} socket(s) x {sessions} sessions");
        println!("{label:<58} {rate:>10.0} {per_req:>14.4}");
        a_rates.push(rate);
    }
    println!();
    for (i, rate) in a_rates.iter().enumerate() {
        println!("ratio (a, {} socket(s)) / (b) = {:.2}x    (a) / (c) = {:.2}x", i + 1, rate / b_rate, rate / c_rate);
    }
}
