//! The process's wiring: the configuration and the clients one Lambda process keeps for its
//! whole life (built once, before the runtime loop), the deployment's own app, and registered
//! apps built on the same clients.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use aws_config::SdkConfig;

use crate::adapters::archive::Archive;
use crate::adapters::audit::AuditLog;
use crate::adapters::aws::{dynamodb_client, load_aws};
use crate::adapters::budget::CallBudget;
use crate::adapters::claims::ClaimTable;
use crate::adapters::component_secret::ComponentSecretSource;
use crate::adapters::queue::RotationQueue;
use crate::adapters::secret::AppSecret;
use crate::adapters::store::{DynamoStore, TokenStore, COMPONENT_KEY};
use crate::adapters::wechat::WeChatClient;
use crate::domain::apps::{AppSettings, Kind};
use crate::domain::config::{self, Config, ConfigError, Platform, SecretSource};
use crate::domain::state::TokenState;
use crate::domain::sweep;
use crate::domain::timing::Timing;
use crate::tenant::app::AppRuntime;
use crate::token::TokenService;

/// Entries of the registry past which unknown names are forgotten.
const MAX_REMEMBERED: usize = 4096;

/// A registered app as this process knows it, and when (clock ms) it was read.
#[derive(Clone)]
pub(super) enum Registered {
    Found(Arc<AppRuntime>, u64),
    Missing(u64),
}

/// A shard of the registry's index as last read: its app keys (`None`: not complete), and when
/// (clock ms).
pub(super) type IndexRead = (Option<Arc<HashSet<String>>>, u64);

/// The registered apps this process has met, by key.
#[derive(Default)]
pub struct Registry {
    entries: Mutex<HashMap<String, Registered>>,
    /// When (clock ms) this process last read the table for an app that turned out unknown.
    pub(super) unknown_read_ms: AtomicU64,
    /// The shards of the registry's index this process has read, by shard key.
    pub(super) index: Mutex<HashMap<String, IndexRead>>,
}

impl Registry {
    pub(super) fn entries(&self) -> MutexGuard<'_, HashMap<String, Registered>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn shards(&self) -> MutexGuard<'_, HashMap<String, IndexRead>> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn remember(&self, key: String, entry: Registered) {
        let mut entries = self.entries();
        // Names that turned out unknown are remembered for a while only: a long-lived process
        // met by made-up names does not grow without bound.
        if entries.len() >= MAX_REMEMBERED {
            entries.retain(|_, r| matches!(r, Registered::Found(..)));
        }
        entries.insert(key, entry);
    }
}

pub struct Deployment {
    /// The deployment's own app (the `WECHAT_*` settings): requests naming no app reach it.
    own: AppRuntime,
    /// The token table, which is also the registry of apps.
    store: Arc<dyn TokenStore>,
    /// The AWS configuration registered apps read their secrets with.
    sdk: Option<SdkConfig>,
    /// Registered apps this process has met.
    pub(super) registry: Registry,
    /// The rotation queue the sweep sends due apps to (`ROTATION_QUEUE_URL`).
    pub queue: Option<RotationQueue>,
    /// The third-party platform's secrets, when the deployment is one (`COMPONENT_SECRET_ARN`).
    pub component: Option<Arc<ComponentSecretSource>>,
    /// The platform's own token service.
    component_tokens: Option<Arc<TokenService>>,
    /// `AWS_LAMBDA_FUNCTION_NAME`, for the log lines.
    pub function_name: Option<String>,
}

/// The deployment's own app is what most of the process is about.
impl std::ops::Deref for Deployment {
    type Target = AppRuntime;

    fn deref(&self) -> &AppRuntime {
        &self.own
    }
}

impl Deployment {
    /// Reads the environment, loads AWS configuration and reads the token item once (which opens
    /// the DynamoDB connection). The AppSecret is read when the first refresh needs it.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        let sdk = load_aws(&config).await;
        let secret = AppSecret::from_config(config.secret.as_ref(), &sdk);
        let deployment = Deployment::new(config, &sdk, secret);
        deployment.own.tokens.warm().await;
        Ok(deployment)
    }

    pub fn new(config: Config, sdk: &SdkConfig, secret: AppSecret) -> Self {
        let client = dynamodb_client(&config, sdk);
        let store = Arc::new(DynamoStore::new(client.clone(), config.table.clone()));
        let audit = config
            .audit_table
            .as_ref()
            .map(|t| AuditLog::new(client.clone(), t.clone(), config.audit_retention));
        let claims = config
            .claim_table
            .as_ref()
            .map(|t| ClaimTable::new(client.clone(), t.clone(), config.idempotency_ttl));
        let budget = config
            .claim_table
            .as_ref()
            .filter(|_| config.wechat_daily_budget > 0)
            .map(|t| CallBudget::new(client, t.clone(), config.wechat_daily_budget));
        let archive = config
            .archive
            .clone()
            .map(|a| Arc::new(Archive::new(a, sdk.clone())));
        let mut deployment = Deployment::with_store(config, store, secret);
        deployment.own.audit = audit;
        deployment.own.archive = archive;
        deployment.own.claims = claims;
        deployment.own.budget = budget;
        deployment.with_aws(sdk)
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
        let own = AppRuntime {
            config,
            settings: None,
            wechat,
            tokens,
            audit: None,
            archive: None,
            claims: None,
            budget: None,
        };
        Deployment {
            own,
            store,
            sdk: None,
            registry: Registry::default(),
            queue: None,
            component: None,
            component_tokens: None,
            function_name: std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
        }
    }

    /// With AWS for what the store does not cover: registered apps' secrets, the rotation queue
    /// and the platform's secrets (a deployment built on another store, in tests).
    pub fn with_aws(mut self, sdk: &SdkConfig) -> Self {
        self.queue = RotationQueue::from_config(&self.own.config, sdk);
        self.component = self
            .own
            .config
            .component_secret_arn
            .clone()
            .map(|arn| Arc::new(ComponentSecretSource::new(arn, sdk.clone())));
        self.component_tokens = self.component.clone().map(|secrets| {
            let config = component_config(&self.own.config);
            let wechat = self
                .own
                .wechat
                .for_component(&config, secrets, self.store.clone());
            Arc::new(TokenService::new(
                self.store.clone(),
                COMPONENT_KEY,
                wechat,
                config.timing,
            ))
        });
        self.sdk = Some(sdk.clone());
        self
    }

    /// The third-party platform's own token (`component_access_token`), kept in the token
    /// table's `COMPONENT_KEY` item like any app's: single flight under the lock, rotated by the
    /// schedule, the same half-failure rules. `None`: the deployment is not a platform.
    pub fn component_tokens(&self) -> Option<&Arc<TokenService>> {
        self.component_tokens.as_ref()
    }

    /// The deployment's own app.
    pub fn own(&self) -> &AppRuntime {
        &self.own
    }

    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.store
    }

    /// A registered app wired like the own one (HTTP connections, table, audit and archive
    /// shared) with its own settings, secret and token state.
    pub fn registered_app(&self, settings: AppSettings, state: &TokenState) -> AppRuntime {
        let config = registered_config(&self.own.config, &settings);
        let secret = match &self.sdk {
            Some(sdk) => AppSecret::from_config(config.secret.as_ref(), sdk),
            None => AppSecret::from_config(None, &SdkConfig::builder().build()),
        };
        let wechat = match settings.authorization {
            Some(_) => self
                .own
                .wechat
                .for_authorized(&config, self.component.clone()),
            None => self.own.wechat.for_app(&config, secret),
        };
        let key = settings.key();
        let mut tokens = TokenService::new(self.store.clone(), key, wechat.clone(), config.timing);
        if settings.authorization.is_some() {
            let platform = self.component_tokens.clone().ok_or_else(|| {
                "this deployment is no longer a third-party platform (COMPONENT_SECRET_ARN)".into()
            });
            tokens = tokens.authorized_by(platform);
        }
        tokens.seed(state);
        AppRuntime {
            config,
            settings: Some(settings),
            wechat,
            tokens,
            audit: self.own.audit.clone(),
            archive: self.own.archive.clone(),
            claims: self.own.claims.clone(),
            budget: self.own.budget.clone(),
        }
    }
}

/// A registered app's timing: the deployment's, with tickets as its kind keeps them, and the
/// rotation spread when the sweep sends it to the queue (`domain::sweep`).
pub fn registered_timing(own: &Config, kind: Kind) -> Timing {
    let mut timing = own.timing;
    timing.tickets = kind.tickets();
    // A WeCom agent's pages call agentConfig (its key names the agent).
    timing.agent_ticket = kind == Kind::Work;
    if own.rotation_queue.is_some() {
        timing = sweep::with_spread(timing, own.rotation_spread);
    }
    timing
}

/// The platform's configuration: the deployment's, on the Official Accounts' host (or the one
/// configured: a proxy, the simulator), no tickets; its appid is read with its secrets.
fn component_config(own: &Config) -> Config {
    let mut config = own.clone();
    if config.api_base == config::WORK_API_BASE {
        config.api_base = config::MP_API_BASE.into();
    }
    config.platform = Platform::Mp;
    config.token_api = config::TokenApi::Classic;
    config.appid = COMPONENT_KEY.to_string();
    config.agentid = None;
    config.timing.tickets = false;
    config.timing.agent_ticket = false;
    config
}

/// A registered app's configuration: the deployment's, with the app's platform, ids, origins,
/// page URL and secret.
fn registered_config(own: &Config, settings: &AppSettings) -> Config {
    let mut config = own.clone();
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
            .filter(|_| own.api_backup_base.is_some());
    }
    config.platform = platform;
    config.token_api = settings.token_api;
    config.appid = settings.appid.clone();
    config.agentid = settings
        .agentid
        .clone()
        .filter(|_| settings.kind == Kind::Work);
    config.allowed_origins = settings.origins.clone();
    // No page URL of its own: getToken then needs the caller's `url`.
    config.jssdk_url = settings.jssdk_url.clone().unwrap_or_default();
    config.timing = registered_timing(own, settings.kind);
    config.secret = Some(SecretSource::SecretsManager {
        arn: format!("{}{}", config.app_secret_prefix, settings.secret_name),
    });
    config
}
