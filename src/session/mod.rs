//! A server session: the unit of namespace, database, variables and identity.


pub(crate) mod data;
pub(crate) mod live;
pub(crate) mod options;
pub(crate) mod query;

use ciborium::Value as Cbor;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::{AccessToken, Credentials, Record, Tokens};
use crate::wire::tags;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::wire::envelope::{to_cbor, Payload};
use crate::session::options::{QueryOptions, ReadOnlyAnswer};
use crate::session::query::QueryResponse;
use crate::connection::state::{AuthState, Effect, Remembered};
use crate::wire::record_id::RecordId;

/// For signin, signup and refresh every refusal is an authentication failure (record access
/// reports bad credentials as a generic error: "No record was returned").
fn auth_error(e: Error) -> Error {
    match e {
        Error::NotAllowed(e) | Error::Server(e) if !e.is_session_not_found() && e.kind() != "Validation" => Error::Auth(e),
        other => other,
    }
}

/// What a data method operates on: a whole table (`&str`) or one record ([`RecordId`]).
pub trait Resource: sealed::Sealed {
    #[doc(hidden)]
    fn to_param(&self) -> sealed::Param;
}

mod sealed {
    pub trait Sealed {}

    /// The encoded resource; opaque outside the crate, so no CBOR type is part of the public API.
    pub struct Param(pub(crate) ciborium::Value);
}

impl sealed::Sealed for &str {}
impl Resource for &str {
    fn to_param(&self) -> sealed::Param {
        sealed::Param(Cbor::Tag(tags::TAG_TABLE, Box::new(Cbor::Text((*self).to_owned()))))
    }
}
impl sealed::Sealed for String {}
impl Resource for String {
    fn to_param(&self) -> sealed::Param {
        self.as_str().to_param()
    }
}
impl sealed::Sealed for &RecordId {}
impl Resource for &RecordId {
    fn to_param(&self) -> sealed::Param {
        sealed::Param(tags::record_id(self))
    }
}
impl sealed::Sealed for RecordId {}
impl Resource for RecordId {
    fn to_param(&self) -> sealed::Param {
        sealed::Param(tags::record_id(self))
    }
}

/// One SurrealDB server session on a [`Connection`].
///
/// A session has its own namespace, database, variables and identity. Its methods mirror the
/// official SDKs' authentication and data API. [`Connection::session`] gives the connection's
/// default session; [`Connection::attach`] creates more on the same socket.
///
/// # Identity
///
/// Signin, signup, authenticate, refresh, invalidate and reset change the session's identity.
/// If one of them fails (or its reply is lost with the socket), the identity the server holds is
/// no longer known for certain: the session then refuses every other command with
/// [`Error::AuthLost`] until an auth command succeeds. A command never runs under an identity
/// the caller did not establish.
///
/// ```no_run
/// # async fn demo(conn: surreal_pool::Connection) -> surreal_pool::Result<()> {
/// use surreal_pool::Record;
/// let session = conn.attach().await?;
/// let tokens = session
///     .signin(&Record::new("surrealdb", "docs", "account", serde_json::json!({
///         "email": "info@surrealdb.com", "password": "123456",
///     })))
///     .await?;
/// let me = session.info().await?;
/// session.detach().await?;
/// # Ok(()) }
/// ```
pub struct Session {
    conn: Connection,
    id: Option<uuid::Uuid>,
    detached: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("id", &self.id).field("endpoint", &self.conn.endpoint()).finish()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let (Some(id), false) = (self.id, self.detached) {
            self.conn.detach_in_background(id);
        }
    }
}

impl Session {
    pub(crate) fn new(conn: Connection, id: Option<uuid::Uuid>) -> Self {
        Session { conn, id, detached: false }
    }

    /// The server session id (`None` for the connection's default session).
    ///
    /// ```no_run
    /// # async fn demo(conn: surreal_pool::Connection) -> surreal_pool::Result<()> {
    /// assert_eq!(conn.session().id(), None);
    /// let attached = conn.attach().await?;
    /// assert!(attached.id().is_some());
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> Option<uuid::Uuid> {
        self.id
    }

    /// The connection this session lives on.
    ///
    /// ```no_run
    /// # fn demo(db: &surreal_pool::Session) {
    /// println!("on {}", db.connection().endpoint());
    /// # }
    /// ```
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The access token this session was last authenticated with, as confirmed by the server.
    /// `None` when anonymous or when the identity is unknown.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session, jwt: &str) -> surreal_pool::Result<()> {
    /// db.authenticate(jwt).await?;
    /// assert_eq!(db.token().unwrap().as_str(), jwt);
    /// # Ok(()) }
    /// ```
    pub fn token(&self) -> Option<AccessToken> {
        self.conn.shared().sessions().get(&self.id).and_then(|s| s.auth.access().cloned())
    }

    /// Whether the server-side identity is known (no auth command failed or is unanswered).
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session, jwt: &str) -> surreal_pool::Result<()> {
    /// if !db.auth_known() {
    ///     db.authenticate(jwt).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn auth_known(&self) -> bool {
        self.conn
            .shared()
            .sessions()
            .get(&self.id)
            .is_some_and(|s| s.auth != AuthState::Unknown && s.effects_in_flight == 0)
    }

    /// Whether the connection still has this server session (not detached, nor lost when a
    /// reconnect could not re-attach it).
    pub(crate) fn is_attached(&self) -> bool {
        self.with_state(|s| s.is_some())
    }

    /// Runs `f` on the server-confirmed state of this session (`None` once detached).
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(Option<&crate::connection::state::SessionState>) -> R) -> R {
        f(self.conn.shared().sessions().get(&self.id))
    }

    /// Marks the session in use (a pool's checkout: see `SessionState::take_into_use`) and runs
    /// `f` on its state, under the one lock.
    pub(crate) fn with_state_in_use<R>(&self, f: impl FnOnce(Option<&crate::connection::state::SessionState>) -> R) -> R {
        let shared = self.conn.shared();
        let holding = shared.holding.load(std::sync::atomic::Ordering::SeqCst);
        // A stream still read keeps its session's identity (and the move waits): looked up
        // before the sessions' lock, never under it.
        let read = holding && shared.live().session_is_read(self.id);
        let remembered = self.conn.config().remember_credentials;
        let mut sessions = shared.sessions();
        let state = sessions.get_mut(&self.id).map(|st| {
            st.take_into_use(holding, read || (remembered && st.credentials.is_some()));
            &*st
        });
        f(state)
    }

    /// [`with_state`](Self::with_state), with the state to change (a pool marks its sessions
    /// idle).
    pub(crate) fn with_state_mut<R>(&self, f: impl FnOnce(Option<&mut crate::connection::state::SessionState>) -> R) -> R {
        f(self.conn.shared().sessions().get_mut(&self.id))
    }

    async fn call(&self, method: &'static str, params: Vec<Cbor>, effect: Effect) -> Result<Cbor> {
        self.call_in(None, method, params, effect).await?.cbor()
    }

    /// Sends a request on this session (inside transaction `txn` if given), refusing non-auth
    /// commands while the identity is unknown.
    pub(crate) async fn call_in(&self, txn: Option<uuid::Uuid>, method: &'static str, params: Vec<Cbor>, effect: Effect) -> Result<Payload> {
        {
            let sessions = self.conn.shared().sessions();
            match sessions.get(&self.id) {
                None => return Err(Error::Detached),
                Some(state) if state.auth == AuthState::Unknown && crate::connection::needs_identity(method, &effect) => {
                    return Err(Error::AuthLost)
                }
                Some(_) => {}
            }
        }
        let id = self.conn.shared().next_id();
        let frame = bytes::Bytes::from(crate::wire::envelope::encode_request_in(id, method, params, self.id, txn)?);
        // Kept for one more try should the server session have expired: the frame is shared,
        // not copied, and the effect of a plain request is `None`.
        let again = (!effect.changes_identity()).then(|| (frame.clone(), effect.clone()));
        match self.conn.send_frame(id, self.id, method, frame, effect).await {
            Err(e) if e.is_session_expired() => match again {
                Some((frame, effect)) if self.renew_expired_session().await? => {
                    self.conn.send_frame(id, self.id, method, frame, effect).await
                }
                _ => Err(e),
            },
            other => other,
        }
    }

    /// The server refused a request because the server session expired (its `FOR SESSION`
    /// duration ended) while the session's token may still be valid (`FOR TOKEN` longer). The
    /// server refuses such a request before running any of it, so authenticating the session
    /// again with its own token and sending the request once more runs it exactly once, as the
    /// same identity. `Ok(false)` when there is no such token (anonymous, unknown, expired, or
    /// another identity change in flight): the caller gets the original error.
    async fn renew_expired_session(&self) -> Result<bool> {
        let token = self.with_state(|s| s.filter(|s| s.auth_in_flight == 0).and_then(|s| s.auth.access().cloned()).filter(|t| !t.expired()));
        let Some(token) = token else { return Ok(false) };
        tracing::debug!(session = ?self.id, "server session expired with its token still valid: authenticating it again");
        let params = vec![Cbor::Text(token.as_str().to_owned())];
        self.conn.request(self.id, "authenticate", params, Effect::Reauthenticated(token)).await.map_err(auth_error)?;
        self.conn.shared().sessions_renewed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(true)
    }

    // ----- authentication -----

    /// Signs in as a root, namespace, database or record user; returns the tokens.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// use surreal_pool::{Database, Namespace, Root};
    /// db.signin(&Root::new("root", "root")).await?;
    /// db.signin(&Namespace::new("surrealdb", "tobie", "123456")).await?;
    /// let tokens = db.signin(&Database::new("surrealdb", "docs", "tobie", "123456")).await?;
    /// assert!(tokens.refresh.is_none());
    /// # Ok(()) }
    /// ```
    pub async fn signin<C: Credentials + ?Sized>(&self, credentials: &C) -> Result<Tokens> {
        let params = credentials.to_params()?.0;
        let remember = self.conn.config().remember_credentials.then(|| Remembered::new(params.clone()));
        let reply = self.call("signin", vec![params], Effect::SignedIn { remember }).await.map_err(auth_error)?;
        Tokens::from_result(&reply)
    }

    /// Signs up a record user through a record access method (`DEFINE ACCESS … TYPE RECORD
    /// SIGNUP …`); returns the tokens (with a refresh token when the method has `WITH REFRESH`).
    ///
    /// Only [`Record`] credentials can sign up; that is checked at compile time.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// use surreal_pool::Record;
    /// let tokens = db
    ///     .signup(&Record::new("surrealdb", "docs", "account", serde_json::json!({
    ///         "email": "info@surrealdb.com", "password": "123456",
    ///     })))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn signup<V: Serialize + Send + Sync>(&self, credentials: &Record<V>) -> Result<Tokens> {
        let params = credentials.to_params()?.0;
        // Replaying a signup would create another user: remember it as the equivalent signin.
        let remember = self.conn.config().remember_credentials.then(|| Remembered::new(params.clone()));
        let reply = self.call("signup", vec![params], Effect::SignedIn { remember }).await.map_err(auth_error)?;
        Tokens::from_result(&reply)
    }

    /// Authenticates the session with an existing access token (for example one forwarded
    /// from an HTTP request). A token that is not a well-formed JWT, or whose `exp` has passed,
    /// is refused with [`Error::InvalidToken`] before anything is sent, and the session is left
    /// as it was (see [`AccessToken::check`]).
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session, jwt: &str) -> surreal_pool::Result<()> {
    /// db.authenticate(jwt).await?;
    /// # Ok(()) }
    /// ```
    pub async fn authenticate(&self, token: impl Into<AccessToken>) -> Result<()> {
        let token = token.into();
        token.check()?;
        let params = vec![Cbor::Text(token.as_str().to_owned())];
        self.call("authenticate", params, Effect::Authenticated(token)).await.map_err(auth_error)?;
        Ok(())
    }

    /// Signs out: the session becomes anonymous, keeping its namespace, database and variables.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// db.invalidate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn invalidate(&self) -> Result<()> {
        self.call("invalidate", vec![], Effect::Invalidated).await?;
        Ok(())
    }

    /// The signed-in record user's record, or `None` when the session is not a record user (or
    /// the table's permissions hide the record).
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// if let Some(user) = db.info().await? {
    ///     println!("signed in as {}", user["id"]);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn info(&self) -> Result<Option<serde_json::Value>> {
        let reply = self.call("info", vec![], Effect::None).await?;
        Ok(match tags::to_json(reply) {
            serde_json::Value::Null => None,
            v => Some(v),
        })
    }

    /// Exchanges tokens that carry a refresh token for a new pair; the old refresh token is
    /// spent. The session is authenticated with the new access token.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session, tokens: surreal_pool::Tokens) -> surreal_pool::Result<()> {
    /// let fresh = db.refresh(&tokens).await?;
    /// # Ok(()) }
    /// ```
    pub async fn refresh(&self, tokens: &Tokens) -> Result<Tokens> {
        // Refreshing the session's own pair keeps the same user: keep its remembered credentials.
        let remember = self.with_state(|s| {
            s.filter(|s| matches!(&s.auth, AuthState::Token(t) if t.refresh.is_some() && t.refresh == tokens.refresh))
                .and_then(|s| s.credentials.clone())
        });
        let reply = self.call("refresh", vec![tokens.to_params()?], Effect::SignedIn { remember }).await.map_err(auth_error)?;
        Tokens::from_result(&reply)
    }

    /// Revokes a refresh token so it can no longer be used. The session's identity is unchanged.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session, tokens: surreal_pool::Tokens) -> surreal_pool::Result<()> {
    /// db.revoke(&tokens).await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke(&self, tokens: &Tokens) -> Result<()> {
        self.call("revoke", vec![tokens.to_params()?], Effect::None).await?;
        Ok(())
    }

    /// Resets the session: anonymous, no namespace, database or variables.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// db.reset().await?;
    /// # Ok(()) }
    /// ```
    pub async fn reset(&self) -> Result<()> {
        self.call("reset", vec![], Effect::Reset).await?;
        Ok(())
    }

    // ----- session state -----

    /// Selects a namespace and a database.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// db.use_ns_db("surrealdb", "docs").await?;
    /// # Ok(()) }
    /// ```
    pub async fn use_ns_db(&self, namespace: &str, database: &str) -> Result<()> {
        self.use_params(Cbor::Text(namespace.into()), Cbor::Text(database.into())).await
    }

    /// Selects a namespace, leaving the database selection as it is.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// db.use_ns("surrealdb").await?;
    /// # Ok(()) }
    /// ```
    pub async fn use_ns(&self, namespace: &str) -> Result<()> {
        self.use_params(Cbor::Text(namespace.into()), none()).await
    }

    /// Selects a database, leaving the namespace selection as it is.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// db.use_db("docs").await?;
    /// # Ok(()) }
    /// ```
    pub async fn use_db(&self, database: &str) -> Result<()> {
        self.use_params(none(), Cbor::Text(database.into())).await
    }

    /// Selects exactly this namespace and database; `None` unsets.
    pub(crate) async fn use_exactly(&self, namespace: Option<&str>, database: Option<&str>) -> Result<()> {
        let value = |v: Option<&str>| v.map_or(Cbor::Null, |v| Cbor::Text(v.into()));
        self.use_params(value(namespace), value(database)).await
    }

    async fn use_params(&self, namespace: Cbor, database: Cbor) -> Result<()> {
        self.call("use", vec![namespace, database], Effect::Use).await?;
        Ok(())
    }

    /// Defines a session variable, usable as `$name` in later queries (the `let` RPC).
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// db.set("tenant", "acme").await?;
    /// let t: String = db.query("RETURN $tenant", ()).await?.take(0)?;
    /// # Ok(()) }
    /// ```
    pub async fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<()> {
        let value = to_cbor(value)?;
        self.call("let", vec![Cbor::Text(name.into()), value.clone()], Effect::Let(name.into(), value)).await?;
        Ok(())
    }

    /// Removes a session variable.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// db.unset("tenant").await?;
    /// # Ok(()) }
    /// ```
    pub async fn unset(&self, name: &str) -> Result<()> {
        self.call("unset", vec![Cbor::Text(name.into())], Effect::Unset(name.into())).await?;
        Ok(())
    }

    // ----- misc -----

    /// The server's version string, e.g. `"surrealdb-3.3.5"`, asked now (the connection keeps
    /// the one it learnt at connect: [`Connection::server_version`]).
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// println!("{}", db.version().await?);
    /// # Ok(()) }
    /// ```
    pub async fn version(&self) -> Result<String> {
        match tags::to_json(self.call("version", vec![], Effect::None).await?) {
            serde_json::Value::String(v) => Ok(v),
            other => Ok(other.to_string()),
        }
    }

    /// A round trip to the server.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// db.ping().await?;
    /// # Ok(()) }
    /// ```
    pub async fn ping(&self) -> Result<()> {
        self.call("ping", vec![], Effect::None).await?;
        Ok(())
    }

    // ----- data -----

    /// Runs SurrealQL with bindings (any serializable map, or `()` for none) and returns each
    /// statement's result. Binding values are sent as they are: a string stays a string.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// let mut res = db.query("RETURN $a + $b", serde_json::json!({"a": 1, "b": 2})).await?;
    /// let three: i64 = res.take(0)?;
    /// # Ok(()) }
    /// ```
    pub async fn query<B: Serialize>(&self, sql: &str, bindings: B) -> Result<QueryResponse> {
        self.query_in(None, sql, bindings).await
    }

    /// Runs SurrealQL with bindings and options (SurrealDB 4.0): with
    /// [`QueryOptions::read_only`], every statement runs in one read-only block over a
    /// snapshot no older than the bound, so writes fail (and a failed statement fails the
    /// others: they are one transaction). The response holds the caller's statements only
    /// (the server also answers for the block's `BEGIN` and `COMMIT`), with
    /// [`QueryResponse::snapshot`]; the statements may not contain `BEGIN`, `COMMIT` or `CANCEL`. On a server without query options
    /// (3.x, or one that did not say its version at connect) this fails with
    /// [`Error::Unsupported`] and sends nothing. Empty options are a plain
    /// [`query`](Self::query), on any server.
    ///
    /// ```no_run
    /// # async fn demo(db: &surreal_pool::Session) -> surreal_pool::Result<()> {
    /// use std::time::Duration;
    /// use surreal_pool::{QueryOptions, ReadOnly};
    /// let options = QueryOptions::new().read_only(ReadOnly::max_staleness(Duration::from_secs(5)));
    /// let mut res = db.query_with("SELECT * FROM person WHERE age > $min", serde_json::json!({"min": 18}), options).await?;
    /// let adults: Vec<serde_json::Value> = res.take(0)?;
    /// # Ok(()) }
    /// ```
    pub async fn query_with<B: Serialize>(&self, sql: &str, bindings: B, options: QueryOptions) -> Result<QueryResponse> {
        if options.is_empty() {
            return self.query_in(None, sql, bindings).await;
        }
        crate::wire::version::Feature::QueryOptions.require(self.conn.server_version().as_ref())?;
        let mut params = query_params(sql, &bindings)?;
        if params.len() == 1 {
            params.push(none());
        }
        params.push(options.to_cbor());
        let reply = self.call_in(None, "query", params, Effect::None).await?.cbor()?;
        // The statements ran as one read-only block, whose BEGIN and COMMIT answer too.
        QueryResponse::from_read_only(ReadOnlyAnswer::split(reply).map_err(Error::Protocol)?)
    }

    pub(crate) async fn query_in<B: Serialize>(&self, txn: Option<uuid::Uuid>, sql: &str, bindings: B) -> Result<QueryResponse> {
        let params = query_params(sql, &bindings)?;
        QueryResponse::from_payload(self.call_in(txn, "query", params, Effect::None).await?)
    }

    /// Detaches the session on the server and waits for the answer. (Dropping an attached
    /// session detaches it too, without waiting.) The default session cannot be detached.
    ///
    /// ```no_run
    /// # async fn demo(conn: surreal_pool::Connection) -> surreal_pool::Result<()> {
    /// let s = conn.attach().await?;
    /// s.detach().await?;
    /// # Ok(()) }
    /// ```
    pub async fn detach(mut self) -> Result<()> {
        let id = self.id.ok_or_else(|| Error::InvalidArgument("the default session cannot be detached".into()))?;
        self.detached = true;
        self.conn.request(Some(id), "detach", vec![], Effect::Detach).await?;
        Ok(())
    }
}

/// The sessions of a connection: its default one, and new ones attached on its socket. (Defined
/// here, with [`Session`], so that the connection layer never names the session layer above it.)
impl Connection {
    /// A handle to the connection's default server session.
    ///
    /// ```no_run
    /// # async fn demo(conn: surreal_pool::Connection) -> surreal_pool::Result<()> {
    /// let db = conn.session();
    /// assert_eq!(db.id(), None);
    /// db.ping().await?;
    /// # Ok(()) }
    /// ```
    pub fn session(&self) -> Session {
        Session::new(self.clone(), None)
    }

    /// Attaches a new server session on this socket, with its own namespace, database, variables
    /// and identity. It is detached when the [`Session`] is dropped or [`Session::detach`]ed.
    ///
    /// ```no_run
    /// # async fn demo(conn: surreal_pool::Connection) -> surreal_pool::Result<()> {
    /// let db = conn.attach().await?;
    /// assert!(db.id().is_some());
    /// db.use_ns_db("app", "main").await?;
    /// # Ok(()) }
    /// ```
    pub async fn attach(&self) -> Result<Session> {
        let id = uuid::Uuid::new_v4();
        // If this future is dropped after the request went out, detach whatever it attached.
        struct Guard<'a>(&'a Connection, uuid::Uuid, bool);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                if !self.2 {
                    self.0.detach_in_background(self.1);
                }
            }
        }
        let mut guard = Guard(self, id, false);
        let result = self.request(Some(id), "attach", vec![], Effect::Attach).await;
        guard.2 = result.is_ok() || matches!(result, Err(Error::Closed));
        result?;
        Ok(Session::new(self.clone(), Some(id)))
    }
}

/// `[sql]` or `[sql, bindings]`: the parameters every server reads.
fn query_params<B: Serialize>(sql: &str, bindings: &B) -> Result<Vec<Cbor>> {
    let mut params = vec![Cbor::Text(sql.into())];
    match to_cbor(bindings)? {
        Cbor::Null => {}
        vars @ Cbor::Map(_) => params.push(vars),
        _ => return Err(Error::InvalidArgument("query bindings must be a map".into())),
    }
    Ok(params)
}

fn none() -> Cbor {
    Cbor::Tag(tags::TAG_NONE, Box::new(Cbor::Null))
}

/// A reply's result as the caller's type (straight from its CBOR, SurrealDB's tags mapped).
pub(crate) fn decode<T: DeserializeOwned>(reply: Payload) -> Result<T> {
    reply.decode()
}
