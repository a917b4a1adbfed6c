//! SurrealDB's CBOR dialect: its tags, and the mapping of tagged values to and from JSON.
//!
//! The tag numbers are those of the server's RPC CBOR format (3.x). Incoming values are mapped
//! to [`serde_json::Value`] so that callers can deserialize them into their own serde types:
//!
//! | SurrealDB value (tag) | JSON |
//! |---|---|
//! | NONE (6) | `null` |
//! | table (7) | string |
//! | record id (8) | string in SurrealQL syntax, see [`crate::RecordId`] |
//! | uuid (9, 37) | hyphenated string |
//! | decimal (10) | string (exact digits) |
//! | datetime (0, 12) | RFC 3339 string, UTC |
//! | duration (13, 14) | SurrealQL duration string (`1h30m`) |
//! | range (49) | SurrealQL range string |
//! | file (55) | string `bucket:key` |
//! | set (56) | array |
//! | geometry (88–94) | GeoJSON object |
//! | bytes | array of numbers |

use ciborium::Value as Cbor;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value as Json};

use crate::wire::record_id::{self, RecordId, RecordIdKey};

pub(crate) const TAG_SPEC_DATETIME: u64 = 0;
pub(crate) const TAG_SPEC_UUID: u64 = 37;
pub(crate) const TAG_NONE: u64 = 6;
pub(crate) const TAG_TABLE: u64 = 7;
pub(crate) const TAG_RECORDID: u64 = 8;
pub(crate) const TAG_STRING_UUID: u64 = 9;
pub(crate) const TAG_STRING_DECIMAL: u64 = 10;
pub(crate) const TAG_CUSTOM_DATETIME: u64 = 12;
pub(crate) const TAG_STRING_DURATION: u64 = 13;
pub(crate) const TAG_CUSTOM_DURATION: u64 = 14;
pub(crate) const TAG_RANGE: u64 = 49;
pub(crate) const TAG_BOUND_INCLUDED: u64 = 50;
pub(crate) const TAG_BOUND_EXCLUDED: u64 = 51;
pub(crate) const TAG_FILE: u64 = 55;
pub(crate) const TAG_SET: u64 = 56;
pub(crate) const TAG_GEOMETRY_POINT: u64 = 88;
pub(crate) const TAG_GEOMETRY_LINE: u64 = 89;
pub(crate) const TAG_GEOMETRY_POLYGON: u64 = 90;
pub(crate) const TAG_GEOMETRY_MULTIPOINT: u64 = 91;
pub(crate) const TAG_GEOMETRY_MULTILINE: u64 = 92;
pub(crate) const TAG_GEOMETRY_MULTIPOLYGON: u64 = 93;
pub(crate) const TAG_GEOMETRY_COLLECTION: u64 = 94;

/// A uuid as SurrealDB expects it: tag 37 around the 16 bytes.
pub(crate) fn uuid(u: &uuid::Uuid) -> Cbor {
    Cbor::Tag(TAG_SPEC_UUID, Box::new(Cbor::Bytes(u.as_bytes().to_vec())))
}

/// A plain JSON value as CBOR (no tags: strings stay strings).
pub(crate) fn from_json(v: &Json) -> Cbor {
    match v {
        Json::Null => Cbor::Null,
        Json::Bool(b) => Cbor::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Cbor::Integer(i.into())
            } else if let Some(u) = n.as_u64() {
                Cbor::Integer(u.into())
            } else {
                Cbor::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Cbor::Text(s.clone()),
        Json::Array(a) => Cbor::Array(a.iter().map(from_json).collect()),
        Json::Object(o) => {
            Cbor::Map(o.iter().map(|(k, v)| (Cbor::Text(k.clone()), from_json(v))).collect())
        }
    }
}

/// Converts a decoded CBOR value to JSON, mapping SurrealDB's tags as the module docs say.
/// Never fails: a malformed tag payload is converted as its untagged content.
pub(crate) fn to_json(v: Cbor) -> Json {
    match v {
        Cbor::Null => Json::Null,
        Cbor::Bool(b) => Json::Bool(b),
        Cbor::Integer(i) => {
            let i = i128::from(i);
            if let Ok(i) = i64::try_from(i) {
                Json::from(i)
            } else if let Ok(u) = u64::try_from(i) {
                Json::from(u)
            } else {
                float(i as f64)
            }
        }
        Cbor::Float(f) => float(f),
        Cbor::Text(s) => Json::String(s),
        Cbor::Bytes(b) => Json::Array(b.into_iter().map(Json::from).collect()),
        Cbor::Array(a) => Json::Array(a.into_iter().map(to_json).collect()),
        Cbor::Map(m) => Json::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Cbor::Text(s) => s,
                        other => key_text(other),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Cbor::Tag(tag, inner) => tagged(tag, *inner),
        _ => Json::Null,
    }
}

/// A map key that is not a text string, as JSON object keys are: its JSON text.
pub(crate) fn key_text(key: Cbor) -> String {
    deriving(|| json_text(to_json(key)))
}

/// How many texts derived from values (record ids, non-text map keys) may nest inside each
/// other; deeper ones read `…`. Each level may double the text by escaping the one inside, so
/// this bounds what a few bytes can grow into (`2^4`), where [`MAX_DERIVED_TEXT`] alone would
/// let a 140-byte chain reach a megabyte. SurrealDB never nests them this deep in practice.
pub(crate) const MAX_DERIVED_NESTING: u32 = 4;

/// Runs `f`, which derives a text from a value, one derivation level down; past
/// [`MAX_DERIVED_NESTING`] levels, returns `…` without running it.
fn deriving(f: impl FnOnce() -> String) -> String {
    thread_local! {
        static LEVEL: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    /// Leaves the level on drop (a panic inside `f` included).
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            LEVEL.with(|l| l.set(l.get().saturating_sub(1)));
        }
    }
    if LEVEL.with(|l| l.get()) >= MAX_DERIVED_NESTING {
        return "…".into();
    }
    LEVEL.with(|l| l.set(l.get() + 1));
    let _leave = Leave;
    f()
}

fn float(f: f64) -> Json {
    serde_json::Number::from_f64(f).map(Json::Number).unwrap_or(Json::Null)
}

/// A JSON value as text: strings bare, anything else in JSON syntax (capped, see
/// [`MAX_DERIVED_TEXT`]).
fn json_text(v: Json) -> String {
    match v {
        Json::String(s) => s,
        other => capped_text(&other),
    }
}

/// The longest text this mapping derives from a value (a record id, a range, a non-text map
/// key), beyond which it is cut and ends with `…`. Each nesting level escapes the text of the
/// level inside it, so without a cap, a frame of a few hundred bytes nesting record ids or map
/// keys would grow exponentially (found by fuzzing). SurrealDB sends nothing near it.
pub(crate) const MAX_DERIVED_TEXT: usize = 1 << 20;

/// `value`'s `Display`, cut at [`MAX_DERIVED_TEXT`] bytes (formatting stops there).
fn capped_text(value: &impl std::fmt::Display) -> String {
    struct Capped(String, bool);
    impl std::fmt::Write for Capped {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let room = MAX_DERIVED_TEXT - self.0.len();
            if s.len() <= room {
                self.0.push_str(s);
                return Ok(());
            }
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.0.push_str(&s[..end]);
            self.1 = true;
            Err(std::fmt::Error)
        }
    }
    let mut out = Capped(String::new(), false);
    let _ = std::fmt::Write::write_fmt(&mut out, format_args!("{value}"));
    if out.1 {
        out.0.push('…');
    }
    out.0
}

/// A tagged value as JSON (see the module docs).
pub(crate) fn tagged(tag: u64, inner: Cbor) -> Json {
    match (tag, inner) {
        (TAG_NONE, _) => Json::Null,
        (TAG_TABLE | TAG_STRING_UUID | TAG_STRING_DECIMAL | TAG_STRING_DURATION, Cbor::Text(s)) => {
            Json::String(s)
        }
        (TAG_SPEC_DATETIME, Cbor::Text(s)) => Json::String(s),
        (TAG_SPEC_UUID, Cbor::Bytes(b)) if b.len() == 16 => {
            let bytes: [u8; 16] = b.try_into().unwrap_or([0; 16]);
            Json::String(uuid::Uuid::from_bytes(bytes).hyphenated().to_string())
        }
        (TAG_CUSTOM_DATETIME, Cbor::Array(parts)) => {
            let (secs, nanos) = int_pair(&parts);
            match chrono::DateTime::from_timestamp(secs as i64, nanos as u32) {
                Some(dt) => Json::String(dt.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                None => Json::Array(parts.into_iter().map(to_json).collect()),
            }
        }
        (TAG_CUSTOM_DURATION, Cbor::Array(parts)) => {
            let (secs, nanos) = int_pair(&parts);
            Json::String(duration_text(secs.max(0) as u64, nanos.max(0) as u32))
        }
        (TAG_RECORDID, Cbor::Text(s)) => Json::String(s),
        (TAG_RECORDID, Cbor::Array(mut parts)) if parts.len() == 2 => Json::String(deriving(|| {
            let key = parts.pop().unwrap_or(Cbor::Null);
            let table = json_text(to_json(parts.pop().unwrap_or(Cbor::Null)));
            record_id_text(table, key)
        })),
        (TAG_RANGE, Cbor::Array(bounds)) if bounds.len() == 2 => Json::String(range_text(bounds)),
        (TAG_FILE, Cbor::Array(parts)) if parts.len() == 2 => {
            let parts: Vec<String> = parts.into_iter().map(|p| json_text(to_json(p))).collect();
            Json::String(capped_text(&format_args!("{}:{}", parts[0], parts[1])))
        }
        (TAG_SET, inner) => to_json(inner),
        (TAG_GEOMETRY_POINT..=TAG_GEOMETRY_COLLECTION, inner) => geometry(tag, inner),
        (_, inner) => to_json(inner),
    }
}

/// A record id as SurrealDB's record-id tag around `[table, key]`: the key is never parsed.
pub(crate) fn record_id(id: &RecordId) -> Cbor {
    let key = match id.key() {
        RecordIdKey::String(s) => Cbor::Text(s.clone()),
        RecordIdKey::Number(n) => Cbor::Integer((*n).into()),
        RecordIdKey::Uuid(u) => uuid(u),
        RecordIdKey::Array(a) => from_json(&Json::Array(a.clone())),
        RecordIdKey::Object(o) => from_json(&Json::Object(o.clone())),
    };
    Cbor::Tag(TAG_RECORDID, Box::new(Cbor::Array(vec![Cbor::Text(id.table().to_owned()), key])))
}

/// Text formats get the SurrealQL string, CBOR gets the record-id tag.
impl Serialize for RecordId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            record_id(self).serialize(serializer)
        }
    }
}

fn int_pair(parts: &[Cbor]) -> (i128, i128) {
    let get = |i: usize| match parts.get(i) {
        Some(Cbor::Integer(n)) => i128::from(*n),
        _ => 0,
    };
    (get(0), get(1))
}

fn record_id_text(table: String, key: Cbor) -> String {
    let key = match key {
        Cbor::Text(s) => RecordIdKey::String(s),
        Cbor::Integer(n) => match i64::try_from(i128::from(n)) {
            Ok(n) => RecordIdKey::Number(n),
            Err(_) => RecordIdKey::String(i128::from(n).to_string()),
        },
        Cbor::Tag(TAG_SPEC_UUID, b) if matches!(&*b, Cbor::Bytes(x) if x.len() == 16) => {
            let Cbor::Bytes(x) = *b else { unreachable!() };
            RecordIdKey::Uuid(uuid::Uuid::from_bytes(x.try_into().unwrap_or([0; 16])))
        }
        Cbor::Tag(TAG_RANGE, b) => {
            if let Cbor::Array(bounds) = *b {
                if bounds.len() == 2 {
                    return capped_text(&format_args!("{}:{}", record_id::escaped(&table), range_text(bounds)));
                }
            }
            RecordIdKey::String(String::new())
        }
        other => match to_json(other) {
            Json::Array(a) => RecordIdKey::Array(a),
            Json::Object(o) => RecordIdKey::Object(o),
            Json::String(s) => RecordIdKey::String(s),
            v => RecordIdKey::String(v.to_string()),
        },
    };
    capped_text(&RecordId::new(table, key))
}

fn range_text(mut bounds: Vec<Cbor>) -> String {
    let end = bounds.pop().unwrap_or(Cbor::Null);
    let start = bounds.pop().unwrap_or(Cbor::Null);
    let bound = |b: Cbor| -> (Option<bool>, String) {
        match b {
            Cbor::Tag(TAG_BOUND_INCLUDED, v) => (Some(true), json_text(to_json(*v))),
            Cbor::Tag(TAG_BOUND_EXCLUDED, v) => (Some(false), json_text(to_json(*v))),
            _ => (None, String::new()),
        }
    };
    let (start_incl, start) = bound(start);
    let (end_incl, end) = bound(end);
    let mut out = start;
    if start_incl == Some(false) {
        out.push('>');
    }
    out.push_str("..");
    if end_incl == Some(true) {
        out.push('=');
    }
    out.push_str(&end);
    if out.len() > MAX_DERIVED_TEXT {
        return capped_text(&out);
    }
    out
}

/// SurrealQL duration text: `1y2w3d4h5m6s7ms8µs9ns`, `0ns` for zero.
pub(crate) fn duration_text(secs: u64, nanos: u32) -> String {
    const UNITS: [(&str, u64); 6] = [
        ("y", 365 * 86_400),
        ("w", 7 * 86_400),
        ("d", 86_400),
        ("h", 3_600),
        ("m", 60),
        ("s", 1),
    ];
    let mut out = String::new();
    let mut rest = secs;
    for (unit, size) in UNITS {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    let (ms, us, ns) = (nanos / 1_000_000, nanos / 1_000 % 1_000, nanos % 1_000);
    for (n, unit) in [(ms, "ms"), (us, "µs"), (ns, "ns")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() {
        out.push_str("0ns");
    }
    out
}

fn geometry(tag: u64, inner: Cbor) -> Json {
    fn coords(tag: u64, inner: Cbor) -> Json {
        match (tag, inner) {
            (TAG_GEOMETRY_POINT, Cbor::Array(xy)) => Json::Array(xy.into_iter().map(to_json).collect()),
            (_, Cbor::Array(items)) => Json::Array(
                items
                    .into_iter()
                    .map(|item| match item {
                        Cbor::Tag(t, v) => coords(t, *v),
                        other => to_json(other),
                    })
                    .collect(),
            ),
            (_, other) => to_json(other),
        }
    }
    let kind = match tag {
        TAG_GEOMETRY_POINT => "Point",
        TAG_GEOMETRY_LINE => "LineString",
        TAG_GEOMETRY_POLYGON => "Polygon",
        TAG_GEOMETRY_MULTIPOINT => "MultiPoint",
        TAG_GEOMETRY_MULTILINE => "MultiLineString",
        TAG_GEOMETRY_MULTIPOLYGON => "MultiPolygon",
        _ => "GeometryCollection",
    };
    let mut obj = Map::new();
    obj.insert("type".into(), Json::String(kind.into()));
    if tag == TAG_GEOMETRY_COLLECTION {
        let items = match inner {
            Cbor::Array(items) => items.into_iter().map(to_json).collect(),
            other => vec![to_json(other)],
        };
        obj.insert("geometries".into(), Json::Array(items));
    } else {
        obj.insert("coordinates".into(), coords(tag, inner));
    }
    Json::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_id_serializes_as_text_in_json_and_as_its_tag_in_cbor() {
        let id = RecordId::new("person", "a b");
        assert_eq!(serde_json::to_value(&id).unwrap(), json!("person:⟨a b⟩"));
        let v = Cbor::serialized(&id).unwrap();
        assert_eq!(v, record_id(&id));
        assert_eq!(v, Cbor::Tag(TAG_RECORDID, Box::new(Cbor::Array(vec![Cbor::Text("person".into()), Cbor::Text("a b".into())]))));
    }

    fn tag(t: u64, v: Cbor) -> Cbor {
        Cbor::Tag(t, Box::new(v))
    }

    #[test]
    fn maps_each_tag() {
        let u = uuid::Uuid::new_v4();
        let cases = vec![
            (tag(TAG_NONE, Cbor::Null), json!(null)),
            (tag(TAG_TABLE, Cbor::Text("person".into())), json!("person")),
            (uuid(&u), json!(u.to_string())),
            (tag(TAG_STRING_DECIMAL, Cbor::Text("1.10".into())), json!("1.10")),
            (
                tag(TAG_CUSTOM_DATETIME, Cbor::Array(vec![Cbor::Integer(1_704_067_200.into()), Cbor::Integer(5.into())])),
                json!("2024-01-01T00:00:00.000000005Z"),
            ),
            (
                tag(TAG_CUSTOM_DURATION, Cbor::Array(vec![Cbor::Integer(5_400.into())])),
                json!("1h30m"),
            ),
            (
                tag(TAG_RECORDID, Cbor::Array(vec![Cbor::Text("person".into()), Cbor::Text("John Smith".into())])),
                json!("person:⟨John Smith⟩"),
            ),
            (
                tag(TAG_RECORDID, Cbor::Array(vec![Cbor::Text("person".into()), Cbor::Integer(7.into())])),
                json!("person:7"),
            ),
            (
                tag(TAG_GEOMETRY_POINT, Cbor::Array(vec![Cbor::Float(1.5), Cbor::Float(2.0)])),
                json!({"type": "Point", "coordinates": [1.5, 2.0]}),
            ),
            (tag(TAG_SET, Cbor::Array(vec![Cbor::Integer(1.into())])), json!([1])),
            (
                tag(
                    TAG_RANGE,
                    Cbor::Array(vec![tag(TAG_BOUND_INCLUDED, Cbor::Integer(1.into())), tag(TAG_BOUND_EXCLUDED, Cbor::Integer(5.into()))]),
                ),
                json!("1..5"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(to_json(input.clone()), want, "{input:?}");
        }
    }

    #[test]
    fn text_derived_from_nested_values_is_capped() {
        // Each level escapes the text of the level inside it: the text would double per level.
        let mut id = Cbor::Text("\"".into());
        let mut key = Cbor::Text("\"".into());
        for _ in 0..40 {
            id = tag(TAG_RECORDID, Cbor::Array(vec![Cbor::Text("t".into()), Cbor::Map(vec![(Cbor::Text("k".into()), id)])]));
            key = Cbor::Map(vec![(key, Cbor::Null)]);
        }
        for value in [id, Cbor::Map(vec![(key, Cbor::Null)])] {
            let text = to_json(value).to_string();
            // at most MAX_DERIVED_NESTING levels, each at most doubling the one inside
            assert!(text.len() < 1000, "{}", text.len());
            assert!(text.contains('…'));
        }
        // a 1 MB string inside stays within the cap
        let mut id = Cbor::Text("\"".repeat(1 << 20));
        for _ in 0..3 {
            id = tag(TAG_RECORDID, Cbor::Array(vec![Cbor::Text("t".into()), Cbor::Map(vec![(Cbor::Text("k".into()), id)])]));
        }
        let text = to_json(id).to_string();
        assert!(text.len() < 3 * MAX_DERIVED_TEXT, "{}", text.len());
        // shallow nesting is untouched
        let inner = tag(TAG_RECORDID, Cbor::Array(vec![Cbor::Text("a".into()), Cbor::Integer(1.into())]));
        let outer = tag(TAG_RECORDID, Cbor::Array(vec![Cbor::Text("b".into()), Cbor::Array(vec![inner])]));
        assert_eq!(to_json(outer), serde_json::json!("b:[\"a:1\"]"));
    }

    #[test]
    fn durations_read_like_surrealql() {
        assert_eq!(duration_text(0, 0), "0ns");
        assert_eq!(duration_text(90_061, 1_500_000), "1d1h1m1s1ms500µs");
        assert_eq!(duration_text(365 * 86_400 + 14 * 86_400, 0), "1y2w");
    }

    #[test]
    fn json_strings_stay_strings() {
        let v = json!({"name": "Person:John Smith", "d": "2024-01-01", "n": 1, "f": 1.5, "big": u64::MAX});
        assert_eq!(to_json(from_json(&v)), v);
    }
}
