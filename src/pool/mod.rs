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


mod builder;
mod guard;
mod identity;
mod manager;
mod table;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use deadpool::managed::{self, Object, PoolError};
use tracing::Instrument;

pub use builder::PoolBuilder;
pub use guard::PooledSession;
use identity::Identity;
use manager::SessionManager;
use table::{Table, Taken, Tag};

use crate::auth::AccessToken;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::session::Session;

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
    table: Mutex<Table<Session, PooledSession>>,
    connections: Vec<Connection>,
    max_per_connection: usize,
    namespace: Option<String>,
    database: Option<String>,
    identity: Identity,
    /// The token of the pool identity (from `identity_token`, or from signing in once).
    identity_token: Mutex<Option<AccessToken>>,
    /// Serializes signing in with the pool's credentials.
    identity_signin: tokio::sync::Mutex<()>,
    /// One checkout at a time for tokens the server has not accepted lately.
    probation: tokio::sync::Semaphore,
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

impl PoolShared {
    fn granted(&self) {
        self.last_grant_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn since_last_grant(&self) -> Duration {
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_grant_ms.load(Ordering::Relaxed)))
    }

    fn table(&self) -> MutexGuard<'_, Table<Session, PooledSession>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
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
            // A token the server has not accepted lately may be refused: such checkouts go one
            // at a time, so that they share the default-identity (or dirty) sessions the table
            // gives them, and never take a tenant's while one of those will come back.
            // The wait for the lane and for a session share the checkout timeout.
            if matches!(want, Tag::Tenant(_)) && !shared.table().proven(&want) {
                let timed_out = Error::Timeout { what: "checkout", after: self.inner.checkout_timeout };
                return tokio::time::timeout(self.inner.checkout_timeout, async {
                    let _permit = shared.probation.acquire().await.map_err(|_| Error::Closed)?;
                    self.checkout_loop(&mut want).await
                })
                .await
                .unwrap_or(Err(timed_out));
            }
            self.checkout_loop(&mut want).await
        }
        .instrument(span)
        .await
    }

    /// A session its connection could not re-attach after a reconnect is gone: its guard
    /// replaces it when dropped, and the checkout tries again (each try removes one).
    async fn checkout_loop(&self, want: &mut Tag) -> Result<PooledSession> {
        loop {
            let pooled = self.checkout_once(want).await?;
            if pooled.session.as_ref().is_some_and(Session::is_attached) {
                return Ok(pooled);
            }
        }
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
            forwarded: want.forwarded(),
            want: want.clone(),
            clean_ns_db,
        };
        // The tag was computed when the session came back; a reconnect may have changed the
        // session since (identity lost, namespace not restored): judge it again, live.
        let live = pooled.session.as_ref().map(|s| s.with_state(|st| shared.classify(st, tag.forwarded().as_ref(), &pooled.clean_ns_db)));
        let tag = if live.as_ref() == Some(&tag) { tag } else { Tag::Dirty };
        if hit && tag == *want && !want.token_expired() {
            shared.counters.affinity_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(pooled);
        }
        if pooled.session.as_ref().is_some_and(|s| !s.is_attached()) {
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
            let rx = if want.token_expired() { None } else { table.wait_for(want) };
            (rx, table.none_idle())
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
        self.inner.shared.probation.close();
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
