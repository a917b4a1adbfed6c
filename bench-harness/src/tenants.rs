//! Workloads T and K: more tenants than sessions (the curve of authenticates per request), and
//! hostile tokens mixed among hot tenants' requests. See BENCHMARKS.md.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use surreal_pool::{AccessToken, Connection, Pool, PoolStatus, Record, Root};
use surrealdb::engine::remote::ws::{Client, Ws};
use surrealdb::Surreal;

use crate::{percentile, support, throughput, Args, DB, NS, RETURN_1};

/// splitmix64 on a shared state: a deterministic stream per caller, lock-free.
fn next(state: &AtomicU64) -> u64 {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut z = state.fetch_add(GAMMA, Ordering::Relaxed).wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(state: &AtomicU64) -> f64 {
    (next(state) >> 11) as f64 / (1u64 << 53) as f64
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Order {
    Uniform,
    /// Tenant k (0-based) is asked with probability ∝ 1/(k+1)^s.
    Zipf(f64),
    /// One shared counter: tenant 0, 1, …, n−1, 0, … across all callers.
    RoundRobin,
    /// Caller c always forwards tenant c mod n (tenants dealt round robin to callers, as in
    /// workload C).
    PerCaller,
}

impl Order {
    fn name(self) -> String {
        match self {
            Order::Uniform => "uniform".into(),
            Order::Zipf(s) => format!("zipf s={s}"),
            Order::RoundRobin => "round robin".into(),
            Order::PerCaller => "caller mod n".into(),
        }
    }
}

/// Which tenant each request is for: per-caller deterministic streams (fixed seeds).
pub(crate) struct Picker {
    order: Order,
    n: usize,
    /// Cumulative probabilities (Zipf).
    cdf: Vec<f64>,
    counter: AtomicUsize,
    rng: Vec<AtomicU64>,
}

impl Picker {
    pub(crate) fn new(order: Order, n: usize, callers: usize) -> Self {
        let weights: Vec<f64> = match order {
            Order::Zipf(s) => (1..=n).map(|k| 1.0 / (k as f64).powf(s)).collect(),
            _ => vec![1.0; n],
        };
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cdf = weights.iter().map(|w| {
            acc += w / total;
            acc
        }).collect();
        let rng = (0..callers).map(|c| AtomicU64::new(0x5EED_0000 + c as u64 * 0x1_0000_0001)).collect();
        Picker { order, n, cdf, counter: AtomicUsize::new(0), rng }
    }

    pub(crate) fn pick(&self, caller: usize) -> usize {
        match self.order {
            Order::RoundRobin => self.counter.fetch_add(1, Ordering::Relaxed) % self.n,
            Order::PerCaller => caller % self.n,
            Order::Uniform => (next(&self.rng[caller]) % self.n as u64) as usize,
            Order::Zipf(_) => {
                let u = unit(&self.rng[caller]);
                self.cdf.partition_point(|&c| c < u).min(self.n - 1)
            }
        }
    }

    /// The share of requests that go to the `k` most asked tenants.
    fn top_share(&self, k: usize) -> f64 {
        match self.order {
            Order::Zipf(_) => self.cdf[k.min(self.n) - 1],
            _ => (k as f64 / self.n as f64).min(1.0),
        }
    }
}

/// The SDK's base client for the clone-per-request pattern (no identity of its own).
async fn sdk_base(url: &str) -> Surreal<Client> {
    let db = Surreal::new::<Ws>(url.trim_start_matches("ws://")).await.unwrap();
    db.use_ns(NS).use_db(DB).await.unwrap();
    db
}

/// Median, min and max.
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Counter differences.
fn delta(before: &PoolStatus, after: &PoolStatus) -> (u64, u64, u64, u64) {
    (
        after.checkouts - before.checkouts,
        after.auth_round_trips - before.auth_round_trips,
        after.affinity_hits - before.affinity_hits,
        after.resets - before.resets,
    )
}

/// Workload T: 16 pooled sessions, tenants / sessions from 0.5 to 10, each request forwards a
/// fresh copy of its tenant's token; beside it the SDK's clone + authenticate + query.
pub async fn curve(url: &str, args: &Args, tokens: &[AccessToken]) {
    const SESSIONS: usize = 16;
    const SOCKETS: usize = 4;
    const CALLERS: [usize; 2] = [8, 64];
    const MAX_TENANTS: usize = 160;
    let mut all = tokens.to_vec();
    if all.len() < MAX_TENANTS {
        all.extend(support::signup(url, all.len(), MAX_TENANTS - all.len()).await);
    }
    let all = Arc::new(all);
    let sdks: Arc<Vec<Surreal<Client>>> = Arc::new(futures_util::future::join_all((0..SOCKETS).map(|_| sdk_base(url))).await);

    say!("\n## T. More tenants than sessions: {SESSIONS} sessions on {SOCKETS} sockets, `{RETURN_1}` as the request's record user");
    say!("# each request picks a tenant (fixed seeds) and forwards a fresh copy of its token string; t/s = tenants / sessions");
    say!("# orders: uniform; zipf s=1 (tenant k asked ∝ 1/k); round robin = one counter shared by all callers (0, 1, …, n-1, 0, …);");
    say!("#   caller mod n = caller c always forwards tenant c mod n (as in workload C)");
    say!("# surreal-pool: get_with_token + query; counters over all reps of the row: auth/req = authenticate round trips per request,");
    say!("#   hits/req = affinity hits (no round trip) per request, resets; top-{SESSIONS} share = requests that went to the {SESSIONS} most asked tenants");
    say!("# official SDK: clone + authenticate + query, callers spread over {SOCKETS} clients (one socket each): 1 authenticate per request by construction");
    say!("# req/s: median [min–max] over the reps, pool and SDK alternating rep by rep; a fresh pool per row");
    say!(
        "{:>7} {:>5} {:<12} {:>7} {:>22} {:>8} {:>8} {:>6} {:>8} {:>22} {:>8}",
        "tenants", "t/s", "order", "callers", "surreal-pool req/s", "auth/req", "hits/req", "resets", format!("top-{SESSIONS}"), "official SDK req/s", "pool/SDK"
    );
    // Callers: 8 leave sessions idle (the choice of the session to re-purpose decides), 64
    // saturate the pool (which waiter gets a returned session decides).
    let mut points = Vec::new();
    for callers in CALLERS {
        for order in [Order::Uniform, Order::Zipf(1.0)] {
            for tenants in [8usize, 16, 32, 64, 160] {
                points.push((tenants, order, callers));
            }
        }
    }
    for callers in CALLERS {
        points.push((40, Order::RoundRobin, callers));
    }
    points.push((40, Order::PerCaller, 40));
    points.push((40, Order::PerCaller, 64));
    for (tenants, order, callers) in points {
        let p = Pool::builder(url).connections(SOCKETS).max_sessions(SESSIONS).namespace_database(NS, DB).build().await.unwrap();
        let picker = Arc::new(Picker::new(order, tenants, callers));
        let before = p.status();
        // The SDK sees the same tenant streams; pool and SDK alternate rep by rep, so that the
        // drift of the shared machine hits both alike.
        let sdk_picker = Arc::new(Picker::new(order, tenants, callers));
        let (mut pv, mut sv) = (Vec::new(), Vec::new());
        for _ in 0..args.reps {
            let (p, t, pk) = (p.clone(), all.clone(), picker.clone());
            pv.push(
                throughput(args.secs, callers, move |c| {
                    let (p, t) = (p.clone(), t.clone());
                    let i = pk.pick(c);
                    async move {
                        let s = p.get_with_token(t[i].as_str()).await.unwrap();
                        s.query(RETURN_1, ()).await.unwrap();
                    }
                })
                .await,
            );
            let (b, t, pk) = (sdks.clone(), all.clone(), sdk_picker.clone());
            sv.push(
                throughput(args.secs, callers, move |c| {
                    let (b, t) = (b.clone(), t.clone());
                    let i = pk.pick(c);
                    async move {
                        let db = b[c % b.len()].clone();
                        db.authenticate(t[i].as_str()).await.unwrap();
                        db.query(RETURN_1).await.unwrap().check().unwrap();
                    }
                })
                .await,
            );
        }
        let (requests, auth, hits, resets) = delta(&before, &p.status());
        p.close();
        let top = picker.top_share(SESSIONS);
        let (pr, sr) = (spread(pv), spread(sv));
        let f = |(m, lo, hi): (f64, f64, f64)| format!("{m:.0} [{lo:.0}–{hi:.0}]");
        say!(
            "{tenants:>7} {:>5} {:<12} {callers:>7} {:>22} {:>8.3} {:>8.3} {resets:>6} {top:>8.3} {:>22} {:>7.2}x",
            format!("{}", tenants as f64 / SESSIONS as f64),
            order.name(),
            f(pr),
            auth as f64 / requests as f64,
            hits as f64 / requests as f64,
            f(sr),
            pr.0 / sr.0
        );
    }
}

/// One request of workload K.
enum Req {
    /// A hot tenant's valid token (index).
    Hot(usize),
    /// A token the server refuses.
    Bad(String),
}

#[derive(Clone, Copy, PartialEq)]
enum Bad {
    Garbage,
    BadSignature,
    Expired,
    Mixed,
}

impl Bad {
    fn name(self) -> &'static str {
        match self {
            Bad::Garbage => "garbage",
            Bad::BadSignature => "bad signature",
            Bad::Expired => "expired",
            Bad::Mixed => "mixed",
        }
    }
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `token` (a real JWT) with every signature character but the last replaced by another one
/// (the last may carry padding bits): same header and claims, a signature that only the server
/// can refuse. `seed` varies the bytes, so that each bad token is new.
fn bad_signature(token: &str, seed: u64) -> String {
    let (signed, sig) = token.rsplit_once('.').expect("a JWT");
    let state = AtomicU64::new(seed);
    let n = sig.len();
    let flipped: String = sig
        .bytes()
        .enumerate()
        .map(|(i, c)| {
            if i + 1 == n {
                return c as char;
            }
            let at = B64URL.iter().position(|&b| b == c).expect("base64url signature");
            B64URL[(at + 1 + (next(&state) % 63) as usize) % 64] as char
        })
        .collect();
    format!("{signed}.{flipped}")
}

/// What one run of a K sequence measured.
struct KRun {
    checkouts: u64,
    auth: u64,
    resets: u64,
    /// Hot checkouts that were not affinity hits: each made one `authenticate`.
    hot_auth: u64,
    /// With one caller: the sum of the pool's authenticate counter over the hot requests alone.
    hot_auth_sequential: Option<u64>,
    hot_latency: Vec<Duration>,
    /// Bad tokens the pool accepted (should be none), and other errors.
    accepted: usize,
    errors: usize,
}

async fn k_run(url: &str, seq: Arc<Vec<Req>>, hot: Arc<Vec<String>>, callers: usize) -> KRun {
    let p = Pool::builder(url).connections(1).max_sessions(4).namespace_database(NS, DB).build().await.unwrap();
    let before = p.status();
    let next_req = Arc::new(AtomicUsize::new(0));
    let latency = Arc::new(Mutex::new(Vec::new()));
    let (accepted, errors, hot_seq) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicU64::new(0)));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (p, seq, hot, next_req, latency) = (p.clone(), seq.clone(), hot.clone(), next_req.clone(), latency.clone());
            let (accepted, errors, hot_seq) = (accepted.clone(), errors.clone(), hot_seq.clone());
            tokio::spawn(async move {
                loop {
                    let i = next_req.fetch_add(1, Ordering::Relaxed);
                    let Some(req) = seq.get(i) else { break };
                    match req {
                        Req::Hot(t) => {
                            let a0 = p.status().auth_round_trips;
                            let started = Instant::now();
                            let s = p.get_with_token(hot[*t].as_str()).await.unwrap();
                            s.query(RETURN_1, ()).await.unwrap();
                            drop(s);
                            latency.lock().unwrap().push(started.elapsed());
                            hot_seq.fetch_add(p.status().auth_round_trips - a0, Ordering::Relaxed);
                        }
                        Req::Bad(token) => match p.get_with_token(token.as_str()).await {
                            Ok(_) => {
                                accepted.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) if e.is_auth() => {}
                            Err(_) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        },
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let (checkouts, auth, hits, resets) = delta(&before, &p.status());
    p.close();
    let hot_requests = seq.iter().filter(|r| matches!(r, Req::Hot(_))).count() as u64;
    let mut hot_latency = std::mem::take(&mut *latency.lock().unwrap());
    hot_latency.sort();
    KRun {
        checkouts,
        auth,
        resets,
        // A bad token never gets an affinity hit: no session is ever authenticated as it.
        hot_auth: hot_requests - hits,
        hot_auth_sequential: (callers == 1).then(|| hot_seq.load(Ordering::Relaxed)),
        hot_latency,
        accepted: accepted.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
    }
}

/// Workload K: 3 hot record users on a pool of 4 sessions (1 socket), 150 hot requests with N
/// bad tokens interleaved at fixed random positions.
pub async fn hostile(url: &str, args: &Args, tokens: &[AccessToken]) {
    const HOT: usize = 3;
    const HOT_REQUESTS: usize = 150;
    let hot: Arc<Vec<String>> = Arc::new(tokens[..HOT].iter().map(|t| t.as_str().to_owned()).collect());
    // Expired tokens: the hot users signed in through an access method whose tokens last 1 s.
    let conn = Connection::connect(url).await.unwrap();
    let root = conn.session();
    root.signin(&Root::new("root", "root")).await.unwrap();
    root.query(
        "USE NS bench DB bench; DEFINE ACCESS IF NOT EXISTS short_lived ON DATABASE TYPE RECORD
            SIGNIN ( SELECT * FROM user WHERE email = $email AND crypto::argon2::compare(pass, $password) )
            DURATION FOR TOKEN 1s, FOR SESSION 12h;",
        (),
    )
    .await
    .unwrap()
    .check()
    .unwrap();
    let mut expired = Vec::new();
    for i in 0..3 * HOT {
        let s = conn.attach().await.unwrap();
        let vars = serde_json::json!({ "email": format!("u{}@bench", i % HOT), "password": "pw" });
        expired.push(s.signin(&Record::new(NS, DB, "short_lived", vars)).await.unwrap().access.as_str().to_owned());
        s.detach().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let now = chrono_now();
    assert!(expired.iter().all(|t| AccessToken::new(t.as_str()).expires_at().is_some_and(|e| e < now)), "short-lived tokens not expired yet");

    let bad_token = |kind: Bad, j: usize| -> String {
        let kind = if kind == Bad::Mixed { [Bad::Garbage, Bad::BadSignature, Bad::Expired][j % 3] } else { kind };
        match kind {
            Bad::Garbage => format!("not-a-jwt-{j}"),
            Bad::BadSignature => bad_signature(&hot[j % HOT], 0xBAD_5EED + j as u64),
            Bad::Expired => expired[j % expired.len()].clone(),
            Bad::Mixed => unreachable!(),
        }
    };
    // The hot requests in round-robin order, with the bad ones at positions fixed by a seed.
    let sequence = |kind: Bad, n: usize| -> Vec<Req> {
        let mut is_bad: Vec<bool> = (0..HOT_REQUESTS + n).map(|i| i >= HOT_REQUESTS).collect();
        let state = AtomicU64::new(0x1CE_5EED + n as u64);
        for i in (1..is_bad.len()).rev() {
            is_bad.swap(i, (next(&state) % (i as u64 + 1)) as usize);
        }
        let (mut h, mut b) = (0, 0);
        is_bad
            .into_iter()
            .map(|bad| {
                if bad {
                    b += 1;
                    Req::Bad(bad_token(kind, b - 1))
                } else {
                    h += 1;
                    Req::Hot((h - 1) % HOT)
                }
            })
            .collect()
    };

    say!("\n## K. Hostile tokens: {HOT} hot record users, pool of 4 sessions on 1 socket, {HOT_REQUESTS} hot requests with N bad tokens interleaved");
    say!("# bad kinds: garbage = not a JWT; bad signature = a hot user's header and claims, signature bytes changed; expired = a real token whose exp has passed;");
    say!("#   mixed = the three in turn. Each row: {} run(s) of the sequence, a fresh pool each; counters are the median per run.", args.reps);
    say!("# auth = authenticate round trips (pool counter); hot auth = hot checkouts that were not affinity hits (each made one authenticate;");
    say!("#   a bad token never gets a hit); extra = hot auth minus that of N = 0; bad auth = auth - hot auth;");
    say!("# hot p50/p99 = latency of the hot requests (checkout + `{RETURN_1}`), all runs pooled (µs)");
    say!(
        "{:>7} {:<14} {:>4} {:>8} {:>6} {:>6} {:>8} {:>6} {:>8} {:>8} {:>8}",
        "callers", "bad kind", "N", "requests", "auth", "resets", "hot auth", "extra", "bad auth", "hot p50", "hot p99"
    );
    for callers in [1usize, 8] {
        let mut baseline = None;
        for (kind, n) in [(Bad::Garbage, 0usize)]
            .into_iter()
            .chain([Bad::Garbage, Bad::BadSignature, Bad::Expired, Bad::Mixed].into_iter().flat_map(|k| [(k, 50), (k, 500)]))
        {
            let seq = Arc::new(sequence(kind, n));
            let mut runs = Vec::new();
            for _ in 0..args.reps {
                runs.push(k_run(url, seq.clone(), hot.clone(), callers).await);
            }
            let med = |f: fn(&KRun) -> u64| crate::median(runs.iter().map(|r| f(r) as f64).collect());
            let mut lat: Vec<Duration> = runs.iter().flat_map(|r| r.hot_latency.iter().copied()).collect();
            lat.sort();
            let hot_auth = med(|r| r.hot_auth);
            let base = *baseline.get_or_insert(hot_auth);
            let auth = med(|r| r.auth);
            say!(
                "{callers:>7} {:<14} {n:>4} {:>8.0} {auth:>6.0} {:>6.0} {hot_auth:>8.0} {:>+6.0} {:>8.0} {:>8.0} {:>8.0}",
                if n == 0 { "(none)" } else { kind.name() },
                med(|r| r.checkouts),
                med(|r| r.resets),
                hot_auth - base,
                auth - hot_auth,
                percentile(&lat, 0.5),
                percentile(&lat, 0.99)
            );
            for r in &runs {
                if r.accepted + r.errors > 0 {
                    say!("  !! {} bad token(s) accepted, {} other error(s)", r.accepted, r.errors);
                }
                if let Some(seq_auth) = r.hot_auth_sequential.filter(|a| *a != r.hot_auth) {
                    say!("  !! hot authenticates: {} from affinity hits, {seq_auth} from per-request counter deltas", r.hot_auth);
                }
            }
        }
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}
