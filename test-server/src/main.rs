//! A SurrealDB 3.3.5 server with only the in-memory storage engine, for tests.
fn main() -> std::process::ExitCode {
    surrealdb_server::init(surrealdb_server::core::CommunityComposer())
}
