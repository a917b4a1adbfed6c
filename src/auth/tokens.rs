//! Tokens: [`AccessToken`] (with the unverified claims this crate reads and the check made
//! before any round trip), [`RefreshToken`], and [`Tokens`], what `signin` returns. None prints
//! itself.

use std::fmt;
use std::sync::Arc;

use ciborium::Value as Cbor;

use super::credentials::{map, text};
use crate::error::Error;

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
    /// The access method (`AC`).
    pub(crate) ac: Option<String>,
    /// Who the token is for: `ID` (a record id, or a system user's name), else `sub`.
    pub(crate) id: Option<String>,
}

impl Claims {
    /// The user these claims name, as a key: equal for every token of one user (same
    /// namespace, database, access method and id); `None` without an id.
    pub(crate) fn user_key(&self) -> Option<u64> {
        use std::hash::BuildHasher;
        let id = self.id.as_ref()?;
        Some(hasher().hash_one((&self.ns, &self.db, &self.ac, id)))
    }
}

/// The process's keys for token fingerprints and user keys (not reversible, not stable across
/// processes).
fn hasher() -> &'static std::hash::RandomState {
    static KEYS: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
    KEYS.get_or_init(std::hash::RandomState::new)
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
        *self.inner.fingerprint.get_or_init(|| hasher().hash_one(&*self.inner.text))
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
                Some(Claims {
                    exp: json.get("exp").and_then(|e| e.as_i64()),
                    ns: text("NS"),
                    db: text("DB"),
                    ac: text("AC"),
                    id: text("ID").or_else(|| text("sub")),
                })
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
    fn tokens_of_one_user_share_a_user_key_and_other_users_do_not() {
        let key = |payload: &str| jwt(r#"{"alg":"HS512"}"#, payload).claims().and_then(Claims::user_key);
        let a = key(r#"{"NS":"n","DB":"d","AC":"account","ID":"user:a","exp":1}"#);
        let a_again = key(r#"{"NS":"n","DB":"d","AC":"account","ID":"user:a","exp":2,"jti":"x"}"#);
        assert!(a.is_some());
        assert_eq!(a, a_again);
        assert_ne!(a, key(r#"{"NS":"n","DB":"d","AC":"account","ID":"user:b"}"#));
        assert_ne!(a, key(r#"{"NS":"n","DB":"other","AC":"account","ID":"user:a"}"#));
        assert_ne!(a, key(r#"{"NS":"n","DB":"d","AC":"admin","ID":"user:a"}"#));
        assert_eq!(key(r#"{"NS":"n","DB":"d"}"#), None, "no id: no user");
        assert!(key(r#"{"sub":"someone"}"#).is_some(), "a third-party token's subject");
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
