//! The traced function with the OpenTelemetry exporter: OTLP/HTTP to the
//! collector extension, flushed at the end of each invocation.

mod function;

fn main() -> Result<(), lambda_http::Error> {
    function::main(|| otel_traces::init(function::NAME))
}
