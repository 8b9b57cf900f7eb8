//! The token lifecycle's decisions, as pure functions of (want, stored state, now, timing): is the
//! state good enough for what this request wants, what is due for a refresh, whether to wait for
//! another instance's refresh, and what to answer when a refresh fails. `token::service` and
//! `token::refresh` do the I/O around them; the tables below pin every case.
//!
//! One rule runs through all of them: a stored access_token counts as alive only until it dies at
//! WeChat. Where a new token ends the stored one (the classic `/cgi-bin/token`, a forced
//! `stable_token`), the holder of the refresh lock records *before* asking WeChat that it is about
//! to (`fetch_started_ms`). If its answer is then lost (a crash, a timeout, a commit that never
//! lands), everyone reads the stored token as dying at that mark plus WeChat's grace, and
//! refreshes before then instead of serving a dead token for the rest of its recorded life.

use std::time::Duration;

use crate::domain::clock::ms;
use crate::domain::config::Timing;
use crate::domain::state::{Credential, TokenState};

/// What a request needs from the token state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// Credentials valid beyond the lazy margin (`type=auto`).
    Fresh,
    /// Credentials valid beyond the scheduled rotation point, wx_card ticket included.
    Scheduled,
    /// `type=manual`: an access_token fetched after the request arrived (`since_ms`), which is
    /// one other than `baseline` unless WeChat answered the same token again. A publish of
    /// tickets alone does not count.
    Forced {
        baseline: Option<String>,
        since_ms: u64,
    },
    /// An access_token other than `dead`, which WeChat reported dead.
    Replace { dead: String },
}

impl Want {
    /// Whether the caller asked for a new token (as opposed to one valid long enough).
    pub fn forced(&self) -> bool {
        matches!(self, Want::Forced { .. } | Want::Replace { .. })
    }
}

/// When the stored access_token stops working at WeChat: its expiry, or earlier when a refresh
/// that would end it was started and its outcome is unknown (`fetch_started_ms` + grace).
pub fn token_dies_at(state: &TokenState, timing: &Timing) -> Option<u64> {
    let token = state.access_token.as_ref()?;
    Some(match state.fetch_started_ms {
        Some(f) => token.expires_at_ms.min(f.saturating_add(ms(timing.grace))),
        None => token.expires_at_ms,
    })
}

/// access_token (as [`token_dies_at`] sees it) and the tickets a page is signed with (jsapi, and
/// a WeCom agent's) all valid for `margin_ms` more.
pub fn alive(state: &TokenState, now_ms: u64, margin_ms: u64, timing: &Timing) -> bool {
    let until = now_ms.saturating_add(margin_ms);
    let token = token_dies_at(state, timing).is_some_and(|end| end > until);
    let ticket = !timing.tickets || ticket_ok(&state.jsapi_ticket, now_ms, margin_ms);
    let agent = !keeps_agent_ticket(timing) || ticket_ok(&state.agent_ticket, now_ms, margin_ms);
    token && ticket && agent
}

/// Whether the app keeps a WeCom agent's ticket (only an app that keeps tickets at all).
fn keeps_agent_ticket(timing: &Timing) -> bool {
    timing.tickets && timing.agent_ticket
}

/// When `state` falls due for the scheduled rotation (Unix ms): its first credential to end,
/// less `rotate_ahead`; 0 when one is missing. `satisfied(Scheduled)` turns false then.
pub fn falls_due(state: &TokenState, timing: &Timing) -> u64 {
    let end = |c: &Option<Credential>| c.as_ref().map_or(0, |c| c.expires_at_ms);
    let mut first = token_dies_at(state, timing).unwrap_or(0);
    if timing.tickets {
        first = first
            .min(end(&state.jsapi_ticket))
            .min(end(&state.wx_card_ticket));
    }
    if keeps_agent_ticket(timing) {
        first = first.min(end(&state.agent_ticket));
    }
    first.saturating_sub(ms(timing.rotate_ahead))
}

/// Alive, and published within the cooldown. Where WeChat answers the same token until late in
/// its life (stable_token, WeCom), being "due" must not turn every request into a fetch.
pub fn just_refreshed(state: &TokenState, now_ms: u64, timing: &Timing) -> bool {
    alive(state, now_ms, 0, timing)
        && now_ms < state.refreshed_at_ms.saturating_add(ms(timing.cooldown))
}

/// A forced refresh asked for within the cooldown of the last one, while the stored token is
/// alive: answered with the stored state, without calling WeChat.
pub fn cooling(state: &TokenState, now_ms: u64, timing: &Timing) -> bool {
    just_refreshed(state, now_ms, timing)
}

/// Whether `state` answers `want` as it is.
pub fn satisfied(want: &Want, state: &TokenState, now_ms: u64, timing: &Timing) -> bool {
    match want {
        Want::Fresh | Want::Scheduled if just_refreshed(state, now_ms, timing) => {
            // Scheduled also needs the wx_card ticket.
            *want == Want::Fresh || !timing.tickets || ticket_ok(&state.wx_card_ticket, now_ms, 0)
        }
        Want::Fresh => alive(state, now_ms, ms(timing.lazy_margin), timing),
        Want::Scheduled => {
            let ahead = ms(timing.rotate_ahead);
            alive(state, now_ms, ahead, timing)
                && (!timing.tickets || ticket_ok(&state.wx_card_ticket, now_ms, ahead))
        }
        Want::Forced { baseline, since_ms } => {
            let changed = state.access_token.as_ref().map(|c| &c.value) != baseline.as_ref();
            let fetched_since = state.token_fetched_ms >= *since_ms;
            alive(state, now_ms, 0, timing) && (changed || fetched_since)
        }
        Want::Replace { dead } => {
            alive(state, now_ms, 0, timing)
                && state
                    .access_token
                    .as_ref()
                    .is_some_and(|c| &c.value != dead)
        }
    }
}

/// Whether fetching `issued` in place of the state's token rotates the tickets too.
pub fn rotates_tickets(state: &TokenState, issued: &str) -> bool {
    state
        .access_token
        .as_ref()
        .is_none_or(|c| c.value != issued)
}

fn ticket_ok(c: &Option<Credential>, now_ms: u64, margin_ms: u64) -> bool {
    c.as_ref().is_some_and(|c| c.valid_for(now_ms, margin_ms))
}

/// What a refresh for `want` fetches, given the state under the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub token: bool,
    pub jsapi: bool,
    pub wx_card: bool,
    pub agent: bool,
}

/// Everything that would not last `want`'s margin (a forced want replaces everything). Tickets
/// are also rotated with an access_token that WeChat answers *changed* (`rotates_tickets`), so
/// they all age together; a token answered unchanged (WeCom, stable_token) leaves them be.
pub fn due(want: &Want, state: &TokenState, now_ms: u64, timing: &Timing) -> Due {
    let margin = match want {
        Want::Fresh => ms(timing.lazy_margin),
        Want::Scheduled => ms(timing.rotate_ahead),
        Want::Forced { .. } | Want::Replace { .. } => u64::MAX,
    };
    let until = now_ms.saturating_add(margin);
    let token = want.forced() || token_dies_at(state, timing).is_none_or(|end| end <= until);
    let ticket = |c: &Option<Credential>| timing.tickets && !ticket_ok(c, now_ms, margin);
    Due {
        token,
        jsapi: ticket(&state.jsapi_ticket),
        wx_card: ticket(&state.wx_card_ticket),
        agent: keeps_agent_ticket(timing) && ticket(&state.agent_ticket),
    }
}

/// What to do when another instance holds the refresh lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnHeld {
    /// Answer with the stored state: it is alive, and this request only needs an alive token.
    Serve,
    /// Wait (bounded) for the holder's publish: this request needs what the holder is fetching
    /// (a new token, or the schedule's rotation, which must not report success before it lands).
    Wait,
}

pub fn on_held(want: &Want, current: &TokenState, now_ms: u64, timing: &Timing) -> OnHeld {
    if *want == Want::Fresh && alive(current, now_ms, 0, timing) {
        OnHeld::Serve
    } else {
        OnHeld::Wait
    }
}

/// Whether a failed refresh may still answer with the stored state: only a want that is met by
/// an alive token (the failure goes with it as a fault; the schedule fails its invocation on
/// it), never a caller that asked for a new token.
pub fn serve_stored_on_failure(
    want: &Want,
    stored: &TokenState,
    now_ms: u64,
    timing: &Timing,
) -> bool {
    !want.forced() && alive(stored, now_ms, 0, timing)
}

/// A lock whose lease has ended: its holder is gone, the lock may be taken over.
pub fn lease_over(state: &TokenState, now_ms: u64) -> bool {
    state.lock_owner.is_some() && state.lock_until_ms < now_ms
}

/// The pause before the `attempt`-th re-read while waiting for another instance: doubling from
/// 50 ms up to 400 ms, scaled by `jitter` (0..1) into its upper half, so waiters that started
/// together do not read the hot item in lockstep.
pub fn wait_pause(attempt: u32, jitter: f64) -> Duration {
    let base = 50u64.saturating_mul(1u64 << attempt.min(3)).min(400);
    let scale = 0.5 + 0.5 * jitter.clamp(0.0, 1.0);
    Duration::from_millis((base as f64 * scale) as u64)
}

/// The previous access_token to keep after a rotation to `issued`: the old one, for as long as
/// WeChat keeps honouring it (grace from now, never past its own end).
pub fn previous_after_rotation(
    state: &TokenState,
    issued: &str,
    now_ms: u64,
    timing: &Timing,
) -> Option<Credential> {
    let old = state.access_token.as_ref()?;
    let end = token_dies_at(state, timing)?.min(now_ms.saturating_add(ms(timing.grace)));
    (end > now_ms && old.value != issued).then(|| Credential {
        value: old.value.clone(),
        expires_at_ms: end,
    })
}

/// Whether WeChat reporting `dead` dead means another system ended it: it is the stored token,
/// and the gateway still counts on it (alive, no fetch of ours under way that would end it).
/// With the classic token API, someone else fetched a token with the same AppSecret.
pub fn ended_elsewhere(state: &TokenState, dead: &str, now_ms: u64, timing: &Timing) -> bool {
    state.access_token.as_ref().is_some_and(|c| c.value == dead)
        && state.fetch_started_ms.is_none()
        && token_dies_at(state, timing).is_some_and(|end| end > now_ms)
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
    let Some(end) = token_dies_at(state, timing) else {
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
mod tests {
    use super::*;
    use crate::domain::state::{applied, holds, Update};

    const NOW: u64 = 1_000_000_000;
    const MIN: u64 = 60_000;

    fn cred(v: &str, left_ms: u64) -> Option<Credential> {
        Some(Credential {
            value: v.into(),
            expires_at_ms: NOW + left_ms,
        })
    }

    /// A state whose token and tickets have `left` minutes, published `ago` minutes ago.
    fn state(left: u64, ago: u64) -> TokenState {
        TokenState {
            access_token: cred("tok", left * MIN),
            jsapi_ticket: cred("jt", left * MIN),
            wx_card_ticket: cred("ct", left * MIN),
            version: 3,
            refreshed_at_ms: NOW - ago * MIN,
            token_fetched_ms: NOW - ago * MIN,
            ..TokenState::default()
        }
    }

    fn forced(baseline: &str) -> Want {
        Want::Forced {
            baseline: Some(baseline.into()),
            since_ms: NOW,
        }
    }

    #[test]
    fn an_app_falls_due_when_the_scheduled_rotation_would_start() {
        let t = Timing::default();
        let ahead = 65 * MIN;
        let mut marked = state(120, 30);
        marked.fetch_started_ms = Some(NOW - 2 * MIN);
        let old_card = TokenState {
            wx_card_ticket: cred("ct", 80 * MIN),
            ..state(120, 30)
        };
        let mini = Timing {
            tickets: false,
            ..t
        };
        let agent = Timing {
            agent_ticket: true,
            ..t
        };
        let old_agent = TokenState {
            agent_ticket: cred("at", 70 * MIN),
            ..state(120, 30)
        };
        #[rustfmt::skip]
        let table: [(&str, TokenState, &Timing, u64); 9] = [
            ("2 h left", state(120, 30), &t, NOW + 120 * MIN - ahead),
            ("the card ticket ends first", old_card, &t, NOW + 80 * MIN - ahead),
            ("fetch mark: dies at the mark + grace", marked, &t, NOW + 3 * MIN - ahead),
            ("nothing stored: due now", TokenState::default(), &t, 0),
            ("no tickets for a mini program", TokenState { jsapi_ticket: None, wx_card_ticket: None, ..state(120, 0) }, &mini, NOW + 120 * MIN - ahead),
            ("tickets missing where they are kept", TokenState { wx_card_ticket: None, ..state(120, 0) }, &t, 0),
            ("a WeCom agent's ticket ends first", old_agent.clone(), &agent, NOW + 70 * MIN - ahead),
            ("an agent ticket where none is kept: ignored", old_agent, &t, NOW + 120 * MIN - ahead),
            ("an agent's ticket missing: due now", state(120, 0), &agent, 0),
        ];
        for (name, s, timing, want) in table {
            let due = falls_due(&s, timing);
            assert_eq!(due, want, "{name}");
            // The scheduled rotation agrees: not wanted a minute before, wanted from then on.
            if due > NOW {
                assert!(satisfied(&Want::Scheduled, &s, due - MIN, timing), "{name}");
                assert!(
                    !satisfied(&Want::Scheduled, &s, due + MIN, timing),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn satisfied_table() {
        let t = Timing::default(); // margin 5 min, ahead 65 min, cooldown 1 min, grace 5 min
        let mut marked = state(120, 30);
        marked.fetch_started_ms = Some(NOW - 2 * MIN); // dies in 3 minutes
        let mut ticket_only = state(120, 0);
        ticket_only.token_fetched_ms = NOW - 30 * MIN;
        let mut refetched_same = state(120, 0);
        refetched_same.token_fetched_ms = NOW;
        let no_card = TokenState {
            wx_card_ticket: None,
            ..state(120, 30)
        };
        let replace = Want::Replace { dead: "tok".into() };
        let agent = Timing {
            agent_ticket: true,
            ..t
        };
        let with_agent = |left: u64| TokenState {
            agent_ticket: cred("at", left * MIN),
            ..state(120, 30)
        };
        for (name, want, s, expected) in [
            (
                "agent: fresh, ticket kept",
                Want::Fresh,
                with_agent(120),
                true,
            ),
            (
                "agent: fresh, no agent ticket",
                Want::Fresh,
                state(120, 30),
                false,
            ),
            (
                "agent: fresh, agent ticket 4 min",
                Want::Fresh,
                with_agent(4),
                false,
            ),
            (
                "agent: scheduled, 60 min",
                Want::Scheduled,
                with_agent(60),
                false,
            ),
            (
                "agent: scheduled, 2 h",
                Want::Scheduled,
                with_agent(120),
                true,
            ),
        ] {
            assert_eq!(satisfied(&want, &s, NOW, &agent), expected, "{name}");
        }
        #[rustfmt::skip]
        let table: Vec<(&str, Want, TokenState, bool)> = vec![
            ("fresh: 2 h left", Want::Fresh, state(120, 30), true),
            ("fresh: 4 min left", Want::Fresh, state(4, 116), false),
            ("fresh: 4 min left, refreshed just now", Want::Fresh, state(4, 0), true),
            ("fresh: expired", Want::Fresh, state(0, 120), false),
            ("fresh: nothing stored", Want::Fresh, TokenState::default(), false),
            ("fresh: fetch mark, dies in 3 min", Want::Fresh, marked.clone(), false),
            ("scheduled: 2 h left", Want::Scheduled, state(120, 30), true),
            ("scheduled: 60 min left", Want::Scheduled, state(60, 60), false),
            ("scheduled: no wx_card ticket", Want::Scheduled, no_card.clone(), false),
            ("scheduled: refreshed just now", Want::Scheduled, state(60, 0), true),
            ("scheduled: fetch mark", Want::Scheduled, marked.clone(), false),
            ("forced: same token", forced("tok"), state(120, 30), false),
            ("forced: another token", forced("old"), state(120, 0), true),
            ("forced: a ticket-only publish", forced("tok"), ticket_only, false),
            ("forced: same token fetched again", forced("tok"), refetched_same, true),
            ("forced: another token, expired", forced("old"), state(0, 0), false),
            ("replace: still the dead one", replace.clone(), state(120, 0), false),
            ("replace: another token", Want::Replace { dead: "x".into() }, state(120, 0), true),
            ("replace: another token, marked dead", Want::Replace { dead: "x".into() }, TokenState { fetch_started_ms: Some(NOW - 6 * MIN), ..state(120, 0) }, false),
        ];
        for (name, want, s, expected) in table {
            assert_eq!(satisfied(&want, &s, NOW, &t), expected, "{name}");
        }
    }

    #[test]
    fn due_table() {
        let t = Timing::default();
        let mut old_card = state(120, 30);
        old_card.wx_card_ticket = cred("ct", 30 * MIN);
        let mut marked = state(120, 30);
        marked.fetch_started_ms = Some(NOW);
        let all = Due {
            token: true,
            jsapi: true,
            wx_card: true,
            agent: false,
        };
        let none = Due {
            token: false,
            jsapi: false,
            wx_card: false,
            agent: false,
        };
        let agent = Timing {
            agent_ticket: true,
            ..t
        };
        let mut old_agent = state(120, 30);
        old_agent.agent_ticket = cred("at", 3 * MIN);
        #[rustfmt::skip]
        let agent_table: Vec<(&str, Want, TokenState, Due)> = vec![
            ("agent, its ticket within the margin: that ticket alone", Want::Fresh, old_agent.clone(), Due { agent: true, ..none }),
            ("agent, nothing stored: all four", Want::Fresh, TokenState::default(), Due { agent: true, ..all }),
            ("agent, forced: all four", forced("tok"), old_agent, Due { agent: true, ..all }),
        ];
        for (name, want, s, expected) in agent_table {
            assert_eq!(due(&want, &s, NOW, &agent), expected, "{name}");
        }
        #[rustfmt::skip]
        let table: Vec<(&str, Want, TokenState, Due)> = vec![
            ("fresh, 2 h left: nothing", Want::Fresh, state(120, 30), none),
            ("fresh, 4 min left: all", Want::Fresh, state(4, 116), all),
            ("fresh, card ticket old: nothing (outside the lazy margin)", Want::Fresh, old_card.clone(), none),
            ("scheduled, card ticket old: the card ticket alone", Want::Scheduled, old_card, Due { wx_card: true, ..none }),
            ("scheduled, 60 min left: all", Want::Scheduled, state(60, 60), all),
            ("forced: all, however fresh", forced("tok"), state(120, 0), all),
            ("fetch mark: the token dies within the margin", Want::Fresh, marked, Due { token: true, ..none }),
            ("nothing stored: all", Want::Fresh, TokenState::default(), all),
        ];
        for (name, want, s, expected) in table {
            assert_eq!(due(&want, &s, NOW, &t), expected, "{name}");
        }
    }

    #[test]
    fn waiting_and_failure_table() {
        let t = Timing::default();
        let dead = state(0, 120);
        #[rustfmt::skip]
        let table: Vec<(&str, Want, TokenState, OnHeld, bool)> = vec![
            // (name, want, stored, while another refreshes, serve the stored state on failure)
            ("fresh, alive", Want::Fresh, state(4, 116), OnHeld::Serve, true),
            ("fresh, dead", Want::Fresh, dead.clone(), OnHeld::Wait, false),
            ("scheduled, alive: wait for the rotation", Want::Scheduled, state(60, 60), OnHeld::Wait, true),
            ("scheduled, dead", Want::Scheduled, dead.clone(), OnHeld::Wait, false),
            ("forced, alive: the caller wants a new one", forced("tok"), state(120, 0), OnHeld::Wait, false),
            ("replace, alive", Want::Replace { dead: "tok".into() }, state(120, 0), OnHeld::Wait, false),
        ];
        for (name, want, s, held, serve) in table {
            assert_eq!(on_held(&want, &s, NOW, &t), held, "{name}");
            assert_eq!(serve_stored_on_failure(&want, &s, NOW, &t), serve, "{name}");
        }
    }

    #[test]
    fn a_fetch_mark_ends_the_token_at_mark_plus_grace() {
        let t = Timing::default();
        let mut s = state(120, 30);
        assert_eq!(token_dies_at(&s, &t), Some(NOW + 120 * MIN));
        s.fetch_started_ms = Some(NOW);
        assert_eq!(token_dies_at(&s, &t), Some(NOW + 5 * MIN));
        assert!(alive(&s, NOW + 5 * MIN - 1, 0, &t));
        assert!(!alive(&s, NOW + 5 * MIN, 0, &t));
        // Never later than the token's own end.
        let mut dying = state(2, 118);
        dying.fetch_started_ms = Some(NOW);
        assert_eq!(token_dies_at(&dying, &t), Some(NOW + 2 * MIN));
        // A mark far in the past or the future saturates instead of overflowing.
        s.fetch_started_ms = Some(u64::MAX);
        assert_eq!(token_dies_at(&s, &t), Some(NOW + 120 * MIN));
    }

    #[test]
    fn previous_token_lives_for_the_grace_or_less() {
        let t = Timing::default();
        let s = state(120, 60);
        let prev = previous_after_rotation(&s, "new", NOW, &t).unwrap();
        assert_eq!(
            (prev.value.as_str(), prev.expires_at_ms),
            ("tok", NOW + 5 * MIN)
        );
        // WeChat answered the same token: nothing to keep.
        assert!(previous_after_rotation(&s, "tok", NOW, &t).is_none());
        // Marked 4 minutes ago by a holder that never came back: 1 minute left, not 5.
        let mut marked = s.clone();
        marked.fetch_started_ms = Some(NOW - 4 * MIN);
        let prev = previous_after_rotation(&marked, "new", NOW, &t).unwrap();
        assert_eq!(prev.expires_at_ms, NOW + MIN);
        // Already dead: nothing to keep.
        marked.fetch_started_ms = Some(NOW - 6 * MIN);
        assert!(previous_after_rotation(&marked, "new", NOW, &t).is_none());
    }

    #[test]
    fn commits_are_recognised_once_landed() {
        let s = state(120, 30);
        let update = Update {
            access_token: cred("new", 120 * MIN),
            jsapi_ticket: cred("jt2", 120 * MIN),
            refreshed_at_ms: NOW,
            ..Update::default()
        };
        assert!(!holds(&s, &update));
        let after = applied(s.clone(), &update);
        assert!(holds(&after, &update));
        assert_eq!(after.version, 4);
        assert_eq!(after.token_fetched_ms, NOW);
        assert_eq!(after.wx_card_ticket, s.wx_card_ticket, "untouched");
        // A ticket-only update leaves the token's fetch time and any fetch mark alone.
        let mut marked = s.clone();
        marked.fetch_started_ms = Some(NOW - MIN);
        let tickets = Update {
            jsapi_ticket: cred("jt3", 120 * MIN),
            refreshed_at_ms: NOW,
            ..Update::default()
        };
        let after = applied(marked, &tickets);
        assert_eq!(after.fetch_started_ms, Some(NOW - MIN));
        assert_eq!(after.token_fetched_ms, s.token_fetched_ms);
    }

    #[test]
    fn a_token_ended_elsewhere_is_the_stored_live_one() {
        let t = Timing::default();
        let marked = TokenState {
            fetch_started_ms: Some(NOW - MIN),
            ..state(120, 30)
        };
        let table = [
            ("stored and alive", state(120, 30), "tok", true),
            (
                "another token (ours rotated it)",
                state(120, 30),
                "old",
                false,
            ),
            ("stored, expired by our clock", state(0, 120), "tok", false),
            ("stored, our own fetch under way", marked, "tok", false),
            ("nothing stored", TokenState::default(), "tok", false),
        ];
        for (case, state, dead, want) in table {
            assert_eq!(ended_elsewhere(&state, dead, NOW, &t), want, "{case}");
        }
    }

    #[test]
    fn wait_pauses_grow_are_capped_and_jittered() {
        assert_eq!(wait_pause(0, 1.0), Duration::from_millis(50));
        assert_eq!(wait_pause(0, 0.0), Duration::from_millis(25));
        assert_eq!(wait_pause(2, 1.0), Duration::from_millis(200));
        assert_eq!(wait_pause(3, 1.0), Duration::from_millis(400));
        assert_eq!(wait_pause(40, 1.0), Duration::from_millis(400));
        assert_eq!(wait_pause(40, 0.5), Duration::from_millis(300));
    }
}
