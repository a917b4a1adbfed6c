//! Client CPU per row of a big `SELECT` result, with no server: the same encoded result (rows
//! shaped as SurrealDB 3.3.5 sends them: record ids, datetimes, a nested object, an array)
//! decoded, side by side and interleaved rep by rep,
//!
//! * straight from the CBOR into the caller's type (what `QueryResponse::take` does),
//! * through the old path (CBOR → `serde_json::Value` → `serde_json::from_value`),
//! * and by `ciborium::from_reader` into `ciborium::Value` (one generic tree: the floor).
//!
//! `cargo bench --bench decode` (options: `-- --rows 10000 --reps 7`). The end-to-end
//! figures against the server and the official SDK are workload H of the harness.

use std::hint::black_box;
use std::time::Instant;

use ciborium::Value as Cbor;
use serde::Deserialize;

/// The row, as an application declares it (record ids and datetimes as text, as mapped).
#[derive(Deserialize)]
#[allow(dead_code)]
struct Row {
    id: String,
    name: String,
    email: String,
    age: i64,
    score: f64,
    active: bool,
    created: String,
    owner: String,
    address: Address,
    tags: Vec<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Address {
    city: String,
    zip: i64,
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn text(s: impl Into<String>) -> Cbor {
    Cbor::Text(s.into())
}

fn tag(t: u64, v: Cbor) -> Cbor {
    Cbor::Tag(t, Box::new(v))
}

fn row(i: usize) -> Cbor {
    let int = |n: i64| Cbor::Integer(n.into());
    Cbor::Map(vec![
        (text("active"), Cbor::Bool(i % 3 == 0)),
        (text("address"), Cbor::Map(vec![(text("city"), text(format!("City {}", i % 97))), (text("zip"), int(10_000 + i as i64))])),
        (text("age"), int(18 + (i % 60) as i64)),
        (text("created"), tag(12, Cbor::Array(vec![int(1_700_000_000 + i as i64), int((i * 7919 % 1_000_000_000) as i64)]))),
        (text("email"), text(format!("user{i}@example.com"))),
        (text("id"), tag(8, Cbor::Array(vec![text("bench_row"), text(format!("r{i:06}"))]))),
        (text("name"), text(format!("User number {i}"))),
        (text("owner"), tag(8, Cbor::Array(vec![text("user"), Cbor::Integer(((i % 500) as i64).into())]))),
        (text("score"), Cbor::Float(i as f64 * 0.37)),
        (text("tags"), Cbor::Array(vec![text("alpha"), text(format!("t{}", i % 10)), text("omega")])),
    ])
}

/// The `result` of a `query` reply: one statement, `rows` rows.
fn result(rows: usize) -> bytes::Bytes {
    let statement = Cbor::Map(vec![
        (text("result"), Cbor::Array((0..rows).map(row).collect())),
        (text("status"), text("OK")),
        (text("time"), text("1.2ms")),
    ]);
    let mut out = Vec::new();
    ciborium::into_writer(&Cbor::Array(vec![statement]), &mut out).unwrap();
    out.into()
}

/// Nanoseconds per row of `f` over `iters` runs.
fn per_row(rows: usize, iters: usize, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_nanos() as f64 / (iters * rows) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let reps = arg("--reps", 7);
    println!("# decode CPU per row (ns), one thread, median of {reps} interleaved reps");
    println!("{:>6}  {:>12} {:>12} {:>12} {:>12} {:>12}   ratios vs floor: direct struct, direct Value", "rows", "direct struct", "old struct", "direct Value", "old Value", "ciborium floor");
    for rows in [100, 1_000, arg("--rows", 10_000)] {
        let bytes = result(rows);
        // About 0.3 s of work per measurement.
        let iters = (100_000 / rows).max(3);
        let mut m = vec![Vec::new(); 5];
        for _ in 0..reps {
            m[0].push(per_row(rows, iters, || drop(black_box(surreal_pool::fuzzing::take_direct::<Vec<Row>>(&bytes).unwrap()))));
            m[1].push(per_row(rows, iters, || drop(black_box(surreal_pool::fuzzing::take_via_json::<Vec<Row>>(&bytes).unwrap()))));
            m[2].push(per_row(rows, iters, || drop(black_box(surreal_pool::fuzzing::take_direct::<serde_json::Value>(&bytes).unwrap()))));
            m[3].push(per_row(rows, iters, || drop(black_box(surreal_pool::fuzzing::take_via_json::<serde_json::Value>(&bytes).unwrap()))));
            m[4].push(per_row(rows, iters, || drop(black_box(ciborium::from_reader::<Cbor, _>(&bytes[..]).unwrap()))));
        }
        let m: Vec<f64> = m.into_iter().map(median).collect();
        println!(
            "{rows:>6}  {:>12.0} {:>12.0} {:>12.0} {:>12.0} {:>12.0}   {:.2}x {:.2}x",
            m[0], m[1], m[2], m[3], m[4], m[0] / m[4], m[2] / m[4]
        );
    }
}
