//! Which app a request is for. Registered apps are read from the token table the first time a
//! process meets them (one GetItem: settings and token state together) and again after
//! `CACHE_TTL_SECS`; an unknown or disabled app is refused before any WeChat call, and names
//! never seen cost at most one table read per second per process.

use std::collections::HashSet;
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
            previous => match self.app_index(now, deadline).await {
                // Not registered: answered from the index, nothing read, nothing remembered.
                Some(keys) if !keys.contains(&key) => None,
                index => {
                    let throttled = index.is_none();
                    self.look_up(&key, previous, throttled, now, deadline)
                        .await?
                }
            },
        };
        match known {
            None => Err(TenantError::NoSuchApp(TenantError::name(&key))),
            Some(app) if !app.enabled() => Err(TenantError::Disabled(TenantError::name(&key))),
            Some(app) => Ok(Tenant::Registered(app)),
        }
    }

    /// The keys of the registered apps, read at most once per `CACHE_TTL_SECS`; `None` while the
    /// registry has no complete index (or it cannot be read), when lookups fall back to reading
    /// each name, at most one unknown a second.
    async fn app_index(&self, now: u64, deadline: &Deadline) -> Option<Arc<HashSet<String>>> {
        let ttl = self.config.timing.cache_ttl.as_millis() as u64;
        let mut index = self.registry.index.lock().await;
        if let Some((keys, at)) = index.as_ref() {
            if now < at.saturating_add(ttl) {
                return keys.clone();
            }
        }
        let read = bounded(
            deadline,
            "reading the app registry",
            self.store().app_keys(),
        )
        .await;
        let keys = read.ok().flatten().map(Arc::new);
        *index = Some((keys.clone(), now));
        keys
    }

    /// Reads an app's item and remembers what it found.
    async fn look_up(
        &self,
        key: &str,
        previous: Option<Registered>,
        throttled: bool,
        now: u64,
        deadline: &Deadline,
    ) -> Result<Option<Arc<AppRuntime>>, TenantError> {
        // Without an index: within a second of reading the table for a name that turned out
        // unknown, names this process has not seen are refused unread (a flood of made-up
        // appids costs one read a second).
        let last_miss = self.registry.unknown_read_ms.load(Ordering::Relaxed);
        if throttled && previous.is_none() && now < last_miss.saturating_add(1000) {
            return Err(TenantError::Throttled);
        }
        let read = self.store().load(key);
        let state = bounded(deadline, "reading the app registry", read).await?;
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
