//! Feature `opentelemetry`: the W3C trace context a request carries, so that the server's
//! per-request span joins the caller's trace.
//!
//! SurrealDB 3.3 reads an optional `trace_context` map of strings in the RPC envelope
//! (`traceparent`, `tracestate`), extracts it with the W3C propagator and makes it the parent
//! of its `surrealdb.rpc/<method>` span. The context is taken where the frame is encoded: on the
//! caller's task for the caller's requests (`Session::call_in`), so it is the caller's span; in
//! the connection's task for what the connection sends by itself (keepalive pings, renewals,
//! the replay after a reconnect, in its `surreal_pool.connection` or `surreal_pool.reconnect`
//! span). A resend after a session renewal reuses the encoded bytes, so it carries the same
//! context.
//!
//! Only ids and the sampling flag travel: a trace context holds nothing secret.

use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The propagation entries of the current context: the current `tracing` span's OpenTelemetry
/// context (through `tracing-opentelemetry`), else OpenTelemetry's own current context (an
/// application that attaches contexts with the OpenTelemetry API directly). Empty when neither
/// has a valid span context: then the envelope gets no `trace_context` at all.
pub(crate) fn current() -> Vec<(&'static str, String)> {
    let cx = tracing::Span::current().context();
    if cx.span().span_context().is_valid() {
        return entries(&cx);
    }
    entries(&opentelemetry::Context::current())
}

/// `traceparent` (and `tracestate` when it is not empty) for `cx`, as the W3C propagator
/// writes them; empty when `cx` has no valid span context.
pub(crate) fn entries(cx: &opentelemetry::Context) -> Vec<(&'static str, String)> {
    if !cx.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut entries = Entries(Vec::with_capacity(2));
    TraceContextPropagator::new().inject_context(cx, &mut entries);
    entries.0
}

/// Collects what the propagator writes; keeps only the two W3C keys, and no empty value.
struct Entries(Vec<(&'static str, String)>);

impl Injector for Entries {
    fn set(&mut self, key: &str, value: String) {
        let key = match key {
            "traceparent" => "traceparent",
            "tracestate" => "tracestate",
            _ => return,
        };
        if !value.is_empty() {
            self.0.push((key, value));
        }
    }
}
