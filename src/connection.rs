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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ciborium::Value as Cbor;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::{timeout, timeout_at, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::actor::{self, Command};
use crate::error::{Error, Result};
use crate::wire::envelope::{self, Payload};
use crate::reconnect::{ConnectionEvent, ReconnectPolicy};
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
/// Default idle time before an RPC ping.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// Default time without a frame before the socket counts as stalled.
pub const DEFAULT_WATCHDOG_TIMEOUT: Duration = Duration::from_secs(15);
/// Default limit of requests written and not yet answered on one connection.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4096;
/// Default margin before access-token expiry at which sessions with a refresh token renew.
pub const DEFAULT_RENEW_MARGIN: Duration = Duration::from_secs(60);

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
    endpoints: Vec<String>,
    config: Config,
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Normalized endpoints; the first is tried first.
    pub(crate) endpoints: Vec<String>,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) channel_capacity: usize,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) keepalive_interval: Duration,
    pub(crate) watchdog_timeout: Duration,
    pub(crate) remember_credentials: bool,
    pub(crate) renew_margin: Duration,
    pub(crate) max_in_flight: usize,
    /// Extra trusted roots (DER), on top of the public web roots, for `wss://`.
    pub(crate) root_certificates: Vec<Vec<u8>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoints: Vec::new(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
            reconnect: ReconnectPolicy::default(),
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            watchdog_timeout: DEFAULT_WATCHDOG_TIMEOUT,
            remember_credentials: false,
            renew_margin: DEFAULT_RENEW_MARGIN,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            root_certificates: Vec::new(),
        }
    }
}

impl ConnectionBuilder {
    /// A builder for `endpoint`: `ws://host:port` or `wss://host:port`; `/rpc` is added when the
    /// URL has no path.
    ///
    /// ```
    /// let builder = surreal_pool::ConnectionBuilder::new("ws://127.0.0.1:8000");
    /// ```
    pub fn new(endpoint: impl Into<String>) -> Self {
        ConnectionBuilder { endpoints: vec![endpoint.into()], config: Config::default() }
    }

    /// Replaces every endpoint with this one (keeps the other settings).
    pub(crate) fn with_endpoints(mut self, endpoint: String) -> Self {
        self.endpoints = vec![endpoint];
        self
    }

    /// Adds another endpoint: a node of the same SurrealDB cluster that reconnects may fail over
    /// to (see [`ReconnectPolicy::failover_after`]).
    ///
    /// ```
    /// let builder = surreal_pool::Connection::builder("ws://10.0.0.1:8000").endpoint("ws://10.0.0.2:8000");
    /// ```
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoints.push(endpoint.into());
        self
    }

    /// How to reconnect after the socket fails (default: [`ReconnectPolicy::default`]).
    ///
    /// ```
    /// use surreal_pool::{Connection, ReconnectPolicy};
    /// let builder = Connection::builder("ws://127.0.0.1:8000").reconnect(ReconnectPolicy::default().max_attempts(5));
    /// ```
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.config.reconnect = policy;
        self
    }

    /// How long the socket may be idle before the connection sends an RPC `ping` (default 5 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").keepalive_interval(Duration::from_secs(2));
    /// ```
    pub fn keepalive_interval(mut self, interval: Duration) -> Self {
        self.config.keepalive_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How long without any frame from the server (or with a write blocked) before the socket is
    /// declared stalled and replaced (default 15 s). Should exceed the keepalive interval.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000")
    ///     .keepalive_interval(Duration::from_secs(2))
    ///     .watchdog_timeout(Duration::from_secs(6));
    /// ```
    pub fn watchdog_timeout(mut self, timeout: Duration) -> Self {
        self.config.watchdog_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Remember signin/signup credentials (in memory only) so that a session whose token
    /// expired during an outage and has no refresh token can sign in again after a reconnect
    /// (default off: only tokens are replayed, never passwords).
    ///
    /// ```
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").remember_credentials(true);
    /// ```
    pub fn remember_credentials(mut self, on: bool) -> Self {
        self.config.remember_credentials = on;
        self
    }

    /// Sessions holding a refresh token renew their tokens this long before the access token
    /// expires (default 60 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").renew_margin(Duration::from_secs(120));
    /// ```
    pub fn renew_margin(mut self, margin: Duration) -> Self {
        self.config.renew_margin = margin;
        self
    }

    /// The longest a request may take, from sending to reply (default 30 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").request_timeout(Duration::from_secs(5));
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// The longest the TCP connect and WebSocket handshake may take (default 10 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").connect_timeout(Duration::from_secs(2));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// The largest message accepted from the server (default 64 MiB).
    ///
    /// ```
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").max_message_size(16 << 20);
    /// ```
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.config.max_message_size = bytes;
        self
    }

    /// Most requests written to the socket and not yet answered (default 4096). Beyond it the
    /// connection stops writing; requests queue (up to the channel capacity), and a request that
    /// finds both the in-flight limit reached and the queue full fails at once with
    /// [`Error::Overloaded`].
    ///
    /// ```
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").max_in_flight(256);
    /// ```
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.config.max_in_flight = n.max(1);
        self
    }

    /// Trusts these PEM certificates (e.g. a private CA) for `wss://`, in addition to the public
    /// web roots (default: the public web roots only). A PEM that holds no certificate makes
    /// [`connect`](Self::connect) fail with [`Error::InvalidArgument`].
    ///
    /// ```no_run
    /// # async fn demo() -> surreal_pool::Result<()> {
    /// let ca = std::fs::read("ca.pem").unwrap();
    /// let conn = surreal_pool::Connection::builder("wss://db.internal:8000")
    ///     .add_root_certificates_pem(&ca)
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Self {
        use rustls::pki_types::pem::PemObject;
        let mut found = false;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem).flatten() {
            self.config.root_certificates.push(cert.to_vec());
            found = true;
        }
        if !found {
            // Remembered as an invalid (empty) certificate so that connect reports it.
            self.config.root_certificates.push(Vec::new());
        }
        self
    }

    /// How many requests may wait for the actor before senders wait (default 1024).
    ///
    /// ```
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").channel_capacity(4096);
    /// ```
    pub fn channel_capacity(mut self, capacity: usize) -> Self {
        self.config.channel_capacity = capacity.max(1);
        self
    }

    /// Opens the connection and starts its task. Must be called within a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn demo() -> surreal_pool::Result<()> {
    /// let conn = surreal_pool::ConnectionBuilder::new("ws://127.0.0.1:8000").connect().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<Connection> {
        let mut config = self.config;
        config.endpoints = self.endpoints.iter().map(|e| normalize_endpoint(e)).collect::<Result<_>>()?;
        Connection::open(config).await
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
    config: Arc<Config>,
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    close: CancellationToken,
}

/// State shared by the handles and the actor.
pub(crate) struct Shared {
    /// Server sessions on this socket (`None` = the default session).
    sessions: Mutex<HashMap<Option<uuid::Uuid>, SessionState>>,
    next_id: AtomicU64,
    /// Connected and replayed (false while reconnecting).
    pub(crate) up: AtomicBool,
    /// Reconnecting for longer than the policy's `max_attempts`.
    pub(crate) down: AtomicBool,
    /// Requests written and not yet answered.
    pub(crate) in_flight: std::sync::atomic::AtomicUsize,
    /// Server sessions found expired and authenticated again with their still-valid token.
    pub(crate) sessions_renewed: AtomicU64,
    endpoint: Mutex<String>,
    events: broadcast::Sender<ConnectionEvent>,
    live: Mutex<crate::live::LiveRegistry>,
}

impl Shared {
    pub(crate) fn sessions(&self) -> MutexGuard<'_, HashMap<Option<uuid::Uuid>, SessionState>> {
        // A poisoned lock only means a panic elsewhere while holding it; the map is still valid.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn live(&self) -> MutexGuard<'_, crate::live::LiveRegistry> {
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
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoint", &self.endpoint())
            .field("up", &self.is_up())
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
    ///
    /// ```no_run
    /// # async fn demo() -> surreal_pool::Result<()> {
    /// let conn = surreal_pool::Connection::connect("ws://127.0.0.1:8000").await?;
    /// conn.session().ping().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(endpoint: impl Into<String>) -> Result<Connection> {
        ConnectionBuilder::new(endpoint).connect().await
    }

    /// A builder to configure timeouts, limits, reconnects and endpoints before connecting.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").request_timeout(Duration::from_secs(5));
    /// ```
    pub fn builder(endpoint: impl Into<String>) -> ConnectionBuilder {
        ConnectionBuilder::new(endpoint)
    }

    async fn open(config: Config) -> Result<Connection> {
        // The first endpoint that answers.
        let mut first_error = None;
        let mut opened = None;
        for endpoint in &config.endpoints {
            match dial(endpoint, &config).await {
                Ok(socket) => {
                    opened = Some((endpoint.clone(), socket));
                    break;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let Some((endpoint, socket)) = opened else {
            return Err(first_error.unwrap_or_else(|| Error::InvalidUrl("no endpoint given".into())));
        };
        let config = Arc::new(config);
        let (tx, rx) = mpsc::channel(config.channel_capacity);
        let shared = Arc::new(Shared {
            sessions: Mutex::new(HashMap::from([(None, SessionState::default())])),
            next_id: AtomicU64::new(1),
            up: AtomicBool::new(true),
            down: AtomicBool::new(false),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            sessions_renewed: AtomicU64::new(0),
            endpoint: Mutex::new(endpoint.clone()),
            events: broadcast::channel(256).0,
            live: Mutex::new(crate::live::LiveRegistry::default()),
        });
        let close = CancellationToken::new();
        actor::spawn(rx, shared.clone(), config.clone(), close.clone(), socket);
        tracing::debug!(endpoint = %endpoint, "connected");
        Ok(Connection { inner: Arc::new(Inner { config, tx, shared, close }) })
    }

    /// The endpoint this connection talks to now.
    ///
    /// ```no_run
    /// # async fn demo() -> surreal_pool::Result<()> {
    /// let conn = surreal_pool::Connection::connect("ws://127.0.0.1:8000").await?;
    /// assert_eq!(conn.endpoint(), "ws://127.0.0.1:8000/rpc");
    /// # Ok(()) }
    /// ```
    pub fn endpoint(&self) -> String {
        self.inner.shared.endpoint.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Subscribes to this connection's events (disconnects, reconnect attempts, restores, …).
    /// The channel keeps the last 256 events for a slow subscriber.
    ///
    /// ```no_run
    /// # async fn demo(conn: surreal_pool::Connection) {
    /// let mut events = conn.events();
    /// while let Ok(event) = events.recv().await {
    ///     println!("{event:?}");
    /// }
    /// # }
    /// ```
    pub fn events(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.inner.shared.events.subscribe()
    }

    /// A handle to the connection's default server session.
    ///
    /// ```no_run
    /// # async fn demo(conn: surreal_pool::Connection) -> surreal_pool::Result<()> {
    /// let db = conn.session();
    /// assert_eq!(db.id(), None);
    /// db.ping().await?;
    /// # Ok(()) }
    /// ```
    pub fn session(&self) -> Session {
        Session::new(self.clone(), None)
    }

    /// Attaches a new server session on this socket, with its own namespace, database, variables
    /// and identity. It is detached when the [`Session`] is dropped or [`Session::detach`]ed.
    ///
    /// ```no_run
    /// # async fn demo(conn: surreal_pool::Connection) -> surreal_pool::Result<()> {
    /// let db = conn.attach().await?;
    /// assert!(db.id().is_some());
    /// db.use_ns_db("app", "main").await?;
    /// # Ok(()) }
    /// ```
    pub async fn attach(&self) -> Result<Session> {
        let id = uuid::Uuid::new_v4();
        // If this future is dropped after the request went out, detach whatever it attached.
        struct Guard<'a>(&'a Connection, uuid::Uuid, bool);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                if !self.2 {
                    self.0.detach_in_background(self.1);
                }
            }
        }
        let mut guard = Guard(self, id, false);
        let result = self.request(Some(id), "attach", vec![], Effect::Attach).await;
        guard.2 = result.is_ok() || matches!(result, Err(Error::Closed));
        result?;
        Ok(Session::new(self.clone(), Some(id)))
    }

    /// The ids of the sessions attached on the server for this socket (`sessions` RPC).
    ///
    /// ```no_run
    /// # async fn demo(conn: surreal_pool::Connection) -> surreal_pool::Result<()> {
    /// let db = conn.attach().await?;
    /// let ids = conn.server_sessions().await?;
    /// assert!(ids.contains(&db.id().unwrap()));
    /// # Ok(()) }
    /// ```
    pub async fn server_sessions(&self) -> Result<Vec<uuid::Uuid>> {
        let list = self.request(None, "sessions", vec![], Effect::None).await?.json()?;
        let ids = list.as_array().ok_or_else(|| Error::Protocol("`sessions` did not return a list".into()))?;
        ids.iter()
            .map(|v| v.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| Error::Protocol("a session id that is not a uuid".into())))
            .collect()
    }

    /// Closes the connection: requests not yet answered fail with [`Error::Closed`], and every
    /// later request fails the same way.
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::Connection) {
    /// conn.close();
    /// # }
    /// ```
    pub fn close(&self) {
        self.inner.close.cancel();
    }

    /// Whether the connection's task has stopped (closed, or every handle dropped).
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::Connection) {
    /// if conn.is_closed() {
    ///     eprintln!("the connection to {} is closed", conn.endpoint());
    /// }
    /// # }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.tx.is_closed()
    }

    /// Whether the socket is connected and every session replayed (false while reconnecting).
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::Connection) {
    /// if !conn.is_up() {
    ///     eprintln!("reconnecting to {}", conn.endpoint());
    /// }
    /// # }
    /// ```
    pub fn is_up(&self) -> bool {
        self.inner.shared.up.load(Ordering::SeqCst) && !self.is_closed()
    }

    /// Whether reconnecting has failed `max_attempts` times (commands fail at once meanwhile).
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::Connection) {
    /// if conn.is_down() {
    ///     eprintln!("{} is down; commands fail at once", conn.endpoint());
    /// }
    /// # }
    /// ```
    pub fn is_down(&self) -> bool {
        self.inner.shared.down.load(Ordering::SeqCst)
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Sends one request and waits for its reply, bounded by the request timeout.
    pub(crate) async fn request(
        &self,
        session: Option<uuid::Uuid>,
        method: &'static str,
        params: Vec<Cbor>,
        effect: Effect,
    ) -> Result<Payload> {
        self.request_in(session, None, method, params, effect).await
    }

    /// [`request`](Self::request) inside transaction `txn`.
    pub(crate) async fn request_in(
        &self,
        session: Option<uuid::Uuid>,
        txn: Option<uuid::Uuid>,
        method: &'static str,
        params: Vec<Cbor>,
        effect: Effect,
    ) -> Result<Payload> {
        let id = self.inner.shared.next_id();
        let frame = envelope::encode_request_in(id, method, params, session, txn)?;
        self.send_frame(id, session, method, frame.into(), effect).await
    }

    /// Sends an encoded request (whose id is `id`) and waits for its reply, bounded by the
    /// request timeout. A frame may be sent again under the same id once its reply has come.
    pub(crate) async fn send_frame(
        &self,
        id: u64,
        session: Option<uuid::Uuid>,
        method: &'static str,
        frame: bytes::Bytes,
        effect: Effect,
    ) -> Result<Payload> {
        let span = tracing::debug_span!("surreal_pool.request", method, id, session = ?session);
        async move {
            let started = Instant::now();
            let deadline = started + self.inner.config.request_timeout;
            let (reply, rx) = oneshot::channel();
            // A detach is sent even if its caller stops waiting, so that no session leaks.
            let fire_and_forget = matches!(effect, Effect::Detach);
            let needs_identity = needs_identity(method, &effect);
            let command = Command { id, frame, session, effect, reply, fire_and_forget, needs_identity };
            let timed_out = || Error::Timeout { what: "reply", after: self.inner.config.request_timeout };
            let command = match self.inner.tx.try_send(command) {
                Ok(()) => None,
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Error::Closed),
                Err(mpsc::error::TrySendError::Full(command)) => {
                    let limit = self.inner.config.max_in_flight;
                    if self.inner.shared.in_flight.load(Ordering::Relaxed) >= limit {
                        return Err(Error::Overloaded { in_flight: limit });
                    }
                    Some(command)
                }
            };
            if let Some(command) = command {
                match timeout_at(deadline, self.inner.tx.send(command)).await {
                    Err(_) => return Err(timed_out()),
                    Ok(Err(_)) => return Err(Error::Closed),
                    Ok(Ok(())) => {}
                }
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

    /// Cancels a transaction without waiting (a transaction dropped without commit or cancel).
    pub(crate) fn cancel_in_background(&self, session: Option<uuid::Uuid>, txn: uuid::Uuid) {
        self.send_in_background(session, "cancel", vec![crate::wire::tags::uuid(&txn)], Effect::EndTransaction(txn));
    }

    /// Kills a live query without waiting (a dropped [`crate::LiveStream`]).
    pub(crate) fn kill_in_background(&self, session: Option<uuid::Uuid>, live: uuid::Uuid) {
        self.send_in_background(session, "kill", vec![crate::wire::tags::uuid(&live)], Effect::None);
    }

    /// Detaches a session without waiting (used from `Drop`).
    pub(crate) fn detach_in_background(&self, session: uuid::Uuid) {
        self.send_in_background(Some(session), "detach", vec![], Effect::Detach);
    }

    /// Queues a request nobody waits for (from a `Drop`): sent even though its caller is gone;
    /// if the queue is full, sent from a task as soon as there is room (bounded by the request
    /// timeout).
    fn send_in_background(&self, session: Option<uuid::Uuid>, method: &'static str, params: Vec<Cbor>, effect: Effect) {
        let id = self.inner.shared.next_id();
        let Ok(frame) = envelope::encode_request(id, method, params, session) else { return };
        let frame = frame.into();
        let (reply, _) = oneshot::channel();
        let command = Command { id, frame, session, effect, reply, fire_and_forget: true, needs_identity: false };
        if let Err(mpsc::error::TrySendError::Full(command)) = self.inner.tx.try_send(command) {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let tx = self.inner.tx.clone();
                let wait = self.inner.config.request_timeout;
                rt.spawn(async move {
                    let _ = timeout(wait, tx.send(command)).await;
                });
            } else {
                tracing::warn!(method, "could not queue a background request: the queue is full and there is no runtime");
            }
        }
    }
}

/// A rustls connector trusting the public web roots plus the configured ones.
fn tls_connector(config: &Config) -> Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in &config.root_certificates {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| Error::InvalidArgument(format!("a root certificate could not be used: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidArgument(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(tls)))
}

/// Whether a command may only run while the session's identity is known: everything but the
/// auth commands (which establish one) and commands that run no query.
pub(crate) fn needs_identity(method: &str, effect: &Effect) -> bool {
    !(effect.changes_auth() || matches!(method, "ping" | "version" | "attach" | "detach" | "use" | "let" | "unset" | "sessions"))
}

pub(crate) type Socket = tokio_websockets::WebSocketStream<tokio_websockets::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a socket to `endpoint`: TCP (every resolved address in turn, Nagle off), TLS for
/// `wss://`, then the WebSocket upgrade asking for the `cbor` subprotocol; all bounded by the
/// connect timeout. Messages (and frames) from the server above `max_message_size` end the
/// socket.
pub(crate) async fn dial(endpoint: &str, config: &Config) -> Result<Socket> {
    // The io / TLS / WebSocket error is kept as the `source()`.
    fn failed<E: std::error::Error + Send + Sync + 'static>(endpoint: &str) -> impl FnOnce(E) -> Error + '_ {
        move |e| Error::Connect { endpoint: endpoint.to_owned(), reason: e.to_string(), source: Some(Box::new(e)) }
    }
    let invalid = |e: &dyn std::fmt::Display| Error::InvalidUrl(format!("`{endpoint}`: {e}"));
    let uri: http::Uri = endpoint.parse().map_err(|e| invalid(&e))?;
    let tls = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(invalid(&"unsupported scheme (use ws:// or wss://)")),
    };
    // `Uri::host` keeps the brackets of an IPv6 literal; neither DNS nor TLS wants them.
    let host = uri.host().ok_or_else(|| invalid(&"no host"))?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let connector = if tls { tokio_websockets::Connector::Rustls(tls_connector(config)?) } else { tokio_websockets::Connector::Plain };
    let client = tokio_websockets::ClientBuilder::from_uri(uri)
        .add_header(http::header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static("cbor"))
        .map_err(failed(endpoint))?
        .limits(tokio_websockets::Limits::default().max_payload_len(Some(config.max_message_size)));
    let open = async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(failed(endpoint))?;
        let _ = tcp.set_nodelay(true);
        let stream = connector.wrap(&host, tcp).await.map_err(failed(endpoint))?;
        client.connect_on(stream).await.map_err(failed(endpoint))
    };
    let (socket, response) =
        timeout(config.connect_timeout, open).await.map_err(|_| Error::Timeout { what: "connect", after: config.connect_timeout })??;
    let protocol = response.headers().get(http::header::SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok());
    if protocol != Some("cbor") {
        return Err(Error::Connect {
            endpoint: endpoint.to_owned(),
            reason: format!("the server did not accept the `cbor` subprotocol (answered {protocol:?}); is it SurrealDB 3.x?"),
            source: None,
        });
    }
    Ok(socket)
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
