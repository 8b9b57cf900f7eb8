//! WeChat's side of a third-party platform (第三方平台): the platform WeChat knows (options), its
//! message crypto — written here from WeChat's documents, apart from the gateway's, and checked
//! against WeChat's published vector — and the pushes to the platform's authorization-event URL:
//! a `component_verify_ticket` every `ticket_push_secs` (WeChat: 10 minutes) and on demand
//! (`POST /__sim/component/push`).

use aes::cipher::{block_padding::NoPadding, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::{alphabet, Engine};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

/// The platform WeChat knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComponentOptions {
    pub appid: String,
    pub secret: String,
    /// The message token and EncodingAESKey set on the platform's page.
    pub token: String,
    pub encoding_aes_key: String,
    /// The platform's authorization-event URL (授权事件接收URL); empty: pushes are only built.
    pub push_url: String,
    /// Seconds between verify-ticket pushes to `push_url` (WeChat: 600); 0: only on demand.
    pub ticket_push_secs: u64,
    /// How long a verify ticket is accepted (WeChat: 12 hours).
    pub ticket_ttl_secs: u64,
    /// `api_authorizer_token` answers a new refresh token each time, the old one then refused
    /// (WeChat: the same one, until the account authorizes again; the option plays the worst).
    pub rotate_refresh_token: bool,
}

impl Default for ComponentOptions {
    fn default() -> Self {
        ComponentOptions {
            appid: "wxc0mp0nent000001".into(),
            secret: "sim-component-secret".into(),
            token: "sim-component-token".into(),
            encoding_aes_key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into(),
            push_url: String::new(),
            ticket_push_secs: 600,
            ticket_ttl_secs: 12 * 3600,
            rotate_refresh_token: false,
        }
    }
}

/// A push as WeChat sends it: the query string it signs and the XML body.
#[derive(Debug, Clone, Serialize)]
pub struct Push {
    pub query: String,
    pub body: String,
}

/// The 43-character EncodingAESKey's AES-256 key (its spare bits ignored, as WeChat does).
fn aes_key(encoding_aes_key: &str) -> Option<[u8; 32]> {
    let lenient = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    lenient
        .decode(format!("{encoding_aes_key}="))
        .ok()?
        .try_into()
        .ok()
}

/// WeChat's encryption of `message` for the platform `appid`: random(16) ‖ length ‖ message ‖
/// appid, PKCS#7 to 32 bytes, AES-256-CBC with the key's first 16 bytes as IV, base64.
pub fn encrypt(
    encoding_aes_key: &str,
    message: &str,
    appid: &str,
    random: [u8; 16],
) -> Option<String> {
    let key = aes_key(encoding_aes_key)?;
    let mut plain = random.to_vec();
    plain.extend_from_slice(&(message.len() as u32).to_be_bytes());
    plain.extend_from_slice(message.as_bytes());
    plain.extend_from_slice(appid.as_bytes());
    let pad = 32 - plain.len() % 32;
    plain.resize(plain.len() + pad, pad as u8);
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&key[..16]);
    let len = plain.len();
    let cipher = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into())
        .encrypt_padded_mut::<NoPadding>(&mut plain, len)
        .ok()?;
    Some(STANDARD.encode(cipher))
}

fn sha1_hex(s: &str) -> String {
    Sha1::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A push of `xml` for the platform, signed at `timestamp` with `nonce`.
pub fn push(
    o: &ComponentOptions,
    xml: &str,
    timestamp: u64,
    nonce: &str,
    random: [u8; 16],
) -> Option<Push> {
    let encrypted = encrypt(&o.encoding_aes_key, xml, &o.appid, random)?;
    let ts = timestamp.to_string();
    let mut parts = [o.token.as_str(), ts.as_str(), nonce, encrypted.as_str()];
    parts.sort_unstable();
    let msg_signature = sha1_hex(&parts.concat());
    let mut plain = [o.token.as_str(), ts.as_str(), nonce];
    plain.sort_unstable();
    let signature = sha1_hex(&plain.concat());
    Some(Push {
        query: format!(
            "signature={signature}&timestamp={ts}&nonce={nonce}&encrypt_type=aes&msg_signature={msg_signature}"
        ),
        body: format!(
            "<xml><AppId><![CDATA[{}]]></AppId><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>",
            o.appid
        ),
    })
}

/// The decrypted XML of a verify-ticket push.
pub fn verify_ticket_xml(appid: &str, created: u64, ticket: &str) -> String {
    format!(
        "<xml><AppId><![CDATA[{appid}]]></AppId><CreateTime>{created}</CreateTime><InfoType><![CDATA[component_verify_ticket]]></InfoType><ComponentVerifyTicket><![CDATA[{ticket}]]></ComponentVerifyTicket></xml>"
    )
}

/// Random bytes for a push (the 16 that open its plaintext) and its nonce.
pub fn random16() -> [u8; 16] {
    std::array::from_fn(|_| fastrand::u8(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypts_as_wechats_push_document_does() {
        // The third-party platform's "消息推送" document: an encrypted reply with fixed random bytes.
        let e = encrypt(
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>",
            "wx134c8103faa5a59e",
            *b"999951349e8ee746",
        );
        assert_eq!(e.as_deref(), Some("hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7"));
        let o = ComponentOptions {
            token: "AAAAA".into(),
            encoding_aes_key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
            appid: "wx134c8103faa5a59e".into(),
            ..ComponentOptions::default()
        };
        let p = push(
            &o,
            "<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>",
            1713424427,
            "415670741",
            *b"999951349e8ee746",
        )
        .unwrap();
        assert!(
            p.query
                .ends_with("msg_signature=03e0812039325c2712ef5f0f980fd14c70d6e307"),
            "{}",
            p.query
        );
    }
}
