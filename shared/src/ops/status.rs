//! Status changes (LOCK, CLOSURE, INIT). The change is sent once, never twice; when WeChat's
//! answer does not say what happened (a lost answer, or a refusal that may mean "already in that
//! status") the invoices are read back and the answer is what is true (`domain::outcome`). A
//! CLOSURE that took effect has its PDFs archived, and every attempt that reached WeChat is
//! written to the audit trail.

use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};

use crate::adapters::archive::{sha256_hex, ArchiveNote};
use crate::adapters::audit::{self, AuditEntry, Pending};
use crate::adapters::claims::ClaimError;
use crate::adapters::seal::Seal;
use crate::adapters::wechat::{Call, WeChatError};
use crate::domain::answers;
use crate::domain::claims::{self, Effect, Holder};
use crate::domain::clock::now_ms;
use crate::domain::deadline::Deadline;
use crate::domain::invoice::{InvoiceRef, ReimburseStatus};
use crate::domain::outcome::{self, Settled, Settlement};
use crate::ops::archive_work::keep_pdfs;
use crate::ops::budget::spend;
use crate::ops::error::OpError;
use crate::ops::forward::forward;
use crate::ops::query::{item_list, query_cards};
use crate::ops::reply::{How, Payload, Reply};
use crate::tenant::AppRuntime;

/// Most of a CLOSURE request spent archiving its PDFs; the rest is retried by the schedule.
const ARCHIVE_BUDGET: Duration = Duration::from_secs(8);

/// Time kept after the archive for the audit trail's writes.
const AUDIT_RESERVE: Duration = Duration::from_secs(3);

/// Claim records written at once (a change holds up to `MAX_ITEMS` invoices).
const CLAIM_WRITES_AT_ONCE: usize = 10;

/// A status change as asked: WeChat's path and body, the invoices it names and their target.
pub struct Change<'a, B: Serialize> {
    pub wechat_path: &'a str,
    pub body: &'a B,
    pub refs: &'a [InvoiceRef],
    pub target: ReimburseStatus,
    /// The retry of a change whose outcome is unknown: read the invoices back before sending.
    pub settle_first: bool,
    /// The expense claim the change is made for.
    pub claim: Option<&'a str>,
}

/// Who asked, for the audit trail: `jwt:<sub>` or `ip:<address>`, and the request's id.
pub struct Requester<'a> {
    pub caller: String,
    pub request_id: Option<&'a str>,
}

/// Sends the change, settles its outcome, archives a CLOSURE's PDFs and records the attempt.
pub async fn change<B: Serialize>(
    app: &AppRuntime,
    token: Option<String>,
    change: Change<'_, B>,
    who: &Requester<'_>,
    deadline: &Deadline,
) -> Result<Reply, OpError> {
    let holders = match &app.claims {
        Some(claims) => {
            let holders = claims.holders(app.name(), change.refs, deadline).await?;
            for holder in &holders {
                if let Err(h) = claims::check(change.target, change.claim, holder.as_ref()) {
                    return Err(OpError::Claimed(h.clone()));
                }
            }
            holders
        }
        None => Vec::new(),
    };
    let (mut result, from) = settle(app, token.clone(), &change, deadline).await;
    // No success without its claims recorded: a claim that took an invoice meanwhile is the
    // answer (the status is that claim's doing); a claim table that failed is a fault, which
    // a retry under the same key settles by reading back and recording again.
    if result.is_ok() {
        if let Err(e) = record_claims(app, &change, &holders, deadline).await {
            result = Err(match e {
                ClaimError::HeldBy(other) => OpError::Claimed(other),
                e => OpError::Claims(e),
            });
        }
    }
    // The archive gets a bounded share of the request, never the time the trail needs after it:
    // what it cannot finish is left to the schedule.
    let archiving = deadline.before(AUDIT_RESERVE).within(ARCHIVE_BUDGET);
    let archived = match &app.archive {
        Some(archive) if result.is_ok() && change.target == ReimburseStatus::Closure => {
            // Boxed, as the read back: both nest the whole query inside the change.
            Some(Box::pin(keep_pdfs(app, archive, token, change.refs, &archiving)).await)
        }
        _ => None,
    };
    let Some(trail) = app.audit.as_ref().filter(|_| reached_wechat(&result)) else {
        return result;
    };
    let entries = entries(app, &change, &result, &from, archived, who);
    let mut faults = Vec::new();
    let pending = match archive_failures(&entries) {
        0 => Vec::new(),
        failed => match app.wechat.app_secret(deadline).await {
            Ok(secret) => pending_archives(&entries, change.refs, &Seal::from_secret(&secret)),
            Err(e) => {
                faults.push(format!("archive: {failed} not left to the schedule ({e})"));
                Vec::new()
            }
        },
    };
    if let Some((_, why)) = pending.first() {
        faults.push(format!(
            "archive: {} left to the schedule ({why})",
            pending.len()
        ));
    }
    if let Err(e) = trail.record(&entries, &pending, deadline).await {
        faults.push(format!("audit: {e}"));
    }
    if faults.is_empty() {
        return result;
    }
    match &mut result {
        Ok(reply) => reply.fault = Some(faults.join("; ")),
        // An error's log line has no note: the fault gets a line of its own.
        Err(_) => {
            tracing::error!(correlation_id = who.request_id, fault = %faults.join("; "), "audit")
        }
    }
    result
}

/// What the applied change does to the invoices' claims.
async fn record_claims<B: Serialize>(
    app: &AppRuntime,
    change: &Change<'_, B>,
    holders: &[Option<Holder>],
    deadline: &Deadline,
) -> Result<(), ClaimError> {
    let Some(table) = &app.claims else {
        return Ok(());
    };
    let name = app.name();
    let now = now_ms();
    // Collected first (boxed): a lazy map's closure in the stream trips rustc's `Send` check of
    // the boxed change future.
    let mut writes: Vec<BoxFuture<'_, Result<(), ClaimError>>> = Vec::new();
    for (i, invoice) in change.refs.iter().enumerate() {
        let holder = holders.get(i).and_then(Option::as_ref);
        match (
            claims::effect(change.target, change.claim, holder, now),
            holder,
        ) {
            (Effect::Hold(h), _) => writes.push(Box::pin(async move {
                table.hold(name, invoice, &h, deadline).await
            })),
            (Effect::Release, Some(h)) => {
                writes.push(Box::pin(table.unhold(name, invoice, &h.claim_id, deadline)))
            }
            _ => {}
        }
    }
    let results: Vec<Result<(), ClaimError>> = futures_util::stream::iter(writes)
        .buffer_unordered(CLAIM_WRITES_AT_ONCE)
        .collect()
        .await;
    // Another claim's hold says more than a failed write.
    let mut failed = results
        .into_iter()
        .filter_map(Result::err)
        .collect::<Vec<_>>();
    failed.sort_by_key(|e| !matches!(e, ClaimError::HeldBy(_)));
    failed.into_iter().next().map_or(Ok(()), Err)
}

/// Whether the change got as far as WeChat: only then is it recorded. A request refused before
/// (a token the gateway does not keep, no time left) leaves no trace in the trail.
fn reached_wechat(result: &Result<Reply, OpError>) -> bool {
    !matches!(
        result,
        Err(OpError::Token(_))
            | Err(OpError::OverBudget { .. })
            | Err(OpError::WeChat(
                WeChatError::NoTime | WeChatError::NotSent(_)
            ))
    )
}

/// One audit entry per invoice of the change.
fn entries<B: Serialize>(
    app: &AppRuntime,
    change: &Change<'_, B>,
    result: &Result<Reply, OpError>,
    from: &[Option<String>],
    archived: Option<Vec<ArchiveNote>>,
    who: &Requester<'_>,
) -> Vec<AuditEntry> {
    let (errcode, outcome) = match result {
        Ok(reply) => (0, reply.how.as_str().map(str::to_string)),
        Err(e) => (errcode_of(e), None),
    };
    let at_ms = now_ms();
    change
        .refs
        .iter()
        .enumerate()
        .map(|(i, r)| AuditEntry {
            at_ms,
            app: app.name().to_owned(),
            caller: who.caller.clone(),
            card_id: r.card_id.clone(),
            code_sha256: sha256_hex(r.encrypt_code.as_bytes()),
            from_status: from.get(i).cloned().flatten(),
            requested: change.target.as_str().to_string(),
            errcode,
            outcome: outcome.clone(),
            request_id: who.request_id.unwrap_or_default().to_string(),
            archive: archived.as_ref().and_then(|a| a.get(i).cloned()),
        })
        .collect()
}

/// The errcode the caller is answered for a failed change, as the trail records it: WeChat's
/// own, the gateway's -2 for an unknown outcome, -1 for any other fault.
fn errcode_of(e: &OpError) -> i64 {
    match e {
        OpError::WeChat(WeChatError::Api(b))
        | OpError::Token(crate::token::TokenError::WeChat(WeChatError::Api(b))) => b.errcode,
        OpError::Token(crate::token::TokenError::InvalidCredential) => {
            crate::domain::errcode::INVALID_CREDENTIAL
        }
        OpError::OutcomeUnknown { .. } => outcome::OUTCOME_UNKNOWN,
        _ => -1,
    }
}

/// How many invoices' files could not be archived.
fn archive_failures(entries: &[AuditEntry]) -> usize {
    entries
        .iter()
        .filter(|e| matches!(e.archive, Some(ArchiveNote::Failed(_))))
        .count()
}

/// Archive work the change left to the schedule, with why; each encrypt_code sealed.
fn pending_archives(
    entries: &[AuditEntry],
    refs: &[InvoiceRef],
    seal: &Seal,
) -> Vec<(Pending, String)> {
    let mut pending = Vec::new();
    for (i, (entry, r)) in entries.iter().zip(refs).enumerate() {
        if let Some(ArchiveNote::Failed(why)) = &entry.archive {
            let context = Pending::context(&entry.app, &r.card_id);
            let p = Pending {
                app: entry.app.clone(),
                card_id: r.card_id.clone(),
                sealed_code: seal.seal(&r.encrypt_code, &context),
                code_sha256: entry.code_sha256.clone(),
                audit_at: audit::at_key(entry, i),
                attempts: 0,
                stored_at: String::new(),
            };
            pending.push((p, why.clone()));
        }
    }
    pending
}

/// Sends the change and settles its outcome; with the statuses known to have stood before it
/// (read back when the change was refused as a status error, or its answer lost), one per
/// invoice.
async fn settle<B: Serialize>(
    app: &AppRuntime,
    token: Option<String>,
    change: &Change<'_, B>,
    deadline: &Deadline,
) -> (Result<Reply, OpError>, Vec<Option<String>>) {
    if change.settle_first {
        // The retry of a change whose outcome is unknown: if the invoices are where it would
        // have put them, it did; otherwise it is sent now.
        let statuses = read_back(app, token.clone(), change, deadline).await;
        if let Ok(statuses) = &statuses {
            if outcome::settle(change.target, &seen(statuses)) == Settled::Applied {
                return (Ok(confirmed()), Vec::new());
            }
        }
    }
    if let Err(e) = spend(app, 1, deadline).await {
        return (Err(e), Vec::new());
    }
    let sent = forward(
        app,
        change.wechat_path,
        Call::Change,
        token.clone(),
        change.body,
        deadline,
    )
    .await;
    match sent {
        Ok(f) => {
            let how = f.how();
            (Ok(Reply::new(Payload::Bytes(f.body), how)), Vec::new())
        }
        // WeChat's refusal of a status the invoices may have already is how a reimburser learns
        // an invoice is claimed: it stays a refusal, with the status read back. (A client's
        // retry of its own change is recognised by its Idempotency-Key before WeChat is called.)
        Err(OpError::WeChat(WeChatError::Api(mut refusal)))
            if outcome::may_be_same_status(refusal.errcode) =>
        {
            let statuses = read_back(app, token, change, deadline).await.ok();
            let single = change.wechat_path == app.wechat.paths().update_status_one;
            if let Some(current) = statuses.as_deref().and_then(|s| current_status(s, single)) {
                refusal.body.insert("current_status".into(), current);
            }
            let refusal = Err(OpError::WeChat(WeChatError::Api(refusal)));
            (refusal, statuses.unwrap_or_default())
        }
        Err(OpError::OutcomeUnknown { timed_out, cause }) => {
            let read = read_back(app, token, change, deadline).await;
            let settled = read
                .as_ref()
                .ok()
                .map(|statuses| outcome::settle(change.target, &seen(statuses)));
            let answer = lost(settled.as_ref(), timed_out, cause, read.as_ref().err());
            // What was read stood before the change, unless the lost change put it there.
            let from = match (&settled, read) {
                (Some(Settled::Applied), _) | (_, Err(_)) => Vec::new(),
                (_, Ok(statuses)) => statuses,
            };
            (answer, from)
        }
        Err(other) => (Err(other), Vec::new()),
    }
}

/// The invoices' statuses now, one per invoice (`None`: WeChat did not return it or named none).
async fn read_back<B: Serialize>(
    app: &AppRuntime,
    token: Option<String>,
    change: &Change<'_, B>,
    deadline: &Deadline,
) -> Result<Vec<Option<String>>, OpError> {
    let answer = Box::pin(query_cards(app, token, change.refs, deadline))
        .await
        .and_then(|(cards, _)| cards.into_map())?;
    Ok(answers::statuses(item_list(&answer))
        .into_iter()
        .map(|s| s.map(str::to_string))
        .collect())
}

fn seen(statuses: &[Option<String>]) -> Vec<Option<&str>> {
    statuses.iter().map(Option::as_deref).collect()
}

/// `current_status` of a refusal: the invoice's status (`single`, updateInvoiceStatus), or each
/// invoice's in the order asked (updateStatus); none unless every invoice was read back.
fn current_status(statuses: &[Option<String>], single: bool) -> Option<Value> {
    let known: Option<Vec<&str>> = statuses.iter().map(Option::as_deref).collect();
    match (known?.as_slice(), single) {
        ([], _) => None,
        ([one], true) => Some(Value::from(*one)),
        (_, true) => None,
        (all, false) => Some(Value::from(all.to_vec())),
    }
}

/// A change read back as applied.
fn confirmed() -> Reply {
    let settlement = Settlement::ConfirmedByReadBack;
    let body = json!({"errcode": 0, "errmsg": "ok", "gateway_outcome": settlement.as_str()});
    Reply::text(body.to_string(), How::Settled(settlement))
}

/// The answer to a change whose answer was lost, once the invoices were read back (`settled`),
/// or the read back failed (`read_failed`).
fn lost(
    settled: Option<&Settled>,
    timed_out: bool,
    cause: String,
    read_failed: Option<&OpError>,
) -> Result<Reply, OpError> {
    match (settled, read_failed) {
        (Some(Settled::Applied), _) => Ok(confirmed()),
        (Some(Settled::NotApplied(seen)), _) => {
            let message = format!("{cause}; read back: not applied ({seen}), trying again is safe");
            Err(OpError::NotApplied { timed_out, message })
        }
        (Some(Settled::Unknown), _) => Err(OpError::OutcomeUnknown {
            timed_out,
            cause: format!("{cause}; WeChat did not return every invoice when read back"),
        }),
        (None, e) => Err(OpError::OutcomeUnknown {
            timed_out,
            cause: format!(
                "{cause}; the read back failed: {}",
                e.map(OpError::message).unwrap_or_default()
            ),
        }),
    }
}
