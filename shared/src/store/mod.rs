//! Token state and the store that holds it: one item per app with the access_token, the previous
//! access_token during WeChat's grace period, both JS-SDK tickets, a version, the refresh lock
//! (owner + lease end) and the fetch mark (see `lifecycle`). Every write that publishes is
//! conditioned on still owning the lock, so a holder whose lease ran out can never overwrite
//! newer state.
//!
//! Two implementations with the same conditional semantics: DynamoDB (deployed, and against moto
//! in the integration tests) and memory (unit tests). `contract` holds the one test both pass;
//! `faults` wraps either with injected failures.

use async_trait::async_trait;

use crate::apps::AppSettings;
use crate::envelope::ApiError;

mod dynamo;
mod memory;

#[cfg(any(test, feature = "test-util"))]
pub mod contract;
#[cfg(any(test, feature = "test-util"))]
pub mod faults;

pub use dynamo::DynamoStore;
pub use memory::MemoryStore;

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
}

/// What a refresh publishes; `None` fields keep their stored value.
#[derive(Debug, Default, Clone)]
pub struct Update {
    pub access_token: Option<Credential>,
    pub previous_access_token: Option<Credential>,
    pub jsapi_ticket: Option<Credential>,
    pub wx_card_ticket: Option<Credential>,
    pub refreshed_at_ms: u64,
}

#[derive(Debug)]
pub enum Lock {
    /// We own the lock; the state as it is now.
    Acquired(TokenState),
    /// Someone else holds a live lease; the state as it is now.
    Held(TokenState),
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "token store: {}", self.0)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal {
            public: "token store unavailable",
            detail: e.to_string(),
        }
    }
}

/// The token store. `app` is the item's key (the appid).
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Strongly consistent read: waiters poll this for the holder's write.
    async fn load(&self, app: &str) -> Result<TokenState, StoreError>;

    /// Takes the refresh lock if it is free or its lease has ended. A lock that already names
    /// `owner` is ours: the write landed and its answer was lost before a retry.
    async fn try_lock(
        &self,
        app: &str,
        owner: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<Lock, StoreError>;

    /// Records, while `owner` holds the lock, that a fetch which ends the stored access_token
    /// starts now. An earlier mark is kept (the token may already be dying from it).
    /// `false`: the lock is not ours; nothing was written.
    async fn mark_fetch(&self, app: &str, owner: &str, now_ms: u64) -> Result<bool, StoreError>;

    /// Publishes a refresh and releases the lock in one write, only if `owner` still holds it; a
    /// new access_token clears the fetch mark. `Ok(None)`: the lease was lost to another holder
    /// and nothing was written. A commit that already landed (lost answer, retried) is
    /// recognised and answered as landed.
    async fn commit(
        &self,
        app: &str,
        owner: &str,
        update: &Update,
    ) -> Result<Option<TokenState>, StoreError>;

    /// Releases the lock without publishing (the refresh failed), clearing the fetch mark when
    /// `clear_mark` (the fetch surely issued nothing). A lock taken over by someone else is
    /// left alone.
    async fn release(&self, app: &str, owner: &str, clear_mark: bool) -> Result<(), StoreError>;

    /// Registers an app, or changes its settings; its token state is left as it is.
    async fn put_app(&self, settings: &AppSettings) -> Result<(), StoreError>;

    /// Removes an app: its settings and its token state.
    async fn remove_app(&self, key: &str) -> Result<(), StoreError>;

    /// Every registered app's item (settings and token state), for the schedule and the admin.
    async fn apps(&self) -> Result<Vec<(String, TokenState)>, StoreError>;
}
