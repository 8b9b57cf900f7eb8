//! Faults: the matrix of WeChat failures against getToken (valid token stored, forced refresh,
//! nothing stored), and DynamoDB stopped in the middle of a run and started again.

use std::time::Duration;

use integration_tests::*;
use serde_json::{json, Value};

/// getToken on `app`: status, body, and how long it took (ms).
async fn get(app: &wxinvoice::Deployment, query: &str) -> (u16, Value, u128) {
    let ((status, v), ms) = timed(Endpoint::GetToken.call().query(query).answer(app)).await;
    (status, v, ms)
}

fn cell(status: u16, v: &Value, ms: u128) -> String {
    let code = v["errcode"]
        .as_i64()
        .map(|c| format!(" errcode {c}"))
        .unwrap_or_default();
    format!("{status}{code}, {ms} ms")
}

#[tokio::test]
async fn wechat_fault_matrix() {
    // The token is "due" for every request (refresh margin of its whole life), so each
    // auto request tries to refresh and meets the fault; no cooldown for the rotation.
    let overrides = [
        ("REFRESH_AHEAD_SECS", "7200"),
        ("REFRESH_MARGIN_SECS", "7200"),
        ("WECHAT_TIMEOUT_MS", "500"),
        ("REFRESH_COOLDOWN_SECS", "0"),
    ];
    let h = Harness::with(&overrides).await;
    let (_, first, _) = get(&h.app, "").await;
    let stored = first["access_token"].as_str().unwrap().to_string();
    let empty_table = create_table(&h.sdk).await;
    let path = token_path();
    let faults = [
        (
            "slow (2 s)",
            json!({"path": path, "latency_ms": 2000}),
            504,
            None,
        ),
        (
            "down (connection dropped)",
            json!({"path": path, "drop": true}),
            502,
            None,
        ),
        (
            "HTTP 503",
            json!({"path": path, "http_status": 503}),
            502,
            None,
        ),
        (
            "errcode -1 (busy)",
            json!({"path": path, "errcode": -1, "errmsg": "system error"}),
            200,
            Some(-1),
        ),
        (
            "errcode 45009 (quota)",
            json!({"path": path, "errcode": 45009, "errmsg": "reach max api daily quota limit"}),
            200,
            Some(45009),
        ),
        (
            "garbage body",
            json!({"path": path, "body": "<html>502 Bad Gateway</html>"}),
            502,
            None,
        ),
    ];
    println!("| fault | auto, valid token stored | rotation | auto, nothing stored |");
    println!("|---|---|---|---|");
    for (name, fault, status, errcode) in faults {
        h.sim.clear_faults().await;
        h.sim.fault(fault).await;
        // auto: the stored token keeps being served.
        let (s1, v1, ms1) = get(&h.app, "type=auto").await;
        assert_eq!(
            (s1, v1["access_token"].as_str()),
            (200, Some(stored.as_str())),
            "{name}: {v1}"
        );
        // rotation: WeChat's failure, stored token kept.
        let ((s2, v2), ms2) = timed(h.rotate()).await;
        assert_eq!(s2, status, "{name}: {v2}");
        assert_eq!(
            v2["errcode"].as_i64(),
            Some(errcode.unwrap_or(-1)),
            "{name}: {v2}"
        );
        // nothing valid stored: a clear error within the bound.
        let empty = h.instance(&[
            ("TOKEN_TABLE", empty_table.as_str()),
            ("WECHAT_TIMEOUT_MS", "500"),
        ]);
        let (s3, v3, ms3) = get(&empty, "").await;
        assert_eq!(
            (s3, v3["errcode"].as_i64()),
            (status, Some(errcode.unwrap_or(-1))),
            "{name}: {v3}"
        );
        for ms in [ms1, ms2, ms3] {
            assert!(
                ms < 1500,
                "{name}: answered in {ms} ms (WeChat timeout 500 ms)"
            );
        }
        let state = h.stored().await;
        assert_eq!(
            state.access_token.unwrap().value,
            stored,
            "{name}: stored token intact"
        );
        assert!(state.lock_owner.is_none(), "{name}: no lock left held");
        println!(
            "| {name} | {} | {} | {} |",
            cell(s1, &v1, ms1),
            cell(s2, &v2, ms2),
            cell(s3, &v3, ms3)
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Moto(std::process::Child);

impl Moto {
    async fn start(port: u16) -> Moto {
        let child = std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server on PATH (make test puts .venv/bin there)");
        // Dropping the guard kills and reaps the process, whatever happens next.
        let moto = Moto(child);
        let url = format!("http://127.0.0.1:{port}/");
        for _ in 0..100 {
            if reqwest::get(&url).await.is_ok() {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto did not start on {port}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn dynamodb_stopped_mid_run_then_back() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let sdk = aws_at(&endpoint).await;
    let sim = wechat_sim::Sim::start_default().await;
    let moto = Moto::start(port).await;
    let table = create_table(&sdk).await;
    let config = TestConfig::new(&sim.base_url(), &table).with(&[("DYNAMODB_TIMEOUT_MS", "500")]);
    let app = config.app(&sdk);
    let (status, _, _) = get(&app, "").await;
    assert_eq!(status, 200);

    drop(moto);
    // The cached state keeps answering auto while it is young (CACHE_TTL_SECS, 30 s)...
    let (status, v, _) = get(&app, "").await;
    assert_eq!(status, 200, "{v}");
    // ...a forced refresh needs the store, and so does an instance without a fresh copy: 503.
    let cold = config.app(&sdk);
    for (app, query) in [(&app, "type=manual"), (&cold, "")] {
        let (status, v, ms) = get(app, query).await;
        assert_eq!((status, v["errcode"].as_i64()), (503, Some(-1)), "{v}");
        // The answer names no table and carries API Gateway's request id; the log has the rest.
        let errmsg = v["errmsg"].as_str().unwrap();
        assert!(!errmsg.contains(&table), "{errmsg}");
        assert!(
            errmsg.ends_with("(request id LV7fzho-PHcEJPw=)"),
            "{errmsg}"
        );
        assert!(ms < 2000, "answered in {ms} ms");
        println!("DynamoDB down, getToken?{query}: {}", cell(status, &v, ms));
    }
    let call = Endpoint::GetInvoiceBatch.call().query("token=t");
    let resp = call.body(batch_of(&[SEED_CODE])).send(&cold).await;
    assert_eq!(resp.status(), 503);

    // Back (empty, as moto keeps nothing): the same process recovers without a restart.
    let _moto = Moto::start(port).await;
    create_table_named(&sdk, &table).await;
    let (status, v, _) = get(&app, "").await;
    assert_eq!(status, 200, "{v}");
    assert!(v["access_token"].is_string());
}
