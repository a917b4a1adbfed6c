//! The pool's default identity, and how a session's state is judged against it.

use std::sync::Arc;

use super::table::{NsDb, Tag};
use super::PoolShared;
use crate::auth::{AccessToken, Credentials};
use crate::error::Result;
use crate::session::Session;
use crate::connection::state::{AuthState, SessionState};

/// The identity fresh pooled sessions get, and that [`Pool::get`] hands out.
#[derive(Debug, Clone)]
pub(super) enum Identity {
    Anonymous,
    Token(AccessToken),
    Credentials(Arc<dyn Credentials>),
}

impl PoolShared {
    pub(super) fn default_ns_db(&self) -> NsDb {
        (self.namespace.clone(), self.database.clone())
    }

    pub(super) fn identity_token(&self) -> Option<AccessToken> {
        self.identity_token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts a session into the pool's default identity. Returns the round trips made.
    pub(super) async fn make_default(&self, session: &Session, from: &Tag) -> Result<()> {
        match &self.identity {
            Identity::Anonymous => {
                if *from != Tag::Default {
                    self.counters.auth_round_trip();
                    session.invalidate().await?;
                }
            }
            Identity::Token(token) => {
                self.counters.auth_round_trip();
                session.authenticate(token.clone()).await?;
            }
            Identity::Credentials(credentials) => {
                // One signin for the whole pool: later sessions authenticate with its token.
                let _one_at_a_time = self.identity_signin.lock().await;
                let reused = match self.identity_token() {
                    Some(token) => {
                        self.counters.auth_round_trip();
                        session.authenticate(token).await.is_ok()
                    }
                    None => false,
                };
                if !reused {
                    self.counters.auth_round_trip();
                    let tokens = session.signin(credentials.as_ref()).await?;
                    *self.identity_token.lock().unwrap_or_else(|e| e.into_inner()) = Some(tokens.access);
                }
            }
        }
        // Signing in may select the token's namespace/database: restore the pool's.
        self.select_defaults(session).await
    }

    pub(super) async fn select_defaults(&self, session: &Session) -> Result<()> {
        let current = session.with_state(|s| s.map(|s| (s.namespace.clone(), s.database.clone())));
        let (ns, db) = self.default_ns_db();
        if current.as_ref() != Some(&(ns.clone(), db.clone())) {
            // `None` unsets: a default session never keeps a tenant's namespace or database.
            session.use_exactly(ns.as_deref(), db.as_deref()).await?;
        }
        Ok(())
    }

    /// What a returned session is clean for, judged from the server-confirmed state.
    pub(super) fn classify(&self, state: Option<&SessionState>, forwarded: Option<&AccessToken>, clean_ns_db: &NsDb) -> Tag {
        let Some(state) = state else { return Tag::Dirty };
        if state.effects_in_flight > 0
            || state.open_transactions > 0
            || !state.variables.is_empty()
            || (&state.namespace, &state.database) != (&clean_ns_db.0, &clean_ns_db.1)
        {
            return Tag::Dirty;
        }
        let identity = self.identity_token();
        match (&state.auth, &self.identity) {
            (AuthState::Anonymous, Identity::Anonymous) => Tag::Default,
            (AuthState::Token(t), _) if forwarded == Some(&t.access) => Tag::Tenant(t.access.clone()),
            (AuthState::Token(t), Identity::Token(id)) if *id == t.access => Tag::Default,
            (AuthState::Token(t), Identity::Credentials(_)) if identity.as_ref() == Some(&t.access) => Tag::Default,
            _ => Tag::Dirty,
        }
    }
}
