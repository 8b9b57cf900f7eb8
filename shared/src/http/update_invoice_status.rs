//! `POST /core/r/api/weChat/updateInvoiceStatus?token=…`: one invoice's status (WeChat's
//! updateinvoicestatus), settled like the batch.

use lambda_http::{Body, Error, Request, Response};

use crate::domain::invoice::{InvoiceRef, UpdateInvoiceStatusRequest};
use crate::http::answer::Note;
use crate::http::context::Ctx;
use crate::http::endpoint::{self, tenant_or_refuse};
use crate::http::error::ApiError;
use crate::http::paths::UPDATE_INVOICE_STATUS;
use crate::http::update_status;
use crate::ops::status::Change;
use crate::tenant::{AppRuntime, Deployment};

pub async fn update_invoice_status(
    deployment: &Deployment,
    req: Request,
) -> Result<Response<Body>, Error> {
    let ctx = Ctx::new(&deployment.config, &req);
    let app = tenant_or_refuse!(deployment, &ctx, UPDATE_INVOICE_STATUS);
    let (app, ctx) = (&*app, &ctx);
    let call =
        |token, body: UpdateInvoiceStatusRequest| async move { one(app, ctx, token, body).await };
    Ok(endpoint::invoice(deployment, app, ctx, UPDATE_INVOICE_STATUS, call).await)
}

async fn one(
    app: &AppRuntime,
    ctx: &Ctx<'_>,
    token: Option<String>,
    body: UpdateInvoiceStatusRequest,
) -> Result<(Response<Body>, Note), ApiError> {
    let refs = [InvoiceRef {
        card_id: body.card_id.clone(),
        encrypt_code: body.encrypt_code.clone(),
    }];
    let change = Change {
        wechat_path: app.wechat.paths().update_status_one,
        body: &body,
        refs: &refs,
        target: body.reimburse_status,
        settle_first: false,
        claim: body.claim_id.as_deref(),
    };
    update_status::send(app, ctx, UPDATE_INVOICE_STATUS, token, change).await
}
