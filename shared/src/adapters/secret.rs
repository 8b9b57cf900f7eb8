//! The AppSecret a function fetches access_tokens with: given in the environment, or read from
//! Secrets Manager once per process, when the first refresh needs it rather than during init.
//! Most cold starts never fetch a token (getToken answers from the store; the invoice functions
//! fetch only to replace a dead token), so reading the secret at init would put a Secrets Manager
//! call (a TLS handshake with one more endpoint) in every cold start, and a Secrets Manager
//! outage would stop every new instance even though the stored token is still good. When WeChat
//! rejects the secret, it is read again (bounded, with backoff): an AppSecret reset then reaches
//! warm instances without a redeploy.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use tokio::sync::Mutex;

use crate::domain::config::{Secret, SecretSource};

/// Re-reads after WeChat rejected the secret are spaced by a backoff that starts here and doubles
/// while the secret read back is the rejected one, up to `REREAD_MAX`: an AppSecret reset is
/// picked up within seconds of Secrets Manager being updated, and a wrong secret stored there
/// costs a few reads an hour, not one per request.
const REREAD_MIN: Duration = Duration::from_secs(10);
const REREAD_MAX: Duration = Duration::from_secs(900);

pub struct AppSecret {
    /// Where to read it when not given; `None` for a function configured without one.
    source: Option<(String, SdkConfig)>,
    /// Held across a read, so concurrent refreshes read Secrets Manager once.
    cached: Mutex<Cached>,
}

struct Cached {
    value: Option<Secret>,
    last_reread: Option<Instant>,
    backoff: Duration,
}

impl Cached {
    fn new(value: Option<Secret>) -> Self {
        Cached {
            value,
            last_reread: None,
            backoff: REREAD_MIN,
        }
    }
}

/// Why the AppSecret is not available (names the variable, never holds the value).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(pub String);

impl AppSecret {
    /// From the configuration: a plain secret is kept; a Secrets Manager secret (ARN or name)
    /// is read later with `sdk`'s credentials and timeouts.
    pub fn from_config(source: Option<&SecretSource>, sdk: &SdkConfig) -> Self {
        match source {
            Some(SecretSource::Plain(s)) => Self::given(s.clone()),
            Some(SecretSource::SecretsManager { arn }) => AppSecret {
                source: Some((arn.clone(), sdk.clone())),
                cached: Mutex::new(Cached::new(None)),
            },
            None => Self::none(),
        }
    }

    pub fn given(secret: Secret) -> Self {
        AppSecret {
            source: None,
            cached: Mutex::new(Cached::new(Some(secret))),
        }
    }

    /// For a function that never fetches a token.
    pub fn none() -> Self {
        AppSecret {
            source: None,
            cached: Mutex::new(Cached::new(None)),
        }
    }

    /// The AppSecret, read on the first call. A failed read is not remembered: the next refresh
    /// tries again.
    pub async fn get(&self) -> Result<Secret, SecretError> {
        let mut cached = self.cached.lock().await;
        if let Some(v) = &cached.value {
            return Ok(v.clone());
        }
        let value = match &self.source {
            Some((id, sdk)) => read(id, sdk).await?,
            None => {
                return Err(SecretError(
                    "no AppSecret configured (WECHAT_SECRET or WECHAT_SECRET_ARN)".into(),
                ))
            }
        };
        cached.value = Some(value.clone());
        Ok(value)
    }

    /// WeChat rejected `rejected`: reads the secret again (an operator may have reset it and
    /// updated Secrets Manager). `Ok(Some(new))` when there is a different one to try; `Ok(None)`
    /// when there is nothing new (a given secret, the same value back, or a re-read within the
    /// backoff).
    pub async fn reread(&self, rejected: &Secret) -> Result<Option<Secret>, SecretError> {
        let Some((id, sdk)) = &self.source else {
            return Ok(None);
        };
        let mut cached = self.cached.lock().await;
        if let Some(current) = cached.value.as_ref().filter(|v| *v != rejected) {
            return Ok(Some(current.clone())); // another refresh already read the new one
        }
        if cached
            .last_reread
            .is_some_and(|at| at.elapsed() < cached.backoff)
        {
            return Ok(None);
        }
        cached.last_reread = Some(Instant::now());
        let value = read(id, sdk).await;
        if value.as_ref().is_ok_and(|v| v != rejected) {
            cached.backoff = REREAD_MIN;
            cached.value = value.as_ref().ok().cloned();
            return value.map(Some);
        }
        cached.backoff = (cached.backoff * 2).min(REREAD_MAX);
        value.map(|_| None)
    }
}

async fn read(secret_id: &str, sdk: &SdkConfig) -> Result<Secret, SecretError> {
    let out = aws_sdk_secretsmanager::Client::new(sdk)
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| {
            SecretError(format!(
                "reading WECHAT_SECRET_ARN: {}",
                DisplayErrorContext(&e)
            ))
        })?;
    out.secret_string()
        .ok_or_else(|| {
            SecretError("the secret named by WECHAT_SECRET_ARN has no SecretString".into())
        })
        .and_then(parse)
}

/// A secret stored as JSON may hold the AppSecret under `secret` (or `WECHAT_SECRET`); otherwise
/// the whole string is the AppSecret.
fn parse(text: &str) -> Result<Secret, SecretError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(SecretError(
            "the secret named by WECHAT_SECRET_ARN is empty".into(),
        ));
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) {
        return ["secret", "WECHAT_SECRET"]
            .iter()
            .find_map(|k| map.get(*k).and_then(|v| v.as_str()))
            .map(Secret::new)
            .ok_or_else(|| SecretError("the JSON secret has no `secret` field".into()));
    }
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_json_secrets() {
        assert_eq!(parse(" abc \n").unwrap().expose(), "abc");
        assert_eq!(parse(r#"{"secret":"s1"}"#).unwrap().expose(), "s1");
        assert_eq!(parse(r#"{"WECHAT_SECRET":"s2"}"#).unwrap().expose(), "s2");
        assert!(parse(r#"{"other":"x"}"#).is_err());
        assert!(parse("  ").is_err());
    }

    #[tokio::test]
    async fn given_and_missing() {
        let given = AppSecret::given(Secret::new("s"));
        assert_eq!(given.get().await.unwrap().expose(), "s");
        let err = AppSecret::none().get().await.unwrap_err();
        assert!(err.0.contains("WECHAT_SECRET_ARN"), "{err}");
        // A given secret has nowhere to be read again from.
        assert_eq!(given.reread(&Secret::new("s")).await, Ok(None));
    }
}
