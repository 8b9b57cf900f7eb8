//! Why the token lifecycle could not serve credentials.

use crate::adapters::store::StoreError;
use crate::adapters::wechat::WeChatError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenError {
    /// A store operation or a wait was cut by the request's deadline (`what` was under way).
    #[error("{0}: the request's time ran out")]
    Expired(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// WeChat refused, failed, or could not be asked (no AppSecret).
    #[error(transparent)]
    WeChat(#[from] WeChatError),
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The registered app was removed while this instance still knew it (by its key).
    #[error("the app {0} is no longer registered")]
    AppRemoved(String),
    /// The caller's token is neither the stored one nor the previous one in its grace period.
    #[error("the access_token is not the one this gateway keeps")]
    InvalidCredential,
}

/// Nothing usable could be served, for a reason of the gateway's own (its texts name no
/// resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("a token refresh in progress did not finish in time")]
    RefreshInProgress,
    #[error("a concurrent token refresh failed")]
    ConcurrentRefreshFailed,
    #[error("refresh lease lost")]
    LeaseLost,
    #[error("refresh lease lost to another instance")]
    LeaseLostToAnother,
    #[error("no access_token")]
    NoAccessToken,
    #[error("refresh produced nothing")]
    NothingFetched,
    #[error("refreshed state is not usable")]
    NotUsable,
    #[error("no access_token stored")]
    NoAccessTokenStored,
    #[error("no jsapi_ticket stored")]
    NoJsapiTicketStored,
}

impl TokenError {
    /// What broke, in words an operator acts on: WeChat's errcode, WeChat unreachable, DynamoDB,
    /// or the secret.
    pub fn cause(&self) -> String {
        match self {
            TokenError::WeChat(WeChatError::Api(b)) => {
                format!("WeChat errcode {}: {}", b.errcode, b.errmsg())
            }
            TokenError::WeChat(WeChatError::Timeout(m)) => format!("WeChat timed out: {m}"),
            TokenError::WeChat(e @ WeChatError::NoTime) => format!("WeChat timed out: {e}"),
            TokenError::WeChat(WeChatError::Unreachable(m) | WeChatError::NotSent(m)) => {
                format!("WeChat unreachable: {m}")
            }
            TokenError::WeChat(e @ WeChatError::NoSecret(_)) => format!("secret: {e}"),
            TokenError::WeChat(e @ WeChatError::NoVerifyTicket(_)) => e.to_string(),
            TokenError::Store(e) => format!("DynamoDB: {e}"),
            TokenError::InvalidCredential => "WeChat errcode 40001: invalid credential".into(),
            other => format!("service unavailable: {other}"),
        }
    }
}
