//! Invoices end to end through the handlers, against the simulator and moto: answers paired with
//! the invoices asked, status changes whose outcome is settled by reading back.

use integration_tests::*;
use serde_json::{json, Value};
use wxinvoice::handlers::{
    GET_INVOICE_BATCH, GET_INVOICE_INFO, UPDATE_INVOICE_STATUS, UPDATE_STATUS,
};

const LOCK: &str = "INVOICE_REIMBURSE_LOCK";
const INIT: &str = "INVOICE_REIMBURSE_INIT";
const CLOSURE: &str = "INVOICE_REIMBURSE_CLOSURE";

async fn stored(h: &Harness) -> String {
    h.stored_token().await
}

fn refs(codes: &[&str]) -> Value {
    Value::Array(
        codes
            .iter()
            .map(|c| json!({"card_id": SEED_CARD, "encrypt_code": c}))
            .collect(),
    )
}

async fn set_list(h: &Harness, t: &str, status: &str, codes: &[&str]) -> (u16, Value) {
    let body = json!({"openid": OPENID, "reimburse_status": status, "invoice_list": refs(codes)});
    invoice_call(&h.app, UPDATE_STATUS, t, &body).await
}

async fn set_status(h: &Harness, t: &str, status: &str, code: &str) -> (u16, Value) {
    set_list(h, t, status, &[code]).await
}

async fn set_one(h: &Harness, t: &str, status: &str, code: &str) -> (u16, Value) {
    let body = json!({"card_id": SEED_CARD, "encrypt_code": code, "reimburse_status": status});
    invoice_call(&h.app, UPDATE_INVOICE_STATUS, t, &body).await
}

/// Puts the simulator's invoices back as the fixture has them.
async fn reset_invoices(h: &Harness) {
    let seed: Value = serde_json::from_str(&fixture("invoices.json")).unwrap();
    h.sim_post("/__sim/invoices", seed).await;
}

/// A harness whose token is stored, and that token.
async fn ready() -> (Harness, String) {
    let h = Harness::new().await;
    wxinvoice::handlers::get_token(&h.app, event("apigw-v2-get-token.json", |_| {}))
        .await
        .unwrap();
    let t = stored(&h).await;
    (h, t)
}

#[tokio::test]
async fn a_batch_that_leaves_invoices_out_is_resolved_by_single_queries() {
    let (h, t) = ready().await;
    // Two invoices of one card_id around one WeChat cannot find (it answers errcode 0 without it).
    let asked = refs(&[SEED_CODE, "no-such-code", CODE2]);
    let (status, v) =
        invoice_call(&h.app, GET_INVOICE_BATCH, &t, &json!({"item_list": asked})).await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)), "{v}");
    assert_eq!(h.calls(paths().invoice_batch), 1);
    assert_eq!(
        h.calls(paths().invoice_info),
        3,
        "one single query per invoice"
    );
    let list = v["item_list"].as_array().unwrap();
    assert_eq!(list.len(), 3, "{v}");
    // Each item is the card of the invoice asked at its place, and says which.
    for (i, code) in [SEED_CODE, CODE2].iter().enumerate() {
        let item = &list[i * 2];
        assert_eq!(item["encrypt_code"], *code);
        let one = h
            .sim_post(
                &format!("{}?access_token={t}", paths().invoice_info),
                json!({"card_id": SEED_CARD, "encrypt_code": code}),
            )
            .await;
        assert_eq!(item["user_info"], one["user_info"], "{code}");
        assert!(item.get("gateway_missing").is_none());
    }
    assert_ne!(
        list[0]["user_info"]["billing_no"],
        list[2]["user_info"]["billing_no"]
    );
    // The one WeChat did not return is marked, with WeChat's own error for it.
    assert_eq!(list[1]["encrypt_code"], "no-such-code");
    assert_eq!(list[1]["card_id"], SEED_CARD);
    assert_eq!(list[1]["gateway_missing"]["errcode"], 40056, "{v}");
    assert!(list[1].get("user_info").is_none());

    // When WeChat answers every invoice, the batch alone answers: no single query.
    let singles = h.calls(paths().invoice_info);
    let (_, v) = invoice_call(
        &h.app,
        GET_INVOICE_BATCH,
        &t,
        &json!({"item_list": refs(&[CODE2, SEED_CODE])}),
    )
    .await;
    let codes: Vec<&str> = v["item_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["encrypt_code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, [CODE2, SEED_CODE]);
    assert_eq!(h.calls(paths().invoice_info), singles);

    // The single query names its invoice too.
    let one = json!({"card_id": SEED_CARD, "encrypt_code": CODE2});
    let (_, v) = invoice_call(&h.app, GET_INVOICE_INFO, &t, &one).await;
    assert_eq!(
        (v["errcode"].as_i64(), v["encrypt_code"].as_str()),
        (Some(0), Some(CODE2)),
        "{v}"
    );
}

#[tokio::test]
async fn a_client_retrying_a_change_that_succeeded_gets_success() {
    let (h, t) = ready().await;
    // WeChat refusing the status an invoice already has (the simulator's option; undocumented).
    h.sim_post(
        "/__sim/options",
        json!({"same_status_ok": false, "closed_errcode": 72061}),
    )
    .await;
    for batch in [true, false] {
        let set = |status: &'static str| {
            let (h, t) = (&h, t.as_str());
            async move {
                if batch {
                    set_status(h, t, status, SEED_CODE).await
                } else {
                    set_one(h, t, status, SEED_CODE).await
                }
            }
        };
        reset_invoices(&h).await;
        let sent = h.calls(change_path(batch));
        let (_, v) = set(LOCK).await;
        assert_eq!(v, json!({"errcode": 0, "errmsg": "ok"}));
        let (status, v) = set(LOCK).await;
        assert_eq!(status, 200);
        assert_eq!(v["errcode"], 0, "a repeated LOCK: {v}");
        assert_eq!(v["gateway_outcome"], "already_in_status");
        let (_, v) = set(CLOSURE).await;
        assert_eq!(v["errcode"], 0, "{v}");
        let (_, v) = set(CLOSURE).await;
        assert_eq!(v["errcode"], 0, "a repeated CLOSURE: {v}");
        assert_eq!(v["gateway_outcome"], "already_in_status");
        // A refusal that is not "already there" stays WeChat's own answer.
        let (_, v) = set(INIT).await;
        assert_eq!(v["errcode"], 72061, "unlocking a closed invoice: {v}");
        assert!(v.get("gateway_outcome").is_none());
        assert_eq!(h.invoice_status(SEED_CODE).await, CLOSURE);
        assert_eq!(
            h.calls(change_path(batch)) - sent,
            5,
            "each change sent once"
        );
    }
}

/// The status-change path of the endpoint `set` calls.
fn change_path(batch: bool) -> &'static str {
    if batch {
        paths().update_status_batch
    } else {
        paths().update_status_one
    }
}

#[tokio::test]
async fn a_lost_answer_is_settled_by_reading_the_invoices_back() {
    let h = Harness::with(&[("WECHAT_TIMEOUT_MS", "300")]).await;
    wxinvoice::handlers::get_token(&h.app, event("apigw-v2-get-token.json", |_| {}))
        .await
        .unwrap();
    let t = stored(&h).await;
    let fail = json!({"http_status": 500});
    // (case, faults on the change's path, on the queries' paths, answer: status, errcode,
    // gateway_outcome, the invoice's status at WeChat afterwards)
    let table = [
        (
            "dropped after WeChat applied it",
            json!({"drop": true, "applied": true}),
            None,
            (200, 0, Some("confirmed_by_read_back"), LOCK),
        ),
        (
            "5xx after WeChat applied it",
            json!({"http_status": 502, "applied": true}),
            None,
            (200, 0, Some("confirmed_by_read_back"), LOCK),
        ),
        (
            "answered after the timeout, applied",
            json!({"latency_ms": 600, "applied": true}),
            None,
            (200, 0, Some("confirmed_by_read_back"), LOCK),
        ),
        (
            "dropped before WeChat applied it",
            json!({"drop": true}),
            None,
            (502, -1, None, INIT),
        ),
        (
            "5xx, not applied",
            json!({"http_status": 503}),
            None,
            (502, -1, None, INIT),
        ),
        (
            "dropped, applied, and the read back fails",
            json!({"drop": true, "applied": true}),
            Some(fail.clone()),
            (502, -2, None, LOCK),
        ),
        (
            "timed out, and the read back fails",
            json!({"latency_ms": 600, "applied": true}),
            Some(fail.clone()),
            (504, -2, None, LOCK),
        ),
    ];
    for batch in [true, false] {
        for (case, change_fault, query_fault, want) in &table {
            reset_invoices(&h).await;
            h.clear_faults().await;
            let mut fault = change_fault.clone();
            fault["path"] = json!(change_path(batch));
            fault["times"] = json!(1);
            h.fault(fault).await;
            if let Some(q) = query_fault {
                for path in [paths().invoice_batch, paths().invoice_info] {
                    let mut f = q.clone();
                    f["path"] = json!(path);
                    h.fault(f).await;
                }
            }
            let sent_before = h.calls(change_path(batch));
            let (status, v) = if batch {
                set_status(&h, &t, LOCK, SEED_CODE).await
            } else {
                set_one(&h, &t, LOCK, SEED_CODE).await
            };
            // Let a late answer land before looking at WeChat's side.
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
            let got = (
                status,
                v["errcode"].as_i64().unwrap(),
                v["gateway_outcome"].as_str(),
            );
            assert_eq!(
                got,
                (want.0, want.1, want.2),
                "{case} (batch: {batch}): {v}"
            );
            assert_eq!(
                h.invoice_status(SEED_CODE).await,
                want.3,
                "{case} (batch: {batch})"
            );
            assert_eq!(
                h.calls(change_path(batch)) - sent_before,
                1,
                "{case}: the change is never sent twice"
            );
            let errmsg = v["errmsg"].as_str().unwrap();
            match want.1 {
                -1 => assert!(errmsg.contains("not applied"), "{case}: {errmsg}"),
                -2 => assert!(errmsg.contains("outcome unknown"), "{case}: {errmsg}"),
                _ => {}
            }
        }
    }
}
