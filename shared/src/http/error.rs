//! The gateway's HTTP errors: every answer other than a success, its status, errcode and
//! errmsg in the documented envelope; and the one place each lower layer's error becomes one.

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Response};
use serde_json::json;

use crate::adapters::wechat::WeChatError;
use crate::domain::budget::secs_left_in_day;
use crate::domain::clock::now_ms;
use crate::domain::errcode::WeChatErrorBody;
use crate::domain::input::InputError;
use crate::domain::outcome::OUTCOME_UNKNOWN;
use crate::http::envelope::{
    json_response, with_hint, BUDGET_SPENT, CLAIMED, INVALID_PARAMS, MISSING_PERMISSION,
    NO_SUCH_APP, SYSTEM_ERROR,
};
use crate::ops::component_auth::AuthError;
use crate::ops::component_events::PushRefused;
use crate::ops::OpError;
use crate::tenant::TenantError;
use crate::token::TokenError;

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
    /// The app spent today's budget of WeChat calls (429, errcode `BUDGET_SPENT`): it renews at
    /// midnight Beijing time.
    OverBudget { ceiling: u64 },
    /// Another request with the same Idempotency-Key is under way (409): try again shortly.
    Conflict(String),
    /// The Idempotency-Key was used with another request (422).
    Unprocessable(String),
    /// Another expense claim holds an invoice of the change (409), refused before WeChat.
    Claimed {
        claim_id: String,
        status: &'static str,
        since_ms: u64,
    },
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

impl ApiError {
    pub fn bad_request(errmsg: impl Into<String>) -> Self {
        ApiError::BadRequest {
            errcode: INVALID_PARAMS,
            errmsg: errmsg.into(),
        }
    }

    /// WeChat's own answer for an access_token it does not accept.
    pub fn invalid_credential() -> Self {
        ApiError::WeChat(WeChatErrorBody::invalid_credential())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Throttled(_) | ApiError::OverBudget { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Conflict(_) | ApiError::Claimed { .. } => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
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
            ApiError::Throttled(_) | ApiError::Conflict(_) => SYSTEM_ERROR,
            ApiError::Unprocessable(_) => INVALID_PARAMS,
            ApiError::Claimed { .. } => CLAIMED,
            ApiError::OverBudget { .. } => BUDGET_SPENT,
            ApiError::OutcomeUnknown { .. } => OUTCOME_UNKNOWN,
            ApiError::WeChatUnreachable(_)
            | ApiError::WeChatTimeout(_)
            | ApiError::Unavailable(_)
            | ApiError::Internal { .. } => SYSTEM_ERROR,
        }
    }

    pub fn errmsg(&self) -> String {
        match self {
            ApiError::BadRequest { errmsg, .. } => errmsg.clone(),
            ApiError::TooLarge(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::Unprocessable(m) => m.clone(),
            ApiError::NoSuchApp { errmsg, .. } => errmsg.clone(),
            ApiError::Claimed {
                claim_id, status, ..
            } => format!(
                "the invoice is held by another expense claim ({claim_id}, {status}); \
                 it must not be claimed twice"
            ),
            ApiError::Throttled(m) => format!("too many requests: {m}"),
            ApiError::OverBudget { ceiling } => format!(
                "the app's daily budget of {ceiling} WeChat calls is spent; \
                 it renews at midnight Beijing time"
            ),
            ApiError::MethodNotAllowed { allowed } => {
                format!("method not allowed: this path accepts {allowed} only")
            }
            ApiError::WeChat(w) => w.errmsg().to_string(),
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
        let retry_after = match &self {
            ApiError::OverBudget { .. } => Some(secs_left_in_day(now_ms())),
            _ => None,
        };
        let body = match self {
            ApiError::WeChat(w) => with_hint(w.errcode, w.body),
            ApiError::Claimed {
                ref claim_id,
                status,
                since_ms,
            } => json!({
                "errcode": CLAIMED,
                "errmsg": self.errmsg(),
                "gateway_claim": {"claim_id": claim_id, "status": status, "since_ms": since_ms},
                "gateway_hint": "发票已被另一报销单占用，不能重复报销",
            }),
            ApiError::OverBudget { .. } => json!({
                "errcode": BUDGET_SPENT,
                "errmsg": self.errmsg(),
                "gateway_hint": "该公众号/应用今日调用微信接口的次数已达网关设定的上限，北京时间零点后恢复",
            }),
            other => {
                let mut errmsg = other.errmsg();
                if let (true, Some(id)) = (status.is_server_error(), request_id) {
                    errmsg.push_str(&format!(" (request id {id})"));
                }
                json!({ "errcode": other.errcode(), "errmsg": errmsg })
            }
        };
        let mut resp = json_response(status, body.to_string());
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        if let Some(allowed) = allow {
            resp.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static(allowed));
        }
        resp
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Invalid(m) => ApiError::bad_request(m),
            InputError::TooLarge(m) => ApiError::TooLarge(m),
        }
    }
}

impl From<WeChatError> for ApiError {
    fn from(e: WeChatError) -> Self {
        match e {
            WeChatError::Api(b) => ApiError::WeChat(b),
            WeChatError::Timeout(m) => ApiError::WeChatTimeout(m),
            e @ WeChatError::NoTime => ApiError::WeChatTimeout(e.to_string()),
            WeChatError::Unreachable(m) | WeChatError::NotSent(m) => ApiError::WeChatUnreachable(m),
            e @ WeChatError::NoSecret(_) => ApiError::Internal {
                public: "AppSecret unavailable",
                detail: e.to_string(),
            },
            e @ WeChatError::NoVerifyTicket(_) => ApiError::Internal {
                public: "the platform has no component_verify_ticket yet",
                detail: e.to_string(),
            },
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::WeChat(w) => w.into(),
            TokenError::Store(s) => ApiError::Internal {
                public: "token store unavailable",
                detail: s.to_string(),
            },
            TokenError::InvalidCredential => ApiError::invalid_credential(),
            // Answered as any unknown app is.
            TokenError::AppRemoved(key) => ApiError::NoSuchApp {
                disabled: false,
                errmsg: TenantError::NoSuchApp(TenantError::name(&key)).to_string(),
            },
            other @ (TokenError::Expired(_) | TokenError::Unavailable(_)) => {
                ApiError::Unavailable(other.to_string())
            }
        }
    }
}

impl From<TenantError> for ApiError {
    fn from(e: TenantError) -> Self {
        match e {
            TenantError::Registry(t) => t.into(),
            TenantError::Throttled => ApiError::Throttled(e.to_string()),
            TenantError::NoSuchApp(_) => ApiError::NoSuchApp {
                disabled: false,
                errmsg: e.to_string(),
            },
            TenantError::Disabled(_) => ApiError::NoSuchApp {
                disabled: true,
                errmsg: e.to_string(),
            },
        }
    }
}

impl From<PushRefused> for ApiError {
    fn from(e: PushRefused) -> Self {
        match e {
            PushRefused::NotAPlatform => ApiError::NotFound(e.to_string()),
            PushRefused::Secrets(s) => ApiError::Internal {
                public: "the third-party platform's secrets could not be read",
                detail: s.0,
            },
            PushRefused::Store(s) => ApiError::Internal {
                public: "the token table could not be reached",
                detail: s.0,
            },
            PushRefused::Authorization(a) => a.into(),
            refused => ApiError::bad_request(refused.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Token(t) => t.into(),
            AuthError::WeChat(w) => w.into(),
            AuthError::NotAPlatform => ApiError::NotFound(e.to_string()),
            AuthError::MissingInvoicePermission { .. } | AuthError::NoToken(_) => {
                ApiError::BadRequest {
                    errcode: MISSING_PERMISSION,
                    errmsg: e.to_string(),
                }
            }
        }
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Token(t) => t.into(),
            OpError::WeChat(w) => w.into(),
            OpError::OutcomeUnknown { timed_out, cause } => {
                ApiError::OutcomeUnknown { timed_out, cause }
            }
            OpError::NotApplied {
                timed_out: true,
                message,
            } => ApiError::WeChatTimeout(message),
            OpError::NotApplied { message, .. } => ApiError::WeChatUnreachable(message),
            OpError::Claimed(h) => ApiError::Claimed {
                claim_id: h.claim_id,
                status: h.status.as_str(),
                since_ms: h.since_ms,
            },
            OpError::OverBudget { ceiling } => ApiError::OverBudget { ceiling },
            OpError::Claims(c) => ApiError::Internal {
                public: "claim table unavailable",
                detail: c.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::envelope::{gateway_hint, hint};
    use serde_json::{Map, Value};

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
