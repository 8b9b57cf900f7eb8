//! The audit trail of status changes: one DynamoDB item per invoice per attempt that reached the
//! point of calling WeChat (bad input is refused before that and only logged). Keyed by `card_id`
//! (partition) and `at` (sort: the time in ms, the request id and the invoice's place in it), so
//! the history of a card_id is one Query. The encrypt_code is kept as its SHA-256 only: the trail
//! says which invoice without handing out the code that unlocks it. Items expire by TTL
//! (`expires_at`) after the configured retention.
//!
//! Writing the trail never fails the change it records: WeChat has acted by then. A failed write
//! is logged (with the record) and counted in the request's metrics.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;

use crate::adapters::archive::{ArchiveNote, Kept};
use crate::adapters::metrics;
use crate::domain::clock::now_ms;
use crate::domain::deadline::Deadline;

/// BatchWriteItem takes at most this many items.
const BATCH_WRITE_MAX: usize = 25;

/// One invoice's part in one status change attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub at_ms: u64,
    /// The app (appid or corpid) whose token made the change.
    pub app: String,
    /// `jwt:<sub>` when the JWT authorizer let the caller in, `ip:<source ip>` otherwise.
    pub caller: String,
    pub card_id: String,
    pub code_sha256: String,
    pub from_status: Option<String>,
    pub requested: String,
    /// What the caller was answered (0, WeChat's errcode, or the gateway's).
    pub errcode: i64,
    /// How the outcome was known, when not from WeChat's answer (`gateway_outcome`).
    pub outcome: Option<String>,
    pub request_id: String,
    /// The archived PDF (CLOSURE), or why it could not be archived.
    pub archive: Option<ArchiveNote>,
}

/// The partition of archive work still to do (no card_id starts with `#`).
pub const PENDING: &str = "#archive-pending";

/// Scheduled retries of one invoice's archive before it is given up (two days of hourly runs):
/// hopeless work must not hold the head of the queue.
pub const MAX_ARCHIVE_ATTEMPTS: u64 = 48;

/// How long archive work waits before it is dropped (its audit record keeps the error): its
/// retries' two days, and a day to spare for runs that did not happen.
const PENDING_TTL_SECS: u64 = (MAX_ARCHIVE_ATTEMPTS + 24) * 3600;

/// An invoice whose files are still to be archived: what the schedule needs to query it again
/// (WeChat's download links do not last) and the audit record to complete.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub app: String,
    pub card_id: String,
    /// The encrypt_code, to ask WeChat for the invoice again, sealed for the app and card_id
    /// (`adapters::seal`, `Pending::context`): never stored in clear.
    pub sealed_code: String,
    /// The encrypt_code's SHA-256, which names the work.
    pub code_sha256: String,
    pub audit_at: String,
    pub attempts: u64,
    /// The item's sort key as stored (empty for work not stored yet).
    pub stored_at: String,
}

impl Pending {
    /// What the encrypt_code is sealed for: its app and card_id.
    pub fn context(app: &str, card_id: &str) -> String {
        format!("{app}\n{card_id}")
    }
}

/// Why the trail could not be read or written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuditError {
    #[error("the request's time ran out")]
    Expired,
    #[error("{0}")]
    DynamoDb(String),
    #[error("{0} items left unprocessed")]
    Unprocessed(usize),
}

/// The audit table.
#[derive(Clone)]
pub struct AuditLog {
    client: Client,
    table: String,
    retention: Option<Duration>,
}

impl AuditLog {
    /// `retention` `None`: items never expire.
    pub fn new(client: Client, table: impl Into<String>, retention: Option<Duration>) -> Self {
        AuditLog {
            client,
            table: table.into(),
            retention,
        }
    }

    /// Writes the entries (BatchWriteItem, 25 at a time; what DynamoDB leaves unprocessed is
    /// sent once more), cut at `deadline`.
    pub async fn record(
        &self,
        entries: &[AuditEntry],
        pending: &[(Pending, String)],
        deadline: &Deadline,
    ) -> Result<(), AuditError> {
        let items = entries
            .iter()
            .enumerate()
            .map(|(place, e)| item(e, place, self.retention))
            .chain(pending.iter().map(|(p, error)| pending_item(p, error)));
        let mut writes: Vec<WriteRequest> = items
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| AuditError::DynamoDb(e.to_string()))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<_, AuditError>>()?;
        while !writes.is_empty() {
            let rest = writes.split_off(writes.len().min(BATCH_WRITE_MAX));
            let mut chunk = std::mem::replace(&mut writes, rest);
            // What DynamoDB leaves unprocessed is sent once more.
            for _ in 0..2 {
                if chunk.is_empty() {
                    break;
                }
                let sent = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, chunk.clone())
                    .send();
                let out = self.timed(deadline, sent).await?;
                chunk = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
            }
            if !chunk.is_empty() {
                return Err(AuditError::Unprocessed(chunk.len()));
            }
        }
        Ok(())
    }

    /// Records archive work left to do again (the schedule's retry failed).
    pub async fn add_pending(
        &self,
        p: &Pending,
        error: &str,
        deadline: &Deadline,
    ) -> Result<(), AuditError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(pending_item(p, error)))
            .send();
        self.timed(deadline, put).await?;
        // Work stored under an earlier key form moves to the current one.
        if !p.stored_at.is_empty() && p.stored_at != pending_key(p) {
            self.drop_pending(p, deadline).await?;
        }
        Ok(())
    }

    /// Archive work left to do, at most `limit` items.
    pub async fn pending(
        &self,
        limit: i32,
        deadline: &Deadline,
    ) -> Result<Vec<Pending>, AuditError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("card_id = :p")
            .expression_attribute_values(":p", AttributeValue::S(PENDING.into()))
            .limit(limit)
            .send();
        let out = self.timed(deadline, query).await?;
        let text = |m: &HashMap<String, AttributeValue>, k: &str| {
            m.get(k)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        Ok(out
            .items
            .unwrap_or_default()
            .iter()
            .map(|m| Pending {
                app: text(m, "app"),
                card_id: text(m, "invoice_card_id"),
                sealed_code: text(m, "sealed_code"),
                code_sha256: text(m, "code_sha256"),
                audit_at: text(m, "audit_at"),
                stored_at: text(m, "at"),
                attempts: m
                    .get("attempts")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
            })
            .collect())
    }

    /// Archive work done: its files go into the audit record, the pending item goes away.
    pub async fn pending_done(
        &self,
        p: &Pending,
        files: &[Kept],
        deadline: &Deadline,
    ) -> Result<(), AuditError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("card_id", AttributeValue::S(p.card_id.clone()))
            .key("at", AttributeValue::S(p.audit_at.clone()))
            .update_expression("SET pdf_files = :f REMOVE archive_error")
            .condition_expression("attribute_exists(card_id)")
            .expression_attribute_values(":f", pdf_files(files))
            .send();
        // The audit record may have expired meanwhile; the archive is done either way.
        let _ = self.timed(deadline, update).await;
        self.drop_pending(p, deadline).await
    }

    /// Gives up archive work (done, or hopeless).
    pub async fn drop_pending(&self, p: &Pending, deadline: &Deadline) -> Result<(), AuditError> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("card_id", AttributeValue::S(PENDING.into()))
            .key("at", AttributeValue::S(stored_key(p)))
            .send();
        self.timed(deadline, delete).await.map(|_| ())
    }

    /// One DynamoDB call, cut at the deadline and counted in the request's DynamoDB time.
    async fn timed<T, E>(
        &self,
        deadline: &Deadline,
        op: impl std::future::Future<Output = Result<T, aws_sdk_dynamodb::error::SdkError<E>>>,
    ) -> Result<T, AuditError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let started = std::time::Instant::now();
        let out = deadline.run(op).await;
        metrics::dynamodb_call(started.elapsed());
        out.map_err(|_| AuditError::Expired)?.map_err(|e| {
            AuditError::DynamoDb(format!(
                "{}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            ))
        })
    }

    /// The history of a card_id, oldest first (every invoice of that template).
    pub async fn history(
        &self,
        card_id: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, AuditError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("card_id = :c")
                .expression_attribute_values(":c", AttributeValue::S(card_id.into()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| {
                    let e = aws_sdk_dynamodb::error::DisplayErrorContext(e);
                    AuditError::DynamoDb(e.to_string())
                })?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }
}

/// The sort key of a pending item: one per app and invoice, oldest work first (the audit
/// record's time leads its `audit_at`).
fn pending_key(p: &Pending) -> String {
    let since = p.audit_at.split('#').next().unwrap_or_default();
    format!("{since}#{}#{}#{}", p.app, p.card_id, p.code_sha256)
}

/// Where `p` is stored: its key as read, or the key it is written under.
fn stored_key(p: &Pending) -> String {
    if p.stored_at.is_empty() {
        pending_key(p)
    } else {
        p.stored_at.clone()
    }
}

/// The item of archive work left to do.
fn pending_item(p: &Pending, error: &str) -> HashMap<String, AttributeValue> {
    let s = |v: &str| AttributeValue::S(v.to_string());
    let expires = now_ms() / 1000 + PENDING_TTL_SECS;
    HashMap::from([
        ("card_id".to_string(), s(PENDING)),
        ("at".to_string(), s(&pending_key(p))),
        ("app".to_string(), s(&p.app)),
        ("invoice_card_id".to_string(), s(&p.card_id)),
        ("sealed_code".to_string(), s(&p.sealed_code)),
        ("code_sha256".to_string(), s(&p.code_sha256)),
        ("audit_at".to_string(), s(&p.audit_at)),
        (
            "attempts".to_string(),
            AttributeValue::N(p.attempts.to_string()),
        ),
        ("last_error".to_string(), s(error)),
        (
            "expires_at".to_string(),
            AttributeValue::N(expires.to_string()),
        ),
    ])
}

/// The sort key of an entry's item.
pub fn at_key(e: &AuditEntry, place: usize) -> String {
    format!("{:013}#{}#{place:03}", e.at_ms, e.request_id)
}

/// The archived files as the audit item lists them: key, SHA-256 and size of each.
fn pdf_files(files: &[Kept]) -> AttributeValue {
    AttributeValue::L(
        files
            .iter()
            .map(|k| {
                AttributeValue::M(HashMap::from([
                    ("key".to_string(), AttributeValue::S(k.key.clone())),
                    ("sha256".to_string(), AttributeValue::S(k.sha256.clone())),
                    ("bytes".to_string(), AttributeValue::N(k.bytes.to_string())),
                ]))
            })
            .collect(),
    )
}

/// The DynamoDB item of an entry: `at` sorts by time, then request, then place in the request.
fn item(
    e: &AuditEntry,
    place: usize,
    retention: Option<Duration>,
) -> HashMap<String, AttributeValue> {
    let s = |v: &str| AttributeValue::S(v.to_string());
    let n = |v: String| AttributeValue::N(v);
    let mut m = HashMap::from([
        ("card_id".to_string(), s(&e.card_id)),
        ("at".to_string(), s(&at_key(e, place))),
        ("at_ms".to_string(), n(e.at_ms.to_string())),
        ("app".to_string(), s(&e.app)),
        ("caller".to_string(), s(&e.caller)),
        ("code_sha256".to_string(), s(&e.code_sha256)),
        ("requested".to_string(), s(&e.requested)),
        ("errcode".to_string(), n(e.errcode.to_string())),
        ("request_id".to_string(), s(&e.request_id)),
    ]);
    if let Some(from) = &e.from_status {
        m.insert("from_status".into(), s(from));
    }
    if let Some(outcome) = &e.outcome {
        m.insert("outcome".into(), s(outcome));
    }
    match &e.archive {
        Some(ArchiveNote::Stored(files)) => {
            m.insert("pdf_files".into(), pdf_files(files));
        }
        Some(ArchiveNote::Failed(why)) => {
            m.insert("archive_error".into(), s(why));
        }
        None => {}
    }
    if let Some(keep) = retention {
        let expires = e.at_ms / 1000 + keep.as_secs();
        m.insert("expires_at".into(), n(expires.to_string()));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::archive::sha256_hex;

    fn entry() -> AuditEntry {
        AuditEntry {
            at_ms: 1_700_000_000_123,
            app: "wxa".into(),
            caller: "ip:203.0.113.9".into(),
            card_id: "pCard".into(),
            code_sha256: sha256_hex(b"code"),
            from_status: None,
            requested: "INVOICE_REIMBURSE_LOCK".into(),
            errcode: 0,
            outcome: None,
            request_id: "req-1".into(),
            archive: None,
        }
    }

    #[test]
    fn sha256_is_the_standard_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn items_sort_by_time_and_expire_after_the_retention() {
        let year = Duration::from_secs(365 * 86_400);
        let m = item(&entry(), 2, Some(year));
        assert_eq!(m["at"], AttributeValue::S("1700000000123#req-1#002".into()));
        assert_eq!(
            m["expires_at"],
            AttributeValue::N((1_700_000_000 + 365 * 86_400).to_string())
        );
        assert!(!m.contains_key("from_status"));
        assert!(!item(&entry(), 0, None).contains_key("expires_at"));
        // The code itself is never written.
        assert!(!format!("{m:?}").contains("\"code\""));
    }

    #[test]
    fn archive_notes_are_recorded() {
        let mut e = entry();
        e.archive = Some(ArchiveNote::Stored(vec![Kept {
            key: "k".into(),
            sha256: "s".into(),
            bytes: 7,
            written: true,
        }]));
        let m = item(&e, 0, None);
        let AttributeValue::L(files) = &m["pdf_files"] else {
            panic!("{m:?}")
        };
        let AttributeValue::M(file) = &files[0] else {
            panic!("{files:?}")
        };
        assert_eq!(file["bytes"], AttributeValue::N("7".into()));
        assert_eq!(file["sha256"], AttributeValue::S("s".into()));
        e.archive = Some(ArchiveNote::Failed("timeout".into()));
        assert_eq!(
            item(&e, 0, None)["archive_error"],
            AttributeValue::S("timeout".into())
        );
    }
}
