//! A bounded soak: 64 tenants hammer a pool through a proxy that cuts every socket every few
//! seconds. Reports requests, errors by kind, identity mismatches (must be 0), lost acknowledged
//! writes (must be 0) and this process's resident memory at start and end (must stay bounded).
//!
//! CI runs a short version (8 s). The long one:
//! `SOAK_SECS=60 cargo test --release --test soak -- --nocapture`

mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::proxy::Proxy;
use support::{record, setup, DB, NS};
use surreal_pool::{Error, Pool, ReconnectPolicy, Root};

fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<f64>().ok()).unwrap_or(0.0) * 4096.0 / (1 << 20) as f64
}

fn kind(e: &Error) -> &'static str {
    match e {
        Error::ConnectionLost => "connection lost",
        Error::Timeout { .. } => "timeout",
        Error::ConnectionDown => "disconnected",
        Error::AuthLost => "auth lost",
        Error::Closed => "closed",
        Error::Overloaded { .. } => "overloaded",
        _ => "other",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_random_cuts() {
    let secs: u64 = std::env::var("SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let (server, conn) = setup().await;
    let mut tenants = Vec::new();
    for i in 0..64 {
        let email = format!("soak{i}@x.y");
        let s = conn.attach().await.unwrap();
        let tokens = s.signup(&record("plain", &email, "pw")).await.unwrap();
        let id: String = s.query("RETURN <string> $auth.id", ()).await.unwrap().take(0).unwrap();
        tenants.push((id, tokens.access));
    }
    let tenants = Arc::new(tenants);
    let proxy = Arc::new(Proxy::start(server.port()).await);
    let pool = Pool::builder(proxy.url())
        .connections(2)
        .max_sessions(32)
        .namespace_database(NS, DB)
        .request_timeout(Duration::from_secs(3))
        .checkout_timeout(Duration::from_secs(3))
        .reconnect(ReconnectPolicy::default().min_delay(Duration::from_millis(20)).max_delay(Duration::from_millis(500)))
        .build()
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(secs);
    let rss_start = rss_mib();
    let errors = Arc::new(Mutex::new(BTreeMap::<&'static str, u64>::new()));
    let mismatches = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let cutter = {
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let mut cuts = 0;
            let mut state: u64 = 0x2545_F491_4F6C_DD1D;
            while Instant::now() < deadline {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                tokio::time::sleep(Duration::from_millis(1500 + state % 1500)).await;
                proxy.cut();
                cuts += 1;
            }
            cuts
        })
    };
    let mut workers = Vec::new();
    for w in 0..64usize {
        let (pool, tenants, errors, mismatches) = (pool.clone(), tenants.clone(), errors.clone(), mismatches.clone());
        workers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut done = 0u64;
            let mut i = 0usize;
            while Instant::now() < deadline {
                let (id, token) = &tenants[(w * 7 + i) % tenants.len()];
                let request = format!("{w}-{i}");
                i += 1;
                let started = Instant::now();
                let result = async {
                    let s = pool.get_with_token(token.clone()).await?;
                    let mut r = s
                        .query(
                            "RETURN <string> $auth.id; CREATE note SET owner = $auth.id, request = $request RETURN NONE",
                            serde_json::json!({ "request": request }),
                        )
                        .await?;
                    let who: String = r.take(0)?;
                    let _: serde_json::Value = r.take(1)?;
                    Ok::<_, Error>(who)
                }
                .await;
                assert!(started.elapsed() < Duration::from_secs(8), "a request outlived every timeout");
                done += 1;
                match result {
                    Ok(who) => {
                        if &who != id {
                            mismatches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        acknowledged.push((id.clone(), request));
                    }
                    Err(e) => *errors.lock().unwrap().entry(kind(&e)).or_default() += 1,
                }
            }
            (done, acknowledged)
        }));
    }
    let mut done = 0;
    let mut acknowledged = Vec::new();
    for w in workers {
        let (n, acks) = w.await.unwrap();
        done += n;
        acknowledged.extend(acks);
    }
    let cuts = cutter.await.unwrap();
    let rss_end = rss_mib();

    let admin = conn.session();
    admin.signin(&Root::new("root", "root")).await.unwrap();
    admin.use_ns_db(NS, DB).await.unwrap();
    let rows: Vec<(String, String)> = admin
        .query("SELECT VALUE [<string> owner, request] FROM note", ())
        .await
        .unwrap()
        .take::<Vec<Vec<String>>>(0)
        .unwrap()
        .into_iter()
        .map(|mut r| (r.remove(0), r.remove(0)))
        .collect();
    let written: HashSet<(String, String)> = rows.into_iter().collect();
    let lost = acknowledged.iter().filter(|a| !written.contains(*a)).count();
    let errors = errors.lock().unwrap().clone();
    eprintln!(
        "soak: {secs} s, {cuts} cuts, {done} requests, {} acknowledged, errors {errors:?}, identity mismatches {}, lost acknowledged writes {lost}, RSS {rss_start:.1} → {rss_end:.1} MiB",
        acknowledged.len(),
        mismatches.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(cuts >= 2, "the soak cut the sockets");
    assert!(acknowledged.len() as u64 > done / 2, "most requests succeed");
    assert_eq!(mismatches.load(std::sync::atomic::Ordering::Relaxed), 0, "identity mismatches");
    assert_eq!(lost, 0, "lost acknowledged writes");
    assert!(!errors.contains_key("other"), "only connection-level errors: {errors:?}");
    assert!(rss_end - rss_start < 64.0, "resident memory grew from {rss_start:.1} to {rss_end:.1} MiB");
    let status = pool.status();
    assert_eq!((status.available, status.waiting), (status.size, 0), "{status:?}");
}
