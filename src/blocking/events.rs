//! Blocking subscriptions to event channels: a connection's, a pool's.

use super::*;

/// A blocking subscription to a connection's events ([`Connection::events`]) or a pool's
/// node events ([`Pool::events`], `Events<PoolEvent>`).
///
/// The channel keeps the last 256 events for a slow subscriber; events it lost meanwhile are
/// skipped (and logged), and the next call returns the oldest one still kept.
///
/// ```no_run
/// # fn demo(conn: &surreal_pool::blocking::Connection) -> surreal_pool::Result<()> {
/// use std::time::Duration;
/// use surreal_pool::ConnectionEvent;
/// let mut events = conn.events();
/// loop {
///     match events.recv_timeout(Duration::from_secs(60)) {
///         Ok(ConnectionEvent::Restored { .. }) => break,
///         Ok(other) => println!("{other:?}"),
///         Err(e) if e.is_timeout() => println!("still waiting"),
///         Err(e) => return Err(e),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Events<E = ConnectionEvent> {
    pub(super) rx: broadcast::Receiver<E>,
    pub(super) rt: Arc<Rt>,
}

impl<E: Clone> Events<E> {
    /// Waits at most `timeout` for the next event: [`Error::Timeout`] if none came, and
    /// [`Error::Closed`] once the connection (or pool) is gone.
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::blocking::Connection) -> surreal_pool::Result<()> {
    /// let event = conn.events().recv_timeout(std::time::Duration::from_secs(5))?;
    /// # Ok(()) }
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<E> {
        let rx = &mut self.rx;
        self.rt.block_on(async {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Ok(event)) => return Ok(event),
                    Ok(Err(broadcast::error::RecvError::Lagged(n))) => tracing::warn!(missed = n, "a slow event subscriber missed events"),
                    Ok(Err(broadcast::error::RecvError::Closed)) => return Err(Error::Closed),
                    Err(_) => return Err(Error::Timeout { what: "event", after: timeout }),
                }
            }
        })
    }

    /// The next event if one is waiting, without blocking: `Ok(None)` if none is, and
    /// [`Error::Closed`] once the connection (or pool) is gone.
    ///
    /// ```no_run
    /// # fn demo(conn: &surreal_pool::blocking::Connection) -> surreal_pool::Result<()> {
    /// let mut events = conn.events();
    /// while let Some(event) = events.try_recv()? {
    ///     println!("{event:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn try_recv(&mut self) -> Result<Option<E>> {
        loop {
            match self.rx.try_recv() {
                Ok(event) => return Ok(Some(event)),
                Err(broadcast::error::TryRecvError::Lagged(n)) => tracing::warn!(missed = n, "a slow event subscriber missed events"),
                Err(broadcast::error::TryRecvError::Empty) => return Ok(None),
                Err(broadcast::error::TryRecvError::Closed) => return Err(Error::Closed),
            }
        }
    }
}
