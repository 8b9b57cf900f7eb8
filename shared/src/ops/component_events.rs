//! A third-party platform's authorization-event URL: WeChat's pushes checked (msg_signature,
//! timestamp window, the platform's appid inside), decrypted and acted on. The
//! `component_verify_ticket` is kept (only a newer one replaces it: a replayed or late push never
//! brings an older one back). `authorized` / `updateauthorized` register the account
//! (`component_auth`), `unauthorized` disables it.

use crate::adapters::component_secret::ComponentSecrets;
use crate::adapters::secret::SecretError;
use crate::adapters::store::StoreError;
use crate::adapters::wechat::message_crypto::{self, CryptoError};
use crate::adapters::wechat::WeChatError;
use crate::domain::component::{self, Event, PushError};
use crate::domain::deadline::Deadline;
use crate::ops::component_auth::{self, AuthError, Authorized, Withdrawn};
use crate::tenant::Deployment;

/// WeChat's "code is invalid" (used once already) and "code is expired" (`api_query_auth`).
const CODE_INVALID: i64 = 61009;
const CODE_EXPIRED: i64 = 61010;

/// The signed query of a push (`signature` and `encrypt_type` are not needed: WeChat says to check
/// `msg_signature`, and a third-party platform's pushes are always encrypted).
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub timestamp: &'a str,
    pub nonce: &'a str,
    pub msg_signature: &'a str,
}

/// What a push came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// A newer verify ticket, now kept.
    TicketKept,
    /// A verify ticket no newer than the kept one (WeChat's retry, or a replay): nothing changed.
    TicketUnchanged,
    /// An account registered or updated by its authorization.
    Authorized(Authorized),
    /// An authorization refused (without permission set 26), and why: WeChat is answered
    /// `success`, as sending it again would not change it.
    AuthorizationRefused(String),
    /// An account's withdrawal.
    Withdrawn(Withdrawn),
    /// An event acknowledged without a change (its kind).
    Acknowledged(String),
}

/// Why a push was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum PushRefused {
    #[error("this deployment is not a third-party platform (COMPONENT_SECRET_ARN is not set)")]
    NotAPlatform,
    #[error("the platform's secrets: {0}")]
    Secrets(SecretError),
    #[error("timestamp: not a number of seconds")]
    BadTimestamp,
    #[error("the push was signed {0} s away from now, outside the window: refused as a replay")]
    Stale(u64),
    #[error("{0}")]
    Crypto(#[from] CryptoError),
    #[error("{0}")]
    Push(#[from] PushError),
    #[error("keeping the verify ticket: {0}")]
    Store(StoreError),
    /// The authorization could not be completed now (WeChat or the store failed): WeChat is
    /// answered an error and pushes the event again.
    #[error("the account's authorization: {0}")]
    Authorization(AuthError),
}

pub async fn handle(
    deployment: &Deployment,
    signed: Signed<'_>,
    body: &str,
    now_secs: u64,
    deadline: &Deadline,
) -> Result<Handled, PushRefused> {
    let source = deployment
        .component
        .as_ref()
        .ok_or(PushRefused::NotAPlatform)?;
    let secrets = source.get().await.map_err(PushRefused::Secrets)?;
    let event = open(
        &secrets,
        signed,
        body,
        now_secs,
        deployment.config.component_push_window.as_secs(),
    )?;
    Ok(match event {
        Event::VerifyTicket { ticket, created } => {
            let kept = deployment
                .store()
                .put_verify_ticket(&ticket, created)
                .await
                .map_err(PushRefused::Store)?;
            if kept {
                Handled::TicketKept
            } else {
                Handled::TicketUnchanged
            }
        }
        Event::Authorized { code, created, .. } => {
            match component_auth::authorize(deployment, &code, created * 1000, deadline).await {
                Ok(done) => Handled::Authorized(done),
                Err(e @ AuthError::MissingInvoicePermission { .. }) => {
                    Handled::AuthorizationRefused(e.to_string())
                }
                // Exchanged already (the return from WeChat's page came first), or a replay.
                Err(AuthError::WeChat(WeChatError::Api(b)))
                    if [CODE_INVALID, CODE_EXPIRED].contains(&b.errcode) =>
                {
                    Handled::Acknowledged(format!("authorization code spent ({})", b.errcode))
                }
                Err(e) => return Err(PushRefused::Authorization(e)),
            }
        }
        Event::Unauthorized {
            authorizer,
            created,
        } => {
            let withdrawn =
                component_auth::withdraw(deployment, &authorizer, created * 1000, deadline)
                    .await
                    .map_err(PushRefused::Authorization)?;
            Handled::Withdrawn(withdrawn)
        }
        other => Handled::Acknowledged(other.kind().to_string()),
    })
}

/// Checks and opens a push: the envelope, its signature, its timestamp, the ciphertext and the
/// appid inside, then the event.
pub fn open(
    secrets: &ComponentSecrets,
    signed: Signed<'_>,
    body: &str,
    now_secs: u64,
    window_secs: u64,
) -> Result<Event, PushRefused> {
    let envelope = component::parse_envelope(body)?;
    if envelope
        .app_id
        .as_deref()
        .is_some_and(|a| a != secrets.appid)
    {
        return Err(PushError::OtherPlatform.into());
    }
    let token = secrets.token.expose();
    let (ts, nonce) = (signed.timestamp, signed.nonce);
    if !message_crypto::signature_matches(token, ts, nonce, &envelope.encrypt, signed.msg_signature)
    {
        return Err(CryptoError::BadSignature.into());
    }
    let timestamp: u64 = ts.parse().map_err(|_| PushRefused::BadTimestamp)?;
    if !component::timely(timestamp, now_secs, window_secs) {
        return Err(PushRefused::Stale(timestamp.abs_diff(now_secs)));
    }
    let xml = message_crypto::decrypt(&secrets.key, &envelope.encrypt, &secrets.appid)?;
    Ok(component::parse_event(&xml, &secrets.appid)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::component_secret::parse;
    use crate::adapters::wechat::message_crypto::{encrypt, msg_signature};

    const NOW: u64 = 1_800_000_000;

    fn at<'a>(timestamp: &'a str, msg_signature: &'a str) -> Signed<'a> {
        Signed {
            timestamp,
            nonce: "n1",
            msg_signature,
        }
    }

    fn secrets() -> ComponentSecrets {
        parse(r#"{"component_appid":"wxcomp0000000001","component_appsecret":"s","token":"tok","encoding_aes_key":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}"#).unwrap()
    }

    /// A push as WeChat sends it: the envelope, and its signed query's timestamp, nonce, signature.
    fn push(s: &ComponentSecrets, xml: &str, appid: &str, ts: u64) -> (String, String) {
        let encrypted = encrypt(&s.key, xml, appid, &[9; 16]);
        let sig = msg_signature(s.token.expose(), &ts.to_string(), "n1", &encrypted);
        (format!("<xml><AppId><![CDATA[{appid}]]></AppId><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"), sig)
    }

    #[test]
    fn a_push_is_opened_only_when_every_check_passes() {
        let s = secrets();
        let ticket = format!("<xml><AppId>wxcomp0000000001</AppId><CreateTime>{NOW}</CreateTime><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>ticket@@@1</ComponentVerifyTicket></xml>");
        let (body, sig) = push(&s, &ticket, "wxcomp0000000001", NOW);
        let ts = &NOW.to_string();
        let sig = &sig;
        let opened = open(&s, at(ts, sig), &body, NOW, 300).unwrap();
        assert_eq!(
            opened,
            Event::VerifyTicket {
                ticket: "ticket@@@1".into(),
                created: NOW
            }
        );
        // Within the window either way; outside it, a replay.
        assert!(open(&s, at(ts, sig), &body, NOW + 300, 300).is_ok());
        assert!(matches!(
            open(&s, at(ts, sig), &body, NOW + 301, 300),
            Err(PushRefused::Stale(301))
        ));
        // Any change to what was signed: refused before decrypting.
        let other_nonce = Signed {
            nonce: "n2",
            ..at(ts, sig)
        };
        assert!(matches!(
            open(&s, other_nonce, &body, NOW, 300),
            Err(PushRefused::Crypto(CryptoError::BadSignature))
        ));
        let (body2, _) = push(
            &s,
            &ticket.replace("ticket@@@1", "ticket@@@2"),
            "wxcomp0000000001",
            NOW,
        );
        assert!(matches!(
            open(&s, at(ts, sig), &body2, NOW, 300),
            Err(PushRefused::Crypto(CryptoError::BadSignature))
        ));
        // Encrypted for another platform (its appid inside), or naming another in the envelope.
        let (other, other_sig) = push(&s, &ticket, "wxotherplatform1", NOW);
        let other_sig = &other_sig;
        assert!(matches!(
            open(&s, at(ts, other_sig), &other, NOW, 300),
            Err(PushRefused::Push(PushError::OtherPlatform))
        ));
        let renamed = other.replace("wxotherplatform1", "wxcomp0000000001");
        assert!(matches!(
            open(&s, at(ts, other_sig), &renamed, NOW, 300),
            Err(PushRefused::Crypto(CryptoError::WrongAppid))
        ));
        // Garbage.
        for junk in ["", "not xml", "<xml><Encrypt></Encrypt></xml>"] {
            assert!(
                matches!(
                    open(&s, at(ts, sig), junk, NOW, 300),
                    Err(PushRefused::Push(PushError::NotAnEnvelope))
                ),
                "{junk}"
            );
        }
    }
}
