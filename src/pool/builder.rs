//! [`PoolBuilder`]: every setting of a [`Pool`], with its default.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool::managed;

use super::identity::{Identity, IdentityTokens};
use super::manager::SessionManager;
use super::table::Table;
use super::busiest::Busiest;
use super::cluster::Cluster;
use super::fair::{FairQueue, Limits};
use super::health::HealthPolicy;
use super::{Counters, Pool, PoolInner, PoolShared, Sharing, BUSIEST};
use crate::auth::{AccessToken, Credentials};
use crate::connection::ConnectionBuilder;
use crate::error::{Error, Result};
use crate::connection::reconnect::ReconnectPolicy;

/// Default number of WebSocket connections.
pub(crate) const DEFAULT_CONNECTIONS: usize = 4;
/// Default maximum number of pooled server sessions (32 per default connection). Sessions are
/// created on demand; each costs ~7 KiB here. Fewer would cap the requests in flight per
/// socket, and the server spends more CPU per request on a shallow pipeline (BENCHMARKS.md:
/// 64 sessions cost the server 12 % more per request than 128 at 256 callers).
pub(crate) const DEFAULT_MAX_SESSIONS: usize = 128;
/// Default cap of sessions per connection (the server attaches 255 besides the socket's own:
/// `SURREAL_WEBSOCKET_MAX_ATTACHED_SESSIONS`, 256 by default, counts that one too).
pub(crate) const DEFAULT_MAX_SESSIONS_PER_CONNECTION: usize = 128;
/// Default longest wait for a free session.
pub(crate) const DEFAULT_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default wait for a busy session already in the wanted identity.
pub(crate) const DEFAULT_AFFINITY_WAIT: Duration = Duration::from_millis(20);
/// Default bound on checkouts waiting, in all.
pub(crate) const DEFAULT_MAX_WAITING: usize = 1024;
/// Default bound on checkouts waiting, per tenant.
pub(crate) const DEFAULT_MAX_WAITING_PER_TENANT: usize = 256;


/// Configures a [`Pool`]. Every setting has a documented default:
///
/// | setting | default |
/// |---|---|
/// | [`connections`](Self::connections) | 4 sockets |
/// | [`max_sessions`](Self::max_sessions) | 128 server sessions (about 7 KiB each here) |
/// | [`max_sessions_per_connection`](Self::max_sessions_per_connection) | 128 (the server attaches at most 255) |
/// | [`warm_sessions`](Self::warm_sessions) | all of `max_sessions` |
/// | [`checkout_timeout`](Self::checkout_timeout) | 10 s |
/// | [`affinity_wait`](Self::affinity_wait) | 20 ms |
/// | [`max_sessions_per_tenant`](Self::max_sessions_per_tenant) | half of `max_sessions` (64), rounded up |
/// | [`max_waiting`](Self::max_waiting) | 1,024 checkouts |
/// | [`max_waiting_per_tenant`](Self::max_waiting_per_tenant) | 256 checkouts |
/// | [`namespace_database`](Self::namespace_database) | none |
/// | [`identity_token`](Self::identity_token) / [`identity_credentials`](Self::identity_credentials) | anonymous |
/// | [`endpoint`](Self::endpoint) | none besides the first |
/// | [`health`](Self::health) | [`HealthPolicy::default`] (acts with two endpoints or more) |
/// | [`request_timeout`](Self::request_timeout), [`connect_timeout`](Self::connect_timeout), [`reconnect`](Self::reconnect) | as on [`ConnectionBuilder`] |
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
    max_sessions_per_tenant: Option<usize>,
    max_waiting: usize,
    max_waiting_per_tenant: usize,
    extra_endpoints: Vec<String>,
    health: HealthPolicy,
}

impl PoolBuilder {
    pub(super) fn new(endpoint: String) -> Self {
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
            max_sessions_per_tenant: None,
            max_waiting: DEFAULT_MAX_WAITING,
            max_waiting_per_tenant: DEFAULT_MAX_WAITING_PER_TENANT,
            extra_endpoints: Vec::new(),
            health: HealthPolicy::default(),
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

    /// The most sessions one tenant holds at once (default: half of `max_sessions`, rounded
    /// up), so that no tenant can take the whole pool while others wait. Its further checkouts
    /// wait for one of its own sessions to come back, even while other sessions are idle.
    ///
    /// A *tenant* is the user a forwarded token is for, from its claims (namespace, database,
    /// access method and `ID`, or `sub`): several tokens of one user are one tenant. The claims
    /// count only once the server has accepted the token; until then it belongs to the tenant of
    /// all tokens not yet accepted, which holds one session at a time (first logins are
    /// authenticated one by one), so a forged token naming someone else cannot use up their
    /// share, and a flood of bad tokens gets one turn per round like any tenant. The pool's own
    /// identity ([`Pool::get`]) is not capped. When checkouts wait, each session that comes back
    /// goes to the tenants that wait in turn (round robin, one checkout per turn): a tenant with
    /// 200 waiting callers gets no more turns than one with a single caller. Set it to
    /// `max_sessions` to turn the cap off (the turns stay).
    ///
    /// ```
    /// let builder = surreal_pool::Pool::builder("ws://127.0.0.1:8000").max_sessions(64).max_sessions_per_tenant(16);
    /// ```
    pub fn max_sessions_per_tenant(mut self, n: usize) -> Self {
        self.max_sessions_per_tenant = Some(n);
        self
    }

    /// The most checkouts waiting at once, in all (default 1,024). Past it a checkout fails
    /// at once with [`Error::TooManyWaiting`] (`is_overloaded()`; the axum extractor answers
    /// 503 with `Retry-After`) instead of waiting for the checkout timeout.
    ///
    /// ```
    /// let builder = surreal_pool::Pool::builder("ws://127.0.0.1:8000").max_waiting(256);
    /// ```
    pub fn max_waiting(mut self, n: usize) -> Self {
        self.max_waiting = n;
        self
    }

    /// The most checkouts of one tenant waiting at once (default 256). Past it that tenant's
    /// checkouts fail at once with [`Error::TooManyWaiting`]; other tenants are not affected.
    /// The pool's own identity is bounded only by [`max_waiting`](Self::max_waiting).
    ///
    /// ```
    /// let builder = surreal_pool::Pool::builder("ws://127.0.0.1:8000").max_waiting_per_tenant(32);
    /// ```
    pub fn max_waiting_per_tenant(mut self, n: usize) -> Self {
        self.max_waiting_per_tenant = n;
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

    /// Cap of sessions on one connection (default 128; at most 255: a SurrealDB socket holds 256
    /// sessions by default, its own default session included, and refuses the next `attach`).
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
    /// A service's API key ([`BearerKey`](crate::BearerKey)) works the same way. SurrealDB
    /// 3.3.5 does not authenticate the tokens of a *database*-level bearer access, so with such a
    /// key each session signs in with the key itself (one round trip per new or reset session,
    /// as with a token; a key's signin costs the server a hash, not a password check).
    ///
    /// ```
    /// use surreal_pool::{BearerKey, Pool, Root};
    /// let builder = Pool::builder("ws://127.0.0.1:8000").identity_credentials(Root::new("root", "root"));
    /// let service = Pool::builder("ws://127.0.0.1:8000")
    ///     .namespace_database("app", "main")
    ///     .identity_credentials(BearerKey::database("app", "main", "api", "surreal-bearer-…"));
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

    /// How the pool judges its nodes when it has several endpoints: ejecting a node whose
    /// calls fail, probing it, moving sockets off it and back home (default
    /// [`HealthPolicy::default`]; it acts only with two endpoints or more). New sessions are
    /// placed on a serving connection that is not slow, with the fewest requests in flight,
    /// then the fewest sessions, whatever this setting.
    ///
    /// ```
    /// use std::time::Duration;
    /// use surreal_pool::{HealthPolicy, Pool};
    /// let builder = Pool::builder("ws://10.0.0.1:8000")
    ///     .endpoint("ws://10.0.0.2:8000")
    ///     .health(HealthPolicy::default().interval(Duration::from_millis(500)));
    /// ```
    pub fn health(mut self, policy: HealthPolicy) -> Self {
        self.health = policy;
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
        if self.max_sessions_per_connection == 0 || self.max_sessions_per_connection > 255 {
            return Err(Error::InvalidArgument("max_sessions_per_connection must be 1..=255 (the server attaches 255 besides a socket's own session)".into()));
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
        // The nodes, in the order given (normalized as the connections hold them).
        let nodes = connections.first().map(|c| c.config().endpoints.clone()).unwrap_or_default();
        let shared = Arc::new(PoolShared {
            cluster: Cluster::new(nodes, self.health.clone(), self.connections),
            table: Mutex::new(Table::new(connections.len())),
            connections,
            max_per_connection: self.max_sessions_per_connection,
            namespace: self.namespace,
            database: self.database,
            identity: self.identity.clone(),
            identity_token: Mutex::new(IdentityTokens::new(
                match &self.identity {
                    Identity::Token(t) => Some(t.clone()),
                    _ => None,
                },
                2 * self.max_sessions,
            )),
            identity_signin: tokio::sync::Mutex::new(()),
            sharing: Mutex::new(Sharing {
                queue: FairQueue::new(Limits {
                    capacity: self.max_sessions,
                    per_tenant: self.max_sessions_per_tenant.unwrap_or(self.max_sessions.div_ceil(2)).clamp(1, self.max_sessions),
                    max_waiting: self.max_waiting,
                    max_waiting_per_tenant: self.max_waiting_per_tenant,
                }),
                busiest: Busiest::new(BUSIEST),
            }),
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
            pool.inner.shared.table().idle_new(object.id);
        }
        super::supervisor::spawn(&pool.inner.shared);
        tracing::debug!(endpoint = %self.endpoint, sessions = warm, "pool ready");
        Ok(pool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table in `PoolBuilder`'s docs says these.
    #[test]
    fn defaults_are_the_documented_ones() {
        let b = PoolBuilder::new("ws://127.0.0.1:8000".into());
        assert_eq!(b.connections, 4);
        assert_eq!(b.max_sessions, 128);
        assert_eq!(b.max_sessions_per_connection, 128);
        assert_eq!(b.warm_sessions, None);
        assert_eq!(b.checkout_timeout, Duration::from_secs(10));
        assert_eq!(b.affinity_wait, Duration::from_millis(20));
        assert_eq!(b.max_sessions_per_tenant, None, "half of max_sessions, at build");
        assert_eq!((b.max_waiting, b.max_waiting_per_tenant), (1024, 256));
        assert!(b.namespace.is_none() && b.database.is_none());
        assert!(matches!(b.identity, Identity::Anonymous));
        assert!(b.extra_endpoints.is_empty());
        assert_eq!(b.health, HealthPolicy::default());
    }
}
