//! What the gateway adds to WeChat's invoice answers, and nothing else changes in them: the
//! `encrypt_code` each item answers (WeChat's items carry none, and several invoices share a
//! `card_id`, so a front end pairing by position could lock or close the wrong invoice), the
//! invoices WeChat left out (`gateway_missing`), and the link to an archived PDF (`pdf_archive_url`).
//!
//! The batch answer is paired with the request by position only when that is certain: as many
//! items as asked, each with the `card_id` asked at its place. Otherwise the caller resolves the
//! batch by single queries, which name their invoice.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::domain::invoice::{InvoiceRef, ReimburseStatus};

/// A WeChat invoice item with `encrypt_code` placed right after its `card_id`.
pub fn with_code(item: Map<String, Value>, encrypt_code: &str) -> Map<String, Value> {
    let mut out = Map::with_capacity(item.len() + 1);
    let mut placed = false;
    for (k, v) in item {
        if k == "encrypt_code" {
            continue;
        }
        let after = k == "card_id";
        out.insert(k, v);
        if after {
            out.insert("encrypt_code".into(), Value::from(encrypt_code));
            placed = true;
        }
    }
    if !placed {
        out.insert("encrypt_code".into(), Value::from(encrypt_code));
    }
    out
}

/// WeChat's batch answer with each item paired to the invoice asked at its place.
pub struct Paired {
    /// WeChat's text with `"encrypt_code":…` spliced in as each item's first field: nothing else
    /// is decoded or re-encoded (this is the hot path of getInvoiceBatch).
    pub text: String,
    /// Whether some item is reimbursed (CLOSURE), which may call for archive links.
    pub closed: bool,
}

#[derive(Deserialize)]
struct BatchHead<'a> {
    #[serde(borrow, default)]
    item_list: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct ItemHead<'a> {
    #[serde(borrow, default)]
    card_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_info: Option<UserHead<'a>>,
}

#[derive(Deserialize)]
struct UserHead<'a> {
    #[serde(borrow, default)]
    reimburse_status: Option<Cow<'a, str>>,
}

/// Pairs WeChat's batch answer (errcode 0) with the request, or `None` when that pairing is not
/// certain: fewer or more items than asked, or an item whose `card_id` is not the one asked at
/// its place.
pub fn pair_batch(answer: &str, refs: &[InvoiceRef]) -> Option<Paired> {
    let head: BatchHead = serde_json::from_str(answer).ok()?;
    let items = head.item_list.unwrap_or_default();
    if items.len() != refs.len() {
        return None;
    }
    let extra: usize = refs.iter().map(|r| r.encrypt_code.len() + 20).sum();
    let mut text = String::with_capacity(answer.len() + extra);
    let (mut copied, mut closed) = (0, false);
    for (item, r) in items.iter().zip(refs) {
        let raw = item.get();
        let h: ItemHead = serde_json::from_str(raw).ok()?;
        if h.card_id.as_deref() != Some(r.card_id.as_str()) {
            return None;
        }
        let status = h.user_info.and_then(|u| u.reimburse_status);
        closed |= status.as_deref() == Some(ReimburseStatus::Closure.as_str());
        // The item borrows from `answer`: its offset there, just past its `{` (the item has a
        // card_id, so a field follows and the comma is right).
        let at = raw.as_ptr() as usize - answer.as_ptr() as usize + 1;
        text.push_str(&answer[copied..at]);
        text.push_str("\"encrypt_code\":");
        text.push_str(&Value::from(r.encrypt_code.as_str()).to_string());
        text.push(',');
        copied = at;
    }
    text.push_str(&answer[copied..]);
    Some(Paired { text, closed })
}

/// Whether two invoices asked share a card_id (then only position tells their answers apart).
pub fn shares_card_ids(refs: &[InvoiceRef]) -> bool {
    let mut seen = std::collections::HashSet::new();
    refs.iter().any(|r| !seen.insert(r.card_id.as_str()))
}

/// The item that stands for an invoice WeChat did not return: which one, and WeChat's own error
/// for it from the single query.
pub fn missing(r: &InvoiceRef, error: Map<String, Value>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("card_id".into(), Value::from(r.card_id.as_str()));
    m.insert("encrypt_code".into(), Value::from(r.encrypt_code.as_str()));
    m.insert("gateway_missing".into(), Value::Object(error));
    m
}

/// The `reimburse_status` of each item of a query answer, in order (`None` where an item has
/// none, or is missing).
pub fn statuses(items: &[Value]) -> Vec<Option<&str>> {
    items
        .iter()
        .map(|i| {
            if i.get("gateway_missing").is_some() {
                return None;
            }
            i.get("user_info")?.get("reimburse_status")?.as_str()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(card: &str, code: &str) -> InvoiceRef {
        InvoiceRef {
            card_id: card.into(),
            encrypt_code: code.into(),
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn code_goes_right_after_card_id_and_replaces_any_other() {
        let item = obj(json!({"card_id":"c","encrypt_code":"stale","openid":"o"}));
        let text = Value::Object(with_code(item, "e")).to_string();
        assert_eq!(text, r#"{"card_id":"c","encrypt_code":"e","openid":"o"}"#);
        let no_card = obj(json!({"openid":"o"}));
        assert_eq!(
            Value::Object(with_code(no_card, "e")).to_string(),
            r#"{"openid":"o","encrypt_code":"e"}"#
        );
    }

    #[test]
    fn batch_is_paired_only_when_certain() {
        let two = [r("A", "a1"), r("A", "a/2\"")];
        let answer = |items: &str| format!(r#"{{"errcode":0,"errmsg":"ok","item_list":{items}}}"#);
        type Case<'a> = (&'a str, &'a str, Option<[&'a str; 2]>);
        let table: [Case; 7] = [
            (
                "same count, same cards",
                r#"[{"card_id":"A"}, {"card_id":"A","n":1}]"#,
                Some(["a1", "a/2\""]),
            ),
            ("one left out", r#"[{"card_id":"A"}]"#, None),
            ("none returned", "[]", None),
            (
                "a card not asked at its place",
                r#"[{"card_id":"A"},{"card_id":"B"}]"#,
                None,
            ),
            (
                "more than asked",
                r#"[{"card_id":"A"},{"card_id":"A"},{"card_id":"A"}]"#,
                None,
            ),
            (
                "an item that is not an object",
                r#"[{"card_id":"A"},1]"#,
                None,
            ),
            (
                "an item without card_id",
                r#"[{"card_id":"A"},{"x":1}]"#,
                None,
            ),
        ];
        for (case, items, want) in table {
            let text = answer(items);
            let got = pair_batch(&text, &two);
            match want {
                None => assert!(got.is_none(), "{case}"),
                Some(codes) => {
                    let got = got.unwrap_or_else(|| panic!("{case}: not paired"));
                    let v: Value = serde_json::from_str(&got.text).expect("valid JSON");
                    let codes_got: Vec<_> = v["item_list"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|i| i["encrypt_code"].as_str().unwrap())
                        .collect();
                    assert_eq!(codes_got, codes, "{case}");
                    // Apart from the codes, WeChat's text as it came.
                    let stripped = got
                        .text
                        .replace(r#""encrypt_code":"a1","#, "")
                        .replace(r#""encrypt_code":"a/2\"","#, "");
                    assert_eq!(stripped, text, "{case}");
                    assert!(!got.closed);
                }
            }
        }
        assert!(pair_batch(r#"{"errcode":0,"errmsg":"ok"}"#, &two).is_none());
        assert!(pair_batch("not json", &two).is_none());
    }

    #[test]
    fn a_reimbursed_item_is_noticed() {
        let text = r#"{"errcode":0,"item_list":[{"card_id":"A","user_info":{"reimburse_status":"INVOICE_REIMBURSE_CLOSURE"}}]}"#;
        assert!(pair_batch(text, &[r("A", "a")]).unwrap().closed);
        let text = text.replace("CLOSURE", "LOCK");
        assert!(!pair_batch(&text, &[r("A", "a")]).unwrap().closed);
    }

    #[test]
    fn statuses_read_each_item_and_skip_the_missing() {
        let m = Value::Object(missing(&r("A", "a"), obj(json!({"errcode":40056}))));
        let items = [
            json!({"card_id":"A","user_info":{"reimburse_status":"INVOICE_REIMBURSE_LOCK"}}),
            m,
            json!({"card_id":"A","user_info":{}}),
        ];
        assert_eq!(
            statuses(&items),
            [Some("INVOICE_REIMBURSE_LOCK"), None, None]
        );
    }
}
