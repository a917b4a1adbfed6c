//! A scripted fake WebSocket server, only for what a real SurrealDB never sends: malformed
//! frames, replies with unknown ids or foreign sessions, oversized frames, stalls.

use std::net::SocketAddr;
use std::sync::Arc;

use ciborium::Value as Cbor;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{Request as HttpRequest, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// A request as the fake server saw it.
///
/// ```
/// let r = surreal_pool_testkit::fake::Request { id: 1, method: "ping".into() };
/// assert_eq!(r.method, "ping");
/// ```
#[derive(Debug, Clone)]
pub struct Request {
    /// The request's `id`.
    pub id: u64,
    /// The RPC method (`query`, `authenticate`, …).
    pub method: String,
}

/// A WebSocket server on a free loopback port that answers each CBOR request frame with
/// what a script returns. Dropping it stops accepting.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use futures_util::{SinkExt, StreamExt};
/// use surreal_pool_testkit::fake::{self, FakeServer};
/// use tokio_tungstenite::tungstenite::Message;
///
/// // Answers every request with a reply labelled for a session the client never attached.
/// let server = FakeServer::start(false, |request| {
///     vec![fake::reply(request.id, ciborium::Value::Null, Some("5a3b4a6e-0000-4000-8000-000000000000"))]
/// })
/// .await;
///
/// let (mut ws, _) = tokio_tungstenite::connect_async(server.url()).await.unwrap();
/// let mut frame = Vec::new();
/// let request = ciborium::Value::Map(vec![
///     (ciborium::Value::Text("id".into()), ciborium::Value::Integer(7.into())),
///     (ciborium::Value::Text("method".into()), ciborium::Value::Text("ping".into())),
/// ]);
/// ciborium::into_writer(&request, &mut frame).unwrap();
/// ws.send(Message::Binary(frame.into())).await.unwrap();
/// let Some(Ok(Message::Binary(answer))) = ws.next().await else { panic!("no answer") };
/// let answer: ciborium::Value = ciborium::from_reader(&answer[..]).unwrap();
/// assert!(format!("{answer:?}").contains("5a3b4a6e"));
/// # }
/// ```
pub struct FakeServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    /// Bytes of flood sent so far (see [`FakeServer::start_flooding`]).
    flooded: tokio::sync::watch::Receiver<u64>,
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
        FakeServer { addr, task, flooded: tokio::sync::watch::channel(0).1 }
    }

    /// Like [`start`](Self::start), but every connection also sends `flood` continuously
    /// (as fast as the client reads), the script's answers going out between flood frames. It
    /// runs on a thread of its own, so the flood does not wait for the client's task to yield.
    pub async fn start_flooding(flood: Message, script: impl Fn(Request) -> Vec<Message> + Send + Sync + 'static) -> FakeServer {
        let script: Arc<Script> = Arc::new(script);
        let (bound, addr) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (count, flooded) = tokio::sync::watch::channel(0u64);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let _ = bound.send(listener.local_addr().unwrap());
                tokio::select! {
                    _ = stopped => {}
                    _ = flood_connections(listener, flood, script, count) => {}
                }
            });
            // Dropping the runtime ends every connection.
        });
        let addr = addr.await.unwrap();
        // Dropping the server aborts this task, which drops `stop`: the thread ends.
        let task = tokio::spawn(async move {
            let _stop = stop;
            std::future::pending::<()>().await
        });
        FakeServer { addr, task, flooded }
    }

    /// The count of flood bytes sent so far, to wait on.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use surreal_pool_testkit::fake::{self, FakeServer};
    /// use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    /// let server = FakeServer::start_flooding(fake::notification(8), |_| Vec::new()).await;
    /// // The flooding server always speaks the `cbor` subprotocol, as SurrealDB does.
    /// let mut request = server.url().into_client_request().unwrap();
    /// request.headers_mut().insert("Sec-WebSocket-Protocol", "cbor".parse().unwrap());
    /// let (_ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    /// server.flooded().wait_for(|bytes| *bytes > 0).await.unwrap();
    /// # }
    /// ```
    pub fn flooded(&self) -> tokio::sync::watch::Receiver<u64> {
        self.flooded.clone()
    }

    /// `ws://127.0.0.1:<port>`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let server = surreal_pool_testkit::FakeServer::start(true, |_| Vec::new()).await;
    /// assert!(server.url().starts_with("ws://127.0.0.1:"));
    /// # }
    /// ```
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn flood_connections(listener: TcpListener, flood: Message, script: Arc<Script>, count: tokio::sync::watch::Sender<u64>) {
    let count = Arc::new(count);
    while let Ok((stream, _)) = listener.accept().await {
        let script = script.clone();
        let flood = flood.clone();
        let count = count.clone();
        tokio::spawn(async move {
            #[allow(clippy::result_large_err)] // the signature tungstenite asks for
            let callback = |_: &HttpRequest, mut response: Response| {
                response.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("cbor"));
                Ok(response)
            };
            let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else { return };
            let (mut sink, mut stream) = ws.split();
            let (answers, mut queued) = tokio::sync::mpsc::unbounded_channel::<Message>();
            let writer = tokio::spawn(async move {
                loop {
                    while let Ok(answer) = queued.try_recv() {
                        if sink.feed(answer).await.is_err() {
                            return;
                        }
                    }
                    if sink.send(flood.clone()).await.is_err() {
                        return;
                    }
                    count.send_modify(|n| *n += flood.len() as u64);
                }
            });
            while let Some(Ok(frame)) = stream.next().await {
                let Message::Binary(bytes) = frame else { continue };
                let Some(request) = decode(&bytes) else { continue };
                for out in script(request) {
                    let _ = answers.send(out);
                }
            }
            writer.abort();
        });
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
///
/// ```
/// use tokio_tungstenite::tungstenite::Message;
/// let Message::Binary(bytes) = surreal_pool_testkit::fake::reply(3, ciborium::Value::Bool(true), None) else { panic!() };
/// let value: ciborium::Value = ciborium::from_reader(&bytes[..]).unwrap();
/// assert_eq!(value.as_map().unwrap().len(), 2);
/// ```
pub fn reply(id: u64, result: Cbor, session: Option<&str>) -> Message {
    let mut map = vec![(Cbor::Text("id".into()), Cbor::Integer(id.into())), (Cbor::Text("result".into()), result)];
    if let Some(s) = session {
        map.push((Cbor::Text("session".into()), Cbor::Text(s.into())));
    }
    let mut out = Vec::new();
    ciborium::into_writer(&Cbor::Map(map), &mut out).unwrap();
    Message::Binary(out.into())
}

/// A live-query notification (a frame with no id) for a live query nobody registered, whose
/// record is an array of `items` one-byte integers: cheap to send, costly to decode.
///
/// ```
/// let small = surreal_pool_testkit::fake::notification(1).len();
/// assert!(surreal_pool_testkit::fake::notification(1000).len() > small + 900);
/// ```
pub fn notification(items: usize) -> Message {
    let text = |s: &str| Cbor::Text(s.into());
    let note = Cbor::Map(vec![
        (text("id"), Cbor::Tag(37, Box::new(Cbor::Bytes(vec![7; 16])))),
        (text("action"), text("CREATE")),
        (text("record"), text("note:1")),
        (text("result"), Cbor::Array((0..items).map(|i| Cbor::Integer(((i % 24) as i64).into())).collect())),
    ]);
    let mut out = Vec::new();
    ciborium::into_writer(&Cbor::Map(vec![(text("result"), note)]), &mut out).unwrap();
    Message::Binary(out.into())
}

/// A valid `query` result: one statement returning `value`.
///
/// ```
/// let result = surreal_pool_testkit::fake::query_result(ciborium::Value::Integer(1.into()));
/// assert_eq!(result.as_array().unwrap().len(), 1);
/// ```
pub fn query_result(value: Cbor) -> Cbor {
    Cbor::Array(vec![Cbor::Map(vec![
        (Cbor::Text("status".into()), Cbor::Text("OK".into())),
        (Cbor::Text("time".into()), Cbor::Text("1µs".into())),
        (Cbor::Text("result".into()), value),
    ])])
}
