//! The blocking facade, from plain synchronous code (no async runtime in the test).

use std::sync::Arc;

use surreal_pool_testkit::TestServer;
use surreal_pool::{blocking, Error, Pool, Record, RecordId, Root};

const SCHEMA: &str = "
DEFINE NAMESPACE app; USE NS app; DEFINE DATABASE main; USE NS app DB main;
DEFINE TABLE user SCHEMALESS PERMISSIONS FOR select WHERE id = $auth.id;
DEFINE ACCESS account ON DATABASE TYPE RECORD
    SIGNUP ( CREATE user SET email = $email, pass = crypto::argon2::generate($password) )
    SIGNIN ( SELECT * FROM user WHERE email = $email AND crypto::argon2::compare(pass, $password) )
    WITH REFRESH;";

#[test]
fn the_blocking_api_does_auth_data_and_pooling_from_plain_threads() {
    let server = TestServer::start().unwrap();
    let conn = blocking::Connection::connect(server.url()).unwrap();
    let admin = conn.session();
    admin.signin(&Root::new("root", "root")).unwrap();
    admin.query(SCHEMA, ()).unwrap().check().unwrap();
    admin.use_ns_db("app", "main").unwrap();
    let created: serde_json::Value = admin.create(RecordId::new("note", "a b"), serde_json::json!({ "text": "2024-01-01" })).unwrap();
    assert_eq!(created["text"], "2024-01-01");

    let user = conn.attach().unwrap();
    let vars = serde_json::json!({ "email": "b@x.y", "password": "pw" });
    let tokens = user.signup(&Record::new("app", "main", "account", vars)).unwrap();
    assert!(tokens.refresh.is_some());
    assert_eq!(user.info().unwrap().unwrap()["email"], "b@x.y");
    let tokens = user.refresh(&tokens).unwrap();
    user.invalidate().unwrap();
    assert!(user.query("RETURN 1", ()).unwrap_err().is_not_allowed());

    let pool = Arc::new(blocking::Pool::new(Pool::builder(server.url()).connections(1).max_sessions(4).namespace_database("app", "main")).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (pool, token) = (pool.clone(), tokens.access.clone());
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let s = pool.get_with_token(token.clone()).unwrap();
                    let email: String = s.query("RETURN $auth.email", ()).unwrap().take(0).unwrap();
                    assert_eq!(email, "b@x.y");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let status = pool.status();
    assert_eq!((status.checkouts, status.available), (80, 4));
    let busiest = pool.busiest_tenants();
    assert_eq!(busiest.iter().map(|t| t.checkouts).sum::<u64>(), 80);
    assert!(busiest[0].tenant.contains("(app/main, account)"), "{busiest:?}");
    assert!(matches!(pool.get_with_token("garbage"), Err(Error::InvalidToken(_))));
}

#[tokio::test]
async fn dropping_a_blocking_pool_inside_async_code_does_not_panic() {
    let server = TestServer::start().unwrap();
    let url = server.url();
    // Built on a blocking thread (block_on is not allowed on an async worker)...
    let pool = tokio::task::spawn_blocking(move || blocking::Pool::new(Pool::builder(url).connections(1).max_sessions(1)).unwrap())
        .await
        .unwrap();
    assert_eq!(pool.status().size, 1);
    // ...and dropped here, in async code: its runtime shuts down in the background.
    drop(pool);
}
