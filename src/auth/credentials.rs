//! The kinds of sign-in ([`Root`], [`Namespace`], [`Database`], [`Record`], [`BearerKey`]) and
//! how each becomes `signin` parameters. Passwords, keys and record variables never print.

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

/// Something you can sign in with: [`Root`], [`Namespace`], [`Database`], [`Record`] or
/// [`BearerKey`].
///
/// This trait is sealed: the kinds above are the ones the server knows.
///
/// ```
/// fn describe(credentials: &dyn surreal_pool::Credentials) -> String {
///     format!("{credentials:?}") // never shows a password or key
/// }
/// let text = describe(&surreal_pool::Root::new("root", "s3cret"));
/// assert!(!text.contains("s3cret"));
/// ```
pub trait Credentials: sealed::Sealed + fmt::Debug + Send + Sync {
    /// The `signin` parameter object, in the server's short keys (`NS`, `DB`, `AC`, `user`,
    /// `pass`, `key`).
    #[doc(hidden)]
    fn to_params(&self) -> Result<sealed::Params, Error>;

    /// Whether the server accepts the access tokens these credentials sign in to with
    /// `authenticate`. SurrealDB 3.3.5 refuses those of a database-level bearer access (its
    /// token check reads their claims as record access), so a pool signs in with such
    /// credentials for each session instead of sharing one token.
    #[doc(hidden)]
    fn tokens_authenticate(&self) -> bool {
        true
    }
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

/// An API key for a service: a key granted by a bearer access method (`DEFINE ACCESS … TYPE
/// BEARER FOR USER` or `FOR RECORD`, then `ACCESS … GRANT`), signed in with as
/// `{NS, DB, AC, key}` — `{NS, AC, key}` on a namespace, `{AC, key}` on the root.
///
/// The session becomes the grant's subject: the system user (with its roles) or the record.
/// Grants for a record exist only on a database. The key is a secret like a password: `Debug`
/// shows `***`. A bearer access issues no refresh token; sign in again with the key when the
/// access token expires (the pool does that itself).
///
/// The official JavaScript SDK calls these credentials `AccessBearerAuth`; the Rust SDK 3.3.5
/// has no type for them.
///
/// ```
/// use surreal_pool::BearerKey;
/// let key = BearerKey::database("app", "main", "api", "surreal-bearer-AbCdEfGhIjKl-0123456789abcdefghijklmn");
/// assert!(!format!("{key:?}").contains("0123456789"));
/// ```
///
/// Granting a key and signing in with it:
///
/// ```no_run
/// # async fn demo(admin: &surreal_pool::Session, service: &surreal_pool::Session) -> surreal_pool::Result<()> {
/// use surreal_pool::BearerKey;
/// admin.use_ns_db("app", "main").await?;
/// let mut grant = admin
///     .query("DEFINE ACCESS api ON DATABASE TYPE BEARER FOR USER; ACCESS api GRANT FOR USER reporter", ())
///     .await?;
/// let grant: serde_json::Value = grant.take(1)?;
/// let key = grant["grant"]["key"].as_str().unwrap_or_default(); // shown once: store it as a secret
/// service.signin(&BearerKey::database("app", "main", "api", key)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct BearerKey {
    namespace: Option<String>,
    database: Option<String>,
    access: String,
    key: Secret,
}

impl BearerKey {
    /// A key of a bearer access method defined on a database (`DEFINE ACCESS … ON DATABASE
    /// TYPE BEARER FOR USER | FOR RECORD`).
    ///
    /// ```
    /// let key = surreal_pool::BearerKey::database("app", "main", "api", "surreal-bearer-…");
    /// assert!(format!("{key:?}").contains(r#"database: Some("main")"#));
    /// ```
    pub fn database(namespace: impl Into<String>, database: impl Into<String>, access: impl Into<String>, key: impl Into<String>) -> Self {
        BearerKey { namespace: Some(namespace.into()), database: Some(database.into()), access: access.into(), key: Secret(key.into()) }
    }

    /// A key of a bearer access method defined on a namespace (`DEFINE ACCESS … ON NAMESPACE
    /// TYPE BEARER FOR USER`), for a namespace user.
    ///
    /// ```
    /// let key = surreal_pool::BearerKey::namespace("app", "ops", "surreal-bearer-…");
    /// assert!(format!("{key:?}").contains("database: None"));
    /// ```
    pub fn namespace(namespace: impl Into<String>, access: impl Into<String>, key: impl Into<String>) -> Self {
        BearerKey { namespace: Some(namespace.into()), database: None, access: access.into(), key: Secret(key.into()) }
    }

    /// A key of a bearer access method defined on the root (`DEFINE ACCESS … ON ROOT TYPE
    /// BEARER FOR USER`), for a root user.
    ///
    /// ```
    /// let key = surreal_pool::BearerKey::root("admin_api", "surreal-bearer-…");
    /// assert!(format!("{key:?}").contains(r#"access: "admin_api""#));
    /// ```
    pub fn root(access: impl Into<String>, key: impl Into<String>) -> Self {
        BearerKey { namespace: None, database: None, access: access.into(), key: Secret(key.into()) }
    }
}

impl fmt::Debug for BearerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerKey")
            .field("namespace", &self.namespace)
            .field("database", &self.database)
            .field("access", &self.access)
            .field("key", &self.key)
            .finish()
    }
}

impl sealed::Sealed for BearerKey {}
impl Credentials for BearerKey {
    fn to_params(&self) -> Result<sealed::Params, Error> {
        let mut entries = Vec::with_capacity(4);
        if let Some(ns) = &self.namespace {
            entries.push(("NS", text(ns)));
        }
        if let Some(db) = &self.database {
            entries.push(("DB", text(db)));
        }
        entries.push(("AC", text(&self.access)));
        entries.push(("key", text(&self.key.0)));
        Ok(sealed::Params(map(entries)))
    }

    fn tokens_authenticate(&self) -> bool {
        self.database.is_none()
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
    fn bearer_keys_name_their_level_and_never_print_the_key() {
        let keys = |c: &BearerKey| -> Vec<String> {
            c.to_params().unwrap().0.as_map().unwrap().iter().map(|(k, _)| k.as_text().unwrap().to_owned()).collect()
        };
        let db = BearerKey::database("n", "d", "api", "surreal-bearer-id-secretpart");
        assert_eq!(keys(&db), ["NS", "DB", "AC", "key"]);
        assert_eq!(keys(&BearerKey::namespace("n", "api", "k")), ["NS", "AC", "key"]);
        assert_eq!(keys(&BearerKey::root("api", "k")), ["AC", "key"]);
        let p = db.to_params().unwrap().0;
        assert!(p.as_map().unwrap().contains(&(text("key"), text("surreal-bearer-id-secretpart"))));
        assert!(!format!("{db:?}").contains("secretpart"));
        assert!(!db.tokens_authenticate(), "3.3.5 cannot authenticate database-level bearer tokens");
        assert!(BearerKey::namespace("n", "api", "k").tokens_authenticate());
    }

    #[test]
    fn record_variables_must_be_a_map() {
        let r = Record::new("n", "d", "a", vec![1, 2]);
        assert!(matches!(r.to_params(), Err(Error::InvalidArgument(_))));
    }
}
