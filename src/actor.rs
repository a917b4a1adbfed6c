//! The connection actor: the one task that owns a WebSocket.
//!
//! It writes the requests it receives, routes replies by id, applies each reply's effect on the
//! session state, keeps the socket alive (RPC pings; a watchdog for stalls), renews tokens before
//! they expire, and when the socket fails, reconnects with backoff and replays every session's
//! state before it takes the next command (see [`crate::replay`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ciborium::Value as Cbor;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;
use tokio_websockets::Message;

use crate::connection::{dial, Config, Shared, Socket};
use crate::error::{Error, Result};
use crate::protocol::{self, Incoming, Payload};
use crate::reconnect::ConnectionEvent;
use crate::state::{AuthState, Effect, SessionState};

/// A request for the actor.
pub(crate) struct Command {
    pub(crate) id: u64,
    pub(crate) frame: Vec<u8>,
    pub(crate) session: Option<uuid::Uuid>,
    pub(crate) effect: Effect,
    pub(crate) reply: oneshot::Sender<Result<Payload>>,
    /// Send even though nobody waits for the reply (detach).
    pub(crate) fire_and_forget: bool,
    /// Refuse to send it while the session's identity is unknown (every command but auth
    /// commands and a few harmless ones): the check is made again here, at the moment of
    /// sending, because a reconnect may have lost the identity while the command was queued.
    pub(crate) needs_identity: bool,
}

/// A request written to the socket and not yet answered.
struct Pending {
    session: Option<uuid::Uuid>,
    effect: Effect,
    reply: Option<oneshot::Sender<Result<Payload>>>,
}

pub(crate) struct Actor {
    pub(crate) rx: mpsc::Receiver<Command>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) config: Arc<Config>,
    pub(crate) close: CancellationToken,
    pending: HashMap<u64, Pending>,
    renewing: HashSet<Option<uuid::Uuid>>,
    /// Requests the actor itself must send (kills of orphaned live queries), written after
    /// the frame that caused them.
    outbox: Vec<Internal>,
    /// Index into `config.endpoints` of the endpoint in use.
    endpoint: usize,
    /// Set when the socket can no longer be trusted (the serve loop then replaces it).
    broken: Option<String>,
}

/// A request the actor sends on its own behalf: session, method, params, effect.
type Internal = (Option<uuid::Uuid>, &'static str, Vec<Cbor>, Effect);

/// Why the serve loop ended.
enum Stop {
    /// Closed on purpose, or every handle is gone.
    Closed,
    /// The socket failed.
    Lost(String),
}

impl Actor {
    pub(crate) fn new(rx: mpsc::Receiver<Command>, shared: Arc<Shared>, config: Arc<Config>, close: CancellationToken) -> Self {
        Actor { rx, shared, config, close, pending: HashMap::new(), renewing: HashSet::new(), outbox: Vec::new(), endpoint: 0, broken: None }
    }

    pub(crate) async fn run(mut self, socket: Socket) {
        let mut socket = socket;
        loop {
            match self.serve(socket).await {
                Stop::Closed => {
                    tracing::debug!("connection closed");
                    self.fail_pending(|| Error::Closed);
                    break;
                }
                Stop::Lost(reason) => {
                    tracing::warn!(%reason, "connection lost");
                    self.fail_pending(|| Error::ConnectionLost);
                    self.shared.emit(ConnectionEvent::Disconnected { reason });
                    match self.reconnect().await {
                        Some(next) => socket = next,
                        None => break,
                    }
                }
            }
        }
        self.shared.up.store(false, Ordering::SeqCst);
        // Refuse what is still queued: it was never sent.
        self.rx.close();
        while let Ok(command) = self.rx.try_recv() {
            let _ = command.reply.send(Err(Error::Closed));
        }
    }

    async fn serve(&mut self, socket: Socket) -> Stop {
        let (mut sink, mut stream) = socket.split();
        let watchdog = self.config.watchdog_timeout;
        let mut tick = tokio::time::interval(self.config.keepalive_interval.min(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_rx = Instant::now();
        let mut last_ping = Instant::now();
        loop {
            self.shared.in_flight.store(self.pending.len(), Ordering::Relaxed);
            tokio::select! {
                biased;
                _ = self.close.cancelled() => {
                    let _ = timeout(Duration::from_secs(1), sink.send(Message::close(None, ""))).await;
                    return Stop::Closed;
                }
                frame = stream.next() => {
                    last_rx = Instant::now();
                    match frame {
                        Some(Ok(message)) if message.is_binary() => {
                            self.on_frame(&message.into_payload().into());
                            if let Some(reason) = self.broken.take() {
                                return Stop::Lost(reason);
                            }
                            if !self.outbox.is_empty() {
                                let internal = std::mem::take(&mut self.outbox);
                                if let Err(stop) = self.send_internal(&mut sink, internal).await {
                                    return stop;
                                }
                            }
                        }
                        Some(Ok(message)) if message.is_text() => {
                            tracing::warn!(len = message.as_payload().len(), "ignoring a text frame on a CBOR connection");
                        }
                        Some(Ok(message)) if message.is_close() => {
                            let code = message.as_close().map(|(code, _)| u16::from(code));
                            return Stop::Lost(format!("the server closed the socket (code {code:?})"));
                        }
                        Some(Ok(_)) => {} // ping / pong: the WebSocket layer answers pings itself
                        Some(Err(e)) => return Stop::Lost(e.to_string()),
                        None => return Stop::Lost("the socket ended".into()),
                    }
                }
                command = self.rx.recv(), if self.pending.len() < self.config.max_in_flight => {
                    let Some(command) = command else {
                        let _ = timeout(Duration::from_secs(1), sink.send(Message::close(None, ""))).await;
                        return Stop::Closed;
                    };
                    let mut written = 0;
                    let mut next = Some(command);
                    while let Some(command) = next.take() {
                        if let Some(frame) = self.register(command) {
                            match timeout(watchdog, sink.feed(Message::binary(frame))).await {
                                Ok(Ok(())) => written += 1,
                                Ok(Err(e)) => return Stop::Lost(e.to_string()),
                                Err(_) => return Stop::Lost(format!("a write stalled for {watchdog:?}")),
                            }
                        }
                        if written < WRITE_BATCH && self.pending.len() < self.config.max_in_flight {
                            next = self.rx.try_recv().ok();
                        }
                    }
                    match timeout(watchdog, sink.flush()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Stop::Lost(e.to_string()),
                        Err(_) => return Stop::Lost(format!("a write stalled for {watchdog:?}")),
                    }
                }
                _ = tick.tick() => {
                    if last_rx.elapsed() > watchdog {
                        return Stop::Lost(format!("no frame from the server for {watchdog:?}"));
                    }
                    // Forget requests whose caller gave up, unless the reply changes state (attach
                    // and detach included: a lost detach must not be replayed as an attach).
                    self.pending.retain(|_, p| !matches!(p.effect, Effect::None) || p.reply.as_ref().is_some_and(|r| !r.is_closed()));
                    let mut internal = Vec::new();
                    if last_rx.elapsed() >= self.config.keepalive_interval && last_ping.elapsed() >= self.config.keepalive_interval {
                        last_ping = Instant::now();
                        internal.push((None, "ping", vec![], Effect::None));
                    }
                    internal.extend(self.renewals());
                    if let Err(stop) = self.send_internal(&mut sink, internal).await {
                        return stop;
                    }
                }
            }
        }
    }

    /// Writes requests the actor makes on its own behalf (no caller waits for them).
    async fn send_internal<S>(&mut self, sink: &mut S, internal: Vec<Internal>) -> std::result::Result<(), Stop>
    where
        S: futures_util::Sink<Message, Error = tokio_websockets::Error> + Unpin,
    {
        let watchdog = self.config.watchdog_timeout;
        for (session, method, params, effect) in internal {
            let id = self.shared.next_id();
            let Ok(frame) = protocol::encode_request(id, method, params, session) else { continue };
            if effect.tracked() {
                if let Some(state) = self.shared.sessions().get_mut(&session) {
                    state.effects_in_flight += 1;
                }
            }
            self.pending.insert(id, Pending { session, effect, reply: None });
            match timeout(watchdog, sink.send(Message::binary(frame))).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Stop::Lost(e.to_string())),
                Err(_) => return Err(Stop::Lost(format!("a write stalled for {watchdog:?}"))),
            }
        }
        Ok(())
    }

    /// Refresh requests for sessions whose access token expires within the renewal margin.
    fn renewals(&mut self) -> Vec<(Option<uuid::Uuid>, &'static str, Vec<Cbor>, Effect)> {
        let now = chrono::Utc::now().timestamp();
        let margin = self.config.renew_margin.as_secs() as i64;
        let mut out = Vec::new();
        for (id, state) in self.shared.sessions().iter() {
            let AuthState::Token(tokens) = &state.auth else { continue };
            // Never race a caller's own state change.
            if tokens.refresh.is_none() || self.renewing.contains(id) || state.effects_in_flight > 0 {
                continue;
            }
            if tokens.access.expires_at().is_some_and(|exp| exp - now <= margin) {
                if let Ok(params) = tokens.to_params() {
                    out.push((*id, "refresh", vec![params], Effect::Renewed(tokens.clone())));
                }
            }
        }
        for (id, ..) in &out {
            self.renewing.insert(*id);
        }
        out
    }

    /// Records a request as in flight and returns its frame; `None` if its caller already gave up
    /// (a request nobody waits for is not sent, so a timed-out request never runs later).
    fn register(&mut self, command: Command) -> Option<Vec<u8>> {
        if command.reply.is_closed() && !command.fire_and_forget {
            return None;
        }
        if command.needs_identity {
            let lost = self.shared.sessions().get(&command.session).is_none_or(|s| s.auth == AuthState::Unknown);
            if lost {
                let _ = command.reply.send(Err(Error::AuthLost));
                return None;
            }
        }
        if command.effect.tracked() {
            if let Some(state) = self.shared.sessions().get_mut(&command.session) {
                state.effects_in_flight += 1;
            }
        }
        self.pending.insert(command.id, Pending { session: command.session, effect: command.effect, reply: Some(command.reply) });
        Some(command.frame)
    }

    fn on_frame(&mut self, bytes: &bytes::Bytes) {
        match protocol::decode_response(bytes) {
            Ok(Incoming::Reply { id, session, outcome }) => {
                let Some(pending) = self.pending.remove(&id) else {
                    tracing::warn!(id, "a reply for no request in flight");
                    return;
                };
                if session.is_some() && session != pending.session {
                    // Never take a reply labelled for another session as this one's: the state
                    // change it carries (if any) is now of unknown outcome.
                    tracing::warn!(id, "a reply labelled for another session");
                    if let Some(state) = self.shared.sessions().get_mut(&pending.session) {
                        state.lose(&pending.effect);
                    }
                    if let Some(reply) = pending.reply {
                        let _ = reply.send(Err(Error::Protocol(format!("reply {id} was labelled for another session"))));
                    }
                    return;
                }
                let outcome = outcome.map_err(crate::session::classify);
                // Only a reply that changes state is decoded here; the rest is decoded by its
                // caller. The envelope decoder has checked the result reads, so this cannot
                // fail; if it did, the server's state would be unknown to us: the change counts
                // as lost and the socket is replaced, so that every session is replayed from
                // what is known.
                let value = match &outcome {
                    Ok(payload) if !matches!(pending.effect, Effect::None) => match payload.cbor() {
                        Ok(value) => Some(value),
                        Err(e) => {
                            if let Some(state) = self.shared.sessions().get_mut(&pending.session) {
                                state.lose(&pending.effect);
                            }
                            self.broken = Some(format!("a state-changing reply could not be decoded: {e}"));
                            if let Some(reply) = pending.reply {
                                let _ = reply.send(Err(e));
                            }
                            return;
                        }
                    },
                    _ => None,
                };
                self.apply_effect(&pending, value.as_ref());
                if let Some(reply) = pending.reply {
                    let _ = reply.send(outcome);
                }
            }
            Ok(Incoming::Unsolicited(frame)) => {
                // A live-query notification: `{result: {id, action, record, result}}`.
                let result = match frame {
                    Cbor::Map(m) => m.into_iter().find(|(k, _)| k.as_text() == Some("result")).map(|(_, v)| v),
                    _ => None,
                };
                match result {
                    Some(notification) => self.shared.live().route(notification),
                    None => tracing::debug!("ignoring a frame with no request id"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "ignoring an undecodable frame"),
        }
    }

    fn apply_effect(&mut self, pending: &Pending, reply: Option<&Cbor>) {
        if matches!(pending.effect, Effect::None) {
            return; // the common case: no lock
        }
        if let Effect::Live(registration) = &pending.effect {
            // Registered here, in reply order, so that an identity change answered before or
            // after it is seen in the right order; killed at once if its caller is gone.
            let id = reply.and_then(|r| registration.what.id_from(r.clone()));
            let caller_gone = pending.reply.as_ref().is_none_or(|r| r.is_closed());
            if let Some(id) = id {
                if caller_gone {
                    self.outbox.push((pending.session, "kill", vec![crate::cbor::uuid(&id)], Effect::None));
                } else {
                    self.shared.live().register(registration, pending.session, id);
                }
            }
            return;
        }
        let mut sessions = self.shared.sessions();
        match (&pending.effect, reply) {
            (Effect::None, _) => {}
            (Effect::Attach, Some(_)) => {
                sessions.insert(pending.session, SessionState::default());
            }
            (Effect::Detach, _) => {
                sessions.remove(&pending.session);
                drop(sessions);
                self.shared.live().end_session(pending.session);
            }
            (Effect::Renewed(_), reply) => {
                self.renewing.remove(&pending.session);
                if let Some(state) = sessions.get_mut(&pending.session) {
                    state.apply(&pending.effect, reply);
                    let renewed = reply.is_some() && matches!(state.auth, AuthState::Token(_));
                    drop(sessions);
                    if renewed {
                        self.shared.emit(ConnectionEvent::Renewed { session: pending.session });
                    }
                }
            }
            (effect, reply) => {
                if let Some(state) = sessions.get_mut(&pending.session) {
                    state.apply(effect, reply);
                }
                if effect.changes_auth() && reply.is_some() {
                    // The server kills a session's live queries when its principal changes; a
                    // re-authentication as the same user keeps them, so kill them explicitly
                    // (harmless if already gone): the streams end either way.
                    drop(sessions);
                    for id in self.shared.live().end_session(pending.session) {
                        self.outbox.push((pending.session, "kill", vec![crate::cbor::uuid(&id)], Effect::None));
                    }
                }
            }
        }
    }

    fn fail_pending(&mut self, error: fn() -> Error) {
        let mut sessions = self.shared.sessions();
        for (_, pending) in self.pending.drain() {
            if matches!(pending.effect, Effect::Detach) {
                // The socket (and with it the server session) is gone: don't re-attach it.
                sessions.remove(&pending.session);
            } else if let Some(state) = sessions.get_mut(&pending.session) {
                state.lose(&pending.effect);
            }
            if let Some(reply) = pending.reply {
                let _ = reply.send(Err(error()));
            }
        }
        self.renewing.clear();
        self.shared.in_flight.store(0, Ordering::Relaxed);
    }

    /// Reconnects with backoff and replays every session. `None` if the connection was closed
    /// (or every handle dropped) meanwhile.
    async fn reconnect(&mut self) -> Option<Socket> {
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
            if on_endpoint >= policy.failover_after_value() && endpoints > 1 {
                self.endpoint = (self.endpoint + 1) % endpoints;
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
                    self.shared.down.store(false, Ordering::SeqCst);
                    self.shared.up.store(true, Ordering::SeqCst);
                    let elapsed = started.elapsed();
                    tracing::info!(attempt, sessions, elapsed_ms = elapsed.as_millis() as u64, "connection restored");
                    self.shared.emit(ConnectionEvent::Restored { endpoint, sessions, requests, elapsed });
                    return Some(socket);
                }
                Err(reason) => tracing::debug!(attempt, %reason, "reconnect attempt failed"),
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
                                let _ = command.reply.send(Err(Error::Disconnected));
                            }
                        }
                    },
                }
            }
        }
    }

}

async fn connect_and_replay(endpoint: &str, shared: &Shared, config: &Config) -> std::result::Result<(Socket, usize, usize), String> {
    let mut socket = dial(endpoint, config).await.map_err(|e| e.to_string())?;
    let report = crate::replay::replay(&mut socket, shared, config).await?;
    for session in report.auth_lost {
        shared.emit(ConnectionEvent::SessionAuthLost { session });
    }
    Ok((socket, report.sessions, report.requests))
}

/// Requests the actor writes before flushing the socket.
const WRITE_BATCH: usize = 64;

pub(crate) fn spawn(rx: mpsc::Receiver<Command>, shared: Arc<Shared>, config: Arc<Config>, close: CancellationToken, socket: Socket) {
    let actor = Actor::new(rx, shared, config.clone(), close);
    let span = tracing::info_span!("surreal_pool.connection", endpoint = %config.endpoints[0]);
    tokio::spawn(tracing::Instrument::instrument(actor.run(socket), span));
}
