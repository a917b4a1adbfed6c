//! The crate's error type.
//!
//! Every fallible call returns [`Error`]. Errors are classified by what the caller can do about
//! them (retry, re-authenticate, fix the input), not by where they came from; the `is_*` helpers
//! answer the common questions. Errors never contain tokens or passwords.

use std::fmt;
use std::time::Duration;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The underlying cause of an error, as [`std::error::Error::source`] returns it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error returned by surreal-pool.
///
/// ```
/// use surreal_pool::Error;
/// fn retry_worthy(e: &Error) -> bool {
///     e.is_timeout() || e.is_connection()
/// }
/// assert!(retry_worthy(&Error::Closed));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The endpoint URL could not be used (bad syntax or a scheme other than `ws`/`wss`).
    #[error("invalid endpoint URL: {0}")]
    InvalidUrl(String),

    /// The WebSocket connection could not be established.
    #[error("could not connect to {endpoint}: {reason}")]
    #[non_exhaustive]
    Connect {
        /// The endpoint (scheme, host, port and path; never credentials).
        endpoint: String,
        /// Why.
        reason: String,
        /// The underlying io, TLS or WebSocket error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// A wait ran past its deadline.
    #[error("timed out after {after:?} waiting for {what}")]
    #[non_exhaustive]
    Timeout {
        /// What was being waited for (`"reply"`, `"connect"`, `"checkout"`, …).
        what: &'static str,
        /// The deadline that passed.
        after: Duration,
    },

    /// The connection (or pool) was closed (explicitly, or because its task ended) before the
    /// request was sent: it did not run.
    #[error("the connection is closed")]
    Closed,

    /// The connection was closed while the request was in flight: it may or may not have
    /// executed on the server.
    #[error("the connection was closed while the request was in flight: it may or may not have executed")]
    ClosedInFlight,

    /// The connection is down: reconnecting has failed the policy's `max_attempts` times. It
    /// keeps retrying in the background; commands fail at once meanwhile (they were not sent).
    #[error("the connection is down (reconnecting in the background); the request was not sent")]
    ConnectionDown,

    /// Every connection of the pool holds its maximum of sessions
    /// (`max_sessions_per_connection`), so no session could be created.
    #[error("every connection holds its maximum of {per_connection} sessions")]
    #[non_exhaustive]
    SessionLimit {
        /// The per-connection cap.
        per_connection: usize,
    },

    /// The session was detached (or lost when its connection could not re-attach it); it
    /// takes no more commands.
    #[error("the session is detached")]
    Detached,

    /// Too many checkouts were waiting for a session already, in all or for this tenant (see
    /// `PoolBuilder::max_waiting`, `max_waiting_per_tenant`): the checkout was refused at once,
    /// nothing was sent. Back off and retry.
    #[error("too many checkouts waiting ({limit} {}): retry later", if *per_tenant { "for this tenant" } else { "in all" })]
    #[non_exhaustive]
    TooManyWaiting {
        /// The bound that was reached.
        limit: usize,
        /// Whether it was the tenant's bound (else the pool's).
        per_tenant: bool,
    },

    /// The connection already has its maximum of requests in flight and a full queue: back off
    /// and retry (see `ConnectionBuilder::max_in_flight`).
    #[error("the connection is overloaded ({in_flight} requests in flight and the queue is full)")]
    #[non_exhaustive]
    Overloaded {
        /// The connection's in-flight limit.
        in_flight: usize,
    },

    /// The socket died while the request was in flight: it may or may not have executed on the
    /// server. It is never resent automatically.
    #[error("connection lost while the request was in flight: it may or may not have executed")]
    ConnectionLost,

    /// The server rejected the credentials or token (signin, signup, authenticate, refresh).
    #[error("authentication failed: {0}")]
    Auth(ServerError),

    /// A token was refused before it was sent: it is not a well-formed JWT, or its `exp` has
    /// passed. No round trip was made and no session was touched.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),

    /// The session's authentication could not be restored (for example after its token expired
    /// during an outage): commands on it fail until the caller authenticates again.
    #[error("the session's authentication was lost; sign in or authenticate again")]
    AuthLost,

    /// The server refused the operation for the current identity.
    #[error("not allowed: {0}")]
    NotAllowed(ServerError),

    /// Any other error reported by the server.
    #[error("server error: {0}")]
    Server(ServerError),

    /// A SurrealQL statement in a `query` failed.
    #[error("statement {index} failed: {error}")]
    #[non_exhaustive]
    Query {
        /// The statement's position in the query, from 0.
        index: usize,
        /// The error the server reported for it.
        error: ServerError,
    },

    /// The server sent something that is not valid SurrealDB RPC.
    #[error("protocol error: {0}")]
    Protocol(String),

    /// A value could not be encoded for the wire. The encoder's error is the
    /// [`source`](std::error::Error::source).
    #[error("could not encode the request: {0}")]
    Encode(#[source] BoxError),

    /// A result could not be decoded into the requested type. The decoder's error is the
    /// [`source`](std::error::Error::source).
    #[error("could not decode the result: {0}")]
    Decode(#[source] BoxError),

    /// An argument given by the caller cannot be used.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The server does not have what the request asks for (for example transaction options,
    /// which need SurrealDB 4.0), going by the version it reported at connect (see
    /// [`Connection::server_version`](crate::Connection::server_version)), or by its answer.
    /// Nothing was left open on the server.
    #[error("{feature} needs SurrealDB {needs} or later; the server is {server}")]
    #[non_exhaustive]
    Unsupported {
        /// What was asked for.
        feature: &'static str,
        /// The first SurrealDB version that has it (`"4.0"`).
        needs: &'static str,
        /// The server's version as it reported it, or `of an unknown version`.
        server: String,
    },
}

impl Error {
    /// The credentials or token were refused (by the server, or before sending: see
    /// [`Error::InvalidToken`]), or the session's identity was lost.
    ///
    /// ```
    /// use surreal_pool::Error;
    /// assert!(Error::AuthLost.is_auth());
    /// assert!(Error::InvalidToken("not a JWT").is_auth());
    /// assert!(!Error::Closed.is_auth());
    /// ```
    pub fn is_auth(&self) -> bool {
        matches!(self, Error::Auth(_) | Error::AuthLost | Error::InvalidToken(_))
    }

    /// The token presented had expired.
    ///
    /// ```
    /// use surreal_pool::{Error, ServerError};
    /// let refused = Error::Auth(ServerError::new(-32002, "NotAllowed", "There was a problem with authentication"));
    /// assert!(refused.is_auth() && !refused.is_token_expired());
    /// ```
    pub fn is_token_expired(&self) -> bool {
        self.server_error().is_some_and(ServerError::is_token_expired)
    }

    /// The server session had expired.
    ///
    /// ```
    /// use surreal_pool::{Error, ServerError};
    /// assert!(!Error::Server(ServerError::new(-32000, "Internal", "boom")).is_session_expired());
    /// ```
    pub fn is_session_expired(&self) -> bool {
        self.server_error().is_some_and(ServerError::is_session_expired)
    }

    /// The server refused the operation for the current identity: the whole request
    /// ([`Error::NotAllowed`]), or a statement of a query ([`Error::Query`] whose error is of
    /// kind `NotAllowed`, e.g. a record user's `DEFINE TABLE`).
    ///
    /// ```
    /// use surreal_pool::{Error, ServerError};
    /// assert!(Error::NotAllowed(ServerError::new(-32002, "NotAllowed", "no")).is_not_allowed());
    /// assert!(!Error::Server(ServerError::new(-32000, "Internal", "boom")).is_not_allowed());
    /// ```
    pub fn is_not_allowed(&self) -> bool {
        match self {
            Error::NotAllowed(_) => true,
            Error::Query { error, .. } => error.is_not_allowed(),
            _ => false,
        }
    }

    /// The request was refused for lack of capacity ([`Error::Overloaded`],
    /// [`Error::SessionLimit`], [`Error::TooManyWaiting`]): back off and retry.
    ///
    /// ```
    /// # async fn demo(pool: &surreal_pool::Pool) -> surreal_pool::Result<()> {
    /// match pool.get().await {
    ///     Err(e) if e.is_overloaded() => { /* answer 503 and let the client retry later */ }
    ///     other => { other?; }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_overloaded(&self) -> bool {
        matches!(self, Error::Overloaded { .. } | Error::SessionLimit { .. } | Error::TooManyWaiting { .. })
    }

    /// The request may have run on the server although no reply says so: the socket was lost
    /// or closed while it was in flight ([`Error::ConnectionLost`], [`Error::ClosedInFlight`]).
    /// Retry only what is idempotent.
    ///
    /// ```
    /// use surreal_pool::Error;
    /// assert!(Error::ClosedInFlight.may_have_run());
    /// assert!(!Error::Closed.may_have_run());
    /// ```
    pub fn may_have_run(&self) -> bool {
        matches!(self, Error::ConnectionLost | Error::ClosedInFlight)
    }

    /// A wait ran past its deadline.
    ///
    /// ```
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// if let Err(e) = db.query("SLEEP 1m", ()).await {
    ///     assert!(e.is_timeout(), "the request timeout (30 s by default) ends the wait");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// The server does not have what the request asks for ([`Error::Unsupported`]): a feature
    /// of a newer SurrealDB.
    ///
    /// ```
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// use surreal_pool::{ReadOnly, TransactionOptions};
    /// match db.begin_with(TransactionOptions::new().read_only(ReadOnly::current())).await {
    ///     Err(e) if e.is_unsupported() => { /* SurrealDB 3.x: fall back to `db.begin()` */ }
    ///     other => { other?.cancel().await?; }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Error::Unsupported { .. })
    }

    /// The connection is unusable or was lost (connect failure, closed, lost mid-request).
    ///
    /// ```
    /// use surreal_pool::Error;
    /// assert!(Error::ConnectionLost.is_connection());
    /// assert!(!Error::AuthLost.is_connection());
    /// ```
    pub fn is_connection(&self) -> bool {
        matches!(self, Error::Connect { .. } | Error::Closed | Error::ClosedInFlight | Error::ConnectionLost | Error::ConnectionDown)
    }

    /// The error the server sent, if this error came from the server.
    ///
    /// ```
    /// use surreal_pool::{Error, ServerError};
    /// let e = Error::Server(ServerError::new(0, "Thrown", "boom"));
    /// assert_eq!(e.server_error().map(|s| s.message()), Some("boom"));
    /// assert!(Error::Closed.server_error().is_none());
    /// ```
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            Error::Auth(e) | Error::NotAllowed(e) | Error::Server(e) => Some(e),
            Error::Query { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// An error object as the server sent it: `{code, kind, message, details}`.
///
/// ```
/// # use surreal_pool::ServerError;
/// let e = ServerError::new(-32002, "NotAllowed", "There was a problem with authentication");
/// assert_eq!(e.kind(), "NotAllowed");
/// ```
#[derive(Clone, PartialEq)]
pub struct ServerError {
    code: i64,
    kind: String,
    message: String,
    details: Option<serde_json::Value>,
}

impl ServerError {
    /// Builds an error object (mainly for tests and fakes).
    ///
    /// ```
    /// let e = surreal_pool::ServerError::new(-32000, "Internal", "boom");
    /// assert_eq!(e.to_string(), "boom (Internal, code -32000)");
    /// ```
    pub fn new(code: i64, kind: impl Into<String>, message: impl Into<String>) -> Self {
        ServerError { code, kind: kind.into(), message: message.into(), details: None }
    }

    pub(crate) fn with_details(mut self, details: Option<serde_json::Value>) -> Self {
        self.details = details.filter(|d| !d.is_null());
        self
    }

    /// The JSON-RPC style code (`-32000`, `-32002`, …). `0` when the server sent none
    /// (statement errors inside a `query` carry no code).
    ///
    /// ```
    /// assert_eq!(surreal_pool::ServerError::new(-32000, "Internal", "boom").code(), -32000);
    /// ```
    pub fn code(&self) -> i64 {
        self.code
    }

    /// The error kind (`"NotAllowed"`, `"NotFound"`, `"Validation"`, `"Internal"`, …).
    ///
    /// ```
    /// assert_eq!(surreal_pool::ServerError::new(-32000, "Internal", "boom").kind(), "Internal");
    /// ```
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The server's message.
    ///
    /// ```
    /// assert_eq!(surreal_pool::ServerError::new(-32000, "Internal", "boom").message(), "boom");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The structured details, e.g. `{"kind":"Auth","details":{"kind":"TokenExpired"}}`.
    ///
    /// ```
    /// // An error built with `new` carries no details.
    /// assert_eq!(surreal_pool::ServerError::new(-32000, "Internal", "boom").details(), None);
    /// ```
    pub fn details(&self) -> Option<&serde_json::Value> {
        self.details.as_ref()
    }

    /// The innermost `kind` found by following `details.details…`, e.g. `"TokenExpired"`.
    ///
    /// ```
    /// assert_eq!(surreal_pool::ServerError::new(-32002, "NotAllowed", "no").detail_kind(), None);
    /// ```
    pub fn detail_kind(&self) -> Option<&str> {
        let mut current = self.details.as_ref()?;
        let mut found = None;
        loop {
            if let Some(kind) = current.get("kind").and_then(|k| k.as_str()) {
                found = Some(kind);
            }
            match current.get("details") {
                Some(next) if next.is_object() => current = next,
                _ => return found,
            }
        }
    }

    fn has_detail_kind(&self, wanted: &str) -> bool {
        let mut current = self.details.as_ref();
        while let Some(value) = current {
            if value.get("kind").and_then(|k| k.as_str()) == Some(wanted) {
                return true;
            }
            current = value.get("details");
        }
        false
    }

    /// The token presented had expired (`TokenExpired`).
    ///
    /// ```
    /// assert!(!surreal_pool::ServerError::new(-32002, "NotAllowed", "no").is_token_expired());
    /// ```
    pub fn is_token_expired(&self) -> bool {
        self.has_detail_kind("TokenExpired")
    }

    /// The server session had expired (`SessionExpired`).
    ///
    /// ```
    /// assert!(!surreal_pool::ServerError::new(-32000, "Internal", "boom").is_session_expired());
    /// ```
    pub fn is_session_expired(&self) -> bool {
        self.has_detail_kind("SessionExpired")
    }

    /// An authentication failure (`details.kind == "Auth"`).
    ///
    /// ```
    /// // Only errors whose details say `Auth` are authentication failures.
    /// assert!(!surreal_pool::ServerError::new(-32002, "NotAllowed", "no").is_auth());
    /// ```
    pub fn is_auth(&self) -> bool {
        self.has_detail_kind("Auth")
    }

    /// The server refused the operation (`kind == "NotAllowed"`).
    ///
    /// ```
    /// assert!(surreal_pool::ServerError::new(-32002, "NotAllowed", "no").is_not_allowed());
    /// ```
    pub fn is_not_allowed(&self) -> bool {
        self.kind == "NotAllowed"
    }

    /// The request named a session the server does not have.
    ///
    /// ```
    /// assert!(!surreal_pool::ServerError::new(-32000, "NotFound", "no table").is_session_not_found());
    /// ```
    pub fn is_session_not_found(&self) -> bool {
        self.kind == "NotFound" && self.has_detail_kind("Session")
    }

    /// The node refused the call before running it because of its own state: its memory
    /// guard is engaged ("The server is unable to handle the request") or it is shutting down
    /// (SurrealDB 3.3 and 4.0 send these as internal errors with fixed messages). A pool counts
    /// these against the node's health.
    pub(crate) fn is_node_refusal(&self) -> bool {
        matches!(self.message.as_str(), "The server is unable to handle the request" | "The server is gracefully shutting down")
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.message, self.kind)?;
        if let Some(detail) = self.detail_kind().filter(|d| *d != self.kind) {
            write!(f, "/{detail}")?;
        }
        if self.code != 0 {
            write!(f, ", code {}", self.code)?;
        }
        f.write_str(")")
    }
}

impl fmt::Debug for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerError")
            .field("code", &self.code)
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("details", &self.details)
            .finish()
    }
}

/// Maps a server error object to the crate's error type.
pub(crate) fn classify(e: ServerError) -> Error {
    if e.is_auth() && !e.is_not_allowed_action() {
        Error::Auth(e)
    } else if e.is_not_allowed() {
        Error::NotAllowed(e)
    } else {
        Error::Server(e)
    }
}

impl ServerError {
    /// An `Auth/NotAllowed` detail is a permission refusal, not a credential failure.
    fn is_not_allowed_action(&self) -> bool {
        self.detail_kind() == Some("NotAllowed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expired() -> ServerError {
        ServerError::new(-32002, "NotAllowed", "The token has expired").with_details(Some(
            serde_json::json!({"kind": "Auth", "details": {"kind": "TokenExpired"}}),
        ))
    }

    #[test]
    fn detail_kind_follows_the_nesting() {
        let e = expired();
        assert_eq!(e.detail_kind(), Some("TokenExpired"));
        assert!(e.is_token_expired());
        assert!(e.is_auth());
        assert!(!e.is_session_expired());
        assert_eq!(e.to_string(), "The token has expired (NotAllowed/TokenExpired, code -32002)");
    }

    #[test]
    fn helpers_classify_variants() {
        assert!(Error::Auth(expired()).is_auth());
        assert!(Error::Auth(expired()).is_token_expired());
        assert!(Error::ConnectionLost.is_connection());
        assert!(Error::Timeout { what: "reply", after: Duration::from_secs(1) }.is_timeout());
        assert!(!Error::Closed.is_auth());
        assert!(Error::Overloaded { in_flight: 4096 }.is_overloaded());
        assert!(Error::SessionLimit { per_connection: 128 }.is_overloaded());
        assert!(Error::TooManyWaiting { limit: 256, per_tenant: true }.is_overloaded());
        assert!(Error::Query { index: 1, error: ServerError::new(-32002, "NotAllowed", "no") }.is_not_allowed());
        assert!(!Error::Query { index: 1, error: ServerError::new(0, "Thrown", "no") }.is_not_allowed());
        let query = Error::Query { index: 0, error: ServerError::new(0, "Thrown", "boom") };
        assert_eq!(query.server_error().map(|s| s.message()), Some("boom"));
    }
}
