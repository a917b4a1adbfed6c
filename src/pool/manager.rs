//! deadpool's side: slots are deadpool objects; `create` attaches a session and `recycle`
//! refuses one that can no longer serve.

use std::sync::Arc;

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};

use super::placement::Load;
use super::table::{Entry, Tag};
use super::PoolShared;
use crate::error::{Error, Result};

/// A session reserved on a connection while it is being created.
struct Reservation<'a> {
    shared: &'a PoolShared,
    connection: usize,
    kept: bool,
}

impl Reservation<'_> {
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.shared.table().release(self.connection);
        }
    }
}

/// deadpool's manager: a pooled object is a *slot*; the session in it lives in the table.
pub(super) struct SessionManager {
    pub(super) shared: Arc<PoolShared>,
}

/// A deadpool object: the key of an [`Entry`]. Dropping it removes the entry (the session is
/// detached on the server when it drops).
pub(super) struct Slot {
    pub(super) id: u64,
    shared: Arc<PoolShared>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.table().remove(self.id);
    }
}

impl managed::Manager for SessionManager {
    type Type = Slot;
    type Error = Error;

    async fn create(&self) -> Result<Slot> {
        let shared = &self.shared;
        // Reserve room where placement says (its loads read before the table is locked).
        let loads: Vec<Load> = shared
            .connections
            .iter()
            .map(|c| {
                let (in_flight, queued) = c.load();
                Load {
                    open: !c.is_closed(),
                    serving: c.is_up() && !c.is_moving() && !c.on_avoided(),
                    in_flight: in_flight + queued,
                    latency_us: c.latency_us(),
                }
            })
            .collect();
        let connection = shared.table().reserve(|i| loads.get(i).copied().unwrap_or_default(), shared.max_per_connection)?;
        // Released on error *and* on cancellation (deadpool's create timeout, or a hand-over
        // winning the race in `object_or_handoff`), unless the slot is created.
        let reservation = Reservation { shared, connection, kept: false };
        // Dropping `session` (error or cancellation) detaches it on the server.
        let session = shared.connections[connection].attach().await?;
        shared.make_default(&session, &Tag::Default).await?;
        reservation.keep();
        // Idle until a checkout takes it (the one that made it, or later: warm sessions).
        let clean_ns_db = session.with_state_mut(|s| {
            s.map(|s| {
                s.idle = shared.may_give_up(&Tag::Default);
                (s.namespace.clone(), s.database.clone())
            })
        });
        let clean_ns_db = clean_ns_db.unwrap_or_default();
        let id = shared.table().insert(session, connection, clean_ns_db);
        Ok(Slot { id, shared: shared.clone() })
    }

    async fn recycle(&self, slot: &mut Slot, _: &Metrics) -> RecycleResult<Error> {
        let table = self.shared.table();
        match table.entry(slot.id) {
            Some(e) if self.shared.connections[e.connection].is_closed() => Err(RecycleError::message("the session's connection is closed")),
            Some(Entry { session: Some(session), .. }) if session.is_attached() => Ok(()),
            _ => Err(RecycleError::message("the session is gone (its connection could not re-attach it)")),
        }
    }
}
