//! Everything the gateway logs during a full flow, error paths included and at the most verbose
//! level, holds neither the AppSecret nor any access token or ticket.
//!
//! The test runs in a process of its own (`in_own_process`): it installs the process's log
//! subscriber (the gateway's own, `init_tracing_with`, writing to a buffer), asserts that nothing
//! but its 14 request lines is logged, and that exactly one of them is the process's cold start
//! (a flag the gateway keeps per process). In the process the other tests share, their requests
//! would log too and one of them would take the cold start.

use std::sync::{Arc, Mutex};

use integration_tests::*;
use lambda_http::tracing::subscriber::fmt::MakeWriter;
use serde_json::{json, Value};

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

#[tokio::test]
async fn no_secret_or_token_reaches_the_logs() {
    if !in_own_process(module_path!(), "no_secret_or_token_reaches_the_logs").await {
        return;
    }
    let capture = Capture::default();
    wxinvoice::runtime::init_tracing_with("trace", true, capture.clone());

    let h = Harness::with(&[("REFRESH_COOLDOWN_SECS", "0"), ("WECHAT_TIMEOUT_MS", "300")]).await;
    let good = batch_of(&[SEED_CODE]);
    let t = access_token(&h.get_token("").await.1);
    let t = access_token(&h.get_token("type=manual").await.1).max(t);
    let current = h.stored_token().await;
    h.get_invoice_batch(&current, &good).await;
    for status in [
        "INVOICE_REIMBURSE_LOCK",
        "INVOICE_REIMBURSE_CANCEL",
        "INVOICE_REIMBURSE_CLOSURE",
    ] {
        h.update_status(&current, status, &[CODE2]).await;
    }
    h.get_invoice_batch(&format!("{t}x"), &good).await;
    h.answer(Endpoint::GetInvoiceBatch.call().query("").body(&good))
        .await;
    h.get_invoice_batch(&current, "{not json").await;
    // WeChat reports the token dead: replaced, retried.
    h.sim
        .fault(json!({"path": batch_path(), "errcode": 40001, "times": 1}))
        .await;
    h.get_invoice_batch(&current, &good).await;
    // WeChat down for the invoice call and for the token call.
    h.sim
        .fault(json!({"path": "*", "drop": true, "times": 2}))
        .await;
    let current = h.stored_token().await;
    h.get_invoice_batch(&current, &good).await;
    // Operator rotations (direct invocations), failing on the drop and on a rejected secret.
    let rotation = r#"{"action":"rotate"}"#;
    assert!(h.invoke(rotation).await.is_err());
    h.sim
        .fault(
            json!({"path": token_path(), "errcode": 40125, "errmsg": "invalid appsecret", "times": 1}),
        )
        .await;
    assert!(h.invoke(rotation).await.is_err());
    // The scheduled refresh, rotating everything.
    let eager = h.instance(&[
        ("REFRESH_AHEAD_SECS", "7200"),
        ("REFRESH_COOLDOWN_SECS", "0"),
    ]);
    h.schedule_on(&eager).await.unwrap();

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let lines = logs.lines().filter(|l| l.contains("\"endpoint\"")).count();
    assert_eq!(
        lines, 14,
        "exactly one line per request (14 requests):\n{logs}"
    );
    // And one more: WeChat ended a token the gateway still counted on (the injected 40001),
    // which is how another system's use of the AppSecret shows.
    let elsewhere: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("\"event\":\"token_ended_elsewhere\""))
        .collect();
    assert_eq!(elsewhere.len(), 1, "{logs}");
    assert!(
        elsewhere[0].contains("\"level\":\"WARN\""),
        "{}",
        elsewhere[0]
    );
    assert_eq!(logs.lines().count(), 15, "nothing else is logged:\n{logs}");
    // Flattened JSON, with the fields Powertools users query.
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for line in &lines {
        assert!(line.get("fields").is_none(), "flattened: {line}");
        let request = line.get("endpoint").is_some();
        assert!(!request || line["cold_start"].is_boolean(), "{line}");
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
    let issued = h.sim.tokens().await;
    let mut secrets: Vec<String> = vec![appsecret()];
    secrets.extend(issued.tokens.iter().cloned());
    secrets.extend(issued.tickets.iter().cloned());
    assert!(
        secrets.len() >= 8,
        "tokens and tickets were issued: {issued:?}"
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "{secret} appears in the logs:\n{logs}"
        );
    }
}
