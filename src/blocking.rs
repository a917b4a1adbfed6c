//! A blocking facade over the async API, for synchronous code (as the official Python SDK
//! offers both).
//!
//! Each [`Pool`] or [`Connection`] here owns a small Tokio runtime (one worker thread) on which
//! its connection tasks run — keepalive, reconnect and replay keep working between calls — and
//! every method blocks the calling thread until the async call finishes. Do not call these from
//! inside an async runtime (Tokio panics on nested `block_on`); use the async API there.
//!
//! The whole async API is here: authentication, session state, the data API, transactions
//! ([`Session::begin`] → [`Transaction`]), live queries ([`Session::live`] → [`LiveStream`], an
//! `Iterator` of notifications, with [`LiveStream::next_timeout`] for a bounded wait), and
//! connection events ([`Connection::events`] → [`Events`]).
//!
//! ```no_run
//! use surreal_pool::blocking;
//! use surreal_pool::{Pool, Root};
//!
//! fn main() -> surreal_pool::Result<()> {
//!     let pool = blocking::Pool::new(Pool::builder("ws://127.0.0.1:8000").namespace_database("app", "main"))?;
//!     let db = pool.get()?;
//!     db.signin(&Root::new("root", "root"))?;
//!     let two: i64 = db.query("RETURN 1 + 1", ())?.take(0)?;
//!     assert_eq!(two, 2);
//!     Ok(())
//! }
//! ```

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::auth::{AccessToken, Credentials, Record, Tokens};
use crate::error::{Error, Result};
use crate::pool::{PoolBuilder, PoolStatus};
use crate::session::live::Notification;
use crate::session::query::QueryResponse;
use crate::session::Resource;
use crate::{ConnectionBuilder, ConnectionEvent};

/// The facade's runtime. Shut down in the background when the last handle goes, so that
/// dropping a blocking pool inside async code does not panic.
#[derive(Debug)]
struct Rt(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for Rt {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &tokio::runtime::Runtime {
        // Present until drop.
        self.0.as_ref().expect("runtime present until drop")
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn runtime() -> Result<Arc<Rt>> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("surreal-pool")
        .enable_all()
        .build()
        .map(|rt| Arc::new(Rt(Some(rt))))
        .map_err(|e| Error::InvalidArgument(format!("could not start the blocking runtime: {e}")))
}

/// A blocking [`crate::Pool`].
#[derive(Clone, Debug)]
pub struct Pool {
    inner: crate::Pool,
    rt: Arc<Rt>,
}

impl Pool {
    /// Builds the pool configured by `builder` on the facade's own runtime.
    ///
    /// ```no_run
    /// # fn demo() -> surreal_pool::Result<()> {
    /// use surreal_pool::{blocking, Pool};
    /// let pool = blocking::Pool::new(Pool::builder("ws://127.0.0.1:8000").namespace_database("app", "main"))?;
    /// # Ok(()) }
    /// ```
    pub fn new(builder: PoolBuilder) -> Result<Pool> {
        let rt = runtime()?;
        let inner = rt.block_on(builder.build())?;
        Ok(Pool { inner, rt })
    }

    /// See [`crate::Pool::get`].
    ///
    /// ```no_run
    /// # fn demo(pool: &surreal_pool::blocking::Pool) -> surreal_pool::Result<()> {
    /// let db = pool.get()?;
    /// let notes: Vec<serde_json::Value> = db.select("note")?;
    /// # Ok(()) }
    /// ```
    pub fn get(&self) -> Result<PooledSession> {
        let inner = self.rt.block_on(self.inner.get())?;
        Ok(PooledSession { inner: Some(inner), rt: self.rt.clone() })
    }

    /// See [`crate::Pool::get_with_token`].
    ///
    /// ```no_run
    /// # fn demo(pool: &surreal_pool::blocking::Pool, jwt: &str) -> surreal_pool::Result<()> {
    /// let db = pool.get_with_token(jwt)?;
    /// let me = db.info()?;
    /// # Ok(()) }
    /// ```
    pub fn get_with_token(&self, token: impl Into<AccessToken>) -> Result<PooledSession> {
        let inner = self.rt.block_on(self.inner.get_with_token(token))?;
        Ok(PooledSession { inner: Some(inner), rt: self.rt.clone() })
    }

    /// See [`crate::Pool::status`].
    ///
    /// ```no_run
    /// # fn demo(pool: &surreal_pool::blocking::Pool) {
    /// let status = pool.status();
    /// println!("{} of {} sessions idle", status.available, status.size);
    /// # }
    /// ```
    pub fn status(&self) -> PoolStatus {
        self.inner.status()
    }

    /// The busiest tenants (see [`crate::Pool::busiest_tenants`]).
    ///
    /// ```no_run
    /// # fn demo(pool: &surreal_pool::blocking::Pool) {
    /// for t in pool.busiest_tenants() {
    ///     println!("{}: {} checkouts", t.tenant, t.checkouts);
    /// }
    /// # }
    /// ```
    pub fn busiest_tenants(&self) -> Vec<crate::TenantLoad> {
        self.inner.busiest_tenants()
    }

    /// The pool's connections, as blocking handles on the pool's runtime (see
    /// [`crate::Pool::connections`]).
    ///
    /// ```no_run
    /// # fn demo(pool: &surreal_pool::blocking::Pool) {
    /// let up = pool.connections().iter().filter(|c| c.is_up()).count();
    /// # }
    /// ```
    pub fn connections(&self) -> Vec<Connection> {
        self.inner.connections().iter().map(|c| Connection { inner: c.clone(), rt: self.rt.clone() }).collect()
    }

    /// Closes the pool (see [`crate::Pool::close`]).
    ///
    /// ```no_run
    /// # fn demo(pool: &surreal_pool::blocking::Pool) {
    /// pool.close();
    /// assert!(pool.get().is_err());
    /// # }
    /// ```
    pub fn close(&self) {
        self.inner.close()
    }

    /// The async pool behind this one.
    ///
    /// ```no_run
    /// # fn demo(pool: &surreal_pool::blocking::Pool) {
    /// let sockets = pool.as_async().connections().len();
    /// # }
    /// ```
    pub fn as_async(&self) -> &crate::Pool {
        &self.inner
    }
}

/// A blocking [`crate::Connection`].
#[derive(Clone, Debug)]
pub struct Connection {
    inner: crate::Connection,
    rt: Arc<Rt>,
}

impl Connection {
    /// Connects with the default configuration.
    ///
    /// ```no_run
    /// # fn demo() -> surreal_pool::Result<()> {
    /// let conn = surreal_pool::blocking::Connection::connect("ws://127.0.0.1:8000")?;
    /// conn.session().ping()?;
    /// # Ok(()) }
    /// ```
    pub fn connect(endpoint: impl Into<String>) -> Result<Connection> {
        Self::new(crate::Connection::builder(endpoint))
    }

    /// Connects as configured by `builder`.
    ///
    /// ```no_run
    /// # fn demo() -> surreal_pool::Result<()> {
    /// use std::time::Duration;
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").request_timeout(Duration::from_secs(5));
    /// let conn = surreal_pool::blocking::Connection::new(builder)?;
    /// # Ok(()) }
    /// ```
    pub fn new(builder: ConnectionBuilder) -> Result<Connection> {
        let rt = runtime()?;
        let inner = rt.block_on(builder.connect())?;
        Ok(Connection { inner, rt })
    }

    /// The connection's default server session.
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::blocking::Connection) -> surreal_pool::Result<()> {
    /// let db = conn.session();
    /// db.signin(&surreal_pool::Root::new("root", "root"))?;
    /// # Ok(()) }
    /// ```
    pub fn session(&self) -> Session {
        Session { inner: Some(self.inner.session()), rt: self.rt.clone() }
    }

    /// See [`crate::Connection::attach`].
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::blocking::Connection) -> surreal_pool::Result<()> {
    /// let db = conn.attach()?;
    /// db.use_ns_db("app", "main")?;
    /// # Ok(()) }
    /// ```
    pub fn attach(&self) -> Result<Session> {
        let inner = self.rt.block_on(self.inner.attach())?;
        Ok(Session { inner: Some(inner), rt: self.rt.clone() })
    }

    /// See [`crate::Connection::endpoint`].
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::blocking::Connection) {
    /// println!("connected to {}", conn.endpoint());
    /// # }
    /// ```
    pub fn endpoint(&self) -> String {
        self.inner.endpoint()
    }

    /// Subscribes to this connection's events (see [`crate::Connection::events`]), to wait for
    /// with a bound ([`Events::recv_timeout`]) or to poll ([`Events::try_recv`]).
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::blocking::Connection) -> surreal_pool::Result<()> {
    /// use std::time::Duration;
    /// let mut events = conn.events();
    /// let event = events.recv_timeout(Duration::from_secs(30))?;
    /// println!("{event:?}");
    /// # Ok(()) }
    /// ```
    pub fn events(&self) -> Events {
        Events { rx: self.inner.events(), rt: self.rt.clone() }
    }

    /// See [`crate::Connection::server_sessions`].
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::blocking::Connection) -> surreal_pool::Result<()> {
    /// let db = conn.attach()?;
    /// assert!(conn.server_sessions()?.contains(&db.id().unwrap()));
    /// # Ok(()) }
    /// ```
    pub fn server_sessions(&self) -> Result<Vec<uuid::Uuid>> {
        self.rt.block_on(self.inner.server_sessions())
    }

    /// See [`crate::Connection::close`].
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::blocking::Connection) {
    /// conn.close();
    /// # }
    /// ```
    pub fn close(&self) {
        self.inner.close()
    }

    /// See [`crate::Connection::is_closed`].
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::blocking::Connection) {
    /// if conn.is_closed() {
    ///     eprintln!("closed");
    /// }
    /// # }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// See [`crate::Connection::is_up`].
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::blocking::Connection) {
    /// if !conn.is_up() {
    ///     eprintln!("reconnecting to {}", conn.endpoint());
    /// }
    /// # }
    /// ```
    pub fn is_up(&self) -> bool {
        self.inner.is_up()
    }

    /// See [`crate::Connection::is_down`].
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::blocking::Connection) {
    /// if conn.is_down() {
    ///     eprintln!("{} is down", conn.endpoint());
    /// }
    /// # }
    /// ```
    pub fn is_down(&self) -> bool {
        self.inner.is_down()
    }

    /// See [`crate::Connection::server_version`].
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::blocking::Connection) {
    /// if let Some(v) = conn.server_version() {
    ///     println!("SurrealDB {}.{}", v.major(), v.minor());
    /// }
    /// # }
    /// ```
    pub fn server_version(&self) -> Option<crate::ServerVersion> {
        self.inner.server_version()
    }

    /// The async connection behind this one.
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::blocking::Connection) {
    /// println!("connected to {}", conn.as_async().endpoint());
    /// # }
    /// ```
    pub fn as_async(&self) -> &crate::Connection {
        &self.inner
    }
}

/// A blocking subscription to a connection's events ([`Connection::events`]).
///
/// The channel keeps the last 256 events for a slow subscriber; events it lost meanwhile are
/// skipped (and logged), and the next call returns the oldest one still kept.
///
/// ```no_run
/// # fn demo(conn: &surreal_pool::blocking::Connection) -> surreal_pool::Result<()> {
/// use std::time::Duration;
/// use surreal_pool::ConnectionEvent;
/// let mut events = conn.events();
/// loop {
///     match events.recv_timeout(Duration::from_secs(60)) {
///         Ok(ConnectionEvent::Restored { .. }) => break,
///         Ok(other) => println!("{other:?}"),
///         Err(e) if e.is_timeout() => println!("still waiting"),
///         Err(e) => return Err(e),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Events {
    rx: broadcast::Receiver<ConnectionEvent>,
    rt: Arc<Rt>,
}

impl Events {
    /// Waits at most `timeout` for the next event: [`Error::Timeout`] if none came, and
    /// [`Error::Closed`] once the connection is gone.
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::blocking::Connection) -> surreal_pool::Result<()> {
    /// let event = conn.events().recv_timeout(std::time::Duration::from_secs(5))?;
    /// # Ok(()) }
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<ConnectionEvent> {
        let rx = &mut self.rx;
        self.rt.block_on(async {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Ok(event)) => return Ok(event),
                    Ok(Err(broadcast::error::RecvError::Lagged(n))) => tracing::warn!(missed = n, "a slow event subscriber missed events"),
                    Ok(Err(broadcast::error::RecvError::Closed)) => return Err(Error::Closed),
                    Err(_) => return Err(Error::Timeout { what: "connection event", after: timeout }),
                }
            }
        })
    }

    /// The next event if one is waiting, without blocking: `Ok(None)` if none is, and
    /// [`Error::Closed`] once the connection is gone.
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::blocking::Connection) -> surreal_pool::Result<()> {
    /// let mut events = conn.events();
    /// while let Some(event) = events.try_recv()? {
    ///     println!("{event:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn try_recv(&mut self) -> Result<Option<ConnectionEvent>> {
        loop {
            match self.rx.try_recv() {
                Ok(event) => return Ok(Some(event)),
                Err(broadcast::error::TryRecvError::Lagged(n)) => tracing::warn!(missed = n, "a slow event subscriber missed events"),
                Err(broadcast::error::TryRecvError::Empty) => return Ok(None),
                Err(broadcast::error::TryRecvError::Closed) => return Err(Error::Closed),
            }
        }
    }
}

/// Blocking versions of every [`crate::Session`] method, for a type holding one.
macro_rules! session_methods {
    () => {
        fn block<'a, F: std::future::Future>(&'a self, f: impl FnOnce(&'a crate::Session) -> F) -> F::Output {
            self.rt.block_on(f(self.session()))
        }

        /// See [`crate::Session::id`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) {
        /// println!("server session {:?}", db.id());
        /// # }
        /// ```
        pub fn id(&self) -> Option<uuid::Uuid> {
            self.session().id()
        }
        /// The connection this session lives on, as a blocking handle (see
        /// [`crate::Session::connection`]).
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) {
        /// println!("on {}", db.connection().endpoint());
        /// # }
        /// ```
        pub fn connection(&self) -> Connection {
            Connection { inner: self.session().connection().clone(), rt: self.rt.clone() }
        }
        /// See [`crate::Session::token`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session, jwt: &str) -> surreal_pool::Result<()> {
        /// db.authenticate(jwt)?;
        /// assert_eq!(db.token().unwrap().as_str(), jwt);
        /// # Ok(()) }
        /// ```
        pub fn token(&self) -> Option<AccessToken> {
            self.session().token()
        }
        /// See [`crate::Session::auth_known`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session, jwt: &str) -> surreal_pool::Result<()> {
        /// if !db.auth_known() {
        ///     db.authenticate(jwt)?;
        /// }
        /// # Ok(()) }
        /// ```
        pub fn auth_known(&self) -> bool {
            self.session().auth_known()
        }
        /// See [`crate::Session::use_ns`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// db.use_ns("app")?;
        /// # Ok(()) }
        /// ```
        pub fn use_ns(&self, namespace: &str) -> Result<()> {
            self.block(|s| s.use_ns(namespace))
        }
        /// See [`crate::Session::use_db`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// db.use_db("main")?;
        /// # Ok(()) }
        /// ```
        pub fn use_db(&self, database: &str) -> Result<()> {
            self.block(|s| s.use_db(database))
        }
        /// See [`crate::Session::insert_relation`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// use surreal_pool::RecordId;
        /// #[derive(serde::Serialize)]
        /// struct Edge { #[serde(rename = "in")] from: RecordId, out: RecordId }
        /// let edge = Edge { from: RecordId::new("person", "a"), out: RecordId::new("post", 1) };
        /// let made: Vec<serde_json::Value> = db.insert_relation("wrote", vec![edge])?;
        /// # Ok(()) }
        /// ```
        pub fn insert_relation<D: Serialize, T: DeserializeOwned>(&self, table: &str, data: D) -> Result<T> {
            self.block(|s| s.insert_relation(table, data))
        }
        /// Begins a transaction (see [`crate::Session::begin`]); dropping the [`Transaction`]
        /// without [`commit`](Transaction::commit) or [`cancel`](Transaction::cancel) cancels it.
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// let tx = db.begin()?;
        /// tx.query("CREATE account:a SET balance = 10", ())?.check()?;
        /// tx.commit()?;
        /// # Ok(()) }
        /// ```
        pub fn begin(&self) -> Result<Transaction<'_>> {
            let inner = self.block(|s| s.begin())?;
            Ok(Transaction { inner: Some(inner), rt: &self.rt })
        }
        /// Begins a transaction with SurrealDB 4.0's options (see
        /// [`crate::Session::begin_with`]); on 3.x it fails with [`Error::Unsupported`] and
        /// sends nothing.
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// use surreal_pool::{Isolation, TransactionOptions};
        /// let tx = db.begin_with(TransactionOptions::new().isolation(Isolation::Serializable))?;
        /// tx.query("UPDATE account:a SET balance -= 5", ())?.check()?;
        /// tx.commit()?;
        /// # Ok(()) }
        /// ```
        pub fn begin_with(&self, options: crate::TransactionOptions) -> Result<Transaction<'_>> {
            let inner = self.block(|s| s.begin_with(options))?;
            Ok(Transaction { inner: Some(inner), rt: &self.rt })
        }
        /// Subscribes to every change of a table (see [`crate::Session::live`]): an iterator
        /// of notifications; dropping it kills the live query.
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// for change in db.live::<serde_json::Value>("note")? {
        ///     let change = change?;
        ///     println!("{:?} {}", change.action, change.record);
        /// }
        /// # Ok(()) }
        /// ```
        pub fn live<T: DeserializeOwned>(&self, table: &str) -> Result<LiveStream<T>> {
            let inner = self.block(|s| s.live(table))?;
            Ok(LiveStream { inner: Some(inner), rt: self.rt.clone(), timeout: None })
        }
        /// Subscribes with a `LIVE SELECT` statement (see [`crate::Session::live_query`]).
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// let big = db.live_query::<serde_json::Value, _>("LIVE SELECT * FROM order WHERE total > $min", serde_json::json!({"min": 100}))?;
        /// # Ok(()) }
        /// ```
        pub fn live_query<T: DeserializeOwned, B: Serialize>(&self, sql: &str, bindings: B) -> Result<LiveStream<T>> {
            let inner = self.block(|s| s.live_query(sql, bindings))?;
            Ok(LiveStream { inner: Some(inner), rt: self.rt.clone(), timeout: None })
        }
        /// See [`crate::Session::signin`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// db.signin(&surreal_pool::Root::new("root", "root"))?;
        /// # Ok(()) }
        /// ```
        pub fn signin<C: Credentials + ?Sized>(&self, credentials: &C) -> Result<Tokens> {
            self.block(|s| s.signin(credentials))
        }
        /// See [`crate::Session::signup`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// let creds = surreal_pool::Record::new("surrealdb", "docs", "account", serde_json::json!({
        ///     "email": "info@surrealdb.com", "password": "123456",
        /// }));
        /// let tokens = db.signup(&creds)?;
        /// # Ok(()) }
        /// ```
        pub fn signup<V: Serialize + Send + Sync>(&self, credentials: &Record<V>) -> Result<Tokens> {
            self.block(|s| s.signup(credentials))
        }
        /// See [`crate::Session::authenticate`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session, jwt: &str) -> surreal_pool::Result<()> {
        /// db.authenticate(jwt)?;
        /// # Ok(()) }
        /// ```
        pub fn authenticate(&self, token: impl Into<AccessToken>) -> Result<()> {
            self.block(|s| s.authenticate(token))
        }
        /// See [`crate::Session::invalidate`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// db.invalidate()?;
        /// # Ok(()) }
        /// ```
        pub fn invalidate(&self) -> Result<()> {
            self.block(|s| s.invalidate())
        }
        /// See [`crate::Session::info`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// let me: Option<serde_json::Value> = db.info()?;
        /// # Ok(()) }
        /// ```
        pub fn info(&self) -> Result<Option<serde_json::Value>> {
            self.block(|s| s.info())
        }
        /// See [`crate::Session::refresh`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session, tokens: surreal_pool::Tokens) -> surreal_pool::Result<()> {
        /// let fresh = db.refresh(&tokens)?;
        /// # Ok(()) }
        /// ```
        pub fn refresh(&self, tokens: &Tokens) -> Result<Tokens> {
            self.block(|s| s.refresh(tokens))
        }
        /// See [`crate::Session::revoke`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session, tokens: surreal_pool::Tokens) -> surreal_pool::Result<()> {
        /// db.revoke(&tokens)?;
        /// # Ok(()) }
        /// ```
        pub fn revoke(&self, tokens: &Tokens) -> Result<()> {
            self.block(|s| s.revoke(tokens))
        }
        /// See [`crate::Session::reset`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// db.reset()?;
        /// # Ok(()) }
        /// ```
        pub fn reset(&self) -> Result<()> {
            self.block(|s| s.reset())
        }
        /// See [`crate::Session::use_ns_db`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// db.use_ns_db("app", "main")?;
        /// # Ok(()) }
        /// ```
        pub fn use_ns_db(&self, namespace: &str, database: &str) -> Result<()> {
            self.block(|s| s.use_ns_db(namespace, database))
        }
        /// See [`crate::Session::set`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// db.set("tenant", "acme")?;
        /// # Ok(()) }
        /// ```
        pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<()> {
            self.block(|s| s.set(name, value))
        }
        /// See [`crate::Session::unset`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// db.unset("tenant")?;
        /// # Ok(()) }
        /// ```
        pub fn unset(&self, name: &str) -> Result<()> {
            self.block(|s| s.unset(name))
        }
        /// See [`crate::Session::version`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// println!("{}", db.version()?);
        /// # Ok(()) }
        /// ```
        pub fn version(&self) -> Result<String> {
            self.block(|s| s.version())
        }
        /// See [`crate::Session::ping`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// db.ping()?;
        /// # Ok(()) }
        /// ```
        pub fn ping(&self) -> Result<()> {
            self.block(|s| s.ping())
        }
        /// See [`crate::Session::query`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// let two: i64 = db.query("RETURN $a + 1", serde_json::json!({"a": 1}))?.take(0)?;
        /// # Ok(()) }
        /// ```
        pub fn query<B: Serialize>(&self, sql: &str, bindings: B) -> Result<QueryResponse> {
            self.block(|s| s.query(sql, bindings))
        }
        /// Runs SurrealQL with SurrealDB 4.0's query options (see
        /// [`crate::Session::query_with`]); on 3.x options fail with [`Error::Unsupported`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// use std::time::Duration;
        /// use surreal_pool::{QueryOptions, ReadOnly};
        /// let options = QueryOptions::new().read_only(ReadOnly::max_staleness(Duration::from_secs(5)));
        /// let rows: Vec<serde_json::Value> = db.query_with("SELECT * FROM person", (), options)?.take(0)?;
        /// # Ok(()) }
        /// ```
        pub fn query_with<B: Serialize>(&self, sql: &str, bindings: B, options: crate::QueryOptions) -> Result<QueryResponse> {
            self.block(|s| s.query_with(sql, bindings, options))
        }
        /// See [`crate::Session::select`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// let all: Vec<serde_json::Value> = db.select("person")?;
        /// # Ok(()) }
        /// ```
        pub fn select<R: Resource, T: DeserializeOwned>(&self, resource: R) -> Result<T> {
            self.block(|s| s.select(resource))
        }
        /// See [`crate::Session::create`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// use surreal_pool::RecordId;
        /// let p: serde_json::Value = db.create(RecordId::new("person", "a"), serde_json::json!({"name": "A"}))?;
        /// # Ok(()) }
        /// ```
        pub fn create<R: Resource, D: Serialize, T: DeserializeOwned>(&self, resource: R, data: D) -> Result<T> {
            self.block(|s| s.create(resource, data))
        }
        /// See [`crate::Session::insert`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// let rows: Vec<serde_json::Value> = db.insert("person", serde_json::json!([{"name": "a"}, {"name": "b"}]))?;
        /// # Ok(()) }
        /// ```
        pub fn insert<D: Serialize, T: DeserializeOwned>(&self, table: &str, data: D) -> Result<T> {
            self.block(|s| s.insert(table, data))
        }
        /// See [`crate::Session::update`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// use surreal_pool::RecordId;
        /// let p: Option<serde_json::Value> = db.update(RecordId::new("person", "a"), serde_json::json!({"name": "A"}))?;
        /// # Ok(()) }
        /// ```
        pub fn update<R: Resource, D: Serialize, T: DeserializeOwned>(&self, resource: R, data: D) -> Result<T> {
            self.block(|s| s.update(resource, data))
        }
        /// See [`crate::Session::upsert`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// use surreal_pool::RecordId;
        /// let p: Option<serde_json::Value> = db.upsert(RecordId::new("person", "a"), serde_json::json!({"name": "A"}))?;
        /// # Ok(()) }
        /// ```
        pub fn upsert<R: Resource, D: Serialize, T: DeserializeOwned>(&self, resource: R, data: D) -> Result<T> {
            self.block(|s| s.upsert(resource, data))
        }
        /// See [`crate::Session::merge`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// use surreal_pool::RecordId;
        /// let p: Option<serde_json::Value> = db.merge(RecordId::new("person", "a"), serde_json::json!({"age": 3}))?;
        /// # Ok(()) }
        /// ```
        pub fn merge<R: Resource, D: Serialize, T: DeserializeOwned>(&self, resource: R, data: D) -> Result<T> {
            self.block(|s| s.merge(resource, data))
        }
        /// See [`crate::Session::patch`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// use surreal_pool::RecordId;
        /// let ops = serde_json::json!([{ "op": "replace", "path": "/name", "value": "B" }]);
        /// let p: Option<serde_json::Value> = db.patch(RecordId::new("person", "a"), ops)?;
        /// # Ok(()) }
        /// ```
        pub fn patch<R: Resource, P: Serialize, T: DeserializeOwned>(&self, resource: R, operations: P) -> Result<T> {
            self.block(|s| s.patch(resource, operations))
        }
        /// See [`crate::Session::delete`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// use surreal_pool::RecordId;
        /// let gone: Option<serde_json::Value> = db.delete(RecordId::new("person", "a"))?;
        /// # Ok(()) }
        /// ```
        pub fn delete<R: Resource, T: DeserializeOwned>(&self, resource: R) -> Result<T> {
            self.block(|s| s.delete(resource))
        }
        /// See [`crate::Session::relate`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// use surreal_pool::RecordId;
        /// let edge: serde_json::Value = db.relate(RecordId::new("person", "a"), "likes", RecordId::new("post", 1), ())?;
        /// # Ok(()) }
        /// ```
        pub fn relate<F: Resource, W: Resource, D: Serialize, T: DeserializeOwned>(&self, from: F, relation: &str, to: W, data: D) -> Result<T> {
            self.block(|s| s.relate(from, relation, to, data))
        }
        /// See [`crate::Session::run`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// let n: i64 = db.run("string::len", ("hello",))?;
        /// # Ok(()) }
        /// ```
        pub fn run<A: Serialize, T: DeserializeOwned>(&self, function: &str, args: A) -> Result<T> {
            self.block(|s| s.run(function, args))
        }
    };
}

/// A blocking [`crate::Session`].
#[derive(Debug)]
pub struct Session {
    inner: Option<crate::Session>,
    rt: Arc<Rt>,
}

impl Drop for Session {
    fn drop(&mut self) {
        // Detaching may need to spawn onto the runtime: drop the session inside it.
        let _guard = self.rt.enter();
        drop(self.inner.take());
    }
}

impl Session {
    fn session(&self) -> &crate::Session {
        // Present until drop.
        self.inner.as_ref().expect("session present until drop")
    }

    session_methods!();

    /// Detaches the session on the server and waits for the answer (see
    /// [`crate::Session::detach`]); the default session cannot be detached.
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::blocking::Connection) -> surreal_pool::Result<()> {
    /// let s = conn.attach()?;
    /// s.detach()?;
    /// # Ok(()) }
    /// ```
    pub fn detach(mut self) -> Result<()> {
        let inner = self.inner.take().expect("session present until drop");
        self.rt.block_on(inner.detach())
    }

    /// The async session behind this one.
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) {
    /// let id = db.as_async().id();
    /// # }
    /// ```
    pub fn as_async(&self) -> &crate::Session {
        self.session()
    }
}

/// A blocking [`crate::PooledSession`]; returned to the pool on drop.
#[derive(Debug)]
pub struct PooledSession {
    inner: Option<crate::PooledSession>,
    rt: Arc<Rt>,
}

impl PooledSession {
    fn session(&self) -> &crate::Session {
        // Present until drop.
        self.inner.as_ref().expect("pooled session present until drop")
    }

    session_methods!();

    /// The async pooled session behind this one.
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::PooledSession) {
    /// let id = db.as_async().id();
    /// # }
    /// ```
    pub fn as_async(&self) -> &crate::PooledSession {
        self.inner.as_ref().expect("pooled session present until drop")
    }
}

impl Drop for PooledSession {
    fn drop(&mut self) {
        let _guard = self.rt.enter();
        drop(self.inner.take());
    }
}

/// An open transaction on a blocking session (see [`Session::begin`] and
/// [`crate::Transaction`]). Dropping it without [`commit`](Self::commit) or
/// [`cancel`](Self::cancel) cancels it.
///
/// ```no_run
/// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
/// let tx = db.begin()?;
/// tx.query("UPDATE account:a SET balance -= 5", ())?.check()?;
/// tx.query("UPDATE account:b SET balance += 5", ())?.check()?;
/// tx.commit()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Transaction<'a> {
    inner: Option<crate::Transaction<'a>>,
    rt: &'a Rt,
}

impl Transaction<'_> {
    fn tx(&self) -> &crate::Transaction<'_> {
        // Present until commit, cancel or drop.
        self.inner.as_ref().expect("transaction present until it ends")
    }

    /// The transaction id.
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// let tx = db.begin()?;
    /// println!("transaction {}", tx.id());
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> uuid::Uuid {
        self.tx().id()
    }

    /// The isolation the server chose (SurrealDB 4.0 with options; see
    /// [`crate::Transaction::isolation`]).
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// let tx = db.begin_with(surreal_pool::TransactionOptions::new().isolation(surreal_pool::Isolation::Snapshot))?;
    /// println!("{:?}", tx.isolation());
    /// # Ok(()) }
    /// ```
    pub fn isolation(&self) -> Option<crate::Isolation> {
        self.tx().isolation()
    }

    /// The snapshot a read-only transaction reads (see [`crate::Transaction::snapshot`]).
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// use std::time::Duration;
    /// use surreal_pool::{ReadOnly, TransactionOptions};
    /// let tx = db.begin_with(TransactionOptions::new().read_only(ReadOnly::max_staleness(Duration::from_secs(5))))?;
    /// if let Some(snapshot) = tx.snapshot() {
    ///     println!("{snapshot:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn snapshot(&self) -> Option<&crate::Snapshot> {
        self.tx().snapshot()
    }

    /// Runs SurrealQL inside the transaction (see [`crate::Transaction::query`]).
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// let tx = db.begin()?;
    /// tx.query("UPDATE account:a SET balance -= $n", serde_json::json!({"n": 5}))?.check()?;
    /// tx.commit()?;
    /// # Ok(()) }
    /// ```
    pub fn query<B: Serialize>(&self, sql: &str, bindings: B) -> Result<QueryResponse> {
        self.rt.block_on(self.tx().query(sql, bindings))
    }

    /// Commits the transaction.
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// let tx = db.begin()?;
    /// tx.query("CREATE account:c SET balance = 0", ())?.check()?;
    /// tx.commit()?;
    /// # Ok(()) }
    /// ```
    pub fn commit(mut self) -> Result<()> {
        let tx = self.inner.take().expect("transaction present until it ends");
        self.rt.block_on(tx.commit())
    }

    /// Cancels the transaction: none of its writes happen.
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// let tx = db.begin()?;
    /// tx.query("DELETE account", ())?;
    /// tx.cancel()?; // nothing was deleted
    /// # Ok(()) }
    /// ```
    pub fn cancel(mut self) -> Result<()> {
        let tx = self.inner.take().expect("transaction present until it ends");
        self.rt.block_on(tx.cancel())
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        // An unfinished transaction is cancelled in the background, which may need the runtime.
        let _guard = self.rt.enter();
        drop(self.inner.take());
    }
}

/// A live query as a blocking iterator of notifications (see [`Session::live`] and
/// [`crate::LiveStream`]); dropping it kills the live query.
///
/// [`next`](Iterator::next) waits until the next notification, or returns `None` when the live
/// query has ended (its session's identity changed, or the connection closed). Every wait can
/// be bounded: [`next_timeout`](Self::next_timeout) for one wait, or
/// [`with_timeout`](Self::with_timeout) for every `next`, which then yields
/// `Some(Err(Error::Timeout { .. }))` when nothing came in time and goes on afterwards.
///
/// ```no_run
/// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
/// use std::time::Duration;
/// let mut changes = db.live::<serde_json::Value>("note")?;
/// match changes.next_timeout(Duration::from_secs(5))? {
///     Some(change) => println!("{:?} {}", change.action, change.record),
///     None => println!("the live query ended"),
/// }
/// # Ok(()) }
/// ```
pub struct LiveStream<T> {
    inner: Option<crate::LiveStream<T>>,
    rt: Arc<Rt>,
    timeout: Option<Duration>,
}

impl<T> std::fmt::Debug for LiveStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveStream").field("inner", &self.inner).field("timeout", &self.timeout).finish()
    }
}

impl<T> LiveStream<T> {
    fn stream(&mut self) -> &mut crate::LiveStream<T> {
        // Present until drop.
        self.inner.as_mut().expect("live stream present until drop")
    }

    /// The live query's id on the server now (see [`crate::LiveStream::id`]).
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// let changes = db.live::<serde_json::Value>("note")?;
    /// println!("live query {:?}", changes.id());
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> Option<uuid::Uuid> {
        self.inner.as_ref().and_then(|s| s.id())
    }

    /// Bounds every wait of [`next`](Iterator::next): after `timeout` without a notification it
    /// yields `Some(Err(Error::Timeout { .. }))`, and the next call waits again.
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// use std::time::Duration;
    /// for change in db.live::<serde_json::Value>("note")?.with_timeout(Duration::from_secs(30)) {
    ///     match change {
    ///         Ok(change) => println!("{:?}", change.action),
    ///         Err(e) if e.is_timeout() => println!("quiet for 30 s"),
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl<T: DeserializeOwned> LiveStream<T> {
    /// Waits at most `timeout` for the next notification: `Ok(Some(_))` for one, `Ok(None)`
    /// once the live query has ended, [`Error::Timeout`] if none came in time (the stream goes
    /// on), or the error of a notification that did not decode as `T`.
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// let mut changes = db.live::<serde_json::Value>("note")?;
    /// if let Some(change) = changes.next_timeout(std::time::Duration::from_secs(1))? {
    ///     println!("{}", change.record);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Notification<T>>> {
        let rt = self.rt.clone();
        let stream = self.stream();
        // The timer is made inside the runtime (it needs its time driver).
        match rt.block_on(async { tokio::time::timeout(timeout, stream.next()).await }) {
            Ok(next) => next.transpose(),
            Err(_) => Err(Error::Timeout { what: "live notification", after: timeout }),
        }
    }
}

impl<T: DeserializeOwned> Iterator for LiveStream<T> {
    type Item = Result<Notification<T>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.timeout {
            Some(timeout) => self.next_timeout(timeout).transpose(),
            None => {
                let rt = self.rt.clone();
                let stream = self.stream();
                rt.block_on(stream.next())
            }
        }
    }
}

impl<T> Drop for LiveStream<T> {
    fn drop(&mut self) {
        // The kill is sent in the background, which may need the runtime.
        let _guard = self.rt.enter();
        drop(self.inner.take());
    }
}
