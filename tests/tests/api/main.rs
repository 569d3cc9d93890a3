//! Black-box tests: HTTP against the real function binaries, run by
//! `cargo lambda watch` on the local cloud that `cargo xtask test` starts.

mod auth;
mod caching;
mod catalogue;
mod clients;
mod contract_fuzzing;
mod erasure;
mod flows;
mod health;
mod holdings;
mod mfa;
mod openapi;
mod orders;
mod passwords;
mod rate_limit;
mod reference;
mod relay;
use tests::helpers;
mod http_layer;
mod sample_events;
mod sessions;
mod tokens;
mod users;
mod verification;
