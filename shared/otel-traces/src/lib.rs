//! The OpenTelemetry exporter behind [`framework::trace::Exporter`]: the
//! framework's spans (each AWS call, each request or record) as
//! OpenTelemetry spans, sent as OTLP/HTTP (protobuf) to the collector
//! extension Lambda runs beside the function (the ADOT layer, which
//! forwards them to X-Ray), and flushed at the end of every invocation,
//! before Lambda may freeze the process.
//!
//! - Ids are X-Ray's ([`XrayIdGenerator`]: the trace id starts with the
//!   epoch seconds), and the parent is read from the X-Ray trace header
//!   ([`XrayPropagator`]) the framework already carries from the request
//!   through the outbox and SQS, so the propagation does not change.
//! - Sampling stays Lambda's: a span is recorded when the header says
//!   `Sampled=1` (parent-based, nothing sampled at the root), so an
//!   unsampled invocation exports nothing and its spans cost a header parse.
//! - Annotations: `cold_start`, `route` and `outcome`, named in
//!   `aws.xray.annotations` so X-Ray indexes them.
//!
//! Not linked by any function today: docs/architecture.md (Tracing) gives
//! the measurement (`cargo xtask bench-tracing`) and the switch, which is
//! [`init`] in place of `framework::aws::xray::init`.

#![warn(missing_docs)]

use std::time::SystemTime;

use framework::trace::{Call, Exporter, Work};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{Span, SpanKind, Status, Tracer, TracerProvider};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_aws::trace::{XrayIdGenerator, XrayPropagator};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};

/// The collector extension's OTLP/HTTP traces endpoint, unless
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` names another.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4318/v1/traces";

/// The OpenTelemetry exporter: a tracer provider with a batch span
/// processor, flushed per invocation.
pub struct OtelExporter {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: XrayPropagator,
}

/// Installs the OpenTelemetry exporter for `function`, unless `TRACING=off`.
pub fn init(function: &'static str) -> anyhow::Result<()> {
    if std::env::var("TRACING").is_ok_and(|value| value == "off") {
        return Ok(());
    }
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").unwrap_or_else(|_| DEFAULT_ENDPOINT.to_owned());
    framework::trace::install(Box::new(OtelExporter::new(function, &endpoint)?));
    Ok(())
}

impl OtelExporter {
    /// An exporter for `function` sending OTLP/HTTP to `endpoint`.
    pub fn new(function: &'static str, endpoint: &str) -> anyhow::Result<Self> {
        let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().with_endpoint(endpoint).build()?;
        Ok(Self::with_exporter(function, exporter))
    }

    /// An exporter for `function` over any span exporter (tests use an in-memory one).
    pub fn with_exporter(
        function: &'static str,
        exporter: impl opentelemetry_sdk::trace::SpanExporter + 'static,
    ) -> Self {
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_id_generator(XrayIdGenerator::default())
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
            .with_resource(
                Resource::builder_empty()
                    .with_service_name(function)
                    .with_attributes([KeyValue::new("cloud.provider", "aws"), KeyValue::new("faas.name", function)])
                    .build(),
            )
            .build();
        let tracer = provider.tracer("shop");
        Self { provider, tracer, propagator: XrayPropagator::default() }
    }

    fn parent(&self, trace: &str) -> opentelemetry::Context {
        self.propagator.extract(&TraceHeader(trace))
    }
}

impl Exporter for OtelExporter {
    fn call(&self, trace: &str, call: &Call<'_>) {
        let mut span = self
            .tracer
            .span_builder(format!("{}.{}", call.service, call.operation))
            .with_kind(SpanKind::Client)
            .with_start_time(call.started)
            .with_attributes([
                KeyValue::new("rpc.system", "aws-api"),
                KeyValue::new("rpc.service", call.service.to_owned()),
                KeyValue::new("rpc.method", call.operation.to_owned()),
                KeyValue::new("aws.retries", i64::from(call.attempts.saturating_sub(1))),
                KeyValue::new("outcome", call.outcome.to_owned()),
            ])
            .start_with_context(&self.tracer, &self.parent(trace));
        if call.outcome != "ok" {
            span.set_status(Status::error(call.outcome.to_owned()));
        }
        span.end_with_timestamp(end(call.started, call.took));
    }

    fn work(&self, trace: &str, work: &Work<'_>) {
        let request = work.route.contains(' ');
        let annotations: Vec<StringValue> = ["cold_start", "route", "outcome"].map(StringValue::from).into();
        let mut span = self
            .tracer
            .span_builder(work.route.to_owned())
            .with_kind(if request { SpanKind::Server } else { SpanKind::Consumer })
            .with_start_time(work.started)
            .with_attributes([
                KeyValue::new("faas.coldstart", work.cold_start),
                KeyValue::new("faas.trigger", if request { "http" } else { "pubsub" }),
                KeyValue::new("cold_start", work.cold_start),
                KeyValue::new("route", work.route.to_owned()),
                KeyValue::new("outcome", work.outcome.to_owned()),
                KeyValue::new("aws.xray.annotations", Value::Array(Array::String(annotations))),
            ])
            .start_with_context(&self.tracer, &self.parent(trace));
        if work.fault {
            span.set_status(Status::error(work.outcome.to_owned()));
        }
        span.end_with_timestamp(end(work.started, work.took));
    }

    fn flush(&self) {
        let _ = self.provider.force_flush();
    }
}

fn end(started: SystemTime, took: std::time::Duration) -> SystemTime {
    started + took
}

/// The X-Ray trace header as the one header a propagator reads.
struct TraceHeader<'a>(&'a str);

impl Extractor for TraceHeader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        key.eq_ignore_ascii_case("x-amzn-trace-id").then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec!["x-amzn-trace-id"]
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use opentelemetry_sdk::trace::InMemorySpanExporter;

    use super::*;

    const SAMPLED: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    const UNSAMPLED: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0";

    fn get_item() -> Call<'static> {
        Call {
            service: "DynamoDB",
            operation: "GetItem",
            outcome: "ok",
            attempts: 1,
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(10),
            took: Duration::from_millis(5),
        }
    }

    fn request(cold_start: bool) -> Work<'static> {
        Work {
            function: "get-product",
            route: "GET /products/{id}",
            outcome: "2xx",
            fault: false,
            cold_start,
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(10),
            took: Duration::from_millis(8),
        }
    }

    #[test]
    fn spans_join_the_x_ray_trace_of_the_header_with_its_annotations() {
        let memory = InMemorySpanExporter::default();
        let exporter = OtelExporter::with_exporter("get-product", memory.clone());
        exporter.call(SAMPLED, &get_item());
        exporter.work(SAMPLED, &request(true));
        exporter.flush();
        let spans = memory.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 2);
        for span in &spans {
            assert_eq!(format!("{}", span.span_context.trace_id()), "5759e988bd862e3fe1be46a994272793");
            assert_eq!(format!("{}", span.parent_span_id), "53995c3f42cd8ad8");
        }
        let call = &spans[0];
        assert_eq!(call.name, "DynamoDB.GetItem");
        assert_eq!(call.end_time, SystemTime::UNIX_EPOCH + Duration::from_millis(10_005));
        let work = &spans[1];
        let attribute = |key: &str| work.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.clone());
        assert_eq!(attribute("cold_start"), Some(Value::Bool(true)));
        assert_eq!(attribute("route"), Some(Value::from("GET /products/{id}")));
        assert_eq!(attribute("outcome"), Some(Value::from("2xx")));
        assert!(matches!(attribute("aws.xray.annotations"), Some(Value::Array(_))));
    }

    #[test]
    fn an_unsampled_invocation_exports_nothing() {
        let memory = InMemorySpanExporter::default();
        let exporter = OtelExporter::with_exporter("get-product", memory.clone());
        exporter.call(UNSAMPLED, &get_item());
        exporter.work(UNSAMPLED, &request(false));
        exporter.flush();
        assert!(memory.get_finished_spans().unwrap().is_empty());
    }
}
