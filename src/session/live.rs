//! Live queries: a [`LiveStream`] of notifications, routed by live-query id.
//!
//! * [`Session::live`] subscribes to a table, [`Session::live_query`] to a `LIVE SELECT`.
//! * Notifications are routed by the connection's task to the stream's bounded buffer
//!   (1,024 notifications). A consumer that falls that far behind loses notifications
//!   (each loss is logged); it never slows the connection down.
//! * Dropping the stream kills the live query on the server.
//! * After a reconnect the live query is registered again, after the session's identity is
//!   restored, and the same stream continues. Changes made while the socket was down are
//!   **not** delivered: re-read what matters after a [`ConnectionEvent::Restored`]
//!   (`crate::ConnectionEvent::Restored`).
//! * A change of the session's identity (signin, authenticate, invalidate, reset) ends its live
//!   queries, as the server kills them: the stream ends.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use ciborium::Value as Cbor;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::wire::tags;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::wire::envelope::to_cbor;
use crate::session::Session;
use crate::connection::live_registry::{LiveWhat, Registration};
use crate::connection::state::Effect;

/// Notifications buffered per live query before the oldest undelivered ones are dropped.
pub(crate) const LIVE_BUFFER: usize = 1024;


/// What happened to a record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// A record was created.
    Create,
    /// A record was updated.
    Update,
    /// A record was deleted.
    Delete,
    /// Another action the server reported.
    Other(String),
}

/// One live-query notification.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Notification<T> {
    /// What happened.
    pub action: Action,
    /// The record's id (SurrealQL syntax, see [`crate::RecordId`]).
    pub record: String,
    /// The record (or, for a delete, what it was), as `T`.
    pub data: T,
}

/// A stream of [`Notification`]s for one live query; dropping it kills the live query.
///
/// Notifications may arrive in another order than the changes were made: SurrealDB 3.3.5
/// delivers them concurrently. The stream buffers 1,024 notifications. A consumer that falls further behind loses the
/// notifications that do not fit (each loss is logged); it never slows the connection down.
///
/// ```no_run
/// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
/// use futures_util::StreamExt;
/// let mut changes = db.live::<serde_json::Value>("note").await?;
/// while let Some(change) = changes.next().await {
///     let change = change?;
///     println!("{:?} {}", change.action, change.record);
/// }
/// # Ok(()) }
/// ```
pub struct LiveStream<T> {
    rx: mpsc::Receiver<Cbor>,
    key: u64,
    conn: Connection,
    session: Option<uuid::Uuid>,
    _type: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for LiveStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveStream").field("session", &self.session).finish()
    }
}

impl<T> LiveStream<T> {
    /// The live query's id on the server now (it changes when a reconnect registers the query
    /// again); `None` once the query has ended.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// let changes = db.live::<serde_json::Value>("note").await?;
    /// println!("live query {:?}", changes.id());
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> Option<uuid::Uuid> {
        self.conn.shared().live().server_id(self.key)
    }
}

impl<T> Drop for LiveStream<T> {
    fn drop(&mut self) {
        let entry = self.conn.shared().live().remove(self.key);
        if let Some(entry) = entry {
            self.conn.kill_in_background(self.session, entry.server_id);
        }
    }
}

impl<T: DeserializeOwned> futures_util::Stream for LiveStream<T> {
    type Item = Result<Notification<T>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(raw)) => Poll::Ready(Some(decode_notification(raw))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A notification's `{action, record, result}`: the action and record through the JSON
/// mapping (short texts), the data straight from CBOR into `T` (see [`crate::wire::de`]).
fn decode_notification<T: DeserializeOwned>(raw: Cbor) -> Result<Notification<T>> {
    let Cbor::Map(entries) = raw else {
        return Err(Error::Protocol("a notification that is not a map".into()));
    };
    let (mut action, mut record, mut data) = (None, None, None);
    // A repeated key counts once, the last one (as in a JSON object).
    for (key, value) in entries {
        match key.as_text() {
            Some("action") => action = Some(tags::to_json(value)),
            Some("record") => record = Some(tags::to_json(value)),
            Some("result") => data = Some(value),
            _ => {}
        }
    }
    let action = match action.as_ref().and_then(|a| a.as_str()) {
        Some("CREATE") => Action::Create,
        Some("UPDATE") => Action::Update,
        Some("DELETE") => Action::Delete,
        Some(other) => Action::Other(other.to_owned()),
        None => return Err(Error::Protocol("a notification without an action".into())),
    };
    let record = match record {
        Some(serde_json::Value::String(r)) => r,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    // The data was read from the frame for routing; written back, it decodes in one pass.
    let data = crate::wire::envelope::Payload::from_value(&data.unwrap_or(Cbor::Null)).decode()?;
    Ok(Notification { action, record, data })
}

impl Session {
    async fn register_live<T>(&self, what: LiveWhat) -> Result<LiveStream<T>> {
        let (method, params) = what.request();
        let (sender, rx) = mpsc::channel(LIVE_BUFFER);
        let key = self.connection().shared().live().reserve_key();
        // The stream exists from here on: if this future is dropped, dropping it kills the
        // query; if the reply comes after that, the connection task kills it.
        let stream = LiveStream { rx, key, conn: self.connection().clone(), session: self.id(), _type: PhantomData };
        let registration = Registration { key, what: what.clone(), sender };
        let reply = self.call_in(None, method, params, Effect::Live(registration)).await?;
        if let LiveWhat::Query(..) = &what {
            if reply.is_array() {
                // A failed LIVE statement is a statement error.
                crate::session::query::QueryResponse::from_payload(reply)?.check()?;
            }
        }
        if stream.id().is_none() {
            return Err(Error::Protocol("no live-query id in the reply".into()));
        }
        Ok(stream)
    }

    /// Subscribes to every change of a table.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// let changes = db.live::<serde_json::Value>("note").await?;
    /// # Ok(()) }
    /// ```
    pub async fn live<T: DeserializeOwned>(&self, table: &str) -> Result<LiveStream<T>> {
        self.register_live(LiveWhat::Table(table.to_owned())).await
    }

    /// Subscribes with a `LIVE SELECT` statement (and bindings, or `()`).
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// let big = db.live_query::<serde_json::Value, _>("LIVE SELECT * FROM order WHERE total > $min", serde_json::json!({"min": 100})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn live_query<T: DeserializeOwned, B: Serialize>(&self, sql: &str, bindings: B) -> Result<LiveStream<T>> {
        let vars = match to_cbor(&bindings)? {
            Cbor::Null => None,
            v @ Cbor::Map(_) => Some(v),
            _ => return Err(Error::InvalidArgument("query bindings must be a map".into())),
        };
        self.register_live(LiveWhat::Query(sql.to_owned(), vars)).await
    }
}
