//! The health supervisor: one task per pool over two endpoints or more. Every
//! [`HealthPolicy::interval`](super::HealthPolicy::interval) it
//!
//! 1. samples each connection's call counters (`connection/node_stats.rs`) and adds what
//!    changed to the node each endpoint is;
//! 2. feeds every node's breaker (`health.rs`) and lets time pass on it;
//! 3. probes the nodes that are probing (`connection/probe.rs`), all at once, each bounded;
//! 4. tells every connection which endpoints to avoid (reconnects skip them; placement does
//!    not put sessions on them);
//! 5. asks for the socket moves `spread.rs` plans (off ejected nodes, back home);
//! 6. sets how many sessions each socket sheds as they come back, so that sessions are even
//!    over the serving sockets again (`spread::excess`; a shed session is replaced, created
//!    anew where placement says).
//!
//! The task holds the pool weakly and ends with it. It takes the breakers' lock and the
//! table's, never together, and never across an `.await`.

use std::sync::{Arc, Weak};
use std::time::Instant;

use super::cluster::{MoveReason, PoolEvent};
use super::health::Transition;
use super::spread::{self, Why};
use super::PoolShared;
use crate::connection::node_stats::Sample;
use crate::telemetry;

/// Starts the supervisor if the pool has two endpoints or more and health is on.
pub(super) fn spawn(shared: &Arc<PoolShared>) {
    if !shared.cluster.supervised() {
        return;
    }
    let weak = Arc::downgrade(shared);
    let every = shared.cluster.policy.interval;
    tokio::spawn(async move {
        let mut last: Vec<Vec<Sample>> = Vec::new();
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if !supervise(&weak, &mut last).await {
                return;
            }
        }
    });
}

/// One round; `false` once the pool is gone or closed.
async fn supervise(weak: &Weak<PoolShared>, last: &mut Vec<Vec<Sample>>) -> bool {
    let Some(shared) = weak.upgrade() else { return false };
    if shared.connections.iter().all(|c| c.is_closed()) {
        return false;
    }
    let cluster = &shared.cluster;
    let policy = &cluster.policy;
    let nodes = cluster.nodes.len();

    // 1. What the calls said since the last round, per node.
    let mut answered = vec![0u64; nodes];
    let mut failed = vec![0u64; nodes];
    let mut latency: Vec<Option<u64>> = vec![None; nodes];
    last.resize_with(shared.connections.len(), Vec::new);
    for (conn, before) in shared.connections.iter().zip(last.iter_mut()) {
        let samples = conn.node_samples();
        before.resize(samples.len(), Sample::default());
        let current = conn.endpoint();
        for ((endpoint, now), was) in samples.iter().zip(before.iter_mut()) {
            if let Some(n) = cluster.node(endpoint) {
                answered[n] += now.answered.saturating_sub(was.answered);
                failed[n] += now.failed.saturating_sub(was.failed);
                if *endpoint == current && conn.is_up() {
                    latency[n] = match (latency[n], now.latency_us) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
            }
            *was = *now;
        }
    }
    cluster.set_latency(latency);

    // 2. The breakers.
    let now = Instant::now();
    let mut changes = Vec::new();
    let probes: Vec<usize> = {
        let mut breakers = cluster.breakers();
        for n in 0..nodes {
            let healthy = breakers.iter().filter(|b| b.is_healthy()).count();
            let last_healthy = breakers[n].is_healthy() && healthy == 1;
            if let Some(t) = breakers[n].observe(policy, now, answered[n], failed[n], last_healthy) {
                changes.push((n, t));
            }
            if let Some(t) = breakers[n].tick(now) {
                changes.push((n, t));
            }
        }
        (0..nodes).filter(|&n| breakers[n].wants_probe()).collect()
    };
    announce(&shared, &changes, None);

    // 3. Probes, all at once.
    if !probes.is_empty() {
        let config = shared.connections[0].config().clone();
        let results = futures_util::future::join_all(probes.iter().map(|&n| {
            let config = &config;
            let endpoint = &cluster.nodes[n];
            async move { crate::connection::probe::probe(endpoint, config, policy.ready_check, policy.probe_timeout).await }
        }))
        .await;
        let now = Instant::now();
        let mut changes = Vec::new();
        let mut reasons = Vec::new();
        {
            let mut breakers = cluster.breakers();
            for (&n, result) in probes.iter().zip(&results) {
                telemetry::node_probed(&cluster.nodes[n], result.is_ok());
                if let Some(t) = breakers[n].probed(policy, now, result.is_ok()) {
                    changes.push((n, t));
                    reasons.push(result.as_ref().err().cloned().unwrap_or_default());
                }
            }
        }
        announce(&shared, &changes, Some(&reasons));
    }

    // 4. Where not to go.
    let healthy: Vec<bool> = cluster.breakers().iter().map(|b| b.is_healthy()).collect();
    let is_healthy = |endpoint: &str| cluster.node(endpoint).is_none_or(|n| healthy[n]);
    for conn in &shared.connections {
        conn.avoid(|e| !is_healthy(e));
    }

    // 5. Where to go.
    let sockets: Vec<spread::Socket> = shared
        .connections
        .iter()
        .map(|c| spread::Socket {
            home: c.config().endpoints.first().and_then(|e| cluster.node(e)).unwrap_or(0),
            on: if c.is_up() { cluster.node(&c.endpoint()) } else { None },
            moving: c.is_moving(),
        })
        .collect();
    let serving: Vec<bool> = shared.connections.iter().map(|c| c.is_up() && !c.is_moving() && !c.on_avoided()).collect();
    for (i, to, why) in spread::plan(&sockets, &healthy, policy.rebalance) {
        let conn = &shared.connections[i];
        let to = cluster.nodes[to].clone();
        if conn.move_to(&to, why == Why::Ejected) {
            let reason = match why {
                Why::Ejected => MoveReason::NodeEjected,
                Why::Home => MoveReason::Rebalance,
            };
            tracing::debug!(connection = i, from = %conn.endpoint(), %to, ?reason, "asking a socket to move");
            cluster.emit(PoolEvent::SocketMoving { connection: i, from: conn.endpoint(), to, reason });
        }
    }

    // 6. Sessions even over the serving sockets again (shed as they come back).
    if policy.rebalance {
        let sessions: Vec<usize> = shared.table().sessions_by_connection().iter().map(|c| c.iter().sum()).collect();
        // Only over the sockets placement would put new sessions on: a slow one neither sheds
        // nor lacks (else its share is shed elsewhere and created on the same socket again).
        let latencies: Vec<Option<u64>> = shared.connections.iter().map(|c| c.latency_us()).collect();
        let slow = super::placement::slow(&latencies, &serving);
        let even_over: Vec<bool> = serving.iter().zip(&slow).map(|(s, slow)| *s && !slow).collect();
        cluster.set_shed(&spread::excess(&sessions, &even_over));
    }
    true
}

/// Logs, counts and emits the breakers' transitions; `reasons` are the failed probes' (in
/// the order of `changes`).
fn announce(shared: &PoolShared, changes: &[(usize, Transition)], reasons: Option<&[String]>) {
    let cluster = &shared.cluster;
    for (k, (n, t)) in changes.iter().enumerate() {
        let endpoint = cluster.nodes[*n].clone();
        let event = match t.clone() {
            Transition::Ejected { failures, ejected_for } => {
                tracing::warn!(%endpoint, failures, ejected_ms = ejected_for.as_millis() as u64, "node ejected");
                telemetry::node_ejected(&endpoint);
                PoolEvent::NodeEjected { endpoint, failures, ejected_for }
            }
            Transition::Probing => {
                tracing::info!(%endpoint, "probing an ejected node");
                PoolEvent::NodeProbing { endpoint }
            }
            Transition::ProbeFailed { ejected_for } => {
                let reason = reasons.and_then(|r| r.get(k)).cloned().unwrap_or_default();
                tracing::info!(%endpoint, %reason, ejected_ms = ejected_for.as_millis() as u64, "probe failed; ejected again");
                telemetry::node_ejected(&endpoint);
                PoolEvent::ProbeFailed { endpoint, reason, ejected_for }
            }
            Transition::Readmitted => {
                tracing::info!(%endpoint, "node readmitted");
                PoolEvent::NodeReadmitted { endpoint }
            }
        };
        cluster.emit(event);
    }
}
