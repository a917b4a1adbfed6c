//! No secret reaches a logger, even with everything at TRACE: a `log` logger of its own
//! (as an application using env_logger or any other `log` backend has) and, bridged from it, a
//! tracing subscriber (as tracing-subscriber's `tracing-log` bridge does). The WebSocket layer
//! must not log frame payloads: they hold passwords (signin) and tokens (authenticate, signin
//! replies). Both loggers are process-wide, so this test has a binary of its own.

mod support;

use std::sync::Mutex;

use log::Log;
use support::secret_flow;

/// Every `log` record, formatted, and then handed to the tracing bridge.
struct Capture {
    bridge: tracing_log::LogTracer,
}

static LOGGED: Mutex<String> = Mutex::new(String::new());

impl Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let line = format!("{} {} {}\n", record.level(), record.target(), record.args());
        LOGGED.lock().unwrap().push_str(&line);
        self.bridge.log(record);
    }

    fn flush(&self) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_logger_or_the_tracing_bridge_at_trace() {
    log::set_boxed_logger(Box::new(Capture { bridge: tracing_log::LogTracer::new() })).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let traced = support::Capture::default();
    let writer = traced.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    log::trace!(target: "canary", "a log record at TRACE");

    let secrets = secret_flow::run().await;

    let logged = LOGGED.lock().unwrap().clone();
    let traced = traced.text();
    assert!(logged.contains("a log record at TRACE"), "the log logger captured records");
    assert!(traced.contains("a log record at TRACE"), "log records reached the tracing subscriber");
    assert!(traced.contains("surreal_pool.request") && traced.contains("surreal_pool.reconnect"), "tracing was captured");
    let leaks = [secret_flow::leaks(&logged, &secrets), secret_flow::leaks(&traced, &secrets)].concat();
    assert!(leaks.is_empty(), "secrets in the logs ({} bytes logged, {} traced): {leaks:#?}", logged.len(), traced.len());
}

#[test]
fn the_leak_search_finds_every_form_and_window() {
    let secrets = vec!["a-secret-of-twenty-four!".to_string()];
    assert!(secret_flow::leaks("nothing to see", &secrets).is_empty());
    assert_eq!(secret_flow::leaks("..a-secret-of-twenty-four!..", &secrets).len(), 1);
    assert_eq!(secret_flow::leaks("xx secret-of-twenty xx", &secrets).len(), 1, "16 characters of it");
    assert_eq!(secret_flow::leaks("payload: 0x612d7365637265742d6f66", &secrets).len(), 1, "hex");
    assert_eq!(secret_flow::leaks("YS1zZWNyZXQtb2YtdHdlbnR5LWZvdXIh", &secrets).len(), 1, "base64");
    assert_eq!(secret_flow::leaks("a-secret-of-twen", &secrets).len(), 1);
    assert!(secret_flow::leaks("a-secret-of-twe", &secrets).is_empty());
}
