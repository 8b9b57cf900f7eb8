//! End to end through `cargo lambda watch` (started by `make test`): the three documented paths
//! over real HTTP, `cargo lambda invoke` of the scheduled event and of an operator's rotation, and
//! a registered app rotated through the rotation queue (moto's SQS and the local event source
//! mapping, `scripts/rotation_poller.py`).
//! Ignored unless asked for: `cargo test -p integration-tests --test it -- --ignored e2e::`.

use integration_tests::{fixture_path, wechat_accepts, CODE2, SEED_CARD, TOKEN_FIELDS};
use serde_json::{json, Value};

fn base() -> String {
    std::env::var("WXINVOICE_E2E_URL").expect("WXINVOICE_E2E_URL: run through `make test`")
}

/// The simulator the gateway under test calls.
fn sim() -> wechat_sim::Client {
    let base = std::env::var("WECHAT_API_BASE").expect("WECHAT_API_BASE: run through `make test`");
    wechat_sim::Client::new(base)
}

async fn get(path: &str) -> (u16, Value) {
    let resp = reqwest::get(format!("{}{path}", base())).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn post(path: &str, body: String) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", base()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn access_token() -> String {
    let (status, v) = get("/core/r/api/weChat/getToken").await;
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
#[ignore = "needs the local stack: run by `make test`"]
async fn get_token_over_http() {
    let (status, v) = get("/core/r/api/weChat/getToken?type=auto").await;
    assert_eq!(status, 200, "{v}");
    for field in TOKEN_FIELDS {
        assert!(v.get(field).is_some(), "{field} missing: {v}");
    }
    assert_eq!(
        v["url"].as_str(),
        std::env::var("JSSDK_URL").ok().as_deref()
    );
    let page = v["url"].as_str().unwrap_or_default();
    assert!(wechat_accepts(&sim(), page, &v).await);
    let (status, v) = get("/core/r/api/weChat/getToken?type=later").await;
    assert_eq!((status, v["errcode"].as_i64()), (400, Some(72031)), "{v}");
}

#[tokio::test]
#[ignore = "needs the local stack: run by `make test`"]
async fn invoice_paths_over_http() {
    let token = access_token().await;
    let body = std::fs::read_to_string(fixture_path("examples/get-invoice-batch.json")).unwrap();
    let (status, v) = post(
        &format!("/core/r/api/weChat/getInvoiceBatch?token={token}"),
        body,
    )
    .await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)), "{v}");
    assert_eq!(v["item_list"].as_array().unwrap().len(), 2);
    assert_eq!(v["item_list"][0]["card_id"], SEED_CARD);

    let update = |status: &str, code: &str| {
        json!({"openid": "or6qc1XNFyAhiatjzyd7aboPkLz8", "reimburse_status": status,
               "invoice_list": [{"card_id": SEED_CARD, "encrypt_code": code}]})
        .to_string()
    };
    let path = format!("/core/r/api/weChat/updateStatus?token={token}");
    let (status, v) = post(&path, update("INVOICE_REIMBURSE_LOCK", CODE2)).await;
    assert_eq!(
        (status, v.clone()),
        (200, json!({"errcode": 0, "errmsg": "ok"}))
    );
    let (_, v) = post(&path, update("INVOICE_REIMBURSE_INIT", CODE2)).await;
    assert_eq!(v["errcode"], 0);
    let (status, v) = post(&path, update("INVOICE_REIMBURSE_CLOSURE", CODE2)).await;
    assert_eq!(
        (status, v["errcode"].as_i64(), v["hint"].as_str()),
        (200, Some(72039), Some("订单未被锁定"))
    );

    // The single-invoice paths, routed to the same two functions.
    let one = json!({"card_id": SEED_CARD, "encrypt_code": CODE2});
    let (status, v) = post(
        &format!("/core/r/api/weChat/getInvoiceInfo?token={token}"),
        one.to_string(),
    )
    .await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)), "{v}");
    assert_eq!(v["user_info"]["reimburse_status"], "INVOICE_REIMBURSE_INIT");
    let mut change = one.clone();
    change["reimburse_status"] = json!("INVOICE_REIMBURSE_LOCK");
    let single = format!("/core/r/api/weChat/updateInvoiceStatus?token={token}");
    let (status, v) = post(&single, change.to_string()).await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)), "{v}");
    change["reimburse_status"] = json!("INVOICE_REIMBURSE_INIT");
    let (_, v) = post(&single, change.to_string()).await;
    assert_eq!(v["errcode"], 0, "{v}");
}

#[tokio::test]
#[ignore = "needs the local stack: run by `make test`"]
async fn bad_requests_over_http() {
    let (status, v) = get("/core/r/api/weChat/updateStatus").await;
    assert_eq!((status, v["errcode"].as_i64()), (405, Some(72031)), "{v}");
    let (status, v) = post(
        "/core/r/api/weChat/getInvoiceBatch?token=x",
        "{\"item_list\":".into(),
    )
    .await;
    assert_eq!((status, v["errcode"].as_i64()), (400, Some(72031)), "{v}");
    let (status, v) = post("/core/r/api/weChat/getInvoiceBatch", "{}".into()).await;
    assert_eq!((status, v["errcode"].as_i64()), (400, Some(41001)), "{v}");
}

/// `cargo lambda invoke get-token` with `data` (a direct invocation, as the schedule or an
/// operator with AWS credentials makes it): its JSON answer.
fn invoke(data: &str) -> Value {
    let url = reqwest::Url::parse(&base()).unwrap();
    let port = url.port().unwrap().to_string();
    let out = std::process::Command::new("cargo")
        .args([
            "lambda",
            "invoke",
            "get-token",
            "-A",
            "127.0.0.1",
            "-P",
            &port,
            "--data-ascii",
            data,
        ])
        .output()
        .expect("cargo lambda on PATH");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test]
#[ignore = "needs the local stack: run by `make test`"]
async fn operator_rotation_through_cargo_lambda_invoke() {
    let before = access_token().await;
    // The public manual refresh does not rotate a working token...
    let (_, v) = get("/core/r/api/weChat/getToken?type=manual").await;
    assert_eq!(v["access_token"].as_str(), Some(before.as_str()), "{v}");
    // ...the operator's rotation does.
    let v = invoke(r#"{"action":"rotate"}"#);
    assert_eq!(v["rotated"], true, "{v}");
    assert!(
        v.get("access_token").is_none(),
        "no token in the result: {v}"
    );
    let after = access_token().await;
    assert_ne!(after, before);
}

#[tokio::test]
#[ignore = "needs the local stack: run by `make test`"]
async fn scheduled_event_through_cargo_lambda_invoke() {
    let v = invoke(&std::fs::read_to_string(fixture_path("schedule-event.json")).unwrap());
    assert!(v["refreshed"].is_boolean(), "{v}");
    assert!(v["access_token_expires_in"].as_u64().unwrap() > 3600, "{v}");
    assert!(
        v["wx_card_ticket_expires_in"].as_u64().unwrap() > 3600,
        "{v}"
    );
    assert!(
        v.get("access_token").is_none(),
        "the schedule result carries no token: {v}"
    );
}

#[tokio::test]
#[ignore = "needs the local stack: run by `make test`"]
async fn the_sweep_rotates_a_registered_app_through_the_queue() {
    use wxinvoice::adapters::store::TokenStore;
    let appid = format!("wxe2e{}", &uuid::Uuid::new_v4().simple().to_string()[..13]);
    let sdk = integration_tests::aws().await;
    let prefix = std::env::var("APP_SECRET_PREFIX").expect("APP_SECRET_PREFIX");
    integration_tests::create_secret(&sdk, &format!("{prefix}{appid}"), "e2e-secret").await;
    let sim = sim();
    let mut apps = sim.options().await.apps;
    apps.push(wechat_sim::SimApp {
        kind: "mp".into(),
        appid: appid.clone(),
        secret: "e2e-secret".into(),
        agentid: None,
    });
    sim.set_options(json!({ "apps": apps })).await;
    let table = std::env::var("TOKEN_TABLE").expect("TOKEN_TABLE");
    let store =
        wxinvoice::adapters::store::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    store
        .put_app(&wxinvoice::domain::apps::AppSettings {
            kind: wxinvoice::domain::apps::Kind::Mp,
            appid: appid.clone(),
            agentid: None,
            token_api: wxinvoice::domain::config::TokenApi::Classic,
            secret_name: appid.clone(),
            origins: vec!["https://expense.example.com".into()],
            jssdk_url: Some("https://expense.example.com/invoices".into()),
            enabled: true,
            authorization: None,
        })
        .await
        .unwrap();
    let v = invoke(&std::fs::read_to_string(fixture_path("schedule-event.json")).unwrap());
    assert!(v["apps"]["queued"].as_u64().unwrap() >= 1, "{v}");
    // The event source mapping hands the message to get-token, which rotates the app.
    let mut issued = None;
    for _ in 0..120 {
        issued = sim.issued_to(&appid).await;
        if issued.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let issued = issued.expect("the worker rotated the app within 30 s");
    // Requests for the app are then served what the worker stored, without calling WeChat.
    let (status, v) = get(&format!("/core/r/api/weChat/getToken?appid={appid}")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["access_token"].as_str(), Some(issued.as_str()));
}

#[tokio::test]
#[ignore = "needs the local stack: run by `make test`"]
async fn the_simulator_pushes_verify_tickets_to_the_platforms_event_url() {
    use wxinvoice::adapters::store::TokenStore;
    let sdk = integration_tests::aws().await;
    let table = std::env::var("TOKEN_TABLE").expect("TOKEN_TABLE");
    let store =
        wxinvoice::adapters::store::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    let sim = sim();
    let url = format!("{}/core/r/api/weChat/component/events", base());
    sim.set_options(json!({"component": {"push_url": url, "ticket_push_secs": 0}}))
        .await;
    // Driven: one push now, through cargo lambda watch, answered `success` and kept.
    let v = sim.component_push(true).await;
    assert_eq!(
        (v["status"].as_u64(), v["reply"].as_str()),
        (Some(200), Some("success")),
        "{v}"
    );
    let (kept, _) = store.verify_ticket().await.unwrap().expect("kept");
    assert_eq!(kept, v["ticket"].as_str().unwrap());
    // WeChat's timer (every second here): the next push replaces it.
    sim.set_options(json!({"component": {"push_url": url, "ticket_push_secs": 1}}))
        .await;
    let mut newer = kept.clone();
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        newer = store.verify_ticket().await.unwrap().unwrap().0;
        if newer != kept {
            break;
        }
    }
    sim.set_options(json!({"component": {"push_url": "", "ticket_push_secs": 0}}))
        .await;
    assert_ne!(
        newer, kept,
        "the timer's push arrived and replaced the ticket"
    );
    // A forged push through the same URL: refused, nothing changes.
    let built = sim.component_push(false).await;
    let forged = built["query"]
        .as_str()
        .unwrap()
        .replace("msg_signature=", "msg_signature=f");
    let resp = reqwest::Client::new()
        .post(format!("{url}?{forged}"))
        .body(built["body"].as_str().unwrap().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let now = store.verify_ticket().await.unwrap().unwrap().0;
    assert_ne!(now, built["ticket"].as_str().unwrap());
}

#[tokio::test]
#[ignore = "needs the local stack: run by `make test`"]
async fn a_customer_authorizes_the_platform_and_its_invoices_are_reimbursed() {
    use integration_tests::{encode_uri_component, seed_invoices, OPENID};
    use wxinvoice::adapters::store::TokenStore;
    let sdk = integration_tests::aws().await;
    let table = std::env::var("TOKEN_TABLE").expect("TOKEN_TABLE");
    let store =
        wxinvoice::adapters::store::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    let sim = sim();
    let events = format!("{}/core/r/api/weChat/component/events", base());
    let mut component = sim.options().await.component;
    component.push_url = events;
    component.ticket_push_secs = 0;
    sim.set_options(json!({ "component": component })).await;
    // WeChat pushes the platform's verify ticket.
    let v = sim.component_push(true).await;
    assert_eq!(v["reply"], "success", "{v}");
    // The vendor's admin page asks for a link; the customer follows it and grants set 26.
    let back = "https://expense.example.com/wx/authorized";
    let (status, v) = get(&format!(
        "/core/r/api/weChat/component/authorize?redirect_uri={}",
        encode_uri_component(back)
    ))
    .await;
    assert_eq!(status, 200, "{v}");
    let pc = reqwest::Url::parse(v["pc_url"].as_str().unwrap()).unwrap();
    let pre = pc
        .query_pairs()
        .find(|(k, _)| k == "pre_auth_code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let customer = format!("wxc{}", &uuid::Uuid::new_v4().simple().to_string()[..15]);
    let v = sim
        .component_authorize(&pre, &customer, "mp", &[1, 26], true)
        .await;
    assert_eq!(v["reply"], "success", "the authorized push: {v}");
    // getToken for the customer: a signature WeChat accepts, made with its own tickets.
    let page = "https://expense.example.com/invoices";
    let (status, v) = get(&format!(
        "/core/r/api/weChat/getToken?appid={customer}&url={}",
        encode_uri_component(page)
    ))
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(
        wechat_accepts(&sim, page, &v).await,
        "WeChat accepts the signature"
    );
    // The customer's invoice, locked and closed with its token.
    let mut seed = seed_invoices();
    seed[1]["app"] = json!(customer);
    sim.set_invoices(&seed).await;
    let token = v["access_token"].as_str().unwrap().to_string();
    for status in ["INVOICE_REIMBURSE_LOCK", "INVOICE_REIMBURSE_CLOSURE"] {
        let body = json!({"openid": OPENID, "reimburse_status": status,
            "invoice_list": [{"card_id": SEED_CARD, "encrypt_code": CODE2}]});
        let (code, v) = post(
            &format!("/core/r/api/weChat/updateStatus?appid={customer}&token={token}"),
            body.to_string(),
        )
        .await;
        assert_eq!(
            (code, v["errcode"].as_i64()),
            (200, Some(0)),
            "{status}: {v}"
        );
    }
    assert_eq!(sim.invoice_status(CODE2).await, "INVOICE_REIMBURSE_CLOSURE");
    // The invoices back as the other tests expect them.
    sim.set_invoices(&seed_invoices()).await;
    // The refresh token rotates (WeChat replacing it, by the simulator's option): an operator's
    // rotation through cargo lambda invoke keeps the new one.
    let key = format!("app#{customer}");
    let before = store.load(&key).await.unwrap().refresh_token.unwrap();
    let mut component = sim.options().await.component;
    component.rotate_refresh_token = true;
    sim.set_options(json!({ "component": component.clone() }))
        .await;
    let v = invoke(&json!({"action": "rotate", "appid": customer}).to_string());
    assert_eq!(v["rotated"], true, "{v}");
    component.rotate_refresh_token = false;
    sim.set_options(json!({ "component": component })).await;
    let after = store.load(&key).await.unwrap();
    assert_ne!(
        after.refresh_token.as_ref(),
        Some(&before),
        "the new refresh token kept"
    );
    assert_eq!(after.previous_refresh_token.as_ref(), Some(&before));
    // The customer withdraws: the app is off.
    let v = sim.component_unauthorize(&customer, true).await;
    assert_eq!(v["reply"], "success", "{v}");
    let state = store.load(&key).await.unwrap();
    assert!(!state.settings.unwrap().enabled);
}
