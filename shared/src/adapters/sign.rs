//! Signatures the front end needs: the `wx.config` signature over the jsapi_ticket, and the
//! `chooseInvoice` card_sign over the wx_card ticket. Both are lower-case hex SHA1.

use sha1::{Digest, Sha1};

/// `wx.config` signature: SHA1 of `jsapi_ticket=…&noncestr=…&timestamp=…&url=…`, keys in ASCII
/// order, values raw (no URL encoding). `url` must already be the page URL without its fragment.
pub fn jsapi_signature(jsapi_ticket: &str, noncestr: &str, timestamp: u64, url: &str) -> String {
    sha1_hex(&jsapi_plain(jsapi_ticket, noncestr, timestamp, url))
}

/// The string `jsapi_signature` hashes.
pub fn jsapi_plain(jsapi_ticket: &str, noncestr: &str, timestamp: u64, url: &str) -> String {
    format!("jsapi_ticket={jsapi_ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}")
}

/// What `card_sign` hashes.
pub fn card_plain(wx_card_ticket: &str, appid: &str, timestamp: u64, noncestr: &str) -> String {
    let ts = timestamp.to_string();
    let mut values = [wx_card_ticket, appid, ts.as_str(), noncestr, "INVOICE"];
    values.sort_unstable();
    values.concat()
}

/// A signed string as it may be shown: the ticket in it replaced by `***` (its place kept, so a
/// front end sees what was signed around it).
pub fn masked(plain: &str, ticket: &str) -> String {
    if ticket.is_empty() {
        return plain.to_string();
    }
    plain.replace(ticket, "***")
}

/// `chooseInvoice` card_sign: the five values (wx_card ticket, appid or corpid, timestamp,
/// nonce, the literal `INVOICE`) sorted byte-wise and concatenated, then SHA1.
pub fn card_sign(wx_card_ticket: &str, appid: &str, timestamp: u64, noncestr: &str) -> String {
    sha1_hex(&card_plain(wx_card_ticket, appid, timestamp, noncestr))
}

/// A fresh random nonce: 32 hex characters (a UUID v4 without hyphens). The JS-SDK declares
/// `nonceStr` as string(32); the 36-character hyphenated form is a known cause of "invalid
/// signature" on Android.
pub fn noncestr() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn sha1_hex(input: &str) -> String {
    let digest = Sha1::digest(input.as_bytes());
    let mut out = String::with_capacity(40);
    for b in digest {
        out.push(char::from_digit((b >> 4) as u32, 16).unwrap());
        out.push(char::from_digit((b & 0xf) as u32, 16).unwrap());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE_TICKET: &str =
        "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";

    #[test]
    fn spec_sample_answer_reproduces() {
        // The getToken sample answer of the user's spec.
        let sig = jsapi_signature(
            "HoagFKDcsGMVCIY2vOjf9sc9Fdc3O84VwzZWAyMK2U9XhjrkmyVo0HPv7tbjWsJh2PNOV5azYdqjcnqV_-QhCw",
            "e9ac683c-09c5-483a-b5a7-baca73a80490",
            1558063575,
            "http://www.hand.com",
        );
        assert_eq!(sig, "7fe9d82908f89f6f9867c0bb08171175d8f7e9ed");
    }

    #[test]
    fn official_jssdk_vectors() {
        let ts = 1414587457;
        assert_eq!(
            jsapi_signature(
                EXAMPLE_TICKET,
                "Wm3WZYTPz0wzccnW",
                ts,
                "http://mp.weixin.qq.com?params=value"
            ),
            "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
        );
        assert_eq!(
            jsapi_signature(
                EXAMPLE_TICKET,
                "Wm3WZYTPz0wzccnW",
                ts,
                "http://mp.weixin.qq.com"
            ),
            "f4d90daf4b3bca3078ab155816175ba34c443a7b"
        );
        assert_eq!(
            jsapi_signature("jsapi_ticket", "noncestr", 1234567890, "url"),
            "ae51fe229cba1316ed477ecbb06a53631ceaef2f"
        );
    }

    #[test]
    fn card_sign_vectors() {
        assert_eq!(
            card_sign("api_ticket", "corpid", 1234567890, "noncestr"),
            "c1140f85f3fd19bd2f2e5716684086dca782774b"
        );
        assert_eq!(
            card_sign(EXAMPLE_TICKET, "wx00000000000000", 1489030247, "p6N7WOAF"),
            "6d8b3a60f4a365ee2eb4dbdca93636f6b0c8b1e8"
        );
    }

    #[test]
    fn nonces_fit_the_js_sdk_32_characters_and_differ() {
        let (a, b) = (noncestr(), noncestr());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
    }
}
