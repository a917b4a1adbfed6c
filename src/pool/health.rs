//! Node health, as plain data: [`HealthPolicy`] (the settings) and the circuit breaker each
//! node of a pool has (`Breaker`: healthy → ejected → probing → healthy), with the ejection
//! backoff. No I/O and no clock of its own (the caller passes `now`), so every transition is
//! unit-tested here; the supervisor (`supervisor.rs`) feeds it and acts on what it says.

use std::time::{Duration, Instant};

/// The longest ejection a policy may ask for (a larger one would overflow a deadline).
const MAX_EJECTION: Duration = Duration::from_secs(86_400);

/// The shortest probe timeout a policy may ask for (a zero one would fail every probe, and an
/// ejected node would never come back).
const MIN_PROBE_TIMEOUT: Duration = Duration::from_millis(10);

/// Default time between two looks at the nodes (samples of the calls' outcomes, probes).
pub(crate) const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// Default count of failed calls (refused or timed out) that ejects a node.
pub(crate) const DEFAULT_EJECT_AFTER: u32 = 5;
/// Default first ejection; doubled on each ejection in a row, up to the maximum.
pub(crate) const DEFAULT_EJECTION: Duration = Duration::from_secs(5);
/// Default longest ejection.
pub(crate) const DEFAULT_MAX_EJECTION: Duration = Duration::from_secs(60);
/// Default bound on one probe.
pub(crate) const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Default count of probes in a row an ejected node must pass to take traffic again.
pub(crate) const DEFAULT_READMIT_AFTER: u32 = 2;

/// How a pool over several nodes of a cluster judges each node, and what it does about it.
///
/// Every `interval` the pool counts, per node, the calls that failed for the node's sake (the
/// reply timed out, the server refused the call as overloaded or shutting down, a reconnect or
/// a planned move to it failed) and the calls it answered. A node with `eject_after` such
/// failures, in intervals where failures outnumbered answers, is **ejected**: no new session
/// is placed on it, reconnects skip it, and its sockets are moved to the other nodes (every
/// session replayed there with its own identity before any new command). After the ejection
/// time (`ejection`, doubled on each ejection in a row up to `max_ejection`) it is **probed**
/// — a fresh socket must answer an RPC `ping` and, with `ready_check`, `GET /ready` must answer
/// 200 — and after `readmit_after` passing probes in a row it is **healthy** again; a failed
/// probe ejects it anew. The last healthy node is never ejected (there would be nowhere to go).
///
/// With `rebalance`, a socket that is not on its *home* node (socket `i` of a pool starts on
/// endpoint `i mod n`) while that node is healthy is moved back, so the spread matches the
/// configuration again once a node returns; and sessions created elsewhere meanwhile are
/// evened out: a socket holding more than its share sheds sessions as they come back from
/// their checkouts (each is replaced by one created where placement says), so the returned
/// node carries its share of the sessions, and of the requests, again.
///
/// | setting | default |
/// |---|---|
/// | [`interval`](Self::interval) | 1 s |
/// | [`eject_after`](Self::eject_after) | 5 failed calls |
/// | [`ejection`](Self::ejection) | 5 s, doubling, at most 60 s |
/// | [`probe_timeout`](Self::probe_timeout) | 2 s |
/// | [`readmit_after`](Self::readmit_after) | 2 passing probes |
/// | [`ready_check`](Self::ready_check) | on (`GET /ready` as well as a `ping`) |
/// | [`rebalance`](Self::rebalance) | on |
/// | [`enabled`](Self::enabled) | on (it acts only when the pool has two endpoints or more) |
///
/// ```no_run
/// # async fn demo() -> surreal_pool::Result<()> {
/// use std::time::Duration;
/// use surreal_pool::{HealthPolicy, Pool};
/// let pool = Pool::builder("ws://10.0.0.1:8000")
///     .endpoint("ws://10.0.0.2:8000")
///     .endpoint("ws://10.0.0.3:8000")
///     .connections(6) // two sockets per node
///     .health(HealthPolicy::default().eject_after(3).ejection(Duration::from_secs(2), Duration::from_secs(30)))
///     .build()
///     .await?;
/// for node in pool.nodes() {
///     println!("{}: {:?}, {} sockets", node.endpoint, node.state, node.sockets);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HealthPolicy {
    pub(crate) enabled: bool,
    pub(crate) interval: Duration,
    pub(crate) eject_after: u32,
    pub(crate) ejection: Duration,
    pub(crate) max_ejection: Duration,
    pub(crate) probe_timeout: Duration,
    pub(crate) readmit_after: u32,
    pub(crate) ready_check: bool,
    pub(crate) rebalance: bool,
}

impl Default for HealthPolicy {
    /// The defaults in the table above.
    fn default() -> Self {
        HealthPolicy {
            enabled: true,
            interval: DEFAULT_HEALTH_INTERVAL,
            eject_after: DEFAULT_EJECT_AFTER,
            ejection: DEFAULT_EJECTION,
            max_ejection: DEFAULT_MAX_EJECTION,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            readmit_after: DEFAULT_READMIT_AFTER,
            ready_check: true,
            rebalance: true,
        }
    }
}

impl HealthPolicy {
    /// Turns node health and rebalancing on or off (default on). Off, a pool over several
    /// endpoints behaves as before: sockets fail over and stay where they land.
    ///
    /// ```
    /// let builder = surreal_pool::Pool::builder("ws://10.0.0.1:8000")
    ///     .endpoint("ws://10.0.0.2:8000")
    ///     .health(surreal_pool::HealthPolicy::default().enabled(false));
    /// ```
    pub fn enabled(mut self, on: bool) -> Self {
        self.enabled = on;
        self
    }

    /// Time between two looks at the nodes: outcomes sampled, probes sent, moves asked for
    /// (default 1 s; at least 10 ms).
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = surreal_pool::HealthPolicy::default().interval(Duration::from_millis(250));
    /// ```
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = every.max(Duration::from_millis(10));
        self
    }

    /// Failed calls (timed out, refused) that eject a node (default 5; at least 1).
    ///
    /// ```
    /// let policy = surreal_pool::HealthPolicy::default().eject_after(3);
    /// ```
    pub fn eject_after(mut self, failures: u32) -> Self {
        self.eject_after = failures.max(1);
        self
    }

    /// The first ejection and the longest (default 5 s and 60 s; at most a day each): each
    /// ejection in a row doubles the time, and a node healthy for `max` starts again from
    /// `first`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = surreal_pool::HealthPolicy::default().ejection(Duration::from_secs(1), Duration::from_secs(10));
    /// ```
    pub fn ejection(mut self, first: Duration, max: Duration) -> Self {
        self.ejection = first.min(MAX_EJECTION);
        self.max_ejection = max.min(MAX_EJECTION).max(self.ejection);
        self
    }

    /// The longest one probe may take, dial and answers included (default 2 s; at least
    /// 10 ms, so that a probe can pass).
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = surreal_pool::HealthPolicy::default().probe_timeout(Duration::from_millis(500));
    /// ```
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout.max(MIN_PROBE_TIMEOUT);
        self
    }

    /// Passing probes in a row an ejected node needs to take traffic again (default 2; at
    /// least 1).
    ///
    /// ```
    /// let policy = surreal_pool::HealthPolicy::default().readmit_after(3);
    /// ```
    pub fn readmit_after(mut self, probes: u32) -> Self {
        self.readmit_after = probes.max(1);
        self
    }

    /// Whether a probe also asks the node's `GET /ready` (plain HTTP for `ws://`, HTTPS for
    /// `wss://`, on the endpoint's host and port), which SurrealDB answers 200 only once it
    /// has started and, in a cluster, while its heartbeat is fresh (default on). Turn it off
    /// when only `/rpc` is reachable; the probe is then an RPC `ping` on a fresh socket.
    ///
    /// ```
    /// let policy = surreal_pool::HealthPolicy::default().ready_check(false);
    /// ```
    pub fn ready_check(mut self, on: bool) -> Self {
        self.ready_check = on;
        self
    }

    /// Whether sockets move back to their home node once it is healthy, and sessions are
    /// evened out over the sockets again (default on). Off, only the sockets of an ejected node
    /// are moved.
    ///
    /// ```
    /// let policy = surreal_pool::HealthPolicy::default().rebalance(false);
    /// ```
    pub fn rebalance(mut self, on: bool) -> Self {
        self.rebalance = on;
        self
    }

    /// How long the `trips`-th ejection in a row lasts (from 1): `ejection · 2^(trips-1)`,
    /// at most `max_ejection`.
    pub(crate) fn ejection_time(&self, trips: u32) -> Duration {
        // (`ejection` bounds both times by `MAX_EJECTION`.)
        let factor = 2u32.saturating_pow(trips.saturating_sub(1).min(31));
        self.ejection.saturating_mul(factor).min(self.max_ejection)
    }
}

/// A node's state, as the pool sees it (see [`HealthPolicy`]).
///
/// ```no_run
/// # fn demo(pool: &surreal_pool::Pool) {
/// use surreal_pool::NodeState;
/// let sick = pool.nodes().iter().filter(|n| n.state != NodeState::Healthy).count();
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeState {
    /// Takes sessions and sockets.
    Healthy,
    /// Failed too many calls: takes nothing until its ejection time has passed.
    Ejected,
    /// Past its ejection time: probed, and healthy again after enough passing probes.
    Probing,
}

/// What changed in a node's breaker.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Transition {
    /// Ejected for this long, after this many failed calls.
    Ejected { failures: u64, ejected_for: Duration },
    /// The ejection time has passed: probes start.
    Probing,
    /// A probe failed: ejected again, for this long.
    ProbeFailed { ejected_for: Duration },
    /// Enough probes passed.
    Readmitted,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Healthy,
    Ejected { until: Instant },
    Probing { passed: u32 },
}

/// One node's circuit breaker.
#[derive(Debug, Clone)]
pub(crate) struct Breaker {
    phase: Phase,
    /// Failed calls counted towards an ejection (reset by an interval the answers won; kept
    /// through a tie or a quiet interval).
    failures: u64,
    /// Ejections in a row (reset after `max_ejection` healthy).
    trips: u32,
    healthy_since: Instant,
    /// Ejections since the pool started.
    pub(crate) ejections: u64,
}

impl Breaker {
    pub(crate) fn new(now: Instant) -> Self {
        Breaker { phase: Phase::Healthy, failures: 0, trips: 0, healthy_since: now, ejections: 0 }
    }

    pub(crate) fn state(&self) -> NodeState {
        match self.phase {
            Phase::Healthy => NodeState::Healthy,
            Phase::Ejected { .. } => NodeState::Ejected,
            Phase::Probing { .. } => NodeState::Probing,
        }
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.phase == Phase::Healthy
    }

    /// One interval's outcomes of calls on this node: `answered` calls, `failed` ones (timed
    /// out, refused). `last_healthy`: no other node is healthy, so this one is not ejected.
    /// Outcomes while ejected or probing are ignored (stragglers of sockets being moved).
    pub(crate) fn observe(&mut self, policy: &HealthPolicy, now: Instant, answered: u64, failed: u64, last_healthy: bool) -> Option<Transition> {
        if self.phase != Phase::Healthy {
            return None;
        }
        if now.duration_since(self.healthy_since) >= policy.max_ejection {
            self.trips = 0; // healthy long enough: the next ejection is a first one again
        }
        if failed > answered {
            self.failures += failed;
        } else if answered > failed {
            self.failures = 0;
        }
        if self.failures >= u64::from(policy.eject_after) && !last_healthy {
            let failures = std::mem::take(&mut self.failures);
            let ejected_for = self.eject(policy, now);
            return Some(Transition::Ejected { failures, ejected_for });
        }
        None
    }

    /// Time passes: an ejection past its time turns to probing.
    pub(crate) fn tick(&mut self, now: Instant) -> Option<Transition> {
        match self.phase {
            Phase::Ejected { until } if now >= until => {
                self.phase = Phase::Probing { passed: 0 };
                Some(Transition::Probing)
            }
            _ => None,
        }
    }

    /// Whether a probe is due (the node is probing).
    pub(crate) fn wants_probe(&self) -> bool {
        matches!(self.phase, Phase::Probing { .. })
    }

    /// A probe's outcome.
    pub(crate) fn probed(&mut self, policy: &HealthPolicy, now: Instant, passed: bool) -> Option<Transition> {
        let Phase::Probing { passed: before } = self.phase else { return None };
        if !passed {
            let ejected_for = self.eject(policy, now);
            return Some(Transition::ProbeFailed { ejected_for });
        }
        if before + 1 >= policy.readmit_after {
            self.phase = Phase::Healthy;
            self.failures = 0;
            self.healthy_since = now;
            return Some(Transition::Readmitted);
        }
        self.phase = Phase::Probing { passed: before + 1 };
        None
    }

    fn eject(&mut self, policy: &HealthPolicy, now: Instant) -> Duration {
        self.trips = self.trips.saturating_add(1);
        self.ejections += 1;
        let ejected_for = policy.ejection_time(self.trips);
        // Bounded by the builder, so this cannot overflow; saturate anyway rather than panic.
        let until = now.checked_add(ejected_for).unwrap_or(now + MAX_EJECTION);
        self.phase = Phase::Ejected { until };
        ejected_for
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HealthPolicy {
        HealthPolicy::default().eject_after(3).ejection(Duration::from_secs(1), Duration::from_secs(8)).readmit_after(2)
    }

    /// The table in `HealthPolicy`'s docs says these.
    #[test]
    fn defaults_are_the_documented_ones() {
        let p = HealthPolicy::default();
        assert!(p.enabled && p.ready_check && p.rebalance);
        assert_eq!(p.interval, Duration::from_secs(1));
        assert_eq!(p.eject_after, 5);
        assert_eq!((p.ejection, p.max_ejection), (Duration::from_secs(5), Duration::from_secs(60)));
        assert_eq!(p.probe_timeout, Duration::from_secs(2));
        assert_eq!(p.readmit_after, 2);
    }

    #[test]
    fn ejections_double_up_to_the_maximum() {
        let p = policy();
        let times: Vec<u64> = (1..7).map(|t| p.ejection_time(t).as_secs()).collect();
        assert_eq!(times, [1, 2, 4, 8, 8, 8]);
        assert_eq!(p.ejection_time(u32::MAX), Duration::from_secs(8));
        // Settings are clamped to what makes sense.
        let q = HealthPolicy::default().eject_after(0).readmit_after(0).ejection(Duration::from_secs(9), Duration::from_secs(1));
        assert_eq!((q.eject_after, q.readmit_after, q.max_ejection), (1, 1, Duration::from_secs(9)));
    }

    #[test]
    fn failures_that_outnumber_answers_eject_a_node() {
        let (p, t0) = (policy(), Instant::now());
        let mut b = Breaker::new(t0);
        assert_eq!(b.observe(&p, t0, 0, 2, false), None, "2 of 3");
        assert_eq!(b.observe(&p, t0, 10, 0, false), None, "answers reset the count");
        assert_eq!(b.observe(&p, t0, 0, 2, false), None);
        assert_eq!(b.observe(&p, t0, 5, 5, false), None, "a tie counts for the node: no failure added, none forgotten");
        assert_eq!(b.observe(&p, t0, 1, 2, false), Some(Transition::Ejected { failures: 4, ejected_for: Duration::from_secs(1) }));
        assert_eq!(b.state(), NodeState::Ejected);
        assert_eq!(b.observe(&p, t0, 0, 100, false), None, "ignored while ejected");
        assert_eq!(b.ejections, 1);
    }

    #[test]
    fn the_last_healthy_node_is_never_ejected() {
        let (p, t0) = (policy(), Instant::now());
        let mut b = Breaker::new(t0);
        assert_eq!(b.observe(&p, t0, 0, 50, true), None);
        assert!(b.is_healthy());
        // Once another node is healthy again, the failures it kept count.
        assert!(matches!(b.observe(&p, t0, 0, 1, false), Some(Transition::Ejected { failures: 51, .. })));
    }

    #[test]
    fn an_ejected_node_is_probed_after_its_time_and_readmitted_after_enough_passing_probes() {
        let (p, t0) = (policy(), Instant::now());
        let mut b = Breaker::new(t0);
        b.observe(&p, t0, 0, 3, false);
        assert!(!b.wants_probe());
        assert_eq!(b.tick(t0 + Duration::from_millis(999)), None, "not before its time");
        assert_eq!(b.tick(t0 + Duration::from_secs(1)), Some(Transition::Probing));
        assert!(b.wants_probe() && b.state() == NodeState::Probing);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(b.probed(&p, t1, true), None, "one of two");
        assert_eq!(b.probed(&p, t1, true), Some(Transition::Readmitted));
        assert!(b.is_healthy() && !b.wants_probe());
        assert_eq!(b.probed(&p, t1, true), None, "no probe outcome counts while healthy");
    }

    #[test]
    fn a_failed_probe_ejects_again_for_longer_and_a_long_healthy_spell_starts_over() {
        let (p, t0) = (policy(), Instant::now());
        let mut b = Breaker::new(t0);
        b.observe(&p, t0, 0, 3, false);
        b.tick(t0 + Duration::from_secs(1));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(b.probed(&p, t1, true), None);
        assert_eq!(b.probed(&p, t1, false), Some(Transition::ProbeFailed { ejected_for: Duration::from_secs(2) }), "passes in a row only");
        assert_eq!(b.tick(t1 + Duration::from_secs(1)), None);
        assert_eq!(b.tick(t1 + Duration::from_secs(2)), Some(Transition::Probing));
        let t2 = t1 + Duration::from_secs(2);
        b.probed(&p, t2, true);
        assert_eq!(b.probed(&p, t2, true), Some(Transition::Readmitted));
        // Ejected again soon after: the third in a row, 4 s.
        assert!(matches!(b.observe(&p, t2, 0, 3, false), Some(Transition::Ejected { ejected_for, .. }) if ejected_for == Duration::from_secs(4)));
        b.tick(t2 + Duration::from_secs(4));
        let t3 = t2 + Duration::from_secs(4);
        b.probed(&p, t3, true);
        b.probed(&p, t3, true);
        // Healthy for the longest ejection (8 s): the next ejection is a first one.
        let later = t3 + Duration::from_secs(8);
        assert!(matches!(b.observe(&p, later, 0, 3, false), Some(Transition::Ejected { ejected_for, .. }) if ejected_for == Duration::from_secs(1)));
        assert_eq!(b.ejections, 4);
    }

    #[test]
    fn extreme_settings_are_bounded_so_that_no_node_is_lost_for_good() {
        let policy = HealthPolicy::default().ejection(Duration::MAX, Duration::MAX).probe_timeout(Duration::ZERO);
        assert_eq!((policy.ejection, policy.max_ejection), (MAX_EJECTION, MAX_EJECTION));
        assert_eq!(policy.probe_timeout, MIN_PROBE_TIMEOUT);
        assert_eq!(policy.ejection_time(40), MAX_EJECTION);
    }
}
