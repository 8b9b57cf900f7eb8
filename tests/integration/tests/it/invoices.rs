//! Invoices end to end through the handlers, against the simulator and moto: answers paired with
//! the invoices asked, status changes whose outcome is settled by reading back.

use integration_tests::*;
use serde_json::json;
use wxinvoice::adapters::audit::PENDING;

const LOCK: &str = "INVOICE_REIMBURSE_LOCK";
const INIT: &str = "INVOICE_REIMBURSE_INIT";
const CLOSURE: &str = "INVOICE_REIMBURSE_CLOSURE";

/// A harness whose token is stored, and that token.
async fn ready() -> (Harness, String) {
    ready_with(&[]).await
}

/// `ready` with configuration overrides.
async fn ready_with(overrides: &[(&str, &str)]) -> (Harness, String) {
    let h = Harness::with(overrides).await;
    h.send(Endpoint::GetToken.call()).await;
    let t = h.stored_token().await;
    (h, t)
}

#[tokio::test]
async fn a_batch_that_leaves_invoices_out_is_resolved_by_single_queries() {
    let (h, t) = ready().await;
    // Two invoices of one card_id around one WeChat cannot find (it answers errcode 0 without it).
    let asked = refs(&[SEED_CODE, "no-such-code", CODE2]);
    let (status, v) = h.get_invoice_batch(&t, json!({"item_list": asked})).await;
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
        let path = format!("{}?access_token={t}", paths().invoice_info);
        let one = h
            .sim
            .post(&path, &json!({"card_id": SEED_CARD, "encrypt_code": code}))
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
    let (_, v) = h.get_invoice_batch(&t, batch_of(&[CODE2, SEED_CODE])).await;
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
    let (_, v) = h.get_invoice_info(&t, &one).await;
    assert_eq!(
        (v["errcode"].as_i64(), v["encrypt_code"].as_str()),
        (Some(0), Some(CODE2)),
        "{v}"
    );
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
    let (h, t) = ready_with(&[("WECHAT_TIMEOUT_MS", "300")]).await;
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
            h.sim.set_invoices(&seed_invoices()).await;
            h.sim.clear_faults().await;
            let mut fault = change_fault.clone();
            fault["path"] = json!(change_path(batch));
            fault["times"] = json!(1);
            h.sim.fault(fault).await;
            if let Some(q) = query_fault {
                for path in [paths().invoice_batch, paths().invoice_info] {
                    let mut f = q.clone();
                    f["path"] = json!(path);
                    h.sim.fault(f).await;
                }
            }
            let sent_before = h.calls(change_path(batch));
            let (status, v) = if batch {
                h.update_status(&t, LOCK, &[SEED_CODE]).await
            } else {
                h.update_invoice_status(&t, LOCK, SEED_CODE).await
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

/// A harness with the audit table and the archive bucket, and its token.
async fn reimburser(
    overrides: &[(&str, &str)],
) -> (
    Harness,
    String,
    wxinvoice::adapters::audit::AuditLog,
    String,
) {
    let (audit_table, bucket) = create_audit_and_archive(&aws().await).await;
    let mut all = vec![
        ("AUDIT_TABLE", audit_table.as_str()),
        ("ARCHIVE_BUCKET", bucket.as_str()),
    ];
    all.extend_from_slice(overrides);
    let (h, t) = ready_with(&all).await;
    let audit = h.app.audit.clone().expect("AUDIT_TABLE is set");
    (h, t, audit, bucket)
}

/// Ten more invoices of the user, of the spec example's card_id, each with its own number.
async fn seed_ten(h: &Harness) -> Vec<String> {
    let mut seed = seed_invoices();
    let example = seed[0].clone();
    let mut codes = Vec::new();
    for i in 0..10 {
        let mut inv = example.clone();
        let code = format!("SIMarchive{i:02}+/=");
        inv["encrypt_code"] = json!(code);
        inv["card"]["user_info"]["billing_no"] = json!(format!("253120000000000000{i:02}"));
        inv["card"]["user_info"]["pdf_url"] = json!(format!(
            "https://mp.weixin.qq.com/intp/invoice/getpdf?media_key=sim{i}"
        ));
        seed.push(inv);
        codes.push(code);
    }
    h.sim.set_invoices(&seed).await;
    codes
}

fn attr<'a>(
    item: &'a std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    k: &str,
) -> &'a str {
    item.get(k)
        .and_then(|v| v.as_s().or(v.as_n()).ok())
        .map(String::as_str)
        .unwrap_or("")
}

const PDF_PATH: &str = "/intp/invoice/getpdf";

#[tokio::test]
async fn closing_invoices_keeps_their_pdfs_and_an_audit_trail() {
    let (h, t, audit, bucket) = reimburser(&[]).await;
    let codes = seed_ten(&h).await;
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    // Refused by WeChat (not locked first): recorded too.
    let (_, v) = h.update_status(&t, CLOSURE, &codes[..1]).await;
    assert_eq!(v["errcode"], 72039, "{v}");
    let (_, v) = h.update_status(&t, LOCK, &codes).await;
    assert_eq!(v["errcode"], 0, "{v}");
    let started = std::time::Instant::now();
    let (status, v) = h.update_status(&t, CLOSURE, &codes).await;
    let took = started.elapsed();
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)), "{v}");
    assert_eq!(h.calls(PDF_PATH), 10, "one download per invoice");

    // Each PDF once, keyed by app, card_id and number, as WeChat served it.
    let stored = objects(&h.sdk, &bucket).await;
    assert_eq!(stored.len(), 10);
    let bytes: usize = stored.iter().map(|(_, b)| b.len()).sum();
    for (i, code) in codes.iter().enumerate() {
        let key = format!("{}/{SEED_CARD}/", appid());
        let (k, body) = stored
            .iter()
            .find(|(k, _)| {
                k.starts_with(&key) && k.ends_with(&format!("253120000000000000{i:02}.pdf"))
            })
            .unwrap_or_else(|| {
                panic!(
                    "{code}: no object in {:?}",
                    stored.iter().map(|s| &s.0).collect::<Vec<_>>()
                )
            });
        let direct = h.sim.bytes(&format!("{PDF_PATH}?media_key=sim{i}")).await;
        assert_eq!(&direct[..], &body[..], "{k}");
    }
    println!(
        "archive: CLOSURE of 10 invoices: {} files, {bytes} bytes stored, {} ms for the request",
        stored.len(),
        took.as_millis()
    );

    // A change refused before WeChat (a token the gateway does not keep) leaves no trace.
    let (_, v) = h.update_status("made-up-token", LOCK, &codes).await;
    assert_eq!(v["errcode"], 40001, "{v}");

    // The trail: 1 refused + 10 locks + 10 closures, no code in clear, the files' digests.
    let history = audit.history(SEED_CARD).await.unwrap();
    assert_eq!(history.len(), 21, "{history:?}");
    let text = format!("{history:?}");
    for code in &codes {
        assert!(
            !text.contains(code),
            "the trail never holds an encrypt_code"
        );
    }
    let refused = &history[0];
    assert_eq!(
        (attr(refused, "requested"), attr(refused, "errcode")),
        (CLOSURE, "72039")
    );
    assert!(attr(refused, "caller").starts_with("ip:"), "{refused:?}");
    assert!(!attr(refused, "expires_at").is_empty(), "retention by TTL");
    let closures: Vec<_> = history
        .iter()
        .filter(|r| attr(r, "requested") == CLOSURE && attr(r, "errcode") == "0")
        .collect();
    assert_eq!(closures.len(), 10);
    for r in &closures {
        let code = codes
            .iter()
            .find(|c| {
                wxinvoice::adapters::archive::sha256_hex(c.as_bytes()) == attr(r, "code_sha256")
            })
            .expect("the code's hash");
        let files = r["pdf_files"].as_l().unwrap();
        let file = files[0].as_m().unwrap();
        let key = file["key"].as_s().unwrap();
        let (_, body) = stored.iter().find(|(k, _)| k == key).unwrap();
        assert_eq!(
            file["sha256"].as_s().unwrap(),
            &wxinvoice::adapters::archive::sha256_hex(body),
            "{code}"
        );
    }

    // The CLOSURE again (another claim, or a retry without its Idempotency-Key): WeChat's
    // refusal with the statuses read back, and nothing downloaded or stored twice.
    let downloads = h.calls(PDF_PATH);
    let (_, v) = h.update_status(&t, CLOSURE, &codes).await;
    assert_eq!(v["errcode"], 72024, "{v}");
    assert_eq!(v["current_status"], json!(vec![CLOSURE; 10]), "{v}");
    assert_eq!(h.calls(PDF_PATH), downloads);
    assert_eq!(objects(&h.sdk, &bucket).await.len(), 10);

    // The queries link to the archived file of a reimbursed invoice, and only of one.
    let asked = json!({"item_list": refs(&[codes[3], CODE2])});
    let (_, v) = h.get_invoice_batch(&t, &asked).await;
    // (Messages show no link: a presigned link carries the function's session token.)
    let link = v["item_list"][0]["pdf_archive_url"]
        .as_str()
        .unwrap_or_else(|| {
            panic!(
                "no link for the reimbursed invoice, errcode {}",
                v["errcode"]
            )
        });
    assert!(
        v["item_list"][1].get("pdf_archive_url").is_none(),
        "a link for an invoice not reimbursed"
    );
    let fetched = h
        .http
        .get(link)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (_, body) = stored
        .iter()
        .find(|(k, _)| k.ends_with("25312000000000000003.pdf"))
        .unwrap();
    assert_eq!(
        &fetched[..],
        &body[..],
        "the presigned link serves the archived file"
    );
    let one = json!({"card_id": SEED_CARD, "encrypt_code": codes[3]});
    let (_, v) = h.get_invoice_info(&t, &one).await;
    assert!(
        v["pdf_archive_url"].as_str().is_some(),
        "no link, errcode {}",
        v["errcode"]
    );
}

#[tokio::test]
async fn a_failed_archive_never_fails_the_change_and_is_retried_by_the_schedule() {
    let (h, t, audit, bucket) = reimburser(&[("ARCHIVE_MAX_BYTES", "100000")]).await;
    let codes = seed_ten(&h).await;
    let (a, b, c) = (codes[0].as_str(), codes[1].as_str(), codes[2].as_str());
    h.update_status(&t, LOCK, &[a, b, c]).await;
    // The download fails for one, another is not a PDF, the third is over the size limit.
    h.sim
        .fault(json!({"path": PDF_PATH, "http_status": 500, "times": 1}))
        .await;
    h.sim
        .fault(json!({"path": PDF_PATH, "body": "<html>not a file</html>", "times": 1}))
        .await;
    h.sim.set_options(json!({"pdf_bytes": 200_000})).await;
    let (status, v) = h.update_status(&t, CLOSURE, &[a, b, c]).await;
    assert_eq!(
        (status, v["errcode"].as_i64()),
        (200, Some(0)),
        "the change stands: {v}"
    );
    assert_eq!(h.invoice_status(a).await, CLOSURE);
    assert!(objects(&h.sdk, &bucket).await.is_empty());
    let history = audit.history(SEED_CARD).await.unwrap();
    let errors: Vec<&str> = history
        .iter()
        .map(|r| attr(r, "archive_error"))
        .filter(|e| !e.is_empty())
        .collect();
    assert_eq!(errors.len(), 3, "{history:?}");
    assert!(errors.iter().any(|e| e.contains("HTTP 500")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("not a PDF")), "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("over the limit of 100000 bytes")),
        "{errors:?}"
    );
    let deadline = deadline();
    assert_eq!(audit.pending(50, &deadline).await.unwrap().len(), 3);
    // The work left holds each encrypt_code sealed, never in clear.
    let raw = format!("{:?}", audit.history(PENDING).await.unwrap());
    for code in [a, b, c] {
        assert!(!raw.contains(code), "{code} is stored in clear");
    }

    // The next scheduled run keeps them, once the files are fine.
    h.sim.set_options(json!({"pdf_bytes": 30_000})).await;
    let v = h.schedule().await.unwrap();
    assert_eq!(v["archives"], json!({"stored": 3, "pending": 0}), "{v}");
    assert_eq!(objects(&h.sdk, &bucket).await.len(), 3);
    assert!(audit.pending(50, &deadline).await.unwrap().is_empty());
    let history = audit.history(SEED_CARD).await.unwrap();
    let completed = history
        .iter()
        .filter(|r| r.contains_key("pdf_files"))
        .count();
    assert_eq!(
        completed, 3,
        "the audit records got their files: {history:?}"
    );
    assert!(history.iter().all(|r| !r.contains_key("archive_error")));
}

#[tokio::test]
async fn without_trusting_the_batch_order_shared_card_ids_are_queried_one_by_one() {
    let (h, t) = ready_with(&[("BATCH_KEEPS_ORDER", "false")]).await;
    let (_, v) = h.get_invoice_batch(&t, batch_of(&[CODE2, SEED_CODE])).await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(
        h.calls(paths().invoice_batch),
        0,
        "two invoices of one card_id: no batch"
    );
    assert_eq!(h.calls(paths().invoice_info), 2);
    assert_eq!(v["item_list"][0]["encrypt_code"], CODE2);
    // Invoices of different card_ids are still one batch call.
    let other = json!({"card_id": "pIKi3wSimTaxiTemplate0000000", "encrypt_code": "SIMencryptCodeTaxi01+/="});
    let asked = json!({"item_list": [{"card_id": SEED_CARD, "encrypt_code": SEED_CODE}, other]});
    let (_, v) = h.get_invoice_batch(&t, &asked).await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(h.calls(paths().invoice_batch), 1);
}

#[tokio::test]
async fn archive_work_sealed_under_an_appsecret_since_reset_is_given_up() {
    let (h, t, audit, bucket) = reimburser(&[]).await;
    let codes = seed_ten(&h).await;
    h.update_status(&t, LOCK, &[&codes[0]]).await;
    h.sim
        .fault(json!({"path": PDF_PATH, "http_status": 500, "times": 1}))
        .await;
    let (_, v) = h.update_status(&t, CLOSURE, &[&codes[0]]).await;
    assert_eq!(v["errcode"], 0, "{v}");
    let deadline = deadline();
    assert_eq!(audit.pending(50, &deadline).await.unwrap().len(), 1);
    // The AppSecret was reset since: the work cannot be opened, now or ever, and is dropped.
    let table = h.app.config.audit_table.clone().unwrap();
    let reset = h.instance(&[
        ("AUDIT_TABLE", &table),
        ("ARCHIVE_BUCKET", &bucket),
        ("WECHAT_SECRET", "the-appsecret-after-a-reset"),
    ]);
    let v = h.schedule_on(&reset).await.unwrap();
    assert_eq!(v["archives"], json!({"stored": 0, "pending": 1}), "{v}");
    assert!(audit.pending(50, &deadline).await.unwrap().is_empty());
    assert_eq!(
        h.calls(paths().invoice_info),
        0,
        "nothing was asked with it"
    );
}

#[tokio::test]
async fn a_wecom_page_may_name_the_member_by_userid() {
    let h = Harness::new().await;
    let t = h.served_token(&h.app).await;
    let change = |owner: serde_json::Value| {
        let mut body = json!({"reimburse_status": LOCK, "invoice_list": refs(&[SEED_CODE])});
        body.as_object_mut()
            .unwrap()
            .extend(owner.as_object().unwrap().clone());
        let call = Endpoint::UpdateStatus
            .call()
            .query(&format!("token={t}"))
            .body(&body);
        h.answer(call)
    };
    let convert = "/cgi-bin/user/convert_to_openid";
    if !is_work() {
        // An Official Account's page knows the openid: userid is refused before WeChat.
        let (status, v) = change(json!({"userid": "zhangsan"})).await;
        assert_eq!(status, 400, "{v}");
        assert!(
            v["errmsg"]
                .as_str()
                .unwrap()
                .starts_with("body.userid: only for WeCom apps"),
            "{v}"
        );
        assert_eq!(h.invoice_status(SEED_CODE).await, INIT);
        return;
    }
    // The simulator's member zhangsan owns the fixture invoices: converted, then locked.
    let (status, v) = change(json!({"userid": "zhangsan"})).await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)), "{v}");
    assert_eq!(h.calls(convert), 1);
    assert_eq!(h.invoice_status(SEED_CODE).await, LOCK);
    // Another member's openid does not own them: WeChat's 72037, as for an openid.
    let (_, v) = change(json!({"userid": "lisi"})).await;
    assert_eq!(v["errcode"], 72037, "{v}");
    // A userid the corp does not have: WeChat's own errcode passes through, nothing changed.
    let updates = h.calls("/cgi-bin/card/invoice/reimburse/updatestatusbatch");
    let (_, v) = change(json!({"userid": "nobody"})).await;
    assert_eq!(v["errcode"], 60111, "{v}");
    assert_eq!(
        h.calls("/cgi-bin/card/invoice/reimburse/updatestatusbatch"),
        updates
    );
    // Both, or a userid out of WeCom's characters: refused before WeChat.
    for owner in [
        json!({"userid": "zhangsan", "openid": OPENID}),
        json!({"userid": "zhang san"}),
    ] {
        let (status, _) = change(owner).await;
        assert_eq!(status, 400);
    }
    assert_eq!(h.calls(convert), 3);
}
