//! The floor: a minimal pipelined WebSocket RPC client with no pooling, no session state, no
//! timeouts — N sockets, a pending map per socket. CBOR like surreal-pool, or JSON as a
//! reference for the cost of the format.
//!
//! It is meant to do the least client work a pipelined RPC client can do per request, so that a
//! ratio against it measures the pool's own overhead:
//!
//! * the same WebSocket crate as the library (tokio-websockets; its reads go into an unzeroed
//!   buffer, where tungstenite zeroes its 128 KiB read buffer before every read attempt), TCP
//!   with Nagle off;
//! * requests pre-encoded ([`Request`]): a call copies the template and writes its id, nothing is
//!   serialized per call;
//! * no task of its own. The caller writes its frame and flushes it itself (if another caller is
//!   writing at that moment, it queues the frame and that writer sends it in the same flush;
//!   with other requests in flight, the writer first yields once so that the callers woken
//!   with it queue theirs: one write for the lot); then, if nobody is reading the socket, the caller reads it itself until its own reply comes,
//!   handing the replies it meets on to their callers, and at its reply passes the reading on to
//!   one still waiting (leader/follower). One caller alone thus writes, flushes and reads on its
//!   own task: no channel, no wake-up of another task;
//! * the reply is not decoded: its envelope is walked to find the id (every reply's id is read
//!   and routed to its caller, and a reply whose id is not pending is dropped) and whether it
//!   carries an error; the caller gets the frame and decodes what it wants ([`Reply::bytes`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ciborium::Value as Cbor;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::oneshot;
use tokio_websockets::{Message, WebSocketStream};

type Ws = WebSocketStream<tokio::net::TcpStream>;

/// A reply, its id checked: the whole frame, undecoded.
pub struct Reply {
    message: Message,
    error: bool,
}

impl Reply {
    /// The frame's bytes (a CBOR map, or JSON text).
    pub fn bytes(&self) -> &[u8] {
        self.message.as_payload()
    }

    fn error_text(&self) -> String {
        match self.message.as_text() {
            Some(text) => serde_json::from_str::<serde_json::Value>(text).map(|v| v["error"].to_string()).unwrap_or_default(),
            None => match ciborium::from_reader::<Cbor, _>(self.bytes()) {
                Ok(Cbor::Map(entries)) => entries.into_iter().find(|(k, _)| k.as_text() == Some("error")).map(|(_, v)| format!("{v:?}")).unwrap_or_default(),
                _ => "an undecodable error reply".into(),
            },
        }
    }
}

/// What a waiting caller is woken with: its reply, or the turn to read the socket.
enum Wake {
    Reply(Reply),
    Lead,
}

struct Waiting {
    pending: HashMap<u64, oneshot::Sender<Wake>>,
    /// A caller is reading the socket.
    reading: bool,
}

struct Writing {
    queue: Vec<Message>,
    /// A caller is writing to the socket (and sends what is queued before it stops).
    busy: bool,
}

struct RawSocket {
    waiting: Mutex<Waiting>,
    writing: Mutex<Writing>,
    // Held only by the one caller writing / reading (so never contended).
    sink: tokio::sync::Mutex<SplitSink<Ws, Message>>,
    stream: tokio::sync::Mutex<SplitStream<Ws>>,
    json: bool,
}

/// A request encoded once: the id is written per call.
pub struct Request {
    json: bool,
    /// CBOR: the map's head byte (its number of entries).
    head: u8,
    /// Everything after the id: CBOR map entries, or JSON text from after the `{`.
    tail: Vec<u8>,
}

impl Request {
    pub fn new(json: bool, method: &str, params: serde_json::Value, session: Option<uuid::Uuid>) -> Request {
        if json {
            let mut req = serde_json::json!({ "method": method, "params": params });
            if let Some(s) = session {
                req["session"] = serde_json::Value::String(s.to_string());
            }
            let text = req.to_string();
            return Request { json, head: 0, tail: text.as_bytes()[1..].to_vec() };
        }
        let mut entries = vec![
            (Cbor::Text("method".into()), Cbor::Text(method.into())),
            (Cbor::Text("params".into()), Cbor::serialized(&params).unwrap()),
        ];
        if let Some(s) = session {
            entries.push((Cbor::Text("session".into()), Cbor::Text(s.to_string())));
        }
        let mut tail = Vec::new();
        for (k, v) in &entries {
            ciborium::into_writer(k, &mut tail).unwrap();
            ciborium::into_writer(v, &mut tail).unwrap();
        }
        Request { json, head: 0xa0 | (entries.len() as u8 + 1), tail }
    }

    fn frame(&self, id: u64) -> Message {
        if self.json {
            let mut text = String::with_capacity(self.tail.len() + 32);
            text.push_str("{\"id\":");
            text.push_str(itoa(id, &mut [0; 20]));
            text.push(',');
            text.push_str(std::str::from_utf8(&self.tail).unwrap());
            return Message::text(text);
        }
        let mut bytes = Vec::with_capacity(self.tail.len() + 13);
        bytes.push(self.head);
        bytes.extend_from_slice(b"\x62id");
        match id {
            0..=23 => bytes.push(id as u8),
            24..=0xff => bytes.extend_from_slice(&[0x18, id as u8]),
            0x100..=0xffff => {
                bytes.push(0x19);
                bytes.extend_from_slice(&(id as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                bytes.push(0x1a);
                bytes.extend_from_slice(&(id as u32).to_be_bytes());
            }
            _ => {
                bytes.push(0x1b);
                bytes.extend_from_slice(&id.to_be_bytes());
            }
        }
        bytes.extend_from_slice(&self.tail);
        Message::binary(bytes)
    }
}

fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap()
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
        let uri: http::Uri = format!("{url}/rpc").parse().unwrap();
        let (host, port) = (uri.host().unwrap().to_owned(), uri.port_u16().unwrap_or(80));
        for _ in 0..sockets {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let (ws, _) = tokio_websockets::ClientBuilder::from_uri(uri.clone())
                .add_header(http::header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static(if json { "json" } else { "cbor" }))
                .unwrap()
                .connect_on(tcp)
                .await
                .unwrap();
            let (sink, stream) = ws.split();
            out.push(Arc::new(RawSocket {
                waiting: Mutex::new(Waiting { pending: HashMap::new(), reading: false }),
                writing: Mutex::new(Writing { queue: Vec::new(), busy: false }),
                sink: tokio::sync::Mutex::new(sink),
                stream: tokio::sync::Mutex::new(stream),
                json,
            }));
        }
        Raw { sockets: out, next_id: AtomicU64::new(1), next_socket: AtomicUsize::new(0), json }
    }

    /// A request for [`Raw::send`], encoded once.
    pub fn request(&self, method: &str, params: serde_json::Value, session: Option<uuid::Uuid>) -> Request {
        Request::new(self.json, method, params, session)
    }

    /// One request, encoded for this call (for setup; loops use [`Raw::send`]).
    pub async fn call(&self, pin: Option<usize>, method: &str, params: serde_json::Value, session: Option<uuid::Uuid>) -> Result<(), String> {
        self.send(pin, &self.request(method, params, session)).await.map(drop)
    }

    /// One request on the next socket (round robin), or on socket `pin` if given: its reply,
    /// or the error the reply carries.
    ///
    /// Not cancel-safe: a call dropped while it writes or reads for the others would leave the
    /// socket with no writer or reader (the harness never drops one).
    pub async fn send(&self, pin: Option<usize>, request: &Request) -> Result<Reply, String> {
        let index = pin.unwrap_or_else(|| self.next_socket.fetch_add(1, Ordering::Relaxed)) % self.sockets.len();
        let socket = &self.sockets[index];
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let alone = {
            let mut w = socket.waiting.lock().unwrap();
            w.pending.insert(id, tx);
            w.pending.len() == 1
        };
        socket.write(request.frame(id), alone).await?;
        let lead = {
            let mut w = socket.waiting.lock().unwrap();
            // Our entry gone: a reader has handed us the reply already.
            let lead = !w.reading && w.pending.remove(&id).is_some();
            w.reading |= lead;
            lead
        };
        let reply = if lead {
            socket.read_until(id).await?
        } else {
            match rx.await {
                Ok(Wake::Reply(reply)) => reply,
                Ok(Wake::Lead) => socket.read_until(id).await?,
                Err(_) => return Err("socket closed".into()),
            }
        };
        if reply.error {
            return Err(reply.error_text());
        }
        Ok(reply)
    }
}

impl RawSocket {
    /// Writes and flushes `frame`, and whatever other callers queue meanwhile; or, if another
    /// caller is writing, queues it for that one. Not `alone` (other requests in flight on the
    /// socket, so other callers are likely about to send theirs too), it first yields once to
    /// the runtime, so that the callers just woken by their replies queue their next requests
    /// and one write carries them all (as a writer task draining a channel would, without the
    /// task).
    async fn write(&self, frame: Message, alone: bool) -> Result<(), String> {
        {
            let mut w = self.writing.lock().unwrap();
            w.queue.push(frame);
            if w.busy {
                return Ok(());
            }
            w.busy = true;
        }
        if !alone {
            tokio::task::yield_now().await;
        }
        let closed = |_| "socket closed".to_string();
        let mut sink = self.sink.lock().await;
        let mut batch = Vec::new();
        loop {
            {
                let mut w = self.writing.lock().unwrap();
                if w.queue.is_empty() {
                    w.busy = false;
                    return Ok(());
                }
                std::mem::swap(&mut w.queue, &mut batch);
            }
            for m in batch.drain(..) {
                sink.feed(m).await.map_err(closed)?;
            }
            sink.flush().await.map_err(closed)?;
        }
    }

    /// Reads replies, handing each to its caller, until the one to `id`; then passes the reading
    /// on to a caller still waiting, if any.
    async fn read_until(&self, id: u64) -> Result<Reply, String> {
        let mut stream = self.stream.lock().await;
        loop {
            let Some(Ok(message)) = stream.next().await else {
                // Wake everyone (their senders drop): the socket is gone.
                self.waiting.lock().unwrap().pending.clear();
                return Err("socket closed".into());
            };
            let routed = if self.json {
                message.as_text().and_then(json_envelope)
            } else if message.is_binary() {
                cbor_envelope(message.as_payload())
            } else {
                None
            };
            let Some((reply_id, error)) = routed else { continue };
            let reply = Reply { message, error };
            if reply_id == id {
                drop(stream);
                self.hand_off();
                return Ok(reply);
            }
            let tx = self.waiting.lock().unwrap().pending.remove(&reply_id);
            if let Some(tx) = tx {
                let _ = tx.send(Wake::Reply(reply));
            }
        }
    }

    fn hand_off(&self) {
        let mut w = self.waiting.lock().unwrap();
        while let Some(&next) = w.pending.keys().next() {
            let tx = w.pending.remove(&next).unwrap();
            if tx.send(Wake::Lead).is_ok() {
                return;
            }
        }
        w.reading = false;
    }
}

/// The id and whether there is an error, of a JSON reply.
fn json_envelope(text: &str) -> Option<(u64, bool)> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        id: u64,
        #[serde(default)]
        error: Option<serde::de::IgnoredAny>,
    }
    let e: Envelope = serde_json::from_str(text).ok()?;
    Some((e.id, e.error.is_some()))
}

/// The id and whether there is an error, of a CBOR reply: its top-level map walked, each value
/// but the id's skipped (not decoded).
fn cbor_envelope(bytes: &[u8]) -> Option<(u64, bool)> {
    let mut r = Skip { bytes, pos: 0 };
    let (major, len) = r.head()?;
    if major != 5 {
        return None;
    }
    let (mut id, mut error) = (None, false);
    let mut left = len;
    while left.is_none_or(|n| n > 0) {
        if left.is_none() && r.bytes.get(r.pos) == Some(&0xff) {
            break;
        }
        let key = r.text()?;
        match key {
            b"id" => match r.head()? {
                (0, Some(v)) => id = Some(v),
                _ => return None,
            },
            b"error" => {
                error = !matches!(r.bytes.get(r.pos), Some(0xf6 | 0xf7));
                r.skip(0)?;
            }
            _ => r.skip(0)?,
        }
        left = left.map(|n| n - 1);
    }
    Some((id?, error))
}

/// A CBOR walker that skips items without decoding them.
struct Skip<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Skip<'_> {
    fn take(&mut self, n: u64) -> Option<&[u8]> {
        let end = self.pos.checked_add(usize::try_from(n).ok()?)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// Major type and argument (`None`: indefinite length).
    fn head(&mut self) -> Option<(u8, Option<u64>)> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        let (major, info) = (b >> 5, b & 0x1f);
        let arg = match info {
            0..=23 => Some(u64::from(info)),
            24..=27 => Some(self.take(1 << (info - 24))?.iter().fold(0, |a, b| (a << 8) | u64::from(*b))),
            31 => None,
            _ => return None,
        };
        Some((major, arg))
    }

    fn text(&mut self) -> Option<&[u8]> {
        match self.head()? {
            (3, Some(n)) => self.take(n),
            _ => None,
        }
    }

    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > 256 {
            return None;
        }
        let (major, arg) = self.head()?;
        match (major, arg) {
            (0 | 1 | 7, _) => {}
            (2 | 3, Some(n)) => {
                self.take(n)?;
            }
            (2 | 3, None) => {
                while *self.bytes.get(self.pos)? != 0xff {
                    self.skip(depth + 1)?;
                }
                self.pos += 1;
            }
            (4 | 5, Some(n)) => {
                for _ in 0..n * if major == 5 { 2 } else { 1 } {
                    self.skip(depth + 1)?;
                }
            }
            (4 | 5, None) => {
                while *self.bytes.get(self.pos)? != 0xff {
                    self.skip(depth + 1)?;
                }
                self.pos += 1;
            }
            (6, Some(_)) => self.skip(depth + 1)?,
            _ => return None,
        }
        Some(())
    }
}
