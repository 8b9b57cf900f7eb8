//! WeChat's errcodes the gateway acts on, and a WeChat error answer kept as WeChat sent it.

use serde_json::{Map, Value};

/// errcodes by which WeChat says an access_token is dead (superseded, malformed, expired).
pub const DEAD_TOKEN: [i64; 3] = [40001, 40014, 42001];

/// WeChat's "invalid credential": an access_token it does not accept.
pub const INVALID_CREDENTIAL: i64 = 40001;

/// errcodes by which WeChat rejects the AppSecret of a token fetch (WeCom answers 40001 for a
/// wrong corpsecret, Official Accounts 40125, and 40001 on older servers).
pub const SECRET_REJECTED: [i64; 2] = [40001, 40125];

/// WeCom's errcode for an API the corp is not granted (the batch query, for corps of 200 active
/// members or fewer).
pub const BATCH_NOT_GRANTED: i64 = 48001;

/// errcodes for a caller outside the account's IP allow-list: WeChat names our egress address.
pub const IP_ALLOW_LIST: [i64; 2] = [40164, 61004];

/// A WeChat error body kept as WeChat sent it (field order included).
#[derive(Debug, Clone, PartialEq)]
pub struct WeChatErrorBody {
    pub errcode: i64,
    pub body: Map<String, Value>,
}

impl WeChatErrorBody {
    /// WeChat's own answer for an access_token it does not accept.
    pub fn invalid_credential() -> Self {
        let mut body = Map::new();
        body.insert("errcode".into(), Value::from(INVALID_CREDENTIAL));
        body.insert(
            "errmsg".into(),
            Value::from("invalid credential, access_token is invalid or not latest"),
        );
        WeChatErrorBody {
            errcode: INVALID_CREDENTIAL,
            body,
        }
    }

    pub fn errmsg(&self) -> &str {
        self.body
            .get("errmsg")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}
