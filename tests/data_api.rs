//! The data API against a real SurrealDB (3.3.5 by default): every method, typed and as JSON, and
//! transactions.

mod support;

use serde::{Deserialize, Serialize};
use support::{setup, DB, NS};
use surreal_pool::{Error, RecordId, Root, Session};

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Person {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<RecordId>,
    name: String,
    age: i64,
}

async fn root(conn: &surreal_pool::Connection) -> Session {
    let s = conn.attach().await.unwrap();
    s.signin(&Root::new("root", "root")).await.unwrap();
    s.use_ns_db(NS, DB).await.unwrap();
    s
}

#[tokio::test]
async fn crud_with_typed_results() {
    let (_server, conn) = setup().await;
    let db = root(&conn).await;
    let tobie = RecordId::new("person", "tobie");
    let created: Person = db.create(tobie.clone(), serde_json::json!({ "name": "Tobie", "age": 30 })).await.unwrap();
    assert_eq!(created, Person { id: Some(tobie.clone()), name: "Tobie".into(), age: 30 });

    let inserted: Vec<Person> =
        db.insert("person", vec![Person { id: None, name: "A".into(), age: 1 }, Person { id: None, name: "B".into(), age: 2 }]).await.unwrap();
    assert_eq!(inserted.len(), 2);
    assert!(inserted.iter().all(|p| p.id.as_ref().is_some_and(|id| id.table() == "person")));

    let all: Vec<Person> = db.select("person").await.unwrap();
    assert_eq!(all.len(), 3);
    let one: Option<Person> = db.select(tobie.clone()).await.unwrap();
    assert_eq!(one.unwrap().name, "Tobie");

    let updated: Option<Person> = db.update(tobie.clone(), serde_json::json!({ "name": "T", "age": 31 })).await.unwrap();
    assert_eq!(updated.unwrap().age, 31);
    let merged: Option<Person> = db.merge(tobie.clone(), serde_json::json!({ "age": 32 })).await.unwrap();
    assert_eq!(merged.as_ref().map(|p| (p.name.as_str(), p.age)), Some(("T", 32)));
    let patched: Option<Person> =
        db.patch(tobie.clone(), serde_json::json!([{ "op": "replace", "path": "/name", "value": "Patched" }])).await.unwrap();
    assert_eq!(patched.unwrap().name, "Patched");
    let upserted: Option<Person> = db.upsert(RecordId::new("person", "new"), serde_json::json!({ "name": "N", "age": 5 })).await.unwrap();
    assert_eq!(upserted.unwrap().id, Some(RecordId::new("person", "new")));

    let deleted: Option<Person> = db.delete(tobie.clone()).await.unwrap();
    assert_eq!(deleted.unwrap().name, "Patched");
    let gone: Option<Person> = db.select(tobie).await.unwrap();
    assert!(gone.is_none());
    let remaining: Vec<serde_json::Value> = db.select("person").await.unwrap();
    assert_eq!(remaining.len(), 3);
}

#[tokio::test]
async fn relate_insert_relation_and_run() {
    let (_server, conn) = setup().await;
    let db = root(&conn).await;
    let a = RecordId::new("person", "a");
    let post = RecordId::new("post", 1);
    let _: serde_json::Value = db.create(a.clone(), ()).await.unwrap();
    let _: serde_json::Value = db.create(post.clone(), ()).await.unwrap();
    let edge: serde_json::Value = db.relate(a.clone(), "likes", post.clone(), serde_json::json!({ "stars": 5 })).await.unwrap();
    let edge = if edge.is_array() { edge[0].clone() } else { edge };
    assert_eq!(edge["in"], "person:a");
    assert_eq!(edge["out"], "post:1");
    assert_eq!(edge["stars"], 5);
    // Typed record ids in a struct are sent as record ids (in `json!` they would become strings).
    #[derive(Serialize)]
    struct Edge {
        #[serde(rename = "in")]
        from: RecordId,
        out: RecordId,
    }
    let wrote: Vec<serde_json::Value> = db.insert_relation("wrote", vec![Edge { from: a, out: post }]).await.unwrap();
    assert_eq!(wrote.len(), 1);
    let liked: Vec<String> = db.query("SELECT VALUE <string> out FROM likes", ()).await.unwrap().take(0).unwrap();
    assert_eq!(liked, ["post:1"]);

    let n: i64 = db.run("string::len", ("hello",)).await.unwrap();
    assert_eq!(n, 5);
    db.query("DEFINE FUNCTION fn::greet($name: string) { RETURN 'Hello, ' + $name }", ()).await.unwrap().check().unwrap();
    let greeting: String = db.run("fn::greet", vec!["2024-01-01"]).await.unwrap();
    assert_eq!(greeting, "Hello, 2024-01-01");
    assert!(matches!(db.run::<_, i64>("string::len", "not a list").await, Err(Error::InvalidArgument(_))));
}

#[tokio::test]
async fn transactions_commit_and_cancel() {
    let (_server, conn) = setup().await;
    let db = root(&conn).await;
    let tx = db.begin().await.unwrap();
    tx.query("CREATE account:a SET balance = 10", ()).await.unwrap().check().unwrap();
    tx.query("CREATE account:b SET balance = 0", ()).await.unwrap().check().unwrap();
    tx.commit().await.unwrap();
    let n: Vec<serde_json::Value> = db.select("account").await.unwrap();
    assert_eq!(n.len(), 2);

    let tx = db.begin().await.unwrap();
    tx.query("UPDATE account:a SET balance = 0", ()).await.unwrap().check().unwrap();
    tx.cancel().await.unwrap();
    let a: Option<serde_json::Value> = db.select(RecordId::new("account", "a")).await.unwrap();
    assert_eq!(a.unwrap()["balance"], 10, "a cancelled transaction changes nothing");

    {
        let tx = db.begin().await.unwrap();
        tx.query("UPDATE account:b SET balance = 99", ()).await.unwrap().check().unwrap();
        // dropped without commit: cancelled
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let b: Option<serde_json::Value> = db.select(RecordId::new("account", "b")).await.unwrap();
    assert_eq!(b.unwrap()["balance"], 0, "a dropped transaction is cancelled");
}

#[tokio::test]
async fn transactions_abandoned_mid_commit_never_pile_up_on_a_pooled_session() {
    let (server, _conn) = setup().await;
    let pool = surreal_pool::Pool::builder(server.url())
        .connections(1)
        .max_sessions(1)
        .namespace_database(NS, DB)
        .identity_credentials(Root::new("root", "root"))
        .build()
        .await
        .unwrap();
    // More than the server's 64 open transactions per session, each abandoned at its commit.
    for i in 0..70 {
        let db = pool.get().await.unwrap();
        let tx = db.begin().await.unwrap();
        tx.query("CREATE item SET n = $n", serde_json::json!({ "n": i })).await.unwrap().check().unwrap();
        // The caller gives up while the commit is still queued: poll it once, then drop it.
        let mut commit = Box::pin(tx.commit());
        std::future::poll_fn(|cx| {
            let _ = std::future::Future::poll(commit.as_mut(), cx);
            std::task::Poll::Ready(())
        })
        .await;
        drop(commit);
    }
    let db = pool.get().await.unwrap();
    let tx = db.begin().await.expect("the session has no leftover open transactions");
    tx.cancel().await.unwrap();
}
