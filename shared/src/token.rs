//! Token lifecycle: serve the stored access_token and tickets (through a short in-process cache),
//! and refresh them single-flight across all Lambda instances under the DynamoDB lock. Only the
//! lock holder calls WeChat; everyone else serves the stored credentials while they are valid,
//! or waits (bounded) for the holder's write. A failed refresh never removes valid stored
//! credentials.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::Timing;
use crate::envelope::ApiError;
use crate::store::{Credential, Lock, StoreError, TokenState, TokenStore, Update};
use crate::wechat::{Issued, TicketKind, WeChatClient};

/// Why credentials are wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A reader (`type=auto`): refresh only if the stored ones are missing or about to expire.
    Auto,
    /// `type=manual`: publish a refresh made after this request arrived.
    Manual,
    /// The hourly schedule: rotate whatever would expire before the next run.
    Scheduled,
}

/// What a refresh must achieve.
#[derive(Debug, Clone, Copy)]
enum Want<'a> {
    /// Credentials valid beyond the lazy margin (`type=auto`).
    Fresh,
    /// Credentials valid beyond the scheduled rotation point, wx_card ticket included.
    Scheduled,
    /// A refresh published after the state had this version (`type=manual`).
    Forced { baseline: u64 },
    /// An access_token other than this one, which WeChat reported dead.
    Replace { dead: &'a str },
}

impl Want<'_> {
    /// Whether a stored, still valid token may answer when the refresh fails or is elsewhere.
    fn accepts_stored(self) -> bool {
        matches!(self, Want::Fresh | Want::Scheduled)
    }
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
    /// Another instance refreshed while this request waited.
    Waited,
    /// A refresh was needed but failed; the stored credentials are still valid and were served.
    StoredAfterFault,
    /// A forced refresh was asked for within the cooldown of the last one: the stored
    /// credentials were served without calling WeChat.
    Cooldown,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cached => "cached",
            Source::Stored => "stored",
            Source::Refreshed => "refreshed",
            Source::Waited => "waited",
            Source::StoredAfterFault => "stored_after_fault",
            Source::Cooldown => "cooldown",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Served {
    pub state: TokenState,
    pub source: Source,
    /// A fault met on the way (a ticket that failed to refresh, WeChat down while stored
    /// credentials were still valid).
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

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// access_token and jsapi_ticket both valid for at least `margin_ms`.
pub fn usable(state: &TokenState, now_ms: u64, margin_ms: u64) -> bool {
    let ok = |c: &Option<Credential>| c.as_ref().is_some_and(|c| c.valid_for(now_ms, margin_ms));
    ok(&state.access_token) && ok(&state.jsapi_ticket)
}

#[derive(Clone)]
pub struct TokenService {
    store: TokenStore,
    wechat: WeChatClient,
    timing: Timing,
    clock: Clock,
    /// The state last read or written, and when (clock ms).
    cache: Arc<Mutex<Option<(TokenState, u64)>>>,
}

impl TokenService {
    pub fn new(store: TokenStore, wechat: WeChatClient, timing: Timing) -> Self {
        TokenService {
            store,
            wechat,
            timing,
            clock: Clock::default(),
            cache: Arc::default(),
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    pub fn store(&self) -> &TokenStore {
        &self.store
    }

    fn appid(&self) -> &str {
        self.wechat.appid()
    }

    /// The cached state while it is younger than the cache TTL. The bound is safe: a token
    /// replaced by another instance stays valid at WeChat for the grace period, which is longer.
    fn cached(&self) -> Option<TokenState> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (state, at) = cache.as_ref()?;
        (self.clock.now_ms() < at + ms(self.timing.cache_ttl)).then(|| state.clone())
    }

    fn remember(&self, state: &TokenState) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        *cache = Some((state.clone(), self.clock.now_ms()));
    }

    /// Reads the state once, at cold start: it opens (and pays the TLS handshake of) the
    /// connection to DynamoDB during init, and fills the cache. Failures are left to requests.
    pub async fn warm(&self) {
        let _ = self.load().await;
    }

    /// Reads the store (strongly consistent) and refreshes the cache.
    async fn load(&self) -> Result<TokenState, StoreError> {
        let state = self.store.load(self.appid()).await?;
        self.remember(&state);
        Ok(state)
    }

    /// Credentials for `mode`, refreshing when needed. `auto` is answered from the cache while it
    /// holds credentials fresh enough; `manual` and the schedule always read the store.
    pub async fn get(&self, mode: Mode) -> Result<Served, ApiError> {
        if mode == Mode::Auto {
            if let Some(state) = self.cached().filter(|s| self.satisfied(Want::Fresh, s)) {
                return Ok(Served {
                    state,
                    source: Source::Cached,
                    fault: None,
                });
            }
        }
        let state = self.load().await?;
        let want = match mode {
            Mode::Auto => Want::Fresh,
            Mode::Scheduled => Want::Scheduled,
            Mode::Manual => Want::Forced {
                baseline: state.version,
            },
        };
        self.run(want, state).await
    }

    /// WeChat reported `dead` as invalid. If it is still the stored access_token, replace it
    /// (single flight, like any refresh); either way answer the stored state as it is then.
    /// Bounded by the cooldown, so a WeChat that keeps refusing fresh tokens cannot make us burn
    /// the daily quota.
    pub async fn replace_dead(&self, dead: &str) -> Result<Served, ApiError> {
        let state = self.load().await?;
        self.run(Want::Replace { dead }, state).await
    }

    /// Accepts a caller's token only if it is the stored access_token, or the previous one
    /// while WeChat still honours it; anything else gets WeChat's own 40001 answer.
    /// The cache answers for a token it knows; an unknown one is looked up in the store before
    /// it is refused (another instance may have just refreshed).
    pub async fn check(&self, token: &str) -> Result<TokenState, ApiError> {
        let known = |state: &TokenState| {
            let now = self.clock.now_ms();
            let is = |c: &Option<Credential>| {
                c.as_ref()
                    .is_some_and(|c| c.value == token && c.valid_for(now, 0))
            };
            is(&state.access_token) || is(&state.previous_access_token)
        };
        if let Some(state) = self.cached().filter(|s| known(s)) {
            return Ok(state);
        }
        let state = self.load().await?;
        if known(&state) {
            Ok(state)
        } else {
            Err(ApiError::invalid_credential())
        }
    }

    async fn run(&self, want: Want<'_>, state: TokenState) -> Result<Served, ApiError> {
        if self.satisfied(want, &state) {
            return Ok(Served {
                state,
                source: Source::Stored,
                fault: None,
            });
        }
        let forced = matches!(want, Want::Forced { .. } | Want::Replace { .. });
        if forced && self.cooling(&state) {
            return Ok(Served {
                state,
                source: Source::Cooldown,
                fault: None,
            });
        }
        self.refresh(want, state).await
    }

    /// Within the cooldown of the last published refresh, with a valid token stored.
    fn cooling(&self, state: &TokenState) -> bool {
        let now = self.clock.now_ms();
        usable(state, now, 0) && now < state.refreshed_at_ms + ms(self.timing.cooldown)
    }

    fn satisfied(&self, want: Want<'_>, state: &TokenState) -> bool {
        let now = self.clock.now_ms();
        // A valid token refreshed within the cooldown is not fetched again unforced: where WeChat
        // answers the same token until late in its life (stable_token, WeCom), being "due" must
        // not turn every request into a fetch.
        let just_refreshed =
            usable(state, now, 0) && now < state.refreshed_at_ms + ms(self.timing.cooldown);
        match want {
            Want::Fresh | Want::Scheduled if just_refreshed => true,
            Want::Fresh => usable(state, now, ms(self.timing.lazy_margin)),
            Want::Scheduled => {
                let ahead = ms(self.timing.rotate_ahead);
                usable(state, now, ahead)
                    && state
                        .wx_card_ticket
                        .as_ref()
                        .is_some_and(|c| c.valid_for(now, ahead))
            }
            Want::Forced { baseline } => state.version > baseline,
            Want::Replace { dead } => {
                usable(state, now, 0)
                    && state.access_token.as_ref().is_some_and(|c| c.value != dead)
            }
        }
    }

    async fn refresh(&self, want: Want<'_>, mut seen: TokenState) -> Result<Served, ApiError> {
        // The first refresh of a process reads the AppSecret (Secrets Manager), before the lock.
        if let Err(e) = self.wechat.app_secret().await {
            return self.fallback(want, seen, e.into());
        }
        let owner = uuid::Uuid::new_v4().to_string();
        let deadline = Instant::now() + self.timing.wait;
        loop {
            let now = self.clock.now_ms();
            let lock = match self
                .store
                .try_lock(self.appid(), &owner, now, ms(self.timing.lease))
                .await
            {
                Ok(lock) => lock,
                Err(e) => return self.fallback(want, seen, e.into()),
            };
            match lock {
                Lock::Acquired(locked) => {
                    if self.satisfied(want, &locked) {
                        let _ = self.store.release(self.appid(), &owner).await;
                        return Ok(Served {
                            state: locked,
                            source: Source::Waited,
                            fault: None,
                        });
                    }
                    return self.refresh_locked(want, &owner, locked).await;
                }
                Lock::Held(current) => {
                    if want.accepts_stored() && usable(&current, now, 0) {
                        // The holder will publish; until then the stored credentials are valid.
                        return Ok(Served {
                            state: current,
                            source: Source::Stored,
                            fault: None,
                        });
                    }
                    seen = current;
                }
            }
            // Wait for the holder's write, with backoff, within the bound.
            let mut pause = Duration::from_millis(50);
            loop {
                if Instant::now() + pause > deadline {
                    let err = ApiError::Unavailable(format!(
                        "a token refresh in progress did not finish within {} ms",
                        ms(self.timing.wait)
                    ));
                    return self.fallback(want, seen, err);
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(400));
                let state = match self.load().await {
                    Ok(s) => s,
                    Err(e) => return self.fallback(want, seen, e.into()),
                };
                if self.satisfied(want, &state) {
                    return Ok(Served {
                        state,
                        source: Source::Waited,
                        fault: None,
                    });
                }
                let now = self.clock.now_ms();
                let holder_gone = state.lock_owner.is_none();
                let lease_over = state.lock_owner.is_some() && state.lock_until_ms < now;
                seen = state;
                if lease_over {
                    break; // a crashed holder: take the lock over
                }
                if holder_gone {
                    // The holder gave up without publishing: its refresh failed.
                    let err = ApiError::Unavailable("a concurrent token refresh failed".into());
                    return self.fallback(want, seen, err);
                }
            }
        }
    }

    /// Fetches what is due from WeChat and publishes it, holding the lock.
    async fn refresh_locked(
        &self,
        want: Want<'_>,
        owner: &str,
        locked: TokenState,
    ) -> Result<Served, ApiError> {
        // The lease covers the whole fetch; stop before it ends so we never publish late.
        let budget = self.timing.lease.mul_f32(0.9);
        let (update, fault) = match tokio::time::timeout(budget, self.fetch(want, &locked)).await {
            Ok(r) => r,
            Err(_) => {
                let _ = self.store.release(self.appid(), owner).await;
                let err = ApiError::WeChatTimeout(format!(
                    "refresh did not finish within {} ms",
                    ms(budget)
                ));
                return self.fallback(want, locked, err);
            }
        };
        let Some(update) = update else {
            let _ = self.store.release(self.appid(), owner).await;
            let err =
                fault.unwrap_or_else(|| ApiError::Unavailable("refresh produced nothing".into()));
            return self.fallback(want, locked, err);
        };
        match self.store.commit(self.appid(), owner, &update).await {
            Ok(Some(state)) => {
                self.remember(&state);
                if usable(&state, self.clock.now_ms(), 0) {
                    Ok(Served {
                        state,
                        source: Source::Refreshed,
                        fault,
                    })
                } else {
                    Err(fault.unwrap_or_else(|| {
                        ApiError::Unavailable("refreshed state is not usable".into())
                    }))
                }
            }
            Ok(None) => {
                // Our lease ran out and another holder took over: its state wins, ours is dropped.
                let state = self.load().await?;
                if usable(&state, self.clock.now_ms(), 0) {
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
            Err(e) => self.fallback(want, locked, e.into()),
        }
    }

    /// Calls WeChat for everything due. `None` when nothing could be fetched.
    async fn fetch(
        &self,
        want: Want<'_>,
        locked: &TokenState,
    ) -> (Option<Update>, Option<ApiError>) {
        let now = self.clock.now_ms();
        let threshold = match want {
            Want::Fresh => ms(self.timing.lazy_margin),
            Want::Scheduled => ms(self.timing.rotate_ahead),
            Want::Forced { .. } | Want::Replace { .. } => u64::MAX,
        };
        let due = |c: &Option<Credential>| !c.as_ref().is_some_and(|c| c.valid_for(now, threshold));
        let mut update = Update {
            refreshed_at_ms: now,
            ..Update::default()
        };
        let mut fault = None;

        let token = if due(&locked.access_token) {
            let force = matches!(want, Want::Forced { .. } | Want::Replace { .. });
            match self.wechat.fetch_access_token(force).await {
                Ok(issued) => {
                    // WeChat keeps honouring the old token for the grace period.
                    let grace_end = now + ms(self.timing.grace);
                    update.previous_access_token = locked
                        .access_token
                        .as_ref()
                        .filter(|c| c.valid_for(now, 0) && c.value != issued.value)
                        .map(|c| Credential {
                            value: c.value.clone(),
                            expires_at_ms: c.expires_at_ms.min(grace_end),
                        });
                    let cred = credential(&issued, now);
                    update.access_token = Some(cred);
                    issued.value
                }
                Err(e) => return (None, Some(e.into())),
            }
        } else {
            match &locked.access_token {
                Some(c) => c.value.clone(),
                None => return (None, Some(ApiError::Unavailable("no access_token".into()))),
            }
        };
        // A new access_token rotates both tickets with it, so all three age together.
        let rotated = update.previous_access_token.is_some()
            || (update.access_token.is_some() && locked.access_token.is_none());
        for kind in [TicketKind::Jsapi, TicketKind::WxCard] {
            let current = match kind {
                TicketKind::Jsapi => &locked.jsapi_ticket,
                TicketKind::WxCard => &locked.wx_card_ticket,
            };
            if !(rotated || due(current)) {
                continue;
            }
            match self.wechat.fetch_ticket(&token, kind).await {
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
        (fetched.then_some(update), fault)
    }

    /// A refresh failed: serve what is stored if it is still valid (except for a forced refresh,
    /// whose caller asked for new credentials and gets the failure).
    fn fallback(
        &self,
        want: Want<'_>,
        stored: TokenState,
        err: ApiError,
    ) -> Result<Served, ApiError> {
        if want.accepts_stored() && usable(&stored, self.clock.now_ms(), 0) {
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

fn credential(issued: &Issued, now_ms: u64) -> Credential {
    Credential {
        value: issued.value.clone(),
        expires_at_ms: now_ms + issued.expires_in * 1000,
    }
}

/// Seconds the access_token is guaranteed to keep working, counted from `now_ms`: never past its
/// expiry, and where a new token ends the previous one (`rotation_ends_it`, the classic
/// `/cgi-bin/token`), until the scheduled rotation plus WeChat's grace for the previous token.
pub fn guaranteed_secs(
    token: &Credential,
    timing: &Timing,
    now_ms: u64,
    rotation_ends_it: bool,
) -> u64 {
    let remaining = token.expires_at_ms.saturating_sub(now_ms);
    if !rotation_ends_it {
        return remaining / 1000;
    }
    let rotation_at = token.expires_at_ms.saturating_sub(ms(timing.rotate_ahead));
    let until_rotation = rotation_at.saturating_sub(now_ms) + ms(timing.grace);
    remaining.min(until_rotation) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guaranteed_lifetime_is_until_rotation_plus_grace() {
        let t = Timing::default();
        let now = 1_000_000_000;
        let fresh = Credential {
            value: "x".into(),
            expires_at_ms: now + 7_200_000,
        };
        // 7200 − 3900 (rotate ahead) + 300 (grace) = 3600: the token lives one schedule period.
        assert_eq!(guaranteed_secs(&fresh, &t, now, true), 3600);
        // Past the rotation point: only the grace is guaranteed.
        let due = Credential {
            value: "x".into(),
            expires_at_ms: now + 3_000_000,
        };
        assert_eq!(guaranteed_secs(&due, &t, now, true), 300);
        // Never beyond expiry.
        let dying = Credential {
            value: "x".into(),
            expires_at_ms: now + 120_000,
        };
        assert_eq!(guaranteed_secs(&dying, &t, now, true), 120);
        let dead = Credential {
            value: "x".into(),
            expires_at_ms: now - 1,
        };
        assert_eq!(guaranteed_secs(&dead, &t, now, true), 0);
        // Stable and WeCom tokens are not ended by a newer one: their whole remaining life.
        assert_eq!(guaranteed_secs(&fresh, &t, now, false), 7200);
    }

    #[test]
    fn usable_needs_both_token_and_ticket() {
        let now = 1_000;
        let c = |exp| {
            Some(Credential {
                value: "v".into(),
                expires_at_ms: exp,
            })
        };
        let mut s = TokenState {
            access_token: c(now + 10_000),
            ..TokenState::default()
        };
        assert!(!usable(&s, now, 0));
        s.jsapi_ticket = c(now + 5_000);
        assert!(usable(&s, now, 0));
        assert!(!usable(&s, now, 5_000));
    }
}
