//! Support for the black-box tests in tests/: one way into the running
//! system (`helpers::app()`), shared by the API, store and fault binaries.

pub mod helpers;
