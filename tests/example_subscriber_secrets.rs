//! The subscriber the examples install (`tracing_subscriber::fmt().with_env_filter(..).init()`,
//! which also bridges the `log` crate), at `RUST_LOG=trace`, prints no secret of a full auth
//! flow. `init` is process-wide, so this test has a binary of its own.

mod support;

use support::{secret_flow, Capture};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_subscriber_at_rust_log_trace_prints_no_secret() {
    let printed = Capture::default();
    let writer = printed.clone();
    // As in examples/observability.rs with RUST_LOG=trace.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .init();
    log::trace!(target: "canary", "a log record at TRACE");

    let secrets = secret_flow::run().await;

    let printed = printed.text();
    assert!(printed.contains("a log record at TRACE"), "`log` records are bridged");
    assert!(printed.contains("surreal_pool.request"), "tracing was captured");
    let leaks = secret_flow::leaks(&printed, &secrets);
    assert!(leaks.is_empty(), "secrets in {} bytes printed: {leaks:#?}", printed.len());
}
