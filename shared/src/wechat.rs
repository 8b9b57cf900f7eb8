//! The WeChat API client: fetches access_token and JS-SDK tickets, and forwards invoice calls.
//! Every call has an explicit timeout; errors never carry the request URL (it holds the
//! AppSecret or an access_token).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::config::{Config, Platform, Secret, TokenApi};
use crate::deadline::Deadline;
use crate::envelope::{ApiError, WeChatErrorBody};
use crate::secret::AppSecret;

/// WeChat's paths for one platform.
#[derive(Debug, Clone, Copy)]
pub struct Paths {
    pub token: &'static str,
    pub jsapi_ticket: &'static str,
    pub wx_card_ticket: &'static str,
    pub invoice_batch: &'static str,
    pub update_status_batch: &'static str,
    pub invoice_info: &'static str,
    pub update_status_one: &'static str,
}

/// Official Accounts (api.weixin.qq.com); with `WECHAT_TOKEN_API=stable` the token comes from
/// `/cgi-bin/stable_token` instead.
pub const MP_PATHS: Paths = Paths {
    token: "/cgi-bin/token",
    jsapi_ticket: "/cgi-bin/ticket/getticket",
    wx_card_ticket: "/cgi-bin/ticket/getticket",
    invoice_batch: "/card/invoice/reimburse/getinvoicebatch",
    update_status_batch: "/card/invoice/reimburse/updatestatusbatch",
    invoice_info: "/card/invoice/reimburse/getinvoiceinfo",
    update_status_one: "/card/invoice/reimburse/updateinvoicestatus",
};

pub const MP_STABLE_TOKEN_PATH: &str = "/cgi-bin/stable_token";

/// WeChat's API addresses (`/cgi-bin/get_api_domain_ip`, one path on Official Accounts and WeCom):
/// needs a live access_token and spends no token quota, so it answers "is this token alive".
pub const API_DOMAIN_IP_PATH: &str = "/cgi-bin/get_api_domain_ip";

/// WeCom (qyapi.weixin.qq.com): note `getinvoiceinfobatch`, not the Official Account name.
pub const WORK_PATHS: Paths = Paths {
    token: "/cgi-bin/gettoken",
    jsapi_ticket: "/cgi-bin/get_jsapi_ticket",
    wx_card_ticket: "/cgi-bin/ticket/get",
    invoice_batch: "/cgi-bin/card/invoice/reimburse/getinvoiceinfobatch",
    update_status_batch: "/cgi-bin/card/invoice/reimburse/updatestatusbatch",
    invoice_info: "/cgi-bin/card/invoice/reimburse/getinvoiceinfo",
    update_status_one: "/cgi-bin/card/invoice/reimburse/updateinvoicestatus",
};

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

/// The two JS-SDK tickets: `jsapi` signs `wx.config`, `wx_card` signs `chooseInvoice`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketKind {
    Jsapi,
    WxCard,
}

impl TicketKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketKind::Jsapi => "jsapi",
            TicketKind::WxCard => "wx_card",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WeChatError {
    /// WeChat answered with errcode ≠ 0.
    Api(WeChatErrorBody),
    /// Sent, and no answer within the timeout: WeChat may have acted on it.
    Timeout(String),
    /// Sent, and the answer was lost or is not WeChat's API (dropped connection, HTTP 5xx, a body
    /// that is not JSON): WeChat may have acted on it.
    Unreachable(String),
    /// Never left: the connection could not be made.
    NotSent(String),
    /// Not started: the request's deadline leaves no time for it.
    NoTime,
    /// The AppSecret could not be had (Secrets Manager failed, or none is configured).
    NoSecret(String),
}

impl WeChatError {
    /// Whether WeChat surely did nothing: it answered an error, or was never asked.
    pub fn nothing_done(&self) -> bool {
        matches!(
            self,
            WeChatError::Api(_)
                | WeChatError::NotSent(_)
                | WeChatError::NoTime
                | WeChatError::NoSecret(_)
        )
    }
}

impl std::fmt::Display for WeChatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WeChatError::Api(b) => write!(f, "errcode {}", b.errcode),
            WeChatError::Timeout(m) => write!(f, "timeout: {m}"),
            WeChatError::Unreachable(m) | WeChatError::NotSent(m) => write!(f, "unreachable: {m}"),
            WeChatError::NoTime => f.write_str("the request's time ran out before calling WeChat"),
            WeChatError::NoSecret(m) => write!(f, "AppSecret: {m}"),
        }
    }
}

impl From<WeChatError> for ApiError {
    fn from(e: WeChatError) -> Self {
        match e {
            WeChatError::Api(b) => ApiError::WeChat(b),
            WeChatError::Timeout(m) => ApiError::WeChatTimeout(m),
            WeChatError::NoTime => {
                ApiError::WeChatTimeout("the request's time ran out before calling WeChat".into())
            }
            WeChatError::Unreachable(m) | WeChatError::NotSent(m) => ApiError::WeChatUnreachable(m),
            WeChatError::NoSecret(m) => ApiError::Internal {
                public: "AppSecret unavailable",
                detail: format!("AppSecret: {m}"),
            },
        }
    }
}

/// errcodes by which WeChat rejects the AppSecret of a token fetch (WeCom answers 40001 for a
/// wrong corpsecret, Official Accounts 40125, and 40001 on older servers).
pub const SECRET_REJECTED: [i64; 2] = [40001, 40125];

/// What a call does at WeChat, which decides whether it may be sent again elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Reads and token/ticket fetches: safe to repeat.
    Read,
    /// A status change: repeating one WeChat may have applied is not safe, so it is never sent
    /// twice, and not started without the full WeChat timeout left.
    Change,
}

/// Shortest time worth starting a call with.
const MIN_CALL: Duration = Duration::from_millis(50);

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
    timeout: Duration,
    base: String,
    /// WeChat's disaster-recovery host, tried once when `base` cannot be reached.
    backup: Option<String>,
    allow_http: bool,
    appid: String,
    secret: Arc<AppSecret>,
    platform: Platform,
    token_api: TokenApi,
    paths: Paths,
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
        }
    }

    /// A client for another app (its settings and secret) sharing this one's HTTP connections.
    pub fn for_app(&self, config: &Config, secret: AppSecret) -> Self {
        WeChatClient {
            http: self.http.clone(),
            ..WeChatClient::new(config, secret)
        }
    }

    /// The HTTP client: no redirects (WeChat's API never redirects; a redirect would carry the
    /// AppSecret or token in its URL elsewhere), HTTPS only unless the configuration allows the
    /// simulator's plain HTTP. A build failure is an error of the call, not an abort.
    fn http(&self) -> Result<&reqwest::Client, WeChatError> {
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
    /// the lease.
    pub async fn app_secret(&self, deadline: &Deadline) -> Result<Secret, WeChatError> {
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
                    (Platform::Work, TicketKind::WxCard) => format!(
                        "{base}{}?access_token={token}&type=wx_card",
                        self.paths.wx_card_ticket
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

    /// Sends to the API host and, when that fails in a way the backup host can mend, once more
    /// to the backup: a connection that could not be made (the request never left) for any
    /// call; a timeout or a 5xx only for a call that is safe to repeat.
    async fn send(
        &self,
        call: Call,
        deadline: &Deadline,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, WeChatError> {
        let first = self.send_to(&self.base, call, deadline, &build).await;
        let (Err(e), Some(backup)) = (&first, &self.backup) else {
            return first;
        };
        let mendable = match e {
            WeChatError::NotSent(_) => true,
            WeChatError::Timeout(_) | WeChatError::Unreachable(_) => call == Call::Read,
            _ => false,
        };
        if !mendable || !deadline.allows(self.timeout) {
            return first;
        }
        self.send_to(backup, call, deadline, &build).await
    }

    /// One attempt against `base`, cut at the deadline: checks the status and that the answer is
    /// a JSON object, and splits off errcode ≠ 0; a successful answer is returned as WeChat sent
    /// it.
    async fn send_to(
        &self,
        base: &str,
        call: Call,
        deadline: &Deadline,
        build: &impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, WeChatError> {
        let timeout = deadline.bound(self.timeout);
        // A status change is not started unless it can run its whole course: cut short, its
        // outcome would be unknown.
        if timeout < MIN_CALL || (call == Call::Change && timeout < self.timeout) {
            return Err(WeChatError::NoTime);
        }
        let started = std::time::Instant::now();
        let answer = async {
            let resp = build(self.http()?, base)
                .timeout(timeout)
                .send()
                .await
                .map_err(classify)?;
            let status = resp.status();
            let bytes = Vec::from(resp.bytes().await.map_err(classify)?);
            Ok::<_, WeChatError>((status, bytes))
        }
        .await;
        crate::telemetry::wechat_call(started.elapsed());
        let (status, bytes) = answer?;
        if !status.is_success() {
            return Err(WeChatError::Unreachable(format!(
                "HTTP {}",
                status.as_u16()
            )));
        }
        // Only errcode is read here: a successful invoice answer goes back byte for byte, so
        // it is not built into a JSON tree on every request.
        #[derive(serde::Deserialize)]
        struct Head {
            errcode: Option<Value>,
        }
        let not_json = || WeChatError::Unreachable("answer is not a JSON object".into());
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(not_json());
        }
        let head: Head = serde_json::from_slice(&bytes).map_err(|_| not_json())?;
        match head.errcode.as_ref().map(Value::as_i64) {
            None | Some(Some(0)) => Ok(bytes),
            Some(Some(errcode)) => {
                let body = serde_json::from_slice(&bytes).map_err(|_| not_json())?;
                Err(WeChatError::Api(WeChatErrorBody { errcode, body }))
            }
            Some(None) => Err(WeChatError::Unreachable("errcode is not a number".into())),
        }
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

/// Describes a transport error without its URL (which holds secrets).
fn classify(e: reqwest::Error) -> WeChatError {
    let (timeout, connect) = (e.is_timeout(), e.is_connect());
    // The cause chain names the failure (refused, reset, DNS) and holds no URL.
    let mut causes = String::new();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        causes.push_str(": ");
        causes.push_str(&c.to_string());
        cause = c.source();
    }
    let msg = format!("{}{causes}", e.without_url());
    if connect {
        WeChatError::NotSent(msg)
    } else if timeout {
        WeChatError::Timeout(msg)
    } else {
        WeChatError::Unreachable(msg)
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass through).
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
