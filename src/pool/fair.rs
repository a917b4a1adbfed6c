//! Fair sharing of the pool's sessions between tenants: a cap on the sessions one tenant holds,
//! round robin between the tenants that wait, and bounded waiting. Plain data (no I/O, no locks
//! of its own), generic over what a waiter is woken with, and unit-tested here with no server.
//!
//! A checkout first needs a *permit*: there are as many as the pool has sessions. A tenant
//! holds at most `per_tenant` of them (the pool's own identity is exempt). When none is free,
//! or the tenant holds its cap, the checkout waits in its tenant's FIFO; a freed permit goes to
//! the first tenant in the ring of tenants that wait and are under their cap, which then goes
//! to the back of the ring. So each waiting tenant gets one session per turn, whatever the
//! number of its waiters, and a tenant at its cap cannot take a session another tenant waits
//! for. Past `max_waiting` waiters in all or `max_waiting_per_tenant` in one tenant, a checkout
//! is refused at once.

use std::collections::{HashMap, VecDeque};

/// Who a checkout counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum TenantKey {
    /// The pool's own identity ([`Pool::get`](crate::Pool::get)): neither its sessions nor its
    /// waiters are capped per tenant (only `capacity` and `max_waiting` bound it).
    Pool,
    /// A forwarded token the server has accepted: its user, from the token's claims (several
    /// tokens of one user are one tenant).
    User(u64),
    /// A forwarded token accepted by the server but without a user in its claims, by its
    /// fingerprint.
    Token(u64),
    /// Every forwarded token the server has not accepted lately, together: their claims are
    /// unverified, so they can use up no user's share. One permit at a time (this is the
    /// *probation lane*): a flood of bad tokens holds one session and gets one turn per round,
    /// like a single tenant. Once the server accepts its token, a checkout's permit moves to
    /// its user ([`FairQueue::rekey`]).
    Unproven,
}

/// The bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Limits {
    /// Permits in all (the pool's sessions).
    pub(super) capacity: usize,
    /// Permits one tenant may hold.
    pub(super) per_tenant: usize,
    /// Checkouts waiting, in all.
    pub(super) max_waiting: usize,
    /// Checkouts waiting, per tenant.
    pub(super) max_waiting_per_tenant: usize,
}

/// What [`FairQueue::admit`] decided.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Admission {
    /// A permit is the caller's now.
    Granted,
    /// The caller waits; the ticket identifies it for [`FairQueue::cancel`].
    Queued(u64),
    /// Too many wait already: in all (`false`) or in this tenant (`true`), with the bound.
    Refused { per_tenant: bool, limit: usize },
    /// The queue is closed.
    Closed,
}

struct Tenant<W> {
    busy: usize,
    waiters: VecDeque<(u64, W)>,
    /// In the ring of tenants that wait and are under their cap.
    ready: bool,
}

impl<W> Default for Tenant<W> {
    fn default() -> Self {
        Tenant { busy: 0, waiters: VecDeque::new(), ready: false }
    }
}

pub(super) struct FairQueue<W> {
    limits: Limits,
    in_use: usize,
    waiting: usize,
    /// Only tenants holding a permit or waiting: at most `capacity + max_waiting` entries.
    tenants: HashMap<TenantKey, Tenant<W>>,
    /// Tenants with waiters and under their cap, each once, in turn order.
    ring: VecDeque<TenantKey>,
    next_ticket: u64,
    closed: bool,
}

impl<W> FairQueue<W> {
    pub(super) fn new(limits: Limits) -> Self {
        let limits = Limits { capacity: limits.capacity.max(1), per_tenant: limits.per_tenant.max(1), ..limits };
        FairQueue { limits, in_use: 0, waiting: 0, tenants: HashMap::new(), ring: VecDeque::new(), next_ticket: 0, closed: false }
    }

    fn cap(&self, key: TenantKey) -> usize {
        match key {
            TenantKey::Pool => self.limits.capacity,
            TenantKey::Unproven => 1,
            _ => self.limits.per_tenant,
        }
    }

    /// A permit for `key` now, or a place in its queue (`waiter` is handed back by
    /// [`release`](Self::release) when its turn comes), or a refusal.
    pub(super) fn admit(&mut self, key: TenantKey, waiter: W) -> Admission {
        if self.closed {
            return Admission::Closed;
        }
        let cap = self.cap(key);
        let free = self.in_use < self.limits.capacity;
        let (max_waiting, per_tenant) = (self.limits.max_waiting, self.limits.max_waiting_per_tenant);
        let waiting = self.waiting;
        let tenant = self.tenants.entry(key).or_default();
        // A free permit means nobody under their cap waits (release hands permits on at once).
        if free && tenant.busy < cap && tenant.waiters.is_empty() {
            tenant.busy += 1;
            self.in_use += 1;
            return Admission::Granted;
        }
        let refused = if waiting >= max_waiting {
            Some(Admission::Refused { per_tenant: false, limit: max_waiting })
        } else if key != TenantKey::Pool && tenant.waiters.len() >= per_tenant {
            Some(Admission::Refused { per_tenant: true, limit: per_tenant })
        } else {
            None
        };
        if let Some(refused) = refused {
            if tenant.busy == 0 && tenant.waiters.is_empty() {
                self.tenants.remove(&key);
            }
            return refused;
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        tenant.waiters.push_back((ticket, waiter));
        self.waiting += 1;
        if tenant.busy < cap && !tenant.ready {
            tenant.ready = true;
            self.ring.push_back(key);
        }
        Admission::Queued(ticket)
    }

    /// Gives back a permit of `key`, and hands it on: the next waiter in turn, if any, with its
    /// tenant (its permit is taken). If that waiter is gone, release the permit again for it.
    pub(super) fn release(&mut self, key: TenantKey) -> Option<(TenantKey, W)> {
        let cap = self.cap(key);
        if let Some(tenant) = self.tenants.get_mut(&key) {
            if tenant.busy > 0 {
                tenant.busy -= 1;
                self.in_use -= 1;
            }
            if tenant.busy < cap && !tenant.waiters.is_empty() && !tenant.ready {
                tenant.ready = true;
                self.ring.push_back(key);
            }
            if tenant.busy == 0 && tenant.waiters.is_empty() {
                self.tenants.remove(&key);
            }
        }
        self.hand_on()
    }

    fn hand_on(&mut self) -> Option<(TenantKey, W)> {
        if self.closed || self.in_use >= self.limits.capacity {
            return None;
        }
        while let Some(key) = self.ring.pop_front() {
            let cap = self.cap(key);
            let Some(tenant) = self.tenants.get_mut(&key) else { continue };
            tenant.ready = false;
            let Some((_, waiter)) = (if tenant.busy < cap { tenant.waiters.pop_front() } else { None }) else { continue };
            self.waiting -= 1;
            tenant.busy += 1;
            self.in_use += 1;
            if tenant.busy < cap && !tenant.waiters.is_empty() {
                tenant.ready = true;
                self.ring.push_back(key);
            }
            return Some((key, waiter));
        }
        None
    }

    /// Takes a waiter that gave up out of its queue. `false` if it is not there: its permit was
    /// handed to it already, and the caller must release it.
    pub(super) fn cancel(&mut self, key: TenantKey, ticket: u64) -> bool {
        let Some(tenant) = self.tenants.get_mut(&key) else { return false };
        let Some(at) = tenant.waiters.iter().position(|(t, _)| *t == ticket) else { return false };
        tenant.waiters.remove(at);
        self.waiting -= 1;
        if tenant.waiters.is_empty() && tenant.ready {
            // No waiter left to take its turn: out of the ring, so that it never holds two places.
            tenant.ready = false;
            self.ring.retain(|k| *k != key);
        }
        if tenant.busy == 0 && tenant.waiters.is_empty() {
            self.tenants.remove(&key);
        }
        true
    }

    /// Moves a permit of `from` to `to` (a checkout whose token the server just accepted now
    /// counts against its user), if `to` is under its cap; `None` if it is not (the caller
    /// gives the permit back and waits for a turn of `to`). Freeing a place of `from` may let
    /// one of its waiters in: that waiter is returned, as by [`release`](Self::release).
    pub(super) fn rekey(&mut self, from: TenantKey, to: TenantKey) -> Option<Option<(TenantKey, W)>> {
        if from == to {
            return Some(None);
        }
        let cap = self.cap(to);
        if self.tenants.get(&to).is_some_and(|t| t.busy >= cap) {
            return None;
        }
        self.tenants.entry(to).or_default().busy += 1;
        self.in_use += 1; // the release below gives it back
        Some(self.release(from))
    }

    /// Refuses every later admission and returns every waiter (to be woken with an error).
    pub(super) fn close(&mut self) -> Vec<W> {
        self.closed = true;
        self.ring.clear();
        self.waiting = 0;
        let mut out = Vec::new();
        for tenant in self.tenants.values_mut() {
            tenant.ready = false;
            out.extend(tenant.waiters.drain(..).map(|(_, w)| w));
        }
        self.tenants.retain(|_, t| t.busy > 0);
        out
    }

    /// Checkouts waiting for a permit.
    pub(super) fn waiting(&self) -> usize {
        self.waiting
    }

    /// Permits held.
    #[cfg(test)]
    pub(super) fn in_use(&self) -> usize {
        self.in_use
    }

    /// Permits held by `key`, and its checkouts waiting.
    pub(super) fn load(&self, key: TenantKey) -> (usize, usize) {
        self.tenants.get(&key).map_or((0, 0), |t| (t.busy, t.waiters.len()))
    }

    #[cfg(test)]
    fn tenants(&self) -> usize {
        self.check();
        self.tenants.len()
    }

    /// The invariants: `ready` ⇔ in the ring exactly once; counts add up.
    #[cfg(test)]
    fn check(&self) {
        for (key, t) in &self.tenants {
            let places = self.ring.iter().filter(|k| *k == key).count();
            assert_eq!(places, usize::from(t.ready), "{key:?} has {places} places in the ring");
        }
        assert!(self.ring.iter().all(|k| self.tenants.contains_key(k)));
        assert_eq!(self.in_use, self.tenants.values().map(|t| t.busy).sum::<usize>());
        assert_eq!(self.waiting, self.tenants.values().map(|t| t.waiters.len()).sum::<usize>());
    }
}

/// Hands a freed permit on: `next` (from [`FairQueue::release`] or [`FairQueue::rekey`]) goes
/// to its waiter through `send`, which says whether the waiter took it. A waiter that has given
/// up meanwhile gives the permit back (`release`, outside any lock of the caller's), and the
/// next in turn gets it, until one takes it or nobody waits.
pub(super) fn hand_on<W>(
    mut next: Option<(TenantKey, W)>,
    mut send: impl FnMut(TenantKey, W) -> bool,
    mut release: impl FnMut(TenantKey) -> Option<(TenantKey, W)>,
) {
    while let Some((key, waiter)) = next.take() {
        if !send(key, waiter) {
            next = release(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: TenantKey = TenantKey::User(1);
    const B: TenantKey = TenantKey::User(2);
    const C: TenantKey = TenantKey::User(3);

    fn queue(capacity: usize, per_tenant: usize) -> FairQueue<&'static str> {
        FairQueue::new(Limits { capacity, per_tenant, max_waiting: 100, max_waiting_per_tenant: 50 })
    }

    #[test]
    fn a_tenant_holds_at_most_its_cap_while_sessions_are_free() {
        let mut q = queue(4, 2);
        assert_eq!(q.admit(A, "a1"), Admission::Granted);
        assert_eq!(q.admit(A, "a2"), Admission::Granted);
        assert!(matches!(q.admit(A, "a3"), Admission::Queued(_)));
        assert_eq!(q.admit(B, "b1"), Admission::Granted, "the cap leaves room for others");
        assert_eq!((q.in_use(), q.waiting()), (3, 1));
        // A's third checkout waits for one of A's own, not for B's.
        assert_eq!(q.release(B), None);
        assert_eq!(q.release(A), Some((A, "a3")));
        assert_eq!(q.load(A), (2, 0));
    }

    #[test]
    fn the_pool_identity_is_not_capped() {
        let mut q = FairQueue::new(Limits { capacity: 3, per_tenant: 1, max_waiting: 100, max_waiting_per_tenant: 1 });
        for _ in 0..3 {
            assert_eq!(q.admit(TenantKey::Pool, "p"), Admission::Granted);
        }
        for _ in 0..5 {
            assert!(matches!(q.admit(TenantKey::Pool, "p"), Admission::Queued(_)));
        }
    }

    #[test]
    fn freed_permits_go_round_robin_between_waiting_tenants_not_to_the_one_with_most_waiters() {
        let mut q = queue(2, 2);
        assert_eq!(q.admit(A, "a0"), Admission::Granted);
        assert_eq!(q.admit(A, "a0"), Admission::Granted);
        for w in ["a1", "a2", "a3", "a4"] {
            assert!(matches!(q.admit(A, w), Admission::Queued(_)));
        }
        assert!(matches!(q.admit(B, "b1"), Admission::Queued(_)));
        assert!(matches!(q.admit(C, "c1"), Admission::Queued(_)));
        assert!(matches!(q.admit(B, "b2"), Admission::Queued(_)));
        // A holds both sessions and waits at its cap, so B and C are first in the ring; A joins
        // it behind them when it gives one back. Then each in turn, one checkout per turn.
        let mut order = Vec::new();
        let mut holder = vec![A, A];
        for _ in 0..7 {
            let from = holder.remove(0);
            let Some((key, w)) = q.release(from) else { break };
            order.push(w);
            holder.push(key);
        }
        assert_eq!(order, ["b1", "c1", "a1", "b2", "a2", "a3", "a4"]);
        assert_eq!(q.waiting(), 0);
    }

    #[test]
    fn a_tenant_at_its_cap_is_skipped_until_it_gives_one_back() {
        let mut q = queue(3, 1);
        assert_eq!(q.admit(A, "a"), Admission::Granted);
        assert_eq!(q.admit(B, "b"), Admission::Granted);
        assert_eq!(q.admit(C, "c"), Admission::Granted);
        assert!(matches!(q.admit(A, "a2"), Admission::Queued(_)));
        assert!(matches!(q.admit(B, "b2"), Admission::Queued(_)));
        // C's session goes back: A and B are at their cap, so it stays free.
        assert_eq!(q.release(C), None);
        assert_eq!(q.in_use(), 2);
        // A new tenant takes it at once; A's waiter is served by A's own return.
        assert_eq!(q.admit(C, "c2"), Admission::Granted);
        assert_eq!(q.release(A), Some((A, "a2")));
        assert_eq!(q.release(B), Some((B, "b2")));
    }

    #[test]
    fn waiting_is_bounded_in_all_and_per_tenant() {
        let mut q = FairQueue::new(Limits { capacity: 1, per_tenant: 1, max_waiting: 3, max_waiting_per_tenant: 2 });
        assert_eq!(q.admit(A, "a"), Admission::Granted);
        assert!(matches!(q.admit(A, "a1"), Admission::Queued(_)));
        assert!(matches!(q.admit(A, "a2"), Admission::Queued(_)));
        assert_eq!(q.admit(A, "a3"), Admission::Refused { per_tenant: true, limit: 2 });
        assert!(matches!(q.admit(B, "b1"), Admission::Queued(_)));
        assert_eq!(q.admit(C, "c1"), Admission::Refused { per_tenant: false, limit: 3 });
        assert_eq!(q.load(C), (0, 0), "a refused tenant leaves nothing behind");
        assert_eq!(q.tenants(), 2);
    }

    #[test]
    fn a_cancelled_waiter_leaves_its_place_and_a_late_cancel_says_so() {
        let mut q = queue(1, 1);
        assert_eq!(q.admit(A, "a"), Admission::Granted);
        let Admission::Queued(b) = q.admit(B, "b") else { panic!() };
        let Admission::Queued(c) = q.admit(C, "c") else { panic!() };
        assert!(q.cancel(B, b));
        assert_eq!(q.waiting(), 1);
        assert_eq!(q.release(A), Some((C, "c")));
        assert!(!q.cancel(C, c), "already granted: the caller releases the permit");
        assert_eq!(q.release(C), None);
        assert_eq!((q.in_use(), q.waiting(), q.tenants()), (0, 0, 0));
    }

    #[test]
    fn closing_hands_back_every_waiter_and_refuses_later_ones() {
        let mut q = queue(1, 1);
        assert_eq!(q.admit(A, "a"), Admission::Granted);
        assert!(matches!(q.admit(B, "b"), Admission::Queued(_)));
        assert_eq!(q.close(), vec!["b"]);
        assert_eq!(q.admit(C, "c"), Admission::Closed);
        assert_eq!(q.release(A), None);
        assert_eq!(q.in_use(), 0);
        assert_eq!(q.admit(C, "c"), Admission::Closed, "not even with a permit free");
    }

    #[test]
    fn a_tenant_that_leaves_and_comes_back_gets_one_place_in_the_ring() {
        let mut q = queue(2, 2);
        assert_eq!(q.admit(A, "a0"), Admission::Granted);
        assert_eq!(q.admit(C, "c0"), Admission::Granted);
        assert!(matches!(q.admit(B, "b1"), Admission::Queued(_)));
        let Admission::Queued(t) = q.admit(A, "gave up") else { panic!() };
        assert!(q.cancel(A, t));
        q.check();
        assert_eq!(q.release(A), Some((B, "b1")));
        for w in ["a1", "a2", "a3"] {
            assert!(matches!(q.admit(A, w), Admission::Queued(_)));
        }
        assert!(matches!(q.admit(B, "b2"), Admission::Queued(_)));
        q.check();
        assert_eq!(q.release(C), Some((A, "a1")));
        assert_eq!(q.release(B), Some((B, "b2")), "B's turn, not a second turn of A's in a row");
        q.check();
    }

    #[test]
    fn unproven_tokens_go_one_at_a_time_and_a_permit_moves_to_the_user_once_accepted() {
        let mut q = queue(4, 2);
        let u = TenantKey::Unproven;
        assert_eq!(q.admit(u, "first login"), Admission::Granted);
        assert!(matches!(q.admit(u, "second login"), Admission::Queued(_)));
        assert!(matches!(q.admit(u, "forged"), Admission::Queued(_)));
        // The first is accepted: its permit moves to its user, and the lane lets the next in.
        assert_eq!(q.rekey(u, A), Some(Some((u, "second login"))));
        assert_eq!((q.load(A), q.load(u)), ((1, 0), (1, 1)));
        // A user at its cap takes no permit over from the lane.
        assert_eq!(q.admit(A, "a"), Admission::Granted);
        assert_eq!(q.rekey(u, A), None);
        assert_eq!(q.load(A), (2, 0));
        assert_eq!(q.release(u), Some((u, "forged")));
        assert_eq!(q.release(u), None);
        assert_eq!(q.tenants(), 1);
    }

    #[test]
    fn a_permit_whose_waiter_gave_up_goes_on_to_the_next_in_turn() {
        let mut q: FairQueue<(&str, bool)> = FairQueue::new(Limits { capacity: 1, per_tenant: 1, max_waiting: 10, max_waiting_per_tenant: 10 });
        assert_eq!(q.admit(A, ("a", true)), Admission::Granted);
        // B and C gave up after their turn was decided but before they took it; D waits.
        for (key, name, alive) in [(B, "b", false), (C, "c", false), (TenantKey::User(4), "d", true)] {
            assert!(matches!(q.admit(key, (name, alive)), Admission::Queued(_)));
        }
        let mut took = Vec::new();
        let first = q.release(A);
        let q = std::cell::RefCell::new(q);
        hand_on(first, |key, (name, alive)| alive && { took.push((key, name)); true }, |key| q.borrow_mut().release(key));
        assert_eq!(took, [(TenantKey::User(4), "d")]);
        let q = q.into_inner();
        assert_eq!((q.load(TenantKey::User(4)), q.waiting()), ((1, 0), 0));
        assert_eq!(q.tenants(), 1, "the ones who gave up hold nothing");
    }

    #[test]
    fn memory_follows_the_tenants_holding_or_waiting_not_every_tenant_ever_seen() {
        let mut q = queue(8, 2);
        for i in 0..100_000u64 {
            assert_eq!(q.admit(TenantKey::Token(i), "t"), Admission::Granted);
            assert_eq!(q.release(TenantKey::Token(i)), None);
        }
        assert_eq!(q.tenants(), 0);
    }
}
