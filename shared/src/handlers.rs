//! The three endpoints of the contract and the scheduled refresh. Each request is answered in the
//! documented envelope and logged as exactly one structured line.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use lambda_http::http::header::{self, HeaderValue};
use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::answers;
use crate::audit::{ArchiveNote, AuditEntry, Pending};
use crate::config::{self, Config, Platform};
use crate::deadline::Deadline;
use crate::envelope::{json_response, ApiError, MISSING_TOKEN};
use crate::invoice::{
    parse_body, GetInvoiceBatchRequest, InvoiceRef, ReimburseStatus, UpdateInvoiceStatusRequest,
    UpdateStatusRequest, Validate,
};
use crate::outcome::{self, Settled};
use crate::sign;
use crate::telemetry;
use crate::token::{guaranteed_secs, now_ms, Mode, Served, Source, DEAD_TOKEN_ERRCODES};
use crate::wechat::{Call, WeChatError};
use crate::App;

/// The request's app (`tenant_for`), or an early return of the answer refusing it.
macro_rules! tenant_or_refuse {
    ($app:expr, $req:expr, $endpoint:expr) => {
        match tenant_for($app, $req, $endpoint).await {
            Ok(tenant) => tenant,
            Err(refusal) => return Ok(*refusal),
        }
    };
}

pub const GET_TOKEN_PATH: &str = "/core/r/api/weChat/getToken";
pub const GET_INVOICE_BATCH: &str = "/core/r/api/weChat/getInvoiceBatch";
pub const UPDATE_STATUS: &str = "/core/r/api/weChat/updateStatus";
pub const GET_INVOICE_INFO: &str = "/core/r/api/weChat/getInvoiceInfo";
pub const UPDATE_INVOICE_STATUS: &str = "/core/r/api/weChat/updateInvoiceStatus";

/// Longest `token` accepted (WeChat reserves 512 characters for an access_token).
const MAX_TOKEN: usize = 512;

/// What one request did, for its log line.
#[derive(Default)]
struct Note {
    source: Option<&'static str>,
    fault: Option<String>,
    /// Seconds the access_token answered keeps working (getToken).
    token_left_secs: Option<u64>,
}

/// The getToken answer, fields in the spec's order.
#[derive(Serialize)]
struct TokenAnswer<'a> {
    /// Left out in hardened mode (`EXPOSE_ACCESS_TOKEN=false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token: Option<&'a str>,
    expires_in: u64,
    appid: &'a str,
    timestamp: u64,
    noncestr: String,
    jsapi_ticket: &'a str,
    url: &'a str,
    signature: String,
    /// For `wx.invoke('chooseInvoice', {timestamp, nonceStr: noncestr, signType: sign_type,
    /// cardSign: card_sign})`: signed with the wx_card ticket, the same timestamp and noncestr.
    #[serde(skip_serializing_if = "Option::is_none")]
    card_sign: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sign_type: Option<&'static str>,
}

/// Longest page URL accepted for signing.
const MAX_URL: usize = 4096;

/// `GET /core/r/api/weChat/getToken`, and the hourly scheduled event (which reaches lambda_http
/// as a pass-through request).
pub async fn get_token(app: &App, req: Request) -> Result<Response<Body>, Error> {
    if matches!(req.request_context_ref(), Some(RequestContext::PassThrough)) {
        return match direct_action(req.body().as_ref()) {
            Ok(Action::Refresh) => scheduled(app, &req).await,
            Ok(Action::Rotate { appid, agentid }) => {
                let deadline = deadline(&app.config, &req);
                let tenant = app
                    .resolve(appid.as_deref(), agentid.as_deref(), &deadline)
                    .await
                    .map_err(|e| format!("rotation: {}", e.errmsg()))?;
                rotate(&tenant, &req).await
            }
            Err(e) => Err(e.into()),
        };
    }
    let started = Instant::now();
    let tenant = tenant_or_refuse!(app, &req, GET_TOKEN_PATH);
    let app = &*tenant;
    if let Some(resp) = preflight(&app.config, &req, GET_TOKEN_PATH, "GET") {
        return Ok(resp);
    }
    let (result, spent) = telemetry::measured(get_token_inner(app, &req)).await;
    Ok(answer(app, GET_TOKEN_PATH, &req, started, spent, result))
}

/// The query parameters that choose the app, on every endpoint.
const APP_PARAMS: [&str; 2] = ["appid", "agentid"];

/// The app the request names (`appid`, and `agentid` for a WeCom agent), this deployment's own
/// when it names none.
async fn tenant<'a>(app: &'a App, req: &Request) -> Result<crate::app::Tenant<'a>, ApiError> {
    let params = req.query_string_parameters_ref();
    let mut named = [None, None];
    for (slot, name) in named.iter_mut().zip(APP_PARAMS) {
        let values = params.and_then(|p| p.all(name)).unwrap_or_default();
        match values.as_slice() {
            [] => {}
            [one] => {
                crate::apps::check_id(name, one)?;
                *slot = Some(*one);
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "{name}: given more than once"
                )));
            }
        }
    }
    let [appid, agentid] = named;
    if agentid.is_some() && appid.is_none() {
        return Err(ApiError::bad_request(
            "agentid: only with appid (the corpid)",
        ));
    }
    app.resolve(appid, agentid, &deadline(&app.config, req))
        .await
}

/// The request's app, or the answer refusing it (logged, with the deployment's own CORS).
async fn tenant_for<'a>(
    app: &'a App,
    req: &Request,
    endpoint: &str,
) -> Result<crate::app::Tenant<'a>, Box<Response<Body>>> {
    let started = Instant::now();
    tenant(app, req).await.map_err(|e| {
        let spent = telemetry::Spent::default();
        Box::new(answer(app, endpoint, req, started, spent, Err(e)))
    })
}

/// Everything getToken checks before any I/O: path, method, query; the mode and the page URL to
/// sign (the configured one when the caller names none).
pub fn parse_get_token(config: &Config, req: &Request) -> Result<(Mode, String), ApiError> {
    route(req, GET_TOKEN_PATH, Method::GET)?;
    let query = query(req, &["type", "url", "appid", "agentid"])?;
    let mode = match query.get("type").copied() {
        None | Some("auto") => Mode::Auto,
        Some("manual") => Mode::Manual,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "type: must be `auto` or `manual`, not `{}`",
                truncate(other)
            )))
        }
    };
    let url = match query.get("url") {
        None if config.jssdk_url.is_empty() && config.timing.tickets => {
            return Err(ApiError::bad_request(
                "url: required for this app (it has no page URL configured)",
            ))
        }
        None => config.jssdk_url.clone(),
        Some(url) => page_url(config, url)?,
    };
    Ok((mode, url))
}

/// The page URL to sign, as `wx.config` sees it: the query value (percent-decoded once, by the
/// query parsing) up to any `#`, otherwise byte for byte; only for the allowed origins.
fn page_url(config: &Config, url: &str) -> Result<String, ApiError> {
    if url.chars().count() > MAX_URL {
        return Err(ApiError::bad_request(format!(
            "url: longer than {MAX_URL} characters"
        )));
    }
    let page = url.split('#').next().unwrap_or_default();
    let Some(origin) = config::origin_of(page) else {
        return Err(ApiError::bad_request(format!(
            "url: `{}` is not an http(s) URL (send encodeURIComponent(location.href.split('#')[0]))",
            truncate(page)
        )));
    };
    if !config.allowed_origins.contains(&origin) {
        return Err(ApiError::bad_request(format!(
            "url: origin {} is not allowed; allowed: {}",
            truncate(&origin),
            config.allowed_origins.join(", ")
        )));
    }
    Ok(page.to_string())
}

/// The instant this request must have answered by: Lambda's deadline less the reserve for
/// writing the answer (a fixed budget when the runtime gives none).
pub fn deadline(config: &Config, req: &Request) -> Deadline {
    let lambda_deadline = req.lambda_context_ref().map_or(0, |c| c.deadline);
    let t = &config.timing;
    Deadline::from_lambda(
        lambda_deadline,
        now_ms(),
        t.deadline_reserve,
        t.request_budget,
    )
}

async fn get_token_inner(app: &App, req: &Request) -> Result<(Response<Body>, Note), ApiError> {
    let (mode, url) = parse_get_token(&app.config, req)?;
    let served = app.tokens.get(mode, &deadline(&app.config, req)).await?;
    let resp = token_answer(app, &served, &url)?;
    let mut note = note(&served);
    note.token_left_secs = seconds_left(app, &served.state);
    Ok((resp, note))
}

/// Seconds until the stored access_token stops working (as the gateway reads it).
fn seconds_left(app: &App, state: &crate::store::TokenState) -> Option<u64> {
    let end = crate::lifecycle::token_dies_at(state, app.tokens.timing())?;
    Some(end.saturating_sub(app.tokens.clock().now_ms()) / 1000)
}

/// getToken for a mini program: the token and its life only (`wx.chooseInvoice` needs no
/// signature; its invoices are queried through this gateway with the mini program's token).
#[derive(Serialize)]
struct MiniTokenAnswer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token: Option<&'a str>,
    expires_in: u64,
    appid: &'a str,
}

fn token_answer(app: &App, served: &Served, url: &str) -> Result<Response<Body>, ApiError> {
    let Some(token) = &served.state.access_token else {
        return Err(ApiError::Unavailable("no access_token stored".into()));
    };
    let now = app.tokens.clock().now_ms();
    let access_token = app
        .config
        .expose_access_token
        .then_some(token.value.as_str());
    let expires_in = guaranteed_secs(
        &served.state,
        app.tokens.timing(),
        now,
        app.wechat.new_token_ends_previous(),
    );
    let appid = app.config.appid.as_str();
    if !app.config.timing.tickets {
        let answer = MiniTokenAnswer {
            access_token,
            expires_in,
            appid,
        };
        let body = serde_json::to_string(&answer).expect("plain struct serializes");
        return Ok(json_response(StatusCode::OK, body));
    }
    let Some(ticket) = &served.state.jsapi_ticket else {
        return Err(ApiError::Unavailable("no jsapi_ticket stored".into()));
    };
    let timestamp = now / 1000;
    let noncestr = sign::noncestr();
    let signature = sign::jsapi_signature(&ticket.value, &noncestr, timestamp, url);
    let card_sign = served
        .state
        .wx_card_ticket
        .as_ref()
        .filter(|c| c.valid_for(now, 0))
        .map(|c| sign::card_sign(&c.value, appid, timestamp, &noncestr));
    let answer = TokenAnswer {
        access_token,
        expires_in,
        appid,
        timestamp,
        noncestr,
        jsapi_ticket: &ticket.value,
        url,
        signature,
        sign_type: card_sign.as_ref().map(|_| "SHA1"),
        card_sign,
    };
    let body = serde_json::to_string(&answer).expect("plain struct serializes");
    Ok(json_response(StatusCode::OK, body))
}

fn note(served: &Served) -> Note {
    Note {
        source: Some(served.source.as_str()),
        fault: served.fault.as_ref().map(ApiError::errmsg),
        token_left_secs: None,
    }
}

/// What a direct invocation of get-token (not through API Gateway: the schedule, or an operator
/// with `lambda:InvokeFunction`) asks for.
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
    let event: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| "direct invocation: the event is not JSON".to_string())?;
    match event.get("action").and_then(serde_json::Value::as_str) {
        None | Some("refresh") => Ok(Action::Refresh),
        Some("rotate") => {
            let id = |name: &str| -> Result<Option<String>, String> {
                match event.get(name) {
                    None => Ok(None),
                    Some(serde_json::Value::String(v)) => {
                        crate::apps::check_id(name, v).map_err(|e| e.errmsg())?;
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

/// The operator's rotation: a new access_token (and tickets) fetched and published now. Answers
/// what was published (no credential); fails the invocation when WeChat or the store did.
async fn rotate(app: &App, req: &Request) -> Result<Response<Body>, Error> {
    let started = Instant::now();
    let function_request_id = req.lambda_context_ref().map(|c| c.request_id.as_str());
    let cold_start = cold_start();
    let result = app
        .tokens
        .get(Mode::Rotate, &deadline(&app.config, req))
        .await;
    let ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(served) if served.fault.is_none() => {
            tracing::info!(
                endpoint = "rotate",
                app = app_name(app).as_ref(),
                function_request_id,
                function_name = app.function_name.as_deref(),
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
        Ok(served) => {
            let cause = served.fault.as_ref().map(cause).unwrap_or_default();
            tracing::error!(
                endpoint = "rotate",
                function_request_id,
                function_name = app.function_name.as_deref(),
                cold_start,
                source = served.source.as_str(),
                cause = %cause,
                ms,
                "operator rotation incomplete"
            );
            Err(format!("rotation incomplete: {cause}").into())
        }
        Err(e) => {
            let cause = cause(&e);
            tracing::error!(
                endpoint = "rotate",
                function_request_id,
                function_name = app.function_name.as_deref(),
                cold_start,
                errcode = e.errcode(),
                cause = %cause,
                ms,
                "operator rotation failed"
            );
            Err(format!("rotation failed: {cause}").into())
        }
    }
}

/// The scheduled refresh: rotates what would expire before the next run and answers a small
/// JSON result. Whenever something that was due could not be rotated (even while the stored
/// credentials stay alive and keep being served), the invocation fails with the cause, so it
/// shows in Lambda's error metric and alarms hours before the token dies.
async fn scheduled(app: &App, req: &Request) -> Result<Response<Body>, Error> {
    let started = Instant::now();
    let function_request_id = req.lambda_context_ref().map(|c| c.request_id.as_str());
    let cold_start = cold_start();
    let deadline = deadline(&app.config, req);
    let result = app.tokens.get(Mode::Scheduled, &deadline).await;
    let ms = started.elapsed().as_millis() as u64;
    let (served, failure) = match result {
        Ok(served) => {
            let failure = served.fault.clone();
            (Some(served), failure)
        }
        Err(e) => (None, Some(e)),
    };
    // Every step runs whatever the others did: the own app failing must not leave the registered
    // apps' tokens to expire, nor one registered app stop the archive retries.
    let run = refresh_registered(app, &deadline).await;
    let own_token = served
        .as_ref()
        .and_then(|s| s.state.access_token.as_ref())
        .map(|c| c.value.as_str());
    let (archived, archive_pending) = retry_archives(app, own_token, &deadline).await;
    let now = app.tokens.clock().now_ms();
    let left = |c: &Option<crate::store::Credential>| {
        c.as_ref()
            .map(|c| c.expires_at_ms.saturating_sub(now) / 1000)
            .unwrap_or(0)
    };
    let source = served.as_ref().map(|s| s.source.as_str());
    let token_left_secs = served.as_ref().and_then(|s| seconds_left(app, &s.state));
    let mut failures = Vec::new();
    if let Some(e) = &failure {
        let cause = cause(e);
        tracing::error!(
            endpoint = "schedule",
            function_request_id,
            function_name = app.function_name.as_deref(),
            cold_start,
            source,
            errcode = e.errcode(),
            cause = %cause,
            ms,
            metric.refresh_failed = 1,
            metric.token_left_secs = token_left_secs,
            "scheduled refresh failed"
        );
        let still = if served.is_some() {
            "; the stored credentials are still alive and served"
        } else {
            ""
        };
        failures.push(format!("scheduled refresh failed: {cause}{still}"));
    }
    if !run.failed.is_empty() {
        let failed: Vec<String> = run
            .failed
            .iter()
            .map(|(k, c)| format!("{k}: {c}"))
            .collect();
        tracing::error!(
            endpoint = "schedule",
            function_request_id,
            function_name = app.function_name.as_deref(),
            apps_registered = run.registered,
            apps_due = run.due,
            apps_refreshed = run.refreshed,
            failed = %failed.join("; "),
            metric.apps_failed = run.failed.len() as u64,
            metric.refresh_failed = 1,
            "scheduled refresh failed for registered apps"
        );
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
    let s = &served.state;
    tracing::info!(
        endpoint = "schedule",
        function_request_id,
        function_name = app.function_name.as_deref(),
        cold_start,
        source,
        version = s.version,
        ms,
        metric.refresh_failed = 0,
        metric.refreshed = u64::from(served.source == Source::Refreshed),
        metric.token_left_secs = token_left_secs,
        metric.apps_registered = run.registered,
        metric.apps_refreshed = run.refreshed,
        metric.archives_stored = archived,
        metric.archives_pending = archive_pending,
        "scheduled refresh"
    );
    let body = json!({
        "refreshed": served.source == Source::Refreshed,
        "source": served.source.as_str(),
        "version": s.version,
        // As the gateway reads it: a fetch mark ends the token early.
        "access_token_expires_in": token_left_secs.unwrap_or(0),
        "jsapi_ticket_expires_in": left(&s.jsapi_ticket),
        "wx_card_ticket_expires_in": left(&s.wx_card_ticket),
        "archives": {"stored": archived, "pending": archive_pending},
        "apps": {"registered": run.registered, "due": run.due, "refreshed": run.refreshed},
    });
    Ok(json_response(StatusCode::OK, body.to_string()))
}

/// What the schedule did for the registered apps.
#[derive(Default)]
struct RegisteredRun {
    registered: u64,
    due: u64,
    refreshed: u64,
    /// Apps that could not be rotated, by key, with the cause.
    failed: Vec<(String, String)>,
}

/// The schedule's run over the registered apps: every enabled app whose credentials will not
/// last until the next run is refreshed under its own lock, `SCHEDULE_CONCURRENCY` at once; one
/// app failing neither delays nor fails the others. Apps not due cost nothing beyond the scan.
async fn refresh_registered(app: &App, deadline: &Deadline) -> RegisteredRun {
    use futures_util::StreamExt;
    let mut run = RegisteredRun::default();
    let apps = match app.registered_apps().await {
        Ok(apps) => apps,
        Err(e) => {
            run.failed.push(("app registry".into(), cause(&e)));
            return run;
        }
    };
    let now = app.tokens.clock().now_ms();
    let mut due = Vec::new();
    for (key, state) in apps {
        let Some(settings) = state.settings.clone().map(|s| *s).filter(|s| s.enabled) else {
            continue;
        };
        run.registered += 1;
        let mut timing = app.config.timing;
        timing.tickets = settings.kind.tickets();
        if !crate::lifecycle::satisfied(&crate::lifecycle::Want::Scheduled, &state, now, &timing) {
            due.push((key, settings, state));
        }
    }
    run.due = due.len() as u64;
    let results: Vec<(String, Result<Served, ApiError>)> = futures_util::stream::iter(due)
        .map(|(key, settings, state)| async move {
            let runtime = app.registered_runtime(settings, &state);
            let result = runtime.tokens.get(Mode::Scheduled, deadline).await;
            (key, result)
        })
        .buffer_unordered(app.config.schedule_concurrency)
        .collect()
        .await;
    for (key, result) in results {
        match result {
            Ok(served) if served.fault.is_none() => run.refreshed += 1,
            Ok(served) => run
                .failed
                .push((key, cause(&served.fault.expect("a fault")))),
            Err(e) => run.failed.push((key, cause(&e))),
        }
    }
    run.failed.sort();
    run
}

/// The app archive work belongs to, as the schedule finds it.
enum Owner<'a> {
    /// Serving, with its current access_token.
    Serving(crate::app::Tenant<'a>, String),
    /// Disabled, or without a token now: the work waits.
    Unavailable,
    /// No longer registered: the work is dropped.
    Gone,
}

/// A registered app (by key) and its current access_token.
async fn registered_with_token<'a>(app: &'a App, key: &str, deadline: &Deadline) -> Owner<'a> {
    let Ok(state) = app.tokens.load_key(key, deadline).await else {
        return Owner::Unavailable;
    };
    let Some(settings) = state.settings.clone().map(|s| *s) else {
        return Owner::Gone;
    };
    if !settings.enabled {
        return Owner::Unavailable;
    }
    let runtime = app.registered_runtime(settings, &state);
    match runtime.tokens.get(Mode::Auto, deadline).await {
        Ok(served) => match served.state.access_token {
            Some(token) => Owner::Serving(crate::app::Tenant::Registered(runtime), token.value),
            None => Owner::Unavailable,
        },
        Err(_) => Owner::Unavailable,
    }
}

/// Archive retries per scheduled run, at most (the rest wait for the next hour).
const ARCHIVE_RETRIES_PER_RUN: i32 = 50;

/// The schedule's second job: the archive work status changes left (a download or S3 that
/// failed), each invoice read again from WeChat for fresh links. Answers (stored, still pending).
async fn retry_archives(app: &App, token: Option<&str>, deadline: &Deadline) -> (u64, u64) {
    let (Some(audit), Some(archive)) = (&app.audit, &app.archive) else {
        return (0, 0);
    };
    let pending = match audit.pending(ARCHIVE_RETRIES_PER_RUN, deadline).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(endpoint = "schedule", fault = %e, "archive retries not read");
            return (0, 0);
        }
    };
    let mut stored = 0;
    for p in &pending {
        // The app the invoice was closed by: this deployment's own, or a registered one.
        let owner = match (p.app == app.config.appid, token) {
            (true, Some(token)) => Owner::Serving(crate::app::Tenant::Own(app), token.to_string()),
            (true, None) => Owner::Unavailable,
            (false, _) => registered_with_token(app, &p.app, deadline).await,
        };
        let (owner, token) = match owner {
            Owner::Serving(owner, token) => (owner, token),
            // Not now (no token, the app disabled): left for a later run.
            Owner::Unavailable => continue,
            Owner::Gone => {
                let _ = audit.drop_pending(p, deadline).await;
                continue;
            }
        };
        let invoice = InvoiceRef {
            card_id: p.card_id.clone(),
            encrypt_code: p.encrypt_code.clone(),
        };
        let body = Bytes::from(serde_json::to_vec(&invoice).expect("request models serialize"));
        let path = owner.wechat.paths().invoice_info;
        let note = match owner
            .wechat
            .post(path, &token, body, Call::Read, deadline)
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
        };
        let recorded = match note {
            ArchiveNote::Stored(files) => {
                stored += 1;
                audit.pending_done(p, &files, deadline).await
            }
            ArchiveNote::Failed(why) if p.attempts + 1 >= crate::audit::MAX_ARCHIVE_ATTEMPTS => {
                tracing::error!(endpoint = "schedule", app = %p.app, fault = %why, "archive given up");
                audit.drop_pending(p, deadline).await
            }
            ArchiveNote::Failed(why) => {
                let again = Pending {
                    attempts: p.attempts + 1,
                    ..p.clone()
                };
                audit.add_pending(&again, &why, deadline).await
            }
        };
        if let Err(e) = recorded {
            tracing::error!(endpoint = "schedule", fault = %e, "archive retry not recorded");
        }
    }
    (stored, pending.len() as u64 - stored)
}

/// What broke, in words an operator acts on: WeChat's errcode, WeChat unreachable, DynamoDB, or
/// the secret.
pub fn cause(e: &ApiError) -> String {
    match e {
        ApiError::WeChat(b) => format!("WeChat errcode {}: {}", b.errcode, e.errmsg()),
        ApiError::WeChatTimeout(_) | ApiError::WeChatUnreachable(_) => e.errmsg(),
        ApiError::Internal { detail, .. } if detail.starts_with("AppSecret") => {
            format!("secret: {detail}")
        }
        ApiError::Internal { detail, .. } => format!("DynamoDB: {detail}"),
        other => other.errmsg(),
    }
}

/// The get-invoice-batch function: the invoice queries, batch and single, by path.
pub async fn invoice_query(app: &App, req: Request) -> Result<Response<Body>, Error> {
    if req.raw_http_path() == GET_INVOICE_INFO {
        get_invoice_info(app, req).await
    } else {
        get_invoice_batch(app, req).await
    }
}

/// The update-status function: the status changes, batch and single, by path.
pub async fn invoice_status(app: &App, req: Request) -> Result<Response<Body>, Error> {
    if req.raw_http_path() == UPDATE_INVOICE_STATUS {
        update_invoice_status(app, req).await
    } else {
        update_status(app, req).await
    }
}

/// `POST /core/r/api/weChat/getInvoiceInfo?token=…`: one invoice (WeChat's getinvoiceinfo), same
/// token rules and envelope as the batch; the answer names the `encrypt_code` it answers.
pub async fn get_invoice_info(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let tenant = tenant_or_refuse!(app, &req, GET_INVOICE_INFO);
    let app = &*tenant;
    let (path, req) = (app.wechat.paths().invoice_info, &req);
    invoice_endpoint(
        app,
        req,
        GET_INVOICE_INFO,
        |token, body: InvoiceRef| async move {
            let (resp, note) = forward(app, req, path, Call::Read, token, &body).await?;
            let mut card = answers::with_code(object(&resp)?, &body.encrypt_code);
            add_archive_links(app, req, std::slice::from_mut(&mut card)).await;
            Ok((
                json_response(StatusCode::OK, Value::Object(card).to_string()),
                note,
            ))
        },
    )
    .await
}

/// `POST /core/r/api/weChat/updateInvoiceStatus?token=…`: one invoice's status (WeChat's
/// updateinvoicestatus).
pub async fn update_invoice_status(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let tenant = tenant_or_refuse!(app, &req, UPDATE_INVOICE_STATUS);
    let app = &*tenant;
    let (path, req) = (app.wechat.paths().update_status_one, &req);
    invoice_endpoint(
        app,
        req,
        UPDATE_INVOICE_STATUS,
        |token, body: UpdateInvoiceStatusRequest| async move {
            let refs = [InvoiceRef {
                card_id: body.card_id.clone(),
                encrypt_code: body.encrypt_code.clone(),
            }];
            change_status(app, req, path, token, &body, &refs, body.reimburse_status).await
        },
    )
    .await
}

/// `POST /core/r/api/weChat/getInvoiceBatch?token=…`: WeChat's batch answer, each item with the
/// `encrypt_code` it answers.
pub async fn get_invoice_batch(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let tenant = tenant_or_refuse!(app, &req, GET_INVOICE_BATCH);
    let app = &*tenant;
    let req = &req;
    invoice_endpoint(
        app,
        req,
        GET_INVOICE_BATCH,
        |token, body: GetInvoiceBatchRequest| async move {
            let (cards, note) = query_cards(app, req, token, &body.item_list).await?;
            let mut answer = match cards {
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
                add_archive_links(app, req, &mut cards).await;
                items.extend(cards.into_iter().map(Value::Object));
            }
            let text = Value::Object(answer).to_string();
            Ok((json_response(StatusCode::OK, text), note))
        },
    )
    .await
}

/// `POST /core/r/api/weChat/updateStatus?token=…`
pub async fn update_status(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let tenant = tenant_or_refuse!(app, &req, UPDATE_STATUS);
    let app = &*tenant;
    let (path, req) = (app.wechat.paths().update_status_batch, &req);
    invoice_endpoint(
        app,
        req,
        UPDATE_STATUS,
        |token, body: UpdateStatusRequest| async move {
            let target = body.reimburse_status;
            change_status(app, req, path, token, &body, &body.invoice_list, target).await
        },
    )
    .await
}

/// What every invoice endpoint does around its WeChat call: the CORS preflight, the checks
/// before any I/O (path, method, `token`, body), the account of dependency time, and the answer
/// with its log line.
async fn invoice_endpoint<T, F, Fut>(
    app: &App,
    req: &Request,
    path: &'static str,
    call: F,
) -> Result<Response<Body>, Error>
where
    T: DeserializeOwned + Validate,
    F: FnOnce(Option<String>, T) -> Fut,
    Fut: std::future::Future<Output = Result<(Response<Body>, Note), ApiError>>,
{
    if let Some(resp) = preflight(&app.config, req, path, "POST") {
        return Ok(resp);
    }
    let started = Instant::now();
    let (result, spent) = telemetry::measured(async {
        let (token, body) = parse_invoice::<T>(&app.config, req, path)?;
        // Boxed: the WeChat call's future inline nests deeper than rustc's layout limit.
        Box::pin(call(token, body)).await
    })
    .await;
    Ok(answer(app, path, req, started, spent, result))
}

/// Sends a status change and answers what is true when WeChat's answer does not say: a lost
/// answer, or a refusal that may mean "already in that status", is settled by reading the
/// invoices back (see `outcome`). The change itself is never sent twice.
async fn change_status(
    app: &App,
    req: &Request,
    wechat_path: &str,
    token: Option<String>,
    body: &impl Serialize,
    refs: &[InvoiceRef],
    target: ReimburseStatus,
) -> Result<(Response<Body>, Note), ApiError> {
    let (mut result, from) =
        settle_change(app, req, wechat_path, token.clone(), body, refs, target).await;
    let deadline = deadline(&app.config, req);
    // The archive gets a bounded share of the request, never the time the trail needs after it:
    // what it cannot finish is left to the schedule.
    let archiving = deadline.before(AUDIT_RESERVE).within(ARCHIVE_BUDGET);
    let archived = match &app.archive {
        Some(archive) if result.is_ok() && target == ReimburseStatus::Closure => {
            Some(keep_pdfs(app, archive, req, token, refs, &archiving).await)
        }
        _ => None,
    };
    let Some(audit) = &app.audit else {
        return result;
    };
    let (errcode, outcome) = match &result {
        Ok((_, note)) => (0, note.source.map(str::to_string)),
        Err(e) => (e.errcode(), None),
    };
    let (at_ms, caller) = (crate::token::now_ms(), crate::audit::caller(req));
    let entries: Vec<AuditEntry> = refs
        .iter()
        .enumerate()
        .map(|(i, r)| AuditEntry {
            at_ms,
            app: app_name(app).into_owned(),
            caller: caller.clone(),
            card_id: r.card_id.clone(),
            code_sha256: crate::audit::sha256_hex(r.encrypt_code.as_bytes()),
            from_status: from.get(i).cloned().flatten(),
            requested: target.as_str().to_string(),
            errcode,
            outcome: outcome.clone(),
            request_id: request_id(req).unwrap_or_default().to_string(),
            archive: archived.as_ref().and_then(|a| a.get(i).cloned()),
        })
        .collect();
    let mut faults = Vec::new();
    let mut pending = Vec::new();
    for (i, (entry, r)) in entries.iter().zip(refs).enumerate() {
        if let Some(ArchiveNote::Failed(why)) = &entry.archive {
            let p = Pending {
                app: entry.app.clone(),
                card_id: r.card_id.clone(),
                encrypt_code: r.encrypt_code.clone(),
                audit_at: crate::audit::at_key(entry, i),
                attempts: 0,
            };
            pending.push((p, why.clone()));
        }
    }
    if !pending.is_empty() {
        faults.push(format!(
            "archive: {} left to the schedule ({})",
            pending.len(),
            pending[0].1
        ));
    }
    if let Err(e) = audit.record(&entries, &pending, &deadline).await {
        faults.push(format!("audit: {e}"));
    }
    if faults.is_empty() {
        return result;
    }
    match &mut result {
        Ok((_, note)) => note.fault = Some(faults.join("; ")),
        // An error's log line has no note: the fault gets a line of its own.
        Err(_) => {
            tracing::error!(correlation_id = request_id(req), fault = %faults.join("; "), "audit")
        }
    }
    result
}

/// The app as the audit trail and the archive name it: the appid of the deployment's own app,
/// the key of a registered one.
fn app_name(app: &App) -> std::borrow::Cow<'_, str> {
    match &app.settings {
        Some(s) => s.key().into(),
        // The own app, on every request's log line: borrowed, no allocation.
        None => app.config.appid.as_str().into(),
    }
}

/// Most of a CLOSURE request spent archiving its PDFs; the rest is retried by the schedule.
const ARCHIVE_BUDGET: std::time::Duration = std::time::Duration::from_secs(8);

/// Time kept after the archive for the audit trail's writes.
const AUDIT_RESERVE: std::time::Duration = std::time::Duration::from_secs(3);

/// Keeps the PDFs of invoices just closed: reads their cards (WeChat's links) and archives each.
async fn keep_pdfs(
    app: &App,
    archive: &crate::archive::Archive,
    req: &Request,
    token: Option<String>,
    refs: &[InvoiceRef],
    deadline: &Deadline,
) -> Vec<ArchiveNote> {
    let answer = match query_cards(app, req, token, refs)
        .await
        .and_then(|(cards, _)| cards.into_map())
    {
        Ok(answer) => answer,
        Err(e) => {
            let why = format!("reading the invoices: {}", e.errmsg());
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
async fn add_archive_links(app: &App, req: &Request, cards: &mut [Map<String, Value>]) {
    let Some(archive) = &app.archive else { return };
    let deadline = deadline(&app.config, req);
    let closed = |c: &Map<String, Value>| {
        c.get("user_info")
            .and_then(|u| u.get("reimburse_status"))
            .and_then(Value::as_str)
            == Some(ReimburseStatus::Closure.as_str())
    };
    let links = cards.iter().filter(|c| closed(c)).map(|card| {
        let files = crate::archive::files(&app.config.appid, card);
        let deadline = &deadline;
        async move {
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
        }
    });
    let links = futures_util::future::join_all(links).await;
    for (card, links) in cards.iter_mut().filter(|c| closed(c)).zip(links) {
        for (name, link) in links {
            if let Some(link) = link {
                card.insert(name.to_string(), Value::String(link));
            }
        }
    }
}

/// The items of a query answer built by `query_cards`.
fn item_list(answer: &Map<String, Value>) -> &[Value] {
    answer
        .get("item_list")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Sends the change and settles its outcome; with the statuses known to have stood before it
/// (read back when the change did not apply, or was there already), one per invoice.
async fn settle_change(
    app: &App,
    req: &Request,
    wechat_path: &str,
    token: Option<String>,
    body: &impl Serialize,
    refs: &[InvoiceRef],
    target: ReimburseStatus,
) -> (
    Result<(Response<Body>, Note), ApiError>,
    Vec<Option<String>>,
) {
    let sent = forward(app, req, wechat_path, Call::Change, token.clone(), body).await;
    let (settled_by, lost) = match sent {
        Err(ApiError::WeChat(refusal)) if outcome::may_be_same_status(refusal.errcode) => {
            ("already_in_status", ApiError::WeChat(refusal))
        }
        Err(lost @ ApiError::OutcomeUnknown { .. }) => ("confirmed_by_read_back", lost),
        other => return (other, Vec::new()),
    };
    let read = query_cards(app, req, token, refs)
        .await
        .and_then(|(cards, _)| cards.into_map());
    let statuses: Vec<Option<String>> = match &read {
        Ok(answer) => answers::statuses(item_list(answer))
            .into_iter()
            .map(|s| s.map(str::to_string))
            .collect(),
        Err(_) => Vec::new(),
    };
    let settled = read.as_ref().map(|_| {
        let seen: Vec<Option<&str>> = statuses.iter().map(Option::as_deref).collect();
        outcome::settle(target, &seen)
    });
    // What was read stood before the change, unless the lost change is what put it there.
    let from = match (&settled, settled_by) {
        (Ok(Settled::Applied), "confirmed_by_read_back") => Vec::new(),
        _ => statuses,
    };
    let result = match (settled, lost) {
        (Ok(Settled::Applied), _) => {
            let body = json!({"errcode": 0, "errmsg": "ok", "gateway_outcome": settled_by});
            let note = Note {
                source: Some(settled_by),
                ..Note::default()
            };
            Ok((json_response(StatusCode::OK, body.to_string()), note))
        }
        (_, refusal @ ApiError::WeChat(_)) => Err(refusal),
        (Ok(Settled::NotApplied(seen)), ApiError::OutcomeUnknown { timed_out, cause }) => {
            let m = format!("{cause}; read back: not applied ({seen}), trying again is safe");
            Err(if timed_out {
                ApiError::WeChatTimeout(m)
            } else {
                ApiError::WeChatUnreachable(m)
            })
        }
        (Err(e), ApiError::OutcomeUnknown { timed_out, cause }) => Err(ApiError::OutcomeUnknown {
            timed_out,
            cause: format!("{cause}; the read back failed: {}", e.errmsg()),
        }),
        (Ok(Settled::Unknown), ApiError::OutcomeUnknown { timed_out, cause }) => {
            Err(ApiError::OutcomeUnknown {
                timed_out,
                cause: format!("{cause}; WeChat did not return every invoice when read back"),
            })
        }
        (_, other) => Err(other),
    };
    (result, from)
}

/// WeCom's errcode for an API the corp is not granted (the batch query, for corps of 200 active
/// members or fewer).
const BATCH_NOT_GRANTED: i64 = 48001;

/// Per-invoice queries at once, at most this many.
const SINGLE_QUERY_CONCURRENCY: usize = 5;

/// The invoices' cards in the order asked, each with the `encrypt_code` it answers, in the batch
/// answer's shape: WeChat's batch answer when it pairs with the request for certain, single
/// queries otherwise (a batch that left invoices out, or WeCom's 48001 for small corps).
async fn query_cards(
    app: &App,
    req: &Request,
    token: Option<String>,
    refs: &[InvoiceRef],
) -> Result<(Cards, Note), ApiError> {
    #[derive(Serialize)]
    struct Batch<'a> {
        item_list: &'a [InvoiceRef],
    }
    if !app.config.batch_keeps_order && answers::shares_card_ids(refs) {
        let items = by_single_queries(app, req, token, refs, true).await?;
        let note = Note {
            source: Some("single_queries_shared_card_ids"),
            ..Note::default()
        };
        return Ok((cards_built(items), note));
    }
    let path = app.wechat.paths().invoice_batch;
    let batch = forward(
        app,
        req,
        path,
        Call::Read,
        token.clone(),
        &Batch { item_list: refs },
    )
    .await;
    let (items, source) = match batch {
        // WeCom grants the batch query only to verified corps with more than 200 active members;
        // a smaller corp gets the same answer from one query per invoice, one errcode for the
        // whole answer as the batch would have it.
        Err(ApiError::WeChat(b))
            if b.errcode == BATCH_NOT_GRANTED && app.config.platform == Platform::Work =>
        {
            let items = by_single_queries(app, req, token, refs, false).await?;
            (items, "single_queries_after_48001")
        }
        Err(e) => return Err(e),
        Ok((resp, note)) => match std::str::from_utf8(resp.body().as_ref())
            .ok()
            .and_then(|text| answers::pair_batch(text, refs))
        {
            Some(paired) => return Ok((Cards::Paired(paired), note)),
            // Items left out: the rest cannot be told apart for certain by position.
            None => {
                let items = by_single_queries(app, req, token, refs, true).await?;
                (items, "single_queries_after_short_batch")
            }
        },
    };
    let note = Note {
        source: Some(source),
        ..Note::default()
    };
    Ok((cards_built(items), note))
}

/// A batch-shaped answer of items the gateway put together.
fn cards_built(items: Vec<Value>) -> Cards {
    let mut answer = Map::new();
    answer.insert("errcode".into(), Value::from(0));
    answer.insert("errmsg".into(), Value::from("ok"));
    answer.insert("item_list".into(), Value::Array(items));
    Cards::Built(answer)
}

/// A query's answer: WeChat's batch text paired with the request (the common case, passed on as
/// it came), or one built from single queries.
enum Cards {
    Paired(answers::Paired),
    Built(Map<String, Value>),
}

impl Cards {
    fn into_map(self) -> Result<Map<String, Value>, ApiError> {
        match self {
            Cards::Paired(p) => serde_json::from_str(&p.text)
                .map_err(|_| ApiError::WeChatUnreachable("answer is not a JSON object".into())),
            Cards::Built(m) => Ok(m),
        }
    }
}

/// One `getinvoiceinfo` per invoice, a few at once, each card with its `encrypt_code`. WeChat's
/// error for one invoice either fails the whole answer (the first one, as the batch would) or,
/// with `mark_missing`, stands in its place as `gateway_missing`.
async fn by_single_queries(
    app: &App,
    req: &Request,
    token: Option<String>,
    refs: &[InvoiceRef],
    mark_missing: bool,
) -> Result<Vec<Value>, ApiError> {
    let path = app.wechat.paths().invoice_info;
    let mut items = Vec::with_capacity(refs.len());
    for chunk in refs.chunks(SINGLE_QUERY_CONCURRENCY) {
        let answers = futures_util::future::join_all(
            chunk
                .iter()
                .map(|r| forward(app, req, path, Call::Read, token.clone(), r)),
        )
        .await;
        for (answer, r) in answers.into_iter().zip(chunk) {
            let item = match answer {
                Ok((resp, _)) => {
                    let mut card = object(&resp)?;
                    card.remove("errcode");
                    card.remove("errmsg");
                    answers::with_code(card, &r.encrypt_code)
                }
                Err(ApiError::WeChat(b)) if mark_missing => answers::missing(r, b.body),
                Err(e) => return Err(e),
            };
            items.push(Value::Object(item));
        }
    }
    Ok(items)
}

/// A WeChat answer's body as a JSON object.
fn object(resp: &Response<Body>) -> Result<Map<String, Value>, ApiError> {
    serde_json::from_slice(resp.body().as_ref())
        .map_err(|_| ApiError::WeChatUnreachable("answer is not a JSON object".into()))
}

/// Everything an invoice endpoint checks before any I/O: path, method, the `token` parameter
/// and the body.
pub fn parse_invoice<T: DeserializeOwned + Validate>(
    config: &Config,
    req: &Request,
    path: &str,
) -> Result<(Option<String>, T), ApiError> {
    route(req, path, Method::POST)?;
    let token = token_param(config, req)?;
    let body: T = parse_body(req.body().as_ref(), &config.limits)?;
    body.validate(&config.limits)?;
    Ok((token, body))
}

/// Sends the validated body to WeChat with an access_token the gateway vouches for. When WeChat
/// reports that token dead, replaces it if it is still the stored one (single flight, within the
/// cooldown) and retries once with the stored token: never more than one retry, and none that the
/// request's deadline cannot fit.
async fn forward(
    app: &App,
    req: &Request,
    wechat_path: &str,
    call: Call,
    caller_token: Option<String>,
    body: &impl Serialize,
) -> Result<(Response<Body>, Note), ApiError> {
    let deadline = deadline(&app.config, req);
    // Bytes: the retry sends the same body without copying it.
    let json = Bytes::from(serde_json::to_vec(body).expect("request models serialize"));
    let token = match caller_token {
        // No open proxy: only the stored token (or the previous one in its grace period).
        Some(t) if app.config.expose_access_token => {
            app.tokens.check(&t, &deadline).await?;
            t
        }
        _ => stored_token(app, &deadline).await?,
    };
    let first = app
        .wechat
        .post(wechat_path, &token, json.clone(), call, &deadline)
        .await;
    let dead = match first {
        Err(WeChatError::Api(b)) if DEAD_TOKEN_ERRCODES.contains(&b.errcode) => b,
        Err(e) => return Err(sent_error(call, e)),
        Ok(reply) => return Ok((json_response(StatusCode::OK, reply.body), Note::default())),
    };
    let replacement = match app.tokens.replace_dead(&token, &deadline).await {
        Ok(served) => served.state.access_token.map(|c| c.value),
        Err(_) => return Err(ApiError::WeChat(dead)),
    };
    match replacement {
        Some(fresh) if fresh != token && deadline.allows(app.wechat.timeout()) => {
            let reply = app
                .wechat
                .post(wechat_path, &fresh, json, call, &deadline)
                .await
                .map_err(|e| sent_error(call, e))?;
            let note = Note {
                source: Some("retried_after_dead_token"),
                ..Note::default()
            };
            Ok((json_response(StatusCode::OK, reply.body), note))
        }
        _ => Err(ApiError::WeChat(dead)),
    }
}

/// A failed call's error; a status change that left and lost its answer is `OutcomeUnknown`,
/// which the status handlers settle by reading the invoices back.
fn sent_error(call: Call, e: WeChatError) -> ApiError {
    match e {
        WeChatError::Timeout(cause) if call == Call::Change => ApiError::OutcomeUnknown {
            timed_out: true,
            cause: format!("timeout: {cause}"),
        },
        WeChatError::Unreachable(cause) if call == Call::Change => ApiError::OutcomeUnknown {
            timed_out: false,
            cause,
        },
        other => other.into(),
    }
}

async fn stored_token(app: &App, deadline: &Deadline) -> Result<String, ApiError> {
    let served = app.tokens.get(Mode::Auto, deadline).await?;
    served
        .state
        .access_token
        .map(|c| c.value)
        .ok_or_else(|| ApiError::Unavailable("no access_token stored".into()))
}

/// The `token` query parameter: required unless in hardened mode, where it is optional and the
/// stored token is used.
fn token_param(config: &Config, req: &Request) -> Result<Option<String>, ApiError> {
    let query = query(req, &["token", "appid", "agentid"])?;
    match query.get("token") {
        Some(t) if t.chars().count() > MAX_TOKEN => Err(ApiError::bad_request(format!(
            "token: longer than {MAX_TOKEN} characters"
        ))),
        Some(t) if !t.trim().is_empty() => Ok(Some(t.to_string())),
        _ if !config.expose_access_token => Ok(None),
        _ => Err(ApiError::BadRequest {
            errcode: MISSING_TOKEN,
            errmsg: "token: the query parameter `token` (access_token) is required".into(),
        }),
    }
}

/// Checks path and method. Routes on `raw_http_path()`, which never carries an API stage prefix.
fn route(req: &Request, path: &str, method: Method) -> Result<(), ApiError> {
    if req.raw_http_path() != path {
        return Err(ApiError::NotFound(format!(
            "no such path: {}",
            truncate(req.raw_http_path())
        )));
    }
    if req.method() != method {
        let allowed = if method == Method::GET { "GET" } else { "POST" };
        return Err(ApiError::MethodNotAllowed { allowed });
    }
    Ok(())
}

/// The query parameters, each at most once and only those in `allowed`.
fn query<'r>(req: &'r Request, allowed: &[&str]) -> Result<HashMap<&'r str, &'r str>, ApiError> {
    let mut out = HashMap::new();
    let Some(map) = req.query_string_parameters_ref() else {
        return Ok(out);
    };
    for (key, value) in map.iter() {
        if !allowed.contains(&key) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter `{}`; this path accepts: {}",
                truncate(key),
                allowed.join(", ")
            )));
        }
        if out.insert(key, value).is_some() {
            return Err(ApiError::bad_request(format!(
                "{key}: given more than once"
            )));
        }
    }
    Ok(out)
}

/// Caller-supplied text quoted in an errmsg is cut short.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Turns the outcome into the response and writes the request's one log line.
fn answer(
    app: &App,
    endpoint: &str,
    req: &Request,
    started: Instant,
    spent: telemetry::Spent,
    result: Result<(Response<Body>, Note), ApiError>,
) -> Response<Body> {
    let request_id = request_id(req);
    let function_request_id = req.lambda_context_ref().map(|c| c.request_id.as_str());
    let cold_start = cold_start();
    let (mut resp, note, errcode, errmsg, detail) = match result {
        Ok((resp, note)) => (resp, note, 0, None, None),
        Err(e) => {
            let (errcode, errmsg) = (e.errcode(), e.errmsg());
            let detail = e.detail().map(str::to_string);
            let resp = e.into_response_for(request_id);
            (resp, Note::default(), errcode, Some(errmsg), detail)
        }
    };
    // The fields Lambda Powertools users query: correlation_id is API Gateway's request id (what
    // a front-end developer reports, and what 5xx answers name), function_request_id Lambda's.
    // The app as a field, not a metric dimension: 200 apps would be 200 metrics per figure.
    let app_key = app_name(app);
    tracing::info!(
        endpoint,
        app = app_key.as_ref(),
        correlation_id = request_id,
        function_request_id,
        function_name = app.function_name.as_deref(),
        cold_start,
        method = %req.method(),
        status = resp.status().as_u16(),
        errcode,
        errmsg = errmsg.as_deref(),
        detail = detail.as_deref(),
        source = note.source,
        fault = note.fault.as_deref(),
        ms = started.elapsed().as_millis() as u64,
        metric.requests = 1,
        metric.cold_starts = u64::from(cold_start),
        metric.wechat_ms = spent.wechat_ms,
        metric.wechat_calls = spent.wechat_calls,
        metric.dynamodb_ms = spent.dynamodb_ms,
        metric.dynamodb_calls = spent.dynamodb_calls,
        metric.token_left_secs = note.token_left_secs,
        "request"
    );
    // Answers carry tokens, tickets, signatures or a user's invoices: never cached.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(origin) = cors_origin(&app.config, req) {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    resp
}

/// Whether this is the first request of the process (a cold start); `true` once.
fn cold_start() -> bool {
    static COLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
    COLD.swap(false, std::sync::atomic::Ordering::Relaxed)
}

/// API Gateway's request id (what a front-end developer sees and reports), or Lambda's.
fn request_id(req: &Request) -> Option<&str> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) if ctx.request_id.is_some() => {
            ctx.request_id.as_deref()
        }
        _ => req
            .lambda_context_ref()
            .map(|c| c.request_id.as_str())
            .filter(|id| !id.is_empty()),
    }
}

/// The request's `Origin`, when it is one of the app's allowed origins. These headers are what the
/// browser sees, behind API Gateway (which has no CORS configuration of its own, so that each app
/// has its origins) as locally.
fn cors_origin(config: &Config, req: &Request) -> Option<HeaderValue> {
    let origin = req.headers().get(header::ORIGIN)?;
    let normalized = config::origin_of(origin.to_str().ok()?)?;
    config
        .allowed_origins
        .contains(&normalized)
        .then(|| origin.clone())
}

/// Answers a CORS preflight (`OPTIONS` on the path): 204, with the CORS headers only for an
/// allowed origin.
fn preflight(
    config: &Config,
    req: &Request,
    path: &str,
    method: &'static str,
) -> Option<Response<Body>> {
    if req.method() != Method::OPTIONS || req.raw_http_path() != path {
        return None;
    }
    let mut resp = Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .expect("static response");
    if let Some(origin) = cors_origin(config, req) {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(method),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            // `authorization`: the bearer token when the JWT authorizer is on.
            HeaderValue::from_static("content-type, authorization"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    Some(resp)
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
