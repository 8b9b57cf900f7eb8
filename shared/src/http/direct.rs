//! Direct invocations of get-token (not through API Gateway: the hourly sweep, the rotation
//! queue's messages, or an operator with `lambda:InvokeFunction`): what they ask for, and their
//! answers and log lines. A failed sweep or rotation fails the invocation, so it shows in
//! Lambda's error metric and alarms; a failed message of the queue is reported alone
//! (`batchItemFailures`), for SQS to deliver again.

use std::time::Instant;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde_json::{json, Value};

use crate::domain::apps;
use crate::domain::clock::now_ms;
use crate::domain::config::Config;
use crate::domain::deadline::Deadline;
use crate::domain::input::truncate;
use crate::domain::state::Credential;
use crate::http::answer::cold_start;
use crate::http::envelope::json_response;
use crate::http::error::ApiError;
use crate::ops::rotate::{rotate_batch, Message, Rotation};
use crate::ops::sign_page::seconds_left;
use crate::ops::sweep::{self, Report};
use crate::tenant::Deployment;
use crate::token::{Mode, Source};

/// What a direct invocation asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// An SQS event of the rotation queue: the apps to rotate, by message id.
    Rotations(Vec<(String, String)>),
    /// `{"source":"scheduler","action":"refresh"}` (or no action): the hourly refresh.
    Refresh,
    /// `{"action":"rotate"}`: replace the access_token now, whatever its state and the cooldown
    /// (a leaked token, an AppSecret reset). Only AWS credentials reach it. With `"appid"` (and
    /// `"agentid"`): a registered app's.
    Rotate {
        appid: Option<String>,
        agentid: Option<String>,
    },
}

pub fn direct_action(body: &[u8]) -> Result<Action, String> {
    let event: Value = serde_json::from_slice(body)
        .map_err(|_| "direct invocation: the event is not JSON".to_string())?;
    if let Some(records) = event.get("Records") {
        return sqs_records(records).map(Action::Rotations);
    }
    match event.get("action").and_then(Value::as_str) {
        None | Some("refresh") => Ok(Action::Refresh),
        Some("rotate") => {
            let id = |name: &str| -> Result<Option<String>, String> {
                match event.get(name) {
                    None => Ok(None),
                    Some(Value::String(v)) => {
                        apps::check_id(name, v).map_err(|e| e.to_string())?;
                        Ok(Some(v.clone()))
                    }
                    Some(_) => Err(format!("direct invocation: `{name}` must be a string")),
                }
            };
            Ok(Action::Rotate {
                appid: id("appid")?,
                agentid: id("agentid")?,
            })
        }
        Some(other) => Err(format!(
            "direct invocation: unknown action `{}` (refresh or rotate)",
            truncate(other)
        )),
    }
}

/// An SQS event's records, as (message id, body): every record from SQS, with both.
/// (Three fields of a documented event: aws_lambda_events' SQS types would add a dependency for
/// them.)
fn sqs_records(records: &Value) -> Result<Vec<(String, String)>, String> {
    let bad = || "direct invocation: `Records` is not an SQS event".to_string();
    let records = records.as_array().ok_or_else(bad)?;
    records
        .iter()
        .map(|r| {
            let field = |k: &str| r.get(k).and_then(Value::as_str);
            match (field("eventSource"), field("messageId"), field("body")) {
                (Some("aws:sqs"), Some(id), Some(body)) => Ok((id.to_string(), body.to_string())),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// Apps named in a failed sweep's error and log line.
const SHOWN_FAILURES: usize = 10;

/// A direct invocation, answered.
pub async fn invoked(deployment: &Deployment, req: &Request) -> Result<Response<Body>, Error> {
    let deadline = deadline(&deployment.config, req);
    match direct_action(req.body().as_ref())? {
        Action::Refresh => scheduled(deployment, req, &deadline).await,
        Action::Rotations(records) => Ok(rotations(deployment, req, records, &deadline).await),
        Action::Rotate { appid, agentid } => {
            rotate(
                deployment,
                req,
                appid.as_deref(),
                agentid.as_deref(),
                &deadline,
            )
            .await
        }
    }
}

/// The invocation's deadline, as for a request.
fn deadline(config: &Config, req: &Request) -> Deadline {
    let lambda_deadline = req.lambda_context_ref().map_or(0, |c| c.deadline);
    let t = &config.timing;
    Deadline::from_lambda(
        lambda_deadline,
        now_ms(),
        t.deadline_reserve,
        t.request_budget,
    )
}

/// The operator's rotation: a new access_token (and tickets) fetched and published now. Answers
/// what was published (no credential); fails the invocation when WeChat or the store did.
async fn rotate(
    deployment: &Deployment,
    req: &Request,
    appid: Option<&str>,
    agentid: Option<&str>,
    deadline: &Deadline,
) -> Result<Response<Body>, Error> {
    let app = deployment
        .resolve(appid, agentid, deadline)
        .await
        .map_err(|e| format!("rotation: {}", ApiError::from(e).errmsg()))?;
    let started = Instant::now();
    let function_request_id = req.lambda_context_ref().map(|c| c.request_id.as_str());
    let function_name = deployment.function_name.as_deref();
    let cold_start = cold_start();
    let result = app.tokens.get(Mode::Rotate, deadline).await;
    let ms = started.elapsed().as_millis() as u64;
    let served = match result {
        Ok(served) => served,
        Err(e) => {
            let cause = e.cause();
            let errcode = ApiError::from(e).errcode();
            tracing::error!(endpoint = "rotate", function_request_id, function_name, cold_start,
                errcode, cause = %cause, ms, "operator rotation failed");
            return Err(format!("rotation failed: {cause}").into());
        }
    };
    if let Some(fault) = &served.fault {
        let cause = fault.cause();
        tracing::error!(endpoint = "rotate", function_request_id, function_name, cold_start,
            source = served.source.as_str(), cause = %cause, ms, "operator rotation incomplete");
        return Err(format!("rotation incomplete: {cause}").into());
    }
    tracing::info!(
        endpoint = "rotate",
        app = app.name(),
        function_request_id,
        function_name,
        cold_start,
        source = served.source.as_str(),
        version = served.state.version,
        ms,
        "operator rotation"
    );
    let body = json!({
        "rotated": served.source == Source::Refreshed,
        "source": served.source.as_str(),
        "version": served.state.version,
    });
    Ok(json_response(StatusCode::OK, body.to_string()))
}

/// The rotation queue's worker: rotates each message's app and answers the messages that failed
/// (`batchItemFailures`: SQS deletes the others), so one app's failure is retried alone. One log
/// line per invocation, with what each app's message came to.
async fn rotations(
    deployment: &Deployment,
    req: &Request,
    records: Vec<(String, String)>,
    deadline: &Deadline,
) -> Response<Body> {
    let started = Instant::now();
    let function_request_id = req.lambda_context_ref().map(|c| c.request_id.as_str());
    let function_name = deployment.function_name.as_deref();
    let cold_start = cold_start();
    let messages = records
        .into_iter()
        .map(|(id, body)| Message { id, body })
        .collect();
    let done = rotate_batch(deployment, messages, deadline).await;
    let ms = started.elapsed().as_millis() as u64;
    let count = |kind: &str| done.iter().filter(|(_, _, r)| r.as_str() == kind).count() as u64;
    let failed: Vec<String> = done
        .iter()
        .filter_map(|(m, app, r)| match r {
            Rotation::Failed(cause) => Some(format!(
                "{}: {cause}",
                app.as_deref().unwrap_or(m.id.as_str())
            )),
            _ => None,
        })
        .collect();
    let failures: Vec<Value> = done
        .iter()
        .filter(|(_, _, r)| matches!(r, Rotation::Failed(_)))
        .map(|(m, _, _)| json!({"itemIdentifier": m.id}))
        .collect();
    let (rotated, not_due, gone) = (count("rotated"), count("not_due"), count("gone"));
    if failed.is_empty() {
        tracing::info!(
            endpoint = "rotation",
            function_request_id,
            function_name,
            cold_start,
            messages = done.len() as u64,
            ms,
            metric.apps_rotated = rotated,
            metric.apps_not_due = not_due,
            metric.apps_gone = gone,
            metric.apps_failed = 0u64,
            "rotation"
        );
    } else {
        tracing::error!(endpoint = "rotation", function_request_id, function_name, cold_start,
            messages = done.len() as u64, ms, metric.apps_rotated = rotated,
            metric.apps_not_due = not_due, metric.apps_gone = gone,
            metric.apps_failed = failed.len() as u64,
            failed = %failed.iter().take(SHOWN_FAILURES).cloned().collect::<Vec<_>>().join("; "),
            "rotation failed for some apps");
    }
    json_response(
        StatusCode::OK,
        json!({"batchItemFailures": failures}).to_string(),
    )
}

/// The scheduled refresh: rotates what would expire before the next run and answers a small
/// JSON result. Whenever something that was due could not be rotated (even while the stored
/// credentials stay alive and keep being served), the invocation fails with the cause, so it
/// shows in Lambda's error metric and alarms hours before the token dies.
async fn scheduled(
    deployment: &Deployment,
    req: &Request,
    deadline: &Deadline,
) -> Result<Response<Body>, Error> {
    let started = Instant::now();
    let function_request_id = req.lambda_context_ref().map(|c| c.request_id.as_str());
    let function_name = deployment.function_name.as_deref();
    let cold_start = cold_start();
    let report = sweep::run(deployment, deadline).await;
    let ms = started.elapsed().as_millis() as u64;
    let served = report.own.as_ref().ok();
    let source = served.map(|s| s.source.as_str());
    let token_left_secs = served.and_then(|s| seconds_left(deployment.own(), s));
    let mut failures = Vec::new();
    if let Some(e) = report.own_failure() {
        let cause = e.cause();
        let errcode = ApiError::from(e.clone()).errcode();
        tracing::error!(endpoint = "schedule", function_request_id, function_name, cold_start,
            source, errcode, cause = %cause, ms, metric.refresh_failed = 1,
            metric.token_left_secs = token_left_secs, "scheduled refresh failed");
        let still = if served.is_some() {
            "; the stored credentials are still alive and served"
        } else {
            ""
        };
        failures.push(format!("scheduled refresh failed: {cause}{still}"));
    }
    if let Some(Err(cause)) = &report.component {
        // Logged and alarmed, not a failure of the run (see `Report::component`).
        tracing::error!(endpoint = "schedule", function_request_id, function_name,
            cause = %cause, metric.component_refresh_failed = 1,
            "the third-party platform's token could not be refreshed");
    }
    let run = &report.registered;
    if !run.failed.is_empty() {
        // Named up to a few: thousands of apps failing alike (the queue unreachable) make one
        // readable line, not a megabyte.
        let shown: Vec<String> = run
            .failed
            .iter()
            .take(SHOWN_FAILURES)
            .map(|(k, c)| format!("{k}: {c}"))
            .collect();
        let more = run.failed.len().saturating_sub(SHOWN_FAILURES);
        let more = if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        };
        let failed = format!("{}{more}", shown.join("; "));
        tracing::error!(endpoint = "schedule", function_request_id, function_name,
            apps_due = run.due, apps_queued = run.queued, apps_refreshed = run.refreshed,
            failed = %failed, metric.apps_failed = run.failed.len() as u64,
            metric.refresh_failed = 1, "scheduled refresh failed for registered apps");
        failures.push(format!(
            "scheduled refresh failed for {} of {} due apps; the others were sent or rotated: {failed}",
            run.failed.len(),
            run.due,
        ));
    }
    if !failures.is_empty() {
        return Err(failures.join("; and ").into());
    }
    let served = served.expect("no failure means an answer");
    let refreshed = served.source == Source::Refreshed;
    tracing::info!(
        endpoint = "schedule",
        function_request_id,
        function_name,
        cold_start,
        source,
        version = served.state.version,
        ms,
        metric.refresh_failed = 0,
        metric.refreshed = u64::from(refreshed),
        metric.token_left_secs = token_left_secs,
        metric.apps_due = run.due,
        metric.apps_queued = run.queued,
        metric.apps_refreshed = run.refreshed,
        apps_listed = run.listed,
        metric.archives_stored = report.archives_stored,
        metric.archives_pending = report.archives_pending,
        "scheduled refresh"
    );
    Ok(json_response(
        StatusCode::OK,
        summary(deployment, &report, token_left_secs).to_string(),
    ))
}

/// The schedule's answer: what it rotated and what is left of each credential.
fn summary(deployment: &Deployment, report: &Report, token_left_secs: Option<u64>) -> Value {
    let now = deployment.tokens.clock().now_ms();
    let left = |c: &Option<Credential>| {
        c.as_ref()
            .map(|c| c.expires_at_ms.saturating_sub(now) / 1000)
            .unwrap_or(0)
    };
    let run = &report.registered;
    let (source, version, jsapi, wx_card) = match &report.own {
        Ok(s) => (
            Some(s.source),
            s.state.version,
            left(&s.state.jsapi_ticket),
            left(&s.state.wx_card_ticket),
        ),
        Err(_) => (None, 0, 0, 0),
    };
    json!({
        "refreshed": source == Some(Source::Refreshed),
        "source": source.map(Source::as_str),
        "version": version,
        // As the gateway reads it: a fetch mark ends the token early.
        "access_token_expires_in": token_left_secs.unwrap_or(0),
        "jsapi_ticket_expires_in": jsapi,
        "wx_card_ticket_expires_in": wx_card,
        "archives": {"stored": report.archives_stored, "pending": report.archives_pending},
        "apps": {"due": run.due, "queued": run.queued, "refreshed": run.refreshed, "listed": run.listed},
        "component": report.component.as_ref().map(|c| match c {
            Ok(s) => json!({"source": s.source.as_str(), "access_token_expires_in": left(&s.state.access_token)}),
            Err(cause) => json!({"error": cause}),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_invocations_are_read_strictly() {
        let rotate = |appid: Option<&str>, agentid: Option<&str>| Action::Rotate {
            appid: appid.map(str::to_string),
            agentid: agentid.map(str::to_string),
        };
        let sqs = |id: &str, body: &str| {
            json!({"Records": [{"messageId": id, "eventSource": "aws:sqs", "body": body,
                "receiptHandle": "r", "attributes": {}}]})
            .to_string()
        };
        let rotations = sqs("m1", r#"{"app":"app#wx1"}"#);
        let not_sqs = rotations.replace("aws:sqs", "aws:sns");
        let no_body =
            json!({"Records": [{"messageId": "m1", "eventSource": "aws:sqs"}]}).to_string();
        let table: [(&str, Result<Action, &str>); 12] = [
            (
                &rotations,
                Ok(Action::Rotations(vec![(
                    "m1".into(),
                    r#"{"app":"app#wx1"}"#.into(),
                )])),
            ),
            (r#"{"Records":[]}"#, Ok(Action::Rotations(vec![]))),
            (&not_sqs, Err("not an SQS event")),
            (&no_body, Err("not an SQS event")),
            (
                r#"{"source":"scheduler","action":"refresh"}"#,
                Ok(Action::Refresh),
            ),
            ("{}", Ok(Action::Refresh)),
            (r#"{"action":"rotate"}"#, Ok(rotate(None, None))),
            (
                r#"{"action":"rotate","appid":"ww1","agentid":"1000002"}"#,
                Ok(rotate(Some("ww1"), Some("1000002"))),
            ),
            (
                r#"{"action":"rotate","appid":"a/b"}"#,
                Err("appid: 1 to 64"),
            ),
            (
                r#"{"action":"rotate","appid":1}"#,
                Err("`appid` must be a string"),
            ),
            (r#"{"action":"drop"}"#, Err("unknown action `drop`")),
            ("not json", Err("the event is not JSON")),
        ];
        for (event, want) in table {
            match (direct_action(event.as_bytes()), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{event}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{event}: {got}"),
                (got, want) => panic!("{event}: {got:?}, wanted {want:?}"),
            }
        }
    }
}
