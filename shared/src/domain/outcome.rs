//! What a status change did when WeChat's answer does not say: the answer was lost (a timeout, a
//! dropped connection, a 5xx after the request left, so WeChat may have applied it), or WeChat
//! refused to set a status the invoices may already have (a client retrying a LOCK or CLOSURE that
//! succeeded). The gateway never sends the change again; it reads the invoices back and answers
//! what is true. These are the decisions; the reads are `ops::status`'s.

use crate::domain::invoice::ReimburseStatus;

/// errcode (the gateway's own) for a status change whose outcome cannot be known: the answer was
/// lost and reading the invoices back failed too. Read the invoices before trying again.
pub const OUTCOME_UNKNOWN: i64 = -2;

/// errcodes by which WeChat refuses a status change that may be the status the invoices already
/// have: 72024 "invoice status error" (also what the transition to the current status gets, when
/// WeChat refuses it), 72061 "this invoice has been closed".
pub const MAY_BE_SAME_STATUS: [i64; 2] = [72024, 72061];

/// What the invoices read back say about a change to `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Every invoice is in the requested status.
    Applied,
    /// Not every invoice is in it (a batch change is all or nothing: none was changed), with the
    /// statuses seen, for the answer.
    NotApplied(String),
    /// Some invoice was not read back (WeChat did not return it, or named no status): nothing
    /// can be concluded.
    Unknown,
}

/// Decides from the statuses read back, one per invoice asked (`None`: WeChat did not return it
/// or named no status).
pub fn settle(target: ReimburseStatus, read: &[Option<&str>]) -> Settled {
    if read.is_empty() || read.iter().any(Option::is_none) {
        return Settled::Unknown;
    }
    if read.iter().all(|s| *s == Some(target.as_str())) {
        return Settled::Applied;
    }
    let seen: Vec<&str> = read.iter().map(|s| s.unwrap_or_default()).collect();
    Settled::NotApplied(seen.join(", "))
}

/// How a status change was known to have taken effect when WeChat's answer did not say so: the
/// `gateway_outcome` of the answer and the audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// The answer was lost (or a retry found it so), and the invoices read back are in the
    /// requested status.
    ConfirmedByReadBack,
}

impl Settlement {
    pub fn as_str(self) -> &'static str {
        match self {
            Settlement::ConfirmedByReadBack => "confirmed_by_read_back",
        }
    }
}

/// Whether WeChat's refusal may mean "already in that status", and is worth a read back.
pub fn may_be_same_status(errcode: i64) -> bool {
    MAY_BE_SAME_STATUS.contains(&errcode)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: Option<&str> = Some("INVOICE_REIMBURSE_LOCK");
    const INIT: Option<&str> = Some("INVOICE_REIMBURSE_INIT");
    const CLOSURE: Option<&str> = Some("INVOICE_REIMBURSE_CLOSURE");

    #[test]
    fn settles_by_every_invoice() {
        use ReimburseStatus::*;
        let not = |seen: &str| Settled::NotApplied(seen.into());
        let table = [
            (Lock, vec![LOCK], Settled::Applied),
            (Lock, vec![LOCK, LOCK], Settled::Applied),
            (Closure, vec![CLOSURE], Settled::Applied),
            (Lock, vec![INIT], not("INVOICE_REIMBURSE_INIT")),
            (
                Lock,
                vec![LOCK, INIT],
                not("INVOICE_REIMBURSE_LOCK, INVOICE_REIMBURSE_INIT"),
            ),
            // An invoice not read back: the others prove nothing either way.
            (Closure, vec![CLOSURE, None], Settled::Unknown),
            (Lock, vec![INIT, None], Settled::Unknown),
            (Init, vec![], Settled::Unknown),
        ];
        for (target, read, want) in table {
            assert_eq!(settle(target, &read), want, "{target:?} {read:?}");
        }
    }

    #[test]
    fn only_status_refusals_are_read_back() {
        assert!(may_be_same_status(72024));
        assert!(may_be_same_status(72061));
        for other in [0, 72023, 72037, 72039, 40001, -1] {
            assert!(!may_be_same_status(other), "{other}");
        }
    }
}
