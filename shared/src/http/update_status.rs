//! `POST /core/r/api/weChat/updateStatus?token=…`: a batch of invoices to one status (WeChat's
//! updatestatusbatch), settled when WeChat's answer does not say (see `ops::status`).

use futures_util::future::BoxFuture;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;

use crate::domain::invoice::UpdateStatusRequest;
use crate::http::answer::{self, Note};
use crate::http::context::Ctx;
use crate::http::endpoint::{self, tenant_or_refuse};
use crate::http::error::ApiError;
use crate::http::idempotent;
use crate::http::paths::UPDATE_STATUS;
use crate::ops::member;
use crate::ops::status::{self, Change, Requester};
use crate::tenant::{AppRuntime, Deployment};

pub async fn update_status(deployment: &Deployment, req: Request) -> Result<Response<Body>, Error> {
    let ctx = Ctx::new(&deployment.config, &req);
    let app = tenant_or_refuse!(deployment, &ctx, UPDATE_STATUS);
    let (app, ctx) = (&*app, &ctx);
    let call = |token, body: UpdateStatusRequest| async move { batch(app, ctx, token, body).await };
    Ok(endpoint::invoice(deployment, app, ctx, UPDATE_STATUS, call).await)
}

async fn batch(
    app: &AppRuntime,
    ctx: &Ctx<'_>,
    token: Option<String>,
    mut body: UpdateStatusRequest,
) -> Result<(Response<Body>, Note), ApiError> {
    // A WeCom member named by userid: the change is sent with its openid.
    if let Some(userid) = body.userid.take() {
        let converted = member::openid_of(app, token.clone(), &userid, &ctx.deadline).await?;
        body.openid = converted.ok_or_else(|| {
            ApiError::bad_request(
                "body.userid: only for WeCom apps (an Official Account's page sends openid)",
            )
        })?;
    }
    let change = Change {
        wechat_path: app.wechat.paths().update_status_batch,
        body: &body,
        refs: &body.invoice_list,
        target: body.reimburse_status,
        settle_first: false,
        claim: body.claim_id.as_deref(),
    };
    send(app, ctx, UPDATE_STATUS, token, change).await
}

/// A status change of either endpoint (`path`), under its Idempotency-Key when it has one.
pub async fn send<B: Serialize + Sync>(
    app: &AppRuntime,
    ctx: &Ctx<'_>,
    path: &str,
    token: Option<String>,
    change: Change<'_, B>,
) -> Result<(Response<Body>, Note), ApiError> {
    idempotent::once(app, ctx, path, |settle_first, deadline| async move {
        let change = Change {
            settle_first,
            ..change
        };
        let who = Requester {
            caller: ctx.caller(),
            request_id: ctx.request_id,
        };
        // Boxed as `dyn Future`: inline, the change's future nests the function's past rustc's
        // recursion limits (its layout, and the check that it is `Send`).
        let changing: BoxFuture<'_, _> =
            Box::pin(status::change(app, token, change, &who, &deadline));
        let reply = changing.await?;
        Ok(answer::reply(reply))
    })
    .await
}
