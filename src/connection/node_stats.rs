//! What a connection's calls tell of the nodes it talks to, per endpoint: calls answered, calls
//! that failed for the node's sake (the reply timed out, the server refused the call as
//! overloaded or shutting down, a reconnect attempt or a planned move to it failed), and the
//! recent reply latency. Lock-free counters, read by whoever watches the nodes (a pool's
//! health supervisor); the connection itself only records.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use super::Connection;
use crate::error::{Error, Result};

impl Connection {
    /// Every endpoint of this connection with its counters so far.
    pub(crate) fn node_samples(&self) -> Vec<(String, Sample)> {
        let stats = &self.shared().stats;
        self.config().endpoints.iter().enumerate().map(|(i, e)| (e.clone(), stats.sample(i))).collect()
    }

    /// The recent reply latency on the endpoint in use, in microseconds, if there is one.
    pub(crate) fn latency_us(&self) -> Option<u64> {
        let stats = &self.shared().stats;
        stats.sample(stats.current()).latency_us
    }
}

/// How one call's outcome counts for its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The node answered (with a result or with an error of the caller's making).
    Answered,
    /// The node did not answer in time, or refused the call as overloaded or going away.
    Failed,
    /// Says nothing of the node (closed, a cut socket, auth lost, local backpressure).
    Neither,
}

/// How a call's result counts (plain data).
pub(crate) fn judge<T>(result: &Result<T>) -> Outcome {
    match result {
        Ok(_) => Outcome::Answered,
        Err(Error::Timeout { what: "reply", .. }) => Outcome::Failed,
        Err(Error::Server(e)) if e.is_node_refusal() => Outcome::Failed,
        Err(Error::Auth(_) | Error::NotAllowed(_) | Error::Server(_) | Error::Query { .. }) => Outcome::Answered,
        Err(_) => Outcome::Neither,
    }
}

#[derive(Default)]
struct Counters {
    answered: AtomicU64,
    failed: AtomicU64,
    /// Moving average of the reply latency in microseconds; 0 = none yet.
    latency_us: AtomicU64,
}

/// Where and when a call started ([`NodeStats::start`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start {
    endpoint: usize,
    epoch: u64,
}

/// One endpoint's counters so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Sample {
    pub(crate) answered: u64,
    pub(crate) failed: u64,
    pub(crate) latency_us: Option<u64>,
}

/// The counters of every endpoint of a connection (indexed like its configured endpoints),
/// and which one it is on now.
pub(crate) struct NodeStats {
    current: AtomicUsize,
    /// Bumped when a move begins or stops holding the commands (odd while it holds them), and
    /// by two when the endpoint in use changes: a call that saw it change, or began while it
    /// was odd, may have waited through a hold or a switch.
    epoch: AtomicU64,
    endpoints: Vec<Counters>,
}

impl NodeStats {
    pub(crate) fn new(endpoints: usize) -> Self {
        NodeStats { current: AtomicUsize::new(0), epoch: AtomicU64::new(0), endpoints: (0..endpoints.max(1)).map(|_| Counters::default()).collect() }
    }

    /// The index of the endpoint in use.
    pub(crate) fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    pub(crate) fn set_current(&self, endpoint: usize) {
        self.current.store(endpoint, Ordering::Relaxed);
        self.epoch.fetch_add(2, Ordering::SeqCst);
    }

    /// A move began or stopped holding the commands (`Shared::hold` calls it once each way,
    /// so the epoch is odd while a hold lasts).
    pub(crate) fn hold_changed(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Where a call starts: the epoch (read first), then the endpoint in use.
    pub(crate) fn start(&self) -> Start {
        let epoch = self.epoch.load(Ordering::SeqCst);
        Start { endpoint: self.current(), epoch }
    }

    /// Records a caller's call. If no move held the commands while it ran and the endpoint did
    /// not change (no switch, no reconnect), the outcome counts for the endpoint it started on.
    /// Otherwise the call may have waited through the hold and been written late, or never: an
    /// answer counts for the endpoint in use now (a move switches with nothing in flight; a cut
    /// fails what is in flight, which counts for neither), without its latency (which includes
    /// the wait), and a failure for none (it may have timed out waiting, never written). A move
    /// still dialing holds nothing: calls then count as usual.
    pub(crate) fn record_call(&self, start: Start, outcome: Outcome, elapsed: Duration) {
        let steady = start.epoch % 2 == 0 && self.epoch.load(Ordering::SeqCst) == start.epoch;
        match outcome {
            _ if steady => self.record(start.endpoint, outcome, elapsed),
            Outcome::Answered => self.count(self.current(), Outcome::Answered, None),
            Outcome::Failed | Outcome::Neither => {}
        }
    }

    /// Records one outcome on `endpoint` (a latency only for an answer).
    pub(crate) fn record(&self, endpoint: usize, outcome: Outcome, elapsed: Duration) {
        self.count(endpoint, outcome, Some(elapsed));
    }

    fn count(&self, endpoint: usize, outcome: Outcome, elapsed: Option<Duration>) {
        let Some(c) = self.endpoints.get(endpoint) else { return };
        match outcome {
            Outcome::Answered => {
                c.answered.fetch_add(1, Ordering::Relaxed);
                let Some(elapsed) = elapsed else { return };
                let us = (elapsed.as_micros() as u64).max(1);
                // A lost update between two racing callers only skips one sample.
                let before = c.latency_us.load(Ordering::Relaxed);
                c.latency_us.store(ewma(before, us), Ordering::Relaxed);
            }
            Outcome::Failed => {
                c.failed.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Neither => {}
        }
    }

    pub(crate) fn sample(&self, endpoint: usize) -> Sample {
        let Some(c) = self.endpoints.get(endpoint) else { return Sample::default() };
        let latency = c.latency_us.load(Ordering::Relaxed);
        Sample {
            answered: c.answered.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            latency_us: (latency > 0).then_some(latency),
        }
    }
}

/// An exponentially weighted moving average with weight 1/8 for the new sample (`0` = none).
fn ewma(before: u64, sample: u64) -> u64 {
    if before == 0 {
        sample
    } else {
        (before.saturating_mul(7).saturating_add(sample) / 8).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ServerError;

    #[test]
    fn timeouts_and_refusals_fail_the_node_answers_of_any_kind_do_not() {
        let after = Duration::from_secs(1);
        assert_eq!(judge(&Ok(())), Outcome::Answered);
        assert_eq!(judge::<()>(&Err(Error::Timeout { what: "reply", after })), Outcome::Failed);
        let overloaded = ServerError::new(-32000, "Internal", "The server is unable to handle the request");
        assert_eq!(judge::<()>(&Err(Error::Server(overloaded))), Outcome::Failed);
        let leaving = ServerError::new(-32000, "Internal", "The server is gracefully shutting down");
        assert_eq!(judge::<()>(&Err(Error::Server(leaving))), Outcome::Failed);
        let other = ServerError::new(-32000, "Internal", "boom");
        assert_eq!(judge::<()>(&Err(Error::Server(other.clone()))), Outcome::Answered);
        assert_eq!(judge::<()>(&Err(Error::Auth(other.clone()))), Outcome::Answered);
        assert_eq!(judge::<()>(&Err(Error::Query { index: 0, error: other })), Outcome::Answered);
        for neither in [Error::ConnectionLost, Error::Closed, Error::AuthLost, Error::ConnectionDown, Error::Timeout { what: "checkout", after }] {
            assert_eq!(judge::<()>(&Err(neither)), Outcome::Neither);
        }
    }

    #[test]
    fn counters_are_per_endpoint_and_latency_is_a_moving_average() {
        let stats = NodeStats::new(2);
        stats.record(0, Outcome::Answered, Duration::from_millis(8));
        stats.record(0, Outcome::Failed, Duration::from_secs(5));
        stats.record(1, Outcome::Neither, Duration::ZERO);
        stats.record(7, Outcome::Failed, Duration::ZERO); // not an endpoint: ignored
        assert_eq!(stats.sample(0), Sample { answered: 1, failed: 1, latency_us: Some(8_000) });
        assert_eq!(stats.sample(1), Sample::default());
        for _ in 0..40 {
            stats.record(0, Outcome::Answered, Duration::from_millis(1));
        }
        let latency = stats.sample(0).latency_us.unwrap();
        assert!((1_000..1_100).contains(&latency), "{latency}");
        assert_eq!(ewma(0, 5), 5);
        assert_eq!(ewma(800, 0), 700);
    }

    #[test]
    fn a_call_counts_for_the_endpoint_it_was_written_to() {
        let stats = NodeStats::new(2);
        stats.record_call(stats.start(), Outcome::Failed, Duration::from_secs(2));
        assert_eq!(stats.sample(0).failed, 1, "on the endpoint it started on, nothing switched");
        // Started on 0; a move held the commands and switched to 1 before it ended.
        let (failed, answered) = (stats.start(), stats.start());
        stats.hold_changed(); // the hold begins
        stats.set_current(1);
        stats.hold_changed(); // and ends
        stats.record_call(failed, Outcome::Failed, Duration::from_secs(2));
        assert_eq!((stats.sample(0).failed, stats.sample(1).failed), (1, 0), "a failure across a switch counts for neither");
        stats.record_call(answered, Outcome::Answered, Duration::from_millis(900));
        assert_eq!(stats.sample(0), Sample { answered: 0, failed: 1, latency_us: None });
        assert_eq!(stats.sample(1), Sample { answered: 1, failed: 0, latency_us: None }, "an answer counts where it was written, without the wait through the switch");
        stats.record_call(stats.start(), Outcome::Answered, Duration::from_millis(3));
        assert_eq!(stats.sample(1).latency_us, Some(3_000));
        // A move that held the commands and was given up: the endpoint is the same, but a call
        // begun during the hold, or across its start or end, may never have been written.
        let across = stats.start();
        stats.hold_changed(); // the hold begins
        let during = stats.start();
        stats.hold_changed(); // the move is given up
        stats.record_call(during, Outcome::Failed, Duration::from_secs(2));
        stats.record_call(across, Outcome::Failed, Duration::from_secs(2));
        assert_eq!(stats.sample(1).failed, 0, "calls held by a move count against no node");
        // A reconnect to the same endpoint (no hold) also switches.
        let before = stats.start();
        stats.set_current(1);
        stats.record_call(before, Outcome::Failed, Duration::from_secs(2));
        assert_eq!(stats.sample(1).failed, 0);
        stats.record_call(stats.start(), Outcome::Failed, Duration::from_secs(2));
        assert_eq!(stats.sample(1).failed, 1, "steady again");
    }
}
