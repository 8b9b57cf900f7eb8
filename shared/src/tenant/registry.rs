//! Which app a request is for. Registered apps are read from the token table the first time a
//! process meets them (one GetItem: settings and token state together, as the deployment's own
//! app's cold start reads its item) and again after `CACHE_TTL_SECS`; an unknown or disabled app
//! is refused before any WeChat call. A name that turns out unknown has its shard of the
//! registry's index read too, and a name of a shard read within `CACHE_TTL_SECS` that the shard
//! does not list is told unknown without a read: made-up names cost at most two reads per shard
//! per period (16 shards). While the index is not complete, names never seen cost at most one
//! table read per second per process.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::domain::apps::{self, AppSettings};
use crate::domain::deadline::Deadline;
use crate::domain::state::TokenState;
use crate::tenant::app::{AppRuntime, Tenant};
use crate::tenant::deployment::{Deployment, Registered};
use crate::tenant::error::TenantError;
use crate::token::service::bounded;

impl Deployment {
    /// The app named by `appid` (and `agentid`, for a WeCom agent): this deployment's own when
    /// none is named or it is its own appid, otherwise a registered app.
    pub async fn resolve(
        &self,
        appid: Option<&str>,
        agentid: Option<&str>,
        deadline: &Deadline,
    ) -> Result<Tenant<'_>, TenantError> {
        let Some(appid) = appid else {
            return Ok(Tenant::Own(self.own()));
        };
        if appid == self.config.appid && agentid.is_none() {
            return Ok(Tenant::Own(self.own()));
        }
        let key = apps::key(appid, agentid);
        let now = self.tokens.clock().now_ms();
        let ttl = self.config.timing.cache_ttl.as_millis() as u64;
        let fresh = |at: u64| now < at.saturating_add(ttl);
        let cached = self.registry.entries().get(&key).cloned();
        let known = match cached {
            Some(Registered::Found(app, at)) if fresh(at) => Some(app),
            Some(Registered::Missing(at)) if fresh(at) => None,
            previous => self.look_up(&key, previous, now, deadline).await?,
        };
        match known {
            None => Err(TenantError::NoSuchApp(TenantError::name(&key))),
            Some(app) if !app.enabled() => Err(TenantError::Disabled(TenantError::name(&key))),
            Some(app) => Ok(Tenant::Registered(app)),
        }
    }

    /// Reads an app's item and remembers what it found. A name its shard (read within
    /// `CACHE_TTL_SECS`, complete) does not list is unknown without a read; a name found unknown
    /// has its shard read for the names that follow.
    async fn look_up(
        &self,
        key: &str,
        previous: Option<Registered>,
        now: u64,
        deadline: &Deadline,
    ) -> Result<Option<Arc<AppRuntime>>, TenantError> {
        let ttl = self.config.timing.cache_ttl.as_millis() as u64;
        let shard = apps::index_shard(key);
        let known_shard = self
            .registry
            .shards()
            .get(&shard)
            .filter(|(_, at)| now < at.saturating_add(ttl))
            .map(|(keys, _)| keys.clone());
        match &known_shard {
            // Not registered: answered from the shard, nothing read, nothing remembered.
            Some(Some(keys)) if !keys.contains(key) => return Ok(None),
            // The shard is not complete: within a second of reading the table for a name that
            // turned out unknown, names this process has not seen are refused unread (a flood of
            // made-up appids costs one read a second).
            Some(None) if previous.is_none() => {
                let last_miss = self.registry.unknown_read_ms.load(Ordering::Relaxed);
                if now < last_miss.saturating_add(1000) {
                    return Err(TenantError::Throttled);
                }
            }
            _ => {}
        }
        let read = self.store().load(key);
        let state = bounded(deadline, "reading the app registry", read).await?;
        if state.settings.is_none() && known_shard.is_none() {
            // Unknown: the shard, for the made-up names that may follow. Unreadable, it is
            // simply not remembered.
            let read = self.store().index_shard(&shard);
            if let Ok(keys) = bounded(deadline, "reading the app registry", read).await {
                let entry = (keys.map(Arc::new), now);
                self.registry.shards().insert(shard, entry);
            }
        }
        let found = match (state.settings.clone().map(|s| *s), previous) {
            (None, _) => None,
            // Same settings: keep the instance (its token cache, its secret).
            (Some(s), Some(Registered::Found(app, _))) if app.settings.as_ref() == Some(&s) => {
                app.tokens.seed(&state);
                Some(app)
            }
            (Some(s), _) => Some(Arc::new(self.registered_app(s, &state))),
        };
        let entry = match &found {
            Some(app) => Registered::Found(app.clone(), now),
            None => {
                self.registry.unknown_read_ms.store(now, Ordering::Relaxed);
                Registered::Missing(now)
            }
        };
        self.registry.remember(key.to_string(), entry);
        Ok(found)
    }

    /// The registered app `settings` describes, as this process knows it (the same instance as
    /// requests use, when the settings have not changed), its state seeded with `state`.
    pub fn registered_runtime(&self, settings: AppSettings, state: &TokenState) -> Arc<AppRuntime> {
        let key = settings.key();
        let now = self.tokens.clock().now_ms();
        if let Some(Registered::Found(app, _)) = self.registry.entries().get(&key) {
            if app.settings.as_ref() == Some(&settings) {
                app.tokens.seed(state);
                return app.clone();
            }
        }
        let app = Arc::new(self.registered_app(settings, state));
        self.registry
            .remember(key, Registered::Found(app.clone(), now));
        app
    }

    /// A registered app's item (settings and token state), read from the table.
    pub async fn load_app(
        &self,
        key: &str,
        deadline: &Deadline,
    ) -> Result<TokenState, TenantError> {
        let read = self.store().load(key);
        Ok(bounded(deadline, "reading the app registry", read).await?)
    }
}
