//! The HTTP layer every API function runs behind: one place for the error
//! envelope, status mapping, security headers, CORS, body limits, strict
//! JSON, authentication and role checks, time budgets, caching headers and
//! validators, request logging and metrics.

mod auth;
mod caching;
mod client_ip;
mod commit;
mod error;
pub mod headers;
mod request;
mod response;
mod server;

pub use auth::{Authenticator, needs_current_account};
pub use caching::{CachePolicy, PublicCache};
pub use client_ip::ClientIp;
pub use commit::{Commit, CommitState};
pub use error::{ApiError, FieldProblem, InvalidFields};
pub use headers::Cors;
pub use request::{ApiRequest, IfMatch};
pub use response::{ApiResponse, TextBody};
pub use server::{Access, HttpServer};
