//! The HTTP envelope every answer uses: `{"errcode":…, "errmsg":…}` for the gateway's own errors,
//! WeChat's body passed through (plus a Chinese `hint`) for WeChat's errors, and the one table of
//! hints taken from the user's spec.

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Response};
use serde_json::{Map, Value};

use crate::domain::errcode::IP_ALLOW_LIST;

/// errcode for bad parameters (WeChat's "invalid params", reused for the gateway's own validation).
pub const INVALID_PARAMS: i64 = 72031;
/// errcode for a missing access_token (WeChat's "access_token missing").
pub const MISSING_TOKEN: i64 = 41001;
/// errcode for an app this deployment does not serve (WeChat's "invalid appid").
pub const NO_SUCH_APP: i64 = 40013;
/// errcode (the gateway's own) for a status change refused because another expense claim holds
/// the invoice.
pub const CLAIMED: i64 = -3;
/// errcode (the gateway's own) for a request refused because its app spent today's budget of
/// WeChat calls (`WECHAT_DAILY_BUDGET`).
pub const BUDGET_SPENT: i64 = -4;
/// errcode for an authorization that lacks the permission set the invoice APIs need (WeChat's
/// "api is unauthorized to component", what calling them would answer).
pub const MISSING_PERMISSION: i64 = 61007;
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
