//! Invoice request and response models, and the validation of request bodies. Requests are
//! strict (unknown fields refused); responses are never rebuilt from these models: WeChat's body is
//! passed through byte for byte, so fields the models do not know still reach the caller.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::config::Limits;
use crate::domain::input::InputError;

/// Longest card_id accepted (WeChat's are 28 characters).
pub const MAX_CARD_ID: usize = 128;
/// Longest encrypt_code accepted (WeChat's are about 128 characters of base64).
pub const MAX_ENCRYPT_CODE: usize = 1024;
/// Longest openid accepted (WeChat's are 28 characters).
pub const MAX_OPENID: usize = 128;

/// One invoice in the user's card wallet: `card_id` names the template, `encrypt_code` the card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceRef {
    pub card_id: String,
    pub encrypt_code: String,
}

/// Body of `getInvoiceBatch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetInvoiceBatchRequest {
    pub item_list: Vec<InvoiceRef>,
}

/// The four reimbursement states of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub enum ReimburseStatus {
    #[serde(rename = "INVOICE_REIMBURSE_INIT")]
    Init,
    #[serde(rename = "INVOICE_REIMBURSE_LOCK")]
    Lock,
    #[serde(rename = "INVOICE_REIMBURSE_CLOSURE")]
    Closure,
    #[serde(rename = "INVOICE_REIMBURSE_CANCEL")]
    Cancel,
}

impl ReimburseStatus {
    pub const ALL: [ReimburseStatus; 4] = [
        ReimburseStatus::Init,
        ReimburseStatus::Lock,
        ReimburseStatus::Closure,
        ReimburseStatus::Cancel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReimburseStatus::Init => "INVOICE_REIMBURSE_INIT",
            ReimburseStatus::Lock => "INVOICE_REIMBURSE_LOCK",
            ReimburseStatus::Closure => "INVOICE_REIMBURSE_CLOSURE",
            ReimburseStatus::Cancel => "INVOICE_REIMBURSE_CANCEL",
        }
    }
}

impl TryFrom<String> for ReimburseStatus {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        ReimburseStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                let shown: String = s.chars().take(64).collect();
                format!(
                    "unknown status `{shown}`, expected one of {}",
                    ReimburseStatus::ALL.map(ReimburseStatus::as_str).join(", ")
                )
            })
    }
}

/// Body of `updateInvoiceStatus`: one invoice's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateInvoiceStatusRequest {
    pub card_id: String,
    pub encrypt_code: String,
    pub reimburse_status: ReimburseStatus,
    /// The expense claim this change is made for (the gateway's own; never sent to WeChat).
    #[serde(default, skip_serializing)]
    pub claim_id: Option<String>,
}

/// Body of `updateStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateStatusRequest {
    /// The invoices' owner. A WeCom page may name the member by `userid` instead, which the
    /// gateway converts (`/cgi-bin/user/convert_to_openid`) before the change is sent.
    #[serde(default)]
    pub openid: String,
    /// WeCom only: the member whose invoices these are, instead of `openid` (never sent as is).
    #[serde(default, skip_serializing)]
    pub userid: Option<String>,
    pub reimburse_status: ReimburseStatus,
    pub invoice_list: Vec<InvoiceRef>,
    /// The expense claim this change is made for (the gateway's own; never sent to WeChat).
    #[serde(default, skip_serializing)]
    pub claim_id: Option<String>,
}

/// WeChat's answer to the batch query, for documentation and tests. Unknown fields are kept in
/// `extra` at every level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvoiceBatchResponse {
    pub errcode: i64,
    pub errmsg: String,
    #[serde(default)]
    pub item_list: Vec<InvoiceItem>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvoiceItem {
    pub card_id: String,
    pub begin_time: Option<i64>,
    pub end_time: Option<i64>,
    pub openid: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub payee: Option<String>,
    pub detail: Option<String>,
    pub user_info: UserInfo,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The face of the invoice. Amounts are in fen. `billing_no`/`billing_code` are kept as sent:
/// WeChat's documents disagree on which holds the invoice code and which the number.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserInfo {
    pub fee: Option<i64>,
    pub title: Option<String>,
    pub billing_time: Option<i64>,
    pub billing_no: Option<String>,
    pub billing_code: Option<String>,
    #[serde(default)]
    pub info: Vec<Value>,
    pub fee_without_tax: Option<i64>,
    pub tax: Option<i64>,
    pub pdf_url: Option<String>,
    pub trip_pdf_url: Option<String>,
    pub reimburse_status: Option<String>,
    pub check_code: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Parses a JSON body, naming the offending field in the error.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8], limits: &Limits) -> Result<T, InputError> {
    if bytes.len() > limits.max_body_bytes {
        return Err(InputError::TooLarge(format!(
            "body: {} bytes is over the limit of {} bytes",
            bytes.len(),
            limits.max_body_bytes
        )));
    }
    // Serde would also read a struct from a JSON array; the contract's bodies are objects.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(InputError::invalid("body: a JSON object is required"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = unquoted(&e.into_inner().to_string());
        if path.is_empty() || path == "." || path == "?" {
            InputError::invalid(format!("body: {inner}"))
        } else {
            InputError::invalid(format!("body.{path}: {inner}"))
        }
    })?;
    Ok(value)
}

/// serde's message with the strings it quotes from the body left out: a front end that sends
/// chooseInvoice's raw answer as a string would otherwise have its encrypt_codes echoed (and
/// logged).
fn unquoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        // A quoted value (with serde's escapes) up to its closing quote, left out.
        while let Some(q) = chars.next() {
            match q {
                '\\' => {
                    chars.next();
                }
                '"' => break,
                _ => {}
            }
        }
        out.push_str("\"…\"");
    }
    out.replace("string \"…\"", "string")
}

fn check_list(name: &str, list: &[InvoiceRef], limits: &Limits) -> Result<(), InputError> {
    if list.is_empty() {
        return Err(InputError::invalid(format!(
            "body.{name}: must not be empty"
        )));
    }
    if list.len() > limits.max_items {
        return Err(InputError::invalid(format!(
            "body.{name}: {} items is over the limit of {}",
            list.len(),
            limits.max_items
        )));
    }
    for (i, item) in list.iter().enumerate() {
        check_str(&format!("{name}[{i}].card_id"), &item.card_id, MAX_CARD_ID)?;
        check_str(
            &format!("{name}[{i}].encrypt_code"),
            &item.encrypt_code,
            MAX_ENCRYPT_CODE,
        )?;
    }
    Ok(())
}

/// The characters WeChat's identifiers are made of: card_ids and openids of base64url
/// characters, encrypt_codes of base64 (standard or URL-safe). Nothing else reaches WeChat or
/// the gateway's own records (keys of the audit trail and the archive are built from them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charset {
    /// Letters, digits, `_` and `-` (card_id, openid).
    Id,
    /// Letters, digits, `+`, `/`, `=`, `_` and `-` (encrypt_code).
    Base64,
}

impl Charset {
    fn allows(self, b: u8) -> bool {
        b.is_ascii_alphanumeric()
            || b == b'_'
            || b == b'-'
            || (self == Charset::Base64 && matches!(b, b'+' | b'/' | b'='))
    }

    fn described(self) -> &'static str {
        match self {
            Charset::Id => "letters, digits, `_` or `-` only",
            Charset::Base64 => "base64 only (letters, digits, `+`, `/`, `=`, `_`, `-`)",
        }
    }
}

fn check_str(name: &str, value: &str, max: usize) -> Result<(), InputError> {
    let charset = if name.ends_with("encrypt_code") {
        Charset::Base64
    } else {
        Charset::Id
    };
    if value.trim().is_empty() {
        return Err(InputError::invalid(format!(
            "body.{name}: must not be empty"
        )));
    }
    if value.chars().count() > max {
        return Err(InputError::invalid(format!(
            "body.{name}: longer than {max} characters"
        )));
    }
    // The value itself is never quoted back: it may be an encrypt_code.
    if !value.bytes().all(|b| charset.allows(b)) {
        return Err(InputError::invalid(format!(
            "body.{name}: {}",
            charset.described()
        )));
    }
    Ok(())
}

/// Longest WeCom userid (WeCom: 1 to 64 bytes).
pub const MAX_USERID: usize = 64;

/// A WeCom member's userid: 1 to 64 letters, digits, `_`, `-`, `@` or `.` (WeCom's own rule).
fn check_userid(userid: &str) -> Result<(), InputError> {
    let ok = !userid.is_empty()
        && userid.len() <= MAX_USERID
        && userid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'@' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(InputError::invalid(format!(
            "body.userid: 1 to {MAX_USERID} letters, digits, `_`, `-`, `@` or `.`"
        )))
    }
}

/// Longest claim id accepted.
pub const MAX_CLAIM_ID: usize = 64;

/// Checks a caller's claim id: 1 to 64 letters, digits, `_`, `-`, `.` or `:`.
pub fn check_claim_id(id: &str) -> Result<(), InputError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CLAIM_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(InputError::invalid(format!(
            "body.claim_id: 1 to {MAX_CLAIM_ID} letters, digits, `_`, `-`, `.` or `:`"
        )))
    }
}

/// Checks of a parsed request body that serde cannot express (emptiness, sizes).
pub trait Validate {
    fn validate(&self, limits: &Limits) -> Result<(), InputError>;
}

impl Validate for GetInvoiceBatchRequest {
    fn validate(&self, limits: &Limits) -> Result<(), InputError> {
        check_list("item_list", &self.item_list, limits)
    }
}

impl Validate for UpdateStatusRequest {
    fn validate(&self, limits: &Limits) -> Result<(), InputError> {
        match &self.userid {
            None => check_str("openid", &self.openid, MAX_OPENID)?,
            Some(_) if !self.openid.is_empty() => {
                return Err(InputError::invalid(
                    "body: openid or userid, not both".to_string(),
                ))
            }
            Some(userid) => check_userid(userid)?,
        }
        check_reimburser_status(self.reimburse_status)?;
        if let Some(claim) = &self.claim_id {
            check_claim_id(claim)?;
        }
        check_list("invoice_list", &self.invoice_list, limits)
    }
}

/// `getInvoiceInfo`'s body is one invoice reference.
impl Validate for InvoiceRef {
    fn validate(&self, _: &Limits) -> Result<(), InputError> {
        check_str("card_id", &self.card_id, MAX_CARD_ID)?;
        check_str("encrypt_code", &self.encrypt_code, MAX_ENCRYPT_CODE)
    }
}

impl Validate for UpdateInvoiceStatusRequest {
    fn validate(&self, _: &Limits) -> Result<(), InputError> {
        check_str("card_id", &self.card_id, MAX_CARD_ID)?;
        check_str("encrypt_code", &self.encrypt_code, MAX_ENCRYPT_CODE)?;
        check_reimburser_status(self.reimburse_status)?;
        match &self.claim_id {
            Some(claim) => check_claim_id(claim),
            None => Ok(()),
        }
    }
}

/// CANCEL (冲红) is the issuer's status; WeChat's reimburser APIs take INIT, LOCK and CLOSURE
/// only. Refused here, so nothing is sent to WeChat.
fn check_reimburser_status(status: ReimburseStatus) -> Result<(), InputError> {
    if status == ReimburseStatus::Cancel {
        return Err(InputError::invalid(
            "reimburse_status: INVOICE_REIMBURSE_CANCEL is set by the invoice's issuer \
             (red-flush, 冲红), never by a reimburser; use INVOICE_REIMBURSE_INIT, \
             INVOICE_REIMBURSE_LOCK or INVOICE_REIMBURSE_CLOSURE",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_body_bytes: 1024,
            max_items: 2,
        }
    }

    fn batch(body: &str) -> Result<GetInvoiceBatchRequest, InputError> {
        let req: GetInvoiceBatchRequest = parse_body(body.as_bytes(), &limits())?;
        req.validate(&limits())?;
        Ok(req)
    }

    fn update(body: &str) -> Result<UpdateStatusRequest, InputError> {
        let req: UpdateStatusRequest = parse_body(body.as_bytes(), &limits())?;
        req.validate(&limits())?;
        Ok(req)
    }

    fn errmsg(r: Result<impl std::fmt::Debug, InputError>) -> String {
        match r.unwrap_err() {
            InputError::Invalid(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn valid_batch_parses() {
        let r = batch(r#"{"item_list":[{"card_id":"c","encrypt_code":"e"}]}"#).unwrap();
        assert_eq!(
            r.item_list[0],
            InvoiceRef {
                card_id: "c".into(),
                encrypt_code: "e".into()
            }
        );
    }

    #[test]
    fn errors_name_the_field() {
        assert!(errmsg(batch("{")).starts_with("body: EOF while parsing"));
        assert!(errmsg(batch("")).contains("JSON object is required"));
        assert!(errmsg(batch("{}")).contains("missing field `item_list`"));
        assert!(
            errmsg(batch(r#"{"item_list":[]}"#)).starts_with("body.item_list: must not be empty")
        );
        let m = errmsg(batch(r#"{"item_list":[{"card_id":1,"encrypt_code":"e"}]}"#));
        assert!(
            m.starts_with("body.item_list[0].card_id: invalid type"),
            "{m}"
        );
        let m = errmsg(batch(
            r#"{"item_list":[{"card_id":"c","encrypt_code":"e","x":1}]}"#,
        ));
        assert!(m.contains("unknown field `x`"), "{m}");
        let m = errmsg(batch(
            r#"{"item_list":[{"card_id":" ","encrypt_code":"e"}]}"#,
        ));
        assert_eq!(m, "body.item_list[0].card_id: must not be empty");
        let m = errmsg(batch(
            r#"{"item_list":[{"card_id":"c","encrypt_code":"e"}],"more":true}"#,
        ));
        assert!(m.contains("unknown field `more`"), "{m}");
        assert_eq!(errmsg(batch(r#"[1]"#)), "body: a JSON object is required");
        assert_eq!(errmsg(batch("null")), "body: a JSON object is required");
    }

    #[test]
    fn identifiers_are_wechats_characters_and_never_quoted() {
        let item = |card: &str, code: &str| {
            format!(r#"{{"item_list":[{{"card_id":"{card}","encrypt_code":"{code}"}}]}}"#)
        };
        #[rustfmt::skip]
        let table = [
            (item("pIKi3wcA2zJYhWaAUWmf3aMNd_r0", "O/mPnG+Tp=="), None),
            (item("p-K_3", "a-b_c"), None),
            (item("#archive-pending", "e"), Some("body.item_list[0].card_id: letters, digits, `_` or `-` only")),
            (item("c", "secret code"), Some("body.item_list[0].encrypt_code: base64 only")),
            (item("c", "x#y"), Some("body.item_list[0].encrypt_code: base64 only")),
            (item("c", "码"), Some("body.item_list[0].encrypt_code: base64 only")),
            (item("c/d", "e"), Some("body.item_list[0].card_id: letters, digits")),
        ];
        for (body, want) in table {
            match (batch(&body), want) {
                (Ok(_), None) => {}
                (Err(InputError::Invalid(m)), Some(want)) => {
                    assert!(m.starts_with(want), "{body}: {m}");
                    assert!(!m.contains("secret") && !m.contains("x#y"), "{m}");
                }
                (got, want) => panic!("{body}: {got:?}, wanted {want:?}"),
            }
        }
        let by = |openid: &str| {
            format!(
                r#"{{"openid":"{openid}","reimburse_status":"INVOICE_REIMBURSE_LOCK","invoice_list":[{{"card_id":"c","encrypt_code":"e"}}]}}"#
            )
        };
        assert!(update(&by("or6qc1XNFyAhiatjzyd7aboPkLz8")).is_ok());
        assert_eq!(
            errmsg(update(&by("o r"))),
            "body.openid: letters, digits, `_` or `-` only"
        );
    }

    #[test]
    fn values_in_the_body_are_never_quoted_back() {
        // chooseInvoice's answer sent as it came, a JSON string, instead of the list.
        let raw = r#"[{\"card_id\":\"pCard\",\"encrypt_code\":\"SECRETcode+/=\"}]"#;
        let m = errmsg(batch(&format!(r#"{{"item_list":"{raw}"}}"#)));
        assert!(
            m.starts_with("body.item_list: invalid type: string, expected a sequence"),
            "{m}"
        );
        assert!(!m.contains("SECRETcode"), "{m}");
        let m = errmsg(batch(r#"{"item_list":[{"card_id":"c","encrypt_code":7}]}"#));
        assert!(
            m.contains("invalid type: integer `7`, expected a string"),
            "{m}"
        );
    }

    #[test]
    fn claim_ids_are_plain() {
        assert!(check_claim_id("报销单-2026-0007").is_err());
        assert!(check_claim_id("claim:2026-0007").is_ok());
        assert!(check_claim_id(&"c".repeat(65)).is_err());
    }

    #[test]
    fn limits_are_enforced() {
        let three = r#"{"item_list":[{"card_id":"c","encrypt_code":"e"},{"card_id":"c","encrypt_code":"e"},{"card_id":"c","encrypt_code":"e"}]}"#;
        assert!(errmsg(batch(three)).contains("over the limit of 2"));
        let big = format!(
            r#"{{"item_list":[{{"card_id":"{}","encrypt_code":"e"}}]}}"#,
            "c".repeat(2000)
        );
        let e = batch(&big).unwrap_err();
        assert!(matches!(e, InputError::TooLarge(_)), "{e:?}");
        let long = format!(
            r#"{{"item_list":[{{"card_id":"{}","encrypt_code":"e"}}]}}"#,
            "c".repeat(200)
        );
        assert!(errmsg(batch(&long)).contains("longer than 128"));
    }

    #[test]
    fn status_must_be_one_of_the_four() {
        let ok = r#"{"openid":"o","reimburse_status":"INVOICE_REIMBURSE_LOCK","invoice_list":[{"card_id":"c","encrypt_code":"e"}]}"#;
        assert_eq!(update(ok).unwrap().reimburse_status, ReimburseStatus::Lock);
        // CANCEL parses, and is refused: it is the issuer's status, not a reimburser's.
        let cancel = ok.replace("LOCK", "CANCEL");
        let m = errmsg(update(&cancel));
        assert!(m.contains("set by the invoice's issuer"), "{m}");
        let bad = ok.replace("INVOICE_REIMBURSE_LOCK", "LOCKED");
        let m = errmsg(update(&bad));
        assert!(m.starts_with("body.reimburse_status: unknown status `LOCKED`, expected one of INVOICE_REIMBURSE_INIT"), "{m}");
        let m = errmsg(update(&ok.replace(r#""openid":"o""#, r#""openid":"""#)));
        assert_eq!(m, "body.openid: must not be empty");
        // A WeCom member by userid instead: never sent as is, never both, WeCom's characters.
        let by_user = ok.replace(r#""openid":"o""#, r#""userid":"zhang.san@corp""#);
        let r = update(&by_user).unwrap();
        assert_eq!(r.userid.as_deref(), Some("zhang.san@corp"));
        assert!(!serde_json::to_string(&r).unwrap().contains("userid"));
        let both = ok.replace(r#""openid":"o""#, r#""openid":"o","userid":"u""#);
        assert_eq!(errmsg(update(&both)), "body: openid or userid, not both");
        let bad = ok.replace(r#""openid":"o""#, r#""userid":"zhang san""#);
        assert!(errmsg(update(&bad)).starts_with("body.userid: 1 to 64"));
        let neither = ok.replace(r#""openid":"o","#, "");
        assert_eq!(errmsg(update(&neither)), "body.openid: must not be empty");
        let m = errmsg(update(
            r#"{"openid":"o","reimburse_status":"INVOICE_REIMBURSE_LOCK"}"#,
        ));
        assert!(m.contains("missing field `invoice_list`"), "{m}");
    }

    #[test]
    fn request_serializes_back_to_wechat_field_names() {
        let r = update(r#"{"openid":"o","reimburse_status":"INVOICE_REIMBURSE_CLOSURE","invoice_list":[{"card_id":"c","encrypt_code":"e"}]}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"openid":"o","reimburse_status":"INVOICE_REIMBURSE_CLOSURE","invoice_list":[{"card_id":"c","encrypt_code":"e"}]}"#
        );
    }
}
