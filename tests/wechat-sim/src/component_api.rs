//! WeChat's component APIs for a third-party platform: pre-auth codes, the customer's
//! authorization (a control endpoint plays the customer scanning the link and confirming a
//! chosen set of permissions), `api_query_auth`, `api_authorizer_token` and
//! `api_get_authorizer_info`, and withdrawal. An authorizer's access token is an account's token
//! for that account's invoices.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::api::{error, live};
use crate::state::{Family, State};

type R = Result<Value, Value>;

/// An authorization code from the customer's confirmation, for `api_query_auth`.
#[derive(Debug, Clone)]
pub struct AuthCode {
    pub authorizer: String,
    pub expires_at: u64,
    pub used: bool,
}

/// An account's authorization of the platform.
#[derive(Debug, Clone)]
pub struct Authorization {
    /// `mp` or `mini`.
    pub kind: String,
    pub funcs: Vec<u64>,
    pub refresh_token: String,
    /// Withdrawn (`unauthorized`): its refresh token answers 61023.
    pub revoked: bool,
}

/// The component's side of the simulator's state.
#[derive(Debug, Default)]
pub struct Platform {
    /// pre_auth_code → (expires at, used).
    pub pre_auth_codes: HashMap<String, (u64, bool)>,
    pub auth_codes: HashMap<String, AuthCode>,
    pub authorizations: HashMap<String, Authorization>,
}

fn body(b: &[u8]) -> Result<Map<String, Value>, Value> {
    serde_json::from_slice(b).map_err(|_| error(47001, "data format error"))
}

fn s<'a>(b: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    b.get(k).and_then(Value::as_str).filter(|v| !v.is_empty())
}

/// The platform's own token in the query (`component_access_token`), live, and the body naming
/// the platform.
fn component_call(
    st: &State,
    q: &HashMap<String, String>,
    b: &Map<String, Value>,
) -> Result<(), Value> {
    let token = q
        .get("component_access_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| error(41001, "access_token missing"))?;
    let now = st.now();
    let rec = st
        .tokens
        .get(token)
        .filter(|r| r.family == Family::Component)
        .ok_or_else(|| {
            error(
                40001,
                "invalid credential, access_token is invalid or not latest",
            )
        })?;
    live(rec, now)?;
    if s(b, "component_appid") != Some(st.options.component.appid.as_str()) {
        return Err(error(61011, "invalid component"));
    }
    Ok(())
}

fn func_info(funcs: &[u64]) -> Value {
    Value::Array(
        funcs
            .iter()
            .map(|id| json!({"funcscope_category": {"id": id}}))
            .collect(),
    )
}

/// `POST /cgi-bin/component/api_create_preauthcode`: valid 600 s, once.
pub fn create_preauthcode(st: &mut State, q: &HashMap<String, String>, b: &[u8]) -> R {
    let b = body(b)?;
    component_call(st, q, &b)?;
    let code = format!("preauthcode@@@{}", uuid::Uuid::new_v4().simple());
    let until = st.now() + 600;
    st.platform
        .pre_auth_codes
        .insert(code.clone(), (until, false));
    Ok(json!({"pre_auth_code": code, "expires_in": 600}))
}

/// `POST /cgi-bin/component/api_query_auth`: the authorization an auth code stands for, with the
/// authorizer's first access token and its refresh token. A code works once (61009 after), for
/// an hour (61010).
pub fn query_auth(st: &mut State, q: &HashMap<String, String>, b: &[u8]) -> R {
    let b = body(b)?;
    component_call(st, q, &b)?;
    let code = s(&b, "authorization_code").ok_or_else(|| error(61009, "code is invalid"))?;
    let now = st.now();
    let auth = st
        .platform
        .auth_codes
        .get_mut(code)
        .filter(|c| !c.used)
        .ok_or_else(|| error(61009, "code is invalid"))?;
    if now >= auth.expires_at {
        return Err(error(61010, "code is expired"));
    }
    auth.used = true;
    let authorizer = auth.authorizer.clone();
    let Some(a) = st.platform.authorizations.get(&authorizer).cloned() else {
        return Err(error(61009, "code is invalid"));
    };
    let grace = st.options.grace_secs;
    let (token, ttl) = st.issue_token(Family::Classic, &authorizer, Some(grace));
    Ok(json!({"authorization_info": {
        "authorizer_appid": authorizer,
        "authorizer_access_token": token,
        "expires_in": ttl,
        "authorizer_refresh_token": a.refresh_token,
        "func_info": func_info(&a.funcs),
    }}))
}

/// `POST /cgi-bin/component/api_authorizer_token`: a new access token for the authorizer, with
/// its refresh token (the same one unless `component.rotate_refresh_token`, an option: WeChat
/// says it changes only when the account authorizes again).
pub fn authorizer_token(st: &mut State, q: &HashMap<String, String>, b: &[u8]) -> R {
    let b = body(b)?;
    component_call(st, q, &b)?;
    let authorizer = s(&b, "authorizer_appid").unwrap_or_default().to_string();
    let refresh = s(&b, "authorizer_refresh_token").unwrap_or_default();
    let rotate = st.options.component.rotate_refresh_token;
    let a = st
        .platform
        .authorizations
        .get_mut(&authorizer)
        .filter(|a| !a.revoked && a.refresh_token == refresh)
        .ok_or_else(|| error(61023, "refresh_token is invalid"))?;
    if rotate {
        a.refresh_token = format!("refreshtoken@@@{}", uuid::Uuid::new_v4().simple());
    }
    let refresh_token = a.refresh_token.clone();
    let grace = st.options.grace_secs;
    let (token, ttl) = st.issue_token(Family::Classic, &authorizer, Some(grace));
    Ok(json!({
        "authorizer_access_token": token,
        "expires_in": ttl,
        "authorizer_refresh_token": refresh_token,
    }))
}

/// `POST /cgi-bin/component/api_get_authorizer_info`.
pub fn authorizer_info(st: &mut State, q: &HashMap<String, String>, b: &[u8]) -> R {
    let b = body(b)?;
    component_call(st, q, &b)?;
    let authorizer = s(&b, "authorizer_appid").unwrap_or_default();
    let a = st
        .platform
        .authorizations
        .get(authorizer)
        .filter(|a| !a.revoked)
        .ok_or_else(|| error(61003, "component is not authorized by this account"))?;
    let mut info = json!({
        "nick_name": format!("sim {authorizer}"),
        "service_type_info": {"id": 2},
        "verify_type_info": {"id": 0},
        "user_name": format!("gh_{}", &authorizer[authorizer.len().saturating_sub(12)..]),
    });
    if a.kind == "mini" {
        info["MiniProgramInfo"] = json!({"network": {}, "categories": [], "visit_status": 0});
    }
    Ok(json!({
        "authorizer_info": info,
        "authorization_info": {
            "authorizer_appid": authorizer,
            "authorizer_refresh_token": a.refresh_token,
            "func_info": func_info(&a.funcs),
        },
    }))
}

/// The customer follows the link and confirms `funcs` for account `appid` (`kind` mp or mini):
/// the pre-auth code is spent, an auth code made (an hour), a new refresh token issued (a new
/// authorization changes it, as WeChat says). Answers (the auth code, whether it updated an
/// earlier authorization) or why the page refuses.
pub fn authorize(
    st: &mut State,
    pre_auth_code: &str,
    appid: &str,
    kind: &str,
    funcs: Vec<u64>,
) -> Result<(String, bool), String> {
    let now = st.now();
    match st.platform.pre_auth_codes.get_mut(pre_auth_code) {
        None => return Err("no such pre_auth_code".into()),
        Some((_, true)) => return Err("the pre_auth_code was used already".into()),
        Some((until, _)) if *until <= now => return Err("the pre_auth_code expired".into()),
        Some(entry) => entry.1 = true,
    }
    let code = format!("queryauthcode@@@{}", uuid::Uuid::new_v4().simple());
    st.platform.auth_codes.insert(
        code.clone(),
        AuthCode {
            authorizer: appid.to_string(),
            expires_at: now + 3600,
            used: false,
        },
    );
    let updated = st
        .platform
        .authorizations
        .get(appid)
        .is_some_and(|a| !a.revoked);
    st.platform.authorizations.insert(
        appid.to_string(),
        Authorization {
            kind: kind.to_string(),
            funcs,
            refresh_token: format!("refreshtoken@@@{}", uuid::Uuid::new_v4().simple()),
            revoked: false,
        },
    );
    Ok((code, updated))
}

/// The account withdraws its authorization: its refresh token stops working.
pub fn unauthorize(st: &mut State, appid: &str) -> bool {
    match st.platform.authorizations.get_mut(appid) {
        Some(a) if !a.revoked => {
            a.revoked = true;
            true
        }
        _ => false,
    }
}

/// The decrypted XML of an authorization push.
pub fn authorization_xml(
    component: &str,
    created: u64,
    info_type: &str,
    authorizer: &str,
    code: Option<&str>,
) -> String {
    let code = code.map_or(String::new(), |c| {
        format!(
            "<AuthorizationCode><![CDATA[{c}]]></AuthorizationCode><AuthorizationCodeExpiredTime><![CDATA[{}]]></AuthorizationCodeExpiredTime>",
            created + 3600
        )
    });
    format!(
        "<xml><AppId><![CDATA[{component}]]></AppId><CreateTime>{created}</CreateTime><InfoType><![CDATA[{info_type}]]></InfoType><AuthorizerAppid><![CDATA[{authorizer}]]></AuthorizerAppid>{code}</xml>"
    )
}
