//! The session table: which pooled server session a checkout gets. Plain data (no I/O, no
//! locks of its own), generic over the session `S` and what a hand-over carries `W`, so that
//! affinity, LRU, dirty tracking, hand-over and per-connection room are unit-tested here with
//! no server.

use std::collections::{HashMap, HashSet, VecDeque};

use tokio::sync::oneshot;

use super::placement::Load;
use crate::auth::AccessToken;
use crate::error::Error;

/// A namespace and database selection.
pub(super) type NsDb = (Option<String>, Option<String>);

/// What a pooled session is clean for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Tag {
    /// The pool's default identity.
    Default,
    /// Authenticated with this forwarded token.
    Tenant(AccessToken),
    /// Must be reset before use.
    Dirty,
}

impl Tag {
    /// The forwarded token, for a tenant tag.
    pub(super) fn forwarded(&self) -> Option<AccessToken> {
        match self {
            Tag::Tenant(t) => Some(t.clone()),
            _ => None,
        }
    }

    /// Whether this is a tenant tag whose token's `exp` has passed.
    pub(super) fn token_expired(&self) -> bool {
        match self {
            Tag::Tenant(t) => t.expired(),
            _ => false,
        }
    }
}

/// One pooled session. While checked out its `session` is held by the checkout.
pub(super) struct Entry<S> {
    pub(super) session: Option<S>,
    pub(super) connection: usize,
    pub(super) tag: Tag,
    /// The namespace and database the session had when it was last made clean.
    pub(super) clean_ns_db: NsDb,
    last_used: u64,
    busy: bool,
}

/// What [`Table::take`] hands a checkout.
pub(super) struct Taken<S> {
    pub(super) session: S,
    pub(super) tag: Tag,
    pub(super) clean_ns_db: NsDb,
    pub(super) hit: bool,
}

/// Tokens the server accepted recently, by fingerprint, in bounded memory: two generations
/// of at most `cap` each; when the current one fills up it becomes the previous one.
pub(super) struct Accepted {
    current: HashSet<u64>,
    previous: HashSet<u64>,
    cap: usize,
}

impl Accepted {
    pub(super) fn new(cap: usize) -> Self {
        Accepted { current: HashSet::new(), previous: HashSet::new(), cap: cap.max(1) }
    }

    pub(super) fn remember(&mut self, token: &AccessToken) {
        let f = token.fingerprint();
        if self.current.contains(&f) {
            return;
        }
        if self.current.len() >= self.cap {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(f);
    }

    pub(super) fn knows(&self, token: &AccessToken) -> bool {
        let f = token.fingerprint();
        self.current.contains(&f) || self.previous.contains(&f)
    }
}

/// How many accepted tokens a pool remembers (per generation; two generations, 8 bytes each).
pub(super) const REMEMBERED_TOKENS: usize = 16_384;

pub(super) struct Table<S, W> {
    entries: HashMap<u64, Entry<S>>,
    /// Tokens the server accepted recently: a checkout for one of them is proven.
    pub(super) accepted: Accepted,
    /// Idle clean entries by tag.
    idle: HashMap<Tag, Vec<u64>>,
    /// Checked-out sessions by the tag they were checked out for.
    busy_for: HashMap<Tag, usize>,
    /// Checkouts waiting for a busy session of their tag.
    waiters: HashMap<Tag, VecDeque<oneshot::Sender<W>>>,
    /// Sessions on (or being created on) each connection.
    per_connection: Vec<usize>,
    next_slot: u64,
    tick: u64,
    /// Waits registered since `waiters` was last swept of the ones that gave up.
    registered: usize,
    /// Sweep again after this many registrations (twice the waiters then alive, at least 64),
    /// so that sweeping costs O(1) per wait, amortized, and the map stays within a constant
    /// factor of the checkouts actually waiting.
    sweep_after: usize,
}

impl<S, W> Table<S, W> {
    pub(super) fn new(connections: usize) -> Self {
        Table {
            entries: HashMap::new(),
            accepted: Accepted::new(REMEMBERED_TOKENS),
            idle: HashMap::new(),
            busy_for: HashMap::new(),
            waiters: HashMap::new(),
            per_connection: vec![0; connections],
            next_slot: 0,
            tick: 0,
            registered: 0,
            sweep_after: 0,
        }
    }

    pub(super) fn entry(&self, slot: u64) -> Option<&Entry<S>> {
        self.entries.get(&slot)
    }

    /// Reserves room for one session, under `cap`, on the connection placement picks from
    /// each one's `load` (see `placement::choose`: serving, not slow, fewest requests in flight,
    /// fewest sessions). Released with [`release`](Self::release) unless
    /// [`insert`](Self::insert)ed.
    pub(super) fn reserve(&mut self, load: impl Fn(usize) -> Load, cap: usize) -> Result<usize, Error> {
        let index = super::placement::choose(self.per_connection.iter().enumerate().map(|(i, n)| (i, *n, load(i))), cap)?;
        self.per_connection[index] += 1;
        Ok(index)
    }

    /// Frees one session's room on a connection.
    pub(super) fn release(&mut self, connection: usize) {
        if let Some(n) = self.per_connection.get_mut(connection) {
            *n = n.saturating_sub(1);
        }
    }

    /// Adds a session created on `connection` (whose room was reserved), checked out by its
    /// creator in the default identity; returns its slot.
    pub(super) fn insert(&mut self, session: S, connection: usize, clean_ns_db: NsDb) -> u64 {
        self.next_slot += 1;
        let slot = self.next_slot;
        let entry = Entry { session: Some(session), connection, tag: Tag::Default, clean_ns_db, last_used: 0, busy: true };
        self.entries.insert(slot, entry);
        slot
    }

    /// Removes a slot (deadpool dropped it) and frees its room.
    pub(super) fn remove(&mut self, slot: u64) {
        self.unindex(slot);
        if let Some(entry) = self.entries.remove(&slot) {
            self.release(entry.connection);
        }
    }

    /// A freshly created slot's session, never used, becomes idle.
    pub(super) fn idle_new(&mut self, slot: u64) {
        if let Some(entry) = self.entries.get_mut(&slot) {
            entry.busy = false;
        }
        self.index(slot);
    }

    /// A checked-out session comes back to its slot with the tag it is now clean for.
    pub(super) fn put_back(&mut self, slot: u64, session: Option<S>, tag: Tag, clean_ns_db: NsDb) {
        if let Some(entry) = self.entries.get_mut(&slot) {
            entry.session = session;
            entry.tag = tag;
            entry.clean_ns_db = clean_ns_db;
            entry.busy = false;
        }
        self.index(slot);
    }

    pub(super) fn busy_add(&mut self, tag: &Tag, delta: isize) {
        let n = self.busy_for.entry(tag.clone()).or_default();
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            self.busy_for.remove(tag);
        }
    }

    /// Sessions on each connection: `[idle, busy, dirty]` (idle = clean and not checked out;
    /// dirty = not checked out and to be reset).
    pub(super) fn sessions_by_connection(&self) -> Vec<[usize; 3]> {
        let mut out = vec![[0; 3]; self.per_connection.len()];
        for e in self.entries.values() {
            let state = match (e.busy, &e.tag) {
                (true, _) => 1,
                (false, Tag::Dirty) => 2,
                (false, _) => 0,
            };
            if let Some(c) = out.get_mut(e.connection) {
                c[state] += 1;
            }
        }
        out
    }

    /// Whether no clean session is idle.
    pub(super) fn none_idle(&self) -> bool {
        self.idle.is_empty()
    }

    /// Registers a wait for a session of `tag` if none is idle but one is checked out.
    pub(super) fn wait_for(&mut self, tag: &Tag) -> Option<oneshot::Receiver<W>> {
        if self.idle.contains_key(tag) || !self.busy_for.contains_key(tag) {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.registered += 1;
        if self.registered >= self.sweep_after {
            self.waiters.retain(|_, q| {
                q.retain(|w| !w.is_closed());
                !q.is_empty()
            });
            let alive: usize = self.waiters.values().map(|q| q.len()).sum();
            self.registered = 0;
            self.sweep_after = (2 * alive).max(64);
        }
        self.waiters.entry(tag.clone()).or_default().push_back(tx);
        Some(rx)
    }

    /// Hands `item` to the longest-waiting checkout of `tag` still waiting; gives it back if
    /// there is none.
    pub(super) fn hand_over(&mut self, tag: &Tag, item: W) -> Option<W> {
        let mut item = Some(item);
        while let Some(h) = item.take() {
            let Some(waiter) = self.waiters.get_mut(tag).and_then(|q| q.pop_front()) else {
                item = Some(h);
                break;
            };
            if let Err(back) = waiter.send(h) {
                item = Some(back); // that waiter gave up: try the next
            }
        }
        if self.waiters.get(tag).is_some_and(|q| q.is_empty()) {
            self.waiters.remove(tag); // no map entry outlives its waiters
        }
        item
    }

    /// The table's own copy of a tenant tag, if it knows the token: its hash and claims are
    /// already computed (a forwarded token arrives as a new string with every request).
    pub(super) fn intern(&self, want: Tag) -> Tag {
        if matches!(want, Tag::Tenant(_)) {
            let known = self.idle.get_key_value(&want).map(|(k, _)| k).or_else(|| self.busy_for.get_key_value(&want).map(|(k, _)| k));
            if let Some(known) = known {
                return known.clone();
            }
        }
        want
    }

    fn unindex(&mut self, slot: u64) {
        if let Some(tag) = self.entries.get(&slot).map(|e| e.tag.clone()) {
            if let Some(list) = self.idle.get_mut(&tag) {
                list.retain(|s| *s != slot);
                if list.is_empty() {
                    self.idle.remove(&tag);
                }
            }
        }
    }

    fn index(&mut self, slot: u64) {
        if let Some(e) = self.entries.get(&slot) {
            if !e.busy && e.tag != Tag::Dirty {
                self.idle.entry(e.tag.clone()).or_default().push(slot);
            }
        }
    }

    /// Whether `want` is an identity the server has accepted: the default one, a token an idle
    /// session is clean for, or one accepted recently. Any other token may be refused — a
    /// checkout of it in progress proves nothing (it may be a copy of a forged token).
    pub(super) fn proven(&self, want: &Tag) -> bool {
        match want {
            Tag::Tenant(token) => self.idle.contains_key(want) || self.accepted.knows(token),
            _ => true,
        }
    }

    /// The idle session a checkout holding `slot` re-purposes, when none is in its identity.
    ///
    /// For a proven identity: the least recently used clean session (ours included; ours if
    /// dirty only as a last resort, a reset costs a round trip more). For a token that may be
    /// refused: a session in the default identity first, then one to be cleaned anyway, and a
    /// tenant's session only when no other is idle, so that a bad token (or a flood of them)
    /// never costs another tenant its session and a re-authenticate.
    fn victim(&self, slot: u64, proven: bool) -> Option<u64> {
        let idle = self.entries.iter().filter(|(id, e)| **id == slot || (!e.busy && e.session.is_some()));
        pick_victim(idle.map(|(id, e)| (*id, &e.tag, e.last_used)), slot, proven)
    }

    /// Exchanges the sessions of a busy slot (ours) and an idle one.
    fn swap(&mut self, ours: u64, idle: u64) {
        if ours == idle {
            return;
        }
        self.unindex(idle);
        let Some(mut a) = self.entries.remove(&ours) else { return };
        if let Some(b) = self.entries.get_mut(&idle) {
            std::mem::swap(&mut a.session, &mut b.session);
            std::mem::swap(&mut a.connection, &mut b.connection);
            std::mem::swap(&mut a.tag, &mut b.tag);
            std::mem::swap(&mut a.clean_ns_db, &mut b.clean_ns_db);
            std::mem::swap(&mut a.last_used, &mut b.last_used);
        }
        self.entries.insert(ours, a);
        self.index(idle);
    }

    /// Takes the session for a checkout that holds `slot` and wants `want`. Returns the session,
    /// its current tag and clean ns/db, and whether it is an affinity hit.
    pub(super) fn take(&mut self, slot: u64, want: &Tag) -> Option<Taken<S>> {
        let proven = self.proven(want);
        self.unindex(slot);
        self.entries.get_mut(&slot)?.busy = true;
        let mut hit = self.entries[&slot].tag == *want;
        if !hit {
            if let Some(other) = self.idle.get(want).and_then(|l| l.last().copied()) {
                self.swap(slot, other);
                hit = true;
            } else if let Some(victim) = self.victim(slot, proven) {
                self.swap(slot, victim);
            }
        }
        self.tick += 1;
        let tick = self.tick;
        if let (true, Tag::Tenant(token)) = (hit, want) {
            self.accepted.remember(token); // a hot token stays remembered
        }
        let e = self.entries.get_mut(&slot)?;
        e.last_used = tick;
        Some(Taken { session: e.session.take()?, tag: e.tag.clone(), clean_ns_db: e.clean_ns_db.clone(), hit })
    }
}

/// [`Table::victim`]'s choice among `(slot, tag, last used)` of the idle sessions and `slot`.
fn pick_victim<'a>(candidates: impl Iterator<Item = (u64, &'a Tag, u64)>, slot: u64, proven: bool) -> Option<u64> {
    candidates
        .filter(|(id, tag, _)| *id == slot || !proven || **tag != Tag::Dirty)
        .min_by_key(|(id, tag, last_used)| {
            let rank = match (tag, proven) {
                (Tag::Dirty, true) => u8::from(*id == slot),
                (_, true) => 0,
                (Tag::Default, false) => 0,
                (Tag::Dirty, false) => 1,
                (Tag::Tenant(_), false) => 2,
            };
            (rank, *last_used)
        })
        .map(|(id, ..)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sessions are plain names here; hand-overs carry them too.
    type T = Table<&'static str, &'static str>;

    fn tenant(t: &str) -> Tag {
        Tag::Tenant(AccessToken::new(t))
    }

    /// A table of `sessions` on one connection, all idle in the default identity.
    fn table(sessions: &[&'static str]) -> (T, Vec<u64>) {
        let mut t = T::new(1);
        let slots = sessions
            .iter()
            .map(|s| {
                t.reserve(|_| Load::idle(), 256).unwrap();
                let slot = t.insert(*s, 0, (None, None));
                t.idle_new(slot);
                slot
            })
            .collect();
        (t, slots)
    }

    /// Checks `slot` out for `want`, then back in as clean for `want`.
    fn use_once(t: &mut T, slot: u64, want: &Tag) -> (&'static str, bool) {
        let taken = t.take(slot, want).unwrap();
        t.put_back(slot, Some(taken.session), want.clone(), (None, None));
        (taken.session, taken.hit)
    }

    #[test]
    fn a_returning_tenant_gets_its_own_session_whichever_slot_it_was_given() {
        let (mut t, slots) = table(&["s1", "s2", "s3"]);
        let a = tenant("a.a.a");
        let (first, hit) = use_once(&mut t, slots[0], &a);
        assert!(!hit);
        // deadpool hands out another slot: the table swaps a's session into it.
        for &slot in &slots[1..] {
            assert_eq!(use_once(&mut t, slot, &a), (first, true));
        }
    }

    #[test]
    fn a_new_proven_identity_takes_the_least_recently_used_clean_session() {
        let (mut t, slots) = table(&["s1", "s2", "s3"]);
        let (a, b, c) = (tenant("a.a.a"), tenant("b.b.b"), tenant("c.c.c"));
        use_once(&mut t, slots[0], &a);
        use_once(&mut t, slots[1], &b);
        use_once(&mut t, slots[2], &c);
        use_once(&mut t, slots[0], &a); // a is now the most recent; b the least
        // `Default` is proven: it evicts the least recently used, b's (whichever session that is:
        // the first three took any of the equally unused default sessions).
        let taken = t.take(slots[2], &Tag::Default).unwrap();
        assert_eq!((taken.tag, taken.hit), (b.clone(), false));
    }

    #[test]
    fn dirty_sessions_are_never_idle_for_an_identity() {
        let (mut t, slots) = table(&["s1", "s2"]);
        let taken = t.take(slots[0], &Tag::Default).unwrap();
        t.put_back(slots[0], Some(taken.session), Tag::Dirty, (None, None));
        // Given the other slot, a proven identity never takes the dirty session.
        let other = t.take(slots[1], &Tag::Default).unwrap();
        assert_eq!((other.session, other.hit), ("s2", true));
        t.put_back(slots[1], Some(other.session), tenant("a.a.a"), (None, None));
        // Given the dirty slot itself, a proven identity prefers a clean idle session...
        let own = t.take(slots[0], &Tag::Default).unwrap();
        assert_eq!((own.session, own.tag.clone()), ("s2", tenant("a.a.a")));
        t.put_back(slots[0], Some(own.session), tenant("a.a.a"), (None, None));
        // ...while a token that may be refused takes the dirty one over a tenant's.
        let (mut t, slots) = table(&["s1", "s2"]);
        let taken = t.take(slots[0], &Tag::Default).unwrap();
        t.put_back(slots[0], Some(taken.session), Tag::Dirty, (None, None));
        let taken = t.take(slots[1], &tenant("a.a.a")).unwrap();
        t.put_back(slots[1], Some(taken.session), tenant("a.a.a"), (None, None));
        let unknown = t.take(slots[1], &tenant("b.b.b")).unwrap();
        assert_eq!((unknown.session, unknown.tag), ("s1", Tag::Dirty));
    }

    #[test]
    fn a_token_that_may_be_refused_never_evicts_a_tenant_while_another_session_is_idle() {
        let (a, b) = (tenant("a.a.a"), tenant("b.b.b"));
        let pick = |c: &[(u64, &Tag, u64)], slot, proven| pick_victim(c.iter().copied(), slot, proven);
        // slot 1 (deadpool's pick) holds tenant a, least recently used; 2 is b; 3 default; 4 dirty.
        let all = [(1, &a, 1), (2, &b, 2), (3, &Tag::Default, 9), (4, &Tag::Dirty, 0)];
        assert_eq!(pick(&all, 1, false), Some(3), "unproven: the default session first");
        let no_default = [(1, &a, 1), (2, &b, 2), (4, &Tag::Dirty, 0)];
        assert_eq!(pick(&no_default, 1, false), Some(4), "then one to be cleaned anyway");
        assert_eq!(pick(&all[..2], 2, false), Some(1), "a tenant's only when nothing else is idle (LRU)");
        // A proven identity keeps plain LRU over clean sessions, and never takes another's dirty one.
        assert_eq!(pick(&all, 2, true), Some(1));
        assert_eq!(pick(&[(4, &Tag::Dirty, 0), (3, &Tag::Default, 9)], 4, true), Some(3), "its own dirty slot last");
        assert_eq!(pick(&[(4, &Tag::Dirty, 0)], 4, true), Some(4));
    }

    #[test]
    fn only_identities_a_session_holds_are_proven() {
        let (mut t, slots) = table(&["s1"]);
        let known = tenant("k.k.k");
        assert!(t.proven(&Tag::Default));
        assert!(!t.proven(&known));
        let taken = t.take(slots[0], &known).unwrap();
        t.busy_add(&known, 1);
        assert!(!t.proven(&known), "a checkout in progress proves nothing");
        t.busy_add(&known, -1);
        t.put_back(slots[0], Some(taken.session), known.clone(), (None, None));
        assert!(t.proven(&known), "idle as it: the server accepted it");
    }

    #[test]
    fn accepted_tokens_are_remembered_in_bounded_memory() {
        let mut accepted = Accepted::new(2);
        let t = |s: &str| AccessToken::new(s);
        accepted.remember(&t("a.a.a"));
        accepted.remember(&t("b.b.b"));
        assert!(accepted.knows(&t("a.a.a")) && accepted.knows(&t("b.b.b")) && !accepted.knows(&t("c.c.c")));
        accepted.remember(&t("c.c.c")); // a and b become the previous generation
        assert!(accepted.knows(&t("a.a.a")) && accepted.knows(&t("c.c.c")));
        accepted.remember(&t("d.d.d"));
        accepted.remember(&t("e.e.e")); // c and d now previous: a and b forgotten
        assert!(!accepted.knows(&t("a.a.a")) && accepted.knows(&t("d.d.d")) && accepted.knows(&t("e.e.e")));
        assert!(accepted.current.len() + accepted.previous.len() <= 4);
        // A table proves a token the server accepted even when no session holds it now.
        let (mut table, _) = table(&[]);
        assert!(!table.proven(&tenant("z.z.z")));
        table.accepted.remember(&t("z.z.z"));
        assert!(table.proven(&tenant("z.z.z")));
    }

    #[test]
    fn a_returned_session_goes_to_the_longest_waiter_still_waiting() {
        let (mut t, _) = table(&[]);
        let a = tenant("a.a.a");
        assert!(t.wait_for(&a).is_none(), "nothing busy as a: no wait");
        t.busy_add(&a, 1);
        let gone = t.wait_for(&a).unwrap();
        let mut first = t.wait_for(&a).unwrap();
        let mut second = t.wait_for(&a).unwrap();
        drop(gone);
        assert_eq!(t.hand_over(&a, "s1"), None, "handed over");
        assert_eq!(first.try_recv().unwrap(), "s1", "the first still waiting");
        assert_eq!(t.hand_over(&a, "s2"), None);
        assert_eq!(second.try_recv().unwrap(), "s2");
        assert_eq!(t.hand_over(&a, "s3"), Some("s3"), "nobody left: back to the pool");
        assert!(t.waiters.is_empty(), "no map entry outlives its waiters");
        assert_eq!(t.hand_over(&Tag::Default, "s4"), Some("s4"));
    }

    #[test]
    fn sessions_are_counted_per_connection_as_idle_busy_or_dirty() {
        let (mut t, slots) = table(&["a", "b", "c"]);
        assert_eq!(t.sessions_by_connection().iter().map(|c| c[0]).sum::<usize>(), 3);
        let taken = t.take(slots[0], &tenant("a")).unwrap();
        let busy: usize = t.sessions_by_connection().iter().map(|c| c[1]).sum();
        assert_eq!(busy, 1);
        t.put_back(slots[0], Some(taken.session), Tag::Dirty, (None, None));
        let counts = t.sessions_by_connection().iter().fold([0; 3], |mut a, c| {
            (0..3).for_each(|i| a[i] += c[i]);
            a
        });
        assert_eq!(counts, [2, 0, 1]);
    }

    #[test]
    fn rooms_go_to_the_emptiest_usable_connection_up_to_the_cap() {
        let mut t: T = Table::new(3);
        let open = |usable: bool| Load { open: usable, ..Load::idle() };
        assert_eq!(t.reserve(|_| open(true), 2).unwrap(), 0);
        assert_eq!(t.reserve(|_| open(true), 2).unwrap(), 1);
        assert_eq!(t.reserve(|i| open(i != 2), 2).unwrap(), 0, "connection 2 is closed");
        assert_eq!(t.reserve(|i| open(i != 2), 2).unwrap(), 1);
        assert!(matches!(t.reserve(|i| open(i != 2), 2), Err(Error::SessionLimit { per_connection: 2 })));
        assert!(matches!(t.reserve(|_| open(false), 2), Err(Error::Closed)));
        t.release(0);
        assert_eq!(t.reserve(|i| open(i != 2), 2).unwrap(), 0, "released room is reused");
        let slot = t.insert("s", 0, (None, None));
        t.remove(slot);
        assert_eq!(t.per_connection, vec![1, 2, 0], "removing a slot frees its room");
    }

    #[test]
    fn waiters_that_gave_up_are_swept_at_amortized_cost() {
        let (mut t, _) = table(&[]);
        t.busy_add(&Tag::Default, 1);
        let mut kept = Vec::new();
        for i in 0..10_000 {
            let rx = t.wait_for(&Tag::Default).expect("a busy session of the tag: wait");
            if i % 100 == 0 {
                kept.push(rx); // a few stay waiting; the rest give up at once
            }
        }
        let queue = &t.waiters[&Tag::Default];
        assert!(queue.len() <= 2 * kept.len() + 64 + 1, "{} queued for {} waiting", queue.len(), kept.len());
        // every checkout still waiting is still queued
        assert_eq!(queue.iter().filter(|w| !w.is_closed()).count(), kept.len());
        t.busy_add(&Tag::Default, -1);
        assert!(t.wait_for(&Tag::Default).is_none(), "nothing busy: no wait");
    }

    #[test]
    fn a_known_token_is_interned() {
        let (mut t, _) = table(&[]);
        let known = AccessToken::new("a.b.c");
        t.busy_add(&Tag::Tenant(known.clone()), 1);
        let Tag::Tenant(interned) = t.intern(Tag::Tenant(AccessToken::new("a.b.c"))) else { panic!() };
        assert!(interned.shares_allocation_with(&known));
        assert_eq!(t.intern(Tag::Default), Tag::Default);
    }
}
