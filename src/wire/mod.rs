//! What goes over the wire, with no I/O: the RPC envelope, the CBOR reader and the serde
//! deserializer over it, SurrealDB's CBOR tags and their JSON mapping, record ids, the
//! server's version, and (feature `opentelemetry`) the trace context a request carries.

pub(crate) mod de;
pub(crate) mod envelope;
pub(crate) mod reader;
pub(crate) mod record_id;
pub(crate) mod tags;
#[cfg(feature = "opentelemetry")]
pub(crate) mod trace_context;
pub(crate) mod version;
