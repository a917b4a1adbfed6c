//! The pool: server sessions on shared sockets, checked out exclusively, each running as the
//! identity its caller asked for.
//!
//! # How a checkout works
//!
//! The pool owns `connections` WebSockets and up to `max_sessions` server sessions spread over
//! them (fewest sessions first). A checkout first waits for its turn: each tenant may hold at
//! most `max_sessions_per_tenant` sessions, and when checkouts wait, a session coming back goes
//! to the tenants that wait in turn, round robin (see [`PoolBuilder::max_sessions_per_tenant`]).
//! [deadpool] then creates, recycles and counts the sessions; the pool's session table decides
//! *which* session the checkout gets:
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
mod busiest;
mod cluster;
mod fair;
mod guard;
mod health;
mod identity;
mod manager;
mod placement;
mod spread;
mod status;
mod supervisor;
pub(crate) mod table;

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use deadpool::managed::{self, Object, PoolError};
use tracing::Instrument;

pub use builder::PoolBuilder;
pub use cluster::{MoveReason, NodeStatus, PoolEvent};
pub use health::{HealthPolicy, NodeState};
use busiest::Busiest;
use fair::{Admission, FairQueue, TenantKey};
pub use guard::PooledSession;
use identity::Identity;
use manager::SessionManager;
pub use status::{PoolStatus, TenantLoad};
use status::Label;
use table::{Table, Taken, Tag};

use crate::auth::AccessToken;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::session::Session;
use crate::telemetry;

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
    /// The token of the pool identity (from `identity_token`, or from signing in once), or the
    /// tokens of each session's own signin (`identity::IdentityTokens`).
    identity_token: Mutex<identity::IdentityTokens>,
    /// Serializes signing in with the pool's credentials.
    identity_signin: tokio::sync::Mutex<()>,
    /// Whose turn it is: the per-tenant cap, the round robin and the bounds on waiting; and the
    /// busiest tenants. Never locked together with the table.
    sharing: Mutex<Sharing>,
    counters: Counters,
    /// The nodes (endpoints), their breakers and the pool's events.
    cluster: cluster::Cluster,
}

struct Sharing {
    queue: FairQueue<oneshot::Sender<Permit>>,
    busiest: Busiest<Label>,
}

/// How many of the busiest tenants are counted.
const BUSIEST: usize = 16;

/// A checkout's turn: one of `max_sessions` permits, counted against its tenant. Dropping it
/// gives it back, and it goes to the next waiter in turn.
pub(super) struct Permit {
    key: TenantKey,
    shared: Arc<PoolShared>,
    armed: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.armed {
            self.shared.release_permit(self.key);
        }
    }
}

/// Takes a queued checkout out of the queue if it gives up before its turn.
struct Waiting<'a> {
    shared: &'a Arc<PoolShared>,
    key: TenantKey,
    ticket: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        // If its turn came already, the permit is in the channel dropped next, and goes on.
        self.shared.sharing().queue.cancel(self.key, self.ticket);
    }
}

#[derive(Default)]
struct Counters {
    checkouts: AtomicU64,
    auth_round_trips: AtomicU64,
    affinity_hits: AtomicU64,
    resets: AtomicU64,
    replaced: AtomicU64,
    refused_tokens: AtomicU64,
    rejected_checkouts: AtomicU64,
    timed_out_checkouts: AtomicU64,
}

impl Counters {
    /// Counts one in `counter` and in the metric `name` (see `telemetry`).
    fn bump(counter: &AtomicU64, name: &'static str) {
        counter.fetch_add(1, Ordering::Relaxed);
        telemetry::count(name);
    }

    fn auth_round_trip(&self) {
        Self::bump(&self.auth_round_trips, "surreal_pool_auth_round_trips_total");
    }

    fn affinity_hit(&self) {
        Self::bump(&self.affinity_hits, "surreal_pool_affinity_hits_total");
    }

    fn reset(&self) {
        Self::bump(&self.resets, "surreal_pool_resets_total");
    }

    fn replaced(&self) {
        Self::bump(&self.replaced, "surreal_pool_replaced_total");
    }
}

/// Whom a checkout for `want` counts against. A forwarded token counts against its user (from
/// its claims) only once the server has accepted it (`proven`); before, its claims are
/// unverified, and it counts against the unproven tokens, all together.
fn tenant_key(want: &Tag, proven: bool) -> TenantKey {
    match want {
        Tag::Tenant(_) if !proven => TenantKey::Unproven,
        Tag::Tenant(token) => match token.claims().and_then(|c| c.user_key()) {
            Some(user) => TenantKey::User(user),
            None => TenantKey::Token(token.fingerprint()),
        },
        _ => TenantKey::Pool,
    }
}

impl PoolShared {
    fn sharing(&self) -> MutexGuard<'_, Sharing> {
        self.sharing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives back a permit of `key` and hands it to the next waiter in turn.
    fn release_permit(self: &Arc<Self>, key: TenantKey) {
        let next = self.sharing().queue.release(key);
        self.hand_on(next);
    }

    /// Sends a permit to the waiter whose turn it is; if that waiter has given up, its permit
    /// goes back too, and on to the next.
    fn hand_on(self: &Arc<Self>, next: Option<(TenantKey, oneshot::Sender<Permit>)>) {
        let send = |key, waiter: oneshot::Sender<Permit>| match waiter.send(Permit { key, shared: self.clone(), armed: true }) {
            Ok(()) => true,
            Err(mut permit) => {
                permit.armed = false; // given back by `hand_on`'s release instead
                false
            }
        };
        fair::hand_on(next, send, |key| self.sharing().queue.release(key));
    }

    /// Moves `permit` to `to` if that tenant is under its cap (see [`FairQueue::rekey`]).
    fn rekey(self: &Arc<Self>, permit: &mut Permit, to: TenantKey) -> bool {
        let moved = self.sharing().queue.rekey(permit.key, to);
        match moved {
            Some(next) => {
                permit.key = to;
                self.hand_on(next);
                true
            }
            None => false,
        }
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
        // A forwarded token arrives as a new string with every request: if the pool holds a
        // session for the same token, its copy is used from here on, with its form already
        // checked and its claims already read (a JWT decoded and parsed twice per request,
        // otherwise).
        let want = self.inner.shared.table().intern(Tag::Tenant(token.into()));
        if let Tag::Tenant(token) = &want {
            if let Err(e) = token.check() {
                self.inner.shared.counters.refused_tokens.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        }
        self.checkout(want).await
    }

    async fn checkout(&self, mut want: Tag) -> Result<PooledSession> {
        let span = tracing::debug_span!("surreal_pool.checkout", tenant = matches!(want, Tag::Tenant(_)));
        async move {
            let shared = &self.inner.shared;
            shared.counters.checkouts.fetch_add(1, Ordering::Relaxed);
            // Every wait of a checkout — its turn, a session, the authenticate — shares the
            // checkout timeout.
            let checkout = async {
                let mut first = true;
                loop {
                    let proven = shared.table().proven(&want);
                    let key = tenant_key(&want, proven);
                    let mut permit = self.turn(key, &want, std::mem::take(&mut first)).await?;
                    if key == TenantKey::Unproven && shared.table().proven(&want) {
                        continue; // accepted meanwhile (another checkout of it): its user's turn
                    }
                    let mut pooled = self.checkout_loop(&mut want).await?;
                    if key == TenantKey::Unproven {
                        // The server accepted the token: from now on it counts against its
                        // user, and the next unproven token may go. A user at its cap waits
                        // for its turn like any other checkout (its session goes back, clean).
                        if !shared.rekey(&mut permit, tenant_key(&want, true)) {
                            drop(pooled);
                            continue;
                        }
                    }
                    pooled.permit = Some(permit);
                    return Ok(pooled);
                }
            };
            let started = std::time::Instant::now();
            let result = match tokio::time::timeout(self.inner.checkout_timeout, checkout).await {
                Ok(result) => result,
                Err(_) => {
                    shared.counters.timed_out_checkouts.fetch_add(1, Ordering::Relaxed);
                    Err(Error::Timeout { what: "checkout", after: self.inner.checkout_timeout })
                }
            };
            let outcome = match &result {
                Ok(_) => "ok",
                Err(Error::Timeout { .. }) => "timeout",
                Err(Error::TooManyWaiting { .. }) => "refused",
                Err(_) => "error",
            };
            telemetry::checkout(started.elapsed(), outcome);
            result
        }
        .instrument(span)
        .await
    }

    /// Waits for the checkout's turn (see [`PoolBuilder::max_sessions_per_tenant`]), or refuses
    /// it at once when too many wait.
    /// `count`: counts the checkout for [`Pool::busiest_tenants`] (once per checkout).
    async fn turn(&self, key: TenantKey, want: &Tag, count: bool) -> Result<Permit> {
        let shared = &self.inner.shared;
        if self.inner.sessions.is_closed() {
            return Err(Error::Closed);
        }
        let (tx, rx) = oneshot::channel();
        let admission = {
            let mut sharing = shared.sharing();
            if count {
                sharing.busiest.count(key, || Label::of(key, want.forwarded().as_ref()));
            }
            sharing.queue.admit(key, tx)
        };
        match admission {
            Admission::Granted => Ok(Permit { key, shared: shared.clone(), armed: true }),
            Admission::Closed => Err(Error::Closed),
            Admission::Refused { per_tenant, limit } => {
                shared.counters.rejected_checkouts.fetch_add(1, Ordering::Relaxed);
                telemetry::rejected(per_tenant);
                tracing::debug!(per_tenant, limit, "checkout refused: too many waiting");
                Err(Error::TooManyWaiting { limit, per_tenant })
            }
            Admission::Queued(ticket) => {
                let waiting = Waiting { shared, key, ticket };
                let permit = rx.await.map_err(|_| Error::Closed);
                std::mem::forget(waiting); // served (or closed): out of the queue already
                permit
            }
        }
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
            Either::Handoff(mut pooled) => {
                shared.counters.affinity_hit();
                // Marked idle as it came back, and handed straight over: in use again. Judged
                // again, live: a move may have given its identity up in between.
                if pooled.session.as_ref().is_some_and(|s| !s.is_attached()) {
                    return Ok(pooled); // gone: the caller drops it and tries again
                }
                let live = pooled.session.as_ref().map(|s| s.with_state_in_use(|st| shared.classify(st, pooled.forwarded.as_ref(), &pooled.clean_ns_db)));
                let live = live.unwrap_or(Tag::Dirty);
                if live != pooled.want {
                    let want = pooled.want.clone();
                    pooled.prepare(&live, &want).await?;
                }
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
            permit: None,
        };
        // The tag was computed when the session came back; a reconnect or a move may have
        // changed the session since (identity lost, namespace not restored): judge it again,
        // live. It is in use from here on (see `SessionState::take_into_use`).
        let live = pooled.session.as_ref().map(|s| s.with_state_in_use(|st| shared.classify(st, tag.forwarded().as_ref(), &pooled.clean_ns_db)));
        let tag = if live.as_ref() == Some(&tag) { tag } else { Tag::Dirty };
        if hit && tag == *want && !want.token_expired() {
            shared.counters.affinity_hit();
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
            waiting: s.waiting + self.inner.shared.sharing().queue.waiting(),
            rejected_checkouts: c.rejected_checkouts.load(Ordering::Relaxed),
            timed_out_checkouts: c.timed_out_checkouts.load(Ordering::Relaxed),
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

    /// The busiest tenants since the pool started (at most 16, busiest first): checkouts
    /// counted, sessions held and checkouts waiting now. Memory stays bounded whatever the
    /// number of tenants; a tenant with more than a sixteenth of the checkouts is always
    /// listed. Tokens are never shown.
    ///
    /// ```no_run
    /// # fn demo(pool: &surreal_pool::Pool) {
    /// if let Some(top) = pool.busiest_tenants().first() {
    ///     println!("busiest: {} ({} checkouts, {} waiting)", top.tenant, top.checkouts, top.waiting);
    /// }
    /// # }
    /// ```
    pub fn busiest_tenants(&self) -> Vec<TenantLoad> {
        let sharing = self.inner.shared.sharing();
        sharing
            .busiest
            .top()
            .into_iter()
            .map(|c| {
                let (busy, waiting) = sharing.queue.load(c.key);
                TenantLoad { tenant: c.label.to_string(), checkouts: c.count, checkouts_error: c.error, busy, waiting }
            })
            .collect()
    }

    /// Sets the pool's gauges in the installed [`metrics`](https://docs.rs/metrics) recorder
    /// (feature `metrics`): sessions idle, busy and dirty, requests in flight and queued, per
    /// connection; checkouts waiting; connections up. Call it before each scrape; counters and
    /// histograms (checkout wait, request latency by RPC method, authenticates, affinity hits,
    /// rejected and timed-out checkouts, reconnects and replay time) are recorded as they
    /// happen. The metric names are listed in the README.
    ///
    /// ```no_run
    /// # fn demo(pool: &surreal_pool::Pool, handle: &metrics_exporter_prometheus::PrometheusHandle) -> String {
    /// // In the `/metrics` handler, with a Prometheus recorder installed:
    /// pool.record_metrics();
    /// handle.render()
    /// # }
    /// ```
    #[cfg(feature = "metrics")]
    pub fn record_metrics(&self) {
        let shared = &self.inner.shared;
        let sessions = shared.table().sessions_by_connection();
        for (i, conn) in shared.connections.iter().enumerate() {
            let (in_flight, queued) = conn.load();
            telemetry::connection_gauges(i, in_flight, queued, sessions.get(i).copied().unwrap_or_default());
        }
        let waiting = self.inner.sessions.status().waiting + shared.sharing().queue.waiting();
        telemetry::pool_gauges(waiting, shared.connections.iter().filter(|c| c.is_up()).count());
        if shared.cluster.supervised() {
            for node in self.nodes() {
                telemetry::node_gauges(&node.endpoint, node.state == NodeState::Healthy, node.sockets);
            }
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
        let waiters = self.inner.shared.sharing().queue.close();
        drop(waiters); // their checkouts fail with `Closed`
        for c in &self.inner.shared.connections {
            c.close();
        }
    }
}

/// How long a checkout waits for its identity's busy session when no session is idle at all,
/// before it also queues for any session.
const SATURATED_AFFINITY_WAIT: Duration = Duration::from_millis(50);

/// What [`Pool::object_or_handoff`] got.
enum Either {
    Object(Object<SessionManager>),
    Handoff(PooledSession),
}
