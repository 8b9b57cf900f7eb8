//! Claims on invoices: the expense claim (报销单) that holds an invoice. A LOCK under a claim
//! holds the invoice for it, an INIT releases it, a CLOSURE completes it; a LOCK, CLOSURE or
//! INIT under another claim (or under none) of an invoice a claim holds is refused before
//! WeChat, so one invoice is never paid by two claims.

use crate::domain::invoice::ReimburseStatus;

/// The claim holding an invoice, and since when (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub claim_id: String,
    /// LOCK (held) or CLOSURE (completed: paid).
    pub status: ReimburseStatus,
    pub since_ms: u64,
}

/// What a change does to an invoice's claim once WeChat applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The invoice is (now) held, or completed, by this claim.
    Hold(Holder),
    /// No claim holds it any more.
    Release,
    /// Nothing to record.
    None,
}

/// Whether a change to `target` under `claim` may be sent for an invoice `holder` holds: `Err`
/// with the holder when another claim (or none) would act on a claimed invoice.
pub fn check<'h>(
    target: ReimburseStatus,
    claim: Option<&str>,
    holder: Option<&'h Holder>,
) -> Result<(), &'h Holder> {
    match holder {
        Some(h) if claim != Some(h.claim_id.as_str()) => Err(h),
        // Its own claim: a completed one is not reopened (WeChat refuses it anyway).
        Some(h) if h.status == ReimburseStatus::Closure && target != ReimburseStatus::Closure => {
            Err(h)
        }
        _ => Ok(()),
    }
}

/// What an applied change to `target` under `claim` records, at `now_ms`.
pub fn effect(
    target: ReimburseStatus,
    claim: Option<&str>,
    holder: Option<&Holder>,
    now_ms: u64,
) -> Effect {
    match (target, claim) {
        (ReimburseStatus::Lock | ReimburseStatus::Closure, Some(claim)) => {
            // The same claim keeps the time it first held the invoice.
            let since_ms = holder
                .filter(|h| h.claim_id == claim)
                .map_or(now_ms, |h| h.since_ms);
            Effect::Hold(Holder {
                claim_id: claim.to_string(),
                status: target,
                since_ms,
            })
        }
        (ReimburseStatus::Init, _) if holder.is_some() => Effect::Release,
        _ => Effect::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReimburseStatus::*;

    fn held(claim: &str, status: ReimburseStatus) -> Holder {
        Holder {
            claim_id: claim.into(),
            status,
            since_ms: 1000,
        }
    }

    #[test]
    fn only_the_holding_claim_acts_on_a_claimed_invoice() {
        let a_lock = held("A", Lock);
        let a_closed = held("A", Closure);
        #[rustfmt::skip]
        let table: [(ReimburseStatus, Option<&str>, Option<&Holder>, bool); 12] = [
            (Lock, Some("A"), None, true),
            (Lock, None, None, true),
            (Lock, Some("A"), Some(&a_lock), true),
            (Lock, Some("B"), Some(&a_lock), false),
            (Lock, None, Some(&a_lock), false),
            (Closure, Some("A"), Some(&a_lock), true),
            (Closure, Some("B"), Some(&a_lock), false),
            (Closure, Some("B"), Some(&a_closed), false),
            (Closure, Some("A"), Some(&a_closed), true),
            (Init, Some("A"), Some(&a_lock), true),
            (Init, Some("B"), Some(&a_lock), false),
            (Init, Some("A"), Some(&a_closed), false),
        ];
        for (target, claim, holder, allowed) in table {
            assert_eq!(
                check(target, claim, holder).is_ok(),
                allowed,
                "{target:?} {claim:?} {holder:?}"
            );
        }
    }

    #[test]
    fn locks_hold_closures_complete_and_unlocks_release() {
        let a_lock = held("A", Lock);
        assert_eq!(
            effect(Lock, Some("A"), None, 5),
            Effect::Hold(Holder {
                claim_id: "A".into(),
                status: Lock,
                since_ms: 5
            })
        );
        assert_eq!(
            effect(Closure, Some("A"), Some(&a_lock), 9),
            Effect::Hold(Holder {
                claim_id: "A".into(),
                status: Closure,
                since_ms: 1000
            })
        );
        assert_eq!(effect(Init, Some("A"), Some(&a_lock), 9), Effect::Release);
        assert_eq!(effect(Init, None, None, 9), Effect::None);
        assert_eq!(effect(Lock, None, None, 9), Effect::None);
    }
}
