//! The daily budget of WeChat calls per app: one count shared by every instance, raised before
//! each WeChat call and refusing past its ceiling (429, errcode -4), counting every invoice call a
//! request makes (single queries and read backs included).

use integration_tests::*;
use serde_json::{json, Value};

/// A harness with a claim table (where the count is kept) and `budget` calls a day, its stored
/// token, and the table's name.
async fn ready(budget: &str) -> (Harness, String, String) {
    let sdk = aws().await;
    let claims = create_table(&sdk).await;
    let h = Harness::with(&[("CLAIM_TABLE", &claims), ("WECHAT_DAILY_BUDGET", budget)]).await;
    h.sim.set_invoices(&seed_invoices()).await;
    h.send(Endpoint::GetToken.call()).await;
    let t = h.stored_token().await;
    (h, t, claims)
}

/// Today's count of the deployment's own app, as stored.
async fn counted(h: &Harness, table: &str) -> u64 {
    let day = wxinvoice::domain::budget::day(wxinvoice::domain::clock::now_ms());
    let item = aws_sdk_dynamodb::Client::new(&h.sdk)
        .get_item()
        .table_name(table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!(
                "budget#{}#{day}",
                Platform::current().appid()
            )),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_default();
    item.get("calls")
        .and_then(|v| v.as_n().ok())
        .map_or(0, |n| n.parse().unwrap())
}

/// Every invoice call WeChat saw.
fn invoice_calls(h: &Harness) -> u64 {
    let p = paths();
    [
        p.invoice_batch,
        p.invoice_info,
        p.update_status_batch,
        p.update_status_one,
    ]
    .into_iter()
    .map(|path| h.calls(path))
    .sum()
}

fn batch(codes: &[&str]) -> Value {
    json!({ "item_list": refs(codes) })
}

#[tokio::test]
async fn instances_share_one_budget_and_past_its_ceiling_wechat_is_not_called() {
    let (h, t, table) = ready("3").await;
    let other = h.instance(&[("CLAIM_TABLE", &table), ("WECHAT_DAILY_BUDGET", "3")]);
    let (_, v) = h.get_invoice_batch(&t, batch(&[SEED_CODE])).await;
    assert_eq!(v["errcode"], 0, "{v}");
    let (_, v) = h
        .get_invoice_batch_on(&other, &t, batch(&[SEED_CODE]))
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    let (_, v) = h.get_invoice_batch(&t, batch(&[SEED_CODE])).await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(counted(&h, &table).await, 3);

    for app in [&h.app, &other] {
        let resp = Endpoint::GetInvoiceBatch
            .call()
            .query(&format!("token={t}"))
            .body(batch(&[SEED_CODE]))
            .send(app)
            .await;
        let retry_after: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=86_400).contains(&retry_after), "{retry_after}");
        let (status, v) = reply(&resp);
        assert_eq!((status, v["errcode"].as_i64()), (429, Some(-4)), "{v}");
        assert!(v["errmsg"].as_str().unwrap().contains("budget of 3"), "{v}");
        assert!(v["gateway_hint"].is_string(), "{v}");
    }
    assert_eq!(
        h.calls(paths().invoice_batch),
        3,
        "no fourth call reached WeChat"
    );
    assert_eq!(
        counted(&h, &table).await,
        3,
        "a refused spend is not counted"
    );
}

#[tokio::test]
async fn every_invoice_call_a_request_makes_is_counted() {
    let (h, t, table) = ready("1000").await;
    // A batch that leaves an invoice out: one batch and three single queries.
    let (_, v) = h
        .get_invoice_batch(&t, batch(&[SEED_CODE, "no-such-code", CODE2]))
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(counted(&h, &table).await, 4);
    // A status change whose answer is lost: the change and its read back.
    h.sim
        .fault(
            json!({"path": paths().update_status_batch, "drop": true, "applied": true, "times": 1}),
        )
        .await;
    let (_, v) = h
        .update_status(&t, "INVOICE_REIMBURSE_LOCK", &[SEED_CODE])
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(v["gateway_outcome"], "confirmed_by_read_back", "{v}");
    assert_eq!(counted(&h, &table).await, invoice_calls(&h));
    assert_eq!(invoice_calls(&h), 6);
}

#[tokio::test]
async fn a_change_the_budget_refuses_is_not_sent_and_leaves_no_trace() {
    let (h, t, _) = ready("1").await;
    let (_, v) = h.get_invoice_batch(&t, batch(&[SEED_CODE])).await;
    assert_eq!(v["errcode"], 0, "{v}");
    let (status, v) = h
        .update_status(&t, "INVOICE_REIMBURSE_LOCK", &[SEED_CODE])
        .await;
    assert_eq!((status, v["errcode"].as_i64()), (429, Some(-4)), "{v}");
    assert_eq!(h.calls(paths().update_status_batch), 0);
    assert_eq!(h.invoice_status(SEED_CODE).await, "INVOICE_REIMBURSE_INIT");
    // Single queries are refused as a whole when they do not all fit.
    let (status, v) = h
        .get_invoice_info(&t, json!({"card_id": SEED_CARD, "encrypt_code": SEED_CODE}))
        .await;
    assert_eq!((status, v["errcode"].as_i64()), (429, Some(-4)), "{v}");
    assert_eq!(h.calls(paths().invoice_info), 0);
}

#[tokio::test]
async fn without_a_budget_nothing_is_counted() {
    let (h, t, table) = ready("0").await;
    for _ in 0..3 {
        let (_, v) = h.get_invoice_batch(&t, batch(&[SEED_CODE])).await;
        assert_eq!(v["errcode"], 0, "{v}");
    }
    assert_eq!(counted(&h, &table).await, 0);
}
