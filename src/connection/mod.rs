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
//!   (including every [`Session`](crate::Session)) is dropped. Requests still waiting then fail with
//!   [`Error::Closed`]; requests in flight when the socket dies fail with
//!   [`Error::ConnectionLost`] — they may or may not have run, and are never resent.


pub(crate) mod actor;
mod builder;
pub(crate) mod live_registry;
pub(crate) mod negotiate;
pub(crate) mod node_stats;
pub(crate) mod probe;
pub(crate) mod reconnect;
pub(crate) mod relocate;
pub(crate) mod replay;
mod settle;
mod shared;
pub(crate) mod state;
mod transport;

pub use builder::ConnectionBuilder;
pub(crate) use builder::Config;
pub(crate) use shared::Shared;
pub(crate) use transport::{dial, Socket};

use std::sync::atomic::Ordering;
use std::sync::Arc;

use ciborium::Value as Cbor;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::{timeout, timeout_at, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use actor::Command;
use crate::error::{Error, Result};
use crate::wire::envelope::{self, Payload};
use crate::connection::reconnect::ConnectionEvent;
use crate::connection::state::Effect;


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


impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoint", &self.endpoint())
            .field("up", &self.is_up())
            .field("closed", &self.is_closed())
            .finish()
    }
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
        let shared = Arc::new(Shared::new(&config));
        // The first endpoint that answers, and says its version (or does not: see `negotiate`).
        let mut first_error = None;
        let mut opened = None;
        for endpoint in &config.endpoints {
            let mut socket = match dial(endpoint, &config).await {
                Ok(socket) => socket,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            match negotiate::negotiate(&mut socket, &shared, &config).await {
                Ok(_) => {
                    opened = Some((endpoint.clone(), socket));
                    break;
                }
                Err(reason) => {
                    first_error.get_or_insert(Error::Connect { endpoint: endpoint.clone(), reason, source: None });
                }
            }
        }
        let Some((endpoint, socket)) = opened else {
            return Err(first_error.unwrap_or_else(|| Error::InvalidUrl("no endpoint given".into())));
        };
        shared.set_endpoint(&endpoint);
        let index = config.endpoints.iter().position(|e| *e == endpoint).unwrap_or(0);
        shared.stats.set_current(index);
        let config = Arc::new(config);
        let (tx, rx) = mpsc::channel(config.channel_capacity);
        let close = CancellationToken::new();
        actor::spawn(rx, shared.clone(), config.clone(), close.clone(), socket, index);
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

    /// The server's version, as it reported it (the `version` RPC) when this connection
    /// connected, or reconnected last: a reconnect, to another node or to an upgraded server,
    /// learns it again before anything else is sent. `None` when the server did not say (it
    /// answered `version` with an error or something that is not a version, or not in time);
    /// the connection then works as with any 3.x server, and what only a newer server has is
    /// refused with [`Error::Unsupported`].
    ///
    /// ```no_run
    /// # async fn demo() -> surreal_pool::Result<()> {
    /// let conn = surreal_pool::Connection::connect("ws://127.0.0.1:8000").await?;
    /// match conn.server_version() {
    ///     Some(v) if v.has_begin_options() => println!("{v}: read-only transactions available"),
    ///     Some(v) => println!("{v} (SurrealDB {}.x)", v.major()),
    ///     None => println!("the server did not say its version"),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn server_version(&self) -> Option<crate::ServerVersion> {
        self.inner.shared.server_version()
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
        let list: serde_json::Value = self.request(None, "sessions", vec![], Effect::None).await?.decode()?;
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

    /// Requests written and not yet answered, and commands queued for the actor.
    pub(crate) fn load(&self) -> (usize, usize) {
        let queued = self.inner.tx.max_capacity() - self.inner.tx.capacity();
        (self.inner.shared.in_flight.load(Ordering::Relaxed), queued)
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
            let node = self.inner.shared.stats.start();
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
            crate::telemetry::request(method, started.elapsed(), result.is_ok());
            self.inner.shared.stats.record_call(node, node_stats::judge(&result), started.elapsed());
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


/// Whether a command may only run while the session's identity is known: everything but the
/// auth commands (which establish one) and commands that run no query.
pub(crate) fn needs_identity(method: &str, effect: &Effect) -> bool {
    !(effect.changes_auth() || matches!(method, "ping" | "version" | "attach" | "detach" | "use" | "let" | "unset" | "sessions"))
}

