//! What the gateway adds to WeChat's invoice answers, and nothing else changes in them: the
//! `encrypt_code` each item answers (WeChat's items carry none, and several invoices share a
//! `card_id`, so a front end pairing by position could lock or close the wrong invoice), the
//! invoices WeChat left out (`gateway_missing`), and the link to an archived PDF (`pdf_archive_url`).
//!
//! The batch answer is paired with the request by position only when that is certain: as many
//! items as asked, each with the `card_id` asked at its place. Otherwise the caller resolves the
//! batch by single queries, which name their invoice.

use serde_json::{Map, Value};

use crate::invoice::InvoiceRef;

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

/// WeChat's batch answer (an object with errcode 0) with each item paired to the invoice asked at
/// its place, or `None` when that pairing is not certain: fewer or more items than asked, or an
/// item whose `card_id` is not the one asked there.
pub fn pair_batch(
    mut answer: Map<String, Value>,
    refs: &[InvoiceRef],
) -> Option<Map<String, Value>> {
    let items = match answer.get_mut("item_list") {
        Some(Value::Array(items)) => std::mem::take(items),
        None if refs.is_empty() => Vec::new(),
        _ => return None,
    };
    if items.len() != refs.len() {
        return None;
    }
    let mut paired = Vec::with_capacity(items.len());
    for (item, r) in items.into_iter().zip(refs) {
        let Value::Object(item) = item else {
            return None;
        };
        if item.get("card_id").and_then(Value::as_str) != Some(r.card_id.as_str()) {
            return None;
        }
        paired.push(Value::Object(with_code(item, &r.encrypt_code)));
    }
    answer.insert("item_list".into(), Value::Array(paired));
    Some(answer)
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
        let two = [r("A", "a1"), r("A", "a2")];
        let answer = |items: Value| obj(json!({"errcode":0,"errmsg":"ok","item_list":items}));
        type Case<'a> = (&'a str, Value, &'a [InvoiceRef], Option<[&'a str; 2]>);
        let table: [Case; 6] = [
            (
                "same count, same cards",
                json!([{"card_id":"A"},{"card_id":"A"}]),
                &two,
                Some(["a1", "a2"]),
            ),
            ("one left out", json!([{"card_id":"A"}]), &two, None),
            ("none returned", json!([]), &two, None),
            (
                "a card not asked at its place",
                json!([{"card_id":"A"},{"card_id":"B"}]),
                &two,
                None,
            ),
            (
                "more than asked",
                json!([{"card_id":"A"},{"card_id":"A"},{"card_id":"A"}]),
                &two,
                None,
            ),
            (
                "an item that is not an object",
                json!([{"card_id":"A"}, 1]),
                &two,
                None,
            ),
        ];
        for (case, items, refs, want) in table {
            let got = pair_batch(answer(items), refs);
            match want {
                None => assert!(got.is_none(), "{case}"),
                Some(codes) => {
                    let got = got.unwrap_or_else(|| panic!("{case}: not paired"));
                    let codes_got: Vec<_> = got["item_list"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|i| i["encrypt_code"].as_str().unwrap())
                        .collect();
                    assert_eq!(codes_got, codes, "{case}");
                    assert_eq!(got["errcode"], 0, "{case}: the envelope is kept");
                }
            }
        }
        assert!(pair_batch(obj(json!({"errcode":0,"errmsg":"ok"})), &two).is_none());
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
