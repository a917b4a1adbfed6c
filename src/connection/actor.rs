//! The connection actor: the one task that owns a WebSocket.
//!
//! It writes the requests it receives, routes replies by id, applies each reply's effect on the
//! session state, keeps the socket alive (RPC pings; a watchdog for stalls), renews tokens before
//! they expire, and when the socket fails, reconnects with backoff, learns the server's version
//! again (see [`crate::connection::negotiate`]) and replays every session's state before it
//! takes the next command (see [`crate::connection::replay`]; the loop is in
//! [`crate::connection::reconnect`]). Asked to, it moves its sessions to another endpoint
//! without failing a request (see [`crate::connection::relocate`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ciborium::Value as Cbor;
use futures_util::{Sink, SinkExt, Stream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;
use tokio_websockets::Message;

use crate::connection::{Config, Shared, Socket};
use crate::error::{Error, Result};
use crate::wire::envelope::{self, Incoming, Payload};
use crate::connection::reconnect::ConnectionEvent;
use crate::connection::state::{AuthState, Effect, SessionState};

/// A request for the actor.
pub(crate) struct Command {
    pub(crate) id: u64,
    pub(crate) frame: bytes::Bytes,
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
pub(super) struct Pending {
    session: Option<uuid::Uuid>,
    effect: Effect,
    reply: Option<oneshot::Sender<Result<Payload>>>,
}

pub(crate) struct Actor {
    pub(crate) rx: mpsc::Receiver<Command>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) config: Arc<Config>,
    pub(crate) close: CancellationToken,
    pub(super) pending: HashMap<u64, Pending>,
    renewing: HashSet<Option<uuid::Uuid>>,
    /// Requests the actor itself must send (kills of orphaned live queries, keepalive pings,
    /// renewals), written before the next caller's command.
    outbox: VecDeque<Internal>,
    /// Frames were handed to the socket and not yet flushed.
    unflushed: bool,
    /// Callers answered since the last flush, and commands written since: see
    /// [`Actor::hold_flush`].
    answered: usize,
    written: usize,
    /// The unflushed frames were held back once already (see [`Actor::hold_flush`]).
    held: bool,
    /// Since when the socket has been refusing to take the unflushed frames (the write-stall
    /// watchdog).
    writing_since: Option<Instant>,
    /// Index into `config.endpoints` of the endpoint in use.
    pub(super) endpoint: usize,
    /// Set when the socket can no longer be trusted (the serve loop then replaces it).
    broken: Option<String>,
    /// A planned move to another endpoint, under way.
    pub(super) moving: Option<super::relocate::Move>,
    /// No command is written (a move waits for the requests in flight to be answered).
    pub(super) draining: bool,
}

/// A request the actor sends on its own behalf: session, method, params, effect.
type Internal = (Option<uuid::Uuid>, &'static str, Vec<Cbor>, Effect);

/// What ended a wake of the serve loop.
enum Wake {
    /// The read budget is spent (more may be waiting).
    Yield,
    /// Time for the periodic checks.
    Tick,
    /// Close: on purpose, or every handle is gone.
    Closed,
    /// The socket failed.
    Lost(String),
    /// Draining for a move, and nothing is in flight any more.
    Drained,
}

/// Why the serve loop ended.
enum Stop {
    /// Closed on purpose, or every handle is gone.
    Closed,
    /// The socket failed.
    Lost(String),
    /// Drained for a move: the socket to move to.
    Move(Box<super::relocate::Ready>),
}

impl Actor {
    pub(crate) fn new(rx: mpsc::Receiver<Command>, shared: Arc<Shared>, config: Arc<Config>, close: CancellationToken) -> Self {
        Actor {
            rx,
            shared,
            config,
            close,
            pending: HashMap::new(),
            renewing: HashSet::new(),
            outbox: VecDeque::new(),
            unflushed: false,
            answered: 0,
            written: 0,
            held: false,
            writing_since: None,
            endpoint: 0,
            broken: None,
            moving: None,
            draining: false,
        }
    }

    pub(crate) async fn run(mut self, socket: Socket) {
        let mut socket = socket;
        loop {
            let stop = match self.serve(&mut socket).await {
                // A forced move that cannot switch now gives the socket up, as if it were cut.
                Stop::Move(next) => match self.finish_move(&mut socket, *next).await {
                    Some(reason) => Stop::Lost(reason),
                    None => continue,
                },
                stop => stop,
            };
            match stop {
                Stop::Move(_) => {} // handled above
                Stop::Closed => {
                    tracing::debug!("connection closed");
                    self.fail_pending(|| Error::ClosedInFlight);
                    break;
                }
                Stop::Lost(reason) => {
                    tracing::warn!(%reason, "connection lost");
                    self.forget_move("the socket was lost");
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
        self.shared.hold(false);
        // Refuse what is still queued: it was never sent.
        self.rx.close();
        while let Ok(command) = self.rx.try_recv() {
            let _ = command.reply.send(Err(Error::Closed));
        }
    }

    /// Serves one socket until it fails or the connection closes.
    ///
    /// Each wake of the task polls, in order: the close signal; writes (internal requests, then
    /// up to [`WRITE_BATCH`] commands from the channel, taken only while the socket accepts
    /// frames and the in-flight limit allows); the flush; the tick; reads (up to
    /// [`READ_BATCH`] frames). So a write blocked by a peer that does not read never stops the
    /// reading, and a flood of incoming frames never keeps commands from being written.
    async fn serve(&mut self, socket: &mut Socket) -> Stop {
        let watchdog = self.config.watchdog_timeout;
        let mut tick = tokio::time::interval(self.config.keepalive_interval.min(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let closing = self.close.clone().cancelled_owned();
        tokio::pin!(closing);
        let mut last_rx = Instant::now();
        let mut last_ping = Instant::now();
        self.unflushed = false;
        (self.answered, self.written, self.held) = (0, 0, false);
        self.writing_since = None;
        loop {
            let wake = std::future::poll_fn(|cx| {
                let wake = self.poll_socket(cx, socket, closing.as_mut(), &mut tick, &mut last_rx);
                self.shared.in_flight.store(self.pending.len(), Ordering::Relaxed);
                wake
            })
            .await;
            match wake {
                // Let the runtime run its other tasks and timers, then go on.
                Wake::Yield => tokio::task::yield_now().await,
                Wake::Closed => {
                    // A Close frame, bounded: a peer that does not read must not hold up close.
                    let _ = timeout(Duration::from_secs(1), socket.close()).await;
                    return Stop::Closed;
                }
                Wake::Lost(reason) => return Stop::Lost(reason),
                Wake::Drained => match self.take_ready() {
                    Some(next) => return Stop::Move(Box::new(next)),
                    None => {
                        self.draining = false; // nothing to move to: serve on
                        self.shared.hold(false);
                    }
                },
                Wake::Tick => {
                    if last_rx.elapsed() > watchdog {
                        return Stop::Lost(format!("no frame from the server for {watchdog:?}"));
                    }
                    if self.writing_since.is_some_and(|since| since.elapsed() > watchdog) {
                        return Stop::Lost(format!("a write stalled for {watchdog:?}"));
                    }
                    // Forget requests whose caller gave up, unless the reply changes state (attach
                    // and detach included: a lost detach must not be replayed as an attach).
                    self.pending.retain(|_, p| !matches!(p.effect, Effect::None) || p.reply.as_ref().is_some_and(|r| !r.is_closed()));
                    if last_rx.elapsed() >= self.config.keepalive_interval && last_ping.elapsed() >= self.config.keepalive_interval {
                        last_ping = Instant::now();
                        self.outbox.push_back((None, "ping", vec![], Effect::None));
                    }
                    let renewals = self.renewals();
                    self.outbox.extend(renewals);
                    if let Some(reason) = self.check_move() {
                        return Stop::Lost(reason);
                    }
                    // A drain under way is checked at its limit, not a tick later.
                    if let Some(deadline) = self.drain_deadline() {
                        if deadline <= Instant::now() + tick.period() {
                            tick.reset_at(deadline);
                        }
                    }
                }
            }
        }
    }

    /// One wake of the serve loop (see [`Actor::serve`]): rounds of write, flush, tick and
    /// read while they make progress, up to a budget of frames and bytes read, after which the
    /// task yields to the runtime, so that a flood never monopolizes a runtime thread.
    fn poll_socket(
        &mut self,
        cx: &mut Context<'_>,
        socket: &mut Socket,
        mut closing: Pin<&mut tokio_util::sync::WaitForCancellationFutureOwned>,
        tick: &mut tokio::time::Interval,
        last_rx: &mut Instant,
    ) -> Poll<Wake> {
        let mut frames = READ_BUDGET_FRAMES;
        let mut bytes = READ_BUDGET_BYTES;
        loop {
            if closing.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Closed);
            }
            if self.draining && self.pending.is_empty() && !self.unflushed {
                return Poll::Ready(Wake::Drained);
            }
            let mut progress = false;
            // Write a batch, then flush it before the next one: the write-stall watchdog
            // measures one batch's flush, as the time the socket takes to accept it. Nothing
            // is written while draining for a move (commands wait in the channel).
            let mut drained = false;
            if (!self.unflushed || self.held) && !self.draining {
                let mut budget = WRITE_BATCH;
                loop {
                    if self.outbox.is_empty() && self.pending.len() >= self.config.max_in_flight {
                        break; // backpressure: commands wait in the channel
                    }
                    if budget == 0 {
                        progress = true; // the channel was not polled to its end: no wake-up is due
                        break;
                    }
                    match Pin::new(&mut *socket).poll_ready(cx) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(e)) => return Poll::Ready(Wake::Lost(e.to_string())),
                        Poll::Pending => break,
                    }
                    let frame = match self.outbox.pop_front() {
                        Some(internal) => self.register_internal(internal),
                        None => match self.rx.poll_recv(cx) {
                            Poll::Ready(Some(command)) => self.register(command),
                            // Every handle is gone.
                            Poll::Ready(None) => return Poll::Ready(Wake::Closed),
                            Poll::Pending => {
                                drained = true;
                                break;
                            }
                        },
                    };
                    budget -= 1;
                    if let Some(frame) = frame {
                        if let Err(e) = Pin::new(&mut *socket).start_send(Message::binary(frame)) {
                            return Poll::Ready(Wake::Lost(e.to_string()));
                        }
                        self.unflushed = true;
                        self.written += 1;
                    }
                }
            }
            if self.hold_flush(drained) {
                return Poll::Ready(Wake::Yield);
            }
            if self.unflushed {
                match Pin::new(&mut *socket).poll_flush(cx) {
                    Poll::Ready(Ok(())) => {
                        self.unflushed = false;
                        (self.answered, self.written, self.held) = (0, 0, false);
                        self.writing_since = None;
                        // The next batch may be waiting in the channel, polled to Ready last time.
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Wake::Lost(e.to_string())),
                    Poll::Pending => {
                        self.writing_since.get_or_insert_with(Instant::now);
                    }
                }
            }
            if tick.poll_tick(cx).is_ready() {
                return Poll::Ready(Wake::Tick);
            }
            for _ in 0..READ_BATCH {
                if frames == 0 || bytes == 0 {
                    return Poll::Ready(Wake::Yield);
                }
                match Pin::new(&mut *socket).poll_next(cx) {
                    Poll::Ready(Some(Ok(message))) => {
                        *last_rx = Instant::now();
                        frames -= 1;
                        bytes = bytes.saturating_sub(message.as_payload().len());
                        // Replies may have made room under the in-flight limit, or queued kills.
                        progress = true;
                        if message.is_binary() {
                            self.on_frame(&message.into_payload().into());
                            if let Some(reason) = self.broken.take() {
                                return Poll::Ready(Wake::Lost(reason));
                            }
                        } else if message.is_text() {
                            tracing::warn!(len = message.as_payload().len(), "ignoring a text frame on a CBOR connection");
                        } else if let Some((code, _)) = message.as_close() {
                            return Poll::Ready(Wake::Lost(format!("the server closed the socket (code {})", u16::from(code))));
                        }
                        // Ping and pong: the WebSocket layer answers pings itself.
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Wake::Lost(e.to_string())),
                    Poll::Ready(None) => return Poll::Ready(Wake::Lost("the socket ended".into())),
                    Poll::Pending => break,
                }
            }
            if !progress {
                return Poll::Pending; // every source polled to Pending: each will wake the task
            }
            self.shared.in_flight.store(self.pending.len(), Ordering::Relaxed);
        }
    }

    /// Whether to hold the unflushed frames back once, yielding before the flush: when the
    /// channel is drained but fewer commands were written since the last flush than callers
    /// were answered. Those callers mostly send their next command as soon as this task lets
    /// them run (an answered caller is woken on this thread, and runs after this task
    /// yields), so one yield lets their commands join this write: one write for many requests
    /// instead of one each. At most once per flush, so it costs one trip through the run queue;
    /// a lone caller (answered once, written once) is never held.
    fn hold_flush(&mut self, drained: bool) -> bool {
        if self.unflushed && drained && !self.held && self.answered > self.written {
            self.held = true;
            return true;
        }
        false
    }

    /// Records a request the actor makes on its own behalf (no caller waits for it) and
    /// returns its frame.
    fn register_internal(&mut self, (session, method, params, effect): Internal) -> Option<bytes::Bytes> {
        let id = self.shared.next_id();
        let frame = envelope::encode_request(id, method, params, session).ok()?;
        if let Some(state) = self.shared.sessions().get_mut(&session) {
            state.begin(&effect);
        }
        self.pending.insert(id, Pending { session, effect, reply: None });
        Some(frame.into())
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
    fn register(&mut self, mut command: Command) -> Option<bytes::Bytes> {
        if command.reply.is_closed() && !command.fire_and_forget {
            let Effect::EndTransaction(txn) = command.effect else { return None };
            // A commit or cancel abandoned before it was sent still ends the transaction (the
            // server caps open transactions), as a cancel: a commit nobody waits for must not
            // write what its caller never saw acknowledged.
            command.frame = envelope::encode_request(command.id, "cancel", vec![crate::wire::tags::uuid(&txn)], command.session).ok()?.into();
        }
        if command.needs_identity {
            let refused = match self.shared.sessions().get(&command.session) {
                None => Some(Error::Detached),
                Some(s) if s.auth == AuthState::Unknown => Some(Error::AuthLost),
                Some(_) => None,
            };
            if let Some(error) = refused {
                let _ = command.reply.send(Err(error));
                return None;
            }
        }
        if let Some(state) = self.shared.sessions().get_mut(&command.session) {
            state.begin(&command.effect);
        }
        self.pending.insert(command.id, Pending { session: command.session, effect: command.effect, reply: Some(command.reply) });
        Some(command.frame)
    }

    fn on_frame(&mut self, bytes: &bytes::Bytes) {
        match envelope::decode_response(bytes) {
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
                    if matches!(pending.effect, Effect::Renewed(_)) {
                        self.renewing.remove(&pending.session); // it may be renewed again later
                    }
                    if let Some(reply) = pending.reply {
                        let _ = reply.send(Err(Error::Protocol(format!("reply {id} was labelled for another session"))));
                    }
                    return;
                }
                let outcome = outcome.map_err(crate::error::classify);
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
                    if reply.send(outcome).is_ok() {
                        self.answered += 1;
                    }
                }
            }
            Ok(Incoming::Unsolicited(frame)) => {
                // A live-query notification: `{result: {id, action, record, result}}`.
                match super::live_registry::notification(frame) {
                    Some(notification) => self.shared.live().route(notification),
                    None => tracing::debug!("ignoring a frame with no request id"),
                }
            }
            Err(e) => match envelope::reply_id(bytes).and_then(|id| self.pending.remove(&id).map(|p| (id, p))) {
                Some((id, pending)) => self.fail_undecodable(id, pending, e),
                None => tracing::warn!(error = %e, "ignoring an undecodable frame"),
            },
        }
    }

    /// A reply that names a request in flight but cannot be decoded: the request fails at once.
    /// If it changes state, the change is of unknown outcome: it counts as lost and the socket
    /// is replaced, so that every session is replayed from what is known (a variable the server
    /// may have set must not stay behind on a session the pool thinks clean).
    fn fail_undecodable(&mut self, id: u64, pending: Pending, error: Error) {
        tracing::warn!(id, error = %error, "a reply that could not be decoded");
        let reason = match &error {
            Error::Protocol(reason) => reason.clone(),
            other => other.to_string(),
        };
        if !matches!(pending.effect, Effect::None) {
            if matches!(pending.effect, Effect::Detach) {
                // Asked to go: not replayed on the next socket.
                self.shared.sessions().remove(&pending.session);
                self.shared.live().end_session(pending.session);
            } else if let Some(state) = self.shared.sessions().get_mut(&pending.session) {
                state.lose(&pending.effect);
            }
            self.broken = Some(format!("the reply to a state-changing request could not be decoded: {reason}"));
        }
        if let Some(reply) = pending.reply {
            let _ = reply.send(Err(Error::Protocol(format!("reply {id} could not be decoded: {reason}"))));
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
                    self.outbox.push_back((pending.session, "kill", vec![crate::wire::tags::uuid(&id)], Effect::None));
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
                if effect.changes_auth() && !matches!(effect, Effect::Reauthenticated(_)) && reply.is_some() {
                    // The server kills a session's live queries when its principal changes; a
                    // re-authentication as the same user keeps them, so kill them explicitly
                    // (harmless if already gone): the streams end either way.
                    drop(sessions);
                    for id in self.shared.live().end_session(pending.session) {
                        self.outbox.push_back((pending.session, "kill", vec![crate::wire::tags::uuid(&id)], Effect::None));
                    }
                }
            }
        }
    }

    pub(super) fn fail_pending(&mut self, error: fn() -> Error) {
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
        drop(sessions);
        self.clear_internal();
        self.shared.in_flight.store(0, Ordering::Relaxed);
    }

    /// Forgets the actor's own requests for the socket being left (kills, pings, renewals):
    /// the replay restores live queries and tokens on the next one.
    pub(super) fn clear_internal(&mut self) {
        self.renewing.clear();
        self.outbox.clear();
    }
}

/// Requests the actor writes before flushing the socket.
const WRITE_BATCH: usize = 64;

/// Frames the actor reads before it looks at its commands again.
const READ_BATCH: usize = 32;

/// Frames, and bytes, the actor reads in one poll of its task before it yields.
const READ_BUDGET_FRAMES: usize = 128;
const READ_BUDGET_BYTES: usize = 1 << 20;

pub(crate) fn spawn(rx: mpsc::Receiver<Command>, shared: Arc<Shared>, config: Arc<Config>, close: CancellationToken, socket: Socket, endpoint: usize) {
    let mut actor = Actor::new(rx, shared, config.clone(), close);
    actor.endpoint = endpoint;
    let span = tracing::info_span!("surreal_pool.connection", endpoint = %config.endpoints[0]);
    tokio::spawn(tracing::Instrument::instrument(actor.run(socket), span));
}
