//! A request's path, method and query parameters, checked before any I/O.

use std::collections::HashMap;

use lambda_http::http::Method;
use lambda_http::{Request, RequestExt};

use crate::domain::apps;
use crate::domain::config::Config;
use crate::domain::input::truncate;
use crate::http::envelope::MISSING_TOKEN;
use crate::http::error::ApiError;

/// Longest `token` accepted (WeChat reserves 512 characters for an access_token).
const MAX_TOKEN: usize = 512;

/// The query parameters that choose the app, on every endpoint.
const APP_PARAMS: [&str; 2] = ["appid", "agentid"];

/// Checks path and method. Routes on `raw_http_path()`, which never carries an API stage prefix.
pub fn route(req: &Request, path: &str, method: Method) -> Result<(), ApiError> {
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
pub fn query<'r>(
    req: &'r Request,
    allowed: &[&str],
) -> Result<HashMap<&'r str, &'r str>, ApiError> {
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

/// The app the request names: `appid`, and `agentid` for a WeCom agent (none: the deployment's
/// own).
pub fn app_params(req: &Request) -> Result<(Option<&str>, Option<&str>), ApiError> {
    let params = req.query_string_parameters_ref();
    let mut named = [None, None];
    for (slot, name) in named.iter_mut().zip(APP_PARAMS) {
        let values = params.and_then(|p| p.all(name)).unwrap_or_default();
        match values.as_slice() {
            [] => {}
            [one] => {
                apps::check_id(name, one)?;
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
    Ok((appid, agentid))
}

/// The `token` query parameter: required unless in hardened mode, where it is optional and the
/// stored token is used.
pub fn token_param(config: &Config, req: &Request) -> Result<Option<String>, ApiError> {
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
