//! Moving a connection to another endpoint of the cluster on purpose, without failing a
//! request: what a pool asks for to take a socket off an ejected node or back to its own.
//!
//! 1. **Dial** the new endpoint and ask its `version`, in a task of its own, while the actor
//!    goes on serving the old socket (a node that does not answer costs nothing but the dial).
//! 2. **Drain**: the actor stops writing commands (they wait in the channel, bounded by their
//!    own timeouts) until every request in flight is answered, at most [`DRAIN_LIMIT`].
//! 3. **Check**: nothing in flight, no transaction open (a transaction lives on its socket);
//!    otherwise the move is given up.
//! 4. **Replay** every session on the new socket ([`replay::run`]: attach, `use`, `let`, its
//!    own identity, live queries) — the same requests a reconnect sends, before any command;
//!    the whole replay bounded by the connect and request timeouts and, for a planned move, by
//!    [`REPLAY_LIMIT`] (the old socket is not served meanwhile).
//! 5. **Switch** if the replay is complete (every session back as it was): the outcome is
//!    recorded, the new socket serves, the old one is closed. Otherwise nothing is recorded,
//!    the new socket is dropped and the old one serves on, its sessions as they were. A
//!    session someone holds whose access token has expired (no refresh token, no remembered
//!    credentials) cannot come back, though its server session may still be valid on the old
//!    socket (`FOR SESSION` longer than `FOR TOKEN`): such a session keeps the move from
//!    happening until it is returned to its pool or its caller drops it. Idle in a pool, it
//!    does not: its identity is given up at the commit, and the pool prepares it again (signs
//!    it in anew, say) when it is next checked out — a pool marks idle only sessions whose
//!    identity it can make anew, and a checkout while a move holds the commands gives such an
//!    identity up itself (`SessionState::take_into_use`); the commit gives the move up if a
//!    session it counted on giving up was taken meanwhile still resting on that identity
//!    (`Replayed::commit_if_still_idle`). A live query whose stream is still read keeps the
//!    move from happening, whoever holds its session.
//!    Before switching, the old socket's last notifications are read ([`settle()`], at most
//!    [`SETTLE_LIMIT`](super::settle::SETTLE_LIMIT)).
//!
//! So a planned move holds the socket's commands for at most the drain limit, the replay
//! limit and the settle limit: 3.5 s, however slow the new node is (and, should a live query's
//! stream have been dropped during the move, the kill of its new registration, bounded by the
//! request timeout).
//!
//! Every step that fails gives the move up ([`ConnectionEvent::MoveAbandoned`]) and leaves the
//! connection where it was; a pool asks again later. A failed dial or replay counts against
//! the new endpoint's node ([`super::node_stats`]).
//!
//! A *forced* move (off a node the pool ejected) does not stay behind for the old node: past
//! the drain limit, or with a transaction open, the old socket is given up as if it were cut
//! (the requests still in flight there fail with `ConnectionLost`, as at any cut) and the
//! connection reconnects, starting with the new endpoint; and its replay is recorded whatever
//! it holds, as a reconnect's is (a session that cannot come back is auth-lost, never another).

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::{timeout, Instant};
use tracing::Instrument;

use super::actor::Actor;
use super::negotiate::{self, Negotiated};
use super::node_stats::Outcome;
use super::reconnect::ConnectionEvent;
use super::settle::settle;
use super::{dial, replay, Connection, Socket};

/// The longest a move waits for the requests in flight to be answered before it gives up
/// (the connection ticks at that moment; commands made meanwhile wait that long at most).
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// The longest a planned move's replay on the new socket may take (commands are held
/// meanwhile); past it the move is given up. A forced move's is bounded by the connect and
/// request timeouts only.
pub(crate) const REPLAY_LIMIT: Duration = Duration::from_secs(2);

/// Where a connection is asked to be, by index into its endpoints.
#[derive(Debug, Default)]
pub(crate) struct Route {
    /// Endpoints whose node is ejected: reconnects skip them (unless every one is).
    pub(crate) avoid: Vec<bool>,
    /// A move asked for and not yet started, and whether it is forced.
    pub(crate) move_to: Option<(usize, bool)>,
    /// After a planned move was given up once its commands were held (drained): no planned
    /// move is taken before this instant, and
    /// the next pause (doubling from [`MOVE_BACKOFF_FIRST`] up to [`MOVE_BACKOFF_MAX`], reset by
    /// a move that succeeds). Each try holds the socket's commands for up to the drain limit,
    /// so a socket whose sessions always have a long request or a transaction open must not be
    /// asked again at every health check.
    pub(crate) backoff: Option<(Instant, Duration)>,
}

/// The first pause after a planned move was given up.
pub(crate) const MOVE_BACKOFF_FIRST: Duration = Duration::from_secs(5);

/// The longest pause between planned moves given up in a row.
pub(crate) const MOVE_BACKOFF_MAX: Duration = Duration::from_secs(120);

impl Route {
    /// Whether a planned (not forced) move may be asked for at `now`.
    pub(crate) fn may_plan(&self, now: Instant) -> bool {
        self.backoff.is_none_or(|(until, _)| now >= until)
    }

    /// A planned move was given up at `now`: the next waits, twice as long as the last wait.
    pub(crate) fn given_up(&mut self, now: Instant) {
        let pause = self.backoff.map_or(MOVE_BACKOFF_FIRST, |(_, last)| (last * 2).min(MOVE_BACKOFF_MAX));
        self.backoff = Some((now + pause, pause));
    }
}

/// The move to start of the one asked (`(endpoint, forced)`): none to the endpoint in use, to
/// one the connection does not have, or to one to avoid (its node was ejected after the move
/// was asked; the pool asks again if need be).
fn to_start(asked: Option<(usize, bool)>, current: usize, avoid: &[bool], endpoints: usize) -> Option<(usize, bool)> {
    asked.filter(|&(target, _)| target != current && target < endpoints && !avoid.get(target).copied().unwrap_or(false))
}

/// A dialed socket, its `version` answer, ready to take the sessions.
pub(crate) type Ready = (Socket, Negotiated);

/// A move under way.
pub(crate) struct Move {
    target: usize,
    forced: bool,
    started: Instant,
    dialed: oneshot::Receiver<Result<Ready, String>>,
    /// Since when commands are held.
    draining_since: Option<Instant>,
    ready: Option<Ready>,
}

impl Connection {
    /// Sets which endpoints to avoid (their node is ejected): reconnects skip them.
    pub(crate) fn avoid(&self, avoided: impl Fn(&str) -> bool) {
        let avoid = self.config().endpoints.iter().map(|e| avoided(e)).collect();
        self.shared().route().avoid = avoid;
    }

    /// Whether the endpoint in use is one to avoid.
    pub(crate) fn on_avoided(&self) -> bool {
        let current = self.shared().stats.current();
        self.shared().route().avoid.get(current).copied().unwrap_or(false)
    }

    /// Asks the connection to move to `endpoint` (one of its own), at its next tick; `forced`
    /// when its node is ejected (see the module's docs). `false` if the endpoint is not one of
    /// its own.
    pub(crate) fn move_to(&self, endpoint: &str, forced: bool) -> bool {
        let Some(index) = self.config().endpoints.iter().position(|e| e == endpoint) else { return false };
        let mut route = self.shared().route();
        if !forced && !route.may_plan(Instant::now()) {
            return false; // a planned move was given up lately (see `Route::backoff`)
        }
        route.move_to = Some((index, forced));
        true
    }

    /// Whether a move is under way or asked for.
    pub(crate) fn is_moving(&self) -> bool {
        self.shared().moving.load(Ordering::SeqCst) || self.shared().route().move_to.is_some()
    }
}

impl Actor {
    /// On each tick: starts a move asked for, and follows the one under way (dial done: start
    /// draining; drained too long: give up, or, forced, give the socket up: the reason is
    /// returned, and the serve loop ends as if the socket were lost).
    pub(super) fn check_move(&mut self) -> Option<String> {
        if self.moving.is_none() {
            let asked = {
                let mut route = self.shared.route();
                let asked = route.move_to.take();
                to_start(asked, self.endpoint, &route.avoid, self.config.endpoints.len())
            };
            match asked {
                Some((target, forced)) => self.start_move(target, forced),
                None => return None,
            }
        }
        let m = self.moving.as_mut()?;
        if let Some(since) = m.draining_since {
            if since.elapsed() >= DRAIN_LIMIT {
                let reason = format!("requests were still in flight after {DRAIN_LIMIT:?}");
                if m.forced {
                    return Some(self.give_up_socket(&reason));
                }
                self.abandon(reason, false);
            }
            return None;
        }
        match m.dialed.try_recv() {
            Ok(Ok(ready)) => {
                m.ready = Some(ready);
                m.draining_since = Some(Instant::now());
                self.draining = true;
                self.shared.hold(true);
            }
            Ok(Err(reason)) => self.abandon(reason, true),
            Err(oneshot::error::TryRecvError::Empty) => {} // still dialing (bounded by the connect timeout)
            Err(oneshot::error::TryRecvError::Closed) => self.abandon("the dial ended without an answer".into(), true),
        }
        None
    }

    /// A forced move that cannot wait: the move is over, the reconnect that follows starts
    /// with its endpoint. Returns why the socket is given up.
    fn give_up_socket(&mut self, why: &str) -> String {
        self.draining = false;
        self.shared.set_moving(false);
        match self.moving.take() {
            Some(m) => {
                self.endpoint = m.target;
                format!("leaving an ejected node for {}: {why}", self.config.endpoints[m.target])
            }
            None => why.to_owned(),
        }
    }

    fn start_move(&mut self, target: usize, forced: bool) {
        let endpoint = self.config.endpoints[target].clone();
        tracing::info!(from = %self.config.endpoints[self.endpoint], to = %endpoint, "moving the connection");
        self.shared.set_moving(true);
        let (tx, dialed) = oneshot::channel();
        let (shared, config) = (self.shared.clone(), self.config.clone());
        tokio::spawn(async move {
            let result = async {
                let mut socket = dial(&endpoint, &config).await.map_err(|e| e.to_string())?;
                let negotiated = negotiate::exchange(&mut socket, &shared, &config).await?;
                Ok((socket, negotiated))
            }
            .await;
            let _ = tx.send(result); // a move given up meanwhile drops the socket here
        });
        self.moving = Some(Move { target, forced, started: Instant::now(), dialed, draining_since: None, ready: None });
    }

    /// When the drain under way reaches its limit (the serve loop ticks then).
    pub(super) fn drain_deadline(&self) -> Option<Instant> {
        let since = self.moving.as_ref()?.draining_since?;
        Some(since + DRAIN_LIMIT)
    }

    /// The dialed socket, once drained (the serve loop then hands it to [`Actor::finish_move`]).
    pub(super) fn take_ready(&mut self) -> Option<Ready> {
        self.moving.as_mut().and_then(|m| m.ready.take())
    }

    /// Gives the move up: the connection stays where it is. `node`: the new endpoint's node is
    /// to blame (it could not be dialed, or did not take the sessions).
    fn abandon(&mut self, reason: String, node: bool) {
        self.draining = false;
        self.shared.set_moving(false);
        let Some(m) = self.moving.take() else { return };
        if node {
            self.shared.stats.record(m.target, Outcome::Failed, Duration::ZERO);
        }
        // Only a try that held the commands backs off: a failed dial costs nothing but the
        // dial, and counts against the node, whose breaker then keeps moves away from it.
        if !m.forced && m.draining_since.is_some() {
            self.shared.route().given_up(Instant::now());
        }
        let to = self.config.endpoints[m.target].clone();
        tracing::info!(%to, %reason, "move given up; the connection stays");
        crate::telemetry::moved(false);
        self.shared.emit(ConnectionEvent::MoveAbandoned { to, reason });
    }

    /// The socket was lost or the connection closed: a move under way is over, and one asked
    /// for and not yet started is forgotten (it was asked of the lost socket; the reconnect
    /// may land anywhere, and the pool asks again if need be).
    pub(super) fn forget_move(&mut self, reason: &str) {
        self.shared.route().move_to = None;
        if self.moving.is_some() {
            self.abandon(reason.to_owned(), false);
        }
    }

    /// Steps 3 to 5: checks, replays on `next`, and switches `socket` to it if every session
    /// came back (or, forced, whatever came back); otherwise leaves `socket` serving as it was.
    /// Returns why the socket is given up, for a forced move that cannot switch now.
    pub(super) async fn finish_move(&mut self, socket: &mut Socket, next: Ready) -> Option<String> {
        self.draining = false;
        let (target, forced) = self.moving.as_ref().map(|m| (m.target, m.forced))?;
        let busy = self.shared.sessions().values().any(|s| s.open_transactions > 0 || s.effects_in_flight > 0);
        if busy || !self.pending.is_empty() {
            let reason = "a transaction was open, or a state change in flight";
            if forced {
                return Some(self.give_up_socket(reason));
            }
            self.abandon(reason.into(), false);
            return None;
        }
        let (mut new, negotiated) = next;
        let (from, to) = (self.config.endpoints[self.endpoint].clone(), self.config.endpoints[target].clone());
        let span = tracing::info_span!("surreal_pool.move", %from, %to);
        // The old socket is not served meanwhile: the whole replay is bounded, a planned move's
        // by its own limit too (it can be given up: the socket serves on where it is).
        let mut bound = self.config.connect_timeout.min(self.config.request_timeout);
        if !forced {
            bound = bound.min(REPLAY_LIMIT);
        }
        let replay = timeout(bound, replay::run(&mut new, &self.shared, &self.config, if forced { replay::Occasion::ForcedMove } else { replay::Occasion::PlannedMove })).instrument(span.clone()).await;
        // Whether the node is to blame: a session that would not come back as it was is about
        // that session (a refused re-authenticate, say), not about the node, so it counts
        // no failure against the node (it would eject a healthy node otherwise).
        let failed = match replay {
            Ok(Ok(replayed)) if forced || replayed.complete() => Ok(replayed),
            Ok(Ok(_)) => Err(("a session would not have come back as it was".to_string(), false)),
            Ok(Err(reason)) => Err((format!("the replay failed: {reason}"), true)),
            Err(_) => Err((format!("the replay took longer than {bound:?}"), true)),
        };
        let replayed = match failed {
            Ok(replayed) => replayed,
            Err((reason, node)) => {
                self.abandon(reason, node);
                return None;
            }
        };
        // From here the new socket is the connection's (unless a session given up as idle was
        // taken meanwhile: see `Replayed::commit_if_still_idle`).
        let old_live = self.shared.live().bound();
        let committed = if forced { Some(replayed.commit(&self.shared)) } else { replayed.commit_if_still_idle(&self.shared) };
        let Some(replay::Committed { mut report, orphans, notes }) = committed else {
            self.abandon("a session whose identity the move would give up was checked out meanwhile".into(), false);
            return None;
        };
        // The live queries are registered on both sockets now: the old one's last notifications
        // first, then those the new one delivered during the replay.
        match settle(socket, &self.shared, &old_live).instrument(span.clone()).await {
            Ok(kills) => tracing::debug!(kills, "the old socket's live queries ended"),
            Err(reason) => tracing::debug!(%reason, "the old socket's live queries did not all end in time; the socket is left anyway"),
        }
        replay::route(&self.shared, notes);
        let killed = replay::kill_orphans(&mut new, &self.shared, &self.config, &mut report.requests, orphans).instrument(span).await;
        if let Err(reason) = killed {
            tracing::debug!(%reason, "a kill after the move failed; the serve loop will see the socket fail");
        }
        for session in report.auth_lost {
            self.shared.emit(ConnectionEvent::SessionAuthLost { session });
        }
        self.clear_internal();
        self.shared.set_server_version(negotiated.version().cloned());
        self.shared.set_endpoint(&to);
        self.shared.stats.set_current(target);
        self.endpoint = target;
        let mut old = std::mem::replace(socket, new);
        tokio::spawn(async move {
            let _ = timeout(Duration::from_secs(1), futures_util::SinkExt::close(&mut old)).await;
        });
        let (elapsed, paused) = self.moving.take().map(|m| (m.started.elapsed(), m.draining_since.map(|d| d.elapsed()).unwrap_or_default())).unwrap_or_default();
        self.shared.set_moving(false);
        let paused_ms = paused.as_millis() as u64;
        tracing::info!(%from, %to, sessions = report.sessions, elapsed_ms = elapsed.as_millis() as u64, paused_ms, "connection moved");
        crate::telemetry::moved(true);
        self.shared.route().backoff = None;
        self.shared.emit(ConnectionEvent::Moved { from, to, sessions: report.sessions, requests: report.requests, elapsed, paused });
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_is_started_only_to_another_endpoint_of_its_own_not_to_avoid() {
        let avoid = [false, true, false];
        assert_eq!(to_start(Some((2, false)), 0, &avoid, 3), Some((2, false)));
        assert_eq!(to_start(Some((2, true)), 0, &[], 3), Some((2, true)), "nothing known to avoid");
        assert_eq!(to_start(Some((0, false)), 0, &avoid, 3), None, "already there");
        assert_eq!(to_start(Some((1, true)), 0, &avoid, 3), None, "its node was ejected since");
        assert_eq!(to_start(Some((3, false)), 0, &avoid, 3), None, "not one of its endpoints");
        assert_eq!(to_start(None, 0, &avoid, 3), None);
    }

    #[test]
    fn planned_moves_given_up_back_off_doubling_and_a_success_resets() {
        let t0 = Instant::now();
        let mut route = Route::default();
        assert!(route.may_plan(t0));
        route.given_up(t0);
        assert!(!route.may_plan(t0 + MOVE_BACKOFF_FIRST - Duration::from_millis(1)));
        assert!(route.may_plan(t0 + MOVE_BACKOFF_FIRST));
        let t1 = t0 + MOVE_BACKOFF_FIRST;
        route.given_up(t1);
        assert!(!route.may_plan(t1 + MOVE_BACKOFF_FIRST));
        assert!(route.may_plan(t1 + 2 * MOVE_BACKOFF_FIRST));
        for _ in 0..10 {
            route.given_up(t1);
        }
        assert_eq!(route.backoff.map(|(_, pause)| pause), Some(MOVE_BACKOFF_MAX));
        route.backoff = None; // what a move that succeeds does
        assert!(route.may_plan(t1));
    }
}
