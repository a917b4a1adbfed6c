//! A blocking facade over the async API, for synchronous code (as the official Python SDK
//! offers both).
//!
//! Each [`Pool`] or [`Connection`] here owns a small Tokio runtime (one worker thread) on which
//! its connection tasks run — keepalive, reconnect and replay keep working between calls — and
//! every method blocks the calling thread until the async call finishes. Do not call these from
//! inside an async runtime (Tokio panics on nested `block_on`); use the async API there.
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

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::{AccessToken, Credentials, Record, Tokens};
use crate::error::{Error, Result};
use crate::pool::{PoolBuilder, PoolStatus};
use crate::session::query::QueryResponse;
use crate::session::Resource;
use crate::ConnectionBuilder;

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

/// Blocking versions of every [`crate::Session`] method, for a type holding one.
macro_rules! session_methods {
    () => {
        /// See [`crate::Session::signin`].
        ///
        /// ```no_run
        /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
        /// db.signin(&surreal_pool::Root::new("root", "root"))?;
        /// # Ok(()) }
        /// ```
        pub fn signin<C: Credentials>(&self, credentials: &C) -> Result<Tokens> {
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

    fn block<'a, F: std::future::Future>(&'a self, f: impl FnOnce(&'a crate::Session) -> F) -> F::Output {
        self.rt.block_on(f(self.session()))
    }

    session_methods!();

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
    fn block<'a, F: std::future::Future>(&'a self, f: impl FnOnce(&'a crate::Session) -> F) -> F::Output {
        // Present until drop.
        let session: &crate::Session = self.inner.as_ref().expect("pooled session present until drop");
        self.rt.block_on(f(session))
    }

    session_methods!();
}

impl Drop for PooledSession {
    fn drop(&mut self) {
        let _guard = self.rt.enter();
        drop(self.inner.take());
    }
}
