//! The API's reference at the short addresses a person types: the front
//! answers `GET /docs` and `GET /openapi.yaml` with a redirect to the
//! function that serves the reference in the cloud too
//! (`GET /api/v1/docs/{file}`, functions/get-docs), so the local page is the
//! deployed one. The function reads Swagger UI's files from the pinned
//! swagger-ui-dist in `.tools/contract`, named by [`ASSETS_DIR_VARIABLE`].

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// The variable that tells the reference function where Swagger UI's files
/// are (in the cloud they are packaged beside its binary).
pub const ASSETS_DIR_VARIABLE: &str = "REFERENCE_ASSETS_DIR";

/// The redirect for a GET of `path`, if it is one of the short addresses.
pub fn redirect(path: &str) -> Option<Response<Full<Bytes>>> {
    let target = match path {
        "/docs" | "/docs/" => "/api/v1/docs/index.html",
        "/openapi.yaml" => "/api/v1/docs/openapi.yaml",
        _ => return None,
    };
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::FOUND;
    response.headers_mut().insert(http::header::LOCATION, HeaderValue::from_static(target));
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_short_addresses_lead_to_the_reference_function_and_nothing_else_does() {
        let location = |path| redirect(path).map(|r| r.headers()[http::header::LOCATION].to_str().unwrap().to_owned());
        assert_eq!(location("/docs").as_deref(), Some("/api/v1/docs/index.html"));
        assert_eq!(location("/openapi.yaml").as_deref(), Some("/api/v1/docs/openapi.yaml"));
        assert_eq!(location("/docs/swagger-ui.css"), None);
        assert_eq!(location("/api/v1/health"), None);
    }
}
