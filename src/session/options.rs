//! What SurrealDB 4.0 adds to `begin` and `query`: read-only transactions over a snapshot of
//! bounded staleness, and the isolation level. Plain data: the options' encoding and the
//! decoding of what `begin` answers (unit-tested here, without a server). Which server may be
//! asked is decided by its version (see [`crate::wire::version`]).

use std::time::Duration;

use ciborium::Value as Cbor;

use crate::wire::tags;

/// A read-only transaction (or query), over a snapshot no older than a bound (SurrealDB 4.0:
/// `BEGIN READ ONLY MAX STALENESS <bound> [STRICT]`).
///
/// ```
/// use std::time::Duration;
/// use surreal_pool::ReadOnly;
/// let fresh = ReadOnly::current();
/// assert_eq!(fresh.staleness(), Duration::ZERO);
/// let cheap = ReadOnly::max_staleness(Duration::from_secs(5)).strict();
/// assert!(cheap.is_strict());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOnly {
    max_staleness: Duration,
    strict: bool,
}

impl ReadOnly {
    /// Reads the current state (a staleness bound of zero).
    pub fn current() -> Self {
        ReadOnly::default()
    }

    /// Reads a snapshot at most `bound` old: the server may serve it from a replica or a
    /// cache of older states, where its storage has one (the in-memory store reads the current
    /// state, which meets every bound).
    pub fn max_staleness(bound: Duration) -> Self {
        ReadOnly { max_staleness: bound, strict: false }
    }

    /// Refuses the transaction when no snapshot meets the bound, instead of reading the
    /// current state.
    pub fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    /// The staleness bound.
    pub fn staleness(&self) -> Duration {
        self.max_staleness
    }

    /// Whether it is [`strict`](Self::strict).
    pub fn is_strict(&self) -> bool {
        self.strict
    }

    fn to_cbor(self) -> Cbor {
        Cbor::Map(vec![
            (text("max_staleness"), duration(self.max_staleness)),
            (text("strict"), Cbor::Bool(self.strict)),
        ])
    }
}

/// A transaction's isolation level (SurrealDB 4.0). Without one the server uses `Snapshot`.
///
/// ```
/// use surreal_pool::{Isolation, TransactionOptions};
/// let options = TransactionOptions::new().isolation(Isolation::Serializable);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Isolation {
    /// Snapshot isolation: the transaction reads one consistent state; two transactions that
    /// write disjoint data both commit.
    Snapshot,
    /// Serializable: as if the transactions ran one after another (a conflicting one fails at
    /// commit). Not with a non-zero staleness bound.
    Serializable,
}

impl Isolation {
    fn as_str(self) -> &'static str {
        match self {
            Isolation::Snapshot => "snapshot",
            Isolation::Serializable => "serializable",
        }
    }

    fn parse(s: &str) -> Option<Isolation> {
        [Isolation::Snapshot, Isolation::Serializable].into_iter().find(|i| s.eq_ignore_ascii_case(i.as_str()))
    }
}

/// Options for [`Session::begin_with`](crate::Session::begin_with): what SurrealDB 4.0 adds to
/// `begin`. On a server without them (3.x, or one that did not say its version) `begin_with`
/// fails with [`Error::Unsupported`](crate::Error::Unsupported) and sends nothing; empty
/// options are a plain [`begin`](crate::Session::begin), on any server.
///
/// ```
/// use std::time::Duration;
/// use surreal_pool::{Isolation, ReadOnly, TransactionOptions};
/// let report = TransactionOptions::new().read_only(ReadOnly::max_staleness(Duration::from_secs(2)));
/// let strict = TransactionOptions::new().isolation(Isolation::Serializable);
/// assert!(TransactionOptions::new().is_empty() && !strict.is_empty());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransactionOptions {
    isolation: Option<Isolation>,
    read_only: Option<ReadOnly>,
}

impl TransactionOptions {
    /// No options: a read-write transaction at the server's default isolation.
    pub fn new() -> Self {
        TransactionOptions::default()
    }

    /// The isolation level.
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = Some(isolation);
        self
    }

    /// A read-only transaction over a snapshot no older than the bound: its writes fail, and
    /// its [`Transaction::snapshot`](crate::Transaction::snapshot) describes what it reads.
    pub fn read_only(mut self, read_only: ReadOnly) -> Self {
        self.read_only = Some(read_only);
        self
    }

    /// Whether no option is set.
    pub fn is_empty(&self) -> bool {
        self.isolation.is_none() && self.read_only.is_none()
    }

    /// The options object of a 4.0 `begin`.
    pub(crate) fn to_cbor(self) -> Cbor {
        let mut entries = Vec::new();
        if let Some(isolation) = self.isolation {
            entries.push((text("isolation"), text(isolation.as_str())));
        }
        if let Some(read_only) = self.read_only {
            entries.push((text("read_only"), read_only.to_cbor()));
        }
        Cbor::Map(entries)
    }
}

/// Options for [`Session::query_with`](crate::Session::query_with): what SurrealDB 4.0 adds to
/// `query`. On a server without them `query_with` fails with
/// [`Error::Unsupported`](crate::Error::Unsupported) and sends nothing.
///
/// ```
/// use std::time::Duration;
/// use surreal_pool::{QueryOptions, ReadOnly};
/// let options = QueryOptions::new().read_only(ReadOnly::max_staleness(Duration::from_secs(1)));
/// assert!(!options.is_empty());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryOptions {
    read_only: Option<ReadOnly>,
}

impl QueryOptions {
    /// No options: the statements run as they would with [`Session::query`](crate::Session::query).
    pub fn new() -> Self {
        QueryOptions::default()
    }

    /// Runs the statements as one read-only block over a snapshot no older than the bound
    /// (as if wrapped in `BEGIN READ ONLY MAX STALENESS …; …; COMMIT`): writes fail.
    pub fn read_only(mut self, read_only: ReadOnly) -> Self {
        self.read_only = Some(read_only);
        self
    }

    /// Whether no option is set.
    pub fn is_empty(&self) -> bool {
        self.read_only.is_none()
    }

    /// The options object of a 4.0 `query` (its third parameter).
    pub(crate) fn to_cbor(self) -> Cbor {
        let mut entries = Vec::new();
        if let Some(read_only) = self.read_only {
            entries.push((text("read_only"), read_only.to_cbor()));
        }
        Cbor::Map(entries)
    }
}

/// The snapshot a read-only transaction reads, as the server described it when it began.
///
/// ```no_run
/// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
/// use std::time::Duration;
/// use surreal_pool::{ReadOnly, TransactionOptions};
/// let tx = db.begin_with(TransactionOptions::new().read_only(ReadOnly::max_staleness(Duration::from_secs(5)))).await?;
/// if let Some(snapshot) = tx.snapshot() {
///     println!("reading a state {:?} old (stale: {})", snapshot.age(), snapshot.is_stale());
/// }
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    age: Duration,
    stale: bool,
    position: Option<Vec<u8>>,
}

impl Snapshot {
    /// How old the snapshot was when the transaction began.
    pub fn age(&self) -> Duration {
        self.age
    }

    /// Whether it is older than the current state.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// The storage engine's opaque token for the snapshot, where it has one.
    pub fn position(&self) -> Option<&[u8]> {
        self.position.as_deref()
    }
}

/// What `begin` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BeginReply {
    /// A transaction id alone: what 3.x always answers, and 4.0 to a `begin` without options.
    Bare(uuid::Uuid),
    /// An object: how 4.0 answers a `begin` whose options it understood.
    Options { id: uuid::Uuid, isolation: Option<Isolation>, snapshot: Option<Snapshot> },
}

impl BeginReply {
    pub(crate) fn id(&self) -> uuid::Uuid {
        match self {
            BeginReply::Bare(id) | BeginReply::Options { id, .. } => *id,
        }
    }

    /// Decodes `begin`'s answer; `None` when it holds no transaction id.
    pub(crate) fn decode(value: Cbor) -> Option<BeginReply> {
        match value {
            Cbor::Map(entries) => {
                let mut id = None;
                let mut isolation = None;
                let mut snapshot = None;
                for (key, value) in entries {
                    match key.as_text() {
                        Some("id") => id = uuid_of(value),
                        Some("isolation") => isolation = value.as_text().and_then(Isolation::parse),
                        Some("snapshot") => snapshot = snapshot_of(value),
                        _ => {}
                    }
                }
                Some(BeginReply::Options { id: id?, isolation, snapshot })
            }
            other => uuid_of(other).map(BeginReply::Bare),
        }
    }
}

/// A read-only query's answer as 4.0 gives it: the statements run as if wrapped in `BEGIN READ
/// ONLY …; …; COMMIT`, and the answer has those two results too: first the `BEGIN`'s (the
/// snapshot the block reads), last the `COMMIT`'s.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReadOnlyAnswer {
    pub(crate) snapshot: Snapshot,
    /// The caller's statements' results (a list, as a plain `query` answers).
    pub(crate) statements: Cbor,
    /// The `COMMIT`'s result.
    pub(crate) commit: Cbor,
}

impl ReadOnlyAnswer {
    /// Splits a read-only query's answer; an error when it does not have that shape (so that
    /// no statement's result is ever read as another's).
    pub(crate) fn split(value: Cbor) -> Result<ReadOnlyAnswer, String> {
        let Cbor::Array(mut items) = value else { return Err("a query result that is not a list".into()) };
        if items.len() < 2 {
            return Err(format!("a read-only query answered with {} results, not its block's BEGIN and COMMIT around them", items.len()));
        }
        let commit = items.pop().unwrap_or(Cbor::Null);
        let begin = items.remove(0);
        let snapshot = statement_ok(begin)
            .and_then(snapshot_of)
            .ok_or("a read-only query whose first result is not the snapshot its block reads")?;
        Ok(ReadOnlyAnswer { snapshot, statements: Cbor::Array(items), commit })
    }
}

/// A statement result's value if its status is `OK`.
fn statement_ok(item: Cbor) -> Option<Cbor> {
    let Cbor::Map(entries) = item else { return None };
    let mut ok = false;
    let mut result = None;
    for (key, value) in entries {
        match key.as_text() {
            Some("status") => ok = value.as_text() == Some("OK"),
            Some("result") => result = Some(value),
            _ => {}
        }
    }
    ok.then_some(result).flatten()
}

fn uuid_of(value: Cbor) -> Option<uuid::Uuid> {
    match tags::to_json(value) {
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn snapshot_of(value: Cbor) -> Option<Snapshot> {
    let Cbor::Map(entries) = value else { return None };
    let mut snapshot = Snapshot { age: Duration::ZERO, stale: false, position: None };
    for (key, value) in entries {
        match (key.as_text(), value) {
            (Some("age"), value) => snapshot.age = duration_of(&value)?,
            (Some("stale"), Cbor::Bool(stale)) => snapshot.stale = stale,
            (Some("position"), Cbor::Bytes(bytes)) => snapshot.position = Some(bytes),
            _ => {}
        }
    }
    Some(snapshot)
}

fn text(s: &str) -> Cbor {
    Cbor::Text(s.to_owned())
}

/// A duration as SurrealDB reads it: tag 14, `[seconds, nanoseconds]` (4.0 refuses the text
/// form, tag 13).
fn duration(d: Duration) -> Cbor {
    let parts = vec![Cbor::Integer(d.as_secs().into()), Cbor::Integer(d.subsec_nanos().into())];
    Cbor::Tag(tags::TAG_CUSTOM_DURATION, Box::new(Cbor::Array(parts)))
}

/// Tag 14 `[seconds?, nanoseconds?]` back to a duration.
fn duration_of(value: &Cbor) -> Option<Duration> {
    let Cbor::Tag(tags::TAG_CUSTOM_DURATION, inner) = value else { return None };
    let Cbor::Array(parts) = &**inner else { return None };
    let part = |i: usize| -> Option<u64> {
        match parts.get(i) {
            None => Some(0),
            Some(Cbor::Integer(n)) => u64::try_from(*n).ok(),
            Some(_) => None,
        }
    };
    let nanos = part(1)?;
    let seconds = part(0)?.checked_add(nanos / 1_000_000_000)?;
    Some(Duration::new(seconds, (nanos % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: Vec<(&str, Cbor)>) -> Cbor {
        Cbor::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
    }

    #[test]
    fn options_encode_as_the_4_0_server_reads_them() {
        assert_eq!(TransactionOptions::new().to_cbor(), map(vec![]));
        let options = TransactionOptions::new()
            .isolation(Isolation::Serializable)
            .read_only(ReadOnly::max_staleness(Duration::from_millis(1500)).strict());
        let read_only = map(vec![("max_staleness", duration(Duration::from_millis(1500))), ("strict", Cbor::Bool(true))]);
        assert_eq!(options.to_cbor(), map(vec![("isolation", text("serializable")), ("read_only", read_only.clone())]));
        assert_eq!(
            duration(Duration::from_millis(1500)),
            Cbor::Tag(14, Box::new(Cbor::Array(vec![Cbor::Integer(1.into()), Cbor::Integer(500_000_000.into())])))
        );
        let query = QueryOptions::new().read_only(ReadOnly::max_staleness(Duration::from_millis(1500)).strict());
        assert_eq!(query.to_cbor(), map(vec![("read_only", read_only)]));
        assert!(QueryOptions::new().is_empty() && !query.is_empty());
        assert_eq!(ReadOnly::current(), ReadOnly::max_staleness(Duration::ZERO));
    }

    #[test]
    fn a_bare_id_and_an_object_both_decode() {
        let id = uuid::Uuid::from_u128(0x0189_d1b4_5b6e_7000_8000_0000_0000_0001);
        assert_eq!(BeginReply::decode(tags::uuid(&id)), Some(BeginReply::Bare(id)));
        assert_eq!(BeginReply::decode(Cbor::Text(id.to_string())), Some(BeginReply::Bare(id)));
        let object = map(vec![
            ("id", tags::uuid(&id)),
            ("isolation", text("serializable")),
            ("snapshot", map(vec![
                ("position", Cbor::Tag(tags::TAG_NONE, Box::new(Cbor::Null))),
                ("age", Cbor::Tag(14, Box::new(Cbor::Array(vec![Cbor::Integer(2.into())])))),
                ("stale", Cbor::Bool(true)),
            ])),
            ("something", text("a later server added")),
        ]);
        let reply = BeginReply::decode(object).unwrap();
        assert_eq!(reply.id(), id);
        let BeginReply::Options { isolation, snapshot, .. } = reply else { panic!("{reply:?}") };
        assert_eq!(isolation, Some(Isolation::Serializable));
        let snapshot = snapshot.unwrap();
        assert_eq!((snapshot.age(), snapshot.is_stale(), snapshot.position()), (Duration::from_secs(2), true, None));
        let without = BeginReply::decode(map(vec![("id", tags::uuid(&id)), ("isolation", text("snapshot"))])).unwrap();
        assert_eq!(without, BeginReply::Options { id, isolation: Some(Isolation::Snapshot), snapshot: None });
    }

    #[test]
    fn no_id_is_no_reply() {
        for value in [Cbor::Null, text("not a uuid"), map(vec![("isolation", text("snapshot"))]), Cbor::Array(vec![])] {
            assert_eq!(BeginReply::decode(value.clone()), None, "{value:?}");
        }
    }

    fn statement(status: &str, result: Cbor) -> Cbor {
        map(vec![("status", text(status)), ("time", text("1µs")), ("result", result)])
    }

    #[test]
    fn a_read_only_answer_loses_its_begin_and_commit() {
        let snapshot = map(vec![
            ("position", Cbor::Tag(tags::TAG_NONE, Box::new(Cbor::Null))),
            ("age", Cbor::Tag(14, Box::new(Cbor::Array(vec![Cbor::Integer(0.into()), Cbor::Integer(5.into())])))),
            ("stale", Cbor::Bool(false)),
        ]);
        let a = statement("OK", text("A"));
        let b = statement("ERR", text("Cannot run CREATE on a read only transaction"));
        let commit = statement("ERR", text("Cannot COMMIT: the transaction was aborted due to a prior error"));
        let answer = ReadOnlyAnswer::split(Cbor::Array(vec![statement("OK", snapshot.clone()), a.clone(), b.clone(), commit.clone()])).unwrap();
        assert_eq!(answer.snapshot, Snapshot { age: Duration::from_nanos(5), stale: false, position: None });
        assert_eq!(answer.statements, Cbor::Array(vec![a, b]));
        assert_eq!(answer.commit, commit);
        // No statement at all (an empty query) still has its block.
        let empty = ReadOnlyAnswer::split(Cbor::Array(vec![statement("OK", snapshot.clone()), statement("OK", Cbor::Null)])).unwrap();
        assert_eq!(empty.statements, Cbor::Array(vec![]));
        // Anything else is refused, not read one statement off.
        for value in [
            Cbor::Array(vec![]),
            Cbor::Array(vec![statement("OK", snapshot.clone())]),
            Cbor::Array(vec![statement("OK", text("A")), statement("OK", text("B")), statement("OK", Cbor::Null)]),
            Cbor::Array(vec![statement("ERR", snapshot), statement("OK", Cbor::Null)]),
            text("not a list"),
        ] {
            assert!(ReadOnlyAnswer::split(value.clone()).is_err(), "{value:?}");
        }
    }

    #[test]
    fn durations_read_back() {
        for d in [Duration::ZERO, Duration::from_nanos(1), Duration::from_secs(86_400 * 365), Duration::new(3, 999_999_999)] {
            assert_eq!(duration_of(&duration(d)), Some(d));
        }
        let odd = Cbor::Tag(14, Box::new(Cbor::Array(vec![Cbor::Integer(1.into()), Cbor::Integer(1_500_000_000.into())])));
        assert_eq!(duration_of(&odd), Some(Duration::from_millis(2500)));
        assert_eq!(duration_of(&Cbor::Tag(14, Box::new(Cbor::Array(vec![])))), Some(Duration::ZERO));
        assert_eq!(duration_of(&Cbor::Tag(14, Box::new(Cbor::Array(vec![Cbor::Integer((-1).into())])))), None);
        assert_eq!(duration_of(&text("1s")), None);
    }
}
