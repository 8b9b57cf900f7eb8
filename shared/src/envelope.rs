//! The HTTP envelope every answer uses: `{"errcode":…, "errmsg":…}` for the gateway's own errors,
//! WeChat's body passed through (plus a Chinese `hint`) for WeChat's errors, and the one table of
//! hints taken from the user's spec.

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Response};
use serde_json::{json, Map, Value};

/// errcode for bad parameters (WeChat's "invalid params", reused for the gateway's own validation).
pub const INVALID_PARAMS: i64 = 72031;
/// errcode for a missing access_token (WeChat's "access_token missing").
pub const MISSING_TOKEN: i64 = 41001;
/// errcode for an app this deployment does not serve (WeChat's "invalid appid").
pub const NO_SUCH_APP: i64 = 40013;
/// errcode WeChat uses for "system busy"; the gateway uses it for faults on its side.
pub const SYSTEM_ERROR: i64 = -1;

/// The remarks column of the spec's error-code table, keyed by errcode.
pub fn hint(errcode: i64) -> Option<&'static str> {
    Some(match errcode {
        40001 => "token失效",
        72015 => "没有操作发票的权限，请检查是否已开通相应权限。",
        72017 => "发票抬头不一致",
        72023 => "发票已被其他公众号锁定。一般为发票已进入后续报销流程，报销企业公众号/企业号/App锁定了发票。",
        72024 => "发票状态错误",
        72025 => "wx_invoice_token 无效",
        72028 => "未设置微信支付商户信息",
        72029 => "未设置授权字段",
        72030 => "mchid 无效",
        72031 => "参数错误。可能为请求中包括无效的参数名称或包含不通过后台校验的参数值",
        72035 => "发票已经被拒绝开票。若order_id被用作参数调用过拒绝开票接口，再使用此order_id插卡机会报此错误",
        72036 => "发票正在被修改状态，请稍后再试",
        72038 => "订单没有授权，可能是开票平台 appid 、商户 appid 、订单 order_id 不匹配",
        72039 => "订单未被锁定",
        72040 => "Pdf 无效，请提供真实有效的 pdf",
        72042 => "发票号码和发票代码重复",
        72043 => "发票号码和发票代码错误",
        72044 => "发票抬头二维码超时",
        40078 => "card_id未授权。若开发者使用沙箱环境报此错误，主要因为未将调用接口的微信添加到测试白名单； 若开发者使用正式环境报此错误，主要原因可能为：调用接口公众号未开通卡券权限，或创建card_id与插卡时间间隔过短。",
        _ => return None,
    })
}

/// The gateway's own remarks for errcodes a reimburser meets that the spec's table lacks. They go
/// out as `gateway_hint`, so the spec's `hint` keeps exactly the spec's table.
pub fn gateway_hint(errcode: i64) -> Option<&'static str> {
    Some(match errcode {
        72037 => "发票不属于该用户：openid 与发票持有人不一致",
        40073 => "card_id 或 encrypt_code 无效，请用卡包选择发票时返回的值",
        48001 => "接口未授权：企业微信的批量查询仅开放给已认证且超过200名活跃成员的企业",
        42001 => "access_token 已过期，网关会自动刷新，请重试",
        45009 => "今日接口调用次数已达上限",
        40164 | 61004 => {
            "调用方 IP 不在公众号/企业微信的 IP 白名单中，请把网关的出口 IP 加入白名单"
        }
        40125 => "AppSecret 错误或已重置，请更新网关保存的密钥",
        40013 => "AppID（企业微信为 corpid）错误",
        _ => return None,
    })
}

/// Everything the gateway answers with other than a success body.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// Bad input found by the gateway (400).
    BadRequest { errcode: i64, errmsg: String },
    /// A body or list over the documented limits (413).
    TooLarge(String),
    /// The path exists but not for this method (405).
    MethodNotAllowed { allowed: &'static str },
    /// No such path (404).
    NotFound(String),
    /// Too many requests of a kind the gateway limits (429): try again shortly.
    Throttled(String),
    /// The `appid` (and `agentid`) names no app of this deployment (404), or a disabled one
    /// (403); errcode 40013 (WeChat's "invalid appid").
    NoSuchApp { disabled: bool, errmsg: String },
    /// WeChat answered with errcode ≠ 0: its body goes back unchanged, with a hint (200).
    WeChat(WeChatErrorBody),
    /// WeChat could not be reached, or answered something that is not its API (502).
    WeChatUnreachable(String),
    /// WeChat did not answer within the timeout (504).
    WeChatTimeout(String),
    /// A status change left and its answer was lost (timeout: 504, otherwise 502): WeChat may
    /// have applied it. The status handlers read the invoices back; it reaches the caller (errcode
    /// `OUTCOME_UNKNOWN`) only when that read fails too.
    OutcomeUnknown { timed_out: bool, cause: String },
    /// A token refresh could not complete in time, or nothing usable is stored (503). The text
    /// is the gateway's own and names no resource.
    Unavailable(String),
    /// A dependency of ours failed (DynamoDB, Secrets Manager) (503). Callers see `public`; the
    /// detail, which may name tables, secrets or accounts, goes to the log only.
    Internal {
        public: &'static str,
        detail: String,
    },
}

/// A WeChat error body kept as WeChat sent it (field order included).
#[derive(Debug, Clone, PartialEq)]
pub struct WeChatErrorBody {
    pub errcode: i64,
    pub body: Map<String, Value>,
}

impl ApiError {
    pub fn bad_request(errmsg: impl Into<String>) -> Self {
        ApiError::BadRequest {
            errcode: INVALID_PARAMS,
            errmsg: errmsg.into(),
        }
    }

    /// WeChat's own answer for an access_token it does not accept.
    pub fn invalid_credential() -> Self {
        let mut body = Map::new();
        body.insert("errcode".into(), Value::from(40001));
        body.insert(
            "errmsg".into(),
            Value::from("invalid credential, access_token is invalid or not latest"),
        );
        ApiError::WeChat(WeChatErrorBody {
            errcode: 40001,
            body,
        })
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NoSuchApp { disabled: true, .. } => StatusCode::FORBIDDEN,
            ApiError::NoSuchApp { .. } => StatusCode::NOT_FOUND,
            ApiError::WeChat(_) => StatusCode::OK,
            ApiError::WeChatUnreachable(_) => StatusCode::BAD_GATEWAY,
            ApiError::WeChatTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::OutcomeUnknown {
                timed_out: true, ..
            } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::OutcomeUnknown { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) | ApiError::Internal { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn errcode(&self) -> i64 {
        match self {
            ApiError::BadRequest { errcode, .. } => *errcode,
            ApiError::TooLarge(_) | ApiError::MethodNotAllowed { .. } | ApiError::NotFound(_) => {
                INVALID_PARAMS
            }
            ApiError::WeChat(w) => w.errcode,
            ApiError::NoSuchApp { .. } => NO_SUCH_APP,
            ApiError::Throttled(_) => SYSTEM_ERROR,
            ApiError::OutcomeUnknown { .. } => crate::outcome::OUTCOME_UNKNOWN,
            ApiError::WeChatUnreachable(_)
            | ApiError::WeChatTimeout(_)
            | ApiError::Unavailable(_)
            | ApiError::Internal { .. } => SYSTEM_ERROR,
        }
    }

    pub fn errmsg(&self) -> String {
        match self {
            ApiError::BadRequest { errmsg, .. } => errmsg.clone(),
            ApiError::TooLarge(m) | ApiError::NotFound(m) => m.clone(),
            ApiError::NoSuchApp { errmsg, .. } => errmsg.clone(),
            ApiError::Throttled(m) => format!("too many requests: {m}"),
            ApiError::MethodNotAllowed { allowed } => {
                format!("method not allowed: this path accepts {allowed} only")
            }
            ApiError::WeChat(w) => w
                .body
                .get("errmsg")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            ApiError::WeChatUnreachable(m) => format!("WeChat unreachable: {m}"),
            ApiError::WeChatTimeout(m) => format!("WeChat timed out: {m}"),
            ApiError::OutcomeUnknown { cause, .. } => format!(
                "outcome unknown: the status change was sent and its answer lost ({cause}); \
                 read the invoices before trying again"
            ),
            ApiError::Unavailable(m) => format!("service unavailable: {m}"),
            ApiError::Internal { public, .. } => format!("service unavailable: {public}"),
        }
    }

    /// What the log gets beyond the errmsg: the internal detail, when there is one.
    pub fn detail(&self) -> Option<&str> {
        match self {
            ApiError::Internal { detail, .. } => Some(detail),
            _ => None,
        }
    }

    pub fn into_response(self) -> Response<Body> {
        self.into_response_for(None)
    }

    /// The answer; a fault on our side (5xx) names the request id, which the log line carries
    /// too, so a front-end developer can report it.
    pub fn into_response_for(self, request_id: Option<&str>) -> Response<Body> {
        let status = self.status();
        let allow = match &self {
            ApiError::MethodNotAllowed { allowed } => Some(*allowed),
            _ => None,
        };
        let body = match self {
            ApiError::WeChat(w) => with_hint(w.errcode, w.body),
            other => {
                let mut errmsg = other.errmsg();
                if let (true, Some(id)) = (status.is_server_error(), request_id) {
                    errmsg.push_str(&format!(" (request id {id})"));
                }
                json!({ "errcode": other.errcode(), "errmsg": errmsg })
            }
        };
        let mut resp = json_response(status, body.to_string());
        if let Some(allowed) = allow {
            resp.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static(allowed));
        }
        resp
    }
}

/// errcodes for a caller outside the account's IP allow-list: WeChat names our egress address.
const IP_ALLOW_LIST: [i64; 2] = [40164, 61004];

/// WeChat's error body with the spec's remark added as `hint`, when the table has one. An
/// allow-list refusal has the addresses in its errmsg masked: they are the deployment's egress
/// addresses, not the caller's business (the log keeps them).
pub fn with_hint(errcode: i64, mut body: Map<String, Value>) -> Value {
    if IP_ALLOW_LIST.contains(&errcode) {
        if let Some(Value::String(m)) = body.get_mut("errmsg") {
            *m = mask_ips(m);
        }
    }
    if let Some(h) = gateway_hint(errcode) {
        body.insert("gateway_hint".into(), Value::String(h.into()));
    }
    if let Some(h) = hint(errcode) {
        body.insert("hint".into(), Value::String(h.into()));
    }
    Value::Object(body)
}

/// Every IPv4 or IPv6 address in `text` (words, trailing commas allowed) replaced with `*`.
fn mask_ips(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            let bare = word.trim_end_matches([',', ';']);
            if bare.parse::<std::net::IpAddr>().is_ok() {
                format!("*{}", &word[bare.len()..])
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn json_response(status: StatusCode, body: impl Into<Body>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(body.into())
        .expect("static status and header are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_json(resp: &Response<Body>) -> Value {
        serde_json::from_slice(resp.body().as_ref()).unwrap()
    }

    #[test]
    fn bad_request_is_400_in_the_envelope() {
        let resp = ApiError::bad_request("item_list: must not be empty").into_response();
        assert_eq!(resp.status(), 400);
        assert_eq!(
            body_json(&resp),
            json!({"errcode": 72031, "errmsg": "item_list: must not be empty"})
        );
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
    }

    #[test]
    fn wechat_error_keeps_body_order_and_adds_the_spec_hint() {
        let body: Map<String, Value> = serde_json::from_str(
            r#"{"errcode":72023,"errmsg":"invoice has been lock rid: 1-2-3","extra":1}"#,
        )
        .unwrap();
        let resp = ApiError::WeChat(WeChatErrorBody {
            errcode: 72023,
            body,
        })
        .into_response();
        assert_eq!(resp.status(), 200);
        let text = std::str::from_utf8(resp.body().as_ref()).unwrap();
        assert!(text.starts_with(r#"{"errcode":72023,"errmsg":"invoice has been lock rid: 1-2-3","extra":1,"hint":"发票已被其他公众号锁定"#), "{text}");
    }

    #[test]
    fn allow_list_refusals_name_no_address() {
        let body: Map<String, Value> = serde_json::from_str(
            r#"{"errcode":40164,"errmsg":"invalid ip 52.80.1.2 ipv6 ::ffff:52.80.1.2, not in whitelist rid: 1-2"}"#,
        )
        .unwrap();
        let v = with_hint(40164, body);
        assert_eq!(
            v["errmsg"],
            "invalid ip * ipv6 *, not in whitelist rid: 1-2"
        );
        let internal = ApiError::Internal {
            public: "token store unavailable",
            detail: "ResourceNotFoundException: table wxinvoice-prod-TokenTable-1ABC".into(),
        };
        let resp = internal.clone().into_response_for(Some("req-1"));
        assert_eq!(resp.status(), 503);
        let v = body_json(&resp);
        assert_eq!(
            v["errmsg"],
            "service unavailable: token store unavailable (request id req-1)"
        );
        assert!(internal.detail().unwrap().contains("TokenTable"));
    }

    #[test]
    fn the_gateways_own_hints_leave_the_spec_table_alone() {
        for code in [
            72037, 40073, 48001, 42001, 45009, 40164, 61004, 40125, 40013,
        ] {
            assert!(gateway_hint(code).is_some(), "{code}");
            assert!(hint(code).is_none(), "{code} is not in the spec's table");
        }
        let body: Map<String, Value> =
            serde_json::from_str(r#"{"errcode":72037,"errmsg":"invoice not belong to user"}"#)
                .unwrap();
        let v = with_hint(72037, body);
        assert!(v.get("hint").is_none());
        assert!(v["gateway_hint"].as_str().unwrap().contains("openid"));
        // A code of the spec's table keeps its hint and gets no other.
        let body: Map<String, Value> =
            serde_json::from_str(r#"{"errcode":40001,"errmsg":"invalid credential"}"#).unwrap();
        let v = with_hint(40001, body);
        assert_eq!(v["hint"], "token失效");
        assert!(v.get("gateway_hint").is_none());
    }

    #[test]
    fn codes_outside_the_table_get_no_hint() {
        let body: Map<String, Value> =
            serde_json::from_str(r#"{"errcode":45001,"errmsg":"other"}"#).unwrap();
        let v = with_hint(45001, body);
        assert!(v.get("hint").is_none() && v.get("gateway_hint").is_none());
    }

    #[test]
    fn every_code_of_the_spec_table_has_a_hint() {
        for code in [
            40001, 72015, 72017, 72023, 72024, 72025, 72028, 72029, 72030, 72031, 72035, 72036,
            72038, 72039, 72040, 72042, 72043, 72044, 40078,
        ] {
            assert!(hint(code).is_some(), "{code}");
        }
        assert_eq!(hint(72039), Some("订单未被锁定"));
    }

    #[test]
    fn fault_classes_map_to_their_statuses() {
        assert_eq!(
            ApiError::WeChatUnreachable("x".into())
                .into_response()
                .status(),
            502
        );
        assert_eq!(
            ApiError::WeChatTimeout("x".into()).into_response().status(),
            504
        );
        assert_eq!(
            ApiError::Unavailable("x".into()).into_response().status(),
            503
        );
        let r = ApiError::MethodNotAllowed { allowed: "GET" }.into_response();
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()[header::ALLOW], "GET");
        assert_eq!(body_json(&r)["errcode"], 72031);
        assert_eq!(ApiError::Unavailable("x".into()).errcode(), -1);
    }
}
