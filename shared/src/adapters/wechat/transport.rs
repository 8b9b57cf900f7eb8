//! One call to WeChat over HTTP: the API host, and once more the disaster-recovery host when that
//! can mend the failure; every attempt cut at the request's deadline and counted in its metrics.

use serde_json::Value;

use super::client::{WeChatClient, MIN_CALL};
use super::error::{Call, WeChatError};
use crate::adapters::metrics;
use crate::domain::deadline::Deadline;
use crate::domain::errcode::WeChatErrorBody;

impl WeChatClient {
    /// Sends to the API host and, when that fails in a way the backup host can mend, once more
    /// to the backup: a connection that could not be made (the request never left) for any
    /// call; a timeout or a 5xx only for a call that is safe to repeat.
    pub(super) async fn send(
        &self,
        call: Call,
        deadline: &Deadline,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, WeChatError> {
        let first = self.send_to(&self.base, call, deadline, &build).await;
        let (Err(e), Some(backup)) = (&first, &self.backup) else {
            return first;
        };
        let mendable = match e {
            WeChatError::NotSent(_) => true,
            WeChatError::Timeout(_) | WeChatError::Unreachable(_) => call == Call::Read,
            _ => false,
        };
        if !mendable || !deadline.allows(self.timeout) {
            return first;
        }
        self.send_to(backup, call, deadline, &build).await
    }

    /// One attempt against `base`, cut at the deadline: checks the status and that the answer is
    /// a JSON object, and splits off errcode ≠ 0; a successful answer is returned as WeChat sent
    /// it.
    async fn send_to(
        &self,
        base: &str,
        call: Call,
        deadline: &Deadline,
        build: &impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, WeChatError> {
        let timeout = deadline.bound(self.timeout);
        // A status change is not started unless it can run its whole course: cut short, its
        // outcome would be unknown.
        if timeout < MIN_CALL || (call == Call::Change && timeout < self.timeout) {
            return Err(WeChatError::NoTime);
        }
        let started = std::time::Instant::now();
        let answer = async {
            let resp = build(self.http()?, base)
                .timeout(timeout)
                .send()
                .await
                .map_err(classify)?;
            let status = resp.status();
            let bytes = Vec::from(resp.bytes().await.map_err(classify)?);
            Ok::<_, WeChatError>((status, bytes))
        }
        .await;
        metrics::wechat_call(started.elapsed());
        let (status, bytes) = answer?;
        if !status.is_success() {
            return Err(WeChatError::Unreachable(format!(
                "HTTP {}",
                status.as_u16()
            )));
        }
        // Only errcode is read here: a successful invoice answer goes back byte for byte, so
        // it is not built into a JSON tree on every request.
        #[derive(serde::Deserialize)]
        struct Head {
            errcode: Option<Value>,
        }
        let not_json = || WeChatError::Unreachable("answer is not a JSON object".into());
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(not_json());
        }
        let head: Head = serde_json::from_slice(&bytes).map_err(|_| not_json())?;
        match head.errcode.as_ref().map(Value::as_i64) {
            None | Some(Some(0)) => Ok(bytes),
            Some(Some(errcode)) => {
                let body = serde_json::from_slice(&bytes).map_err(|_| not_json())?;
                Err(WeChatError::Api(WeChatErrorBody { errcode, body }))
            }
            Some(None) => Err(WeChatError::Unreachable("errcode is not a number".into())),
        }
    }
}

/// Describes a transport error without its URL (which holds secrets).
fn classify(e: reqwest::Error) -> WeChatError {
    let (timeout, connect) = (e.is_timeout(), e.is_connect());
    // The cause chain names the failure (refused, reset, DNS) and holds no URL.
    let mut causes = String::new();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        causes.push_str(": ");
        causes.push_str(&c.to_string());
        cause = c.source();
    }
    let msg = format!("{}{causes}", e.without_url());
    if connect {
        WeChatError::NotSent(msg)
    } else if timeout {
        WeChatError::Timeout(msg)
    } else {
        WeChatError::Unreachable(msg)
    }
}
