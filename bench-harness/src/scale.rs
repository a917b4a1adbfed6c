//! Workload S: how the cost of a checkout grows with the pool's sessions (128 to 4,096 over 4
//! to 16 sockets) and with the tenants it knows (100 to 100,000 distinct tokens, Zipf
//! popularity); and the client memory per idle session and per remembered tenant. See
//! BENCHMARKS.md.
//!
//! The tokens are record users' tokens of the access method `scale`, whose HS512 key the harness
//! knows, so that it mints 100,000 of them locally in a second instead of signing up 100,000
//! users (an argon2 hash each). The server verifies them as any token it issued: signature,
//! `exp`, access method; it does not read the user's record on `authenticate`
//! (`surrealdb-core` 3.3.5, `iam/verify.rs`), so no rows are needed (creating 100,000 took the
//! server 16 s), and `RETURN 1` reads none (`$auth`, the record, is `NONE`).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha512;
use surreal_pool::{AccessToken, Connection, Pool, PoolStatus, Root};

use crate::tenants::{Order, Picker};
use crate::{child_pid, costed, median, rss_bytes, throughput, Args, DB, NS, RETURN_1};

/// The key of the access method `scale` (HS512): known here, so tokens are minted locally.
const KEY: &str = "surreal-pool-bench-scale-hs512-key-0123456789abcdef0123456789abcdef";

/// Sessions and sockets of the pools of S1; at most 255 sessions per socket (the pool's limit,
/// since issue 16: a SurrealDB socket attaches 255 besides its own), so "1,024 over 4" and
/// "4,096 over 16" are 1,020 and 4,080 (the figures in BENCHMARKS.md before that change were
/// taken at 256 a socket).
const POOLS: [(usize, usize); 4] = [(128, 4), (1020, 4), (1024, 16), (4080, 16)];

/// Known tenants in S2.
const TENANTS: [usize; 3] = [100, 10_000, 100_000];

/// Tenants of the tenant rows of S1.
const FEW: usize = 64;

/// Callers of the concurrent rows.
const CALLERS: usize = 256;

/// Fingerprints the pool remembers per generation (`REMEMBERED_TOKENS` in `pool/table.rs`).
const GENERATION: usize = 16_384;

/// A record user's token for user `user:s{i}`, as the server issues them (HS512, `iss`,
/// `jti`, `NS`/`DB`/`AC`/`ID`), valid for two hours.
fn mint(i: usize, now: i64) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(r#"{"typ":"JWT","alg":"HS512"}"#);
    let claims = serde_json::json!({
        "iat": now, "nbf": now, "exp": now + 7200, "iss": "SurrealDB", "jti": uuid::Uuid::new_v4().to_string(),
        "NS": NS, "DB": DB, "AC": "scale", "ID": format!("user:s{i}"),
    });
    let signed = format!("{header}.{}", b64.encode(claims.to_string()));
    let mut mac = Hmac::<Sha512>::new_from_slice(KEY.as_bytes()).expect("any key length");
    mac.update(signed.as_bytes());
    format!("{signed}.{}", b64.encode(mac.finalize().into_bytes()))
}

/// Defines the access method and checks that a minted token authenticates as its user.
async fn define_access(url: &str) {
    let conn = Connection::connect(url).await.unwrap();
    let root = conn.session();
    root.signin(&Root::new("root", "root")).await.unwrap();
    let define = format!(
        "USE NS {NS} DB {DB}; DEFINE ACCESS IF NOT EXISTS scale ON DATABASE TYPE RECORD \
         WITH JWT ALGORITHM HS512 KEY '{KEY}' DURATION FOR TOKEN 2h, FOR SESSION 12h;"
    );
    root.query(&define, ()).await.unwrap().check().unwrap();
    let s = conn.attach().await.unwrap();
    s.authenticate(mint(7, now())).await.expect("a minted token authenticates");
    // `$auth` is the record itself, which does not exist: the session's record id is in `$token`.
    let who: Vec<String> = s.query("RETURN [<string> $token.ID, <string> $access]", ()).await.unwrap().take(0).unwrap();
    assert_eq!(who, ["user:s7", "scale"]);
    s.detach().await.unwrap();
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Tokens `first..first + n`, minted in parallel on blocking threads.
async fn tokens(first: usize, n: usize) -> Arc<Vec<String>> {
    let now = now();
    let chunk = 10_000;
    let parts = (first..first + n).step_by(chunk).map(|start| {
        let end = (start + chunk).min(first + n);
        tokio::task::spawn_blocking(move || (start..end).map(|i| mint(i, now)).collect::<Vec<_>>())
    });
    let mut all = Vec::with_capacity(n);
    for part in futures_util::future::join_all(parts).await {
        all.extend(part.unwrap());
    }
    Arc::new(all)
}

/// A pool of `sessions` over `sockets` (an even share per socket), with root as its default
/// identity (anonymous may not query), and no session created yet.
async fn pool(url: &str, sockets: usize, sessions: usize) -> Pool {
    Pool::builder(url)
        .connections(sockets)
        .max_sessions(sessions)
        .max_sessions_per_connection(sessions.div_ceil(sockets))
        .warm_sessions(0)
        .namespace_database(NS, DB)
        .identity_credentials(Root::new("root", "root"))
        .build()
        .await
        .unwrap()
}

/// What one row measured: per operation, over its reps.
struct Row {
    rate: (f64, f64, f64),
    client_us: f64,
    server_us: f64,
    auth: f64,
}

/// Runs `op` with `callers` for `args.reps` reps (costed: client and server CPU per op) and
/// counts the pool's authenticates per checkout over them.
async fn row<F, Fut>(spid: u32, args: &Args, p: &Pool, callers: usize, op: F) -> Row
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let before = p.status();
    let mut runs = Vec::new();
    for _ in 0..args.reps {
        runs.push(costed(spid, args.secs, throughput(args.secs, callers, op.clone())).await);
    }
    let after = p.status();
    let mut rates: Vec<f64> = runs.iter().map(|r| r.0).collect();
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Row {
        rate: (median(rates.clone()), rates[0], rates[rates.len() - 1]),
        client_us: median(runs.iter().map(|r| r.1).collect()),
        server_us: median(runs.iter().map(|r| r.2).collect()),
        auth: auth_per_checkout(&before, &after),
    }
}

fn auth_per_checkout(before: &PoolStatus, after: &PoolStatus) -> f64 {
    let checkouts = (after.checkouts - before.checkouts).max(1);
    (after.auth_round_trips - before.auth_round_trips) as f64 / checkouts as f64
}

fn say_header() {
    say!(
        "{:>8} {:>7} {:<58} {:>7} {:>26} {:>9} {:>9} {:>9} {:>8}",
        "sessions", "sockets", "op", "callers", "ops/s median [min–max]", "ns/op", "client µs", "server µs", "auth/op"
    );
}

fn say_row(sessions: &str, sockets: usize, op: &str, callers: usize, r: &Row) {
    let rate = format!("{:.0} [{:.0}–{:.0}]", r.rate.0, r.rate.1, r.rate.2);
    say!(
        "{sessions:>8} {sockets:>7} {op:<58} {callers:>7} {rate:>26} {:>9.0} {:>9.2} {:>9.2} {:>8.3}",
        1e9 / r.rate.0,
        r.client_us,
        r.server_us,
        r.auth
    );
}

/// Checkout and drop with no request (`get_with_token(tokens[pick])`, or `get` without tokens):
/// the pool's own cost, no I/O on an affinity hit. The token is a clone of one `AccessToken`
/// value, whose checks, claims and hash are computed once: a fresh string costs the same
/// per request whatever the pool's size (several µs of JWT parsing and hashing), which would
/// hide the pool's part.
fn checkout_only(p: &Pool, tokens: Option<(Arc<Vec<AccessToken>>, Arc<Picker>)>) -> impl Fn(usize) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync + Clone + 'static {
    let p = p.clone();
    move |c| {
        let p = p.clone();
        let token = tokens.as_ref().map(|(t, pk)| t[pk.pick(c)].clone());
        Box::pin(async move {
            drop(match token {
                Some(t) => p.get_with_token(t).await.unwrap(),
                None => p.get().await.unwrap(),
            });
        })
    }
}

/// The first `n` tokens as `AccessToken` values (see [`checkout_only`]).
fn values(tokens: &[String], n: usize) -> Arc<Vec<AccessToken>> {
    Arc::new(tokens[..n].iter().map(|t| AccessToken::new(t.as_str())).collect())
}

/// Checkout and `RETURN 1`.
fn checkout_query(p: &Pool, tokens: Option<(Arc<Vec<String>>, Arc<Picker>)>) -> impl Fn(usize) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync + Clone + 'static {
    let p = p.clone();
    move |c| {
        let p = p.clone();
        let token = tokens.as_ref().map(|(t, pk)| t[pk.pick(c)].clone());
        Box::pin(async move {
            let s = match token {
                Some(t) => p.get_with_token(t.as_str()).await.unwrap(),
                None => p.get().await.unwrap(),
            };
            s.query(RETURN_1, ()).await.unwrap();
        })
    }
}

/// Each token once, `callers` at a time (the pool learns them; each is one authenticate).
async fn learn(p: &Pool, tokens: &Arc<Vec<String>>, order: impl Iterator<Item = usize>, callers: usize) {
    let order: Vec<usize> = order.collect();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let order = Arc::new(order);
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (p, t, order, next) = (p.clone(), tokens.clone(), order.clone(), next.clone());
            tokio::spawn(async move {
                while let Some(&i) = order.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                    drop(p.get_with_token(t[i].as_str()).await.unwrap());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

extern "C" {
    /// glibc: gives free heap memory back to the system (all arenas).
    fn malloc_trim(pad: usize) -> i32;
}

/// The resident set after freed memory is given back, so that a difference of two readings is
/// what is still allocated, not what a transient peak left in the allocator's free lists.
fn rss_trimmed() -> u64 {
    // SAFETY: malloc_trim only releases free memory; it takes no pointer.
    unsafe { malloc_trim(0) };
    rss_bytes()
}

/// Fingerprints remembered after `n` distinct tokens were accepted once each, in order: two
/// generations of [`GENERATION`] (the current one becomes the previous one when full).
fn remembered(n: usize) -> usize {
    if n <= GENERATION {
        n
    } else {
        GENERATION + (n - 1) % GENERATION + 1
    }
}

pub async fn scale(url: &str, args: &Args) {
    let spid = child_pid();
    define_access(url).await;
    let most = POOLS.iter().map(|p| p.0).max().unwrap() + FEW;
    let all = tokens(0, TENANTS[TENANTS.len() - 1].max(most)).await;

    say!("\n## S. How cost grows: checkout + `{RETURN_1}` as the pool's sessions and its known tenants grow");
    say!("# server: SURREAL_WEBSOCKET_MAX_ATTACHED_SESSIONS=8192 (its default, 256, counts the socket's own session, so 256 attached sessions need it raised)");
    say!("# tokens: record users of an access method with a known HS512 key, minted by the harness; each request forwards a fresh copy of its token string,");
    say!("#   but in the rows marked * (1 caller, no query) a clone of one AccessToken value, whose checks and hash are cached: the pool's own cost");
    say!("# ops/s: median [min–max] of the reps; ns/op = 1e9 / median ops/s (with 1 caller: the wall time of one op);");
    say!("#   client µs / server µs = CPU time of this process / of the server per op (from /proc, 10 ms ticks); auth/op = authenticates per checkout");

    // S1: the pools, all built first and kept, so that each memory delta is fresh allocation.
    say!("\n### S1. Sessions: pools of 128 to 4,096 idle sessions over 4 to 16 sockets (default identity: root)");
    let mut pools = Vec::new();
    say!("# KiB / idle session: resident-set growth (after malloc_trim) from creating them all, over their number; one per socket made before");
    say!("{:>8} {:>7} {:>11} {:>18} {:>13}", "sessions", "sockets", "per socket", "KiB / idle session", "create all, s");
    for (sessions, sockets) in POOLS {
        let p = pool(url, sockets, sessions).await;
        // One session per socket first (sessions go to the socket with the fewest), so that
        // each socket's own buffers are allocated before the first reading.
        drop(futures_util::future::join_all((0..sockets).map(|_| p.get())).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rss0 = rss_trimmed();
        let started = std::time::Instant::now();
        // Every session at once (each new one is created), then all back: idle, in the default
        // identity.
        let held = futures_util::future::join_all((0..sessions).map(|_| p.get())).await;
        let created = started.elapsed();
        drop(held.into_iter().map(Result::unwrap).collect::<Vec<_>>());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let per = rss_trimmed().saturating_sub(rss0) as f64 / (sessions - sockets) as f64 / 1024.0;
        let st = p.status();
        assert_eq!((st.size, st.available), (sessions, sessions), "every session created and idle");
        say!("{sessions:>8} {sockets:>7} {:>11} {per:>18.2} {:>13.2}", sessions.div_ceil(sockets), created.as_secs_f64());
        pools.push((sessions, sockets, p));
    }
    say!("");
    say_header();
    for (sessions, sockets, p) in &pools {
        let (sessions, sockets) = (*sessions, *sockets);
        let label = sessions.to_string();
        let r = row(spid, args, p, 1, checkout_only(p, None)).await;
        say_row(&label, sockets, "get + drop (default identity, every one a hit)", 1, &r);
        let r = row(spid, args, p, CALLERS, checkout_query(p, None)).await;
        say_row(&label, sockets, "get + RETURN 1", CALLERS, &r);
        // 64 tenants: each holds a session after one checkout, then every checkout is a hit.
        let few = Arc::new(all[..FEW].to_vec());
        learn(p, &few, 0..FEW, 1).await;
        let rr = Some((values(&few, FEW), Arc::new(Picker::new(Order::RoundRobin, FEW, 1))));
        let r = row(spid, args, p, 1, checkout_only(p, rr)).await;
        say_row(&label, sockets, &format!("get_with_token + drop, {FEW} tenants round robin (hits)*"), 1, &r);
        // Caller c forwards tenant c mod 64 (as in workload C): 4 callers per tenant.
        let per_caller = Some((few.clone(), Arc::new(Picker::new(Order::PerCaller, FEW, CALLERS))));
        let r = row(spid, args, p, CALLERS, checkout_query(p, per_caller)).await;
        say_row(&label, sockets, &format!("get_with_token + RETURN 1, {FEW} tenants, caller mod {FEW}"), CALLERS, &r);
        // More tenants than sessions, round robin: every checkout re-purposes the least
        // recently used session (the victim) and authenticates it.
        let many = sessions + FEW;
        let cycle = Arc::new(all[..many].to_vec());
        learn(p, &cycle, 0..many, 1).await;
        let r = row(spid, args, p, 1, checkout_query(p, Some((cycle.clone(), Arc::new(Picker::new(Order::RoundRobin, many, 1)))))).await;
        say_row(&label, sockets, &format!("get_with_token + RETURN 1, {many} tenants round robin (misses)"), 1, &r);
    }
    for (.., p) in pools {
        p.close();
    }

    // S2: the tenants the pool knows.
    say!("\n### S2. Known tenants: 100 to 100,000 distinct tokens, Zipf s=1 popularity, one pool of 4 sockets x 128 sessions each");
    say!("# learn: each token checked out once (one authenticate each; tokens not yet accepted go one at a time), least popular first;");
    say!("#   remembered = accepted fingerprints kept ({GENERATION} per generation, two generations); KiB = resident-set growth over the learning");
    say!("{:>8} {:>10} {:>10} {:>12} {:>20}", "tenants", "learn, s", "remembered", "RSS growth KiB", "bytes / remembered");
    let mut learnt = Vec::new();
    for n in TENANTS {
        let p = pool(url, 4, 128).await;
        drop(futures_util::future::join_all((0..128).map(|_| p.get())).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rss0 = rss_trimmed();
        let started = std::time::Instant::now();
        learn(&p, &all, (0..n).rev(), 16).await;
        let took = started.elapsed();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let grown = rss_trimmed().saturating_sub(rss0) as f64;
        let kept = remembered(n);
        say!("{n:>8} {:>10.1} {kept:>10} {:>14.0} {:>20.1}", took.as_secs_f64(), grown / 1024.0, grown / kept as f64);
        learnt.push((n, p));
    }
    say!("");
    say_header();
    for (n, p) in &learnt {
        let zipf = Some((all.clone(), Arc::new(Picker::new(Order::Zipf(1.0), *n, CALLERS))));
        let r = row(spid, args, p, CALLERS, checkout_query(p, zipf)).await;
        say_row("128", 4, &format!("get_with_token + RETURN 1, {n} tenants zipf s=1"), CALLERS, &r);
        // The 16 most asked tenants hold sessions: checkouts that are hits, among many known.
        let hot = Some((values(&all, 16), Arc::new(Picker::new(Order::RoundRobin, 16, 1))));
        let r = row(spid, args, p, 1, checkout_only(p, hot)).await;
        say_row("128", 4, &format!("get_with_token + drop, 16 hottest of {n} known (hits)*"), 1, &r);
    }
    for (_, p) in learnt {
        p.close();
    }
}
