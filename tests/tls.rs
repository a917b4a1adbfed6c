//! `wss://` against the real server started with a generated certificate.

use surreal_pool_testkit::TestServer;
use surreal_pool::{Connection, Error, Root};

/// A self-signed certificate for `localhost`, written to a temporary directory.
fn certificate() -> (tempdir::Dir, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempdir::Dir::new();
    std::fs::write(dir.path.join("crt.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path.join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
    (dir, cert.cert.pem())
}

mod tempdir {
    pub struct Dir {
        pub path: std::path::PathBuf,
    }
    impl Dir {
        pub fn new() -> Dir {
            let path = std::env::temp_dir().join(format!("surreal-pool-tls-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path).unwrap();
            Dir { path }
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[tokio::test]
async fn wss_with_a_custom_root_certificate() {
    let (dir, pem) = certificate();
    let server = TestServer::start_tls(&dir.path.join("crt.pem"), &dir.path.join("key.pem")).unwrap();
    let conn = Connection::builder(server.url()).add_root_certificates_pem(pem.as_bytes()).connect().await.unwrap();
    let s = conn.session();
    s.signin(&Root::new("root", "root")).await.unwrap();
    let v: String = s.version().await.unwrap();
    assert_eq!(v, format!("surrealdb-{}", surreal_pool_testkit::binary_version().unwrap()));
    assert_eq!(conn.server_version().unwrap().as_str(), v);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_clear_connect_error() {
    let (dir, _) = certificate();
    let server = TestServer::start_tls(&dir.path.join("crt.pem"), &dir.path.join("key.pem")).unwrap();
    match Connection::connect(server.url()).await {
        Err(Error::Connect { reason, .. }) => assert!(reason.to_lowercase().contains("certificate"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_certificate_for_another_name_is_a_clear_connect_error() {
    let (dir, pem) = certificate();
    let server = TestServer::start_tls(&dir.path.join("crt.pem"), &dir.path.join("key.pem")).unwrap();
    // The certificate names `localhost`; 127.0.0.1 is not in it.
    let url = format!("wss://127.0.0.1:{}", server.port());
    match Connection::builder(url).add_root_certificates_pem(pem.as_bytes()).connect().await {
        Err(Error::Connect { reason, .. }) => assert!(reason.to_lowercase().contains("certificate"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_pem_without_a_certificate_is_an_invalid_argument() {
    let r = Connection::builder("wss://localhost:1").add_root_certificates_pem(b"not a pem").connect().await;
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
}
