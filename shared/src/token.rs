//! Token lifecycle: serve the stored access_token and tickets (through a short in-process cache),
//! and refresh them single-flight across all Lambda instances under the store's lock. Only the
//! lock holder calls WeChat; everyone else serves the stored credentials while they are alive,
//! or waits (bounded) for the holder's publish. The decisions are `lifecycle`'s pure functions;
//! this module does the I/O around them, every step bounded by the request's `Deadline`.
//!
//! Half-failures, and what happens:
//! - A token fetch that would end the stored token is marked in the store first, so a holder
//!   that dies (or times out, or cannot commit) after WeChat issued leaves the stored token
//!   reading as dead at mark + grace, never later than WeChat ends it.
//! - An issued token is never dropped for a failed commit: the commit is retried while the lease
//!   holds, and if it still cannot land, this request is answered with the issued token.
//! - The lock is released on every path that does not publish.
//! - A failed refresh never removes stored credentials; it answers them only to a want that an
//!   alive token meets, with the failure as a fault (which fails a scheduled run).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Timing;
use crate::deadline::{Deadline, Expired};
use crate::envelope::ApiError;
use crate::lifecycle::{self, OnHeld, Want};
use crate::store::{Credential, Lock, StoreError, TokenState, TokenStore, Update};
use crate::wechat::{Issued, TicketKind, WeChatClient, WeChatError};

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

/// errcodes by which WeChat says an access_token is dead (superseded, malformed, expired).
pub const DEAD_TOKEN_ERRCODES: [i64; 3] = [40001, 40014, 42001];

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
    pub fault: Option<ApiError>,
}

/// The gateway's clock. Production uses the system clock; tests move it forward together with the
/// simulator's to play out hours of token lifecycle in seconds.
#[derive(Clone, Default, Debug)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn now_ms(&self) -> u64 {
        now_ms().saturating_add_signed(self.offset_ms.load(Ordering::Relaxed))
    }

    pub fn advance(&self, d: Duration) {
        self.offset_ms
            .fetch_add(d.as_millis() as i64, Ordering::Relaxed);
    }
}

/// The system clock, Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Store reads for tokens the cache does not know: at most one per this many ms per instance.
const UNKNOWN_TOKEN_READ_EVERY_MS: u64 = 1000;

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Clone)]
pub struct TokenService {
    store: Arc<dyn TokenStore>,
    /// The store item's key.
    app: String,
    wechat: WeChatClient,
    timing: Timing,
    clock: Clock,
    /// The state last read or written, and when (clock ms).
    cache: Arc<Mutex<Option<(TokenState, u64)>>>,
    /// The token WeChat last said is alive (`type=manual`), and when (clock ms): within the
    /// cooldown it is not asked again, so a flood of manual calls costs WeChat one call a minute.
    alive: Arc<Mutex<Option<(String, u64)>>>,
    /// When (clock ms) this instance last read the store for a token it did not know.
    unknown_read_ms: Arc<std::sync::atomic::AtomicU64>,
}

/// How a commit ended.
enum Commit {
    Landed(TokenState),
    /// The lease went to another holder; nothing of ours was written.
    LeaseLost,
    Failed(StoreError),
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
        }
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

    /// Reads another item of the same store (an app's), bounded like every store call.
    pub async fn load_key(&self, key: &str, deadline: &Deadline) -> Result<TokenState, ApiError> {
        self.bounded(deadline, "reading the app registry", self.store.load(key))
            .await
    }

    fn remember(&self, state: &TokenState) {
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

    /// A store operation, cut at `until` and counted in the request's DynamoDB time.
    async fn timed<T>(
        until: &Deadline,
        op: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<Result<T, StoreError>, Expired> {
        let started = std::time::Instant::now();
        let result = until.run(op).await;
        crate::telemetry::dynamodb_call(started.elapsed());
        result
    }

    /// A store operation, cut at the deadline.
    async fn bounded<T>(
        &self,
        deadline: &Deadline,
        what: &str,
        op: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, ApiError> {
        match Self::timed(deadline, op).await {
            Ok(r) => r.map_err(ApiError::from),
            Err(expired) => Err(expired.unavailable(what)),
        }
    }

    /// Reads the store (strongly consistent) and refreshes the cache.
    async fn load(&self, deadline: &Deadline) -> Result<TokenState, ApiError> {
        let state = self
            .bounded(
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
    async fn release(&self, owner: &str, clear_mark: bool, deadline: &Deadline) {
        let _ = self
            .bounded(
                deadline,
                "releasing the lock",
                self.store.release(&self.app, owner, clear_mark),
            )
            .await;
    }

    fn satisfied(&self, want: &Want, state: &TokenState) -> bool {
        lifecycle::satisfied(want, state, self.clock.now_ms(), &self.timing)
    }

    /// Credentials for `mode`, refreshing when needed. `auto` is answered from the cache while it
    /// holds credentials fresh enough; `manual` and the schedule always read the store.
    pub async fn get(&self, mode: Mode, deadline: &Deadline) -> Result<Served, ApiError> {
        if mode == Mode::Auto {
            if let Some(state) = self.cached().filter(|s| self.satisfied(&Want::Fresh, s)) {
                return Ok(Served {
                    state,
                    source: Source::Cached,
                    fault: None,
                });
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
                    since_ms: self.clock.now_ms(),
                };
                // No cooldown: the operator asked for it.
                return self.refresh(want, state, deadline).await;
            }
        };
        self.run(want, state, deadline).await
    }

    /// `type=manual`, the spec's forced refresh, for a front end that saw 40001: WeChat is asked
    /// whether the stored token is alive (a call that spends no token quota), and only a token
    /// it reports dead is replaced, as for the invoice endpoints. A public caller cannot rotate
    /// a working token.
    async fn manual(&self, state: TokenState, deadline: &Deadline) -> Result<Served, ApiError> {
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
                Err(WeChatError::Api(b)) if DEAD_TOKEN_ERRCODES.contains(&b.errcode) => {
                    return self.replace_dead(&token, deadline).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Served {
            state,
            source: Source::CheckedAlive,
            fault: None,
        })
    }

    /// WeChat reported `dead` as invalid. If it is still the stored access_token, replace it
    /// (single flight, like any refresh); either way answer the stored state as it is then.
    /// Bounded by the cooldown, so a WeChat that keeps refusing fresh tokens cannot make us burn
    /// the daily quota.
    pub async fn replace_dead(&self, dead: &str, deadline: &Deadline) -> Result<Served, ApiError> {
        let state = self.load(deadline).await?;
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
    pub async fn check(&self, token: &str, deadline: &Deadline) -> Result<TokenState, ApiError> {
        let now = self.clock.now_ms();
        let known = |state: &TokenState| {
            let current = state
                .access_token
                .as_ref()
                .is_some_and(|c| c.value == token)
                && lifecycle::token_dies_at(state, &self.timing).is_some_and(|end| end > now);
            let previous = state
                .previous_access_token
                .as_ref()
                .is_some_and(|c| c.value == token && c.valid_for(now, 0));
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
            return Err(ApiError::invalid_credential());
        }
        let state = self.load(deadline).await?;
        if known(&state) {
            Ok(state)
        } else {
            Err(ApiError::invalid_credential())
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
    ) -> Result<Served, ApiError> {
        if self.satisfied(&want, &state) {
            return Ok(Served {
                state,
                source: Source::Stored,
                fault: None,
            });
        }
        if want.forced() && lifecycle::cooling(&state, self.clock.now_ms(), &self.timing) {
            return Ok(Served {
                state,
                source: Source::Cooldown,
                fault: None,
            });
        }
        self.refresh(want, state, deadline).await
    }

    async fn refresh(
        &self,
        want: Want,
        mut seen: TokenState,
        deadline: &Deadline,
    ) -> Result<Served, ApiError> {
        // The first token fetch of a process reads the AppSecret (Secrets Manager), before the
        // lock, so the read never eats into the lease.
        let now = self.clock.now_ms();
        if lifecycle::due(&want, &seen, now, &self.timing).token {
            if let Err(e) = self.wechat.app_secret(deadline).await {
                return self.fallback(&want, seen, e.into());
            }
        }
        let owner = uuid::Uuid::new_v4().to_string();
        let waiting = deadline.within(self.timing.wait);
        loop {
            let now = self.clock.now_ms();
            let lock = self
                .bounded(
                    deadline,
                    "taking the refresh lock",
                    self.store
                        .try_lock(&self.app, &owner, now, ms(self.timing.lease)),
                )
                .await;
            match lock {
                Err(e) => return self.fallback(&want, seen, e),
                Ok(Lock::Acquired(locked)) => {
                    if self.satisfied(&want, &locked) {
                        self.release(&owner, false, deadline).await;
                        return Ok(Served {
                            state: locked,
                            source: Source::Waited,
                            fault: None,
                        });
                    }
                    return self.refresh_locked(want, &owner, locked, deadline).await;
                }
                Ok(Lock::Held(current)) => {
                    if lifecycle::on_held(&want, &current, now, &self.timing) == OnHeld::Serve {
                        // The holder will publish; until then the stored credentials are alive.
                        return Ok(Served {
                            state: current,
                            source: Source::Stored,
                            fault: None,
                        });
                    }
                    seen = current;
                }
            }
            // Wait for the holder's publish, with jittered backoff, within both bounds.
            let mut attempt = 0;
            loop {
                let pause = lifecycle::wait_pause(attempt, fastrand::f64());
                attempt += 1;
                // Pause only when the read after it can still finish before the deadline.
                let read = self.timing.dynamodb_timeout;
                if !waiting.allows(pause) || !deadline.pause(pause, read).await {
                    let err = ApiError::Unavailable(
                        "a token refresh in progress did not finish in time".into(),
                    );
                    return self.fallback(&want, seen, err);
                }
                let state = match self.load(deadline).await {
                    Ok(s) => s,
                    Err(e) => return self.fallback(&want, seen, e),
                };
                if self.satisfied(&want, &state) {
                    return Ok(Served {
                        state,
                        source: Source::Waited,
                        fault: None,
                    });
                }
                let lease_over = lifecycle::lease_over(&state, self.clock.now_ms());
                let holder_gone = state.lock_owner.is_none();
                seen = state;
                if lease_over {
                    break; // a crashed holder: take the lock over
                }
                if holder_gone {
                    // The holder gave up without publishing: its refresh failed.
                    let err = ApiError::Unavailable("a concurrent token refresh failed".into());
                    return self.fallback(&want, seen, err);
                }
            }
        }
    }

    /// Fetches what is due from WeChat and publishes it, holding the lock.
    async fn refresh_locked(
        &self,
        want: Want,
        owner: &str,
        locked: TokenState,
        deadline: &Deadline,
    ) -> Result<Served, ApiError> {
        // The fetch stops before the lease ends, so a holder never publishes late by its own
        // slowness, and early enough that the commit and a release can each take a whole
        // DynamoDB timeout before the request's deadline; commit retries may use the rest of
        // the lease but leave time for the release.
        let write = self.timing.dynamodb_timeout;
        let fetching = deadline
            .before(write * 2)
            .within(self.timing.lease.mul_f32(0.9));
        let committing = deadline.before(write).within(self.timing.lease);
        let now = self.clock.now_ms();
        let due = lifecycle::due(&want, &locked, now, &self.timing);
        let mut update = Update {
            refreshed_at_ms: now,
            ..Update::default()
        };
        let mut fault = None;

        let mut rotated = false;
        let token = if due.token {
            let force = want.forced();
            // Mark before asking WeChat for a token that ends the stored one (see `lifecycle`).
            let mut marked = false;
            if self.wechat.fetch_ends_stored(force)
                && locked.access_token.is_some()
                && locked.fetch_started_ms.is_none()
            {
                let mark = self.store.mark_fetch(&self.app, owner, now);
                match self
                    .bounded(deadline, "marking the token fetch", mark)
                    .await
                {
                    Ok(true) => marked = true,
                    Ok(false) => {
                        let err = ApiError::Unavailable("refresh lease lost".into());
                        return self.fallback(&want, locked, err);
                    }
                    Err(e) => {
                        self.release(owner, false, deadline).await;
                        return self.fallback(&want, locked, e);
                    }
                }
            }
            match self.wechat.fetch_access_token(force, &fetching).await {
                Ok(issued) => {
                    rotated = lifecycle::rotates_tickets(&locked, &issued.value);
                    update.previous_access_token = lifecycle::previous_after_rotation(
                        &locked,
                        &issued.value,
                        now,
                        &self.timing,
                    );
                    update.access_token = Some(credential(&issued, now));
                    issued.value
                }
                Err(e) => {
                    // A mark stays unless WeChat surely issued nothing.
                    let nothing_issued = e.nothing_done();
                    self.release(owner, marked && nothing_issued, deadline)
                        .await;
                    let mut stored = locked;
                    if marked && !nothing_issued {
                        stored.fetch_started_ms = Some(now);
                    }
                    self.remember(&stored);
                    return self.fallback(&want, stored, e.into());
                }
            }
        } else {
            match &locked.access_token {
                Some(c) => c.value.clone(),
                None => {
                    self.release(owner, false, deadline).await;
                    let err = ApiError::Unavailable("no access_token".into());
                    return self.fallback(&want, locked, err);
                }
            }
        };
        for (kind, is_due) in [
            (TicketKind::Jsapi, due.jsapi),
            (TicketKind::WxCard, due.wx_card),
        ] {
            if !self.timing.tickets || !(is_due || rotated) {
                continue;
            }
            match self.wechat.fetch_ticket(&token, kind, &fetching).await {
                Ok(issued) => {
                    let cred = Some(credential(&issued, now));
                    match kind {
                        TicketKind::Jsapi => update.jsapi_ticket = cred,
                        TicketKind::WxCard => update.wx_card_ticket = cred,
                    }
                }
                Err(e) => {
                    fault.get_or_insert(ApiError::from(e));
                }
            }
        }
        let fetched = update.access_token.is_some()
            || update.jsapi_ticket.is_some()
            || update.wx_card_ticket.is_some();
        if !fetched {
            self.release(owner, false, deadline).await;
            let err =
                fault.unwrap_or_else(|| ApiError::Unavailable("refresh produced nothing".into()));
            return self.fallback(&want, locked, err);
        }
        match self.commit(owner, &update, &committing).await {
            Commit::Landed(state) => {
                self.remember(&state);
                self.answer_refreshed(state, Source::Refreshed, fault)
            }
            Commit::LeaseLost => {
                // Another holder took over and published: its state wins.
                let state = self.load(deadline).await?;
                if lifecycle::alive(&state, self.clock.now_ms(), 0, &self.timing) {
                    Ok(Served {
                        state,
                        source: Source::Waited,
                        fault,
                    })
                } else {
                    Err(ApiError::Unavailable(
                        "refresh lease lost to another instance".into(),
                    ))
                }
            }
            Commit::Failed(e) => {
                // Never thrown away: this request gets what WeChat issued. The store keeps the
                // old token, which the fetch mark ends at mark + grace for everyone else.
                self.release(owner, false, deadline).await;
                let state = lifecycle::applied(locked, &update);
                self.answer_refreshed(state, Source::RefreshedUnstored, Some(e.into()))
            }
        }
    }

    fn answer_refreshed(
        &self,
        state: TokenState,
        source: Source,
        fault: Option<ApiError>,
    ) -> Result<Served, ApiError> {
        if lifecycle::alive(&state, self.clock.now_ms(), 0, &self.timing) {
            Ok(Served {
                state,
                source,
                fault,
            })
        } else {
            Err(fault
                .unwrap_or_else(|| ApiError::Unavailable("refreshed state is not usable".into())))
        }
    }

    /// Publishes `update`, retrying a failed write while `until` (the lease, and the request less
    /// a release) allows one more attempt.
    async fn commit(&self, owner: &str, update: &Update, until: &Deadline) -> Commit {
        let mut attempt = 0;
        loop {
            let err = match Self::timed(until, self.store.commit(&self.app, owner, update)).await {
                Ok(Ok(Some(state))) => return Commit::Landed(state),
                Ok(Ok(None)) => return Commit::LeaseLost,
                Ok(Err(e)) => e,
                Err(_) => StoreError("publishing took the rest of the lease".into()),
            };
            let pause = lifecycle::wait_pause(attempt, fastrand::f64());
            attempt += 1;
            if !until.pause(pause, self.timing.dynamodb_timeout).await {
                return Commit::Failed(err);
            }
        }
    }

    /// A refresh failed: serve what is stored if it is alive and the want accepts it (with the
    /// failure as a fault), otherwise answer the failure.
    fn fallback(&self, want: &Want, stored: TokenState, err: ApiError) -> Result<Served, ApiError> {
        if lifecycle::serve_stored_on_failure(want, &stored, self.clock.now_ms(), &self.timing) {
            Ok(Served {
                state: stored,
                source: Source::StoredAfterFault,
                fault: Some(err),
            })
        } else {
            Err(err)
        }
    }
}

/// `issued.expires_in` is already capped at a day by the WeChat client.
fn credential(issued: &Issued, now_ms: u64) -> Credential {
    let life = issued.expires_in.saturating_mul(1000);
    Credential {
        value: issued.value.clone(),
        expires_at_ms: now_ms.saturating_add(life),
    }
}

/// Seconds the access_token is guaranteed to keep working, counted from `now_ms`: never past its
/// end (`lifecycle::token_dies_at`), and where a new token ends the previous one
/// (`rotation_ends_it`, the classic `/cgi-bin/token`), until the scheduled rotation plus WeChat's
/// grace for the previous token.
pub fn guaranteed_secs(
    state: &TokenState,
    timing: &Timing,
    now_ms: u64,
    rotation_ends_it: bool,
) -> u64 {
    let Some(end) = lifecycle::token_dies_at(state, timing) else {
        return 0;
    };
    let remaining = end.saturating_sub(now_ms);
    if !rotation_ends_it {
        return remaining / 1000;
    }
    let expires_at = state.access_token.as_ref().map_or(0, |c| c.expires_at_ms);
    let rotation_at = expires_at.saturating_sub(ms(timing.rotate_ahead));
    let until_rotation = rotation_at.saturating_sub(now_ms) + ms(timing.grace);
    remaining.min(until_rotation) / 1000
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
