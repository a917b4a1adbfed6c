//! The blocking [`LiveStream`]: live-query notifications as an iterator.

use super::*;

/// A live query as a blocking iterator of notifications (see [`Session::live`] and
/// [`crate::LiveStream`]); dropping it kills the live query.
///
/// [`next`](Iterator::next) waits until the next notification, or returns `None` when the live
/// query has ended (its session's identity changed, or the connection closed). Every wait can
/// be bounded: [`next_timeout`](Self::next_timeout) for one wait, or
/// [`with_timeout`](Self::with_timeout) for every `next`, which then yields
/// `Some(Err(Error::Timeout { .. }))` when nothing came in time and goes on afterwards.
///
/// ```no_run
/// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
/// use std::time::Duration;
/// let mut changes = db.live::<serde_json::Value>("note")?;
/// match changes.next_timeout(Duration::from_secs(5))? {
///     Some(change) => println!("{:?} {}", change.action, change.record),
///     None => println!("the live query ended"),
/// }
/// # Ok(()) }
/// ```
pub struct LiveStream<T> {
    pub(super) inner: Option<crate::LiveStream<T>>,
    pub(super) rt: Arc<Rt>,
    pub(super) timeout: Option<Duration>,
}

impl<T> std::fmt::Debug for LiveStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveStream").field("inner", &self.inner).field("timeout", &self.timeout).finish()
    }
}

impl<T> LiveStream<T> {
    fn stream(&mut self) -> &mut crate::LiveStream<T> {
        // Present until drop.
        self.inner.as_mut().expect("live stream present until drop")
    }

    /// The live query's id on the server now (see [`crate::LiveStream::id`]).
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// let changes = db.live::<serde_json::Value>("note")?;
    /// println!("live query {:?}", changes.id());
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> Option<uuid::Uuid> {
        self.inner.as_ref().and_then(|s| s.id())
    }

    /// Bounds every wait of [`next`](Iterator::next): after `timeout` without a notification it
    /// yields `Some(Err(Error::Timeout { .. }))`, and the next call waits again.
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// use std::time::Duration;
    /// for change in db.live::<serde_json::Value>("note")?.with_timeout(Duration::from_secs(30)) {
    ///     match change {
    ///         Ok(change) => println!("{:?}", change.action),
    ///         Err(e) if e.is_timeout() => println!("quiet for 30 s"),
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl<T: DeserializeOwned> LiveStream<T> {
    /// Waits at most `timeout` for the next notification: `Ok(Some(_))` for one, `Ok(None)`
    /// once the live query has ended, [`Error::Timeout`] if none came in time (the stream goes
    /// on), or the error of a notification that did not decode as `T`.
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::blocking::Session) -> surreal_pool::Result<()> {
    /// let mut changes = db.live::<serde_json::Value>("note")?;
    /// if let Some(change) = changes.next_timeout(std::time::Duration::from_secs(1))? {
    ///     println!("{}", change.record);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Notification<T>>> {
        let rt = self.rt.clone();
        let stream = self.stream();
        // The timer is made inside the runtime (it needs its time driver).
        match rt.block_on(async { tokio::time::timeout(timeout, stream.next()).await }) {
            Ok(next) => next.transpose(),
            Err(_) => Err(Error::Timeout { what: "live notification", after: timeout }),
        }
    }
}

impl<T: DeserializeOwned> Iterator for LiveStream<T> {
    type Item = Result<Notification<T>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.timeout {
            Some(timeout) => self.next_timeout(timeout).transpose(),
            None => {
                let rt = self.rt.clone();
                let stream = self.stream();
                rt.block_on(stream.next())
            }
        }
    }
}

impl<T> Drop for LiveStream<T> {
    fn drop(&mut self) {
        // The kill is sent in the background, which may need the runtime.
        let _guard = self.rt.enter();
        drop(self.inner.take());
    }
}
