//! Bad input and hostile peers: each case ends in a typed error — never a panic, never a hang.
//! Frames a real server never sends come from a scripted fake server; everything else runs
//! against the real SurrealDB test server. A connection asks the server's `version` first: the
//! fakes that misbehave on every request answer that one as a 3.3.5 server would
//! ([`versioned`]), unless what they do to it is the point.

mod support;

use std::time::{Duration, Instant};

use ciborium::Value as Cbor;
use support::fake::{query_result, reply, FakeServer, Request};
use support::{record, server, setup, DB, NS};
use surreal_pool::{Connection, Error, ReconnectPolicy, Root};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

fn quick(url: String) -> surreal_pool::ConnectionBuilder {
    Connection::builder(url)
        .request_timeout(Duration::from_millis(800))
        .connect_timeout(Duration::from_millis(800))
        .reconnect(ReconnectPolicy::default().min_delay(Duration::from_millis(20)).max_delay(Duration::from_millis(100)))
}

/// A fake that answers `version` as SurrealDB 3.3.5 does and everything else with `script`.
fn versioned(script: impl Fn(Request) -> Vec<Message> + Send + Sync + 'static) -> impl Fn(Request) -> Vec<Message> + Send + Sync + 'static {
    as_version("surrealdb-3.3.5", script)
}

/// A fake that answers `version` with `version` and everything else with `script`.
fn as_version(
    version: &'static str,
    script: impl Fn(Request) -> Vec<Message> + Send + Sync + 'static,
) -> impl Fn(Request) -> Vec<Message> + Send + Sync + 'static {
    move |req| match req.method.as_str() {
        "version" => vec![reply(req.id, Cbor::Text(version.into()), None)],
        _ => script(req),
    }
}

fn int(n: i64) -> Cbor {
    Cbor::Integer(n.into())
}

async fn one(conn: &Connection) -> Result<i64, Error> {
    conn.session().query("RETURN 1", ()).await?.take(0)
}

#[tokio::test]
async fn unknown_ids_garbage_and_text_frames_are_ignored() {
    let fake = FakeServer::start(true, |req| {
        vec![
            reply(req.id + 1000, int(9), None),                         // unknown id
            Message::Binary(vec![0xff, 0x00, 0x13].into()),             // not CBOR
            Message::Binary(vec![0x01].into()),                         // CBOR, not a map
            Message::Text("{\"id\": 1, \"result\": 2}".into()),      // a text frame on a CBOR socket
            reply(req.id, query_result(int(1)), None),                  // the real answer
        ]
    })
    .await;
    let conn = quick(fake.url()).connect().await.unwrap();
    for _ in 0..3 {
        assert_eq!(one(&conn).await.unwrap(), 1);
    }
}

#[tokio::test]
async fn a_reply_labelled_for_another_session_is_refused() {
    let fake = FakeServer::start(true, |req| vec![reply(req.id, query_result(int(1)), Some("0189d1b4-5b6e-7000-8000-000000000000"))]).await;
    let conn = quick(fake.url()).connect().await.unwrap();
    match one(&conn).await {
        Err(Error::Protocol(m)) => assert!(m.contains("another session"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn no_reply_at_all_times_out() {
    let fake = FakeServer::start(true, versioned(|_| vec![])).await;
    let conn = quick(fake.url()).connect().await.unwrap();
    let started = Instant::now();
    assert!(one(&conn).await.unwrap_err().is_timeout());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_close_frame_mid_request_is_connection_lost() {
    let fake = FakeServer::start(true, versioned(|_| vec![Message::Close(Some(CloseFrame { code: 1011.into(), reason: "bye".into() }))])).await;
    let conn = quick(fake.url()).connect().await.unwrap();
    assert!(matches!(one(&conn).await, Err(Error::ConnectionLost)));
}

#[tokio::test]
async fn an_oversized_frame_is_connection_lost() {
    let fake = FakeServer::start(true, versioned(|req| vec![reply(req.id, query_result(Cbor::Text("x".repeat(64 * 1024))), None)])).await;
    let conn = quick(fake.url()).max_message_size(4 * 1024).connect().await.unwrap();
    assert!(matches!(one(&conn).await, Err(Error::ConnectionLost)));
}

#[tokio::test]
async fn a_server_without_the_cbor_subprotocol_is_refused_clearly() {
    let fake = FakeServer::start(false, |_| vec![]).await;
    match quick(fake.url()).connect().await {
        Err(Error::Connect { reason, .. }) => assert!(reason.contains("cbor"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_plain_http_server_is_a_connect_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello").await;
        }
    });
    assert!(matches!(quick(format!("ws://{addr}")).connect().await, Err(Error::Connect { .. })));
}

#[tokio::test]
async fn a_peer_that_never_handshakes_is_a_connect_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let started = Instant::now();
    match quick(format!("ws://{addr}")).connect().await {
        Err(Error::Timeout { what: "connect", .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn arbitrary_frame_sequences_never_panic_or_wedge_the_connection() {
    // A deterministic stream of mutated replies; the last frame of each batch is the real answer.
    let fake = FakeServer::start(true, |req| {
        let mut state = req.id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut frames = Vec::new();
        for _ in 0..8 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 64) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|i| (state >> (i % 56)) as u8).collect();
            if state % 3 == 0 {
                // A well-formed map around a garbage result, for an id nobody asked.
                bytes = match reply(state % 1_000_000 + 1_000_000, Cbor::Bytes(bytes), None) {
                    Message::Binary(b) => b.to_vec(),
                    _ => unreachable!(),
                };
            }
            frames.push(Message::Binary(bytes.into()));
        }
        frames.push(reply(req.id, query_result(int(1)), None));
        frames
    })
    .await;
    let conn = quick(fake.url()).connect().await.unwrap();
    for _ in 0..50 {
        assert_eq!(one(&conn).await.unwrap(), 1);
    }
}

#[tokio::test]
async fn the_in_flight_limit_is_a_typed_backpressure_error() {
    let fake = FakeServer::start(true, versioned(|_| vec![])).await; // never answers: requests pile up
    let conn = quick(fake.url()).max_in_flight(4).channel_capacity(4).request_timeout(Duration::from_secs(2)).connect().await.unwrap();
    let mut waiting = Vec::new();
    for _ in 0..8 {
        let c = conn.clone();
        waiting.push(tokio::spawn(async move { one(&c).await }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    match one(&conn).await {
        Err(e) => assert!(e.is_overloaded(), "{e:?}"),
        Ok(v) => panic!("{v}"),
    }
    for w in waiting {
        assert!(w.await.unwrap().unwrap_err().is_timeout());
    }
}

#[tokio::test]
async fn empty_huge_and_non_ascii_tokens_are_refused_before_sending() {
    let (_server, conn) = setup().await;
    let s = conn.attach().await.unwrap();
    for token in [String::new(), "x".repeat(1 << 20), "ñ".repeat(100), "a.b.c\"'".into(), "\0".into(), "a.b.c".into()] {
        match s.authenticate(token.as_str()).await {
            Err(e @ Error::InvalidToken(_)) => {
                assert!(e.is_auth());
                assert!(!e.to_string().contains(&token[..token.len().min(64)]) || token.len() < 4);
            }
            other => panic!("{} bytes: {other:?}", token.len()),
        }
        assert!(s.auth_known(), "a refused token leaves the session as it was");
    }
}

#[tokio::test]
async fn credentials_with_quotes_and_unicode_work() {
    let (_server, conn) = setup().await;
    for (email, password) in [("o'brien@x.y", "pa\"ss'word`"), ("søren@ø.dk", "пароль ⟨⟩ \\ 🔐")] {
        let s = conn.attach().await.unwrap();
        s.signup(&record("account", email, password)).await.unwrap();
        let other = conn.attach().await.unwrap();
        other.signin(&record("account", email, password)).await.unwrap();
        let who: String = other.query("RETURN $auth.email", ()).await.unwrap().take(0).unwrap();
        assert_eq!(who, email);
    }
}

#[tokio::test]
async fn a_ten_megabyte_query_is_answered() {
    let server = server();
    let conn = Connection::connect(server.url()).await.unwrap();
    let s = conn.session();
    s.signin(&Root::new("root", "root")).await.unwrap();
    s.use_ns_db(NS, DB).await.unwrap();
    let big = "a".repeat(10 << 20);
    let sql = format!("RETURN string::len('{big}')");
    let n: i64 = s.query(&sql, ()).await.unwrap().take(0).unwrap();
    assert_eq!(n, 10 << 20);
}

/// A peer that floods frames faster than they can be decoded (256 KiB notifications of
/// one-byte items, sent as fast as the socket takes them): with the socket buffers full of them,
/// a request is still written at once (each wake of the connection's task writes the commands
/// waiting before it reads on); its reply comes behind the flood already on its way.
#[tokio::test]
async fn a_flood_of_notifications_does_not_keep_requests_from_being_written() {
    use std::sync::{Arc, Mutex};
    use support::fake::notification;
    let received: Arc<Mutex<Option<Instant>>> = Arc::default();
    let log = received.clone();
    let fake = FakeServer::start_flooding(
        notification(256 << 10),
        versioned(move |req| {
            log.lock().unwrap().get_or_insert_with(Instant::now);
            vec![reply(req.id, query_result(int(1)), None)]
        }),
    )
    .await;
    let conn = quick(fake.url()).request_timeout(Duration::from_secs(30)).connect().await.unwrap();
    // Far more than the socket buffers hold: they are full, and stay full.
    tokio::time::timeout(Duration::from_secs(20), fake.flooded().wait_for(|n| *n >= 16 << 20)).await.unwrap().unwrap();
    let sent = Instant::now();
    assert_eq!(one(&conn).await.unwrap(), 1);
    let waited = received.lock().unwrap().expect("the request reached the server").duration_since(sent);
    assert!(waited < Duration::from_secs(1), "the request waited {waited:?} to be written");
}

/// `{id, result}` whose result is not CBOR: the envelope names the request, nothing else reads.
fn undecodable(id: u64) -> Message {
    let mut out = vec![0xa2, 0x62, b'i', b'd'];
    ciborium::into_writer(&int(id as i64), &mut out).unwrap();
    out.extend_from_slice(&[0x66, b'r', b'e', b's', b'u', b'l', b't', 0xff]);
    Message::Binary(out.into())
}

/// Answers `bad` with an undecodable reply, `query` with 1, anything else with null.
async fn answering_badly(bad: &'static str) -> FakeServer {
    FakeServer::start(true, move |req| match req.method.as_str() {
        m if m == bad => vec![undecodable(req.id)],
        "query" => vec![reply(req.id, query_result(int(1)), None)],
        _ => vec![reply(req.id, Cbor::Null, None)],
    })
    .await
}

#[tokio::test]
async fn an_undecodable_reply_to_let_fails_it_at_once_and_replaces_the_socket() {
    let fake = answering_badly("let").await;
    let conn = quick(fake.url()).request_timeout(Duration::from_secs(5)).connect().await.unwrap();
    let mut events = conn.events();
    let started = Instant::now();
    match conn.session().set("x", &1).await {
        Err(Error::Protocol(m)) => assert!(m.contains("could not be decoded"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1), "failed at once, not by the timeout");
    // The server may have set the variable: every session is replayed from what is known.
    let reason = loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap().unwrap();
        if let surreal_pool::ConnectionEvent::Disconnected { reason, .. } = event {
            break reason;
        }
    };
    assert!(reason.contains("state-changing"), "{reason}");
    assert_eq!(one(&conn).await.unwrap(), 1);
}

#[tokio::test]
async fn an_undecodable_reply_to_authenticate_leaves_the_identity_unknown() {
    let fake = answering_badly("authenticate").await;
    let conn = quick(fake.url()).request_timeout(Duration::from_secs(5)).connect().await.unwrap();
    let s = conn.attach().await.unwrap();
    let started = Instant::now();
    // A well-formed JWT, so that it is sent.
    match s.authenticate("eyJhbGciOiJIUzUxMiJ9.eyJJRCI6InVzZXI6eCJ9.c2ln").await {
        Err(Error::Protocol(m)) => assert!(m.contains("could not be decoded"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1), "failed at once, not by the timeout");
    assert!(!s.auth_known(), "the server may or may not have applied it");
    assert!(matches!(s.query("RETURN 1", ()).await, Err(Error::AuthLost)));
}

/// The pool judges a returned session by the changes in flight: one whose reply could not be
/// decoded must not count as in flight forever (the session would be reset at every checkout).
#[tokio::test]
async fn a_pooled_session_whose_let_reply_is_undecodable_is_not_dirty_forever() {
    let fake = answering_badly("let").await;
    let pool = surreal_pool::Pool::builder(fake.url())
        .connections(1)
        .max_sessions(1)
        .request_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let session = pool.get().await.unwrap();
    assert!(matches!(session.set("x", &1).await, Err(Error::Protocol(_))));
    drop(session);
    for _ in 0..3 {
        let session = pool.get().await.unwrap();
        let one: i64 = session.query("RETURN 1", ()).await.unwrap().take(0).unwrap();
        assert_eq!(one, 1);
    }
    assert_eq!(pool.status().resets, 0, "{:?}", pool.status());
}
