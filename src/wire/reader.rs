//! A CBOR reader over received bytes: it skips items, decodes them as [`ciborium::Value`], or
//! decodes them straight to JSON with SurrealDB's tags mapped as [`crate::wire::tags`] says.
//!
//! Why not `ciborium::from_reader`: a reply is read twice on its way to the caller (the
//! envelope by the actor, the result by the caller), and most of a result is untagged maps,
//! arrays, strings and numbers. Going through `ciborium::Value` and then to JSON costs two
//! allocations per item and serde's visitor machinery; this reader finds the result's bytes
//! without building it, and builds JSON directly. Tagged items (record ids, datetimes, …) are
//! built as `ciborium::Value` first and mapped by [`crate::wire::tags`], so there is one mapping.
//!
//! The reader accepts what `ciborium` accepts, and decodes it to the same values (the fuzz
//! target `readers_agree` checks this differentially). It never panics: malformed input, and
//! nesting deeper than [`MAX_DEPTH`], are errors.

use ciborium::value::Integer;
use ciborium::Value as Cbor;
use serde_json::{Map, Value as Json};

/// The deepest nesting of arrays, maps and tags read (ciborium's limit too).
pub(crate) const MAX_DEPTH: usize = 256;

/// The most items reserved up front for one array or map (it grows past that as items come).
const MAX_PREALLOCATION: usize = 1024;

/// The bignum tags, read as integers when they fit (as ciborium does).
const TAG_BIGPOS: u64 = 2;
const TAG_BIGNEG: u64 = 3;

/// Why bytes could not be read (becomes [`crate::Error::Protocol`]).
pub(crate) type ReadError = String;
type Read<T> = Result<T, ReadError>;

/// The head of one data item: its major type and argument.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Head {
    Unsigned(u64),
    /// The integer `-1 - n`.
    Negative(u64),
    Bytes(Option<u64>),
    Text(Option<u64>),
    Array(Option<u64>),
    Map(Option<u64>),
    Tag(u64),
    Bool(bool),
    /// `null` or `undefined`.
    Null,
    Float(f64),
    Break,
}

/// Reads data items from a byte slice, front to back.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0, depth: 0 }
    }

    /// A reader for items found inside one enclosing item (a reply's result inside its
    /// envelope): the enclosing level counts towards [`MAX_DEPTH`], as it did when the whole
    /// frame was decoded at once.
    pub(crate) fn inside(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0, depth: 1 }
    }

    /// A reader for one item found `depth` levels inside others (a statement's result inside
    /// the list inside the envelope): those levels count towards [`MAX_DEPTH`].
    pub(crate) fn at_depth(bytes: &'a [u8], depth: usize) -> Self {
        Reader { bytes, pos: 0, depth }
    }

    /// Enters an array, map or tag that the caller reads item by item (see [`Reader::leave`]).
    pub(crate) fn enter(&mut self) -> Read<()> {
        if self.depth >= MAX_DEPTH {
            return Err(format!("CBOR nested deeper than {MAX_DEPTH}"));
        }
        self.depth += 1;
        Ok(())
    }

    /// Leaves what [`Reader::enter`] entered.
    pub(crate) fn leave(&mut self) {
        self.depth -= 1;
    }

    fn byte(&mut self) -> Read<u8> {
        let b = *self.bytes.get(self.pos).ok_or("truncated CBOR")?;
        self.pos += 1;
        Ok(b)
    }

    pub(super) fn take(&mut self, n: u64) -> Read<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| "a CBOR length beyond memory")?;
        let end = self.pos.checked_add(n).filter(|end| *end <= self.bytes.len()).ok_or("truncated CBOR")?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn uint(&mut self, n: usize) -> Read<u64> {
        Ok(self.take(n as u64)?.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    pub(super) fn head(&mut self) -> Read<Head> {
        let initial = self.byte()?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        if major == 7 {
            return Ok(match info {
                20 => Head::Bool(false),
                21 => Head::Bool(true),
                22 | 23 => Head::Null,
                25 => Head::Float(f16_to_f64(self.uint(2)? as u16)),
                26 => Head::Float(f64::from(f32::from_bits(self.uint(4)? as u32))),
                27 => Head::Float(f64::from_bits(self.uint(8)?)),
                31 => Head::Break,
                // The two-byte form of the same simple values (malformed per RFC 8949, but
                // ciborium reads it, so do we).
                24 => match self.byte()? {
                    20 => Head::Bool(false),
                    21 => Head::Bool(true),
                    22 | 23 => Head::Null,
                    other => return Err(format!("an unsupported CBOR simple value ({other})")),
                },
                _ => return Err(format!("an unsupported CBOR simple value ({info})")),
            });
        }
        let argument = match info {
            0..=23 => Some(u64::from(info)),
            24 => Some(self.uint(1)?),
            25 => Some(self.uint(2)?),
            26 => Some(self.uint(4)?),
            27 => Some(self.uint(8)?),
            31 => None,
            _ => return Err(format!("reserved CBOR additional information ({info})")),
        };
        let definite = |a: Option<u64>| a.ok_or_else(|| format!("an indefinite length on CBOR major type {major}"));
        Ok(match major {
            0 => Head::Unsigned(definite(argument)?),
            1 => Head::Negative(definite(argument)?),
            2 => Head::Bytes(argument),
            3 => Head::Text(argument),
            4 => Head::Array(argument),
            5 => Head::Map(argument),
            _ => Head::Tag(definite(argument)?),
        })
    }

    pub(super) fn peek(&mut self) -> Read<Head> {
        let at = self.pos;
        let head = self.head();
        self.pos = at;
        head
    }

    /// Enters an array, map or tag.
    fn nest<T>(&mut self, f: impl FnOnce(&mut Self) -> Read<T>) -> Read<T> {
        self.enter()?;
        let out = f(self);
        self.leave();
        out
    }

    /// Whether a container of `len` items (`None`: until a break) has another item.
    pub(super) fn more(&mut self, len: Option<u64>, read: &mut u64) -> Read<bool> {
        match len {
            Some(n) => {
                *read += 1;
                Ok(*read <= n)
            }
            None if self.peek()? == Head::Break => {
                self.pos += 1;
                Ok(false)
            }
            None => Ok(true),
        }
    }

    /// The chunks of a byte or text string: one for a definite length, else each definite
    /// chunk of the same major type up to the break. Like ciborium, an indefinite-length chunk
    /// inside is read as its own chunks (flattened, with a counter: no recursion).
    fn chunks(&mut self, len: Option<u64>, text: bool, mut each: impl FnMut(&'a [u8]) -> Read<()>) -> Read<()> {
        let Some(n) = len else {
            let mut open = 1usize;
            loop {
                match self.head()? {
                    Head::Break => {
                        open -= 1;
                        if open == 0 {
                            return Ok(());
                        }
                    }
                    Head::Bytes(None) if !text => open += 1,
                    Head::Text(None) if text => open += 1,
                    Head::Bytes(Some(n)) if !text => each(self.take(n)?)?,
                    Head::Text(Some(n)) if text => each(self.take(n)?)?,
                    _ => return Err("an invalid chunk in an indefinite-length CBOR string".into()),
                }
            }
        };
        each(self.take(n)?)
    }

    pub(super) fn bytes(&mut self, len: Option<u64>) -> Read<Vec<u8>> {
        let mut out = Vec::new();
        self.chunks(len, false, |chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(out)
    }

    pub(super) fn text(&mut self, len: Option<u64>) -> Read<String> {
        let mut out = String::new();
        self.chunks(len, true, |chunk| {
            out.push_str(utf8(chunk)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// A text item borrowed from the input when it has a definite length (map keys).
    pub(crate) fn key(&mut self) -> Read<Option<std::borrow::Cow<'a, str>>> {
        match self.peek()? {
            Head::Text(Some(n)) => {
                self.head()?;
                let s = utf8(self.take(n)?)?;
                Ok(Some(std::borrow::Cow::Borrowed(s)))
            }
            Head::Text(None) => {
                self.head()?;
                Ok(Some(std::borrow::Cow::Owned(self.text(None)?)))
            }
            _ => Ok(None),
        }
    }

    /// A map key as text: a text item as it is (borrowed when definite), any other item as
    /// the JSON text [`crate::wire::tags::key_text`] gives it (as a JSON object's key).
    pub(crate) fn key_or_text(&mut self) -> Read<std::borrow::Cow<'a, str>> {
        match self.key()? {
            Some(key) => Ok(key),
            None => Ok(std::borrow::Cow::Owned(crate::wire::tags::key_text(self.value()?))),
        }
    }

    /// Starts reading a map: its length (`None`: until a break), or `None` if the next item is
    /// not a map (nothing is consumed then).
    pub(crate) fn map_start(&mut self) -> Read<Option<Option<u64>>> {
        match self.peek()? {
            Head::Map(len) => {
                self.head()?;
                Ok(Some(len))
            }
            _ => Ok(None),
        }
    }

    /// Starts reading an array: its length (`None`: until a break), or `None` if the next item
    /// is not an array (nothing is consumed then).
    pub(crate) fn array_start(&mut self) -> Read<Option<Option<u64>>> {
        match self.peek()? {
            Head::Array(len) => {
                self.head()?;
                Ok(Some(len))
            }
            _ => Ok(None),
        }
    }

    /// Whether the map or array being read (of `len` entries, `read` so far) has another entry.
    pub(crate) fn map_more(&mut self, len: Option<u64>, read: &mut u64) -> Read<bool> {
        self.more(len, read)
    }

    /// Skips one item; returns the range of bytes it spans.
    pub(crate) fn skip(&mut self) -> Read<std::ops::Range<usize>> {
        let start = self.pos;
        self.skip_item()?;
        Ok(start..self.pos)
    }

    pub(super) fn skip_item(&mut self) -> Read<()> {
        match self.head()? {
            Head::Bytes(len) => self.chunks(len, false, |_| Ok(())),
            Head::Text(len) => self.chunks(len, true, |chunk| utf8(chunk).map(|_| ())),
            Head::Array(len) => self.nest(|me| {
                let mut read = 0;
                while me.more(len, &mut read)? {
                    me.skip_item()?;
                }
                Ok(())
            }),
            Head::Map(len) => self.nest(|me| {
                let mut read = 0;
                while me.more(len, &mut read)? {
                    me.skip_item()?;
                    me.skip_item()?;
                }
                Ok(())
            }),
            // Checked like `value` reads it, so that whatever `skip` accepts, `value` reads.
            Head::Tag(tag) => match self.bignum(tag)? {
                Some(_) => Ok(()),
                None => self.nest(|me| me.skip_item()),
            },
            Head::Break => Err("an unexpected CBOR break".into()),
            _ => Ok(()),
        }
    }

    /// A bignum when tag 2 or 3 holds a definite byte string of at most 16 bytes, read as
    /// ciborium reads it: an integer when it fits, else the tag around its bytes without
    /// leading zeros (a negative one beyond `i128` is an error). `None` otherwise (nothing is
    /// consumed then).
    pub(super) fn bignum(&mut self, tag: u64) -> Read<Option<Cbor>> {
        if tag != TAG_BIGPOS && tag != TAG_BIGNEG {
            return Ok(None);
        }
        let Head::Bytes(Some(n)) = self.peek()? else { return Ok(None) };
        if n > 16 {
            return Ok(None);
        }
        self.head()?;
        let raw = self.take(n)?.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
        let integer = if tag == TAG_BIGPOS {
            Integer::try_from(raw).ok()
        } else {
            let x = i128::try_from(raw).map_err(|_| "a negative CBOR bignum beyond 128 bits")?;
            Integer::try_from(x ^ !0).ok()
        };
        Ok(Some(match integer {
            Some(n) => Cbor::Integer(n),
            None => {
                let bytes = raw.to_be_bytes();
                let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
                Cbor::Tag(tag, Box::new(Cbor::Bytes(bytes[first..].to_vec())))
            }
        }))
    }

    /// One item as a [`ciborium::Value`].
    pub(crate) fn value(&mut self) -> Read<Cbor> {
        Ok(match self.head()? {
            Head::Unsigned(n) => Cbor::Integer(n.into()),
            Head::Negative(n) => Cbor::Integer(negative(n)),
            Head::Bytes(len) => Cbor::Bytes(self.bytes(len)?),
            Head::Text(len) => Cbor::Text(self.text(len)?),
            Head::Array(len) => self.nest(|me| {
                let mut items = Vec::with_capacity(me.capacity(len));
                let mut read = 0;
                while me.more(len, &mut read)? {
                    items.push(me.value()?);
                }
                Ok(Cbor::Array(items))
            })?,
            Head::Map(len) => self.nest(|me| {
                let mut entries = Vec::with_capacity(me.capacity(len));
                let mut read = 0;
                while me.more(len, &mut read)? {
                    let key = me.value()?;
                    entries.push((key, me.value()?));
                }
                Ok(Cbor::Map(entries))
            })?,
            Head::Tag(tag) => match self.bignum(tag)? {
                Some(n) => n,
                None => self.nest(|me| Ok(Cbor::Tag(tag, Box::new(me.value()?))))?,
            },
            Head::Bool(b) => Cbor::Bool(b),
            Head::Null => Cbor::Null,
            Head::Float(f) => Cbor::Float(f),
            Head::Break => return Err("an unexpected CBOR break".into()),
        })
    }

    /// One item as JSON, mapped as [`crate::wire::tags::to_json`] maps its [`ciborium::Value`].
    pub(crate) fn json(&mut self) -> Read<Json> {
        Ok(match self.head()? {
            Head::Unsigned(n) => Json::from(n),
            Head::Negative(n) => match i64::try_from(n) {
                Ok(n) => Json::from(-1 - n),
                Err(_) => crate::wire::tags::to_json(Cbor::Integer(negative(n))),
            },
            Head::Bytes(len) => Json::Array(self.bytes(len)?.into_iter().map(Json::from).collect()),
            Head::Text(len) => Json::String(self.text(len)?),
            Head::Array(len) => self.nest(|me| {
                let mut items = Vec::with_capacity(me.capacity(len));
                let mut read = 0;
                while me.more(len, &mut read)? {
                    items.push(me.json()?);
                }
                Ok(Json::Array(items))
            })?,
            Head::Map(len) => self.nest(|me| {
                let mut object = Map::new();
                let mut read = 0;
                while me.more(len, &mut read)? {
                    let key = me.key_or_text()?.into_owned();
                    object.insert(key, me.json()?);
                }
                Ok(Json::Object(object))
            })?,
            Head::Tag(tag) => match self.bignum(tag)? {
                Some(n) => crate::wire::tags::to_json(n),
                None => self.nest(|me| Ok(crate::wire::tags::tagged(tag, me.value()?)))?,
            },
            Head::Bool(b) => Json::Bool(b),
            Head::Null => Json::Null,
            Head::Float(f) => crate::wire::tags::to_json(Cbor::Float(f)),
            Head::Break => return Err("an unexpected CBOR break".into()),
        })
    }

    /// A safe preallocation for `len` items: each takes at least one byte, and nested
    /// containers would all claim the same bytes left, so at most [`MAX_PREALLOCATION`].
    fn capacity(&self, len: Option<u64>) -> usize {
        let left = self.bytes.len() - self.pos;
        len.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX).min(left).min(MAX_PREALLOCATION))
    }
}

/// A text chunk's bytes as `str` (each chunk must be valid UTF-8 on its own, as in ciborium).
pub(super) fn utf8(chunk: &[u8]) -> Read<&str> {
    std::str::from_utf8(chunk).map_err(|_| "CBOR text that is not UTF-8".into())
}

/// `-1 - n`, always within ciborium's integer range.
pub(super) fn negative(n: u64) -> Integer {
    Integer::try_from(-1 - i128::from(n)).unwrap_or_else(|_| Integer::from(0u8))
}

/// An IEEE 754 half-precision float, widened.
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f64::from(bits & 0x3ff);
    match exponent {
        0 => sign * fraction * 2f64.powi(-24),
        31 if fraction == 0.0 => sign * f64::INFINITY,
        // NaN, quieted, keeping its sign and payload (as ciborium, through `half`, does)
        31 => f64::from_bits((u64::from(bits & 0x8000) << 48) | (0x7ff << 52) | (u64::from((bits & 0x3ff) | 0x200) << 42)),
        e => sign * (1.0 + fraction / 1024.0) * 2f64.powi(e - 15),
    }
}

/// Decodes a whole item as [`ciborium::Value`].
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn value(bytes: &[u8]) -> Read<Cbor> {
    Reader::new(bytes).value()
}

/// Decodes a whole item as JSON.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn json(bytes: &[u8]) -> Read<Json> {
    Reader::new(bytes).json()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(v: &Cbor) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    fn tag(t: u64, v: Cbor) -> Cbor {
        Cbor::Tag(t, Box::new(v))
    }

    /// Values covering every major type, SurrealDB's tags and the integer edges.
    fn samples() -> Vec<Cbor> {
        let u = uuid::Uuid::new_v4();
        let text = |s: &str| Cbor::Text(s.into());
        vec![
            Cbor::Null,
            Cbor::Bool(true),
            Cbor::Integer(0.into()),
            Cbor::Integer(u64::MAX.into()),
            Cbor::Integer(i64::MIN.into()),
            Cbor::Integer(Integer::try_from(-(1i128 << 64)).unwrap()),
            Cbor::Float(1.5),
            Cbor::Float(f64::NAN),
            Cbor::Float(1e300),
            Cbor::Bytes(vec![1, 2, 255]),
            text("héllo ⟨x⟩"),
            Cbor::Array(vec![]),
            Cbor::Map(vec![
                (text("status"), text("OK")),
                (text("result"), Cbor::Array(vec![Cbor::Integer(1.into())])),
                (Cbor::Integer(7.into()), Cbor::Bool(false)),
                (tag(crate::wire::tags::TAG_TABLE, text("t")), Cbor::Null),
            ]),
            tag(crate::wire::tags::TAG_NONE, Cbor::Null),
            crate::wire::tags::uuid(&u),
            tag(crate::wire::tags::TAG_RECORDID, Cbor::Array(vec![text("person"), text("John Smith")])),
            tag(crate::wire::tags::TAG_RECORDID, Cbor::Array(vec![text("person"), Cbor::Integer(7.into())])),
            tag(
                crate::wire::tags::TAG_CUSTOM_DATETIME,
                Cbor::Array(vec![Cbor::Integer(1_704_067_200.into()), Cbor::Integer(5.into())]),
            ),
            tag(crate::wire::tags::TAG_GEOMETRY_POINT, Cbor::Array(vec![Cbor::Float(1.5), Cbor::Float(2.0)])),
            tag(999, Cbor::Array(vec![tag(crate::wire::tags::TAG_SET, Cbor::Array(vec![text("a")]))])),
        ]
    }

    #[test]
    fn decodes_what_ciborium_decodes_to_the_same_values() {
        for v in samples() {
            let bytes = encode(&v);
            let ours = value(&bytes).unwrap();
            let theirs: Cbor = ciborium::from_reader(&bytes[..]).unwrap();
            // NaN is not equal to itself: compare the encodings
            assert_eq!(encode(&ours), encode(&theirs), "{v:?}");
            assert_eq!(json(&bytes).unwrap(), crate::wire::tags::to_json(theirs), "{v:?}");
            let mut r = Reader::new(&bytes);
            assert_eq!(r.skip().unwrap(), 0..bytes.len(), "{v:?}");
        }
    }

    #[test]
    fn reads_indefinite_lengths_half_floats_and_bignums() {
        // [_ "ab" "c"], {_ "k": 1}, [_ ], half 1.5, bignum 2^64, negative bignum -2^64-1... too
        // large for ciborium's integers: an error.
        let cases: Vec<(&[u8], Cbor)> = vec![
            (&[0x7f, 0x62, b'a', b'b', 0x61, b'c', 0xff], Cbor::Text("abc".into())),
            (&[0x5f, 0x41, 1, 0x41, 2, 0xff], Cbor::Bytes(vec![1, 2])),
            (&[0xbf, 0x61, b'k', 0x01, 0xff], Cbor::Map(vec![(Cbor::Text("k".into()), Cbor::Integer(1.into()))])),
            (&[0x9f, 0xff], Cbor::Array(vec![])),
            (&[0xf9, 0x3e, 0x00], Cbor::Float(1.5)),
            (&[0xf7], Cbor::Null),
            (&[0xc2, 0x42, 0x01, 0x00], Cbor::Integer(256.into())),
            (&[0xc3, 0x41, 0x00], Cbor::Integer((-1).into())),
            // the two-byte form of simple values
            (&[0xf8, 0x14], Cbor::Bool(false)),
            (&[0xf8, 0x15], Cbor::Bool(true)),
            (&[0xf8, 0x16], Cbor::Null),
            (&[0xf8, 0x17], Cbor::Null),
        ];
        for (bytes, want) in cases {
            assert_eq!(value(bytes).unwrap(), want, "{bytes:x?}");
            let theirs: Cbor = ciborium::from_reader(bytes).unwrap();
            assert_eq!(theirs, want, "{bytes:x?}");
            assert_eq!(json(bytes).unwrap(), crate::wire::tags::to_json(want), "{bytes:x?}");
        }
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        let deep = [vec![0x81u8; MAX_DEPTH + 1], vec![0x00]].concat();
        let nested_huge: Vec<u8> = (0..200).flat_map(|_| [0x9b, 0, 0, 0, 1, 0, 0, 0, 0]).collect();
        let cases: Vec<&[u8]> = vec![
            &[],
            &[0x18],                   // truncated argument
            &[0x62, b'a'],             // truncated text
            &[0x1c],                   // reserved additional information
            &[0x1f],                   // indefinite unsigned
            &[0xff],                   // a lone break
            &[0x62, 0xff, 0xfe],       // text that is not UTF-8
            &[0x7f, 0x41, 0x00, 0xff], // a byte chunk in a text string
            &[0xf8, 0x20],             // an unassigned simple value
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // a huge array, no items
            &[0xc2, 0x51, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // 17-byte bignum tag: a tag of bytes
            &deep,
            // a negative bignum beyond i128: refused by `skip` too, so that what `skip`
            // accepts, `value` reads
            &[0xc3, 0x50, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            // arrays claiming 2^32 items each, nested: an error, not a huge reservation
            &nested_huge,
        ];
        for bytes in cases {
            let ours = value(bytes);
            let theirs = ciborium::from_reader::<Cbor, _>(bytes);
            assert_eq!(ours.is_ok(), theirs.is_ok(), "{bytes:x?}: {ours:?} vs {theirs:?}");
            assert_eq!(json(bytes).is_ok(), ours.is_ok(), "{bytes:x?}");
            assert_eq!(Reader::new(bytes).skip().is_ok(), ours.is_ok(), "{bytes:x?}");
        }
    }
}
