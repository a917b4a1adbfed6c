//! A pool's nodes: the endpoints it was given, each with its breaker (see `health.rs`), the
//! event channel, and what the pool shows of them ([`Pool::nodes`], [`Pool::events`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::health::{Breaker, HealthPolicy, NodeState};
use super::Pool;

/// One node of a pool's cluster as it is now ([`Pool::nodes`](crate::Pool::nodes)).
///
/// ```no_run
/// # fn demo(pool: &surreal_pool::Pool) {
/// for node in pool.nodes() {
///     println!("{} {:?}: {} sockets, {} sessions, {} ejections", node.endpoint, node.state, node.sockets, node.sessions, node.ejections);
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStatus {
    /// The node's endpoint, as the connections use it (`ws://host:port/rpc`).
    pub endpoint: String,
    /// Healthy, ejected or being probed (always healthy while health is off or the pool has one
    /// endpoint).
    pub state: NodeState,
    /// The pool's sockets up on it now.
    pub sockets: usize,
    /// The pool's sessions on those sockets.
    pub sessions: usize,
    /// Times it was ejected since the pool started.
    pub ejections: u64,
    /// The recent reply latency on its sockets (a moving average), if any answered yet.
    pub latency: Option<Duration>,
}

/// Why a pool moves a socket ([`PoolEvent::SocketMoving`]).
///
/// ```
/// use surreal_pool::MoveReason;
/// assert_ne!(MoveReason::NodeEjected, MoveReason::Rebalance);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MoveReason {
    /// Its node is ejected.
    NodeEjected,
    /// Its home node (where the configuration puts it) is healthy again.
    Rebalance,
}

/// Something that happened to a pool's nodes. Subscribe with
/// [`Pool::events`](crate::Pool::events); each socket's own events (the moves done or given
/// up, reconnects) are on its [`Connection::events`](crate::Connection::events).
///
/// ```no_run
/// # async fn demo(pool: surreal_pool::Pool) {
/// use surreal_pool::PoolEvent;
/// let mut events = pool.events();
/// while let Ok(event) = events.recv().await {
///     if let PoolEvent::NodeEjected { endpoint, failures, ejected_for, .. } = &event {
///         eprintln!("{endpoint} ejected for {ejected_for:?} after {failures} failed calls");
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PoolEvent {
    /// A node failed too many calls: no new session goes there, reconnects skip it and its
    /// sockets are moved away.
    #[non_exhaustive]
    NodeEjected {
        /// The node.
        endpoint: String,
        /// Failed calls (timed out, refused) that counted.
        failures: u64,
        /// Until it is probed.
        ejected_for: Duration,
    },
    /// An ejected node's time has passed: it is being probed.
    #[non_exhaustive]
    NodeProbing {
        /// The node.
        endpoint: String,
    },
    /// A probe of an ejected node failed: ejected again, for longer.
    #[non_exhaustive]
    ProbeFailed {
        /// The node.
        endpoint: String,
        /// Why (no secrets).
        reason: String,
        /// Until it is probed again.
        ejected_for: Duration,
    },
    /// An ejected node passed its probes: it takes sessions again, and its sockets come back.
    #[non_exhaustive]
    NodeReadmitted {
        /// The node.
        endpoint: String,
    },
    /// A socket was asked to move (done or given up: see its connection's events).
    #[non_exhaustive]
    SocketMoving {
        /// The socket's index in [`Pool::connections`](crate::Pool::connections).
        connection: usize,
        /// The node it is on.
        from: String,
        /// The node it goes to.
        to: String,
        /// Why.
        reason: MoveReason,
    },
}

/// The nodes and their breakers, shared by the pool and its supervisor.
pub(super) struct Cluster {
    /// Every endpoint of the pool, normalized, in the order given.
    pub(super) nodes: Vec<String>,
    pub(super) policy: HealthPolicy,
    breakers: Mutex<Vec<Breaker>>,
    /// The latest latency seen per node, in microseconds.
    latency_us: Mutex<Vec<Option<u64>>>,
    pub(super) events: broadcast::Sender<PoolEvent>,
    /// Sessions each connection should shed as they come back (see `spread::excess`).
    shed: Vec<AtomicUsize>,
    /// Whether any connection should (so that a return checks nothing more, usually).
    shedding: AtomicBool,
}

impl Cluster {
    pub(super) fn new(nodes: Vec<String>, policy: HealthPolicy, connections: usize) -> Self {
        let now = Instant::now();
        let breakers = Mutex::new(nodes.iter().map(|_| Breaker::new(now)).collect());
        let latency_us = Mutex::new(vec![None; nodes.len()]);
        let shed = (0..connections).map(|_| AtomicUsize::new(0)).collect();
        Cluster { nodes, policy, breakers, latency_us, events: broadcast::channel(256).0, shed, shedding: AtomicBool::new(false) }
    }

    /// Sets how many sessions each connection should shed.
    pub(super) fn set_shed(&self, budgets: &[usize]) {
        for (slot, n) in self.shed.iter().zip(budgets) {
            slot.store(*n, Ordering::Relaxed);
        }
        self.shedding.store(budgets.iter().any(|n| *n > 0), Ordering::Relaxed);
    }

    /// Whether some connection sheds sessions now.
    pub(super) fn shedding(&self) -> bool {
        self.shedding.load(Ordering::Relaxed)
    }

    /// Whether a session of `connection` coming back should be shed (and counts it if so).
    pub(super) fn take_shed(&self, connection: usize) -> bool {
        self.shed.get(connection).is_some_and(|n| n.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok())
    }

    /// Whether the supervisor runs: health on, and two endpoints or more.
    pub(super) fn supervised(&self) -> bool {
        self.policy.enabled && self.nodes.len() > 1
    }

    pub(super) fn node(&self, endpoint: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n == endpoint)
    }

    pub(super) fn breakers(&self) -> MutexGuard<'_, Vec<Breaker>> {
        self.breakers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn set_latency(&self, latency: Vec<Option<u64>>) {
        *self.latency_us.lock().unwrap_or_else(|e| e.into_inner()) = latency;
    }

    pub(super) fn latency_us(&self) -> Vec<Option<u64>> {
        self.latency_us.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn emit(&self, event: PoolEvent) {
        let _ = self.events.send(event); // no subscriber is fine
    }
}

impl Pool {
    /// The pool's nodes (its endpoints, in the order given): each one's state, the sockets and
    /// sessions on it now, its ejections and latency. With one endpoint, or health off
    /// ([`HealthPolicy::enabled`]), every node shows as healthy.
    ///
    /// ```no_run
    /// # fn demo(pool: &surreal_pool::Pool) {
    /// use surreal_pool::NodeState;
    /// for node in pool.nodes().iter().filter(|n| n.state != NodeState::Healthy) {
    ///     eprintln!("{} is {:?} (ejected {} times)", node.endpoint, node.state, node.ejections);
    /// }
    /// # }
    /// ```
    pub fn nodes(&self) -> Vec<NodeStatus> {
        let shared = &self.inner.shared;
        let cluster = &shared.cluster;
        // The breakers, then the table: never both locks at once.
        let breakers: Vec<(NodeState, u64)> = cluster.breakers().iter().map(|b| (b.state(), b.ejections)).collect();
        let latency = cluster.latency_us();
        let per_connection = shared.table().sessions_by_connection();
        let mut out: Vec<NodeStatus> = cluster
            .nodes
            .iter()
            .zip(breakers)
            .zip(latency)
            .map(|((endpoint, (state, ejections)), latency)| NodeStatus {
                endpoint: endpoint.clone(),
                state,
                sockets: 0,
                sessions: 0,
                ejections,
                latency: latency.map(Duration::from_micros),
            })
            .collect();
        for (i, conn) in shared.connections.iter().enumerate() {
            if let (true, Some(n)) = (conn.is_up(), cluster.node(&conn.endpoint())) {
                out[n].sockets += 1;
                out[n].sessions += per_connection.get(i).map(|c| c.iter().sum::<usize>()).unwrap_or(0);
            }
        }
        out
    }

    /// Subscribes to the pool's node events: ejections, probes, readmissions and the socket
    /// moves asked for (see [`HealthPolicy`]). The channel keeps the last 256 events for a slow
    /// subscriber. A pool with one endpoint sends none.
    ///
    /// ```no_run
    /// # async fn demo(pool: surreal_pool::Pool) {
    /// let mut events = pool.events();
    /// while let Ok(event) = events.recv().await {
    ///     println!("{event:?}");
    /// }
    /// # }
    /// ```
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<PoolEvent> {
        self.inner.shared.cluster.events.subscribe()
    }
}
