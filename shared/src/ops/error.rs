//! Why an operation failed.

use crate::adapters::wechat::WeChatError;
use crate::token::TokenError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpError {
    /// No access_token to call WeChat with, or the caller's is not the gateway's.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// WeChat refused (its errcode passes through) or failed.
    #[error(transparent)]
    WeChat(#[from] WeChatError),
    /// A status change left and its answer was lost (`timed_out`: by the timeout), and reading
    /// the invoices back could not tell whether WeChat applied it.
    #[error("outcome unknown: {cause}")]
    OutcomeUnknown { timed_out: bool, cause: String },
    /// A status change whose answer was lost, read back as not applied: trying again is safe.
    #[error("{message}")]
    NotApplied { timed_out: bool, message: String },
}

impl OpError {
    /// A WeChat answer that is not a JSON object.
    pub fn not_json() -> Self {
        OpError::WeChat(WeChatError::Unreachable(
            "answer is not a JSON object".into(),
        ))
    }
}
