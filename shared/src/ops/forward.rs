//! Forwarding an invoice call to WeChat with an access_token the gateway vouches for; when WeChat
//! reports that token dead, it is replaced (single flight, within the cooldown) and the call sent
//! once more with the stored token.

use bytes::Bytes;
use serde::Serialize;

use crate::adapters::wechat::{Call, WeChatError};
use crate::domain::deadline::Deadline;
use crate::domain::errcode::DEAD_TOKEN;
use crate::ops::error::OpError;
use crate::ops::reply::How;
use crate::tenant::AppRuntime;
use crate::token::Mode;

/// WeChat's successful answer, byte for byte.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub body: Vec<u8>,
    /// Sent a second time, with a fresh token, after WeChat reported the first one dead.
    pub retried: bool,
}

impl Forwarded {
    /// How the answer was had.
    pub fn how(&self) -> How {
        if self.retried {
            How::RetriedAfterDeadToken
        } else {
            How::Direct
        }
    }
}

/// Sends `body` to `wechat_path`. No open proxy: a caller's token is used only when it is the
/// stored one (or the previous one in its grace period) and tokens are exposed; otherwise the
/// stored token. Never more than one retry, and none that the deadline cannot fit.
pub async fn forward(
    app: &AppRuntime,
    wechat_path: &str,
    call: Call,
    caller_token: Option<String>,
    body: &impl Serialize,
    deadline: &Deadline,
) -> Result<Forwarded, OpError> {
    // Bytes: the retry sends the same body without copying it.
    let json = Bytes::from(serde_json::to_vec(body).expect("request models serialize"));
    let token = match caller_token {
        Some(t) if app.config.expose_access_token => {
            app.tokens.check(&t, deadline).await?;
            t
        }
        _ => stored_token(app, deadline).await?,
    };
    let first = app
        .wechat
        .post(wechat_path, &token, json.clone(), call, deadline)
        .await;
    let dead = match first {
        Err(WeChatError::Api(b)) if DEAD_TOKEN.contains(&b.errcode) => b,
        Err(e) => return Err(sent_error(call, e)),
        Ok(reply) => {
            said_made(call, &reply.body)?;
            return Ok(Forwarded {
                body: reply.body,
                retried: false,
            });
        }
    };
    let replacement = match app.tokens.replace_dead(&token, deadline).await {
        Ok(served) => served.state.access_token.map(|c| c.value),
        Err(_) => return Err(WeChatError::Api(dead).into()),
    };
    match replacement {
        Some(fresh) if fresh != token && deadline.allows(app.wechat.timeout()) => {
            let reply = app
                .wechat
                .post(wechat_path, &fresh, json, call, deadline)
                .await
                .map_err(|e| sent_error(call, e))?;
            said_made(call, &reply.body)?;
            Ok(Forwarded {
                body: reply.body,
                retried: true,
            })
        }
        _ => Err(WeChatError::Api(dead).into()),
    }
}

/// A change is made when WeChat answers errcode 0. An answer without an errcode (a proxy's
/// `{}`) does not say so: it is settled like a lost answer, by reading back.
fn said_made(call: Call, body: &[u8]) -> Result<(), OpError> {
    #[derive(serde::Deserialize)]
    struct Head {
        errcode: Option<i64>,
    }
    let said = serde_json::from_slice::<Head>(body)
        .ok()
        .and_then(|h| h.errcode);
    match (call, said) {
        (Call::Change, None) => Err(OpError::OutcomeUnknown {
            timed_out: false,
            cause: "WeChat's answer has no errcode".into(),
        }),
        _ => Ok(()),
    }
}

/// A failed call's error; a status change that left and lost its answer is `OutcomeUnknown`,
/// which `status` settles by reading the invoices back.
fn sent_error(call: Call, e: WeChatError) -> OpError {
    match e {
        WeChatError::Timeout(cause) if call == Call::Change => OpError::OutcomeUnknown {
            timed_out: true,
            cause: format!("timeout: {cause}"),
        },
        WeChatError::Unreachable(cause) if call == Call::Change => OpError::OutcomeUnknown {
            timed_out: false,
            cause,
        },
        other => other.into(),
    }
}

/// The stored access_token, refreshed if needed.
pub async fn stored_token(app: &AppRuntime, deadline: &Deadline) -> Result<String, OpError> {
    let served = app.tokens.get(Mode::Auto, deadline).await?;
    Ok(served.access_token()?.to_string())
}
