//! Wiring: the configuration and the clients one Lambda process keeps for its whole life
//! (built once, before the runtime loop), and the process-wide TLS and credential choices.

use std::path::PathBuf;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::archive::Archive;
use crate::audit::AuditLog;
use crate::config::{Config, ConfigError};
use crate::secret::AppSecret;
use std::sync::Arc;

use crate::store::{DynamoStore, TokenStore};
use crate::token::TokenService;
use crate::wechat::WeChatClient;

pub struct App {
    pub config: Config,
    pub wechat: WeChatClient,
    pub tokens: TokenService,
    /// The audit trail of status changes, when `AUDIT_TABLE` is set.
    pub audit: Option<AuditLog>,
    /// The PDF archive, when `ARCHIVE_BUCKET` is set.
    pub archive: Option<Archive>,
    /// `AWS_LAMBDA_FUNCTION_NAME`, for the log lines.
    pub function_name: Option<String>,
}

impl App {
    /// Reads the environment, loads AWS configuration and reads the token item once (which opens
    /// the DynamoDB connection). The AppSecret is read when the first refresh needs it.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        let sdk = load_aws(&config).await;
        let secret = AppSecret::from_config(config.secret.as_ref(), &sdk);
        let app = App::new(config, &sdk, secret);
        app.tokens.warm().await;
        Ok(app)
    }

    pub fn new(config: Config, sdk: &SdkConfig, secret: AppSecret) -> Self {
        let client = dynamodb_client(&config, sdk);
        let store = Arc::new(DynamoStore::new(client.clone(), config.table.clone()));
        let audit = config
            .audit_table
            .as_ref()
            .map(|t| AuditLog::new(client, t.clone(), config.audit_retention));
        let archive = config.archive.clone().map(|a| Archive::new(a, sdk.clone()));
        App {
            audit,
            archive,
            ..App::with_store(config, store, secret)
        }
    }

    /// With another store (the memory store, or one wrapped with injected faults, in tests).
    pub fn with_store(config: Config, store: Arc<dyn TokenStore>, secret: AppSecret) -> Self {
        let wechat = WeChatClient::new(&config, secret);
        let tokens = TokenService::new(store, config.appid.clone(), wechat.clone(), config.timing);
        App {
            config,
            wechat,
            tokens,
            audit: None,
            archive: None,
            function_name: std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
        }
    }
}

/// The configured table, every DynamoDB operation (retries included) bounded by
/// DYNAMODB_TIMEOUT_MS.
pub fn dynamo_store(config: &Config, sdk: &SdkConfig) -> DynamoStore {
    DynamoStore::new(dynamodb_client(config, sdk), config.table.clone())
}

/// One DynamoDB client for the token table and the audit table, every operation (retries
/// included) bounded by DYNAMODB_TIMEOUT_MS.
fn dynamodb_client(config: &Config, sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let ddb_config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .timeout_config(timeouts(config))
        .build();
    aws_sdk_dynamodb::Client::from_conf(ddb_config)
}

/// Makes both TLS stacks (the AWS SDK's and the WeChat client's, which find roots through
/// rustls-native-certs) read the system's CA bundle file alone. Left alone, they read the bundle
/// and then every file in /etc/ssl/certs and /etc/pki/tls/certs, on Debian the same roots again
/// one file each: 3.5 ms of a 12 ms cold start. An explicit SSL_CERT_FILE or SSL_CERT_DIR is kept;
/// a host without a bundle file keeps the default search. Linux only: elsewhere the defaults are
/// the platform's own store. Changes the environment, so it must run before any other thread.
pub fn prefer_ca_bundle_file() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let explicit = ["SSL_CERT_FILE", "SSL_CERT_DIR"].map(|k| std::env::var_os(k).is_some());
    if let Some(bundle) = ca_bundle_to_use(explicit, openssl_probe::probe().cert_file) {
        std::env::set_var("SSL_CERT_FILE", bundle);
    }
}

/// The bundle file to name in SSL_CERT_FILE, given whether SSL_CERT_FILE and SSL_CERT_DIR are
/// set and the bundle found on the host: none when the operator chose either.
fn ca_bundle_to_use(explicit: [bool; 2], found: Option<PathBuf>) -> Option<PathBuf> {
    if explicit.contains(&true) {
        None
    } else {
        found
    }
}

/// AWS configuration from the environment (credentials, region, `AWS_ENDPOINT_URL_DYNAMODB`),
/// with every operation bounded by `DYNAMODB_TIMEOUT_MS`.
pub async fn load_aws(config: &Config) -> SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts(config));
    // Lambda hands the function's credentials in the environment, the first place the default
    // chain looks. Naming that source skips building the rest of the chain (an STS client for
    // web identity, ECS and IMDS providers) during init.
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    loader.load().await
}

fn timeouts(config: &Config) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(config.timing.dynamodb_timeout)
        .operation_timeout(config.timing.dynamodb_timeout)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_bundle_file_is_named_only_when_the_operator_chose_nothing() {
        let found = Some(PathBuf::from("/etc/pki/tls/certs/ca-bundle.crt"));
        assert_eq!(ca_bundle_to_use([false, false], found.clone()), found);
        assert_eq!(ca_bundle_to_use([true, false], found.clone()), None);
        assert_eq!(ca_bundle_to_use([false, true], found.clone()), None);
        assert_eq!(ca_bundle_to_use([false, false], None), None);
    }
}
