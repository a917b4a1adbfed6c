//! One WebSocket connection: a task (the *actor*) that owns the socket, and a cheap cloneable
//! [`Connection`] handle that sends it requests.
//!
//! # Behaviour
//!
//! * **Pipelining.** Any number of requests can be in flight at once; each gets an integer id
//!   and its reply is matched by id, whatever order the server answers in.
//! * **Ordering.** Requests from one caller are written to the socket in the order they were
//!   sent; the server may execute and answer them in any order.
//! * **Timeouts.** Every request is bounded by the request timeout (default 30 s), which covers
//!   waiting for room in the command channel and waiting for the reply.
//! * **Cancellation.** Dropping a request future never corrupts the connection. If the request
//!   was already handed to the actor it still runs on the server, and if it changes session state
//!   (`use`, `let`, signin, …) the actor records the change when the reply arrives.
//! * **Shutdown.** The actor stops when [`Connection::close`] is called or when the last handle
//!   (including every [`Session`]) is dropped. Requests still waiting then fail with
//!   [`Error::Closed`]; requests in flight when the socket dies fail with
//!   [`Error::ConnectionLost`] — they may or may not have run, and are never resent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ciborium::Value as Cbor;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::protocol::{self, Incoming};
use crate::session::Session;
use crate::state::{Effect, SessionState};

/// Default per-request timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default connect timeout (TCP + WebSocket handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default largest message accepted from the server.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;
/// Default capacity of the command channel into the actor.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 1024;
/// Requests the actor writes before flushing the socket.
const WRITE_BATCH: usize = 64;

/// Configures and opens a [`Connection`].
///
/// ```no_run
/// # async fn demo() -> surreal_pool::Result<()> {
/// use std::time::Duration;
/// let conn = surreal_pool::Connection::builder("ws://127.0.0.1:8000")
///     .request_timeout(Duration::from_secs(5))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ConnectionBuilder {
    endpoint: String,
    config: Config,
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) channel_capacity: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
        }
    }
}

impl ConnectionBuilder {
    /// A builder for `endpoint`: `ws://host:port` or `wss://host:port`; `/rpc` is added when the
    /// URL has no path.
    pub fn new(endpoint: impl Into<String>) -> Self {
        ConnectionBuilder { endpoint: endpoint.into(), config: Config::default() }
    }

    /// The longest a request may take, from sending to reply (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// The longest the TCP connect and WebSocket handshake may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// The largest message accepted from the server (default 64 MiB).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.config.max_message_size = bytes;
        self
    }

    /// How many requests may wait for the actor before senders wait (default 1024).
    pub fn channel_capacity(mut self, capacity: usize) -> Self {
        self.config.channel_capacity = capacity.max(1);
        self
    }

    /// Opens the connection and starts its task. Must be called within a Tokio runtime.
    pub async fn connect(self) -> Result<Connection> {
        Connection::open(self.endpoint, self.config).await
    }
}

/// A cloneable handle to one WebSocket connection to SurrealDB.
///
/// The connection carries the server's default session (see [`Connection::session`]) and any
/// number of attached sessions (see [`Connection::attach`]), each with its own namespace,
/// database, variables and identity. Cloning is cheap; the socket closes when the last clone and
/// the last session are dropped, or on [`Connection::close`].
///
/// ```no_run
/// # async fn demo() -> surreal_pool::Result<()> {
/// use surreal_pool::{Connection, Root};
/// let conn = Connection::connect("ws://127.0.0.1:8000").await?;
/// let db = conn.session();
/// db.signin(&Root::new("root", "root")).await?;
/// db.use_ns_db("test", "test").await?;
/// let two: i64 = db.query("RETURN 1 + 1", ()).await?.take(0)?;
/// assert_eq!(two, 2);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: String,
    config: Config,
    tx: mpsc::Sender<Command>,
    next_id: AtomicU64,
    shared: Arc<Shared>,
    close: CancellationToken,
}

/// State shared by the handles and the actor.
#[derive(Default)]
pub(crate) struct Shared {
    /// Server sessions on this socket (`None` = the default session).
    sessions: Mutex<HashMap<Option<uuid::Uuid>, SessionState>>,
}

impl Shared {
    pub(crate) fn sessions(&self) -> MutexGuard<'_, HashMap<Option<uuid::Uuid>, SessionState>> {
        // A poisoned lock only means a panic elsewhere while holding it; the map is still valid.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Command {
    id: u64,
    frame: Vec<u8>,
    session: Option<uuid::Uuid>,
    effect: Effect,
    reply: oneshot::Sender<Result<Cbor>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoint", &self.inner.endpoint)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Checks the scheme and adds `/rpc` when the URL has no path. Credentials in the URL are refused
/// (they would end up in logs); sign in instead.
pub(crate) fn normalize_endpoint(url: &str) -> Result<String> {
    let (scheme, rest) =
        url.split_once("://").ok_or_else(|| Error::InvalidUrl(format!("`{url}` has no scheme (use ws:// or wss://)")))?;
    if !matches!(scheme, "ws" | "wss") {
        return Err(Error::InvalidUrl(format!("unsupported scheme `{scheme}` (use ws:// or wss://)")));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err(Error::InvalidUrl(format!("`{scheme}://` has no host")));
    }
    if authority.contains('@') {
        return Err(Error::InvalidUrl("credentials in the URL are not supported; use signin".into()));
    }
    let path = &rest[authority.len()..];
    Ok(if path.is_empty() || path == "/" { format!("{scheme}://{authority}/rpc") } else { url.to_owned() })
}

impl Connection {
    /// Connects to `endpoint` with the default configuration.
    pub async fn connect(endpoint: impl Into<String>) -> Result<Connection> {
        ConnectionBuilder::new(endpoint).connect().await
    }

    /// A builder to configure timeouts and limits before connecting.
    pub fn builder(endpoint: impl Into<String>) -> ConnectionBuilder {
        ConnectionBuilder::new(endpoint)
    }

    async fn open(endpoint: String, config: Config) -> Result<Connection> {
        let endpoint = normalize_endpoint(&endpoint)?;
        let socket = dial(&endpoint, &config).await?;
        let (tx, rx) = mpsc::channel(config.channel_capacity);
        let shared = Arc::new(Shared::default());
        shared.sessions().insert(None, SessionState::default());
        let close = CancellationToken::new();
        let actor = Actor { rx, shared: shared.clone(), pending: HashMap::new(), close: close.clone() };
        let span = tracing::info_span!("surreal_pool.connection", endpoint = %endpoint);
        tokio::spawn(actor.run(socket).instrument(span));
        tracing::debug!(endpoint = %endpoint, "connected");
        Ok(Connection {
            inner: Arc::new(Inner { endpoint, config, tx, next_id: AtomicU64::new(1), shared, close }),
        })
    }

    /// The endpoint this connection talks to.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// A handle to the connection's default server session.
    pub fn session(&self) -> Session {
        Session::new(self.clone(), None)
    }

    /// Attaches a new server session on this socket, with its own namespace, database, variables
    /// and identity. It is detached when the [`Session`] is dropped or [`Session::detach`]ed.
    pub async fn attach(&self) -> Result<Session> {
        let id = uuid::Uuid::new_v4();
        self.request(Some(id), "attach", vec![], Effect::Attach).await?;
        Ok(Session::new(self.clone(), Some(id)))
    }

    /// The ids of the sessions attached on the server for this socket (`sessions` RPC).
    pub async fn server_sessions(&self) -> Result<Vec<uuid::Uuid>> {
        let reply = self.request(None, "sessions", vec![], Effect::None).await?;
        let list = crate::cbor::to_json(reply);
        let ids = list.as_array().ok_or_else(|| Error::Protocol("`sessions` did not return a list".into()))?;
        ids.iter()
            .map(|v| v.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| Error::Protocol("a session id that is not a uuid".into())))
            .collect()
    }

    /// Closes the connection: requests not yet answered fail with [`Error::Closed`], and every
    /// later request fails the same way.
    pub fn close(&self) {
        self.inner.close.cancel();
    }

    /// Whether the connection's task has stopped (closed, or the socket died).
    pub fn is_closed(&self) -> bool {
        self.inner.tx.is_closed()
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Sends one request and waits for its reply, bounded by the request timeout.
    pub(crate) async fn request(
        &self,
        session: Option<uuid::Uuid>,
        method: &'static str,
        params: Vec<Cbor>,
        effect: Effect,
    ) -> Result<Cbor> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!("surreal_pool.request", method, id, session = ?session);
        async move {
            let started = Instant::now();
            let deadline = started + self.inner.config.request_timeout;
            let frame = protocol::encode_request(id, method, params, session)?;
            let (reply, rx) = oneshot::channel();
            let command = Command { id, frame, session, effect, reply };
            let timed_out = || Error::Timeout { what: "reply", after: self.inner.config.request_timeout };
            match timeout_at(deadline, self.inner.tx.send(command)).await {
                Err(_) => return Err(timed_out()),
                Ok(Err(_)) => return Err(Error::Closed),
                Ok(Ok(())) => {}
            }
            let result = match timeout_at(deadline, rx).await {
                Err(_) => Err(timed_out()),
                Ok(Err(_)) => Err(Error::Closed),
                Ok(Ok(result)) => result,
            };
            tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, ok = result.is_ok(), "reply");
            result
        }
        .instrument(span)
        .await
    }

    /// Detaches a session without waiting (used from `Drop`).
    pub(crate) fn detach_in_background(&self, session: uuid::Uuid) {
        let conn = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Err(e) = conn.request(Some(session), "detach", vec![], Effect::Detach).await {
                        tracing::debug!(error = %e, "background detach failed");
                    }
                });
            }
            Err(_) => {
                // No runtime: queue it if there is room; the actor needs no reply.
                let id = conn.inner.next_id.fetch_add(1, Ordering::Relaxed);
                if let Ok(frame) = protocol::encode_request(id, "detach", vec![], Some(session)) {
                    let (reply, _) = oneshot::channel();
                    let _ = conn.inner.tx.try_send(Command { id, frame, session: Some(session), effect: Effect::Detach, reply });
                }
            }
        }
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn dial(endpoint: &str, config: &Config) -> Result<Socket> {
    let connect_error = |reason: String| Error::Connect { endpoint: endpoint.to_owned(), reason };
    let mut request = endpoint.into_client_request().map_err(|e| Error::InvalidUrl(e.to_string()))?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("cbor"));
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_message_size));
    let (socket, response) = timeout(
        config.connect_timeout,
        tokio_tungstenite::connect_async_with_config(request, Some(ws_config), true),
    )
    .await
    .map_err(|_| Error::Timeout { what: "connect", after: config.connect_timeout })?
    .map_err(|e| connect_error(e.to_string()))?;
    let protocol = response.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok());
    if protocol != Some("cbor") {
        return Err(connect_error(format!(
            "the server did not accept the `cbor` subprotocol (answered {protocol:?}); is it SurrealDB 3.x?"
        )));
    }
    Ok(socket)
}

/// A request written to the socket and not yet answered.
struct Pending {
    session: Option<uuid::Uuid>,
    effect: Effect,
    reply: oneshot::Sender<Result<Cbor>>,
}

struct Actor {
    rx: mpsc::Receiver<Command>,
    shared: Arc<Shared>,
    pending: HashMap<u64, Pending>,
    close: CancellationToken,
}

/// Why the actor's serve loop ended.
enum Stop {
    /// Closed on purpose, or every handle is gone.
    Closed,
    /// The socket failed.
    Lost(String),
}

impl Actor {
    async fn run(mut self, socket: Socket) {
        let stop = self.serve(socket).await;
        match &stop {
            Stop::Closed => tracing::debug!("connection closed"),
            Stop::Lost(reason) => tracing::warn!(%reason, "connection lost"),
        }
        let in_flight_error: fn() -> Error = match stop {
            Stop::Closed => || Error::Closed,
            Stop::Lost(_) => || Error::ConnectionLost,
        };
        self.fail_pending(in_flight_error);
        // Refuse what is still queued: it was never sent.
        self.rx.close();
        while let Ok(command) = self.rx.try_recv() {
            let _ = command.reply.send(Err(Error::Closed));
        }
    }

    async fn serve(&mut self, socket: Socket) -> Stop {
        let (mut sink, mut stream) = socket.split();
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = self.close.cancelled() => {
                    let _ = sink.send(Message::Close(None)).await;
                    return Stop::Closed;
                }
                frame = stream.next() => match frame {
                    Some(Ok(Message::Binary(bytes))) => self.on_frame(&bytes),
                    Some(Ok(Message::Text(text))) => {
                        tracing::warn!(len = text.len(), "ignoring a text frame on a CBOR connection");
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return Stop::Lost(format!("the server closed the socket: {frame:?}"));
                    }
                    Some(Ok(_)) => {} // ping / pong: tungstenite answers pings itself
                    Some(Err(e)) => return Stop::Lost(e.to_string()),
                    None => return Stop::Lost("the socket ended".into()),
                },
                command = self.rx.recv() => {
                    let Some(command) = command else {
                        let _ = sink.send(Message::Close(None)).await;
                        return Stop::Closed;
                    };
                    let mut written = 0;
                    let mut next = Some(command);
                    while let Some(command) = next.take() {
                        let frame = self.register(command);
                        if let Err(e) = sink.feed(Message::Binary(frame.into())).await {
                            return Stop::Lost(e.to_string());
                        }
                        written += 1;
                        if written < WRITE_BATCH {
                            next = self.rx.try_recv().ok();
                        }
                    }
                    if let Err(e) = sink.flush().await {
                        return Stop::Lost(e.to_string());
                    }
                }
                _ = sweep.tick() => {
                    // Forget requests whose caller gave up, unless the reply changes session state.
                    self.pending.retain(|_, p| !matches!(p.effect, Effect::None) || !p.reply.is_closed());
                }
            }
        }
    }

    /// Records a request as in flight and returns its frame.
    fn register(&mut self, command: Command) -> Vec<u8> {
        if command.effect.tracked() {
            if let Some(state) = self.shared.sessions().get_mut(&command.session) {
                state.effects_in_flight += 1;
            }
        }
        self.pending.insert(command.id, Pending { session: command.session, effect: command.effect, reply: command.reply });
        command.frame
    }

    fn on_frame(&mut self, bytes: &[u8]) {
        match protocol::decode_response(bytes) {
            Ok(Incoming::Reply { id, outcome }) => {
                let Some(pending) = self.pending.remove(&id) else {
                    tracing::warn!(id, "a reply for no request in flight");
                    return;
                };
                self.apply_effect(&pending, outcome.as_ref().ok());
                let _ = pending.reply.send(outcome.map_err(crate::session::classify));
            }
            Ok(Incoming::Unsolicited(_)) => tracing::debug!("ignoring a frame with no request id"),
            Err(e) => tracing::warn!(error = %e, "ignoring an undecodable frame"),
        }
    }

    fn apply_effect(&self, pending: &Pending, reply: Option<&Cbor>) {
        let mut sessions = self.shared.sessions();
        match (&pending.effect, reply) {
            (Effect::None, _) => {}
            (Effect::Attach, Some(_)) => {
                sessions.insert(pending.session, SessionState::default());
            }
            (Effect::Detach, _) => {
                sessions.remove(&pending.session);
            }
            (effect, reply) => {
                if let Some(state) = sessions.get_mut(&pending.session) {
                    state.apply(effect, reply);
                }
            }
        }
    }

    fn fail_pending(&mut self, error: fn() -> Error) {
        let mut sessions = self.shared.sessions();
        for (_, pending) in self.pending.drain() {
            if let Some(state) = sessions.get_mut(&pending.session) {
                state.lose(&pending.effect);
            }
            let _ = pending.reply.send(Err(error()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked_and_completed() {
        assert_eq!(normalize_endpoint("ws://127.0.0.1:8000").unwrap(), "ws://127.0.0.1:8000/rpc");
        assert_eq!(normalize_endpoint("wss://db.example/").unwrap(), "wss://db.example/rpc");
        assert_eq!(normalize_endpoint("ws://h:1/custom").unwrap(), "ws://h:1/custom");
        for bad in ["127.0.0.1:8000", "http://h:1", "ws://", "ws://u:p@h:1"] {
            assert!(matches!(normalize_endpoint(bad), Err(Error::InvalidUrl(_))), "{bad}");
        }
    }
}
