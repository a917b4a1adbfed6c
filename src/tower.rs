//! tower integration (feature `tower`): a [`Layer`]/[`Service`] pair that checks out a session
//! forwarded as the HTTP request's `Authorization: Bearer <jwt>` and hands it to the inner
//! service in the request's extensions.
//!
//! It works with any HTTP stack built on tower and the `http` crate: plain hyper (through
//! `hyper_util::service::TowerToHyperService`; `examples/hyper_tenant.rs`), axum
//! (`Router::route_layer`; the [`axum::Tenant`](crate::axum::Tenant) extractor takes the
//! session the layer put there). tonic's `Server::builder().layer(..)` should take it too (gRPC
//! metadata are HTTP/2 headers, and gRPC clients read a 401/403/503 as `Unauthenticated`,
//! `PermissionDenied`, `Unavailable`), but that is not tested here.
//!
//! For each request, [`TenantService`]:
//!
//! 1. reads the bearer token (the scheme's case does not matter);
//! 2. checks out a session forwarded as it ([`Pool::get_with_token`]);
//! 3. inserts a [`TenantSession`] into the request's extensions and calls the inner service,
//!    whose handler takes the [`PooledSession`] out with [`TenantSession::take`];
//! 4. when the inner service's response is ready, drops whatever session the handler did not
//!    take: the session belongs to the request and goes back to the pool then, even if a
//!    handler kept a clone of the extension.
//!
//! When a step fails, the layer answers itself (the inner service is not called) with a
//! [`Rejection`], the same mapping the axum extractor and handlers use; its body is a fixed
//! message, never the token nor the database's error text:
//!
//! | failure | answer |
//! |---|---|
//! | no `Authorization` header, or one of another scheme | 401, `WWW-Authenticate: Bearer` |
//! | a malformed `Bearer` header; a bad or expired token ([`Error::Auth`], [`Error::InvalidToken`], [`Error::AuthLost`]) | 401, `WWW-Authenticate: Bearer error="invalid_token"` |
//! | the token's user may not do this ([`Error::NotAllowed`], or an [`Error::Query`] whose statement was refused as `NotAllowed`) | 403 |
//! | pool exhausted, too many waiting, database down or overloaded (timeouts, connection errors, [`Error::is_overloaded`]) | 503, `Retry-After: 1` |
//! | anything else | 500 (the error is logged, it never contains tokens) |
//!
//! ```no_run
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use surreal_pool::tower::{Rejection, TenantLayer, TenantSession};
//! use tower::{Layer, ServiceExt};
//!
//! async fn me(request: http::Request<()>) -> Result<http::Response<Full<Bytes>>, Infallible> {
//!     let db = request.extensions().get::<TenantSession>().and_then(TenantSession::take).expect("behind the layer");
//!     let answer = match db.query("RETURN $auth.email", ()).await.and_then(|mut r| r.take::<serde_json::Value>(0)) {
//!         Ok(email) => http::Response::new(Full::from(email.to_string())),
//!         Err(e) => Rejection::from(e).http_response(), // the same 401/403/503/500 answers
//!     };
//!     Ok(answer)
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = surreal_pool::Pool::builder("ws://127.0.0.1:8000").namespace_database("app", "main").build().await?;
//! let service = TenantLayer::new(pool).layer(tower::service_fn(me));
//! let request = http::Request::builder().header("authorization", "Bearer eyJ…").body(())?;
//! let response = service.oneshot(request).await?;
//! println!("{}", response.status());
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tower_layer::Layer;
use tower_service::Service;

use crate::auth::AccessToken;
use crate::error::Error;
use crate::pool::{Pool, PooledSession};

/// A [`Layer`] that wraps a service in a [`TenantService`]: each request gets a session
/// forwarded as its bearer token, or is answered by the layer (401/403/503/500).
///
/// ```no_run
/// use surreal_pool::tower::TenantLayer;
/// use tower::ServiceBuilder;
///
/// # async fn demo() -> surreal_pool::Result<()> {
/// let pool = surreal_pool::Pool::builder("ws://127.0.0.1:8000").namespace_database("app", "main").build().await?;
/// let service = ServiceBuilder::new()
///     .layer(TenantLayer::new(pool))
///     .service_fn(|request: http::Request<()>| async move {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("served as the caller")))
///     });
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct TenantLayer {
    pool: Pool,
}

impl TenantLayer {
    /// A layer whose services check sessions out of `pool`.
    ///
    /// ```no_run
    /// # async fn demo() -> surreal_pool::Result<()> {
    /// let pool = surreal_pool::Pool::builder("ws://127.0.0.1:8000").build().await?;
    /// let layer = surreal_pool::tower::TenantLayer::new(pool);
    /// # Ok(()) }
    /// ```
    pub fn new(pool: Pool) -> Self {
        TenantLayer { pool }
    }
}

impl<S> Layer<S> for TenantLayer {
    type Service = TenantService<S>;

    fn layer(&self, inner: S) -> TenantService<S> {
        TenantService { inner, pool: self.pool.clone() }
    }
}

/// The service [`TenantLayer`] makes: checks out a session forwarded as the request's bearer
/// token, puts it into the request's extensions as a [`TenantSession`] and calls the inner
/// service; answers failures itself (see the [module](self) docs).
///
/// Its readiness is the inner service's, and the service that was polled ready is the one that
/// serves the request (after the checkout); a refused request gives that readiness up without
/// calling it. Its future is `Send`; dropping it (a client that disconnects) mid-checkout
/// leaves the pool as it was.
///
/// ```no_run
/// use surreal_pool::tower::{TenantService, TenantSession};
/// use tower::ServiceExt;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = surreal_pool::Pool::builder("ws://127.0.0.1:8000").namespace_database("app", "main").build().await?;
/// let inner = tower::service_fn(|request: http::Request<()>| async move {
///     let db = request.extensions().get::<TenantSession>().and_then(TenantSession::take);
///     let user = match db {
///         Some(db) => db.query("RETURN <string> $auth.id", ()).await?.take::<String>(0)?,
///         None => String::new(),
///     };
///     Ok::<_, surreal_pool::Error>(http::Response::new(user))
/// });
/// let request = http::Request::builder().header("authorization", "Bearer eyJ…").body(())?;
/// let response = TenantService::new(inner, pool).oneshot(request).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct TenantService<S> {
    inner: S,
    pool: Pool,
}

impl<S> TenantService<S> {
    /// Wraps `inner` (the same as `TenantLayer::new(pool).layer(inner)`).
    ///
    /// ```no_run
    /// # async fn demo() -> surreal_pool::Result<()> {
    /// let pool = surreal_pool::Pool::builder("ws://127.0.0.1:8000").build().await?;
    /// let inner = tower::service_fn(|_: http::Request<()>| async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) });
    /// let service = surreal_pool::tower::TenantService::new(inner, pool);
    /// # Ok(()) }
    /// ```
    pub fn new(inner: S, pool: Pool) -> Self {
        TenantService { inner, pool }
    }

    /// The inner service.
    ///
    /// ```no_run
    /// # async fn demo() -> surreal_pool::Result<()> {
    /// # let pool = surreal_pool::Pool::builder("ws://127.0.0.1:8000").build().await?;
    /// # let inner = tower::service_fn(|_: http::Request<()>| async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) });
    /// let service = surreal_pool::tower::TenantService::new(inner, pool);
    /// let _inner = service.get_ref();
    /// # Ok(()) }
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// The future of [`TenantService`]: `Send`, boxed (it holds the pool's checkout, whose type
/// cannot be named). Dropping it mid-checkout leaves the pool as it was.
///
/// ```no_run
/// use tower::Service;
///
/// # async fn demo(mut service: surreal_pool::tower::TenantService<tower::util::ServiceFn<fn(http::Request<()>) -> std::future::Ready<Result<http::Response<String>, std::convert::Infallible>>>>) {
/// fn spawnable<F: std::future::Future + Send + 'static>(future: F) -> F { future }
/// let request = http::Request::builder().header("authorization", "Bearer eyJ…").body(()).unwrap();
/// let future = spawnable(service.call(request)); // call after poll_ready, as always
/// let response = tokio::spawn(future).await.unwrap();
/// # }
/// ```
pub type ResponseFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

impl<S, B, ResBody> Service<Request<B>> for TenantService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<TenantBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The service polled ready serves this request; its clone waits for the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let pool = self.pool.clone();
        Box::pin(async move {
            let session = match checkout(&pool, request.headers()).await {
                Ok(session) => session,
                Err(rejection) => return Ok(rejection.http_response::<Bytes>().map(TenantBody::refusal)),
            };
            let slot = TenantSession::new(session);
            request.extensions_mut().insert(slot.clone());
            let response = inner.call(request).await;
            // What the handler did not take goes back now, however long clones of the
            // extension live.
            drop(slot.take());
            response.map(|response| response.map(TenantBody::inner))
        })
    }
}

/// The request's bearer token, or why there is none usable.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, Rejection> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(Rejection::MissingToken)?;
    if values.next().is_some() {
        return Err(Rejection::InvalidToken); // which one counts would be a guess
    }
    let value = value.to_str().map_err(|_| Rejection::InvalidToken)?.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::MissingToken); // other credentials, but no bearer token
    }
    let token = token.trim();
    // RFC 6750's b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.trim_end_matches('=');
    let well_formed = !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if well_formed {
        Ok(token)
    } else {
        Err(Rejection::InvalidToken)
    }
}

/// The checkout both the layer and the axum extractor make: the bearer token of `headers`,
/// forwarded through `pool`.
pub(crate) async fn checkout(pool: &Pool, headers: &HeaderMap) -> Result<PooledSession, Rejection> {
    let token = AccessToken::new(bearer(headers)?);
    Ok(pool.get_with_token(token).await?)
}

/// The session [`TenantService`] checked out for a request, in the request's extensions: take
/// it out with [`take`](TenantSession::take).
///
/// It is `Clone` (as extensions must be) but holds one session: the first `take` gets it. The
/// session belongs to the request: if the handler does not take it, it goes back to the pool
/// when the inner service's response is ready (also from any clone kept longer); once taken, it
/// goes back when the handler drops it.
///
/// ```no_run
/// use surreal_pool::tower::TenantSession;
///
/// # async fn handler(request: http::Request<()>) -> surreal_pool::Result<()> {
/// let Some(db) = request.extensions().get::<TenantSession>().and_then(TenantSession::take) else {
///     panic!("not behind the TenantLayer");
/// };
/// let me = db.info().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TenantSession(Arc<Mutex<Option<PooledSession>>>);

impl TenantSession {
    /// Holds `session` for a request (the layer does this; useful to test a handler without it).
    ///
    /// ```no_run
    /// # async fn demo(pool: surreal_pool::Pool, jwt: &str) -> surreal_pool::Result<()> {
    /// let session = surreal_pool::tower::TenantSession::new(pool.get_with_token(jwt).await?);
    /// let mut request = http::Request::new(());
    /// request.extensions_mut().insert(session);
    /// # Ok(()) }
    /// ```
    pub fn new(session: PooledSession) -> Self {
        TenantSession(Arc::new(Mutex::new(Some(session))))
    }

    /// Takes the session out: `Some` the first time, `None` after (from any clone), and after
    /// the layer took it back.
    ///
    /// ```no_run
    /// # async fn demo(pool: surreal_pool::Pool, jwt: &str) -> surreal_pool::Result<()> {
    /// let slot = surreal_pool::tower::TenantSession::new(pool.get_with_token(jwt).await?);
    /// let copy = slot.clone();
    /// assert!(slot.take().is_some());
    /// assert!(copy.take().is_none(), "one session, taken once");
    /// # Ok(()) }
    /// ```
    pub fn take(&self) -> Option<PooledSession> {
        self.lock().take()
    }

    fn lock(&self) -> MutexGuard<'_, Option<PooledSession>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for TenantSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TenantSession").field(&*self.lock()).finish()
    }
}

/// Why a request was refused. The one mapping from [`Error`] to an HTTP answer, used by
/// [`TenantService`], by the axum extractor (as [`axum::Rejection`](crate::axum::Rejection),
/// the same type) and by handlers (`Rejection::from(e)`): status, headers and a small JSON body
/// with a fixed message (`{"error": "…"}`), never the token nor the database's text.
///
/// ```
/// use surreal_pool::tower::Rejection;
/// use surreal_pool::Error;
///
/// let rejection = Rejection::from(Error::InvalidToken("not a JWT"));
/// assert_eq!(rejection, Rejection::InvalidToken);
/// let response: http::Response<bytes::Bytes> = rejection.http_response();
/// assert_eq!(response.status(), 401);
/// assert_eq!(response.headers()["www-authenticate"], "Bearer error=\"invalid_token\"");
/// assert_eq!(response.body().as_ref(), br#"{"error":"invalid or expired token"}"#);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// No `Authorization: Bearer` header (401).
    MissingToken,
    /// The token was refused, or the header is malformed (401).
    InvalidToken,
    /// The token's user is not allowed to do this (403).
    Forbidden,
    /// The pool or the database cannot serve now; retry later (503).
    Unavailable,
    /// Any other failure (500).
    Internal,
}

impl From<Error> for Rejection {
    fn from(e: Error) -> Self {
        match e {
            e if e.is_auth() => Rejection::InvalidToken,
            // The request, or a statement of a query the identity may not run (`IAM error: Not
            // enough permissions` fails inside the query, not as the request).
            e if e.is_not_allowed() => Rejection::Forbidden,
            e if e.is_timeout() || e.is_connection() || e.is_overloaded() => Rejection::Unavailable,
            e => {
                tracing::warn!(error = %e, "request failed");
                Rejection::Internal
            }
        }
    }
}

/// Seconds a client is asked to wait after a 503.
const RETRY_AFTER_SECS: &str = "1";

impl Rejection {
    /// The status code of the answer.
    ///
    /// ```
    /// use surreal_pool::tower::Rejection;
    /// assert_eq!(Rejection::Unavailable.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    /// ```
    pub fn status(self) -> StatusCode {
        match self {
            Rejection::MissingToken | Rejection::InvalidToken => StatusCode::UNAUTHORIZED,
            Rejection::Forbidden => StatusCode::FORBIDDEN,
            Rejection::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Rejection::MissingToken => "missing bearer token",
            Rejection::InvalidToken => "invalid or expired token",
            Rejection::Forbidden => "not allowed",
            Rejection::Unavailable => "temporarily unavailable, retry later",
            Rejection::Internal => "internal error",
        }
    }

    /// The answer, with a body of any type made from bytes (`http_body_util::Full<Bytes>`,
    /// axum's `Body`, `Bytes`, …): the status, `Content-Type: application/json`,
    /// `WWW-Authenticate` on a 401, `Retry-After` on a 503.
    ///
    /// ```
    /// use surreal_pool::tower::Rejection;
    /// let response: http::Response<http_body_util::Full<bytes::Bytes>> = Rejection::Unavailable.http_response();
    /// assert_eq!(response.headers()["retry-after"], "1");
    /// ```
    pub fn http_response<B: From<Bytes>>(self) -> Response<B> {
        let body = format!("{{\"error\":\"{}\"}}", self.message());
        let mut response = Response::new(B::from(Bytes::from(body)));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match self {
            Rejection::MissingToken => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Rejection::InvalidToken => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
            }
            Rejection::Unavailable => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
            }
            Rejection::Forbidden | Rejection::Internal => {}
        }
        response
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message(), self.status().as_u16())
    }
}

impl std::error::Error for Rejection {}

pin_project_lite::pin_project! {
    /// The body of a [`TenantService`] response: the inner service's body, or the layer's own
    /// refusal (a [`Rejection`]'s JSON). Its data and error types are the inner body's.
    ///
    /// ```no_run
    /// use http_body_util::BodyExt;
    /// use tower::ServiceExt;
    ///
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = surreal_pool::Pool::builder("ws://127.0.0.1:8000").build().await?;
    /// let inner = tower::service_fn(|_: http::Request<()>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from("hello"))))
    /// });
    /// let service = surreal_pool::tower::TenantService::new(inner, pool);
    /// let response = service.oneshot(http::Request::new(())).await?; // no token: 401
    /// let body = response.into_body().collect().await?.to_bytes();
    /// assert_eq!(body.as_ref(), br#"{"error":"missing bearer token"}"#);
    /// # Ok(()) }
    /// ```
    pub struct TenantBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Refusal { bytes: Option<Bytes> },
    }
}

impl<B> TenantBody<B> {
    fn inner(body: B) -> Self {
        TenantBody { kind: Kind::Inner { body } }
    }

    fn refusal(bytes: Bytes) -> Self {
        TenantBody { kind: Kind::Refusal { bytes: Some(bytes) } }
    }
}

impl<B> std::fmt::Debug for TenantBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Inner { .. } => "inner",
            Kind::Refusal { .. } => "refusal",
        };
        f.debug_struct("TenantBody").field("kind", &kind).finish()
    }
}

impl<B> Body for TenantBody<B>
where
    B: Body,
    B::Data: From<Bytes>,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Refusal { bytes } => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b.into())))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Refusal { bytes } => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Refusal { bytes } => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerError;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn the_bearer_token_is_read_and_malformed_headers_are_refused() {
        assert_eq!(bearer(&headers(&["Bearer a.b.c"])), Ok("a.b.c"));
        assert_eq!(bearer(&headers(&["bEaReR  a.b-c_d~e+f/g=="])), Ok("a.b-c_d~e+f/g=="));
        assert_eq!(bearer(&headers(&[])), Err(Rejection::MissingToken));
        assert_eq!(bearer(&headers(&["Basic dXNlcjpwdw=="])), Err(Rejection::MissingToken));
        for malformed in ["Bearer", "Bearer ", "Bearer a b", "Bearer a,b", "Bearer ===", "Bearer é"] {
            let map = match HeaderValue::from_str(malformed) {
                Ok(_) => headers(&[malformed]),
                Err(_) => {
                    let mut map = HeaderMap::new();
                    map.insert(AUTHORIZATION, HeaderValue::from_bytes(malformed.as_bytes()).unwrap());
                    map
                }
            };
            assert_eq!(bearer(&map), Err(Rejection::InvalidToken), "{malformed:?}");
        }
        assert_eq!(bearer(&headers(&["Bearer a.b.c", "Bearer d.e.f"])), Err(Rejection::InvalidToken), "two headers");
    }

    #[test]
    fn errors_map_to_the_status_a_client_can_act_on() {
        let status = |e: Error| Rejection::from(e).status();
        let server = |kind: &str| ServerError::new(-32002, kind, "detail");
        assert_eq!(status(Error::NotAllowed(server("NotAllowed"))), StatusCode::FORBIDDEN);
        let refused_statement = ServerError::new(0, "NotAllowed", "IAM error: Not enough permissions to perform this action");
        assert_eq!(status(Error::Query { index: 0, error: refused_statement }), StatusCode::FORBIDDEN);
        assert_eq!(status(Error::Query { index: 0, error: ServerError::new(0, "Thrown", "boom") }), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(status(Error::InvalidToken("not a JWT")), StatusCode::UNAUTHORIZED);
        assert_eq!(status(Error::AuthLost), StatusCode::UNAUTHORIZED);
        assert_eq!(status(Error::ConnectionDown), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(Error::SessionLimit { per_connection: 1 }), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(Error::TooManyWaiting { limit: 1, per_tenant: false }), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(Error::ClosedInFlight), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(Error::Server(server("Internal"))), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn answers_carry_a_fixed_message_and_the_headers_a_client_needs() {
        for rejection in [Rejection::MissingToken, Rejection::InvalidToken, Rejection::Forbidden, Rejection::Unavailable, Rejection::Internal] {
            let response: Response<Bytes> = rejection.http_response();
            assert_eq!(response.status(), rejection.status());
            assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
            let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
            assert_eq!(body, serde_json::json!({ "error": rejection.message() }));
            assert_eq!(response.headers().contains_key(WWW_AUTHENTICATE), rejection.status() == StatusCode::UNAUTHORIZED);
            assert_eq!(response.headers().contains_key(RETRY_AFTER), rejection == Rejection::Unavailable);
        }
    }
}
