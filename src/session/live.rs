//! Live queries: a [`LiveStream`] of notifications, routed by live-query id.
//!
//! * [`Session::live`] subscribes to a table, [`Session::live_query`] to a `LIVE SELECT`.
//! * Notifications are routed by the connection's task to the stream's bounded buffer
//!   ([`LIVE_BUFFER`] notifications). A consumer that falls that far behind loses notifications
//!   (each loss is logged); it never slows the connection down.
//! * Dropping the stream kills the live query on the server.
//! * After a reconnect the live query is registered again, after the session's identity is
//!   restored, and the same stream continues. Changes made while the socket was down are
//!   **not** delivered: re-read what matters after a [`ConnectionEvent::Restored`]
//!   (`crate::ConnectionEvent::Restored`).
//! * A change of the session's identity (signin, authenticate, invalidate, reset) ends its live
//!   queries, as the server kills them: the stream ends.

use std::collections::HashMap;
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
use crate::session::{Resource, Session};
use crate::connection::state::Effect;

/// Notifications buffered per live query before the oldest undelivered ones are dropped.
pub const LIVE_BUFFER: usize = 1024;

/// What a live query watches, kept to register it again after a reconnect.
#[derive(Clone, Debug)]
pub(crate) enum LiveWhat {
    Table(String),
    Query(String, Option<Cbor>),
}

impl LiveWhat {
    /// The method and parameters that register it.
    pub(crate) fn request(&self) -> (&'static str, Vec<Cbor>) {
        match self {
            LiveWhat::Table(t) => ("live", vec![t.as_str().to_param()]),
            LiveWhat::Query(sql, vars) => {
                let mut params = vec![Cbor::Text(sql.clone())];
                params.extend(vars.clone());
                ("query", params)
            }
        }
    }

    /// The live-query id in the reply to [`request`](Self::request).
    pub(crate) fn id_from(&self, reply: Cbor) -> Option<uuid::Uuid> {
        let json = tags::to_json(reply);
        let id = match self {
            LiveWhat::Table(_) => json,
            LiveWhat::Query(..) => json.get(0)?.get("result")?.clone(),
        };
        id.as_str()?.parse().ok()
    }
}

/// One registered live query.
pub(crate) struct LiveEntry {
    pub(crate) server_id: uuid::Uuid,
    pub(crate) session: Option<uuid::Uuid>,
    pub(crate) what: LiveWhat,
    sender: mpsc::Sender<Cbor>,
}

/// The connection's live queries, by a local key that survives re-registration.
#[derive(Default)]
pub(crate) struct LiveRegistry {
    entries: HashMap<u64, LiveEntry>,
    by_server_id: HashMap<uuid::Uuid, u64>,
    next_key: u64,
}

/// What the actor needs to register a live query when its reply arrives.
#[derive(Clone, Debug)]
pub(crate) struct Registration {
    pub(crate) key: u64,
    pub(crate) what: LiveWhat,
    sender: mpsc::Sender<Cbor>,
}

impl LiveRegistry {
    /// A key for a live query about to be requested.
    pub(crate) fn reserve_key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    /// Registers a live query under the id the server gave it.
    pub(crate) fn register(&mut self, registration: &Registration, session: Option<uuid::Uuid>, server_id: uuid::Uuid) {
        let entry = LiveEntry { server_id, session, what: registration.what.clone(), sender: registration.sender.clone() };
        self.by_server_id.insert(server_id, registration.key);
        self.entries.insert(registration.key, entry);
    }

    pub(crate) fn remove(&mut self, key: u64) -> Option<LiveEntry> {
        let entry = self.entries.remove(&key)?;
        self.by_server_id.remove(&entry.server_id);
        Some(entry)
    }

    /// Delivers a notification (`result` of an id-less frame) to its stream.
    pub(crate) fn route(&mut self, notification: Cbor) {
        let id = match &notification {
            Cbor::Map(m) => m.iter().find(|(k, _)| k.as_text() == Some("id")).map(|(_, v)| tags::to_json(v.clone())),
            _ => None,
        };
        let Some(id) = id.and_then(|v| v.as_str().and_then(|s| s.parse::<uuid::Uuid>().ok())) else {
            tracing::debug!("a notification without a live-query id");
            return;
        };
        let Some(&key) = self.by_server_id.get(&id) else { return };
        let Some(entry) = self.entries.get(&key) else { return };
        match entry.sender.try_send(notification) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => tracing::warn!(%id, "a live-query consumer is behind: notification dropped"),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.remove(key);
            }
        }
    }

    /// Ends the live queries of a session (identity change, detach); returns their server ids.
    pub(crate) fn end_session(&mut self, session: Option<uuid::Uuid>) -> Vec<uuid::Uuid> {
        let keys: Vec<u64> = self.entries.iter().filter(|(_, e)| e.session == session).map(|(k, _)| *k).collect();
        keys.into_iter().filter_map(|key| self.remove(key)).map(|e| e.server_id).collect()
    }

    /// Every live query, for the replay: (key, session, what).
    pub(crate) fn snapshot(&self) -> Vec<(u64, Option<uuid::Uuid>, LiveWhat)> {
        self.entries.iter().map(|(k, e)| (*k, e.session, e.what.clone())).collect()
    }

    pub(crate) fn server_id(&self, key: u64) -> Option<uuid::Uuid> {
        self.entries.get(&key).map(|e| e.server_id)
    }

    /// Points a live query at the id it got when registered again; `false` if its stream was
    /// dropped meanwhile (the new id must then be killed).
    pub(crate) fn rebind(&mut self, key: u64, server_id: uuid::Uuid) -> bool {
        let Some(entry) = self.entries.get_mut(&key) else { return false };
        self.by_server_id.remove(&entry.server_id);
        entry.server_id = server_id;
        self.by_server_id.insert(server_id, key);
        true
    }
}

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

fn decode_notification<T: DeserializeOwned>(raw: Cbor) -> Result<Notification<T>> {
    let mut json = tags::to_json(raw);
    let action = match json.get("action").and_then(|a| a.as_str()) {
        Some("CREATE") => Action::Create,
        Some("UPDATE") => Action::Update,
        Some("DELETE") => Action::Delete,
        Some(other) => Action::Other(other.to_owned()),
        None => return Err(Error::Protocol("a notification without an action".into())),
    };
    let record = match json.get("record") {
        Some(serde_json::Value::String(r)) => r.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let data = json.get_mut("result").map(serde_json::Value::take).unwrap_or_default();
    let data = serde_json::from_value(data).map_err(|e| Error::Decode(Box::new(e)))?;
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
            if let json @ serde_json::Value::Array(_) = reply.json()? {
                // A failed LIVE statement is a statement error.
                crate::session::query::QueryResponse::from_json(json)?.check()?;
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
