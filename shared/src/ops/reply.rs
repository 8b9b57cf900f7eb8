//! An operation's answer: the body to send back, and how it came about.

use crate::domain::outcome::Settlement;

/// How an invoice request was answered, when not by WeChat's one answer to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Direct,
    /// WeChat reported the token dead; it was replaced and the call sent once more.
    RetriedAfterDeadToken,
    /// The invoices were queried one by one.
    Resolved(Resolution),
    /// A status change known by reading the invoices back.
    Settled(Settlement),
}

impl How {
    /// The log line's `source`.
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            How::Direct => None,
            How::RetriedAfterDeadToken => Some("retried_after_dead_token"),
            How::Resolved(r) => Some(r.as_str()),
            How::Settled(s) => Some(s.as_str()),
        }
    }
}

/// A JSON answer's body: text the gateway wrote, or WeChat's bytes passed on as they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Text(String),
    Bytes(Vec<u8>),
}

/// A JSON answer for the caller.
#[derive(Debug, Clone)]
pub struct Reply {
    pub body: Payload,
    pub how: How,
    /// What went wrong beside the answer (archive or audit trail), for the log line.
    pub fault: Option<String>,
}

impl Reply {
    /// Text the gateway wrote.
    pub fn text(body: String, how: How) -> Self {
        Reply::new(Payload::Text(body), how)
    }

    pub fn new(body: Payload, how: How) -> Self {
        Reply {
            body,
            how,
            fault: None,
        }
    }
}

/// Why the invoices were queried one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The batch order is not trusted (`BATCH_KEEPS_ORDER=false`) and card_ids repeat.
    SharedCardIds,
    /// WeCom does not grant this corp the batch query.
    After48001,
    /// WeChat's batch left invoices out: the rest cannot be told apart by position.
    AfterShortBatch,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::SharedCardIds => "single_queries_shared_card_ids",
            Resolution::After48001 => "single_queries_after_48001",
            Resolution::AfterShortBatch => "single_queries_after_short_batch",
        }
    }
}
