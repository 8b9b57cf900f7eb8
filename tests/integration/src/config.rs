//! The gateway's configuration in tests: one builder, [`TestConfig`], for an in-process `Deployment`, a
//! `Config` alone, or the environment of a gateway process.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use wxinvoice::adapters::secret::AppSecret;
use wxinvoice::adapters::store::faults::FaultyStore;
use wxinvoice::domain::config::Config;
use wxinvoice::Deployment;

use crate::{moto_endpoint, PAGE_URL};

/// The WeChat platform and token API a gateway is configured for, with the simulator's
/// credentials for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    /// Official Accounts, `/cgi-bin/token`.
    Mp,
    /// Official Accounts, `/cgi-bin/stable_token`.
    MpStable,
    /// WeCom.
    Work,
}

impl Platform {
    /// The platform the suite runs for: `WECHAT_PLATFORM=work` runs it against WeCom, otherwise
    /// Official Accounts (`WECHAT_TOKEN_API=stable` selects stable_token there).
    pub fn current() -> Platform {
        let var = |k: &str, v: &str| std::env::var(k).is_ok_and(|x| x == v);
        if var("WECHAT_PLATFORM", "work") {
            Platform::Work
        } else if var("WECHAT_TOKEN_API", "stable") {
            Platform::MpStable
        } else {
            Platform::Mp
        }
    }

    /// AppID (Official Account) or corpid (WeCom) of the simulator's app.
    pub fn appid(self) -> &'static str {
        match self {
            Platform::Work => "ww5im0c0rp00000001",
            _ => "wxa185587d4fc35145",
        }
    }

    pub fn secret(self) -> &'static str {
        match self {
            Platform::Work => "sim-corpsecret",
            _ => "sim-appsecret",
        }
    }

    pub fn paths(self) -> &'static wxinvoice::adapters::wechat::Paths {
        match self {
            Platform::Work => &wxinvoice::adapters::wechat::WORK_PATHS,
            _ => &wxinvoice::adapters::wechat::MP_PATHS,
        }
    }

    /// The simulator path that issues its access tokens.
    pub fn token_path(self) -> &'static str {
        match self {
            Platform::MpStable => wxinvoice::adapters::wechat::MP_STABLE_TOKEN_PATH,
            _ => self.paths().token,
        }
    }

    /// The variables that choose it: platform, token API, app and secret.
    pub fn vars(self) -> [(&'static str, &'static str); 4] {
        let (platform, token_api) = match self {
            Platform::Mp => ("mp", "classic"),
            Platform::MpStable => ("mp", "stable"),
            Platform::Work => ("work", "classic"),
        };
        [
            ("WECHAT_PLATFORM", platform),
            ("WECHAT_TOKEN_API", token_api),
            ("WECHAT_APPID", self.appid()),
            ("WECHAT_SECRET", self.secret()),
        ]
    }
}

/// The configuration a deployment would have (its environment variables), pointed at a simulator
/// and a table, for the platform the suite runs for; then overrides.
#[derive(Clone, Debug)]
pub struct TestConfig {
    vars: BTreeMap<String, String>,
}

impl TestConfig {
    pub fn new(api_base: &str, table: &str) -> TestConfig {
        let vars = Platform::current().vars().into_iter().chain([
            ("WECHAT_API_BASE", api_base),
            ("WECHAT_ALLOW_HTTP", "true"),
            ("TOKEN_TABLE", table),
            ("JSSDK_URL", PAGE_URL),
        ]);
        TestConfig {
            vars: vars.map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    /// These variables set (environment variable names), over what is there.
    pub fn with(mut self, overrides: &[(&str, &str)]) -> TestConfig {
        for (k, v) in overrides {
            self.vars.insert(k.to_string(), v.to_string());
        }
        self
    }

    /// The gateway's `Config`, as it reads it at start (panics where it would refuse to start).
    pub fn build(&self) -> Config {
        Config::from_lookup(|k| self.vars.get(k).cloned()).expect("test configuration is valid")
    }

    /// An instance of the gateway (its own DynamoDB and HTTP clients) on `sdk`.
    pub fn app(&self, sdk: &SdkConfig) -> Deployment {
        let config = self.build();
        let secret = AppSecret::from_config(config.secret.as_ref(), sdk);
        Deployment::new(config, sdk, secret)
    }

    /// An instance whose store (DynamoDB, the configured table) is wrapped with injected faults.
    pub fn faulty_app(&self, sdk: &SdkConfig) -> (Deployment, FaultyStore) {
        let config = self.build();
        let dynamo = Arc::new(wxinvoice::adapters::aws::dynamo_store(&config, sdk));
        let store = FaultyStore::new(dynamo);
        let secret = AppSecret::from_config(config.secret.as_ref(), sdk);
        let app = Deployment::with_store(config, Arc::new(store.clone()), secret).with_aws(sdk);
        (app, store)
    }

    /// The environment of a gateway process (a Lambda instance): these variables, and moto's
    /// endpoint with dummy credentials.
    pub fn process_env(&self) -> Vec<(String, String)> {
        let aws = [
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT_URL_DYNAMODB", moto_endpoint()),
        ];
        let aws = aws.into_iter().map(|(k, v)| (k.to_string(), v));
        self.vars.clone().into_iter().chain(aws).collect()
    }
}
