//! Probing an endpoint: does its node serve? A fresh socket must answer an RPC `ping` (through
//! the same path as every call, so a node whose memory guard refuses calls fails), and, when
//! asked, `GET /ready` on the endpoint's host must answer 200 (SurrealDB answers 503 while it
//! starts, and, in a cluster, while its heartbeat is stale). Used by a pool's health supervisor
//! for an ejected node; nothing of a connection is touched.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout, Instant};
use tokio_websockets::Message;

use super::{dial, Config};
use crate::wire::envelope::{self, Incoming};

/// Probes `endpoint`, all of it within `bound`; the time it took, or why it failed.
pub(crate) async fn probe(endpoint: &str, config: &Config, ready: bool, bound: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    let checks = async {
        ping(endpoint, config).await?;
        if ready {
            get_ready(endpoint, config).await?;
        }
        Ok::<_, String>(())
    };
    match timeout(bound, checks).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(reason)) => Err(reason),
        Err(_) => Err(format!("no answer within {bound:?}")),
    }
}

/// An RPC `ping` on a fresh socket, answered without an error.
async fn ping(endpoint: &str, config: &Config) -> Result<(), String> {
    let mut socket = dial(endpoint, config).await.map_err(|e| e.to_string())?;
    let frame = envelope::encode_request(1, "ping", vec![], None).map_err(|e| e.to_string())?;
    socket.send(Message::binary(frame)).await.map_err(|e| e.to_string())?;
    let answer = loop {
        match socket.next().await {
            None => break Err("the socket closed before the ping was answered".to_string()),
            Some(Err(e)) => break Err(e.to_string()),
            Some(Ok(m)) if m.is_close() => break Err("the server closed the socket before it answered the ping".into()),
            Some(Ok(m)) if m.is_binary() => match envelope::decode_response(&m.into_payload().into()) {
                Ok(Incoming::Reply { id: 1, outcome, .. }) => break outcome.map(drop).map_err(|e| format!("the ping was refused: {e}")),
                _ => continue,
            },
            Some(Ok(_)) => continue,
        }
    };
    // Closed in the background, bounded: the answer is what counts.
    tokio::spawn(async move {
        let _ = timeout(Duration::from_secs(1), socket.close()).await;
    });
    answer
}

/// `GET /ready` (next to the endpoint's `/rpc`) answered `200`.
async fn get_ready(endpoint: &str, config: &Config) -> Result<(), String> {
    let (tls, host, port, path) = ready_target(endpoint)?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("GET {path}: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    let status = if tls {
        let connector = super::transport::tls_connector(config).map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let stream = connector.connect(name, tcp).await.map_err(|e| format!("GET {path}: {e}"))?;
        status_of(stream, &request).await?
    } else {
        status_of(tcp, &request).await?
    };
    if status == 200 {
        Ok(())
    } else {
        Err(format!("GET {path} answered {status}"))
    }
}

/// Sends `request` and reads the status code of the answer.
async fn status_of(mut stream: impl AsyncRead + AsyncWrite + Unpin, request: &str) -> Result<u16, String> {
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 1024 {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status(&head).ok_or_else(|| "not an HTTP answer".to_string())
}

/// The status code of an HTTP/1.x status line.
fn parse_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// Where `/ready` is for `endpoint`: TLS or not, host, port, and the path (the endpoint's
/// path with its last `/rpc` replaced, so a prefix behind a reverse proxy is kept).
fn ready_target(endpoint: &str) -> Result<(bool, String, u16, String), String> {
    let uri: http::Uri = endpoint.parse().map_err(|e| format!("`{endpoint}`: {e}"))?;
    let tls = uri.scheme_str() == Some("wss");
    let host = uri.host().ok_or("no host")?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let base = uri.path().strip_suffix("/rpc").unwrap_or(uri.path()).trim_end_matches('/');
    Ok((tls, host, port, format!("{base}/ready")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_is_beside_the_rpc_path() {
        assert_eq!(ready_target("ws://127.0.0.1:8000/rpc").unwrap(), (false, "127.0.0.1".into(), 8000, "/ready".into()));
        assert_eq!(ready_target("wss://db.example/rpc").unwrap(), (true, "db.example".into(), 443, "/ready".into()));
        assert_eq!(ready_target("ws://h:1/db/rpc").unwrap(), (false, "h".into(), 1, "/db/ready".into()));
        assert_eq!(ready_target("ws://[::1]:9/rpc").unwrap().1, "::1");
    }

    #[test]
    fn status_lines_are_read_and_anything_else_is_not_an_answer() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n"), Some(200));
        assert_eq!(parse_status(b"HTTP/1.0 503 Service Unavailable\r\n"), Some(503));
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status(b""), None);
    }
}
