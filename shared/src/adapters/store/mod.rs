//! The store of token state (`domain::state`): one item per app. Every write that publishes is
//! conditioned on still owning the refresh lock, so a holder whose lease ran out can never
//! overwrite newer state.
//!
//! Two implementations with the same conditional semantics: DynamoDB (deployed, and against moto
//! in the integration tests) and memory (unit tests). `contract` holds the one test both pass;
//! `faults` wraps either with injected failures.

use std::collections::HashSet;

use async_trait::async_trait;

use crate::domain::apps::AppSettings;
pub use crate::domain::state::{Credential, TokenState, Update};

mod dynamo;
mod memory;

#[cfg(any(test, feature = "test-util"))]
pub mod contract;
#[cfg(any(test, feature = "test-util"))]
pub mod faults;

pub use dynamo::DynamoStore;
pub use memory::MemoryStore;

#[derive(Debug)]
pub enum Lock {
    /// We own the lock; the state as it is now.
    Acquired(TokenState),
    /// Someone else holds a live lease; the state as it is now.
    Held(TokenState),
    /// A registered app's item is gone (the app was removed): nothing was written, so a warm
    /// instance never brings a removed app's item back.
    Gone,
}

/// The item whose presence in the sweep's index says every registered app is in it (a listing
/// has stamped the apps registered before the index existed). It sorts first: due at 0.
pub const SWEEP_MARKER: &str = "#sweep";

/// The item of the deployment's third-party platform (its verify ticket); no app key starts
/// with `#`.
pub const COMPONENT_KEY: &str = "#component";

/// A store operation that failed (the text names the operation and DynamoDB's error, never a
/// credential).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("token store: {0}")]
pub struct StoreError(pub String);

/// The token store. `app` is the item's key (the appid).
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Strongly consistent read: waiters poll this for the holder's write.
    async fn load(&self, app: &str) -> Result<TokenState, StoreError>;

    /// Takes the refresh lock if it is free or its lease has ended. A lock that already names
    /// `owner` is ours: the write landed and its answer was lost before a retry. A registered
    /// app's lock is taken only while the app is registered (`Lock::Gone` otherwise).
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

    /// Registers an app, or changes its settings, in one write: its token state is kept, unless
    /// the token API changes (another API's token is another token: it is dropped).
    async fn put_app(&self, settings: &AppSettings) -> Result<(), StoreError>;

    /// Removes an app: its settings and its token state.
    async fn remove_app(&self, key: &str) -> Result<(), StoreError>;

    /// Every registered app's item (settings and token state), for the admin and the sweep's
    /// first run. It completes the registry's indexes from what it finds: the shards of app keys
    /// (see `index_shard`), and the sweep's, where an enabled app without a due time is
    /// entered as due now.
    async fn apps(&self) -> Result<Vec<(String, TokenState)>, StoreError>;

    /// The keys in one shard of the registry's index (`apps::index_shard`): once read, it tells
    /// a request for an unknown app of that shard from one for a registered app without reading
    /// either's item. `None` until a listing (`apps`) has completed it: registering and removing
    /// apps keep it up to date, but apps registered before the index existed are added by a
    /// listing.
    async fn index_shard(&self, shard: &str) -> Result<Option<HashSet<String>>, StoreError>;

    /// The keys of the enabled registered apps that fall due by `until_ms` (the sweep's index:
    /// their `due_ms`), oldest first. `None` until a listing has entered every app registered
    /// before the index existed (`SWEEP_MARKER`).
    async fn due_apps(&self, until_ms: u64) -> Result<Option<Vec<String>>, StoreError>;

    /// The third-party platform's newest `component_verify_ticket` and its CreateTime.
    async fn verify_ticket(&self) -> Result<Option<(String, u64)>, StoreError>;

    /// Keeps `ticket` when it is newer than the stored one (`component::newer_ticket`), in one
    /// conditional write; whether it did.
    async fn put_verify_ticket(&self, ticket: &str, created: u64) -> Result<bool, StoreError>;
}
