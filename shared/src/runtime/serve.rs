//! The Lambda runtime loop: lambda_http's, with the event first made safe for its conversion
//! into a `Request`, which panics on a query string with characters a URI may not hold, on a body
//! flagged base64 that does not decode, and on a `Host` or `X-Forwarded-Proto` header (or a
//! domain name or stage) that do not make a URL. None reaches the handlers as a panic.

use std::task::{Context, Poll};

use base64::Engine;
use lambda_http::http::header::{self, HeaderName, HeaderValue};
use lambda_http::lambda_runtime::{self, Diagnostic};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Error, IntoResponse, LambdaEvent, Request, Service};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

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
        // lambda_http builds `{x-forwarded-proto}://{host}{/stage}{path}` and unwraps its
        // parse: keep only values that make a URL (neither is used by the handlers).
        let proto = HeaderName::from_static("x-forwarded-proto");
        let proto_ok = |v: &HeaderValue| {
            v.to_str()
                .is_ok_and(|p| p.eq_ignore_ascii_case("http") || p.eq_ignore_ascii_case("https"))
        };
        if !ag.headers.get_all(&proto).iter().all(proto_ok) {
            ag.headers.remove(&proto);
        }
        if !ag
            .headers
            .get_all(header::HOST)
            .iter()
            .all(|v| v.to_str().is_ok_and(authority_ok))
        {
            ag.headers.remove(header::HOST);
        }
        let ctx = &mut ag.request_context;
        if ctx.domain_name.as_deref().is_some_and(|d| !authority_ok(d)) {
            ctx.domain_name = None;
        }
        let stage_ok = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.$".contains(&b))
        };
        if ctx.stage.as_deref().is_some_and(|s| !stage_ok(s)) {
            ctx.stage = Some("$default".into());
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

/// A host, optionally with a port: DNS name characters, or a bracketed IPv6 address.
fn authority_ok(a: &str) -> bool {
    let (host, port) = match a.rsplit_once(':') {
        // A colon inside the host part: an IPv6 address without brackets, refused below.
        Some((h, _)) if !h.ends_with(']') && h.contains(':') => (a, ""),
        Some((h, p)) => (h, p),
        None => (a, ""),
    };
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        // A name whose last label is a number is read as an IPv4 address (WHATWG URL), and
        // refused unless it is one.
        let last = host.trim_end_matches('.').rsplit('.').next().unwrap_or("");
        let numeric = last.bytes().all(|b| b.is_ascii_digit())
            || last.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("0x"));
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && (!numeric || host.parse::<std::net::Ipv4Addr>().is_ok())
    };
    host_ok && port.bytes().all(|b| b.is_ascii_digit()) && port.len() <= 5
}

/// An event as the runtime delivers it, converted exactly as [`run`] converts it.
pub fn request_from_json(json: &str) -> Result<Request, serde_json::Error> {
    let mut event: LambdaRequest = serde_json::from_str(json)?;
    sanitize(&mut event);
    Ok(event.into())
}

/// What a URI path or query may not hold as it is (RFC 3986): everything but letters, digits,
/// the unreserved and reserved characters, and `%`.
const URI_UNSAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@')
    .remove(b'/')
    .remove(b'?')
    .remove(b'%');

/// Whether `b` may stand in a URI path or query as it is: the complement of [`URI_UNSAFE`].
fn uri_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b)
}

fn encode_unsafe(s: &str) -> String {
    utf8_percent_encode(s, URI_UNSAFE).to_string()
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
    fn hostile_host_and_proto_headers_do_not_crash_the_conversion() {
        for (host, proto) in [
            ("h.example.com", "1"),
            ("a host with spaces", "https"),
            ("h.example.com:99999999", "https"),
            ("[::1", "https"),
            ("::1", "http"),
            ("h.example.com", "https://x"),
            ("", ""),
            ("h.example.com/evil?x#y", "HTTPS"),
            ("1.2.3.999", "https"),
            ("a.b.08", "https"),
        ] {
            let mut v: serde_json::Value = serde_json::from_str(&event("a=1", "", false)).unwrap();
            v["headers"]["host"] = host.into();
            v["headers"]["x-forwarded-proto"] = proto.into();
            v["requestContext"]["domainName"] = host.into();
            v["requestContext"]["stage"] = format!("st age{host}").into();
            let req = request_from_json(&v.to_string()).unwrap();
            assert_eq!(req.raw_http_path(), "/p", "{host:?} {proto:?}");
        }
        // Without the guard, lambda_http's own conversion panics on such a header.
        let raw = event("a=1", "", false).replace(
            "\"host\":\"h.example.com\"",
            "\"host\":\"h.example.com\",\"x-forwarded-proto\":\"1\"",
        );
        let unguarded = std::panic::catch_unwind(|| {
            let e: LambdaRequest = serde_json::from_str(&raw).unwrap();
            let _: Request = e.into();
        });
        assert!(
            unguarded.is_err(),
            "lambda_http no longer panics: the guard may go"
        );
        assert!(authority_ok("h.example.com:8080"));
        assert!(authority_ok("[::1]:443"));
        assert!(authority_ok("10.0.0.1:80"));
        assert!(!authority_ok("1.2.3.999"));
        assert!(!authority_ok("a.0x1g"));
        assert!(!authority_ok("a b"));
        assert!(!authority_ok("::1"));
    }

    #[test]
    fn bad_base64_becomes_text_and_good_base64_decodes() {
        let req = request_from_json(&event("", "not base64!", true)).unwrap();
        assert_eq!(req.body().as_ref(), b"not base64!");
        let req = request_from_json(&event("", "eyJhIjoxfQ==", true)).unwrap();
        assert_eq!(req.body().as_ref(), b"{\"a\":1}");
    }
}
