//! Archive work: keeping the PDFs of invoices just closed, links to the archived files in query
//! answers, and the schedule's retries of what a status change could not finish.

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Map, Value};

use crate::adapters::archive::{self, Archive, ArchiveNote, PdfFile};
use crate::adapters::audit::{AuditError, AuditLog, Pending, MAX_ARCHIVE_ATTEMPTS};
use crate::adapters::seal::Seal;
use crate::adapters::wechat::Call;
use crate::domain::deadline::Deadline;
use crate::domain::invoice::{InvoiceRef, ReimburseStatus};
use crate::ops::query::{item_list, query_cards};
use crate::tenant::{AppRuntime, Deployment, Tenant};
use crate::token::Mode;

/// Archived files' links signed at once, at most this many invoices' worth.
const LINK_CONCURRENCY: usize = 5;

/// Archive retries per scheduled run, at most (the rest wait for the next hour).
const ARCHIVE_RETRIES_PER_RUN: usize = 50;

/// Pending work read per run to choose from: the oldest, so that one app's backlog cannot hide
/// another's.
const PENDING_READ_PER_RUN: i32 = 400;

/// Keeps the PDFs of invoices just closed: reads their cards (WeChat's links) and archives each,
/// all within `deadline` (the archive's share of the request).
pub async fn keep_pdfs(
    app: &AppRuntime,
    archive: &Archive,
    token: Option<String>,
    refs: &[InvoiceRef],
    deadline: &Deadline,
) -> Vec<ArchiveNote> {
    let answer = match query_cards(app, token, refs, deadline)
        .await
        .and_then(|(cards, _)| cards.into_map())
    {
        Ok(answer) => answer,
        Err(e) => {
            let why = format!("reading the invoices: {}", e.message());
            return vec![ArchiveNote::Failed(why); refs.len()];
        }
    };
    let items = item_list(&answer);
    let cards: Vec<_> = (0..refs.len())
        .map(|i| {
            items
                .get(i)
                .and_then(Value::as_object)
                .filter(|c| !c.contains_key("gateway_missing"))
        })
        .collect();
    archive
        .keep_cards(&app.config.appid, &cards, deadline)
        .await
}

/// Adds a presigned link to each archived file of the reimbursed (CLOSURE) cards:
/// `pdf_archive_url`, and `trip_pdf_archive_url` for the itinerary. Only files that are in the
/// archive get a link; nothing is added when there is no archive.
pub async fn add_archive_links(
    app: &AppRuntime,
    cards: &mut [Map<String, Value>],
    deadline: &Deadline,
) {
    let Some(archive) = &app.archive else { return };
    let closed = |c: &Map<String, Value>| {
        c.get("user_info")
            .and_then(|u| u.get("reimburse_status"))
            .and_then(Value::as_str)
            == Some(ReimburseStatus::Closure.as_str())
    };
    let files: Vec<Vec<PdfFile>> = cards
        .iter()
        .filter(|c| closed(c))
        .map(|card| archive::files(&app.config.appid, card))
        .collect();
    // A few invoices at once (a batch may hold a hundred reimbursed ones), answers in order.
    let links: Vec<_> = futures_util::stream::iter(files)
        .map(|files| async move {
            let mut links = Vec::with_capacity(files.len());
            for f in &files {
                let name = if f.key.ends_with("_trip.pdf") {
                    "trip_pdf_archive_url"
                } else {
                    "pdf_archive_url"
                };
                links.push((name, archive.link(&f.key, deadline).await));
            }
            links
        })
        .buffered(LINK_CONCURRENCY)
        .collect()
        .await;
    for (card, links) in cards.iter_mut().filter(|c| closed(c)).zip(links) {
        for (name, link) in links {
            if let Some(link) = link {
                card.insert(name.to_string(), Value::String(link));
            }
        }
    }
}

/// The app archive work belongs to, as the schedule finds it.
enum Owner<'a> {
    /// Serving, with its current access_token.
    Serving(Tenant<'a>, String),
    /// Disabled, or without a token now: the work waits.
    Unavailable,
    /// No longer registered: the work is dropped.
    Gone,
}

/// The app that closed the invoice (`Pending::app`), and its current access_token.
async fn owner<'a>(
    deployment: &'a Deployment,
    p: &Pending,
    own_token: Option<&str>,
    deadline: &Deadline,
) -> Owner<'a> {
    if p.app == deployment.config.appid {
        return match own_token {
            Some(token) => Owner::Serving(Tenant::Own(deployment.own()), token.to_string()),
            None => Owner::Unavailable,
        };
    }
    let Ok(state) = deployment.load_app(&p.app, deadline).await else {
        return Owner::Unavailable;
    };
    let Some(settings) = state.settings.clone().map(|s| *s) else {
        return Owner::Gone;
    };
    if !settings.enabled {
        return Owner::Unavailable;
    }
    let runtime = deployment.registered_runtime(settings, &state);
    match runtime.tokens.get(Mode::Auto, deadline).await {
        Ok(served) => match served.state.access_token {
            Some(token) => Owner::Serving(Tenant::Registered(runtime), token.value),
            None => Owner::Unavailable,
        },
        Err(_) => Owner::Unavailable,
    }
}

/// The schedule's archive work: what status changes left (a download or S3 that failed), each
/// invoice read again from WeChat for fresh links. Answers (stored, still pending).
pub async fn retry_archives(
    deployment: &Deployment,
    own_token: Option<&str>,
    deadline: &Deadline,
) -> (u64, u64) {
    let (Some(trail), Some(archive)) = (&deployment.audit, &deployment.archive) else {
        return (0, 0);
    };
    let pending = match trail.pending(PENDING_READ_PER_RUN, deadline).await {
        Ok(p) => fair_share(p, ARCHIVE_RETRIES_PER_RUN),
        Err(e) => {
            tracing::error!(endpoint = "schedule", fault = %e, "archive retries not read");
            return (0, 0);
        }
    };
    let mut stored = 0;
    for p in &pending {
        let (owner, token) = match owner(deployment, p, own_token, deadline).await {
            Owner::Serving(owner, token) => (owner, token),
            // Not now (no token, the app disabled): an attempt all the same, so that work which
            // cannot be done gives way in time.
            Owner::Unavailable => {
                let why = "the app is disabled or has no token";
                if let Err(e) = give_up_or_retry(trail, p, why, deadline).await {
                    tracing::error!(endpoint = "schedule", fault = %e, "archive retry not recorded");
                }
                continue;
            }
            Owner::Gone => {
                let _ = trail.drop_pending(p, deadline).await;
                continue;
            }
        };
        let code = match owner.wechat.app_secret(deadline).await {
            Ok(secret) => {
                let context = Pending::context(&p.app, &p.card_id);
                Seal::from_secret(&secret).open(&p.sealed_code, &context)
            }
            Err(e) => {
                if let Err(e) = give_up_or_retry(trail, p, &e.to_string(), deadline).await {
                    tracing::error!(endpoint = "schedule", fault = %e, "archive retry not recorded");
                }
                continue;
            }
        };
        let Some(code) = code else {
            // Sealed under an AppSecret since reset: no later run can open it either.
            let why = "its encrypt_code was sealed under an earlier AppSecret";
            tracing::error!(endpoint = "schedule", app = %p.app, fault = why, "archive given up");
            let _ = trail.drop_pending(p, deadline).await;
            continue;
        };
        let note = read_and_keep(&owner, archive, p, &code, &token, deadline).await;
        let recorded = match note {
            ArchiveNote::Stored(files) => {
                stored += 1;
                trail.pending_done(p, &files, deadline).await
            }
            ArchiveNote::Failed(why) => give_up_or_retry(trail, p, &why, deadline).await,
        };
        if let Err(e) = recorded {
            tracing::error!(endpoint = "schedule", fault = %e, "archive retry not recorded");
        }
    }
    (stored, pending.len() as u64 - stored)
}

/// Counts a failed attempt: the work is given up after `MAX_ARCHIVE_ATTEMPTS` (its audit
/// record keeps the error), otherwise left for a later run.
async fn give_up_or_retry(
    trail: &AuditLog,
    p: &Pending,
    why: &str,
    deadline: &Deadline,
) -> Result<(), AuditError> {
    if p.attempts + 1 >= MAX_ARCHIVE_ATTEMPTS {
        tracing::error!(endpoint = "schedule", app = %p.app, fault = %why, "archive given up");
        return trail.drop_pending(p, deadline).await;
    }
    let again = Pending {
        attempts: p.attempts + 1,
        ..p.clone()
    };
    trail.add_pending(&again, why, deadline).await
}

/// At most `n` of the pending work (oldest first, as read), shared out across apps in turn: one
/// app's backlog leaves room for the others'.
fn fair_share(pending: Vec<Pending>, n: usize) -> Vec<Pending> {
    let mut by_app: Vec<(String, std::collections::VecDeque<Pending>)> = Vec::new();
    for p in pending {
        match by_app.iter_mut().find(|(app, _)| *app == p.app) {
            Some((_, queue)) => queue.push_back(p),
            None => by_app.push((p.app.clone(), [p].into())),
        }
    }
    let mut chosen = Vec::with_capacity(n);
    while chosen.len() < n && by_app.iter().any(|(_, q)| !q.is_empty()) {
        for (_, queue) in by_app.iter_mut() {
            if let Some(p) = queue.pop_front().filter(|_| chosen.len() < n) {
                chosen.push(p);
            }
        }
    }
    chosen
}

/// Reads a pending invoice again (WeChat's download links do not last) and archives its files.
async fn read_and_keep(
    owner: &AppRuntime,
    archive: &Archive,
    p: &Pending,
    encrypt_code: &str,
    token: &str,
    deadline: &Deadline,
) -> ArchiveNote {
    let invoice = InvoiceRef {
        card_id: p.card_id.clone(),
        encrypt_code: encrypt_code.to_string(),
    };
    let body = Bytes::from(serde_json::to_vec(&invoice).expect("request models serialize"));
    let path = owner.wechat.paths().invoice_info;
    match owner
        .wechat
        .post(path, token, body, Call::Read, deadline)
        .await
    {
        Ok(reply) => match serde_json::from_slice::<Map<String, Value>>(&reply.body) {
            Ok(card) => archive
                .keep_cards(&owner.config.appid, &[Some(&card)], deadline)
                .await
                .remove(0),
            Err(_) => ArchiveNote::Failed("WeChat's answer is not a JSON object".into()),
        },
        Err(e) => ArchiveNote::Failed(format!("reading the invoice: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(app: &str, at: u64) -> Pending {
        Pending {
            app: app.into(),
            card_id: "c".into(),
            sealed_code: String::new(),
            code_sha256: format!("{app}{at}"),
            audit_at: format!("{at:013}#r#000"),
            attempts: 0,
            stored_at: String::new(),
        }
    }

    #[test]
    fn every_app_gets_its_turn_oldest_first() {
        let mut pending: Vec<Pending> = (0..60).map(|i| work("app#wxb", i)).collect();
        pending.push(work("wxown", 100));
        pending.push(work("wxown", 101));
        pending.push(work("app#wxc", 102));
        let chosen = fair_share(pending, 50);
        assert_eq!(chosen.len(), 50);
        let of = |app: &str| chosen.iter().filter(|p| p.app == app).count();
        assert_eq!((of("wxown"), of("app#wxc"), of("app#wxb")), (2, 1, 47));
        // Within an app, the oldest first.
        let b: Vec<&str> = chosen
            .iter()
            .filter(|p| p.app == "app#wxb")
            .map(|p| p.code_sha256.as_str())
            .take(3)
            .collect();
        assert_eq!(b, ["app#wxb0", "app#wxb1", "app#wxb2"]);
        assert!(fair_share(Vec::new(), 50).is_empty());
    }
}
