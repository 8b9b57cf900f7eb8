//! The AWS SDK as the functions use it: configuration from the environment with every operation
//! bounded by `DYNAMODB_TIMEOUT_MS`, one DynamoDB client for the token and audit tables, and the
//! process-wide choice of CA bundle for both TLS stacks.

use std::path::PathBuf;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::adapters::store::DynamoStore;
use crate::domain::config::Config;

/// The configured table, every DynamoDB operation (retries included) bounded by
/// DYNAMODB_TIMEOUT_MS.
pub fn dynamo_store(config: &Config, sdk: &SdkConfig) -> DynamoStore {
    DynamoStore::new(dynamodb_client(config, sdk), config.table.clone())
}

/// One DynamoDB client for the token table and the audit table, every operation (retries
/// included) bounded by DYNAMODB_TIMEOUT_MS.
pub fn dynamodb_client(config: &Config, sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
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
