//! A full auth flow whose secrets a test then looks for in what was logged: root signin with a
//! distinctive password, record signup and signin, authenticate with the JWT, refresh, pool
//! checkouts with forwarded tokens, and a reconnect (through the proxy) that replays them.
#![allow(dead_code)]

use std::collections::HashSet;
use std::time::Duration;

use surreal_pool::{ConnectionEvent, Pool, Root};

use super::proxy::Proxy;
use super::{record, setup, DB, NS};

const ROOT_PASSWORD: &str = "Root-Passw0rd-of-the-trace-test-8d41c2e7";
const RECORD_PASSWORD: &str = "Record-Passw0rd-of-the-trace-test-5b90af13";

/// Runs the flow; returns every secret it used or was given.
pub async fn run() -> Vec<String> {
    let (server, admin_conn) = setup().await;
    let admin = admin_conn.session();
    admin.signin(&Root::new("root", "root")).await.unwrap();
    admin.query(&format!("DEFINE USER tracer ON ROOT PASSWORD '{ROOT_PASSWORD}' ROLES OWNER"), ()).await.unwrap().check().unwrap();

    let proxy = Proxy::start(server.port()).await;
    let conn = super::remembering_connection(proxy.url()).await;
    let root = conn.attach().await.unwrap();
    root.signin(&Root::new("tracer", ROOT_PASSWORD)).await.unwrap();
    root.use_ns_db(NS, DB).await.unwrap();

    let user = conn.attach().await.unwrap();
    let creds = record("account", "tracer@x.y", RECORD_PASSWORD);
    let signed_up = user.signup(&creds).await.unwrap();
    let signed_in = user.signin(&creds).await.unwrap();
    let other = conn.attach().await.unwrap();
    other.authenticate(signed_in.access.clone()).await.unwrap();
    other.query("RETURN $auth", ()).await.unwrap();

    let pool = Pool::builder(proxy.url()).namespace_database(NS, DB).identity_credentials(Root::new("tracer", ROOT_PASSWORD)).build().await.unwrap();
    for token in [&signed_up.access, &signed_in.access] {
        pool.get_with_token(token.clone()).await.unwrap().query("RETURN $auth", ()).await.unwrap();
    }

    // A reconnect replays the tokens and the remembered credentials.
    let mut events = conn.events();
    proxy.cut();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.unwrap().unwrap();
        if matches!(event, ConnectionEvent::Restored { .. }) {
            break;
        }
    }
    for s in [&root, &user, &other] {
        s.query("RETURN $auth", ()).await.unwrap();
    }
    pool.get_with_token(signed_in.access.clone()).await.unwrap().query("RETURN $auth", ()).await.unwrap();
    pool.get().await.unwrap().query("RETURN 1", ()).await.unwrap();
    let refreshed = user.refresh(&signed_in).await.unwrap();

    let mut secrets = vec![ROOT_PASSWORD.to_owned(), RECORD_PASSWORD.to_owned()];
    for tokens in [&signed_up, &signed_in, &refreshed] {
        secrets.push(tokens.access.as_str().to_owned());
        secrets.extend(tokens.refresh.as_ref().map(|r| r.as_str().to_owned()));
    }
    secrets
}

/// What of `secrets` appears in `captured`, as descriptions that do not print the secret: the
/// secret itself, its hex (either case) or base64 (standard or URL-safe) form, or any 16
/// characters of any of these.
pub fn leaks(captured: &str, secrets: &[String]) -> Vec<String> {
    const WINDOW: usize = 16;
    let mut needles: Vec<(String, String)> = Vec::new(); // (needle, description)
    for (i, secret) in secrets.iter().enumerate() {
        let bytes = secret.as_bytes();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let forms = [
            ("as text", secret.clone()),
            ("in hex", hex.clone()),
            ("in HEX", hex.to_uppercase()),
            ("in base64", base64(bytes, false)),
            ("in URL-safe base64", base64(bytes, true)),
        ];
        let mut distinct = HashSet::new();
        for (form, text) in forms {
            if !distinct.insert(text.clone()) {
                continue; // e.g. URL-safe base64 without `+` or `/`
            }
            let what = format!("secret #{i} ({} chars) {form}", secret.len());
            if text.len() <= WINDOW {
                needles.push((text, what));
            } else {
                for start in 0..=text.len() - WINDOW {
                    needles.push((text[start..start + WINDOW].to_owned(), what.clone()));
                }
            }
        }
    }
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    let windows: HashSet<&str> = needles.iter().filter(|(n, _)| n.len() == WINDOW).map(|(n, _)| n.as_str()).collect();
    let text = captured.as_bytes();
    for start in 0..text.len().saturating_sub(WINDOW - 1) {
        let Ok(window) = std::str::from_utf8(&text[start..start + WINDOW]) else { continue };
        if windows.contains(window) {
            for (needle, what) in &needles {
                if needle == window && seen.insert(what.clone()) {
                    found.push(format!("{what}, at byte {start} of the capture"));
                }
            }
        }
    }
    for (needle, what) in needles.iter().filter(|(n, _)| n.len() < WINDOW) {
        if captured.contains(needle.as_str()) && seen.insert(what.clone()) {
            found.push(what.clone());
        }
    }
    found
}

fn base64(bytes: &[u8], url: bool) -> String {
    let alphabet: &[u8; 64] =
        if url { b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" } else { b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}
