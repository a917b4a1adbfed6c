//! The connection actor fed arbitrary frame sequences: a fake server answers each request with
//! the fuzz input cut into frames (at 0xFF 0xFF), then a valid reply. The request must end in an
//! answer or a typed error, the connection task must not panic, and a later request must work.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ciborium::Value as Cbor;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

struct Harness {
    rt: tokio::runtime::Runtime,
    conn: surreal_pool::Connection,
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
}

fn reply(id: u64) -> Vec<u8> {
    let ok = Cbor::Array(vec![Cbor::Map(vec![
        (Cbor::Text("status".into()), Cbor::Text("OK".into())),
        (Cbor::Text("time".into()), Cbor::Text("1µs".into())),
        (Cbor::Text("result".into()), Cbor::Integer(1.into())),
    ])]);
    let map = Cbor::Map(vec![(Cbor::Text("id".into()), Cbor::Integer(id.into())), (Cbor::Text("result".into()), ok)]);
    let mut out = Vec::new();
    ciborium::into_writer(&map, &mut out).unwrap();
    out
}

fn request_id(bytes: &[u8]) -> Option<u64> {
    let Cbor::Map(m) = ciborium::from_reader::<Cbor, _>(bytes).ok()? else { return None };
    m.into_iter().find(|(k, _)| k.as_text() == Some("id")).and_then(|(_, v)| v.as_integer()).and_then(|i| u64::try_from(i).ok())
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let frames: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let script = frames.clone();
        let conn = rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let script = script.clone();
                    tokio::spawn(async move {
                        #[allow(clippy::result_large_err)]
                        let cb = |_: &Request, mut r: Response| {
                            r.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("cbor"));
                            Ok(r)
                        };
                        let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, cb).await else { return };
                        let (mut sink, mut rx) = ws.split();
                        while let Some(Ok(Message::Binary(b))) = rx.next().await {
                            let Some(id) = request_id(&b) else { continue };
                            let frames = script.lock().unwrap().clone();
                            for f in frames {
                                let _ = sink.feed(Message::Binary(f.into())).await;
                            }
                            let _ = sink.send(Message::Binary(reply(id).into())).await;
                        }
                    });
                }
            });
            surreal_pool::Connection::builder(format!("ws://{addr}"))
                .request_timeout(Duration::from_millis(500))
                .max_message_size(1 << 20)
                .connect()
                .await
                .unwrap()
        });
        Harness { rt, conn, frames }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let h = harness();
    *h.frames.lock().unwrap() = data.split(|b| *b == 0xFF).take(32).map(<[u8]>::to_vec).collect();
    h.rt.block_on(async {
        let s = h.conn.session();
        // Ok, or a typed error: anything but a panic or a hang.
        let _ = tokio::time::timeout(Duration::from_secs(2), s.ping()).await.expect("no hang");
        *h.frames.lock().unwrap() = Vec::new();
        // The connection (or its replacement after a reconnect) still answers.
        let mut ok = false;
        for _ in 0..20 {
            if s.ping().await.is_ok() {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ok, "the connection recovered");
    });
});
