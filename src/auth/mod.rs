//! Credentials and tokens.
//!
//! The kinds of sign-in mirror the official SDKs: [`Root`], [`Namespace`] and [`Database`]
//! system users, [`Record`] users who sign in or sign up through a record access method, and
//! [`BearerKey`]s (API keys) granted by a bearer access method.
//! Tokens ([`AccessToken`], [`RefreshToken`]), passwords and keys never print themselves: their
//! `Debug` and `Display` show `***`. Use [`AccessToken::as_str`] to read the token on purpose.

mod credentials;
mod tokens;

pub use credentials::{BearerKey, Credentials, Database, Namespace, Record, Root};
pub use tokens::{AccessToken, RefreshToken, Tokens};
