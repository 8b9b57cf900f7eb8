//! The claim table: what the gateway records about status changes beyond the audit trail. The
//! records of idempotency keys (`idem#<app>#<SHA-256 of the key>`: the request's digest and what became of it,
//! written before WeChat is called and kept for `IDEMPOTENCY_TTL_SECS` by DynamoDB's TTL on
//! `expires_at`), and the claims holding invoices (`claim#<app>#<card_id>#<sha256 of the
//! encrypt_code>`: the claim id, LOCK or CLOSURE, since when; kept).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValuesOnConditionCheckFailure,
};
use aws_sdk_dynamodb::Client;

use crate::adapters::archive::sha256_hex;
use crate::adapters::dynamodb::{error_text, num};
use crate::adapters::metrics;
use crate::domain::claims::Holder;
use crate::domain::deadline::Deadline;
use crate::domain::idempotency::{IdempotencyKey, Record, Recorded};
use crate::domain::invoice::{InvoiceRef, ReimburseStatus};

/// Why the claim table could not be read or written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClaimError {
    #[error("the request's time ran out")]
    Expired,
    #[error("claim table: {0}")]
    DynamoDb(String),
    /// Another claim took the invoice between the check and the record.
    #[error("invoice held by claim {}", .0.claim_id)]
    HeldBy(Holder),
}

/// How taking a key went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The key is this request's now (recorded in progress).
    Started,
    /// The key has a record already.
    Recorded(Record),
}

/// A request's key, in an app, with the digest of the request.
pub struct Keyed<'a> {
    pub app: &'a str,
    pub key: &'a IdempotencyKey,
    pub body_sha256: &'a str,
}

#[derive(Clone)]
pub struct ClaimTable {
    client: Client,
    table: String,
    ttl: Duration,
}

impl ClaimTable {
    pub fn new(client: Client, table: impl Into<String>, ttl: Duration) -> Self {
        ClaimTable {
            client,
            table: table.into(),
            ttl,
        }
    }

    /// The key's item. The key is hashed: keys may hold `#`, and app names do (`app#corp#agent`),
    /// so `<app>#<key>` could name another app's key.
    fn pk(app: &str, key: &IdempotencyKey) -> AttributeValue {
        AttributeValue::S(format!(
            "idem#{app}#{}",
            sha256_hex(key.as_str().as_bytes())
        ))
    }

    /// Records `key` as in progress for this request until `lease_until_ms`, unless it has a
    /// record already (a lapsed in-progress record, or `take_over` of a recorded one, is taken).
    pub async fn begin(
        &self,
        k: &Keyed<'_>,
        now_ms: u64,
        lease_until_ms: u64,
        take_over: bool,
        deadline: &Deadline,
    ) -> Result<Begin, ClaimError> {
        let expires = now_ms / 1000 + self.ttl.as_secs();
        let (app, key) = (k.app, k.key);
        let sha = AttributeValue::S(k.body_sha256.into());
        // A new key, or one whose holder's lease ran out; or, taking over a key whose outcome is
        // unknown (or whose holder's lease ran out), the same request's: of two retries that
        // both saw it so, one takes it and the other finds it in progress.
        let (condition, names, values) = if take_over {
            (
                "body_sha256 = :sha AND (#state = :unknown OR (#state = :in AND lease_until_ms < :now))",
                Some(HashMap::from([("#state".into(), "state".into())])),
                HashMap::from([
                    (":sha".into(), sha.clone()),
                    (":unknown".into(), AttributeValue::S("unknown".into())),
                    (":in".into(), AttributeValue::S("in_progress".into())),
                    (":now".into(), num(now_ms)),
                ]),
            )
        } else {
            (
                "attribute_not_exists(pk) OR (#state = :in AND lease_until_ms < :now)",
                Some(HashMap::from([("#state".into(), "state".into())])),
                HashMap::from([
                    (":in".into(), AttributeValue::S("in_progress".into())),
                    (":now".into(), num(now_ms)),
                ]),
            )
        };
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", Self::pk(app, key))
            .item("body_sha256", sha)
            .item("state", AttributeValue::S("in_progress".into()))
            .item("lease_until_ms", num(lease_until_ms))
            .item("expires_at", num(expires))
            .condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let sent = metrics::dynamodb(deadline, put.send()).await;
        match sent.map_err(|_| ClaimError::Expired)? {
            Ok(_) => Ok(Begin::Started),
            Err(SdkError::ServiceError(se)) => match se.err() {
                PutItemError::ConditionalCheckFailedException(ccf) => match ccf.item() {
                    Some(item) => Ok(Begin::Recorded(parse(item))),
                    None => match self.load(app, key, deadline).await? {
                        Some(record) => Ok(Begin::Recorded(record)),
                        None => Err(ClaimError::DynamoDb("a key's record vanished".into())),
                    },
                },
                _ => Err(dynamo(SdkError::ServiceError(se))),
            },
            Err(e) => Err(dynamo(e)),
        }
    }

    /// Records what became of the request holding `key`.
    pub async fn finish(
        &self,
        k: &Keyed<'_>,
        recorded: &Recorded,
        now_ms: u64,
        deadline: &Deadline,
    ) -> Result<(), ClaimError> {
        let expires = now_ms / 1000 + self.ttl.as_secs();
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", Self::pk(k.app, k.key))
            .item("body_sha256", AttributeValue::S(k.body_sha256.into()))
            .item("expires_at", num(expires));
        put = match recorded {
            Recorded::Answered { status, body } => put
                .item("state", AttributeValue::S("answered".into()))
                .item("status", num(u64::from(*status)))
                .item("answer", AttributeValue::S(body.clone())),
            Recorded::Unknown => put.item("state", AttributeValue::S("unknown".into())),
            Recorded::InProgress { lease_until_ms } => put
                .item("state", AttributeValue::S("in_progress".into()))
                .item("lease_until_ms", num(*lease_until_ms)),
        };
        let sent = metrics::dynamodb(deadline, put.send()).await;
        sent.map_err(|_| ClaimError::Expired)?.map_err(dynamo)?;
        Ok(())
    }

    /// The record of `key`, if any (strongly consistent).
    pub async fn load(
        &self,
        app: &str,
        key: &IdempotencyKey,
        deadline: &Deadline,
    ) -> Result<Option<Record>, ClaimError> {
        let get = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", Self::pk(app, key))
            .consistent_read(true)
            .send();
        let out = metrics::dynamodb(deadline, get).await;
        let out = out.map_err(|_| ClaimError::Expired)?.map_err(dynamo)?;
        Ok(out.item.as_ref().map(parse))
    }
}

impl ClaimTable {
    fn claim_pk(app: &str, invoice: &InvoiceRef) -> String {
        let code = sha256_hex(invoice.encrypt_code.as_bytes());
        format!("claim#{app}#{}#{code}", invoice.card_id)
    }

    /// The claim holding each invoice, in the order given (one BatchGetItem per 100).
    pub async fn holders(
        &self,
        app: &str,
        invoices: &[InvoiceRef],
        deadline: &Deadline,
    ) -> Result<Vec<Option<Holder>>, ClaimError> {
        let keys: Vec<String> = invoices.iter().map(|r| Self::claim_pk(app, r)).collect();
        let mut found: HashMap<String, Holder> = HashMap::new();
        let mut unique: Vec<&String> = keys.iter().collect();
        unique.sort();
        unique.dedup();
        for chunk in unique.chunks(100) {
            let mut wanted = KeysAndAttributes::builder().consistent_read(true);
            for k in chunk {
                wanted = wanted.keys(HashMap::from([(
                    "pk".to_string(),
                    AttributeValue::S((*k).clone()),
                )]));
            }
            let wanted = wanted
                .build()
                .map_err(|e| ClaimError::DynamoDb(e.to_string()))?;
            let mut request = HashMap::from([(self.table.clone(), wanted)]);
            // What DynamoDB leaves unprocessed is asked for again, while time allows.
            while !request.is_empty() {
                let get = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(request))
                    .send();
                let out = metrics::dynamodb(deadline, get).await;
                let out = out.map_err(|_| ClaimError::Expired)?.map_err(dynamo)?;
                for item in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    if let (Some(pk), Some(holder)) = (
                        item.get("pk").and_then(|v| v.as_s().ok()).cloned(),
                        stored_holder(&item),
                    ) {
                        found.insert(pk, holder);
                    }
                }
                request = out.unprocessed_keys.unwrap_or_default();
            }
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    /// Records that `holder` holds (or completed) `invoice`, unless another claim holds it by
    /// now (`ClaimError::HeldBy`): two claims that passed the check at once never overwrite each
    /// other.
    pub async fn hold(
        &self,
        app: &str,
        invoice: &InvoiceRef,
        holder: &Holder,
        deadline: &Deadline,
    ) -> Result<(), ClaimError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(Self::claim_pk(app, invoice)))
            .item("claim_id", AttributeValue::S(holder.claim_id.clone()))
            .item("status", AttributeValue::S(holder.status.as_str().into()))
            .item("since_ms", num(holder.since_ms))
            .condition_expression("attribute_not_exists(pk) OR claim_id = :claim")
            .expression_attribute_values(":claim", AttributeValue::S(holder.claim_id.clone()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send();
        let out = metrics::dynamodb(deadline, put).await;
        match out.map_err(|_| ClaimError::Expired)? {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) => match se.err() {
                PutItemError::ConditionalCheckFailedException(ccf) => {
                    match ccf.item().and_then(stored_holder) {
                        Some(other) => Err(ClaimError::HeldBy(other)),
                        None => Err(ClaimError::DynamoDb("a claim's holder vanished".into())),
                    }
                }
                _ => Err(dynamo(SdkError::ServiceError(se))),
            },
            Err(e) => Err(dynamo(e)),
        }
    }

    /// Records that `claim_id` no longer holds `invoice` (a hold another claim took since is
    /// left alone).
    pub async fn unhold(
        &self,
        app: &str,
        invoice: &InvoiceRef,
        claim_id: &str,
        deadline: &Deadline,
    ) -> Result<(), ClaimError> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(Self::claim_pk(app, invoice)))
            .condition_expression("claim_id = :claim")
            .expression_attribute_values(":claim", AttributeValue::S(claim_id.into()))
            .send();
        let out = metrics::dynamodb(deadline, delete).await;
        match out.map_err(|_| ClaimError::Expired)? {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se))
                if matches!(
                    se.err(),
                    DeleteItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(dynamo(e)),
        }
    }
}

/// A claim item as stored.
fn stored_holder(item: &HashMap<String, AttributeValue>) -> Option<Holder> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok());
    let status = match text("status")?.as_str() {
        "INVOICE_REIMBURSE_CLOSURE" => ReimburseStatus::Closure,
        _ => ReimburseStatus::Lock,
    };
    Some(Holder {
        claim_id: text("claim_id")?.clone(),
        status,
        since_ms: item
            .get("since_ms")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    })
}

fn dynamo<E: std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> ClaimError {
    ClaimError::DynamoDb(error_text(e))
}

/// A record as stored; anything unreadable reads as in progress with a lapsed lease, which the
/// next request takes over.
fn parse(item: &HashMap<String, AttributeValue>) -> Record {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let number = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
    };
    let recorded = match text("state").as_deref() {
        Some("answered") => Recorded::Answered {
            status: number("status")
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(200),
            body: text("answer").unwrap_or_default(),
        },
        Some("unknown") => Recorded::Unknown,
        _ => Recorded::InProgress {
            lease_until_ms: number("lease_until_ms").unwrap_or(0),
        },
    };
    Record {
        body_sha256: text("body_sha256").unwrap_or_default(),
        recorded,
    }
}
