//! The WeChat API client: fetches access_token and JS-SDK tickets, and forwards invoice calls.
//! Every call has an explicit timeout; errors never carry the request URL (it holds the
//! AppSecret or an access_token).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};

use super::error::{Call, WeChatError};
use super::paths::{
    Paths, API_DOMAIN_IP_PATH, AUTHORIZER_INFO_PATH, AUTHORIZER_TOKEN_PATH, COMPONENT_TOKEN_PATH,
    MP_PATHS, MP_STABLE_TOKEN_PATH, PRE_AUTH_CODE_PATH, QUERY_AUTH_PATH, WORK_PATHS,
};
use crate::adapters::component_secret::ComponentSecretSource;
use crate::adapters::secret::AppSecret;
use crate::adapters::store::TokenStore;
use crate::domain::config::{Config, Platform, Secret, TokenApi};
use crate::domain::deadline::Deadline;
use crate::domain::errcode::SECRET_REJECTED;

/// A credential as WeChat issued it.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    pub value: String,
    pub expires_in: u64,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Issued(***, expires_in={})", self.expires_in)
    }
}

/// The JS-SDK tickets: `jsapi` signs `wx.config`, `wx_card` signs `chooseInvoice`, and on WeCom
/// `agent_config` signs an agent's `agentConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketKind {
    Jsapi,
    WxCard,
    AgentConfig,
}

impl TicketKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketKind::Jsapi => "jsapi",
            TicketKind::WxCard => "wx_card",
            TicketKind::AgentConfig => "agent_config",
        }
    }
}

/// Shortest time worth starting a call with.
pub(super) const MIN_CALL: Duration = Duration::from_millis(50);

/// What an authorization code stands for (`api_query_auth`).
#[derive(Clone)]
pub struct AuthorizationInfo {
    pub appid: String,
    /// The account's first access token (absent when it has no API permission).
    pub token: Option<Issued>,
    pub refresh_token: Option<String>,
    /// The permission sets (`func_info` ids) it granted.
    pub permissions: Vec<u64>,
}

impl std::fmt::Debug for AuthorizationInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AuthorizationInfo({}, ***, permissions={:?})",
            self.appid, self.permissions
        )
    }
}

/// A successful invoice call: WeChat's body, byte for byte.
#[derive(Debug, Clone)]
pub struct Reply {
    pub body: Vec<u8>,
}

#[derive(Clone)]
pub struct WeChatClient {
    /// Built on first use: getToken answers from the stored state and rarely calls WeChat, so
    /// its cold start does not pay for the TLS set-up (loading the system's root certificates).
    http: Arc<OnceLock<Result<reqwest::Client, String>>>,
    pub(super) timeout: Duration,
    pub(super) base: String,
    /// WeChat's disaster-recovery host, tried once when `base` cannot be reached.
    pub(super) backup: Option<String>,
    allow_http: bool,
    appid: String,
    secret: Arc<AppSecret>,
    platform: Platform,
    token_api: TokenApi,
    paths: Paths,
    /// A third-party platform's client: its token is the `component_access_token`, fetched with
    /// its secrets and the newest verify ticket kept in the store.
    component: Option<Component>,
    /// An authorized account's client: its token comes through its platform, no AppSecret;
    /// what it seals (archive work) is keyed on its platform's component AppSecret instead.
    authorized: bool,
    platform_secrets: Option<Arc<ComponentSecretSource>>,
}

/// Where a platform's client finds its appid, component secret and verify ticket.
#[derive(Clone)]
struct Component {
    secrets: Arc<ComponentSecretSource>,
    tickets: Arc<dyn TokenStore>,
}

impl WeChatClient {
    /// `secret`: the AppSecret (corpsecret for WeCom).
    pub fn new(config: &Config, secret: AppSecret) -> Self {
        let paths = match config.platform {
            Platform::Mp => MP_PATHS,
            Platform::Work => WORK_PATHS,
        };
        WeChatClient {
            http: Arc::default(),
            timeout: config.timing.wechat_timeout,
            base: config.api_base.clone(),
            backup: config.api_backup_base.clone(),
            allow_http: config.allow_http,
            appid: config.appid.clone(),
            secret: Arc::new(secret),
            platform: config.platform,
            token_api: config.token_api,
            paths,
            component: None,
            authorized: false,
            platform_secrets: None,
        }
    }

    /// A client for another app (its settings and secret) sharing this one's HTTP connections.
    pub fn for_app(&self, config: &Config, secret: AppSecret) -> Self {
        WeChatClient {
            http: self.http.clone(),
            ..WeChatClient::new(config, secret)
        }
    }

    /// The third-party platform's client: its appid and component AppSecret are read from
    /// `secrets` when its first token is fetched, with the newest verify ticket in `tickets`. A
    /// new component token is taken to end the previous one after WeChat's grace, as the classic
    /// token does (WeChat does not say; the cautious reading).
    pub fn for_component(
        &self,
        config: &Config,
        secrets: Arc<ComponentSecretSource>,
        tickets: Arc<dyn TokenStore>,
    ) -> Self {
        WeChatClient {
            component: Some(Component { secrets, tickets }),
            ..self.for_app(config, AppSecret::none())
        }
    }

    /// An authorized account's client (no AppSecret: its token comes through its platform,
    /// whose secrets, when the deployment is one, key what it seals).
    pub fn for_authorized(
        &self,
        config: &Config,
        platform_secrets: Option<Arc<ComponentSecretSource>>,
    ) -> Self {
        WeChatClient {
            authorized: true,
            platform_secrets,
            ..self.for_app(config, AppSecret::none())
        }
    }

    /// Whether fetching a token needs the AppSecret (not for a platform or an authorized
    /// account).
    pub fn uses_app_secret(&self) -> bool {
        self.component.is_none() && !self.authorized
    }

    /// A platform's appid, as its secrets name it.
    pub async fn component_appid(&self, deadline: &Deadline) -> Result<String, WeChatError> {
        let Some(c) = &self.component else {
            return Ok(self.appid.clone());
        };
        match deadline.run(c.secrets.get()).await {
            Ok(Ok(s)) => Ok(s.appid.clone()),
            Ok(Err(e)) => Err(WeChatError::NoSecret(e.0)),
            Err(_) => Err(WeChatError::NoTime),
        }
    }

    /// The HTTP client: no redirects (WeChat's API never redirects; a redirect would carry the
    /// AppSecret or token in its URL elsewhere), HTTPS only unless the configuration allows the
    /// simulator's plain HTTP. A build failure is an error of the call, not an abort.
    pub(super) fn http(&self) -> Result<&reqwest::Client, WeChatError> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .connect_timeout(self.timeout)
                    .timeout(self.timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .https_only(!self.allow_http)
                    .build()
                    .map_err(|e| format!("building the HTTP client: {e}"))
            })
            .as_ref()
            .map_err(|e| WeChatError::NotSent(e.clone()))
    }

    pub fn appid(&self) -> &str {
        &self.appid
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether each new token ends the previous one after WeChat's grace period (the classic
    /// `/cgi-bin/token`); stable and WeCom tokens keep working until their own expiry.
    pub fn new_token_ends_previous(&self) -> bool {
        self.platform == Platform::Mp && self.token_api == TokenApi::Classic
    }

    /// Whether a token fetch (forced or not) may end the token stored now: classic always,
    /// `stable_token` with `force_refresh`, WeCom never.
    pub fn fetch_ends_stored(&self, force: bool) -> bool {
        match (self.platform, self.token_api) {
            (Platform::Mp, TokenApi::Classic) => true,
            (Platform::Mp, TokenApi::Stable) => force,
            (Platform::Work, _) => false,
        }
    }

    /// The AppSecret, read from Secrets Manager on the first call when configured that way. The
    /// token service calls this before taking the refresh lock, so the read never eats into
    /// the lease. An authorized account has none: its platform's component AppSecret stands in
    /// where a secret keys what is sealed (archive work).
    pub async fn app_secret(&self, deadline: &Deadline) -> Result<Secret, WeChatError> {
        if let Some(platform) = self.platform_secrets.as_ref().filter(|_| self.authorized) {
            return match deadline.run(platform.get()).await {
                Ok(r) => r
                    .map(|s| s.app_secret.clone())
                    .map_err(|e| WeChatError::NoSecret(e.0)),
                Err(_) => Err(WeChatError::NoTime),
            };
        }
        match deadline.run(self.secret.get()).await {
            Ok(r) => r.map_err(|e| WeChatError::NoSecret(e.0)),
            Err(_) => Err(WeChatError::NoSecret(
                "reading it took the request's remaining time".into(),
            )),
        }
    }

    /// A new access_token. `force` only matters for `stable_token`, where normal mode answers the
    /// current token and `force_refresh` (at most 20 a day) replaces it. When WeChat rejects the
    /// AppSecret, it is read again (bounded) and the fetch tried once more with a new one.
    pub async fn fetch_access_token(
        &self,
        force: bool,
        deadline: &Deadline,
    ) -> Result<Issued, WeChatError> {
        if let Some(c) = &self.component {
            return self.fetch_component_token(c, deadline).await;
        }
        let secret = self.app_secret(deadline).await?;
        match self.fetch_token_with(&secret, force, deadline).await {
            Err(WeChatError::Api(b)) if SECRET_REJECTED.contains(&b.errcode) => {
                match deadline.run(self.secret.reread(&secret)).await {
                    Ok(Ok(Some(new))) if deadline.allows(self.timeout) => {
                        self.fetch_token_with(&new, force, deadline).await
                    }
                    _ => Err(WeChatError::Api(b)),
                }
            }
            other => other,
        }
    }

    async fn fetch_token_with(
        &self,
        secret: &Secret,
        force: bool,
        deadline: &Deadline,
    ) -> Result<Issued, WeChatError> {
        let (appid, secret_q) = (enc(&self.appid), enc(secret.expose()));
        let body = self
            .call(Call::Read, deadline, |http, base| {
                match (self.platform, self.token_api) {
                    (Platform::Mp, TokenApi::Classic) => http.get(format!(
                        "{base}{}?grant_type=client_credential&appid={appid}&secret={secret_q}",
                        self.paths.token
                    )),
                    (Platform::Mp, TokenApi::Stable) => {
                        let body = serde_json::json!({
                            "grant_type": "client_credential",
                            "appid": self.appid,
                            "secret": secret.expose(),
                            "force_refresh": force,
                        });
                        http.post(format!("{base}{MP_STABLE_TOKEN_PATH}"))
                            .json(&body)
                    }
                    (Platform::Work, _) => http.get(format!(
                        "{base}{}?corpid={appid}&corpsecret={secret_q}",
                        self.paths.token
                    )),
                }
            })
            .await?;
        issued(&body, "access_token")
    }

    /// `POST /cgi-bin/component/api_component_token` with the newest verify ticket.
    async fn fetch_component_token(
        &self,
        c: &Component,
        deadline: &Deadline,
    ) -> Result<Issued, WeChatError> {
        let secrets = match deadline.run(c.secrets.get()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(WeChatError::NoSecret(e.0)),
            Err(_) => return Err(WeChatError::NoTime),
        };
        let ticket = match deadline.run(c.tickets.verify_ticket()).await {
            Ok(Ok(Some((ticket, _)))) => ticket,
            Ok(Ok(None)) => return Err(WeChatError::NoVerifyTicket("none kept".into())),
            Ok(Err(e)) => return Err(WeChatError::NoVerifyTicket(format!("reading it: {e}"))),
            Err(_) => return Err(WeChatError::NoTime),
        };
        let body = serde_json::json!({
            "component_appid": secrets.appid,
            "component_appsecret": secrets.app_secret.expose(),
            "component_verify_ticket": ticket,
        });
        let body = self
            .call(Call::Read, deadline, |http, base| {
                http.post(format!("{base}{COMPONENT_TOKEN_PATH}"))
                    .json(&body)
            })
            .await?;
        issued(&body, "component_access_token")
    }

    /// `api_query_auth`: what an authorization code stands for.
    pub async fn query_auth(
        &self,
        component_appid: &str,
        component_token: &str,
        code: &str,
        deadline: &Deadline,
    ) -> Result<AuthorizationInfo, WeChatError> {
        let body =
            serde_json::json!({"component_appid": component_appid, "authorization_code": code});
        let answer = self
            .component_call(QUERY_AUTH_PATH, component_token, &body, deadline)
            .await?;
        let info = answer
            .get("authorization_info")
            .and_then(Value::as_object)
            .ok_or_else(|| WeChatError::Unreachable("answer lacks authorization_info".into()))?;
        let appid = info
            .get("authorizer_appid")
            .or_else(|| info.get("appid"))
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| WeChatError::Unreachable("answer lacks authorizer_appid".into()))?;
        let permissions = info
            .get("func_info")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|f| f.pointer("/funcscope_category/id").and_then(Value::as_u64))
                    .collect()
            })
            .unwrap_or_default();
        Ok(AuthorizationInfo {
            appid: appid.to_string(),
            token: issued(info, "authorizer_access_token").ok(),
            refresh_token: info
                .get("authorizer_refresh_token")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
                .map(str::to_string),
            permissions,
        })
    }

    /// `api_get_authorizer_info`'s `authorizer_refresh_token`: the account's refresh token as
    /// WeChat holds it (WeChat's way back to one that was lost).
    pub async fn authorizer_refresh_token(
        &self,
        component_appid: &str,
        component_token: &str,
        deadline: &Deadline,
    ) -> Result<Option<String>, WeChatError> {
        let body =
            serde_json::json!({"component_appid": component_appid, "authorizer_appid": self.appid});
        let answer = self
            .component_call(AUTHORIZER_INFO_PATH, component_token, &body, deadline)
            .await?;
        Ok(answer
            .get("authorization_info")
            .and_then(|i| i.get("authorizer_refresh_token"))
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
            .map(str::to_string))
    }

    /// `api_get_authorizer_info`: whether the account is a mini program.
    pub async fn authorizer_is_mini(
        &self,
        component_appid: &str,
        component_token: &str,
        authorizer: &str,
        deadline: &Deadline,
    ) -> Result<bool, WeChatError> {
        let body =
            serde_json::json!({"component_appid": component_appid, "authorizer_appid": authorizer});
        let answer = self
            .component_call(AUTHORIZER_INFO_PATH, component_token, &body, deadline)
            .await?;
        Ok(answer
            .get("authorizer_info")
            .and_then(|i| i.get("MiniProgramInfo"))
            .is_some())
    }

    /// `api_create_preauthcode`: a pre-auth code and how long it lasts (s).
    pub async fn pre_auth_code(
        &self,
        component_appid: &str,
        component_token: &str,
        deadline: &Deadline,
    ) -> Result<Issued, WeChatError> {
        let body = serde_json::json!({"component_appid": component_appid});
        let answer = self
            .component_call(PRE_AUTH_CODE_PATH, component_token, &body, deadline)
            .await?;
        issued(&answer, "pre_auth_code")
    }

    /// A component API call with the platform's token in the query.
    async fn component_call(
        &self,
        path: &str,
        component_token: &str,
        body: &Value,
        deadline: &Deadline,
    ) -> Result<Map<String, Value>, WeChatError> {
        let token = enc(component_token);
        self.call(Call::Read, deadline, |http, base| {
            http.post(format!("{base}{path}?component_access_token={token}"))
                .json(body)
        })
        .await
    }

    /// An authorized account's new access token (`api_authorizer_token`, with the platform's
    /// token and the account's refresh token), and the refresh token WeChat answered with it.
    pub async fn fetch_authorizer_token(
        &self,
        component_appid: &str,
        component_token: &str,
        refresh_token: &str,
        deadline: &Deadline,
    ) -> Result<(Issued, String), WeChatError> {
        let body = serde_json::json!({
            "component_appid": component_appid,
            "authorizer_appid": self.appid,
            "authorizer_refresh_token": refresh_token,
        });
        let token = enc(component_token);
        let answer = self
            .call(Call::Read, deadline, |http, base| {
                http.post(format!(
                    "{base}{AUTHORIZER_TOKEN_PATH}?component_access_token={token}"
                ))
                .json(&body)
            })
            .await?;
        let issued = issued(&answer, "authorizer_access_token")?;
        // WeChat answers the refresh token with the token (the same one, as it documents); one
        // missing is read as unchanged.
        let refresh = answer
            .get("authorizer_refresh_token")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
            .unwrap_or(refresh_token)
            .to_string();
        Ok((issued, refresh))
    }

    /// A JS-SDK ticket: `/cgi-bin/ticket/getticket?type=jsapi|wx_card` (Official Accounts),
    /// `/cgi-bin/get_jsapi_ticket` and `/cgi-bin/ticket/get?type=wx_card` (WeCom).
    pub async fn fetch_ticket(
        &self,
        access_token: &str,
        kind: TicketKind,
        deadline: &Deadline,
    ) -> Result<Issued, WeChatError> {
        let token = enc(access_token);
        let body = self
            .call(Call::Read, deadline, |http, base| {
                let url = match (self.platform, kind) {
                    (Platform::Mp, _) => format!(
                        "{base}{}?access_token={token}&type={}",
                        self.paths.jsapi_ticket,
                        kind.as_str()
                    ),
                    (Platform::Work, TicketKind::Jsapi) => {
                        format!("{base}{}?access_token={token}", self.paths.jsapi_ticket)
                    }
                    // `/cgi-bin/ticket/get?type=wx_card|agent_config`.
                    (Platform::Work, TicketKind::WxCard | TicketKind::AgentConfig) => format!(
                        "{base}{}?access_token={token}&type={}",
                        self.paths.wx_card_ticket,
                        kind.as_str()
                    ),
                };
                http.get(url)
            })
            .await?;
        issued(&body, "ticket")
    }

    /// Asks WeChat whether `access_token` is alive: `Ok` when it is, WeChat's errcode (40001,
    /// 40014, 42001) when it is dead.
    pub async fn probe(&self, access_token: &str, deadline: &Deadline) -> Result<(), WeChatError> {
        let token = enc(access_token);
        self.send(Call::Read, deadline, |http, base| {
            http.get(format!("{base}{API_DOMAIN_IP_PATH}?access_token={token}"))
        })
        .await
        .map(|_| ())
    }

    /// POSTs a JSON body to an invoice path with `access_token` and returns WeChat's body unchanged
    /// when errcode is 0.
    pub async fn post(
        &self,
        path: &str,
        access_token: &str,
        json: Bytes,
        call: Call,
        deadline: &Deadline,
    ) -> Result<Reply, WeChatError> {
        let token = enc(access_token);
        let body = self
            .send(call, deadline, |http, base| {
                http.post(format!("{base}{path}?access_token={token}"))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(json.clone())
            })
            .await?;
        Ok(Reply { body })
    }

    async fn call(
        &self,
        call: Call,
        deadline: &Deadline,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Map<String, Value>, WeChatError> {
        let bytes = self.send(call, deadline, build).await?;
        serde_json::from_slice(&bytes)
            .map_err(|_| WeChatError::Unreachable("answer is not a JSON object".into()))
    }
}

/// Longest lifetime believed of a token or ticket, seconds.
pub const MAX_EXPIRES_IN: u64 = 86_400;

fn issued(body: &Map<String, Value>, field: &str) -> Result<Issued, WeChatError> {
    let value = body
        .get(field)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty());
    // WeChat documents at most 7200 s; anything beyond a day is not believed.
    let expires_in = body
        .get("expires_in")
        .and_then(Value::as_u64)
        .filter(|s| *s > 0)
        .map(|s| s.min(MAX_EXPIRES_IN));
    match (value, expires_in) {
        (Some(v), Some(e)) => Ok(Issued {
            value: v.to_string(),
            expires_in: e,
        }),
        _ => Err(WeChatError::Unreachable(format!(
            "answer lacks {field} or expires_in"
        ))),
    }
}

/// RFC 3986's unreserved characters pass through a query value; everything else is encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}
