//! State shared by a connection's handles and its actor: the server sessions on the socket,
//! request ids, up/down flags, events, the live-query registry, the server's version, what its
//! calls tell of each node, and where it is asked to be (endpoints to avoid, a move).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::broadcast;

use super::node_stats::NodeStats;
use super::reconnect::ConnectionEvent;
use super::relocate::Route;
use super::state::SessionState;
use crate::wire::version::ServerVersion;

/// State shared by the handles and the actor.
pub(crate) struct Shared {
    /// Server sessions on this socket (`None` = the default session).
    pub(super) sessions: Mutex<HashMap<Option<uuid::Uuid>, SessionState>>,
    pub(super) next_id: AtomicU64,
    /// Connected and replayed (false while reconnecting).
    pub(crate) up: AtomicBool,
    /// Reconnecting for longer than the policy's `max_attempts`.
    pub(crate) down: AtomicBool,
    /// Requests written and not yet answered.
    pub(crate) in_flight: std::sync::atomic::AtomicUsize,
    /// Server sessions found expired and authenticated again with their still-valid token.
    pub(crate) sessions_renewed: AtomicU64,
    pub(super) endpoint: Mutex<String>,
    pub(super) events: broadcast::Sender<ConnectionEvent>,
    pub(super) live: Mutex<crate::connection::live_registry::LiveRegistry>,
    /// The version the server reported on the current socket (see `negotiate`); `None` when
    /// it did not say.
    pub(super) server_version: Mutex<Option<ServerVersion>>,
    /// Calls answered and failed, and latency, per endpoint.
    pub(crate) stats: NodeStats,
    /// Endpoints to avoid and a requested move (set by a pool's health supervisor).
    pub(super) route: Mutex<Route>,
    /// A planned move is under way (dialing, draining or replaying).
    pub(crate) moving: AtomicBool,
    /// A move holds the commands (draining, replaying, switching): a pool's checkout then
    /// gives an identity the move would drop up itself (see `SessionState::take_into_use`).
    pub(crate) holding: AtomicBool,
}

impl Shared {
    /// A connection's state before its first socket: the default session only.
    pub(crate) fn new(config: &super::Config) -> Self {
        Shared {
            sessions: Mutex::new(HashMap::from([(None, SessionState::default())])),
            next_id: AtomicU64::new(1),
            up: AtomicBool::new(true),
            down: AtomicBool::new(false),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            sessions_renewed: AtomicU64::new(0),
            endpoint: Mutex::new(config.endpoints.first().cloned().unwrap_or_default()),
            events: broadcast::channel(256).0,
            live: Mutex::new(crate::connection::live_registry::LiveRegistry::default()),
            server_version: Mutex::new(None),
            stats: NodeStats::new(config.endpoints.len()),
            route: Mutex::new(Route::default()),
            moving: AtomicBool::new(false),
            holding: AtomicBool::new(false),
        }
    }

    /// A planned move begins or ends (its end ends its hold too).
    pub(crate) fn set_moving(&self, on: bool) {
        self.moving.store(on, Ordering::SeqCst);
        if !on {
            self.hold(false);
        }
    }

    /// A move begins or stops holding the commands (calls across a hold are judged apart: see
    /// [`NodeStats::record_call`]).
    pub(crate) fn hold(&self, on: bool) {
        if self.holding.swap(on, Ordering::SeqCst) != on {
            self.stats.hold_changed();
        }
    }

    pub(crate) fn sessions(&self) -> MutexGuard<'_, HashMap<Option<uuid::Uuid>, SessionState>> {
        // A poisoned lock only means a panic elsewhere while holding it; the map is still valid.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn live(&self) -> MutexGuard<'_, crate::connection::live_registry::LiveRegistry> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn emit(&self, event: ConnectionEvent) {
        let _ = self.events.send(event); // no subscriber is fine
    }

    pub(crate) fn set_endpoint(&self, endpoint: &str) {
        *self.endpoint.lock().unwrap_or_else(|e| e.into_inner()) = endpoint.to_owned();
    }

    pub(crate) fn server_version(&self) -> Option<ServerVersion> {
        self.server_version.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_server_version(&self, version: Option<ServerVersion>) {
        *self.server_version.lock().unwrap_or_else(|e| e.into_inner()) = version;
    }

    pub(crate) fn route(&self) -> MutexGuard<'_, Route> {
        self.route.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Which endpoints (by index) to avoid now.
    pub(crate) fn avoided(&self) -> Vec<bool> {
        self.route().avoid.clone()
    }
}
