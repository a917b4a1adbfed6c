//! Shared set-up for the integration tests: a real SurrealDB server per test, and the schema of
//! the official SDK documentation's authentication examples.
#![allow(dead_code)]

use surreal_pool_testkit::TestServer;
use surreal_pool::{Connection, Record, Root, Session};

pub const NS: &str = "surrealdb";
pub const DB: &str = "docs";

/// Namespace and database users `tobie`/`123456`, a `user` table that lets a record user read
/// itself, and two record access methods: `account` (WITH REFRESH) and `plain` (without).
pub const SCHEMA: &str = r#"
DEFINE NAMESPACE surrealdb;
USE NS surrealdb;
DEFINE USER tobie ON NAMESPACE PASSWORD '123456' ROLES OWNER;
DEFINE DATABASE docs;
USE NS surrealdb DB docs;
DEFINE USER tobie ON DATABASE PASSWORD '123456' ROLES OWNER;
DEFINE TABLE user SCHEMALESS PERMISSIONS FOR select, update WHERE id = $auth.id, FOR create, delete NONE;
DEFINE TABLE note SCHEMALESS PERMISSIONS FOR select, create, update, delete WHERE owner = $auth.id;
DEFINE ACCESS account ON DATABASE TYPE RECORD
    SIGNUP ( CREATE user SET email = $email, pass = crypto::argon2::generate($password), tag = $tag )
    SIGNIN ( SELECT * FROM user WHERE email = $email AND crypto::argon2::compare(pass, $password) )
    WITH REFRESH
    DURATION FOR TOKEN 15m, FOR SESSION 12h;
DEFINE ACCESS plain ON DATABASE TYPE RECORD
    SIGNUP ( CREATE user SET email = $email, pass = crypto::argon2::generate($password) )
    SIGNIN ( SELECT * FROM user WHERE email = $email AND crypto::argon2::compare(pass, $password) )
    DURATION FOR TOKEN 15m, FOR SESSION 12h;
"#;

/// An in-memory writer for a tracing subscriber (`with_writer(move || capture.clone())`): what
/// it was given, read back with [`Capture::text`].
#[derive(Clone, Default)]
pub struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Capture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Captures every tracing event and span (TRACE, all targets) on this thread until the
    /// guard drops. A test binary with one test only: a thread-local subscriber misses events
    /// of tasks that other tests' runtimes poll.
    #[allow(dead_code)]
    pub fn trace_here(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

/// A connection through `url` (a fault proxy) that reconnects after 20 ms and remembers
/// credentials, so that a cut replays every identity, passwords and keys included.
#[allow(dead_code)]
pub async fn remembering_connection(url: String) -> Connection {
    Connection::builder(url)
        .reconnect(surreal_pool::ReconnectPolicy::default().min_delay(std::time::Duration::from_millis(20)))
        .remember_credentials(true)
        .connect()
        .await
        .expect("connect through the proxy")
}

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Waits (bounded: 10 s) until `cond` holds, yielding to the runtime in between; fails the
/// test, naming `what`, if it never does.
#[allow(dead_code)] // not every test binary waits
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// A pool of one session on one socket that lets one checkout wait, with a checkout timeout
/// (60 s) far beyond a test's patience: past that one waiter a checkout is refused, and a
/// refusal that waited for the timeout would not arrive in time.
#[allow(dead_code)]
pub async fn one_waiter_pool(url: String) -> surreal_pool::Pool {
    surreal_pool::Pool::builder(url)
        .connections(1)
        .max_sessions(1)
        .max_waiting(1)
        .namespace_database(NS, DB)
        .checkout_timeout(std::time::Duration::from_secs(60))
        .build()
        .await
        .expect("the pool")
}

/// Starts a server; fails the test loudly with the reason if it cannot.
pub fn server() -> TestServer {
    TestServer::start().unwrap_or_else(|e| panic!("{e}"))
}

/// A server with [`SCHEMA`] applied, and a connection to it.
pub async fn setup() -> (TestServer, Connection) {
    let server = server();
    let conn = Connection::connect(server.url()).await.expect("connect");
    let admin = conn.attach().await.expect("attach");
    admin.signin(&Root::new("root", "root")).await.expect("root signin");
    admin.query(SCHEMA, ()).await.expect("schema").check().expect("schema statements");
    admin.detach().await.expect("detach");
    (server, conn)
}

/// Record-access credentials for `account` (or another access method).
pub fn record(access: &str, email: &str, password: &str) -> Record<serde_json::Value> {
    Record::new(NS, DB, access, serde_json::json!({ "email": email, "password": password }))
}

/// `[$auth.id, $token.ac, session::ns(), session::db()]` as JSON.
pub async fn identity(session: &Session) -> serde_json::Value {
    session
        .query("RETURN { auth: $auth.id, access: $token.AC ?? $token.ac, id: $token.ID ?? $token.id, ns: session::ns(), db: session::db() }", ())
        .await
        .expect("identity query")
        .take(0)
        .expect("identity value")
}
/// A well-formed JWT with the same header and claims as `token` but a wrong signature: only
/// the server can refuse it.
pub fn forged(token: &surreal_pool::AccessToken) -> String {
    let t = token.as_str();
    let at = t.rfind('.').unwrap() + 6;
    let mut bytes = t.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[allow(unused_imports)] // not every test binary uses both
pub use surreal_pool_testkit::{fake, proxy};
pub mod bearer;
pub mod faults;
pub mod secret_flow;
