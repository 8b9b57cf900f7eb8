//! WeChat's message crypto (WXBizMsgCrypt), as a third-party platform's pushes use it: the
//! `msg_signature` over the sorted token, timestamp, nonce and ciphertext; AES-256-CBC with the
//! key from the EncodingAESKey and its first 16 bytes as IV; the plaintext
//! `random(16) ‖ length(4, big-endian) ‖ message ‖ appid`, padded PKCS#7 to 32-byte blocks.
//!
//! The padding is done here, not by the `cbc` crate: WeChat pads to 32 bytes (its documents: "K
//! 为秘钥字节数（采用 32）"), which the block-sized PKCS#7 of `block-padding` cannot express
//! (AES's block is 16); a 16-byte unpadder refuses WeChat's own published push (pad 22).

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::{alphabet, Engine};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

type Decryptor = cbc::Decryptor<aes::Aes256>;
type Encryptor = cbc::Encryptor<aes::Aes256>;

/// WeChat's padding block.
const PAD_BLOCK: usize = 32;

/// 43 characters carry 258 bits for a 256-bit key: the last character's two spare bits are not
/// zero in WeChat's own keys (its sample's ends in `G`), which strict base64 refuses.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Why a push was refused. Never carries the message or the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the EncodingAESKey is not 43 characters of base64")]
    BadKey,
    #[error("msg_signature does not match")]
    BadSignature,
    #[error("the ciphertext is not base64 of whole AES blocks")]
    BadCiphertext,
    #[error("the plaintext's padding or length is malformed")]
    BadPlaintext,
    #[error("the message is for another appid")]
    WrongAppid,
}

/// The platform's message key (from its 43-character EncodingAESKey).
#[derive(Clone)]
pub struct MessageKey([u8; 32]);

impl std::fmt::Debug for MessageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageKey(***)")
    }
}

impl MessageKey {
    pub fn from_encoding_aes_key(encoding_aes_key: &str) -> Result<Self, CryptoError> {
        if encoding_aes_key.len() != 43 {
            return Err(CryptoError::BadKey);
        }
        let bytes = KEY_BASE64
            .decode(format!("{encoding_aes_key}="))
            .map_err(|_| CryptoError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(MessageKey(key))
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0; 16];
        iv.copy_from_slice(&self.0[..16]);
        iv
    }
}

/// `msg_signature`: SHA1 of the four values sorted and concatenated, lower-case hex.
pub fn msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    let mut parts = [token, timestamp, nonce, encrypt];
    parts.sort_unstable();
    let digest = Sha1::digest(parts.concat().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `signature` is the push's `msg_signature` (compared in constant time).
pub fn signature_matches(
    token: &str,
    timestamp: &str,
    nonce: &str,
    encrypt: &str,
    signature: &str,
) -> bool {
    let want = msg_signature(token, timestamp, nonce, encrypt);
    want.as_bytes().ct_eq(signature.as_bytes()).into()
}

/// The message inside `encrypt` (base64), checked to be for `appid`.
pub fn decrypt(key: &MessageKey, encrypt: &str, appid: &str) -> Result<String, CryptoError> {
    let mut buf = STANDARD
        .decode(encrypt.trim())
        .map_err(|_| CryptoError::BadCiphertext)?;
    if buf.is_empty() || buf.len() % 16 != 0 {
        return Err(CryptoError::BadCiphertext);
    }
    let plain = Decryptor::new(&key.0.into(), &key.iv().into())
        .decrypt_padded_mut::<NoPadding>(&mut buf)
        .map_err(|_| CryptoError::BadCiphertext)?;
    let pad = usize::from(*plain.last().ok_or(CryptoError::BadPlaintext)?);
    if pad == 0 || pad > PAD_BLOCK || pad > plain.len() {
        return Err(CryptoError::BadPlaintext);
    }
    let body = &plain[..plain.len() - pad];
    if body.len() < 20 {
        return Err(CryptoError::BadPlaintext);
    }
    let len = u32::from_be_bytes(body[16..20].try_into().expect("4 bytes")) as usize;
    let rest = &body[20..];
    if len > rest.len() {
        return Err(CryptoError::BadPlaintext);
    }
    let (message, tail) = rest.split_at(len);
    if !bool::from(tail.ct_eq(appid.as_bytes())) {
        return Err(CryptoError::WrongAppid);
    }
    String::from_utf8(message.to_vec()).map_err(|_| CryptoError::BadPlaintext)
}

/// `message` for `appid`, encrypted with the 16 random bytes `random` (base64): what WeChat
/// sends, and what the simulator pushes.
pub fn encrypt(key: &MessageKey, message: &str, appid: &str, random: &[u8; 16]) -> String {
    let mut plain = Vec::with_capacity(20 + message.len() + appid.len() + PAD_BLOCK);
    plain.extend_from_slice(random);
    plain.extend_from_slice(&(message.len() as u32).to_be_bytes());
    plain.extend_from_slice(message.as_bytes());
    plain.extend_from_slice(appid.as_bytes());
    let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
    plain.extend(std::iter::repeat_n(pad as u8, pad));
    let len = plain.len();
    let cipher = Encryptor::new(&key.0.into(), &key.iv().into())
        .encrypt_padded_mut::<NoPadding>(&mut plain, len)
        .expect("whole blocks");
    STANDARD.encode(cipher)
}

#[cfg(test)]
mod tests {
    use super::*;

    // WeChat's WXBizMsgCrypt sample (Sample.py, 2014).
    const A_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const A_TOKEN: &str = "spamtest";
    const A_APPID: &str = "wx2c2769f8efd9abc2";
    const A_TIMESTAMP: &str = "1409735669";
    const A_NONCE: &str = "1320562132";
    const A_SIGNATURE: &str = "5d197aaffba7e9b25a30732f161a50dee96bd5fa";
    const A_ENCRYPT: &str = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";
    const A_MESSAGE: &str = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>";

    // The third-party platform's "消息推送" document: a push whose padding is 22 bytes (only a
    // 32-byte unpadder reads it), and a reply encrypted with fixed random bytes.
    const E_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const E_TOKEN: &str = "AAAAA";
    const E_APPID: &str = "wx134c8103faa5a59e";
    const E_TIMESTAMP: &str = "1715943329";
    const E_NONCE: &str = "1590219412";
    const E_SIGNATURE: &str = "6c12a4205838198b8fa631b3220723bb07f1015c";
    const E_ENCRYPT: &str = "D7yzvUNAL930rd28wf21s4hvXhz0L6Uit/p2Di6C5DHyYGpEgdBRnKjBec34JwoQXicwaZC7fOVihW80F4VtsdvE//1vr7oAbqjDv8KenVp+ajKYpJnyQ4zMRhIC+a31fCVOMC03FfzV/QuC94kBP55a+Za3sJgvAn+ZbsNqZI5DkyuzkhQN8OBqCzFhizGmy0xpM0MEA4agpvE+RuNO1rhHTtuJB5yltw1FiYzecSXJ+y/D2r81VkRn2eYjh2ltsoyfbDR7Is6ookXIFxTfyeNyeHxMeT4KN5WpCDmSbTcUYrbBUlkGLJ9n/rU8YOywma6G7aTb7KZKOqCxgfoUlYEZPk4FUL/TK7ShriFDMVCLyjQJ15Ob++agDWtcxhfUfe6HIoIpRW8mKNBQiY/Jd1svvuskA1wLef1RTtzKfMpagSCX/laZINmdnX4zrF6kIaR9P4xQrWXbsTFHTYe0Mg==";
    const E_MESSAGE: &str = "<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>\n<FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>\n<CreateTime>1715943329</CreateTime>\n<MsgType><![CDATA[event]]></MsgType>\n<Event><![CDATA[debug_demo]]></Event>\n<debug_str><![CDATA[hello world]]></debug_str>\n</xml>";
    const E_REPLY: &str = "<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>";
    const E_REPLY_RANDOM: &[u8; 16] = b"999951349e8ee746";
    const E_REPLY_ENCRYPT: &str = "hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7";
    const E_REPLY_SIGNATURE: &str = "03e0812039325c2712ef5f0f980fd14c70d6e307";

    #[test]
    fn wechats_published_samples_verify_and_decrypt() {
        for (key, token, appid, ts, nonce, sig, encrypt, message) in [
            (
                A_KEY,
                A_TOKEN,
                A_APPID,
                A_TIMESTAMP,
                A_NONCE,
                A_SIGNATURE,
                A_ENCRYPT,
                A_MESSAGE,
            ),
            (
                E_KEY,
                E_TOKEN,
                E_APPID,
                E_TIMESTAMP,
                E_NONCE,
                E_SIGNATURE,
                E_ENCRYPT,
                E_MESSAGE,
            ),
        ] {
            assert_eq!(msg_signature(token, ts, nonce, encrypt), sig);
            assert!(signature_matches(token, ts, nonce, encrypt, sig));
            assert!(!signature_matches(token, ts, "1", encrypt, sig));
            let key = MessageKey::from_encoding_aes_key(key).unwrap();
            assert_eq!(decrypt(&key, encrypt, appid).unwrap(), message);
            assert_eq!(
                decrypt(&key, encrypt, "wxother"),
                Err(CryptoError::WrongAppid)
            );
        }
    }

    #[test]
    fn encrypts_as_wechats_document_does() {
        let key = MessageKey::from_encoding_aes_key(E_KEY).unwrap();
        let encrypted = encrypt(&key, E_REPLY, E_APPID, E_REPLY_RANDOM);
        assert_eq!(encrypted, E_REPLY_ENCRYPT);
        assert_eq!(
            msg_signature(E_TOKEN, "1713424427", "415670741", &encrypted),
            E_REPLY_SIGNATURE
        );
        assert_eq!(decrypt(&key, &encrypted, E_APPID).unwrap(), E_REPLY);
        // Every length pads to whole 32-byte blocks and reads back.
        for n in 0..70 {
            let message = "x".repeat(n);
            let e = encrypt(&key, &message, E_APPID, &[7; 16]);
            assert_eq!(STANDARD.decode(&e).unwrap().len() % PAD_BLOCK, 0);
            assert_eq!(decrypt(&key, &e, E_APPID).unwrap(), message);
        }
    }

    #[test]
    fn garbage_is_refused_not_a_panic() {
        let key = MessageKey::from_encoding_aes_key(E_KEY).unwrap();
        let other = MessageKey::from_encoding_aes_key(A_KEY).unwrap();
        let table: [(&str, &MessageKey, &str, CryptoError); 5] = [
            ("not base64", &key, "%%%", CryptoError::BadCiphertext),
            ("not whole blocks", &key, "AAAA", CryptoError::BadCiphertext),
            ("empty", &key, "", CryptoError::BadCiphertext),
            (
                "another key: bad padding or appid",
                &other,
                E_ENCRYPT,
                CryptoError::BadPlaintext,
            ),
            (
                "one zero block",
                &key,
                &STANDARD.encode([0u8; 16]),
                CryptoError::BadPlaintext,
            ),
        ];
        for (name, k, encrypt, want) in table {
            let got = decrypt(k, encrypt, E_APPID).unwrap_err();
            // Another key garbles the plaintext: padding, length or appid refuse it.
            if name.starts_with("another") {
                assert!(got != CryptoError::BadCiphertext, "{name}");
            } else {
                assert_eq!(got, want, "{name}");
            }
        }
        for bad in ["", "short", &"A".repeat(44), &format!("{}!", &E_KEY[..42])] {
            assert!(MessageKey::from_encoding_aes_key(bad).is_err(), "{bad}");
        }
    }
}
