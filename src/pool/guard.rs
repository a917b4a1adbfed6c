//! [`PooledSession`]: the checked-out session, and what its return does (hand-over, clean
//! tag, reset or replacement).

use std::ops::Deref;
use std::sync::Arc;

use deadpool::managed::Object;

use super::manager::SessionManager;
use super::table::{NsDb, Tag};
use super::{Permit, PoolShared};
use crate::auth::AccessToken;
use crate::error::{Error, Result};
use crate::session::Session;

/// A server session checked out of a [`Pool`](super::Pool); derefs to [`Session`] for the whole auth and data
/// API. Dropping it returns the session to the pool, which cleans it before anyone else gets
/// it if the caller changed its identity or state.
pub struct PooledSession {
    pub(super) session: Option<Session>,
    pub(super) object: Option<Object<SessionManager>>,
    pub(super) shared: Arc<PoolShared>,
    pub(super) forwarded: Option<AccessToken>,
    /// The tag this checkout was made for.
    pub(super) want: Tag,
    pub(super) clean_ns_db: NsDb,
    /// The checkout's turn (see [`PoolBuilder::max_sessions_per_tenant`](super::PoolBuilder::max_sessions_per_tenant)); given back
    /// after the session, so that the next in turn finds it.
    pub(super) permit: Option<Permit>,
}

impl std::fmt::Debug for PooledSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledSession").field("session", &self.session).finish()
    }
}

impl Deref for PooledSession {
    type Target = Session;
    fn deref(&self) -> &Session {
        // Present from checkout until drop.
        self.session.as_ref().expect("pooled session present until drop")
    }
}

impl PooledSession {
    /// Brings the session from `tag` to `want`.
    pub(super) async fn prepare(&mut self, tag: &Tag, want: &Tag) -> Result<()> {
        let shared = self.shared.clone();
        let session = self.session.as_ref().ok_or(Error::Closed)?;
        let mut from = tag.clone();
        if from == Tag::Dirty {
            shared.counters.reset();
            session.reset().await?;
            shared.select_defaults(session).await?;
            from = Tag::Dirty;
        }
        match want {
            Tag::Tenant(token) => {
                shared.counters.auth_round_trip();
                session.authenticate(token.clone()).await?;
                shared.table().accepted.remember(token);
            }
            _ => shared.make_default(session, &from).await?,
        }
        self.clean_ns_db = session.with_state(|s| s.map(|s| (s.namespace.clone(), s.database.clone()))).unwrap_or_default();
        Ok(())
    }
}

impl Drop for PooledSession {
    fn drop(&mut self) {
        let Some(object) = self.object.take() else { return };
        let session = self.session.take();
        let (tag, replace) = match &session {
            Some(s) => s.with_state_mut(|state| {
                // A state change still in flight may land after anything sent now (the server
                // runs a socket's requests concurrently), a reset included; a session its
                // connection could not re-attach is gone.
                let replace = state.as_ref().is_none_or(|st| st.effects_in_flight > 0);
                let tag = self.shared.classify(state.as_deref(), self.forwarded.as_ref(), &self.clean_ns_db);
                // Nobody holds it from here on (handed over, it is marked in use again).
                if let Some(st) = state {
                    st.idle = self.shared.may_give_up(&tag);
                }
                (tag, replace)
            }),
            None => (Tag::Dirty, true),
        };
        // A socket holding more than its share of sessions while another lacks sheds this one
        // (it is created anew where placement says: see `spread::excess`).
        let shed = !replace && self.shared.cluster.shedding() && {
            let connection = self.shared.table().entry(object.id).map(|e| e.connection);
            connection.is_some_and(|c| self.shared.cluster.take_shed(c))
        };
        if replace || shed {
            self.shared.table().busy_add(&self.want, -1);
            self.shared.counters.replaced();
            if shed {
                tracing::debug!("a session came back to a socket holding more than its share: replacing it");
            } else {
                tracing::debug!("a session came back with a state change in flight (or gone): replacing it");
            }
            // Dropping the session detaches it on the server; taking the slot out of deadpool
            // drops it (its entry leaves the table) and lets deadpool create a fresh one.
            drop(session);
            drop(Object::take(object));
            return;
        }
        // Ask deadpool before taking the table lock: deadpool drops slots (which lock the table)
        // while holding its own lock, so the two must never be taken in the other order.
        let closed = Object::pool(&object).is_none_or(|pool| pool.is_closed());
        let mut table = self.shared.table();
        table.busy_add(&self.want, -1);
        let clean_ns_db = std::mem::take(&mut self.clean_ns_db);
        // Hand it straight to a checkout waiting for this identity, if any (that checkout has had
        // its turn already: a hand-over lets no tenant past another), unless the pool is closed.
        let (object, session, clean_ns_db) = match session {
            Some(session) if tag != Tag::Dirty && !closed => {
                let handoff = PooledSession {
                    session: Some(session),
                    object: Some(object),
                    shared: self.shared.clone(),
                    forwarded: tag.forwarded(),
                    want: tag.clone(),
                    clean_ns_db,
                    permit: None,
                };
                table.busy_add(&tag, 1);
                let Some(mut handoff) = table.hand_over(&tag, handoff) else { return }; // handed over
                table.busy_add(&tag, -1);
                // Take the parts back out; the emptied guard's own drop does nothing.
                let parts = (handoff.object.take(), handoff.session.take(), std::mem::take(&mut handoff.clean_ns_db));
                match parts {
                    (Some(object), session, clean_ns_db) => (object, session, clean_ns_db),
                    _ => return,
                }
            }
            other => (object, other, clean_ns_db),
        };
        table.put_back(object.id, session, tag, clean_ns_db);
        drop(table);
        drop(object); // back to deadpool's idle queue
    }
}
