//! # surreal-pool
//!
//! A pool of SurrealDB 3.x (and 4.0) WebSocket connections for servers that act on behalf of many users:
//! each request runs as *its* user (per-request JWT forwarding), and a network fault never makes
//! a command run under the wrong identity.
//!
//! The building blocks:
//!
//! * [`Connection`] — one WebSocket, owned by a background task, speaking SurrealDB's RPC in
//!   CBOR (JSON would turn strings such as `"Person:John Smith"` or `"2024-01-01"` into record
//!   ids and datetimes on the server). Many requests are in flight at once.
//! * [`Session`] — one server session on a connection, with its own namespace, database,
//!   variables and identity; the authentication API mirrors the official SDKs (signin at every
//!   level, signup, authenticate, info, invalidate, refresh, revoke; API keys as [`BearerKey`]).
//!
//! ```no_run
//! # async fn demo() -> surreal_pool::Result<()> {
//! use surreal_pool::{Connection, Record, Root};
//!
//! let conn = Connection::connect("ws://127.0.0.1:8000").await?;
//! let admin = conn.session();
//! admin.signin(&Root::new("root", "root")).await?;
//!
//! // A second identity on the same socket.
//! let user = conn.attach().await?;
//! let tokens = user
//!     .signin(&Record::new("surrealdb", "docs", "account", serde_json::json!({
//!         "email": "info@surrealdb.com", "password": "123456",
//!     })))
//!     .await?;
//! let me: Option<serde_json::Value> = user.info().await?;
//! # Ok(()) }
//! ```
//!
//! ## Values
//!
//! Parameters are any `serde::Serialize` type and results any `serde::de::DeserializeOwned`
//! type (or [`serde_json::Value`]). Strings are always sent as strings. SurrealDB-specific
//! values in results are mapped to JSON as follows: record ids become SurrealQL strings
//! (`person:⟨John Smith⟩`, parsed back by [`RecordId`]), datetimes RFC 3339 strings, uuids
//! hyphenated strings, decimals strings with their exact digits, durations SurrealQL duration
//! strings (`1h30m`), `NONE` becomes `null`, geometries GeoJSON objects, sets arrays. A result
//! is decoded in one pass, straight from the reply's CBOR into your type, as if through that
//! JSON (no JSON value is built unless you ask for one).
//!
//! ## Server versions
//!
//! A connection learns the server's version when it connects and after every reconnect
//! ([`Connection::server_version`], a [`ServerVersion`]). Every version is spoken to (3.x and
//! 4.x alike, for what 3.x has); what SurrealDB 4.0 adds — [`Session::begin_with`] with
//! [`TransactionOptions`] (read-only over a snapshot of bounded staleness, [`Isolation`]) and
//! [`Session::query_with`] with [`QueryOptions`] — is sent only to a server that has it, and
//! fails with [`Error::Unsupported`] elsewhere, having sent nothing.
//!
//! ## Names beside the official SDKs
//!
//! Where a name differs from the official Rust SDK (`surrealdb` 3.x), this is why:
//!
//! | surreal-pool | official Rust SDK | note |
//! |---|---|---|
//! | [`Root`], [`Namespace`], [`Database`], [`Record`] | `opt::auth::{Root, Namespace, Database, Record}` | same |
//! | [`BearerKey`] | (none; the JavaScript SDK's `AccessBearerAuth`) | an API key from `ACCESS … GRANT` |
//! | [`Tokens`] `{ access, refresh }` | `opt::auth::Token` `{ access, refresh }` | the Python SDK's name, which this API mirrors |
//! | [`AccessToken`], [`RefreshToken`] | `opt::auth::{AccessToken, RefreshToken}` | same; print as `***` |
//! | [`RecordId`], [`RecordIdKey`] | `RecordId`, `RecordIdKey` | same |
//! | [`Connection`] | `Surreal<Client>` | one socket; many [`Session`]s on it |
//! | [`Session`] | (none: one session per `Surreal` client) | one server session (3.x `attach`) |
//! | [`Session::set`], [`Session::unset`] | `set`, `unset` | same (the Python SDK's `let`) |
//! | [`Session::use_ns`], [`Session::use_db`], [`Session::use_ns_db`] | `use_ns(…).use_db(…)` | one call for both |
//! | [`Session::query`]`(sql, bindings)` → [`QueryResponse`] | `query(sql).bind(…)` → `IndexedResults` | the 2.x SDK's `Response`; `take` and `check` as there |
//! | [`Session::begin`] → [`Transaction`] | `begin()` → `Transaction` | same; [`Session::begin_with`] for 4.0's options |
//! | [`Session::live`] → [`LiveStream`] of [`Notification`] | `select(…).live()` → `Stream` of `Notification` | our `Notification` names the record, not the live query id |
//! | [`Session::ping`] | `health` | the RPC method's name |
//! | [`Pool`], [`PooledSession`] | (none) | |
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
pub mod blocking;
mod connection;
mod error;
mod pool;
mod session;
mod telemetry;
mod wire;


#[cfg(feature = "tower")]
pub mod tower;

#[cfg(feature = "axum")]
pub mod axum;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use auth::{AccessToken, BearerKey, Credentials, Database, Namespace, Record, RefreshToken, Root, Tokens};
pub use connection::{Connection, ConnectionBuilder};
pub use connection::reconnect::{ConnectionEvent, ReconnectPolicy};
pub use error::{Error, Result, ServerError};
pub use pool::{HealthPolicy, MoveReason, NodeState, NodeStatus, Pool, PoolBuilder, PoolEvent, PoolStatus, PooledSession, TenantLoad};
pub use session::query::QueryResponse;
pub use session::data::Transaction;
pub use session::options::{Isolation, QueryOptions, ReadOnly, Snapshot, TransactionOptions};
pub use session::live::{Action, LiveStream, Notification};
pub use session::{Resource, Session};
pub use wire::record_id::{RecordId, RecordIdKey};
pub use wire::version::ServerVersion;

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
