//! Timeouts, the refresh lock's clock and request limits, with their defaults. Their bounds are
//! checked where they are read (`config`).

use std::time::Duration;

/// Timeouts and the refresh lock's clock. All bounded; the Lambda timeout in the template is longer.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Per call to WeChat (connect + answer).
    pub wechat_timeout: Duration,
    /// Per DynamoDB operation, retries included.
    pub dynamodb_timeout: Duration,
    /// How long a refresh holds the lock at most; longer than one refresh (three WeChat calls).
    pub lease: Duration,
    /// How long a request waits for another instance's refresh before answering 503.
    pub wait: Duration,
    /// The scheduled refresh rotates credentials that have less than this left: the hour to the
    /// next sweep and the lazy margin (registered apps rotated through the queue add the
    /// rotation spread: `domain::sweep`).
    pub rotate_ahead: Duration,
    /// A request refreshes itself only when the stored access_token or jsapi_ticket has less than
    /// this left (normally the schedule got there first).
    pub lazy_margin: Duration,
    /// How long WeChat still honours the previous access_token after a refresh.
    pub grace: Duration,
    /// Forced refreshes (`type=manual`, or a token WeChat reports dead) happen at most once in
    /// this period; inside it the stored token is answered without calling WeChat.
    pub cooldown: Duration,
    /// How long an instance answers from its in-process copy of the state without reading the
    /// store; shorter than `grace`, so a token another instance replaced is still honoured.
    pub cache_ttl: Duration,
    /// Kept back from Lambda's deadline to write the answer.
    pub deadline_reserve: Duration,
    /// A request's time when the runtime gives no deadline (handlers called directly).
    pub request_budget: Duration,
    /// Whether the app keeps JS-SDK tickets (it signs pages); mini programs need none, so their
    /// state is whole with an access_token alone.
    pub tickets: bool,
    /// Whether the app is a WeCom agent whose pages also call `agentConfig`: its agent ticket
    /// (`/cgi-bin/ticket/get?type=agent_config`) is kept, and ages, with the other two.
    pub agent_ticket: bool,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            wechat_timeout: Duration::from_millis(2500),
            dynamodb_timeout: Duration::from_millis(2000),
            lease: Duration::from_millis(10_000),
            wait: Duration::from_millis(5000),
            rotate_ahead: Duration::from_secs(3900),
            lazy_margin: Duration::from_secs(300),
            grace: Duration::from_secs(300),
            cooldown: Duration::from_secs(60),
            cache_ttl: Duration::from_secs(30),
            deadline_reserve: Duration::from_millis(500),
            request_budget: Duration::from_millis(19_500),
            tickets: true,
            agent_ticket: false,
        }
    }
}

/// Request size limits, checked before anything is sent to WeChat.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            max_items: 100,
        }
    }
}
