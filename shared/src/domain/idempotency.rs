//! Idempotent status changes: the `Idempotency-Key` a caller sends with a status change (one key
//! per request, reused on its retries, as in the IETF draft "The Idempotency-Key HTTP Header
//! Field" and Powertools' idempotency utility), and what a retry is answered given what was
//! recorded for its key.

use crate::domain::input::InputError;

/// Longest key accepted (a UUID is 36 characters).
pub const MAX_KEY: usize = 255;

/// A caller's idempotency key: 1 to 255 visible ASCII characters. The draft writes it as a
/// structured-field string (`"…"`); the quotes are taken off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(header: &str) -> Result<Self, InputError> {
        let v = header.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        let ok = !v.is_empty() && v.len() <= MAX_KEY && v.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(InputError::invalid(format!(
                "Idempotency-Key: 1 to {MAX_KEY} visible ASCII characters (a UUID is best)"
            )));
        }
        Ok(IdempotencyKey(v.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What is recorded for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A request with the key is under way (until `lease_until_ms`).
    InProgress { lease_until_ms: u64 },
    /// Its answer, to give again.
    Answered { status: u16, body: String },
    /// The change was sent and its outcome could not be known: a retry reads the invoices back.
    Unknown,
}

/// A key's record: the digest of the request it was first used with, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub body_sha256: String,
    pub recorded: Recorded,
}

/// What to do with a request whose key already has a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Give the recorded answer again; WeChat is not called.
    Replay { status: u16, body: String },
    /// The first outcome is unknown: settle it by reading the invoices back, then go on.
    Settle,
    /// The first request is still under way (409).
    InFlight,
    /// The key was used with another request (422).
    OtherRequest,
    /// The first request's lease ran out without an answer (it was cut off): take over.
    TakeOver,
}

/// The decision for a request with digest `body_sha256` whose key has `record`, at `now_ms`.
pub fn retry(record: &Record, body_sha256: &str, now_ms: u64) -> Retry {
    if record.body_sha256 != body_sha256 {
        return Retry::OtherRequest;
    }
    match &record.recorded {
        Recorded::Answered { status, body } => Retry::Replay {
            status: *status,
            body: body.clone(),
        },
        Recorded::Unknown => Retry::Settle,
        Recorded::InProgress { lease_until_ms } if *lease_until_ms > now_ms => Retry::InFlight,
        Recorded::InProgress { .. } => Retry::TakeOver,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_and_unquoted() {
        #[rustfmt::skip]
        let table: [(&str, Option<&str>); 7] = [
            ("8e03978e-40d5-43e8-bc93-6894a57f9324", Some("8e03978e-40d5-43e8-bc93-6894a57f9324")),
            ("\"8e03978e\"", Some("8e03978e")),
            ("  claim-7:lock  ", Some("claim-7:lock")),
            ("", None),
            ("\"\"", None),
            ("a b", None),
            ("键", None),
        ];
        for (header, want) in table {
            let got = IdempotencyKey::parse(header).ok();
            assert_eq!(got.as_ref().map(IdempotencyKey::as_str), want, "{header:?}");
        }
        assert!(IdempotencyKey::parse(&"k".repeat(MAX_KEY)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(MAX_KEY + 1)).is_err());
    }

    #[test]
    fn a_retry_is_answered_by_what_was_recorded() {
        let record = |recorded| Record {
            body_sha256: "same".into(),
            recorded,
        };
        let answered = Recorded::Answered {
            status: 200,
            body: "{}".into(),
        };
        let table = [
            (
                record(answered.clone()),
                "same",
                Retry::Replay {
                    status: 200,
                    body: "{}".into(),
                },
            ),
            (record(answered), "other", Retry::OtherRequest),
            (record(Recorded::Unknown), "same", Retry::Settle),
            (record(Recorded::Unknown), "other", Retry::OtherRequest),
            (
                record(Recorded::InProgress {
                    lease_until_ms: 2000,
                }),
                "same",
                Retry::InFlight,
            ),
            (
                record(Recorded::InProgress {
                    lease_until_ms: 500,
                }),
                "same",
                Retry::TakeOver,
            ),
        ];
        for (record, digest, want) in table {
            assert_eq!(retry(&record, digest, 1000), want, "{record:?} {digest}");
        }
    }
}
