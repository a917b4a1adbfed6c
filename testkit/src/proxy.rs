//! A TCP proxy in front of the real server, for fault injection: cut every connection, stall
//! them (bytes stop flowing both ways, or only from the client: a server that stops reading
//! while it still sends), or refuse new connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A TCP proxy on a free loopback port in front of a server, with faults on demand.
///
/// In a test, put it in front of a [`TestServer`](crate::TestServer) and point the code
/// under test at [`url`](Self::url). Here, in front of a bare TCP listener:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use surreal_pool_testkit::Proxy;
///
/// let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let proxy = Proxy::start(upstream.local_addr().unwrap().port()).await;
/// let mut client = tokio::net::TcpStream::connect(proxy.url().trim_start_matches("ws://")).await.unwrap();
/// let (mut server, _) = upstream.accept().await.unwrap();
///
/// client.write_all(b"ping").await.unwrap();
/// let mut buf = [0u8; 4];
/// server.read_exact(&mut buf).await.unwrap();
/// assert_eq!(&buf, b"ping");
///
/// proxy.cut();
/// assert_eq!(client.read(&mut buf).await.unwrap(), 0, "the client sees the connection end");
/// # }
/// ```
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
}

struct State {
    upstream: Mutex<SocketAddr>,
    refuse: AtomicBool,
    stalled: watch::Sender<bool>,
    /// Bytes from clients are read (up to [`HOLD`]) but not forwarded.
    stalled_upstream: watch::Sender<bool>,
    /// Bytes read from clients so far, all connections together.
    upstream_bytes: watch::Sender<u64>,
    cut: Mutex<CancellationToken>,
    /// Added to every chunk forwarded, in microseconds.
    delay_us: std::sync::atomic::AtomicU64,
}

impl Proxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream_port` on loopback.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// # let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// # let proxy = surreal_pool_testkit::Proxy::start(upstream.local_addr().unwrap().port()).await;
    /// # let mut client = tokio::net::TcpStream::connect(proxy.url().trim_start_matches("ws://")).await.unwrap();
    /// # let (mut server, _) = upstream.accept().await.unwrap();
    /// # let mut buf = [0u8; 4];
    /// client.write_all(b"abcd").await.unwrap();
    /// server.read_exact(&mut buf).await.unwrap();
    /// assert_eq!(&buf, b"abcd");
    /// # }
    /// ```
    pub async fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream: Mutex::new(([127, 0, 0, 1], upstream_port).into()),
            refuse: AtomicBool::new(false),
            stalled: watch::channel(false).0,
            stalled_upstream: watch::channel(false).0,
            upstream_bytes: watch::channel(0).0,
            cut: Mutex::new(CancellationToken::new()),
            delay_us: std::sync::atomic::AtomicU64::new(0),
        });
        let accept_state = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                if accept_state.refuse.load(Ordering::SeqCst) {
                    drop(client); // accepted and closed at once: a refused connection
                    continue;
                }
                let upstream = *accept_state.upstream.lock().unwrap();
                let cut = accept_state.cut.lock().unwrap().clone();
                let stalled = accept_state.stalled.subscribe();
                let state = accept_state.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else { return };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::select! {
                        _ = cut.cancelled() => {}
                        _ = pump(cr, sw, stalled.clone(), state.clone(), true) => {}
                        _ = pump(sr, cw, stalled, state, false) => {}
                    }
                });
            }
        });
        Proxy { addr, state, accept }
    }

    /// `ws://127.0.0.1:<proxy port>`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// # let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// # let proxy = surreal_pool_testkit::Proxy::start(upstream.local_addr().unwrap().port()).await;
    /// # let mut client = tokio::net::TcpStream::connect(proxy.url().trim_start_matches("ws://")).await.unwrap();
    /// # let (mut server, _) = upstream.accept().await.unwrap();
    /// # let mut buf = [0u8; 4];
    /// assert!(proxy.url().starts_with("ws://127.0.0.1:"));
    /// # }
    /// ```
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Closes every open connection (new ones are still accepted).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// # let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// # let proxy = surreal_pool_testkit::Proxy::start(upstream.local_addr().unwrap().port()).await;
    /// # let mut client = tokio::net::TcpStream::connect(proxy.url().trim_start_matches("ws://")).await.unwrap();
    /// # let (mut server, _) = upstream.accept().await.unwrap();
    /// # let mut buf = [0u8; 4];
    /// proxy.cut();
    /// assert_eq!(client.read(&mut buf).await.unwrap(), 0);
    /// let _again = tokio::net::TcpStream::connect(proxy.url().trim_start_matches("ws://")).await.unwrap();
    /// # }
    /// ```
    pub fn cut(&self) {
        let mut cut = self.state.cut.lock().unwrap();
        cut.cancel();
        *cut = CancellationToken::new();
    }

    /// Stops (true) or resumes (false) the flow of bytes on every connection.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// # let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// # let proxy = surreal_pool_testkit::Proxy::start(upstream.local_addr().unwrap().port()).await;
    /// # let mut client = tokio::net::TcpStream::connect(proxy.url().trim_start_matches("ws://")).await.unwrap();
    /// # let (mut server, _) = upstream.accept().await.unwrap();
    /// # let mut buf = [0u8; 4];
    /// proxy.stall(true);
    /// client.write_all(b"held").await.unwrap();
    /// let waited = tokio::time::timeout(std::time::Duration::from_millis(100), server.read_exact(&mut buf)).await;
    /// assert!(waited.is_err(), "nothing arrives while stalled");
    /// proxy.stall(false);
    /// server.read_exact(&mut buf).await.unwrap();
    /// assert_eq!(&buf, b"held");
    /// # }
    /// ```
    pub fn stall(&self, on: bool) {
        self.state.stalled.send_replace(on);
    }

    /// Stops (true) or resumes (false) forwarding bytes from clients to the server, while bytes
    /// from the server keep flowing: a server that stops reading. While stopped, up to [`HOLD`]
    /// bytes per connection are read and held, then nothing more is read, so the client's
    /// writes block once the socket buffers are full.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// # let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// # let proxy = surreal_pool_testkit::Proxy::start(upstream.local_addr().unwrap().port()).await;
    /// # let mut client = tokio::net::TcpStream::connect(proxy.url().trim_start_matches("ws://")).await.unwrap();
    /// # let (mut server, _) = upstream.accept().await.unwrap();
    /// # let mut buf = [0u8; 4];
    /// proxy.stall_upstream(true);
    /// client.write_all(b"held").await.unwrap();
    /// server.write_all(b"back").await.unwrap();
    /// client.read_exact(&mut buf).await.unwrap();
    /// assert_eq!(&buf, b"back", "the server's bytes still flow");
    /// assert!(tokio::time::timeout(std::time::Duration::from_millis(100), server.read_exact(&mut buf)).await.is_err());
    /// # }
    /// ```
    pub fn stall_upstream(&self, on: bool) {
        self.state.stalled_upstream.send_replace(on);
    }

    /// The count of bytes read from clients so far (all connections), to wait on.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// # let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// # let proxy = surreal_pool_testkit::Proxy::start(upstream.local_addr().unwrap().port()).await;
    /// # let mut client = tokio::net::TcpStream::connect(proxy.url().trim_start_matches("ws://")).await.unwrap();
    /// # let (mut server, _) = upstream.accept().await.unwrap();
    /// # let mut buf = [0u8; 4];
    /// let mut read = proxy.upstream_bytes();
    /// client.write_all(b"four").await.unwrap();
    /// read.wait_for(|n| *n >= 4).await.unwrap();
    /// # }
    /// ```
    pub fn upstream_bytes(&self) -> watch::Receiver<u64> {
        self.state.upstream_bytes.subscribe()
    }

    /// Refuses (true) or accepts (false) new connections.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// # let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// # let proxy = surreal_pool_testkit::Proxy::start(upstream.local_addr().unwrap().port()).await;
    /// # let mut client = tokio::net::TcpStream::connect(proxy.url().trim_start_matches("ws://")).await.unwrap();
    /// # let (mut server, _) = upstream.accept().await.unwrap();
    /// # let mut buf = [0u8; 4];
    /// proxy.refuse(true);
    /// let mut refused = tokio::net::TcpStream::connect(proxy.url().trim_start_matches("ws://")).await.unwrap();
    /// assert_eq!(refused.read(&mut buf).await.unwrap(), 0, "accepted and closed at once");
    /// # }
    /// ```
    pub fn refuse(&self, on: bool) {
        self.state.refuse.store(on, Ordering::SeqCst);
    }

    /// Delays every chunk of bytes by `d` in each direction (a slow network).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// # let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// # let proxy = surreal_pool_testkit::Proxy::start(upstream.local_addr().unwrap().port()).await;
    /// # let mut client = tokio::net::TcpStream::connect(proxy.url().trim_start_matches("ws://")).await.unwrap();
    /// # let (mut server, _) = upstream.accept().await.unwrap();
    /// # let mut buf = [0u8; 4];
    /// proxy.delay(std::time::Duration::from_millis(50));
    /// let sent = std::time::Instant::now();
    /// client.write_all(b"slow").await.unwrap();
    /// server.read_exact(&mut buf).await.unwrap();
    /// assert!(sent.elapsed() >= std::time::Duration::from_millis(50));
    /// # }
    /// ```
    pub fn delay(&self, d: std::time::Duration) {
        self.state.delay_us.store(d.as_micros() as u64, Ordering::SeqCst);
    }

    /// Forwards new connections to another port.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// # let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// # let proxy = surreal_pool_testkit::Proxy::start(upstream.local_addr().unwrap().port()).await;
    /// # let mut client = tokio::net::TcpStream::connect(proxy.url().trim_start_matches("ws://")).await.unwrap();
    /// # let (mut server, _) = upstream.accept().await.unwrap();
    /// # let mut buf = [0u8; 4];
    /// let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// proxy.set_upstream(other.local_addr().unwrap().port());
    /// let _next = tokio::net::TcpStream::connect(proxy.url().trim_start_matches("ws://")).await.unwrap();
    /// let (_moved, _) = other.accept().await.unwrap();
    /// # }
    /// ```
    pub fn set_upstream(&self, port: u16) {
        *self.state.upstream.lock().unwrap() = ([127, 0, 0, 1], port).into();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// The most bytes a connection reads and holds from its client while upstream is stalled.
///
/// ```
/// assert_eq!(surreal_pool_testkit::proxy::HOLD, 1 << 20);
/// ```
pub const HOLD: usize = 1 << 20;

async fn pump(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    mut stalled: watch::Receiver<bool>,
    state: Arc<State>,
    upstream: bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut held = Vec::new();
    let mut stalled_upstream = state.stalled_upstream.subscribe();
    loop {
        if upstream && *stalled_upstream.borrow_and_update() {
            if held.len() >= HOLD {
                if stalled_upstream.changed().await.is_err() {
                    return;
                }
                continue;
            }
            tokio::select! {
                read = from.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        held.extend_from_slice(&buf[..n]);
                        state.upstream_bytes.send_modify(|b| *b += n as u64);
                    }
                },
                changed = stalled_upstream.changed() => if changed.is_err() { return },
            }
            continue;
        }
        if !held.is_empty() {
            if to.write_all(&held).await.is_err() {
                return;
            }
            held = Vec::new();
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if upstream {
            state.upstream_bytes.send_modify(|b| *b += n as u64);
        }
        let delay = state.delay_us.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_micros(delay)).await;
        }
        // Hold the bytes while stalled.
        while *stalled.borrow_and_update() {
            if stalled.changed().await.is_err() {
                return;
            }
        }
        if upstream && *stalled_upstream.borrow() {
            held.extend_from_slice(&buf[..n]);
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
