//! Test harness: a WeChat simulator on an ephemeral port, a fresh table in moto's DynamoDB
//! server (`AWS_ENDPOINT_URL_DYNAMODB`, started by the test command), an `App` wired to both,
//! and API Gateway HTTP API (v2) payload fixtures.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use lambda_http::{Body, Request, Response};
use serde_json::Value;
use wechat_sim::{Running, Sim};
use wxinvoice::config::Config;
use wxinvoice::deadline::Deadline;
use wxinvoice::secret::AppSecret;
use wxinvoice::store::faults::FaultyStore;
use wxinvoice::App;

pub const SEED_CARD: &str = "pIKi3wcA2zJYhWaAUWmf3aMNd_r0";
pub const SEED_CODE: &str = "O/mPnGTpBu22a1szmK2ogzhFPBh9eYzv2p70L8yzyykBoTdEGnOi8TSuvAUzX8XrOHONZv9BQ5sPsgyjLQjJMCy433SEqFIQys8K/CgLWKRMh42topKL2kjiQeB0IIwo";
pub const CODE2: &str = "SIMencryptCode02sameCardIdAsTheSpecExample+/=";
pub const OPENID: &str = "or6qc1XNFyAhiatjzyd7aboPkLz8";
const MP_APPID: &str = "wxa185587d4fc35145";
const MP_SECRET: &str = "sim-appsecret";
const CORPID: &str = "ww5im0c0rp00000001";
const CORPSECRET: &str = "sim-corpsecret";

/// The platform the suite runs for: `WECHAT_PLATFORM=work` runs it against WeCom, otherwise
/// Official Accounts (`WECHAT_TOKEN_API=stable` selects stable_token there).
pub fn is_work() -> bool {
    std::env::var("WECHAT_PLATFORM").is_ok_and(|p| p == "work")
}

fn is_stable() -> bool {
    !is_work() && std::env::var("WECHAT_TOKEN_API").is_ok_and(|t| t == "stable")
}

/// AppID (Official Account) or corpid (WeCom) of the simulator's app.
pub fn appid() -> String {
    if is_work() { CORPID } else { MP_APPID }.to_string()
}

pub fn appsecret() -> String {
    if is_work() { CORPSECRET } else { MP_SECRET }.to_string()
}

/// The simulator path that issues access tokens on this platform.
pub fn token_path() -> &'static str {
    if is_work() {
        wxinvoice::wechat::WORK_PATHS.token
    } else if is_stable() {
        wxinvoice::wechat::MP_STABLE_TOKEN_PATH
    } else {
        wxinvoice::wechat::MP_PATHS.token
    }
}

pub fn paths() -> &'static wxinvoice::wechat::Paths {
    if is_work() {
        &wxinvoice::wechat::WORK_PATHS
    } else {
        &wxinvoice::wechat::MP_PATHS
    }
}

/// The batch query path on this platform.
pub fn batch_path() -> &'static str {
    paths().invoice_batch
}

/// A URL of the simulator that needs a valid access_token (the jsapi ticket).
pub fn jsapi_ticket_url(token: &str) -> String {
    if is_work() {
        format!("{}?access_token={token}", paths().jsapi_ticket)
    } else {
        format!("{}?type=jsapi&access_token={token}", paths().jsapi_ticket)
    }
}
pub const PAGE_URL: &str = "https://expense.example.com/invoices?from=menu";

/// getToken's fields: the spec's, then chooseInvoice's.
pub const TOKEN_FIELDS: [&str; 10] = [
    "access_token",
    "expires_in",
    "appid",
    "timestamp",
    "noncestr",
    "jsapi_ticket",
    "url",
    "signature",
    "card_sign",
    "sign_type",
];

/// A request's deadline as Lambda's 20 s timeout gives it.
pub fn deadline() -> Deadline {
    Deadline::after(std::time::Duration::from_millis(19_500))
}

/// An operator's rotation (what `{"action":"rotate"}` does), answered as getToken would: 200 with
/// the new token, or the error's envelope.
pub async fn rotate(app: &App) -> (u16, Value) {
    match app
        .tokens
        .get(wxinvoice::token::Mode::Rotate, &deadline())
        .await
    {
        Ok(served) => {
            let token = served.state.access_token.map(|c| c.value);
            (200, serde_json::json!({ "access_token": token }))
        }
        Err(e) => {
            let resp = e.into_response();
            (resp.status().as_u16(), body_json(&resp))
        }
    }
}

/// moto's endpoint; the test command starts moto and sets this.
pub fn moto_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL_DYNAMODB is not set: run the tests with `make test`, which starts moto")
    })
}

/// AWS configuration pointing every service at moto, with dummy credentials.
pub async fn aws() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .test_credentials()
        .region(Region::new("us-east-1"))
        .endpoint_url(moto_endpoint())
        .load()
        .await
}

/// Creates a table with the template's key schema under a unique name.
pub async fn create_table(sdk: &SdkConfig) -> String {
    let name = format!("wxinvoice-test-{}", uuid::Uuid::new_v4().simple());
    create_table_named(sdk, &name).await;
    name
}

pub async fn create_table_named(sdk: &SdkConfig, name: &str) {
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table in moto");
}

/// Creates an audit table (the template's key schema) and an archive bucket under unique names.
pub async fn create_audit_and_archive(sdk: &SdkConfig) -> (String, String) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (table, bucket) = (
        format!("wxinvoice-audit-{id}"),
        format!("wxinvoice-archive-{id}"),
    );
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(&table)
        .attribute_definitions(attr("card_id"))
        .attribute_definitions(attr("at"))
        .key_schema(key("card_id", KeyType::Hash))
        .key_schema(key("at", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create the audit table in moto");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create the archive bucket in moto");
    (table, bucket)
}

pub struct Harness {
    pub sim: Running,
    pub sdk: SdkConfig,
    pub table: String,
    pub app: App,
    pub http: reqwest::Client,
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with(&[]).await
    }

    /// A harness whose App has these configuration overrides (environment variable names).
    pub async fn with(overrides: &[(&str, &str)]) -> Harness {
        let sim = Sim::start_default().await;
        if is_work() {
            // The suite expects a new token per forced fetch; WeCom may answer the same one
            // (work_token_idempotent, the default), which a test of its own covers.
            let url = format!("{}/__sim/options", sim.base_url());
            reqwest::Client::new()
                .post(url)
                .json(&serde_json::json!({"work_token_idempotent": false}))
                .send()
                .await
                .unwrap();
        }
        let sdk = aws().await;
        let table = create_table(&sdk).await;
        let app = app(&sim.base_url(), &table, &sdk, overrides);
        Harness {
            sim,
            sdk,
            table,
            app,
            http: reqwest::Client::new(),
        }
    }

    /// Another App (its own DynamoDB and HTTP clients) on the same table and simulator, as a
    /// second Lambda instance would be.
    pub fn instance(&self, overrides: &[(&str, &str)]) -> App {
        app(&self.sim.base_url(), &self.table, &self.sdk, overrides)
    }

    /// Another instance whose store (DynamoDB, this table) is wrapped with injected faults.
    pub fn faulty_instance(&self, overrides: &[(&str, &str)]) -> (App, FaultyStore) {
        let config = config(&self.sim.base_url(), &self.table, overrides);
        let dynamo = Arc::new(wxinvoice::app::dynamo_store(&config, &self.sdk));
        let store = FaultyStore::new(dynamo);
        let secret = AppSecret::from_config(config.secret.as_ref(), &self.sdk);
        let app = App::with_store(config, Arc::new(store.clone()), secret);
        (app, store)
    }

    /// The environment of a gateway process (a Lambda instance) on this table and simulator.
    pub fn process_env(&self) -> Vec<(String, String)> {
        let platform = if is_work() { "work" } else { "mp" };
        let token_api = if is_stable() { "stable" } else { "classic" };
        [
            ("WECHAT_PLATFORM", platform.to_string()),
            ("WECHAT_TOKEN_API", token_api.to_string()),
            ("WECHAT_APPID", appid()),
            ("WECHAT_SECRET", appsecret()),
            ("WECHAT_API_BASE", self.sim.base_url()),
            ("WECHAT_ALLOW_HTTP", "true".to_string()),
            ("TOKEN_TABLE", self.table.clone()),
            ("JSSDK_URL", PAGE_URL.to_string()),
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT_URL_DYNAMODB", moto_endpoint()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    pub fn calls(&self, path: &str) -> u64 {
        self.sim.sim.calls(path)
    }

    pub fn paths(&self) -> &'static wxinvoice::wechat::Paths {
        paths()
    }

    /// The token state as DynamoDB holds it now.
    pub async fn stored(&self) -> wxinvoice::store::TokenState {
        self.app.tokens.store().load(&appid()).await.unwrap()
    }

    /// The access_token DynamoDB holds now.
    pub async fn stored_token(&self) -> String {
        self.stored()
            .await
            .access_token
            .expect("a stored access_token")
            .value
    }

    /// Injects a simulator fault (see docs/simulator.md#control-endpoints).
    pub async fn fault(&self, fault: Value) {
        self.sim_post("/__sim/faults", fault).await;
    }

    pub async fn clear_faults(&self) {
        let url = format!("{}/__sim/faults", self.sim.base_url());
        self.http.delete(url).send().await.unwrap();
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

    /// A token fetched from WeChat by another system with the same credentials.
    pub async fn foreign_token(&self) -> String {
        let v = if is_work() {
            self.sim_get(&format!(
                "{}?corpid={CORPID}&corpsecret={CORPSECRET}",
                token_path()
            ))
            .await
        } else if is_stable() {
            let body = serde_json::json!({"grant_type": "client_credential", "appid": MP_APPID, "secret": MP_SECRET});
            self.sim_post(token_path(), body).await
        } else {
            let q = format!("?grant_type=client_credential&appid={MP_APPID}&secret={MP_SECRET}");
            self.sim_get(&format!("{}{q}", token_path())).await
        };
        v["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}"))
            .to_string()
    }

    pub async fn sim_get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.sim.base_url());
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn sim_post(&self, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.sim.base_url());
        self.http
            .post(url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Status of one invoice as the simulator holds it.
    pub async fn invoice_status(&self, encrypt_code: &str) -> String {
        let all = self.sim_get("/__sim/invoices").await;
        let inv = all
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["encrypt_code"] == encrypt_code)
            .unwrap();
        inv["card"]["user_info"]["reimburse_status"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// The configuration a deployment would have, pointed at the simulator and the table.
pub fn config(api_base: &str, table: &str, overrides: &[(&str, &str)]) -> Config {
    let (id, secret) = (appid(), appsecret());
    let platform = if is_work() { "work" } else { "mp" };
    let token_api = if is_stable() { "stable" } else { "classic" };
    let mut env: HashMap<String, String> = [
        ("WECHAT_PLATFORM", platform),
        ("WECHAT_TOKEN_API", token_api),
        ("WECHAT_APPID", id.as_str()),
        ("WECHAT_SECRET", secret.as_str()),
        ("WECHAT_API_BASE", api_base),
        ("WECHAT_ALLOW_HTTP", "true"),
        ("TOKEN_TABLE", table),
        ("JSSDK_URL", PAGE_URL),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in overrides {
        env.insert(k.to_string(), v.to_string());
    }
    Config::from_lookup(|k| env.get(k).cloned()).expect("test configuration is valid")
}

pub fn app(api_base: &str, table: &str, sdk: &SdkConfig, overrides: &[(&str, &str)]) -> App {
    let config = config(api_base, table, overrides);
    let secret = AppSecret::from_config(config.secret.as_ref(), sdk);
    App::new(config, sdk, secret)
}

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A fixture event after `edit`, converted exactly as the Lambda runtime converts it.
pub fn event(name: &str, edit: impl FnOnce(&mut Value)) -> Request {
    let mut v: Value = serde_json::from_str(&fixture(name)).unwrap();
    edit(&mut v);
    wxinvoice::runtime::request_from_json(&v.to_string()).expect("fixture converts to a request")
}

/// Sets the query string of a v2 event (raw, as API Gateway passes it).
pub fn set_query(v: &mut Value, raw: &str) {
    v["rawQueryString"] = Value::String(raw.to_string());
    v.as_object_mut().unwrap().remove("queryStringParameters");
}

pub fn set_body(v: &mut Value, body: &str) {
    v["body"] = Value::String(body.to_string());
}

pub fn set_method(v: &mut Value, method: &str) {
    v["requestContext"]["http"]["method"] = Value::String(method.to_string());
}

pub fn body_json(resp: &Response<Body>) -> Value {
    serde_json::from_slice(resp.body().as_ref()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {:?}",
            String::from_utf8_lossy(resp.body().as_ref())
        )
    })
}

/// One of the four invoice endpoints (`wxinvoice::handlers::GET_INVOICE_BATCH`, …) called as API
/// Gateway would, through its function's dispatch: (HTTP status, body).
pub async fn invoice_call(app: &App, path: &str, token: &str, body: &Value) -> (u16, Value) {
    use wxinvoice::handlers::{invoice_query, invoice_status, GET_INVOICE_BATCH, GET_INVOICE_INFO};
    let query = path == GET_INVOICE_BATCH || path == GET_INVOICE_INFO;
    let fixture = if query {
        "apigw-v2-get-invoice-batch.json"
    } else {
        "apigw-v2-update-status.json"
    };
    let req = event(fixture, |v| {
        v["rawPath"] = Value::from(path);
        v["requestContext"]["http"]["path"] = Value::from(path);
        set_query(v, &format!("token={token}"));
        set_body(v, &body.to_string());
    });
    let resp = if query {
        invoice_query(app, req).await
    } else {
        invoice_status(app, req).await
    }
    .expect("the handlers answer every request");
    (resp.status().as_u16(), body_json(&resp))
}

/// Registers an app in the harness's table (as the admin command does), its AppSecret in
/// (moto's) Secrets Manager under the deployment's prefix and in the simulator, and answers its
/// settings. `kind`: `mp`, `mini` or `work` (then `agentid`).
pub async fn register_app(
    h: &Harness,
    kind: &str,
    appid: &str,
    agentid: Option<&str>,
    origins: &[&str],
) -> wxinvoice::apps::AppSettings {
    use wxinvoice::store::TokenStore;
    let secret = format!("secret-of-{appid}-{}", agentid.unwrap_or(""));
    let name = format!("{appid}-{}", uuid::Uuid::new_v4().simple());
    aws_sdk_secretsmanager::Client::new(&h.sdk)
        .create_secret()
        .name(format!("{}{name}", h.app.config.app_secret_prefix))
        .secret_string(&secret)
        .send()
        .await
        .expect("create the app's secret in moto");
    let mut sim_apps = h.sim_get("/__sim/options").await["apps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    sim_apps.push(
        serde_json::json!({"kind": kind, "appid": appid, "secret": secret, "agentid": agentid}),
    );
    h.sim_post("/__sim/options", serde_json::json!({ "apps": sim_apps }))
        .await;
    let settings = wxinvoice::apps::AppSettings {
        kind: wxinvoice::apps::Kind::parse(kind).expect("mp, mini or work"),
        appid: appid.into(),
        agentid: agentid.map(str::to_string),
        token_api: wxinvoice::config::TokenApi::Classic,
        secret_name: name,
        origins: origins.iter().map(|o| o.to_string()).collect(),
        jssdk_url: origins.first().map(|o| format!("{o}/invoices")),
        enabled: true,
    };
    settings.check().expect("valid settings");
    h.store()
        .put_app(&settings)
        .await
        .expect("register the app");
    settings
}

impl Harness {
    /// The harness's table as the gateway's store.
    pub fn store(&self) -> wxinvoice::store::DynamoStore {
        wxinvoice::store::DynamoStore::new(aws_sdk_dynamodb::Client::new(&self.sdk), &self.table)
    }
}

impl Harness {
    /// A registered app's settings as the table holds them.
    pub async fn store_app(&self, appid: &str) -> wxinvoice::apps::AppSettings {
        use wxinvoice::store::TokenStore;
        let state = self
            .store()
            .load(&wxinvoice::apps::key(appid, None))
            .await
            .unwrap();
        *state.settings.expect("a registered app")
    }
}

/// An answer as an assertion message may show it: credentials (tokens, tickets, signatures)
/// masked, so a failing test prints none.
pub fn shown(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        for k in ["access_token", "jsapi_ticket", "signature", "card_sign"] {
            if let Some(x) = m.get_mut(k) {
                *x = Value::from("***");
            }
        }
    }
    v
}
