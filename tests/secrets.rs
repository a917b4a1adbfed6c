//! Invariant 7: tokens and passwords never appear in `Debug`, `Display`, errors or tracing
//! output. Captures every tracing event (TRACE, all targets) and every printable value of a full
//! auth flow — every signin level, signup, authenticate, refresh, revoke, failures, the pool, and
//! a reconnect with replay — and searches it all for the secrets.

mod support;

use std::time::Duration;

use support::proxy::Proxy;
use support::{record, setup, Capture, DB, NS};
use surreal_pool::{AccessToken, ConnectionEvent, Database, Namespace, Pool, Root};

#[tokio::test]
async fn no_secret_is_ever_printed_or_logged() {
    let capture = Capture::default();
    let _guard = capture.trace_here();

    const PASSWORD: &str = "correct-horse-battery-staple";
    let (server, admin_conn) = setup().await;
    let admin = admin_conn.session();
    admin.signin(&Root::new("root", "root")).await.unwrap();
    admin.query(&format!("USE NS {NS}; DEFINE USER secretive ON NAMESPACE PASSWORD '{PASSWORD}' ROLES OWNER"), ()).await.unwrap().check().unwrap();
    admin.query(&format!("USE NS {NS} DB {DB}; DEFINE USER secretive ON DATABASE PASSWORD '{PASSWORD}' ROLES OWNER"), ()).await.unwrap().check().unwrap();

    let proxy = Proxy::start(server.port()).await;
    let conn = support::remembering_connection(proxy.url()).await;
    let mut printed = Vec::<String>::new();
    let mut secrets = vec![PASSWORD.to_string()];

    let s = conn.attach().await.unwrap();
    let creds = record("account", "secret@x.y", PASSWORD);
    let tokens = s.signup(&creds).await.unwrap();
    let again = s.signin(&creds).await.unwrap();
    let refreshed = s.refresh(&again).await.unwrap();
    for t in [&tokens, &again, &refreshed] {
        secrets.push(t.access.as_str().to_owned());
        secrets.extend(t.access.as_str().split('.').filter(|p| p.len() > 8).map(str::to_owned));
        secrets.push(t.refresh.as_ref().unwrap().as_str().to_owned());
        printed.push(format!("{t:?} {} {:?} {}", t.access, t.access, t.refresh.as_ref().unwrap()));
    }
    s.revoke(&refreshed).await.unwrap();
    let errors = vec![
        s.refresh(&again).await.unwrap_err(),
        s.signin(&record("account", "secret@x.y", "wrong-password-value")).await.unwrap_err(),
        s.authenticate(AccessToken::new("forged.token.value-abcdefgh")).await.unwrap_err(),
        s.authenticate(AccessToken::new(support::forged(&refreshed.access))).await.unwrap_err(),
        s.query("RETURN 1", ()).await.unwrap_err(),
    ];
    secrets.push(support::forged(&refreshed.access));
    secrets.push("wrong-password-value".into());
    secrets.push("forged.token.value-abcdefgh".into());
    s.signin(&Namespace::new(NS, "secretive", PASSWORD)).await.unwrap();
    s.signin(&Database::new(NS, DB, "secretive", PASSWORD)).await.unwrap();
    s.authenticate(refreshed.access.clone()).await.unwrap();
    s.invalidate().await.unwrap();
    s.signin(&creds).await.unwrap();
    for e in &errors {
        printed.push(format!("{e} {e:?}"));
    }
    printed.push(format!("{creds:?} {:?} {:?} {:?}", Root::new("root", PASSWORD), Namespace::new(NS, "u", PASSWORD), Database::new(NS, DB, "u", PASSWORD)));
    printed.push(format!("{s:?} {conn:?}"));

    // A reconnect replays the token (and would sign in with the remembered credentials).
    let mut events = conn.events();
    proxy.cut();
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.unwrap().unwrap();
        printed.push(format!("{e:?}"));
        if matches!(e, ConnectionEvent::Restored { .. }) {
            break;
        }
    }
    s.query("RETURN $auth", ()).await.unwrap();

    // The pool, with an identity and forwarded tokens, good and bad.
    let builder = Pool::builder(server.url()).namespace_database(NS, DB).identity_credentials(Database::new(NS, DB, "secretive", PASSWORD));
    printed.push(format!("{builder:?}"));
    let pool = builder.build().await.unwrap();
    let pooled = pool.get_with_token(tokens.access.clone()).await.unwrap();
    printed.push(format!("{pooled:?} {pool:?} {:?}", pool.status()));
    drop(pooled);
    let bad = pool.get_with_token("forged.token.value-abcdefgh").await.unwrap_err();
    printed.push(format!("{bad} {bad:?}"));
    pool.get().await.unwrap().query("RETURN 1", ()).await.unwrap();

    let log = capture.text();
    assert!(log.contains("surreal_pool.request"), "tracing was captured ({} bytes)", log.len());
    assert!(log.contains("surreal_pool.reconnect"), "the reconnect was traced");
    let everything = format!("{log}\n{}", printed.join("\n"));
    for secret in &secrets {
        assert!(!everything.contains(secret.as_str()), "a secret was printed: {}…", &secret[..secret.len().min(12)]);
    }
}
