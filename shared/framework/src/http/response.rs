//! `ApiResponse`: a handler's successful answer (status, JSON body, headers
//! such as `Location` and `ETag`), or a text file (the API's reference).

use std::borrow::Cow;

use http::{HeaderName, HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::Value;

/// A successful response: a status, an optional JSON body and extra headers.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// The status to answer with; failures are `ApiError`s, not responses.
    pub status: StatusCode,
    /// The JSON body; `None` sends an empty body (or the [`ApiResponse::text`]).
    pub body: Option<Value>,
    /// A body that is not JSON, with its media type (see [`ApiResponse::text`]).
    pub text: Option<TextBody>,
    /// Headers of this answer; the layer adds the shared ones after.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// A text body that is not JSON: a page, a script, a style sheet, a YAML
/// document. Only the API's reference answers with one.
#[derive(Debug, Clone)]
pub struct TextBody {
    /// Its `Content-Type`.
    pub media_type: &'static str,
    /// The text itself; the files a function serves live as long as it does.
    pub text: Cow<'static, str>,
}

impl ApiResponse {
    /// 200 with `body` as JSON.
    pub fn ok(body: impl Serialize) -> Self {
        Self::with_status(StatusCode::OK, body)
    }

    /// 201 with `body` as JSON and `Location` naming the new resource.
    pub fn created(body: impl Serialize, location: &str) -> Self {
        Self::with_status(StatusCode::CREATED, body).header(http::header::LOCATION, location)
    }

    /// 204 with no body.
    pub fn no_content() -> Self {
        Self { status: StatusCode::NO_CONTENT, body: None, text: None, headers: Vec::new() }
    }

    /// 200 with `text` as a `media_type` body. The layer keeps a
    /// `Content-Security-Policy` such an answer sets (a page that loads its
    /// own scripts needs one of its own); every other security header is the
    /// layer's.
    pub fn text(media_type: &'static str, text: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: StatusCode::OK,
            body: None,
            text: Some(TextBody { media_type, text: text.into() }),
            headers: Vec::new(),
        }
    }

    /// `status` with `body` as JSON; panics if `body` cannot be JSON (say, a
    /// map with non-string keys), which is a bug in the handler's view type.
    pub fn with_status(status: StatusCode, body: impl Serialize) -> Self {
        let body = serde_json::to_value(body).expect("response bodies are plain data and always serialise");
        Self { status, body: Some(body), text: None, headers: Vec::new() }
    }

    /// Marks the representation's version, for `If-Match` on the next update.
    pub fn etag(self, version: u64) -> Self {
        self.header(http::header::ETAG, &format!("\"{version}\""))
    }

    /// Adds a header; a value that is not a valid header value is silently dropped.
    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.push((name, value));
        }
        self
    }
}
