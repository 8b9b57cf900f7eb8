//! A typed HTTP client of a running simulator (feature `client`): its control API under `/__sim/`
//! and the WeChat calls a test makes directly. Control calls panic on anything but 200, naming
//! the call: a test whose set-up did not take effect stops there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{Invoice, Options};

/// A client of the simulator at `base_url` (`http://127.0.0.1:PORT`).
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

/// `GET /__sim/stats`: calls per API path.
#[derive(Debug, Clone, Deserialize)]
pub struct Stats {
    pub calls: BTreeMap<String, u64>,
    pub total: u64,
}

/// `GET /__sim/clock`: the offset of the simulated clock and its time (Unix seconds).
#[derive(Debug, Clone, Deserialize)]
pub struct Clock {
    pub offset_secs: i64,
    pub now: u64,
}

/// `GET /__sim/tokens`: the latest token of each family and app, every token and ticket issued,
/// when each token stops working (simulator clock, Unix seconds) and `now`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Tokens {
    pub latest: Vec<Latest>,
    pub tokens: Vec<String>,
    pub tickets: Vec<String>,
    pub ends: BTreeMap<String, u64>,
    pub now: u64,
}

/// The latest token of one family (`classic`, `stable`, `work`) and app.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Latest {
    pub family: String,
    pub app: String,
    pub access_token: String,
}

/// What `wx.config` is given, for `POST /__sim/verify/jsapi`.
#[derive(Debug, Clone, Serialize)]
pub struct JsapiSignature<'a> {
    pub url: &'a str,
    pub noncestr: &'a str,
    pub timestamp: u64,
    pub signature: &'a str,
}

/// What a WeCom agent's `agentConfig` is given, for `POST /__sim/verify/agent_config`.
#[derive(Debug, Clone, Serialize)]
pub struct AgentSignature<'a> {
    pub corpid: &'a str,
    pub agentid: &'a str,
    pub url: &'a str,
    pub noncestr: &'a str,
    pub timestamp: u64,
    pub signature: &'a str,
}

/// What `chooseInvoice` is given, for `POST /__sim/verify/card_sign`.
#[derive(Debug, Clone, Serialize)]
pub struct CardSign<'a> {
    pub appid: &'a str,
    pub timestamp: u64,
    pub nonce_str: &'a str,
    pub sign_type: &'a str,
    pub card_sign: &'a str,
}

impl crate::Running {
    /// A client of this simulator.
    pub fn client(&self) -> Client {
        Client::new(self.base_url())
    }
}

impl Client {
    pub fn new(base_url: impl Into<String>) -> Client {
        Client {
            base: base_url.into().trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// `http://127.0.0.1:PORT`, as `WECHAT_API_BASE`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The URL of `path` (with its query) on the simulator.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    // The WeChat APIs, answered as WeChat answers them.

    /// `GET path` (an API path with its query): the JSON answer, whatever its HTTP status.
    pub async fn get(&self, path: &str) -> Value {
        let resp = self.send_get(path).await;
        json_of(resp.unwrap_or_else(|e| panic!("GET {}: {e}", shown(path)))).await
    }

    /// `POST path` with a JSON body: the JSON answer, whatever its HTTP status.
    pub async fn post(&self, path: &str, body: &impl Serialize) -> Value {
        json_of(self.send_json(path, body).await).await
    }

    /// `GET path`, the answer as it comes (or the connection's error: an injected `drop`).
    pub async fn send_get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        self.http.get(self.url(path)).send().await
    }

    /// `POST path` with a body sent as is (malformed JSON, say): the answer as it comes.
    pub async fn send_text(&self, path: &str, body: &str) -> reqwest::Response {
        let resp = self
            .http
            .post(self.url(path))
            .body(body.to_string())
            .send()
            .await;
        resp.unwrap_or_else(|e| panic!("POST {}: {e}", shown(path)))
    }

    /// `POST path` with a JSON body: the answer as it comes.
    pub async fn send_json(&self, path: &str, body: &impl Serialize) -> reqwest::Response {
        let resp = self.http.post(self.url(path)).json(body).send().await;
        resp.unwrap_or_else(|e| panic!("POST {}: {e}", shown(path)))
    }

    /// The bytes served at `path` (an invoice file).
    pub async fn bytes(&self, path: &str) -> Vec<u8> {
        let resp = self.send_get(path).await;
        let resp = resp.unwrap_or_else(|e| panic!("GET {}: {e}", shown(path)));
        let bytes = resp.bytes().await;
        bytes
            .unwrap_or_else(|e| panic!("GET {}: {e}", shown(path)))
            .to_vec()
    }

    /// `/cgi-bin/token` (an Official Account's classic token).
    pub async fn token(&self, appid: &str, secret: &str) -> Value {
        self.get(&format!(
            "/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={secret}"
        ))
        .await
    }

    /// `/cgi-bin/stable_token`.
    pub async fn stable_token(&self, appid: &str, secret: &str, force_refresh: bool) -> Value {
        let mut body = json!({"grant_type": "client_credential", "appid": appid, "secret": secret});
        if force_refresh {
            body["force_refresh"] = json!(true);
        }
        self.post("/cgi-bin/stable_token", &body).await
    }

    /// WeCom's `/cgi-bin/gettoken`.
    pub async fn work_token(&self, corpid: &str, corpsecret: &str) -> Value {
        self.get(&format!(
            "/cgi-bin/gettoken?corpid={corpid}&corpsecret={corpsecret}"
        ))
        .await
    }

    // The control API.

    async fn control(&self, method: reqwest::Method, what: &str, body: Option<&Value>) -> Value {
        let url = self.url(&format!("/__sim/{what}"));
        let mut req = self.http.request(method.clone(), url);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} /__sim/{what}: {e}"));
        let status = resp.status();
        let v = json_of(resp).await;
        assert!(status.is_success(), "{method} /__sim/{what}: {status} {v}");
        v
    }

    fn typed<T: serde::de::DeserializeOwned>(what: &str, v: Value) -> T {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("/__sim/{what}: {e}"))
    }

    /// Calls per API path so far.
    pub async fn stats(&self) -> Stats {
        Self::typed(
            "stats",
            self.control(reqwest::Method::GET, "stats", None).await,
        )
    }

    /// Adds a fault (a [`crate::Fault`], or its JSON): `{"path": …, "latency_ms": …, …}`.
    pub async fn fault(&self, fault: impl Serialize) {
        let v = serde_json::to_value(fault).expect("a fault serializes");
        self.control(reqwest::Method::POST, "faults", Some(&v))
            .await;
    }

    /// The faults in force.
    pub async fn faults(&self) -> Vec<crate::Fault> {
        Self::typed(
            "faults",
            self.control(reqwest::Method::GET, "faults", None).await,
        )
    }

    pub async fn clear_faults(&self) {
        self.control(reqwest::Method::DELETE, "faults", None).await;
    }

    /// The invoice store.
    pub async fn invoices(&self) -> Vec<Invoice> {
        let v = self.control(reqwest::Method::GET, "invoices", None).await;
        Self::typed("invoices", v)
    }

    /// The reimbursement status of one invoice as the simulator holds it.
    pub async fn invoice_status(&self, encrypt_code: &str) -> String {
        let all = self.invoices().await;
        let invoice = all
            .iter()
            .find(|i| i.encrypt_code == encrypt_code)
            .unwrap_or_else(|| panic!("no invoice {encrypt_code} in the simulator"));
        let user_info = invoice.card.get("user_info");
        let status = user_info.and_then(|u| u["reimburse_status"].as_str());
        status
            .unwrap_or_else(|| panic!("invoice {encrypt_code} has no reimburse_status"))
            .to_string()
    }

    /// Replaces the invoice store (the fixture's format); answers how many it holds.
    pub async fn set_invoices(&self, invoices: &impl Serialize) -> u64 {
        let v = serde_json::to_value(invoices).expect("invoices serialize");
        let v = self
            .control(reqwest::Method::POST, "invoices", Some(&v))
            .await;
        v["invoices"].as_u64().expect("a count")
    }

    pub async fn clock(&self) -> Clock {
        Self::typed(
            "clock",
            self.control(reqwest::Method::GET, "clock", None).await,
        )
    }

    /// Moves the simulated clock forward (expires tokens without waiting).
    pub async fn advance_clock(&self, secs: i64) -> Clock {
        let body = json!({ "advance_secs": secs });
        let v = self
            .control(reqwest::Method::POST, "clock", Some(&body))
            .await;
        Self::typed("clock", v)
    }

    pub async fn options(&self) -> Options {
        let v = self.control(reqwest::Method::GET, "options", None).await;
        Self::typed("options", v)
    }

    /// Merges `patch` (some fields of [`Options`]) into the options; answers them all.
    pub async fn set_options(&self, patch: Value) -> Options {
        let v = self
            .control(reqwest::Method::POST, "options", Some(&patch))
            .await;
        Self::typed("options", v)
    }

    /// A new verify ticket for the platform and its push (`{ticket, query, body}`), or with
    /// `send` the push POSTed to the platform's `push_url` (`{ticket, status, reply}`).
    pub async fn component_push(&self, send: bool) -> Value {
        let ask = json!({"info_type": "component_verify_ticket", "send": send});
        self.control(reqwest::Method::POST, "component/push", Some(&ask))
            .await
    }

    /// The customer confirms `funcs` for account `appid` (`mp` or `mini`) on the page a
    /// pre-auth code opened: `{auth_code, expires_in, info_type}` and the `authorized` push (or,
    /// with `send`, the platform's reply to it).
    pub async fn component_authorize(
        &self,
        pre_auth_code: &str,
        appid: &str,
        kind: &str,
        funcs: &[u64],
        send: bool,
    ) -> Value {
        let ask = json!({"pre_auth_code": pre_auth_code, "appid": appid, "kind": kind, "funcs": funcs, "send": send});
        self.control(reqwest::Method::POST, "component/authorize", Some(&ask))
            .await
    }

    /// The account withdraws its authorization: the `unauthorized` push (or the reply to it).
    pub async fn component_unauthorize(&self, appid: &str, send: bool) -> Value {
        let ask = json!({"appid": appid, "send": send});
        self.control(reqwest::Method::POST, "component/unauthorize", Some(&ask))
            .await
    }

    /// Every token and ticket issued, the latest of each app, when each token stops working.
    pub async fn tokens(&self) -> Tokens {
        Self::typed(
            "tokens",
            self.control(reqwest::Method::GET, "tokens", None).await,
        )
    }

    /// The latest token the simulator issued to `app` (appid, or `corpid#agentid`).
    pub async fn issued_to(&self, app: &str) -> Option<String> {
        let tokens = self.tokens().await;
        let latest = tokens.latest.into_iter().find(|t| t.app == app);
        latest.map(|t| t.access_token)
    }

    /// Whether the WeChat client accepts this `wx.config` signature (a live jsapi ticket).
    pub async fn verify_jsapi(&self, signature: &JsapiSignature<'_>) -> bool {
        let body = serde_json::to_value(signature).expect("serializes");
        let v = self
            .control(reqwest::Method::POST, "verify/jsapi", Some(&body))
            .await;
        v["valid"] == true
    }

    /// Whether WeCom accepts this `agentConfig` signature (a live agent ticket of that agent).
    pub async fn verify_agent_config(&self, signature: &AgentSignature<'_>) -> bool {
        let body = serde_json::to_value(signature).expect("serializes");
        let v = self
            .control(reqwest::Method::POST, "verify/agent_config", Some(&body))
            .await;
        v["valid"] == true
    }

    /// Whether `chooseInvoice` accepts this card_sign (a live wx_card ticket of that app).
    pub async fn verify_card_sign(&self, sign: &CardSign<'_>) -> bool {
        let body = serde_json::to_value(sign).expect("serializes");
        let v = self
            .control(reqwest::Method::POST, "verify/card_sign", Some(&body))
            .await;
        v["valid"] == true
    }

    /// Back to the startup state.
    pub async fn reset(&self) {
        self.control(reqwest::Method::POST, "reset", Some(&json!({})))
            .await;
    }
}

/// A path as a failing test may show it: without its query, which carries credentials.
fn shown(path: &str) -> &str {
    path.split('?').next().unwrap_or_default()
}

async fn json_of(resp: reqwest::Response) -> Value {
    let path = resp.url().path().to_string();
    let text = resp.text().await.unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text:?}"))
}
