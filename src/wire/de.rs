//! A serde `Deserializer` straight over a result's CBOR bytes: rows become the caller's type in
//! one pass, with no `serde_json::Value` tree in between.
//!
//! What the caller gets is exactly what `serde_json::from_value` gives for the JSON that
//! [`crate::wire::tags`] maps the same bytes to (the differential test beside this file and the
//! fuzz target `decoders_agree` hold it to that):
//!
//! - Untagged items are handed to the visitor as they are read: integers as `u64`/`i64`,
//!   floats as `f64`, texts borrowed from the frame, arrays and maps item by item, byte
//!   strings as sequences of numbers, `null` and `undefined` as unit (`None` for options).
//! - What JSON cannot hold as it is (a tagged item: record id, datetime, uuid, NONE, …; a
//!   float that is not finite; a negative integer below `i64::MIN`) is mapped to JSON by the
//!   one mapping in [`crate::wire::tags`], and that JSON value is handed to the visitor. Those
//!   are leaves of a row (a record id is one short text), so the tree built is small.
//! - An enum is read natively when it is a text (a unit variant) and through its JSON
//!   otherwise; a map key is read as text, and as a number or a bool when the caller's key
//!   type asks for one, as `serde_json` reads object keys.
//! - An ignored field is skipped without being built, but checked as strictly as it would be
//!   decoded: bytes the JSON path refuses are refused here too.
//!
//! One difference is left on purpose: a map with the same key twice (SurrealDB never sends
//! one) reaches a struct as it is, where a JSON object would have kept the last value only,
//! so the struct's "duplicate field" check sees it.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::CowStrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Unexpected, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::Value as Json;

use crate::wire::reader::{Head, ReadError, Reader};

/// Why a result could not be decoded as the caller's type.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// The bytes are not valid CBOR (becomes [`crate::Error::Protocol`]).
    Malformed(ReadError),
    /// Valid CBOR that does not fit the caller's type (becomes [`crate::Error::Decode`]).
    Mismatch(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed(e) => write!(f, "invalid CBOR: {e}"),
            DecodeError::Mismatch(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for DecodeError {}

impl de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError::Mismatch(msg.to_string())
    }
}

impl DecodeError {
    /// The crate's error: malformed bytes are a protocol error; a mismatch is a decode error,
    /// naming the statement it is in, if any.
    pub(crate) fn into_error(self, statement: Option<usize>) -> crate::Error {
        match (self, statement) {
            (DecodeError::Malformed(e), _) => crate::Error::Protocol(format!("an invalid result: {e}")),
            (mismatch, None) => crate::Error::Decode(Box::new(mismatch)),
            (mismatch, Some(index)) => crate::Error::Decode(Box::new(StatementDecode { index, source: mismatch })),
        }
    }
}

/// A statement's result that did not fit the requested type (keeps the mismatch as source).
#[derive(Debug)]
struct StatementDecode {
    index: usize,
    source: DecodeError,
}

impl fmt::Display for StatementDecode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "statement {}: {}", self.index, self.source)
    }
}

impl std::error::Error for StatementDecode {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The reader's errors are malformed input.
impl From<ReadError> for DecodeError {
    fn from(e: ReadError) -> Self {
        DecodeError::Malformed(e)
    }
}

/// A visitor's error through a JSON value, kept as a mismatch.
fn through_json(e: serde_json::Error) -> DecodeError {
    DecodeError::Mismatch(e.to_string())
}

/// Decodes the item `bytes` start with, found `depth` levels inside its frame, as `T`.
pub(crate) fn from_slice<T: DeserializeOwned>(bytes: &[u8], depth: usize) -> Result<T, DecodeError> {
    T::deserialize(&mut Items { r: Reader::at_depth(bytes, depth) })
}

/// The deserializer: one reader, one item per `deserialize_*` call.
pub(crate) struct Items<'de> {
    r: Reader<'de>,
}

impl<'de> Items<'de> {
    /// Whether the item ahead must go through its JSON mapping (see the module docs).
    fn needs_json(&mut self) -> Result<bool, DecodeError> {
        Ok(match self.r.peek()? {
            Head::Tag(_) => true,
            Head::Float(f) => !f.is_finite(),
            Head::Negative(n) => i64::try_from(n).is_err(),
            _ => false,
        })
    }

    /// The item ahead, mapped to JSON.
    fn json(&mut self) -> Result<Json, DecodeError> {
        Ok(self.r.json()?)
    }
}

impl<'de> de::Deserializer<'de> for &mut Items<'de> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.needs_json()? {
            return self.json()?.deserialize_any(visitor).map_err(through_json);
        }
        match self.r.head()? {
            Head::Unsigned(n) => visitor.visit_u64(n),
            // Within `i64`: `needs_json` took the rest.
            Head::Negative(n) => visitor.visit_i64(-1 - n as i64),
            Head::Bytes(len) => {
                let bytes = self.r.bytes(len)?;
                let mut seq = de::value::SeqDeserializer::<_, DecodeError>::new(bytes.into_iter().map(u64::from));
                let out = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(out)
            }
            Head::Text(Some(n)) => visitor.visit_borrowed_str(crate::wire::reader::utf8(self.r.take(n)?)?),
            Head::Text(None) => visitor.visit_string(self.r.text(None)?),
            Head::Array(len) => {
                self.r.enter()?;
                let mut seq = Seq { de: &mut *self, len, read: 0, done: false };
                let out = visitor.visit_seq(&mut seq)?;
                seq.end("fewer elements in array")?;
                self.r.leave();
                Ok(out)
            }
            Head::Map(len) => {
                self.r.enter()?;
                let mut map = Seq { de: &mut *self, len, read: 0, done: false };
                let out = visitor.visit_map(&mut map)?;
                map.end("fewer elements in map")?;
                self.r.leave();
                Ok(out)
            }
            Head::Bool(b) => visitor.visit_bool(b),
            Head::Null => visitor.visit_unit(),
            Head::Float(f) => visitor.visit_f64(f),
            Head::Tag(_) => unreachable_json(),
            Head::Break => Err(DecodeError::Malformed("an unexpected CBOR break".into())),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.needs_json()? {
            return self.json()?.deserialize_option(visitor).map_err(through_json);
        }
        if self.r.peek()? == Head::Null {
            self.r.head()?;
            return visitor.visit_none();
        }
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        // A unit variant, read natively; any other shape through JSON, whose rules for
        // variants with content (one-key objects, empty ones) are serde_json's own.
        if let Some(variant) = self.r.key()? {
            return visitor.visit_enum(CowStrDeserializer::new(variant));
        }
        self.json()?.deserialize_enum(name, variants, visitor).map_err(through_json)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.r.skip_item()?;
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map struct identifier
    }
}

/// `deserialize_any` sends every tag through JSON before it reads a head.
fn unreachable_json<T>() -> Result<T, DecodeError> {
    Err(DecodeError::Malformed("a CBOR tag where none was expected".into()))
}

/// The items of an array, or the entries of a map, being read.
struct Seq<'r, 'de> {
    de: &'r mut Items<'de>,
    /// `None`: until a break.
    len: Option<u64>,
    read: u64,
    /// Whether the last item was read (the break consumed).
    done: bool,
}

impl Seq<'_, '_> {
    fn next(&mut self) -> Result<bool, DecodeError> {
        if self.done || !self.de.r.more(self.len, &mut self.read)? {
            self.done = true;
            return Ok(false);
        }
        Ok(true)
    }

    /// After the visitor: items it did not read are an error, as for a JSON array or object.
    fn end(&mut self, expected: &'static str) -> Result<(), DecodeError> {
        if self.next()? {
            return Err(de::Error::invalid_length(self.read as usize, &expected));
        }
        Ok(())
    }

    fn size_hint(&self) -> Option<usize> {
        // Bounded like the reader's own preallocation: a claimed length is not trusted.
        self.len.map(|n| (n.saturating_sub(self.read) as usize).min(1024))
    }
}

impl<'de> de::SeqAccess<'de> for Seq<'_, 'de> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DecodeError> {
        if !self.next()? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Seq::size_hint(self)
    }
}

impl<'de> de::MapAccess<'de> for Seq<'_, 'de> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DecodeError> {
        if !self.next()? {
            return Ok(None);
        }
        seed.deserialize(Key(self.de.r.key_or_text()?)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DecodeError> {
        seed.deserialize(&mut *self.de)
    }

    fn size_hint(&self) -> Option<usize> {
        Seq::size_hint(self)
    }
}

/// A map key: a text, read as a number or a bool when the caller's key type asks for one
/// (as `serde_json` reads an object's keys).
struct Key<'de>(Cow<'de, str>);

impl Key<'_> {
    /// The key as a JSON number: `Ok(None)` if it is not one in JSON's grammar.
    fn number(&self) -> Option<Number> {
        let s = self.0.as_ref();
        let b = s.as_bytes();
        let mut i = usize::from(b.first() == Some(&b'-'));
        let digits = |i: &mut usize| {
            let start = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - start
        };
        let whole = i;
        match digits(&mut i) {
            0 => return None,
            n if n > 1 && b[whole] == b'0' => return None,
            _ => {}
        }
        let mut integer = true;
        if b.get(i) == Some(&b'.') {
            i += 1;
            integer = false;
            if digits(&mut i) == 0 {
                return None;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            integer = false;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                return None;
            }
        }
        if i != b.len() {
            return None;
        }
        if integer {
            let n = if s.starts_with('-') {
                // `-0` is the float negative zero in serde_json, not the integer 0.
                s.parse::<i64>().ok().filter(|n| *n != 0).map(Number::Negative)
            } else {
                s.parse::<u64>().ok().map(Number::Positive)
            };
            if n.is_some() {
                return n;
            }
        }
        // Past 64 bits, or with a fraction or exponent: a float, if a finite one.
        s.parse::<f64>().ok().filter(|f| f.is_finite()).map(Number::Float)
    }

    fn not_numeric() -> DecodeError {
        DecodeError::Mismatch("expected numeric key".into())
    }

    fn visit_number<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.number().ok_or_else(Key::not_numeric)? {
            Number::Positive(n) => visitor.visit_u64(n),
            Number::Negative(n) => visitor.visit_i64(n),
            Number::Float(f) => visitor.visit_f64(f),
        }
    }

    /// For 128-bit and `f32` keys: the key's text parsed as that type, if it is a JSON number.
    fn parsed<T: std::str::FromStr>(&self) -> Result<T, DecodeError> {
        self.number().ok_or_else(Key::not_numeric)?;
        self.0.parse().map_err(|_| Key::not_numeric())
    }
}

enum Number {
    Positive(u64),
    Negative(i64),
    Float(f64),
}

macro_rules! numeric_keys {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            self.visit_number(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Key<'de> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.0 {
            Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
            Cow::Owned(s) => visitor.visit_string(s),
        }
    }

    numeric_keys! { deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_f64 }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_f32(self.parsed()?)
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_i128(self.parsed()?)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_u128(self.parsed()?)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.0.as_ref() {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            other => Err(de::Error::invalid_type(Unexpected::Str(other), &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        // Map keys are never null.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        IntoDeserializer::<DecodeError>::into_deserializer(self.0).deserialize_enum(name, variants, visitor)
    }

    forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}
