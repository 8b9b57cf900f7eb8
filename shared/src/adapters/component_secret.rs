//! The third-party platform's secrets: its component appid, component AppSecret, message token
//! and EncodingAESKey, kept together in one Secrets Manager secret (JSON) named by
//! `COMPONENT_SECRET_ARN`, never in the environment. Read once per process, when the first push
//! (or component call) needs them.

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::adapters::secret::SecretError;
use crate::adapters::wechat::message_crypto::MessageKey;
use crate::domain::config::Secret;

/// The platform's secrets, as read.
#[derive(Debug)]
pub struct ComponentSecrets {
    pub appid: String,
    pub app_secret: Secret,
    /// The message token (消息校验Token) pushes are signed with.
    pub token: Secret,
    pub key: MessageKey,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    component_appid: String,
    component_appsecret: String,
    token: String,
    encoding_aes_key: String,
}

/// Reads the JSON secret: `{"component_appid", "component_appsecret", "token",
/// "encoding_aes_key"}`. The error names the field, never a value.
pub fn parse(text: &str) -> Result<ComponentSecrets, SecretError> {
    let stored: Stored = serde_json::from_str(text).map_err(|e| {
        SecretError(format!(
            "the secret named by COMPONENT_SECRET_ARN is not the platform's JSON \
             (component_appid, component_appsecret, token, encoding_aes_key): line {} column {}",
            e.line(),
            e.column()
        ))
    })?;
    let key = MessageKey::from_encoding_aes_key(stored.encoding_aes_key.trim())
        .map_err(|e| SecretError(format!("encoding_aes_key: {e}")))?;
    let nonempty = |name: &str, v: &str| {
        (!v.trim().is_empty())
            .then_some(())
            .ok_or_else(|| SecretError(format!("{name} is empty")))
    };
    nonempty("component_appid", &stored.component_appid)?;
    nonempty("component_appsecret", &stored.component_appsecret)?;
    nonempty("token", &stored.token)?;
    Ok(ComponentSecrets {
        appid: stored.component_appid.trim().to_string(),
        app_secret: Secret::new(stored.component_appsecret.trim()),
        token: Secret::new(stored.token.trim()),
        key,
    })
}

/// Where the platform's secrets come from, read once.
pub struct ComponentSecretSource {
    arn: String,
    sdk: SdkConfig,
    read: OnceCell<Arc<ComponentSecrets>>,
}

impl ComponentSecretSource {
    pub fn new(arn: String, sdk: SdkConfig) -> Self {
        ComponentSecretSource {
            arn,
            sdk,
            read: OnceCell::new(),
        }
    }

    /// The secrets (a failed read is tried again by the next call).
    pub async fn get(&self) -> Result<Arc<ComponentSecrets>, SecretError> {
        self.read
            .get_or_try_init(|| async {
                let out = aws_sdk_secretsmanager::Client::new(&self.sdk)
                    .get_secret_value()
                    .secret_id(&self.arn)
                    .send()
                    .await
                    .map_err(|e| {
                        SecretError(format!(
                            "reading COMPONENT_SECRET_ARN: {}",
                            DisplayErrorContext(&e)
                        ))
                    })?;
                let text = out.secret_string().ok_or_else(|| {
                    SecretError(
                        "the secret named by COMPONENT_SECRET_ARN has no SecretString".into(),
                    )
                })?;
                parse(text).map(Arc::new)
            })
            .await
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platforms_json_is_read_and_errors_name_no_value() {
        let good = r#"{"component_appid":"wxcomp","component_appsecret":"s3cret","token":"tok","encoding_aes_key":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}"#;
        let s = parse(good).unwrap();
        assert_eq!(
            (s.appid.as_str(), s.app_secret.expose(), s.token.expose()),
            ("wxcomp", "s3cret", "tok")
        );
        for (bad, names) in [
            (r#"{"component_appid":"wxcomp"}"#, "not the platform's JSON"),
            ("s3cret", "not the platform's JSON"),
            (
                &good.replace("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "short"),
                "encoding_aes_key",
            ),
            (&good.replace("\"tok\"", "\" \""), "token is empty"),
            (
                &good.replace("}", r#","extra":"x"}"#),
                "not the platform's JSON",
            ),
        ] {
            let e = parse(bad).unwrap_err().0;
            assert!(e.contains(names), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }
}
