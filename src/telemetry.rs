//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`): the
//! library records, the application picks the exporter (Prometheus, StatsD, OpenTelemetry …)
//! by installing a recorder. Without the feature every function here is an empty inline
//! function, so the calls cost nothing.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `surreal_pool_checkout_wait_seconds` | histogram | `outcome`: `ok`, `timeout`, `refused`, `error` |
//! | `surreal_pool_request_seconds` | histogram | `method` (the RPC method), `outcome`: `ok`, `error` |
//! | `surreal_pool_checkouts_total` | counter | `outcome` |
//! | `surreal_pool_auth_round_trips_total` | counter | |
//! | `surreal_pool_affinity_hits_total` | counter | |
//! | `surreal_pool_resets_total`, `surreal_pool_replaced_total` | counter | |
//! | `surreal_pool_rejected_checkouts_total` | counter | `bound`: `pool`, `tenant` |
//! | `surreal_pool_reconnects_total` | counter | |
//! | `surreal_pool_replay_seconds` | histogram | |
//! | `surreal_pool_sessions` | gauge | `connection` (index), `state`: `idle`, `busy`, `dirty` |
//! | `surreal_pool_requests_in_flight`, `surreal_pool_requests_queued` | gauge | `connection` |
//! | `surreal_pool_checkouts_waiting`, `surreal_pool_connections_up` | gauge | |
//! | `surreal_pool_socket_moves_total` | counter | `outcome`: `moved`, `abandoned` |
//! | `surreal_pool_node_ejections_total` | counter | `endpoint` |
//! | `surreal_pool_node_probes_total` | counter | `endpoint`, `outcome`: `ok`, `failed` |
//! | `surreal_pool_node_healthy`, `surreal_pool_node_sockets` | gauge | `endpoint` |
//!
//! Gauges are set by `Pool::record_metrics`, to be called before each scrape; counters and
//! histograms are recorded as things happen. No label carries a token, a tenant or a query.

#[cfg(feature = "metrics")]
mod imp {
    use std::time::Duration;

    pub(crate) fn checkout(wait: Duration, outcome: &'static str) {
        metrics::histogram!("surreal_pool_checkout_wait_seconds", "outcome" => outcome).record(wait.as_secs_f64());
        metrics::counter!("surreal_pool_checkouts_total", "outcome" => outcome).increment(1);
    }

    pub(crate) fn request(method: &'static str, elapsed: Duration, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        metrics::histogram!("surreal_pool_request_seconds", "method" => method, "outcome" => outcome).record(elapsed.as_secs_f64());
    }

    pub(crate) fn count(name: &'static str) {
        metrics::counter!(name).increment(1);
    }

    pub(crate) fn rejected(per_tenant: bool) {
        metrics::counter!("surreal_pool_rejected_checkouts_total", "bound" => if per_tenant { "tenant" } else { "pool" }).increment(1);
    }

    pub(crate) fn reconnected(replay: Duration) {
        metrics::counter!("surreal_pool_reconnects_total").increment(1);
        metrics::histogram!("surreal_pool_replay_seconds").record(replay.as_secs_f64());
    }

    pub(crate) fn connection_gauges(connection: usize, in_flight: usize, queued: usize, sessions: [usize; 3]) {
        let c = connection.to_string();
        metrics::gauge!("surreal_pool_requests_in_flight", "connection" => c.clone()).set(in_flight as f64);
        metrics::gauge!("surreal_pool_requests_queued", "connection" => c.clone()).set(queued as f64);
        for (state, n) in ["idle", "busy", "dirty"].into_iter().zip(sessions) {
            metrics::gauge!("surreal_pool_sessions", "connection" => c.clone(), "state" => state).set(n as f64);
        }
    }

    pub(crate) fn pool_gauges(waiting: usize, connections_up: usize) {
        metrics::gauge!("surreal_pool_checkouts_waiting").set(waiting as f64);
        metrics::gauge!("surreal_pool_connections_up").set(connections_up as f64);
    }

    pub(crate) fn moved(done: bool) {
        metrics::counter!("surreal_pool_socket_moves_total", "outcome" => if done { "moved" } else { "abandoned" }).increment(1);
    }

    pub(crate) fn node_ejected(endpoint: &str) {
        metrics::counter!("surreal_pool_node_ejections_total", "endpoint" => endpoint.to_owned()).increment(1);
    }

    pub(crate) fn node_probed(endpoint: &str, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        metrics::counter!("surreal_pool_node_probes_total", "endpoint" => endpoint.to_owned(), "outcome" => outcome).increment(1);
    }

    pub(crate) fn node_gauges(endpoint: &str, healthy: bool, sockets: usize) {
        metrics::gauge!("surreal_pool_node_healthy", "endpoint" => endpoint.to_owned()).set(if healthy { 1.0 } else { 0.0 });
        metrics::gauge!("surreal_pool_node_sockets", "endpoint" => endpoint.to_owned()).set(sockets as f64);
    }
}

#[cfg(not(feature = "metrics"))]
#[allow(clippy::missing_const_for_fn)]
mod imp {
    use std::time::Duration;

    #[inline(always)]
    pub(crate) fn checkout(_: Duration, _: &'static str) {}
    #[inline(always)]
    pub(crate) fn request(_: &'static str, _: Duration, _: bool) {}
    #[inline(always)]
    pub(crate) fn count(_: &'static str) {}
    #[inline(always)]
    pub(crate) fn rejected(_: bool) {}
    #[inline(always)]
    pub(crate) fn reconnected(_: Duration) {}
    #[inline(always)]
    pub(crate) fn moved(_: bool) {}
    #[inline(always)]
    pub(crate) fn node_ejected(_: &str) {}
    #[inline(always)]
    pub(crate) fn node_probed(_: &str, _: bool) {}
}

pub(crate) use imp::*;
