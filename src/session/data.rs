//! The data API of a [`Session`]: select, create, insert, update, upsert, merge, patch, delete,
//! relate, run, and transactions (with SurrealDB 4.0's options where the server has them).
//!
//! Every method takes a [`Resource`] — a table name (`"person"`) or a [`RecordId`] — and
//! serializable data, and returns any `T: DeserializeOwned` (a single record, a `Vec` of them,
//! `Option<T>`, or [`serde_json::Value`]). Data is sent in CBOR as given: strings stay strings.
//!
//! [`RecordId`]: crate::RecordId

use ciborium::Value as Cbor;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::wire::envelope::to_cbor;
use crate::session::query::QueryResponse;
use crate::session::{decode, Resource, Session};
use crate::connection::state::Effect;
use crate::session::options::{BeginReply, Isolation, Snapshot, TransactionOptions};
use crate::wire::version::Feature;

/// Serialized data, or nothing for `()` / `None`.
fn data<D: Serialize>(d: &D) -> Result<Option<Cbor>> {
    Ok(match to_cbor(d)? {
        Cbor::Null => None,
        v => Some(v),
    })
}

impl Session {
    async fn data_call<T: DeserializeOwned>(&self, txn: Option<uuid::Uuid>, method: &'static str, params: Vec<Cbor>) -> Result<T> {
        decode(self.call_in(txn, method, params, Effect::None).await?)
    }

    async fn what_data<R: Resource, D: Serialize, T: DeserializeOwned>(&self, method: &'static str, resource: R, d: &D) -> Result<T> {
        let mut params = vec![resource.to_param().0];
        params.extend(data(d)?);
        self.data_call(None, method, params).await
    }

    /// Selects a whole table or one record.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// use surreal_pool::RecordId;
    /// let all: Vec<serde_json::Value> = db.select("person").await?;
    /// let one: Option<serde_json::Value> = db.select(RecordId::new("person", "tobie")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn select<R: Resource, T: DeserializeOwned>(&self, resource: R) -> Result<T> {
        self.data_call(None, "select", vec![resource.to_param().0]).await
    }

    /// Creates a record in a table, or with a given id, with `data` (`()` for none); returns it.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// use surreal_pool::RecordId;
    /// let note: serde_json::Value = db.create(RecordId::new("note", "a b"), serde_json::json!({"text": "hi"})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create<R: Resource, D: Serialize, T: DeserializeOwned>(&self, resource: R, data: D) -> Result<T> {
        self.what_data("create", resource, &data).await
    }

    /// Inserts one record or many (`data` a map or a list of maps) into a table.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// let rows: Vec<serde_json::Value> = db.insert("person", serde_json::json!([{"name": "a"}, {"name": "b"}])).await?;
    /// # Ok(()) }
    /// ```
    pub async fn insert<D: Serialize, T: DeserializeOwned>(&self, table: &str, data: D) -> Result<T> {
        self.what_data("insert", table, &data).await
    }

    /// Inserts relation records (each with `in` and `out`) into an edge table.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// use surreal_pool::RecordId;
    /// // Record ids must be typed (`RecordId`) to be sent as record ids: a `json!` value would
    /// // turn them into strings.
    /// #[derive(serde::Serialize)]
    /// struct Edge { #[serde(rename = "in")] from: RecordId, out: RecordId }
    /// let edge = Edge { from: RecordId::new("person", "a"), out: RecordId::new("post", 1) };
    /// let made: Vec<serde_json::Value> = db.insert_relation("wrote", vec![edge]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn insert_relation<D: Serialize, T: DeserializeOwned>(&self, table: &str, data: D) -> Result<T> {
        self.what_data("insert_relation", table, &data).await
    }

    /// Replaces the content of a record or of every record of a table.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// use surreal_pool::RecordId;
    /// let p: Option<serde_json::Value> = db.update(RecordId::new("person", "a"), serde_json::json!({"name": "A"})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn update<R: Resource, D: Serialize, T: DeserializeOwned>(&self, resource: R, data: D) -> Result<T> {
        self.what_data("update", resource, &data).await
    }

    /// Creates or replaces a record (or every record of a table).
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// use surreal_pool::RecordId;
    /// let p: Option<serde_json::Value> = db.upsert(RecordId::new("person", "a"), serde_json::json!({"name": "A"})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn upsert<R: Resource, D: Serialize, T: DeserializeOwned>(&self, resource: R, data: D) -> Result<T> {
        self.what_data("upsert", resource, &data).await
    }

    /// Merges `data` into a record (or every record of a table).
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// use surreal_pool::RecordId;
    /// let p: Option<serde_json::Value> = db.merge(RecordId::new("person", "a"), serde_json::json!({"age": 3})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn merge<R: Resource, D: Serialize, T: DeserializeOwned>(&self, resource: R, data: D) -> Result<T> {
        self.what_data("merge", resource, &data).await
    }

    /// Applies JSON Patch operations (RFC 6902) to a record (or every record of a table).
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// use surreal_pool::RecordId;
    /// let ops = serde_json::json!([{ "op": "replace", "path": "/name", "value": "B" }]);
    /// let p: Option<serde_json::Value> = db.patch(RecordId::new("person", "a"), ops).await?;
    /// # Ok(()) }
    /// ```
    pub async fn patch<R: Resource, P: Serialize, T: DeserializeOwned>(&self, resource: R, operations: P) -> Result<T> {
        self.what_data("patch", resource, &operations).await
    }

    /// Deletes a record (or every record of a table); returns what was deleted.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// use surreal_pool::RecordId;
    /// let gone: Option<serde_json::Value> = db.delete(RecordId::new("person", "a")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete<R: Resource, T: DeserializeOwned>(&self, resource: R) -> Result<T> {
        self.data_call(None, "delete", vec![resource.to_param().0]).await
    }

    /// Creates an edge `from -> relation -> to` with optional `data` (`()` for none).
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// use surreal_pool::RecordId;
    /// let edge: serde_json::Value =
    ///     db.relate(RecordId::new("person", "a"), "likes", RecordId::new("post", 1), serde_json::json!({"at": "now"})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn relate<F: Resource, W: Resource, D: Serialize, T: DeserializeOwned>(
        &self,
        from: F,
        relation: &str,
        to: W,
        data: D,
    ) -> Result<T> {
        let mut params = vec![from.to_param().0, relation.to_param().0, to.to_param().0];
        params.extend(self::data(&data)?);
        self.data_call(None, "relate", params).await
    }

    /// Runs a function — a built-in (`"string::len"`), a defined one (`"fn::greet"`) — with
    /// arguments (a list, or `()` for none).
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// let n: i64 = db.run("string::len", ("hello",)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn run<A: Serialize, T: DeserializeOwned>(&self, function: &str, args: A) -> Result<T> {
        let args = match to_cbor(&args)? {
            Cbor::Null => Cbor::Array(vec![]),
            a @ Cbor::Array(_) => a,
            _ => return Err(Error::InvalidArgument("function arguments must be a list".into())),
        };
        let none = Cbor::Tag(crate::wire::tags::TAG_NONE, Box::new(Cbor::Null));
        self.data_call(None, "run", vec![Cbor::Text(function.into()), none, args]).await
    }

    /// Begins a transaction (the `begin` RPC). Queries made through the returned
    /// [`Transaction`] run in it until [`commit`](Transaction::commit) or
    /// [`cancel`](Transaction::cancel); dropping it without either cancels it.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// let tx = db.begin().await?;
    /// tx.query("CREATE account:a SET balance = 10", ()).await?.check()?;
    /// tx.query("CREATE account:b SET balance = 0", ()).await?.check()?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn begin(&self) -> Result<Transaction<'_>> {
        // The actor counts the transaction as open when the reply arrives, even if this future
        // is dropped first; the pool resets a session that still has one open.
        let reply = self.call_in(None, "begin", vec![], Effect::Begin).await?;
        let reply = BeginReply::decode(reply.cbor()?).ok_or_else(|| Error::Protocol("`begin` returned no transaction id".into()))?;
        Ok(Transaction::new(self, reply))
    }

    /// Begins a transaction with options (SurrealDB 4.0): read-only over a snapshot of
    /// bounded staleness, and the isolation level. On a server without them (3.x, or one that
    /// did not say its version at connect: see
    /// [`Connection::server_version`](crate::Connection::server_version)) this fails with
    /// [`Error::Unsupported`] and sends nothing; should a server answer as one that ignored
    /// the options (a bare transaction id), the transaction is cancelled and this fails the
    /// same way. Empty options are a plain [`begin`](Self::begin), on any server.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// use std::time::Duration;
    /// use surreal_pool::{Isolation, ReadOnly, TransactionOptions};
    /// // A report that may read a state up to 5 s old, where the storage can serve one.
    /// let tx = db.begin_with(TransactionOptions::new().read_only(ReadOnly::max_staleness(Duration::from_secs(5)))).await?;
    /// let totals: Vec<serde_json::Value> = tx.query("SELECT count() FROM order GROUP ALL", ()).await?.take(0)?;
    /// tx.commit().await?; // releases it: a read-only transaction has nothing to commit
    ///
    /// let tx = db.begin_with(TransactionOptions::new().isolation(Isolation::Serializable)).await?;
    /// tx.query("UPDATE account:a SET balance -= 5; UPDATE account:b SET balance += 5", ()).await?.check()?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn begin_with(&self, options: TransactionOptions) -> Result<Transaction<'_>> {
        if options.is_empty() {
            return self.begin().await;
        }
        let version = self.connection().server_version();
        Feature::BeginOptions.require(version.as_ref())?;
        let reply = self.call_in(None, "begin", vec![options.to_cbor()], Effect::Begin).await?;
        let reply = BeginReply::decode(reply.cbor()?).ok_or_else(|| Error::Protocol("`begin` returned no transaction id".into()))?;
        if let BeginReply::Bare(id) = reply {
            // The server opened a plain transaction: it did not read the options. Never a
            // silent ignore: end it (waiting, so that nothing is left open), and refuse.
            let _ = self.call_in(None, "cancel", vec![crate::wire::tags::uuid(&id)], Effect::EndTransaction(id)).await;
            return Err(Error::Unsupported {
                feature: Feature::BeginOptions.name(),
                needs: Feature::BeginOptions.since(),
                server: format!("{} (it answered as one that ignored them)", version.map_or_else(|| "of an unknown version".to_owned(), |v| v.to_string())),
            });
        }
        Ok(Transaction::new(self, reply))
    }
}

/// An open transaction on a [`Session`]. See [`Session::begin`].
#[derive(Debug)]
pub struct Transaction<'a> {
    session: &'a Session,
    id: uuid::Uuid,
    isolation: Option<Isolation>,
    snapshot: Option<Snapshot>,
    done: bool,
}

impl<'a> Transaction<'a> {
    fn new(session: &'a Session, reply: BeginReply) -> Self {
        let id = reply.id();
        let (isolation, snapshot) = match reply {
            BeginReply::Bare(_) => (None, None),
            BeginReply::Options { isolation, snapshot, .. } => (isolation, snapshot),
        };
        Transaction { session, id, isolation, snapshot, done: false }
    }
}

impl Transaction<'_> {
    /// The transaction id.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// let tx = db.begin().await?;
    /// println!("transaction {}", tx.id());
    /// tx.cancel().await?;
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> uuid::Uuid {
        self.id
    }

    /// The isolation level the server reported for a transaction begun with options
    /// ([`Session::begin_with`]); `None` for a plain [`begin`](Session::begin) (the server's
    /// default: snapshot isolation).
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// use surreal_pool::{Isolation, TransactionOptions};
    /// let tx = db.begin_with(TransactionOptions::new().isolation(Isolation::Serializable)).await?;
    /// assert_eq!(tx.isolation(), Some(Isolation::Serializable));
    /// tx.cancel().await?;
    /// # Ok(()) }
    /// ```
    pub fn isolation(&self) -> Option<Isolation> {
        self.isolation
    }

    /// The snapshot a read-only transaction reads, as the server described it (`None` for a
    /// read-write transaction). See [`Snapshot`].
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// use surreal_pool::{ReadOnly, TransactionOptions};
    /// let tx = db.begin_with(TransactionOptions::new().read_only(ReadOnly::current())).await?;
    /// assert!(!tx.snapshot().unwrap().is_stale());
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Runs SurrealQL inside the transaction.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// let tx = db.begin().await?;
    /// tx.query("UPDATE account:a SET balance -= $n", serde_json::json!({"n": 5})).await?.check()?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn query<B: Serialize>(&self, sql: &str, bindings: B) -> Result<QueryResponse> {
        self.session.query_in(Some(self.id), sql, bindings).await
    }

    /// Commits the transaction.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// let tx = db.begin().await?;
    /// tx.query("CREATE account:c SET balance = 0", ()).await?.check()?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn commit(mut self) -> Result<()> {
        self.done = true;
        self.session.call_in(None, "commit", vec![crate::wire::tags::uuid(&self.id)], Effect::EndTransaction(self.id)).await?;
        Ok(())
    }

    /// Cancels the transaction: none of its writes happen.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// let tx = db.begin().await?;
    /// tx.query("DELETE account", ()).await?;
    /// tx.cancel().await?; // nothing was deleted
    /// # Ok(()) }
    /// ```
    pub async fn cancel(mut self) -> Result<()> {
        self.done = true;
        self.session.call_in(None, "cancel", vec![crate::wire::tags::uuid(&self.id)], Effect::EndTransaction(self.id)).await?;
        Ok(())
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.session.connection().cancel_in_background(self.session.id(), self.id);
        }
    }
}
