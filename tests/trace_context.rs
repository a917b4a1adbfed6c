//! Traces that reach into the database (feature `opentelemetry`): a request made in a span
//! carries that span's W3C trace context, and SurrealDB's own per-request span joins the trace.
//!
//! End to end: the test server runs with its OTLP exporter (`SURREAL_TELEMETRY_PROVIDER=otlp`,
//! gRPC) pointed at a small OTLP/gRPC receiver in this test; the client's spans get their ids
//! from an OpenTelemetry tracer behind `tracing-opentelemetry`. One test: the tracing
//! subscriber is process-global.

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use opentelemetry::trace::{SpanId, TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use prost::Message;
use support::secret_flow;
use support::{record, SCHEMA};
use surreal_pool::{Connection, Root};
use surreal_pool_testkit::TestServer;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

const TRACE_SERVICE: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const RECORD_PASSWORD: &str = "Record-Passw0rd-of-the-otel-test-3f7e91ac";

/// What the server exported: each request's path and body (a gRPC message frame).
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, Bytes)>>>);

impl Received {
    /// Every span in the trace exports so far.
    fn spans(&self) -> Vec<Span> {
        let mut spans = Vec::new();
        for (path, body) in self.0.lock().unwrap().iter() {
            if path != TRACE_SERVICE {
                continue; // the server exports metrics (and logs) to the same endpoint
            }
            assert!(body.len() >= 5, "a gRPC message has a 5-byte prefix: {} bytes", body.len());
            assert_eq!(body[0], 0, "an uncompressed message");
            let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
            let request = ExportTraceServiceRequest::decode(&body[5..5 + len]).expect("an ExportTraceServiceRequest");
            for resource in request.resource_spans {
                for scope in resource.scope_spans {
                    spans.extend(scope.spans);
                }
            }
        }
        spans
    }

    /// Everything received, as (lossy) text, for the secrets check.
    fn text(&self) -> String {
        self.0.lock().unwrap().iter().map(|(_, body)| String::from_utf8_lossy(body).into_owned()).collect()
    }

    /// Waits (bounded) until `found` picks something out of the spans exported so far.
    async fn wait_for<T>(&self, what: &str, found: impl Fn(&[Span]) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(t) = found(&self.spans()) {
                return t;
            }
            let names: Vec<String> = self.spans().iter().map(|s| s.name.clone()).collect();
            assert!(Instant::now() < deadline, "no {what} exported within 30 s; exported: {names:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// An OTLP/gRPC receiver on a loopback port (HTTP/2 without TLS, as the exporter speaks to an
/// `http://` endpoint): keeps each request's body and answers every export with an empty
/// response message (gRPC frame of length 0, `grpc-status: 0` in the trailers).
async fn receiver() -> (std::net::SocketAddr, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Received::default();
    let keep = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let keep = keep.clone();
            let service = hyper::service::service_fn(move |request| export(request, keep.clone()));
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new()).serve_connection(io, service).await;
            });
        }
    });
    (addr, received)
}

type Body = StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// One export: the body kept, an empty `Export*ServiceResponse` answered.
async fn export(request: hyper::Request<hyper::body::Incoming>, keep: Received) -> Result<hyper::Response<Body>, hyper::Error> {
    let path = request.uri().path().to_owned();
    let body = request.into_body().collect().await?.to_bytes();
    keep.0.lock().unwrap().push((path, body));
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let frames = vec![Ok(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))), Ok(Frame::trailers(trailers))];
    let mut response = hyper::Response::new(StreamBody::new(futures_util::stream::iter(frames)));
    response.headers_mut().insert("content-type", http::HeaderValue::from_static("application/grpc"));
    Ok(response)
}

/// The client side's finished spans (only to look for secrets in them: the ids come from
/// the tracer either way).
#[derive(Clone, Debug, Default)]
struct Finished(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Finished {
    async fn export(&self, batch: Vec<SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

fn ids(span: &tracing::Span) -> (TraceId, SpanId) {
    let cx = span.context();
    let ids = cx.span().span_context().clone();
    assert!(ids.is_valid(), "the client span has OpenTelemetry ids");
    (ids.trace_id(), ids.span_id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_span_for_a_request_is_a_child_of_the_callers_span() {
    let finished = Finished::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(finished.clone()).build();
    let subscriber = tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("surreal-pool-test")));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber in this binary");

    let (otlp, received) = receiver().await;
    let endpoint = format!("http://{otlp}");
    let server = TestServer::start_with_env(&[
        ("SURREAL_TELEMETRY_PROVIDER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        // The batch span processor exports every 5 s by default.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let conn = Connection::connect(server.url()).await.expect("connect");
    let admin = conn.attach().await.unwrap();
    admin.signin(&Root::new("root", "root")).await.unwrap();
    admin.query(SCHEMA, ()).await.unwrap().check().unwrap();

    // A handler's work under a span: a signup (a password), an authenticate (a token), a query.
    let handler = tracing::info_span!("handler");
    let (trace_id, handler_id) = ids(&handler);
    let user = conn.attach().await.unwrap();
    let tokens = async {
        let tokens = user.signup(&record("account", "otel@example.com", RECORD_PASSWORD)).await.unwrap();
        user.authenticate(tokens.access.clone()).await.unwrap();
        user.query("RETURN 1", ()).await.unwrap();
        tokens
    }
    .instrument(handler.clone())
    .await;
    // And one request outside any span.
    admin.version().await.unwrap();

    // The server's spans for the three requests are in the handler's trace, children of the
    // handler's span (not of a span of the server's own, nor a new trace).
    let ours = received
        .wait_for("server span for each of signup, authenticate and query in the handler's trace", |spans| {
            let ours: Vec<Span> = spans.iter().filter(|s| s.trace_id == trace_id.to_bytes()).cloned().collect();
            let names = ["surrealdb.rpc/signup", "surrealdb.rpc/authenticate", "surrealdb.rpc/query"];
            names.iter().all(|n| ours.iter().any(|s| s.name == *n)).then_some(ours)
        })
        .await;
    for span in ours.iter().filter(|s| s.name.starts_with("surrealdb.rpc/")) {
        assert_eq!(span.parent_span_id, handler_id.to_bytes(), "{} is a child of the handler's span", span.name);
        assert_eq!(span.kind, SpanKind::Server as i32, "{}", span.name);
    }
    // The one outside any span is the root of a trace of its own.
    let version = received
        .wait_for("server span for `version`", |spans| spans.iter().find(|s| s.name == "surrealdb.rpc/version").cloned())
        .await;
    assert!(version.parent_span_id.is_empty(), "a root span: {:?}", version.parent_span_id);
    assert_ne!(version.trace_id, trace_id.to_bytes());

    // Nothing secret in what the server exported for these requests, nor in any of the
    // client's spans (attributes and events), through a full auth flow with a reconnect.
    let mut secrets = vec![RECORD_PASSWORD.to_owned(), tokens.access.as_str().to_owned()];
    secrets.extend(tokens.refresh.as_ref().map(|r| r.as_str().to_owned()));
    let leaks = secret_flow::leaks(&received.text(), &secrets);
    assert!(leaks.is_empty(), "in the server's spans: {leaks:?}");
    let flow = tracing::info_span!("secret flow");
    secrets.extend(secret_flow::run().instrument(flow).await);
    drop(handler);
    provider.force_flush().unwrap();
    let client = format!("{:?}", finished.0.lock().unwrap());
    assert!(client.contains("surreal_pool.request"), "the client's spans were recorded");
    let leaks = secret_flow::leaks(&client, &secrets);
    assert!(leaks.is_empty(), "in the client's spans: {leaks:?}");
}
