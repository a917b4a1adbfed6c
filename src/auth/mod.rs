//! Credentials and tokens.
//!
//! The four kinds of sign-in mirror the official SDKs: [`Root`], [`Namespace`] and [`Database`]
//! system users, and [`Record`] users who sign in or sign up through a record access method.
//! Tokens ([`AccessToken`], [`RefreshToken`]) and passwords never print themselves: their
//! `Debug` and `Display` show `***`. Use [`AccessToken::as_str`] to read the token on purpose.

mod credentials;
mod tokens;

pub use credentials::{Credentials, Database, Namespace, Record, Root};
pub use tokens::{AccessToken, RefreshToken, Tokens};
