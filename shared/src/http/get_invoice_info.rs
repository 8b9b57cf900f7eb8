//! `POST /core/r/api/weChat/getInvoiceInfo?token=…`: one invoice (WeChat's getinvoiceinfo), same
//! token rules and envelope as the batch; the answer names the `encrypt_code` it answers.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde_json::Value;

use crate::adapters::wechat::Call;
use crate::domain::answers;
use crate::domain::invoice::InvoiceRef;
use crate::http::answer::Note;
use crate::http::context::Ctx;
use crate::http::endpoint::{self, tenant_or_refuse};
use crate::http::envelope::json_response;
use crate::http::error::ApiError;
use crate::http::paths::GET_INVOICE_INFO;
use crate::ops::archive_work::add_archive_links;
use crate::ops::budget::spend;
use crate::ops::forward::forward;
use crate::ops::query::{claim_json, holders, object};
use crate::tenant::{AppRuntime, Deployment};

pub async fn get_invoice_info(
    deployment: &Deployment,
    req: Request,
) -> Result<Response<Body>, Error> {
    let ctx = Ctx::new(&deployment.config, &req);
    let app = tenant_or_refuse!(deployment, &ctx, GET_INVOICE_INFO);
    let (app, ctx) = (&*app, &ctx);
    let call = |token, body: InvoiceRef| async move { info(app, ctx, token, body).await };
    Ok(endpoint::invoice(deployment, app, ctx, GET_INVOICE_INFO, call).await)
}

async fn info(
    app: &AppRuntime,
    ctx: &Ctx<'_>,
    token: Option<String>,
    body: InvoiceRef,
) -> Result<(Response<Body>, Note), ApiError> {
    let path = app.wechat.paths().invoice_info;
    let asked = async {
        spend(app, 1, &ctx.deadline).await?;
        forward(app, path, Call::Read, token, &body, &ctx.deadline).await
    };
    // The claim is read while WeChat is asked.
    let invoice = std::slice::from_ref(&body);
    let (sent, holders) =
        futures_util::future::join(asked, holders(app, invoice, &ctx.deadline)).await;
    let sent = sent?;
    let mut card = answers::with_code(object(&sent.body)?, &body.encrypt_code);
    if let Some(h) = holders?.first().and_then(Option::as_ref) {
        card.insert("gateway_claim".into(), claim_json(h));
    }
    add_archive_links(app, std::slice::from_mut(&mut card), &ctx.deadline).await;
    let how = sent.how();
    let note = Note {
        source: how.as_str(),
        ..Note::default()
    };
    let text = Value::Object(card).to_string();
    Ok((json_response(StatusCode::OK, text), note))
}
