//! The session table: which pooled server session a checkout gets. Plain data (no I/O, no
//! locks of its own), generic over the session `S` and what a hand-over carries `W`, so that
//! affinity, LRU, dirty tracking, hand-over and per-connection room are unit-tested here with
//! no server.
//!
//! No operation scans the sessions: the idle ones are listed by tag (a list linked through the
//! entries, for an affinity hit, O(1)) and ordered by kind and last use (for the session to
//! re-purpose, O(log n)), and the sessions per connection are counted as they change.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

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
///
/// An entry's fields change only while it is out of the table's indexes (see
/// [`Table::index`]); `entry` hands out shared references only.
pub(super) struct Entry<S> {
    pub(super) session: Option<S>,
    pub(super) connection: usize,
    pub(super) tag: Tag,
    /// The namespace and database the session had when it was last made clean.
    pub(super) clean_ns_db: NsDb,
    last_used: u64,
    busy: bool,
    /// Where the entry is indexed, as it was when it went in (`None` only inside a method).
    indexed: Option<Indexed>,
    /// Its neighbours among its tag's idle entries (the slots that became idle just before and
    /// just after it), while it is one of them.
    prev: Option<u64>,
    next: Option<u64>,
}

/// The kinds of idle session [`pick_victim`] ranks differently; one LRU order each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Default = 0,
    Tenant = 1,
    Dirty = 2,
}

impl Kind {
    fn of(tag: &Tag) -> Kind {
        match tag {
            Tag::Default => Kind::Default,
            Tag::Tenant(_) => Kind::Tenant,
            Tag::Dirty => Kind::Dirty,
        }
    }
}

/// How [`Table::index`] filed an entry, so that [`Table::unindex`] takes out exactly that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Indexed {
    /// Counted in `by_connection[connection][state]` (`state`: 0 idle, 1 busy, 2 dirty).
    connection: usize,
    state: usize,
    /// Among its tag's idle entries (`Table::idle`), if idle and clean.
    idle: bool,
    /// Its key in `lru[kind]`, if idle with a session: when it was last checked out.
    lru: Option<(Kind, u64)>,
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

/// Hashes slots, the table's own sequential numbers (never chosen by a client), by one
/// multiplication (Fibonacci hashing): distinct low bits for consecutive slots, at a fraction of
/// SipHash's cost, which a checkout pays on each of its dozen look-ups of an entry.
#[derive(Default)]
struct SlotHasher(u64);

impl Hasher for SlotHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// How many accepted tokens a pool remembers (per generation; two generations, 8 bytes each).
pub(super) const REMEMBERED_TOKENS: usize = 16_384;

pub(super) struct Table<S, W> {
    entries: HashMap<u64, Entry<S>, BuildHasherDefault<SlotHasher>>,
    /// Tokens the server accepted recently: a checkout for one of them is proven.
    pub(super) accepted: Accepted,
    /// Idle clean entries by tag: the last one to become idle, the end of a list linked through
    /// the entries (`Entry::prev`, `Entry::next`), in the order they became idle. The last one
    /// is taken first. Only tags with an idle session have an entry.
    idle: HashMap<Tag, u64>,
    /// Idle entries with a session, one set per [`Kind`], as `(last used, slot)`: the least
    /// recently used first. The session to re-purpose is the first of one of them.
    lru: [BTreeSet<(u64, u64)>; 3],
    /// Entries on each connection, `[idle, busy, dirty]`, counted as they change.
    by_connection: Vec<[usize; 3]>,
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
            entries: HashMap::default(),
            accepted: Accepted::new(REMEMBERED_TOKENS),
            idle: HashMap::new(),
            lru: Default::default(),
            by_connection: vec![[0; 3]; connections],
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
        let entry = Entry { session: Some(session), connection, tag: Tag::Default, clean_ns_db, last_used: 0, busy: true, indexed: None, prev: None, next: None };
        self.entries.insert(slot, entry);
        self.index(slot);
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
        self.unindex(slot);
        if let Some(entry) = self.entries.get_mut(&slot) {
            entry.busy = false;
        }
        self.index(slot);
    }

    /// A checked-out session comes back to its slot with the tag it is now clean for.
    pub(super) fn put_back(&mut self, slot: u64, session: Option<S>, tag: Tag, clean_ns_db: NsDb) {
        self.unindex(slot);
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
    /// dirty = not checked out and to be reset). Counted as entries change, not recounted.
    pub(super) fn sessions_by_connection(&self) -> Vec<[usize; 3]> {
        self.by_connection.clone()
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

    /// Takes an entry out of the indexes (and its counts) before its fields change. O(log n).
    fn unindex(&mut self, slot: u64) {
        let Some(e) = self.entries.get_mut(&slot) else { return };
        let Some(at) = e.indexed.take() else { return };
        let (prev, next) = (e.prev.take(), e.next.take());
        if let Some(c) = self.by_connection.get_mut(at.connection) {
            c[at.state] -= 1;
        }
        if let Some((kind, last_used)) = at.lru {
            self.lru[kind as usize].remove(&(last_used, slot));
        }
        if at.idle {
            // Unlinked from its neighbours; its tag is the one it was listed under (fields
            // change only while out of the indexes).
            if let Some(p) = prev.and_then(|p| self.entries.get_mut(&p)) {
                p.next = next;
            }
            if let Some(n) = next.and_then(|n| self.entries.get_mut(&n)) {
                n.prev = prev;
            }
            let tag = &self.entries[&slot].tag;
            match (prev, next) {
                (None, None) => {
                    self.idle.remove(tag);
                }
                (Some(prev), None) => {
                    self.idle.insert(tag.clone(), prev);
                }
                (_, Some(_)) => {}
            }
        }
    }

    /// Files an entry by its fields: counted on its connection; if not checked out, in its
    /// kind's LRU order (with a session) and, when clean, last among its tag's idle ones.
    /// O(log n).
    fn index(&mut self, slot: u64) {
        let Some(e) = self.entries.get_mut(&slot) else { return };
        if e.indexed.is_some() {
            return;
        }
        let state = match (e.busy, &e.tag) {
            (true, _) => 1,
            (false, Tag::Dirty) => 2,
            (false, _) => 0,
        };
        let idle = !e.busy && e.tag != Tag::Dirty;
        let lru = (!e.busy && e.session.is_some()).then(|| (Kind::of(&e.tag), e.last_used));
        e.indexed = Some(Indexed { connection: e.connection, state, idle, lru });
        if let Some(c) = self.by_connection.get_mut(e.connection) {
            c[state] += 1;
        }
        if let Some((kind, last_used)) = lru {
            self.lru[kind as usize].insert((last_used, slot));
        }
        if idle {
            let prev = self.idle.insert(e.tag.clone(), slot);
            e.prev = prev;
            if let Some(p) = prev.and_then(|p| self.entries.get_mut(&p)) {
                p.next = Some(slot);
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
    ///
    /// `pick_victim` ranks by kind, then by last use, so its choice among all the idle sessions
    /// is its choice among `slot` and the least recently used of each kind: at most four
    /// candidates, whatever the pool's size.
    fn victim(&self, slot: u64, proven: bool) -> Option<u64> {
        let ours = self.entries.get(&slot).map(|e| (slot, &e.tag, e.last_used));
        let oldest = self.lru.iter().filter_map(BTreeSet::first).filter_map(|&(last_used, id)| self.entries.get(&id).map(|e| (id, &e.tag, last_used)));
        pick_victim(ours.into_iter().chain(oldest), slot, proven)
    }

    /// Exchanges the sessions of a busy slot (ours, out of the indexes) and an idle one.
    fn swap(&mut self, ours: u64, idle: u64) {
        if ours == idle {
            return;
        }
        self.unindex(idle);
        let Some(mut a) = self.entries.remove(&ours) else {
            self.index(idle);
            return;
        };
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
            if let Some(&other) = self.idle.get(want) {
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
        let taken = e.session.take().map(|session| Taken { session, tag: e.tag.clone(), clean_ns_db: e.clean_ns_db.clone(), hit });
        self.index(slot); // counted as busy
        taken
    }

    /// The indexes hold exactly what a scan of the entries would find: every entry filed once,
    /// as its fields say; the counts per connection add up.
    #[cfg(test)]
    fn check(&self) {
        let mut counts = vec![[0; 3]; self.by_connection.len()];
        let (mut idle, mut lru) = (0, [0; 3]);
        // Each tag's list, walked back from its last entry, links both ways and holds only
        // clean idle entries of that tag.
        let mut listed = 0;
        for (tag, &last) in &self.idle {
            let (mut at, mut after) = (Some(last), None);
            while let Some(slot) = at {
                let e = &self.entries[&slot];
                assert_eq!((&e.tag, e.next), (tag, after), "slot {slot} linked in {tag:?}'s list");
                assert!(e.indexed.is_some_and(|i| i.idle));
                listed += 1;
                (at, after) = (e.prev, Some(slot));
            }
        }
        for (&slot, e) in &self.entries {
            let at = e.indexed.expect("every entry is indexed between calls");
            let state = match (e.busy, &e.tag) {
                (true, _) => 1,
                (false, Tag::Dirty) => 2,
                (false, _) => 0,
            };
            assert_eq!((at.connection, at.state), (e.connection, state), "slot {slot} counted as it is");
            counts[e.connection][state] += 1;
            let clean_idle = !e.busy && e.tag != Tag::Dirty;
            assert_eq!(at.idle, clean_idle, "slot {slot} among its tag's idle ones iff clean and idle");
            if at.idle {
                idle += 1;
            } else {
                assert_eq!((e.prev, e.next), (None, None), "slot {slot} linked though not listed");
            }
            let with_session = !e.busy && e.session.is_some();
            assert_eq!(at.lru, with_session.then(|| (Kind::of(&e.tag), e.last_used)), "slot {slot} in its kind's LRU order");
            if let Some((kind, last_used)) = at.lru {
                assert!(self.lru[kind as usize].contains(&(last_used, slot)));
                lru[kind as usize] += 1;
            }
        }
        assert_eq!(counts, self.by_connection);
        assert_eq!(listed, idle, "every clean idle entry is in its tag's list");
        assert_eq!(self.lru.iter().map(BTreeSet::len).collect::<Vec<_>>(), lru);
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
        t.check();
        t.put_back(slot, Some(taken.session), want.clone(), (None, None));
        t.check();
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

    #[test]
    fn the_session_last_back_clean_for_a_tag_is_taken_first() {
        let (mut t, slots) = table(&["s1", "s2", "s3", "s4"]);
        let a = tenant("a.a.a");
        // a holds three sessions, back in the order s1, s3, s2.
        let taken: Vec<_> = slots[..3].iter().map(|&slot| (slot, t.take(slot, &a).unwrap().session)).collect();
        for i in [0, 2, 1] {
            let (slot, session) = taken[i];
            t.put_back(slot, Some(session), a.clone(), (None, None));
        }
        t.check();
        // deadpool hands out the fourth slot each time: a's sessions come back last in, first out.
        let mut order = Vec::new();
        for _ in 0..3 {
            let got = t.take(slots[3], &a).unwrap();
            assert!(got.hit);
            order.push(got.session);
            t.put_back(slots[3], Some(got.session), Tag::Default, (None, None)); // not a's any more
            t.check();
        }
        assert_eq!(order, ["s2", "s3", "s1"]);
    }

    #[test]
    fn sessions_are_counted_on_their_connection_as_they_change_through_swaps_and_removals() {
        let mut t: T = Table::new(2);
        // s1 and s3 on connection 0, s2 and s4 on 1 (room goes to the emptiest).
        let slots: Vec<u64> = ["s1", "s2", "s3", "s4"]
            .into_iter()
            .map(|name| {
                let c = t.reserve(|_| Load::idle(), 8).unwrap();
                let slot = t.insert(name, c, (None, None));
                t.idle_new(slot);
                slot
            })
            .collect();
        assert_eq!(t.sessions_by_connection(), [[2, 0, 0], [2, 0, 0]]);
        let (a, b) = (tenant("a.a.a"), tenant("b.b.b"));
        let taken = t.take(slots[0], &a).unwrap();
        assert_eq!(taken.session, "s1");
        assert_eq!(t.sessions_by_connection(), [[1, 1, 0], [2, 0, 0]]);
        t.put_back(slots[0], Some(taken.session), Tag::Dirty, (None, None));
        assert_eq!(t.sessions_by_connection(), [[1, 0, 1], [2, 0, 0]]);
        let taken = t.take(slots[1], &b).unwrap();
        assert_eq!(taken.session, "s2");
        t.put_back(slots[1], Some(taken.session), b.clone(), (None, None));
        t.remove(slots[0]); // the dirty s1 is dropped
        assert_eq!(t.sessions_by_connection(), [[1, 0, 0], [2, 0, 0]]);
        // b again, given s3's slot: b's own s2 is swapped in, so the busy session is on
        // connection 1, and s3, idle now in s2's slot, still counts on connection 0.
        let taken = t.take(slots[2], &b).unwrap();
        assert_eq!((taken.session, taken.hit), ("s2", true));
        assert_eq!(t.sessions_by_connection(), [[1, 0, 0], [1, 1, 0]]);
        t.check();
        assert_eq!(t.sessions_by_connection(), t.recount());
    }

    /// The table before the indexes, kept as the reference: idle lists per tag searched and
    /// edited in place, and every idle session scanned for the victim (in slot order, the
    /// checkout's own first, so that ties are broken as the indexes break them).
    #[derive(Default)]
    struct Scan {
        entries: std::collections::BTreeMap<u64, (Option<u64>, usize, Tag, u64, bool)>,
        idle: HashMap<Tag, Vec<u64>>,
        tick: u64,
    }

    impl Scan {
        fn index(&mut self, slot: u64) {
            let (_, _, tag, _, busy) = &self.entries[&slot];
            if !busy && *tag != Tag::Dirty {
                self.idle.entry(tag.clone()).or_default().push(slot);
            }
        }

        fn unindex(&mut self, slot: u64) {
            let Some((_, _, tag, ..)) = self.entries.get(&slot) else { return };
            if let Some(list) = self.idle.get_mut(tag) {
                list.retain(|s| *s != slot);
                if list.is_empty() {
                    let tag = tag.clone();
                    self.idle.remove(&tag);
                }
            }
        }

        fn take(&mut self, slot: u64, want: &Tag, proven: bool) -> (Option<u64>, Tag, bool) {
            self.unindex(slot);
            self.entries.get_mut(&slot).unwrap().4 = true;
            let mut hit = self.entries[&slot].2 == *want;
            if !hit {
                let other = self.idle.get(want).and_then(|l| l.last().copied());
                let victim = other.or_else(|| {
                    let ours = (slot, &self.entries[&slot].2, self.entries[&slot].3);
                    let idle = self.entries.iter().filter(|(id, e)| **id != slot && !e.4 && e.0.is_some()).map(|(id, e)| (*id, &e.2, e.3));
                    pick_victim(std::iter::once(ours).chain(idle), slot, proven)
                });
                hit = other.is_some();
                if let Some(idle) = victim.filter(|v| *v != slot) {
                    self.unindex(idle);
                    let mine = self.entries[&slot].clone();
                    let theirs = self.entries[&idle].clone();
                    let e = self.entries.get_mut(&slot).unwrap();
                    (e.0, e.1, e.2, e.3) = (theirs.0, theirs.1, theirs.2, theirs.3);
                    let e = self.entries.get_mut(&idle).unwrap();
                    (e.0, e.1, e.2, e.3) = (mine.0, mine.1, mine.2, mine.3);
                    self.index(idle);
                }
            }
            self.tick += 1;
            let e = self.entries.get_mut(&slot).unwrap();
            e.3 = self.tick;
            (e.0.take(), e.2.clone(), hit)
        }

        fn counts(&self, connections: usize) -> Vec<[usize; 3]> {
            let mut out = vec![[0; 3]; connections];
            for (_, c, tag, _, busy) in self.entries.values() {
                out[*c][if *busy { 1 } else if *tag == Tag::Dirty { 2 } else { 0 }] += 1;
            }
            out
        }
    }

    impl<S, W> Table<S, W> {
        /// The counts per connection, recounted from the entries.
        fn recount(&self) -> Vec<[usize; 3]> {
            let mut out = vec![[0; 3]; self.by_connection.len()];
            for e in self.entries.values() {
                out[e.connection][if e.busy { 1 } else if e.tag == Tag::Dirty { 2 } else { 0 }] += 1;
            }
            out
        }
    }

    #[test]
    fn the_indexes_choose_as_a_scan_of_every_session_does() {
        // splitmix64: a fixed pseudo-random sequence of checkouts, returns (clean, dirty or
        // with the session gone), removals and new sessions, on 3 connections.
        let mut state = 0x5CA1_AB1E_u64;
        let mut next = move |n: u64| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % n
        };
        let tags: Vec<Tag> = [Tag::Default].into_iter().chain((0..6).map(|i| tenant(&format!("t{i}.a.b")))).collect();
        let mut t: Table<u64, ()> = Table::new(3);
        let mut scan = Scan::default();
        let mut out: Vec<(u64, u64, Tag)> = Vec::new(); // (slot, session, wanted)
        let mut sessions = 0u64;
        let (mut hits, mut victims) = (0, 0);
        for step in 0..5_000 {
            let idle: Vec<u64> = t.entries.iter().filter(|(_, e)| !e.busy).map(|(id, _)| *id).collect();
            match next(10) {
                // A checkout: of an idle slot (deadpool's pick), or of a new one while there is room.
                0..=4 => {
                    let want = tags[next(tags.len() as u64) as usize].clone();
                    let slot = if idle.is_empty() || (t.entries.len() < 40 && next(8) == 0) {
                        sessions += 1;
                        let connection = next(3) as usize;
                        let slot = t.insert(sessions, connection, (None, None));
                        scan.entries.insert(slot, (Some(sessions), connection, Tag::Default, 0, true));
                        slot
                    } else {
                        idle[next(idle.len() as u64) as usize]
                    };
                    if let Tag::Tenant(token) = &want {
                        if next(4) == 0 {
                            t.accepted.remember(token); // the server accepted it lately
                        }
                    }
                    let proven = t.proven(&want);
                    assert_eq!(proven, matches!(want, Tag::Default) || scan.idle.contains_key(&want) || t.accepted.knows(want.forwarded().as_ref().unwrap()));
                    let expected = scan.take(slot, &want, proven);
                    let got = t.take(slot, &want).map(|g| (Some(g.session), g.tag, g.hit));
                    assert_eq!(got.as_ref(), Some(&expected).filter(|e| e.0.is_some()), "step {step}: checkout of slot {slot} for {want:?}");
                    if let Some((Some(session), _, hit)) = got {
                        if hit { hits += 1 } else { victims += 1 }
                        out.push((slot, session, want));
                    }
                }
                // A return: clean for what it was checked out for, or dirty.
                5..=7 if !out.is_empty() => {
                    let (slot, session, want) = out.swap_remove(next(out.len() as u64) as usize);
                    let tag = if next(5) == 0 { Tag::Dirty } else { want };
                    t.put_back(slot, Some(session), tag.clone(), (None, None));
                    scan.unindex(slot);
                    let e = scan.entries.get_mut(&slot).unwrap();
                    (e.0, e.2, e.4) = (Some(session), tag, false);
                    scan.index(slot);
                }
                // A slot dropped: an idle one (recycle refused it) or a checked-out one (replaced).
                8 if !idle.is_empty() || !out.is_empty() => {
                    let slot = if out.is_empty() || (!idle.is_empty() && next(2) == 0) {
                        idle[next(idle.len() as u64) as usize]
                    } else {
                        out.swap_remove(next(out.len() as u64) as usize).0
                    };
                    t.remove(slot);
                    scan.unindex(slot);
                    scan.entries.remove(&slot);
                }
                // A warm session: created and idle at once.
                _ if t.entries.len() < 40 => {
                    sessions += 1;
                    let connection = next(3) as usize;
                    let slot = t.insert(sessions, connection, (None, None));
                    t.idle_new(slot);
                    scan.entries.insert(slot, (Some(sessions), connection, Tag::Default, 0, false));
                    scan.index(slot);
                }
                _ => {}
            }
            t.check();
            assert_eq!(t.sessions_by_connection(), scan.counts(3), "step {step}");
            assert_eq!(t.none_idle(), scan.idle.is_empty());
        }
        assert!(hits > 300 && victims > 1_000, "both paths taken often: {hits} hits, {victims} re-purposed");
    }

    #[test]
    fn consecutive_slots_hash_to_distinct_buckets() {
        use std::hash::BuildHasher;
        let hasher = BuildHasherDefault::<SlotHasher>::default();
        for bits in [4, 10, 14] {
            let mask = (1u64 << bits) - 1;
            let buckets: HashSet<u64> = (1..=1u64 << bits).map(|slot| hasher.hash_one(slot) & mask).collect();
            assert_eq!(buckets.len(), 1 << bits, "{} slots over as many buckets", 1u64 << bits);
        }
    }
}

/// What a checkout costs the table alone, timed: for the benchmark, not a test.
#[cfg(feature = "fuzzing")]
pub(crate) mod cost {
    use super::*;

    fn tenant(t: &str) -> Tag {
        Tag::Tenant(crate::auth::AccessToken::new(t))
    }

    /// What a checkout costs the table, by pool size: a take and a put-back of the slot
    /// deadpool hands out (first in, first out), in ns, the best of 3 runs. The pool's own
    /// identity (the slot's own session is a hit), a tenant whose idle session is in another
    /// slot (a swap), and a proven tenant with no idle session (the victim: more tenants than
    /// sessions, round robin). For `benches/table.rs` (feature `fuzzing`): per pool size,
    /// `[default, tenant hit, victim]`.
    pub(crate) fn checkout_cost(sizes: &[usize]) -> Vec<(usize, [f64; 3])> {
        use std::collections::VecDeque;
        use std::time::Instant;
        let build = |n: usize| {
            let mut t: Table<u64, ()> = Table::new(16);
            let mut fifo = VecDeque::new();
            for i in 0..n {
                let c = t.reserve(|_| crate::pool::placement::Load::idle(), usize::MAX).unwrap();
                let slot = t.insert(i as u64, c, (None, None));
                t.idle_new(slot);
                fifo.push_back(slot);
            }
            (t, fifo)
        };
        let run = |t: &mut Table<u64, ()>, fifo: &mut VecDeque<u64>, wants: &[Tag], iters: usize| {
            let started = Instant::now();
            for i in 0..iters {
                let slot = fifo.pop_front().unwrap();
                let want = &wants[i % wants.len()];
                let got = t.take(slot, want).unwrap();
                t.put_back(slot, Some(got.session), want.clone(), (None, None));
                fifo.push_back(slot);
            }
            started.elapsed().as_nanos() as f64 / iters as f64
        };
        let best = |f: &mut dyn FnMut() -> f64| (0..3).map(|_| f()).fold(f64::MAX, f64::min);
        let mut costs = Vec::new();
        for &n in sizes {
            let (mut t, mut fifo) = build(n);
            let default = best(&mut || run(&mut t, &mut fifo, &[Tag::Default], 100_000));
            let tenants: Vec<Tag> = (0..64).map(|i| tenant(&format!("t{i}.a.b"))).collect();
            let (mut t, mut fifo) = build(n);
            run(&mut t, &mut fifo, &tenants, tenants.len()); // each holds a session now
            let hit = best(&mut || run(&mut t, &mut fifo, &tenants, 100_000));
            let many: Vec<Tag> = (0..n + 64).map(|i| tenant(&format!("m{i}.a.b"))).collect();
            let (mut t, mut fifo) = build(n);
            for token in many.iter().filter_map(Tag::forwarded) {
                t.accepted.remember(&token);
            }
            run(&mut t, &mut fifo, &many, many.len());
            let miss = best(&mut || run(&mut t, &mut fifo, &many, 20_000));
            costs.push((n, [default, hit, miss]));
        }
        costs
    }
}
