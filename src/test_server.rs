//! A real SurrealDB server for tests, examples and benchmarks (feature `test-server`).
//!
//! The server binary is built once from the pinned `surrealdb-server` crate (see
//! `test-server/` in the repository) by `scripts/surreal-server.sh`, into a cache outside the
//! repository (`$SURREAL_POOL_CACHE`, default `~/.cache/surreal-pool`). Set `SURREAL_BIN` to use
//! another binary. The first build takes about 20 minutes on two cores; a file lock makes
//! parallel test binaries wait for one build.
//!
//! ```no_run
//! let server = surreal_pool::test_server::TestServer::start().expect("SurrealDB test server");
//! println!("listening on {}", server.url());
//! // The server is killed when `server` is dropped.
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Why the test server could not be provided.
#[derive(Debug, Clone, thiserror::Error)]
#[error("SurrealDB test server: {0}")]
pub struct TestServerError(String);

/// The path of the SurrealDB binary, building it on first use (cached per process).
///
/// ```no_run
/// let path = surreal_pool::test_server::binary().expect("SurrealDB binary");
/// println!("{}", path.display());
/// ```
pub fn binary() -> Result<PathBuf, TestServerError> {
    static BINARY: OnceLock<Result<PathBuf, TestServerError>> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/surreal-server.sh");
            let output = Command::new("bash")
                .arg(&script)
                .stderr(Stdio::inherit()) // build progress goes straight to the terminal
                .output()
                .map_err(|e| TestServerError(format!("could not run {}: {e}", script.display())))?;
            if !output.status.success() {
                return Err(TestServerError(format!("{} failed ({})", script.display(), output.status)));
            }
            let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
            if path.is_file() {
                Ok(path)
            } else {
                Err(TestServerError(format!("{} printed no binary path", script.display())))
            }
        })
        .clone()
}

/// A SurrealDB server process on a loopback port, with root user `root`/`root` and in-memory
/// storage. Killed on drop.
#[derive(Debug)]
pub struct TestServer {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
    env: Vec<(String, String)>,
    /// `--web-crt` and `--web-key` files: the server speaks TLS.
    tls: Option<(PathBuf, PathBuf)>,
}

impl TestServer {
    /// Starts a server on a free port and waits until `/health` answers.
    ///
    /// ```no_run
    /// use surreal_pool::test_server::TestServer;
    /// let server = TestServer::start().expect("SurrealDB test server");
    /// ```
    pub fn start() -> Result<TestServer, TestServerError> {
        Self::start_with_env(&[])
    }

    /// Starts a server with extra environment variables (e.g.
    /// `SURREAL_WEBSOCKET_MAX_ATTACHED_SESSIONS`).
    ///
    /// ```no_run
    /// use surreal_pool::test_server::TestServer;
    /// let server = TestServer::start_with_env(&[("SURREAL_WEBSOCKET_MAX_ATTACHED_SESSIONS", "4")])
    ///     .expect("SurrealDB test server");
    /// ```
    pub fn start_with_env(env: &[(&str, &str)]) -> Result<TestServer, TestServerError> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port()?;
            let mut server = TestServer { child: None, port, log: log_path(port), env: env.clone(), tls: None };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| TestServerError("could not start".into())))
    }

    /// Starts a server that serves TLS with this certificate chain and key (PEM files); its
    /// [`url`](TestServer::url) is then `wss://localhost:<port>`.
    ///
    /// ```no_run
    /// use surreal_pool::test_server::TestServer;
    /// use std::path::Path;
    /// let server = TestServer::start_tls(Path::new("cert.pem"), Path::new("key.pem")).expect("TLS server");
    /// assert!(server.url().starts_with("wss://localhost:"));
    /// ```
    pub fn start_tls(certificate: &Path, key: &Path) -> Result<TestServer, TestServerError> {
        let port = free_port()?;
        let tls = Some((certificate.to_owned(), key.to_owned()));
        let mut server = TestServer { child: None, port, log: log_path(port), env: Vec::new(), tls };
        server.spawn()?;
        Ok(server)
    }

    /// The WebSocket endpoint: `ws://127.0.0.1:<port>`, or `wss://localhost:<port>` with TLS.
    ///
    /// ```no_run
    /// use surreal_pool::test_server::TestServer;
    /// let server = TestServer::start().expect("SurrealDB test server");
    /// assert!(server.url().starts_with("ws://127.0.0.1:"));
    /// ```
    pub fn url(&self) -> String {
        match self.tls {
            None => format!("ws://127.0.0.1:{}", self.port),
            Some(_) => format!("wss://localhost:{}", self.port),
        }
    }

    /// The port the server listens on.
    ///
    /// ```no_run
    /// use surreal_pool::test_server::TestServer;
    /// let server = TestServer::start().expect("SurrealDB test server");
    /// assert!(server.url().ends_with(&format!(":{}", server.port())));
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server process (its in-memory data is lost).
    ///
    /// ```no_run
    /// use surreal_pool::test_server::TestServer;
    /// let mut server = TestServer::start().expect("SurrealDB test server");
    /// server.kill(); // clients now see the connection drop
    /// ```
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`kill`](TestServer::kill)).
    ///
    /// ```no_run
    /// use surreal_pool::test_server::TestServer;
    /// let mut server = TestServer::start().expect("SurrealDB test server");
    /// server.kill();
    /// server.restart().expect("restarted");
    /// ```
    pub fn restart(&mut self) -> Result<(), TestServerError> {
        self.kill();
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), TestServerError> {
        let binary = binary()?;
        let log = std::fs::File::create(&self.log)
            .map_err(|e| TestServerError(format!("could not create {}: {e}", self.log.display())))?;
        let log_err = log.try_clone().map_err(|e| TestServerError(e.to_string()))?;
        let bind = format!("127.0.0.1:{}", self.port);
        let mut command = Command::new(&binary);
        command
            .args(["start", "--user", "root", "--pass", "root", "--bind", &bind, "--no-banner", "--log", "warn", "memory"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        if let Some((crt, key)) = &self.tls {
            command.arg("--web-crt").arg(crt).arg("--web-key").arg(key);
        }
        let child = command.spawn().map_err(|e| TestServerError(format!("could not run {}: {e}", binary.display())))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Err(TestServerError(format!("the server exited ({status}) during start-up:\n{}", self.log_tail())));
            }
            let ready = match self.tls {
                None => health_ok(self.port),
                // Over TLS a plain `GET /health` cannot be read: an accepting listener will do.
                Some(_) => TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_millis(200)).is_ok(),
            };
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(TestServerError(format!("no healthy answer within 30 s:\n{}", self.log_tail())));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn free_port() -> Result<u16, TestServerError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| TestServerError(format!("no free port: {e}")))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| TestServerError(e.to_string()))
}

fn log_path(port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("surreal-pool-server-{}-{port}.log", std::process::id()))
}

/// `GET /health` answers 200.
fn health_ok(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
