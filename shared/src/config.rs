//! Configuration from environment variables (docs/reference.md), read once per process.
//! The AppSecret comes either from `WECHAT_SECRET` (local runs) or, deployed, from the Secrets
//! Manager secret named by `WECHAT_SECRET_ARN`, read by `secret` when the first refresh needs it.

use std::fmt;
use std::time::Duration;

pub use crate::archive::ArchiveConfig;

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

/// A value that must never reach a log: Debug and Display print a placeholder.
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
    /// Registered apps' secrets are the Secrets Manager secrets `<prefix><secret name>`
    /// (`APP_SECRET_PREFIX`), so the functions' IAM can be scoped to the prefix.
    pub app_secret_prefix: String,
    /// Registered apps the schedule refreshes at once (`SCHEDULE_CONCURRENCY`).
    pub schedule_concurrency: usize,
    /// WeChat's batch query answers in the order asked (`BATCH_KEEPS_ORDER`; inferred from one
    /// SDK's documentation). `false`: a request whose invoices share a card_id is answered by
    /// single queries, which name their invoice, instead of pairing the batch by position.
    pub batch_keeps_order: bool,
}

/// Audit records are kept ten years unless configured (China keeps accounting vouchers for at
/// least that long).
const DEFAULT_AUDIT_RETENTION_DAYS: u64 = 3650;

/// Largest PDF archived (e-invoice PDFs are tens of kilobytes).
const DEFAULT_ARCHIVE_MAX_BYTES: usize = 10 * 1024 * 1024;

/// Timeouts and the refresh lock's clock. All bounded; the Lambda timeout in the template is longer.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Per call to WeChat (connect + answer).
    pub wechat_timeout: Duration,
    /// Per DynamoDB operation, retries included.
    pub dynamodb_timeout: Duration,
    /// How long a refresh holds the lock at most; longer than one refresh (three WeChat calls).
    pub lease: Duration,
    /// How long a request waits for another instance's refresh before answering 503.
    pub wait: Duration,
    /// The scheduled refresh rotates credentials that have less than this left.
    pub rotate_ahead: Duration,
    /// A request refreshes itself only when the stored access_token or jsapi_ticket has less than
    /// this left (normally the schedule got there first).
    pub lazy_margin: Duration,
    /// How long WeChat still honours the previous access_token after a refresh.
    pub grace: Duration,
    /// Forced refreshes (`type=manual`, or a token WeChat reports dead) happen at most once in
    /// this period; inside it the stored token is answered without calling WeChat.
    pub cooldown: Duration,
    /// How long an instance answers from its in-process copy of the state without reading the
    /// store; shorter than `grace`, so a token another instance replaced is still honoured.
    pub cache_ttl: Duration,
    /// Kept back from Lambda's deadline to write the answer.
    pub deadline_reserve: Duration,
    /// A request's time when the runtime gives no deadline (handlers called directly).
    pub request_budget: Duration,
    /// Whether the app keeps JS-SDK tickets (it signs pages); mini programs need none, so their
    /// state is whole with an access_token alone.
    pub tickets: bool,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            wechat_timeout: Duration::from_millis(2500),
            dynamodb_timeout: Duration::from_millis(2000),
            lease: Duration::from_millis(10_000),
            wait: Duration::from_millis(5000),
            rotate_ahead: Duration::from_secs(3900),
            lazy_margin: Duration::from_secs(300),
            grace: Duration::from_secs(300),
            cooldown: Duration::from_secs(60),
            cache_ttl: Duration::from_secs(30),
            deadline_reserve: Duration::from_millis(500),
            request_budget: Duration::from_millis(19_500),
            tickets: true,
        }
    }
}

/// Request size limits, checked before anything is sent to WeChat.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            max_items: 100,
        }
    }
}

#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The origin (`scheme://host[:port]`, lower case, default port left out) of an http(s) URL.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let authority = authority
        .strip_suffix(&format!(":{default_port}"))
        .unwrap_or(&authority);
    let valid = authority
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    valid.then(|| format!("{scheme}://{authority}"))
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let required = |k: &str| get(k).ok_or_else(|| ConfigError(format!("{k} is not set")));
        let secret = match (get("WECHAT_SECRET"), get("WECHAT_SECRET_ARN")) {
            (Some(s), _) => Some(SecretSource::Plain(Secret::new(s))),
            (None, Some(arn)) => Some(SecretSource::SecretsManager { arn }),
            (None, None) => None,
        };
        let d = Timing::default();
        let ms = |k: &str, default: Duration| -> Result<Duration, ConfigError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.parse::<u64>().map(Duration::from_millis).map_err(|_| {
                    ConfigError(format!("{k} must be a whole number of milliseconds"))
                }),
            }
        };
        let secs = |k: &str, default: Duration| -> Result<Duration, ConfigError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|_| ConfigError(format!("{k} must be a whole number of seconds"))),
            }
        };
        let timing = Timing {
            wechat_timeout: ms("WECHAT_TIMEOUT_MS", d.wechat_timeout)?,
            dynamodb_timeout: ms("DYNAMODB_TIMEOUT_MS", d.dynamodb_timeout)?,
            lease: ms("REFRESH_LEASE_MS", d.lease)?,
            wait: ms("REFRESH_WAIT_MS", d.wait)?,
            rotate_ahead: secs("REFRESH_AHEAD_SECS", d.rotate_ahead)?,
            lazy_margin: secs("REFRESH_MARGIN_SECS", d.lazy_margin)?,
            grace: secs("TOKEN_GRACE_SECS", d.grace)?,
            cooldown: secs("REFRESH_COOLDOWN_SECS", d.cooldown)?,
            cache_ttl: secs("CACHE_TTL_SECS", d.cache_ttl)?,
            deadline_reserve: ms("DEADLINE_RESERVE_MS", d.deadline_reserve)?,
            request_budget: ms("REQUEST_BUDGET_MS", d.request_budget)?,
            tickets: true,
        };
        let dl = Limits::default();
        let count = |k: &str, default: usize| -> Result<usize, ConfigError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| ConfigError(format!("{k} must be a positive whole number"))),
            }
        };
        let limits = Limits {
            max_body_bytes: count("MAX_BODY_BYTES", dl.max_body_bytes)?,
            max_items: count("MAX_ITEMS", dl.max_items)?,
        };
        let platform = match get("WECHAT_PLATFORM").as_deref() {
            None | Some("mp") => Platform::Mp,
            Some("work") => Platform::Work,
            Some(_) => return Err(ConfigError("WECHAT_PLATFORM must be mp or work".into())),
        };
        let token_api = match get("WECHAT_TOKEN_API").as_deref() {
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
        let jssdk_url = required("JSSDK_URL")?;
        let allowed_origins = match get("ALLOWED_ORIGINS") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(|o| {
                    origin_of(o).ok_or_else(|| {
                        ConfigError(format!("ALLOWED_ORIGINS: `{o}` is not an origin"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![origin_of(&jssdk_url)
                .ok_or_else(|| ConfigError("JSSDK_URL is not an http(s) URL".into()))?],
        };
        let default_base = match platform {
            Platform::Mp => MP_API_BASE,
            Platform::Work => WORK_API_BASE,
        };
        let api_base = get("WECHAT_API_BASE")
            .unwrap_or_else(|| default_base.to_string())
            .trim_end_matches('/')
            .to_string();
        let flag = |k: &str, default: bool| -> Result<bool, ConfigError> {
            match get(k).as_deref() {
                None => Ok(default),
                Some("true") => Ok(true),
                Some("false") => Ok(false),
                Some(_) => Err(ConfigError(format!("{k} must be true or false"))),
            }
        };
        // WeChat is reached over HTTPS only; plain HTTP is for the simulator, and must be asked for.
        let allow_http = flag("WECHAT_ALLOW_HTTP", false)?;
        let api_backup_base = match get("WECHAT_API_BACKUP_BASE").as_deref() {
            Some("off") => None,
            Some(b) => Some(b.trim_end_matches('/').to_string()),
            None => (api_base == MP_API_BASE).then(|| MP_API_BACKUP_BASE.to_string()),
        };
        for (name, base) in [
            ("WECHAT_API_BASE", Some(&api_base)),
            ("WECHAT_API_BACKUP_BASE", api_backup_base.as_ref()),
        ] {
            let Some(base) = base else { continue };
            let scheme_ok =
                base.starts_with("https://") || (allow_http && base.starts_with("http://"));
            if !scheme_ok {
                return Err(ConfigError(format!(
                    "{name} must be an https:// URL (http:// only with WECHAT_ALLOW_HTTP=true, for the simulator)"
                )));
            }
        }
        let audit_table = get("AUDIT_TABLE").filter(|t| !t.is_empty());
        let audit_retention = match get("AUDIT_RETENTION_DAYS").as_deref() {
            None => Some(Duration::from_secs(DEFAULT_AUDIT_RETENTION_DAYS * 86_400)),
            Some("0") => None,
            Some(v) => Some(
                v.parse::<u64>()
                    .ok()
                    .filter(|d| *d <= 36_500)
                    .map(|d| Duration::from_secs(d * 86_400))
                    .ok_or_else(|| {
                        ConfigError("AUDIT_RETENTION_DAYS must be between 0 and 36500".into())
                    })?,
            ),
        };
        let archive = match get("ARCHIVE_BUCKET").filter(|b| !b.is_empty()) {
            None => None,
            Some(bucket) => Some(ArchiveConfig {
                bucket,
                max_bytes: count("ARCHIVE_MAX_BYTES", DEFAULT_ARCHIVE_MAX_BYTES)? as u64,
                timeout: ms("ARCHIVE_TIMEOUT_MS", Duration::from_millis(5000))?,
                link_ttl: secs("ARCHIVE_LINK_SECS", Duration::from_secs(900))?,
                allow_http,
            }),
        };
        if let Some(a) = &archive {
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
        }
        let config = Config {
            app_secret_prefix: get("APP_SECRET_PREFIX").unwrap_or_else(|| "wxinvoice/apps/".into()),
            schedule_concurrency: count("SCHEDULE_CONCURRENCY", 10)?,
            batch_keeps_order: flag("BATCH_KEEPS_ORDER", true)?,
            audit_table,
            audit_retention,
            archive,
            platform,
            token_api,
            allow_http,
            appid: required("WECHAT_APPID")?,
            secret,
            api_base,
            api_backup_base,
            table: required("TOKEN_TABLE")?,
            jssdk_url,
            allowed_origins,
            expose_access_token: flag("EXPOSE_ACCESS_TOKEN", true)?,
            timing,
            limits,
        };
        config.check()?;
        Ok(config)
    }

    /// Each timing within its bounds, and the relations between them that the refresh lock
    /// relies on.
    pub fn check(&self) -> Result<(), ConfigError> {
        let t = &self.timing;
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
        // One refresh makes up to three WeChat calls (token, jsapi ticket, wx_card ticket).
        if t.lease <= t.wechat_timeout * 3 {
            return Err(ConfigError(
                "REFRESH_LEASE_MS must be longer than three WeChat calls (3 × WECHAT_TIMEOUT_MS)"
                    .into(),
            ));
        }
        if t.cache_ttl >= t.grace && !t.grace.is_zero() {
            return Err(ConfigError(
                "CACHE_TTL_SECS must be shorter than TOKEN_GRACE_SECS (a replaced token must still work)".into(),
            ));
        }
        if t.grace.is_zero() && !t.cache_ttl.is_zero() {
            return Err(ConfigError(
                "CACHE_TTL_SECS must be 0 when TOKEN_GRACE_SECS is 0".into(),
            ));
        }
        if t.lazy_margin > t.rotate_ahead {
            return Err(ConfigError(
                "REFRESH_MARGIN_SECS must not exceed REFRESH_AHEAD_SECS".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 4] = [
        ("WECHAT_APPID", "wx1"),
        ("WECHAT_SECRET", "s3cr3t"),
        ("TOKEN_TABLE", "t"),
        ("JSSDK_URL", "https://example.com/"),
    ];

    #[test]
    fn defaults_apply_and_secret_is_redacted() {
        let c = from(&BASE).unwrap();
        assert_eq!(c.api_base, MP_API_BASE);
        assert_eq!(c.platform, Platform::Mp);
        assert_eq!(c.token_api, TokenApi::Classic);
        assert_eq!(c.allowed_origins, ["https://example.com"]);
        assert_eq!(c.timing.lease, Duration::from_secs(10));
        assert_eq!(c.limits.max_items, 100);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
    }

    #[test]
    fn missing_or_bad_values_are_named() {
        let e = from(&[
            ("WECHAT_APPID", "wx1"),
            ("JSSDK_URL", "https://a.example.com/"),
        ])
        .unwrap_err();
        assert!(e.0.contains("TOKEN_TABLE"));
        let mut v = BASE.to_vec();
        v.push(("WECHAT_TIMEOUT_MS", "fast"));
        assert!(from(&v).unwrap_err().0.contains("WECHAT_TIMEOUT_MS"));
        let mut v = BASE.to_vec();
        v.push(("REFRESH_LEASE_MS", "3000"));
        assert!(from(&v).unwrap_err().0.contains("REFRESH_LEASE_MS"));
    }

    #[test]
    fn bounds_are_checked_with_clear_messages() {
        #[rustfmt::skip]
        let table = [
            ("REFRESH_WAIT_MS", "18446744073709551615", "REFRESH_WAIT_MS must be between 0 and 60000 (ms)"),
            ("TOKEN_GRACE_SECS", "600", "TOKEN_GRACE_SECS must be between 0 and 300 (s), not 600"),
            ("WECHAT_TIMEOUT_MS", "10", "WECHAT_TIMEOUT_MS must be between 100 and 30000"),
            ("REFRESH_LEASE_MS", "600000", "REFRESH_LEASE_MS must be between 100 and 120000"),
            ("REFRESH_AHEAD_SECS", "9000", "REFRESH_AHEAD_SECS must be between 0 and 7200"),
            ("DEADLINE_RESERVE_MS", "60000", "DEADLINE_RESERVE_MS must be between 0 and 5000"),
            ("CACHE_TTL_SECS", "299", ""),
            ("EXPOSE_ACCESS_TOKEN", "1", "EXPOSE_ACCESS_TOKEN must be true or false"),
            ("BATCH_KEEPS_ORDER", "yes", "BATCH_KEEPS_ORDER must be true or false"),
            ("AUDIT_RETENTION_DAYS", "40000", "AUDIT_RETENTION_DAYS must be between 0 and 36500"),
            ("SCHEDULE_CONCURRENCY", "0", "SCHEDULE_CONCURRENCY must be a positive whole number"),
        ];
        for (key, value, message) in table {
            let mut v = BASE.to_vec();
            v.push((key, value));
            match from(&v) {
                Ok(_) => assert!(message.is_empty(), "{key}={value} was accepted"),
                Err(e) => assert!(
                    !message.is_empty() && e.0.contains(message),
                    "{key}={value}: {e}"
                ),
            }
        }
    }

    #[test]
    fn archive_settings_are_bounded_when_there_is_an_archive() {
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v = BASE.to_vec();
            v.push(("ARCHIVE_BUCKET", "b"));
            v.extend_from_slice(extra);
            from(&v)
        };
        let a = with(&[]).unwrap().archive.unwrap();
        assert_eq!((a.bucket.as_str(), a.link_ttl.as_secs()), ("b", 900));
        let e = with(&[("ARCHIVE_LINK_SECS", "7200")]).unwrap_err();
        assert!(
            e.0.contains("ARCHIVE_LINK_SECS must be between 60 and 3600"),
            "{e}"
        );
        let e = with(&[("ARCHIVE_TIMEOUT_MS", "20000")]).unwrap_err();
        assert!(
            e.0.contains("ARCHIVE_TIMEOUT_MS must be between 100 and 15000"),
            "{e}"
        );
        assert!(
            from(&BASE).unwrap().archive.is_none(),
            "no bucket, no archive"
        );
    }

    #[test]
    fn backup_host_by_default_for_the_default_mp_host_only() {
        let c = from(&BASE).unwrap();
        assert_eq!(c.api_backup_base.as_deref(), Some(MP_API_BACKUP_BASE));
        let mut v = BASE.to_vec();
        v.push(("WECHAT_ALLOW_HTTP", "true"));
        v.push(("WECHAT_API_BASE", "http://127.0.0.1:1"));
        assert_eq!(from(&v).unwrap().api_backup_base, None);
        v.push(("WECHAT_API_BACKUP_BASE", "http://127.0.0.1:2/"));
        assert_eq!(
            from(&v).unwrap().api_backup_base.as_deref(),
            Some("http://127.0.0.1:2")
        );
        let mut v = BASE.to_vec();
        v.push(("WECHAT_API_BACKUP_BASE", "off"));
        assert_eq!(from(&v).unwrap().api_backup_base, None);
        let mut v = BASE.to_vec();
        v.push(("WECHAT_PLATFORM", "work"));
        assert_eq!(
            from(&v).unwrap().api_backup_base,
            None,
            "WeCom documents no backup host"
        );
    }

    #[test]
    fn arn_is_used_when_no_plain_secret() {
        let c = from(&[
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_SECRET_ARN", "arn:x"),
            ("TOKEN_TABLE", "t"),
            ("JSSDK_URL", "https://example.com/"),
        ])
        .unwrap();
        assert!(
            matches!(c.secret, Some(SecretSource::SecretsManager { ref arn }) if arn == "arn:x")
        );
    }

    #[test]
    fn plain_http_only_when_asked_for() {
        let mut v = BASE.to_vec();
        v.push(("WECHAT_API_BASE", "http://127.0.0.1:9100"));
        assert!(from(&v).unwrap_err().0.contains("WECHAT_ALLOW_HTTP"));
        v.push(("WECHAT_ALLOW_HTTP", "true"));
        assert!(from(&v).unwrap().allow_http);
        let mut v = BASE.to_vec();
        v.push(("WECHAT_API_BACKUP_BASE", "http://evil.example.com"));
        assert!(from(&v).is_err());
    }

    #[test]
    fn api_base_trailing_slash_is_trimmed() {
        let mut v = BASE.to_vec();
        v.push(("WECHAT_ALLOW_HTTP", "true"));
        v.push(("WECHAT_API_BASE", "http://127.0.0.1:9100/"));
        assert_eq!(from(&v).unwrap().api_base, "http://127.0.0.1:9100");
    }
}

#[cfg(test)]
mod origin_tests {
    use super::origin_of;

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            origin_of("https://Expense.Example.com:443/a?b#c").as_deref(),
            Some("https://expense.example.com")
        );
        assert_eq!(
            origin_of("http://localhost:8080/").as_deref(),
            Some("http://localhost:8080")
        );
        assert_eq!(
            origin_of("http://a.example.com:80").as_deref(),
            Some("http://a.example.com")
        );
        assert_eq!(
            origin_of("https://a.example.com?x=1").as_deref(),
            Some("https://a.example.com")
        );
        assert_eq!(origin_of("ftp://a.example.com/"), None);
        assert_eq!(origin_of("https://user@evil.example.com/"), None);
        assert_eq!(origin_of("https:///path"), None);
        assert_eq!(origin_of("javascript:alert(1)"), None);
    }
}

#[cfg(test)]
mod platform_tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> = [
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_SECRET", "s"),
            ("TOKEN_TABLE", "t"),
            ("JSSDK_URL", "https://expense.example.com/page"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in pairs {
            map.insert(k.to_string(), v.to_string());
        }
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn platform_token_api_and_origins() {
        let work = from(&[("WECHAT_PLATFORM", "work")]).unwrap();
        assert_eq!(
            (work.platform, work.api_base.as_str()),
            (Platform::Work, WORK_API_BASE)
        );
        let stable = from(&[("WECHAT_TOKEN_API", "stable")]).unwrap();
        assert_eq!(stable.token_api, TokenApi::Stable);
        assert!(from(&[("WECHAT_PLATFORM", "work"), ("WECHAT_TOKEN_API", "stable")]).is_err());
        assert!(from(&[("WECHAT_PLATFORM", "qq")])
            .unwrap_err()
            .0
            .contains("WECHAT_PLATFORM"));
        let c = from(&[(
            "ALLOWED_ORIGINS",
            "https://A.example.com, http://localhost:8080/",
        )])
        .unwrap();
        assert_eq!(
            c.allowed_origins,
            ["https://a.example.com", "http://localhost:8080"]
        );
        assert!(from(&[("ALLOWED_ORIGINS", "not an origin")]).is_err());
        assert_eq!(
            from(&[]).unwrap().allowed_origins,
            ["https://expense.example.com"]
        );
    }
}
