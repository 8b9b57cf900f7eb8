//! A third-party platform (第三方平台, "component"): what WeChat pushes to its authorization-event
//! URL, read from the pushes' XML, and the decisions about a push that need no I/O. The crypto
//! is `adapters::wechat::message_crypto`; acting on a push is `ops::component_events`.

use serde::Deserialize;

/// The outer envelope of a push: the platform's appid and the ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Envelope {
    #[serde(rename = "AppId", default)]
    pub app_id: Option<String>,
    #[serde(rename = "Encrypt")]
    pub encrypt: String,
}

/// A decrypted push, as WeChat documents them (授权事件接收URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `component_verify_ticket`: pushed every 10 minutes, valid 12 hours; the platform's token
    /// is fetched with the newest.
    VerifyTicket { ticket: String, created: u64 },
    /// `authorized` / `updateauthorized`: an account granted (or changed) its permission sets;
    /// `code` is exchanged with `api_query_auth`.
    Authorized {
        authorizer: String,
        code: String,
        created: u64,
        updated: bool,
    },
    /// `unauthorized`: the account withdrew its authorization.
    Unauthorized { authorizer: String, created: u64 },
    /// Any other InfoType (WeChat adds some): acknowledged, nothing done.
    Other { info_type: String, created: u64 },
}

impl Event {
    pub fn created(&self) -> u64 {
        match self {
            Event::VerifyTicket { created, .. }
            | Event::Authorized { created, .. }
            | Event::Unauthorized { created, .. }
            | Event::Other { created, .. } => *created,
        }
    }

    pub fn kind(&self) -> &str {
        match self {
            Event::VerifyTicket { .. } => "component_verify_ticket",
            Event::Authorized { updated: false, .. } => "authorized",
            Event::Authorized { updated: true, .. } => "updateauthorized",
            Event::Unauthorized { .. } => "unauthorized",
            Event::Other { info_type, .. } => info_type,
        }
    }
}

/// Why a push's XML was refused (never carries its content).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("the body is not a push envelope (<xml> with <Encrypt>)")]
    NotAnEnvelope,
    #[error("the decrypted push is not an event WeChat documents: {0}")]
    NotAnEvent(&'static str),
    #[error("the push is for another platform")]
    OtherPlatform,
}

pub fn parse_envelope(xml: &str) -> Result<Envelope, PushError> {
    let envelope: Envelope = quick_xml::de::from_str(xml).map_err(|_| PushError::NotAnEnvelope)?;
    if envelope.encrypt.trim().is_empty() {
        return Err(PushError::NotAnEnvelope);
    }
    Ok(envelope)
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "AppId")]
    app_id: String,
    #[serde(rename = "CreateTime")]
    create_time: u64,
    #[serde(rename = "InfoType")]
    info_type: String,
    #[serde(rename = "ComponentVerifyTicket", default)]
    ticket: Option<String>,
    #[serde(rename = "AuthorizerAppid", default)]
    authorizer: Option<String>,
    #[serde(rename = "AuthorizationCode", default)]
    code: Option<String>,
}

/// The event inside a decrypted push for `platform` (the component appid).
pub fn parse_event(xml: &str, platform: &str) -> Result<Event, PushError> {
    let raw: Raw = quick_xml::de::from_str(xml).map_err(|_| PushError::NotAnEvent("malformed"))?;
    if raw.app_id != platform {
        return Err(PushError::OtherPlatform);
    }
    let created = raw.create_time;
    let present = |v: Option<String>, what| {
        v.filter(|v| !v.is_empty())
            .ok_or(PushError::NotAnEvent(what))
    };
    Ok(match raw.info_type.as_str() {
        "component_verify_ticket" => Event::VerifyTicket {
            ticket: present(raw.ticket, "no ComponentVerifyTicket")?,
            created,
        },
        kind @ ("authorized" | "updateauthorized") => Event::Authorized {
            authorizer: present(raw.authorizer, "no AuthorizerAppid")?,
            code: present(raw.code, "no AuthorizationCode")?,
            created,
            updated: kind == "updateauthorized",
        },
        "unauthorized" => Event::Unauthorized {
            authorizer: present(raw.authorizer, "no AuthorizerAppid")?,
            created,
        },
        other => Event::Other {
            info_type: other.chars().take(64).collect(),
            created,
        },
    })
}

/// Whether a push signed at `timestamp` (Unix seconds, from its query) is recent enough to act
/// on: a captured push replayed later is refused; WeChat's retries come within seconds.
pub fn timely(timestamp: u64, now_secs: u64, window_secs: u64) -> bool {
    timestamp.abs_diff(now_secs) <= window_secs
}

/// Whether a verify ticket created at `created` replaces the stored one: only a newer one does,
/// so a replayed or late push never brings an older ticket back.
pub fn newer_ticket(created: u64, stored: Option<u64>) -> bool {
    stored.is_none_or(|s| created > s)
}

/// Which accounts the authorization page offers (`auth_type`): Official Accounts, mini
/// programs, or both (WeChat's 1, 2, 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    OfficialAccounts = 1,
    MiniPrograms = 2,
    Both = 3,
}

impl Offered {
    pub fn parse(s: &str) -> Option<Offered> {
        match s {
            "1" => Some(Offered::OfficialAccounts),
            "2" => Some(Offered::MiniPrograms),
            "3" => Some(Offered::Both),
            _ => None,
        }
    }
}

/// The authorization page's two forms for one pre-auth code: scanned on a PC
/// (`componentloginpage`), opened inside WeChat on a phone (`bindcomponent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    pub pc: String,
    pub mobile: String,
}

/// The links WeChat documents, each value encoded once; `biz_appid` limits the page to one
/// account.
pub fn authorization_links(
    component_appid: &str,
    pre_auth_code: &str,
    redirect_uri: &str,
    offered: Offered,
    biz_appid: Option<&str>,
) -> Links {
    let link = |base: &str, first: &[(&str, &str)], fragment: &str| {
        let mut url = url::Url::parse(base).expect("a fixed base");
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in first {
                q.append_pair(k, v);
            }
            q.append_pair("component_appid", component_appid);
            q.append_pair("pre_auth_code", pre_auth_code);
            q.append_pair("redirect_uri", redirect_uri);
            q.append_pair("auth_type", &(offered as u8).to_string());
            if let Some(biz) = biz_appid {
                q.append_pair("biz_appid", biz);
            }
        }
        if !fragment.is_empty() {
            url.set_fragment(Some(fragment));
        }
        url.to_string()
    };
    Links {
        pc: link(
            "https://mp.weixin.qq.com/cgi-bin/componentloginpage",
            &[],
            "",
        ),
        mobile: link(
            "https://open.weixin.qq.com/wxaopen/safe/bindcomponent",
            &[("action", "bindcomponent"), ("no_scan", "1")],
            "wechat_redirect",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLATFORM: &str = "wx851e238de6d96eaa";

    #[test]
    fn wechats_documented_pushes_are_read() {
        // The envelope of a component push (AppId, no ToUserName).
        let env = parse_envelope(
            "<xml> <AppId><![CDATA[wx9a5ccef4cd5e2702]]></AppId> <Encrypt><![CDATA[6nbDjODig==]]></Encrypt></xml>",
        )
        .unwrap();
        assert_eq!(
            (env.app_id.as_deref(), env.encrypt.as_str()),
            (Some("wx9a5ccef4cd5e2702"), "6nbDjODig==")
        );
        #[rustfmt::skip]
        let table: [(&str, &str, Event); 4] = [
            ("verify ticket (document)", "<xml>\n<AppId>wx851e238de6d96eaa</AppId>\n<CreateTime>1413192605</CreateTime>\n<InfoType>component_verify_ticket</InfoType>\n<ComponentVerifyTicket>some_verify_ticket</ComponentVerifyTicket>\n</xml>",
             Event::VerifyTicket { ticket: "some_verify_ticket".into(), created: 1413192605 }),
            ("authorized (a captured push: CDATA, absolute expiry)", "<xml><AppId><![CDATA[wx851e238de6d96eaa]]></AppId>\n<CreateTime>1573485628</CreateTime>\n<InfoType><![CDATA[authorized]]></InfoType><AuthorizerAppid><![CDATA[wx570bc396a51b8ff8]]></AuthorizerAppid><AuthorizationCode><![CDATA[queryauthcode@@@Xl2L]]></AuthorizationCode><AuthorizationCodeExpiredTime><![CDATA[1573489228]]></AuthorizationCodeExpiredTime><PreAuthCode><![CDATA[preauthcode@@@sHSg]]></PreAuthCode></xml>",
             Event::Authorized { authorizer: "wx570bc396a51b8ff8".into(), code: "queryauthcode@@@Xl2L".into(), created: 1573485628, updated: false }),
            ("unauthorized", "<xml><AppId>wx851e238de6d96eaa</AppId><CreateTime>1413192760</CreateTime><InfoType>unauthorized</InfoType><AuthorizerAppid>wx570bc396a51b8ff8</AuthorizerAppid></xml>",
             Event::Unauthorized { authorizer: "wx570bc396a51b8ff8".into(), created: 1413192760 }),
            ("another InfoType", "<xml><AppId>wx851e238de6d96eaa</AppId><CreateTime>1</CreateTime><InfoType>notify_third_fasteregister</InfoType></xml>",
             Event::Other { info_type: "notify_third_fasteregister".into(), created: 1 }),
        ];
        for (name, xml, want) in table {
            assert_eq!(parse_event(xml, PLATFORM).unwrap(), want, "{name}");
        }
    }

    #[test]
    fn garbage_and_other_platforms_are_refused() {
        #[rustfmt::skip]
        let table: [(&str, &str, PushError); 6] = [
            ("not xml", "{\"a\":1}", PushError::NotAnEvent("malformed")),
            ("no CreateTime", "<xml><AppId>wx851e238de6d96eaa</AppId><InfoType>unauthorized</InfoType></xml>", PushError::NotAnEvent("malformed")),
            ("a ticket push without its ticket", "<xml><AppId>wx851e238de6d96eaa</AppId><CreateTime>1</CreateTime><InfoType>component_verify_ticket</InfoType></xml>", PushError::NotAnEvent("no ComponentVerifyTicket")),
            ("authorized without a code", "<xml><AppId>wx851e238de6d96eaa</AppId><CreateTime>1</CreateTime><InfoType>authorized</InfoType><AuthorizerAppid>wxa</AuthorizerAppid></xml>", PushError::NotAnEvent("no AuthorizationCode")),
            ("unauthorized without the account", "<xml><AppId>wx851e238de6d96eaa</AppId><CreateTime>1</CreateTime><InfoType>unauthorized</InfoType><AuthorizerAppid></AuthorizerAppid></xml>", PushError::NotAnEvent("no AuthorizerAppid")),
            ("another platform", "<xml><AppId>wxother</AppId><CreateTime>1</CreateTime><InfoType>unauthorized</InfoType><AuthorizerAppid>wxa</AuthorizerAppid></xml>", PushError::OtherPlatform),
        ];
        for (name, xml, want) in table {
            assert_eq!(parse_event(xml, PLATFORM).unwrap_err(), want, "{name}");
        }
        for bad in [
            "",
            "<xml></xml>",
            "<xml><Encrypt></Encrypt></xml>",
            "<xml><Encrypt>",
            "not xml",
        ] {
            assert_eq!(parse_envelope(bad), Err(PushError::NotAnEnvelope), "{bad}");
        }
    }

    #[test]
    fn replays_and_older_tickets_change_nothing() {
        let window = 300;
        for (ts, now, want) in [
            (1000, 1000, true),
            (1000, 1300, true),
            (1000, 1301, false),
            (1301, 1000, false),
            (0, 1000, false),
        ] {
            assert_eq!(timely(ts, now, window), want, "{ts} at {now}");
        }
        for (created, stored, want) in [
            (5, None, true),
            (5, Some(4), true),
            (5, Some(5), false),
            (4, Some(5), false),
        ] {
            assert_eq!(
                newer_ticket(created, stored),
                want,
                "{created} over {stored:?}"
            );
        }
    }
}

#[cfg(test)]
mod link_tests {
    use super::*;

    #[test]
    fn the_links_wechat_documents() {
        let l = authorization_links(
            "wxcomp",
            "preauthcode@@@Cx_Dk6",
            "https://admin.example.com/wx/return?tenant=7&x=a b",
            Offered::OfficialAccounts,
            None,
        );
        assert_eq!(l.pc, "https://mp.weixin.qq.com/cgi-bin/componentloginpage?component_appid=wxcomp&pre_auth_code=preauthcode%40%40%40Cx_Dk6&redirect_uri=https%3A%2F%2Fadmin.example.com%2Fwx%2Freturn%3Ftenant%3D7%26x%3Da+b&auth_type=1");
        assert_eq!(l.mobile, "https://open.weixin.qq.com/wxaopen/safe/bindcomponent?action=bindcomponent&no_scan=1&component_appid=wxcomp&pre_auth_code=preauthcode%40%40%40Cx_Dk6&redirect_uri=https%3A%2F%2Fadmin.example.com%2Fwx%2Freturn%3Ftenant%3D7%26x%3Da+b&auth_type=1#wechat_redirect");
        let one = authorization_links(
            "wxcomp",
            "p",
            "https://a.example.com/",
            Offered::Both,
            Some("wxone"),
        );
        assert!(
            one.pc.ends_with("&auth_type=3&biz_appid=wxone"),
            "{}",
            one.pc
        );
        for (s, want) in [
            ("1", Some(Offered::OfficialAccounts)),
            ("2", Some(Offered::MiniPrograms)),
            ("3", Some(Offered::Both)),
            ("6", None),
            ("", None),
        ] {
            assert_eq!(Offered::parse(s), want, "{s}");
        }
    }
}
