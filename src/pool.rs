//! The pool: server sessions on shared sockets, checked out exclusively, each running as the
//! identity its caller asked for.
//!
//! # How a checkout works
//!
//! The pool owns `connections` WebSockets and up to `max_sessions` server sessions spread over
//! them (fewest sessions first). [deadpool] decides *whether* a checkout may proceed (size
//! limit, wait queue, wait timeout, cancellation safety); the pool's session table decides
//! *which* session it gets:
//!
//! 1. An idle session already authenticated as the requested token (or, for [`Pool::get`], already
//!    in the pool's default identity) is taken with no round trip (an *affinity hit*).
//! 2. Otherwise the least recently used idle session is re-authenticated with the token
//!    (one `authenticate` round trip), or put back into the default identity.
//! 3. A session whose state is not exactly what the pool left it in — the caller signed in as
//!    someone else, changed namespace or variables, or dropped a future mid-request so the
//!    outcome of a state change is unknown — is *dirty*: it is `reset` and re-prepared before
//!    anyone gets it again.
//!
//! The session's *tag* (the identity it is clean for) is computed on return from the state the
//! connection actor recorded from the server's replies, never from what the caller intended, so
//! a tag always equals the server-side identity.
//!
//! [deadpool]: https://docs.rs/deadpool

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, PoolError, RecycleError, RecycleResult};
use tracing::Instrument;

use crate::auth::{AccessToken, Credentials};
use crate::connection::{Connection, ConnectionBuilder};
use crate::reconnect::ReconnectPolicy;
use crate::error::{Error, Result};
use crate::session::Session;
use crate::state::{AuthState, SessionState};

/// Default number of WebSocket connections.
pub const DEFAULT_CONNECTIONS: usize = 4;
/// Default maximum number of pooled server sessions (32 per default connection). Sessions are
/// created on demand; each costs ~7 KiB here. Fewer would cap the requests in flight per
/// socket, and the server spends more CPU per request on a shallow pipeline (BENCHMARKS.md:
/// 64 sessions cost the server 12 % more per request than 128 at 256 callers).
pub const DEFAULT_MAX_SESSIONS: usize = 128;
/// Default cap of sessions per connection (the server allows 256).
pub const DEFAULT_MAX_SESSIONS_PER_CONNECTION: usize = 128;
/// Default longest wait for a free session.
pub const DEFAULT_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default wait for a busy session already in the wanted identity.
pub const DEFAULT_AFFINITY_WAIT: Duration = Duration::from_millis(20);

/// The identity fresh pooled sessions get, and that [`Pool::get`] hands out.
#[derive(Debug, Clone)]
enum Identity {
    Anonymous,
    Token(AccessToken),
    Credentials(Arc<dyn Credentials>),
}

/// Configures a [`Pool`]. Every setting has a documented default.
///
/// ```no_run
/// # async fn demo() -> surreal_pool::Result<()> {
/// use std::time::Duration;
/// let pool = surreal_pool::Pool::builder("ws://127.0.0.1:8000")
///     .connections(4)                     // sockets (default 4)
///     .max_sessions(128)                  // pooled server sessions (default 128)
///     .namespace_database("app", "main")  // selected on every session (default: none)
///     .checkout_timeout(Duration::from_secs(5))
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    endpoint: String,
    connection: ConnectionBuilder,
    connections: usize,
    max_sessions: usize,
    max_sessions_per_connection: usize,
    namespace: Option<String>,
    database: Option<String>,
    identity: Identity,
    checkout_timeout: Duration,
    warm_sessions: Option<usize>,
    affinity_wait: Duration,
    extra_endpoints: Vec<String>,
}

impl PoolBuilder {
    fn new(endpoint: String) -> Self {
        PoolBuilder {
            connection: ConnectionBuilder::new(endpoint.clone()),
            endpoint,
            connections: DEFAULT_CONNECTIONS,
            max_sessions: DEFAULT_MAX_SESSIONS,
            max_sessions_per_connection: DEFAULT_MAX_SESSIONS_PER_CONNECTION,
            namespace: None,
            database: None,
            identity: Identity::Anonymous,
            checkout_timeout: DEFAULT_CHECKOUT_TIMEOUT,
            warm_sessions: None,
            affinity_wait: DEFAULT_AFFINITY_WAIT,
            extra_endpoints: Vec::new(),
        }
    }

    /// When every session authenticated as the wanted token is checked out while other sessions
    /// are idle, wait this long for one of them to come back before re-authenticating an idle
    /// session (default 20 ms). A returned session goes first to a checkout waiting for its
    /// identity, straight from the caller returning it. Re-purposing an idle session costs an
    /// `authenticate` round trip and evicts another tenant, who may then evict another; a short
    /// wait is cheaper. When no session is idle at all, a checkout waits for whichever comes
    /// first: its identity's session or any session. `Duration::ZERO` never waits for affinity.
    ///
    /// ```
    /// let builder = surreal_pool::Pool::builder("ws://127.0.0.1:8000").affinity_wait(std::time::Duration::ZERO);
    /// ```
    pub fn affinity_wait(mut self, wait: Duration) -> Self {
        self.affinity_wait = wait;
        self
    }

    /// Sessions created when the pool is built (default: `max_sessions`). Affinity needs
    /// idle sessions to choose from, and an `attach` costs about as much as a `ping`, so by
    /// default the pool starts full.
    ///
    /// ```
    /// let builder = surreal_pool::Pool::builder("ws://127.0.0.1:8000").max_sessions(64).warm_sessions(8);
    /// ```
    pub fn warm_sessions(mut self, n: usize) -> Self {
        self.warm_sessions = Some(n);
        self
    }

    /// Number of WebSocket connections (default 4). The server serves each socket largely
    /// serially, so more sockets mean more parallelism.
    ///
    /// ```
    /// let builder = surreal_pool::Pool::builder("ws://127.0.0.1:8000").connections(4);
    /// ```
    pub fn connections(mut self, n: usize) -> Self {
        self.connections = n;
        self
    }

    /// Maximum number of pooled server sessions, i.e. concurrent checkouts (default 128).
    ///
    /// ```
    /// let builder = surreal_pool::Pool::builder("ws://127.0.0.1:8000").max_sessions(64);
    /// ```
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }

    /// Cap of sessions on one connection (default 128; the server refuses more than 256).
    ///
    /// ```
    /// let builder = surreal_pool::Pool::builder("ws://127.0.0.1:8000").max_sessions_per_connection(64);
    /// ```
    pub fn max_sessions_per_connection(mut self, n: usize) -> Self {
        self.max_sessions_per_connection = n;
        self
    }

    /// Namespace and database selected on every pooled session (default: none).
    ///
    /// ```
    /// let builder = surreal_pool::Pool::builder("ws://127.0.0.1:8000").namespace_database("app", "main");
    /// ```
    pub fn namespace_database(mut self, namespace: impl Into<String>, database: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self.database = Some(database.into());
        self
    }

    /// Pool identity: sessions handed out by [`Pool::get`] are authenticated with this token
    /// (default: anonymous).
    ///
    /// ```
    /// let builder = surreal_pool::Pool::builder("ws://127.0.0.1:8000").identity_token("eyJhbGciOi...");
    /// ```
    pub fn identity_token(mut self, token: impl Into<AccessToken>) -> Self {
        self.identity = Identity::Token(token.into());
        self
    }

    /// Pool identity: the pool signs in once with these credentials and authenticates sessions
    /// handed out by [`Pool::get`] with the resulting token (default: anonymous).
    ///
    /// ```
    /// use surreal_pool::{Pool, Root};
    /// let builder = Pool::builder("ws://127.0.0.1:8000").identity_credentials(Root::new("root", "root"));
    /// ```
    pub fn identity_credentials(mut self, credentials: impl Credentials + 'static) -> Self {
        self.identity = Identity::Credentials(Arc::new(credentials));
        self
    }

    /// Longest wait for a free session in a checkout (default 10 s), after which it fails with
    /// [`Error::Timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = surreal_pool::Pool::builder("ws://127.0.0.1:8000").checkout_timeout(Duration::from_secs(2));
    /// ```
    pub fn checkout_timeout(mut self, timeout: Duration) -> Self {
        self.checkout_timeout = timeout;
        self
    }

    /// Longest a request may take (default 30 s). See [`ConnectionBuilder::request_timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = surreal_pool::Pool::builder("ws://127.0.0.1:8000").request_timeout(Duration::from_secs(5));
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.connection = self.connection.request_timeout(timeout);
        self
    }

    /// How connections reconnect (default [`ReconnectPolicy::default`]). See
    /// [`ConnectionBuilder::reconnect`].
    ///
    /// ```
    /// use surreal_pool::{Pool, ReconnectPolicy};
    /// let builder = Pool::builder("ws://127.0.0.1:8000").reconnect(ReconnectPolicy::default().max_attempts(5));
    /// ```
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.connection = self.connection.reconnect(policy);
        self
    }

    /// Adds another endpoint (a node of the same cluster): sockets are spread over the
    /// endpoints, and a socket whose node stays down fails over to another. See
    /// [`ConnectionBuilder::endpoint`].
    ///
    /// ```
    /// let builder = surreal_pool::Pool::builder("ws://10.0.0.1:8000").endpoint("ws://10.0.0.2:8000");
    /// ```
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.extra_endpoints.push(endpoint.into());
        self
    }

    /// Applies any other connection setting (keepalive, watchdog, remembered credentials,
    /// renewal margin, message size, …) to every connection of the pool.
    ///
    /// ```no_run
    /// # async fn demo() -> surreal_pool::Result<()> {
    /// use std::time::Duration;
    /// let pool = surreal_pool::Pool::builder("ws://127.0.0.1:8000")
    ///     .configure_connections(|c| c.watchdog_timeout(Duration::from_secs(5)))
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn configure_connections(mut self, f: impl FnOnce(ConnectionBuilder) -> ConnectionBuilder) -> Self {
        self.connection = f(self.connection);
        self
    }

    /// Longest a connect may take (default 10 s). See [`ConnectionBuilder::connect_timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = surreal_pool::Pool::builder("ws://127.0.0.1:8000").connect_timeout(Duration::from_secs(2));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connection = self.connection.connect_timeout(timeout);
        self
    }

    /// Opens the connections and builds the pool. Sessions are created on demand.
    ///
    /// ```no_run
    /// # async fn demo() -> surreal_pool::Result<()> {
    /// let pool = surreal_pool::Pool::builder("ws://127.0.0.1:8000").namespace_database("app", "main").build().await?;
    /// # Ok(()) }
    /// ```
    pub async fn build(self) -> Result<Pool> {
        if self.connections == 0 || self.max_sessions == 0 {
            return Err(Error::InvalidArgument("a pool needs at least one connection and one session".into()));
        }
        if self.max_sessions_per_connection == 0 || self.max_sessions_per_connection > 256 {
            return Err(Error::InvalidArgument("max_sessions_per_connection must be 1..=256 (the server's cap)".into()));
        }
        if self.max_sessions > self.connections * self.max_sessions_per_connection {
            return Err(Error::InvalidArgument(format!(
                "{} sessions do not fit on {} connections of at most {} sessions",
                self.max_sessions, self.connections, self.max_sessions_per_connection
            )));
        }
        // Spread the sockets over the endpoints: socket i starts on endpoint i mod n and fails
        // over to the others in order.
        let mut endpoints = vec![self.endpoint.clone()];
        endpoints.extend(self.extra_endpoints.iter().cloned());
        let mut connections = Vec::with_capacity(self.connections);
        for i in 0..self.connections {
            let mut builder = self.connection.clone().with_endpoints(endpoints[i % endpoints.len()].clone());
            for k in 1..endpoints.len() {
                builder = builder.endpoint(endpoints[(i + k) % endpoints.len()].clone());
            }
            connections.push(builder.connect().await?);
        }
        let shared = Arc::new(PoolShared {
            table: Mutex::new(Table { per_connection: vec![0; connections.len()], ..Table::default() }),
            connections,
            max_per_connection: self.max_sessions_per_connection,
            namespace: self.namespace,
            database: self.database,
            identity: self.identity.clone(),
            identity_token: Mutex::new(match &self.identity {
                Identity::Token(t) => Some(t.clone()),
                _ => None,
            }),
            identity_signin: tokio::sync::Mutex::new(()),
            last_grant_ms: AtomicU64::new(0),
            started: std::time::Instant::now(),
            counters: Counters::default(),
        });
        let manager = SessionManager { shared: shared.clone() };
        let sessions = managed::Pool::builder(manager)
            .max_size(self.max_sessions)
            .wait_timeout(Some(self.checkout_timeout))
            .create_timeout(Some(self.checkout_timeout))
            .recycle_timeout(Some(self.checkout_timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let pool = Pool {
            inner: Arc::new(PoolInner { sessions, shared, checkout_timeout: self.checkout_timeout, affinity_wait: self.affinity_wait }),
        };
        // Create the warm sessions concurrently, then return them all.
        let warm = self.warm_sessions.unwrap_or(self.max_sessions).min(self.max_sessions);
        let created = futures_util::future::join_all((0..warm).map(|_| pool.inner.sessions.get())).await;
        for object in created {
            let object = object.map_err(|e| pool.pool_error(e))?;
            let mut table = pool.inner.shared.table();
            if let Some(entry) = table.entries.get_mut(&object.id) {
                entry.busy = false;
            }
            table.index(object.id);
        }
        tracing::debug!(endpoint = %self.endpoint, sessions = warm, "pool ready");
        Ok(pool)
    }
}

/// A shared, cloneable pool of SurrealDB server sessions for a multi-tenant server.
///
/// ```no_run
/// # async fn demo(jwt_from_request: &str) -> surreal_pool::Result<()> {
/// let pool = surreal_pool::Pool::builder("ws://127.0.0.1:8000")
///     .namespace_database("app", "main")
///     .build()
///     .await?;
/// // Per request: run as the request's user.
/// let db = pool.get_with_token(jwt_from_request).await?;
/// let mine: Vec<serde_json::Value> = db.query("SELECT * FROM note", ()).await?.take(0)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("status", &self.status()).finish()
    }
}

struct PoolInner {
    sessions: managed::Pool<SessionManager>,
    shared: Arc<PoolShared>,
    checkout_timeout: Duration,
    affinity_wait: Duration,
}

struct PoolShared {
    table: Mutex<Table>,
    connections: Vec<Connection>,
    max_per_connection: usize,
    namespace: Option<String>,
    database: Option<String>,
    identity: Identity,
    /// The token of the pool identity (from `identity_token`, or from signing in once).
    identity_token: Mutex<Option<AccessToken>>,
    /// Serializes signing in with the pool's credentials.
    identity_signin: tokio::sync::Mutex<()>,
    /// When deadpool last granted a slot (milliseconds since `started`).
    last_grant_ms: AtomicU64,
    started: std::time::Instant,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    checkouts: AtomicU64,
    auth_round_trips: AtomicU64,
    affinity_hits: AtomicU64,
    resets: AtomicU64,
    replaced: AtomicU64,
    refused_tokens: AtomicU64,
}

/// A snapshot of the pool's state and counters.
///
/// ```no_run
/// # fn demo(pool: &surreal_pool::Pool) {
/// let s = pool.status();
/// println!("{}/{} sessions idle, {} waiting, {} affinity hits of {} checkouts",
///     s.available, s.size, s.waiting, s.affinity_hits, s.checkouts);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStatus {
    /// Maximum number of sessions.
    pub max_size: usize,
    /// Sessions that exist now.
    pub size: usize,
    /// Idle sessions.
    pub available: usize,
    /// Checkouts waiting for a session.
    pub waiting: usize,
    /// Checkouts served so far.
    pub checkouts: u64,
    /// `authenticate`/`signin`/`invalidate` round trips made to prepare checkouts.
    pub auth_round_trips: u64,
    /// Checkouts served by a session already in the wanted identity (no round trip).
    pub affinity_hits: u64,
    /// Sessions reset because their state was not what the pool left.
    pub resets: u64,
    /// Sessions detached and replaced by fresh ones instead of being reset, because they came
    /// back with a state change still in flight (its outcome could land after a reset), or
    /// their connection could not re-attach them after a reconnect.
    pub replaced: u64,
    /// Tokens refused before any round trip (malformed, or past their `exp`).
    pub refused_tokens: u64,
    /// Server sessions that expired while their token was still valid and were authenticated
    /// again with it (one round trip each, on top of `auth_round_trips`).
    pub sessions_renewed: u64,
    /// The pool's connections (sockets).
    pub connections: usize,
    /// Connections connected with every session replayed (the others are reconnecting).
    pub connections_up: usize,
    /// Connections that failed the reconnect policy's `max_attempts` and now fail commands at
    /// once (they keep retrying in the background).
    pub connections_down: usize,
}

/// A namespace and database selection.
type NsDb = (Option<String>, Option<String>);

/// What [`Table::take`] hands a checkout.
struct Taken {
    session: Session,
    tag: Tag,
    clean_ns_db: NsDb,
    hit: bool,
}

/// What a pooled session is clean for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Tag {
    /// The pool's default identity.
    Default,
    /// Authenticated with this forwarded token.
    Tenant(AccessToken),
    /// Must be reset before use.
    Dirty,
}

/// One pooled session. While checked out its `session` is held by the [`PooledSession`].
struct Entry {
    session: Option<Session>,
    connection: usize,
    tag: Tag,
    /// The namespace and database the session had when it was last made clean.
    clean_ns_db: NsDb,
    last_used: u64,
    busy: bool,
}

#[derive(Default)]
struct Table {
    entries: HashMap<u64, Entry>,
    /// Idle clean entries by tag.
    idle: HashMap<Tag, Vec<u64>>,
    /// Checked-out sessions by the tag they were checked out for.
    busy_for: HashMap<Tag, usize>,
    /// Checkouts waiting for a busy session of their tag.
    waiters: HashMap<Tag, std::collections::VecDeque<tokio::sync::oneshot::Sender<PooledSession>>>,
    per_connection: Vec<usize>,
    next_slot: u64,
    tick: u64,
    /// Waits registered since `waiters` was last swept of the ones that gave up.
    registered: usize,
    /// Sweep again after this many registrations (twice the waiters then alive, at least 64),
    /// so that sweeping costs O(1) per wait, amortized, and the map stays within a constant
    /// factor of the checkouts actually waiting.
    sweep_after: usize,
}

impl Table {
    /// Frees one session's room on a connection.
    fn release(&mut self, connection: usize) {
        if let Some(n) = self.per_connection.get_mut(connection) {
            *n = n.saturating_sub(1);
        }
    }

    fn busy_add(&mut self, tag: &Tag, delta: isize) {
        let n = self.busy_for.entry(tag.clone()).or_default();
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            self.busy_for.remove(tag);
        }
    }

    /// Registers a wait for a session of `tag` if none is idle but one is checked out.
    fn wait_for(&mut self, tag: &Tag) -> Option<tokio::sync::oneshot::Receiver<PooledSession>> {
        if self.idle.contains_key(tag) || !self.busy_for.contains_key(tag) {
            return None;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.registered += 1;
        if self.registered >= self.sweep_after {
            self.waiters.retain(|_, q| {
                q.retain(|w| !w.is_closed());
                !q.is_empty()
            });
            let alive: usize = self.waiters.values().map(|q| q.len()).sum();
            self.registered = 0;
            self.sweep_after = (2 * alive).max(64);
        }
        self.waiters.entry(tag.clone()).or_default().push_back(tx);
        Some(rx)
    }

    /// The table's own copy of a tenant tag, if it knows the token: its hash and claims are
    /// already computed (a forwarded token arrives as a new string with every request).
    fn intern(&self, want: Tag) -> Tag {
        if matches!(want, Tag::Tenant(_)) {
            let known = self.idle.get_key_value(&want).map(|(k, _)| k).or_else(|| self.busy_for.get_key_value(&want).map(|(k, _)| k));
            if let Some(known) = known {
                return known.clone();
            }
        }
        want
    }

    fn unindex(&mut self, slot: u64) {
        if let Some(tag) = self.entries.get(&slot).map(|e| e.tag.clone()) {
            if let Some(list) = self.idle.get_mut(&tag) {
                list.retain(|s| *s != slot);
                if list.is_empty() {
                    self.idle.remove(&tag);
                }
            }
        }
    }

    fn index(&mut self, slot: u64) {
        if let Some(e) = self.entries.get(&slot) {
            if !e.busy && e.tag != Tag::Dirty {
                self.idle.entry(e.tag.clone()).or_default().push(slot);
            }
        }
    }

    /// Whether `want` is an identity the server has accepted: the default one, or a token some
    /// pooled session holds now. Any other token may be refused.
    fn proven(&self, want: &Tag) -> bool {
        !matches!(want, Tag::Tenant(_)) || self.idle.contains_key(want) || self.busy_for.contains_key(want)
    }

    /// The idle session a checkout holding `slot` re-purposes, when none is in its identity.
    ///
    /// For a proven identity: the least recently used clean session (ours included; ours if
    /// dirty only as a last resort, a reset costs a round trip more). For a token that may be
    /// refused: a session in the default identity first, then one to be cleaned anyway, and a
    /// tenant's session only when no other is idle, so that a bad token (or a flood of them)
    /// never costs another tenant its session and a re-authenticate.
    fn victim(&self, slot: u64, proven: bool) -> Option<u64> {
        let idle = self.entries.iter().filter(|(id, e)| **id == slot || (!e.busy && e.session.is_some()));
        pick_victim(idle.map(|(id, e)| (*id, &e.tag, e.last_used)), slot, proven)
    }

    /// Exchanges the sessions of a busy slot (ours) and an idle one.
    fn swap(&mut self, ours: u64, idle: u64) {
        if ours == idle {
            return;
        }
        self.unindex(idle);
        let Some(mut a) = self.entries.remove(&ours) else { return };
        if let Some(b) = self.entries.get_mut(&idle) {
            std::mem::swap(&mut a.session, &mut b.session);
            std::mem::swap(&mut a.connection, &mut b.connection);
            std::mem::swap(&mut a.tag, &mut b.tag);
            std::mem::swap(&mut a.clean_ns_db, &mut b.clean_ns_db);
            std::mem::swap(&mut a.last_used, &mut b.last_used);
        }
        self.entries.insert(ours, a);
        self.index(idle);
    }

    /// Takes the session for a checkout that holds `slot` and wants `want`. Returns the session,
    /// its current tag and clean ns/db, and whether it is an affinity hit.
    fn take(&mut self, slot: u64, want: &Tag) -> Option<Taken> {
        let proven = self.proven(want);
        self.unindex(slot);
        self.entries.get_mut(&slot)?.busy = true;
        let mut hit = self.entries[&slot].tag == *want;
        if !hit {
            if let Some(other) = self.idle.get(want).and_then(|l| l.last().copied()) {
                self.swap(slot, other);
                hit = true;
            } else if let Some(victim) = self.victim(slot, proven) {
                self.swap(slot, victim);
            }
        }
        self.tick += 1;
        let tick = self.tick;
        let e = self.entries.get_mut(&slot)?;
        e.last_used = tick;
        Some(Taken { session: e.session.take()?, tag: e.tag.clone(), clean_ns_db: e.clean_ns_db.clone(), hit })
    }
}

/// [`Table::victim`]'s choice among `(slot, tag, last used)` of the idle sessions and `slot`.
fn pick_victim<'a>(candidates: impl Iterator<Item = (u64, &'a Tag, u64)>, slot: u64, proven: bool) -> Option<u64> {
    candidates
        .filter(|(id, tag, _)| *id == slot || !proven || **tag != Tag::Dirty)
        .min_by_key(|(id, tag, last_used)| {
            let rank = match (tag, proven) {
                (Tag::Dirty, true) => u8::from(*id == slot),
                (_, true) => 0,
                (Tag::Default, false) => 0,
                (Tag::Dirty, false) => 1,
                (Tag::Tenant(_), false) => 2,
            };
            (rank, *last_used)
        })
        .map(|(id, ..)| id)
}

impl PoolShared {
    fn granted(&self) {
        self.last_grant_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn since_last_grant(&self) -> Duration {
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_grant_ms.load(Ordering::Relaxed)))
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn default_ns_db(&self) -> NsDb {
        (self.namespace.clone(), self.database.clone())
    }

    fn identity_token(&self) -> Option<AccessToken> {
        self.identity_token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts a session into the pool's default identity. Returns the round trips made.
    async fn make_default(&self, session: &Session, from: &Tag) -> Result<()> {
        match &self.identity {
            Identity::Anonymous => {
                if *from != Tag::Default {
                    self.counters.auth_round_trips.fetch_add(1, Ordering::Relaxed);
                    session.invalidate().await?;
                }
            }
            Identity::Token(token) => {
                self.counters.auth_round_trips.fetch_add(1, Ordering::Relaxed);
                session.authenticate(token.clone()).await?;
            }
            Identity::Credentials(credentials) => {
                // One signin for the whole pool: later sessions authenticate with its token.
                let _one_at_a_time = self.identity_signin.lock().await;
                let reused = match self.identity_token() {
                    Some(token) => {
                        self.counters.auth_round_trips.fetch_add(1, Ordering::Relaxed);
                        session.authenticate(token).await.is_ok()
                    }
                    None => false,
                };
                if !reused {
                    self.counters.auth_round_trips.fetch_add(1, Ordering::Relaxed);
                    let tokens = session.signin(credentials.as_ref()).await?;
                    *self.identity_token.lock().unwrap_or_else(|e| e.into_inner()) = Some(tokens.access);
                }
            }
        }
        // Signing in may select the token's namespace/database: restore the pool's.
        self.select_defaults(session).await
    }

    async fn select_defaults(&self, session: &Session) -> Result<()> {
        let current = session.with_state(|s| s.map(|s| (s.namespace.clone(), s.database.clone())));
        let (ns, db) = self.default_ns_db();
        if current.as_ref() != Some(&(ns.clone(), db.clone())) {
            // `None` unsets: a default session never keeps a tenant's namespace or database.
            session.use_exactly(ns.as_deref(), db.as_deref()).await?;
        }
        Ok(())
    }

    /// What a returned session is clean for, judged from the server-confirmed state.
    fn classify(&self, state: Option<&SessionState>, forwarded: Option<&AccessToken>, clean_ns_db: &NsDb) -> Tag {
        let Some(state) = state else { return Tag::Dirty };
        if state.effects_in_flight > 0
            || state.open_transactions > 0
            || !state.variables.is_empty()
            || (&state.namespace, &state.database) != (&clean_ns_db.0, &clean_ns_db.1)
        {
            return Tag::Dirty;
        }
        let identity = self.identity_token();
        match (&state.auth, &self.identity) {
            (AuthState::Anonymous, Identity::Anonymous) => Tag::Default,
            (AuthState::Token(t), _) if forwarded == Some(&t.access) => Tag::Tenant(t.access.clone()),
            (AuthState::Token(t), Identity::Token(id)) if *id == t.access => Tag::Default,
            (AuthState::Token(t), Identity::Credentials(_)) if identity.as_ref() == Some(&t.access) => Tag::Default,
            _ => Tag::Dirty,
        }
    }
}

/// A session reserved on a connection while it is being created.
struct Reservation<'a> {
    shared: &'a PoolShared,
    connection: usize,
    kept: bool,
}

impl Reservation<'_> {
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.shared.table().release(self.connection);
        }
    }
}

/// deadpool's manager: a pooled object is a *slot*; the session in it lives in the table.
struct SessionManager {
    shared: Arc<PoolShared>,
}

/// A deadpool object: the key of an [`Entry`]. Dropping it removes the entry (the session is
/// detached on the server when it drops).
struct Slot {
    id: u64,
    shared: Arc<PoolShared>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.shared.table();
        table.unindex(self.id);
        if let Some(entry) = table.entries.remove(&self.id) {
            table.release(entry.connection);
        }
    }
}

impl managed::Manager for SessionManager {
    type Type = Slot;
    type Error = Error;

    async fn create(&self) -> Result<Slot> {
        let shared = &self.shared;
        // Reserve room on the least-loaded connection.
        let connection = {
            let mut table = shared.table();
            let (index, count) = table
                .per_connection
                .iter()
                .enumerate()
                .filter(|(i, _)| !shared.connections[*i].is_closed())
                .min_by_key(|(_, n)| **n)
                .map(|(i, n)| (i, *n))
                .ok_or(Error::Closed)?;
            if count >= shared.max_per_connection {
                return Err(Error::SessionLimit { per_connection: shared.max_per_connection });
            }
            table.per_connection[index] += 1;
            index
        };
        // Released on error *and* on cancellation (deadpool's create timeout, or a hand-over
        // winning the race in `object_or_handoff`), unless the slot is created.
        let reservation = Reservation { shared, connection, kept: false };
        // Dropping `session` (error or cancellation) detaches it on the server.
        let session = shared.connections[connection].attach().await?;
        shared.make_default(&session, &Tag::Default).await?;
        reservation.keep();
        let clean_ns_db = session.with_state(|s| s.map(|s| (s.namespace.clone(), s.database.clone()))).unwrap_or_default();
        let mut table = shared.table();
        table.next_slot += 1;
        let id = table.next_slot;
        table.entries.insert(
            id,
            Entry { session: Some(session), connection, tag: Tag::Default, clean_ns_db, last_used: 0, busy: true },
        );
        Ok(Slot { id, shared: shared.clone() })
    }

    async fn recycle(&self, slot: &mut Slot, _: &Metrics) -> RecycleResult<Error> {
        let table = self.shared.table();
        match table.entries.get(&slot.id) {
            Some(e) if self.shared.connections[e.connection].is_closed() => Err(RecycleError::message("the session's connection is closed")),
            Some(Entry { session: Some(session), .. }) if session.with_state(|s| s.is_some()) => Ok(()),
            _ => Err(RecycleError::message("the session is gone (its connection could not re-attach it)")),
        }
    }
}

impl Pool {
    /// A builder for a pool on `endpoint` (`ws://` or `wss://`).
    ///
    /// ```
    /// let builder = surreal_pool::Pool::builder("ws://127.0.0.1:8000").connections(4).max_sessions(64);
    /// ```
    pub fn builder(endpoint: impl Into<String>) -> PoolBuilder {
        PoolBuilder::new(endpoint.into())
    }

    /// Checks out a session in the pool's default identity (anonymous, or the pool identity):
    /// never one that still carries a previous caller's identity.
    ///
    /// ```no_run
    /// # async fn demo(pool: &surreal_pool::Pool) -> surreal_pool::Result<()> {
    /// let db = pool.get().await?;
    /// let notes: Vec<serde_json::Value> = db.select("note").await?;
    /// # Ok(()) }
    /// ```
    pub async fn get(&self) -> Result<PooledSession> {
        self.checkout(Tag::Default).await
    }

    /// Checks out a session authenticated as `token` (per-request JWT forwarding). An idle
    /// session already authenticated with the same token is reused with no round trip;
    /// otherwise one `authenticate` is made.
    ///
    /// A token that is not a well-formed JWT, or whose `exp` has passed, fails at once with
    /// [`Error::InvalidToken`]: no session is touched and nothing is sent. A token the server
    /// refuses is an [`Error::Auth`]. A token no pooled session holds yet may be refused, so it
    /// is authenticated on a session in the default identity (or one being cleaned) rather
    /// than on another tenant's, unless no other can serve.
    ///
    /// Should the server session expire while the token is still valid (an access method
    /// `DURATION … FOR SESSION` shorter than `FOR TOKEN`), the session is authenticated again
    /// with the same token and the request sent once more (the server refuses such a request
    /// before running it): a request made with a valid token never fails for that.
    ///
    /// ```no_run
    /// # async fn demo(pool: &surreal_pool::Pool, jwt: &str) -> surreal_pool::Result<()> {
    /// let db = pool.get_with_token(jwt).await?;
    /// let me = db.info().await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_with_token(&self, token: impl Into<AccessToken>) -> Result<PooledSession> {
        let token = token.into();
        if let Err(e) = token.check() {
            self.inner.shared.counters.refused_tokens.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        self.checkout(Tag::Tenant(token)).await
    }

    async fn checkout(&self, mut want: Tag) -> Result<PooledSession> {
        let span = tracing::debug_span!("surreal_pool.checkout", tenant = matches!(want, Tag::Tenant(_)));
        async move {
            let shared = &self.inner.shared;
            shared.counters.checkouts.fetch_add(1, Ordering::Relaxed);
            // A session its connection could not re-attach after a reconnect is gone: its guard
            // replaces it when dropped, and the checkout tries again (each try removes one).
            loop {
                let pooled = self.checkout_once(&mut want).await?;
                if pooled.session.as_ref().is_some_and(|s| s.with_state(|st| st.is_some())) {
                    return Ok(pooled);
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn checkout_once(&self, want: &mut Tag) -> Result<PooledSession> {
        let shared = &self.inner.shared;
        let object = match self.object_or_handoff(want).await? {
            Either::Handoff(pooled) => {
                shared.counters.affinity_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(pooled);
            }
            Either::Object(object) => object,
        };
        let slot = object.id;
        let Taken { session, tag, clean_ns_db, hit } = {
            let mut table = shared.table();
            let taken = table.take(slot, want).ok_or_else(|| Error::Protocol("a pooled slot without a session".into()))?;
            table.busy_add(want, 1);
            taken
        };
        // From here on, dropping the guard (error or cancellation) returns the session.
        let mut pooled = PooledSession {
            session: Some(session),
            object: Some(object),
            shared: shared.clone(),
            forwarded: forwarded(want),
            want: want.clone(),
            clean_ns_db,
        };
        // The tag was computed when the session came back; a reconnect may have changed the
        // session since (identity lost, namespace not restored): judge it again, live.
        let live = pooled.session.as_ref().map(|s| s.with_state(|st| shared.classify(st, forwarded(&tag).as_ref(), &pooled.clean_ns_db)));
        let tag = if live.as_ref() == Some(&tag) { tag } else { Tag::Dirty };
        if hit && tag == *want && !token_expired(want) {
            shared.counters.affinity_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(pooled);
        }
        if pooled.session.as_ref().is_some_and(|s| s.with_state(|st| st.is_none())) {
            return Ok(pooled); // gone: the caller drops it and tries again
        }
        pooled.prepare(&tag, want).await?;
        Ok(pooled)
    }

    /// A pool slot from deadpool, or — when every session of the wanted identity is checked
    /// out — whichever comes first: one of those sessions handed over as its caller returns it,
    /// or a slot. While idle sessions exist, the slot is only asked for after the affinity wait;
    /// when none is idle, at once (both are waits anyway; the handover saves an authenticate).
    async fn object_or_handoff(&self, want: &mut Tag) -> Result<Either> {
        let get = || async {
            let object = self.inner.sessions.get().await.map_err(|e| self.pool_error(e))?;
            self.inner.shared.granted();
            Ok::<_, Error>(object)
        };
        if self.inner.sessions.is_closed() {
            return Err(Error::Closed);
        }
        let (rx, exhausted) = {
            let mut table = self.inner.shared.table();
            *want = table.intern(std::mem::replace(want, Tag::Dirty));
            // An expired token needs an authenticate (that fails) anyway: no point waiting.
            let rx = if token_expired(want) { None } else { table.wait_for(want) };
            (rx, table.idle.is_empty())
        };
        let Some(rx) = rx else { return get().await.map(Either::Object) };
        let delay = if exhausted { SATURATED_AFFINITY_WAIT.max(self.inner.affinity_wait) } else { self.inner.affinity_wait };
        tracing::trace!(?delay, exhausted, "waiting for a session of the same identity");
        // A session handed over after this returns is dropped with the receiver, and its `Drop`
        // returns it to the pool like any other.
        tokio::select! {
            biased;
            handoff = rx => match handoff {
                Ok(pooled) => Ok(Either::Handoff(pooled)),
                Err(_) => get().await.map(Either::Object),
            },
            object = async { tokio::time::sleep(delay).await; get().await } => object.map(Either::Object),
        }
    }

    fn pool_error(&self, e: PoolError<Error>) -> Error {
        match e {
            PoolError::Timeout(_) => Error::Timeout { what: "checkout", after: self.inner.checkout_timeout },
            PoolError::Backend(e) => e,
            PoolError::Closed => Error::Closed,
            other => Error::InvalidArgument(other.to_string()),
        }
    }

    /// The pool's size, idle and waiting counts, and its counters.
    ///
    /// ```no_run
    /// # fn demo(pool: &surreal_pool::Pool) {
    /// let s = pool.status();
    /// println!("{}/{} sessions idle, {} affinity hits", s.available, s.size, s.affinity_hits);
    /// # }
    /// ```
    pub fn status(&self) -> PoolStatus {
        let s = self.inner.sessions.status();
        let c = &self.inner.shared.counters;
        PoolStatus {
            max_size: s.max_size,
            size: s.size,
            available: s.available,
            waiting: s.waiting,
            checkouts: c.checkouts.load(Ordering::Relaxed),
            auth_round_trips: c.auth_round_trips.load(Ordering::Relaxed),
            affinity_hits: c.affinity_hits.load(Ordering::Relaxed),
            resets: c.resets.load(Ordering::Relaxed),
            replaced: c.replaced.load(Ordering::Relaxed),
            refused_tokens: c.refused_tokens.load(Ordering::Relaxed),
            sessions_renewed: self.inner.shared.connections.iter().map(|c| c.shared().sessions_renewed.load(Ordering::Relaxed)).sum(),
            connections: self.inner.shared.connections.len(),
            connections_up: self.inner.shared.connections.iter().filter(|c| c.is_up()).count(),
            connections_down: self.inner.shared.connections.iter().filter(|c| c.is_down()).count(),
        }
    }

    /// The pool's connections (for inspection, e.g. [`Connection::server_sessions`]).
    ///
    /// ```no_run
    /// # async fn demo(pool: &surreal_pool::Pool) -> surreal_pool::Result<()> {
    /// for conn in pool.connections() {
    ///     println!("{}: {} sessions", conn.endpoint(), conn.server_sessions().await?.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn connections(&self) -> &[Connection] {
        &self.inner.shared.connections
    }

    /// Closes the pool and its connections: waiting and later checkouts fail with
    /// [`Error::Closed`].
    ///
    /// ```no_run
    /// # fn demo(pool: &surreal_pool::Pool) {
    /// pool.close();
    /// # }
    /// ```
    pub fn close(&self) {
        self.inner.sessions.close();
        for c in &self.inner.shared.connections {
            c.close();
        }
    }
}

/// The longest checkouts queued in deadpool go unserved while returned sessions are handed
/// over to waiters of their own identity.
const STARVATION_BOUND: Duration = Duration::from_millis(20);

/// How long a checkout waits for its identity's busy session when no session is idle at all,
/// before it also queues for any session.
const SATURATED_AFFINITY_WAIT: Duration = Duration::from_millis(50);

/// What [`Pool::object_or_handoff`] got.
enum Either {
    Object(Object<SessionManager>),
    Handoff(PooledSession),
}

fn forwarded(want: &Tag) -> Option<AccessToken> {
    match want {
        Tag::Tenant(t) => Some(t.clone()),
        _ => None,
    }
}

fn token_expired(want: &Tag) -> bool {
    match want {
        Tag::Tenant(t) => t.expires_at().is_some_and(|exp| exp <= chrono::Utc::now().timestamp()),
        _ => false,
    }
}

/// A server session checked out of a [`Pool`]; derefs to [`Session`] for the whole auth and data
/// API. Dropping it returns the session to the pool, which cleans it before anyone else gets
/// it if the caller changed its identity or state.
pub struct PooledSession {
    session: Option<Session>,
    object: Option<Object<SessionManager>>,
    shared: Arc<PoolShared>,
    forwarded: Option<AccessToken>,
    /// The tag this checkout was made for.
    want: Tag,
    clean_ns_db: NsDb,
}

impl std::fmt::Debug for PooledSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledSession").field("session", &self.session).finish()
    }
}

impl Deref for PooledSession {
    type Target = Session;
    fn deref(&self) -> &Session {
        // Present from checkout until drop.
        self.session.as_ref().expect("pooled session present until drop")
    }
}

impl PooledSession {
    /// Brings the session from `tag` to `want`.
    async fn prepare(&mut self, tag: &Tag, want: &Tag) -> Result<()> {
        let shared = self.shared.clone();
        let session = self.session.as_ref().ok_or(Error::Closed)?;
        let mut from = tag.clone();
        if from == Tag::Dirty {
            shared.counters.resets.fetch_add(1, Ordering::Relaxed);
            session.reset().await?;
            shared.select_defaults(session).await?;
            from = Tag::Dirty;
        }
        match want {
            Tag::Tenant(token) => {
                shared.counters.auth_round_trips.fetch_add(1, Ordering::Relaxed);
                session.authenticate(token.clone()).await?;
            }
            _ => shared.make_default(session, &from).await?,
        }
        self.clean_ns_db = session.with_state(|s| s.map(|s| (s.namespace.clone(), s.database.clone()))).unwrap_or_default();
        Ok(())
    }
}

impl Drop for PooledSession {
    fn drop(&mut self) {
        let Some(object) = self.object.take() else { return };
        let session = self.session.take();
        let (tag, replace) = match &session {
            Some(s) => s.with_state(|state| {
                // A state change still in flight may land after anything sent now (the server
                // runs a socket's requests concurrently), a reset included; a session its
                // connection could not re-attach is gone.
                let replace = state.is_none_or(|st| st.effects_in_flight > 0);
                (self.shared.classify(state, self.forwarded.as_ref(), &self.clean_ns_db), replace)
            }),
            None => (Tag::Dirty, true),
        };
        if replace {
            self.shared.table().busy_add(&self.want, -1);
            self.shared.counters.replaced.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("a session came back with a state change in flight (or gone): replacing it");
            // Dropping the session detaches it on the server; taking the slot out of deadpool
            // drops it (its entry leaves the table) and lets deadpool create a fresh one.
            drop(session);
            drop(Object::take(object));
            return;
        }
        // Ask deadpool before taking the table lock: deadpool drops slots (which lock the table)
        // while holding its own lock, so the two must never be taken in the other order.
        let (closed, deadpool_starving) = match Object::pool(&object) {
            Some(pool) => {
                // The cheap clock first: deadpool's status takes its lock.
                let starving = self.shared.since_last_grant() > STARVATION_BOUND && pool.status().waiting > 0;
                (pool.is_closed(), starving)
            }
            None => (true, false),
        };
        let mut table = self.shared.table();
        table.busy_add(&self.want, -1);
        let clean_ns_db = std::mem::take(&mut self.clean_ns_db);
        // Hand it straight to a checkout waiting for this identity, if any — unless checkouts
        // queued in deadpool have gone unserved for the starvation bound (then it goes back to
        // deadpool, so that busy identities cannot starve the others), or the pool is closed.
        let (object, session, clean_ns_db) = match session {
            Some(session) if tag != Tag::Dirty && !deadpool_starving && !closed => {
                let mut handoff = Some(PooledSession {
                    session: Some(session),
                    object: Some(object),
                    shared: self.shared.clone(),
                    forwarded: forwarded(&tag),
                    want: tag.clone(),
                    clean_ns_db,
                });
                table.busy_add(&tag, 1);
                while let Some(h) = handoff.take() {
                    let Some(waiter) = table.waiters.get_mut(&tag).and_then(|q| q.pop_front()) else {
                        handoff = Some(h);
                        break;
                    };
                    if let Err(back) = waiter.send(h) {
                        handoff = Some(back); // that waiter gave up: try the next
                    }
                }
                if table.waiters.get(&tag).is_some_and(|q| q.is_empty()) {
                    table.waiters.remove(&tag); // no map entry outlives its waiters
                }
                let Some(mut handoff) = handoff else { return }; // handed over
                table.busy_add(&tag, -1);
                // Take the parts back out; the emptied guard's own drop does nothing.
                let parts = (handoff.object.take(), handoff.session.take(), std::mem::take(&mut handoff.clean_ns_db));
                match parts {
                    (Some(object), session, clean_ns_db) => (object, session, clean_ns_db),
                    _ => return,
                }
            }
            other => (object, other, clean_ns_db),
        };
        if let Some(entry) = table.entries.get_mut(&object.id) {
            entry.session = session;
            entry.tag = tag;
            entry.clean_ns_db = clean_ns_db;
            entry.busy = false;
        }
        table.index(object.id);
        drop(table);
        drop(object); // back to deadpool's idle queue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_that_gave_up_are_swept_at_amortized_cost() {
        let mut table = Table::default();
        table.busy_for.insert(Tag::Default, 1);
        let mut kept = Vec::new();
        for i in 0..10_000 {
            let rx = table.wait_for(&Tag::Default).expect("a busy session of the tag: wait");
            if i % 100 == 0 {
                kept.push(rx); // a few stay waiting; the rest give up at once
            }
        }
        let queue = &table.waiters[&Tag::Default];
        assert!(queue.len() <= 2 * kept.len() + 64 + 1, "{} queued for {} waiting", queue.len(), kept.len());
        // every checkout still waiting is still queued
        assert_eq!(queue.iter().filter(|w| !w.is_closed()).count(), kept.len());
        table.busy_for.clear();
        assert!(table.wait_for(&Tag::Default).is_none(), "nothing busy: no wait");
    }

    #[test]
    fn a_token_that_may_be_refused_never_evicts_a_tenant_while_another_session_is_idle() {
        let (a, b) = (Tag::Tenant(AccessToken::new("a.a.a")), Tag::Tenant(AccessToken::new("b.b.b")));
        let pick = |c: &[(u64, &Tag, u64)], slot, proven| pick_victim(c.iter().copied(), slot, proven);
        // slot 1 (deadpool's pick) holds tenant a, least recently used; 2 is b; 3 default; 4 dirty.
        let all = [(1, &a, 1), (2, &b, 2), (3, &Tag::Default, 9), (4, &Tag::Dirty, 0)];
        assert_eq!(pick(&all, 1, false), Some(3), "unproven: the default session first");
        assert_eq!(pick(&all[..2].iter().copied().chain([(4, &Tag::Dirty, 0)]).collect::<Vec<_>>(), 1, false), Some(4), "then one to be cleaned anyway");
        assert_eq!(pick(&all[..2], 2, false), Some(1), "a tenant's only when nothing else is idle (LRU)");
        // A proven identity keeps plain LRU over clean sessions, and never takes another's dirty one.
        assert_eq!(pick(&all, 2, true), Some(1));
        assert_eq!(pick(&[(4, &Tag::Dirty, 0), (3, &Tag::Default, 9)], 4, true), Some(3), "its own dirty slot last");
        assert_eq!(pick(&[(4, &Tag::Dirty, 0)], 4, true), Some(4));
    }

    #[test]
    fn only_identities_a_session_holds_are_proven() {
        let mut table = Table::default();
        let known = Tag::Tenant(AccessToken::new("k.k.k"));
        assert!(table.proven(&Tag::Default));
        assert!(!table.proven(&known));
        table.busy_for.insert(known.clone(), 1);
        assert!(table.proven(&known));
        table.busy_for.clear();
        table.idle.insert(known.clone(), vec![1]);
        assert!(table.proven(&known));
    }

    #[test]
    fn a_known_token_is_interned() {
        let mut table = Table::default();
        let known = AccessToken::new("a.b.c");
        table.busy_for.insert(Tag::Tenant(known.clone()), 1);
        let Tag::Tenant(t) = table.intern(Tag::Tenant(AccessToken::new("a.b.c"))) else { panic!() };
        assert!(t.shares_allocation_with(&known));
        assert_eq!(table.intern(Tag::Default), Tag::Default);
    }
}
