//! Live queries against a real SurrealDB (3.3.5 by default): notifications, kill on drop, re-registration
//! after a reconnect, and the end of a stream when its session's identity changes.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use support::proxy::Proxy;
use support::{setup, DB, NS};
use surreal_pool::{Action, Connection, ConnectionEvent, LiveStream, Notification, ReconnectPolicy, Root, Session};

#[derive(Deserialize, Debug, PartialEq)]
struct Note {
    text: String,
}

async fn root(conn: &Connection) -> Session {
    let s = conn.attach().await.unwrap();
    s.signin(&Root::new("root", "root")).await.unwrap();
    s.use_ns_db(NS, DB).await.unwrap();
    s
}

async fn next<T: serde::de::DeserializeOwned>(stream: &mut LiveStream<T>) -> Notification<T> {
    tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("a notification within 5 s").expect("stream open").unwrap()
}

#[tokio::test]
async fn a_live_table_streams_typed_changes_and_is_killed_on_drop() {
    let (_server, conn) = setup().await;
    let watcher = root(&conn).await;
    let writer = root(&conn).await;
    let mut changes = watcher.live::<Note>("note").await.unwrap();
    // Each write after the previous one's notification: the server delivers notifications
    // concurrently (`rpc::notifications` in 3.3.5 pushes each into a `FuturesUnordered`), so
    // their order is not guaranteed (a CI run under load saw the UPDATE's before the CREATE's).
    writer.query("CREATE note:1 SET text = '2024-01-01'", ()).await.unwrap().check().unwrap();
    let created = next(&mut changes).await;
    assert_eq!((created.action, created.record.as_str(), created.data.text.as_str()), (Action::Create, "note:1", "2024-01-01"));
    writer.query("UPDATE note:1 SET text = 'Person:John Smith'", ()).await.unwrap().check().unwrap();
    let updated = next(&mut changes).await;
    assert_eq!((updated.action, updated.data.text.as_str()), (Action::Update, "Person:John Smith"));
    writer.query("DELETE note:1", ()).await.unwrap().check().unwrap();
    assert_eq!(next(&mut changes).await.action, Action::Delete);

    let id = changes.id().unwrap();
    drop(changes);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed_again = watcher.query(&format!("KILL u'{id}'"), ()).await.unwrap().check();
    assert!(killed_again.is_err(), "the live query was already killed");
}

#[tokio::test]
async fn a_live_select_with_bindings() {
    let (_server, conn) = setup().await;
    let watcher = root(&conn).await;
    let mut big = watcher.live_query::<serde_json::Value, _>("LIVE SELECT * FROM note WHERE n > $min", serde_json::json!({ "min": 10 })).await.unwrap();
    watcher.query("CREATE note SET n = 5; CREATE note SET n = 50", ()).await.unwrap().check().unwrap();
    assert_eq!(next(&mut big).await.data["n"], 50);
}

#[tokio::test]
async fn a_live_query_continues_after_a_reconnect() {
    let (server, conn) = setup().await;
    let proxy = Proxy::start(server.port()).await;
    let watched = Connection::builder(proxy.url()).reconnect(ReconnectPolicy::default().min_delay(Duration::from_millis(20))).connect().await.unwrap();
    let mut events = watched.events();
    let watcher = root(&watched).await;
    let writer = root(&conn).await;
    let mut changes = watcher.live::<Note>("note").await.unwrap();
    let before = changes.id().unwrap();
    proxy.cut();
    loop {
        if let ConnectionEvent::Restored { .. } = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.unwrap().unwrap() {
            break;
        }
    }
    writer.query("CREATE note:after SET text = 'after'", ()).await.unwrap().check().unwrap();
    let n = next(&mut changes).await;
    assert_eq!((n.action, n.data.text.as_str()), (Action::Create, "after"));
    assert_ne!(changes.id().unwrap(), before, "registered again under a new id");
}

#[tokio::test]
async fn an_identity_change_ends_the_sessions_live_queries() {
    let (_server, conn) = setup().await;
    let watcher = root(&conn).await;
    let mut changes = watcher.live::<Note>("note").await.unwrap();
    watcher.invalidate().await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), changes.next()).await.unwrap();
    assert!(end.is_none(), "the stream ends");
}

/// The live queries the server holds for table `note` (from `INFO FOR TABLE`).
async fn server_lives(s: &Session) -> usize {
    let info: serde_json::Value = s.query("INFO FOR TABLE note", ()).await.unwrap().take(0).unwrap();
    info.get("lives").and_then(|l| l.as_object()).map_or(0, |l| l.len())
}

#[tokio::test]
async fn a_live_registration_abandoned_mid_flight_leaves_no_live_query_behind() {
    let (_server, conn) = setup().await;
    let watcher = root(&conn).await;
    {
        let _registered = watcher.live::<Note>("note").await.unwrap();
        assert_eq!(server_lives(&watcher).await, 1, "INFO FOR TABLE shows a registered live query");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server_lives(&watcher).await, 0, "dropping the stream killed it");
    for _ in 0..5 {
        let mut pending = Box::pin(watcher.live::<Note>("note"));
        std::future::poll_fn(|cx| {
            let _ = std::future::Future::poll(pending.as_mut(), cx);
            std::task::Poll::Ready(())
        })
        .await;
        drop(pending);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server_lives(&watcher).await, 0, "orphaned live queries on the server");
}

#[tokio::test]
async fn re_authenticating_as_the_same_user_ends_the_stream_and_kills_the_query() {
    let (_server, conn) = setup().await;
    let watcher = root(&conn).await;
    let mut changes = watcher.live::<Note>("note").await.unwrap();
    let id = changes.id().unwrap();
    watcher.signin(&Root::new("root", "root")).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), changes.next()).await.unwrap();
    assert!(end.is_none(), "the stream ends");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = watcher.query(&format!("KILL u'{id}'"), ()).await.unwrap().check();
    assert!(again.is_err(), "the live query was killed on the server too");
}
