//! A real SurrealDB server process for tests: built once from the pinned `surrealdb-server`
//! crate into a cache outside any repository (see [`binary`]), started on a free loopback port,
//! killed on drop.
//!
//! ```no_run
//! let server = surreal_pool_testkit::TestServer::start().expect("SurrealDB test server");
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

/// A recipe of the test server: a cargo project wrapping the pinned `surrealdb-server` crate
/// with in-memory storage only (manifest, lock file, main). Shipped inside this crate, so that
/// it builds anywhere.
struct Recipe {
    manifest: &'static str,
    lock: &'static str,
    main: &'static str,
}

/// SurrealDB 3.3.5: the default (`SURREAL_VERSION` unset, `3` or `3.3.5`).
const RECIPE_3: Recipe = Recipe {
    manifest: include_str!("../recipe/Cargo.toml.txt"),
    lock: include_str!("../recipe/Cargo.lock.txt"),
    main: include_str!("../recipe/main.rs.txt"),
};

/// SurrealDB 4.0.0-beta.1 (`SURREAL_VERSION=4` or `4.0.0-beta.1`).
const RECIPE_4: Recipe = Recipe {
    manifest: include_str!("../recipe-4/Cargo.toml.txt"),
    lock: include_str!("../recipe-4/Cargo.lock.txt"),
    main: include_str!("../recipe-4/main.rs.txt"),
};

/// The recipe `SURREAL_VERSION` names, as `scripts/surreal-server.sh` reads it.
fn recipe() -> Result<&'static Recipe, TestServerError> {
    match std::env::var("SURREAL_VERSION").as_deref() {
        Err(_) | Ok("" | "3" | "3.3" | "3.3.5") => Ok(&RECIPE_3),
        Ok("4" | "4.0" | "4.0.0-beta.1") => Ok(&RECIPE_4),
        Ok(other) => Err(TestServerError(format!("SURREAL_VERSION={other}: unknown (known: 3.3.5, 4.0.0-beta.1)"))),
    }
}

/// The path of the SurrealDB binary, building it on first use (cached on disk, and per process).
///
/// `SURREAL_BIN` names a binary to use instead. Otherwise `SURREAL_VERSION` picks the recipe:
/// unset (or `3`, `3.3.5`) the default SurrealDB 3.3.5, `4` (or `4.0.0-beta.1`) SurrealDB
/// 4.0.0-beta.1; and the binary is `<cache>/bin/surreal-<version>-<key>`, where `<cache>` is `$SURREAL_POOL_CACHE`, else
/// `$XDG_CACHE_HOME/surreal-pool`, else `~/.cache/surreal-pool`, and `<key>` hashes the recipe,
/// so a changed recipe builds anew. A missing binary is built with `cargo build --release
/// --locked` (about 20 minutes on two cores; progress on stderr) under a file lock, so that
/// parallel test binaries wait for one build. `scripts/surreal-server.sh` in the repository
/// does the same from a shell.
///
/// ```no_run
/// let path = surreal_pool_testkit::binary().expect("SurrealDB binary");
/// println!("{}", path.display());
/// ```
pub fn binary() -> Result<PathBuf, TestServerError> {
    static BINARY: OnceLock<Result<PathBuf, TestServerError>> = OnceLock::new();
    BINARY.get_or_init(build).clone()
}

fn build() -> Result<PathBuf, TestServerError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| TestServerError(format!("{what}: {e}"));
    if let Some(bin) = std::env::var_os("SURREAL_BIN") {
        let bin = PathBuf::from(bin);
        return if bin.is_file() { Ok(bin) } else { Err(TestServerError(format!("SURREAL_BIN={} is not a file", bin.display()))) };
    }
    let cache = match (std::env::var_os("SURREAL_POOL_CACHE"), std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME")) {
        (Some(dir), ..) => PathBuf::from(dir),
        (None, Some(xdg), _) => PathBuf::from(xdg).join("surreal-pool"),
        (None, None, Some(home)) => PathBuf::from(home).join(".cache/surreal-pool"),
        (None, None, None) => return Err(TestServerError("no cache directory: set SURREAL_POOL_CACHE".into())),
    };
    let recipe = recipe()?;
    let key = recipe_key(recipe);
    let version = recipe
        .manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \"").and_then(|v| v.strip_suffix('"')))
        .unwrap_or("unknown");
    let bin = cache.join("bin").join(format!("surreal-{version}-{key}"));
    if bin.is_file() {
        return Ok(bin);
    }
    std::fs::create_dir_all(cache.join("bin")).map_err(|e| fail("could not create the cache", &e))?;
    let lock = std::fs::File::create(cache.join("build.lock")).map_err(|e| fail("could not create the build lock", &e))?;
    eprintln!("surreal-pool-testkit: waiting for the test-server build lock ({})", cache.join("build.lock").display());
    lock.lock().map_err(|e| fail("could not take the build lock", &e))?;
    if bin.is_file() {
        return Ok(bin); // built by another process meanwhile
    }
    eprintln!("surreal-pool-testkit: building the SurrealDB {version} test server into {} (about 20 minutes on 2 cores, once)", cache.display());
    let project = cache.join(format!("recipe-{key}"));
    std::fs::create_dir_all(project.join("src")).map_err(|e| fail("could not write the recipe", &e))?;
    for (name, text) in [("Cargo.toml", recipe.manifest), ("Cargo.lock", recipe.lock), ("src/main.rs", recipe.main)] {
        std::fs::write(project.join(name), text).map_err(|e| fail("could not write the recipe", &e))?;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(project.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", cache.join("target"))
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| fail("could not run cargo", &e))?;
    if !status.success() {
        return Err(TestServerError(format!("building the test server failed ({status}); see the output above")));
    }
    let tmp = bin.with_extension("tmp");
    std::fs::copy(cache.join("target/release/surreal"), &tmp).map_err(|e| fail("could not copy the built server", &e))?;
    std::fs::rename(&tmp, &bin).map_err(|e| fail("could not install the built server", &e))?;
    eprintln!("surreal-pool-testkit: test server ready: {}", bin.display());
    Ok(bin)
}

/// The version of the test server's binary ([`binary`]), as `surreal version` prints it:
/// `3.3.5`, `4.0.0-beta.1` (the server's `version` RPC answers it with a `surrealdb-` prefix).
///
/// ```no_run
/// let version = surreal_pool_testkit::binary_version().expect("SurrealDB binary");
/// println!("testing against SurrealDB {version}");
/// ```
pub fn binary_version() -> Result<String, TestServerError> {
    let binary = binary()?;
    let out = Command::new(&binary)
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| TestServerError(format!("could not run {} version: {e}", binary.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // `3.3.5 for linux on x86_64`
    match text.split_whitespace().next() {
        Some(version) if out.status.success() => Ok(version.to_owned()),
        _ => Err(TestServerError(format!("`{} version` printed no version ({}): {text}", binary.display(), out.status))),
    }
}

/// The first 16 hex digits of the SHA-256 of the recipe (manifest, lock file, main), as
/// `scripts/surreal-server.sh` computes it.
fn recipe_key(recipe: &Recipe) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for part in [recipe.manifest, recipe.lock, recipe.main] {
        hash.update(part.as_bytes());
    }
    hash.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
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
    /// use surreal_pool_testkit::TestServer;
    /// let server = TestServer::start().expect("SurrealDB test server");
    /// ```
    pub fn start() -> Result<TestServer, TestServerError> {
        Self::start_with_env(&[])
    }

    /// Starts a server with extra environment variables (e.g.
    /// `SURREAL_WEBSOCKET_MAX_ATTACHED_SESSIONS`).
    ///
    /// ```no_run
    /// use surreal_pool_testkit::TestServer;
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
    /// use surreal_pool_testkit::TestServer;
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
    /// use surreal_pool_testkit::TestServer;
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
    /// use surreal_pool_testkit::TestServer;
    /// let server = TestServer::start().expect("SurrealDB test server");
    /// assert!(server.url().ends_with(&format!(":{}", server.port())));
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server process (its in-memory data is lost).
    ///
    /// ```no_run
    /// use surreal_pool_testkit::TestServer;
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
    /// use surreal_pool_testkit::TestServer;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// CI's server: the default recipe is SurrealDB 3.3.5, and the 4.0 one 4.0.0-beta.1.
    #[test]
    fn the_recipes_pin_the_versions_they_are_named_for() {
        assert!(RECIPE_3.manifest.contains("surrealdb-server = { version = \"=3.3.5\""));
        assert!(RECIPE_4.manifest.contains("surrealdb-server = { version = \"=4.0.0-beta.1\""));
        assert!(RECIPE_4.main.contains("#![recursion_limit = \"256\"]"));
        for (recipe, version) in [(&RECIPE_3, "3.3.5"), (&RECIPE_4, "4.0.0-beta.1")] {
            assert!(recipe.manifest.contains(&format!("version = \"{version}\"")));
            assert!(recipe.lock.contains(&format!("name = \"surrealdb-server\"\nversion = \"{version}\"")));
        }
        assert_ne!(recipe_key(&RECIPE_3), recipe_key(&RECIPE_4));
    }
}
