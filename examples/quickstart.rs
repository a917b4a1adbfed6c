//! The authentication tour of the official SDKs' guide, against a real server.
//!
//! ```text
//! cargo run --example quickstart                       # starts its own local SurrealDB
//! cargo run --example quickstart -- ws://127.0.0.1:8000 # or uses yours (root/root)
//! ```

use surreal_pool_testkit::TestServer;
use surreal_pool::{Connection, Database, Namespace, Record, Root};

const SCHEMA: &str = r#"
DEFINE NAMESPACE IF NOT EXISTS surrealdb;
USE NS surrealdb;
DEFINE USER IF NOT EXISTS tobie ON NAMESPACE PASSWORD '123456' ROLES OWNER;
DEFINE DATABASE IF NOT EXISTS docs;
USE NS surrealdb DB docs;
DEFINE USER IF NOT EXISTS tobie ON DATABASE PASSWORD '123456' ROLES OWNER;
DEFINE TABLE IF NOT EXISTS user SCHEMALESS PERMISSIONS FOR select, update WHERE id = $auth.id, FOR create, delete NONE;
DEFINE ACCESS IF NOT EXISTS account ON DATABASE TYPE RECORD
    SIGNUP ( CREATE user SET email = $email, pass = crypto::argon2::generate($password) )
    SIGNIN ( SELECT * FROM user WHERE email = $email AND crypto::argon2::compare(pass, $password) )
    WITH REFRESH
    DURATION FOR TOKEN 15m, FOR SESSION 12h;
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Use the URL given, or start a local server for the tour.
    let (url, _server) = match std::env::args().nth(1) {
        Some(url) => (url, None),
        None => {
            println!("starting a local SurrealDB test server (built once, cached) ...");
            let server = TestServer::start()?;
            (server.url(), Some(server))
        }
    };
    let conn = Connection::connect(&url).await?;
    println!("connected to {} ({})", conn.endpoint(), conn.session().version().await?);

    // Root user.
    let root = conn.session();
    root.signin(&Root::new("root", "root")).await?;
    root.query(SCHEMA, ()).await?.check()?;
    println!("signed in as root; schema ready");

    // Namespace and database users, each on its own server session of the same socket.
    let ns_user = conn.attach().await?;
    ns_user.signin(&Namespace::new("surrealdb", "tobie", "123456")).await?;
    let db_user = conn.attach().await?;
    db_user.signin(&Database::new("surrealdb", "docs", "tobie", "123456")).await?;
    println!("signed in as namespace user and database user");

    // A record user: sign up, then sign in (tokens print redacted).
    let email = format!("info+{}@surrealdb.com", uuid::Uuid::new_v4().simple());
    let vars = serde_json::json!({ "email": email, "password": "123456" });
    let user = conn.attach().await?;
    let tokens = user.signup(&Record::new("surrealdb", "docs", "account", vars.clone())).await?;
    println!("signed up: {tokens:?}");
    let tokens = user.signin(&Record::new("surrealdb", "docs", "account", vars)).await?;
    println!("signed in: refresh token issued = {}", tokens.refresh.is_some());

    // Authenticate another session with the existing token, as a server would with a forwarded JWT.
    let forwarded = conn.attach().await?;
    forwarded.authenticate(tokens.access.clone()).await?;
    let me = forwarded.info().await?.expect("a record user can read itself");
    println!("authenticated with the token: info() = {}", me["email"]);

    // Sign out.
    forwarded.invalidate().await?;
    match forwarded.info().await {
        Err(e) if e.is_not_allowed() => println!("invalidated: the session is anonymous again ({e})"),
        other => println!("invalidated: info() = {other:?}"),
    }
    Ok(())
}
