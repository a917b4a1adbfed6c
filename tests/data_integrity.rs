//! Values that SurrealQL would parse as something else (record ids, dates, uuids, numbers,
//! keywords) and unicode round-trip unchanged, because the wire is CBOR.

mod support;

use serde::{Deserialize, Serialize};
use support::{record, setup, DB, NS};
use surreal_pool::{RecordId, RecordIdKey, Root};

/// Strings that the server's SurrealQL value parser would turn into other types.
const TRICKY: &[&str] = &[
    "Person:John Smith",
    "person:tobie",
    "a:b c",
    "2024-01-01",
    "2024-01-01T10:00:00Z",
    "d'2024-01-01'",
    "0189d1b4-5b6e-7000-8000-000000000000",
    "u'0189d1b4-5b6e-7000-8000-000000000000'",
    "42",
    "1.5e3",
    "1h30m",
    "NONE",
    "null",
    "true",
    "SELECT * FROM user",
    "$auth",
    "[1, 2]",
    "{ a: 1 }",
    "Grüße, 世界 🌍 ⟨x⟩",
    "",
    "'quoted' \"double\" `tick`",
];

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Note {
    text: String,
    n: i64,
}

#[tokio::test]
async fn tricky_strings_round_trip_through_create_bindings_and_variables() {
    let (_server, conn) = setup().await;
    let s = conn.session();
    s.signin(&Root::new("root", "root")).await.unwrap();
    s.use_ns_db(NS, DB).await.unwrap();
    for (i, text) in TRICKY.iter().enumerate() {
        // create with a typed body
        let created: Note = s.create(RecordId::new("note", i as i64), Note { text: text.to_string(), n: i as i64 }).await.unwrap();
        assert_eq!(created.text, *text);
        // query bindings
        let echoed: String = s.query("RETURN $v", serde_json::json!({ "v": text })).await.unwrap().take(0).unwrap();
        assert_eq!(echoed, *text);
        let kind: String = s.query("RETURN type::of($v)", serde_json::json!({ "v": text })).await.unwrap().take(0).unwrap();
        assert_eq!(kind, "string", "{text:?} was not kept as a string");
        // session variables
        s.set("v", text).await.unwrap();
        let from_var: String = s.query("RETURN $v", ()).await.unwrap().take(0).unwrap();
        assert_eq!(from_var, *text);
        // and what was stored
        let stored: Option<Note> = s.select(RecordId::new("note", i as i64)).await.unwrap();
        assert_eq!(stored.unwrap(), Note { text: text.to_string(), n: i as i64 });
    }
}

#[tokio::test]
async fn record_ids_with_any_key_round_trip_typed() {
    let (_server, conn) = setup().await;
    let s = conn.session();
    s.signin(&Root::new("root", "root")).await.unwrap();
    s.use_ns_db(NS, DB).await.unwrap();
    let keys: Vec<RecordIdKey> = vec![
        "John Smith".into(),
        "a:b c".into(),
        "123".into(),
        RecordIdKey::Number(123),
        uuid::Uuid::new_v4().into(),
        RecordIdKey::Array(vec![serde_json::json!("London"), serde_json::json!(7)]),
    ];
    for key in keys {
        let id = RecordId::new("person", key);
        #[derive(Deserialize)]
        struct Row {
            id: RecordId,
        }
        let row: Row = s.create(id.clone(), serde_json::json!({})).await.unwrap();
        assert_eq!(row.id, id);
        let back: RecordId = s.query("RETURN $id", serde_json::json!({ "id": id.to_string() })).await.unwrap().take(0).unwrap();
        assert_eq!(back, id, "a string binding parses back into the same id");
        let via_binding: Vec<Row> = s.query("SELECT id FROM $r", std::collections::HashMap::from([("r", &id)])).await.unwrap().take(0).unwrap();
        assert_eq!(via_binding.len(), 1, "a typed RecordId binding selects the record");
        assert_eq!(via_binding[0].id, id);
    }
}

#[tokio::test]
async fn passwords_shaped_like_values_sign_up_and_in() {
    let (_server, conn) = setup().await;
    for (i, password) in ["2024-01-01", "a:b c", "Person:John Smith", "NONE", "42", "pässwörd ⟨⟩ 🔑"].iter().enumerate() {
        let email = format!("user{i}@{}", "2024-01-01");
        let s = conn.attach().await.unwrap();
        s.signup(&record("account", &email, password)).await.unwrap();
        let stored: serde_json::Value = s.info().await.unwrap().unwrap();
        assert_eq!(stored["email"], email);
        let other = conn.attach().await.unwrap();
        other.signin(&record("account", &email, password)).await.unwrap();
        assert!(other.signin(&record("account", &email, "2024-01-02")).await.unwrap_err().is_auth());
    }
}

#[tokio::test]
async fn surreal_types_map_to_json_as_documented() {
    let (_server, conn) = setup().await;
    let s = conn.session();
    s.signin(&Root::new("root", "root")).await.unwrap();
    s.use_ns_db(NS, DB).await.unwrap();
    let v: serde_json::Value = s
        .query(
            "RETURN { dt: d'2024-01-01T10:00:00Z', u: u'0189d1b4-5b6e-7000-8000-000000000000', dec: 12345678901234567890.25dec, dur: 1h30m, none: NONE, rid: person:⟨John Smith⟩, geo: (1.5, 2.0), n: 7, f: 1.5 }",
            (),
        )
        .await
        .unwrap()
        .take(0)
        .unwrap();
    assert_eq!(v["dt"], "2024-01-01T10:00:00Z");
    assert_eq!(v["u"], "0189d1b4-5b6e-7000-8000-000000000000");
    assert_eq!(v["dec"], "12345678901234567890.25", "decimals keep every digit");
    assert_eq!(v["dur"], "1h30m");
    assert!(v["none"].is_null());
    assert_eq!(v["rid"], "person:⟨John Smith⟩");
    assert_eq!(v["geo"], serde_json::json!({"type": "Point", "coordinates": [1.5, 2.0]}));
    assert_eq!((v["n"].as_i64(), v["f"].as_f64()), (Some(7), Some(1.5)));
}
