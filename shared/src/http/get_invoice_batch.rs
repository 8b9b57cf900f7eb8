//! `POST /core/r/api/weChat/getInvoiceBatch?token=…`: WeChat's batch answer, each item with the
//! `encrypt_code` it answers; links to archived PDFs added for reimbursed invoices.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde_json::{Map, Value};

use crate::domain::invoice::GetInvoiceBatchRequest;
use crate::http::answer::Note;
use crate::http::context::Ctx;
use crate::http::endpoint::{self, tenant_or_refuse};
use crate::http::envelope::json_response;
use crate::http::error::ApiError;
use crate::http::paths::GET_INVOICE_BATCH;
use crate::ops::archive_work::add_archive_links;
use crate::ops::query::{holders, query_cards, with_claims, Cards};
use crate::tenant::{AppRuntime, Deployment};

pub async fn get_invoice_batch(
    deployment: &Deployment,
    req: Request,
) -> Result<Response<Body>, Error> {
    let ctx = Ctx::new(&deployment.config, &req);
    let app = tenant_or_refuse!(deployment, &ctx, GET_INVOICE_BATCH);
    let (app, ctx) = (&*app, &ctx);
    let call =
        |token, body: GetInvoiceBatchRequest| async move { batch(app, ctx, token, body).await };
    Ok(endpoint::invoice(deployment, app, ctx, GET_INVOICE_BATCH, call).await)
}

async fn batch(
    app: &AppRuntime,
    ctx: &Ctx<'_>,
    token: Option<String>,
    body: GetInvoiceBatchRequest,
) -> Result<(Response<Body>, Note), ApiError> {
    // The claims are read while WeChat is asked: the answer waits for one round trip, not two.
    let (queried, holders) = futures_util::future::join(
        query_cards(app, token, &body.item_list, &ctx.deadline),
        holders(app, &body.item_list, &ctx.deadline),
    )
    .await;
    let (cards, how) = queried?;
    let cards = with_claims(cards, &holders?)?;
    let note = Note {
        source: how.as_str(),
        ..Note::default()
    };
    let mut answer = match cards {
        // The common case: WeChat's text passed on as it came.
        Cards::Paired(p) if !(p.closed && app.archive.is_some()) => {
            return Ok((json_response(StatusCode::OK, p.text), note));
        }
        other => other.into_map()?,
    };
    if let Some(Value::Array(items)) = answer.get_mut("item_list") {
        let mut cards: Vec<Map<String, Value>> = items
            .drain(..)
            .filter_map(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .collect();
        add_archive_links(app, &mut cards, &ctx.deadline).await;
        items.extend(cards.into_iter().map(Value::Object));
    }
    let text = Value::Object(answer).to_string();
    Ok((json_response(StatusCode::OK, text), note))
}
