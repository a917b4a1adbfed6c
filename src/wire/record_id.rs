//! Typed SurrealDB values that plain serde types cannot express: [`RecordId`].
//!
//! Results reach you as serde types or [`serde_json::Value`]. SurrealDB's own types are mapped
//! as follows (see the crate docs for the full table): record ids become strings in SurrealQL
//! syntax (`person:tobie`, `person:⟨John Smith⟩`), which [`RecordId`] parses back; datetimes
//! become RFC 3339 strings, uuids hyphenated strings, durations SurrealQL duration strings,
//! decimals strings, `NONE` becomes `null`, geometries GeoJSON objects.
//!
//! Going the other way, every string you send stays a string: nothing is parsed as SurrealQL.
//! To send a record id, send a [`RecordId`] — it is encoded with SurrealDB's record-id tag.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::error::Error;

/// The key part of a [`RecordId`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RecordIdKey {
    /// `person:tobie`, `person:⟨John Smith⟩`.
    String(String),
    /// `person:42`.
    Number(i64),
    /// `person:u'0190…'`.
    Uuid(uuid::Uuid),
    /// `temperature:['London', d'2024-01-01T00:00:00Z']`, written as JSON.
    Array(Vec<serde_json::Value>),
    /// `person:{ name: 'a' }`, written as JSON.
    Object(serde_json::Map<String, serde_json::Value>),
}

impl From<&str> for RecordIdKey {
    fn from(s: &str) -> Self {
        RecordIdKey::String(s.to_owned())
    }
}
impl From<String> for RecordIdKey {
    fn from(s: String) -> Self {
        RecordIdKey::String(s)
    }
}
impl From<i64> for RecordIdKey {
    fn from(n: i64) -> Self {
        RecordIdKey::Number(n)
    }
}
impl From<uuid::Uuid> for RecordIdKey {
    fn from(u: uuid::Uuid) -> Self {
        RecordIdKey::Uuid(u)
    }
}

/// A record id: a table and a key.
///
/// Serialized for the server with SurrealDB's record-id CBOR tag, so the key is never parsed:
/// a key with spaces, colons or brackets is stored exactly as given. In results, record ids arrive
/// as SurrealQL strings, which `RecordId` deserializes from.
///
/// ```
/// use surreal_pool::RecordId;
/// let id = RecordId::new("person", "John Smith");
/// assert_eq!(id.to_string(), "person:⟨John Smith⟩");
/// let back: RecordId = "person:⟨John Smith⟩".parse().unwrap();
/// assert_eq!(back, id);
/// assert_eq!(RecordId::new("person", 42).to_string(), "person:42");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RecordId {
    table: String,
    key: RecordIdKey,
}

impl RecordId {
    /// A record id from a table name and a key.
    ///
    /// ```
    /// let id = surreal_pool::RecordId::new("person", 42);
    /// assert_eq!(id.to_string(), "person:42");
    /// ```
    pub fn new(table: impl Into<String>, key: impl Into<RecordIdKey>) -> Self {
        RecordId { table: table.into(), key: key.into() }
    }

    /// The table.
    ///
    /// ```
    /// assert_eq!(surreal_pool::RecordId::new("person", "tobie").table(), "person");
    /// ```
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The key.
    ///
    /// ```
    /// use surreal_pool::{RecordId, RecordIdKey};
    /// assert_eq!(RecordId::new("person", "tobie").key(), &RecordIdKey::String("tobie".into()));
    /// ```
    pub fn key(&self) -> &RecordIdKey {
        &self.key
    }
}

/// True when `s` can be written bare in SurrealQL (letters, digits, `_`, not all digits).
fn is_plain_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.chars().all(|c| c.is_ascii_digit())
}

fn write_escaped(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    if is_plain_ident(s) {
        return f.write_str(s);
    }
    f.write_char('⟨')?;
    for c in s.chars() {
        if c == '⟩' || c == '\\' {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('⟩')
}

/// `s` as a SurrealQL identifier: bare when it can be, `⟨…⟩` otherwise.
pub(crate) fn escaped(s: &str) -> String {
    let mut out = String::new();
    let _ = write_escaped(&mut out, s);
    out
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, &self.table)?;
        f.write_char(':')?;
        match &self.key {
            RecordIdKey::String(s) => write_escaped(f, s),
            RecordIdKey::Number(n) => write!(f, "{n}"),
            RecordIdKey::Uuid(u) => write!(f, "u'{u}'"),
            RecordIdKey::Array(a) => f.write_str(&serde_json::Value::Array(a.clone()).to_string()),
            RecordIdKey::Object(o) => f.write_str(&serde_json::Value::Object(o.clone()).to_string()),
        }
    }
}

/// Reads an escaped part (`⟨…⟩` or `` `…` ``) at the start of `s`: returns it and the rest.
fn read_escaped(s: &str) -> Option<(String, &str)> {
    let close = match s.chars().next()? {
        '⟨' => '⟩',
        '`' => '`',
        _ => return None,
    };
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            let (_, next) = chars.next()?;
            out.push(next);
        } else if c == close {
            return Some((out, &s[i + c.len_utf8()..]));
        } else {
            out.push(c);
        }
    }
    None
}

impl FromStr for RecordId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidArgument(format!("not a record id: {s:?}"));
        let (table, rest) = match read_escaped(s) {
            Some((table, rest)) => (table, rest.strip_prefix(':').ok_or_else(bad)?),
            None if s.starts_with(['⟨', '`']) => return Err(bad()),
            None => {
                let (table, rest) = s.split_once(':').ok_or_else(bad)?;
                (table.to_owned(), rest)
            }
        };
        if table.is_empty() || rest.is_empty() {
            return Err(bad());
        }
        let key = if let Some((key, tail)) = read_escaped(rest) {
            if !tail.is_empty() {
                return Err(bad());
            }
            RecordIdKey::String(key)
        } else if let Some(inner) = rest
            .strip_prefix("u'")
            .and_then(|r| r.strip_suffix('\''))
            .or_else(|| rest.strip_prefix("u\"").and_then(|r| r.strip_suffix('"')))
        {
            RecordIdKey::Uuid(inner.parse().map_err(|_| bad())?)
        } else if rest.starts_with('[') || rest.starts_with('{') {
            match serde_json::from_str(rest).map_err(|_| bad())? {
                serde_json::Value::Array(a) => RecordIdKey::Array(a),
                serde_json::Value::Object(o) => RecordIdKey::Object(o),
                _ => return Err(bad()),
            }
        } else if let Ok(n) = rest.parse::<i64>() {
            RecordIdKey::Number(n)
        } else {
            RecordIdKey::String(rest.to_owned())
        };
        Ok(RecordId { table, key })
    }
}

impl<'de> Deserialize<'de> for RecordId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = RecordId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a record id such as `person:tobie`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RecordId, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_escapes_what_is_not_an_identifier() {
        assert_eq!(RecordId::new("person", "tobie").to_string(), "person:tobie");
        assert_eq!(RecordId::new("person", "a:b c").to_string(), "person:⟨a:b c⟩");
        assert_eq!(RecordId::new("person", "123").to_string(), "person:⟨123⟩");
        assert_eq!(RecordId::new("my table", 7).to_string(), "⟨my table⟩:7");
        assert_eq!(RecordId::new("t", "x⟩y").to_string(), "t:⟨x\\⟩y⟩");
    }

    #[test]
    fn parse_round_trips_every_key_kind() {
        let u = uuid::Uuid::new_v4();
        let ids = [
            RecordId::new("person", "tobie"),
            RecordId::new("person", "John Smith"),
            RecordId::new("person", "123"),
            RecordId::new("person", -5),
            RecordId::new("⟨odd⟩ table", "x⟩y\\z"),
            RecordId::new("person", u),
            RecordId::new("t", RecordIdKey::Array(vec![serde_json::json!("London"), serde_json::json!(3)])),
            RecordId::new("t", RecordIdKey::Object(serde_json::from_str(r#"{"a":"b:c"}"#).unwrap())),
        ];
        for id in ids {
            let text = id.to_string();
            assert_eq!(text.parse::<RecordId>().unwrap(), id, "{text}");
        }
    }

    #[test]
    fn parse_rejects_garbage() {
        for s in ["", "person", ":x", "person:", "⟨unterminated:x", "t:⟨a⟩tail"] {
            assert!(s.parse::<RecordId>().is_err(), "{s:?}");
        }
    }
}
