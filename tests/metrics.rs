//! Metrics (feature `metrics`): what the pool records, scraped over HTTP in Prometheus text
//! format as the multi-tenant example serves it. One test: a recorder is process-global.

mod support;

use std::time::Duration;

use support::faults::{fast, restored};
use support::proxy::Proxy;
use support::{record, setup, DB, NS};
use surreal_pool::{Error, Pool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET /metrics` over a fresh connection: the body.
async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut response)).await.unwrap().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

/// The value of the sample `name{labels}` (labels in the exporter's order), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

#[tokio::test]
async fn the_pool_records_checkouts_requests_auth_rejections_and_reconnects_for_a_scrape() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().expect("the only recorder in this binary");
    let (server, conn) = setup().await;
    let s = conn.attach().await.unwrap();
    let token = s.signup(&record("account", "metrics@example.com", "pw")).await.unwrap().access;
    let proxy = Proxy::start(server.port()).await;
    let pool = Pool::builder(proxy.url())
        .connections(1)
        .max_sessions(2)
        .max_waiting(1)
        .namespace_database(NS, DB)
        .checkout_timeout(Duration::from_millis(500))
        .configure_connections(fast)
        .build()
        .await
        .unwrap();

    // Traffic: forwarded requests (one authenticate, then affinity hits) …
    for _ in 0..5 {
        let db = pool.get_with_token(token.as_str()).await.unwrap();
        db.query("RETURN 1", ()).await.unwrap();
    }
    // … a refused and a timed-out checkout …
    let held = (pool.get().await.unwrap(), pool.get().await.unwrap());
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(drop) }
    });
    support::until("the waiter queues", || pool.status().waiting > 0).await;
    assert!(matches!(pool.get().await, Err(Error::TooManyWaiting { .. })));
    assert!(matches!(waiter.await.unwrap(), Err(Error::Timeout { .. })));
    drop(held);
    // … and a reconnect.
    let mut events = pool.connections()[0].events();
    proxy.cut();
    restored(&mut events).await;

    // The multi-tenant example's `/metrics`: gauges set, then the recorder rendered.
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get({
            let (pool, handle) = (pool.clone(), handle.clone());
            move || async move {
                pool.record_metrics();
                handle.render()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let text = scrape(addr).await;

    let status = pool.status();
    let count = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    assert_eq!(count(r#"surreal_pool_checkouts_total{outcome="ok"}"#), 7.0);
    assert_eq!(count(r#"surreal_pool_checkouts_total{outcome="refused"}"#), 1.0);
    assert_eq!(count(r#"surreal_pool_checkouts_total{outcome="timeout"}"#), 1.0);
    assert_eq!(count(r#"surreal_pool_checkout_wait_seconds_count{outcome="ok"}"#), 7.0);
    assert_eq!(count(r#"surreal_pool_rejected_checkouts_total{bound="pool"}"#), 1.0);
    assert_eq!(count("surreal_pool_affinity_hits_total"), status.affinity_hits as f64);
    assert_eq!(count("surreal_pool_auth_round_trips_total"), status.auth_round_trips as f64);
    assert!(count(r#"surreal_pool_request_seconds_count{method="query",outcome="ok"}"#) >= 5.0);
    assert!(count(r#"surreal_pool_request_seconds_count{method="authenticate",outcome="ok"}"#) >= 1.0);
    assert_eq!(count("surreal_pool_reconnects_total"), 1.0);
    assert_eq!(count("surreal_pool_replay_seconds_count"), 1.0);
    let sessions: f64 = ["idle", "busy", "dirty"].iter().map(|s| count(&format!(r#"surreal_pool_sessions{{connection="0",state="{s}"}}"#))).sum();
    assert_eq!(sessions, status.size as f64);
    assert_eq!(count(r#"surreal_pool_requests_in_flight{connection="0"}"#), 0.0);
    assert_eq!(count(r#"surreal_pool_requests_queued{connection="0"}"#), 0.0);
    assert_eq!(count("surreal_pool_checkouts_waiting"), 0.0);
    assert_eq!(count("surreal_pool_connections_up"), 1.0);
    // No label or value names a token, a tenant or a query.
    for secret in [token.as_str(), "metrics@example.com", "RETURN 1"] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }
    pool.close();
}
