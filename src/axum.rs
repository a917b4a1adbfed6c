//! axum integration (feature `axum`): an extractor that checks out a session forwarded as the
//! request's `Authorization: Bearer <jwt>`.
//!
//! Put a [`Pool`] in the router state (directly, or inside your own state with
//! [`FromRef`]), and take [`Tenant`] in a handler: the handler runs as
//! the request's user. Failures become HTTP answers that never contain the token or database
//! internals:
//!
//! | failure | answer |
//! |---|---|
//! | no `Authorization: Bearer` header | 401, `WWW-Authenticate: Bearer` |
//! | bad or expired token ([`Error::Auth`], [`Error::InvalidToken`], [`Error::AuthLost`]) | 401, `WWW-Authenticate: Bearer error="invalid_token"` |
//! | the token's user may not do this ([`Error::NotAllowed`]) | 403 |
//! | pool exhausted, database down or overloaded (timeouts, connection errors) | 503, `Retry-After` |
//! | anything else | 500 |
//!
//! ```no_run
//! use axum::{routing::get, Json, Router};
//! use surreal_pool::axum::Tenant;
//!
//! async fn notes(Tenant(db): Tenant) -> Result<Json<Vec<serde_json::Value>>, surreal_pool::axum::Rejection> {
//!     let notes = db.query("SELECT * FROM note", ()).await?.take(0)?;
//!     Ok(Json(notes))
//! }
//!
//! # async fn demo() -> surreal_pool::Result<()> {
//! let pool = surreal_pool::Pool::builder("ws://127.0.0.1:8000").namespace_database("app", "main").build().await?;
//! let app: Router = Router::new().route("/notes", get(notes)).with_state(pool);
//! # Ok(()) }
//! ```

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::Error;
use crate::pool::{Pool, PooledSession};

/// A session checked out of the state's [`Pool`], authenticated as the request's bearer token.
/// Returned to the pool when the handler drops it.
#[derive(Debug)]
pub struct Tenant(pub PooledSession);

impl std::ops::Deref for Tenant {
    type Target = PooledSession;
    fn deref(&self) -> &PooledSession {
        &self.0
    }
}

/// Why a request was refused; renders as a status code and a small JSON body with no
/// internals. Handlers can return it too (`?` converts any [`Error`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Rejection {
    /// No `Authorization: Bearer` header (401).
    MissingToken,
    /// The token was refused (401).
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
            Error::NotAllowed(_) => Rejection::Forbidden,
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

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Rejection::MissingToken => (StatusCode::UNAUTHORIZED, "missing bearer token"),
            Rejection::InvalidToken => (StatusCode::UNAUTHORIZED, "invalid or expired token"),
            Rejection::Forbidden => (StatusCode::FORBIDDEN, "not allowed"),
            Rejection::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable, retry later"),
            Rejection::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        };
        let mut response = (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
        let headers = response.headers_mut();
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

/// The bearer token of a request, if it has one.
///
/// ```
/// let request = axum::http::Request::builder().header("Authorization", "Bearer a.b.c").body(()).unwrap();
/// let (parts, ()) = request.into_parts();
/// assert_eq!(surreal_pool::axum::bearer_token(&parts), Some("a.b.c"));
/// ```
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl<S> FromRequestParts<S> for Tenant
where
    Pool: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        let token = bearer_token(parts).ok_or(Rejection::MissingToken)?;
        let pool = Pool::from_ref(state);
        Ok(Tenant(pool.get_with_token(token).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerError;

    fn status(e: Error) -> StatusCode {
        Rejection::from(e).into_response().status()
    }

    #[test]
    fn errors_map_to_the_status_a_client_can_act_on() {
        let server = |kind: &str| ServerError::new(-32002, kind, "detail");
        assert_eq!(status(Error::NotAllowed(server("NotAllowed"))), StatusCode::FORBIDDEN);
        assert_eq!(status(Error::InvalidToken("not a JWT")), StatusCode::UNAUTHORIZED);
        assert_eq!(status(Error::AuthLost), StatusCode::UNAUTHORIZED);
        assert_eq!(status(Error::ConnectionDown), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(Error::SessionLimit { per_connection: 1 }), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(Error::ClosedInFlight), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(Error::Server(server("Internal"))), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
