//! `POST /core/r/api/weChat/component/events` (get-token): a third-party platform's
//! authorization-event URL (授权事件接收URL). WeChat's push is answered `success` (plain text)
//! once handled; a refused one gets a 4xx in the envelope and changes nothing (WeChat retries
//! its own pushes, which then succeed; nobody else's push gets in).

use lambda_http::http::{header, Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};

use crate::adapters::metrics;
use crate::http::answer::{answer, Note};
use crate::http::context::Ctx;
use crate::http::error::ApiError;
use crate::http::paths::COMPONENT_EVENTS;
use crate::http::query::{query, route};
use crate::ops::component_events::{self, Handled, Signed};
use crate::tenant::Deployment;

/// The query WeChat signs a push with (`openid` comes with messages for authorized accounts).
const PARAMS: [&str; 6] = [
    "signature",
    "timestamp",
    "nonce",
    "encrypt_type",
    "msg_signature",
    "openid",
];

pub async fn component_events(
    deployment: &Deployment,
    req: Request,
) -> Result<Response<Body>, Error> {
    let ctx = Ctx::new(&deployment.config, &req);
    let (result, spent) = metrics::measured(inner(deployment, &ctx)).await;
    Ok(answer(
        deployment,
        deployment.own(),
        COMPONENT_EVENTS,
        &ctx,
        spent,
        result,
    ))
}

async fn inner(deployment: &Deployment, ctx: &Ctx<'_>) -> Result<(Response<Body>, Note), ApiError> {
    route(ctx.req, COMPONENT_EVENTS, Method::POST)?;
    let q = query(ctx.req, &PARAMS)?;
    let need = |k: &str| {
        q.get(k)
            .copied()
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .ok_or_else(|| ApiError::bad_request(format!("{k}: required (at most 128 characters)")))
    };
    let signed = Signed {
        timestamp: need("timestamp")?,
        nonce: need("nonce")?,
        msg_signature: need("msg_signature")?,
    };
    if q.get("encrypt_type").is_some_and(|t| *t != "aes") {
        return Err(ApiError::bad_request(
            "encrypt_type: a platform's pushes are aes",
        ));
    }
    let body = ctx.req.body().as_ref();
    if body.len() > deployment.config.limits.max_body_bytes {
        return Err(ApiError::TooLarge(format!(
            "the push is over {} bytes",
            deployment.config.limits.max_body_bytes
        )));
    }
    let body =
        std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the push is not UTF-8"))?;
    let now_secs = deployment.tokens.clock().now_ms() / 1000;
    let handled =
        component_events::handle(deployment, signed, body, now_secs, &ctx.deadline).await?;
    let note = Note {
        source: Some(match handled {
            Handled::TicketKept => "verify_ticket_kept",
            Handled::TicketUnchanged => "verify_ticket_unchanged",
            Handled::Authorized(_) => "account_authorized",
            Handled::AuthorizationRefused(_) => "authorization_refused",
            Handled::Withdrawn(_) => "account_withdrawn",
            Handled::Acknowledged(_) => "acknowledged",
        }),
        fault: None,
        token_left_secs: None,
    };
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from("success"))
        .expect("a plain answer");
    Ok((resp, note))
}
