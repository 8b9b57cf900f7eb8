//! [`Harness`]: a simulator and a fresh table, the gateway instance the tests call, more
//! instances on the same table and simulator, and what the table and the simulator hold.

use std::time::Duration;

use aws_config::SdkConfig;
use serde_json::{json, Value};
use wechat_sim::{JsapiSignature, Running, Sim, SimApp};
use wxinvoice::adapters::store::faults::FaultyStore;
use wxinvoice::adapters::store::TokenStore;
use wxinvoice::Deployment;

use crate::{appid, aws, create_secret, create_table, is_work, jsapi_ticket_url, paths};
use crate::{deadline, token_path, Platform, TestConfig};
use wxinvoice::token::Mode;

pub struct Harness {
    /// The simulator serving this harness (its in-process state: [`Harness::calls`]).
    server: Running,
    /// A client of the simulator.
    pub sim: wechat_sim::Client,
    pub sdk: SdkConfig,
    pub table: String,
    /// The gateway instance the endpoint methods call (`*_on` call another).
    pub app: Deployment,
    /// HTTP to anything but the simulator (presigned archive links).
    pub http: reqwest::Client,
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with(&[]).await
    }

    /// A harness whose Deployment has these configuration overrides (environment variable names).
    pub async fn with(overrides: &[(&str, &str)]) -> Harness {
        let server = Sim::start_default().await;
        let sim = server.client();
        if is_work() {
            // The suite expects a new token per forced fetch; WeCom may answer the same one
            // (work_token_idempotent, the default), which a test of its own covers.
            sim.set_options(json!({"work_token_idempotent": false}))
                .await;
        }
        let sdk = aws().await;
        let table = create_table(&sdk).await;
        let app = TestConfig::new(sim.base_url(), &table)
            .with(overrides)
            .app(&sdk);
        Harness {
            server,
            sim,
            sdk,
            table,
            app,
            http: reqwest::Client::new(),
        }
    }

    /// The configuration of a gateway on this table and simulator, with these overrides.
    pub fn config(&self, overrides: &[(&str, &str)]) -> TestConfig {
        TestConfig::new(self.sim.base_url(), &self.table).with(overrides)
    }

    /// Another Deployment (its own DynamoDB and HTTP clients) on the same table and simulator, as a
    /// second Lambda instance would be.
    pub fn instance(&self, overrides: &[(&str, &str)]) -> Deployment {
        self.config(overrides).app(&self.sdk)
    }

    /// Another instance whose store (DynamoDB, this table) is wrapped with injected faults.
    pub fn faulty_instance(&self, overrides: &[(&str, &str)]) -> (Deployment, FaultyStore) {
        self.config(overrides).faulty_app(&self.sdk)
    }

    /// The environment of a gateway process (a Lambda instance) on this table and simulator.
    pub fn process_env(&self, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
        self.config(overrides).process_env()
    }

    /// Calls the simulator counted so far for one API path.
    pub fn calls(&self, path: &str) -> u64 {
        self.server.sim.calls(path)
    }

    /// Token fetches so far.
    pub fn token_calls(&self) -> u64 {
        self.calls(token_path())
    }

    /// Ticket fetches so far (jsapi and wx_card).
    pub fn ticket_calls(&self) -> u64 {
        let p = paths();
        if p.jsapi_ticket == p.wx_card_ticket {
            self.calls(p.jsapi_ticket)
        } else {
            self.calls(p.jsapi_ticket) + self.calls(p.wx_card_ticket)
        }
    }

    /// The harness's table as the gateway's store.
    pub fn store(&self) -> wxinvoice::adapters::store::DynamoStore {
        wxinvoice::adapters::store::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            &self.table,
        )
    }

    /// The token state as DynamoDB holds it now.
    pub async fn stored(&self) -> wxinvoice::adapters::store::TokenState {
        self.app.tokens.store().load(&appid()).await.unwrap()
    }

    /// The access_token `app` serves now (refreshed if due).
    pub async fn served_token(&self, app: &Deployment) -> String {
        let served = app.tokens.get(Mode::Auto, &deadline()).await.unwrap();
        served.state.access_token.expect("an access_token").value
    }

    /// The access_token DynamoDB holds now.
    pub async fn stored_token(&self) -> String {
        self.stored()
            .await
            .access_token
            .expect("a stored access_token")
            .value
    }

    /// A registered app's settings as the table holds them.
    pub async fn store_app(&self, appid: &str) -> wxinvoice::domain::apps::AppSettings {
        let state = self
            .store()
            .load(&wxinvoice::domain::apps::key(appid, None))
            .await
            .unwrap();
        *state.settings.expect("a registered app")
    }

    /// Registers an app in the table (as the admin command does), its AppSecret in (moto's)
    /// Secrets Manager under the deployment's prefix and in the simulator, and answers its
    /// settings. `kind`: `mp`, `mini` or `work` (then `agentid`).
    pub async fn register_app(
        &self,
        kind: &str,
        appid: &str,
        agentid: Option<&str>,
        origins: &[&str],
    ) -> wxinvoice::domain::apps::AppSettings {
        let secret = format!("secret-of-{appid}-{}", agentid.unwrap_or(""));
        let name = format!("{appid}-{}", uuid::Uuid::new_v4().simple());
        let prefix = &self.app.config.app_secret_prefix;
        create_secret(&self.sdk, &format!("{prefix}{name}"), &secret).await;
        let mut sim_apps = self.sim.options().await.apps;
        sim_apps.push(SimApp {
            kind: kind.into(),
            appid: appid.into(),
            secret,
            agentid: agentid.map(str::to_string),
        });
        self.sim.set_options(json!({ "apps": sim_apps })).await;
        let settings = wxinvoice::domain::apps::AppSettings {
            kind: wxinvoice::domain::apps::Kind::parse(kind).expect("mp, mini or work"),
            appid: appid.into(),
            agentid: agentid.map(str::to_string),
            token_api: wxinvoice::domain::config::TokenApi::Classic,
            secret_name: name,
            origins: origins.iter().map(|o| o.to_string()).collect(),
            jssdk_url: origins.first().map(|o| format!("{o}/invoices")),
            enabled: true,
            authorization: None,
        };
        settings.check().expect("valid settings");
        self.store()
            .put_app(&settings)
            .await
            .expect("register the app");
        settings
    }

    /// A token fetched from WeChat by another system with the same credentials.
    pub async fn foreign_token(&self) -> String {
        let p = Platform::current();
        let v = match p {
            Platform::Work => self.sim.work_token(p.appid(), p.secret()).await,
            Platform::MpStable => self.sim.stable_token(p.appid(), p.secret(), false).await,
            Platform::Mp => self.sim.token(p.appid(), p.secret()).await,
        };
        let errcode = &v["errcode"];
        v["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token from WeChat: errcode {errcode}"))
            .to_string()
    }

    /// Whether WeChat (the simulator) accepts `token` now.
    pub async fn token_works(&self, token: &str) -> bool {
        self.sim.get(&jsapi_ticket_url(token)).await["errcode"] == 0
    }

    /// Whether the WeChat client accepts getToken's `answer` as the `wx.config` of `page`.
    pub async fn wechat_accepts(&self, page: &str, answer: &Value) -> bool {
        wechat_accepts(&self.sim, page, answer).await
    }

    /// Status of one invoice as the simulator holds it.
    pub async fn invoice_status(&self, encrypt_code: &str) -> String {
        self.sim.invoice_status(encrypt_code).await
    }

    /// Moves `app`'s clock and WeChat's forward together.
    pub async fn advance(&self, app: &Deployment, secs: u64) {
        app.tokens.clock().advance(Duration::from_secs(secs));
        self.sim.advance_clock(secs as i64).await;
    }
}

/// Whether the WeChat client (the simulator `sim`) accepts getToken's `answer` as the
/// `wx.config` of `page`.
pub async fn wechat_accepts(sim: &wechat_sim::Client, page: &str, answer: &Value) -> bool {
    let signature = JsapiSignature {
        url: page,
        noncestr: answer["noncestr"].as_str().unwrap_or_default(),
        timestamp: answer["timestamp"].as_u64().unwrap_or_default(),
        signature: answer["signature"].as_str().unwrap_or_default(),
    };
    sim.verify_jsapi(&signature).await
}

/// Runs the calling test (`test`, in module `module` as `module_path!()` names it) alone in a
/// process of its own: this test binary again, filtered to that test. For what a process has
/// once: the global log subscriber, the cold start of its first request. Answers `true` in that
/// process, where the test goes on; `false` in the calling one once the test passed there (its
/// failure fails the caller, with its output).
pub async fn in_own_process(module: &str, test: &str) -> bool {
    const VAR: &str = "WXINVOICE_TEST_IN_OWN_PROCESS";
    // Test names leave out the crate: `logs::name` for `it::logs`.
    let module = module.split_once("::").map_or("", |(_, m)| m);
    let name = format!("{module}::{test}");
    if std::env::var(VAR).is_ok_and(|v| v == name) {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let out = tokio::process::Command::new(exe)
        .args([name.as_str(), "--exact", "--test-threads=1"])
        .env(VAR, &name)
        .output()
        .await
        .expect("the test binary runs");
    // Indented, so that its summary line is not read as this run's.
    let shown = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        text.lines()
            .map(|l| format!("  | {l}\n"))
            .collect::<String>()
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{name} in a process of its own:\n{}{}",
        shown(&out.stdout),
        shown(&out.stderr)
    );
    false
}
