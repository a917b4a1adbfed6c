//! The floor: a minimal pipelined WebSocket RPC client with no pooling, no session state, no
//! timeouts — N sockets, a writer and a reader task per socket, a pending map per socket.
//! CBOR like surreal-pool, or JSON as a reference for the cost of the format.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ciborium::Value as Cbor;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

type Reply = Result<(), String>;

struct RawSocket {
    tx: mpsc::UnboundedSender<Message>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
}

pub struct Raw {
    sockets: Vec<Arc<RawSocket>>,
    next_id: AtomicU64,
    next_socket: AtomicUsize,
    json: bool,
}

impl Raw {
    pub async fn connect(url: &str, sockets: usize, json: bool) -> Raw {
        let mut out = Vec::new();
        for _ in 0..sockets {
            let mut request = format!("{url}/rpc").into_client_request().unwrap();
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(if json { "json" } else { "cbor" }));
            let (ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true).await.unwrap();
            let (mut sink, mut stream) = ws.split();
            let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
            let socket = Arc::new(RawSocket { tx, pending: Mutex::new(HashMap::new()) });
            tokio::spawn(async move {
                while let Some(m) = rx.recv().await {
                    if sink.feed(m).await.is_err() {
                        return;
                    }
                    while let Ok(m) = rx.try_recv() {
                        if sink.feed(m).await.is_err() {
                            return;
                        }
                    }
                    if sink.flush().await.is_err() {
                        return;
                    }
                }
            });
            let reader = socket.clone();
            tokio::spawn(async move {
                while let Some(Ok(frame)) = stream.next().await {
                    let decoded = match frame {
                        Message::Binary(b) => decode_cbor(&b),
                        Message::Text(t) => decode_json(t.as_str()),
                        _ => continue,
                    };
                    if let Some((id, reply)) = decoded {
                        if let Some(tx) = reader.pending.lock().unwrap().remove(&id) {
                            let _ = tx.send(reply);
                        }
                    }
                }
            });
            out.push(socket);
        }
        Raw { sockets: out, next_id: AtomicU64::new(1), next_socket: AtomicUsize::new(0), json }
    }

    /// One request on the next socket (round robin), or on socket `pin` if given.
    pub async fn call(&self, pin: Option<usize>, method: &str, params: serde_json::Value, session: Option<uuid::Uuid>) -> Reply {
        let index = pin.unwrap_or_else(|| self.next_socket.fetch_add(1, Ordering::Relaxed)) % self.sockets.len();
        let socket = &self.sockets[index];
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = if self.json {
            let mut req = serde_json::json!({ "id": id, "method": method, "params": params });
            if let Some(s) = session {
                req["session"] = serde_json::Value::String(s.to_string());
            }
            Message::Text(req.to_string().into())
        } else {
            let mut map = vec![
                (Cbor::Text("id".into()), Cbor::Integer(id.into())),
                (Cbor::Text("method".into()), Cbor::Text(method.into())),
                (Cbor::Text("params".into()), Cbor::serialized(&params).unwrap()),
            ];
            if let Some(s) = session {
                map.push((Cbor::Text("session".into()), Cbor::Text(s.to_string())));
            }
            let mut bytes = Vec::with_capacity(64);
            ciborium::into_writer(&Cbor::Map(map), &mut bytes).unwrap();
            Message::Binary(bytes.into())
        };
        let (tx, rx) = oneshot::channel();
        socket.pending.lock().unwrap().insert(id, tx);
        socket.tx.send(frame).map_err(|_| "socket closed".to_string())?;
        rx.await.map_err(|_| "socket closed".to_string())?
    }
}

fn decode_cbor(bytes: &[u8]) -> Option<(u64, Reply)> {
    let Cbor::Map(entries) = ciborium::from_reader::<Cbor, _>(bytes).ok()? else { return None };
    let mut id = None;
    let mut error = None;
    for (k, v) in entries {
        match k.as_text() {
            Some("id") => id = v.as_integer().and_then(|i| u64::try_from(i).ok()),
            Some("error") => error = Some(format!("{v:?}")),
            _ => {}
        }
    }
    Some((id?, error.map_or(Ok(()), Err)))
}

fn decode_json(text: &str) -> Option<(u64, Reply)> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let id = v.get("id")?.as_u64()?;
    Some((id, v.get("error").map_or(Ok(()), |e| Err(e.to_string()))))
}
