//! A third-party platform's authorization, over HTTP (get-token):
//! - `GET /core/r/api/weChat/component/authorize?redirect_uri=…[&auth_type=1|2|3][&biz_appid=…]`,
//!   for the vendor's admin page: a pre-auth code's authorization page, as links (PC and
//!   mobile). `redirect_uri` must be a page of the deployment's allowed origins.
//! - `GET /core/r/api/weChat/component/authorized?auth_code=…[&expires_in=…]`, where WeChat's
//!   page returns the customer: the code exchanged and the account registered (as the
//!   `authorized` push does, whichever comes first).

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde_json::json;

use crate::adapters::metrics;
use crate::domain::apps::check_id;
use crate::domain::component::Offered;
use crate::domain::origin::origin_of;
use crate::http::answer::{answer, Note};
use crate::http::context::Ctx;
use crate::http::envelope::json_response;
use crate::http::error::ApiError;
use crate::http::paths::{COMPONENT_AUTHORIZE, COMPONENT_AUTHORIZED};
use crate::http::query::{query, route};
use crate::ops::component_auth;
use crate::tenant::Deployment;

pub async fn component_authorize(
    deployment: &Deployment,
    req: Request,
) -> Result<Response<Body>, Error> {
    let ctx = Ctx::new(&deployment.config, &req);
    let returning = req.raw_http_path() == COMPONENT_AUTHORIZED;
    let (result, spent) = metrics::measured(async {
        if returning {
            authorized(deployment, &ctx).await
        } else {
            links(deployment, &ctx).await
        }
    })
    .await;
    let path = if returning {
        COMPONENT_AUTHORIZED
    } else {
        COMPONENT_AUTHORIZE
    };
    Ok(answer(
        deployment,
        deployment.own(),
        path,
        &ctx,
        spent,
        result,
    ))
}

fn note(source: &'static str) -> Note {
    Note {
        source: Some(source),
        fault: None,
        token_left_secs: None,
    }
}

async fn links(deployment: &Deployment, ctx: &Ctx<'_>) -> Result<(Response<Body>, Note), ApiError> {
    route(ctx.req, COMPONENT_AUTHORIZE, Method::GET)?;
    let q = query(ctx.req, &["redirect_uri", "auth_type", "biz_appid"])?;
    let redirect = q
        .get("redirect_uri")
        .copied()
        .filter(|r| !r.is_empty() && r.len() <= 1024)
        .ok_or_else(|| {
            ApiError::bad_request(
                "redirect_uri: required (the page WeChat returns the customer to)",
            )
        })?;
    // WeChat's page sends the customer there with the auth_code: the deployment's pages only.
    let allowed =
        origin_of(redirect).is_some_and(|o| deployment.config.allowed_origins.contains(&o));
    if !allowed {
        return Err(ApiError::bad_request(
            "redirect_uri: not a page of the deployment's allowed origins (ALLOWED_ORIGINS)",
        ));
    }
    let offered = match q.get("auth_type") {
        None => Offered::Both,
        Some(t) => Offered::parse(t).ok_or_else(|| {
            ApiError::bad_request("auth_type: 1 (Official Accounts), 2 (mini programs) or 3 (both)")
        })?,
    };
    let biz = q.get("biz_appid").copied();
    if let Some(b) = biz {
        check_id("biz_appid", b).map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let (links, expires_in) =
        component_auth::authorization_links(deployment, redirect, offered, biz, &ctx.deadline)
            .await?;
    let body = json!({
        "errcode": 0,
        "errmsg": "ok",
        "pc_url": links.pc,
        "mobile_url": links.mobile,
        "expires_in": expires_in,
    });
    let resp = json_response(StatusCode::OK, body.to_string());
    Ok((resp, note("authorization_links")))
}

async fn authorized(
    deployment: &Deployment,
    ctx: &Ctx<'_>,
) -> Result<(Response<Body>, Note), ApiError> {
    route(ctx.req, COMPONENT_AUTHORIZED, Method::GET)?;
    let q = query(ctx.req, &["auth_code", "expires_in"])?;
    let code = q
        .get("auth_code")
        .copied()
        .filter(|c| !c.is_empty() && c.len() <= 512)
        .ok_or_else(|| ApiError::bad_request("auth_code: required (WeChat's page adds it)"))?;
    let now = deployment.tokens.clock().now_ms();
    let done = component_auth::authorize(deployment, code, now, &ctx.deadline).await?;
    let body = json!({
        "errcode": 0,
        "errmsg": "ok",
        "appid": done.appid,
        "kind": done.kind.as_str(),
        "permissions": done.permissions,
        "updated": done.updated,
    });
    let resp = json_response(StatusCode::OK, body.to_string());
    Ok((resp, note("account_authorized")))
}
