//! Why an operation failed.

use crate::adapters::claims::ClaimError;
use crate::adapters::wechat::WeChatError;
use crate::domain::claims::Holder;
use crate::domain::errcode::WeChatErrorBody;
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
    /// Another claim holds an invoice of the change (refused before WeChat).
    #[error("invoice held by claim {}", .0.claim_id)]
    Claimed(Holder),
    /// The app's daily budget of WeChat calls is spent (refused before WeChat).
    #[error("the app's daily budget of {ceiling} WeChat calls is spent")]
    OverBudget { ceiling: u64 },
    /// The claim table could not be read or written.
    #[error(transparent)]
    Claims(#[from] ClaimError),
}

impl OpError {
    /// What went wrong, in the words of the answer the caller would get (never a table or
    /// secret name): for texts the gateway writes into other answers and records.
    pub fn message(&self) -> String {
        let wechat = |e: &WeChatError| match e {
            WeChatError::Api(b) => b.errmsg().to_string(),
            WeChatError::Timeout(m) => format!("WeChat timed out: {m}"),
            WeChatError::NoTime => format!("WeChat timed out: {e}"),
            WeChatError::Unreachable(m) | WeChatError::NotSent(m) => {
                format!("WeChat unreachable: {m}")
            }
            WeChatError::NoSecret(_) => "service unavailable: AppSecret unavailable".into(),
            WeChatError::NoVerifyTicket(_) => {
                "service unavailable: no component_verify_ticket yet".into()
            }
        };
        match self {
            OpError::WeChat(w) | OpError::Token(TokenError::WeChat(w)) => wechat(w),
            OpError::Token(TokenError::Store(_)) => {
                "service unavailable: token store unavailable".into()
            }
            OpError::Token(TokenError::InvalidCredential) => {
                WeChatErrorBody::invalid_credential().errmsg().to_string()
            }
            OpError::Token(other) => format!("service unavailable: {other}"),
            other => other.to_string(),
        }
    }

    /// A WeChat answer that is not a JSON object.
    pub fn not_json() -> Self {
        OpError::WeChat(WeChatError::Unreachable(
            "answer is not a JSON object".into(),
        ))
    }
}
