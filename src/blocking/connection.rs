//! The blocking [`Connection`] and its [`Events`].

use super::*;

/// A blocking [`crate::Connection`].
#[derive(Clone, Debug)]
pub struct Connection {
    pub(super) inner: crate::Connection,
    pub(super) rt: Arc<Rt>,
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
