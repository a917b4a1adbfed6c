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
            if let Ok(json) = payload.json() {
                let _ = QueryResponse::from_json(json).map(|r| r.check());
            }
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
