//! Turning an endpoint's outcome into the response, and writing the request's one log line.

use lambda_http::http::header::{self, HeaderValue};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};

use crate::adapters::metrics::Spent;
use crate::http::context::Ctx;
use crate::http::cors;
use crate::http::envelope::json_response;
use crate::http::error::ApiError;
use crate::ops::{Payload, Reply};
use crate::tenant::{AppRuntime, Deployment};

/// What one request did, for its log line.
#[derive(Default)]
pub struct Note {
    pub source: Option<&'static str>,
    pub fault: Option<String>,
    /// Seconds the access_token answered keeps working (getToken).
    pub token_left_secs: Option<u64>,
}

/// An operation's reply as a 200 answer, and its note.
pub fn reply(reply: Reply) -> (Response<Body>, Note) {
    let note = Note {
        source: reply.how.as_str(),
        fault: reply.fault,
        token_left_secs: None,
    };
    let resp = match reply.body {
        Payload::Text(text) => json_response(StatusCode::OK, text),
        Payload::Bytes(bytes) => json_response(StatusCode::OK, bytes),
    };
    (resp, note)
}

/// Whether this is the first request of the process (a cold start); `true` once.
pub fn cold_start() -> bool {
    static COLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
    COLD.swap(false, std::sync::atomic::Ordering::Relaxed)
}

/// The answer to `ctx`'s request for `app`, with its log line.
pub fn answer(
    deployment: &Deployment,
    app: &AppRuntime,
    endpoint: &str,
    ctx: &Ctx<'_>,
    spent: Spent,
    result: Result<(Response<Body>, Note), ApiError>,
) -> Response<Body> {
    let cold_start = cold_start();
    let (mut resp, note, errcode, errmsg, detail) = match result {
        Ok((resp, note)) => (resp, note, 0, None, None),
        Err(e) => {
            let (errcode, errmsg) = (e.errcode(), e.errmsg());
            let detail = e.detail().map(str::to_string);
            let resp = e.into_response_for(ctx.request_id);
            (resp, Note::default(), errcode, Some(errmsg), detail)
        }
    };
    // The fields Lambda Powertools users query: correlation_id is API Gateway's request id (what
    // a front-end developer reports, and what 5xx answers name), function_request_id Lambda's.
    // The app as a field, not a metric dimension: 200 apps would be 200 metrics per figure.
    let app_name = app.name();
    tracing::info!(
        endpoint,
        app = app_name,
        correlation_id = ctx.request_id,
        function_request_id = ctx.function_request_id,
        function_name = deployment.function_name.as_deref(),
        cold_start,
        method = %ctx.req.method(),
        status = resp.status().as_u16(),
        errcode,
        errmsg = errmsg.as_deref(),
        detail = detail.as_deref(),
        source = note.source,
        fault = note.fault.as_deref(),
        ms = ctx.started.elapsed().as_millis() as u64,
        metric.requests = 1,
        metric.cold_starts = u64::from(cold_start),
        metric.wechat_ms = spent.wechat_ms,
        metric.wechat_calls = spent.wechat_calls,
        metric.dynamodb_ms = spent.dynamodb_ms,
        metric.dynamodb_calls = spent.dynamodb_calls,
        metric.token_left_secs = note.token_left_secs,
        // A field, not a metric: the alarm's metric filter counts lines at 80 or more.
        wechat_budget_pct = spent.wechat_budget_pct,
        "request"
    );
    // Answers carry tokens, tickets, signatures or a user's invoices: never cached.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    cors::add_headers(&app.config, ctx.req, &mut resp);
    resp
}
