//! The simulated WeChat APIs: Official Account (`api.weixin.qq.com`) and WeCom
//! (`qyapi.weixin.qq.com`) paths on one server, following the reference's simulator checklist.

use std::collections::HashMap;
use std::net::IpAddr;

use hyper::Method;
use serde_json::{json, Map, Value};

use crate::component_api;
use crate::state::{Family, Invoice, State, TokenRec};
use crate::Sim;

const INIT: &str = "INVOICE_REIMBURSE_INIT";
const LOCK: &str = "INVOICE_REIMBURSE_LOCK";
const CLOSURE: &str = "INVOICE_REIMBURSE_CLOSURE";
const CANCEL: &str = "INVOICE_REIMBURSE_CANCEL";

/// WeChat's error envelope, errmsg suffixed with a request id like production.
pub fn error(errcode: i64, errmsg: &str) -> Value {
    let id = uuid::Uuid::new_v4().simple().to_string();
    json!({ "errcode": errcode, "errmsg": format!("{errmsg} rid: {}-{}-{}", &id[..8], &id[8..16], &id[16..24]) })
}

fn ok() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("errcode".into(), json!(0));
    m.insert("errmsg".into(), json!("ok"));
    m
}

type Q = HashMap<String, String>;

pub fn handle(sim: &Sim, method: &Method, path: &str, q: &Q, body: &[u8], peer: IpAddr) -> Value {
    let mut st = sim.lock();
    let result = match path {
        "/cgi-bin/token" => check_ip(&st, peer).and_then(|_| token(&mut st, q)),
        "/cgi-bin/stable_token" => {
            check_ip(&st, peer).and_then(|_| stable_token(&mut st, method, body))
        }
        "/cgi-bin/ticket/getticket" => oa_ticket(&mut st, q),
        "/cgi-bin/get_api_domain_ip" => api_domain_ip(&st, q),
        "/card/invoice/reimburse/getinvoiceinfo" => get_info(&st, q, body, false),
        "/card/invoice/reimburse/getinvoicebatch" => get_batch(&st, q, body, false),
        "/card/invoice/reimburse/updateinvoicestatus" => update_one(&mut st, q, body, false),
        "/card/invoice/reimburse/updatestatusbatch" => update_batch(&mut st, q, body, false),
        "/cgi-bin/gettoken" => work_token(&mut st, q),
        "/cgi-bin/get_jsapi_ticket" => work_jsapi_ticket(&mut st, q),
        "/cgi-bin/ticket/get" => work_ticket(&mut st, q),
        "/cgi-bin/card/invoice/reimburse/getinvoiceinfo" => get_info(&st, q, body, true),
        "/cgi-bin/card/invoice/reimburse/getinvoiceinfobatch" => get_batch(&st, q, body, true),
        "/cgi-bin/card/invoice/reimburse/updateinvoicestatus" => update_one(&mut st, q, body, true),
        "/cgi-bin/card/invoice/reimburse/updatestatusbatch" => update_batch(&mut st, q, body, true),
        "/cgi-bin/user/convert_to_openid" => convert_to_openid(&st, q, body),
        "/cgi-bin/component/api_component_token" => {
            check_ip(&st, peer).and_then(|_| component_token(&mut st, method, body))
        }
        "/cgi-bin/component/api_create_preauthcode" => {
            component_api::create_preauthcode(&mut st, q, body)
        }
        "/cgi-bin/component/api_query_auth" => component_api::query_auth(&mut st, q, body),
        "/cgi-bin/component/api_authorizer_token" => {
            component_api::authorizer_token(&mut st, q, body)
        }
        "/cgi-bin/component/api_get_authorizer_info" => {
            component_api::authorizer_info(&mut st, q, body)
        }
        _ => Err(error(40066, "invalid url")),
    };
    result.unwrap_or_else(|e| e)
}

type R = Result<Value, Value>;

/// The token APIs only answer addresses on the account's API IP allow-list.
fn check_ip(st: &State, peer: IpAddr) -> Result<(), Value> {
    let allowed = &st.options.ip_whitelist;
    if allowed.is_empty()
        || allowed
            .iter()
            .any(|a| a.parse::<IpAddr>().ok() == Some(peer))
    {
        return Ok(());
    }
    let msg = format!("invalid ip {peer} ipv6 ::ffff:{peer}, not in whitelist");
    Err(error(st.options.ip_whitelist_errcode, &msg))
}

fn param<'a>(q: &'a Q, k: &str) -> Option<&'a str> {
    q.get(k).map(String::as_str).filter(|v| !v.is_empty())
}

/// `GET /cgi-bin/token`: a new token per call; the previous one works for the grace period.
fn token(st: &mut State, q: &Q) -> R {
    if param(q, "grant_type") != Some("client_credential") {
        return Err(error(40002, "invalid grant_type"));
    }
    let appid = param(q, "appid").ok_or_else(|| error(41002, "appid missing"))?;
    let secret = param(q, "secret").ok_or_else(|| error(41004, "appsecret missing"))?;
    let Some(expected) = app_secret(st, appid) else {
        return Err(error(40013, "invalid appid"));
    };
    if secret != expected {
        return Err(error(
            40125,
            "invalid appsecret, view more at http://t.cn/RAEkdVq",
        ));
    }
    let day = st.now() / 86_400;
    let used = st.quota_used.entry((appid.to_string(), day)).or_insert(0);
    if *used >= st.options.daily_token_quota {
        return Err(error(45009, "reach max api daily quota limit"));
    }
    *used += 1;
    let grace = st.options.grace_secs;
    let (token, ttl) = st.issue_token(Family::Classic, appid, Some(grace));
    // No errcode on success, like WeChat.
    Ok(json!({ "access_token": token, "expires_in": ttl }))
}

/// `POST /cgi-bin/stable_token`: the same token while it has more than 5 minutes left; force mode
/// rotates (at most `stable_force_daily` a day, at least `stable_force_min_interval_secs` apart).
fn stable_token(st: &mut State, method: &Method, body: &[u8]) -> R {
    if method != Method::POST {
        return Err(error(43002, "require POST method"));
    }
    let b: Map<String, Value> =
        serde_json::from_slice(body).map_err(|_| error(47001, "data format error"))?;
    let s = |k: &str| b.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    if s("grant_type") != Some("client_credential") {
        return Err(error(40002, "invalid grant_type"));
    }
    let appid = s("appid")
        .ok_or_else(|| error(41002, "appid missing"))?
        .to_string();
    let secret = s("secret").ok_or_else(|| error(41004, "appsecret missing"))?;
    let Some(expected) = app_secret(st, &appid) else {
        return Err(error(40013, "invalid appid"));
    };
    if secret != expected {
        return Err(error(40125, "invalid appsecret"));
    }
    let force = b
        .get("force_refresh")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let now = st.now();
    let current = st.current_token(Family::Stable, &appid);
    let answer =
        |token: String, exp: u64| Ok(json!({ "access_token": token, "expires_in": exp - now }));
    if force {
        let day = now / 86_400;
        let recent = st
            .stable_last_force
            .get(&appid)
            .is_some_and(|t| now < t + st.options.stable_force_min_interval_secs);
        if let (true, Some((token, exp))) = (recent, current.clone()) {
            return answer(token, exp); // too soon: "will not refresh"
        }
        let used = st.stable_forced.entry((appid.clone(), day)).or_insert(0);
        if *used >= st.options.stable_force_daily {
            return Err(error(45009, "reach max api daily quota limit"));
        }
        *used += 1;
        st.stable_last_force.insert(appid.clone(), now);
        let grace = st.options.grace_secs;
        let (token, ttl) = st.issue_token(Family::Stable, &appid, Some(grace));
        return answer(token, now + ttl);
    }
    match current {
        Some((token, exp)) if exp - now > 300 => answer(token, exp),
        // Rotation in the last 5 minutes: both stay valid until the old one expires.
        _ => {
            let (token, ttl) = st.issue_token(Family::Stable, &appid, Some(300));
            answer(token, now + ttl)
        }
    }
}

/// The secret of an Official Account or mini program this simulator knows.
fn app_secret<'a>(st: &'a State, appid: &str) -> Option<&'a str> {
    if appid == st.options.appid {
        return Some(&st.options.secret);
    }
    st.options
        .apps
        .iter()
        .find(|a| a.kind != "work" && a.appid == appid)
        .map(|a| a.secret.as_str())
}

/// Checks `access_token` and returns the app it belongs to.
fn check_token(st: &State, q: &Q, work: bool) -> Result<String, Value> {
    let Some(token) = param(q, "access_token") else {
        return Err(error(41001, "access_token missing"));
    };
    let now = st.now();
    let unknown = || {
        if work || st.options.unknown_token_errcode == 40014 {
            error(40014, "invalid access_token")
        } else {
            error(
                st.options.unknown_token_errcode,
                "invalid credential, access_token is invalid or not latest",
            )
        }
    };
    let rec = st.tokens.get(token).ok_or_else(unknown)?;
    if (rec.family == Family::Work) != work || rec.family == Family::Component {
        return Err(unknown());
    }
    live(rec, now)?;
    Ok(rec.app.clone())
}

/// A known token still works: not replaced beyond its grace (40001), not expired (42001).
pub fn live(rec: &TokenRec, now: u64) -> Result<(), Value> {
    if rec.superseded_until.is_some_and(|until| now >= until) {
        return Err(error(
            40001,
            "invalid credential, access_token is invalid or not latest",
        ));
    }
    if now >= rec.expires_at {
        return Err(error(42001, "access_token expired"));
    }
    Ok(())
}

fn ticket_answer(st: &mut State, app: &str, kind: &str) -> R {
    let (ticket, ttl) = st.issue_ticket(app, kind);
    let mut m = ok();
    m.insert("ticket".into(), json!(ticket));
    m.insert("expires_in".into(), json!(ttl));
    Ok(Value::Object(m))
}

/// `GET /cgi-bin/ticket/getticket?type=jsapi|wx_card`.
fn oa_ticket(st: &mut State, q: &Q) -> R {
    let app = check_token(st, q, false)?;
    match param(q, "type") {
        Some(kind @ ("jsapi" | "wx_card")) => ticket_answer(st, &app, kind),
        // Inferred: WeChat documents no errcode for a bad OA ticket type.
        _ => Err(error(40097, "invalid args")),
    }
}

/// `GET /cgi-bin/get_api_domain_ip?access_token=…` (Official Accounts and WeCom, one path): WeChat's
/// API addresses. Needs a live token and spends no token quota, which makes it the cheap "is this
/// token alive" question.
fn api_domain_ip(st: &State, q: &Q) -> R {
    let work = param(q, "access_token")
        .and_then(|t| st.tokens.get(t))
        .is_some_and(|rec| rec.family == Family::Work);
    check_token(st, q, work)?;
    let mut m = if work { ok() } else { Map::new() };
    m.insert(
        "ip_list".into(),
        json!(["101.226.103.0/25", "101.226.62.0/26", "58.251.80.0/25"]),
    );
    Ok(Value::Object(m))
}

/// `GET /cgi-bin/gettoken?corpid&corpsecret` (WeCom): errcode 0 included on success.
fn work_token(st: &mut State, q: &Q) -> R {
    let corpid = param(q, "corpid")
        .ok_or_else(|| error(41002, "corpid missing"))?
        .to_string();
    let secret = param(q, "corpsecret").ok_or_else(|| error(41004, "corpsecret missing"))?;
    let agents: Vec<String> = st
        .options
        .apps
        .iter()
        .filter(|a| a.kind == "work" && a.appid == corpid)
        .map(|a| a.secret.clone())
        .collect();
    if corpid != st.options.corpid && agents.is_empty() {
        return Err(error(40013, "invalid corpid"));
    }
    // The secret names the agent (each agent of a corp has its own).
    let app = if corpid == st.options.corpid && secret == st.options.corpsecret {
        corpid.clone()
    } else {
        match st
            .options
            .apps
            .iter()
            .find(|a| a.kind == "work" && a.appid == corpid && a.secret == secret)
        {
            Some(a) => a.key(),
            None => return Err(error(40001, "invalid secret")),
        }
    };
    let now = st.now();
    let current = st.current_token(Family::Work, &app);
    let (token, expires_in) = match current {
        Some((t, exp)) if st.options.work_token_idempotent => (t, exp - now),
        _ => st.issue_token(Family::Work, &app, None),
    };
    let mut m = ok();
    m.insert("access_token".into(), json!(token));
    m.insert("expires_in".into(), json!(expires_in));
    Ok(Value::Object(m))
}

/// `POST /cgi-bin/component/api_component_token`: a third-party platform's token, for its appid,
/// component AppSecret and a verify ticket WeChat pushed and still accepts (12 hours). A new
/// token ends the previous after the grace, as `/cgi-bin/token` does (inferred: WeChat does not
/// say).
fn component_token(st: &mut State, method: &Method, body: &[u8]) -> R {
    if method != Method::POST {
        return Err(error(43002, "require POST method"));
    }
    let b: Map<String, Value> =
        serde_json::from_slice(body).map_err(|_| error(47001, "data format error"))?;
    let s = |k: &str| b.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    let o = &st.options.component;
    if s("component_appid") != Some(o.appid.as_str()) {
        return Err(error(61011, "invalid component"));
    }
    if s("component_appsecret") != Some(o.secret.as_str()) {
        return Err(error(40125, "invalid appsecret"));
    }
    let now = st.now();
    let ticket = s("component_verify_ticket").unwrap_or_default();
    match st.verify_tickets.get(ticket) {
        None => return Err(error(61006, "component ticket is invalid")),
        Some(until) if *until <= now => return Err(error(61005, "component ticket is expired")),
        Some(_) => {}
    }
    let appid = o.appid.clone();
    let grace = st.options.grace_secs;
    let (token, ttl) = st.issue_token(Family::Component, &appid, Some(grace));
    Ok(json!({ "component_access_token": token, "expires_in": ttl }))
}

/// `GET /cgi-bin/get_jsapi_ticket` (WeCom corp ticket for `wx.config`).
fn work_jsapi_ticket(st: &mut State, q: &Q) -> R {
    let app = check_token(st, q, true)?;
    ticket_answer(st, &app, "jsapi")
}

/// `GET /cgi-bin/ticket/get?type=agent_config|wx_card` (WeCom).
fn work_ticket(st: &mut State, q: &Q) -> R {
    let app = check_token(st, q, true)?;
    match param(q, "type") {
        Some(kind @ ("agent_config" | "wx_card")) => ticket_answer(st, &app, kind),
        _ => Err(error(91040, "获取ticket的类型无效")),
    }
}

/// The JSON object body of an invoice call; unknown keys are invalid params.
fn body_object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, Value> {
    let m: Map<String, Value> =
        serde_json::from_slice(body).map_err(|_| error(72031, "invalid params"))?;
    if m.keys().any(|k| !allowed.contains(&k.as_str())) {
        return Err(error(72031, "invalid params"));
    }
    Ok(m)
}

fn str_field(m: &Map<String, Value>, k: &str) -> Result<String, Value> {
    match m.get(k) {
        None => Err(error(40101, "missing parameter")),
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err(error(72031, "invalid params")),
    }
}

fn list_field(m: &Map<String, Value>, k: &str) -> Result<Vec<(String, String)>, Value> {
    let list = match m.get(k) {
        None => return Err(error(40101, "missing parameter")),
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(_) => return Err(error(72031, "invalid params")),
    };
    list.iter()
        .map(|item| {
            let obj = item
                .as_object()
                .ok_or_else(|| error(72031, "invalid params"))?;
            if obj.keys().any(|k| k != "card_id" && k != "encrypt_code") {
                return Err(error(72031, "invalid params"));
            }
            Ok((str_field(obj, "card_id")?, str_field(obj, "encrypt_code")?))
        })
        .collect()
}

/// Finds one invoice: unknown card_id → 40073; known card_id, unknown code → 40056 (inferred).
/// An invoice another app's user picked is not this app's to see.
fn find(st: &State, app: &str, card_id: &str, code: &str) -> Result<usize, Value> {
    if !st.invoices.iter().any(|i| i.card_id() == card_id) {
        return Err(error(40073, "invalid card id"));
    }
    let i = st
        .invoices
        .iter()
        .position(|i| i.card_id() == card_id && i.encrypt_code == code)
        .ok_or_else(|| error(40056, "invalid serial code"))?;
    match &st.invoices[i].app {
        Some(owner) if owner != app => Err(error(
            st.options.foreign_invoice_errcode,
            "invalid serial code",
        )),
        _ => Ok(i),
    }
}

fn card_answer(inv: &Invoice) -> Value {
    let mut m = ok();
    m.extend(inv.card.clone());
    Value::Object(m)
}

fn get_info(st: &State, q: &Q, body: &[u8], work: bool) -> R {
    let app = check_token(st, q, work)?;
    let b = body_object(body, &["card_id", "encrypt_code"])?;
    let i = find(
        st,
        &app,
        &str_field(&b, "card_id")?,
        &str_field(&b, "encrypt_code")?,
    )?;
    Ok(card_answer(&st.invoices[i]))
}

fn get_batch(st: &State, q: &Q, body: &[u8], work: bool) -> R {
    let app = check_token(st, q, work)?;
    if work && !st.options.work_batch_allowed {
        return Err(error(48001, "api unauthorized"));
    }
    let b = body_object(body, &["item_list"])?;
    let items = list_field(&b, "item_list")?;
    if st.options.max_batch_items > 0 && items.len() > st.options.max_batch_items {
        return Err(error(72031, "invalid params"));
    }
    let mut out = Vec::new();
    for (card_id, code) in &items {
        match find(st, &app, card_id, code) {
            Ok(i) => out.push(Value::Object(st.invoices[i].card.clone())),
            Err(_) if st.options.batch_skips_unknown => {}
            Err(e) => return Err(e),
        }
    }
    let mut m = ok();
    m.insert("item_list".into(), Value::Array(out));
    Ok(Value::Object(m))
}

/// The reimbursement status machine for one invoice, as seen by `app`.
fn transition(st: &State, inv: &Invoice, app: &str, target: &str) -> Result<Option<String>, Value> {
    if ![INIT, LOCK, CLOSURE].contains(&target) {
        return Err(error(72024, "invoice status error"));
    }
    let current = inv.status();
    match current {
        CLOSURE => return Err(error(st.options.closed_errcode, "invoice status error")),
        CANCEL => return Err(error(st.options.cancelled_errcode, "invoice status error")),
        _ => {}
    }
    if current == LOCK && inv.locked_by.as_deref().is_some_and(|owner| owner != app) {
        return Err(error(72023, "invoice has been lock by others"));
    }
    if current == target {
        return if st.options.same_status_ok {
            Ok(None)
        } else {
            Err(error(72024, "invoice status error"))
        };
    }
    match (current, target) {
        (INIT, CLOSURE) => Err(error(72039, "invoice must be lock first")),
        (_, LOCK) => Ok(Some(app.to_string())),
        _ => Ok(None),
    }
}

fn apply(inv: &mut Invoice, target: &str, owner: Option<String>) {
    if inv.status() == target {
        return;
    }
    inv.set_status(target);
    inv.locked_by = if target == LOCK { owner } else { None };
}

fn update_one(st: &mut State, q: &Q, body: &[u8], work: bool) -> R {
    let app = check_token(st, q, work)?;
    let b = body_object(body, &["card_id", "encrypt_code", "reimburse_status"])?;
    let i = find(
        st,
        &app,
        &str_field(&b, "card_id")?,
        &str_field(&b, "encrypt_code")?,
    )?;
    let target = str_field(&b, "reimburse_status")?;
    let owner = transition(st, &st.invoices[i], &app, &target)?;
    apply(&mut st.invoices[i], &target, owner);
    Ok(Value::Object(ok()))
}

/// All-or-nothing: every invoice must exist, belong to `openid` and accept the transition.
/// WeCom's `POST /cgi-bin/user/convert_to_openid` `{userid}` → `{errcode, errmsg, openid}`: the
/// member's openid, which the invoice APIs name their owner by; 60111 for a userid the corp does
/// not have.
fn convert_to_openid(st: &State, q: &Q, body: &[u8]) -> R {
    check_token(st, q, true)?;
    let b = body_object(body, &["userid"])?;
    let userid = str_field(&b, "userid")?;
    let Some(openid) = st.options.users.get(&userid) else {
        return Err(error(60111, "invalid userid"));
    };
    let mut m = ok();
    m.insert("openid".into(), json!(openid));
    Ok(Value::Object(m))
}

fn update_batch(st: &mut State, q: &Q, body: &[u8], work: bool) -> R {
    let app = check_token(st, q, work)?;
    let b = body_object(body, &["openid", "reimburse_status", "invoice_list"])?;
    let openid = str_field(&b, "openid")?;
    let target = str_field(&b, "reimburse_status")?;
    let items = list_field(&b, "invoice_list")?;
    let mut plan = Vec::with_capacity(items.len());
    for (card_id, code) in &items {
        let i = find(st, &app, card_id, code)?;
        if st.invoices[i].openid() != openid {
            return Err(error(72037, "invoice owner error"));
        }
        plan.push((i, transition(st, &st.invoices[i], &app, &target)?));
    }
    for (i, owner) in plan {
        apply(&mut st.invoices[i], &target, owner);
    }
    Ok(Value::Object(ok()))
}
