//! Reconnect policy, connection events, and the actor's reconnect loop.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ciborium::Value as Cbor;
use tokio::time::Instant;

use super::actor::Actor;
use super::node_stats::Outcome;
use super::state::Effect;
use super::{dial, Config, Shared, Socket};
use crate::error::Error;
use crate::wire::envelope::Payload;

/// How a connection retries after its socket fails: exponential backoff with jitter.
///
/// Attempt `n` (from 1) waits `min(max_delay, min_delay · 2^(n-1))`, scaled by a random factor
/// in `[1 - jitter, 1]`. After `max_attempts` failed attempts (`0` = never give up) the
/// connection reports itself down: its commands fail at once with [`Error::ConnectionDown`]
/// instead of waiting, and it keeps trying in the background every `max_delay`, so it recovers.
///
/// With several endpoints, a connection moves on to the next endpoint after
/// `failover_after` failed attempts on the current one.
///
/// ```
/// use std::time::Duration;
/// use surreal_pool::ReconnectPolicy;
/// let policy = ReconnectPolicy::default()
///     .min_delay(Duration::from_millis(50))
///     .max_delay(Duration::from_secs(5))
///     .max_attempts(10);
/// assert_eq!(policy.base_delay(1), Duration::from_millis(50));
/// assert_eq!(policy.base_delay(3), Duration::from_millis(200));
/// assert_eq!(policy.base_delay(30), Duration::from_secs(5));
/// ```
///
/// [`Error::ConnectionDown`]: crate::Error::ConnectionDown
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectPolicy {
    min_delay: Duration,
    max_delay: Duration,
    max_attempts: u32,
    jitter: f64,
    failover_after: u32,
}

impl Default for ReconnectPolicy {
    /// 100 ms to 10 s, never give up, 30 % jitter, fail over after 2 attempts.
    fn default() -> Self {
        ReconnectPolicy {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            max_attempts: 0,
            jitter: 0.3,
            failover_after: 2,
        }
    }
}

impl ReconnectPolicy {
    /// Delay before the first retry (default 100 ms). The first attempt is immediate.
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = surreal_pool::ReconnectPolicy::default().min_delay(Duration::from_millis(20));
    /// assert_eq!(policy.base_delay(1), Duration::from_millis(20));
    /// ```
    pub fn min_delay(mut self, d: Duration) -> Self {
        self.min_delay = d;
        self
    }

    /// Longest delay between attempts (default 10 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = surreal_pool::ReconnectPolicy::default().max_delay(Duration::from_secs(1));
    /// assert_eq!(policy.base_delay(20), Duration::from_secs(1));
    /// ```
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// Failed attempts before the connection reports itself down (default 0 = never).
    ///
    /// ```
    /// use surreal_pool::ReconnectPolicy;
    /// let policy = ReconnectPolicy::default().max_attempts(5);
    /// assert_ne!(policy, ReconnectPolicy::default());
    /// ```
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// Random reduction of each delay, 0.0–1.0 (default 0.3), so that many clients do not
    /// retry in lockstep.
    ///
    /// ```
    /// use surreal_pool::ReconnectPolicy;
    /// // Clamped to 0.0–1.0.
    /// assert_eq!(ReconnectPolicy::default().jitter(2.0), ReconnectPolicy::default().jitter(1.0));
    /// ```
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// Failed attempts on one endpoint before trying the next (default 2).
    ///
    /// ```
    /// use surreal_pool::ReconnectPolicy;
    /// // At least 1.
    /// assert_eq!(ReconnectPolicy::default().failover_after(0), ReconnectPolicy::default().failover_after(1));
    /// ```
    pub fn failover_after(mut self, n: u32) -> Self {
        self.failover_after = n.max(1);
        self
    }

    pub(crate) fn max_attempts_value(&self) -> u32 {
        self.max_attempts
    }

    pub(crate) fn failover_after_value(&self) -> u32 {
        self.failover_after
    }

    pub(crate) fn max_delay_value(&self) -> Duration {
        self.max_delay
    }

    /// The delay after failed attempt `attempt` (from 1), before jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = surreal_pool::ReconnectPolicy::default();
    /// assert_eq!(policy.base_delay(2), Duration::from_millis(200));
    /// assert_eq!(policy.base_delay(100), Duration::from_secs(10));
    /// ```
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(31));
        self.min_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The delay after failed attempt `attempt`, with jitter.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let base = self.base_delay(attempt);
        let cut = self.jitter * random_unit();
        base.mul_f64(1.0 - cut)
    }
}

/// A number in `[0, 1)` from the standard library's randomly seeded hasher (no extra crate).
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Something that happened to a connection. Subscribe with
/// [`Connection::events`](crate::Connection::events).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// The socket failed; in-flight requests failed with `ConnectionLost`.
    #[non_exhaustive]
    Disconnected {
        /// Why (no secrets).
        reason: String,
    },
    /// A reconnect attempt is starting.
    #[non_exhaustive]
    Reconnecting {
        /// The attempt number, from 1.
        attempt: u32,
        /// The endpoint being tried.
        endpoint: String,
    },
    /// Connected again and every session's state replayed.
    #[non_exhaustive]
    Restored {
        /// The endpoint now in use.
        endpoint: String,
        /// Sessions replayed.
        sessions: usize,
        /// Requests the replay sent (attach, use, let, authenticate, refresh, signin).
        requests: usize,
        /// Time from the failure to the end of the replay.
        elapsed: Duration,
    },
    /// `max_attempts` failed: commands now fail at once until the connection recovers.
    #[non_exhaustive]
    Down {
        /// Attempts made so far.
        attempts: u32,
    },
    /// A session's identity could not be restored (expired token, no refresh token, no
    /// remembered credentials): its commands fail with `AuthLost` until it authenticates again.
    #[non_exhaustive]
    SessionAuthLost {
        /// The session (`None` = the connection's default session).
        session: Option<uuid::Uuid>,
    },
    /// A session's tokens were renewed with its refresh token before they expired.
    #[non_exhaustive]
    Renewed {
        /// The session.
        session: Option<uuid::Uuid>,
    },
    /// The connection moved to another endpoint on purpose (a pool brings a socket back to its
    /// node, or takes it off an ejected one): it drained the requests in flight, replayed every
    /// session on the new socket, then switched. No request failed; commands made meanwhile
    /// waited and went to the new node.
    #[non_exhaustive]
    Moved {
        /// The endpoint it left.
        from: String,
        /// The endpoint now in use.
        to: String,
        /// Sessions replayed there.
        sessions: usize,
        /// Requests the replay sent.
        requests: usize,
        /// From the request to move to the switch (most of it spent dialing, while serving).
        elapsed: Duration,
        /// How long commands were held: the drain and the replay, the only wait a move adds.
        paused: Duration,
    },
    /// A planned move was given up: the connection stays where it is, its sessions as they
    /// were (the new node could not be reached, requests stayed in flight too long, a
    /// transaction was open, or a session would not have come back with its identity).
    #[non_exhaustive]
    MoveAbandoned {
        /// The endpoint it was to move to.
        to: String,
        /// Why (no secrets).
        reason: String,
    },
}

impl Actor {
    /// Reconnects with backoff and replays every session. `None` if the connection was closed
    /// (or every handle dropped) meanwhile.
    pub(super) async fn reconnect(&mut self) -> Option<Socket> {
        self.shared.up.store(false, Ordering::SeqCst);
        let started = Instant::now();
        let policy = self.config.reconnect.clone();
        let endpoints = self.config.endpoints.len();
        let mut attempt: u32 = 0;
        let mut on_endpoint: u32 = 0;
        let mut down = false;
        loop {
            if self.rx.is_closed() && self.rx.is_empty() {
                return None;
            }
            attempt += 1;
            // Move on after `failover_after` attempts, or at once from an endpoint whose node
            // is ejected (unless every one is).
            let avoided = self.shared.avoided();
            let avoid_here = avoided.get(self.endpoint).copied().unwrap_or(false) && !avoided.iter().all(|a| *a);
            if endpoints > 1 && (on_endpoint >= policy.failover_after_value() || avoid_here) {
                self.endpoint = next_endpoint(self.endpoint, &avoided, endpoints);
                on_endpoint = 0;
            }
            on_endpoint += 1;
            let endpoint = self.config.endpoints[self.endpoint].clone();
            self.shared.emit(ConnectionEvent::Reconnecting { attempt, endpoint: endpoint.clone() });
            let span = tracing::info_span!("surreal_pool.reconnect", attempt, endpoint = %endpoint);
            let close = self.close.clone();
            let result = tokio::select! {
                _ = close.cancelled() => return None,
                r = tracing::Instrument::instrument(connect_and_replay(&endpoint, &self.shared, &self.config), span) => r,
            };
            match result {
                Ok((socket, sessions, requests)) => {
                    self.shared.set_endpoint(&endpoint);
                    self.shared.stats.set_current(self.endpoint);
                    self.shared.down.store(false, Ordering::SeqCst);
                    self.shared.up.store(true, Ordering::SeqCst);
                    let elapsed = started.elapsed();
                    tracing::info!(attempt, sessions, elapsed_ms = elapsed.as_millis() as u64, "connection restored");
                    crate::telemetry::reconnected(elapsed);
                    self.shared.emit(ConnectionEvent::Restored { endpoint, sessions, requests, elapsed });
                    return Some(socket);
                }
                Err(reason) => {
                    tracing::debug!(attempt, %reason, "reconnect attempt failed");
                    self.shared.stats.record(self.endpoint, Outcome::Failed, Duration::ZERO);
                }
            }
            let max = policy.max_attempts_value();
            if !down && max != 0 && attempt >= max {
                down = true;
                self.shared.down.store(true, Ordering::SeqCst);
                tracing::warn!(attempt, "connection down");
                self.shared.emit(ConnectionEvent::Down { attempts: attempt });
            }
            let delay = if down { policy.max_delay_value() } else { policy.delay(attempt) };
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = self.close.cancelled() => return None,
                    _ = &mut sleep => break,
                    // While down, fail commands at once instead of letting them wait.
                    command = self.rx.recv(), if down => match command {
                        None => return None,
                        Some(command) => {
                            if matches!(command.effect, Effect::Detach) {
                                // Nothing to detach on a dead socket; just don't replay it.
                                self.shared.sessions().remove(&command.session);
                                let _ = command.reply.send(Ok(Payload::from_value(&Cbor::Null)));
                            } else {
                                let _ = command.reply.send(Err(Error::ConnectionDown));
                            }
                        }
                    },
                }
            }
        }
    }
}

/// The next endpoint after `current` (in order, wrapping) that is not avoided; the next one
/// in order if every endpoint is.
fn next_endpoint(current: usize, avoided: &[bool], endpoints: usize) -> usize {
    (1..=endpoints)
        .map(|k| (current + k) % endpoints)
        .find(|i| !avoided.get(*i).copied().unwrap_or(false))
        .unwrap_or((current + 1) % endpoints)
}

async fn connect_and_replay(endpoint: &str, shared: &Shared, config: &Config) -> std::result::Result<(Socket, usize, usize), String> {
    let mut socket = dial(endpoint, config).await.map_err(|e| e.to_string())?;
    // The server may be another node, or the same one upgraded: its version is learnt again
    // before anything else is sent, so that no request is encoded for the old one's.
    crate::connection::negotiate::negotiate(&mut socket, shared, config).await?;
    let report = crate::connection::replay::replay(&mut socket, shared, config).await?;
    for session in report.auth_lost {
        shared.emit(ConnectionEvent::SessionAuthLost { session });
    }
    Ok((socket, report.sessions, report.requests))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_cap_and_jitter_down_only() {
        let p = ReconnectPolicy::default().min_delay(Duration::from_millis(100)).max_delay(Duration::from_secs(1)).jitter(0.5);
        for attempt in 1..40 {
            let base = p.base_delay(attempt);
            assert!(base <= Duration::from_secs(1));
            for _ in 0..10 {
                let d = p.delay(attempt);
                assert!(d <= base && d >= base / 2, "{attempt}: {d:?} vs {base:?}");
            }
        }
        assert_eq!(p.base_delay(4), Duration::from_millis(800));
    }

    #[test]
    fn reconnects_skip_avoided_endpoints_unless_every_one_is() {
        assert_eq!(next_endpoint(0, &[false, false, false], 3), 1);
        assert_eq!(next_endpoint(0, &[false, true, false], 3), 2);
        assert_eq!(next_endpoint(2, &[false, true, false], 3), 0);
        assert_eq!(next_endpoint(0, &[false, true, true], 3), 0, "back to the only one left");
        assert_eq!(next_endpoint(1, &[true, true, true], 3), 2, "all avoided: plain order");
        assert_eq!(next_endpoint(0, &[], 2), 1, "nothing known: plain order");
    }
}
