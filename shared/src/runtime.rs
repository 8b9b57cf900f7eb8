//! The Lambda runtime loop: lambda_http's, with the event first made safe for its conversion
//! into a `Request`, which panics on a query string with characters a URI may not hold and on a
//! body flagged base64 that does not decode. Neither reaches the handlers as a panic.

use std::task::{Context, Poll};

use base64::Engine;
use lambda_http::lambda_runtime::{self, Diagnostic};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Error, IntoResponse, LambdaEvent, Request, Service};

/// `lambda_http::run`, with [`sanitize`] applied to every event.
pub async fn run<'a, R, S, E>(handler: S) -> Result<(), Error>
where
    S: Service<Request, Response = R, Error = E>,
    S::Future: Send + 'a,
    R: IntoResponse,
    E: std::fmt::Debug + Into<Diagnostic>,
{
    lambda_runtime::run(Sanitized(Adapter::from(handler))).await
}

struct Sanitized<S>(S);

impl<S> Service<LambdaEvent<LambdaRequest>> for Sanitized<S>
where
    S: Service<LambdaEvent<LambdaRequest>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut event: LambdaEvent<LambdaRequest>) -> Self::Future {
        sanitize(&mut event.payload);
        self.0.call(event)
    }
}

/// Percent-encodes what a URI may not hold in the raw path and query (their decoded values are
/// unchanged), and turns a body flagged base64 that does not decode into plain text, which the
/// handlers then refuse as "not a JSON object" (base64 text never starts with `{`).
pub fn sanitize(event: &mut LambdaRequest) {
    if let LambdaRequest::ApiGatewayV2(ag) = event {
        for part in [&mut ag.raw_path, &mut ag.raw_query_string]
            .into_iter()
            .flatten()
        {
            if part.bytes().any(|b| !uri_safe(b)) {
                *part = encode_unsafe(part);
            }
        }
        if ag.is_base64_encoded {
            let decodes = ag
                .body
                .as_deref()
                .is_none_or(|b| base64::engine::general_purpose::STANDARD.decode(b).is_ok());
            if !decodes {
                ag.is_base64_encoded = false;
            }
        }
    }
}

/// An event as the runtime delivers it, converted exactly as [`run`] converts it.
pub fn request_from_json(json: &str) -> Result<Request, serde_json::Error> {
    let mut event: LambdaRequest = serde_json::from_str(json)?;
    sanitize(&mut event);
    Ok(event.into())
}

/// Characters allowed in a URI path or query (RFC 3986), `%` included.
fn uri_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b)
}

fn encode_unsafe(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if uri_safe(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::RequestExt;

    fn event(query: &str, body: &str, b64: bool) -> String {
        serde_json::json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/p", "rawQueryString": query,
            "headers": {"host": "h.example.com"},
            "requestContext": {"http": {"method": "POST", "path": "/p"}, "stage": "$default",
                "accountId": "1", "apiId": "a", "domainName": "h.example.com", "requestId": "r",
                "routeKey": "$default", "time": "t", "timeEpoch": 0},
            "body": body, "isBase64Encoded": b64
        })
        .to_string()
    }

    #[test]
    fn query_with_characters_a_uri_cannot_hold_keeps_its_values() {
        let req = request_from_json(&event("type=<a b>&x=\"{|}\"&y=中", "", false)).unwrap();
        let q = req.query_string_parameters();
        assert_eq!(q.first("type"), Some("<a b>"));
        assert_eq!(q.first("x"), Some("\"{|}\""));
        assert_eq!(q.first("y"), Some("中"));
        // Unchanged when already safe.
        let req = request_from_json(&event("token=a%2Bb&type=auto", "", false)).unwrap();
        assert_eq!(req.query_string_parameters().first("token"), Some("a+b"));
    }

    #[test]
    fn bad_base64_becomes_text_and_good_base64_decodes() {
        let req = request_from_json(&event("", "not base64!", true)).unwrap();
        assert_eq!(req.body().as_ref(), b"not base64!");
        let req = request_from_json(&event("", "eyJhIjoxfQ==", true)).unwrap();
        assert_eq!(req.body().as_ref(), b"{\"a\":1}");
    }
}
