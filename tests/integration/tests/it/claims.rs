//! Claims on invoices: a status change WeChat refuses because the invoice already has that
//! status is a refusal (how a reimburser learns an invoice is claimed), never a success; a
//! client's retry of its own change is recognised by its `Idempotency-Key` and gets the recorded
//! answer without a WeChat call.

use integration_tests::*;
use serde_json::{json, Value};

const LOCK: &str = "INVOICE_REIMBURSE_LOCK";
const INIT: &str = "INVOICE_REIMBURSE_INIT";
const CLOSURE: &str = "INVOICE_REIMBURSE_CLOSURE";

/// A harness whose WeChat refuses a status an invoice already has (the simulator's option;
/// undocumented), with a claim table unless `claims` is false, and its stored token.
async fn ready(claims: bool, overrides: &[(&str, &str)]) -> (Harness, String) {
    let sdk = aws().await;
    let table = create_table(&sdk).await;
    let mut all = overrides.to_vec();
    if claims {
        all.push(("CLAIM_TABLE", table.as_str()));
    }
    let h = Harness::with(&all).await;
    h.sim
        .set_options(json!({"same_status_ok": false, "closed_errcode": 72061}))
        .await;
    h.sim.set_invoices(&seed_invoices()).await;
    h.send(Endpoint::GetToken.call()).await;
    let t = h.stored_token().await;
    (h, t)
}

/// The status-change path of updateStatus (`batch`) or updateInvoiceStatus.
fn change_path(batch: bool) -> &'static str {
    if batch {
        paths().update_status_batch
    } else {
        paths().update_status_one
    }
}

/// A status change of the seed invoice, with an Idempotency-Key when given.
async fn change(
    h: &Harness,
    t: &str,
    batch: bool,
    status: &str,
    key: Option<&str>,
) -> (u16, Value) {
    let call = if batch {
        let body = json!({"openid": OPENID, "reimburse_status": status, "invoice_list": refs(&[SEED_CODE])});
        Endpoint::UpdateStatus.call().body(&body)
    } else {
        let body =
            json!({"card_id": SEED_CARD, "encrypt_code": SEED_CODE, "reimburse_status": status});
        Endpoint::UpdateInvoiceStatus.call().body(&body)
    };
    let call = call.query(&format!("token={t}"));
    let call = match key {
        Some(k) => call.header("idempotency-key", k),
        None => call,
    };
    h.answer(call).await
}

/// The status read back, as the endpoint names it: a list for updateStatus, a string for
/// updateInvoiceStatus.
fn current(batch: bool, status: &str) -> Value {
    if batch {
        json!([status])
    } else {
        json!(status)
    }
}

#[tokio::test]
async fn a_second_claim_on_a_claimed_invoice_is_refused_with_its_status() {
    let (h, t) = ready(false, &[]).await;
    for batch in [true, false] {
        h.sim.set_invoices(&seed_invoices()).await;
        let sent = h.calls(change_path(batch));
        let (_, v) = change(&h, &t, batch, LOCK, None).await;
        assert_eq!(v, json!({"errcode": 0, "errmsg": "ok"}));
        // Locked already: WeChat's refusal, with the status it has, not a success.
        let (status, v) = change(&h, &t, batch, LOCK, None).await;
        assert_eq!(status, 200);
        assert_eq!(v["errcode"], 72024, "a second LOCK: {v}");
        assert_eq!(v["current_status"], current(batch, LOCK), "{v}");
        assert_eq!(v["hint"], "发票状态错误", "{v}");
        assert!(v.get("gateway_outcome").is_none(), "{v}");
        let (_, v) = change(&h, &t, batch, CLOSURE, None).await;
        assert_eq!(v["errcode"], 0, "{v}");
        // Reimbursed already: a second claim must never read as paid.
        let (_, v) = change(&h, &t, batch, CLOSURE, None).await;
        assert_eq!(v["errcode"], 72061, "a second CLOSURE: {v}");
        assert_eq!(v["current_status"], current(batch, CLOSURE), "{v}");
        let (_, v) = change(&h, &t, batch, INIT, None).await;
        assert_eq!(v["errcode"], 72061, "unlocking a closed invoice: {v}");
        assert_eq!(h.invoice_status(SEED_CODE).await, CLOSURE);
        assert_eq!(
            h.calls(change_path(batch)) - sent,
            5,
            "each change sent once"
        );
    }
}

#[tokio::test]
async fn a_retry_under_its_idempotency_key_gets_the_recorded_answer() {
    let (h, t) = ready(true, &[]).await;
    for batch in [true, false] {
        h.sim.set_invoices(&seed_invoices()).await;
        let sent = h.calls(change_path(batch));
        let (k1, k2, k3) = (
            format!("lock-{batch}"),
            format!("close-{batch}"),
            format!("another-claim-{batch}"),
        );
        let (status, first) = change(&h, &t, batch, LOCK, Some(&k1)).await;
        assert_eq!(
            (status, &first),
            (200, &json!({"errcode": 0, "errmsg": "ok"}))
        );
        let (status, again) = change(&h, &t, batch, LOCK, Some(&k1)).await;
        assert_eq!((status, again), (200, first), "the recorded answer");
        assert_eq!(
            h.calls(change_path(batch)) - sent,
            1,
            "no WeChat call for the retry"
        );
        // The key names one request: another body under it is refused, and nothing is sent.
        let (status, v) = change(&h, &t, batch, CLOSURE, Some(&k1)).await;
        assert_eq!((status, v["errcode"].as_i64()), (422, Some(72031)), "{v}");
        assert!(
            v["errmsg"].as_str().unwrap().contains("Idempotency-Key"),
            "{v}"
        );
        // A CLOSURE whose answer the client lost, retried: success, once.
        let (_, closed) = change(&h, &t, batch, CLOSURE, Some(&k2)).await;
        assert_eq!(closed["errcode"], 0, "{closed}");
        let (_, again) = change(&h, &t, batch, CLOSURE, Some(&k2)).await;
        assert_eq!(again, closed, "the retry of the CLOSURE that succeeded");
        // Another claim on the same invoice, under its own key: WeChat's refusal.
        let (_, v) = change(&h, &t, batch, CLOSURE, Some(&k3)).await;
        assert_eq!(v["errcode"], 72061, "{v}");
        assert_eq!(v["current_status"], current(batch, CLOSURE), "{v}");
        // ... which is that request's recorded answer too.
        let (_, again) = change(&h, &t, batch, CLOSURE, Some(&k3)).await;
        assert_eq!(again, v);
        assert_eq!(
            h.calls(change_path(batch)) - sent,
            3,
            "LOCK, CLOSURE, the refused CLOSURE"
        );
    }
}

#[tokio::test]
async fn a_key_whose_request_is_under_way_is_refused_with_409() {
    let (h, t) = ready(true, &[]).await;
    let mut slow = json!({"path": change_path(true), "latency_ms": 800, "times": 1});
    slow["applied"] = json!(true);
    h.sim.fault(slow).await;
    let first = change(&h, &t, true, LOCK, Some("slow-lock"));
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        change(&h, &t, true, LOCK, Some("slow-lock")).await
    };
    let ((s1, v1), (s2, v2)) = tokio::join!(first, second);
    assert_eq!((s1, v1["errcode"].as_i64()), (200, Some(0)), "{v1}");
    assert_eq!((s2, v2["errcode"].as_i64()), (409, Some(-1)), "{v2}");
    assert_eq!(h.calls(change_path(true)), 1);
    // Once it has answered, the retry gets its answer.
    let (s3, v3) = change(&h, &t, true, LOCK, Some("slow-lock")).await;
    assert_eq!((s3, v3), (200, v1));
}

#[tokio::test]
async fn a_lost_outcome_retried_under_its_key_is_settled_by_reading_back() {
    let (h, t) = ready(true, &[("WECHAT_TIMEOUT_MS", "300")]).await;
    for batch in [true, false] {
        h.sim.set_invoices(&seed_invoices()).await;
        h.sim.clear_faults().await;
        let sent = h.calls(change_path(batch));
        // Applied, its answer dropped, and the read back fails: the outcome is unknown.
        h.sim
            .fault(json!({"path": change_path(batch), "drop": true, "applied": true, "times": 1}))
            .await;
        for path in [paths().invoice_batch, paths().invoice_info] {
            h.sim
                .fault(json!({"path": path, "http_status": 500, "times": 1}))
                .await;
        }
        let key = format!("lost-{batch}");
        let (_, v) = change(&h, &t, batch, LOCK, Some(&key)).await;
        assert_eq!(v["errcode"], -2, "{v}");
        h.sim.clear_faults().await;
        // The retry reads the invoices back: the lost change took effect, so it succeeded.
        let (status, v) = change(&h, &t, batch, LOCK, Some(&key)).await;
        assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)), "{v}");
        assert_eq!(v["gateway_outcome"], "confirmed_by_read_back");
        assert_eq!(
            h.calls(change_path(batch)) - sent,
            1,
            "the change is never sent twice"
        );
        // A change that failed is never forgotten under its key: the retry reads the invoices
        // back (not applied), then sends it.
        h.sim
            .fault(json!({"path": change_path(batch), "http_status": 503, "times": 1}))
            .await;
        let key = format!("unlock-{batch}");
        let (status, v) = change(&h, &t, batch, INIT, Some(&key)).await;
        assert_eq!((status, v["errcode"].as_i64()), (502, Some(-1)), "{v}");
        let reads = h.calls(paths().invoice_batch);
        let (status, v) = change(&h, &t, batch, INIT, Some(&key)).await;
        assert_eq!(h.calls(paths().invoice_batch) - reads, 1, "read back first");
        assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)), "{v}");
        assert_eq!(h.invoice_status(SEED_CODE).await, INIT);
        assert_eq!(h.calls(change_path(batch)) - sent, 3);
    }
}

#[tokio::test]
async fn keys_are_checked_before_anything_is_recorded() {
    let (h, t) = ready(true, &[]).await;
    for bad in ["", "a b", &"k".repeat(256)] {
        let (status, v) = change(&h, &t, true, LOCK, Some(bad)).await;
        assert_eq!(
            (status, v["errcode"].as_i64()),
            (400, Some(72031)),
            "{bad:?}: {v}"
        );
    }
    // Bad input is refused before a key is taken: the same key then works.
    let body =
        json!({"openid": OPENID, "reimburse_status": "LOCKED", "invoice_list": refs(&[SEED_CODE])});
    let call = Endpoint::UpdateStatus.call().body(&body);
    let call = call
        .query(&format!("token={t}"))
        .header("idempotency-key", "k-1");
    assert_eq!(h.answer(call).await.0, 400);
    let (status, _) = change(&h, &t, true, LOCK, Some("k-1")).await;
    assert_eq!(status, 200);
    assert_eq!(h.calls(change_path(true)), 1);
    // Without a claim table, a key cannot be honoured: refused, nothing sent.
    let (h, t) = ready(false, &[]).await;
    let (status, v) = change(&h, &t, true, LOCK, Some("k-2")).await;
    assert_eq!((status, v["errcode"].as_i64()), (400, Some(72031)), "{v}");
    assert!(v["errmsg"].as_str().unwrap().contains("claim table"), "{v}");
    assert_eq!(h.calls(change_path(true)), 0);
}

/// A status change of `code` under `claim` (updateInvoiceStatus).
async fn claimed(
    h: &Harness,
    t: &str,
    code: &str,
    status: &str,
    claim: Option<&str>,
) -> (u16, Value) {
    let mut body = json!({"card_id": SEED_CARD, "encrypt_code": code, "reimburse_status": status});
    if let Some(c) = claim {
        body["claim_id"] = json!(c);
    }
    let call = Endpoint::UpdateInvoiceStatus.call().body(&body);
    h.answer(call.query(&format!("token={t}"))).await
}

#[tokio::test]
async fn an_invoice_is_held_by_one_claim_and_paid_once() {
    let (h, t) = ready(true, &[]).await;
    let sent = || h.calls(change_path(false));
    let (status, v) = claimed(&h, &t, SEED_CODE, LOCK, Some("claim-A")).await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)), "{v}");
    // The queries name the holder, so an expense system sees a duplicate before submitting.
    let (_, v) = h.get_invoice_batch(&t, batch_of(&[SEED_CODE, CODE2])).await;
    assert_eq!(
        v["item_list"][0]["gateway_claim"]["claim_id"], "claim-A",
        "{v}"
    );
    assert_eq!(v["item_list"][0]["gateway_claim"]["status"], LOCK);
    assert!(v["item_list"][1].get("gateway_claim").is_none(), "{v}");
    let (_, v) = h
        .get_invoice_info(&t, json!({"card_id": SEED_CARD, "encrypt_code": SEED_CODE}))
        .await;
    assert_eq!(v["gateway_claim"]["claim_id"], "claim-A", "{v}");
    // Another claim, or none: refused before WeChat, naming the holder.
    let before = sent();
    for (status_to, claim) in [
        (LOCK, Some("claim-B")),
        (CLOSURE, Some("claim-B")),
        (CLOSURE, None),
        (INIT, Some("claim-B")),
    ] {
        let (status, v) = claimed(&h, &t, SEED_CODE, status_to, claim).await;
        assert_eq!(
            (status, v["errcode"].as_i64()),
            (409, Some(-3)),
            "{status_to} {claim:?}: {v}"
        );
        assert_eq!(v["gateway_claim"]["claim_id"], "claim-A", "{v}");
        assert!(v["gateway_claim"]["since_ms"].as_u64().unwrap() > 0, "{v}");
    }
    assert_eq!(sent(), before, "nothing sent to WeChat");
    // Its own claim completes it; then nothing reopens it.
    let (_, v) = claimed(&h, &t, SEED_CODE, CLOSURE, Some("claim-A")).await;
    assert_eq!(v["errcode"], 0, "{v}");
    let (_, v) = h.get_invoice_batch(&t, batch_of(&[SEED_CODE])).await;
    assert_eq!(v["item_list"][0]["gateway_claim"]["status"], CLOSURE, "{v}");
    let (status, _) = claimed(&h, &t, SEED_CODE, INIT, Some("claim-A")).await;
    assert_eq!(status, 409);
    // An unlock under its claim releases an invoice: another claim may then take it.
    let (_, v) = claimed(&h, &t, CODE2, LOCK, Some("claim-A")).await;
    assert_eq!(v["errcode"], 0, "{v}");
    let (_, v) = claimed(&h, &t, CODE2, INIT, Some("claim-A")).await;
    assert_eq!(v["errcode"], 0, "{v}");
    let (_, v) = claimed(&h, &t, CODE2, LOCK, Some("claim-B")).await;
    assert_eq!(v["errcode"], 0, "{v}");
    // A claim id is checked like any field, and never sent to WeChat.
    let (status, v) = claimed(&h, &t, CODE2, LOCK, Some("报销单 7")).await;
    assert_eq!((status, v["errcode"].as_i64()), (400, Some(72031)), "{v}");
}

#[tokio::test]
async fn an_answer_without_errcode_is_not_taken_for_a_change_made() {
    let (h, t) = ready(true, &[]).await;
    for batch in [true, false] {
        h.sim.set_invoices(&seed_invoices()).await;
        // A proxy's empty object instead of WeChat's answer; the change did not happen.
        h.sim
            .fault(json!({"path": change_path(batch), "body": "{}", "times": 1}))
            .await;
        let (status, v) = change(&h, &t, batch, LOCK, None).await;
        assert_eq!((status, v["errcode"].as_i64()), (502, Some(-1)), "{v}");
        assert!(v["errmsg"].as_str().unwrap().contains("no errcode"), "{v}");
        assert_eq!(h.invoice_status(SEED_CODE).await, INIT);
    }
}

/// The claim table itself: a key taken over once however many retries race for it; keys that
/// hold `#` never name another app's; a claim never overwrites another claim's hold.
#[tokio::test]
async fn the_claim_table_takes_a_key_over_once_and_keeps_each_claims_hold() {
    use wxinvoice::adapters::claims::{Begin, ClaimError, ClaimTable, Keyed};
    use wxinvoice::domain::claims::Holder;
    use wxinvoice::domain::idempotency::{IdempotencyKey, Recorded};
    use wxinvoice::domain::invoice::{InvoiceRef, ReimburseStatus};
    let sdk = aws().await;
    let table = ClaimTable::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        create_table(&sdk).await,
        std::time::Duration::from_secs(3600),
    );
    let d = deadline();
    let now = wxinvoice::domain::clock::now_ms();
    let key = IdempotencyKey::parse("1000002#k").unwrap();
    let keyed = Keyed {
        app: "app#ww1",
        key: &key,
        body_sha256: "sha",
    };
    assert_eq!(
        table
            .begin(&keyed, now, now + 60_000, false, &d)
            .await
            .unwrap(),
        Begin::Started
    );
    table
        .finish(&keyed, &Recorded::Unknown, now, &d)
        .await
        .unwrap();
    let (a, b) = futures::future::join(
        table.begin(&keyed, now, now + 60_000, true, &d),
        table.begin(&keyed, now, now + 60_000, true, &d),
    )
    .await;
    let started = [a.unwrap(), b.unwrap()]
        .iter()
        .filter(|b| **b == Begin::Started)
        .count();
    assert_eq!(
        started, 1,
        "one retry takes the key over, the other finds it under way"
    );
    // An answered key is never taken over.
    table
        .finish(
            &keyed,
            &Recorded::Answered {
                status: 200,
                body: "{}".into(),
            },
            now,
            &d,
        )
        .await
        .unwrap();
    assert!(matches!(
        table
            .begin(&keyed, now, now + 60_000, true, &d)
            .await
            .unwrap(),
        Begin::Recorded(_)
    ));
    // `app#ww1` + `1000002#k` is not `app#ww1#1000002` + `k`.
    let k = IdempotencyKey::parse("k").unwrap();
    let other = Keyed {
        app: "app#ww1#1000002",
        key: &k,
        body_sha256: "sha",
    };
    assert_eq!(
        table
            .begin(&other, now, now + 60_000, false, &d)
            .await
            .unwrap(),
        Begin::Started
    );

    let invoice = InvoiceRef {
        card_id: SEED_CARD.into(),
        encrypt_code: SEED_CODE.into(),
    };
    let hold = |claim: &str| Holder {
        claim_id: claim.into(),
        status: ReimburseStatus::Lock,
        since_ms: now,
    };
    table.hold("wxa", &invoice, &hold("A"), &d).await.unwrap();
    match table.hold("wxa", &invoice, &hold("B"), &d).await {
        Err(ClaimError::HeldBy(h)) => assert_eq!(h.claim_id, "A"),
        other => panic!("B overwrote A's hold: {other:?}"),
    }
    table.hold("wxa", &invoice, &hold("A"), &d).await.unwrap();
    table.unhold("wxa", &invoice, "B", &d).await.unwrap();
    let held = table
        .holders("wxa", std::slice::from_ref(&invoice), &d)
        .await
        .unwrap();
    assert_eq!(
        held[0].as_ref().map(|h| h.claim_id.as_str()),
        Some("A"),
        "B released A's hold"
    );
    table.unhold("wxa", &invoice, "A", &d).await.unwrap();
    assert_eq!(
        table.holders("wxa", &[invoice], &d).await.unwrap(),
        vec![None]
    );
}
