//! Shared by the criterion benches (`benches/`) and the side-by-side harness
//! (`bench-harness/`): the schema of the `bench` namespace and record users to forward tokens
//! for.

use surreal_pool::{AccessToken, Connection, Record, Root};

/// Namespace and database `bench`, a `user` table a record user can read itself in, and the
/// record access method `account` (1 h tokens).
pub const SCHEMA: &str = r#"
DEFINE NAMESPACE IF NOT EXISTS bench; USE NS bench; DEFINE DATABASE IF NOT EXISTS bench; USE NS bench DB bench;
DEFINE TABLE user SCHEMALESS PERMISSIONS FOR select WHERE id = $auth.id;
DEFINE ACCESS account ON DATABASE TYPE RECORD
    SIGNUP ( CREATE user SET email = $email, pass = crypto::argon2::generate($password) )
    SIGNIN ( SELECT * FROM user WHERE email = $email AND crypto::argon2::compare(pass, $password) )
    DURATION FOR TOKEN 1h, FOR SESSION 12h;
"#;

/// Applies [`SCHEMA`] (and `extra`) as root, then signs up `users` record users and returns
/// their access tokens.
pub async fn setup(url: &str, extra: &str, users: usize) -> Vec<AccessToken> {
    let conn = Connection::connect(url).await.expect("connect");
    let root = conn.session();
    root.signin(&Root::new("root", "root")).await.expect("root signin");
    root.query(&format!("{SCHEMA}\n{extra}"), ()).await.expect("schema").check().expect("schema statements");
    signup(url, 0, users).await
}

/// Signs up the record users `u{first}@bench` .. `u{first + users - 1}@bench` (password `pw`) and
/// returns their access tokens.
pub async fn signup(url: &str, first: usize, users: usize) -> Vec<AccessToken> {
    let conn = Connection::connect(url).await.expect("connect");
    let mut tokens = Vec::with_capacity(users);
    for i in first..first + users {
        let s = conn.attach().await.expect("attach");
        let vars = serde_json::json!({ "email": format!("u{i}@bench"), "password": "pw" });
        tokens.push(s.signup(&Record::new("bench", "bench", "account", vars)).await.expect("signup").access);
        s.detach().await.expect("detach");
    }
    tokens
}
