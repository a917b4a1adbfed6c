//! What a checkout costs the session table alone, as the pool grows (no server, no I/O): a take
//! and a put-back of the slot deadpool hands out, best of 3 runs, in ns, for the pool's own
//! identity, a tenant whose idle session is in another slot, and a proven tenant with no idle
//! session (more tenants than sessions: a session is re-purposed). The curve should be flat.
//!
//! `cargo bench --bench table`. The end-to-end curve (checkout + query against the server, and
//! memory) is workload S of the harness.

fn main() {
    let costs = surreal_pool::fuzzing::table_checkout_cost(&[128, 1024, 4096]);
    println!("# the session table's cost per checkout (ns), best of 3");
    println!("{:>8} {:>10} {:>12} {:>10}", "sessions", "default", "tenant hit", "victim");
    for (n, [default, hit, victim]) in &costs {
        println!("{n:>8} {default:>10.0} {hit:>12.0} {victim:>10.0}");
    }
    let (small, large) = (costs[0].1, costs[costs.len() - 1].1);
    println!(
        "ratios {} vs {} sessions: default {:.2}x, tenant hit {:.2}x, victim {:.2}x",
        costs[costs.len() - 1].0,
        costs[0].0,
        large[0] / small[0],
        large[1] / small[1],
        large[2] / small[2]
    );
}
