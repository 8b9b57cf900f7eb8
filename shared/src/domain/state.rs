//! The token state of one app, as the store keeps it: the access_token, the previous one during
//! WeChat's grace period, the JS-SDK tickets (and a WeCom agent's), a version, the refresh lock (owner + lease end),
//! the fetch mark (see `token::lifecycle`) and, for a registered app, its settings.

use crate::domain::apps::AppSettings;
use crate::domain::config::Secret;

/// A credential and the instant (Unix ms) it stops being valid.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub value: String,
    pub expires_at_ms: u64,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential(***, expires_at_ms={})", self.expires_at_ms)
    }
}

impl Credential {
    /// Valid now and for at least `margin_ms` more.
    pub fn valid_for(&self, now_ms: u64, margin_ms: u64) -> bool {
        self.expires_at_ms > now_ms.saturating_add(margin_ms)
    }
}

/// The stored item. A missing item reads as the default (nothing issued yet, version 0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenState {
    pub access_token: Option<Credential>,
    /// The access_token before the last refresh, until WeChat stops honouring it.
    pub previous_access_token: Option<Credential>,
    pub jsapi_ticket: Option<Credential>,
    pub wx_card_ticket: Option<Credential>,
    /// A WeCom agent's ticket for `agentConfig` (`Timing::agent_ticket`); none elsewhere.
    pub agent_ticket: Option<Credential>,
    /// An account authorized to a third-party platform: its `authorizer_refresh_token`, the one
    /// credential that cannot be fetched again without the customer authorizing again.
    pub refresh_token: Option<Secret>,
    /// The refresh token before WeChat last answered a different one, kept until a refresh
    /// with the new one has worked (tried again if the new one is refused).
    pub previous_refresh_token: Option<Secret>,
    /// Incremented by every published refresh.
    pub version: u64,
    /// When the last refresh was published (Unix ms).
    pub refreshed_at_ms: u64,
    /// When the stored access_token was fetched from WeChat (Unix ms).
    pub token_fetched_ms: u64,
    /// Set by a lock holder just before it asks WeChat for a token that ends the stored one;
    /// cleared when a new token is published (or the fetch surely issued nothing).
    pub fetch_started_ms: Option<u64>,
    pub lock_owner: Option<String>,
    pub lock_until_ms: u64,
    /// A registered app's settings, kept in its item (none for the deployment's own app).
    pub settings: Option<Box<AppSettings>>,
    /// When a registered app falls due for the sweep (Unix ms; the sweep's index): none for the
    /// deployment's own app and for disabled apps, 0 for an app due now.
    pub due_ms: Option<u64>,
}

/// What a refresh publishes; `None` fields keep their stored value.
#[derive(Debug, Default, Clone)]
pub struct Update {
    pub access_token: Option<Credential>,
    pub previous_access_token: Option<Credential>,
    pub jsapi_ticket: Option<Credential>,
    pub wx_card_ticket: Option<Credential>,
    pub agent_ticket: Option<Credential>,
    /// A refresh token WeChat answered that differs from the stored one (published with the
    /// token it came with; the stored one kept as `previous_refresh_token`).
    pub refresh_token: Option<Secret>,
    pub previous_refresh_token: Option<Secret>,
    pub refreshed_at_ms: u64,
    /// A registered app's next due time, as the published state makes it (`lifecycle::falls_due`).
    pub due_ms: Option<u64>,
}

/// The state as it is once `update` is applied (a commit's result, computed locally when the
/// commit could not be stored).
pub fn applied(mut state: TokenState, update: &Update) -> TokenState {
    if update.access_token.is_some() {
        state.access_token.clone_from(&update.access_token);
        if update.previous_access_token.is_some() {
            state
                .previous_access_token
                .clone_from(&update.previous_access_token);
        }
        state.fetch_started_ms = None;
        state.token_fetched_ms = update.refreshed_at_ms;
    }
    if update.jsapi_ticket.is_some() {
        state.jsapi_ticket.clone_from(&update.jsapi_ticket);
    }
    if update.wx_card_ticket.is_some() {
        state.wx_card_ticket.clone_from(&update.wx_card_ticket);
    }
    if update.agent_ticket.is_some() {
        state.agent_ticket.clone_from(&update.agent_ticket);
    }
    if update.refresh_token.is_some() {
        state.refresh_token.clone_from(&update.refresh_token);
        state
            .previous_refresh_token
            .clone_from(&update.previous_refresh_token);
    }
    if update.due_ms.is_some() {
        state.due_ms = update.due_ms;
    }
    state.refreshed_at_ms = update.refreshed_at_ms;
    state.version += 1;
    state.lock_owner = None;
    state.lock_until_ms = 0;
    state
}

/// Whether `state` already holds everything `update` publishes: a commit whose response was lost
/// and whose retry then failed its condition did land.
pub fn holds(state: &TokenState, update: &Update) -> bool {
    let same = |new: &Option<Credential>, stored: &Option<Credential>| {
        new.as_ref()
            .is_none_or(|n| stored.as_ref().is_some_and(|s| s.value == n.value))
    };
    same(&update.access_token, &state.access_token)
        && same(&update.jsapi_ticket, &state.jsapi_ticket)
        && same(&update.wx_card_ticket, &state.wx_card_ticket)
        && same(&update.agent_ticket, &state.agent_ticket)
        && update
            .refresh_token
            .as_ref()
            .is_none_or(|r| state.refresh_token.as_ref() == Some(r))
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_credential() {
        let cred = Some(Credential {
            value: "AT-secret".into(),
            expires_at_ms: 1,
        });
        let state = TokenState {
            access_token: cred.clone(),
            refresh_token: Some(Secret::new("refreshtoken@@@secret")),
            previous_refresh_token: Some(Secret::new("refreshtoken@@@older")),
            ..TokenState::default()
        };
        let update = Update {
            refresh_token: state.refresh_token.clone(),
            access_token: cred,
            ..Update::default()
        };
        for shown in [format!("{state:?}"), format!("{update:?}")] {
            assert!(
                !shown.contains("secret") && !shown.contains("older"),
                "{shown}"
            );
            assert!(
                shown.contains("refresh_token: Some(Secret(***))"),
                "{shown}"
            );
        }
    }
}
