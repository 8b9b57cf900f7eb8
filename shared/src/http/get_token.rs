//! `GET /core/r/api/weChat/getToken`: the token (unless hardened), the page's JS-SDK signature
//! and the cardSign for `chooseInvoice`; a mini program gets its token alone. The hourly
//! schedule and the operator's rotation reach the same function as direct invocations
//! (`direct`).

use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};

use crate::adapters::metrics;
use crate::domain::config::Config;
use crate::domain::input::truncate;
use crate::domain::origin::origin_of;
use crate::http::answer::{answer, Note};
use crate::http::component_authorize::component_authorize;
use crate::http::component_events::component_events;
use crate::http::context::Ctx;
use crate::http::cors;
use crate::http::direct;
use crate::http::endpoint::tenant_or_refuse;
use crate::http::envelope::json_response;
use crate::http::error::ApiError;
use crate::http::paths::{
    COMPONENT_AUTHORIZE, COMPONENT_AUTHORIZED, COMPONENT_EVENTS, GET_TOKEN_PATH,
};
use crate::http::query::{query, route};
use crate::ops::sign_page::{self, seconds_left};
use crate::tenant::{AppRuntime, Deployment};
use crate::token::Mode;

/// Longest page URL accepted for signing.
const MAX_URL: usize = 4096;

/// The get-token function: getToken, and the direct invocations (the schedule, which reaches
/// lambda_http as a pass-through request, and the operator's rotation).
pub async fn get_token(deployment: &Deployment, req: Request) -> Result<Response<Body>, Error> {
    if matches!(req.request_context_ref(), Some(RequestContext::PassThrough)) {
        return direct::invoked(deployment, &req).await;
    }
    if req.raw_http_path() == COMPONENT_EVENTS {
        return component_events(deployment, req).await;
    }
    if [COMPONENT_AUTHORIZE, COMPONENT_AUTHORIZED].contains(&req.raw_http_path()) {
        return component_authorize(deployment, req).await;
    }
    let ctx = Ctx::new(&deployment.config, &req);
    let tenant = tenant_or_refuse!(deployment, &ctx, GET_TOKEN_PATH);
    if let Some(resp) = cors::preflight(&tenant.config, &req, GET_TOKEN_PATH, "GET") {
        return Ok(resp);
    }
    let (result, spent) = metrics::measured(get_token_inner(&tenant, &ctx)).await;
    Ok(answer(
        deployment,
        &tenant,
        GET_TOKEN_PATH,
        &ctx,
        spent,
        result,
    ))
}

async fn get_token_inner(
    app: &AppRuntime,
    ctx: &Ctx<'_>,
) -> Result<(Response<Body>, Note), ApiError> {
    let (mode, url, debug) = parse_get_token(&app.config, ctx.req)?;
    let served = app.tokens.get(mode, &ctx.deadline).await?;
    let body = sign_page::answer(app, &served, &url, debug)?.to_json();
    let note = Note {
        source: Some(served.source.as_str()),
        fault: served.fault.clone().map(|f| ApiError::from(f).errmsg()),
        token_left_secs: seconds_left(app, &served),
    };
    Ok((json_response(StatusCode::OK, body), note))
}

/// Everything getToken checks before any I/O: path, method, query; the mode, the page URL to
/// sign (the configured one when the caller names none), and whether to show what was signed.
pub fn parse_get_token(config: &Config, req: &Request) -> Result<(Mode, String, bool), ApiError> {
    route(req, GET_TOKEN_PATH, Method::GET)?;
    let query = query(req, &["type", "url", "appid", "agentid", "debug"])?;
    // What was signed, for a page of the app (a request from one of its allowed origins) that
    // meets "invalid signature".
    let debug =
        match query.get("debug").copied() {
            None | Some("0") => false,
            Some("1") if cors::allowed_origin(config, req).is_some() => true,
            Some("1") => return Err(ApiError::bad_request(
                "debug: only for a page of one of the app's allowed origins (its Origin header)",
            )),
            Some(_) => return Err(ApiError::bad_request("debug: must be 1 or 0")),
        };
    let mode = match query.get("type").copied() {
        None | Some("auto") => Mode::Auto,
        Some("manual") => Mode::Manual,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "type: must be `auto` or `manual`, not `{}`",
                truncate(other)
            )))
        }
    };
    let url = match query.get("url") {
        None if config.jssdk_url.is_empty() && config.timing.tickets => {
            return Err(ApiError::bad_request(
                "url: required for this app (it has no page URL configured)",
            ))
        }
        None => config.jssdk_url.clone(),
        Some(url) => page_url(config, url)?,
    };
    Ok((mode, url, debug))
}

/// The page URL to sign, as `wx.config` sees it: the query value (percent-decoded once, by the
/// query parsing) up to any `#`, otherwise byte for byte; only for the allowed origins.
fn page_url(config: &Config, url: &str) -> Result<String, ApiError> {
    if url.chars().count() > MAX_URL {
        return Err(ApiError::bad_request(format!(
            "url: longer than {MAX_URL} characters"
        )));
    }
    let page = url.split('#').next().unwrap_or_default();
    let Some(origin) = origin_of(page) else {
        return Err(ApiError::bad_request(format!(
            "url: `{}` is not an http(s) URL (send encodeURIComponent(location.href.split('#')[0]))",
            truncate(page)
        )));
    };
    // The allowed origins are not listed: they are the app's configuration, not the caller's.
    if !config.allowed_origins.contains(&origin) {
        return Err(ApiError::bad_request(format!(
            "url: origin {} is not allowed for this app",
            truncate(&origin)
        )));
    }
    Ok(page.to_string())
}
