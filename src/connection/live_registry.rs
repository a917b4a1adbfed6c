//! The live-query registry of a connection: which server live query feeds which stream, by a
//! local key that survives a reconnect (the server id changes; the stream does not). The actor
//! routes notifications through it; `session::live` holds the streams.

use std::collections::HashMap;

use ciborium::Value as Cbor;
use tokio::sync::mpsc;

use crate::wire::tags;

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
            LiveWhat::Table(t) => ("live", vec![Cbor::Tag(tags::TAG_TABLE, Box::new(Cbor::Text(t.clone())))]),
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

/// The notification a frame without a request id carries: its `result`
/// (`{id, action, record, result}`).
pub(crate) fn notification(frame: Cbor) -> Option<Cbor> {
    match frame {
        Cbor::Map(m) => m.into_iter().find(|(k, _)| k.as_text() == Some("result")).map(|(_, v)| v),
        _ => None,
    }
}

/// A notification's live-query id and action (`CREATE`, …, `KILLED`).
pub(crate) fn id_and_action(notification: &Cbor) -> (Option<uuid::Uuid>, Option<&str>) {
    let Cbor::Map(m) = notification else { return (None, None) };
    let field = |name: &str| m.iter().find(|(k, _)| k.as_text() == Some(name)).map(|(_, v)| v);
    let id = field("id").and_then(|v| tags::to_json(v.clone()).as_str().and_then(|s| s.parse().ok()));
    (id, field("action").and_then(Cbor::as_text))
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
    pub(crate) sender: mpsc::Sender<Cbor>,
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
        let Some(id) = id_and_action(&notification).0 else {
            tracing::debug!("a notification without a live-query id");
            return;
        };
        let Some(&key) = self.by_server_id.get(&id) else { return };
        self.deliver(key, notification);
    }

    /// Delivers a notification to the stream of live query `key`, whatever its server id now
    /// (a move's old socket delivers under the ids it had).
    pub(crate) fn deliver(&mut self, key: u64, notification: Cbor) {
        let Some(entry) = self.entries.get(&key) else { return };
        let id = entry.server_id;
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

    /// Every live query's key, session and server id.
    pub(crate) fn bound(&self) -> Vec<(u64, Option<uuid::Uuid>, uuid::Uuid)> {
        self.entries.iter().map(|(k, e)| (*k, e.session, e.server_id)).collect()
    }

    /// Whether a live query of `session` has a stream still read.
    pub(crate) fn session_is_read(&self, session: Option<uuid::Uuid>) -> bool {
        self.entries.values().any(|e| e.session == session && !e.sender.is_closed())
    }

    /// Whether live query `key`'s stream is still read (not dropped).
    pub(crate) fn is_read(&self, key: u64) -> bool {
        self.entries.get(&key).is_some_and(|e| !e.sender.is_closed())
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
