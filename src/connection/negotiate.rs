//! Learning the server's version on a fresh socket, before anything else is sent on it (at
//! connect, and on every reconnect before the replay).
//!
//! One `version` request on the default session. The answer is kept in [`Shared`] and decides
//! which of a newer server's additions may be asked for (see [`crate::wire::version`]). A server
//! that answers with something else than a version (an error: the method may be denied by the
//! server's capabilities), or does not answer within the bound, is of unknown version: the
//! connection works as with any 3.x server, and the additions are refused with
//! [`crate::Error::Unsupported`]. Only a socket that fails or closes meanwhile fails the
//! connect (or the reconnect attempt). No version is refused: a major version this crate does
//! not know is spoken to as the newest it knows.
//!
//! [`Shared`]: crate::connection::Shared

use futures_util::{SinkExt, StreamExt};
use tokio::time::{timeout_at, Instant};
use tokio_websockets::Message;

use crate::connection::{Config, Shared, Socket};
use crate::wire::envelope::{self, Incoming};
use crate::wire::tags;
use crate::wire::version::ServerVersion;

/// What the `version` request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Negotiated {
    /// The server said its version.
    Version(ServerVersion),
    /// It answered with something that is not a version (text that does not parse, another
    /// value, or an error).
    Unknown(String),
    /// It did not answer within the bound.
    Silent,
}

impl Negotiated {
    pub(crate) fn version(&self) -> Option<&ServerVersion> {
        match self {
            Negotiated::Version(v) => Some(v),
            Negotiated::Unknown(_) | Negotiated::Silent => None,
        }
    }
}

/// How a `version` reply's outcome is judged (plain data: the unit tests' entry point).
pub(crate) fn judge(outcome: Result<serde_json::Value, crate::ServerError>) -> Negotiated {
    match outcome {
        Ok(serde_json::Value::String(text)) => match ServerVersion::parse(&text) {
            Some(version) => Negotiated::Version(version),
            None => Negotiated::Unknown(format!("a version that does not parse: {text:?}")),
        },
        Ok(other) => Negotiated::Unknown(format!("not a version string: {}", kind(&other))),
        Err(e) => Negotiated::Unknown(format!("an error: {e}")),
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Sends `version` on `socket` and waits for its answer, bounded by the connect timeout (and
/// the request timeout, whichever is shorter). Frames that are not its answer are skipped (a
/// fresh socket carries nothing else). The version is stored in `shared`; `Err` only when the
/// socket failed or closed.
pub(crate) async fn negotiate(socket: &mut Socket, shared: &Shared, config: &Config) -> Result<Negotiated, String> {
    let negotiated = exchange(socket, shared, config).await?;
    match &negotiated {
        Negotiated::Version(v) => tracing::debug!(version = %v, "server version"),
        Negotiated::Unknown(why) => tracing::warn!(%why, "the server did not say its version: 4.0 additions will be refused"),
        Negotiated::Silent => tracing::warn!("the server did not answer `version` in time: 4.0 additions will be refused"),
    }
    shared.set_server_version(negotiated.version().cloned());
    Ok(negotiated)
}

/// The `version` exchange alone: nothing is stored (a planned move stores the version once it
/// switches to the socket).
pub(crate) async fn exchange(socket: &mut Socket, shared: &Shared, config: &Config) -> Result<Negotiated, String> {
    let bound = config.connect_timeout.min(config.request_timeout);
    let deadline = Instant::now() + bound;
    let id = shared.next_id();
    let frame = envelope::encode_request(id, "version", vec![], None).map_err(|e| e.to_string())?;
    match timeout_at(deadline, socket.send(Message::binary(frame))).await {
        Err(_) => return Err(format!("the `version` request could not be written within {bound:?}")),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(())) => {}
    }
    loop {
        let message = match timeout_at(deadline, socket.next()).await {
            Err(_) => return Ok(Negotiated::Silent),
            Ok(None) => return Err("the socket closed before the server said its version".into()),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(message))) => message,
        };
        if message.is_close() {
            return Err("the server closed the socket before it said its version".into());
        }
        if !message.is_binary() {
            continue;
        }
        let Ok(Incoming::Reply { id: reply_id, session, outcome }) = envelope::decode_response(&message.into_payload().into()) else {
            continue; // not a reply (or not one that reads): not ours
        };
        if reply_id != id {
            continue;
        }
        if session.is_some() {
            // Labelled for a session the connection never attached: not trusted.
            return Ok(Negotiated::Unknown("a reply labelled for another session".into()));
        }
        let outcome = match outcome {
            Ok(payload) => match payload.cbor() {
                Ok(value) => Ok(tags::to_json(value)),
                Err(e) => return Ok(Negotiated::Unknown(e.to_string())),
            },
            Err(e) => Err(e),
        };
        return Ok(judge(outcome));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_string_is_the_version() {
        let n = judge(Ok(serde_json::json!("surrealdb-4.0.0-beta.1")));
        assert_eq!(n.version().map(|v| v.major()), Some(4));
        let n = judge(Ok(serde_json::json!("surrealdb-3.3.5")));
        assert_eq!(n.version().map(|v| v.as_str()), Some("surrealdb-3.3.5"));
    }

    #[test]
    fn anything_else_is_an_unknown_version_never_a_refusal() {
        for outcome in [
            Ok(serde_json::json!("not a version")),
            Ok(serde_json::json!(null)),
            Ok(serde_json::json!([{"result": 1, "status": "OK"}])),
            Ok(serde_json::json!({"version": "4.0.0"})),
            Err(crate::ServerError::new(-32602, "NotAllowed", "Method not allowed")),
        ] {
            let n = judge(outcome.clone());
            assert!(matches!(n, Negotiated::Unknown(_)), "{outcome:?}: {n:?}");
            assert_eq!(n.version(), None);
        }
        assert_eq!(Negotiated::Silent.version(), None);
    }
}
