//! The four kinds of sign-in ([`Root`], [`Namespace`], [`Database`], [`Record`]) and how each
//! becomes `signin` parameters. Passwords and record variables never print.

use std::fmt;

use ciborium::Value as Cbor;
use serde::Serialize;

use crate::error::Error;
use crate::wire::envelope::to_cbor;

/// A password or other secret string; prints as `***`.
#[derive(Clone, PartialEq, Eq)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

pub(super) fn text(s: &str) -> Cbor {
    Cbor::Text(s.to_owned())
}

pub(super) fn map(entries: Vec<(&str, Cbor)>) -> Cbor {
    Cbor::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
}

mod sealed {
    pub trait Sealed {}

    /// The encoded `signin` parameters; opaque outside the crate, so no CBOR type is part of
    /// the public API.
    pub struct Params(pub(crate) ciborium::Value);
}

/// Something you can sign in with: [`Root`], [`Namespace`], [`Database`] or [`Record`].
///
/// This trait is sealed: the four kinds above are the ones the server knows.
pub trait Credentials: sealed::Sealed + fmt::Debug + Send + Sync {
    /// The `signin` parameter object, in the server's short keys (`NS`, `DB`, `AC`, `user`, `pass`).
    #[doc(hidden)]
    fn to_params(&self) -> Result<sealed::Params, Error>;
}

/// A root user: `Root::new("root", "root")`.
///
/// ```
/// let creds = surreal_pool::Root::new("root", "s3cret");
/// assert!(!format!("{creds:?}").contains("s3cret"));
/// ```
#[derive(Clone, Debug)]
pub struct Root {
    username: String,
    password: Secret,
}

impl Root {
    /// A root user's credentials.
    ///
    /// ```
    /// let creds = surreal_pool::Root::new("root", "s3cret");
    /// assert!(format!("{creds:?}").contains(r#"username: "root""#));
    /// ```
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Root { username: username.into(), password: Secret(password.into()) }
    }
}

impl sealed::Sealed for Root {}
impl Credentials for Root {
    fn to_params(&self) -> Result<sealed::Params, Error> {
        Ok(sealed::Params(map(vec![("user", text(&self.username)), ("pass", text(&self.password.0))])))
    }
}

/// A namespace user: `Namespace::new("surrealdb", "tobie", "123456")`.
///
/// ```
/// let creds = surreal_pool::Namespace::new("surrealdb", "tobie", "123456");
/// assert!(!format!("{creds:?}").contains("123456"));
/// ```
#[derive(Clone, Debug)]
pub struct Namespace {
    namespace: String,
    username: String,
    password: Secret,
}

impl Namespace {
    /// A namespace user's credentials.
    ///
    /// ```
    /// let creds = surreal_pool::Namespace::new("surrealdb", "tobie", "123456");
    /// assert!(format!("{creds:?}").contains(r#"namespace: "surrealdb""#));
    /// ```
    pub fn new(namespace: impl Into<String>, username: impl Into<String>, password: impl Into<String>) -> Self {
        Namespace { namespace: namespace.into(), username: username.into(), password: Secret(password.into()) }
    }
}

impl sealed::Sealed for Namespace {}
impl Credentials for Namespace {
    fn to_params(&self) -> Result<sealed::Params, Error> {
        Ok(sealed::Params(map(vec![
            ("NS", text(&self.namespace)),
            ("user", text(&self.username)),
            ("pass", text(&self.password.0)),
        ])))
    }
}

/// A database user: `Database::new("surrealdb", "docs", "tobie", "123456")`.
///
/// ```
/// let creds = surreal_pool::Database::new("surrealdb", "docs", "tobie", "123456");
/// assert!(!format!("{creds:?}").contains("123456"));
/// ```
#[derive(Clone, Debug)]
pub struct Database {
    namespace: String,
    database: String,
    username: String,
    password: Secret,
}

impl Database {
    /// A database user's credentials.
    ///
    /// ```
    /// let creds = surreal_pool::Database::new("surrealdb", "docs", "tobie", "123456");
    /// assert!(format!("{creds:?}").contains(r#"database: "docs""#));
    /// ```
    pub fn new(
        namespace: impl Into<String>,
        database: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Database {
            namespace: namespace.into(),
            database: database.into(),
            username: username.into(),
            password: Secret(password.into()),
        }
    }
}

impl sealed::Sealed for Database {}
impl Credentials for Database {
    fn to_params(&self) -> Result<sealed::Params, Error> {
        Ok(sealed::Params(map(vec![
            ("NS", text(&self.namespace)),
            ("DB", text(&self.database)),
            ("user", text(&self.username)),
            ("pass", text(&self.password.0)),
        ])))
    }
}

/// A record user, signing in or up through a record access method with arbitrary variables.
///
/// The variables are any serializable map (a struct, a `serde_json::Value` object, a
/// `HashMap`); they are sent as they are — a password shaped like a date or a record id stays a
/// string. `Debug` never shows them.
///
/// ```
/// use surreal_pool::Record;
/// let creds = Record::new("surrealdb", "docs", "account", serde_json::json!({
///     "email": "info@surrealdb.com",
///     "password": "123456",
/// }));
/// assert!(!format!("{creds:?}").contains("123456"));
/// ```
#[derive(Clone)]
pub struct Record<V> {
    namespace: String,
    database: String,
    access: String,
    variables: V,
}

impl<V> Record<V> {
    /// Record-access credentials: namespace, database, access method name and its variables.
    ///
    /// ```
    /// let creds = surreal_pool::Record::new("surrealdb", "docs", "account", serde_json::json!({
    ///     "email": "info@surrealdb.com", "password": "123456",
    /// }));
    /// assert!(format!("{creds:?}").contains(r#"access: "account""#));
    /// ```
    pub fn new(namespace: impl Into<String>, database: impl Into<String>, access: impl Into<String>, variables: V) -> Self {
        Record { namespace: namespace.into(), database: database.into(), access: access.into(), variables }
    }
}

impl<V> fmt::Debug for Record<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("namespace", &self.namespace)
            .field("database", &self.database)
            .field("access", &self.access)
            .field("variables", &format_args!("***"))
            .finish()
    }
}

impl<V: Serialize> sealed::Sealed for Record<V> {}
impl<V: Serialize + Send + Sync> Credentials for Record<V> {
    fn to_params(&self) -> Result<sealed::Params, Error> {
        let mut entries = vec![
            (text("NS"), text(&self.namespace)),
            (text("DB"), text(&self.database)),
            (text("AC"), text(&self.access)),
        ];
        match to_cbor(&self.variables)? {
            Cbor::Map(vars) => entries.extend(vars),
            Cbor::Null => {}
            _ => return Err(Error::InvalidArgument("record access variables must be a map".into())),
        }
        Ok(sealed::Params(Cbor::Map(entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_use_the_short_keys() {
        let p = Database::new("n", "d", "u", "p").to_params().unwrap().0;
        let keys: Vec<_> = p.as_map().unwrap().iter().map(|(k, _)| k.as_text().unwrap().to_owned()).collect();
        assert_eq!(keys, ["NS", "DB", "user", "pass"]);
        let r = Record::new("n", "d", "account", serde_json::json!({"email": "a", "password": "2024-01-01"}));
        let p = r.to_params().unwrap().0;
        let entries = p.as_map().unwrap();
        assert_eq!(entries[2], (text("AC"), text("account")));
        assert!(entries.contains(&(text("password"), text("2024-01-01"))));
    }

    #[test]
    fn record_variables_must_be_a_map() {
        let r = Record::new("n", "d", "a", vec![1, 2]);
        assert!(matches!(r.to_params(), Err(Error::InvalidArgument(_))));
    }
}
