//! Invoice queries: the invoices' cards in the order asked, each with the `encrypt_code` it
//! answers, in the batch answer's shape. WeChat's batch answer when it pairs with the request
//! for certain; single queries otherwise (a batch that left invoices out, WeCom's 48001 for small
//! corps, or shared card_ids when the batch order is not trusted).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::adapters::wechat::{Call, WeChatError};
use crate::domain::answers::{self, Paired};
use crate::domain::claims::Holder;
use crate::domain::config::Platform;
use crate::domain::deadline::Deadline;
use crate::domain::errcode::BATCH_NOT_GRANTED;
use crate::domain::invoice::InvoiceRef;
use crate::ops::budget::spend;
use crate::ops::error::OpError;
use crate::ops::forward::forward;
use crate::ops::reply::{How, Resolution};
use crate::tenant::AppRuntime;

/// Per-invoice queries at once, at most this many.
const SINGLE_QUERY_CONCURRENCY: usize = 5;

/// A query's answer: WeChat's batch text paired with the request (the common case, passed on as
/// it came), or one built from single queries.
pub enum Cards {
    Paired(Paired),
    Built(Map<String, Value>),
}

impl Cards {
    pub fn into_map(self) -> Result<Map<String, Value>, OpError> {
        match self {
            Cards::Paired(p) => serde_json::from_str(&p.text).map_err(|_| OpError::not_json()),
            Cards::Built(m) => Ok(m),
        }
    }

    /// A batch-shaped answer of items the gateway put together.
    fn built(items: Vec<Value>) -> Cards {
        let mut answer = Map::new();
        answer.insert("errcode".into(), Value::from(0));
        answer.insert("errmsg".into(), Value::from("ok"));
        answer.insert("item_list".into(), Value::Array(items));
        Cards::Built(answer)
    }
}

/// The invoices' cards, and how they were had.
pub async fn query_cards(
    app: &AppRuntime,
    token: Option<String>,
    refs: &[InvoiceRef],
    deadline: &Deadline,
) -> Result<(Cards, How), OpError> {
    #[derive(Serialize)]
    struct Batch<'a> {
        item_list: &'a [InvoiceRef],
    }
    if !app.config.batch_keeps_order && answers::shares_card_ids(refs) {
        // by_single_queries spends its own calls.
        let items = Box::pin(by_single_queries(app, token, refs, true, deadline)).await?;
        return Ok((
            Cards::built(items),
            How::Resolved(Resolution::SharedCardIds),
        ));
    }
    spend(app, 1, deadline).await?;
    let path = app.wechat.paths().invoice_batch;
    let batch = Batch { item_list: refs };
    let sent = forward(app, path, Call::Read, token.clone(), &batch, deadline).await;
    let resolution = match sent {
        // WeCom grants the batch query only to verified corps with more than 200 active members;
        // a smaller corp gets the same answer from one query per invoice, one errcode for the
        // whole answer as the batch would have it.
        Err(OpError::WeChat(WeChatError::Api(b)))
            if b.errcode == BATCH_NOT_GRANTED && app.config.platform == Platform::Work =>
        {
            let items = Box::pin(by_single_queries(app, token, refs, false, deadline)).await?;
            return Ok((Cards::built(items), How::Resolved(Resolution::After48001)));
        }
        Err(e) => return Err(e),
        Ok(sent) => {
            let paired = std::str::from_utf8(&sent.body)
                .ok()
                .and_then(|text| answers::pair_batch(text, refs));
            match paired {
                Some(paired) => return Ok((Cards::Paired(paired), sent.how())),
                None => Resolution::AfterShortBatch,
            }
        }
    };
    let items = Box::pin(by_single_queries(app, token, refs, true, deadline)).await?;
    Ok((Cards::built(items), How::Resolved(resolution)))
}

/// One `getinvoiceinfo` per invoice, a few at once, each card with its `encrypt_code`. WeChat's
/// error for one invoice either fails the whole answer (the first one, as the batch would) or,
/// with `mark_missing`, stands in its place as `gateway_missing`.
async fn by_single_queries(
    app: &AppRuntime,
    token: Option<String>,
    refs: &[InvoiceRef],
    mark_missing: bool,
    deadline: &Deadline,
) -> Result<Vec<Value>, OpError> {
    spend(app, refs.len(), deadline).await?;
    let path = app.wechat.paths().invoice_info;
    let mut items = Vec::with_capacity(refs.len());
    for chunk in refs.chunks(SINGLE_QUERY_CONCURRENCY) {
        let answers = futures_util::future::join_all(
            chunk
                .iter()
                .map(|r| forward(app, path, Call::Read, token.clone(), r, deadline)),
        )
        .await;
        for (answer, r) in answers.into_iter().zip(chunk) {
            let item = match answer {
                Ok(forwarded) => {
                    let mut card = object(&forwarded.body)?;
                    card.remove("errcode");
                    card.remove("errmsg");
                    answers::with_code(card, &r.encrypt_code)
                }
                Err(OpError::WeChat(WeChatError::Api(b))) if mark_missing => {
                    answers::missing(r, b.body)
                }
                Err(e) => return Err(e),
            };
            items.push(Value::Object(item));
        }
    }
    Ok(items)
}

/// The claim holding each invoice (in the order asked), where the app keeps claims.
pub async fn holders(
    app: &AppRuntime,
    refs: &[InvoiceRef],
    deadline: &Deadline,
) -> Result<Vec<Option<Holder>>, OpError> {
    match &app.claims {
        Some(table) => Ok(table.holders(app.name(), refs, deadline).await?),
        None => Ok(Vec::new()),
    }
}

/// `gateway_claim` on the items of `cards` held by a claim (`holders`, in the order asked), so
/// an expense system sees a duplicate before it submits.
pub fn with_claims(cards: Cards, holders: &[Option<Holder>]) -> Result<Cards, OpError> {
    if holders.iter().all(Option::is_none) {
        return Ok(cards);
    }
    let mut answer = cards.into_map()?;
    if let Some(Value::Array(items)) = answer.get_mut("item_list") {
        for (item, holder) in items.iter_mut().zip(holders) {
            if let (Value::Object(item), Some(h)) = (item, holder) {
                item.insert("gateway_claim".into(), claim_json(h));
            }
        }
    }
    Ok(Cards::Built(answer))
}

/// A claim as the answers name it.
pub fn claim_json(h: &Holder) -> Value {
    serde_json::json!({"claim_id": h.claim_id, "status": h.status.as_str(), "since_ms": h.since_ms})
}

/// A WeChat answer's body as a JSON object.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, OpError> {
    serde_json::from_slice(body).map_err(|_| OpError::not_json())
}

/// The items of a query answer built by `query_cards`.
pub fn item_list(answer: &Map<String, Value>) -> &[Value] {
    answer
        .get("item_list")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}
