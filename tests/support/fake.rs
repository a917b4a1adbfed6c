//! A scripted fake WebSocket server, only for what a real SurrealDB never sends: malformed
//! frames, replies with unknown ids or foreign sessions, oversized frames, stalls.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use ciborium::Value as Cbor;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{Request as HttpRequest, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// A request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: u64,
    pub method: String,
}

pub struct FakeServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

type Script = dyn Fn(Request) -> Vec<Message> + Send + Sync;

impl FakeServer {
    /// Accepts WebSocket connections (answering the `cbor` subprotocol when `cbor` is true) and
    /// answers each request frame with whatever `script` returns.
    pub async fn start(cbor: bool, script: impl Fn(Request) -> Vec<Message> + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script: Arc<Script> = Arc::new(script);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let script = script.clone();
                tokio::spawn(async move {
                    #[allow(clippy::result_large_err)] // the signature tungstenite asks for
                    let callback = |_: &HttpRequest, mut response: Response| {
                        if cbor {
                            response.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("cbor"));
                        }
                        Ok(response)
                    };
                    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else { return };
                    let (mut sink, mut stream) = ws.split();
                    while let Some(Ok(frame)) = stream.next().await {
                        let Message::Binary(bytes) = frame else { continue };
                        let Some(request) = decode(&bytes) else { continue };
                        for out in script(request) {
                            if sink.send(out).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        FakeServer { addr, task }
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn decode(bytes: &[u8]) -> Option<Request> {
    let Cbor::Map(entries) = ciborium::from_reader::<Cbor, _>(bytes).ok()? else { return None };
    let mut id = None;
    let mut method = None;
    for (k, v) in entries {
        match k.as_text() {
            Some("id") => id = v.as_integer().and_then(|i| u64::try_from(i).ok()),
            Some("method") => method = v.as_text().map(str::to_owned),
            _ => {}
        }
    }
    Some(Request { id: id?, method: method? })
}

/// A binary frame holding `{id, result}` (and `session` when given).
pub fn reply(id: u64, result: Cbor, session: Option<&str>) -> Message {
    let mut map = vec![(Cbor::Text("id".into()), Cbor::Integer(id.into())), (Cbor::Text("result".into()), result)];
    if let Some(s) = session {
        map.push((Cbor::Text("session".into()), Cbor::Text(s.into())));
    }
    let mut out = Vec::new();
    ciborium::into_writer(&Cbor::Map(map), &mut out).unwrap();
    Message::Binary(out.into())
}

/// A valid `query` result: one statement returning `value`.
pub fn query_result(value: Cbor) -> Cbor {
    Cbor::Array(vec![Cbor::Map(vec![
        (Cbor::Text("status".into()), Cbor::Text("OK".into())),
        (Cbor::Text("time".into()), Cbor::Text("1µs".into())),
        (Cbor::Text("result".into()), value),
    ])])
}
