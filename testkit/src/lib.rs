//! Test a multi-tenant SurrealDB service the way it will run: against a **real SurrealDB
//! server**, with **network faults** injected between your code and it.
//!
//! * [`TestServer`]: a SurrealDB 3.3.5 process on a free loopback port (root `root`/`root`,
//!   in-memory storage), built once from the pinned `surrealdb-server` crate into a cache outside
//!   your repository ([`binary`]; about 20 minutes on two cores the first time), killed on drop.
//!   `SURREAL_VERSION=4` builds and runs SurrealDB 4.0.0-beta.1 instead, `SURREAL_BIN` a binary
//!   you have.
//! * [`Proxy`]: a TCP proxy to put in front of it: cut every connection, stall both directions
//!   or only the client's (a server that stops reading while it still sends), refuse new
//!   connections, delay every chunk, or switch the upstream (a failover).
//! * [`FakeServer`]: a scripted WebSocket server for what a real server cannot be made to do
//!   (malformed frames, foreign session labels, floods, silence).
//!
//! ```no_run
//! # async fn demo() {
//! use surreal_pool_testkit::{Proxy, TestServer};
//! let server = TestServer::start().expect("SurrealDB test server");
//! let proxy = Proxy::start(server.port()).await;
//! // Point the code under test at `proxy.url()`, then:
//! proxy.cut(); // every open connection drops; new ones are accepted
//! proxy.stall(true); // bytes stop flowing both ways
//! proxy.stall(false);
//! # }
//! ```

#![warn(missing_docs)]

pub mod fake;
pub mod proxy;
mod server;

pub use fake::FakeServer;
pub use proxy::Proxy;
pub use server::{binary, binary_version, TestServer, TestServerError};
