//! The blocking [`Transaction`].

use super::*;

/// An open transaction on a blocking session (see [`Session::begin`] and
/// [`crate::Transaction`]). Dropping it without [`commit`](Self::commit) or
/// [`cancel`](Self::cancel) cancels it.
///
/// ```no_run
/// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
/// let tx = db.begin()?;
/// tx.query("UPDATE account:a SET balance -= 5", ())?.check()?;
/// tx.query("UPDATE account:b SET balance += 5", ())?.check()?;
/// tx.commit()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Transaction<'a> {
    pub(super) inner: Option<crate::Transaction<'a>>,
    pub(super) rt: &'a Rt,
}

impl Transaction<'_> {
    fn tx(&self) -> &crate::Transaction<'_> {
        // Present until commit, cancel or drop.
        self.inner.as_ref().expect("transaction present until it ends")
    }

    /// The transaction id.
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// let tx = db.begin()?;
    /// println!("transaction {}", tx.id());
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> uuid::Uuid {
        self.tx().id()
    }

    /// The isolation the server chose (SurrealDB 4.0 with options; see
    /// [`crate::Transaction::isolation`]).
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// let tx = db.begin_with(surreal_pool::TransactionOptions::new().isolation(surreal_pool::Isolation::Snapshot))?;
    /// println!("{:?}", tx.isolation());
    /// # Ok(()) }
    /// ```
    pub fn isolation(&self) -> Option<crate::Isolation> {
        self.tx().isolation()
    }

    /// The snapshot a read-only transaction reads (see [`crate::Transaction::snapshot`]).
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// use std::time::Duration;
    /// use surreal_pool::{ReadOnly, TransactionOptions};
    /// let tx = db.begin_with(TransactionOptions::new().read_only(ReadOnly::max_staleness(Duration::from_secs(5))))?;
    /// if let Some(snapshot) = tx.snapshot() {
    ///     println!("{snapshot:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn snapshot(&self) -> Option<&crate::Snapshot> {
        self.tx().snapshot()
    }

    /// Runs SurrealQL inside the transaction (see [`crate::Transaction::query`]).
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// let tx = db.begin()?;
    /// tx.query("UPDATE account:a SET balance -= $n", serde_json::json!({"n": 5}))?.check()?;
    /// tx.commit()?;
    /// # Ok(()) }
    /// ```
    pub fn query<B: Serialize>(&self, sql: &str, bindings: B) -> Result<QueryResponse> {
        self.rt.block_on(self.tx().query(sql, bindings))
    }

    /// Commits the transaction.
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// let tx = db.begin()?;
    /// tx.query("CREATE account:c SET balance = 0", ())?.check()?;
    /// tx.commit()?;
    /// # Ok(()) }
    /// ```
    pub fn commit(mut self) -> Result<()> {
        let tx = self.inner.take().expect("transaction present until it ends");
        self.rt.block_on(tx.commit())
    }

    /// Cancels the transaction: none of its writes happen.
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// let tx = db.begin()?;
    /// tx.query("DELETE account", ())?;
    /// tx.cancel()?; // nothing was deleted
    /// # Ok(()) }
    /// ```
    pub fn cancel(mut self) -> Result<()> {
        let tx = self.inner.take().expect("transaction present until it ends");
        self.rt.block_on(tx.cancel())
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        // An unfinished transaction is cancelled in the background, which may need the runtime.
        let _guard = self.rt.enter();
        drop(self.inner.take());
    }
}
