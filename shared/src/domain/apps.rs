//! Many apps in one deployment: Official Accounts, mini programs and WeCom agents side by side.
//!
//! The deployment's own app (the `WECHAT_*` environment) is the default: requests that name no
//! app, and the spec's URLs, reach it, and its token item keeps its key (the appid), so a
//! single-app deployment changes nothing. Further apps are registered in the token table (the
//! admin command): each app's settings live in its own token item (`app_*` attributes), so a
//! cold request for it is still one GetItem, and its lock, tokens and tickets are its own.
//!
//! An app is named by a key that cannot collide: `app#<appid>` for Official Accounts and mini
//! programs (appids are unique across both), `app#<corpid>#<agentid>` for a WeCom agent (each
//! agent of a corp has its own secret and token). Classic and stable tokens of one Official
//! Account are kept apart by the token API the app is registered with: the admin command drops
//! the stored state when it changes.

use crate::domain::config::{Platform, TokenApi};
use crate::domain::input::InputError;
use crate::domain::origin::origin_of;

/// What kind of account an app is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Official Account (公众号): token, JS-SDK tickets, signatures.
    Mp,
    /// Mini program (小程序): token only; `wx.chooseInvoice` needs no signature.
    Mini,
    /// WeCom agent (企业微信应用).
    Work,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Mp => "mp",
            Kind::Mini => "mini",
            Kind::Work => "work",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "mp" => Some(Kind::Mp),
            "mini" => Some(Kind::Mini),
            "work" => Some(Kind::Work),
            _ => None,
        }
    }

    /// The API family it speaks (mini programs use the Official Accounts' paths).
    pub fn platform(self) -> Platform {
        match self {
            Kind::Mp | Kind::Mini => Platform::Mp,
            Kind::Work => Platform::Work,
        }
    }

    /// Whether it signs JS-SDK pages (and so keeps jsapi and wx_card tickets).
    pub fn tickets(self) -> bool {
        self != Kind::Mini
    }
}

/// One registered app's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    pub kind: Kind,
    /// AppID, or the corpid of a WeCom agent.
    pub appid: String,
    /// WeCom only: the agent.
    pub agentid: Option<String>,
    pub token_api: TokenApi,
    /// Name of the Secrets Manager secret holding its AppSecret, under the deployment's
    /// `APP_SECRET_PREFIX` (so IAM can be scoped to the prefix).
    pub secret_name: String,
    /// Origins whose pages may be signed and call the API (CORS).
    pub origins: Vec<String>,
    /// The page URL signed when the caller names none.
    pub jssdk_url: Option<String>,
    pub enabled: bool,
    /// An account that authorized the deployment's third-party platform: no AppSecret (its
    /// token comes through the platform with its refresh token). None: registered with one.
    pub authorization: Option<Authorization>,
}

/// What an account granted the platform, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The permission sets (`func_info` ids) it granted.
    pub permissions: Vec<u64>,
    /// When it authorized (Unix ms): a later event about it replaces this one, an earlier one
    /// (replayed, or delivered late) changes nothing.
    pub authorized_ms: u64,
}

/// WeChat's permission set of e-invoices (微信电子发票), which the reimburser APIs need.
pub const INVOICE_PERMISSION: u64 = 26;

/// The key of an app's token item.
pub fn key(appid: &str, agentid: Option<&str>) -> String {
    match agentid {
        Some(agent) => format!("app#{appid}#{agent}"),
        None => format!("app#{appid}"),
    }
}

/// Whether `key` is a registered app's (the deployment's own is keyed by its bare appid).
pub fn is_registered_key(key: &str) -> bool {
    key.starts_with("app#")
}

/// Shards of the registry's index of app keys: with 100,000 apps each shard stays under 200 KB
/// (DynamoDB items hold 400 KB), and a request for an unknown name reads one shard, not all.
pub const INDEX_SHARDS: u8 = 16;

/// The key of the index item that lists `key` (`#apps#0` … `#apps#f`; no app key starts with `#`).
pub fn index_shard(key: &str) -> String {
    use sha2::{Digest, Sha256};
    let first = Sha256::digest(key.as_bytes())[0];
    format!("#apps#{:x}", first % INDEX_SHARDS)
}

/// Every shard's key.
pub fn index_shards() -> impl Iterator<Item = String> {
    (0..INDEX_SHARDS).map(|i| format!("#apps#{i:x}"))
}

/// Longest appid / corpid / agentid accepted in a query.
const MAX_ID: usize = 64;

/// An `appid` (and `agentid`) query parameter: letters, digits, `_` and `-` only, so a key is
/// never ambiguous.
pub fn check_id(name: &str, value: &str) -> Result<(), InputError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_ID
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(InputError::invalid(format!(
            "{name}: 1 to {MAX_ID} letters, digits, `_` or `-`"
        )))
    }
}

/// The apps a caller may use, as the claim of its token (the JWT authorizer's) names them: `*`
/// for every app, otherwise a list (API Gateway hands a list claim over as `[a b]`) of appids,
/// `corpid#agentid` for a WeCom agent (an `app#` prefix, as the admin prints keys, is allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grants {
    All,
    Only(Vec<String>),
}

impl Grants {
    pub fn parse(claim: &str) -> Grants {
        let names: Vec<String> = claim
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(|c: char| c.is_whitespace() || c == ',')
            .map(|n| n.trim_matches('"'))
            .filter(|n| !n.is_empty())
            .map(|n| n.trim_start_matches("app#").to_string())
            .collect();
        if names.iter().any(|n| n == "*") {
            Grants::All
        } else {
            Grants::Only(names)
        }
    }

    /// Whether the app `appid` (and `agentid`) names may be used; `own` is the deployment's own
    /// appid, which a request naming no app uses.
    pub fn allows(&self, appid: Option<&str>, agentid: Option<&str>, own: &str) -> bool {
        let Grants::Only(names) = self else {
            return true;
        };
        let name = match (appid.unwrap_or(own), agentid) {
            (appid, Some(agent)) => format!("{appid}#{agent}"),
            (appid, None) => appid.to_string(),
        };
        names.contains(&name)
    }
}

impl AppSettings {
    pub fn key(&self) -> String {
        key(&self.appid, self.agentid.as_deref())
    }

    /// What the admin command checks before writing.
    pub fn check(&self) -> Result<(), String> {
        check_id("appid", &self.appid).map_err(|e| e.to_string())?;
        match (self.kind, &self.agentid) {
            (Kind::Work, Some(a)) => check_id("agentid", a).map_err(|e| e.to_string())?,
            (Kind::Work, None) => return Err("a WeCom app needs its agentid".into()),
            (_, Some(_)) => return Err("only WeCom apps have an agentid".into()),
            _ => {}
        }
        if self.token_api == TokenApi::Stable && self.kind == Kind::Work {
            return Err("stable_token is for Official Accounts and mini programs".into());
        }
        if self.secret_name.is_empty() && self.authorization.is_none() {
            return Err("the app needs a secret name".into());
        }
        for o in &self.origins {
            if origin_of(o).as_deref() != Some(o.as_str()) {
                return Err(format!("origin `{o}` is not scheme://host[:port]"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(kind: Kind, agentid: Option<&str>) -> AppSettings {
        AppSettings {
            kind,
            appid: "wx1234".into(),
            agentid: agentid.map(str::to_string),
            token_api: TokenApi::Classic,
            secret_name: "wx1234".into(),
            origins: vec!["https://expense.example.com".into()],
            jssdk_url: None,
            enabled: true,
            authorization: None,
        }
    }

    #[test]
    fn keys_spread_over_every_shard_of_the_index() {
        let shards: std::collections::HashSet<String> = (0..200)
            .map(|i| index_shard(&key(&format!("wx{i}"), None)))
            .collect();
        assert_eq!(shards, index_shards().collect());
        assert_eq!(index_shard("app#wx1"), index_shard("app#wx1"));
    }

    #[test]
    fn keys_cannot_collide() {
        assert_eq!(key("wx1", None), "app#wx1");
        assert_eq!(key("ww1", Some("1000002")), "app#ww1#1000002");
        assert_ne!(key("ww1", Some("1")), key("ww1", Some("2")));
        // `#` is not an id character: no appid can imitate an agent's key.
        assert!(check_id("appid", "ww1#1").is_err());
        for bad in ["", "a b", "x/y", &"a".repeat(65)] {
            assert!(check_id("appid", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn grants_name_the_apps_a_caller_may_use() {
        let own = "wxown";
        #[rustfmt::skip]
        let table: [(&str, Option<&str>, Option<&str>, bool); 12] = [
            ("*", Some("wxb"), None, true),
            ("[wxa *]", None, None, true),
            ("wxb", Some("wxb"), None, true),
            ("wxb", None, None, false),
            ("wxb", Some("wxc"), None, false),
            ("[wxb ww1#1000002]", Some("ww1"), Some("1000002"), true),
            ("[wxb ww1#1000002]", Some("ww1"), Some("1000003"), false),
            ("[wxb ww1#1000002]", Some("ww1"), None, false),
            ("app#wxb, app#wxown", None, None, true),
            ("\"wxb\"", Some("wxb"), None, true),
            ("", Some("wxb"), None, false),
            ("", None, None, false),
        ];
        for (claim, appid, agentid, want) in table {
            let got = Grants::parse(claim).allows(appid, agentid, own);
            assert_eq!(got, want, "{claim:?} {appid:?} {agentid:?}");
        }
    }

    #[test]
    fn settings_are_checked() {
        assert!(settings(Kind::Mp, None).check().is_ok());
        assert!(settings(Kind::Work, Some("1000002")).check().is_ok());
        assert!(settings(Kind::Work, None).check().is_err());
        assert!(settings(Kind::Mini, Some("1")).check().is_err());
        let mut s = settings(Kind::Mp, None);
        s.origins = vec!["https://x.example.com/path".into()];
        assert!(s.check().is_err());
        let mut s = settings(Kind::Work, Some("1"));
        s.token_api = TokenApi::Stable;
        assert!(s.check().is_err());
        assert!(Kind::Mp.tickets() && Kind::Work.tickets() && !Kind::Mini.tickets());
    }
}
