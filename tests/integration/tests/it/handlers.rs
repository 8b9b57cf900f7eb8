//! Each handler fed with API Gateway HTTP API (v2) payload fixtures, against moto's DynamoDB and
//! the WeChat simulator over real HTTP.

use integration_tests::*;
use serde_json::{json, Value};
use wxinvoice::domain::invoice::InvoiceBatchResponse;

#[tokio::test]
async fn get_token_answers_the_spec_fields_with_a_valid_signature() {
    let h = Harness::new().await;
    let (status, v) = h.get_token("type=auto").await;
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
    assert!(h.wechat_accepts(PAGE_URL, &v).await, "{v}");
    // The token works against WeChat.
    let t = v["access_token"].as_str().unwrap();
    assert!(h.token_works(t).await);
}

#[tokio::test]
async fn auto_fetches_once_then_serves_the_stored_token() {
    let h = Harness::new().await;
    let (_, first) = h.get_token("").await;
    let (_, second) = h.get_token("type=auto").await;
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
    let (_, v) = Endpoint::GetToken.call().answer(&other).await;
    assert_eq!(v["access_token"], first["access_token"]);
    assert_eq!(h.token_calls(), 1);
}

#[tokio::test]
async fn a_rotation_replaces_the_token_and_keeps_the_previous_one() {
    let h = Harness::with(&[("REFRESH_COOLDOWN_SECS", "0")]).await;
    let (_, first) = h.get_token("type=auto").await;
    let (status, second) = h.rotate().await;
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
        .saturating_sub(wxinvoice::domain::clock::now_ms());
    assert!((295_000..=300_000).contains(&grace_left), "{grace_left}");
    assert_eq!(stored.version, 2);
    assert!(stored.lock_owner.is_none(), "lock released");
}

#[tokio::test]
async fn scheduled_event_refreshes_what_is_due() {
    let h = Harness::new().await;
    let v = h.schedule().await.unwrap();
    assert_eq!(v["refreshed"], true, "{v}");
    assert!(v["wx_card_ticket_expires_in"].as_u64().unwrap() > 7000);
    // Fresh: the next run does nothing.
    let v = h
        .invoke(&fixture("eventbridge-schedule.json"))
        .await
        .unwrap();
    assert_eq!(v["refreshed"], false, "{v}");
    assert_eq!(h.token_calls(), 1);
    // With everything due (rotate ahead of the whole lifetime), the next run rotates.
    let eager = h.instance(&[
        ("REFRESH_AHEAD_SECS", "7200"),
        ("REFRESH_COOLDOWN_SECS", "0"),
    ]);
    let v = h.schedule_on(&eager).await.unwrap();
    assert_eq!(v["refreshed"], true, "{v}");
    assert_eq!(v["version"], 2);
    assert_eq!(h.token_calls(), 2);
}

#[tokio::test]
async fn scheduled_failure_is_an_invocation_error() {
    let h = Harness::new().await;
    h.sim
        .fault(json!({"path": token_path(), "errcode": 40125, "errmsg": "invalid appsecret"}))
        .await;
    let err = h.schedule().await.unwrap_err();
    assert!(err.contains("40125"), "{err}");
    assert!(!err.contains(&appsecret()));
}

#[tokio::test]
async fn invoice_batch_passes_every_field_through() {
    let h = Harness::new().await;
    let (_, t) = h.get_token("").await;
    let t = t["access_token"].as_str().unwrap();
    let body = json!({"item_list": [
        {"card_id": SEED_CARD, "encrypt_code": SEED_CODE},
        {"card_id": "pIKi3wSimTaxiTemplate0000000", "encrypt_code": "SIMencryptCodeTaxi01+/="},
        {"card_id": SEED_CARD, "encrypt_code": "SIMencryptCodeShuDian01+/="}
    ]})
    .to_string();
    let (status, v) = h.get_invoice_batch(t, &body).await;
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
        .sim
        .post(&format!("{}?access_token={t}", batch_path()), &asked)
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
    let (_, t) = h.get_token("").await;
    let t = t["access_token"].as_str().unwrap();
    assert_eq!(
        h.update_status(t, "INVOICE_REIMBURSE_LOCK", &[SEED_CODE, CODE2])
            .await,
        (200, json!({"errcode": 0, "errmsg": "ok"}))
    );
    assert_eq!(h.invoice_status(CODE2).await, "INVOICE_REIMBURSE_LOCK");
    assert_eq!(
        h.update_status(t, "INVOICE_REIMBURSE_INIT", &[CODE2])
            .await
            .1["errcode"],
        0
    );
    assert_eq!(h.invoice_status(CODE2).await, "INVOICE_REIMBURSE_INIT");
    assert_eq!(
        h.update_status(t, "INVOICE_REIMBURSE_CLOSURE", &[SEED_CODE])
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
    let (_, t) = h.get_token("").await;
    let t = t["access_token"].as_str().unwrap();
    let (status, v) = h
        .update_status(t, "INVOICE_REIMBURSE_CLOSURE", &[CODE2])
        .await;
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
    let (status, v) = h
        .update_status(t, "INVOICE_REIMBURSE_CANCEL", &[CODE2])
        .await;
    assert_eq!((status, v["errcode"].as_i64()), (400, Some(72031)), "{v}");
    assert!(v["errmsg"].as_str().unwrap().contains("issuer"), "{v}");
    assert_eq!(h.calls(paths().update_status_batch), sent);
    let (_, v) = h
        .update_status(
            t,
            "INVOICE_REIMBURSE_LOCK",
            &["SIMencryptCodeLockedByOther01+/="],
        )
        .await;
    assert_eq!(v["errcode"], 72023);
    // A token WeChat does not know: 40001 with the spec's hint.
    let (status, v) = h
        .get_invoice_batch("not-a-token", batch_of(&[SEED_CODE]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (v["errcode"].as_i64(), v["hint"].as_str()),
        (Some(40001), Some("token失效"))
    );
    // A code outside both tables: body unchanged, no hint.
    h.sim.fault(json!({"path": batch_path(), "errcode": 45011, "errmsg": "api minute-quota reach limit", "times": 1})).await;
    let (_, v) = h.get_invoice_batch(t, batch_of(&[SEED_CODE])).await;
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

/// One case per class of bad input (`tests/fixtures/bad-input.json`): a 4xx, the errcode, an
/// errmsg naming what is wrong, and nothing but errcode and errmsg.
#[tokio::test]
async fn bad_input_gets_a_4xx_in_the_envelope() {
    let h = Harness::new().await;
    for case in RequestCase::load("bad-input.json") {
        let (status, v) = h.answer(case.call()).await;
        case.check(status, &v);
        let shown = case.shown(&v);
        let fields = v.as_object().unwrap().len();
        assert_eq!(fields, 2, "only errcode and errmsg: {shown}");
    }
    // None of it reached WeChat.
    assert_eq!(h.sim.stats().await.total, 0);
}

#[tokio::test]
async fn base64_bodies_are_decoded() {
    let h = Harness::new().await;
    let (_, t) = h.get_token("").await;
    let t = t["access_token"].as_str().unwrap().to_string();
    // Base64 of {"item_list":[{"card_id":"pIKi3wcA2zJYhWaAUWmf3aMNd_r0","encrypt_code":"SIMencryptCode02sameCardIdAsTheSpecExample+/="}]}
    let b64 = "eyJpdGVtX2xpc3QiOlt7ImNhcmRfaWQiOiJwSUtpM3djQTJ6SlloV2FBVVdtZjNhTU5kX3IwIiwiZW5jcnlwdF9jb2RlIjoiU0lNZW5jcnlwdENvZGUwMnNhbWVDYXJkSWRBc1RoZVNwZWNFeGFtcGxlKy89In1dfQ==";
    let call = Endpoint::GetInvoiceBatch.call();
    let call = call.query(&format!("token={t}")).body(b64).base64(true);
    let (_, v) = h.answer(call).await;
    assert_eq!(
        v["item_list"][0]["user_info"]["billing_no"], "031001900112",
        "{v}"
    );
}

#[tokio::test]
async fn unknown_paths_are_404_and_stage_prefixes_are_ignored() {
    let h = Harness::new().await;
    let call = Endpoint::GetToken.call();
    let resp = h.send(call.path("/core/r/api/weChat/getTokens")).await;
    assert_eq!(resp.status(), 404);
    // A named stage: the handler still routes (raw_http_path has no stage).
    let call = Endpoint::GetToken.call();
    let call = call.edit(|v| v["requestContext"]["stage"] = json!("prod"));
    assert_eq!(h.send(call).await.status(), 200);
}

#[tokio::test]
async fn wechat_faults_give_bounded_502_504() {
    let h = Harness::with(&[("WECHAT_TIMEOUT_MS", "300")]).await;
    let (_, t) = h.get_token("").await;
    let t = t["access_token"].as_str().unwrap().to_string();
    let body = batch_of(&[SEED_CODE]);
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
        h.sim.fault(fault.clone()).await;
        let started = std::time::Instant::now();
        let (got, v) = h.get_invoice_batch(&t, &body).await;
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
    let (status, _) = h.get_invoice_batch_on(&dead, &t, &body).await;
    assert_eq!(status, 502);
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
    let (_, first) = h.get_token("").await;
    for fault in [
        json!({"path": token_path(), "errcode": -1, "errmsg": "system error"}),
        json!({"path": token_path(), "http_status": 503}),
        json!({"path": token_path(), "drop": true}),
        json!({"path": token_path(), "latency_ms": 1000}),
        json!({"path": token_path(), "errcode": 45009, "errmsg": "reach max api daily quota limit"}),
    ] {
        h.sim.clear_faults().await;
        h.sim.fault(fault.clone()).await;
        let (status, v) = h.get_token("type=auto").await;
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
    h.sim.clear_faults().await;
    h.sim.fault(json!({"path": token_path(), "errcode": 45009, "errmsg": "reach max api daily quota limit"})).await;
    let fetches = h.token_calls();
    let (status, v) = h.get_token("type=manual").await;
    assert_eq!(
        (status, &v["access_token"]),
        (200, &first["access_token"]),
        "{v}"
    );
    assert_eq!(h.token_calls(), fetches);
    // A rotation asked for a new token and gets WeChat's error; the stored token stays.
    let (status, v) = h.rotate().await;
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
    h.sim
        .fault(json!({"path": token_path(), "latency_ms": 1000}))
        .await;
    let started = std::time::Instant::now();
    let (status, v) = h.get_token("").await;
    assert_eq!((status, v["errcode"].as_i64()), (504, Some(-1)), "{v}");
    assert!(started.elapsed().as_millis() < 1500);
    h.sim.clear_faults().await;
    h.sim
        .fault(json!({"path": token_path(), "errcode": 40125, "errmsg": "invalid appsecret"}))
        .await;
    let (status, v) = h.get_token("").await;
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
    let (status, v) = Endpoint::GetToken.call().answer(&missing).await;
    assert_eq!((status, v["errcode"].as_i64()), (503, Some(-1)), "{v}");
    // DynamoDB unreachable, within the operation timeout.
    let config = h.config(&[("DYNAMODB_TIMEOUT_MS", "500")]);
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
    let down = config.app(&sdk);
    let started = std::time::Instant::now();
    let resp = Endpoint::GetToken.call().send(&down).await;
    assert_eq!(resp.status(), 503);
    assert!(started.elapsed().as_millis() < 2000);
    assert_eq!(h.token_calls(), 0, "no WeChat call without the store");
}

async fn read_secret(id: &str, sdk: &aws_config::SdkConfig) -> Result<String, String> {
    let source = wxinvoice::domain::config::SecretSource::SecretsManager { arn: id.into() };
    let secret = wxinvoice::adapters::secret::AppSecret::from_config(Some(&source), sdk);
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
    let app = h.instance(&[
        ("WECHAT_SECRET", ""),
        ("WECHAT_SECRET_ARN", &name),
        ("REFRESH_COOLDOWN_SECS", "0"),
    ]);
    // A token stored by an instance that has the secret.
    assert_eq!(h.get_token("type=auto").await.0, 200);
    let calls = h.token_calls();

    let (auto, _) = h.get_token_on(&app, "type=auto").await;
    assert_eq!(auto, 200, "the stored token needs no secret");
    let (manual, _) = h.get_token_on(&app, "type=manual").await;
    assert_eq!(
        manual, 200,
        "nor does manual: WeChat says the token is alive"
    );
    // A refresh that needs the secret (an operator's rotation): 503, naming no resource.
    let (status, body) = h.rotate_on(&app).await;
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
    let (status, body) = h.rotate_on(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(h.token_calls(), calls + 1);
}

#[tokio::test]
async fn answers_are_never_cached() {
    let h = Harness::new().await;
    let resp = h.send(Endpoint::GetToken.call()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let call = Endpoint::GetInvoiceBatch.call().query("token=x").body("{}");
    let resp = h.send(call).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn single_invoice_query_and_status_change() {
    let h = Harness::new().await;
    let (_, t) = h.get_token("").await;
    let t = t["access_token"].as_str().unwrap().to_string();
    let invoice = json!({"card_id": SEED_CARD, "encrypt_code": SEED_CODE});
    // Each through its function's dispatch by path: (status, body).
    let (status, v) = h.get_invoice_info(&t, &invoice).await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)), "{v}");
    assert_eq!(v["card_id"], SEED_CARD);
    assert_eq!(v["user_info"]["reimburse_status"], "INVOICE_REIMBURSE_INIT");
    assert_eq!(h.calls(paths().invoice_info), 1);

    let (_, v) = h
        .update_invoice_status(&t, "INVOICE_REIMBURSE_LOCK", SEED_CODE)
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(h.invoice_status(SEED_CODE).await, "INVOICE_REIMBURSE_LOCK");
    assert_eq!(h.calls(paths().update_status_one), 1);

    // CANCEL is refused here; the token rules are the batch's.
    let (status, _) = h
        .update_invoice_status(&t, "INVOICE_REIMBURSE_CANCEL", SEED_CODE)
        .await;
    assert_eq!(status, 400);
    let (_, v) = h
        .update_invoice_status("made-up", "INVOICE_REIMBURSE_INIT", SEED_CODE)
        .await;
    assert_eq!(v["errcode"], 40001, "{v}");
    assert_eq!(
        h.calls(paths().update_status_one),
        1,
        "nothing more sent to WeChat"
    );

    // The batch paths still reach their handlers through the same dispatch.
    let (_, v) = h
        .get_invoice_batch(&t, json!({"item_list": [invoice]}))
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    // Unknown fields and wrong methods as everywhere.
    let unknown = json!({"card_id": "c", "encrypt_code": "e", "x": 1});
    let (status, v) = h.get_invoice_info(&t, &unknown).await;
    assert_eq!((status, v["errcode"].as_i64()), (400, Some(72031)), "{v}");
    let (status, v) = h
        .answer(Endpoint::GetInvoiceInfo.call().method("GET"))
        .await;
    assert_eq!(status, 405);
    assert_eq!(v["errcode"], 72031);
    assert_eq!(
        h.calls(paths().invoice_info),
        1,
        "no bad input reached WeChat"
    );
}

#[tokio::test]
async fn a_small_wecom_corp_gets_its_batch_from_single_queries() {
    if !is_work() {
        return; // 48001 for the batch query is WeCom's (corps of 200 active members or fewer)
    }
    let h = Harness::new().await;
    h.sim
        .set_options(json!({"work_batch_allowed": false}))
        .await;
    let (_, t) = h.get_token("").await;
    let t = t["access_token"].as_str().unwrap().to_string();
    let (status, v) = h.get_invoice_batch(&t, batch_of(&[CODE2, SEED_CODE])).await;
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
        let path = format!("{}?access_token={t}", paths().invoice_info);
        let one = h
            .sim
            .post(&path, &json!({"card_id": SEED_CARD, "encrypt_code": code}))
            .await;
        assert_eq!(list[i]["user_info"], one["user_info"], "item {i}");
        assert!(list[i].get("errcode").is_none());
    }
    // One invoice WeChat cannot find: one errcode for the whole answer, as the batch would.
    let asked = batch_of(&[SEED_CODE, "no-such-code"]);
    let (_, v) = h.get_invoice_batch(&t, asked).await;
    assert_ne!(v["errcode"], 0, "{v}");
    assert!(v.get("item_list").is_none(), "{v}");
}

#[tokio::test]
async fn debug_shows_a_page_of_the_app_what_was_signed_with_the_tickets_masked() {
    let h = Harness::new().await;
    let asked = |query: &str, origin: Option<&str>| {
        let mut call = Endpoint::GetToken.call().query(query);
        if let Some(o) = origin {
            call = call.header("origin", o);
        }
        h.answer(call)
    };
    let (status, v) = asked("debug=1", Some("https://expense.example.com")).await;
    assert_eq!(status, 200, "{v}");
    let (noncestr, timestamp) = (
        v["noncestr"].as_str().unwrap(),
        v["timestamp"].as_u64().unwrap(),
    );
    let signed = v["debug"]["signed"].as_str().unwrap();
    assert_eq!(
        signed,
        format!("jsapi_ticket=***&noncestr={noncestr}&timestamp={timestamp}&url={PAGE_URL}")
    );
    // The masked string is the one signed: with the stored ticket in place of ***, its SHA1 is
    // the signature.
    let stored = h.stored().await;
    let ticket = stored.jsapi_ticket.unwrap().value;
    let plain = signed.replace("***", &ticket);
    use wxinvoice::adapters::sign;
    assert_eq!(
        plain,
        sign::jsapi_plain(&ticket, noncestr, timestamp, PAGE_URL)
    );
    assert_eq!(
        sign::jsapi_signature(&ticket, noncestr, timestamp, PAGE_URL),
        v["signature"].as_str().unwrap()
    );
    let card_ticket = stored.wx_card_ticket.unwrap().value;
    let card_signed = v["debug"]["card_signed"].as_str().unwrap();
    assert!(
        card_signed.contains("***") && card_signed.contains("INVOICE"),
        "{card_signed}"
    );
    assert_eq!(
        card_signed.replace("***", &card_ticket),
        sign::card_plain(&card_ticket, &appid(), timestamp, noncestr)
    );
    assert!(!v["debug"].to_string().contains(&card_ticket));
    assert!(!v["debug"].to_string().contains(&ticket));
    // Only for the app's pages, only 1 or 0.
    for (query, origin) in [
        ("debug=1", None),
        ("debug=1", Some("https://evil.example.com")),
        ("debug=2", Some("https://expense.example.com")),
        ("debug=", Some("https://expense.example.com")),
    ] {
        let (status, v) = asked(query, origin).await;
        assert_eq!(status, 400, "{query} {origin:?}: {v}");
        assert!(v["errmsg"].as_str().unwrap().starts_with("debug: "), "{v}");
    }
    let (status, v) = asked("debug=0", None).await;
    assert_eq!(status, 200, "{v}");
    assert!(v.get("debug").is_none(), "{v}");
}
