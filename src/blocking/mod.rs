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
//! `Iterator` of notifications, with [`LiveStream::next_timeout`] for a bounded wait),
//! connection events ([`Connection::events`] → [`Events`]), and a pool's nodes and their events
//! ([`Pool::nodes`], [`Pool::events`]).
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

mod connection;
mod events;
mod live;
mod session;
mod transaction;

pub use connection::Connection;
pub use events::Events;
pub use live::LiveStream;
pub use session::{PooledSession, Session};
pub use transaction::Transaction;

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

    /// The pool's nodes (see [`crate::Pool::nodes`]).
    ///
    /// ```no_run
    /// # fn demo(pool: &surreal_pool::blocking::Pool) {
    /// for node in pool.nodes() {
    ///     println!("{} {:?}: {} sockets", node.endpoint, node.state, node.sockets);
    /// }
    /// # }
    /// ```
    pub fn nodes(&self) -> Vec<crate::NodeStatus> {
        self.inner.nodes()
    }

    /// Subscribes to the pool's node events (see [`crate::Pool::events`]), to wait for with a
    /// bound ([`Events::recv_timeout`]) or to poll ([`Events::try_recv`]).
    ///
    /// ```no_run
    /// # fn demo(pool: &surreal_pool::blocking::Pool) -> surreal_pool::Result<()> {
    /// use std::time::Duration;
    /// use surreal_pool::PoolEvent;
    /// let mut events = pool.events();
    /// while let Some(event) = events.try_recv()? {
    ///     if let PoolEvent::NodeEjected { endpoint, .. } = event {
    ///         eprintln!("{endpoint} ejected");
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn events(&self) -> Events<crate::PoolEvent> {
        Events { rx: self.inner.events(), rt: self.rt.clone() }
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
