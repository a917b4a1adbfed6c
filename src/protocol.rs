//! The RPC envelope on the wire (no I/O): request encoding and response decoding.
//!
//! A request is a CBOR map `{id, method, params, session?}`; a response is
//! `{id, result | error, session?}`; a live-query notification has no `id`. Replies come back out
//! of order and are matched by the integer `id`.

use ciborium::Value as Cbor;

use crate::cbor;
use crate::error::{Error, ServerError};

/// Encodes one request frame.
pub(crate) fn encode_request(
    id: u64,
    method: &str,
    params: Vec<Cbor>,
    session: Option<uuid::Uuid>,
) -> Result<Vec<u8>, Error> {
    encode_request_in(id, method, params, session, None)
}

/// Encodes one request frame, inside transaction `txn` if given.
pub(crate) fn encode_request_in(
    id: u64,
    method: &str,
    params: Vec<Cbor>,
    session: Option<uuid::Uuid>,
    txn: Option<uuid::Uuid>,
) -> Result<Vec<u8>, Error> {
    let mut map = Vec::with_capacity(5);
    map.push((Cbor::Text("id".into()), Cbor::Integer(id.into())));
    map.push((Cbor::Text("method".into()), Cbor::Text(method.into())));
    map.push((Cbor::Text("params".into()), Cbor::Array(params)));
    if let Some(session) = session {
        map.push((Cbor::Text("session".into()), cbor::uuid(&session)));
    }
    if let Some(txn) = txn {
        map.push((Cbor::Text("txn".into()), cbor::uuid(&txn)));
    }
    let mut out = Vec::with_capacity(64);
    ciborium::into_writer(&Cbor::Map(map), &mut out).map_err(|e| Error::Encode(e.to_string()))?;
    Ok(out)
}

/// Serializes a caller's value to CBOR. Strings stay strings; [`crate::RecordId`] becomes a tag.
pub(crate) fn to_cbor<T: serde::Serialize + ?Sized>(value: &T) -> Result<Cbor, Error> {
    Cbor::serialized(value).map_err(|e| Error::Encode(e.to_string()))
}

/// One decoded frame from the server.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// The answer to request `id`, for server session `session` (as the server labelled it).
    Reply { id: u64, session: Option<uuid::Uuid>, outcome: Result<Cbor, ServerError> },
    /// A frame without an id: a live-query notification (or an error the server could not attach
    /// to a request, e.g. for a frame it could not parse).
    Unsolicited(Cbor),
}

/// Decodes one frame.
pub(crate) fn decode_response(bytes: &[u8]) -> Result<Incoming, Error> {
    let value: Cbor =
        ciborium::from_reader(bytes).map_err(|e| Error::Protocol(format!("invalid CBOR frame: {e}")))?;
    let Cbor::Map(entries) = value else {
        return Err(Error::Protocol("a frame that is not a map".into()));
    };
    let mut id = None;
    let mut session = None;
    let mut result = None;
    let mut error = None;
    let mut rest = Vec::new();
    for (key, value) in entries {
        match key.as_text() {
            Some("id") => id = Some(value),
            Some("result") => result = Some(value),
            Some("error") => error = Some(value),
            Some("session") => session = Some(value),
            _ => rest.push((key, value)),
        }
    }
    let id = match id {
        None | Some(Cbor::Null) => {
            let mut all = rest;
            if let Some(r) = result {
                all.push((Cbor::Text("result".into()), r));
            }
            if let Some(e) = error {
                all.push((Cbor::Text("error".into()), e));
            }
            return Ok(Incoming::Unsolicited(Cbor::Map(all)));
        }
        Some(Cbor::Integer(i)) => u64::try_from(i)
            .map_err(|_| Error::Protocol("a reply id that is not a request id".into()))?,
        Some(_) => return Err(Error::Protocol("a reply id that is not an integer".into())),
    };
    let outcome = match (result, error) {
        (_, Some(error)) => Err(decode_error(error)),
        (Some(result), None) => Ok(result),
        (None, None) => return Err(Error::Protocol(format!("reply {id} has neither result nor error"))),
    };
    let session = match session.map(cbor::to_json) {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => {
            Some(s.parse().map_err(|_| Error::Protocol(format!("reply {id} names a session that is not a uuid")))?)
        }
        Some(_) => return Err(Error::Protocol(format!("reply {id} names a session that is not a uuid"))),
    };
    Ok(Incoming::Reply { id, session, outcome })
}

/// Decodes an error object `{code, kind, message, details}`.
pub(crate) fn decode_error(value: Cbor) -> ServerError {
    let json = cbor::to_json(value);
    let code = json.get("code").and_then(|c| c.as_i64()).unwrap_or(0);
    let kind = json.get("kind").and_then(|k| k.as_str()).unwrap_or("Internal");
    let message = match json.get("message") {
        Some(serde_json::Value::String(m)) => m.clone(),
        Some(other) => other.to_string(),
        None => json.as_str().unwrap_or("unknown error").to_owned(),
    };
    ServerError::new(code, kind, message).with_details(json.get("details").cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(entries: Vec<(&str, Cbor)>) -> Vec<u8> {
        let map = entries.into_iter().map(|(k, v)| (Cbor::Text(k.into()), v)).collect();
        let mut out = Vec::new();
        ciborium::into_writer(&Cbor::Map(map), &mut out).unwrap();
        out
    }

    #[test]
    fn request_has_the_session_as_a_uuid_tag() {
        let s = uuid::Uuid::new_v4();
        let bytes = encode_request(7, "ping", vec![], Some(s)).unwrap();
        let v: Cbor = ciborium::from_reader(&bytes[..]).unwrap();
        let map = v.as_map().unwrap();
        assert_eq!(map[0], (Cbor::Text("id".into()), Cbor::Integer(7.into())));
        assert_eq!(map[3].1, cbor::uuid(&s));
    }

    #[test]
    fn decodes_result_error_and_notification() {
        let ok = decode_response(&frame(vec![("id", Cbor::Integer(3.into())), ("result", Cbor::Null)])).unwrap();
        assert!(matches!(ok, Incoming::Reply { id: 3, session: None, outcome: Ok(Cbor::Null) }));

        let err = Cbor::Map(vec![
            (Cbor::Text("code".into()), Cbor::Integer((-32002).into())),
            (Cbor::Text("kind".into()), Cbor::Text("NotAllowed".into())),
            (Cbor::Text("message".into()), Cbor::Text("nope".into())),
        ]);
        let bad = decode_response(&frame(vec![("id", Cbor::Integer(4.into())), ("error", err)])).unwrap();
        match bad {
            Incoming::Reply { id: 4, outcome: Err(e), .. } => {
                assert_eq!((e.code(), e.kind(), e.message()), (-32002, "NotAllowed", "nope"))
            }
            other => panic!("{other:?}"),
        }

        let note = decode_response(&frame(vec![("result", Cbor::Text("x".into()))])).unwrap();
        assert!(matches!(note, Incoming::Unsolicited(_)));
    }

    #[test]
    fn rejects_malformed_frames_with_a_typed_error() {
        for bytes in [&b""[..], &b"\xff\xff"[..], &frame(vec![("id", Cbor::Integer(1.into()))])[..]] {
            assert!(matches!(decode_response(bytes), Err(Error::Protocol(_))), "{bytes:?}");
        }
        let not_map = {
            let mut out = Vec::new();
            ciborium::into_writer(&Cbor::Integer(1.into()), &mut out).unwrap();
            out
        };
        assert!(matches!(decode_response(&not_map), Err(Error::Protocol(_))));
    }
}
