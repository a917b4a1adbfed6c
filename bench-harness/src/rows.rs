//! Workload H: big results. `SELECT * FROM big LIMIT n` for n = 100, 1,000 and 10,000 rows of
//! a 10-field record (plus its own record id), decoded by each client into a typed struct and
//! into its dynamic value type, side by side: req/s, rows/s and the client's CPU time per row.
//!
//! * **surreal-pool**, through its public API: `res.take::<Vec<Row>>(0)` with
//!   `#[derive(Deserialize)]` (record ids and datetimes arrive as strings in its mapping, see
//!   `src/wire/tags.rs`), and `take::<Vec<serde_json::Value>>(0)`. Each caller keeps one
//!   checked-out session, so no checkout is in the figures.
//! * **the official SDK 3.3.5.** It speaks flatbuffers over its WebSocket, not CBOR (it asks
//!   for the `flatbuffers` subprotocol: `engine/remote/ws/native.rs`), decodes each reply into
//!   its own `surrealdb::types::Value` and converts that to the caller's type with its
//!   `SurrealValue` trait; `take` requires `R: SurrealValue` (serde's `Deserialize` is not
//!   accepted), so its typed struct is `#[derive(SurrealValue)]` with its own `RecordId` and
//!   `Datetime` fields (the documented way: `IndexedResults::take` docs), and its dynamic type
//!   is `surrealdb::types::Value`.
//! * **the raw floor** (`raw.rs`, the same socket client as the other workloads' floor): the
//!   same query, the reply frame decoded once by `ciborium::from_reader` into
//!   `ciborium::Value` — one decode into a generic tree, the floor the issue names. Beside it,
//!   for the struct case, ciborium straight into a serde struct: ciborium skips tags, so record
//!   ids read as their `[table, key]` payload and datetimes as `[seconds, nanoseconds]` (not
//!   the strings the pool maps them to): the least a typed decode can cost, not the same output.
//!
//! Each (n, callers) cell runs every client in turn within each repetition (drift hits all
//! alike). Callers: 1 (sequential) and 4 concurrent, on one socket each.

use std::future::Future;
use std::sync::Arc;

use ciborium::Value as Cbor;
use serde::Deserialize;
use surrealdb::types::{Datetime, RecordId, SurrealValue};

use crate::{median, Args};

const ROWS: usize = 10_000;
const TABLE: &str = "big";
const SIZES: [(usize, &str); 3] = [
    (100, "SELECT * FROM big LIMIT 100"),
    (1_000, "SELECT * FROM big LIMIT 1000"),
    (10_000, "SELECT * FROM big LIMIT 10000"),
];
const CALLERS: [usize; 2] = [1, 4];

/// 10,000 rows: strings, ints, a float, datetimes, a record link, an array and a nested object
/// (10 fields, and the row's own record id).
fn seed() -> String {
    format!(
        r#"
DEFINE TABLE {TABLE} SCHEMALESS PERMISSIONS FULL;
FOR $i IN 1..={ROWS} {{
    CREATE type::record('{TABLE}', $i) SET
        name = 'name ' + <string> $i,
        email = 'user' + <string> $i + '@example.com',
        age = 18 + $i % 60,
        visits = $i * 37,
        score = <float> $i / 7.0,
        created = d'2024-01-01T00:00:00Z' + <duration> (<string> $i + 's'),
        updated = time::now(),
        owner = type::record('user', 'u' + <string> ($i % 100)),
        tags = ['t' + <string> ($i % 10), 'tag', 'x' + <string> ($i % 3)],
        meta = {{ city: 'City ' + <string> ($i % 50), zip: 10000 + $i, verified: $i % 2 == 0 }};
}};
"#
    )
}

/// The row as surreal-pool's mapping gives it: record ids and datetimes as strings.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Row {
    id: String,
    name: String,
    email: String,
    age: i64,
    visits: i64,
    score: f64,
    created: String,
    updated: String,
    owner: String,
    tags: Vec<String>,
    meta: Meta,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Meta {
    city: String,
    zip: i64,
    verified: bool,
}

/// The row as the SDK wants it: its own record id and datetime types.
#[derive(SurrealValue)]
#[surreal(crate = "surrealdb::types")]
#[allow(dead_code)]
struct SdkRow {
    id: RecordId,
    name: String,
    email: String,
    age: i64,
    visits: i64,
    score: f64,
    created: Datetime,
    updated: Datetime,
    owner: RecordId,
    tags: Vec<String>,
    meta: SdkMeta,
}

#[derive(SurrealValue)]
#[surreal(crate = "surrealdb::types")]
#[allow(dead_code)]
struct SdkMeta {
    city: String,
    zip: i64,
    verified: bool,
}

/// The row straight from CBOR by serde (ciborium skips the tags): a record id is its
/// `[table, key]`, a datetime its `[seconds, nanoseconds]`.
#[derive(Deserialize)]
#[allow(dead_code)]
struct CborRow {
    id: (String, i64),
    name: String,
    email: String,
    age: i64,
    visits: i64,
    score: f64,
    created: (i64, u32),
    updated: (i64, u32),
    owner: (String, String),
    tags: Vec<String>,
    meta: Meta,
}

#[derive(Deserialize)]
struct CborReply {
    result: Vec<CborStatement>,
}

#[derive(Deserialize)]
struct CborStatement {
    result: Vec<CborRow>,
}

/// The rows of the first statement of a reply decoded as one `ciborium::Value`.
fn rows_of(reply: &Cbor) -> usize {
    fn field<'a>(v: &'a Cbor, name: &str) -> Option<&'a Cbor> {
        v.as_map()?.iter().find(|(k, _)| k.as_text() == Some(name)).map(|(_, v)| v)
    }
    field(reply, "result")
        .and_then(Cbor::as_array)
        .and_then(|statements| statements.first())
        .and_then(|first| field(first, "result"))
        .and_then(Cbor::as_array)
        .map_or(0, Vec::len)
}

/// One measurement: `callers` tasks run `op` until `secs` pass (each finishing the request it
/// is in). Returns req/s, and client CPU µs (getrusage) and server CPU µs (`/proc`, 10 ms
/// ticks) per request, all over the requests actually completed (a 10,000-row request takes a
/// good part of a second, so the overshoot past `secs` is counted, not estimated).
async fn measure(server: u32, secs: f64, callers: usize, op: Op) -> (f64, f64, f64) {
    let (c0, s0) = (crate::self_cpu_us(), crate::cpu_ticks(server));
    let started = std::time::Instant::now();
    let deadline = started + std::time::Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..callers)
        .map(|c| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut done = 0u64;
                while std::time::Instant::now() < deadline {
                    op(c).await;
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut done = 0;
    for t in tasks {
        done += t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (c1, s1) = (crate::self_cpu_us(), crate::cpu_ticks(server));
    let done = done as f64;
    (done / elapsed, (c1 - c0) / done, (s1 - s0) as f64 * 1e4 / done)
}

type Op = Arc<dyn Fn(usize) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

fn op<F, Fut>(f: F) -> Op
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |c| Box::pin(f(c)))
}

pub async fn big_results(url: &str, args: &Args) {
    say!("\n## H. Big results: `SELECT * FROM {TABLE} LIMIT n` of 10-field rows, decoded (one socket per client)");
    let p = crate::pool(url, 1, CALLERS[1]).await;
    {
        let s = p.get().await.unwrap();
        s.query(&seed(), ()).await.unwrap().check().unwrap();
        let rows: Vec<Row> = s.query("SELECT * FROM big LIMIT 1", ()).await.unwrap().take(0).unwrap();
        let r = &rows[0];
        say!("# one row as surreal-pool decodes it: id {:?}, owner {:?}, created {:?}, meta.city {:?}, tags {:?}", r.id, r.owner, r.created, r.meta.city, r.tags);
    }
    let spid = crate::child_pid();
    // One checked-out session per caller, kept for the whole workload.
    let mut sessions = Vec::new();
    for _ in 0..CALLERS[1] {
        sessions.push(p.get().await.unwrap());
    }
    let sessions = Arc::new(sessions);
    let db = Arc::new(crate::sdk(url).await);
    let rc = crate::raw(url, 1, false).await;
    {
        let all = rc.request("query", serde_json::json!([SIZES[2].1]), None);
        let bytes = rc.send(None, &all).await.unwrap().bytes().len();
        say!("# the CBOR reply to {} rows: {bytes} bytes ({} per row)", SIZES[2].0, bytes / SIZES[2].0);
    }
    say!("# client CPU: this process (getrusage); server CPU: the server process (/proc). Median of {} reps of {} s; req/s [min–max]", args.reps, args.secs);
    say!("{:>6} {:>7}  {:<46} {:>18} {:>10} {:>13} {:>13}", "rows", "callers", "client → target", "req/s", "rows/s", "client µs/row", "server µs/row");
    for (n, query) in SIZES {
        for callers in CALLERS {
            let q = Arc::new(rc.request("query", serde_json::json!([query]), None));
            let clients: Vec<(&str, Op)> = vec![
                ("surreal-pool → struct (serde)", {
                    let s = sessions.clone();
                    op(move |c| {
                        let s = s.clone();
                        async move {
                            let rows: Vec<Row> = s[c].query(query, ()).await.unwrap().take(0).unwrap();
                            assert_eq!(rows.len(), n);
                        }
                    })
                }),
                ("surreal-pool → serde_json::Value", {
                    let s = sessions.clone();
                    op(move |c| {
                        let s = s.clone();
                        async move {
                            let rows: Vec<serde_json::Value> = s[c].query(query, ()).await.unwrap().take(0).unwrap();
                            assert_eq!(rows.len(), n);
                        }
                    })
                }),
                ("official SDK → struct (SurrealValue)", {
                    let db = db.clone();
                    op(move |_| {
                        let db = db.clone();
                        async move {
                            let rows: Vec<SdkRow> = db.query(query).await.unwrap().take(0).unwrap();
                            assert_eq!(rows.len(), n);
                        }
                    })
                }),
                ("official SDK → surrealdb::types::Value", {
                    let db = db.clone();
                    op(move |_| {
                        let db = db.clone();
                        async move {
                            let rows: Vec<surrealdb::types::Value> = db.query(query).await.unwrap().take(0).unwrap();
                            assert_eq!(rows.len(), n);
                        }
                    })
                }),
                ("raw floor → ciborium::Value", {
                    let (rc, q) = (rc.clone(), q.clone());
                    op(move |_| {
                        let (rc, q) = (rc.clone(), q.clone());
                        async move {
                            let reply = rc.send(None, &q).await.unwrap();
                            let v: Cbor = ciborium::from_reader(reply.bytes()).unwrap();
                            assert_eq!(rows_of(&v), n);
                        }
                    })
                }),
                ("raw: ciborium → struct (tags as payloads)", {
                    let (rc, q) = (rc.clone(), q.clone());
                    op(move |_| {
                        let (rc, q) = (rc.clone(), q.clone());
                        async move {
                            let reply = rc.send(None, &q).await.unwrap();
                            let v: CborReply = ciborium::from_reader(reply.bytes()).unwrap();
                            assert_eq!(v.result[0].result.len(), n);
                        }
                    })
                }),
            ];
            if let Some(only) = &args.clients {
                // A subset (for profiling): no ratios.
                let wanted = |label: &str| only.split(',').any(|w| label.contains(w));
                for (label, f) in clients.iter().filter(|(label, _)| wanted(label)) {
                    for _ in 0..args.reps {
                        let (rate, client, server) = measure(spid, args.secs, callers, f.clone()).await;
                        say!("{n:>6} {callers:>7}  {label:<46} {rate:>18.1} {:>10.0} {:>13.3} {:>13.3}", rate * n as f64, client / n as f64, server / n as f64);
                    }
                }
                continue;
            }
            let mut results: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); clients.len()];
            for _ in 0..args.reps {
                for (i, (_, f)) in clients.iter().enumerate() {
                    results[i].push(measure(spid, args.secs, callers, f.clone()).await);
                }
            }
            let mut per_row = Vec::new();
            for ((label, _), r) in clients.iter().zip(&results) {
                let rate = median(r.iter().map(|x| x.0).collect());
                let (lo, hi) = r.iter().fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(x.0), hi.max(x.0)));
                let client = median(r.iter().map(|x| x.1).collect()) / n as f64;
                let server = median(r.iter().map(|x| x.2).collect()) / n as f64;
                per_row.push(client);
                let rates = format!("{rate:.1} [{lo:.1}–{hi:.1}]");
                say!("{n:>6} {callers:>7}  {label:<46} {rates:>18} {:>10.0} {client:>13.3} {server:>13.3}", rate * n as f64);
            }
            say!(
                "{:>16}client CPU/row ratios: struct pool/raw floor {:.2}x, pool/SDK {:.2}x | Value pool/raw floor {:.2}x, pool/SDK {:.2}x | raw struct/raw floor {:.2}x",
                "",
                per_row[0] / per_row[4],
                per_row[0] / per_row[2],
                per_row[1] / per_row[4],
                per_row[1] / per_row[3],
                per_row[5] / per_row[4],
            );
        }
    }
    drop(sessions);
    p.close();
}
