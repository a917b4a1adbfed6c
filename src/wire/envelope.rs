//! The RPC envelope on the wire (no I/O): request encoding and response decoding.
//!
//! A request is a CBOR map `{id, method, params, session?, txn?, trace_context?}` (the last only
//! with feature `opentelemetry`, and only when there is a valid span context); a response is
//! `{id, result | error, session?}`; a live-query notification has no `id`. Replies come back out
//! of order and are matched by the integer `id`.

use ciborium::Value as Cbor;

use crate::wire::tags;
use crate::error::{Error, ServerError};
use crate::wire::reader::{self, Reader};

/// Encodes one request frame.
pub(crate) fn encode_request(
    id: u64,
    method: &str,
    params: Vec<Cbor>,
    session: Option<uuid::Uuid>,
) -> Result<Vec<u8>, Error> {
    encode_request_in(id, method, params, session, None)
}

/// Encodes one request frame, inside transaction `txn` if given. The envelope is written by
/// hand (no intermediate map of owned keys); each parameter through ciborium. With feature
/// `opentelemetry`, the current span's W3C trace context is added as `trace_context:
/// {traceparent, tracestate?}` when it is valid (see [`crate::wire::trace_context`]); without
/// one the bytes are the same as without the feature.
pub(crate) fn encode_request_in(
    id: u64,
    method: &str,
    params: Vec<Cbor>,
    session: Option<uuid::Uuid>,
    txn: Option<uuid::Uuid>,
) -> Result<Vec<u8>, Error> {
    #[cfg(feature = "opentelemetry")]
    let trace_context = crate::wire::trace_context::current();
    let entries = 3 + u64::from(session.is_some()) + u64::from(txn.is_some());
    #[cfg(feature = "opentelemetry")]
    let entries = entries + u64::from(!trace_context.is_empty());
    let mut out = Vec::with_capacity(64);
    head(&mut out, MAJOR_MAP, entries);
    text(&mut out, "id");
    head(&mut out, MAJOR_UNSIGNED, id);
    text(&mut out, "method");
    text(&mut out, method);
    text(&mut out, "params");
    head(&mut out, MAJOR_ARRAY, params.len() as u64);
    for param in &params {
        ciborium::into_writer(param, &mut out).map_err(|e| Error::Encode(Box::new(e)))?;
    }
    for (name, uuid) in [("session", session), ("txn", txn)] {
        if let Some(uuid) = uuid {
            text(&mut out, name);
            head(&mut out, MAJOR_TAG, tags::TAG_SPEC_UUID);
            head(&mut out, MAJOR_BYTES, 16);
            out.extend_from_slice(uuid.as_bytes());
        }
    }
    #[cfg(feature = "opentelemetry")]
    if !trace_context.is_empty() {
        text(&mut out, "trace_context");
        head(&mut out, MAJOR_MAP, trace_context.len() as u64);
        for (key, value) in &trace_context {
            text(&mut out, key);
            text(&mut out, value);
        }
    }
    Ok(out)
}

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;

/// A CBOR head in its shortest form (as ciborium writes it).
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let major = major << 5;
    match n {
        0..=23 => out.push(major | n as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, n as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn text(out: &mut Vec<u8>, s: &str) {
    head(out, MAJOR_TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Serializes a caller's value to CBOR. Strings stay strings; [`crate::RecordId`] becomes a tag.
pub(crate) fn to_cbor<T: serde::Serialize + ?Sized>(value: &T) -> Result<Cbor, Error> {
    Cbor::serialized(value).map_err(|e| Error::Encode(Box::new(e)))
}

/// A reply's result, still encoded: a slice of the frame it came in (no copy). The actor reads
/// only the envelope; whoever waits for the reply decodes the result, as CBOR or straight to
/// JSON (see [`crate::wire::reader`]).
#[derive(Clone)]
pub(crate) struct Payload(bytes::Bytes);

impl Payload {
    /// The result as a CBOR value.
    pub(crate) fn cbor(&self) -> Result<Cbor, Error> {
        Reader::inside(&self.0).value().map_err(|e| Error::Protocol(format!("an invalid result: {e}")))
    }

    /// The result as the caller's type, decoded straight from its CBOR with SurrealDB's tags
    /// mapped as [`crate::wire::tags`] maps them to JSON (see [`crate::wire::de`]).
    pub(crate) fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        crate::wire::de::from_slice(&self.0, 1).map_err(|e| e.into_error(None))
    }

    /// Whether the result is an array.
    pub(crate) fn is_array(&self) -> bool {
        matches!(Reader::inside(&self.0).array_start(), Ok(Some(_)))
    }

    /// The encoded result.
    pub(crate) fn bytes(&self) -> &bytes::Bytes {
        &self.0
    }

    /// A payload of encoded bytes (the decode benchmark).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn from_bytes(bytes: bytes::Bytes) -> Payload {
        Payload(bytes)
    }

    /// A payload holding `value` (replies the actor makes up itself, and tests).
    pub(crate) fn from_value(value: &Cbor) -> Payload {
        let mut out = Vec::new();
        // Writing a `Value` to a `Vec` cannot fail.
        let _ = ciborium::into_writer(value, &mut out);
        Payload(out.into())
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload({} bytes)", self.0.len())
    }
}

/// One decoded frame from the server.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// The answer to request `id`, for server session `session` (as the server labelled it).
    Reply { id: u64, session: Option<uuid::Uuid>, outcome: Result<Payload, ServerError> },
    /// A frame without an id: a live-query notification (or an error the server could not attach
    /// to a request, e.g. for a frame it could not parse).
    Unsolicited(Cbor),
}

/// Decodes one frame's envelope. The result is not decoded (see [`Payload`]), only checked to be
/// well-formed CBOR.
pub(crate) fn decode_response(frame: &bytes::Bytes) -> Result<Incoming, Error> {
    let invalid = |e: reader::ReadError| Error::Protocol(format!("invalid CBOR frame: {e}"));
    let Some(len) = Reader::new(frame).map_start().map_err(invalid)? else {
        Reader::new(frame).value().map_err(invalid)?;
        return Err(Error::Protocol("a frame that is not a map".into()));
    };
    // The entries are read one level down, inside the envelope.
    let mut r = Reader::inside(frame);
    r.map_start().map_err(invalid)?;
    let mut id = None;
    let mut session = None;
    let mut result = None;
    let mut error = None;
    let mut rest = Vec::new();
    let mut read = 0;
    while r.map_more(len, &mut read).map_err(invalid)? {
        let key = r.key().map_err(invalid)?;
        match key.as_deref() {
            Some("id") => id = Some(r.value().map_err(invalid)?),
            Some("result") => result = Some(r.skip().map_err(invalid)?),
            Some("error") => error = Some(r.skip().map_err(invalid)?),
            Some("session") => session = Some(r.value().map_err(invalid)?),
            _ => {
                let key = match key {
                    Some(text) => Cbor::Text(text.into_owned()),
                    None => r.value().map_err(invalid)?,
                };
                rest.push((key, r.value().map_err(invalid)?));
            }
        }
    }
    let part = |range: std::ops::Range<usize>| frame.slice(range);
    let id = match id {
        None | Some(Cbor::Null) => {
            let mut all = rest;
            for (name, range) in [("result", result), ("error", error)] {
                if let Some(range) = range {
                    all.push((Cbor::Text(name.into()), Reader::inside(&frame[range]).value().map_err(invalid)?));
                }
            }
            return Ok(Incoming::Unsolicited(Cbor::Map(all)));
        }
        Some(Cbor::Integer(i)) => u64::try_from(i)
            .map_err(|_| Error::Protocol("a reply id that is not a request id".into()))?,
        Some(_) => return Err(Error::Protocol("a reply id that is not an integer".into())),
    };
    let outcome = match (result, error) {
        (_, Some(error)) => Err(decode_error(Reader::inside(&frame[error]).value().map_err(invalid)?)),
        (Some(result), None) => Ok(Payload(part(result))),
        (None, None) => return Err(Error::Protocol(format!("reply {id} has neither result nor error"))),
    };
    let not_a_uuid = || Error::Protocol(format!("reply {id} names a session that is not a uuid"));
    let session = match session {
        None | Some(Cbor::Null) => None,
        // The usual form: tag 37 around the 16 bytes.
        Some(Cbor::Tag(tags::TAG_SPEC_UUID, bytes)) if matches!(&*bytes, Cbor::Bytes(b) if b.len() == 16) => {
            let Cbor::Bytes(b) = *bytes else { return Err(not_a_uuid()) };
            Some(uuid::Uuid::from_slice(&b).map_err(|_| not_a_uuid())?)
        }
        Some(other) => match tags::to_json(other) {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.parse().map_err(|_| not_a_uuid())?),
            _ => return Err(not_a_uuid()),
        },
    };
    Ok(Incoming::Reply { id, session, outcome })
}

/// The id of a reply whose envelope [`decode_response`] refused, if a scan of the top-level
/// entries reaches an integer `id` (every entry before it must be well-formed enough to skip;
/// the server writes `id` first). Nothing inside `result` or `error` is ever taken for it.
pub(crate) fn reply_id(frame: &[u8]) -> Option<u64> {
    let mut r = Reader::inside(frame);
    let len = r.map_start().ok()??;
    let mut read = 0;
    while r.map_more(len, &mut read).ok()? {
        match r.key().ok()? {
            Some(key) if key == "id" => {
                return match r.value().ok()? {
                    Cbor::Integer(i) => u64::try_from(i).ok(),
                    _ => None,
                };
            }
            Some(_) => {}
            None => {
                r.skip().ok()?; // a key that is not text
            }
        }
        r.skip().ok()?;
    }
    None
}

/// Decodes an error object `{code, kind, message, details}`.
pub(crate) fn decode_error(value: Cbor) -> ServerError {
    let json = tags::to_json(value);
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

    fn frame(entries: Vec<(&str, Cbor)>) -> bytes::Bytes {
        let map = entries.into_iter().map(|(k, v)| (Cbor::Text(k.into()), v)).collect();
        let mut out = Vec::new();
        ciborium::into_writer(&Cbor::Map(map), &mut out).unwrap();
        out.into()
    }

    #[test]
    fn requests_encode_as_ciborium_would_encode_the_map() {
        let (s, t) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let params = vec![Cbor::Text("x".repeat(300)), Cbor::Map(vec![(Cbor::Text("a".into()), Cbor::Integer((-7).into()))])];
        for id in [0, 23, 24, 255, 256, 65_535, 65_536, u32::MAX as u64 + 1, u64::MAX] {
            for (session, txn) in [(None, None), (Some(s), None), (Some(s), Some(t)), (None, Some(t))] {
                let mut map = vec![
                    (Cbor::Text("id".into()), Cbor::Integer(id.into())),
                    (Cbor::Text("method".into()), Cbor::Text("query".into())),
                    (Cbor::Text("params".into()), Cbor::Array(params.clone())),
                ];
                map.extend(session.map(|s| (Cbor::Text("session".into()), tags::uuid(&s))));
                map.extend(txn.map(|t| (Cbor::Text("txn".into()), tags::uuid(&t))));
                let mut want = Vec::new();
                ciborium::into_writer(&Cbor::Map(map), &mut want).unwrap();
                assert_eq!(encode_request_in(id, "query", params.clone(), session, txn).unwrap(), want, "{id} {session:?} {txn:?}");
            }
        }
    }

    #[test]
    fn the_envelope_counts_towards_the_nesting_limit() {
        // ciborium, decoding the whole frame, allowed 255 levels inside the envelope map
        let nested = |levels: usize| {
            let mut v = Cbor::Null;
            for _ in 0..levels {
                v = Cbor::Array(vec![v]);
            }
            frame(vec![("id", Cbor::Integer(1.into())), ("result", v)])
        };
        let ok = decode_response(&nested(reader::MAX_DEPTH - 1)).unwrap();
        let Incoming::Reply { outcome: Ok(payload), .. } = ok else { panic!("{ok:?}") };
        assert!(payload.cbor().is_ok() && payload.decode::<serde_json::Value>().is_ok());
        assert!(matches!(decode_response(&nested(reader::MAX_DEPTH)), Err(Error::Protocol(_))));
        let whole = nested(reader::MAX_DEPTH);
        assert!(ciborium::from_reader::<Cbor, _>(&whole[..]).is_err(), "as ciborium");
    }

    #[test]
    fn reply_session_labels_read_as_uuids() {
        let s = uuid::Uuid::new_v4();
        for label in [tags::uuid(&s), Cbor::Text(s.to_string()), Cbor::Tag(tags::TAG_STRING_UUID, Box::new(Cbor::Text(s.to_string())))] {
            let reply = decode_response(&frame(vec![("id", Cbor::Integer(1.into())), ("result", Cbor::Null), ("session", label.clone())]));
            assert!(matches!(reply, Ok(Incoming::Reply { session: Some(got), .. }) if got == s), "{label:?}");
        }
        let bad = decode_response(&frame(vec![("id", Cbor::Integer(1.into())), ("result", Cbor::Null), ("session", Cbor::Integer(1.into()))]));
        assert!(matches!(bad, Err(Error::Protocol(_))));
        let none = decode_response(&frame(vec![("id", Cbor::Integer(1.into())), ("result", Cbor::Null), ("session", Cbor::Null)]));
        assert!(matches!(none, Ok(Incoming::Reply { session: None, .. })));
    }

    #[test]
    fn request_has_the_session_as_a_uuid_tag() {
        let s = uuid::Uuid::new_v4();
        let bytes = encode_request(7, "ping", vec![], Some(s)).unwrap();
        let v: Cbor = ciborium::from_reader(&bytes[..]).unwrap();
        let map = v.as_map().unwrap();
        assert_eq!(map[0], (Cbor::Text("id".into()), Cbor::Integer(7.into())));
        assert_eq!(map[3].1, tags::uuid(&s));
    }

    #[test]
    fn decodes_result_error_and_notification() {
        let ok = decode_response(&frame(vec![("id", Cbor::Integer(3.into())), ("result", Cbor::Null)])).unwrap();
        let Incoming::Reply { id: 3, session: None, outcome: Ok(payload) } = ok else { panic!("{ok:?}") };
        assert_eq!(payload.cbor().unwrap(), Cbor::Null);

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
    fn the_id_of_an_undecodable_reply_is_found_when_it_comes_first() {
        let start = |entries: u8| {
            let mut out = vec![0xa0 | entries];
            text(&mut out, "id");
            head(&mut out, MAJOR_UNSIGNED, 300);
            out
        };
        // A result that is not CBOR, a truncated one, an error that is not a map.
        let mut garbage = start(2);
        text(&mut garbage, "result");
        garbage.extend_from_slice(&[0xff, 0xff]);
        let mut truncated = start(2);
        text(&mut truncated, "result");
        truncated.extend_from_slice(&[0x63, b'a']);
        let neither = start(1);
        for bytes in [garbage, truncated, neither] {
            assert!(decode_response(&bytes::Bytes::from(bytes.clone())).is_err(), "{bytes:?}");
            assert_eq!(reply_id(&bytes), Some(300), "{bytes:?}");
        }
        // After a well-formed entry, and with an indefinite-length map.
        let mut later = vec![0xbf];
        text(&mut later, "session");
        head_null(&mut later);
        text(&mut later, "id");
        head(&mut later, MAJOR_UNSIGNED, 7);
        text(&mut later, "result");
        later.push(0xff);
        assert_eq!(reply_id(&later), Some(7));
        // An `id` nested in the result is not the reply's; nor is one past a malformed entry.
        let mut nested = vec![0xa1];
        text(&mut nested, "result");
        nested.push(0xa1);
        text(&mut nested, "id");
        head(&mut nested, MAJOR_UNSIGNED, 9);
        assert_eq!(reply_id(&nested), None);
        let mut hidden = vec![0xa2];
        text(&mut hidden, "result");
        hidden.extend_from_slice(&[0x63, 0xff, 0xfe]); // text that is not UTF-8
        text(&mut hidden, "id");
        head(&mut hidden, MAJOR_UNSIGNED, 9);
        assert_eq!(reply_id(&hidden), None);
        // Ids that are not request ids, and what is not a map.
        let mut negative = vec![0xa1];
        text(&mut negative, "id");
        negative.push(0x20);
        for bytes in [negative, vec![], vec![0x01], vec![0xff]] {
            assert_eq!(reply_id(&bytes), None, "{bytes:?}");
        }
    }

    /// Feature `opentelemetry`: the envelope carries the current span's context, and nothing
    /// without one.
    #[cfg(feature = "opentelemetry")]
    mod trace_context {
        use super::*;
        use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _};
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        use tracing_subscriber::layer::SubscriberExt;

        /// A subscriber whose spans get OpenTelemetry ids (no exporter: only the ids matter).
        fn subscriber(sampled: bool) -> impl tracing::Subscriber + Send + Sync {
            let sampler = if sampled { opentelemetry_sdk::trace::Sampler::AlwaysOn } else { opentelemetry_sdk::trace::Sampler::AlwaysOff };
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().with_sampler(sampler).build();
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
        }

        /// The `trace_context` entry of an encoded request, if any (and the other keys, in order).
        fn decode(bytes: &[u8]) -> (Vec<String>, Option<Vec<(String, String)>>) {
            let v: Cbor = ciborium::from_reader(bytes).unwrap();
            let mut keys = Vec::new();
            let mut context = None;
            for (k, v) in v.into_map().unwrap() {
                let k = k.into_text().unwrap();
                if k == "trace_context" {
                    let entries = v.into_map().unwrap().into_iter().map(|(k, v)| (k.into_text().unwrap(), v.into_text().unwrap()));
                    context = Some(entries.collect());
                }
                keys.push(k);
            }
            (keys, context)
        }

        fn plain(id: u64, session: Option<uuid::Uuid>, txn: Option<uuid::Uuid>) -> Vec<u8> {
            let mut map = vec![
                (Cbor::Text("id".into()), Cbor::Integer(id.into())),
                (Cbor::Text("method".into()), Cbor::Text("query".into())),
                (Cbor::Text("params".into()), Cbor::Array(vec![Cbor::Text("RETURN 1".into())])),
            ];
            map.extend(session.map(|s| (Cbor::Text("session".into()), tags::uuid(&s))));
            map.extend(txn.map(|t| (Cbor::Text("txn".into()), tags::uuid(&t))));
            let mut out = Vec::new();
            ciborium::into_writer(&Cbor::Map(map), &mut out).unwrap();
            out
        }

        fn encode(session: Option<uuid::Uuid>, txn: Option<uuid::Uuid>) -> Vec<u8> {
            encode_request_in(9, "query", vec![Cbor::Text("RETURN 1".into())], session, txn).unwrap()
        }

        #[test]
        fn a_request_in_a_span_carries_its_traceparent() {
            let (s, t) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
            tracing::subscriber::with_default(subscriber(true), || {
                let span = tracing::info_span!("handler");
                let _entered = span.enter();
                let cx = span.context();
                let ids = cx.span().span_context().clone();
                assert!(ids.is_valid());
                let want = format!("00-{}-{}-01", ids.trace_id(), ids.span_id());
                for (session, txn) in [(None, None), (Some(s), None), (Some(s), Some(t))] {
                    let bytes = encode(session, txn);
                    let (keys, context) = decode(&bytes);
                    assert_eq!(keys.last().map(String::as_str), Some("trace_context"), "{keys:?}");
                    assert_eq!(context, Some(vec![("traceparent".to_owned(), want.clone())]), "no tracestate when it is empty");
                    // The rest of the frame is the one without the feature: the same entries
                    // first, one more counted in the map's head.
                    let without = plain(9, session, txn);
                    assert_eq!(bytes[0], without[0] + 1);
                    assert_eq!(bytes[1..without.len()], without[1..]);
                }
            });
        }

        #[test]
        fn the_parent_s_tracestate_travels_and_an_unsampled_span_says_so() {
            let remote = SpanContext::new(
                TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
                opentelemetry::trace::SpanId::from_hex("00f067aa0ba902b7").unwrap(),
                TraceFlags::SAMPLED,
                true,
                TraceState::from_key_value([("vendor", "foo")]).unwrap(),
            );
            for sampled in [true, false] {
                tracing::subscriber::with_default(subscriber(sampled), || {
                    let span = tracing::info_span!("handler");
                    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote.clone()));
                    let _entered = span.enter();
                    let ids = span.context().span().span_context().clone();
                    assert_eq!(ids.trace_id(), remote.trace_id());
                    let flags = if sampled { "01" } else { "00" };
                    let (_, context) = decode(&encode(None, None));
                    let context = context.expect("a trace context");
                    assert_eq!(context[0], ("traceparent".to_owned(), format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-{flags}", ids.span_id())));
                    assert_eq!(context[1], ("tracestate".to_owned(), "vendor=foo".to_owned()));
                });
            }
        }

        #[test]
        fn without_a_valid_span_context_the_frame_is_the_plain_one() {
            let s = uuid::Uuid::new_v4();
            // No subscriber at all; a subscriber but no span; a span that has no
            // OpenTelemetry layer to give it ids.
            assert_eq!(encode(Some(s), None), plain(9, Some(s), None));
            tracing::subscriber::with_default(subscriber(true), || {
                assert_eq!(encode(Some(s), None), plain(9, Some(s), None));
            });
            tracing::subscriber::with_default(tracing_subscriber::registry(), || {
                let span = tracing::info_span!("handler");
                let _entered = span.enter();
                assert_eq!(encode(Some(s), None), plain(9, Some(s), None));
            });
        }

        #[test]
        fn an_attached_opentelemetry_context_is_used_when_the_span_has_none() {
            let remote = SpanContext::new(
                TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
                opentelemetry::trace::SpanId::from_hex("b7ad6b7169203331").unwrap(),
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            );
            let _attached = opentelemetry::Context::new().with_remote_span_context(remote).attach();
            let (_, context) = decode(&encode(None, None));
            let want = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
            assert_eq!(context, Some(vec![("traceparent".to_owned(), want.to_owned())]));
        }
    }

    fn head_null(out: &mut Vec<u8>) {
        out.push(0xf6);
    }

    #[test]
    fn rejects_malformed_frames_with_a_typed_error() {
        // a truncated result is refused with the frame, not left for the caller to find
        let truncated = {
            let whole = frame(vec![("id", Cbor::Integer(1.into())), ("result", Cbor::Text("abc".into()))]);
            whole.slice(..whole.len() - 1)
        };
        for bytes in [bytes::Bytes::new(), bytes::Bytes::from_static(b"\xff\xff"), frame(vec![("id", Cbor::Integer(1.into()))]), truncated] {
            assert!(matches!(decode_response(&bytes), Err(Error::Protocol(_))), "{bytes:?}");
        }
        let not_map = {
            let mut out = Vec::new();
            ciborium::into_writer(&Cbor::Integer(1.into()), &mut out).unwrap();
            bytes::Bytes::from(out)
        };
        assert!(matches!(decode_response(&not_map), Err(Error::Protocol(_))));
    }
}
