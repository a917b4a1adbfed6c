//! [`ConnectionBuilder`]: every setting of a [`Connection`](super::Connection), with its
//! default, and the `Config` the actor runs with.

use std::time::Duration;

use super::reconnect::ReconnectPolicy;
use super::Connection;
use crate::error::{Error, Result};

/// Default per-request timeout.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default connect timeout (TCP + WebSocket handshake).
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default largest message accepted from the server.
pub(crate) const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;
/// Default capacity of the command channel into the actor.
pub(crate) const DEFAULT_CHANNEL_CAPACITY: usize = 1024;
/// Default idle time before an RPC ping.
pub(crate) const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// Default time without a frame before the socket counts as stalled.
pub(crate) const DEFAULT_WATCHDOG_TIMEOUT: Duration = Duration::from_secs(15);
/// Default limit of requests written and not yet answered on one connection.
pub(crate) const DEFAULT_MAX_IN_FLIGHT: usize = 4096;
/// Default margin before access-token expiry at which sessions with a refresh token renew.
pub(crate) const DEFAULT_RENEW_MARGIN: Duration = Duration::from_secs(60);

/// Configures and opens a [`Connection`].
///
/// | setting | default |
/// |---|---|
/// | [`request_timeout`](Self::request_timeout) | 30 s |
/// | [`connect_timeout`](Self::connect_timeout) | 10 s |
/// | [`max_message_size`](Self::max_message_size) | 64 MiB |
/// | [`channel_capacity`](Self::channel_capacity) | 1,024 commands |
/// | [`max_in_flight`](Self::max_in_flight) | 4,096 requests |
/// | [`keepalive_interval`](Self::keepalive_interval) | 5 s |
/// | [`watchdog_timeout`](Self::watchdog_timeout) | 15 s |
/// | [`renew_margin`](Self::renew_margin) | 60 s |
/// | [`remember_credentials`](Self::remember_credentials) | off |
/// | [`reconnect`](Self::reconnect) | [`ReconnectPolicy::default`] |
/// | [`add_root_certificates_pem`](Self::add_root_certificates_pem) | the public web roots only |
///
/// ```no_run
/// # async fn demo() -> surreal_pool::Result<()> {
/// use std::time::Duration;
/// let conn = surreal_pool::Connection::builder("ws://127.0.0.1:8000")
///     .request_timeout(Duration::from_secs(5))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ConnectionBuilder {
    endpoints: Vec<String>,
    config: Config,
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Normalized endpoints; the first is tried first.
    pub(crate) endpoints: Vec<String>,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) channel_capacity: usize,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) keepalive_interval: Duration,
    pub(crate) watchdog_timeout: Duration,
    pub(crate) remember_credentials: bool,
    pub(crate) renew_margin: Duration,
    pub(crate) max_in_flight: usize,
    /// Extra trusted roots (DER), on top of the public web roots, for `wss://`.
    pub(crate) root_certificates: Vec<Vec<u8>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoints: Vec::new(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
            reconnect: ReconnectPolicy::default(),
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            watchdog_timeout: DEFAULT_WATCHDOG_TIMEOUT,
            remember_credentials: false,
            renew_margin: DEFAULT_RENEW_MARGIN,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            root_certificates: Vec::new(),
        }
    }
}

impl ConnectionBuilder {
    /// A builder for `endpoint`: `ws://host:port` or `wss://host:port`; `/rpc` is added when the
    /// URL has no path.
    ///
    /// ```
    /// let builder = surreal_pool::ConnectionBuilder::new("ws://127.0.0.1:8000");
    /// ```
    pub fn new(endpoint: impl Into<String>) -> Self {
        ConnectionBuilder { endpoints: vec![endpoint.into()], config: Config::default() }
    }

    /// Replaces every endpoint with this one (keeps the other settings).
    pub(crate) fn with_endpoints(mut self, endpoint: String) -> Self {
        self.endpoints = vec![endpoint];
        self
    }

    /// Adds another endpoint: a node of the same SurrealDB cluster that reconnects may fail over
    /// to (see [`ReconnectPolicy::failover_after`]).
    ///
    /// ```
    /// let builder = surreal_pool::Connection::builder("ws://10.0.0.1:8000").endpoint("ws://10.0.0.2:8000");
    /// ```
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoints.push(endpoint.into());
        self
    }

    /// How to reconnect after the socket fails (default: [`ReconnectPolicy::default`]).
    ///
    /// ```
    /// use surreal_pool::{Connection, ReconnectPolicy};
    /// let builder = Connection::builder("ws://127.0.0.1:8000").reconnect(ReconnectPolicy::default().max_attempts(5));
    /// ```
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.config.reconnect = policy;
        self
    }

    /// How long the socket may be idle before the connection sends an RPC `ping` (default 5 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").keepalive_interval(Duration::from_secs(2));
    /// ```
    pub fn keepalive_interval(mut self, interval: Duration) -> Self {
        self.config.keepalive_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How long without any frame from the server (or with a write blocked) before the socket is
    /// declared stalled and replaced (default 15 s). Should exceed the keepalive interval.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000")
    ///     .keepalive_interval(Duration::from_secs(2))
    ///     .watchdog_timeout(Duration::from_secs(6));
    /// ```
    pub fn watchdog_timeout(mut self, timeout: Duration) -> Self {
        self.config.watchdog_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Remember signin/signup credentials (in memory only) so that a session whose token
    /// expired during an outage and has no refresh token can sign in again after a reconnect
    /// (default off: only tokens are replayed, never passwords).
    ///
    /// ```
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").remember_credentials(true);
    /// ```
    pub fn remember_credentials(mut self, on: bool) -> Self {
        self.config.remember_credentials = on;
        self
    }

    /// Sessions holding a refresh token renew their tokens this long before the access token
    /// expires (default 60 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").renew_margin(Duration::from_secs(120));
    /// ```
    pub fn renew_margin(mut self, margin: Duration) -> Self {
        self.config.renew_margin = margin;
        self
    }

    /// The longest a request may take, from sending to reply (default 30 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").request_timeout(Duration::from_secs(5));
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// The longest the TCP connect and WebSocket handshake may take (default 10 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").connect_timeout(Duration::from_secs(2));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// The largest message accepted from the server (default 64 MiB).
    ///
    /// ```
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").max_message_size(16 << 20);
    /// ```
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.config.max_message_size = bytes;
        self
    }

    /// Most requests written to the socket and not yet answered (default 4096). Beyond it the
    /// connection stops writing; requests queue (up to the channel capacity), and a request that
    /// finds both the in-flight limit reached and the queue full fails at once with
    /// [`Error::Overloaded`](crate::Error::Overloaded).
    ///
    /// ```
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").max_in_flight(256);
    /// ```
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.config.max_in_flight = n.max(1);
        self
    }

    /// Trusts these PEM certificates (e.g. a private CA) for `wss://`, in addition to the public
    /// web roots (default: the public web roots only). A PEM that holds no certificate makes
    /// [`connect`](Self::connect) fail with [`Error::InvalidArgument`](crate::Error::InvalidArgument).
    ///
    /// ```no_run
    /// # async fn demo() -> surreal_pool::Result<()> {
    /// let ca = std::fs::read("ca.pem").unwrap();
    /// let conn = surreal_pool::Connection::builder("wss://db.internal:8000")
    ///     .add_root_certificates_pem(&ca)
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Self {
        use rustls::pki_types::pem::PemObject;
        let mut found = false;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem).flatten() {
            self.config.root_certificates.push(cert.to_vec());
            found = true;
        }
        if !found {
            // Remembered as an invalid (empty) certificate so that connect reports it.
            self.config.root_certificates.push(Vec::new());
        }
        self
    }

    /// How many requests may wait for the actor before senders wait (default 1024).
    ///
    /// ```
    /// let builder = surreal_pool::Connection::builder("ws://127.0.0.1:8000").channel_capacity(4096);
    /// ```
    pub fn channel_capacity(mut self, capacity: usize) -> Self {
        self.config.channel_capacity = capacity.max(1);
        self
    }

    /// Opens the connection and starts its task. Must be called within a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn demo() -> surreal_pool::Result<()> {
    /// let conn = surreal_pool::ConnectionBuilder::new("ws://127.0.0.1:8000").connect().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<Connection> {
        let mut config = self.config;
        config.endpoints = self.endpoints.iter().map(|e| normalize_endpoint(e)).collect::<Result<_>>()?;
        Connection::open(config).await
    }
}

/// Checks the scheme and adds `/rpc` when the URL has no path. Credentials in the URL are refused
/// (they would end up in logs); sign in instead.
pub(crate) fn normalize_endpoint(url: &str) -> Result<String> {
    let (scheme, rest) =
        url.split_once("://").ok_or_else(|| Error::InvalidUrl(format!("`{url}` has no scheme (use ws:// or wss://)")))?;
    if !matches!(scheme, "ws" | "wss") {
        return Err(Error::InvalidUrl(format!("unsupported scheme `{scheme}` (use ws:// or wss://)")));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err(Error::InvalidUrl(format!("`{scheme}://` has no host")));
    }
    if authority.contains('@') {
        return Err(Error::InvalidUrl("credentials in the URL are not supported; use signin".into()));
    }
    let path = &rest[authority.len()..];
    Ok(if path.is_empty() || path == "/" { format!("{scheme}://{authority}/rpc") } else { url.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked_and_completed() {
        assert_eq!(normalize_endpoint("ws://127.0.0.1:8000").unwrap(), "ws://127.0.0.1:8000/rpc");
        assert_eq!(normalize_endpoint("wss://db.example/").unwrap(), "wss://db.example/rpc");
        assert_eq!(normalize_endpoint("ws://h:1/custom").unwrap(), "ws://h:1/custom");
        for bad in ["127.0.0.1:8000", "http://h:1", "ws://", "ws://u:p@h:1"] {
            assert!(matches!(normalize_endpoint(bad), Err(Error::InvalidUrl(_))), "{bad}");
        }
    }

    /// The table in `ConnectionBuilder`'s docs says these.
    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.max_message_size, 64 << 20);
        assert_eq!(c.channel_capacity, 1024);
        assert_eq!(c.max_in_flight, 4096);
        assert_eq!(c.keepalive_interval, Duration::from_secs(5));
        assert_eq!(c.watchdog_timeout, Duration::from_secs(15));
        assert_eq!(c.renew_margin, Duration::from_secs(60));
        assert!(!c.remember_credentials);
        assert!(c.root_certificates.is_empty());
    }
}
