//! The HTTP layer every API function runs behind: one place for the error
//! envelope, status mapping, security headers, CORS, body limits, strict
//! JSON, authentication and role checks, request logging and metrics.

mod error;
mod headers;
mod request;
mod response;
mod server;

pub use error::ApiError;
pub use headers::Cors;
pub use request::ApiRequest;
pub use response::ApiResponse;
pub use server::{Access, HttpServer};
