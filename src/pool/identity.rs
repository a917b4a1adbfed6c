//! The pool's default identity, and how a session's state is judged against it.

use std::collections::{HashSet, VecDeque};
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

/// The tokens a session may hold and still be in the pool identity.
///
/// Usually one: the `identity_token`, or the token of the one signin with the pool's
/// credentials, which the other sessions authenticate with. Credentials whose tokens the server
/// does not authenticate (a database-level bearer key on SurrealDB 3.3.5) sign in for each
/// session instead; the tokens so issued are kept, newest last, at most `cap` of them (twice
/// the pool's size: a session whose token was forgotten is only reset and signed in again).
#[derive(Debug)]
pub(super) struct IdentityTokens {
    shared: Option<AccessToken>,
    issued: HashSet<AccessToken>,
    order: VecDeque<AccessToken>,
    cap: usize,
}

impl IdentityTokens {
    pub(super) fn new(shared: Option<AccessToken>, cap: usize) -> Self {
        IdentityTokens { shared, issued: HashSet::new(), order: VecDeque::new(), cap: cap.max(1) }
    }

    fn holds(&self, token: &AccessToken) -> bool {
        self.shared.as_ref() == Some(token) || self.issued.contains(token)
    }

    /// Keeps a token issued for one session.
    fn issue(&mut self, token: AccessToken) {
        if self.issued.contains(&token) {
            return;
        }
        while self.order.len() >= self.cap {
            if let Some(old) = self.order.pop_front() {
                self.issued.remove(&old);
            }
        }
        self.issued.insert(token.clone());
        self.order.push_back(token);
    }
}

impl PoolShared {
    pub(super) fn default_ns_db(&self) -> NsDb {
        (self.namespace.clone(), self.database.clone())
    }

    fn identity_tokens(&self) -> std::sync::MutexGuard<'_, IdentityTokens> {
        self.identity_token.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn identity_token(&self) -> Option<AccessToken> {
        self.identity_tokens().shared.clone()
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
            Identity::Credentials(credentials) if !credentials.tokens_authenticate() => {
                // The server would refuse the token on any other session: sign this one in.
                self.counters.auth_round_trip();
                let tokens = session.signin(credentials.as_ref()).await?;
                self.identity_tokens().issue(tokens.access);
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
                    self.identity_tokens().shared = Some(tokens.access);
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

    /// Whether an idle session clean for `tag` may have its identity given up by a planned move
    /// that cannot restore it (`SessionState::idle`): yes unless it is the pool's own identity
    /// from a fixed token, which the pool cannot make anew once expired (every server refuses
    /// it); such a session keeps its socket until it is restored or replaced.
    pub(super) fn may_give_up(&self, tag: &Tag) -> bool {
        !(matches!(tag, Tag::Default) && matches!(self.identity, Identity::Token(_)))
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
        match (&state.auth, &self.identity) {
            (AuthState::Anonymous, Identity::Anonymous) => Tag::Default,
            (AuthState::Token(t), _) if forwarded == Some(&t.access) => Tag::Tenant(t.access.clone()),
            (AuthState::Token(t), Identity::Token(id)) if *id == t.access => Tag::Default,
            (AuthState::Token(t), Identity::Credentials(_)) if self.identity_tokens().holds(&t.access) => Tag::Default,
            _ => Tag::Dirty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_identity_tokens_are_kept_in_bounded_memory() {
        let t = |s: &str| AccessToken::new(s);
        let mut tokens = IdentityTokens::new(Some(t("shared.a.b")), 2);
        tokens.issue(t("one.a.b"));
        tokens.issue(t("two.a.b"));
        tokens.issue(t("two.a.b")); // kept once
        assert!(tokens.holds(&t("shared.a.b")) && tokens.holds(&t("one.a.b")) && tokens.holds(&t("two.a.b")));
        tokens.issue(t("three.a.b"));
        assert!(!tokens.holds(&t("one.a.b")), "the oldest goes first");
        assert!(tokens.holds(&t("two.a.b")) && tokens.holds(&t("three.a.b")));
        assert_eq!((tokens.issued.len(), tokens.order.len()), (2, 2));
        assert!(!tokens.holds(&t("other.a.b")));
    }
}
