//! The authentication API against a real SurrealDB (3.3.5 by default): every signin level, signup,
//! authenticate, invalidate, info, refresh, revoke, and their failures.

mod support;

use support::{identity, record, setup, DB, NS};
use surreal_pool::{AccessToken, Connection, Database, Error, Namespace, Root, Tokens};

#[tokio::test]
async fn root_signin_is_visible_as_the_session_identity() {
    let (_server, conn) = setup().await;
    let s = conn.attach().await.unwrap();
    let tokens = s.signin(&Root::new("root", "root")).await.unwrap();
    s.use_ns_db(NS, DB).await.unwrap();
    assert!(tokens.refresh.is_none(), "system users get no refresh token");
    assert_eq!(tokens.access.as_str().split('.').count(), 3, "a JWT");
    let who: serde_json::Value = s.query("RETURN [$token.ID, $token.NS, $token.DB]", ()).await.unwrap().take(0).unwrap();
    assert_eq!(who, serde_json::json!(["root", null, null]));
    assert_eq!(s.token().unwrap(), tokens.access);
}

#[tokio::test]
async fn namespace_signin_is_visible_as_the_session_identity() {
    let (_server, conn) = setup().await;
    let s = conn.attach().await.unwrap();
    let tokens = s.signin(&Namespace::new(NS, "tobie", "123456")).await.unwrap();
    s.use_db(DB).await.unwrap();
    assert!(tokens.refresh.is_none());
    let who: serde_json::Value = s.query("RETURN [$token.ID, $token.NS, $token.DB]", ()).await.unwrap().take(0).unwrap();
    assert_eq!(who, serde_json::json!(["tobie", NS, null]));
    let ns: String = s.query("RETURN session::ns()", ()).await.unwrap().take(0).unwrap();
    assert_eq!(ns, NS, "a namespace signin selects its namespace");
}

#[tokio::test]
async fn database_signin_is_visible_as_the_session_identity() {
    let (_server, conn) = setup().await;
    let s = conn.attach().await.unwrap();
    let tokens = s.signin(&Database::new(NS, DB, "tobie", "123456")).await.unwrap();
    assert!(tokens.refresh.is_none());
    let who: serde_json::Value = s.query("RETURN [$token.ID, $token.NS, $token.DB, session::ns(), session::db()]", ()).await.unwrap().take(0).unwrap();
    assert_eq!(who, serde_json::json!(["tobie", NS, DB, NS, DB]));
}

#[tokio::test]
async fn record_signup_then_signin_is_visible_as_the_session_identity() {
    let (_server, conn) = setup().await;
    let s = conn.attach().await.unwrap();
    let up = s.signup(&record("account", "info@surrealdb.com", "123456")).await.unwrap();
    assert!(up.refresh.is_some(), "the access method is WITH REFRESH");
    let first = identity(&s).await;
    assert_eq!(first["access"], "account");
    assert!(first["auth"].as_str().unwrap().starts_with("user:"), "{first}");

    let other = conn.attach().await.unwrap();
    let tokens = other.signin(&record("account", "info@surrealdb.com", "123456")).await.unwrap();
    assert!(tokens.refresh.is_some());
    assert_ne!(tokens.access, up.access);
    assert_eq!(identity(&other).await["auth"], first["auth"], "signin finds the signed-up user");
}

#[tokio::test]
async fn signup_without_refresh_returns_no_refresh_token_and_creates_the_user() {
    let (_server, conn) = setup().await;
    let s = conn.attach().await.unwrap();
    let up = s.signup(&record("plain", "a@b.c", "pw")).await.unwrap();
    assert!(up.refresh.is_none());
    let admin = conn.session();
    admin.signin(&Root::new("root", "root")).await.unwrap();
    admin.use_ns_db(NS, DB).await.unwrap();
    let emails: Vec<String> = admin.query("SELECT VALUE email FROM user", ()).await.unwrap().take(0).unwrap();
    assert_eq!(emails, ["a@b.c"]);
}

#[tokio::test]
async fn wrong_password_is_a_typed_auth_error_at_every_level() {
    let (_server, conn) = setup().await;
    let s = conn.attach().await.unwrap();
    s.signup(&record("account", "x@y.z", "right")).await.unwrap();
    let results = [
        s.signin(&Root::new("root", "wrong")).await,
        s.signin(&Namespace::new(NS, "tobie", "wrong")).await,
        s.signin(&Database::new(NS, DB, "tobie", "wrong")).await,
        s.signin(&record("account", "x@y.z", "wrong")).await,
    ];
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Err(e @ Error::Auth(_)) => assert!(e.is_auth(), "{i}: {e}"),
            other => panic!("level {i}: expected an auth error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn failed_signin_makes_the_session_refuse_commands_until_it_authenticates() {
    let (_server, conn) = setup().await;
    let s = conn.attach().await.unwrap();
    s.signin(&Root::new("root", "root")).await.unwrap();
    assert!(s.signin(&Root::new("root", "wrong")).await.unwrap_err().is_auth());
    assert!(!s.auth_known());
    assert!(matches!(s.query("RETURN 1", ()).await, Err(Error::AuthLost)));
    s.signin(&Root::new("root", "root")).await.unwrap();
    assert!(s.auth_known());
    let one: i64 = s.query("RETURN 1", ()).await.unwrap().take(0).unwrap();
    assert_eq!(one, 1);
}

#[tokio::test]
async fn authenticate_with_a_token_from_another_connection() {
    let (server, conn) = setup().await;
    let tokens = conn.attach().await.unwrap().signup(&record("account", "t@x.y", "pw")).await.unwrap();
    let before = {
        let s = conn.attach().await.unwrap();
        s.authenticate(tokens.access.clone()).await.unwrap();
        identity(&s).await
    };
    let other = Connection::connect(server.url()).await.unwrap();
    let s = other.session();
    s.authenticate(tokens.access.as_str()).await.unwrap();
    assert_eq!(identity(&s).await, before);
    assert_eq!(before["ns"], NS);
    assert_eq!(before["db"], DB);
    assert_eq!(s.token(), Some(tokens.access));
}

#[tokio::test]
async fn garbage_and_odd_tokens_are_typed_auth_errors() {
    let (_server, conn) = setup().await;
    let s = conn.attach().await.unwrap();
    // Not JWTs: refused before sending.
    for token in ["garbage", "", "a.b.c", "ü.ñ.ï"] {
        match s.authenticate(token).await {
            Err(e @ Error::InvalidToken(_)) => assert!(e.is_auth()),
            other => panic!("{token:?}: {other:?}"),
        }
    }
    // A well-formed JWT with a bad signature: refused by the server.
    let tokens = s.signup(&record("plain", "odd@x.y", "pw")).await.unwrap();
    match s.authenticate(support::forged(&tokens.access)).await {
        Err(Error::Auth(e)) => assert_eq!(e.code(), -32002, "{e}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn invalidate_then_query_is_not_allowed() {
    let (_server, conn) = setup().await;
    let s = conn.attach().await.unwrap();
    s.signin(&Database::new(NS, DB, "tobie", "123456")).await.unwrap();
    s.query("DEFINE TABLE secret PERMISSIONS NONE; CREATE secret:1 SET x = 1", ()).await.unwrap().check().unwrap();
    s.invalidate().await.unwrap();
    assert_eq!(s.token(), None);
    // The server (guest access off, its default) refuses anonymous queries.
    match s.query("SELECT * FROM secret", ()).await {
        Err(e @ Error::NotAllowed(_)) => assert!(e.is_not_allowed()),
        other => panic!("expected not-allowed, got {other:?}"),
    }
}

#[tokio::test]
async fn info_returns_the_record_user_and_none_for_root() {
    let (_server, conn) = setup().await;
    let s = conn.attach().await.unwrap();
    s.signup(&record("account", "me@x.y", "pw")).await.unwrap();
    let me = s.info().await.unwrap().expect("a record user sees itself");
    assert_eq!(me["email"], "me@x.y");
    assert!(me["id"].as_str().unwrap().starts_with("user:"));

    let root = conn.attach().await.unwrap();
    root.signin(&Root::new("root", "root")).await.unwrap();
    root.use_ns_db(NS, DB).await.unwrap();
    assert_eq!(root.info().await.unwrap(), None);
}

#[tokio::test]
async fn refresh_spends_the_old_refresh_token() {
    let (_server, conn) = setup().await;
    let s = conn.attach().await.unwrap();
    let first = s.signup(&record("account", "r@x.y", "pw")).await.unwrap();
    let second = s.refresh(&first).await.unwrap();
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(s.token(), Some(second.access.clone()));
    assert_eq!(identity(&s).await["access"], "account");
    match s.refresh(&first).await {
        Err(e) => assert!(e.is_auth(), "{e:?}"),
        Ok(_) => panic!("a spent refresh token was accepted"),
    }
    // The new pair still works.
    let other = conn.attach().await.unwrap();
    other.refresh(&second).await.unwrap();
}

#[tokio::test]
async fn revoke_makes_the_refresh_token_unusable() {
    let (_server, conn) = setup().await;
    let s = conn.attach().await.unwrap();
    let tokens = s.signup(&record("account", "v@x.y", "pw")).await.unwrap();
    s.revoke(&tokens).await.unwrap();
    assert!(s.refresh(&tokens).await.unwrap_err().is_auth());
    let no_refresh = Tokens::new(tokens.access.clone(), None);
    assert!(matches!(s.revoke(&no_refresh).await, Err(Error::InvalidArgument(_))));
}

#[tokio::test]
async fn tokens_are_redacted_everywhere_they_print() {
    let (_server, conn) = setup().await;
    let s = conn.attach().await.unwrap();
    let tokens = s.signup(&record("account", "d@x.y", "hunter2")).await.unwrap();
    let printed = format!("{tokens:?} {} {:?} {s:?} {conn:?}", tokens.access, record("account", "d@x.y", "hunter2"));
    assert!(!printed.contains(tokens.access.as_str()));
    assert!(!printed.contains(tokens.refresh.as_ref().unwrap().as_str()));
    assert!(!printed.contains("hunter2"));
    let err = s.authenticate(AccessToken::new("not-a-real-token-xyz")).await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("not-a-real-token-xyz"));
}
