//! Configuration from environment variables (see docs/reference.md), read once per process.
//! The AppSecret comes either from `WECHAT_SECRET` (local runs) or, deployed, from the Secrets
//! Manager secret named by `WECHAT_SECRET_ARN`, read when the first refresh needs it.

use std::fmt;
use std::time::Duration;

pub use crate::domain::env::ConfigError;
use crate::domain::env::Env;
use crate::domain::origin::origin_of;
pub use crate::domain::timing::{Limits, Timing};

/// Official Accounts' API host.
pub const MP_API_BASE: &str = "https://api.weixin.qq.com";
/// Official Accounts' disaster-recovery host (通用异地容灾域名), for when the API host cannot be
/// reached. WeCom documents none.
pub const MP_API_BACKUP_BASE: &str = "https://api2.weixin.qq.com";
/// WeCom's API host.
pub const WORK_API_BASE: &str = "https://qyapi.weixin.qq.com";

/// Which WeChat: Official Accounts (`mp`) or WeCom (`work`, 企业微信).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Mp,
    Work,
}

/// How an Official Account's access_token is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenApi {
    /// `/cgi-bin/token`: a new token per call, the previous one honoured 5 more minutes.
    Classic,
    /// `/cgi-bin/stable_token`: isolated from `/cgi-bin/token`; the same token until its last
    /// 5 minutes (normal mode), `force_refresh` at most 20 a day.
    Stable,
}

/// A value that must never reach a log: Debug prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the AppSecret comes from.
#[derive(Debug, Clone)]
pub enum SecretSource {
    Plain(Secret),
    SecretsManager { arn: String },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub platform: Platform,
    pub token_api: TokenApi,
    /// AppID (Official Account) or corpid (WeCom).
    pub appid: String,
    /// WeCom: the agent whose pages call `agentConfig` (`WECHAT_AGENT_ID`); getToken then also
    /// signs the page with the agent's ticket. None: `wx.config` alone.
    pub agentid: Option<String>,
    /// Where the AppSecret comes from; needed only when a refresh fetches an access_token.
    pub secret: Option<SecretSource>,
    /// WeChat's API host, or the simulator's.
    pub api_base: String,
    /// Whether `http://` WeChat bases are allowed (`WECHAT_ALLOW_HTTP=true`, for the simulator).
    pub allow_http: bool,
    /// Tried once when `api_base` cannot be reached (`WECHAT_API_BACKUP_BASE`; `off` for none).
    /// Default: Official Accounts' disaster-recovery host when `api_base` is the default host.
    pub api_backup_base: Option<String>,
    pub table: String,
    /// The page URL signed for `wx.config` when the caller names none (the spec's fixed `url`).
    pub jssdk_url: String,
    /// Origins (`scheme://host[:port]`) whose pages may be signed and may call the API from a
    /// browser (CORS). Default: the origin of `jssdk_url`.
    pub allowed_origins: Vec<String>,
    /// `false` (hardened mode): getToken leaves `access_token` out and the invoice endpoints use
    /// the stored token, so the token never leaves the gateway.
    pub expose_access_token: bool,
    pub timing: Timing,
    pub limits: Limits,
    /// The audit trail of status changes (`AUDIT_TABLE`); none when unset.
    pub audit_table: Option<String>,
    /// How long audit records are kept (`AUDIT_RETENTION_DAYS`, 0: for ever).
    pub audit_retention: Option<Duration>,
    /// The PDF archive (`ARCHIVE_BUCKET`); none when unset.
    pub archive: Option<ArchiveConfig>,
    /// The claim table (`CLAIM_TABLE`), which records idempotency keys; none when unset, and
    /// status changes with an `Idempotency-Key` are then refused.
    pub claim_table: Option<String>,
    /// How long an idempotency key's record is kept (`IDEMPOTENCY_TTL_SECS`, default a day).
    pub idempotency_ttl: Duration,
    /// WeChat calls each app may make per day, counted in the claim table by every instance
    /// (`WECHAT_DAILY_BUDGET`, 0: no budget); see `domain::budget`.
    pub wechat_daily_budget: u64,
    /// The claim of the JWT authorizer's tokens that names the apps a caller may use
    /// (`APPS_CLAIM`, default `wxinvoice_apps`); see `apps::Grants`.
    pub apps_claim: String,
    /// Registered apps' secrets are the Secrets Manager secrets `<prefix><secret name>`
    /// (`APP_SECRET_PREFIX`), so the functions' IAM can be scoped to the prefix.
    pub app_secret_prefix: String,
    /// Registered apps the schedule refreshes at once when it rotates them itself (no rotation
    /// queue), and the apps one worker invocation rotates at once (`SCHEDULE_CONCURRENCY`).
    pub schedule_concurrency: usize,
    /// The SQS queue the hourly sweep sends the registered apps that fall due to
    /// (`ROTATION_QUEUE_URL`); none: the sweep rotates them itself.
    pub rotation_queue: Option<String>,
    /// Each app's rotation is delayed by an offset of its own within this spread
    /// (`ROTATION_SPREAD_SECS`, at most SQS's 900 s), so the hour's rotations are a stream, not a
    /// burst; `REFRESH_AHEAD_SECS` covers it (see `domain::sweep`).
    pub rotation_spread: Duration,
    /// The deployment is a third-party platform (第三方平台) whose secrets are this Secrets
    /// Manager secret (`COMPONENT_SECRET_ARN`, JSON: component_appid, component_appsecret, token,
    /// encoding_aes_key); none: it is not one, and its event URL answers 404.
    pub component_secret_arn: Option<String>,
    /// A push whose signed timestamp is further than this from now is refused as a replay
    /// (`COMPONENT_PUSH_WINDOW_SECS`, default 300).
    pub component_push_window: Duration,
    /// WeChat's batch query answers in the order asked (`BATCH_KEEPS_ORDER`; inferred from one
    /// SDK's documentation). `false`: a request whose invoices share a card_id is answered by
    /// single queries, which name their invoice, instead of pairing the batch by position.
    pub batch_keeps_order: bool,
}

/// The PDF archive's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveConfig {
    pub bucket: String,
    pub max_bytes: u64,
    pub timeout: Duration,
    pub link_ttl: Duration,
    pub allow_http: bool,
}

/// Audit records are kept ten years unless configured (China keeps accounting vouchers for at
/// least that long).
const DEFAULT_AUDIT_RETENTION_DAYS: u64 = 3650;

/// WeChat does not publish the reimburser APIs' daily quota (an account's 接口权限 page shows
/// its own): the default stays well below the six-figure quotas it shows for its other APIs, and
/// is meant to be set from the account's figure.
const DEFAULT_WECHAT_DAILY_BUDGET: u64 = 50_000;

/// Largest PDF archived (e-invoice PDFs are tens of kilobytes).
const DEFAULT_ARCHIVE_MAX_BYTES: usize = 10 * 1024 * 1024;

/// `ROTATION_SPREAD_SECS`: 0 to SQS's longest delay.
fn rotation_spread<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Duration, ConfigError> {
    let secs = env.whole(
        "ROTATION_SPREAD_SECS",
        crate::domain::sweep::DEFAULT_SPREAD_SECS,
    )?;
    if secs > crate::domain::sweep::MAX_SPREAD_SECS {
        return Err(ConfigError(format!(
            "ROTATION_SPREAD_SECS must be at most {} (SQS's longest delay)",
            crate::domain::sweep::MAX_SPREAD_SECS
        )));
    }
    Ok(Duration::from_secs(secs))
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(get);
        let secret = match (env.get("WECHAT_SECRET"), env.get("WECHAT_SECRET_ARN")) {
            (Some(s), _) => Some(SecretSource::Plain(Secret::new(s))),
            (None, Some(arn)) => Some(SecretSource::SecretsManager { arn }),
            (None, None) => None,
        };
        let (platform, token_api) = platform(&env)?;
        let jssdk_url = env.required("JSSDK_URL")?;
        let allowed_origins = allowed_origins(&env, &jssdk_url)?;
        // WeChat is reached over HTTPS only; plain HTTP is for the simulator, and must be asked for.
        let allow_http = env.flag("WECHAT_ALLOW_HTTP", false)?;
        let (api_base, api_backup_base) = api_bases(&env, platform, allow_http)?;
        let agentid = agentid(&env, platform)?;
        let mut timing = timing(&env)?;
        timing.agent_ticket = agentid.is_some();
        let config = Config {
            agentid,
            app_secret_prefix: env
                .get("APP_SECRET_PREFIX")
                .unwrap_or_else(|| "wxinvoice/apps/".into()),
            schedule_concurrency: env.count("SCHEDULE_CONCURRENCY", 10)?,
            rotation_queue: env.get("ROTATION_QUEUE_URL"),
            component_secret_arn: env.get("COMPONENT_SECRET_ARN").filter(|a| !a.is_empty()),
            component_push_window: push_window(&env)?,
            rotation_spread: rotation_spread(&env)?,
            batch_keeps_order: env.flag("BATCH_KEEPS_ORDER", true)?,
            audit_table: env.get("AUDIT_TABLE"),
            audit_retention: audit_retention(&env)?,
            archive: archive(&env, allow_http)?,
            claim_table: env.get("CLAIM_TABLE"),
            idempotency_ttl: idempotency_ttl(&env)?,
            wechat_daily_budget: env.whole("WECHAT_DAILY_BUDGET", DEFAULT_WECHAT_DAILY_BUDGET)?,
            apps_claim: env
                .get("APPS_CLAIM")
                .unwrap_or_else(|| "wxinvoice_apps".into()),
            platform,
            token_api,
            allow_http,
            appid: env.required("WECHAT_APPID")?,
            secret,
            api_base,
            api_backup_base,
            table: env.required("TOKEN_TABLE")?,
            jssdk_url,
            allowed_origins,
            expose_access_token: env.flag("EXPOSE_ACCESS_TOKEN", true)?,
            timing,
            limits: Limits {
                max_body_bytes: env.count("MAX_BODY_BYTES", Limits::default().max_body_bytes)?,
                max_items: env.count("MAX_ITEMS", Limits::default().max_items)?,
            },
        };
        config.check()?;
        Ok(config)
    }

    /// Each timing within its bounds, and the relations between them that the refresh lock
    /// relies on.
    pub fn check(&self) -> Result<(), ConfigError> {
        check_timing(&self.timing)
    }
}

/// Each timing within its bounds, and the relations between them that the refresh lock relies on.
fn check_timing(t: &Timing) -> Result<(), ConfigError> {
    let secs = Duration::from_secs;
    let ms = Duration::from_millis;
    #[rustfmt::skip]
    let bounds = [
        ("WECHAT_TIMEOUT_MS", t.wechat_timeout, ms(100), secs(30), "ms"),
        ("DYNAMODB_TIMEOUT_MS", t.dynamodb_timeout, ms(100), secs(30), "ms"),
        ("REFRESH_LEASE_MS", t.lease, ms(100), secs(120), "ms"),
        ("REFRESH_WAIT_MS", t.wait, ms(0), secs(60), "ms"),
        // WeChat's own grace is 5 minutes: a longer one would accept tokens it dropped.
        ("TOKEN_GRACE_SECS", t.grace, secs(0), secs(300), "s"),
        // A token lives 7200 s: rotating earlier than that would rotate on every run.
        ("REFRESH_AHEAD_SECS", t.rotate_ahead, secs(0), secs(7200), "s"),
        ("REFRESH_MARGIN_SECS", t.lazy_margin, secs(0), secs(7200), "s"),
        ("REFRESH_COOLDOWN_SECS", t.cooldown, secs(0), secs(86_400), "s"),
        ("CACHE_TTL_SECS", t.cache_ttl, secs(0), secs(300), "s"),
        ("DEADLINE_RESERVE_MS", t.deadline_reserve, ms(0), secs(5), "ms"),
        ("REQUEST_BUDGET_MS", t.request_budget, ms(100), secs(900), "ms"),
    ];
    for (name, value, low, high, unit) in bounds {
        if value < low || value > high {
            let show = |d: Duration| match unit {
                "s" => d.as_secs(),
                _ => d.as_millis() as u64,
            };
            return Err(ConfigError(format!(
                "{name} must be between {} and {} ({unit}), not {}",
                show(low),
                show(high),
                show(value)
            )));
        }
    }
    relations(t)
}

/// The relations between timings the refresh lock relies on.
fn relations(t: &Timing) -> Result<(), ConfigError> {
    let fail = |m: &str| Err(ConfigError(m.into()));
    // One refresh makes up to three WeChat calls (token, jsapi ticket, wx_card ticket).
    if t.lease <= t.wechat_timeout * 3 {
        return fail(
            "REFRESH_LEASE_MS must be longer than three WeChat calls (3 × WECHAT_TIMEOUT_MS)",
        );
    }
    if t.cache_ttl >= t.grace && !t.grace.is_zero() {
        return fail(
            "CACHE_TTL_SECS must be shorter than TOKEN_GRACE_SECS (a replaced token must still work)",
        );
    }
    if t.grace.is_zero() && !t.cache_ttl.is_zero() {
        return fail("CACHE_TTL_SECS must be 0 when TOKEN_GRACE_SECS is 0");
    }
    if t.lazy_margin > t.rotate_ahead {
        return fail("REFRESH_MARGIN_SECS must not exceed REFRESH_AHEAD_SECS");
    }
    Ok(())
}

fn timing<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Timing, ConfigError> {
    let d = Timing::default();
    Ok(Timing {
        wechat_timeout: env.ms("WECHAT_TIMEOUT_MS", d.wechat_timeout)?,
        dynamodb_timeout: env.ms("DYNAMODB_TIMEOUT_MS", d.dynamodb_timeout)?,
        lease: env.ms("REFRESH_LEASE_MS", d.lease)?,
        wait: env.ms("REFRESH_WAIT_MS", d.wait)?,
        rotate_ahead: env.secs("REFRESH_AHEAD_SECS", d.rotate_ahead)?,
        lazy_margin: env.secs("REFRESH_MARGIN_SECS", d.lazy_margin)?,
        grace: env.secs("TOKEN_GRACE_SECS", d.grace)?,
        cooldown: env.secs("REFRESH_COOLDOWN_SECS", d.cooldown)?,
        cache_ttl: env.secs("CACHE_TTL_SECS", d.cache_ttl)?,
        deadline_reserve: env.ms("DEADLINE_RESERVE_MS", d.deadline_reserve)?,
        request_budget: env.ms("REQUEST_BUDGET_MS", d.request_budget)?,
        tickets: true,
        agent_ticket: false,
    })
}

/// `COMPONENT_PUSH_WINDOW_SECS`: 10 s to an hour.
fn push_window<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Duration, ConfigError> {
    let window = env.secs("COMPONENT_PUSH_WINDOW_SECS", Duration::from_secs(300))?;
    if !(10..=3600).contains(&window.as_secs()) {
        return Err(ConfigError(
            "COMPONENT_PUSH_WINDOW_SECS must be between 10 and 3600".into(),
        ));
    }
    Ok(window)
}

/// `WECHAT_AGENT_ID`: a WeCom agent's id (digits), on WeCom only.
fn agentid<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    platform: Platform,
) -> Result<Option<String>, ConfigError> {
    let Some(agent) = env.get("WECHAT_AGENT_ID").filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    if platform != Platform::Work {
        return Err(ConfigError(
            "WECHAT_AGENT_ID is for WeCom (WECHAT_PLATFORM=work)".into(),
        ));
    }
    if agent.len() > 20 || !agent.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError("WECHAT_AGENT_ID must be a number".into()));
    }
    Ok(Some(agent))
}

fn platform<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<(Platform, TokenApi), ConfigError> {
    let platform = match env.get("WECHAT_PLATFORM").as_deref() {
        None | Some("mp") => Platform::Mp,
        Some("work") => Platform::Work,
        Some(_) => return Err(ConfigError("WECHAT_PLATFORM must be mp or work".into())),
    };
    let token_api = match env.get("WECHAT_TOKEN_API").as_deref() {
        None | Some("classic") => TokenApi::Classic,
        Some("stable") if platform == Platform::Mp => TokenApi::Stable,
        Some("stable") => {
            return Err(ConfigError(
                "WECHAT_TOKEN_API=stable is for Official Accounts (mp) only".into(),
            ))
        }
        Some(_) => {
            return Err(ConfigError(
                "WECHAT_TOKEN_API must be classic or stable".into(),
            ))
        }
    };
    Ok((platform, token_api))
}

fn allowed_origins<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    jssdk_url: &str,
) -> Result<Vec<String>, ConfigError> {
    let Some(list) = env.get("ALLOWED_ORIGINS") else {
        let own = origin_of(jssdk_url)
            .ok_or_else(|| ConfigError("JSSDK_URL is not an http(s) URL".into()))?;
        return Ok(vec![own]);
    };
    list.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            origin_of(o)
                .ok_or_else(|| ConfigError(format!("ALLOWED_ORIGINS: `{o}` is not an origin")))
        })
        .collect()
}

/// WeChat's API host and its backup, each https unless plain http is allowed.
fn api_bases<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    platform: Platform,
    allow_http: bool,
) -> Result<(String, Option<String>), ConfigError> {
    let default_base = match platform {
        Platform::Mp => MP_API_BASE,
        Platform::Work => WORK_API_BASE,
    };
    let api_base = env
        .get("WECHAT_API_BASE")
        .unwrap_or_else(|| default_base.to_string())
        .trim_end_matches('/')
        .to_string();
    let api_backup_base = match env.get("WECHAT_API_BACKUP_BASE").as_deref() {
        Some("off") => None,
        Some(b) => Some(b.trim_end_matches('/').to_string()),
        None => (api_base == MP_API_BASE).then(|| MP_API_BACKUP_BASE.to_string()),
    };
    for (name, base) in [
        ("WECHAT_API_BASE", Some(&api_base)),
        ("WECHAT_API_BACKUP_BASE", api_backup_base.as_ref()),
    ] {
        let Some(base) = base else { continue };
        let scheme_ok = base.starts_with("https://") || (allow_http && base.starts_with("http://"));
        if !scheme_ok {
            return Err(ConfigError(format!(
                "{name} must be an https:// URL (http:// only with WECHAT_ALLOW_HTTP=true, for the simulator)"
            )));
        }
    }
    Ok((api_base, api_backup_base))
}

fn audit_retention<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Option<Duration>, ConfigError> {
    let days = |d: u64| Duration::from_secs(d * 86_400);
    match env.get("AUDIT_RETENTION_DAYS").as_deref() {
        None => Ok(Some(days(DEFAULT_AUDIT_RETENTION_DAYS))),
        Some("0") => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|d| *d <= 36_500)
            .map(|d| Some(days(d)))
            .ok_or_else(|| ConfigError("AUDIT_RETENTION_DAYS must be between 0 and 36500".into())),
    }
}

fn idempotency_ttl<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Duration, ConfigError> {
    let ttl = env.secs("IDEMPOTENCY_TTL_SECS", Duration::from_secs(86_400))?;
    // At least the longest a client keeps retrying; at most the audit trail's month of pending work.
    if ttl < Duration::from_secs(3600) || ttl > Duration::from_secs(30 * 86_400) {
        return Err(ConfigError(
            "IDEMPOTENCY_TTL_SECS must be between 3600 and 2592000 (s)".into(),
        ));
    }
    Ok(ttl)
}

fn archive<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    allow_http: bool,
) -> Result<Option<ArchiveConfig>, ConfigError> {
    let Some(bucket) = env.get("ARCHIVE_BUCKET") else {
        return Ok(None);
    };
    let a = ArchiveConfig {
        bucket,
        max_bytes: env.count("ARCHIVE_MAX_BYTES", DEFAULT_ARCHIVE_MAX_BYTES)? as u64,
        timeout: env.ms("ARCHIVE_TIMEOUT_MS", Duration::from_millis(5000))?,
        link_ttl: env.secs("ARCHIVE_LINK_SECS", Duration::from_secs(900))?,
        allow_http,
    };
    if a.timeout < Duration::from_millis(100) || a.timeout > Duration::from_secs(15) {
        return Err(ConfigError(
            "ARCHIVE_TIMEOUT_MS must be between 100 and 15000 (ms)".into(),
        ));
    }
    // Links are signed with the function's session credentials, which end within hours.
    if a.link_ttl < Duration::from_secs(60) || a.link_ttl > Duration::from_secs(3600) {
        return Err(ConfigError(
            "ARCHIVE_LINK_SECS must be between 60 and 3600 (s)".into(),
        ));
    }
    Ok(Some(a))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
