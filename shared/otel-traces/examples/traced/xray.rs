//! The traced function with today's exporter: X-Ray subsegments over the
//! daemon's UDP protocol (`TRACING=off` or no daemon address: no tracing).

mod function;

fn main() -> Result<(), lambda_http::Error> {
    function::main(|| {
        framework::aws::xray::init();
        Ok(())
    })
}
