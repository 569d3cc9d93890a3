"""The shop's catalogue and order routes written the way a Python team would
write them: Powertools for AWS Lambda (event handler, Logger, Metrics,
Parameters) and boto3, on the same DynamoDB table layout as the Rust
functions. Bench-only: `cargo xtask bench` runs it under awslambdaric
against the same Runtime API emulator as the Rust binaries."""
