//! How a call to WeChat failed, and what kind of call it was: whether it may be sent again.

use crate::domain::errcode::WeChatErrorBody;

/// How a call to WeChat failed. The texts never hold the URL (it carries the AppSecret or an
/// access_token).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeChatError {
    /// WeChat answered with errcode ≠ 0.
    #[error("errcode {}", .0.errcode)]
    Api(WeChatErrorBody),
    /// Sent, and no answer within the timeout: WeChat may have acted on it.
    #[error("timeout: {0}")]
    Timeout(String),
    /// Sent, and the answer was lost or is not WeChat's API (dropped connection, HTTP 5xx, a body
    /// that is not JSON): WeChat may have acted on it.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Never left: the connection could not be made.
    #[error("unreachable: {0}")]
    NotSent(String),
    /// Not started: the request's deadline leaves no time for it.
    #[error("the request's time ran out before calling WeChat")]
    NoTime,
    /// The AppSecret could not be had (Secrets Manager failed, or none is configured).
    #[error("AppSecret: {0}")]
    NoSecret(String),
    /// A third-party platform has no `component_verify_ticket` to fetch its token with yet.
    #[error("no component_verify_ticket yet: WeChat pushes one every 10 minutes to the authorization-event URL once the platform is approved ({0})")]
    NoVerifyTicket(String),
}

impl WeChatError {
    /// Whether WeChat surely did nothing: it answered an error, or was never asked.
    pub fn nothing_done(&self) -> bool {
        matches!(
            self,
            WeChatError::Api(_)
                | WeChatError::NotSent(_)
                | WeChatError::NoTime
                | WeChatError::NoSecret(_)
                | WeChatError::NoVerifyTicket(_)
        )
    }
}

/// What a call does at WeChat, which decides whether it may be sent again elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Reads and token/ticket fetches: safe to repeat.
    Read,
    /// A status change: repeating one WeChat may have applied is not safe, so it is never sent
    /// twice, and not started without the full WeChat timeout left.
    Change,
}
