//! Opening a socket: TCP, TLS, the WebSocket upgrade with the `cbor` subprotocol.

use std::sync::Arc;

use tokio::time::timeout;

use super::builder::Config;
use crate::error::{Error, Result};

/// A rustls connector trusting the public web roots plus the configured ones.
pub(super) fn tls_connector(config: &Config) -> Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in &config.root_certificates {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| Error::InvalidArgument(format!("a root certificate could not be used: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidArgument(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(tls)))
}

pub(crate) type Socket = tokio_websockets::WebSocketStream<tokio_websockets::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a socket to `endpoint`: TCP (every resolved address in turn, Nagle off), TLS for
/// `wss://`, then the WebSocket upgrade asking for the `cbor` subprotocol; all bounded by the
/// connect timeout. Messages (and frames) from the server above `max_message_size` end the
/// socket.
pub(crate) async fn dial(endpoint: &str, config: &Config) -> Result<Socket> {
    // The io / TLS / WebSocket error is kept as the `source()`.
    fn failed<E: std::error::Error + Send + Sync + 'static>(endpoint: &str) -> impl FnOnce(E) -> Error + '_ {
        move |e| Error::Connect { endpoint: endpoint.to_owned(), reason: e.to_string(), source: Some(Box::new(e)) }
    }
    let invalid = |e: &dyn std::fmt::Display| Error::InvalidUrl(format!("`{endpoint}`: {e}"));
    let uri: http::Uri = endpoint.parse().map_err(|e| invalid(&e))?;
    let tls = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(invalid(&"unsupported scheme (use ws:// or wss://)")),
    };
    // `Uri::host` keeps the brackets of an IPv6 literal; neither DNS nor TLS wants them.
    let host = uri.host().ok_or_else(|| invalid(&"no host"))?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let connector = if tls { tokio_websockets::Connector::Rustls(tls_connector(config)?) } else { tokio_websockets::Connector::Plain };
    let client = tokio_websockets::ClientBuilder::from_uri(uri)
        .add_header(http::header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static("cbor"))
        .map_err(failed(endpoint))?
        .limits(tokio_websockets::Limits::default().max_payload_len(Some(config.max_message_size)));
    let open = async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(failed(endpoint))?;
        let _ = tcp.set_nodelay(true);
        let stream = connector.wrap(&host, tcp).await.map_err(failed(endpoint))?;
        client.connect_on(stream).await.map_err(failed(endpoint))
    };
    let (socket, response) =
        timeout(config.connect_timeout, open).await.map_err(|_| Error::Timeout { what: "connect", after: config.connect_timeout })??;
    let protocol = response.headers().get(http::header::SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok());
    if protocol != Some("cbor") {
        return Err(Error::Connect {
            endpoint: endpoint.to_owned(),
            reason: format!("the server did not accept the `cbor` subprotocol (answered {protocol:?}); is it SurrealDB 3.x or 4.x?"),
            source: None,
        });
    }
    Ok(socket)
}
