//! Bearer access (API keys) for the tests that use them: the access methods, a grant helper.
#![allow(dead_code)]

use surreal_pool::{Connection, Root, Session};

use super::{DB, NS};

/// Bearer access methods on the database (for users and for records), the namespace and the
/// root, and a database user with the viewer role only.
pub const ACCESS: &str = "
USE NS surrealdb DB docs;
DEFINE USER reporter ON DATABASE PASSWORD 'never-used-password' ROLES VIEWER;
DEFINE ACCESS api ON DATABASE TYPE BEARER FOR USER DURATION FOR GRANT 30d, FOR TOKEN 15m, FOR SESSION 12h;
DEFINE ACCESS device ON DATABASE TYPE BEARER FOR RECORD DURATION FOR TOKEN 15m, FOR SESSION 12h;
DEFINE ACCESS ops ON NAMESPACE TYPE BEARER FOR USER;
DEFINE ACCESS admin_api ON ROOT TYPE BEARER FOR USER;
CREATE user:alice SET email = 'alice@x.y';
";

/// A root session with [`ACCESS`] defined, selecting the test namespace and database.
pub async fn admin(conn: &Connection) -> Session {
    let admin = conn.attach().await.unwrap();
    admin.signin(&Root::new("root", "root")).await.unwrap();
    admin.query(ACCESS, ()).await.unwrap().check().unwrap();
    admin.use_ns_db(NS, DB).await.unwrap();
    admin
}

/// Runs an `ACCESS … GRANT` statement; returns the grant's id and its key (shown only here).
pub async fn grant(admin: &Session, statement: &str) -> (String, String) {
    let grant: serde_json::Value = admin.query(statement, ()).await.unwrap().take(0).unwrap();
    assert_eq!(grant["type"], "bearer", "{statement}");
    let key = grant["grant"]["key"].as_str().expect("the plaintext key").to_owned();
    assert!(key.starts_with("surreal-bearer-"), "the key's shape");
    (grant["id"].as_str().unwrap().to_owned(), key)
}

pub async fn who(s: &Session) -> serde_json::Value {
    s.query("RETURN { id: $token.ID, ac: $token.AC, auth: $auth.id, ns: session::ns(), db: session::db() }", ())
        .await
        .unwrap()
        .take(0)
        .unwrap()
}
