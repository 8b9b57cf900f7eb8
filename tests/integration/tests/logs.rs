//! Everything the gateway logs during a full flow, error paths included and at the most verbose
//! level, holds neither the AppSecret nor any access token or ticket.

use std::sync::{Arc, Mutex};

use integration_tests::*;
use lambda_http::tracing::subscriber::fmt::MakeWriter;
use serde_json::{json, Value};
use wxinvoice::handlers::{get_invoice_batch, get_token, update_status};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

async fn token(app: &wxinvoice::App, query: &str) -> Value {
    let req = event("apigw-v2-get-token.json", |v| set_query(v, query));
    body_json(&get_token(app, req).await.unwrap())
}

async fn batch(app: &wxinvoice::App, query: &str, body: &str) -> Value {
    let req = event("apigw-v2-get-invoice-batch.json", |v| {
        set_query(v, query);
        set_body(v, body);
    });
    body_json(&get_invoice_batch(app, req).await.unwrap())
}

async fn update(app: &wxinvoice::App, query: &str, status: &str) -> Value {
    let body = json!({"openid": OPENID, "reimburse_status": status,
        "invoice_list": [{"card_id": SEED_CARD, "encrypt_code": CODE2}]})
    .to_string();
    let req = event("apigw-v2-update-status.json", |v| {
        set_query(v, query);
        set_body(v, &body);
    });
    body_json(&update_status(app, req).await.unwrap())
}

#[tokio::test]
async fn no_secret_or_token_reaches_the_logs() {
    let capture = Capture::default();
    wxinvoice::init_tracing_with("trace", true, capture.clone());

    let h = Harness::with(&[("REFRESH_COOLDOWN_SECS", "0"), ("WECHAT_TIMEOUT_MS", "300")]).await;
    let app = &h.app;
    let good =
        json!({"item_list": [{"card_id": SEED_CARD, "encrypt_code": SEED_CODE}]}).to_string();
    let t = token(app, "").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let t = token(app, "type=manual").await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
        .max(t);
    let current = h.stored_token().await;
    let q = format!("token={current}");
    batch(app, &q, &good).await;
    update(app, &q, "INVOICE_REIMBURSE_LOCK").await;
    update(app, &q, "INVOICE_REIMBURSE_CANCEL").await;
    update(app, &q, "INVOICE_REIMBURSE_CLOSURE").await;
    batch(app, &format!("token={t}x"), &good).await;
    batch(app, "", &good).await;
    batch(app, &q, "{not json").await;
    // WeChat reports the token dead: replaced, retried.
    h.fault(json!({"path": batch_path(), "errcode": 40001, "times": 1}))
        .await;
    batch(app, &q, &good).await;
    // WeChat down for the invoice call and for the token call.
    h.fault(json!({"path": "*", "drop": true, "times": 2}))
        .await;
    let current = h.stored_token().await;
    batch(app, &format!("token={current}"), &good).await;
    // Operator rotations (direct invocations), failing on the drop and on a rejected secret.
    let rotation = || wxinvoice::runtime::request_from_json(r#"{"action":"rotate"}"#).unwrap();
    assert!(get_token(app, rotation()).await.is_err());
    h.fault(
        json!({"path": token_path(), "errcode": 40125, "errmsg": "invalid appsecret", "times": 1}),
    )
    .await;
    assert!(get_token(app, rotation()).await.is_err());
    // The scheduled refresh, rotating everything.
    let eager = h.instance(&[
        ("REFRESH_AHEAD_SECS", "7200"),
        ("REFRESH_COOLDOWN_SECS", "0"),
    ]);
    let sched = wxinvoice::runtime::request_from_json(&fixture("schedule-event.json")).unwrap();
    get_token(&eager, sched).await.unwrap();

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let lines = logs.lines().filter(|l| l.contains("\"endpoint\"")).count();
    assert_eq!(
        lines, 14,
        "exactly one line per request (14 requests):\n{logs}"
    );
    assert_eq!(logs.lines().count(), 14, "nothing else is logged:\n{logs}");
    // Flattened JSON, with the fields Powertools users query.
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for line in &lines {
        assert!(line.get("fields").is_none(), "flattened: {line}");
        assert!(line["cold_start"].is_boolean(), "{line}");
    }
    let cold = lines.iter().filter(|l| l["cold_start"] == true).count();
    assert_eq!(cold, 1, "one cold start per process");
    let api = lines
        .iter()
        .find(|l| l["endpoint"] == "/core/r/api/weChat/getToken")
        .unwrap();
    assert_eq!(api["correlation_id"], "LV7fzho-PHcEJPw=", "{api}");
    assert_eq!(api["app"], appid(), "the app the request was for: {api}");
    // Each request line is also an EMF document with its metrics.
    assert_eq!(
        api["_aws"]["CloudWatchMetrics"][0]["Namespace"], "wxinvoice",
        "{api}"
    );
    assert_eq!(api["requests"], 1);
    assert!(api["token_left_secs"].as_u64().unwrap() > 3000, "{api}");
    let refreshed = lines
        .iter()
        .find(|l| l["endpoint"] == "/core/r/api/weChat/getToken" && l["wechat_calls"] == 3)
        .expect("the first getToken fetched a token and two tickets");
    assert!(refreshed["wechat_ms"].is_u64() && refreshed["dynamodb_calls"].as_u64() >= Some(2));
    let schedule = lines.iter().find(|l| l["endpoint"] == "schedule").unwrap();
    assert_eq!(schedule["refresh_failed"], 0, "{schedule}");
    assert!(
        lines.iter().any(|l| l["errcode"] == 40001),
        "errcode is a top-level field a metric filter can match"
    );
    let issued = h.sim_get("/__sim/tokens").await;
    let mut secrets: Vec<String> = vec![appsecret()];
    for kind in ["tokens", "tickets"] {
        for s in issued[kind].as_array().unwrap() {
            secrets.push(s.as_str().unwrap().to_string());
        }
    }
    assert!(
        secrets.len() >= 8,
        "tokens and tickets were issued: {issued}"
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "{secret} appears in the logs:\n{logs}"
        );
    }
}
