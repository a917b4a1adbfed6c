//! The state of each server session, as the connection actor last saw the server confirm it.
//!
//! The actor updates it when a reply to a state-changing request arrives (whether or not the
//! caller is still waiting), so it always describes the server side, and it is what a reconnect
//! replays: attach, `use` ns/db, variables, then auth.

use std::collections::BTreeMap;

use ciborium::Value as Cbor;

use crate::auth::{AccessToken, Tokens};

/// Who a session is authenticated as.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) enum AuthState {
    /// No identity (fresh, invalidated or reset).
    #[default]
    Anonymous,
    /// Authenticated by signin, signup, refresh (with the tokens it returned) or authenticate.
    Token(Tokens),
    /// An auth request failed or its outcome was never seen: the server-side identity is not
    /// known. Commands other than auth commands are refused until the caller authenticates,
    /// invalidates or resets.
    Unknown,
}

impl AuthState {
    /// The access token the session is authenticated with, if known.
    pub(crate) fn access(&self) -> Option<&AccessToken> {
        match self {
            AuthState::Token(t) => Some(&t.access),
            _ => None,
        }
    }
}

/// Signin parameters kept for re-signing in after a reconnect (only when the caller opted in).
/// Never printed.
#[derive(Clone, PartialEq)]
pub(crate) struct Remembered(Cbor);

impl Remembered {
    pub(crate) fn new(params: Cbor) -> Self {
        Remembered(params)
    }

    pub(crate) fn params(&self) -> &Cbor {
        &self.0
    }
}

impl std::fmt::Debug for Remembered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Remembered(***)")
    }
}

/// One server session's state.
#[derive(Clone, Debug, Default)]
pub(crate) struct SessionState {
    pub(crate) namespace: Option<String>,
    pub(crate) database: Option<String>,
    pub(crate) variables: BTreeMap<String, Cbor>,
    pub(crate) auth: AuthState,
    /// State-changing requests sent and not yet answered.
    pub(crate) effects_in_flight: u32,
    /// Credentials of the last successful signin/signup, if the connection remembers them.
    pub(crate) credentials: Option<Remembered>,
    /// Transactions begun and not yet committed or cancelled (as far as replies show).
    pub(crate) open_transactions: u32,
    /// Identity changes (signin … reset, renewals) sent and not yet answered.
    pub(crate) auth_in_flight: u32,
    /// No caller holds the session: a pool keeps it idle. A planned move may then give up an
    /// identity it cannot restore elsewhere (one resting on an expired access token that its
    /// socket's server session still holds); for a session in use it waits (see
    /// `connection::relocate`). Never set outside a pool.
    pub(crate) idle: bool,
    /// Two identity changes overlapped in flight: the server may have run them in either order
    /// (it runs a socket's requests concurrently), so once they have all landed the identity is
    /// unknown, whatever order the replies came in.
    auth_raced: bool,
}

/// What a successful reply changes in the session's state. Sent along with the request so that
/// the actor, not the (possibly cancelled) caller, applies it.
#[derive(Debug, Clone)]
pub(crate) enum Effect {
    None,
    Attach,
    Detach,
    /// `use`: the reply `{namespace, database}` is the new state.
    Use,
    Let(String, Cbor),
    Unset(String),
    /// signin / signup / refresh: the reply holds the tokens. `remember` is the signin
    /// parameters to keep, when the connection remembers credentials.
    SignedIn { remember: Option<Remembered> },
    /// A refresh the connection made by itself before the token expired, of these tokens: same
    /// identity, new tokens. If the session's tokens changed while it was in flight (the caller
    /// signed out or in meanwhile), the server may have applied the two in either order, so the
    /// identity becomes unknown. A failure changes nothing.
    Renewed(Tokens),
    Authenticated(AccessToken),
    /// The session's own access token sent again because the server session expired while the
    /// token is still valid (`FOR SESSION` shorter than `FOR TOKEN`): the same identity, so its
    /// refresh token, remembered credentials and live queries are kept. A failure makes the
    /// identity unknown, as for any authenticate.
    Reauthenticated(AccessToken),
    Invalidated,
    Reset,
    /// `begin`: a transaction is open once the reply arrives.
    Begin,
    /// `live` / `LIVE SELECT`: registered by the actor when the reply arrives.
    Live(crate::connection::live_registry::Registration),
    /// `commit` / `cancel` of this transaction: the transaction is gone whatever the reply (a
    /// failed commit cancels it on the server; an unknown id was not open). A commit whose
    /// caller gave up before it was sent is sent as a `cancel` instead, so that the transaction
    /// still ends and nothing the caller never saw acknowledged is written.
    EndTransaction(uuid::Uuid),
}

impl Effect {
    /// Whether the request changes the session's state (so its reply must be tracked).
    pub(crate) fn tracked(&self) -> bool {
        !matches!(self, Effect::None | Effect::Attach | Effect::Detach | Effect::Live(_))
    }

    /// Whether the request may change who the server session is authenticated as: the caller's
    /// identity changes and the connection's own renewals.
    pub(crate) fn changes_identity(&self) -> bool {
        self.changes_auth() || matches!(self, Effect::Renewed(_))
    }

    /// Whether the request changes the session's identity.
    pub(crate) fn changes_auth(&self) -> bool {
        matches!(
            self,
            Effect::SignedIn { .. } | Effect::Authenticated(_) | Effect::Reauthenticated(_) | Effect::Invalidated | Effect::Reset
        )
    }
}

impl SessionState {
    /// A request carrying `effect` is being sent on this session.
    pub(crate) fn begin(&mut self, effect: &Effect) {
        if effect.tracked() {
            self.effects_in_flight += 1;
        }
        if effect.changes_identity() {
            self.auth_in_flight += 1;
            if self.auth_in_flight > 1 {
                self.auth_raced = true;
            }
        }
    }

    /// The request carrying `effect` is answered (or lost): the in-flight counts go down.
    fn end(&mut self, effect: &Effect) {
        if effect.tracked() {
            self.effects_in_flight = self.effects_in_flight.saturating_sub(1);
        }
        if effect.changes_identity() {
            self.auth_in_flight = self.auth_in_flight.saturating_sub(1);
        }
    }

    /// After an identity change landed: unknown if it overlapped another.
    fn settle(&mut self, effect: &Effect) {
        if effect.changes_identity() && self.auth_raced {
            self.auth = AuthState::Unknown;
            self.credentials = None;
            if self.auth_in_flight == 0 {
                self.auth_raced = false;
            }
        }
    }

    /// Applies a reply to a request carrying `effect`. `reply` is `None` when the request failed.
    pub(crate) fn apply(&mut self, effect: &Effect, reply: Option<&Cbor>) {
        self.end(effect);
        self.apply_reply(effect, reply);
        self.settle(effect);
    }

    fn apply_reply(&mut self, effect: &Effect, reply: Option<&Cbor>) {
        if matches!(effect, Effect::EndTransaction(_)) {
            self.open_transactions = self.open_transactions.saturating_sub(1);
        }
        let Some(reply) = reply else {
            if effect.changes_auth() {
                // The server may have half-applied a failed signin or authenticate.
                self.auth = AuthState::Unknown;
            }
            return;
        };
        match effect {
            Effect::None | Effect::Attach | Effect::Detach | Effect::EndTransaction(_) | Effect::Live(_) => {}
            Effect::Begin => self.open_transactions += 1,
            Effect::Use => {
                let field = |name: &str| {
                    reply.as_map().and_then(|m| {
                        m.iter().find(|(k, _)| k.as_text() == Some(name)).and_then(|(_, v)| v.as_text())
                    })
                };
                self.namespace = field("namespace").map(str::to_owned);
                self.database = field("database").map(str::to_owned);
            }
            Effect::Let(name, value) => {
                self.variables.insert(name.clone(), value.clone());
            }
            Effect::Unset(name) => {
                self.variables.remove(name);
            }
            Effect::SignedIn { remember } => match Tokens::from_result(reply) {
                Ok(tokens) => {
                    self.authenticated(tokens);
                    // Only the credentials of the identity the session has now.
                    self.credentials = remember.clone();
                }
                Err(_) => self.auth = AuthState::Unknown,
            },
            Effect::Renewed(old) => {
                self.auth = match Tokens::from_result(reply) {
                    Ok(tokens) if self.auth == AuthState::Token(old.clone()) => AuthState::Token(tokens),
                    _ => AuthState::Unknown,
                };
            }
            Effect::Authenticated(token) => {
                self.authenticated(Tokens { access: token.clone(), refresh: None });
                self.credentials = None;
            }
            Effect::Reauthenticated(token) => {
                if self.auth.access() != Some(token) {
                    // The caller changed the identity meanwhile: what the server holds now is
                    // the last of the two it ran, which replies do not tell apart.
                    self.auth = AuthState::Unknown;
                    self.credentials = None;
                }
            }
            Effect::Invalidated => {
                self.auth = AuthState::Anonymous;
                self.credentials = None;
            }
            // `reset` also clears ns/db, variables, identity and open transactions.
            Effect::Reset => {
                *self = SessionState {
                    effects_in_flight: self.effects_in_flight,
                    auth_in_flight: self.auth_in_flight,
                    auth_raced: self.auth_raced,
                    idle: self.idle,
                    ..Default::default()
                }
            }
        }
    }

    /// The session is taken into use by a pool's checkout (see [`SessionState::idle`]). While a
    /// move holds its socket's commands (`holding`), an identity that move would give up — an
    /// idle session's, resting on an expired access token with no refresh token, and nothing
    /// to `keep` it (remembered credentials to sign in again, a live stream still read) — is
    /// given up here, at once: the caller then finds the identity unknown and prepares the
    /// session again, its commands running after the move, instead of sending them under an
    /// identity the move's commit drops (which would refuse them). A session that was not idle
    /// (a pool's own fixed-token identity, say, which it could not make anew) keeps its
    /// identity: such a session keeps the move from happening instead. If the move is then
    /// given up, the session has paid a preparation (a reset and a signin) for nothing.
    pub(crate) fn take_into_use(&mut self, holding: bool, keep: bool) {
        let was_idle = std::mem::replace(&mut self.idle, false);
        let lost = matches!(&self.auth, AuthState::Token(t) if t.refresh.is_none() && crate::connection::replay::expired(t));
        if was_idle && holding && lost && !keep && self.auth_in_flight == 0 {
            self.auth = AuthState::Unknown;
        }
    }

    /// A successful signin or authenticate: the server also selects the token's namespace and
    /// database (its `NS` and `DB` claims), so the state follows.
    fn authenticated(&mut self, tokens: Tokens) {
        if let Some(claims) = tokens.access.claims() {
            if let Some(ns) = &claims.ns {
                self.namespace = Some(ns.clone());
            }
            if let Some(db) = &claims.db {
                self.database = Some(db.clone());
            }
        }
        self.auth = AuthState::Token(tokens);
    }

    /// The outcome of an auth request is unknown (the socket died with it in flight).
    pub(crate) fn lose(&mut self, effect: &Effect) {
        self.end(effect);
        if effect.changes_auth() {
            self.auth = AuthState::Unknown;
        }
        self.settle(effect);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_auth_makes_the_identity_unknown() {
        let mut s = SessionState { effects_in_flight: 1, ..Default::default() };
        s.apply(&Effect::Authenticated(AccessToken::new("t")), None);
        assert_eq!((s.auth.clone(), s.effects_in_flight), (AuthState::Unknown, 0));
        s.effects_in_flight = 1;
        s.apply(&Effect::Invalidated, Some(&Cbor::Null));
        assert_eq!(s.auth, AuthState::Anonymous);
    }

    fn tokens(access: &str, refresh: Option<&str>) -> Tokens {
        Tokens { access: AccessToken::new(access), refresh: refresh.map(crate::auth::RefreshToken::new) }
    }

    #[test]
    fn overlapping_identity_changes_leave_the_identity_unknown_in_any_reply_order() {
        for first_reply_is_a in [true, false] {
            let mut s = SessionState::default();
            let (a, b) = (Effect::Authenticated(AccessToken::new("a")), Effect::Authenticated(AccessToken::new("b")));
            s.begin(&a);
            s.begin(&b);
            let (x, y) = if first_reply_is_a { (&a, &b) } else { (&b, &a) };
            s.apply(x, Some(&Cbor::Null));
            assert_eq!(s.auth, AuthState::Unknown, "the other one may still land");
            s.apply(y, Some(&Cbor::Null));
            assert_eq!((s.auth.clone(), s.auth_in_flight, s.effects_in_flight), (AuthState::Unknown, 0, 0));
            // Once nothing overlaps, identity changes are known again.
            s.begin(&a);
            s.apply(&a, Some(&Cbor::Null));
            assert_eq!(s.auth.access().map(AccessToken::as_str), Some("a"));
        }
    }

    #[test]
    fn a_checkout_during_a_moves_hold_gives_up_an_identity_the_move_would_drop() {
        // {"exp":1700000000}: long expired.
        let expired = Tokens { access: AccessToken::new("eyJhbGciOiJub25lIn0.eyJleHAiOjE3MDAwMDAwMDB9."), refresh: None };
        let idle = |auth: AuthState| {
            let mut s = SessionState { auth, ..Default::default() };
            s.idle = true;
            s
        };
        let mut s = idle(AuthState::Token(expired.clone()));
        s.take_into_use(false, false);
        assert!(!s.idle && matches!(s.auth, AuthState::Token(_)), "no move: judged as it is");
        let mut s = idle(AuthState::Token(expired.clone()));
        s.take_into_use(true, true);
        assert!(matches!(s.auth, AuthState::Token(_)), "the move signs it in again: kept");
        let mut s = idle(AuthState::Token(expired.clone()));
        s.take_into_use(true, false);
        assert_eq!(s.auth, AuthState::Unknown, "given up now, prepared again by the pool");
        let mut s = idle(AuthState::Token(tokens("a", None))); // no `exp`: never expires
        s.take_into_use(true, false);
        assert!(matches!(s.auth, AuthState::Token(_)));
        let mut s = idle(AuthState::Token(Tokens { refresh: Some(crate::auth::RefreshToken::new("r")), ..expired.clone() }));
        s.take_into_use(true, false);
        assert!(matches!(s.auth, AuthState::Token(_)), "refreshable (by a reconnect or a forced move, or on its socket): kept");
        let mut s = SessionState { auth: AuthState::Token(expired.clone()), ..Default::default() };
        s.take_into_use(true, false);
        assert!(matches!(s.auth, AuthState::Token(_)), "not idle (a pool's fixed-token identity): kept, the move waits");
    }

    #[test]
    fn a_renewed_expired_session_keeps_its_tokens_and_credentials() {
        let mut s = SessionState { auth: AuthState::Token(tokens("a", Some("r"))), credentials: Some(Remembered::new(Cbor::Null)), ..Default::default() };
        let again = Effect::Reauthenticated(AccessToken::new("a"));
        s.begin(&again);
        s.apply(&again, Some(&Cbor::Null));
        assert_eq!(s.auth, AuthState::Token(tokens("a", Some("r"))));
        assert!(s.credentials.is_some());
        // The caller changed the identity meanwhile: the server's order is unknown.
        s.auth = AuthState::Token(tokens("b", None));
        s.begin(&again);
        s.apply(&again, Some(&Cbor::Null));
        assert_eq!(s.auth, AuthState::Unknown);
        // A refused one makes it unknown, as any failed authenticate.
        let mut s = SessionState { auth: AuthState::Token(tokens("a", None)), ..Default::default() };
        s.begin(&again);
        s.apply(&again, None);
        assert_eq!(s.auth, AuthState::Unknown);
    }

    #[test]
    fn a_commit_or_cancel_ends_its_transaction_whatever_the_reply() {
        let mut s = SessionState::default();
        let txn = uuid::Uuid::new_v4();
        for reply in [Some(&Cbor::Null), None] {
            s.begin(&Effect::Begin);
            s.apply(&Effect::Begin, Some(&Cbor::Null));
            assert_eq!(s.open_transactions, 1);
            s.begin(&Effect::EndTransaction(txn));
            assert_eq!(s.effects_in_flight, 1);
            s.apply(&Effect::EndTransaction(txn), reply);
            assert_eq!((s.open_transactions, s.effects_in_flight), (0, 0));
        }
    }

    #[test]
    fn use_takes_the_reply_and_reset_clears_everything() {
        let mut s = SessionState::default();
        let reply = Cbor::Map(vec![
            (Cbor::Text("namespace".into()), Cbor::Text("n".into())),
            (Cbor::Text("database".into()), Cbor::Text("d".into())),
        ]);
        s.apply(&Effect::Use, Some(&reply));
        s.apply(&Effect::Let("x".into(), Cbor::Integer(1.into())), Some(&Cbor::Null));
        assert_eq!((s.namespace.as_deref(), s.database.as_deref(), s.variables.len()), (Some("n"), Some("d"), 1));
        s.apply(&Effect::Reset, Some(&Cbor::Null));
        assert!(s.namespace.is_none() && s.variables.is_empty());
    }
}
