//! Sealing what must be kept for a while but never read by anyone else: archive work left for the
//! schedule holds its invoice's `encrypt_code` (with the card_id and a token, it opens the
//! invoice) sealed with AES-256-GCM under a key derived (HKDF-SHA256) from its app's AppSecret,
//! bound to the app and card_id it belongs to. Reading the table is not enough to open it; an
//! AppSecret reset makes the work that was left unreadable, and it is then given up.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hkdf::Hkdf;
use sha2::Sha256;

use crate::domain::config::Secret;

/// What the key is for: another use of the same AppSecret derives another key.
const PURPOSE: &[u8] = b"wxinvoice archive work v1";

/// GCM's nonce, in bytes.
const NONCE_LEN: usize = 12;

pub struct Seal {
    cipher: Aes256Gcm,
}

impl Seal {
    pub fn from_secret(secret: &Secret) -> Seal {
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(None, secret.expose().as_bytes())
            .expand(PURPOSE, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Seal {
            cipher: Aes256Gcm::new(&key.into()),
        }
    }

    /// `plain` sealed for `context` (base64 of the nonce and the ciphertext).
    pub fn seal(&self, plain: &str, context: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plain.as_bytes(),
            aad: context.as_bytes(),
        };
        let sealed = self
            .cipher
            .encrypt(&nonce, payload)
            .expect("AES-GCM seals any input under 64 GiB");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        STANDARD.encode(out)
    }

    /// What `seal` sealed for this `context` under this key; `None` for anything else.
    pub fn open(&self, sealed: &str, context: &str) -> Option<String> {
        let bytes = STANDARD.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_key_and_context_open_what_was_sealed() {
        let seal = Seal::from_secret(&Secret::new("an-app-secret"));
        let code = "O/mPnGTpBu22a1szmK2ogzhFPBh9eYzv2p70L8yzyykB+/=";
        let sealed = seal.seal(code, "wxapp\ncard-1");
        assert!(!sealed.contains(code) && !sealed.contains("mPnGTpBu22"));
        assert_ne!(
            sealed,
            seal.seal(code, "wxapp\ncard-1"),
            "a fresh nonce each time"
        );
        assert_eq!(seal.open(&sealed, "wxapp\ncard-1").as_deref(), Some(code));
        let reset = Seal::from_secret(&Secret::new("the-secret-after-a-reset"));
        let mut tampered = STANDARD.decode(&sealed).unwrap();
        *tampered.last_mut().unwrap() ^= 1;
        for (key, sealed, context) in [
            (&reset, sealed.clone(), "wxapp\ncard-1"),
            (&seal, sealed.clone(), "wxapp\ncard-2"),
            (&seal, sealed.clone(), "wxother\ncard-1"),
            (&seal, STANDARD.encode(tampered), "wxapp\ncard-1"),
            (&seal, "not base64 at all".into(), "wxapp\ncard-1"),
            (&seal, STANDARD.encode([1, 2, 3]), "wxapp\ncard-1"),
        ] {
            assert_eq!(key.open(&sealed, context), None, "{context}");
        }
    }
}
