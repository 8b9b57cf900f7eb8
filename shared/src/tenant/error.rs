//! Why a request's app could not be served.

use crate::token::TokenError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TenantError {
    /// The `appid` (and `agentid`) names no app of this deployment.
    #[error("appid: no app {0} in this deployment")]
    NoSuchApp(String),
    /// The app is registered and disabled.
    #[error("appid: app {0} is disabled in this deployment")]
    Disabled(String),
    /// A name this process has not seen, within a second of a lookup that found nothing: not
    /// looked up. Retryable.
    #[error("lookups of unknown apps; try again in a second")]
    Throttled,
    /// The registry could not be read.
    #[error(transparent)]
    Registry(#[from] TokenError),
}

impl TenantError {
    /// An app's key as people read it: `wx…`, or `ww… agent 1000002`.
    pub fn name(key: &str) -> String {
        key.trim_start_matches("app#").replace('#', " agent ")
    }
}
