//! What goes over the wire, with no I/O: the RPC envelope, the CBOR reader, SurrealDB's CBOR
//! tags and their JSON mapping, record ids, and the server's version.

pub(crate) mod envelope;
pub(crate) mod reader;
pub(crate) mod record_id;
pub(crate) mod tags;
pub(crate) mod version;
