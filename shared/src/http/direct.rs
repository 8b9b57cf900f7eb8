//! Direct invocations of get-token (not through API Gateway: the hourly schedule, or an operator
//! with `lambda:InvokeFunction`): what they ask for, and their answers and log lines. A failure
//! fails the invocation, so it shows in Lambda's error metric and alarms.

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
use crate::ops::schedule::{self, Report};
use crate::ops::sign_page::seconds_left;
use crate::tenant::Deployment;
use crate::token::{Mode, Source};

/// What a direct invocation asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
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

/// A direct invocation, answered.
pub async fn invoked(deployment: &Deployment, req: &Request) -> Result<Response<Body>, Error> {
    let deadline = deadline(&deployment.config, req);
    match direct_action(req.body().as_ref())? {
        Action::Refresh => scheduled(deployment, req, &deadline).await,
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
    let report = schedule::run(deployment, deadline).await;
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
    let run = &report.registered;
    if !run.failed.is_empty() {
        let failed: Vec<String> = run
            .failed
            .iter()
            .map(|(k, c)| format!("{k}: {c}"))
            .collect();
        tracing::error!(endpoint = "schedule", function_request_id, function_name,
            apps_registered = run.registered, apps_due = run.due, apps_refreshed = run.refreshed,
            failed = %failed.join("; "), metric.apps_failed = run.failed.len() as u64,
            metric.refresh_failed = 1, "scheduled refresh failed for registered apps");
        let keys: Vec<&str> = run.failed.iter().map(|(k, _)| k.as_str()).collect();
        failures.push(format!(
            "scheduled refresh failed for {} of {} due apps ({}); the others were rotated: {}",
            run.failed.len(),
            run.due,
            keys.join(", "),
            failed.join("; ")
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
        metric.apps_registered = run.registered,
        metric.apps_refreshed = run.refreshed,
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
        "apps": {"registered": run.registered, "due": run.due, "refreshed": run.refreshed},
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
        let table: [(&str, Result<Action, &str>); 8] = [
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
