//! Entry points for the fuzz targets in `fuzz/` and their regression tests (feature `fuzzing`;
//! not part of the supported API).

use crate::auth::Tokens;
use crate::wire::tags;
use crate::wire::envelope::{self, Incoming};
use crate::session::query::QueryResponse;
use crate::wire::record_id::RecordId;

/// Runs one frame through everything that reads server frames: the envelope decoder, the
/// CBOR→JSON mapping, the query-result, token and live-notification readers. Must never panic.
pub fn decode_frame(bytes: &[u8]) {
    match envelope::decode_response(&bytes::Bytes::copy_from_slice(bytes)) {
        Ok(Incoming::Reply { outcome: Ok(payload), .. }) => {
            if let Ok(response) = QueryResponse::from_payload(payload.clone()) {
                let _ = response.clone().into_results();
                let _ = response.check();
            }
            let _ = payload.decode::<serde_json::Value>();
            if let Ok(value) = payload.cbor() {
                let _ = tags::to_json(value.clone());
                let _ = Tokens::from_result(&value);
                crate::connection::state::SessionState::default().apply(&crate::connection::state::Effect::Use, Some(&value));
            }
        }
        Ok(Incoming::Reply { outcome: Err(e), .. }) => {
            let _ = (e.detail_kind(), e.is_token_expired(), e.to_string());
        }
        Ok(Incoming::Unsolicited(value)) => {
            crate::connection::live_registry::LiveRegistry::default().route(value);
        }
        Err(_) => {}
    }
}

/// Decodes arbitrary bytes with both CBOR readers (ours and ciborium's): each must accept what
/// the other accepts, decode it to the same value, and map it to the same JSON. Must never panic.
pub fn readers_agree(bytes: &[u8]) {
    let ours = crate::wire::reader::value(bytes);
    let theirs = ciborium::from_reader::<ciborium::Value, _>(bytes);
    match (ours, theirs) {
        (Ok(ours), Ok(theirs)) => {
            let encode = |v: &ciborium::Value| {
                let mut out = Vec::new();
                ciborium::into_writer(v, &mut out).map(|_| out).ok()
            };
            // Compared encoded: NaN is not equal to itself.
            assert_eq!(encode(&ours), encode(&theirs), "both readers decode to the same value");
            let json = crate::wire::reader::json(bytes).expect("JSON decodes what the value decoder decodes");
            assert_eq!(json, tags::to_json(theirs), "both paths map to the same JSON");
        }
        (Err(_), Err(_)) => assert!(crate::wire::reader::json(bytes).is_err()),
        (ours, theirs) => panic!("the readers disagree: ours {ours:?}, ciborium {theirs:?}"),
    }
}

/// Parses a record id and prints it back. Must never panic.
pub fn record_id(text: &str) {
    if let Ok(id) = text.parse::<RecordId>() {
        let again: RecordId = id.to_string().parse().expect("a printed record id parses");
        assert_eq!(again, id, "record ids round-trip through their text");
    }
}

/// Decodes arbitrary bytes as a result both ways: through JSON (the old path: CBOR → JSON →
/// `serde_json::from_value`) and straight from the CBOR (`wire::de`), as JSON itself
/// and as a row struct that uses most of serde's shapes. The two must agree: the same value,
/// or both an error. Must never panic otherwise.
pub fn decoders_agree(bytes: &[u8]) {
    use crate::wire::de::{from_slice, DecodeError};
    let old = crate::wire::reader::Reader::inside(bytes).json();
    let new = from_slice::<serde_json::Value>(bytes, 1);
    match (&old, &new) {
        (Ok(old), Ok(new)) => assert_eq!(old, new, "both paths decode to the same JSON"),
        (Err(_), Err(DecodeError::Malformed(_))) => {}
        _ => panic!("the decoders disagree on JSON: old {old:?}, new {new:?}"),
    }
    // A map with a repeated key reaches the caller's type as it is, where JSON keeps the last
    // value only (see `wire::de`): then the new path may refuse what the old one took.
    let repeated = crate::wire::reader::Reader::inside(bytes).value().is_ok_and(|v| repeats_a_key(&v));
    typed_agree::<rows::Row>(bytes, old.as_ref(), repeated);
    typed_agree::<Vec<rows::Row>>(bytes, old.as_ref(), repeated);
}

fn typed_agree<T>(bytes: &[u8], old: Result<&serde_json::Value, &String>, repeated: bool)
where
    T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    use crate::wire::de::{from_slice, DecodeError};
    let old = old.map(|json| serde_json::from_value::<T>(json.clone()));
    match (old, from_slice::<T>(bytes, 1)) {
        (Ok(Ok(old)), Ok(new)) => assert_eq!(old, new, "both paths decode to the same row"),
        (Ok(Ok(_)), Err(DecodeError::Mismatch(_))) if repeated => {}
        (Ok(Err(_)), Err(DecodeError::Mismatch(_))) | (Err(_), Err(_)) => {}
        (old, new) => panic!("the decoders disagree on a row: old {old:?}, new {new:?}"),
    }
}

/// Whether any map in `v` has two keys that map to the same JSON object key.
fn repeats_a_key(v: &ciborium::Value) -> bool {
    use ciborium::Value as Cbor;
    match v {
        Cbor::Map(entries) => {
            let mut seen = std::collections::HashSet::new();
            entries.iter().any(|(k, v)| {
                let key = match k {
                    Cbor::Text(s) => s.clone(),
                    other => tags::key_text(other.clone()),
                };
                !seen.insert(key) || repeats_a_key(v)
            })
        }
        Cbor::Array(items) => items.iter().any(repeats_a_key),
        Cbor::Tag(_, inner) => repeats_a_key(inner),
        _ => false,
    }
}

/// Whether the bytes decode as the row of [`decoders_agree`] (for the differential test to
/// check that its inputs are not all errors).
pub fn decodes_as_row(bytes: &[u8]) -> bool {
    crate::wire::de::from_slice::<rows::Row>(bytes, 1).is_ok()
}

/// The row of [`decoders_agree`]: each field a different serde shape.
mod rows {
    use std::collections::{BTreeMap, HashMap};

    use serde::Deserialize;

    use crate::wire::record_id::RecordId;

    #[derive(Debug, PartialEq, Deserialize)]
    pub(super) struct Row {
        id: RecordId,
        name: String,
        age: Option<u8>,
        score: f64,
        small: f32,
        at: Option<String>,
        tags: Vec<String>,
        nested: Nested,
        kind: Kind,
        keyed: HashMap<i64, bool>,
        #[serde(default)]
        missing: Option<i32>,
        blob: Vec<u8>,
        pair: (i64, String),
        wrapped: Wrapped,
        either: Either,
        #[serde(flatten)]
        rest: BTreeMap<String, serde_json::Value>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Nested {
        a: i64,
        b: Vec<Option<bool>>,
        #[serde(default)]
        deep: Option<Box<Nested>>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    enum Kind {
        Plain,
        Tagged(String),
        Pair(i64, i64),
        Rec { x: i64 },
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Wrapped(String);

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(i64),
        Text(String),
        List(Vec<Either>),
    }
}

/// Takes statement 0 of an encoded `query` result as `T`, straight from the CBOR (what
/// [`crate::QueryResponse::take`] does). For the decode benchmark.
pub fn take_direct<T: serde::de::DeserializeOwned>(result: &bytes::Bytes) -> crate::Result<T> {
    QueryResponse::from_payload(crate::wire::envelope::Payload::from_bytes(result.clone()))?.take(0)
}

/// The same through the old path: the whole result to JSON, then `serde_json::from_value`.
/// For the decode benchmark.
pub fn take_via_json<T: serde::de::DeserializeOwned>(result: &bytes::Bytes) -> crate::Result<T> {
    let json = crate::wire::reader::Reader::inside(result).json().map_err(crate::Error::Protocol)?;
    let value = json.get(0).and_then(|s| s.get("result")).cloned().unwrap_or_default();
    serde_json::from_value(value).map_err(|e| crate::Error::Decode(Box::new(e)))
}

/// What a checkout costs the session table alone, by pool size, in ns: `[the pool's own
/// identity, a tenant's hit, a tenant re-purposing a session]`. For `benches/table.rs`.
pub fn table_checkout_cost(sizes: &[usize]) -> Vec<(usize, [f64; 3])> {
    crate::pool::table::cost::checkout_cost(sizes)
}
