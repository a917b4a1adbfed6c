//! Credentials and tokens.
//!
//! The four kinds of sign-in mirror the official SDKs: [`Root`], [`Namespace`] and [`Database`]
//! system users, and [`Record`] users who sign in or sign up through a record access method.
//! Tokens ([`AccessToken`], [`RefreshToken`]) and passwords never print themselves: their
//! `Debug` and `Display` show `***`. Use [`AccessToken::as_str`] to read the token on purpose.

use std::fmt;
use std::sync::Arc;

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

fn text(s: &str) -> Cbor {
    Cbor::Text(s.to_owned())
}

fn map(entries: Vec<(&str, Cbor)>) -> Cbor {
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


/// A JWT access token. Prints as `***`.
///
/// ```
/// let t = surreal_pool::AccessToken::new("eyJhbGciOi.secret.part");
/// assert_eq!(format!("{t} {t:?}"), "*** AccessToken(***)");
/// assert_eq!(t.as_str(), "eyJhbGciOi.secret.part");
/// ```
#[derive(Clone)]
pub struct AccessToken {
    inner: Arc<TokenInner>,
}

/// One allocation per token value, shared by clones (a pool looks a forwarded token up several
/// times per checkout: each look-up after the first costs a `u64`, not the whole JWT).
struct TokenInner {
    text: Box<str>,
    /// The payload's claims, decoded on first use.
    claims: std::sync::OnceLock<Option<Claims>>,
    /// The text's hash under process-wide random keys, computed on first use.
    fingerprint: std::sync::OnceLock<u64>,
    /// Why the text is not a well-formed JWT (`None`: it is one), checked on first use.
    malformed: std::sync::OnceLock<Option<&'static str>>,
}

/// The claims this crate reads from a JWT payload (unverified: the server verifies).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Claims {
    pub(crate) exp: Option<i64>,
    pub(crate) ns: Option<String>,
    pub(crate) db: Option<String>,
}

impl AccessToken {
    /// Wraps a token string.
    ///
    /// ```
    /// let t = surreal_pool::AccessToken::new("a.b.c");
    /// assert_eq!(t, surreal_pool::AccessToken::from("a.b.c"));
    /// assert_eq!(t.to_string(), "***");
    /// ```
    pub fn new(token: impl Into<String>) -> Self {
        let inner = TokenInner {
            text: token.into().into_boxed_str(),
            claims: std::sync::OnceLock::new(),
            fingerprint: std::sync::OnceLock::new(),
            malformed: std::sync::OnceLock::new(),
        };
        AccessToken { inner: Arc::new(inner) }
    }

    /// The token itself. This is the only way to read it: `Debug` and `Display` redact it.
    ///
    /// ```
    /// let t = surreal_pool::AccessToken::new("a.b.c");
    /// assert_eq!(t.as_str(), "a.b.c");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.inner.text
    }

    #[cfg(test)]
    pub(crate) fn shares_allocation_with(&self, other: &AccessToken) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The text's hash, the same for equal tokens. The keys are random per process (as in
    /// `HashMap`'s own hasher), so that tokens sent by clients cannot be crafted to collide.
    pub(crate) fn fingerprint(&self) -> u64 {
        use std::hash::BuildHasher;
        static KEYS: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
        *self.inner.fingerprint.get_or_init(|| KEYS.get_or_init(std::hash::RandomState::new).hash_one(&*self.inner.text))
    }
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.inner.text == other.inner.text
    }
}

impl Eq for AccessToken {}

impl std::hash::Hash for AccessToken {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.fingerprint());
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(***)")
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for AccessToken {
    fn from(s: String) -> Self {
        AccessToken::new(s)
    }
}

impl From<&str> for AccessToken {
    fn from(s: &str) -> Self {
        AccessToken::new(s)
    }
}

/// A single-use refresh token (`surreal-refresh-…`), issued by record access methods declared
/// `WITH REFRESH`. Prints as `***`.
///
/// ```
/// let t = surreal_pool::RefreshToken::new("surreal-refresh-abc");
/// assert_eq!(format!("{t:?}"), "RefreshToken(***)");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RefreshToken(Arc<str>);

impl RefreshToken {
    /// Wraps a token string.
    ///
    /// ```
    /// let t = surreal_pool::RefreshToken::new("surreal-refresh-abc");
    /// assert_eq!(t.to_string(), "***");
    /// ```
    pub fn new(token: impl Into<String>) -> Self {
        RefreshToken(Arc::from(token.into()))
    }

    /// The token itself. This is the only way to read it: `Debug` and `Display` redact it.
    ///
    /// ```
    /// let t = surreal_pool::RefreshToken::new("surreal-refresh-abc");
    /// assert_eq!(t.as_str(), "surreal-refresh-abc");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(***)")
    }
}

impl fmt::Display for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for RefreshToken {
    fn from(s: String) -> Self {
        RefreshToken::new(s)
    }
}

impl From<&str> for RefreshToken {
    fn from(s: &str) -> Self {
        RefreshToken::new(s)
    }
}

impl AccessToken {
    /// The `exp` claim (seconds since the Unix epoch), read from the JWT payload without
    /// verifying it. `None` if the token is not a JWT or has no `exp`.
    ///
    /// ```
    /// // {"alg":"none"} . {"exp":1700000000} . (no signature)
    /// let t = surreal_pool::AccessToken::new("eyJhbGciOiJub25lIn0.eyJleHAiOjE3MDAwMDAwMDB9.");
    /// assert_eq!(t.expires_at(), Some(1_700_000_000));
    /// ```
    pub fn expires_at(&self) -> Option<i64> {
        self.claims()?.exp
    }

    /// Refuses, before anything is sent, a token the server would refuse for its form or its
    /// age: one that is not a well-formed signed JWT (three base64url parts, a JSON header
    /// naming a signing algorithm, a JSON object payload, a signature; at most 64 KiB), or
    /// whose `exp` has passed. The signature is not checked: only the server can.
    ///
    /// ```
    /// use surreal_pool::{AccessToken, Error};
    /// assert!(matches!(AccessToken::new("garbage").check(), Err(Error::InvalidToken(_))));
    /// // {"alg":"HS512"} . {"exp":1700000000} . sig: well formed, but expired
    /// let old = AccessToken::new("eyJhbGciOiJIUzUxMiJ9.eyJleHAiOjE3MDAwMDAwMDB9.c2ln");
    /// assert!(matches!(old.check(), Err(Error::InvalidToken("the token has expired"))));
    /// ```
    pub fn check(&self) -> Result<(), Error> {
        if let Some(reason) = *self.inner.malformed.get_or_init(|| malformed(&self.inner.text)) {
            return Err(Error::InvalidToken(reason));
        }
        if self.expired() {
            return Err(Error::InvalidToken("the token has expired"));
        }
        Ok(())
    }

    /// Whether the `exp` claim has passed (a token without one never expires here: the server
    /// decides).
    pub(crate) fn expired(&self) -> bool {
        self.expires_at().is_some_and(|exp| exp <= chrono::Utc::now().timestamp())
    }

    /// The claims of the JWT payload, unverified; decoded once per token value.
    pub(crate) fn claims(&self) -> Option<&Claims> {
        self.inner
            .claims
            .get_or_init(|| {
                let payload = self.inner.text.split('.').nth(1)?;
                let json: serde_json::Value = serde_json::from_slice(&base64url_decode(payload)?).ok()?;
                let text = |name: &str| json.get(name).and_then(|v| v.as_str()).map(str::to_owned);
                Some(Claims { exp: json.get("exp").and_then(|e| e.as_i64()), ns: text("NS"), db: text("DB") })
            })
            .as_ref()
    }
}

/// The longest token accepted (SurrealDB's are well under 2 KiB).
const MAX_TOKEN_LEN: usize = 64 << 10;

/// Why `text` is not a well-formed signed JWT, or `None`.
fn malformed(text: &str) -> Option<&'static str> {
    if text.len() > MAX_TOKEN_LEN {
        return Some("longer than 64 KiB");
    }
    let mut parts = text.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Some("not a JWT (it needs three dot-separated parts)");
    };
    let base64url = |part: &str| !part.is_empty() && part.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    if ![header, payload, signature].into_iter().all(base64url) {
        return Some("not a JWT (each part must be non-empty base64url)");
    }
    let object = |part: &str| {
        base64url_decode(part)
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .filter(serde_json::Value::is_object)
    };
    let Some(header) = object(header) else { return Some("not a JWT (the header is not a JSON object)") };
    if header.get("alg").and_then(|a| a.as_str()).is_none_or(|a| a.eq_ignore_ascii_case("none")) {
        return Some("not a JWT (the header names no signing algorithm)");
    }
    let Some(payload) = object(payload) else { return Some("not a JWT (the payload is not a JSON object)") };
    if payload.get("exp").is_some_and(|exp| !exp.is_i64() && !exp.is_u64()) {
        return Some("not a JWT (`exp` is not a whole number of seconds)");
    }
    None
}

fn base64url_decode(input: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    for c in input.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

/// What `signin`, `signup` and `refresh` return: the access token, and a refresh token when the
/// record access method was declared `WITH REFRESH` (system users get `None`).
///
/// ```
/// use surreal_pool::{RefreshToken, Tokens};
/// let t = Tokens::new("a.b.c", Some(RefreshToken::new("r-123")));
/// assert!(!format!("{t:?}").contains("a.b.c") && !format!("{t:?}").contains("r-123"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tokens {
    /// The JWT to authenticate with.
    pub access: AccessToken,
    /// The single-use refresh token, if the access method issues one.
    pub refresh: Option<RefreshToken>,
}

impl Tokens {
    /// Tokens kept from an earlier `signin`, `signup` or `refresh` (for example across a
    /// restart), to [`refresh`](crate::Session::refresh) or [`revoke`](crate::Session::revoke).
    ///
    /// ```
    /// let t = surreal_pool::Tokens::new("a.b.c", None);
    /// assert!(t.refresh.is_none());
    /// ```
    pub fn new(access: impl Into<AccessToken>, refresh: Option<RefreshToken>) -> Self {
        Tokens { access: access.into(), refresh }
    }

    /// Reads a `signin`/`signup`/`refresh` result: a bare token string or `{access, refresh}`.
    pub(crate) fn from_result(value: &Cbor) -> Result<Tokens, Error> {
        match value {
            Cbor::Text(token) => Ok(Tokens { access: AccessToken::new(token.clone()), refresh: None }),
            Cbor::Map(entries) => {
                let get = |name: &str| {
                    entries.iter().find(|(k, _)| k.as_text() == Some(name)).and_then(|(_, v)| v.as_text())
                };
                let access = get("access")
                    .ok_or_else(|| Error::Protocol("a token object without `access`".into()))?;
                Ok(Tokens { access: AccessToken::new(access), refresh: get("refresh").map(RefreshToken::new) })
            }
            _ => Err(Error::Protocol("an authentication result that is not a token".into())),
        }
    }

    /// The `refresh` / `revoke` parameter: `{access, refresh}`.
    pub(crate) fn to_params(&self) -> Result<Cbor, Error> {
        let refresh = self
            .refresh
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("these tokens have no refresh token".into()))?;
        Ok(map(vec![("access", text(self.access.as_str())), ("refresh", text(refresh.as_str()))]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = s.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    fn jwt(header: &str, payload: &str) -> AccessToken {
        AccessToken::new(format!("{}.{}.c2lnbmF0dXJl", b64(header), b64(payload)))
    }

    #[test]
    fn only_well_formed_unexpired_jwts_pass_the_check() {
        let later = chrono::Utc::now().timestamp() + 3600;
        let good = jwt(r#"{"alg":"HS512","typ":"JWT"}"#, &format!(r#"{{"exp":{later},"ID":"user:1"}}"#));
        assert!(good.check().is_ok());
        assert!(jwt(r#"{"alg":"HS512"}"#, r#"{"ID":"user:1"}"#).check().is_ok(), "no exp: the server decides");
        let refused = |t: &AccessToken| matches!(t.check(), Err(Error::InvalidToken(_)));
        let long = "a".repeat(MAX_TOKEN_LEN);
        for bad in [
            "", "garbage", "a.b", "a.b.c.d", "..", "a..c", "forged.token.value-abcdefgh", "e30.e30.", "e30.e30.sig",
            "e30.e30.s!g", "eyJhbGciOiJub25lIn0.eyJleHAiOjE3MDAwMDAwMDB9.", &long,
        ] {
            assert!(refused(&AccessToken::new(bad)), "{bad:.40}");
        }
        assert!(refused(&jwt(r#"{"alg":"none"}"#, "{}")), "unsigned");
        assert!(refused(&jwt(r#"{"alg":"HS512"}"#, "[1]")), "payload not an object");
        assert!(refused(&jwt(r#"{"alg":"HS512"}"#, r#"{"exp":"soon"}"#)), "exp not a number");
        assert!(refused(&jwt(r#"{"alg":"HS512"}"#, r#"{"exp":1700000000}"#)), "expired");
        let past = chrono::Utc::now().timestamp();
        assert!(matches!(jwt(r#"{"alg":"HS512"}"#, &format!(r#"{{"exp":{past}}}"#)).check(), Err(Error::InvalidToken("the token has expired"))));
        // The refusal names no part of the token.
        let e = AccessToken::new("secret-part.other.third").check().unwrap_err();
        assert!(!e.to_string().contains("secret") && !format!("{e:?}").contains("secret"));
    }

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

    #[test]
    fn tokens_read_both_result_shapes() {
        let bare = Tokens::from_result(&text("jwt")).unwrap();
        assert_eq!((bare.access.as_str(), bare.refresh), ("jwt", None));
        let pair = Tokens::from_result(&map(vec![("access", text("a")), ("refresh", text("r"))])).unwrap();
        assert_eq!(pair.refresh.unwrap().as_str(), "r");
        assert!(Tokens::from_result(&Cbor::Null).is_err());
    }

    #[test]
    // The cells inside only cache values derived from the immutable text.
    #[allow(clippy::mutable_key_type)]
    fn equal_tokens_hash_alike_whatever_their_allocation() {
        use std::hash::BuildHasher;
        let h = std::hash::RandomState::new();
        let a = AccessToken::new("x.eyJleHAiOjF9.z");
        let b = AccessToken::new(String::from("x.eyJleHAiOjF9.z"));
        let c = AccessToken::new("x.eyJleHAiOjJ9.z");
        assert_eq!(a, b);
        assert_eq!(h.hash_one(&a), h.hash_one(&b));
        assert_ne!(a, c);
        assert_ne!(h.hash_one(&a), h.hash_one(&c));
        // a clone shares the cached claims
        assert_eq!(a.clone().expires_at(), Some(1));
        let mut set = std::collections::HashSet::new();
        set.insert(a);
        assert!(set.contains(&b) && !set.contains(&c));
    }
}
