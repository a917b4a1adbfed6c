//! What the pool shows of itself: [`PoolStatus`] (sizes and counters) and [`TenantLoad`] (the
//! busiest tenants, never their tokens).

use std::fmt;

use super::fair::TenantKey;
use crate::auth::AccessToken;

/// A snapshot of the pool's state and counters.
///
/// ```no_run
/// # fn demo(pool: &surreal_pool::Pool) {
/// let s = pool.status();
/// println!("{}/{} sessions idle, {} waiting, {} affinity hits of {} checkouts",
///     s.available, s.size, s.waiting, s.affinity_hits, s.checkouts);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStatus {
    /// Maximum number of sessions.
    pub max_size: usize,
    /// Sessions that exist now.
    pub size: usize,
    /// Idle sessions.
    pub available: usize,
    /// Checkouts waiting for their turn.
    pub waiting: usize,
    /// Checkouts refused at once because too many were waiting
    /// ([`Error::TooManyWaiting`](crate::Error::TooManyWaiting)).
    pub rejected_checkouts: u64,
    /// Checkouts that ran past the checkout timeout.
    pub timed_out_checkouts: u64,
    /// Checkouts asked for so far (served, refused, timed out or failed).
    pub checkouts: u64,
    /// `authenticate`/`signin`/`invalidate` round trips made to prepare checkouts.
    pub auth_round_trips: u64,
    /// Checkouts served by a session already in the wanted identity (no round trip).
    pub affinity_hits: u64,
    /// Sessions reset because their state was not what the pool left.
    pub resets: u64,
    /// Sessions detached and replaced by fresh ones instead of being reset, because they came
    /// back with a state change still in flight (its outcome could land after a reset), or
    /// their connection could not re-attach them after a reconnect, or (over several nodes)
    /// their socket held more than its share of sessions while another lacked (see
    /// [`HealthPolicy::rebalance`](crate::HealthPolicy::rebalance)).
    pub replaced: u64,
    /// Tokens refused before any round trip (malformed, or past their `exp`).
    pub refused_tokens: u64,
    /// Server sessions that expired while their token was still valid and were authenticated
    /// again with it (one round trip each, on top of `auth_round_trips`).
    pub sessions_renewed: u64,
    /// The pool's connections (sockets).
    pub connections: usize,
    /// Connections connected with every session replayed (the others are reconnecting).
    pub connections_up: usize,
    /// Connections that failed the reconnect policy's `max_attempts` and now fail commands at
    /// once (they keep retrying in the background).
    pub connections_down: usize,
}

/// One of the busiest tenants ([`Pool::busiest_tenants`](crate::Pool::busiest_tenants)).
///
/// ```no_run
/// # fn demo(pool: &surreal_pool::Pool) {
/// for t in pool.busiest_tenants() {
///     println!("{}: {} checkouts, {} sessions held, {} waiting", t.tenant, t.checkouts, t.busy, t.waiting);
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TenantLoad {
    /// Who: `pool identity`; a user the server accepted, by the record id (or user name) and
    /// access method of its token's claims, e.g. `user:tobie (app/main, account)`; an accepted
    /// token whose claims name no user, `token #1a2b3c4d` (a hash, not reversible); or
    /// `tokens not yet accepted`, all such checkouts together. Never a token.
    pub tenant: String,
    /// Checkouts it asked for since the pool started (refused ones too): at least the true
    /// count, and over it by at most `checkouts_error` (the count is shared with tenants no
    /// longer counted).
    pub checkouts: u64,
    /// How far `checkouts` may be over the true count.
    pub checkouts_error: u64,
    /// Sessions it holds now.
    pub busy: usize,
    /// Its checkouts waiting now.
    pub waiting: usize,
}

/// How a tenant is shown; made when it enters the busiest list, from a token it checked out
/// with (which is not kept).
#[derive(Clone, Debug)]
pub(super) enum Label {
    Pool,
    Unproven,
    User { id: String, ns: Option<String>, db: Option<String>, ac: Option<String> },
    Token(u32),
}

impl Label {
    pub(super) fn of(key: TenantKey, token: Option<&AccessToken>) -> Label {
        match (key, token.and_then(AccessToken::claims)) {
            (TenantKey::Pool, _) => Label::Pool,
            (TenantKey::Unproven, _) => Label::Unproven,
            (TenantKey::User(_), Some(c)) if c.id.is_some() => Label::User {
                id: c.id.clone().unwrap_or_default(),
                ns: c.ns.clone(),
                db: c.db.clone(),
                ac: c.ac.clone(),
            },
            (TenantKey::User(k) | TenantKey::Token(k), _) => Label::Token((k >> 32) as u32),
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Pool => f.write_str("pool identity"),
            Label::Unproven => f.write_str("tokens not yet accepted"),
            Label::User { id, ns, db, ac } => {
                let part = |p: &Option<String>| p.clone().unwrap_or_else(|| "-".into());
                write!(f, "{id} ({}/{}, {})", part(ns), part(db), part(ac))
            }
            Label::Token(hash) => write!(f, "token #{hash:08x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_user_or_a_hash_never_the_token() {
        let b64 = |s: &str| {
            const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in s.as_bytes().chunks(3) {
                let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
                for i in 0..=chunk.len() {
                    out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        };
        let token = AccessToken::new(format!(
            "{}.{}.c2lnbmF0dXJl",
            b64(r#"{"alg":"HS512"}"#),
            b64(r#"{"NS":"app","DB":"main","AC":"account","ID":"user:tobie"}"#)
        ));
        let user = Label::of(TenantKey::User(1), Some(&token)).to_string();
        assert_eq!(user, "user:tobie (app/main, account)");
        let unproven = Label::of(TenantKey::Token(0xdead_beef_0000_0000), Some(&token)).to_string();
        assert_eq!(unproven, "token #deadbeef");
        assert_eq!(Label::of(TenantKey::Unproven, Some(&token)).to_string(), "tokens not yet accepted");
        assert_eq!(Label::of(TenantKey::Pool, None).to_string(), "pool identity");
        for shown in [user, unproven] {
            assert!(!shown.contains(token.as_str()) && !shown.contains("c2lnbmF0dXJl"));
        }
    }
}
