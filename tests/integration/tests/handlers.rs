//! Each handler fed with API Gateway HTTP API (v2) payload fixtures, against moto's DynamoDB and
//! the WeChat simulator over real HTTP.

use integration_tests::*;
use serde_json::{json, Value};
use wxinvoice::handlers::{get_invoice_batch, get_token, update_status};
use wxinvoice::invoice::InvoiceBatchResponse;

async fn token(h: &Harness, query: &str) -> (u16, Value) {
    let req = event("apigw-v2-get-token.json", |v| set_query(v, query));
    let resp = get_token(&h.app, req).await.unwrap();
    (resp.status().as_u16(), body_json(&resp))
}

async fn batch(h: &Harness, token: &str, body: &str) -> (u16, Value) {
    let req = event("apigw-v2-get-invoice-batch.json", |v| {
        set_query(v, &format!("token={token}"));
        set_body(v, body);
    });
    let resp = get_invoice_batch(&h.app, req).await.unwrap();
    (resp.status().as_u16(), body_json(&resp))
}

async fn update(h: &Harness, token: &str, status: &str, codes: &[&str]) -> (u16, Value) {
    let list: Vec<Value> = codes
        .iter()
        .map(|c| json!({"card_id": SEED_CARD, "encrypt_code": c}))
        .collect();
    let body =
        json!({"openid": OPENID, "reimburse_status": status, "invoice_list": list}).to_string();
    let req = event("apigw-v2-update-status.json", |v| {
        set_query(v, &format!("token={token}"));
        set_body(v, &body);
    });
    let resp = update_status(&h.app, req).await.unwrap();
    (resp.status().as_u16(), body_json(&resp))
}

#[tokio::test]
async fn get_token_answers_the_spec_fields_with_a_valid_signature() {
    let h = Harness::new().await;
    let (status, v) = token(&h, "type=auto").await;
    assert_eq!(status, 200, "{v}");
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys, TOKEN_FIELDS,
        "the spec's fields, then chooseInvoice's"
    );
    assert_eq!(v["appid"], appid().as_str());
    assert_eq!(v["url"], PAGE_URL);
    // A fresh classic token is guaranteed for one schedule period (the next rotation ends it
    // 5 minutes later); WeCom and stable tokens for their whole life.
    let expires_in = v["expires_in"].as_u64().unwrap();
    let full = if token_path() == "/cgi-bin/token" {
        3600
    } else {
        7200
    };
    assert!((full - 10..=full).contains(&expires_in), "{expires_in}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(v["timestamp"].as_u64().unwrap().abs_diff(now) <= 2);
    // WeChat (the simulator) accepts the signature for the configured page.
    let check = h
        .sim_post(
            "/__sim/verify/jsapi",
            json!({"url": PAGE_URL, "noncestr": v["noncestr"], "timestamp": v["timestamp"], "signature": v["signature"]}),
        )
        .await;
    assert_eq!(check["valid"], true, "{v}");
    // The token works against WeChat.
    let t = v["access_token"].as_str().unwrap();
    let info = h.sim_get(&jsapi_ticket_url(t)).await;
    assert_eq!(info["errcode"], 0);
}

#[tokio::test]
async fn auto_fetches_once_then_serves_the_stored_token() {
    let h = Harness::new().await;
    let (_, first) = token(&h, "").await;
    let (_, second) = token(&h, "type=auto").await;
    assert_eq!(first["access_token"], second["access_token"]);
    assert_eq!(first["jsapi_ticket"], second["jsapi_ticket"]);
    assert_ne!(
        first["noncestr"], second["noncestr"],
        "fresh nonce per answer"
    );
    assert_eq!(h.token_calls(), 1);
    // One refresh fetches the jsapi and the wx_card ticket.
    assert_eq!(h.ticket_calls(), 2);
    // A second instance reads the same state without calling WeChat.
    let other = h.instance(&[]);
    let req = event("apigw-v2-get-token.json", |_| {});
    let v = body_json(&get_token(&other, req).await.unwrap());
    assert_eq!(v["access_token"], first["access_token"]);
    assert_eq!(h.token_calls(), 1);
}

#[tokio::test]
async fn a_rotation_replaces_the_token_and_keeps_the_previous_one() {
    let h = Harness::with(&[("REFRESH_COOLDOWN_SECS", "0")]).await;
    let (_, first) = token(&h, "type=auto").await;
    let (status, second) = rotate(&h.app).await;
    assert_eq!(status, 200);
    assert_ne!(first["access_token"], second["access_token"]);
    assert_eq!(h.token_calls(), 2);
    let stored = h.stored().await;
    assert_eq!(
        stored.access_token.unwrap().value,
        second["access_token"].as_str().unwrap()
    );
    let prev = stored
        .previous_access_token
        .expect("previous token kept for the grace period");
    assert_eq!(prev.value, first["access_token"].as_str().unwrap());
    let grace_left = prev
        .expires_at_ms
        .saturating_sub(wxinvoice::token::now_ms());
    assert!((295_000..=300_000).contains(&grace_left), "{grace_left}");
    assert_eq!(stored.version, 2);
    assert!(stored.lock_owner.is_none(), "lock released");
}

#[tokio::test]
async fn scheduled_event_refreshes_what_is_due() {
    let h = Harness::new().await;
    let req = wxinvoice::runtime::request_from_json(&fixture("schedule-event.json")).unwrap();
    let resp = get_token(&h.app, req).await.unwrap();
    let v = body_json(&resp);
    assert_eq!(v["refreshed"], true, "{v}");
    assert!(v["wx_card_ticket_expires_in"].as_u64().unwrap() > 7000);
    // Fresh: the next run does nothing.
    let req = wxinvoice::runtime::request_from_json(&fixture("eventbridge-schedule.json")).unwrap();
    let v = body_json(&get_token(&h.app, req).await.unwrap());
    assert_eq!(v["refreshed"], false, "{v}");
    assert_eq!(h.token_calls(), 1);
    // With everything due (rotate ahead of the whole lifetime), the next run rotates.
    let eager = h.instance(&[
        ("REFRESH_AHEAD_SECS", "7200"),
        ("REFRESH_COOLDOWN_SECS", "0"),
    ]);
    let req = wxinvoice::runtime::request_from_json(&fixture("schedule-event.json")).unwrap();
    let v = body_json(&get_token(&eager, req).await.unwrap());
    assert_eq!(v["refreshed"], true, "{v}");
    assert_eq!(v["version"], 2);
    assert_eq!(h.token_calls(), 2);
}

#[tokio::test]
async fn scheduled_failure_is_an_invocation_error() {
    let h = Harness::new().await;
    h.fault(json!({"path": token_path(), "errcode": 40125, "errmsg": "invalid appsecret"}))
        .await;
    let req = wxinvoice::runtime::request_from_json(&fixture("schedule-event.json")).unwrap();
    let err = get_token(&h.app, req).await.unwrap_err().to_string();
    assert!(err.contains("40125"), "{err}");
    assert!(!err.contains(&appsecret()));
}

#[tokio::test]
async fn invoice_batch_passes_every_field_through() {
    let h = Harness::new().await;
    let (_, t) = token(&h, "").await;
    let t = t["access_token"].as_str().unwrap();
    let body = json!({"item_list": [
        {"card_id": SEED_CARD, "encrypt_code": SEED_CODE},
        {"card_id": "pIKi3wSimTaxiTemplate0000000", "encrypt_code": "SIMencryptCodeTaxi01+/="},
        {"card_id": SEED_CARD, "encrypt_code": "SIMencryptCodeShuDian01+/="}
    ]})
    .to_string();
    let (status, v) = batch(&h, t, &body).await;
    assert_eq!(status, 200);
    // Each item names the invoice it answers (WeChat's name none)...
    let asked: Value = serde_json::from_str(&body).unwrap();
    let mut stripped = v.clone();
    for (item, r) in stripped["item_list"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .zip(asked["item_list"].as_array().unwrap())
    {
        assert_eq!(item["encrypt_code"], r["encrypt_code"]);
        item.as_object_mut().unwrap().remove("encrypt_code");
    }
    // ...and apart from that, it is what WeChat answered.
    let direct = h
        .sim_post(
            &format!("{}?access_token={t}", batch_path()),
            serde_json::from_str(&body).unwrap(),
        )
        .await;
    assert_eq!(stripped, direct);
    let typed: InvoiceBatchResponse = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(typed.item_list.len(), 3);
    assert_eq!(typed.item_list[0].user_info.fee, Some(4100));
    // The simulator serves the files its invoices name (WeChat's links, pointed at it).
    assert_eq!(
        typed.item_list[1].user_info.trip_pdf_url,
        Some(format!("{}/intp/invoice/gettrip?sim=1", h.sim.base_url()))
    );
    // A field no model knows still arrives.
    assert_eq!(
        v["item_list"][2]["user_info"]["a_field_the_models_do_not_know"]["kept"],
        true
    );
    assert_eq!(
        v["item_list"][2]["user_info"]["billing_no"],
        "25312000000012345678"
    );
}

#[tokio::test]
async fn update_status_runs_the_reimbursement_flow() {
    let h = Harness::new().await;
    let (_, t) = token(&h, "").await;
    let t = t["access_token"].as_str().unwrap();
    assert_eq!(
        update(&h, t, "INVOICE_REIMBURSE_LOCK", &[SEED_CODE, CODE2]).await,
        (200, json!({"errcode": 0, "errmsg": "ok"}))
    );
    assert_eq!(h.invoice_status(CODE2).await, "INVOICE_REIMBURSE_LOCK");
    assert_eq!(
        update(&h, t, "INVOICE_REIMBURSE_INIT", &[CODE2]).await.1["errcode"],
        0
    );
    assert_eq!(h.invoice_status(CODE2).await, "INVOICE_REIMBURSE_INIT");
    assert_eq!(
        update(&h, t, "INVOICE_REIMBURSE_CLOSURE", &[SEED_CODE])
            .await
            .1["errcode"],
        0
    );
    assert_eq!(
        h.invoice_status(SEED_CODE).await,
        "INVOICE_REIMBURSE_CLOSURE"
    );
}

#[tokio::test]
async fn wechat_errors_pass_through_with_the_spec_hint() {
    let h = Harness::new().await;
    let (_, t) = token(&h, "").await;
    let t = t["access_token"].as_str().unwrap();
    let (status, v) = update(&h, t, "INVOICE_REIMBURSE_CLOSURE", &[CODE2]).await;
    assert_eq!(status, 200);
    assert_eq!(v["errcode"], 72039);
    assert!(
        v["errmsg"]
            .as_str()
            .unwrap()
            .starts_with("invoice must be lock first rid: "),
        "{v}"
    );
    assert_eq!(v["hint"], "订单未被锁定");
    // CANCEL is the issuer's: refused here, nothing sent to WeChat.
    let sent = h.calls(paths().update_status_batch);
    let (status, v) = update(&h, t, "INVOICE_REIMBURSE_CANCEL", &[CODE2]).await;
    assert_eq!((status, v["errcode"].as_i64()), (400, Some(72031)), "{v}");
    assert!(v["errmsg"].as_str().unwrap().contains("issuer"), "{v}");
    assert_eq!(h.calls(paths().update_status_batch), sent);
    let (_, v) = update(
        &h,
        t,
        "INVOICE_REIMBURSE_LOCK",
        &["SIMencryptCodeLockedByOther01+/="],
    )
    .await;
    assert_eq!(v["errcode"], 72023);
    // A token WeChat does not know: 40001 with the spec's hint.
    let (status, v) = batch(
        &h,
        "not-a-token",
        &json!({"item_list": [{"card_id": SEED_CARD, "encrypt_code": SEED_CODE}]}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (v["errcode"].as_i64(), v["hint"].as_str()),
        (Some(40001), Some("token失效"))
    );
    // A code outside both tables: body unchanged, no hint.
    h.fault(json!({"path": batch_path(), "errcode": 45011, "errmsg": "api minute-quota reach limit", "times": 1})).await;
    let (_, v) = batch(
        &h,
        t,
        &json!({"item_list": [{"card_id": SEED_CARD, "encrypt_code": SEED_CODE}]}).to_string(),
    )
    .await;
    assert_eq!(v["errcode"], 45011);
    assert!(v["errmsg"]
        .as_str()
        .unwrap()
        .starts_with("api minute-quota reach limit rid: "));
    assert_eq!(
        v.as_object().unwrap().len(),
        2,
        "no hint outside the table: {v}"
    );
}

/// One row per class of bad input: (endpoint, method, query, body, status, errcode, errmsg fragment).
#[tokio::test]
async fn bad_input_gets_a_4xx_in_the_envelope() {
    let h = Harness::new().await;
    let ok_batch =
        json!({"item_list": [{"card_id": SEED_CARD, "encrypt_code": SEED_CODE}]}).to_string();
    let ok_update = json!({"openid": OPENID, "reimburse_status": "INVOICE_REIMBURSE_LOCK", "invoice_list": [{"card_id": SEED_CARD, "encrypt_code": SEED_CODE}]}).to_string();
    let many =
        json!({"item_list": vec![json!({"card_id": "c", "encrypt_code": "e"}); 101]}).to_string();
    let huge = format!(
        r#"{{"item_list":[{{"card_id":"c","encrypt_code":"{}"}}]}}"#,
        "e".repeat(70_000)
    );
    let cases: Vec<(&str, &str, &str, String, u16, i64, &str)> = vec![
        (
            "token",
            "GET",
            "type=soon",
            String::new(),
            400,
            72031,
            "type: must be `auto` or `manual`",
        ),
        (
            "token",
            "GET",
            "type=auto&type=manual",
            String::new(),
            400,
            72031,
            "type: given more than once",
        ),
        // An app this deployment does not serve, and a malformed app name.
        (
            "token",
            "GET",
            "appid=wx1",
            String::new(),
            404,
            40013,
            "no app wx1 in this deployment",
        ),
        (
            "batch",
            "POST",
            "token=x&appid=wx%2F1",
            String::new(),
            400,
            72031,
            "appid: 1 to 64 letters",
        ),
        (
            "token",
            "GET",
            "agentid=1",
            String::new(),
            400,
            72031,
            "agentid: only with appid",
        ),
        (
            "token",
            "POST",
            "type=auto",
            String::new(),
            405,
            72031,
            "accepts GET only",
        ),
        (
            "batch",
            "POST",
            "",
            ok_batch.clone(),
            400,
            41001,
            "token: the query parameter `token`",
        ),
        (
            "batch",
            "POST",
            "token=",
            ok_batch.clone(),
            400,
            41001,
            "`token` (access_token) is required",
        ),
        (
            "batch",
            "POST",
            "token=t&token=u",
            ok_batch.clone(),
            400,
            72031,
            "token: given more than once",
        ),
        (
            "batch",
            "POST",
            "token=t&debug=1",
            ok_batch.clone(),
            400,
            72031,
            "unknown query parameter `debug`",
        ),
        (
            "batch",
            "GET",
            "token=t",
            String::new(),
            405,
            72031,
            "accepts POST only",
        ),
        (
            "batch",
            "POST",
            "token=t",
            "{\"item_list\":[".into(),
            400,
            72031,
            "EOF while parsing a list",
        ),
        (
            "batch",
            "POST",
            "token=t",
            String::new(),
            400,
            72031,
            "body: a JSON object is required",
        ),
        (
            "batch",
            "POST",
            "token=t",
            "[]".into(),
            400,
            72031,
            "body: a JSON object is required",
        ),
        (
            "batch",
            "POST",
            "token=t",
            "{}".into(),
            400,
            72031,
            "missing field `item_list`",
        ),
        (
            "batch",
            "POST",
            "token=t",
            r#"{"item_list":{}}"#.into(),
            400,
            72031,
            "body.item_list: invalid type: map",
        ),
        (
            "batch",
            "POST",
            "token=t",
            r#"{"item_list":[{"card_id":7,"encrypt_code":"e"}]}"#.into(),
            400,
            72031,
            "body.item_list[0].card_id: invalid type: integer",
        ),
        (
            "batch",
            "POST",
            "token=t",
            r#"{"item_list":[{"card_id":"c"}]}"#.into(),
            400,
            72031,
            "missing field `encrypt_code`",
        ),
        (
            "batch",
            "POST",
            "token=t",
            r#"{"item_list":[{"card_id":"c","encrypt_code":"e","cardId":"c"}]}"#.into(),
            400,
            72031,
            "unknown field `cardId`",
        ),
        (
            "batch",
            "POST",
            "token=t",
            r#"{"item_list":[]}"#.into(),
            400,
            72031,
            "body.item_list: must not be empty",
        ),
        (
            "batch",
            "POST",
            "token=t",
            many,
            400,
            72031,
            "101 items is over the limit of 100",
        ),
        (
            "batch",
            "POST",
            "token=t",
            huge,
            413,
            72031,
            "over the limit of 65536 bytes",
        ),
        (
            "update",
            "POST",
            "token=t",
            ok_update.replace("INVOICE_REIMBURSE_LOCK", "LOCK"),
            400,
            72031,
            "body.reimburse_status: unknown status `LOCK`",
        ),
        (
            "update",
            "POST",
            "token=t",
            ok_update.replace("\"INVOICE_REIMBURSE_LOCK\"", "3"),
            400,
            72031,
            "body.reimburse_status: invalid type: integer",
        ),
        (
            "update",
            "POST",
            "token=t",
            ok_update.replace(OPENID, ""),
            400,
            72031,
            "body.openid: must not be empty",
        ),
        (
            "update",
            "POST",
            "token=t",
            r#"{"openid":"o","reimburse_status":"INVOICE_REIMBURSE_LOCK","invoice_list":[]}"#
                .into(),
            400,
            72031,
            "body.invoice_list: must not be empty",
        ),
        (
            "update",
            "POST",
            "token=t",
            r#"{"openid":"o","invoice_list":[{"card_id":"c","encrypt_code":"e"}]}"#.into(),
            400,
            72031,
            "missing field `reimburse_status`",
        ),
        ("update", "POST", "", ok_update.clone(), 400, 41001, "token"),
        (
            "update",
            "PUT",
            "token=t",
            ok_update.clone(),
            405,
            72031,
            "accepts POST only",
        ),
    ];
    for (endpoint, method, query, body, status, errcode, fragment) in cases {
        let fixture = match endpoint {
            "token" => "apigw-v2-get-token.json",
            "batch" => "apigw-v2-get-invoice-batch.json",
            _ => "apigw-v2-update-status.json",
        };
        let req = event(fixture, |v| {
            set_query(v, query);
            set_method(v, method);
            set_body(v, &body);
        });
        let resp = match endpoint {
            "token" => get_token(&h.app, req).await,
            "batch" => get_invoice_batch(&h.app, req).await,
            _ => update_status(&h.app, req).await,
        }
        .unwrap();
        let v = body_json(&resp);
        let case = format!("{endpoint} {method} ?{query}: {v}");
        assert_eq!(resp.status().as_u16(), status, "{case}");
        assert_eq!(v["errcode"], errcode, "{case}");
        assert!(v["errmsg"].as_str().unwrap().contains(fragment), "{case}");
        assert_eq!(
            v.as_object().unwrap().len(),
            2,
            "only errcode and errmsg: {case}"
        );
    }
    // None of it reached WeChat.
    assert_eq!(h.sim_get("/__sim/stats").await["total"], 0);
}

#[tokio::test]
async fn base64_bodies_are_decoded() {
    let h = Harness::new().await;
    let (_, t) = token(&h, "").await;
    let t = t["access_token"].as_str().unwrap().to_string();
    // Base64 of {"item_list":[{"card_id":"pIKi3wcA2zJYhWaAUWmf3aMNd_r0","encrypt_code":"SIMencryptCode02sameCardIdAsTheSpecExample+/="}]}
    let b64 = "eyJpdGVtX2xpc3QiOlt7ImNhcmRfaWQiOiJwSUtpM3djQTJ6SlloV2FBVVdtZjNhTU5kX3IwIiwiZW5jcnlwdF9jb2RlIjoiU0lNZW5jcnlwdENvZGUwMnNhbWVDYXJkSWRBc1RoZVNwZWNFeGFtcGxlKy89In1dfQ==";
    let req = event("apigw-v2-get-invoice-batch.json", |v| {
        set_query(v, &format!("token={t}"));
        set_body(v, b64);
        v["isBase64Encoded"] = json!(true);
    });
    let v = body_json(&get_invoice_batch(&h.app, req).await.unwrap());
    assert_eq!(
        v["item_list"][0]["user_info"]["billing_no"], "031001900112",
        "{v}"
    );
}

#[tokio::test]
async fn unknown_paths_are_404_and_stage_prefixes_are_ignored() {
    let h = Harness::new().await;
    let req = event("apigw-v2-get-token.json", |v| {
        v["rawPath"] = json!("/core/r/api/weChat/getTokens");
        v["requestContext"]["http"]["path"] = json!("/core/r/api/weChat/getTokens");
    });
    let resp = get_token(&h.app, req).await.unwrap();
    assert_eq!(resp.status(), 404);
    // A named stage: the handler still routes (raw_http_path has no stage).
    let req = event("apigw-v2-get-token.json", |v| {
        v["requestContext"]["stage"] = json!("prod")
    });
    assert_eq!(get_token(&h.app, req).await.unwrap().status(), 200);
}

#[tokio::test]
async fn wechat_faults_give_bounded_502_504() {
    let h = Harness::with(&[("WECHAT_TIMEOUT_MS", "300")]).await;
    let (_, t) = token(&h, "").await;
    let t = t["access_token"].as_str().unwrap().to_string();
    let body =
        json!({"item_list": [{"card_id": SEED_CARD, "encrypt_code": SEED_CODE}]}).to_string();
    let path = batch_path();
    for (fault, status) in [
        (json!({"path": path, "drop": true, "times": 1}), 502),
        (json!({"path": path, "http_status": 500, "times": 1}), 502),
        (
            json!({"path": path, "body": "<html>not json</html>", "times": 1}),
            502,
        ),
        (json!({"path": path, "latency_ms": 2000, "times": 1}), 504),
    ] {
        h.fault(fault.clone()).await;
        let started = std::time::Instant::now();
        let (got, v) = batch(&h, &t, &body).await;
        let ms = started.elapsed().as_millis();
        assert_eq!(got, status, "{fault}: {v}");
        assert_eq!(v["errcode"], -1, "{fault}: {v}");
        assert!(ms < 1500, "{fault}: answered in {ms} ms");
        let errmsg = v["errmsg"].as_str().unwrap();
        assert!(!errmsg.contains(&t), "no token in errmsg: {errmsg}");
    }
    // Nothing listens: 502.
    let dead = h.instance(&[
        ("WECHAT_API_BASE", "http://127.0.0.1:9"),
        ("WECHAT_TIMEOUT_MS", "300"),
    ]);
    let req = event("apigw-v2-get-invoice-batch.json", |v| {
        set_query(v, &format!("token={t}"));
        set_body(v, &body);
    });
    let resp = get_invoice_batch(&dead, req).await.unwrap();
    assert_eq!(resp.status(), 502);
}

#[tokio::test]
async fn a_valid_stored_token_is_served_while_wechat_is_down() {
    // Every request considers the token due (margin of its whole life), so each tries to refresh.
    let h = Harness::with(&[
        ("REFRESH_AHEAD_SECS", "7200"),
        ("REFRESH_MARGIN_SECS", "7200"),
        ("WECHAT_TIMEOUT_MS", "300"),
        ("REFRESH_COOLDOWN_SECS", "0"),
    ])
    .await;
    let (_, first) = token(&h, "").await;
    for fault in [
        json!({"path": token_path(), "errcode": -1, "errmsg": "system error"}),
        json!({"path": token_path(), "http_status": 503}),
        json!({"path": token_path(), "drop": true}),
        json!({"path": token_path(), "latency_ms": 1000}),
        json!({"path": token_path(), "errcode": 45009, "errmsg": "reach max api daily quota limit"}),
    ] {
        h.clear_faults().await;
        h.fault(fault.clone()).await;
        let (status, v) = token(&h, "type=auto").await;
        assert_eq!(status, 200, "{fault}: {v}");
        assert_eq!(v["access_token"], first["access_token"], "{fault}");
        let stored = h.stored().await;
        assert!(
            stored.lock_owner.is_none(),
            "no lock left held after {fault}"
        );
        assert_eq!(stored.version, 1);
    }
    // manual: WeChat says the stored token is alive, so nothing is fetched.
    h.clear_faults().await;
    h.fault(json!({"path": token_path(), "errcode": 45009, "errmsg": "reach max api daily quota limit"})).await;
    let fetches = h.token_calls();
    let (status, v) = token(&h, "type=manual").await;
    assert_eq!(
        (status, &v["access_token"]),
        (200, &first["access_token"]),
        "{v}"
    );
    assert_eq!(h.token_calls(), fetches);
    // A rotation asked for a new token and gets WeChat's error; the stored token stays.
    let (status, v) = rotate(&h.app).await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(45009)), "{v}");
    let stored = h.stored().await;
    assert_eq!(
        stored.access_token.unwrap().value,
        first["access_token"].as_str().unwrap()
    );
}

#[tokio::test]
async fn nothing_stored_and_wechat_down_is_a_clear_error() {
    let h = Harness::with(&[("WECHAT_TIMEOUT_MS", "300")]).await;
    h.fault(json!({"path": token_path(), "latency_ms": 1000}))
        .await;
    let started = std::time::Instant::now();
    let (status, v) = token(&h, "").await;
    assert_eq!((status, v["errcode"].as_i64()), (504, Some(-1)), "{v}");
    assert!(started.elapsed().as_millis() < 1500);
    h.clear_faults().await;
    h.fault(json!({"path": token_path(), "errcode": 40125, "errmsg": "invalid appsecret"}))
        .await;
    let (status, v) = token(&h, "").await;
    assert_eq!(
        (status, v["errcode"].as_i64()),
        (200, Some(40125)),
        "WeChat's error passes through: {v}"
    );
}

#[tokio::test]
async fn dynamodb_failing_is_503() {
    let h = Harness::new().await;
    // A table that does not exist.
    let missing = h.instance(&[("TOKEN_TABLE", "no-such-table")]);
    let req = event("apigw-v2-get-token.json", |_| {});
    let resp = get_token(&missing, req).await.unwrap();
    let v = body_json(&resp);
    assert_eq!(
        (resp.status().as_u16(), v["errcode"].as_i64()),
        (503, Some(-1)),
        "{v}"
    );
    // DynamoDB unreachable, within the operation timeout.
    let cfg = integration_tests::config(
        &h.sim.base_url(),
        &h.table,
        &[("DYNAMODB_TIMEOUT_MS", "500")],
    );
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .test_credentials()
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(std::time::Duration::from_millis(500))
                .build(),
        )
        .load()
        .await;
    let secret = wxinvoice::secret::AppSecret::from_config(cfg.secret.as_ref(), &sdk);
    let down = wxinvoice::App::new(cfg, &sdk, secret);
    let started = std::time::Instant::now();
    let resp = get_token(&down, event("apigw-v2-get-token.json", |_| {}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(started.elapsed().as_millis() < 2000);
    assert_eq!(h.token_calls(), 0, "no WeChat call without the store");
}

async fn create_secret(sdk: &aws_config::SdkConfig, name: &str, value: &str) -> String {
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap()
}

async fn read_secret(id: &str, sdk: &aws_config::SdkConfig) -> Result<String, String> {
    let source = wxinvoice::config::SecretSource::SecretsManager { arn: id.into() };
    let secret = wxinvoice::secret::AppSecret::from_config(Some(&source), sdk);
    let value = secret.get().await.map(|s| s.expose().to_string());
    value.map_err(|e| e.0)
}

#[tokio::test]
async fn appsecret_is_read_from_secrets_manager() {
    let sdk = aws().await;
    let name = format!("wxinvoice-test-{}", uuid::Uuid::new_v4().simple());
    let arn = create_secret(&sdk, &name, &appsecret()).await;
    assert_eq!(read_secret(&arn, &sdk).await.unwrap(), appsecret());
    // JSON secrets: the `secret` field.
    let name = format!("wxinvoice-test-{}", uuid::Uuid::new_v4().simple());
    let arn = create_secret(&sdk, &name, r#"{"secret":"from-json"}"#).await;
    assert_eq!(read_secret(&arn, &sdk).await.unwrap(), "from-json");
    // A missing secret is an error naming the variable.
    let err = read_secret(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope",
        &sdk,
    )
    .await
    .unwrap_err();
    assert!(err.contains("WECHAT_SECRET_ARN"), "{err}");
}

/// The AppSecret is read when the first refresh needs it, not at start: a function whose secret
/// cannot be read still starts and serves the stored token; a refresh that needs the secret
/// fails in the envelope, and succeeds once the secret can be read, without a restart.
#[tokio::test]
async fn appsecret_is_read_on_first_refresh_and_retried() {
    let h = Harness::new().await;
    let name = format!("wxinvoice-test-{}", uuid::Uuid::new_v4().simple());
    let cfg = integration_tests::config(
        &h.sim.base_url(),
        &h.table,
        &[
            ("WECHAT_SECRET", ""),
            ("WECHAT_SECRET_ARN", &name),
            ("REFRESH_COOLDOWN_SECS", "0"),
        ],
    );
    let secret = wxinvoice::secret::AppSecret::from_config(cfg.secret.as_ref(), &h.sdk);
    let app = wxinvoice::App::new(cfg, &h.sdk, secret);
    let call = |query: &'static str| {
        let req = event("apigw-v2-get-token.json", |v| set_query(v, query));
        get_token(&app, req)
    };
    // A token stored by an instance that has the secret.
    assert_eq!(token(&h, "type=auto").await.0, 200);
    let calls = h.token_calls();

    let auto = call("type=auto").await.unwrap();
    assert_eq!(auto.status(), 200, "the stored token needs no secret");
    let manual = call("type=manual").await.unwrap();
    assert_eq!(
        manual.status(),
        200,
        "nor does manual: WeChat says the token is alive"
    );
    // A refresh that needs the secret (an operator's rotation): 503, naming no resource.
    let (status, body) = rotate(&app).await;
    assert_eq!(status, 503);
    let errmsg = body["errmsg"].as_str().unwrap();
    assert!(errmsg.contains("AppSecret unavailable"), "{body}");
    assert!(
        !errmsg.contains(&name),
        "the secret's name stays in the log: {body}"
    );
    assert_eq!(h.token_calls(), calls, "no WeChat call without the secret");
    assert_eq!(h.stored().await.lock_owner, None, "no lock taken");

    create_secret(&h.sdk, &name, &appsecret()).await;
    let (status, body) = rotate(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(h.token_calls(), calls + 1);
}

#[tokio::test]
async fn answers_are_never_cached() {
    let h = Harness::new().await;
    let req = event("apigw-v2-get-token.json", |_| {});
    let resp = get_token(&h.app, req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let req = event("apigw-v2-get-invoice-batch.json", |v| {
        set_query(v, "token=x");
        set_body(v, "{}");
    });
    let resp = get_invoice_batch(&h.app, req).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["cache-control"], "no-store");
}

/// A request to one of the single-invoice paths (the batch fixtures with another path).
fn single(
    fixture: &str,
    path: &str,
    token: &str,
    body: &serde_json::Value,
) -> lambda_http::Request {
    event(fixture, |v| {
        v["rawPath"] = json!(path);
        v["requestContext"]["http"]["path"] = json!(path);
        set_query(v, &format!("token={token}"));
        set_body(v, &body.to_string());
    })
}

#[tokio::test]
async fn single_invoice_query_and_status_change() {
    use wxinvoice::handlers::{
        invoice_query, invoice_status, GET_INVOICE_INFO, UPDATE_INVOICE_STATUS,
    };
    let h = Harness::new().await;
    let (_, t) = token(&h, "").await;
    let t = t["access_token"].as_str().unwrap().to_string();
    let invoice = json!({"card_id": SEED_CARD, "encrypt_code": SEED_CODE});
    // Each through its function's dispatch by path: (status, body).
    let info = |token: &str, body: &Value| {
        let req = single(
            "apigw-v2-get-invoice-batch.json",
            GET_INVOICE_INFO,
            token,
            body,
        );
        async { reply(invoice_query(&h.app, req).await.unwrap()) }
    };
    let change = |token: &str, status: &str| {
        let mut body = invoice.clone();
        body["reimburse_status"] = json!(status);
        let req = single(
            "apigw-v2-update-status.json",
            UPDATE_INVOICE_STATUS,
            token,
            &body,
        );
        async { reply(invoice_status(&h.app, req).await.unwrap()) }
    };

    let (status, v) = info(&t, &invoice).await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)), "{v}");
    assert_eq!(v["card_id"], SEED_CARD);
    assert_eq!(v["user_info"]["reimburse_status"], "INVOICE_REIMBURSE_INIT");
    assert_eq!(h.calls(paths().invoice_info), 1);

    let (_, v) = change(&t, "INVOICE_REIMBURSE_LOCK").await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(h.invoice_status(SEED_CODE).await, "INVOICE_REIMBURSE_LOCK");
    assert_eq!(h.calls(paths().update_status_one), 1);

    // CANCEL is refused here; the token rules are the batch's.
    assert_eq!(change(&t, "INVOICE_REIMBURSE_CANCEL").await.0, 400);
    let (_, v) = change("made-up", "INVOICE_REIMBURSE_INIT").await;
    assert_eq!(v["errcode"], 40001, "{v}");
    assert_eq!(
        h.calls(paths().update_status_one),
        1,
        "nothing more sent to WeChat"
    );

    // The batch paths still reach their handlers through the same dispatch.
    let req = event("apigw-v2-get-invoice-batch.json", |v| {
        set_query(v, &format!("token={t}"));
        set_body(v, &json!({"item_list": [invoice]}).to_string());
    });
    let v = body_json(&invoice_query(&h.app, req).await.unwrap());
    assert_eq!(v["errcode"], 0, "{v}");
    // Unknown fields and wrong methods as everywhere.
    let (status, v) = info(&t, &json!({"card_id": "c", "encrypt_code": "e", "x": 1})).await;
    assert_eq!((status, v["errcode"].as_i64()), (400, Some(72031)), "{v}");
    let req = event("apigw-v2-get-invoice-batch.json", |v| {
        v["rawPath"] = json!(GET_INVOICE_INFO);
        set_method(v, "GET");
    });
    let resp = invoice_query(&h.app, req).await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(body_json(&resp)["errcode"], 72031);
    assert_eq!(
        h.calls(paths().invoice_info),
        1,
        "no bad input reached WeChat"
    );
}

fn reply(resp: lambda_http::Response<lambda_http::Body>) -> (u16, Value) {
    (resp.status().as_u16(), body_json(&resp))
}

#[tokio::test]
async fn a_small_wecom_corp_gets_its_batch_from_single_queries() {
    if !is_work() {
        return; // 48001 for the batch query is WeCom's (corps of 200 active members or fewer)
    }
    let h = Harness::new().await;
    h.sim_post("/__sim/options", json!({"work_batch_allowed": false}))
        .await;
    let (_, t) = token(&h, "").await;
    let t = t["access_token"].as_str().unwrap().to_string();
    let items = json!([
        {"card_id": SEED_CARD, "encrypt_code": CODE2},
        {"card_id": SEED_CARD, "encrypt_code": SEED_CODE},
    ]);
    let (status, v) = batch(&h, &t, &json!({"item_list": items}).to_string()).await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)), "{v}");
    assert_eq!(
        h.calls(paths().invoice_batch),
        1,
        "the batch was refused once"
    );
    assert_eq!(
        h.calls(paths().invoice_info),
        2,
        "then one query per invoice"
    );
    // The batch's shape and order: the same cards the single queries answer.
    let list = v["item_list"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for (i, code) in [CODE2, SEED_CODE].iter().enumerate() {
        let one = h
            .sim_post(
                &format!("{}?access_token={t}", paths().invoice_info),
                json!({"card_id": SEED_CARD, "encrypt_code": code}),
            )
            .await;
        assert_eq!(list[i]["user_info"], one["user_info"], "item {i}");
        assert!(list[i].get("errcode").is_none());
    }
    // One invoice WeChat cannot find: one errcode for the whole answer, as the batch would.
    let items = json!([
        {"card_id": SEED_CARD, "encrypt_code": SEED_CODE},
        {"card_id": SEED_CARD, "encrypt_code": "no-such-code"},
    ]);
    let (_, v) = batch(&h, &t, &json!({"item_list": items}).to_string()).await;
    assert_ne!(v["errcode"], 0, "{v}");
    assert!(v.get("item_list").is_none(), "{v}");
}
