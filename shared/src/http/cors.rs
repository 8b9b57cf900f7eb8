//! CORS, per app: a browser page may call the API only from one of the app's allowed origins.
//! These headers are what the browser sees, behind API Gateway (which has no CORS configuration
//! of its own, so that each app has its origins) as locally.
//!
//! A small module rather than tower-http's `CorsLayer`: the allowed origins are the app's, known
//! only once the request's app is resolved (a registry read the endpoint does anyway), while a
//! layer decides before the handler runs; it would resolve the app twice, for four headers.

use lambda_http::http::header::{self, HeaderValue};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};

use crate::domain::config::Config;
use crate::domain::origin::origin_of;

/// The request's `Origin`, when it is one of the app's allowed origins.
pub fn allowed_origin(config: &Config, req: &Request) -> Option<HeaderValue> {
    let origin = req.headers().get(header::ORIGIN)?;
    let normalized = origin_of(origin.to_str().ok()?)?;
    config
        .allowed_origins
        .contains(&normalized)
        .then(|| origin.clone())
}

/// Adds the CORS headers of an answer to an allowed origin.
pub fn add_headers(config: &Config, req: &Request, resp: &mut Response<Body>) {
    if let Some(origin) = allowed_origin(config, req) {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// Answers a CORS preflight (`OPTIONS` on the path): 204, with the CORS headers only for an
/// allowed origin.
pub fn preflight(
    config: &Config,
    req: &Request,
    path: &str,
    method: &'static str,
) -> Option<Response<Body>> {
    if req.method() != Method::OPTIONS || req.raw_http_path() != path {
        return None;
    }
    let mut resp = Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .expect("static response");
    if let Some(origin) = allowed_origin(config, req) {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(method),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            // `authorization`: the bearer token when the JWT authorizer is on; `idempotency-key`:
            // status changes.
            HeaderValue::from_static("content-type, authorization, idempotency-key"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    Some(resp)
}
