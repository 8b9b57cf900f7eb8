//! Wiring: the configuration and the clients one Lambda process keeps for its whole life
//! (built once, before the runtime loop), and the process-wide TLS and credential choices.

use std::path::PathBuf;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::archive::Archive;
use crate::audit::AuditLog;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::apps::{self, AppSettings};
use crate::config::{self, Config, ConfigError, Platform, SecretSource};
use crate::deadline::Deadline;
use crate::envelope::ApiError;
use crate::secret::AppSecret;
use crate::store::TokenState;
use std::sync::Arc;

use crate::store::{DynamoStore, TokenStore};
use crate::token::TokenService;
use crate::wechat::WeChatClient;

pub struct App {
    pub config: Config,
    /// A registered app's settings; none for the deployment's own app.
    pub settings: Option<AppSettings>,
    pub wechat: WeChatClient,
    pub tokens: TokenService,
    /// The audit trail of status changes, when `AUDIT_TABLE` is set.
    pub audit: Option<AuditLog>,
    /// The PDF archive, when `ARCHIVE_BUCKET` is set.
    pub archive: Option<Arc<Archive>>,
    /// The token table, and the AWS configuration registered apps read their secrets with.
    store: Arc<dyn TokenStore>,
    sdk: Option<SdkConfig>,
    /// Registered apps this process has met, by key (see `resolve`).
    registered: Mutex<HashMap<String, Registered>>,
    /// When (clock ms) this process last read the table for an app that turned out unknown.
    unknown_read_ms: AtomicU64,
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
        let archive = config
            .archive
            .clone()
            .map(|a| Arc::new(Archive::new(a, sdk.clone())));
        App {
            audit,
            archive,
            sdk: Some(sdk.clone()),
            ..App::with_store(config, store, secret)
        }
    }

    /// With another store (the memory store, or one wrapped with injected faults, in tests).
    pub fn with_store(config: Config, store: Arc<dyn TokenStore>, secret: AppSecret) -> Self {
        let wechat = WeChatClient::new(&config, secret);
        let tokens = TokenService::new(
            store.clone(),
            config.appid.clone(),
            wechat.clone(),
            config.timing,
        );
        App {
            config,
            settings: None,
            wechat,
            tokens,
            audit: None,
            archive: None,
            store,
            sdk: None,
            registered: Mutex::default(),
            unknown_read_ms: AtomicU64::new(0),
            function_name: std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
        }
    }
}

/// Entries of the registry past which unknown names are forgotten.
const MAX_REMEMBERED: usize = 4096;

/// A registered app as this process knows it.
#[derive(Clone)]
enum Registered {
    Found(Arc<App>, u64),
    Missing(u64),
}

/// The app a request is for: this deployment's own, or a registered one.
pub enum Tenant<'a> {
    Own(&'a App),
    Registered(Arc<App>),
}

impl std::ops::Deref for Tenant<'_> {
    type Target = App;

    fn deref(&self) -> &App {
        match self {
            Tenant::Own(app) => app,
            Tenant::Registered(app) => app,
        }
    }
}

impl App {
    /// The app named by `appid` (and `agentid`, for a WeCom agent): this deployment's own when
    /// none is named or it is its own appid, otherwise a registered app, read from the table
    /// the first time (one GetItem: settings and token state together) and again after
    /// `CACHE_TTL_SECS`. An unknown or disabled app is refused before any WeChat call; unknown
    /// names cost at most one table read per second per process.
    pub async fn resolve(
        &self,
        appid: Option<&str>,
        agentid: Option<&str>,
        deadline: &Deadline,
    ) -> Result<Tenant<'_>, ApiError> {
        let Some(appid) = appid else {
            return Ok(Tenant::Own(self));
        };
        if appid == self.config.appid && agentid.is_none() {
            return Ok(Tenant::Own(self));
        }
        let key = apps::key(appid, agentid);
        let now = self.tokens.clock().now_ms();
        let ttl = self.config.timing.cache_ttl.as_millis() as u64;
        let cached = self.registry().get(&key).cloned();
        let fresh = |at: u64| now < at.saturating_add(ttl);
        let known = match cached {
            Some(Registered::Found(app, at)) if fresh(at) => Some(app),
            Some(Registered::Missing(at)) if fresh(at) => None,
            previous => {
                // Within a second of reading the table for a name that turned out unknown,
                // names this process has not seen are refused unread (a flood of made-up
                // appids costs one read a second).
                let last_miss = self.unknown_read_ms.load(Ordering::Relaxed);
                let first_sight = previous.is_none();
                if first_sight && now < last_miss.saturating_add(1000) {
                    // Not "no such app": this name was not looked up. Retryable.
                    return Err(ApiError::Throttled(
                        "lookups of unknown apps; try again in a second".into(),
                    ));
                }
                let state = self.tokens.load_key(&key, deadline).await?;
                let found = match (state.settings.clone().map(|s| *s), previous) {
                    (None, _) => None,
                    // Same settings: keep the instance (its token cache, its secret).
                    (Some(s), Some(Registered::Found(app, _)))
                        if app.settings.as_ref() == Some(&s) =>
                    {
                        app.tokens.seed(&state);
                        Some(app)
                    }
                    (Some(s), _) => Some(Arc::new(self.registered_app(s, &state))),
                };
                let entry = match &found {
                    Some(app) => Registered::Found(app.clone(), now),
                    None => {
                        self.unknown_read_ms.store(now, Ordering::Relaxed);
                        Registered::Missing(now)
                    }
                };
                let mut registry = self.registry();
                // Names that turned out unknown are remembered for a while only: a long-lived
                // process met by made-up names does not grow without bound.
                if registry.len() >= MAX_REMEMBERED {
                    registry.retain(|_, r| matches!(r, Registered::Found(..)));
                }
                registry.insert(key.clone(), entry);
                drop(registry);
                found
            }
        };
        match known {
            None => Err(no_such_app(&key, false)),
            Some(app) if !app.settings.as_ref().is_some_and(|s| s.enabled) => {
                Err(no_such_app(&key, true))
            }
            Some(app) => Ok(Tenant::Registered(app)),
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<String, Registered>> {
        self.registered.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A registered app wired like this one (HTTP connections, table, audit and archive shared)
    /// with its own settings, secret and token state.
    pub fn registered_app(&self, settings: AppSettings, state: &TokenState) -> App {
        let mut config = self.config.clone();
        let platform = settings.kind.platform();
        // A deployment on WeChat's own hosts uses each platform's; a custom host (a proxy, the
        // simulator) serves every app.
        if [config::MP_API_BASE, config::WORK_API_BASE].contains(&config.api_base.as_str()) {
            config.api_base = match platform {
                Platform::Mp => config::MP_API_BASE.into(),
                Platform::Work => config::WORK_API_BASE.into(),
            };
            config.api_backup_base = (platform == Platform::Mp)
                .then(|| config::MP_API_BACKUP_BASE.to_string())
                .filter(|_| self.config.api_backup_base.is_some());
        }
        config.platform = platform;
        config.token_api = settings.token_api;
        config.appid = settings.appid.clone();
        config.allowed_origins = settings.origins.clone();
        // No page URL of its own: getToken then needs the caller's `url`.
        config.jssdk_url = settings.jssdk_url.clone().unwrap_or_default();
        config.timing.tickets = settings.kind.tickets();
        let source = SecretSource::SecretsManager {
            arn: format!("{}{}", config.app_secret_prefix, settings.secret_name),
        };
        config.secret = Some(source.clone());
        let secret = match &self.sdk {
            Some(sdk) => AppSecret::from_config(Some(&source), sdk),
            None => AppSecret::from_config(None, &SdkConfig::builder().build()),
        };
        let wechat = self.wechat.for_app(&config, secret);
        let key = settings.key();
        let tokens = TokenService::new(self.store.clone(), key, wechat.clone(), config.timing);
        tokens.seed(state);
        App {
            config,
            settings: Some(settings),
            wechat,
            tokens,
            audit: self.audit.clone(),
            archive: self.archive.clone(),
            function_name: self.function_name.clone(),
            store: self.store.clone(),
            sdk: self.sdk.clone(),
            registered: Mutex::default(),
            unknown_read_ms: AtomicU64::new(0),
        }
    }

    /// The registered app `settings` describes, as this process knows it (the same instance as
    /// requests use, when the settings have not changed), its state seeded with `state`.
    pub fn registered_runtime(&self, settings: AppSettings, state: &TokenState) -> Arc<App> {
        let key = settings.key();
        let now = self.tokens.clock().now_ms();
        if let Some(Registered::Found(app, _)) = self.registry().get(&key) {
            if app.settings.as_ref() == Some(&settings) {
                app.tokens.seed(state);
                return app.clone();
            }
        }
        let app = Arc::new(self.registered_app(settings, state));
        self.registry()
            .insert(key, Registered::Found(app.clone(), now));
        app
    }

    /// Every registered app's item (settings and token state).
    pub async fn registered_apps(&self) -> Result<Vec<(String, TokenState)>, ApiError> {
        Ok(self.store.apps().await?)
    }
}

fn no_such_app(key: &str, disabled: bool) -> ApiError {
    let name = key.trim_start_matches("app#").replace('#', " agent ");
    ApiError::NoSuchApp {
        disabled,
        errmsg: if disabled {
            format!("appid: app {name} is disabled in this deployment")
        } else {
            format!("appid: no app {name} in this deployment")
        },
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
