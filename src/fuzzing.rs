//! Entry points for the fuzz targets in `fuzz/` and their regression tests (feature `fuzzing`;
//! not part of the supported API).

use crate::auth::Tokens;
use crate::cbor;
use crate::protocol::{self, Incoming};
use crate::query::QueryResponse;
use crate::value::RecordId;

/// Runs one frame through everything that reads server frames: the envelope decoder, the
/// CBOR→JSON mapping, the query-result, token and live-notification readers. Must never panic.
pub fn decode_frame(bytes: &[u8]) {
    match protocol::decode_response(bytes) {
        Ok(Incoming::Reply { outcome: Ok(value), .. }) => {
            let _ = cbor::to_json(value.clone());
            let _ = QueryResponse::from_reply(value.clone()).map(|r| r.check());
            let _ = Tokens::from_result(&value);
            crate::state::SessionState::default().apply(&crate::state::Effect::Use, Some(&value));
        }
        Ok(Incoming::Reply { outcome: Err(e), .. }) => {
            let _ = (e.detail_kind(), e.is_token_expired(), e.to_string());
        }
        Ok(Incoming::Unsolicited(value)) => {
            crate::live::LiveRegistry::default().route(value);
        }
        Err(_) => {}
    }
}

/// Parses a record id and prints it back. Must never panic.
pub fn record_id(text: &str) {
    if let Ok(id) = text.parse::<RecordId>() {
        let again: RecordId = id.to_string().parse().expect("a printed record id parses");
        assert_eq!(again, id, "record ids round-trip through their text");
    }
}
