//! Serving credentials: from the in-process cache while it is fresh, from the store otherwise,
//! refreshing (see `refresh`) only when the lifecycle's decisions say so. Every store call is
//! bounded by the request's `Deadline` and counted in its metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::adapters::metrics;
use crate::adapters::store::{StoreError, TokenStore};
use crate::adapters::wechat::{WeChatClient, WeChatError};
use crate::domain::clock::{ms, now_ms, Clock};
use crate::domain::config::Timing;
use crate::domain::deadline::{Deadline, Expired};
use crate::domain::errcode::DEAD_TOKEN;
use crate::domain::state::TokenState;
use crate::token::error::TokenError;
use crate::token::lifecycle::{self, Want};
use crate::token::served::{Mode, Served, Source};

/// Store reads for tokens the cache does not know: at most one per this many ms per instance.
const UNKNOWN_TOKEN_READ_EVERY_MS: u64 = 1000;

#[derive(Clone)]
pub struct TokenService {
    pub(super) store: Arc<dyn TokenStore>,
    /// The store item's key.
    pub(super) app: String,
    pub(super) wechat: WeChatClient,
    pub(super) timing: Timing,
    pub(super) clock: Clock,
    /// The state last read or written, and when (clock ms).
    cache: Arc<Mutex<Option<(TokenState, u64)>>>,
    /// The token WeChat last said is alive (`type=manual`), and when (clock ms): within the
    /// cooldown it is not asked again, so a flood of manual calls costs WeChat one call a minute.
    alive: Arc<Mutex<Option<(String, u64)>>>,
    /// When (clock ms) this instance last read the store for a token it did not know.
    unknown_read_ms: Arc<AtomicU64>,
    /// An account authorized to a third-party platform: its token comes from the platform's
    /// token service (or why that is not available) with the account's refresh token, not from
    /// an AppSecret.
    pub(super) authorized_by: Option<Result<Arc<TokenService>, String>>,
}

impl TokenService {
    pub fn new(
        store: Arc<dyn TokenStore>,
        app: impl Into<String>,
        wechat: WeChatClient,
        timing: Timing,
    ) -> Self {
        TokenService {
            store,
            app: app.into(),
            wechat,
            timing,
            clock: Clock::default(),
            cache: Arc::default(),
            alive: Arc::default(),
            unknown_read_ms: Arc::default(),
            authorized_by: None,
        }
    }

    /// The token service of an account authorized to the platform whose token service is
    /// `platform`.
    pub fn authorized_by(mut self, platform: Result<Arc<TokenService>, String>) -> Self {
        self.authorized_by = Some(platform);
        self
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    pub fn store(&self) -> &dyn TokenStore {
        self.store.as_ref()
    }

    pub fn app(&self) -> &str {
        &self.app
    }

    /// The WeChat client its tokens come from.
    pub fn wechat_client(&self) -> &WeChatClient {
        &self.wechat
    }

    /// The cached state while it is younger than the cache TTL. The bound is safe: a token
    /// replaced by another instance stays valid at WeChat for the grace period, which is longer.
    fn cached(&self) -> Option<TokenState> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (state, at) = cache.as_ref()?;
        (self.clock.now_ms() < at.saturating_add(ms(self.timing.cache_ttl))).then(|| state.clone())
    }

    /// Takes `state`, just read from the store by someone else (the app registry), as this
    /// instance's copy.
    pub fn seed(&self, state: &TokenState) {
        self.remember(state);
    }

    pub(super) fn remember(&self, state: &TokenState) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        *cache = Some((state.clone(), self.clock.now_ms()));
    }

    /// Reads the state once, at cold start: it opens (and pays the TLS handshake of) the
    /// connection to DynamoDB during init, and fills the cache. Failures are left to requests.
    pub async fn warm(&self) {
        let _ = self
            .load(&Deadline::after(self.timing.dynamodb_timeout))
            .await;
    }

    /// Reads the store (strongly consistent) and refreshes the cache.
    pub(super) async fn load(&self, deadline: &Deadline) -> Result<TokenState, TokenError> {
        let state = bounded(
            deadline,
            "reading the token store",
            self.store.load(&self.app),
        )
        .await?;
        self.remember(&state);
        Ok(state)
    }

    /// Releases the lock, best effort, within the deadline (a lock left held ends with its
    /// lease).
    pub(super) async fn release(&self, owner: &str, clear_mark: bool, deadline: &Deadline) {
        let _ = bounded(
            deadline,
            "releasing the lock",
            self.store.release(&self.app, owner, clear_mark),
        )
        .await;
    }

    pub(super) fn satisfied(&self, want: &Want, state: &TokenState) -> bool {
        lifecycle::satisfied(want, state, self.clock.now_ms(), &self.timing)
    }

    /// Credentials for `mode`, refreshing when needed. `auto` is answered from the cache while it
    /// holds credentials fresh enough; `manual` and the schedule always read the store.
    pub async fn get(&self, mode: Mode, deadline: &Deadline) -> Result<Served, TokenError> {
        // When the request arrived: a rotation fetched since then (by another instance while
        // this one was still reading the store) is the one it asked for.
        let arrived = self.clock.now_ms();
        if mode == Mode::Auto {
            if let Some(state) = self.cached().filter(|s| self.satisfied(&Want::Fresh, s)) {
                return Ok(Served::new(state, Source::Cached));
            }
        }
        let state = self.load(deadline).await?;
        let want = match mode {
            Mode::Auto => Want::Fresh,
            Mode::Scheduled => Want::Scheduled,
            Mode::Manual => return self.manual(state, deadline).await,
            Mode::Rotate => {
                let want = Want::Forced {
                    baseline: state.access_token.as_ref().map(|c| c.value.clone()),
                    since_ms: arrived,
                };
                // No cooldown: the operator asked for it.
                return Box::pin(self.refresh(want, state, deadline)).await;
            }
        };
        self.run(want, state, deadline).await
    }

    /// The scheduled rotation from a state just read (the worker's read, which told it the app
    /// is due): no second read.
    pub async fn rotate_due(
        &self,
        state: TokenState,
        deadline: &Deadline,
    ) -> Result<Served, TokenError> {
        self.remember(&state);
        self.run(Want::Scheduled, state, deadline).await
    }

    /// `type=manual`, the spec's forced refresh, for a front end that saw 40001: WeChat is asked
    /// whether the stored token is alive (a call that spends no token quota), and only a token
    /// it reports dead is replaced, as for the invoice endpoints. A public caller cannot rotate
    /// a working token.
    async fn manual(&self, state: TokenState, deadline: &Deadline) -> Result<Served, TokenError> {
        let now = self.clock.now_ms();
        let token = match &state.access_token {
            Some(c) if lifecycle::alive(&state, now, 0, &self.timing) => c.value.clone(),
            // Nothing alive stored: an ordinary refresh.
            _ => return self.run(Want::Fresh, state, deadline).await,
        };
        let known_alive = {
            let alive = self.alive.lock().unwrap_or_else(|p| p.into_inner());
            alive.as_ref().is_some_and(|(t, at)| {
                *t == token && now < at.saturating_add(ms(self.timing.cooldown))
            })
        };
        if !known_alive {
            match self.wechat.probe(&token, deadline).await {
                Ok(()) => {
                    let mut alive = self.alive.lock().unwrap_or_else(|p| p.into_inner());
                    *alive = Some((token, now));
                }
                Err(WeChatError::Api(b)) if DEAD_TOKEN.contains(&b.errcode) => {
                    return self.replace_dead(&token, deadline).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Served::new(state, Source::CheckedAlive))
    }

    /// WeChat reported `dead` as invalid. If it is still the stored access_token, replace it
    /// (single flight, like any refresh); either way answer the stored state as it is then.
    /// Bounded by the cooldown, so a WeChat that keeps refusing fresh tokens cannot make us burn
    /// the daily quota.
    pub async fn replace_dead(
        &self,
        dead: &str,
        deadline: &Deadline,
    ) -> Result<Served, TokenError> {
        let state = self.load(deadline).await?;
        if lifecycle::ended_elsewhere(&state, dead, self.clock.now_ms(), &self.timing) {
            // The most common cause of 40001 in every WeChat SDK: another system fetched a
            // token with the same AppSecret. Counted and alarmed (TokensEndedElsewhere).
            tracing::warn!(
                app = self.app.as_str(),
                event = "token_ended_elsewhere",
                "WeChat ended an access_token the gateway still counted on: another system \
                 called WeChat's token API with this app's AppSecret"
            );
        }
        let want = Want::Replace {
            dead: dead.to_string(),
        };
        self.run(want, state, deadline).await
    }

    /// Accepts a caller's token only if it is the stored access_token, or the previous one
    /// while WeChat still honours it; anything else gets WeChat's own 40001 answer.
    /// A fresh cached copy answers for a token it knows. Otherwise the store is read (another
    /// instance may have just refreshed), but for a token this instance has never seen, not
    /// even in an expired copy, at most once a second: a flood of made-up tokens cannot hammer
    /// the item every instance reads.
    pub async fn check(&self, token: &str, deadline: &Deadline) -> Result<TokenState, TokenError> {
        let now = self.clock.now_ms();
        let known = |state: &TokenState| {
            let current = state
                .access_token
                .as_ref()
                .is_some_and(|c| same(&c.value, token))
                && lifecycle::token_dies_at(state, &self.timing).is_some_and(|end| end > now);
            let previous = state
                .previous_access_token
                .as_ref()
                .is_some_and(|c| same(&c.value, token) && c.valid_for(now, 0));
            current || previous
        };
        let seen = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            match cache.as_ref() {
                Some((state, at)) if known(state) => {
                    if now < at.saturating_add(ms(self.timing.cache_ttl)) {
                        return Ok(state.clone());
                    }
                    true
                }
                _ => false,
            }
        };
        if !seen && !self.may_read_for_unknown_token() {
            return Err(TokenError::InvalidCredential);
        }
        let state = self.load(deadline).await?;
        if known(&state) {
            Ok(state)
        } else {
            Err(TokenError::InvalidCredential)
        }
    }

    /// Whether a store read for an unknown token may happen now (one a second per instance,
    /// wall-clock).
    fn may_read_for_unknown_token(&self) -> bool {
        let now = now_ms();
        let last = self.unknown_read_ms.load(Ordering::Relaxed);
        now >= last.saturating_add(UNKNOWN_TOKEN_READ_EVERY_MS)
            && self
                .unknown_read_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    async fn run(
        &self,
        want: Want,
        state: TokenState,
        deadline: &Deadline,
    ) -> Result<Served, TokenError> {
        if self.satisfied(&want, &state) {
            return Ok(Served::new(state, Source::Stored));
        }
        if want.forced() && lifecycle::cooling(&state, self.clock.now_ms(), &self.timing) {
            return Ok(Served::new(state, Source::Cooldown));
        }
        // Boxed: refreshes are rare, and the refresh's future inline makes every caller's future
        // nest deeper than rustc's layout limit allows in the release build.
        Box::pin(self.refresh(want, state, deadline)).await
    }
}

/// Whether a caller's token is `stored`, in time that does not depend on where they differ.
fn same(stored: &str, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    stored.as_bytes().ct_eq(token.as_bytes()).into()
}

/// A store operation, cut at the deadline and counted in the request's DynamoDB time.
pub async fn bounded<T>(
    deadline: &Deadline,
    what: &'static str,
    op: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, TokenError> {
    match timed(deadline, op).await {
        Ok(r) => r.map_err(TokenError::from),
        Err(Expired) => Err(TokenError::Expired(what)),
    }
}

/// A store operation, cut at `until` and counted in the request's DynamoDB time.
pub(super) async fn timed<T>(
    until: &Deadline,
    op: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<Result<T, StoreError>, Expired> {
    metrics::dynamodb(until, op).await
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
