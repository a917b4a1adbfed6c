//! Side-by-side benchmarks in one process run against one real SurrealDB 3.3.5:
//! surreal-pool, the official `surrealdb` SDK (WebSocket), and a raw pipelined client (CBOR, and
//! JSON as a reference). Workloads A–E of the benchmark issue; see BENCHMARKS.md.
//!
//! `cargo run --release --manifest-path bench-harness/Cargo.toml -- [--secs 2] [--reps 3] [--quick] [--only A,B,C,D,E,G,H,T,K,N,S]`
//! Not part of a full run: G (the gaps to the floor, interleaved), H (big results: rows decoded
//! per client), in `rows.rs`, T (more tenants than sessions: the curve) and K (hostile tokens
//! among hot tenants), both in `tenants.rs`, N (quiet tenants beside a noisy one), in
//! `noisy.rs`, and S (how cost grows with sessions and known tenants), in `scale.rs`.
//!
//! Everything printed is also written to `bench-harness/results/latest.txt`.

use surreal_pool_testkit::proxy;
use surreal_pool_bench_support as support;
mod raw;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use surreal_pool_testkit::TestServer;
use surreal_pool::{AccessToken, Connection, Pool, Root};
use surrealdb::engine::remote::ws::{Client, Ws};
use surrealdb::Surreal;

const NS: &str = "bench";
const DB: &str = "bench";
const RETURN_1: &str = "RETURN 1";
const SELECT: &str = "SELECT * FROM item WHERE n >= 500 LIMIT 10";

/// The 1,000-row table of workload B's small SELECT, on top of the benches' schema.
const ITEMS: &str = r#"
DEFINE TABLE item SCHEMALESS PERMISSIONS FULL;
DEFINE INDEX item_n ON item FIELDS n;
FOR $i IN 1..=1000 { CREATE type::record('item', $i) SET n = $i, name = 'item ' + <string> $i; };
"#;

/// Collected output: printed and saved.
static OUT: Mutex<String> = Mutex::new(String::new());

macro_rules! say {
    ($($t:tt)*) => {{
        let line = format!($($t)*);
        println!("{line}");
        let _ = std::fmt::Write::write_fmt(&mut *$crate::OUT.lock().unwrap(), format_args!("{line}\n"));
    }};
}

mod tenants;
mod noisy;
mod rows;
mod scale;

struct Args {
    secs: f64,
    reps: usize,
    only: String,
    /// Workloads A and H: run only the clients whose label contains one of these (comma
    /// separated), e.g. to profile one of them.
    clients: Option<String>,
}

fn args() -> Args {
    let a: Vec<String> = std::env::args().collect();
    let get = |name: &str| a.iter().position(|x| x == name).and_then(|i| a.get(i + 1)).cloned();
    let quick = a.iter().any(|x| x == "--quick");
    Args {
        secs: get("--secs").and_then(|v| v.parse().ok()).unwrap_or(if quick { 0.5 } else { 2.0 }),
        reps: get("--reps").and_then(|v| v.parse().ok()).unwrap_or(if quick { 1 } else { 3 }),
        only: get("--only").unwrap_or_else(|| "A,B,C,D,E".into()),
        clients: get("--clients"),
    }
}

/// `callers` tasks run `op(caller)` until `secs` pass; requests per second.
async fn throughput<F, Fut>(secs: f64, callers: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..callers)
        .map(|c| {
            let (op, done) = (op.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    op(c).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Median, min and max of repeated runs.
async fn repeated<F, Fut>(reps: usize, mut run: F) -> (f64, f64, f64)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = f64>,
{
    let mut v = Vec::new();
    for _ in 0..reps {
        v.push(run().await);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// One raw session per tenant token, attached and authenticated (round robin over the
/// sockets): the floor of workload C.
async fn tenant_sessions(rc: &raw::Raw, tokens: &[AccessToken]) -> Arc<Vec<uuid::Uuid>> {
    let mut ids = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let id = uuid::Uuid::new_v4();
        rc.call(Some(i), "attach", serde_json::json!([]), Some(id)).await.unwrap();
        rc.call(Some(i), "authenticate", serde_json::json!([t.as_str()]), Some(id)).await.unwrap();
        ids.push(id);
    }
    Arc::new(ids)
}

/// `RETURN 1` on each of `sessions`, encoded once (the floor's request per session).
fn queries_on(rc: &raw::Raw, sessions: &[uuid::Uuid]) -> Arc<Vec<raw::Request>> {
    Arc::new(sessions.iter().map(|s| rc.request("query", serde_json::json!([RETURN_1]), Some(*s))).collect())
}

/// Workload B's `RETURN 1` through `pool` and the floor `raw`, interleaved rep by rep.
async fn b_gap(server: u32, args: &Args, callers: usize, pool: &Pool, raw: &Arc<raw::Raw>) -> String {
    let (mut pv, mut rv) = (Vec::new(), Vec::new());
    for _ in 0..args.reps {
        let p = pool.clone();
        pv.push(
            costed(server, args.secs, throughput(args.secs, callers, move |_| {
                let p = p.clone();
                async move { p.get().await.unwrap().query(RETURN_1, ()).await.unwrap(); }
            }))
            .await,
        );
        let (r, q) = (raw.clone(), Arc::new(raw.request("query", serde_json::json!([RETURN_1]), None)));
        rv.push(
            costed(server, args.secs, throughput(args.secs, callers, move |_| {
                let (r, q) = (r.clone(), q.clone());
                async move { r.send(None, &q).await.unwrap(); }
            }))
            .await,
        );
    }
    gap(pv, rv)
}

/// Pool vs floor, from `costed` measurements: rates, ratio, and the costs behind them.
fn gap(pool: Vec<(f64, f64, f64, f64)>, raw: Vec<(f64, f64, f64, f64)>) -> String {
    let m = |v: &[(f64, f64, f64, f64)], f: fn(&(f64, f64, f64, f64)) -> f64| median(v.iter().map(f).collect());
    let (pr, rr) = (m(&pool, |x| x.0), m(&raw, |x| x.0));
    format!(
        "pool {pr:.0} raw {rr:.0} = {:.2}x | client CPU {:.1} vs {:.1} µs | server CPU {:.1} vs {:.1} µs | writes {:.2} vs {:.2}",
        pr / rr,
        m(&pool, |x| x.1),
        m(&raw, |x| x.1),
        m(&pool, |x| x.2),
        m(&raw, |x| x.2),
        m(&pool, |x| x.3),
        m(&raw, |x| x.3)
    )
}

/// CPU time (user + system) of process `pid` so far, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`; utime and stime are fields 14 and 15 of the whole line.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

/// The pid of our child process (the test server).
fn child_pid() -> u32 {
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        if rest.split_whitespace().nth(1) == Some(me.as_str()) {
            return pid;
        }
    }
    panic!("no child process (test server) found")
}

/// Write system calls made by this process so far.
fn write_syscalls() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines().find_map(|l| l.strip_prefix("syscw: ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// Runs `f` (a throughput measurement) and returns req/s with client and server CPU µs per
/// request and client write syscalls per request.
async fn costed<Fut: Future<Output = f64>>(server: u32, secs: f64, f: Fut) -> (f64, f64, f64, f64) {
    let (c0, s0, w0) = (cpu_ticks(std::process::id()), cpu_ticks(server), write_syscalls());
    let rate = f.await;
    let (c1, s1, w1) = (cpu_ticks(std::process::id()), cpu_ticks(server), write_syscalls());
    let n = rate * secs;
    (rate, (c1 - c0) as f64 * 1e4 / n, (s1 - s0) as f64 * 1e4 / n, (w1 - w0) as f64 / n)
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

async fn sdk(url: &str) -> Surreal<Client> {
    let db = Surreal::new::<Ws>(url.trim_start_matches("ws://")).await.unwrap();
    db.signin(surrealdb::opt::auth::Root { username: "root".into(), password: "root".into() }).await.unwrap();
    db.use_ns(NS).use_db(DB).await.unwrap();
    db
}

async fn pool(url: &str, sockets: usize, sessions: usize) -> Pool {
    Pool::builder(url)
        .connections(sockets)
        .max_sessions(sessions)
        .max_sessions_per_connection(255)
        .namespace_database(NS, DB)
        .identity_credentials(Root::new("root", "root"))
        .build()
        .await
        .unwrap()
}

/// The pool's default sockets and sessions, as a default pool reports them.
async fn pool_defaults(url: &str) -> (usize, usize) {
    let p = Pool::builder(url).warm_sessions(0).build().await.unwrap();
    let s = p.status();
    p.close();
    (s.connections, s.max_size)
}

async fn raw(url: &str, sockets: usize, json: bool) -> Arc<raw::Raw> {
    let r = raw::Raw::connect(url, sockets, json).await;
    for s in 0..sockets {
        r.call(Some(s), "signin", serde_json::json!([{ "user": "root", "pass": "root" }]), None).await.unwrap();
        r.call(Some(s), "use", serde_json::json!([NS, DB]), None).await.unwrap();
    }
    Arc::new(r)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e6
}

/// CPU time (user + system) of this process so far, in µs (`getrusage`: µs resolution, where
/// `/proc`'s ticks are 10 ms).
fn self_cpu_us() -> f64 {
    let usage = self_usage();
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

fn self_usage() -> libc::rusage {
    // SAFETY: `getrusage` only writes the struct it is given.
    unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    }
}

/// What one sequential request cost the client, on average: CPU µs, voluntary context switches
/// (a thread parking: waiting for a wake-up), write system calls.
struct PerRequest {
    cpu: f64,
    switches: f64,
    writes: f64,
}

impl PerRequest {
    fn columns(&self) -> String {
        format!("{:>9.1} {:>9.2} {:>9.2}", self.cpu, self.switches, self.writes)
    }
}

/// One client's request for [`latencies`].
type LatencyOp = Box<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = ()>>>>;

/// Requests per client per turn in [`latencies`].
const ROUND: usize = 100;

/// Each client's p50 and p99 over `n` sequential requests, in µs, and its costs per request.
/// The clients take turns of [`ROUND`] requests (after 200 each to warm up), so that the
/// machine's drift over the run hits them all alike.
async fn latencies(n: usize, clients: &[(&str, LatencyOp)]) -> Vec<(f64, f64, PerRequest)> {
    for (_, op) in clients {
        for _ in 0..200 {
            op().await;
        }
    }
    let mut samples: Vec<Vec<Duration>> = clients.iter().map(|_| Vec::with_capacity(n)).collect();
    let mut costs: Vec<[f64; 3]> = vec![[0.0; 3]; clients.len()];
    for _ in 0..n.div_ceil(ROUND) {
        for (i, (_, op)) in clients.iter().enumerate() {
            let (cpu, usage, writes) = (self_cpu_us(), self_usage(), write_syscalls());
            for _ in 0..ROUND {
                let t = Instant::now();
                op().await;
                samples[i].push(t.elapsed());
            }
            let (cpu1, usage1, writes1) = (self_cpu_us(), self_usage(), write_syscalls());
            costs[i][0] += cpu1 - cpu;
            costs[i][1] += (usage1.ru_nvcsw - usage.ru_nvcsw) as f64;
            costs[i][2] += (writes1 - writes) as f64;
        }
    }
    samples
        .into_iter()
        .zip(costs)
        .map(|(mut s, c)| {
            let per = |x: f64| x / s.len() as f64;
            let cost = PerRequest { cpu: per(c[0]), switches: per(c[1]), writes: per(c[2]) };
            s.sort();
            (percentile(&s, 0.5), percentile(&s, 0.99), cost)
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    // The SDK's clone-per-request pattern attaches a server session per clone and detaches it
    // asynchronously on drop; at 256 callers it outgrows the default cap of 256 sessions per
    // socket ("Method not allowed"), so the cap is raised for every client alike.
    let server = TestServer::start_with_env(&[("SURREAL_WEBSOCKET_MAX_ATTACHED_SESSIONS", "8192")]).expect("SurrealDB test server");
    let url = server.url();
    let tokens: Vec<AccessToken> = support::setup(&url, ITEMS, 64).await;
    let tokens = Arc::new(tokens);
    say!("# surreal-pool vs official SDK 3.3.5 vs raw floor — one SurrealDB 3.3.5 (memory), loopback");
    say!("# machine: {} cores (shared with the server); client runtime: tokio multi-thread, 2 workers", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
    say!("# {} s per measurement, {} repetitions: median [min–max]", args.secs, args.reps);

    if args.only.contains('A') {
        say!("\n## A. Latency: one caller, sequential `{RETURN_1}` (µs)");
        let n = if args.reps == 1 { 1000 } else { 5000 };
        say!("# the clients take turns, {ROUND} requests each, until each has made {n} (drift hits all alike)");
        say!("# client costs per request: CPU µs (getrusage), voluntary context switches (a thread parks), write syscalls (socket writes and thread wake-ups; send/recv are not counted)");
        say!("{:<44} {:>9} {:>9} {:>9} {:>9} {:>9}", "client", "p50", "p99", "CPU µs", "switches", "writes");
        let want = |label: &str| args.clients.as_ref().is_none_or(|only| only.split(',').any(|w| label.contains(w)));
        let mut clients: Vec<(&str, LatencyOp)> = Vec::new();
        let label = "surreal-pool (checkout + query)";
        if want(label) {
            let p = pool(&url, 1, 1).await;
            clients.push((label, Box::new(move || {
                let p = p.clone();
                Box::pin(async move { p.get().await.unwrap().query(RETURN_1, ()).await.unwrap(); })
            })));
        }
        let label = "surreal-pool (one session, no checkout)";
        if want(label) {
            let conn = Connection::connect(&url).await.unwrap();
            let s = Arc::new(conn.session());
            s.signin(&Root::new("root", "root")).await.unwrap();
            clients.push((label, Box::new(move || {
                let s = s.clone();
                Box::pin(async move { s.query(RETURN_1, ()).await.unwrap(); })
            })));
        }
        let label = "official SDK";
        if want(label) {
            let db = Arc::new(sdk(&url).await);
            clients.push((label, Box::new(move || {
                let db = db.clone();
                Box::pin(async move { db.query(RETURN_1).await.unwrap().check().unwrap(); })
            })));
        }
        for (json, label) in [(false, "raw floor, CBOR"), (true, "raw floor, JSON")] {
            if want(label) {
                let r = raw(&url, 1, json).await;
                let q = Arc::new(r.request("query", serde_json::json!([RETURN_1]), None));
                clients.push((label, Box::new(move || {
                    let (r, q) = (r.clone(), q.clone());
                    Box::pin(async move { r.send(None, &q).await.unwrap(); })
                })));
            }
        }
        for ((label, _), (p50, p99, cost)) in clients.iter().zip(latencies(n, &clients).await) {
            say!("{label:<44} {p50:>9.0} {p99:>9.0} {}", cost.columns());
        }
    }

    if args.only.contains('B') || args.only.contains('Z') {
        let matrix = args.only.contains('B');
        say!("\n## B. Throughput (req/s): concurrent callers over N sockets");
        say!("{:<18} {:>7} {:>7} {:>22} {:>22} {:>22} {:>22}", "query", "sockets", "callers", "surreal-pool", "official SDK", "raw CBOR", "raw JSON");
        for (qname, q) in [("RETURN 1", RETURN_1), ("small SELECT", SELECT)] {
            for sockets in if matrix { vec![1usize, 4] } else { vec![] } {
                let sdks: Arc<Vec<Surreal<Client>>> = Arc::new(futures_util::future::join_all((0..sockets).map(|_| sdk(&url))).await);
                let rc = raw(&url, sockets, false).await;
                let rj = raw(&url, sockets, true).await;
                for callers in [1usize, 16, 256] {
                    let p = pool(&url, sockets, callers.min(255 * sockets)).await;
                    let pr = repeated(args.reps, || {
                        let p = p.clone();
                        throughput(args.secs, callers, move |_| {
                            let p = p.clone();
                            async move { p.get().await.unwrap().query(q, ()).await.unwrap(); }
                        })
                    })
                    .await;
                    let sr = repeated(args.reps, || {
                        let s = sdks.clone();
                        throughput(args.secs, callers, move |c| {
                            let s = s.clone();
                            async move { s[c % s.len()].query(q).await.unwrap().check().unwrap(); }
                        })
                    })
                    .await;
                    let mut rr = Vec::new();
                    for r in [&rc, &rj] {
                        rr.push(
                            repeated(args.reps, || {
                                let (r, req) = (r.clone(), Arc::new(r.request("query", serde_json::json!([q]), None)));
                                throughput(args.secs, callers, move |_| {
                                    let (r, req) = (r.clone(), req.clone());
                                    async move { r.send(None, &req).await.unwrap(); }
                                })
                            })
                            .await,
                        );
                    }
                    let f = |(m, lo, hi): (f64, f64, f64)| format!("{m:.0} [{lo:.0}–{hi:.0}]");
                    say!("{qname:<18} {sockets:>7} {callers:>7} {:>22} {:>22} {:>22} {:>22}", f(pr), f(sr), f(rr[0]), f(rr[1]));
                    say!("{:<34} ratios: pool/raw CBOR {:.2}x, pool/SDK {:.2}x, raw JSON/raw CBOR {:.2}x", "", pr.0 / rr[0].0, pr.0 / sr.0, rr[1].0 / rr[0].0);
                    p.close();
                }
            }
            // The pool's default configuration at 256 callers, vs the SDK (1 socket).
            let p = Pool::builder(&url).namespace_database(NS, DB).identity_credentials(Root::new("root", "root")).build().await.unwrap();
            let pr = repeated(args.reps, || {
                let p = p.clone();
                throughput(args.secs, 256, move |_| {
                    let p = p.clone();
                    async move { p.get().await.unwrap().query(q, ()).await.unwrap(); }
                })
            })
            .await;
            let db = Arc::new(sdk(&url).await);
            let sr = repeated(args.reps, || {
                let db = db.clone();
                throughput(args.secs, 256, move |_| {
                    let db = db.clone();
                    async move { db.query(q).await.unwrap().check().unwrap(); }
                })
            })
            .await;
            say!(
                "{qname:<18} default pool ({} sockets, {} sessions) vs SDK, 256 callers: {:.0} vs {:.0} req/s = {:.2}x",
                p.status().connections,
                p.status().max_size,
                pr.0,
                sr.0,
                pr.0 / sr.0
            );
        }
    }

    if args.only.contains('C') {
        say!("\n## C. Multi-tenant forwarding: 64 record users, 256 callers, each request as its user (req/s)");
        let callers = 256;
        // surreal-pool, default configuration and one sized for the load
        let defaults = pool_defaults(&url).await;
        let default_label = format!("surreal-pool default ({} sockets x {} sessions)", defaults.0, defaults.1);
        for (label, sockets, sessions) in [
            (default_label.as_str(), defaults.0, defaults.1),
            ("surreal-pool 1 socket x 128 sessions", 1, 128),
            ("surreal-pool 2 sockets x 128 sessions", 2, 128),
        ] {
            let p = Pool::builder(&url).connections(sockets).max_sessions(sessions).namespace_database(NS, DB).build().await.unwrap();
            let before = p.status();
            let r = repeated(args.reps, || {
                let (p, t) = (p.clone(), tokens.clone());
                throughput(args.secs, callers, move |c| {
                    let (p, t) = (p.clone(), t.clone());
                    async move {
                        let s = p.get_with_token(t[c % t.len()].as_str()).await.unwrap();
                        s.query(RETURN_1, ()).await.unwrap();
                    }
                })
            })
            .await;
            let after = p.status();
            let auth = (after.auth_round_trips - before.auth_round_trips) as f64 / (after.checkouts - before.checkouts) as f64;
            say!("{label:<50} {:>8.0} [{:.0}–{:.0}]   auth round trips/request {auth:.3}", r.0, r.1, r.2);
            p.close();
        }
        // the SDK's documented pattern: clone (a new server session), authenticate, query, drop
        let base = Arc::new({
            let db = Surreal::new::<Ws>(url.trim_start_matches("ws://")).await.unwrap();
            db.use_ns(NS).use_db(DB).await.unwrap();
            db
        });
        let r = repeated(args.reps, || {
            let (b, t) = (base.clone(), tokens.clone());
            throughput(args.secs, callers, move |c| {
                let (b, t) = (b.clone(), t.clone());
                async move {
                    let db = (*b).clone();
                    db.authenticate(t[c % t.len()].as_str()).await.unwrap();
                    db.query(RETURN_1).await.unwrap().check().unwrap();
                }
            })
        })
        .await;
        say!("{:<50} {:>8.0} [{:.0}–{:.0}]", "official SDK: clone + authenticate + query", r.0, r.1, r.2);
        // the floor: 64 raw sessions kept authenticated on one socket, callers share them
        for sockets in [1usize, 2] {
            let rc = raw(&url, sockets, false).await;
            let sessions = queries_on(&rc, &tenant_sessions(&rc, &tokens).await);
            let r = repeated(args.reps, || {
                let (rc, s) = (rc.clone(), sessions.clone());
                throughput(args.secs, callers, move |c| {
                    let (rc, s) = (rc.clone(), s.clone());
                    async move {
                        let i = c % s.len();
                        rc.send(Some(i), &s[i]).await.unwrap();
                    }
                })
            })
            .await;
            say!("{:<50} {:>8.0} [{:.0}–{:.0}]", format!("raw floor: 64 kept-authenticated sessions, {sockets} socket(s)"), r.0, r.1, r.2);
        }
    }

    if args.only.contains('G') {
        // The gaps of the last full run, pool and floor interleaved rep by rep (so that drift in
        // the shared machine hits both alike): a quick loop for profiling and tuning.
        say!("\n## G. Gaps: pool vs raw floor, interleaved (median of reps)");
        say!("# req/s; CPU µs per request of the client and of the server; client write syscalls per request (socket writes and thread wake-ups alike)");
        let spid = child_pid();
        let callers = 256;
        for sockets in [1usize, 4] {
            let p = pool(&url, sockets, callers.min(255 * sockets)).await;
            let rc = raw(&url, sockets, false).await;
            say!("B RETURN 1, {sockets} sockets, {callers} callers: {}", b_gap(spid, &args, callers, &p, &rc).await);
            // The floor on attached sessions, as the pool uses them (one per caller, root): what
            // the server's per-session handling costs by itself.
            let n = callers.min(255 * sockets);
            let mut ids = Vec::new();
            for i in 0..n {
                let id = uuid::Uuid::new_v4();
                rc.call(Some(i), "attach", serde_json::json!([]), Some(id)).await.unwrap();
                rc.call(Some(i), "signin", serde_json::json!([{ "user": "root", "pass": "root" }]), Some(id)).await.unwrap();
                rc.call(Some(i), "use", serde_json::json!([NS, DB]), Some(id)).await.unwrap();
                ids.push(id);
            }
            let ids = queries_on(&rc, &ids);
            let plain_query = Arc::new(rc.request("query", serde_json::json!([RETURN_1]), None));
            let (mut plain, mut attached) = (Vec::new(), Vec::new());
            for _ in 0..args.reps {
                let (r, q) = (rc.clone(), plain_query.clone());
                plain.push(costed(spid, args.secs, throughput(args.secs, callers, move |_| {
                    let (r, q) = (r.clone(), q.clone());
                    async move { r.send(None, &q).await.unwrap(); }
                })).await);
                let (r, s) = (rc.clone(), ids.clone());
                attached.push(costed(spid, args.secs, throughput(args.secs, callers, move |c| {
                    let (r, s) = (r.clone(), s.clone());
                    async move {
                        let i = c % s.len();
                        r.send(Some(i), &s[i]).await.unwrap();
                    }
                })).await);
            }
            say!("  raw floor on {n} attached sessions vs on the default session: {}", gap(attached, plain).replace("pool ", "attached ").replace(" raw ", " default "));
            p.close();
        }
        {
            // The default configuration, against the same floor.
            let p = Pool::builder(&url).namespace_database(NS, DB).identity_credentials(Root::new("root", "root")).build().await.unwrap();
            let (sockets, sessions) = (p.status().connections, p.status().max_size);
            let rc = raw(&url, sockets, false).await;
            let gap = b_gap(spid, &args, callers, &p, &rc).await;
            say!("B RETURN 1, default pool ({sockets} x {sessions}), {callers} callers: {gap}");
            p.close();
        }
        for (sockets, sessions) in [(1usize, 128usize), (2, 128)] {
            let p = Pool::builder(&url).connections(sockets).max_sessions(sessions).namespace_database(NS, DB).build().await.unwrap();
            let rc = raw(&url, sockets, false).await;
            let ids = queries_on(&rc, &tenant_sessions(&rc, &tokens).await);
            let (mut pv, mut rv) = (Vec::new(), Vec::new());
            for _ in 0..args.reps {
                let (p2, t2) = (p.clone(), tokens.clone());
                pv.push(costed(spid, args.secs, throughput(args.secs, callers, move |c| {
                    let (p, t) = (p2.clone(), t2.clone());
                    async move {
                        let s = p.get_with_token(t[c % t.len()].as_str()).await.unwrap();
                        s.query(RETURN_1, ()).await.unwrap();
                    }
                })).await);
                let (r2, s2) = (rc.clone(), ids.clone());
                rv.push(costed(spid, args.secs, throughput(args.secs, callers, move |c| {
                    let (rc, s) = (r2.clone(), s2.clone());
                    async move {
                        let i = c % s.len();
                        rc.send(Some(i), &s[i]).await.unwrap();
                    }
                })).await);
            }
            let st = p.status();
            say!("C {sockets} socket(s) x {sessions} sessions: {} | auth/checkout {:.4}", gap(pv, rv), st.auth_round_trips as f64 / st.checkouts as f64);
            p.close();
        }
    }

    if args.only.contains('H') {
        rows::big_results(&url, &args).await;
    }

    if args.only.contains('T') {
        tenants::curve(&url, &args, &tokens).await;
    }

    if args.only.contains('K') {
        tenants::hostile(&url, &args, &tokens).await;
    }

    if args.only.contains('N') {
        noisy::noisy(&url, &args, &tokens).await;
    }

    if args.only.contains('S') {
        scale::scale(&url, &args).await;
    }

    if args.only.contains('D') {
        say!("\n## D. Reconnect: proxy cut → first successful authenticated query (ms)");
        let proxy = proxy::Proxy::start(server.port()).await;
        let purl = proxy.url();
        let p = Pool::builder(&purl).connections(1).max_sessions(2).namespace_database(NS, DB).build().await.unwrap();
        let db = Surreal::new::<Ws>(purl.trim_start_matches("ws://")).await.unwrap();
        db.use_ns(NS).use_db(DB).await.unwrap();
        db.authenticate(tokens[0].as_str()).await.unwrap();
        for (label, is_pool) in [("surreal-pool", true), ("official SDK", false)] {
            let mut times = Vec::new();
            for _ in 0..args.reps.max(3) {
                // warm
                if is_pool {
                    p.get_with_token(tokens[0].clone()).await.unwrap().query(RETURN_1, ()).await.unwrap();
                } else {
                    db.query(RETURN_1).await.unwrap().check().unwrap();
                }
                let cut = Instant::now();
                proxy.cut();
                loop {
                    let ok = if is_pool {
                        match tokio::time::timeout(Duration::from_millis(500), async {
                            let s = p.get_with_token(tokens[0].clone()).await?;
                            let who: String = s.query("RETURN <string> $auth.id", ()).await?.take(0)?;
                            Ok::<_, surreal_pool::Error>(who)
                        })
                        .await
                        {
                            Ok(Ok(who)) => who.starts_with("user:"),
                            _ => false,
                        }
                    } else {
                        match tokio::time::timeout(Duration::from_millis(500), db.query("RETURN <string> $auth.id")).await {
                            Ok(Ok(mut r)) => r.take::<Option<String>>(0).ok().flatten().is_some_and(|w| w.starts_with("user:")),
                            _ => false,
                        }
                    };
                    if ok {
                        break;
                    }
                    assert!(cut.elapsed() < Duration::from_secs(30), "{label} did not recover within 30 s");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                times.push(cut.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(|a, b| a.partial_cmp(b).unwrap());
            say!("{label:<20} median {:.1} ms [{:.1}–{:.1}]", times[times.len() / 2], times[0], times[times.len() - 1]);
        }
    }

    if args.only.contains('E') {
        say!("\n## E. Client memory (resident set, this process)");
        let n = 50;
        let before = rss_bytes();
        let mut conns = Vec::new();
        for _ in 0..n {
            conns.push(Connection::connect(&url).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        say!("{:<44} {:>8.1} KiB", "surreal-pool: per idle connection", (rss_bytes().saturating_sub(before)) as f64 / n as f64 / 1024.0);
        let before = rss_bytes();
        let mut sdks = Vec::new();
        for _ in 0..n {
            sdks.push(Surreal::new::<Ws>(url.trim_start_matches("ws://")).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        say!("{:<44} {:>8.1} KiB", "official SDK: per idle connection", (rss_bytes().saturating_sub(before)) as f64 / n as f64 / 1024.0);
        let small = pool(&url, 4, 4).await;
        let before = rss_bytes();
        let big = pool(&url, 4, 1000).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        say!("{:<44} {:>8.2} KiB", "surreal-pool: per idle pooled session", (rss_bytes().saturating_sub(before)) as f64 / 996.0 / 1024.0);
        drop((conns, sdks, small, big));
    }

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let _ = std::fs::create_dir_all(&dir);
    // A full run is `latest.txt`; a partial one (`--only`) is named after its workloads.
    let name = if args.only == "A,B,C,D,E" { "latest.txt".to_string() } else { format!("only-{}.txt", args.only.replace(',', "")) };
    // A subset of the clients (profiling) does not replace a whole run's output.
    let name = if args.clients.is_some() { name.replace(".txt", "-subset.txt") } else { name };
    let _ = std::fs::write(dir.join(name), OUT.lock().unwrap().as_str());
}
