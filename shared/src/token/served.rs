//! What a request wants of the token state, and what it was served and how.

use crate::domain::state::TokenState;
use crate::token::error::TokenError;

/// Why credentials are wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A reader (`type=auto`): refresh only if the stored ones are missing or about to expire.
    Auto,
    /// `type=manual` (public): replace the stored token only if WeChat says it is dead.
    Manual,
    /// An operator's rotation (a direct invocation, behind IAM): a token fetched after this
    /// request arrived, whatever the state and the cooldown.
    Rotate,
    /// The hourly schedule: rotate whatever would expire before the next run.
    Scheduled,
}

/// How the answer came about (logged with the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// From this instance's cache (younger than CACHE_TTL_SECS); no request to the store.
    Cached,
    /// Read from the store; no refresh needed.
    Stored,
    /// This request refreshed and published.
    Refreshed,
    /// This request refreshed, but the publish could not be stored: it was answered with the
    /// issued credentials, and the store's fetch mark makes the others refresh in time.
    RefreshedUnstored,
    /// Another instance refreshed while this request waited.
    Waited,
    /// A refresh was needed but failed; the stored credentials are still alive and were served.
    StoredAfterFault,
    /// A forced refresh was asked for within the cooldown of the last one: the stored
    /// credentials were served without calling WeChat.
    Cooldown,
    /// `type=manual`, and WeChat said the stored token is alive: served, not replaced.
    CheckedAlive,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cached => "cached",
            Source::Stored => "stored",
            Source::Refreshed => "refreshed",
            Source::RefreshedUnstored => "refreshed_unstored",
            Source::Waited => "waited",
            Source::StoredAfterFault => "stored_after_fault",
            Source::Cooldown => "cooldown",
            Source::CheckedAlive => "checked_alive",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Served {
    pub state: TokenState,
    pub source: Source,
    /// A fault met on the way (a ticket that failed to refresh, WeChat down while stored
    /// credentials were still alive, a publish that could not be stored).
    pub fault: Option<TokenError>,
}

impl Served {
    pub fn new(state: TokenState, source: Source) -> Self {
        Served {
            state,
            source,
            fault: None,
        }
    }

    /// The access_token served, when there is one.
    pub fn access_token(&self) -> Result<&str, TokenError> {
        self.state
            .access_token
            .as_ref()
            .map(|c| c.value.as_str())
            .ok_or(TokenError::Unavailable(
                crate::token::error::Unavailable::NoAccessTokenStored,
            ))
    }
}
