//! The token store in memory, with DynamoDB's conditional semantics (the contract test holds both
//! to them). For unit tests of the lifecycle, which then need neither moto nor Python.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Lock, StoreError, TokenState, TokenStore, Update};
use crate::domain::apps::{self, AppSettings};
use crate::domain::component;
use crate::domain::state::{applied, holds};

#[derive(Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<String, TokenState>>,
    /// The registry's index: the app keys, and whether a listing completed it (one set stands
    /// for every shard: sharding is DynamoDB's item size, not a semantic).
    index: Mutex<(HashSet<String>, bool)>,
    /// Whether a listing entered every registered app in the sweep's index.
    sweep_complete: Mutex<bool>,
    verify_ticket: Mutex<Option<(String, u64)>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn index(&self) -> std::sync::MutexGuard<'_, (HashSet<String>, bool)> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on `app`'s item (created empty), atomically as one conditional write is.
    fn with<T>(&self, app: &str, f: impl FnOnce(&mut TokenState) -> T) -> T {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        f(items.entry(app.to_string()).or_default())
    }
}

fn owned_by(state: &TokenState, owner: &str) -> bool {
    state.lock_owner.as_deref() == Some(owner)
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn load(&self, app: &str) -> Result<TokenState, StoreError> {
        Ok(self.with(app, |s| s.clone()))
    }

    async fn try_lock(
        &self,
        app: &str,
        owner: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<Lock, StoreError> {
        if apps::is_registered_key(app) {
            let items = self.items.lock().unwrap_or_else(|p| p.into_inner());
            if items.get(app).is_none_or(|s| s.settings.is_none()) {
                return Ok(Lock::Gone);
            }
        }
        Ok(self.with(app, |s| {
            if s.lock_owner.is_none() || s.lock_until_ms < now_ms {
                s.lock_owner = Some(owner.to_string());
                s.lock_until_ms = now_ms.saturating_add(lease_ms);
                Lock::Acquired(s.clone())
            } else if owned_by(s, owner) {
                Lock::Acquired(s.clone())
            } else {
                Lock::Held(s.clone())
            }
        }))
    }

    async fn mark_fetch(&self, app: &str, owner: &str, now_ms: u64) -> Result<bool, StoreError> {
        Ok(self.with(app, |s| {
            if !owned_by(s, owner) {
                return false;
            }
            s.fetch_started_ms.get_or_insert(now_ms);
            true
        }))
    }

    async fn commit(
        &self,
        app: &str,
        owner: &str,
        update: &Update,
    ) -> Result<Option<TokenState>, StoreError> {
        Ok(self.with(app, |s| {
            if owned_by(s, owner) {
                *s = applied(s.clone(), update);
                Some(s.clone())
            } else if s.lock_owner.is_none() && holds(s, update) {
                Some(s.clone())
            } else {
                None
            }
        }))
    }

    async fn release(&self, app: &str, owner: &str, clear_mark: bool) -> Result<(), StoreError> {
        self.with(app, |s| {
            if owned_by(s, owner) {
                s.lock_owner = None;
                s.lock_until_ms = 0;
                if clear_mark {
                    s.fetch_started_ms = None;
                }
            }
        });
        Ok(())
    }

    async fn put_app(&self, settings: &AppSettings) -> Result<(), StoreError> {
        self.with(&settings.key(), |s| {
            if s.settings
                .as_ref()
                .is_some_and(|b| b.token_api != settings.token_api)
            {
                *s = TokenState::default();
            }
            s.settings = Some(Box::new(settings.clone()));
            s.due_ms = settings.enabled.then_some(s.due_ms.unwrap_or(0));
        });
        self.index().0.insert(settings.key());
        Ok(())
    }

    async fn remove_app(&self, key: &str) -> Result<(), StoreError> {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        items.remove(key);
        self.index().0.remove(key);
        Ok(())
    }

    async fn index_shard(&self, shard: &str) -> Result<Option<HashSet<String>>, StoreError> {
        let index = self.index();
        Ok(index.1.then(|| {
            index
                .0
                .iter()
                .filter(|k| apps::index_shard(k) == shard)
                .cloned()
                .collect()
        }))
    }

    async fn verify_ticket(&self) -> Result<Option<(String, u64)>, StoreError> {
        Ok(self
            .verify_ticket
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone())
    }

    async fn put_verify_ticket(&self, ticket: &str, created: u64) -> Result<bool, StoreError> {
        let mut stored = self.verify_ticket.lock().unwrap_or_else(|p| p.into_inner());
        if !component::newer_ticket(created, stored.as_ref().map(|(_, c)| *c)) {
            return Ok(false);
        }
        *stored = Some((ticket.to_string(), created));
        Ok(true)
    }

    async fn due_apps(&self, until_ms: u64) -> Result<Option<Vec<String>>, StoreError> {
        if !*self
            .sweep_complete
            .lock()
            .unwrap_or_else(|p| p.into_inner())
        {
            return Ok(None);
        }
        let items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let mut due: Vec<(u64, String)> = items
            .iter()
            .filter_map(|(k, s)| Some((s.due_ms.filter(|d| *d <= until_ms)?, k.clone())))
            .collect();
        due.sort();
        Ok(Some(due.into_iter().map(|(_, k)| k).collect()))
    }

    async fn apps(&self) -> Result<Vec<(String, TokenState)>, StoreError> {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        for s in items.values_mut() {
            if s.settings.as_ref().is_some_and(|a| a.enabled) && s.due_ms.is_none() {
                s.due_ms = Some(0);
            }
        }
        let mut apps: Vec<_> = items
            .iter()
            .filter(|(_, s)| s.settings.is_some())
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        apps.sort_by(|a, b| a.0.cmp(&b.0));
        drop(items);
        let mut index = self.index();
        index.0.extend(apps.iter().map(|(k, _)| k.clone()));
        index.1 = true;
        *self
            .sweep_complete
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = true;
        Ok(apps)
    }
}
