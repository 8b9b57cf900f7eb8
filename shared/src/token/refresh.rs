//! Refreshing under the store's lock, single-flight across all Lambda instances. Only the lock
//! holder calls WeChat; everyone else serves the stored credentials while they are alive, or
//! waits (bounded) for the holder's publish.
//!
//! Half-failures, and what happens:
//! - A token fetch that would end the stored token is marked in the store first, so a holder
//!   that dies (or times out, or cannot commit) after WeChat issued leaves the stored token
//!   reading as dead at mark + grace, never later than WeChat ends it.
//! - An issued token is never dropped for a failed commit: the commit is retried while the lease
//!   holds, and if it still cannot land, this request is answered with the issued token.
//! - The lock is released on every path that does not publish: `hold` decides how the lock
//!   ends (`LockEnd`) and `refresh_locked` is the one place that releases it.
//! - A failed refresh never removes stored credentials; it answers them only to a want that an
//!   alive token meets, with the failure as a fault (which fails a scheduled run).

use std::sync::Arc;

use crate::adapters::store::{Lock, StoreError};
use crate::adapters::wechat::{Issued, TicketKind, WeChatError};
use crate::domain::apps;
use crate::domain::clock::ms;
use crate::domain::config::Secret;
use crate::domain::deadline::Deadline;
use crate::domain::state::{applied, Credential, TokenState, Update};
use crate::token::error::{TokenError, Unavailable};
use crate::token::lifecycle::{self, OnHeld, Want};
use crate::token::served::{Mode, Served, Source};
use crate::token::service::{bounded, timed, TokenService};

/// How a commit ended.
enum Commit {
    Landed(Box<TokenState>),
    /// The lease went to another holder; nothing of ours was written.
    LeaseLost,
    Failed(StoreError),
}

/// How the lock ends once a holder is done with it.
enum LockEnd {
    /// Released by the commit that published.
    Published,
    /// Taken over by another holder: not ours to release.
    Lost,
    /// Released without publishing; the fetch mark cleared when the fetch surely issued nothing.
    Release { clear_mark: bool },
}

/// What a holder's fetch produced.
enum Fetched {
    /// Something to publish, with the fault of a ticket that could not be fetched.
    Some(Update, Option<TokenError>),
    /// Nothing: how the lock ends, the state to answer from, and why.
    Nothing(LockEnd, TokenState, TokenError),
}

impl TokenService {
    pub(super) async fn refresh(
        &self,
        want: Want,
        mut seen: TokenState,
        deadline: &Deadline,
    ) -> Result<Served, TokenError> {
        // The first token fetch of a process reads the AppSecret (Secrets Manager), before the
        // lock, so the read never eats into the lease.
        let now = self.clock.now_ms();
        let with_secret = self.wechat.uses_app_secret();
        if with_secret && lifecycle::due(&want, &seen, now, &self.timing).token {
            if let Err(e) = self.wechat.app_secret(deadline).await {
                return self.fallback(&want, seen, e.into());
            }
        }
        let owner = uuid::Uuid::new_v4().to_string();
        let waiting = deadline.within(self.timing.wait);
        loop {
            let now = self.clock.now_ms();
            let lease = ms(self.timing.lease);
            let lock = self.store.try_lock(&self.app, &owner, now, lease);
            match bounded(deadline, "taking the refresh lock", lock).await {
                Err(e) => return self.fallback(&want, seen, e),
                // A removed app is served nothing, not even what this instance still holds.
                Ok(Lock::Gone) => return Err(TokenError::AppRemoved(self.app.clone())),
                Ok(Lock::Acquired(locked)) => {
                    return self.refresh_locked(want, &owner, locked, deadline).await;
                }
                Ok(Lock::Held(current)) => {
                    if lifecycle::on_held(&want, &current, now, &self.timing) == OnHeld::Serve {
                        // The holder will publish; until then the stored credentials are alive.
                        return Ok(Served::new(current, Source::Stored));
                    }
                    seen = current;
                }
            }
            match self.wait_for_holder(&want, seen, &waiting, deadline).await {
                Ok(Waited::Served(served)) => return Ok(served),
                Ok(Waited::TakeOver(state)) => seen = state,
                Err((state, err)) => return self.fallback(&want, state, err),
            }
        }
    }

    /// Waits for the holder's publish, with jittered backoff, within both bounds.
    async fn wait_for_holder(
        &self,
        want: &Want,
        mut seen: TokenState,
        waiting: &Deadline,
        deadline: &Deadline,
    ) -> Result<Waited, (TokenState, TokenError)> {
        let mut attempt = 0;
        loop {
            let pause = lifecycle::wait_pause(attempt, fastrand::f64());
            attempt += 1;
            // Pause only when the read after it can still finish before the deadline.
            let read = self.timing.dynamodb_timeout;
            if !waiting.allows(pause) || !deadline.pause(pause, read).await {
                return Err((seen, Unavailable::RefreshInProgress.into()));
            }
            let state = match self.load(deadline).await {
                Ok(s) => s,
                Err(e) => return Err((seen, e)),
            };
            if self.satisfied(want, &state) {
                return Ok(Waited::Served(Served::new(state, Source::Waited)));
            }
            let lease_over = lifecycle::lease_over(&state, self.clock.now_ms());
            let holder_gone = state.lock_owner.is_none();
            seen = state;
            if lease_over {
                return Ok(Waited::TakeOver(seen)); // a crashed holder: take the lock over
            }
            if holder_gone {
                // The holder gave up without publishing: its refresh failed.
                return Err((seen, Unavailable::ConcurrentRefreshFailed.into()));
            }
        }
    }

    /// Holds the lock until `hold` is done with it, then releases it when that is how it ends:
    /// the one place a lock is released.
    async fn refresh_locked(
        &self,
        want: Want,
        owner: &str,
        locked: TokenState,
        deadline: &Deadline,
    ) -> Result<Served, TokenError> {
        let (end, answer) = self.hold(want, owner, locked, deadline).await;
        if let LockEnd::Release { clear_mark } = end {
            self.release(owner, clear_mark, deadline).await;
        }
        answer
    }

    /// Everything done under the lock: fetch what is due and publish it. Never releases the
    /// lock; says how it ends.
    async fn hold(
        &self,
        want: Want,
        owner: &str,
        locked: TokenState,
        deadline: &Deadline,
    ) -> (LockEnd, Result<Served, TokenError>) {
        if self.satisfied(&want, &locked) {
            let served = Served::new(locked, Source::Waited);
            return (LockEnd::Release { clear_mark: false }, Ok(served));
        }
        // The fetch stops before the lease ends, so a holder never publishes late by its own
        // slowness, and early enough that the commit and a release can each take a whole
        // DynamoDB timeout before the request's deadline; commit retries may use the rest of
        // the lease but leave time for the release.
        let write = self.timing.dynamodb_timeout;
        let fetching = deadline
            .before(write * 2)
            .within(self.timing.lease.mul_f32(0.9));
        let committing = deadline.before(write).within(self.timing.lease);
        let (update, fault) = match self.fetch(&want, owner, &locked, &fetching, deadline).await {
            Fetched::Some(update, fault) => (update, fault),
            Fetched::Nothing(end, stored, err) => return (end, self.fallback(&want, stored, err)),
        };
        match self.commit(owner, &update, &committing).await {
            Commit::Landed(state) => {
                let state = *state;
                self.remember(&state);
                let answer = self.answer_refreshed(state, Source::Refreshed, fault);
                (LockEnd::Published, answer)
            }
            // Another holder took over and published: its state wins.
            Commit::LeaseLost => (LockEnd::Lost, self.after_lease_lost(fault, deadline).await),
            Commit::Failed(e) => {
                // Never thrown away: this request gets what WeChat issued. The store keeps the
                // old token, which the fetch mark ends at mark + grace for everyone else.
                let state = applied(locked, &update);
                let answer =
                    self.answer_refreshed(state, Source::RefreshedUnstored, Some(e.into()));
                (LockEnd::Release { clear_mark: false }, answer)
            }
        }
    }

    /// Fetches what is due from WeChat: the access_token (`fetch_token`), then the tickets.
    async fn fetch(
        &self,
        want: &Want,
        owner: &str,
        locked: &TokenState,
        fetching: &Deadline,
        deadline: &Deadline,
    ) -> Fetched {
        let now = self.clock.now_ms();
        let due = lifecycle::due(want, locked, now, &self.timing);
        let mut update = Update {
            refreshed_at_ms: now,
            ..Update::default()
        };
        let (token, rotated) = if due.token {
            match self
                .fetch_token(want.forced(), owner, locked, now, [fetching, deadline])
                .await
            {
                Ok((issued, previous, refresh)) => {
                    let rotated = lifecycle::rotates_tickets(locked, &issued.value);
                    update.previous_access_token = previous;
                    update.access_token = Some(credential(&issued, now));
                    // A refresh token WeChat answered differently is published with this token,
                    // the stored one kept beside it (never one without the other).
                    let stored = locked.refresh_token.as_ref().map(Secret::expose);
                    if let Some(new) = refresh.filter(|r| stored != Some(r.as_str())) {
                        update.refresh_token = Some(Secret::new(new));
                        update.previous_refresh_token = locked.refresh_token.clone();
                    }
                    (issued.value, rotated)
                }
                Err(nothing) => return nothing,
            }
        } else {
            match &locked.access_token {
                Some(c) => (c.value.clone(), false),
                None => {
                    let end = LockEnd::Release { clear_mark: false };
                    let err = Unavailable::NoAccessToken.into();
                    return Fetched::Nothing(end, locked.clone(), err);
                }
            }
        };
        let mut fault = None;
        for (kind, is_due, kept) in [
            (TicketKind::Jsapi, due.jsapi, true),
            (TicketKind::WxCard, due.wx_card, true),
            (TicketKind::AgentConfig, due.agent, self.timing.agent_ticket),
        ] {
            if !self.timing.tickets || !kept || !(is_due || rotated) {
                continue;
            }
            match self.wechat.fetch_ticket(&token, kind, fetching).await {
                Ok(issued) => {
                    let cred = Some(credential(&issued, now));
                    match kind {
                        TicketKind::Jsapi => update.jsapi_ticket = cred,
                        TicketKind::WxCard => update.wx_card_ticket = cred,
                        TicketKind::AgentConfig => update.agent_ticket = cred,
                    }
                }
                Err(e) => {
                    fault.get_or_insert(TokenError::from(e));
                }
            }
        }
        let fetched = update.access_token.is_some()
            || update.jsapi_ticket.is_some()
            || update.wx_card_ticket.is_some()
            || update.agent_ticket.is_some();
        if !fetched {
            let end = LockEnd::Release { clear_mark: false };
            let err = fault.unwrap_or(Unavailable::NothingFetched.into());
            return Fetched::Nothing(end, locked.clone(), err);
        }
        // A registered app's next due time goes into the sweep's index with the publish (the
        // lock guarantees `locked` is what the publish applies to).
        if apps::is_registered_key(&self.app) {
            let published = applied(locked.clone(), &update);
            update.due_ms = Some(lifecycle::falls_due(&published, &self.timing));
        }
        Fetched::Some(update, fault)
    }

    /// A new access_token, the previous one to keep, and for an authorized account the refresh
    /// token WeChat answered; the store marked first when the fetch ends the stored token (see
    /// `lifecycle`). `Err`: nothing was issued that can be published. `[fetching, deadline]`:
    /// the fetch's bound, and the request's (for the mark).
    async fn fetch_token(
        &self,
        force: bool,
        owner: &str,
        locked: &TokenState,
        now: u64,
        [fetching, deadline]: [&Deadline; 2],
    ) -> Result<(Issued, Option<Credential>, Option<String>), Fetched> {
        let mut marked = false;
        if self.wechat.fetch_ends_stored(force)
            && locked.access_token.is_some()
            && locked.fetch_started_ms.is_none()
        {
            let mark = self.store.mark_fetch(&self.app, owner, now);
            match bounded(deadline, "marking the token fetch", mark).await {
                Ok(true) => marked = true,
                Ok(false) => {
                    let err = Unavailable::LeaseLost.into();
                    return Err(Fetched::Nothing(LockEnd::Lost, locked.clone(), err));
                }
                Err(e) => {
                    let end = LockEnd::Release { clear_mark: false };
                    return Err(Fetched::Nothing(end, locked.clone(), e));
                }
            }
        }
        let fetched = match &self.authorized_by {
            None => self
                .wechat
                .fetch_access_token(force, fetching)
                .await
                .map(|issued| (issued, None)),
            Some(platform) => self
                .fetch_authorizer_token(platform, locked, fetching)
                .await
                .map(|(issued, refresh)| (issued, Some(refresh))),
        };
        match fetched {
            Ok((issued, refresh)) => {
                let previous =
                    lifecycle::previous_after_rotation(locked, &issued.value, now, &self.timing);
                Ok((issued, previous, refresh))
            }
            Err(e) => {
                // A mark stays unless WeChat surely issued nothing.
                let nothing_issued = e.nothing_done();
                let mut stored = locked.clone();
                if marked && !nothing_issued {
                    stored.fetch_started_ms = Some(now);
                }
                self.remember(&stored);
                let end = LockEnd::Release {
                    clear_mark: marked && nothing_issued,
                };
                Err(Fetched::Nothing(end, stored, e.into()))
            }
        }
    }

    /// Publishes what an authorization issued (the account's first token and its refresh
    /// token, from `api_query_auth`), under the refresh lock like any publish: the stored refresh
    /// token, when different, kept as the previous one. Waits (bounded) for a holder to finish.
    pub async fn adopt(
        &self,
        issued: &Issued,
        refresh_token: &str,
        deadline: &Deadline,
    ) -> Result<TokenState, TokenError> {
        let owner = uuid::Uuid::new_v4().to_string();
        let mut attempt = 0;
        loop {
            let now = self.clock.now_ms();
            let lock = self
                .store
                .try_lock(&self.app, &owner, now, ms(self.timing.lease));
            let locked = match bounded(deadline, "taking the refresh lock", lock).await? {
                Lock::Acquired(locked) => locked,
                Lock::Gone => return Err(TokenError::AppRemoved(self.app.clone())),
                Lock::Held(_) => {
                    let pause = lifecycle::wait_pause(attempt, fastrand::f64());
                    attempt += 1;
                    if !deadline.pause(pause, self.timing.dynamodb_timeout).await {
                        return Err(Unavailable::RefreshInProgress.into());
                    }
                    continue;
                }
            };
            let mut update = Update {
                access_token: Some(credential(issued, now)),
                previous_access_token: lifecycle::previous_after_rotation(
                    &locked,
                    &issued.value,
                    now,
                    &self.timing,
                ),
                refreshed_at_ms: now,
                ..Update::default()
            };
            if locked.refresh_token.as_ref().map(Secret::expose) != Some(refresh_token) {
                update.refresh_token = Some(Secret::new(refresh_token));
                update.previous_refresh_token = locked.refresh_token.clone();
            }
            if apps::is_registered_key(&self.app) {
                let published = applied(locked.clone(), &update);
                update.due_ms = Some(lifecycle::falls_due(&published, &self.timing));
            }
            let committing = deadline.within(self.timing.lease);
            return match self.commit(&owner, &update, &committing).await {
                Commit::Landed(state) => {
                    self.remember(&state);
                    Ok(*state)
                }
                Commit::LeaseLost => Err(Unavailable::LeaseLost.into()),
                Commit::Failed(e) => {
                    self.release(&owner, false, deadline).await;
                    Err(e.into())
                }
            };
        }
    }

    /// An authorized account's token, from its platform: the platform's token (its own token
    /// service), then `api_authorizer_token` with the stored refresh token. When WeChat refuses
    /// it (61023), or none is stored (a registration whose first publish was lost): the one kept
    /// before it, then the one WeChat holds for the account (`api_get_authorizer_info`, its
    /// documented way back, e.g. to a refresh token WeChat replaced while the publish of the new
    /// one was lost). Refused by all: the account must authorize again.
    async fn fetch_authorizer_token(
        &self,
        platform: &Result<Arc<TokenService>, String>,
        locked: &TokenState,
        fetching: &Deadline,
    ) -> Result<(Issued, String), WeChatError> {
        let platform = platform.as_ref().map_err(|why| {
            WeChatError::NotSent(format!("the third-party platform is not available: {why}"))
        })?;
        let served = platform
            .get(Mode::Auto, fetching)
            .await
            .map_err(|e| WeChatError::NotSent(format!("the platform's token: {}", e.cause())))?;
        let component_token = served
            .access_token()
            .map_err(|e| WeChatError::NotSent(format!("the platform's token: {}", e.cause())))?;
        let component_appid = platform.wechat.component_appid(fetching).await?;
        let component_appid = component_appid.as_str();
        let refused = |r: &Result<(Issued, String), WeChatError>| matches!(r, Err(WeChatError::Api(b)) if b.errcode == REFRESH_TOKEN_INVALID);
        // The stored refresh token, then the one kept before it.
        let mut tried: Vec<&str> = Vec::new();
        let mut last = None;
        let kept = [&locked.refresh_token, &locked.previous_refresh_token];
        for refresh in kept.into_iter().flatten().map(Secret::expose) {
            if tried.contains(&refresh) {
                continue;
            }
            tried.push(refresh);
            let fetched = self
                .wechat
                .fetch_authorizer_token(component_appid, component_token, refresh, fetching)
                .await;
            if !refused(&fetched) {
                return fetched;
            }
            last = Some(fetched);
        }
        // Then WeChat's own (none stored: a registration whose first publish was lost).
        let held = self
            .wechat
            .authorizer_refresh_token(component_appid, component_token, fetching)
            .await;
        match (held, last) {
            (Ok(Some(current)), _) if !tried.contains(&current.as_str()) => {
                self.wechat
                    .fetch_authorizer_token(component_appid, component_token, &current, fetching)
                    .await
            }
            (_, Some(last)) => last,
            (held, None) => Err(held.err().unwrap_or_else(|| {
                WeChatError::NotSent(
                    "no authorizer_refresh_token is stored or held by WeChat: the account must \
                     authorize the platform again"
                        .into(),
                )
            })),
        }
    }

    /// Another holder took the lease over and published: its state, when alive.
    async fn after_lease_lost(
        &self,
        fault: Option<TokenError>,
        deadline: &Deadline,
    ) -> Result<Served, TokenError> {
        let state = self.load(deadline).await?;
        if lifecycle::alive(&state, self.clock.now_ms(), 0, &self.timing) {
            Ok(Served {
                state,
                source: Source::Waited,
                fault,
            })
        } else {
            Err(Unavailable::LeaseLostToAnother.into())
        }
    }

    fn answer_refreshed(
        &self,
        state: TokenState,
        source: Source,
        fault: Option<TokenError>,
    ) -> Result<Served, TokenError> {
        if lifecycle::alive(&state, self.clock.now_ms(), 0, &self.timing) {
            Ok(Served {
                state,
                source,
                fault,
            })
        } else {
            Err(fault.unwrap_or(Unavailable::NotUsable.into()))
        }
    }

    /// Publishes `update`, retrying a failed write while `until` (the lease, and the request less
    /// a release) allows one more attempt.
    async fn commit(&self, owner: &str, update: &Update, until: &Deadline) -> Commit {
        let mut attempt = 0;
        loop {
            let err = match timed(until, self.store.commit(&self.app, owner, update)).await {
                Ok(Ok(Some(state))) => return Commit::Landed(Box::new(state)),
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
    pub(super) fn fallback(
        &self,
        want: &Want,
        stored: TokenState,
        err: TokenError,
    ) -> Result<Served, TokenError> {
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

/// What a wait for another instance's refresh came to.
enum Waited {
    Served(Served),
    /// The holder's lease ran out: take the lock over.
    TakeOver(TokenState),
}

/// WeChat's "refresh_token is invalid" (`api_authorizer_token`).
const REFRESH_TOKEN_INVALID: i64 = 61023;

/// `issued.expires_in` is already capped at a day by the WeChat client.
fn credential(issued: &Issued, now_ms: u64) -> Credential {
    let life = issued.expires_in.saturating_mul(1000);
    Credential {
        value: issued.value.clone(),
        expires_at_ms: now_ms.saturating_add(life),
    }
}
