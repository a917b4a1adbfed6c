//! axum integration (feature `axum`, which turns on `tower`): an extractor for the session the
//! [`TenantLayer`] checked out, forwarded as the request's `Authorization: Bearer <jwt>`.
//!
//! Install the layer on the routes that need a user (`Router::route_layer`, so that routes
//! added after it, a sign-up for instance, are not behind it), keep a [`Pool`] in the router
//! state (directly, or inside your own state with [`FromRef`]), and take [`Tenant`] in a
//! handler: the handler runs as the request's user.
//!
//! * **With the layer** the extractor takes the session the layer put into the request's
//!   extensions; requests without a usable token never reach the handler (the layer answers).
//! * **Without the layer** the extractor checks a session out of the state's pool itself, with
//!   the same token parsing and the same answers.
//!
//! Either way failures become the answers of [`Rejection`] (the one mapping, shared with the
//! layer: 401 / 403 / 503 with `Retry-After` / 500; see [`crate::tower`]), which never contain
//! the token or the database's error text. Handlers return it too (`?` converts any
//! [`Error`](crate::Error)).
//!
//! ```no_run
//! use axum::{routing::get, Json, Router};
//! use surreal_pool::axum::{Rejection, Tenant};
//! use surreal_pool::tower::TenantLayer;
//!
//! async fn notes(Tenant(db): Tenant) -> Result<Json<Vec<serde_json::Value>>, Rejection> {
//!     let notes = db.query("SELECT * FROM note", ()).await?.take(0)?;
//!     Ok(Json(notes))
//! }
//!
//! # async fn demo() -> surreal_pool::Result<()> {
//! let pool = surreal_pool::Pool::builder("ws://127.0.0.1:8000").namespace_database("app", "main").build().await?;
//! let app: Router = Router::new()
//!     .route("/notes", get(notes))
//!     .route_layer(TenantLayer::new(pool.clone()))
//!     .with_state(pool);
//! # Ok(()) }
//! ```
//!
//! [`TenantLayer`]: crate::tower::TenantLayer

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::pool::{Pool, PooledSession};
use crate::tower::TenantSession;

pub use crate::tower::Rejection;

/// A session authenticated as the request's bearer token: the one the
/// [`TenantLayer`](crate::tower::TenantLayer) checked out, or (without the layer) one checked
/// out of the state's [`Pool`]. Returned to the pool when the handler drops it.
///
/// A request has one session: behind the layer, a second `Tenant` in the same handler is
/// refused with a 500 (logged), not given a second session.
///
/// ```no_run
/// use surreal_pool::axum::{Rejection, Tenant};
///
/// async fn me(Tenant(db): Tenant) -> Result<String, Rejection> {
///     Ok(db.query("RETURN <string> $auth.id", ()).await?.take(0)?)
/// }
/// ```
#[derive(Debug)]
pub struct Tenant(pub PooledSession);

impl std::ops::Deref for Tenant {
    type Target = PooledSession;
    fn deref(&self) -> &PooledSession {
        &self.0
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        self.http_response()
    }
}

/// The bearer token of a request, if it has one that is well-formed (`Bearer` in any case,
/// RFC 6750's token characters, one `Authorization` header).
///
/// ```
/// let request = axum::http::Request::builder().header("Authorization", "Bearer a.b.c").body(()).unwrap();
/// let (parts, ()) = request.into_parts();
/// assert_eq!(surreal_pool::axum::bearer_token(&parts), Some("a.b.c"));
/// ```
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    crate::tower::bearer(&parts.headers).ok()
}

impl<S> FromRequestParts<S> for Tenant
where
    Pool: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        if let Some(slot) = parts.extensions.get::<TenantSession>() {
            return slot.take().map(Tenant).ok_or_else(|| {
                tracing::warn!("the request's session was taken already (two `Tenant` extractors in one handler?)");
                Rejection::Internal
            });
        }
        let pool = Pool::from_ref(state);
        crate::tower::checkout(&pool, &parts.headers).await.map(Tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use crate::{Error, ServerError};

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
