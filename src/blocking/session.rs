//! The blocking [`Session`] and [`PooledSession`]: every async `Session` method, blocking.

use super::*;

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
    pub(super) inner: Option<crate::Session>,
    pub(super) rt: Arc<Rt>,
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
    pub(super) inner: Option<crate::PooledSession>,
    pub(super) rt: Arc<Rt>,
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
