//! Workload N: a noisy neighbour. 16 quiet tenants (one caller each, `RETURN 1`, 5 ms pause
//! between requests) beside one noisy tenant (200 concurrent callers of a 20 ms query)
//! on a pool of 2 connections × 32 sessions: how much of the quiet tenants' latency the noisy
//! one takes, with and without the per-tenant cap, and the official SDK's clone pattern beside.
//! (The noisy query is `sleep(20ms); RETURN 1`: see [`NOISY_QUERY`].)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use surreal_pool::{AccessToken, Pool, PoolBuilder};
use surrealdb::engine::remote::ws::{Client, Ws};
use surrealdb::Surreal;

use crate::{median, percentile, Args, DB, NS, RETURN_1};

const QUIET: usize = 16;
const QUIET_PAUSE: Duration = Duration::from_millis(5);
const NOISY_CALLERS: usize = 200;
/// The issue's `SLEEP 20ms; RETURN 1`, as a record user may run it: the `SLEEP` statement needs
/// root (the server refuses it with "IAM error: Not enough permissions"), the `sleep` function
/// does not.
const NOISY_QUERY: &str = "sleep(20ms); RETURN 1";
/// The noisy query's server time: what one session can serve is 1 / this per second.
const NOISY_SECS: f64 = 0.020;
const SOCKETS: usize = 2;
const SESSIONS: usize = 64;
/// The per-tenant cap of row 3: 16 of the 64 sessions.
const CAP: usize = 16;

/// The per-tenant cap (`None` = off: every session may go to one tenant; the turns between
/// waiting tenants stay).
fn with_cap(b: PoolBuilder, cap: Option<usize>) -> PoolBuilder {
    b.max_sessions_per_tenant(cap.unwrap_or(SESSIONS))
}

/// The client under test.
#[derive(Clone)]
enum Target {
    Pool(Pool),
    /// The SDK's base client (one socket); each request clones it.
    Sdk(Surreal<Client>),
}

enum Outcome {
    Done,
    /// Refused for lack of capacity (`is_overloaded`).
    Shed,
    /// Any other error (its message).
    Failed(String),
}

impl Target {
    async fn pool(url: &str, cap: Option<usize>) -> Self {
        let b = Pool::builder(url).connections(SOCKETS).max_sessions(SESSIONS).max_sessions_per_connection(SESSIONS / SOCKETS).namespace_database(NS, DB);
        Target::Pool(with_cap(b, cap).build().await.unwrap())
    }

    async fn sdk(url: &str) -> Self {
        let db = Surreal::new::<Ws>(url.trim_start_matches("ws://")).await.unwrap();
        db.use_ns(NS).use_db(DB).await.unwrap();
        Target::Sdk(db)
    }

    /// One request as `token` (a fresh copy of the string, as a web server would have). With
    /// `until`, the wait ends there (`None`): for the pool the checkout, for the SDK the whole
    /// request; a checkout holds no session until it returns, so nothing is left half done.
    async fn request(&self, token: &AccessToken, query: &str, until: Option<Instant>) -> Option<Outcome> {
        let token = token.as_str().to_owned();
        match self {
            Target::Pool(p) => {
                let s = match cut(until, p.get_with_token(token)).await? {
                    Ok(s) => s,
                    Err(e) if e.is_overloaded() => return Some(Outcome::Shed),
                    Err(e) => return Some(Outcome::Failed(e.to_string())),
                };
                Some(match s.query(query, ()).await.and_then(|r| r.check()) {
                    Ok(_) => Outcome::Done,
                    Err(e) if e.is_overloaded() => Outcome::Shed,
                    Err(e) => Outcome::Failed(e.to_string()),
                })
            }
            Target::Sdk(base) => {
                let db = base.clone();
                let r = cut(until, async move {
                    db.authenticate(token).await?;
                    db.query(query).await?.check()?;
                    Ok::<_, surrealdb::Error>(())
                })
                .await?;
                Some(r.map_or_else(|e| Outcome::Failed(e.to_string()), |_| Outcome::Done))
            }
        }
    }
}

/// `f`, given up at `until` (`None`).
async fn cut<F: std::future::Future>(until: Option<Instant>, f: F) -> Option<F::Output> {
    match until {
        Some(t) => tokio::time::timeout_at(t.into(), f).await.ok(),
        None => Some(f.await),
    }
}

/// What one measurement saw.
#[derive(Default)]
struct Run {
    /// Latency of the quiet tenants' successful requests (checkout + query), sorted.
    quiet: Vec<Duration>,
    quiet_rate: f64,
    quiet_failed: usize,
    quiet_shed: usize,
    /// Noisy requests completed before the deadline, per second.
    noisy_rate: f64,
    noisy_failed: usize,
    noisy_shed: usize,
    /// The first error of a failed request, if any.
    first_error: Option<String>,
    /// `authenticate` round trips per checkout (pool only).
    auth_per_req: Option<f64>,
}

/// `secs` of the quiet callers, beside the noisy ones if `noisy`. Every tenant makes one request
/// first, so that the first `authenticate` of each (and the pool's one-at-a-time lane for
/// tokens it has not seen accepted) is not in the samples.
async fn measure(target: &Target, secs: f64, quiet_tokens: &[AccessToken], noisy_token: &AccessToken, noisy: bool) -> Run {
    for t in quiet_tokens.iter().chain(noisy.then_some(noisy_token)) {
        target.request(t, RETURN_1, None).await;
    }
    let before = if let Target::Pool(p) = target { Some(p.status()) } else { None };
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let counts = Arc::new([(); 5].map(|_| AtomicUsize::new(0))); // quiet failed, shed; noisy done, failed, shed
    let samples = Arc::new(Mutex::new(Vec::new()));
    let first_error = Arc::new(Mutex::new(None));
    let failed = |e: String, first: &Mutex<Option<String>>| _ = first.lock().unwrap().get_or_insert(e);

    // Quiet: one caller per tenant, a request then a 5 ms pause, until the deadline. The request
    // in flight at the deadline is waited for (it ends: the checkout timeout bounds it).
    let quiet: Vec<_> = quiet_tokens
        .iter()
        .map(|token| {
            let (target, token, counts, samples, first) = (target.clone(), token.clone(), counts.clone(), samples.clone(), first_error.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match target.request(&token, RETURN_1, None).await.unwrap() {
                        Outcome::Done => mine.push(t.elapsed()),
                        Outcome::Failed(e) => {
                            counts[0].fetch_add(1, Ordering::Relaxed);
                            failed(format!("quiet: {e}"), &first);
                        }
                        Outcome::Shed => _ = counts[1].fetch_add(1, Ordering::Relaxed),
                    }
                    tokio::time::sleep(QUIET_PAUSE).await;
                }
                samples.lock().unwrap().extend(mine);
            })
        })
        .collect();
    // Noisy: 200 callers as one tenant, back to back. At the deadline waiting checkouts give up
    // and the queries in flight finish; only completions before the deadline count.
    let noisy: Vec<_> = (0..if noisy { NOISY_CALLERS } else { 0 })
        .map(|_| {
            let (target, token, counts, first) = (target.clone(), noisy_token.clone(), counts.clone(), first_error.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    match target.request(&token, NOISY_QUERY, Some(deadline)).await {
                        None => break,
                        Some(Outcome::Done) => {
                            if Instant::now() <= deadline {
                                counts[2].fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Some(Outcome::Failed(e)) => {
                            counts[3].fetch_add(1, Ordering::Relaxed);
                            failed(format!("noisy: {e}"), &first);
                        }
                        Some(Outcome::Shed) => {
                            counts[4].fetch_add(1, Ordering::Relaxed);
                            // A refusal may come back without ever waking the runtime: let the
                            // other tasks run before asking again.
                            tokio::task::yield_now().await;
                        }
                    }
                }
            })
        })
        .collect();
    for t in quiet.into_iter().chain(noisy) {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut quiet = std::mem::take(&mut *samples.lock().unwrap());
    quiet.sort();
    let n = |i: usize| counts[i].load(Ordering::Relaxed);
    let first_error = first_error.lock().unwrap().take();
    let auth_per_req = match (target, before) {
        (Target::Pool(p), Some(b)) => {
            let a = p.status();
            Some((a.auth_round_trips - b.auth_round_trips) as f64 / (a.checkouts - b.checkouts).max(1) as f64)
        }
        _ => None,
    };
    Run {
        quiet_rate: (quiet.len() + n(0) + n(1)) as f64 / elapsed,
        quiet,
        quiet_failed: n(0),
        quiet_shed: n(1),
        noisy_rate: n(2) as f64 / secs,
        noisy_failed: n(3),
        noisy_shed: n(4),
        first_error,
        auth_per_req,
    }
}

/// After a measurement every session should be idle again and nobody waiting (cancelled
/// checkouts included); waits up to 1 s for the last returns.
async fn settled(p: &Pool) -> Option<String> {
    let until = Instant::now() + Duration::from_secs(1);
    loop {
        let s = p.status();
        if s.waiting == 0 && s.available == s.size {
            return None;
        }
        if Instant::now() >= until {
            return Some(format!("size {} available {} waiting {}", s.size, s.available, s.waiting));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Workload N: the rows side by side, configurations alternating rep by rep.
pub async fn noisy(url: &str, args: &Args, tokens: &[AccessToken]) {
    let quiet_tokens = &tokens[..QUIET];
    let noisy_token = &tokens[QUIET];
    let allowed = CAP as f64 / NOISY_SECS;
    say!("\n## N. Noisy neighbour: {QUIET} quiet tenants beside 1 noisy one, pool of {SOCKETS} sockets x {} sessions", SESSIONS / SOCKETS);
    say!("# quiet: {QUIET} record users, one caller each, `{RETURN_1}` then a {} ms pause; noisy: 1 other record user, {NOISY_CALLERS} callers of `{NOISY_QUERY}`", QUIET_PAUSE.as_millis());
    say!("# every request: get_with_token(fresh copy of the token) + query; quiet p50/p99 = checkout + query of successful quiet requests (ms)");
    say!("# rows: quiet alone (cap {CAP}); noisy alone (cap {CAP}: what its cap allows, measured); beside noisy with the per-tenant cap off ({SESSIONS})");
    say!("#   and on ({CAP}); the official SDK's clone +");
    say!("#   authenticate + query on one socket, alone and beside noisy. Fresh pool / client per measurement; every tenant warmed by one request.");
    say!("# fail/shed = failed / refused-for-capacity requests, summed over reps; noisy/allowed = noisy req/s / noisy alone at cap {CAP}");
    say!("#   (the bound {CAP} sessions / {NOISY_SECS} s = {allowed:.0} req/s leaves out each request's own time beyond the sleep)");
    say!("# auth/req = authenticate round trips per checkout (pool); req/s, p50, p99: median [min–max] over the reps");
    // (label, pool cap or SDK, noisy beside, quiet tenants)
    let rows: [(&str, Option<Option<usize>>, bool, bool); 6] = [
        ("pool: quiet alone", Some(Some(CAP)), false, true),
        ("pool: noisy alone, cap on", Some(Some(CAP)), true, false),
        ("pool: beside noisy, cap off", Some(None), true, true),
        ("pool: beside noisy, cap on", Some(Some(CAP)), true, true),
        ("official SDK: quiet alone", None, false, true),
        ("official SDK: beside noisy", None, true, true),
    ];
    let mut runs: Vec<Vec<Run>> = rows.iter().map(|_| Vec::new()).collect();
    for _ in 0..args.reps {
        for (i, &(label, pool, beside, with_quiet)) in rows.iter().enumerate() {
            let target = match pool {
                Some(cap) => Target::pool(url, cap).await,
                None => Target::sdk(url).await,
            };
            let quiet = if with_quiet { quiet_tokens } else { &[] };
            let run = measure(&target, args.secs, quiet, noisy_token, beside).await;
            if let Some(e) = &run.first_error {
                say!("  !! {label}: first error: {e}");
            }
            runs[i].push(run);
            if let Target::Pool(p) = &target {
                if let Some(state) = settled(p).await {
                    say!("  !! {label}: sessions not all back after the measurement: {state}");
                }
                p.close();
            }
        }
    }

    let spread = |v: Vec<f64>| {
        let mut v = v;
        v.sort_by(f64::total_cmp); // NaN (no quiet tenants in the row) sorts last
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let f = |(m, lo, hi): (f64, f64, f64), d: usize| format!("{m:.d$} [{lo:.d$}–{hi:.d$}]");
    let ms = |r: &Run, p: f64| if r.quiet.is_empty() { f64::NAN } else { percentile(&r.quiet, p) / 1e3 };
    say!(
        "{:<28} {:>20} {:>20} {:>20} {:>9} {:>20} {:>11} {:>13} {:>8}",
        "row", "quiet p50 ms", "quiet p99 ms", "quiet req/s", "fail/shed", "noisy req/s", "fail/shed", "noisy/allowed", "auth/req"
    );
    let mut p99 = Vec::new();
    let mut noisy_rate = Vec::new();
    let noisy_alone = median(runs[1].iter().map(|r| r.noisy_rate).collect());
    for ((label, pool, beside, _), rs) in rows.iter().zip(&runs) {
        let q50 = spread(rs.iter().map(|r| ms(r, 0.5)).collect());
        let q99 = spread(rs.iter().map(|r| ms(r, 0.99)).collect());
        let qr = spread(rs.iter().map(|r| r.quiet_rate).collect());
        let nr = spread(rs.iter().map(|r| r.noisy_rate).collect());
        let sum = |g: fn(&Run) -> usize| rs.iter().map(g).sum::<usize>();
        let (noisy_cols, ratio) = if *beside {
            let ratio = if *pool == Some(Some(CAP)) { format!("{:.2}x", nr.0 / noisy_alone) } else { "-".into() };
            (format!("{:>20} {:>11}", f(nr, 0), format!("{}/{}", sum(|r| r.noisy_failed), sum(|r| r.noisy_shed))), ratio)
        } else {
            (format!("{:>20} {:>11}", "-", "-"), "-".into())
        };
        let auth = rs.iter().filter_map(|r| r.auth_per_req).collect::<Vec<_>>();
        let auth = if auth.is_empty() { "-".into() } else { format!("{:.3}", median(auth)) };
        say!(
            "{label:<28} {:>20} {:>20} {:>20} {:>9} {noisy_cols} {ratio:>13} {auth:>8}",
            f(q50, 2),
            f(q99, 2),
            f(qr, 0),
            format!("{}/{}", sum(|r| r.quiet_failed), sum(|r| r.quiet_shed))
        );
        p99.push(q99.0);
        noisy_rate.push(nr.0);
    }
    say!(
        "summary: quiet p99 beside noisy (cap on) / alone = {:.2} / {:.2} ms = {:.1}x (target <= 2x); noisy beside quiet with cap {CAP}: {:.0} / {noisy_alone:.0} req/s alone at the cap = {:.2}x (target >= 0.9x; {:.2}x the {allowed:.0} req/s bound)",
        p99[3],
        p99[0],
        p99[3] / p99[0],
        noisy_rate[3],
        noisy_rate[3] / noisy_alone,
        noisy_rate[3] / allowed
    );
}
